// Real inputs for feature extraction (jepa/io/media.hpp): video files in two containers generated at
// test time with the ffmpeg command-line tool (skipped with a message when it is missing), frame
// folders, PNG and JPEG images; the reference's deterministic frame window (frame step, target fps,
// every frame, start offset, padding of short inputs), EvalTransform preprocessing, and one clear
// IoError naming the file for every bad input.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <unistd.h>

#include "jepa/io/media.hpp"
#include "jepa/io/png.hpp"
#include "support/errors.hpp"
#include "support/skip.hpp"

using namespace jepa;
namespace fs = std::filesystem;

namespace {

bool sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0; }
std::string q(const fs::path& p) {
  std::string s = "'";  // appended piecewise: GCC 12 warns falsely on `"literal" + std::string&&`
  s.append(p.string());
  s.push_back('\'');
  return s;
}

struct Inputs {
  fs::path dir, mp4, mkv, red, short5, junk, text_png, frames, mixed, empty;
  bool video = false;
  Inputs() {
    av_log_set_level(AV_LOG_QUIET);
    dir = fs::temp_directory_path() / ("jepa_test_media_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    frames = dir / "frames";
    mixed = dir / "mixed";
    empty = dir / "empty";
    fs::create_directories(frames);
    fs::create_directories(mixed);
    fs::create_directories(empty);
    for (int f = 0; f < 10; ++f) {  // frame f has blue = 20·f
      io::RgbImage img(48, 32);
      for (int y = 0; y < 32; ++y)
        for (int x = 0; x < 48; ++x) {
          img.at(x, y)[0] = static_cast<std::uint8_t>(x * 5);
          img.at(x, y)[1] = static_cast<std::uint8_t>(y * 7);
          img.at(x, y)[2] = static_cast<std::uint8_t>(20 * f);
        }
      char name[32];
      std::snprintf(name, sizeof name, "frame_%03d.png", f);
      io::write_png((frames / name).string(), img);
      if (f < 2) {
        io::RgbImage other(f ? 40 : 48, 32);
        io::write_png((mixed / name).string(), other);
      }
    }
    std::ofstream(frames / "notes.txt") << "ignored";
    std::ofstream(empty / "notes.txt") << "no images";
    junk = dir / "junk.mp4";
    std::ofstream(junk, std::ios::binary) << std::string(3000, '\x5a');
    text_png = dir / "text.png";
    std::ofstream(text_png) << "not an image";
    if (!sh("ffmpeg -version")) {
      std::cerr << "test_media_inputs: the ffmpeg binary is not on PATH; video cases skipped\n";
      return;
    }
    const std::string ff = "ffmpeg -nostdin -v error -y ";
    mp4 = dir / "clip.mp4";   // 96x64, 30 fps, 60 frames, H.264
    mkv = dir / "clip.mkv";   // 80x48, 25 fps, 50 frames, MPEG-4 part 2 in Matroska
    red = dir / "red.mp4";    // solid red, 64x64, 10 frames
    short5 = dir / "s5.mp4";  // 5 frames
    video = sh(ff + "-f lavfi -i testsrc=size=96x64:rate=30 -t 2 -c:v libx264 -pix_fmt yuv420p " + q(mp4)) &&
            sh(ff + "-f lavfi -i testsrc=size=80x48:rate=25 -t 2 -c:v mpeg4 " + q(mkv)) &&
            sh(ff + "-f lavfi -i color=c=red:size=64x64:rate=10 -frames:v 10 -c:v libx264 -pix_fmt yuv444p -qp 0 " + q(red)) &&
            sh(ff + "-f lavfi -i testsrc=size=64x48:rate=30 -frames:v 5 -c:v libx264 -pix_fmt yuv420p " + q(short5));
    if (!video) std::cerr << "test_media_inputs: ffmpeg could not generate the clips; video cases skipped\n";
  }
  ~Inputs() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};
Inputs& in() {
  static Inputs i;
  return i;
}
#define REQUIRE_VIDEO()                                                     \
  do {                                                                      \
    if (!in().video) {                                                      \
      jepa::test::skip_case("no ffmpeg binary / encoders");                 \
      return;                                                               \
    }                                                                       \
  } while (0)

/// A "Key:   123 kB" line of /proc/self/status, in KiB (−1 when absent).
long long status_kib(const std::string& key) {
  std::ifstream f("/proc/self/status");
  for (std::string line; std::getline(f, line);)
    if (line.rfind(key, 0) == 0) return std::atoll(line.c_str() + key.size());
  return -1;
}

struct ScopedEnv {
  std::string name;
  ScopedEnv(const char* n, const char* v) : name(n) { ::setenv(n, v, 1); }
  ~ScopedEnv() { ::unsetenv(name.c_str()); }
};

std::vector<std::int64_t> reference_window(std::int64_t len, int frames, int step) {
  Rng r(0, 0);
  return data::sample_clip_indices(len, frames, step, r, false);
}

}  // namespace

