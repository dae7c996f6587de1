// Golden facts from recipe_facts.md §10 (token counts, RoPE splits and pairings, parameter counts
// of every preset, sin-cos values, 2.1 taps) checked against the library's own types.
#include <boost/test/unit_test.hpp>
#include <cmath>

#include "jepa/jepa.hpp"
#include "support/check.hpp"

using namespace jepa;
using namespace jepa::models;
namespace P = jepa::models::presets;

BOOST_AUTO_TEST_CASE(token_counts) {
  P::VJepa2Encoder<P::vit_large> v2(P::vjepa2_config(P::vit_large));
  BOOST_TEST(v2.grid({16, 224, 224}).size() == 1568);
  BOOST_TEST(v2.grid({16, 256, 256}).size() == 2048);
  BOOST_TEST(v2.grid({64, 256, 256}).size() == 8192);
  BOOST_TEST(v2.grid({16, 384, 384}).size() == 4608);
  BOOST_TEST(v2.grid({64, 384, 384}).size() == 18432);
  P::VJepa21Encoder<P::vit_base> v21(P::vjepa21_config(P::vit_base));
  BOOST_TEST(v21.grid({1, 384, 384}).size() == 576);  // the 2.1 image tokenizer
  BOOST_TEST(v21.grid({1, 256, 256}).size() == 256);
  BOOST_TEST(v21.grid({16, 384, 384}).size() == 4608);
  P::IJepaEncoder<P::vit_huge> ij(P::ijepa_config(P::vit_huge));
  BOOST_TEST(ij.grid({1, 224, 224}).size() == 256);
}

namespace {
/// Independent closed form: patch embed + depth·(4D² + 2D·Hd + 9D + Hd) + outputs.
std::size_t formula(const P::EncoderShape& s, index_t kernel, bool final_norm) {
  const std::size_t D = s.embed_dim, Hd = s.mlp_hidden;
  return D * kernel + D + s.depth * (4 * D * D + 2 * D * Hd + 9 * D + Hd) + (final_norm ? 2 * D : 0);
}
template <const P::EncoderShape& S>
void check_all_families() {
  P::VJepa2Encoder<S> v2(P::config(S));
  BOOST_TEST(v2.param_count() == formula(S, 3 * 2 * 16 * 16, true), S.name);
  P::VJepa21Encoder<S> v21(P::vjepa21_config(S));
  BOOST_TEST(v21.param_count() == formula(S, 3 * 2 * 16 * 16, false) + S.embed_dim * (3 * 256 + 1) +
                                      4 * 2 * S.embed_dim + 2 * S.embed_dim,
             S.name);
  P::IJepaEncoder<S> ij(P::config(S));
  BOOST_TEST(ij.param_count() == formula(S, 3 * 14 * 14, true), S.name);
  BOOST_TEST_MESSAGE(S.name << ": V-JEPA 2 " << v2.param_count() << ", V-JEPA 2.1 " << v21.param_count()
                            << ", I-JEPA/14 " << ij.param_count());
}
}  // namespace

