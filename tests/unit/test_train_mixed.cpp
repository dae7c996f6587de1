// Training loop, V-JEPA 2.1 mixed batches and gradient accumulation: one optimizer step over
// micro-batches of videos and images is exactly the mean of the micro-batches' gradients
//   g = (1/P) Σ_p ∇L_p,   P = micro_batches · (image_batch > 0 ? 2 : 1)
// (recomputed here by hand from the model's forward_loss/backward, with the trainer's masks and data
// positions); images go through the image tokenizer (its parameters are trained only when images are
// fed); and a mixed run resumes bitwise, both data positions included.
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <unistd.h>

#include "jepa/models/jepa_presets.hpp"
#include "jepa/train/checkpoint.hpp"
#include "jepa/train/trainer.hpp"

using namespace jepa;
namespace P = jepa::models::presets;

namespace {
constexpr index_t kFrames = 4, kSize = 64, kVideos = 2, kImages = 2;

train::TrainConfig mixed_run(const std::string& dir, std::uint64_t steps, index_t micro_batches, index_t images) {
  train::TrainConfig c;
  auto pre = train::Recipes::vjepa2_pretrain(1, steps);
  pre.lr.cosine.warmup = 1;
  c.stages = {pre};
  c.data = {{kFrames, kSize, kVideos, images}};
  c.micro_batches = micro_batches;
  c.out_dir = dir;
  c.progress = false;
  return c;
}
std::filesystem::path temp_dir(const char* name) {
  auto d = std::filesystem::temp_directory_path() / (std::string("jepa_test_") + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}
template <class T>
bool same(const nn::ParameterSet<T>& a, const nn::ParameterSet<T>& b) {
  return a.numel() == b.numel() && std::memcmp(a.data(), b.data(), a.numel() * sizeof(T)) == 0;
}
/// Max |a − b| over the named tensor of two parameter sets.
template <class T>
double max_diff(const nn::ParameterSet<T>& a, const nn::ParameterSet<T>& b, const std::string& name) {
  const auto& info = a.layout().find(name);
  double m = 0;
  for (std::size_t i = 0; i < info.numel(); ++i) m = std::max(m, std::abs(double(a[name][i]) - double(b[name][i])));
  return m;
}
}  // namespace

BOOST_AUTO_TEST_CASE(mixed_step_is_the_mean_of_its_micro_batches) {
  const auto dir = temp_dir("mixed_mean");
  const train::SyntheticSource videos{7}, images{8};
  auto a = P::vjepa2_1<P::vit_micro>();
  a.init(239);
  auto b = P::vjepa2_1<P::vit_micro>();  // same initial weights, for the hand computation
  b.init(239);
  train::Trainer ta(a, videos, mixed_run(dir.string(), 3, 2, kImages), &images);
  const auto log = ta.step();
  BOOST_REQUIRE(!log.skipped);
  BOOST_TEST(ta.state().video_position == 2u * kVideos);  // 2 micro-batches of each modality
  BOOST_TEST(ta.state().image_position == 2u * kImages);

  // By hand: the same four micro-batches (video, image, video, image) with the trainer's masks.
  b.zero_grad();
  double loss = 0;
  std::vector<std::string> skipped;
  for (std::uint64_t mb = 0; mb < 2; ++mb) {
    for (const bool image : {false, true}) {
      const models::InputGeometry g{image ? 1 : kFrames, kSize, kSize};
      const index_t B = image ? kImages : kVideos;
      std::vector<float> clip(static_cast<std::size_t>(B * 3 * g.frames * g.height * g.width));
      (image ? images : videos).fill(mb * static_cast<std::uint64_t>(B), B, g, clip.data(), skipped);
      const auto& masking = image ? static_cast<const masking::Multiblock3d&>(ta.image_masking) : b.masking();
      auto masks = masking.sample(b.encoder().grid(g), b.mask_seed, mb, B);
      const auto rep = b.forward_loss(TensorView<const float, 5>(clip.data(), {B, 3, g.frames, g.height, g.width}), 0,
                                      std::move(masks), image ? models::Modality::image : models::Modality::video);
      b.backward();
      loss += rep.loss / 4;
    }
  }
  double sq = 0;
  for (auto* g : {&b.encoder_grads(), &b.predictor_grads()})
    for (std::size_t i = 0; i < g->numel(); ++i) {
      g->data()[i] = static_cast<float>(g->data()[i] * 0.25);
      sq += double(g->data()[i]) * double(g->data()[i]);
    }
  BOOST_TEST(log.loss == loss, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(log.grad_norm == std::sqrt(sq), boost::test_tools::tolerance(1e-6));
  BOOST_TEST(skipped.empty());

  // The image tokenizer received gradient (and the AdamW step moved it) in the mixed run ...
  auto before = [] {
    auto m = P::vjepa2_1<P::vit_micro>();
    m.init(239);
    return m;
  }();
  BOOST_TEST(max_diff(a.encoder_params(), before.encoder_params(), "patch_embed_img.proj.weight") > 0.0);
  BOOST_TEST(max_diff(a.encoder_params(), before.encoder_params(), "patch_embed.proj.weight") > 0.0);
  // ... and not in a video-only run (AdamW leaves tensors with an all-zero gradient untouched).
  auto v = P::vjepa2_1<P::vit_micro>();
  v.init(239);
  train::Trainer tv(v, videos, mixed_run(dir.string(), 3, 1, 0));
  tv.run(2);
  BOOST_TEST(max_diff(v.encoder_params(), before.encoder_params(), "patch_embed_img.proj.weight") == 0.0);
  BOOST_TEST(max_diff(v.encoder_params(), before.encoder_params(), "patch_embed.proj.weight") > 0.0);
  BOOST_TEST(tv.state().image_position == 0u);
  std::filesystem::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(mixed_resume_is_bitwise) {
  const auto dir = temp_dir("mixed_resume");
  const auto ckpt = (dir / "checkpoint.safetensors").string();
  const train::SyntheticSource videos{7}, images{8};
  auto a = P::vjepa2_1<P::vit_micro>();
  a.init(239);
  train::Trainer ta(a, videos, mixed_run(dir.string(), 4, 1, kImages), &images);
  ta.run();
  {
    auto b = P::vjepa2_1<P::vit_micro>();
    b.init(239);
    train::Trainer tb(b, videos, mixed_run(dir.string(), 4, 1, kImages), &images);
    tb.run(2);
    train::save_checkpoint(ckpt, b, tb);
  }
  auto c = P::vjepa2_1<P::vit_micro>();
  c.init(1);
  train::Trainer tc(c, videos, mixed_run(dir.string(), 4, 1, kImages), &images);
  train::load_checkpoint(ckpt, c, tc);
  BOOST_TEST(tc.state().image_position == 2u * kImages);
  BOOST_TEST(tc.state().video_position == 2u * kVideos);
  tc.run();
  BOOST_REQUIRE_EQUAL(tc.history().size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) BOOST_TEST(tc.history()[i].loss == ta.history()[i].loss, "step " << i + 1);
  BOOST_TEST(same(c.encoder_params(), a.encoder_params()));
  BOOST_TEST(same(c.target_params(), a.target_params()));
  BOOST_TEST(same(c.predictor_params(), a.predictor_params()));
  std::filesystem::remove_all(dir);
}