BOOST_AUTO_TEST_CASE(video_frame_step_target_fps_and_every_frame) {
  REQUIRE_VIDEO();
  io::MediaOptions o;
  o.frames = 8;
  o.frame_step = 4;
  o.crop = 32;
  auto c = io::load_media(in().mp4, o);
  BOOST_TEST((c.kind == io::MediaKind::video));
  BOOST_TEST(c.indices == reference_window(60, 8, 4), boost::test_tools::per_element());  // linspace(0, 32, 8)
  BOOST_TEST(c.indices == std::vector<std::int64_t>({0, 4, 9, 13, 18, 22, 27, 31}), boost::test_tools::per_element());  // clipped to end − 1
  BOOST_TEST(c.frames == 8);
  BOOST_TEST(c.height == 32);
  BOOST_TEST(c.pixels.size() == static_cast<std::size_t>(3 * 8 * 32 * 32));
  BOOST_TEST(c.source_width == 96);
  BOOST_TEST(std::abs(c.native_fps - 30.0) < 1e-9);
  // The pixels are EvalTransform of the decoded frames.
  io::VideoReader vr(in().mp4.string());
  const auto px = data::EvalTransform{32}(vr.read_frames(c.indices));
  BOOST_TEST((px == c.pixels));

  o.frame_step = 0;
  o.target_fps = 4;  // 30 fps → step ceil(30) div 4 = 7
  c = io::load_media(in().mp4, o);
  BOOST_TEST(c.step == 7);
  BOOST_TEST(c.indices == reference_window(60, 8, 7), boost::test_tools::per_element());

  o.target_fps = 0;
  o.frames = 0;  // every 4th frame from 10: 13 frames, rounded down to the tubelet multiple 12
  o.frame_step = 4;
  o.start = 10;
  c = io::load_media(in().mp4, o);
  BOOST_TEST(c.frames == 12);
  BOOST_TEST(c.indices.front() == 10);
  BOOST_TEST(c.indices.back() == 54);

  // Matroska + MPEG-4 part 2, native size (crop = 0): only /255 and the ImageNet normalisation.
  io::MediaOptions n;
  n.frames = 4;
  n.crop = 0;
  c = io::load_media(in().mkv, n);
  BOOST_TEST(c.width == 80);
  BOOST_TEST(c.height == 48);
  BOOST_TEST(c.pixels.size() == static_cast<std::size_t>(3 * 4 * 48 * 80));
}

