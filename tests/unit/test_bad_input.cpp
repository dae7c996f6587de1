// Bad input of every kind gets a jepa:: exception whose message names what was wrong and what is
// allowed; nothing crashes. (The out-of-range tap index is a compile-time error: see
// tests/compile_fail/ko_tap_index_out_of_range.cpp.)
#include <boost/test/unit_test.hpp>

#include "support/errors.hpp"
#include <string>

#include "jepa/jepa.hpp"

using namespace jepa;
using namespace jepa::models;

namespace {
using Enc = VitEncoder<2, tokenizers::Tubelet<2, 8>, RopeTiled, FinalNorm, float>;

VitConfig tiny() {
  VitConfig c;
  c.embed_dim = 32;
  c.num_heads = 2;
  c.mlp_hidden = 64;
  return c;
}

using jepa::test::expect_error;
}  // namespace

BOOST_AUTO_TEST_CASE(config_errors) {
  auto c = tiny();
  c.num_heads = 5;
  expect_error<ConfigError>([&] { Enc e(c); }, {"VitConfig.num_heads = 5", "divisible"});
  c = tiny();
  c.num_heads = 8;  // head dim 4 < 6: no RoPE channels
  expect_error<ConfigError>([&] { Enc e(c); }, {"head_dim", "RoPE"});
  c = tiny();
  c.embed_dim = 0;
  expect_error<ConfigError>([&] { Enc e(c); }, {"VitConfig.embed_dim = 0"});
  c = tiny();
  c.eps = -1;
  expect_error<ConfigError>([&] { Enc e(c); }, {"VitConfig.eps"});
  c = tiny();
  c.mlp_hidden = -3;
  expect_error<ConfigError>([&] { Enc e(c); }, {"VitConfig.mlp_hidden = -3"});
}

BOOST_AUTO_TEST_CASE(geometry_errors) {
  Enc e(tiny());
  expect_error<ShapeError>([&] { e.make_state(Mode::inference, 1, {3, 32, 32}); },
                           {"frames = 3", "tubelet size 2", "multiple of 2"});
  expect_error<ShapeError>([&] { e.make_state(Mode::inference, 1, {4, 30, 32}); },
                           {"30x32", "patch size 8"});
  expect_error<ShapeError>([&] { e.make_state(Mode::inference, 1, {0, 32, 32}); }, {"must be positive"});
  expect_error<ShapeError>([&] { e.make_state(Mode::inference, 0, {4, 32, 32}); }, {"batch = 0"});
  expect_error<ShapeError>([&] { e.make_state(Mode::training, 1, {4, 32, 32}, 0); },
                           {"token subset is empty", "[1, 32]"});
  expect_error<ShapeError>([&] { e.make_state(Mode::training, 1, {4, 32, 32}, 33); }, {"keep", "= 33"});
}

BOOST_AUTO_TEST_CASE(input_errors) {
  Enc e(tiny());
  nn::ParameterSet<float> P(e.layout());
  P.init(0);
  auto st = e.make_state(Mode::inference, 2, {4, 32, 32});
  std::vector<float> clip(2 * 3 * 4 * 32 * 32);
  // Wrong batch.
  expect_error<ShapeError>([&] { e.forward(P.data(), TensorView<const float, 5>(clip.data(), {1, 3, 4, 32, 32}), nullptr, st); },
                           {"input clip", "[1, 3, 4, 32, 32]", "expected [2, 3, 4, 32, 32]"});
  // Wrong channels.
  std::vector<float> clip4(2 * 4 * 4 * 32 * 32);
  expect_error<ShapeError>([&] { e.forward(P.data(), TensorView<const float, 5>(clip4.data(), {2, 4, 4, 32, 32}), nullptr, st); },
                           {"clip channels", "= 4", "takes 3"});
  // Frames not divisible by the tubelet, reported as such even against a valid State.
  std::vector<float> clip3(2 * 3 * 3 * 32 * 32);
  expect_error<ShapeError>([&] { e.forward(P.data(), TensorView<const float, 5>(clip3.data(), {2, 3, 3, 32, 32}), nullptr, st); },
                           {"frames = 3", "tubelet size 2"});
  // Resolution not divisible by the patch.
  std::vector<float> clipr(2 * 3 * 4 * 36 * 32);
  expect_error<ShapeError>([&] { e.forward(P.data(), TensorView<const float, 5>(clipr.data(), {2, 3, 4, 36, 32}), nullptr, st); },
                           {"36x32", "patch size 8"});
  // Null data.
  expect_error<ShapeError>([&] { e.forward(P.data(), TensorView<const float, 5>(nullptr, {2, 3, 4, 32, 32}), nullptr, st); },
                           {"empty"});
  // Non-contiguous clip.
  expect_error<ShapeError>([&] {
    e.forward(P.data(), TensorView<const float, 5>(clip.data(), {2, 3, 4, 32, 32}, {3 * 4 * 32 * 32, 4 * 32 * 32, 32 * 32, 1, 32}), nullptr, st);
  }, {"contiguous"});
}

