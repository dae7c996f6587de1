// Training on real folders: a folder with unreadable files trains on (the bad samples are skipped
// and reported), an empty folder and a missing path are clear errors before any step.
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "jepa/io/png.hpp"
#include "jepa/models/jepa_presets.hpp"
#include "jepa/train/folder_source.hpp"
#include "jepa/train/trainer.hpp"

using namespace jepa;
namespace P = jepa::models::presets;

namespace {
std::filesystem::path temp_dir(const char* name) {
  auto d = std::filesystem::temp_directory_path() / (std::string("jepa_test_") + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}
void write_image(const std::filesystem::path& p, int w, int h, int seed) {
  io::RgbImage img(w, h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) img.at(x, y)[c] = static_cast<std::uint8_t>((x * 7 + y * 3 + c * 50 + seed * 31) % 256);
  io::write_png(p.string(), img);
}
}  // namespace

BOOST_AUTO_TEST_CASE(bad_samples_are_skipped_and_reported) {
  const auto dir = temp_dir("folder_train");
  std::filesystem::create_directories(dir / "cats");
  std::filesystem::create_directories(dir / "dogs");
  for (int i = 0; i < 3; ++i) write_image(dir / "cats" / ("c" + std::to_string(i) + ".png"), 80, 72, i);
  for (int i = 0; i < 2; ++i) write_image(dir / "dogs" / ("d" + std::to_string(i) + ".png"), 64, 96, 10 + i);
  { std::ofstream(dir / "dogs" / "broken.png") << "this is not a PNG"; }         // corrupt
  { std::ofstream(dir / "cats" / "empty.jpg"); }                                  // empty
  auto model = P::vjepa2<P::vit_micro>();
  model.init(3);
  train::TrainConfig cfg;
  auto st = train::Recipes::vjepa2_pretrain(1, 6);
  st.lr.cosine.warmup = 2;
  cfg.stages = {st};
  cfg.data = {{4, 64, 2, 0}};  // each image repeated over 4 frames (the V-JEPA 2 image convention)
  cfg.progress = false;
  const train::FolderSource src = train::FolderSource::parse("images:" + dir.string());
  train::Trainer trainer(model, src, cfg);
  std::vector<std::string> skipped;
  std::vector<float> probe(2 * 3 * 4 * 64 * 64);
  const auto consumed = src.fill(0, 2, {4, 64, 64}, probe.data(), skipped);
  BOOST_TEST(consumed >= 2u);
  trainer.run();  // 6 steps × 2 samples over 7 files, 2 of them unreadable: it trains on
  BOOST_TEST(trainer.finished());
  BOOST_TEST(trainer.state().video_position > 12u);  // the bad files were stepped over
  for (const auto& l : trainer.history()) BOOST_TEST(std::isfinite(l.loss));
  // The skipped files are named in what fill() reports.
  skipped.clear();
  src.fill(0, 7, {4, 64, 64}, std::vector<float>(7 * 3 * 4 * 64 * 64).data(), skipped);
  BOOST_REQUIRE_EQUAL(skipped.size(), 2u);
  const std::string all = skipped[0] + " " + skipped[1];
  BOOST_TEST(all.find("broken.png") != std::string::npos);
  BOOST_TEST(all.find("empty.jpg") != std::string::npos);
  std::filesystem::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(empty_or_missing_folders) {
  const auto dir = temp_dir("folder_empty");
  const train::FolderSource empty = train::FolderSource::parse("images:" + dir.string());
  std::vector<std::string> skipped;
  std::vector<float> out(3 * 64 * 64);
  BOOST_CHECK_EXCEPTION(empty.fill(0, 1, {1, 64, 64}, out.data(), skipped), ConfigError, [&](const ConfigError& e) {
    return std::string(e.what()).find(dir.string()) != std::string::npos;
  });
  const train::FolderSource missing = train::FolderSource::parse("videos:" + (dir / "nope").string());
  BOOST_CHECK_THROW(missing.fill(0, 1, {2, 64, 64}, out.data(), skipped), IoError);
  BOOST_CHECK_THROW(train::FolderSource::parse("webcam:0"), ConfigError);
  // A folder whose every file is unreadable stops with a message instead of looping.
  for (int i = 0; i < 3; ++i) std::ofstream(dir / ("bad" + std::to_string(i) + ".png")) << "x";
  const train::FolderSource bad(train::FolderSource::Kind::images, dir.string(), 4, 5);
  BOOST_CHECK_EXCEPTION(bad.fill(0, 1, {1, 64, 64}, out.data(), skipped), IoError, [](const IoError& e) {
    return std::string(e.what()).find("more than 5 unreadable samples") != std::string::npos;
  });
  std::filesystem::remove_all(dir);
}