BOOST_AUTO_TEST_CASE(normalisation_and_padding) {
  REQUIRE_VIDEO();
  io::MediaOptions o;
  o.frames = 2;
  o.crop = 0;
  const auto c = io::load_media(in().red, o);  // lossless red: (255, 0, 0) up to colour conversion
  const std::size_t plane = static_cast<std::size_t>(c.height * c.width);
  const double want[3] = {(1.0 - 0.485) / 0.229, (0.0 - 0.456) / 0.224, (0.0 - 0.406) / 0.225};
  for (int ch = 0; ch < 3; ++ch) {
    double mean = 0;
    for (std::size_t i = 0; i < plane; ++i) mean += c.pixels[ch * 2 * plane + i];
    mean /= static_cast<double>(plane);
    BOOST_TEST(std::abs(mean - want[ch]) < 0.06, "channel " << ch << ": " << mean << " vs " << want[ch]);
  }
  // A 5-frame video asked for 8 frames at step 2: the reference pads with the last frame.
  io::MediaOptions p;
  p.frames = 8;
  p.frame_step = 2;
  p.crop = 0;
  const auto s = io::load_media(in().short5, p);
  BOOST_TEST(s.indices == reference_window(5, 8, 2), boost::test_tools::per_element());
  BOOST_TEST(s.frames == 8);
  const std::size_t fr = static_cast<std::size_t>(s.height * s.width);
  BOOST_TEST(std::equal(s.pixels.begin() + 7 * fr, s.pixels.begin() + 8 * fr, s.pixels.begin() + 6 * fr));
}

BOOST_AUTO_TEST_CASE(frame_folders_and_images) {
  io::MediaOptions o;
  o.frames = 4;
  o.frame_step = 3;
  o.crop = 0;
  auto c = io::load_media(in().frames, o);
  BOOST_TEST((c.kind == io::MediaKind::frame_folder));
  BOOST_TEST(c.indices == reference_window(10, 4, 3), boost::test_tools::per_element());
  const std::size_t plane = 32 * 48;
  for (std::size_t f = 0; f < 4; ++f) {  // blue channel of frame f = 20·index
    const double v = c.pixels[(2 * 4 + f) * plane];
    BOOST_TEST(std::abs(v - ((20.0 * c.indices[f] / 255.0 - 0.406) / 0.225)) < 1e-5);
  }
  o.frame_step = 0;
  o.target_fps = 5;
  BOOST_CHECK_THROW(io::load_media(in().frames, o), ConfigError);  // needs folder_fps
  o.folder_fps = 10;  // step = 10 div 5 = 2
  c = io::load_media(in().frames, o);
  BOOST_TEST(c.step == 2);

  // Images: PNG and JPEG, F = 1, EvalTransform (short side 32 → int(32·256/224) = 36, centre crop).
  const fs::path png = in().frames / "frame_003.png";
  io::MediaOptions im;
  im.crop = 32;
  c = io::load_media(png, im);
  BOOST_TEST((c.kind == io::MediaKind::image));
  BOOST_TEST(c.frames == 1);
  BOOST_TEST(c.width == 32);
  const auto ref = data::EvalTransform{32}({io::read_image(png.string())});
  BOOST_TEST((ref == c.pixels));
  io::RgbImage img(40, 30);
  for (auto& v : img.data) v = 128;
  const fs::path jpg = in().dir / "grey.JPG";
  BOOST_REQUIRE(stbi_write_jpg(jpg.c_str(), img.width, img.height, 3, img.data.data(), 95));
  im.crop = 0;
  c = io::load_media(jpg, im);
  BOOST_TEST(c.width == 40);
  BOOST_TEST(std::abs(c.pixels[0] - (128.0 / 255.0 - 0.485) / 0.229) < 0.02);
}

BOOST_AUTO_TEST_CASE(bad_inputs_name_the_file) {
  const auto io_err = [](const fs::path& p, std::initializer_list<std::string> words, const io::MediaOptions& o = {}) {
    std::vector<std::string> w(words);
    w.push_back(p.string());
    try {
      (void)io::load_media(p, o);
      BOOST_ERROR("no error for " << p);
    } catch (const IoError& e) {
      const std::string m = e.what();
      BOOST_TEST_MESSAGE(m);
      for (const auto& s : w) BOOST_TEST(m.find(s) != std::string::npos, "'" << s << "' not in: " << m);
    }
  };
  io_err(in().dir / "missing.mp4", {"does not exist"});
  io_err(in().junk, {"jepa: "});
  io_err(in().text_png, {"is not a readable image (stb: unknown image type"});
  io_err(in().empty, {"holds no image files"});
  io::MediaOptions two;
  two.frames = 2;
  two.frame_step = 1;
  io_err(in().mixed, {"frame_001.png", "40x32", "48x32"}, two);
  test::expect_error<ConfigError>([] { io::MediaOptions o; o.frames = -1; o.validate(); }, {"MediaOptions.frames"});
  if (in().video) {
    io::MediaOptions late;
    late.start = 100;
    test::expect_error<ConfigError>([&] { (void)io::load_media(in().mp4, late); }, {"MediaOptions.start", "60 frames"});
  }
}