BOOST_AUTO_TEST_CASE(parameter_counts) {
  // §10.2: V-JEPA 2 video encoders (RoPE, Conv3d 2×16×16, final LN).
  BOOST_TEST(P::VJepa2Encoder<P::vit_base>(P::config(P::vit_base)).param_count() == 86'236'416u);
  BOOST_TEST(P::VJepa2Encoder<P::vit_large>(P::config(P::vit_large)).param_count() == 303'885'312u);
  BOOST_TEST(P::VJepa2Encoder<P::vit_huge>(P::config(P::vit_huge)).param_count() == 631'648'000u);
  BOOST_TEST(P::VJepa2Encoder<P::vit_giant_xformers>(P::config(P::vit_giant_xformers)).param_count() ==
             1'012'173'952u);
  // §10.3: 2.1 encoders with patch_embed_img, 4 norms_block and 2 modality embeddings, no final norm.
  BOOST_TEST(P::VJepa21Encoder<P::vit_base>(P::vjepa21_config(P::vit_base)).param_count() == 86'833'152u);
  BOOST_TEST(P::VJepa21Encoder<P::vit_large>(P::vjepa21_config(P::vit_large)).param_count() == 304'680'960u);
  BOOST_TEST(P::VJepa21Encoder<P::vit_giant_xformers>(P::vjepa21_config(P::vit_giant_xformers)).param_count() ==
             1'013'267'968u);
  BOOST_TEST(P::VJepa21Encoder<P::vit_gigantic_xformers>(P::vjepa21_config(P::vit_gigantic_xformers)).param_count() ==
             1'845'216'768u);
  // Every preset in every family agrees with the closed form (nothing is allocated to count).
  check_all_families<P::vit_tiny>();
  check_all_families<P::vit_small>();
  check_all_families<P::vit_base>();
  check_all_families<P::vit_large>();
  check_all_families<P::vit_huge>();
  check_all_families<P::vit_giant>();
  check_all_families<P::vit_giant_xformers>();
  check_all_families<P::vit_gigantic>();
  check_all_families<P::vit_gigantic_xformers>();
}

BOOST_AUTO_TEST_CASE(preset_shapes) {
  // §10.4: hidden widths are exact products; head dims of the _xformers variants are 64.
  BOOST_TEST(P::vit_giant.mlp_hidden == static_cast<index_t>(1408.0 * 48.0 / 11.0));
  BOOST_TEST(P::vit_gigantic.mlp_hidden == static_cast<index_t>(1664.0 * 64.0 / 13.0));
  BOOST_TEST(P::vit_giant_xformers.head_dim() == 64);
  BOOST_TEST(P::vit_gigantic_xformers.head_dim() == 64);
  BOOST_TEST(P::vit_huge.head_dim() == 80);
  BOOST_TEST(P::vit_giant.head_dim() == 88);
  BOOST_TEST(P::vit_gigantic.head_dim() == 104);
}

BOOST_AUTO_TEST_CASE(rope_split_and_frequencies) {
  // §10.7
  BOOST_TEST(nn::rope_axis_channels(64) == 20);
  BOOST_TEST(nn::rope_axis_channels(80) == 26);
  BOOST_TEST(nn::rope_axis_channels(32) == 10);
  BOOST_TEST(nn::rope_axis_channels(88) == 28);
  BOOST_TEST(nn::rope_axis_channels(104) == 34);
  // Token n = H'W' sits at d = 1, h = w = 0, so channel 2k of the d-block (interleaved) has angle ω_k.
  const nn::TokenGrid g{2, 4, 4};
  const std::int64_t n = 16;
  std::vector<double> c(60), s(60);
  nn::rope_tables(&n, 1, g, 64, nn::RopePairing::interleaved, 0, c.data(), s.data());
  const double expect[] = {1.0, 0.398107, 0.158489, 0.063096};
  for (int k = 0; k < 4; ++k) BOOST_TEST(std::atan2(s[2 * k], c[2 * k]) == expect[k], boost::test_tools::tolerance(1e-5));
  BOOST_TEST(std::atan2(s[18], c[18]) == 0.000251, boost::test_tools::tolerance(2e-3));
  // h and w blocks are at position 0: cos 1, sin 0.
  for (int j = 20; j < 60; ++j) BOOST_TEST((c[j] == 1.0 && s[j] == 0.0));
}

BOOST_AUTO_TEST_CASE(rope_pairing_golden) {
  // §10.8: 20-wide block (head dim 64), pos = 1 on the depth axis.
  const nn::TokenGrid g{2, 4, 4};
  const std::int64_t n = 16;
  auto rotate = [&](nn::RopePairing pr, int unit) {
    std::vector<double> c(60), s(60), x(64, 0.0);
    nn::rope_tables(&n, 1, g, 64, pr, 0, c.data(), s.data());
    x[unit] = 1.0;
    backend::Cpu::rope_forward(x.data(), 1, 1, 64, 64, 60, c.data(), s.data());
    return std::pair{x[0], x[1]};
  };
  const auto tol = boost::test_tools::tolerance(1e-5);
  auto [a0, a1] = rotate(nn::RopePairing::tiled, 0);
  BOOST_TEST(a0 == 0.540302, tol);
  BOOST_TEST(a1 == 0.387674, tol);
  auto [b0, b1] = rotate(nn::RopePairing::interleaved, 0);
  BOOST_TEST(b0 == 0.540302, tol);
  BOOST_TEST(b1 == 0.841471, tol);
  auto [c0, c1] = rotate(nn::RopePairing::tiled, 1);
  BOOST_TEST(c0 == -0.841471, tol);
  BOOST_TEST(c1 == 0.921796, tol);
  auto [d0, d1] = rotate(nn::RopePairing::interleaved, 1);
  BOOST_TEST(d0 == -0.841471, tol);
  BOOST_TEST(d1 == 0.540302, tol);
  // The interleaved pairing is a rotation (norm preserved); the tiled one is not.
  for (auto pr : {nn::RopePairing::tiled, nn::RopePairing::interleaved}) {
    std::vector<double> c(60), s(60);
    nn::rope_tables(&n, 1, g, 64, pr, 0, c.data(), s.data());
    auto x = test::random_vector<double>(64, 3);
    double n0 = 0, n1 = 0;
    for (double v : x) n0 += v * v;
    backend::Cpu::rope_forward(x.data(), 1, 1, 64, 64, 60, c.data(), s.data());
    for (double v : x) n1 += v * v;
    if (pr == nn::RopePairing::interleaved) BOOST_TEST(n1 == n0, boost::test_tools::tolerance(1e-12));
    else BOOST_TEST(std::abs(n1 - n0) > 1e-3 * n0);
  }
}

BOOST_AUTO_TEST_CASE(rope_interpolation_2_1) {
  // §1.5.4: at 384 px (H' = 24) with G0 = 16, h ∈ [0, 23] maps onto [0, 15]; time is untouched.
  const nn::TokenGrid g{8, 24, 24};
  double pos[3];
  nn::rope_position(3 * 576 + 23 * 24 + 23, g, 16, pos);
  BOOST_TEST(pos[0] == 3.0);
  BOOST_TEST(pos[1] == 15.0, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(pos[2] == 15.0, boost::test_tools::tolerance(1e-12));
  nn::rope_position(1 * 24 + 2, g, 16, pos);
  BOOST_TEST(pos[1] == 15.0 / 23.0, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(pos[2] == 30.0 / 23.0, boost::test_tools::tolerance(1e-12));
  nn::rope_position(5 * 16 + 7, nn::TokenGrid{8, 16, 16}, 16, pos);  // identity at 256 px
  BOOST_TEST((pos[1] == 5.0 && pos[2] == 7.0));
}

BOOST_AUTO_TEST_CASE(sincos_tables) {
  // §10.9: uniform power, D = 384 → 128 channels per axis; token (d=1, h=0, w=0).
  const auto t = nn::sincos_3d_table<double>(384, 2, 2, 2, true);
  const double* row = t.data() + 4 * 384;  // n = 1·(2·2) + 0 + 0
  const auto tol = boost::test_tools::tolerance(1e-6);
  BOOST_TEST(row[0] == 0.841471, tol);
  BOOST_TEST(row[64] == 0.540302, tol);
  BOOST_TEST(row[128] == 0.0);
  BOOST_TEST(row[192] == 1.0);
  // D = 1024 → 342 per axis; the table is [d | h | w] truncated to 1024, dropping the last two
  // w channels (its highest cosines).
  const auto big = nn::sincos_3d_table<double>(1024, 1, 1, 3, true);
  std::vector<double> w1d(342);
  nn::sincos_1d(2.0, 342, w1d.data());
  for (int j = 0; j < 340; ++j) BOOST_TEST(big[2 * 1024 + 684 + j] == w1d[j]);
  // 2-D I-JEPA order: first half encodes the column.
  const auto t2 = nn::sincos_2d_table<double>(8, 2, 3, nn::SinCos2dOrder::col_row);
  const double* r = t2.data() + (1 * 3 + 2) * 8;  // h = 1, w = 2
  BOOST_TEST(r[0] == std::sin(2.0), tol);
  BOOST_TEST(r[4] == std::sin(1.0), tol);
}

BOOST_AUTO_TEST_CASE(taps_2_1) {
  // §10.20
  BOOST_TEST((std::is_same_v<default_taps_t<12>, HierarchicalTaps<2, 5, 8, 11>>));
  BOOST_TEST((std::is_same_v<default_taps_t<24>, HierarchicalTaps<5, 11, 17, 23>>));
  BOOST_TEST((std::is_same_v<default_taps_t<40>, HierarchicalTaps<9, 19, 29, 39>>));
  BOOST_TEST((std::is_same_v<default_taps_t<48>, HierarchicalTaps<11, 23, 37, 47>>));
  P::VJepa21Encoder<P::vit_large> e(P::vjepa21_config(P::vit_large));
  for (int j = 0; j < 4; ++j) BOOST_TEST(e.layout().contains("norms_block." + std::to_string(j)  + ".weight"));
  BOOST_TEST(!e.layout().contains("norm.weight"));
  BOOST_TEST(e.layout().find("patch_embed_img.proj.weight").shape == (Shape{1024, 3, 1, 16, 16}));
  BOOST_TEST(e.layout().find("patch_embed.proj.weight").shape == (Shape{1024, 3, 2, 16, 16}));
  BOOST_TEST(e.layout().find("img_mod_embed").shape == (Shape{1, 1, 1024}));
}

BOOST_AUTO_TEST_CASE(checkpoint_key_names_and_init) {
  // §8.3 names and §1.3 init: trunc-normal 0.02, biases 0, LN 1/0, residual rescale 1/√(2l).
  P::VJepa2Encoder<P::vit_small> e(P::config(P::vit_small));
  const auto& L = e.layout();
  BOOST_TEST(L.find("blocks.3.attn.qkv.weight").shape == (Shape{1152, 384}));
  BOOST_TEST(L.find("blocks.11.mlp.fc1.weight").shape == (Shape{1536, 384}));
  BOOST_TEST(L.find("norm.bias").shape == (Shape{384}));
  BOOST_TEST(L.find("blocks.3.attn.proj.weight").scale == 1.0 / std::sqrt(8.0), boost::test_tools::tolerance(1e-15));
  BOOST_TEST(L.find("blocks.0.mlp.fc2.weight").scale == 1.0 / std::sqrt(2.0), boost::test_tools::tolerance(1e-15));
  BOOST_TEST(L.find("blocks.0.mlp.fc1.weight").scale == 1.0);
  BOOST_TEST(!L.find("blocks.0.norm1.weight").weight_decay);
  BOOST_TEST(!L.find("blocks.0.attn.qkv.bias").weight_decay);
  BOOST_TEST(L.find("blocks.0.attn.qkv.weight").weight_decay);
  nn::ParameterSet<float> Pm(L);
  Pm.init(7);
  const auto& qkv = L.find("blocks.0.attn.qkv.weight");
  double s = 0, s2 = 0;
  for (std::size_t i = 0; i < qkv.numel(); ++i) s += Pm.data()[qkv.offset + i], s2 += double(Pm.data()[qkv.offset + i]) * Pm.data()[qkv.offset + i];
  const double mean = s / qkv.numel(), sd = std::sqrt(s2 / qkv.numel() - mean * mean);
  BOOST_TEST(std::abs(mean) < 1e-3);
  BOOST_TEST(sd == 0.02, boost::test_tools::tolerance(0.01));
  BOOST_TEST(Pm["blocks.5.norm2.weight"][17] == 1.0f);
  BOOST_TEST(Pm["blocks.5.mlp.fc1.bias"][3] == 0.0f);
}
