// bf16 GEMMs on the CPU (backend/cpu/gemm.hpp, set_matmul_precision) against fp32, within the bands
// docs/design.md states:
//   inference  encoder output, per token: cosine(bf16, fp32) ≥ 0.999 (the worst token of the batch);
//   training   40 steps of the main job's model (8 clips of 8×64² per step, so that its larger
//              products reach the bf16 threshold) from the same start: every step's loss within 2 % of
//              the fp32 run's (bf16 rounds the GEMM inputs; master weights, AdamW moments, LayerNorm,
//              softmax and the loss stay fp32), and the loss still falls.
// Where bf16 cannot run (no oneDNN, or a CPU without AVX512-BF16/AMX) the same checks hold trivially
// (the GEMMs fall back to fp32) and the test says so in its log.
//   attention  the bf16 attention forward (backend/cpu/attention_bf16.hpp) against the fp32 flash
//              kernel: per-row cosine ≥ 0.999, |Δlse| ≤ 1e-2.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <filesystem>
#include <unistd.h>

#include "jepa/jepa.hpp"
#include "jepa/models/jepa_presets.hpp"
#include "jepa/train/trainer.hpp"
#include "support/check.hpp"
#include "support/encoder_fixture.hpp"
#include "support/fixtures.hpp"

using namespace jepa;
using namespace jepa::models;
using backend::cpu::MatmulPrecision;
using backend::cpu::ScopedMatmulPrecision;
using backend::AttnMask;
using backend::AttnOperand;
using backend::AttnShape;

namespace {

/// The worst and the mean per-token cosine between two (tokens, D) outputs.
std::pair<double, double> token_cosines(const float* a, const float* b, index_t tokens, index_t D) {
  double worst = 1, sum = 0;
  for (index_t t = 0; t < tokens; ++t) {
    double ab = 0, aa = 0, bb = 0;
    for (index_t d = 0; d < D; ++d) {
      ab += double(a[t * D + d]) * b[t * D + d];
      aa += double(a[t * D + d]) * a[t * D + d];
      bb += double(b[t * D + d]) * b[t * D + d];
    }
    const double c = ab / std::sqrt(aa * bb);
    worst = std::min(worst, c);
    sum += c;
  }
  return {worst, sum / tokens};
}

void log_precision() {
  ScopedMatmulPrecision bf16(MatmulPrecision::bf16);
  BOOST_TEST_MESSAGE("GEMM with bf16 asked: " << backend::cpu::gemm_report());
}

}  // namespace

BOOST_AUTO_TEST_CASE(vit_small_image_bf16_within_cosine_band) {
  log_precision();
  using Enc = presets::VJepa2Encoder<presets::vit_small>;
  Enc enc(presets::vjepa2_config(presets::vit_small));
  nn::ParameterSet<float> P(enc.layout());
  P.init(3);
  const index_t B = 2;
  const InputGeometry geom{2, 224, 224};  // an image: 196 tokens
  std::vector<float> clip(static_cast<std::size_t>(B * 3 * 2 * 224 * 224));
  test::fill_normal(clip.data(), clip.size(), 5);
  const TensorView<const float, 5> cv(clip.data(), {B, 3, 2, 224, 224});
  auto st = enc.make_state(Mode::inference, B, geom);
  const index_t N = enc.grid(geom).size(), D = presets::vit_small.embed_dim;
  enc.forward(P.data(), cv, nullptr, st);
  const std::vector<float> f32(enc.output(st).data(), enc.output(st).data() + B * N * D);
  {
    ScopedMatmulPrecision bf16(MatmulPrecision::bf16);
    enc.forward(P.data(), cv, nullptr, st);
  }
  const auto [worst, mean] = token_cosines(enc.output(st).data(), f32.data(), B * N, D);
  BOOST_TEST_MESSAGE("ViT-S/16 image, bf16 vs fp32: worst token cosine " << worst << ", mean " << mean);
  BOOST_TEST(worst >= 0.999);
  if (backend::cpu::gemm_setup().onednn_bf16 && backend::cpu::gemm_setup().provider == backend::cpu::GemmProvider::onednn)
    BOOST_TEST(worst < 1.0 - 1e-7);  // it ran bf16: the outputs are not the fp32 ones
}

BOOST_AUTO_TEST_CASE(reference_fixture_bf16_within_cosine_band) {
  // The PyTorch reference's own weights and output (tools/make_encoder_fixtures.py): bf16 against the
  // reference, not only against our fp32.
  const auto dir = test::fixture_dir("vjepa2_tiny");
  const auto cfgj = test::load_json(dir / "config.json");
  const VitConfig cfg = test::encoder_fixture_config(cfgj);
  using Enc = VitEncoder<2, tokenizers::Tubelet<2, 8>, RopeTiled, FinalNorm, float>;
  Enc enc(cfg);
  nn::ParameterSet<float> P(enc.layout());
  BOOST_REQUIRE_EQUAL(test::load_params(enc.layout(), P.data(), dir), enc.layout().params().size());
  const index_t B = cfgj["batch"];
  const InputGeometry geom{cfgj["frames"], cfgj["height"], cfgj["width"]};
  const auto clip = test::as<float>(test::load_array(dir / "input.npy"));
  const TensorView<const float, 5> cv(clip.data(), {B, 3, geom.frames, geom.height, geom.width});
  const auto ref = test::as<float>(test::load_array(dir / "full_out.npy"));
  auto st = enc.make_state(Mode::inference, B, geom);
  ScopedMatmulPrecision bf16(MatmulPrecision::bf16);
  enc.forward(P.data(), cv, nullptr, st);
  const index_t D = cfg.embed_dim, N = enc.grid(geom).size();
  BOOST_REQUIRE_EQUAL(ref.size(), static_cast<std::size_t>(B * N * D));
  const auto [worst, mean] = token_cosines(enc.output(st).data(), ref.data(), B * N, D);
  BOOST_TEST_MESSAGE("vjepa2_tiny fixture, bf16 vs the PyTorch reference: worst token cosine " << worst << ", mean " << mean);
  BOOST_TEST(worst >= 0.999);
}