BOOST_AUTO_TEST_CASE(token_index_errors) {
  Enc e(tiny());
  nn::ParameterSet<float> P(e.layout());
  P.init(0);
  std::vector<float> clip(1 * 3 * 4 * 32 * 32);
  const TensorView<const float, 5> cv(clip.data(), {1, 3, 4, 32, 32});
  auto st = e.make_state(Mode::training, 1, {4, 32, 32}, 3);
  std::vector<std::int64_t> bad = {0, 5, 32};
  expect_error<IndexError>([&] { e.forward(P.data(), cv, bad.data(), st); }, {"token index 32", "[0, 32)", "2x4x4"});
  bad = {0, -1, 3};
  expect_error<IndexError>([&] { e.forward(P.data(), cv, bad.data(), st); }, {"token index -1"});
  bad = {4, 7, 4};
  expect_error<IndexError>([&] { e.forward(P.data(), cv, bad.data(), st); }, {"token index 4 appears twice"});
  expect_error<ShapeError>([&] { e.forward(P.data(), cv, nullptr, st); }, {"K = 3 of N = 32", "pass the (B,K) token indices"});
}

BOOST_AUTO_TEST_CASE(usage_errors) {
  Enc e(tiny());
  nn::ParameterSet<float> P(e.layout()), G(e.layout());
  P.init(0);
  auto st = e.make_state(Mode::inference, 1, {2, 16, 16});
  std::vector<float> clip(3 * 2 * 16 * 16), d(4 * 32);
  e.forward(P.data(), TensorView<const float, 5>(clip.data(), {1, 3, 2, 16, 16}), nullptr, st);
  expect_error<ConfigError>([&] { e.backward(P.data(), G.data(), st, d.data()); }, {"Mode::training"});
  expect_error<IndexError>([&] { e.output(st, 1); }, {"output index = 1", "1 output(s)"});
  expect_error<IndexError>([&] { (void)e.layout().find("blocks.0.attn.qkvv.weight"); },
                           {"no parameter named 'blocks.0.attn.qkvv.weight'", "e.g. 'blocks.0.attn.qkv"});
  auto tr = e.make_state(Mode::training, 1, {2, 16, 16});
  e.forward(P.data(), TensorView<const float, 5>(clip.data(), {1, 3, 2, 16, 16}), nullptr, tr);
  std::vector<const float*> two = {d.data(), d.data()};
  expect_error<ShapeError>([&] { e.backward(P.data(), G.data(), tr, std::span<const float* const>(two)); },
                           {"d_outputs.size() = 2", "1 output(s)"});
  expect_error<ConfigError>([] { backend::AttnMask::block_causal_mask(0); }, {"AttnMask.block = 0"});
  expect_error<ConfigError>([] { nn::sincos_1d<float>(1.0, 7, nullptr); }, {"sincos_1d channels = 7", "even"});
}

BOOST_AUTO_TEST_CASE(multimodal_geometry) {
  using E21 = VitEncoder<2, tokenizers::MultiModal<tokenizers::Tubelet<2, 8>, tokenizers::Tubelet<1, 8>>,
                         RopeInterleaved, HierarchicalTaps<0, 1>, float>;
  E21 e(tiny());
  BOOST_TEST(e.grid({1, 32, 32}).size() == 16);  // image tokenizer
  BOOST_TEST(e.grid({4, 32, 32}).size() == 32);  // video tokenizer
  expect_error<ShapeError>([&] { e.grid({3, 32, 32}); }, {"frames = 3", "or 1 for an image"});
}