// A 16000x16000 single-frame video asked for 8 frames at crop 64: every frame is shrunk as it is
// decoded, so the peak is one decoded frame and one RGB frame (about 1.1 GiB), not one
// full-resolution copy per requested frame (8 x 732 MiB, which the kernel's OOM killer ended).
BOOST_AUTO_TEST_CASE(huge_frame_is_shrunk_as_it_is_decoded) {
  REQUIRE_VIDEO();
  const fs::path big = in().dir / "big16k.avi";  // 1.5 MB on disk; ffmpeg needs about 1.4 GB to make it
  if (!sh("ffmpeg -nostdin -v error -y -f lavfi -i color=c=red:s=16000x16000 -frames:v 1 -c:v mjpeg -pix_fmt yuvj420p " + q(big))) {
    jepa::test::skip_case("ffmpeg could not make a 16000x16000 MJPEG frame");
    return;
  }
  io::MediaOptions o;
  o.frames = 8;
  o.crop = 64;
  std::ofstream reset("/proc/self/clear_refs");  // "5": VmHWM := VmRSS (Linux >= 4.0)
  reset << "5";
  reset.close();
  if (reset.fail()) BOOST_TEST_MESSAGE("note: /proc/self/clear_refs not writable; the peak includes earlier tests");
  const long long before = status_kib("VmRSS:");
  io::MediaClip c;
  try {
    c = io::load_media(big, o);
  } catch (const MemoryError& e) {  // a machine with less than about 1.2 GB free: refused, not killed
    jepa::test::skip_case(e.what());
    return;
  }
  const long long peak = status_kib("VmHWM:");
  BOOST_TEST(c.frames == 8);
  BOOST_TEST(c.source_width == 16000);
  BOOST_TEST(c.pixels.size() == 3u * 8 * 64 * 64);
  const float red = (1.0f - 0.485f) / 0.229f;
  for (std::size_t f = 0; f < 8; ++f) BOOST_TEST(std::abs(c.pixels[f * 64 * 64 + 100] - red) < 0.05f);
  const long long frame_kib = 16000LL * 16000 * 3 / 1024;
  BOOST_TEST_MESSAGE("peak growth " << (peak - before) / 1024 << " MiB; one RGB frame is " << frame_kib / 1024 << " MiB");
  if (before > 0 && peak > 0) BOOST_TEST(peak - before < 2 * frame_kib, "decoding held " << (peak - before) / 1024 << " MiB");
}

// The output clip is sized and checked before decoding: crop = 0 keeps 4000x4000 frames, 16 of
// them are 3 GiB of floats — refused under a 1 GiB budget, naming the file and the options.
BOOST_AUTO_TEST_CASE(output_clip_checked_against_memory) {
  REQUIRE_VIDEO();
  const fs::path p = in().dir / "large4k.avi";
  BOOST_REQUIRE(sh("ffmpeg -nostdin -v error -y -f lavfi -i color=c=blue:s=4000x4000 -frames:v 1 -c:v mjpeg -pix_fmt yuvj420p " + q(p)));
  ScopedEnv limit("JEPA_MEMORY_LIMIT", "1G");
  io::MediaOptions o;
  o.frames = 16;
  o.crop = 0;
  test::expect_error<MemoryError>([&] { (void)io::load_media(p, o); },
                                  {p.string(), "3x16x4000x4000 floats", "MediaOptions.crop", "JEPA_MEMORY_LIMIT"});
  o.crop = 64;  // the same file at the model's size fits
  BOOST_TEST(io::load_media(p, o).pixels.size() == 3u * 16 * 64 * 64);
}