BOOST_AUTO_TEST_CASE(training_losses_within_band_of_fp32) {
  log_precision();
  namespace Pr = jepa::models::presets;
  auto run = [](MatmulPrecision p) {
    ScopedMatmulPrecision scope(p);
    auto model = Pr::vjepa2<Pr::vit_micro>();
    model.init(239);
    train::SyntheticSource src{7};
    train::TrainConfig c;
    c.stages = {train::Recipes::vjepa2_pretrain(1, 40)};
    c.stages[0].lr.cosine.warmup = 5;
    c.data = {{8, 64, 8, 0}};  // 8 clips of 8×64²: the qkv and MLP products reach the bf16 threshold
    const auto dir = std::filesystem::temp_directory_path() / ("jepa_test_bf16_" + std::to_string(::getpid()));
    c.out_dir = dir.string();
    c.progress = false;
    train::Trainer t(model, src, c);
    t.run();
    std::filesystem::remove_all(dir);
    std::vector<double> losses;
    for (const auto& s : t.history()) losses.push_back(s.loss);
    return losses;
  };
  const auto f32 = run(MatmulPrecision::f32);
  const auto bf16 = run(MatmulPrecision::bf16);
  BOOST_REQUIRE_EQUAL(f32.size(), 40u);
  BOOST_REQUIRE_EQUAL(bf16.size(), 40u);
  double worst = 0;
  for (std::size_t i = 0; i < f32.size(); ++i) worst = std::max(worst, std::abs(bf16[i] - f32[i]) / f32[i]);
  BOOST_TEST_MESSAGE("40 steps, vit_micro: worst relative loss difference bf16 vs fp32 " << worst << "; loss "
                     << f32.front() << " -> " << f32.back() << " (fp32), " << bf16.front() << " -> " << bf16.back()
                     << " (bf16)");
  BOOST_TEST(worst <= 0.02);
  BOOST_TEST(bf16.back() < bf16.front());
  if (backend::cpu::gemm_setup().provider == backend::cpu::GemmProvider::onednn && backend::cpu::gemm_setup().onednn_bf16)
    BOOST_TEST(worst > 0.0);  // bf16 really ran in some products
}

BOOST_AUTO_TEST_CASE(bf16_attention_within_band_of_the_fp32_flash_kernel) {
  // q, k, v inside a packed qkv buffer (the encoder's layout), 200 queries: three full 64-row blocks
  // and a tail of 8.
  const index_t B = 2, H = 3, N = 200, Dh = 64, D = H * Dh;
  std::vector<float> qkv(static_cast<std::size_t>(B * N * 3 * D));
  test::fill_normal(qkv.data(), qkv.size(), 21);
  const AttnShape s{B, H, N, N, Dh, 1.0 / std::sqrt(double(Dh))};
  auto op = [&](index_t part) { return AttnOperand<const float>{qkv.data() + part * D, N * 3 * D, 3 * D, Dh}; };
  std::vector<float> o32(static_cast<std::size_t>(B * N * D)), o16(o32.size()), l32(B * H * N), l16(l32.size());
  const AttnOperand<float> out32{o32.data(), N * D, D, Dh}, out16{o16.data(), N * D, D, Dh};
  backend::Cpu::attention_forward<float>(s, op(0), op(1), op(2), out32, l32.data(), AttnMask::full());
  bool ran = false;
  {
    ScopedMatmulPrecision bf16(MatmulPrecision::bf16);
    // The kernel itself (the backend takes it only on AMX, where it pays).
    ran = backend::cpu::attention_bf16_forward<float>(s, op(0), op(1), op(2), out16, l16.data(), AttnMask::full(),
                                                      /*only_where_it_pays=*/false);
    // Masks keep the fp32 kernel.
    BOOST_TEST(!backend::cpu::attention_bf16_forward<float>(s, op(0), op(1), op(2), out16, l16.data(),
                                                             AttnMask::causal_mask(), false));
  }
  BOOST_TEST(ran == (backend::cpu::gemm_setup().provider == backend::cpu::GemmProvider::onednn &&
                     backend::cpu::gemm_setup().onednn_bf16));
  if (!ran) return;
  const auto [worst, mean] = token_cosines(o16.data(), o32.data(), B * N * H, Dh);
  double lse_err = 0;
  for (std::size_t i = 0; i < l32.size(); ++i) lse_err = std::max(lse_err, double(std::abs(l16[i] - l32[i])));
  BOOST_TEST_MESSAGE("bf16 attention vs fp32 flash: worst row cosine " << worst << ", mean " << mean
                     << ", max |Δlse| " << lse_err);
  BOOST_TEST(worst >= 0.999);
  BOOST_TEST(worst < 1.0 - 1e-7);  // bf16 really ran
  BOOST_TEST(lse_err <= 1e-2);
}
