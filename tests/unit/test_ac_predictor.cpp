// V-JEPA 2-AC predictor (models/ac_predictor.hpp) and its training loss (train/ac_objective.hpp):
//  - gradient checks in double precision against fourth-order central differences (bound 1e-8 on
//    the predictor; 1e-7 on the L1 objective, whose kinks a finite difference may straddle);
//  - the block-causal mask: a token never sees the future — changing a later action, state or frame
//    leaves every earlier output bitwise unchanged, and the gradient never flows backwards in time;
//  - the released model's parameter count (recipe golden fact 6) and official key names;
//  - bad input: action/state dimension mismatch, wrong token counts, too many steps.
#include <boost/test/unit_test.hpp>
#include <cstring>
#include <functional>

#include "jepa/jepa.hpp"
#include "jepa/models/ac_predictor.hpp"
#include "jepa/train/ac_objective.hpp"
#include "support/check.hpp"
#include "support/gradcheck.hpp"
#include "support/errors.hpp"

using namespace jepa;
using namespace jepa::models;
using test::check_against_fd;
using test::random_vector;

namespace {

AcPredictorConfig tiny_config() {
  AcPredictorConfig c;
  c.encoder_dim = 10;
  c.pred_dim = 16;
  c.num_heads = 2;  // Dh 8: RoPE 2/2/2 + 2 unrotated
  c.mlp_hidden = 24;
  c.action_dim = 3;
  c.state_dim = 2;
  c.grid_h = 2;
  c.grid_w = 3;
  return c;
}

/// Weights ~0.2 (init 0.02 would make the function nearly linear); norms stay at 1.
template <class P>
void spread(const nn::ParamLayout& L, P& params, std::uint64_t seed) {
  params.init(seed);
  for (const auto& p : L.params())
    if (p.shape.rank() >= 2)
      for (std::size_t i = 0; i < p.numel(); ++i) params.data()[p.offset + i] *= 10.0;
}

}  // namespace

BOOST_AUTO_TEST_CASE(ac_predictor_gradcheck) {
  using Pred = AcPredictor<2, RopeTiled, double>;
  const auto cfg = tiny_config();
  Pred pred(cfg);
  nn::ParameterSet<double> P(pred.layout()), G(pred.layout());
  spread(pred.layout(), P, 41);
  const index_t B = 2, T = 3, HW = cfg.tokens_per_frame(), D = cfg.encoder_dim;
  auto st = pred.make_state(Mode::training, B, T);
  auto z = random_vector<double>(B * T * HW * D, 42), a = random_vector<double>(B * T * 3, 43);
  auto s = random_vector<double>(B * T * 2, 44), g = random_vector<double>(B * T * HW * D, 45);
  auto loss = [&] {
    pred.forward(P.data(), TensorView<const double, 3>(z.data(), {B, T * HW, D}), TensorView<const double, 3>(a.data(), {B, T, 3}),
                 TensorView<const double, 3>(s.data(), {B, T, 2}), st);
    return test::dot(pred.output(st).data(), g.data(), g.size());
  };
  loss();
  std::vector<double> dz(z.size(), 123.0);  // overwritten, not accumulated
  pred.backward(P.data(), G.data(), st, g.data(), dz.data());
  check_against_fd("AC predictor d_z", z.data(), z.size(), dz.data(), loss, {.bound = 1e-8});
  check_against_fd("AC predictor params", P.data(), P.numel(), G.data(), loss, {.bound = 1e-8, .max_coords = 600});
  // The unused extrinsics encoder receives no gradient.
  const auto& ext = pred.layout().find("extrinsics_encoder.weight");
  for (std::size_t i = 0; i < ext.numel(); ++i) BOOST_REQUIRE_EQUAL(G.data()[ext.offset + i], 0.0);
  // Parameter gradients accumulate.
  std::vector<double> G1(G.data(), G.data() + G.numel());
  loss();
  pred.backward(P.data(), G.data(), st, g.data(), dz.data());
  double worst = 0;
  for (std::size_t i = 0; i < G1.size(); ++i) worst = std::max(worst, std::fabs(G.data()[i] - 2 * G1[i]));
  BOOST_TEST(worst < 1e-12);
}

BOOST_AUTO_TEST_CASE(ac_objective_gradcheck) {
  // L = L_tf + L_roll over T = 4 frames with a 3-step rollout (two rollout passes), so the gradient
  // flows through ẑ_1 and ẑ_2 into later passes.
  using Pred = AcPredictor<2, RopeTiled, double>;
  const auto cfg = tiny_config();
  Pred pred(cfg);
  nn::ParameterSet<double> P(pred.layout()), G(pred.layout());
  spread(pred.layout(), P, 51);
  const index_t B = 2, T = 4, HW = cfg.tokens_per_frame(), D = cfg.encoder_dim;
  auto h = random_vector<double>(B * T * HW * D, 52), a = random_vector<double>(B * (T - 1) * 3, 53);
  auto s = random_vector<double>(B * T * 2, 54);
  train::AcObjective<Pred> obj(pred, B, T, 3);
  auto loss = [&] { return obj.forward(P.data(), h.data(), a.data(), s.data()).loss; };
  const auto rep = obj.forward(P.data(), h.data(), a.data(), s.data());
  BOOST_TEST(rep.loss == rep.teacher_forcing + rep.rollout);
  obj.backward(P.data(), G.data());
  check_against_fd("AC objective params", P.data(), P.numel(), G.data(), loss, {.bound = 1e-7, .max_coords = 600, .h = 1e-5});
  // A 1-step "rollout" is the teacher-forced frame 1 again: L_roll = mean |ẑ_1 − h_1|.
  train::AcObjective<Pred> one(pred, B, T, 1);
  const auto r1 = one.forward(P.data(), h.data(), a.data(), s.data());
  const auto z = one.teacher_forced();
  double l = 0;
  for (index_t b = 0; b < B; ++b)
    for (index_t i = 0; i < HW * D; ++i) l += std::fabs(z.data()[b * (T - 1) * HW * D + i] - h[(b * T + 1) * HW * D + i]);
  BOOST_TEST(r1.rollout == l / static_cast<double>(B * HW * D), boost::test_tools::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(ac_predictor_block_causal_never_sees_the_future) {
  using Pred = AcPredictor<3, RopeTiled, float>;
  auto cfg = tiny_config();
  cfg.encoder_dim = 12;
  Pred pred(cfg);
  nn::ParameterSet<float> P(pred.layout()), G(pred.layout());
  spread(pred.layout(), P, 61);
  const index_t B = 2, T = 4, HW = cfg.tokens_per_frame(), D = cfg.encoder_dim, F = HW * D;
  auto st = pred.make_state(Mode::training, B, T);
  auto z = random_vector<float>(B * T * F, 62), a = random_vector<float>(B * T * 3, 63), s = random_vector<float>(B * T * 2, 64);
  auto run = [&](const std::vector<float>& zz, const std::vector<float>& aa, const std::vector<float>& ss) {
    pred.forward(P.data(), TensorView<const float, 3>(zz.data(), {B, T * HW, D}), TensorView<const float, 3>(aa.data(), {B, T, 3}),
                 TensorView<const float, 3>(ss.data(), {B, T, 2}), st);
    const auto o = pred.output(st);
    return std::vector<float>(o.data(), o.data() + o.numel());
  };
  const auto base = run(z, a, s);
  // Outputs of steps < t must not move when anything of step t changes; those of step t must.
  auto same_before = [&](const std::vector<float>& out, index_t t) {
    bool before_equal = true, at_differs = false;
    for (index_t b = 0; b < B; ++b) {
      before_equal = before_equal && std::memcmp(out.data() + b * T * F, base.data() + b * T * F, t * F * sizeof(float)) == 0;
      for (index_t i = t * F; i < (t + 1) * F; ++i) at_differs = at_differs || out[b * T * F + i] != base[b * T * F + i];
    }
    return before_equal && at_differs;
  };
  for (index_t t = 1; t < T; ++t) {
    auto a2 = a;
    for (index_t b = 0; b < B; ++b) a2[(b * T + t) * 3 + 1] += 0.5f;  // a later action
    BOOST_TEST(same_before(run(z, a2, s), t), "changing action " << t << " changed an earlier output (or none at t)");
    auto s2 = s;
    for (index_t b = 0; b < B; ++b) s2[(b * T + t) * 2] -= 0.5f;
    BOOST_TEST(same_before(run(z, a, s2), t), "changing state " << t << " changed an earlier output (or none at t)");
    auto z2 = z;
    for (index_t b = 0; b < B; ++b) z2[(b * T + t) * F + 5] += 1.0f;
    BOOST_TEST(same_before(run(z2, a, s), t), "changing frame " << t << " changed an earlier output (or none at t)");
  }
  // Gradient never flows backwards in time: a loss on steps 0..1 gives zero d_z on frames 2..3.
  run(z, a, s);
  std::vector<float> g(B * T * F, 0.0f), dz(B * T * F, 7.0f);
  for (index_t b = 0; b < B; ++b)
    for (index_t i = 0; i < 2 * F; ++i) g[b * T * F + i] = 0.01f * static_cast<float>((i % 7) - 3);
  pred.backward(P.data(), G.data(), st, g.data(), dz.data());
  bool zero_future = true, nonzero_past = false;
  for (index_t b = 0; b < B; ++b)
    for (index_t i = 0; i < T * F; ++i) {
      if (i >= 2 * F) zero_future = zero_future && dz[b * T * F + i] == 0.0f;
      else nonzero_past = nonzero_past || dz[b * T * F + i] != 0.0f;
    }
  BOOST_TEST(zero_future);
  BOOST_TEST(nonzero_past);
  // A shorter sequence in the same State is the prefix of the longer one (fused tiles may differ in
  // summation order, so up to float round-off).
  auto st2 = pred.make_state(Mode::inference, B, T);
  std::vector<float> zp(B * 2 * F), ap(B * 2 * 3), sp(B * 2 * 2);
  for (index_t b = 0; b < B; ++b) {
    std::copy_n(z.begin() + b * T * F, 2 * F, zp.begin() + b * 2 * F);
    std::copy_n(a.begin() + b * T * 3, 6, ap.begin() + b * 6);
    std::copy_n(s.begin() + b * T * 2, 4, sp.begin() + b * 4);
  }
  pred.forward(P.data(), TensorView<const float, 3>(zp.data(), {B, 2 * HW, D}), TensorView<const float, 3>(ap.data(), {B, 2, 3}),
               TensorView<const float, 3>(sp.data(), {B, 2, 2}), st2);
  const auto o2 = pred.output(st2);
  std::vector<float> pre(B * 2 * F);
  for (index_t b = 0; b < B; ++b) std::copy_n(base.begin() + b * T * F, 2 * F, pre.begin() + b * 2 * F);
  BOOST_TEST(test::rel_error(o2.data(), pre.data(), pre.size()) < 1e-6);
}

BOOST_AUTO_TEST_CASE(ac_predictor_released_shape) {
  // recipe_facts §10.6: 305,220,992 parameters including the unused extrinsics encoder; official keys.
  presets::VJepa2AcPredictor<> pred(presets::vjepa2_ac_predictor_config());
  BOOST_TEST(pred.param_count() == 305220992u);
  const auto& L = pred.layout();
  BOOST_TEST(L.find("predictor_embed.weight").shape == (Shape{1024, 1408}));
  BOOST_TEST(L.find("action_encoder.weight").shape == (Shape{1024, 7}));
  BOOST_TEST(L.find("state_encoder.weight").shape == (Shape{1024, 7}));
  BOOST_TEST(L.find("extrinsics_encoder.weight").shape == (Shape{1024, 6}));
  BOOST_TEST(L.find("predictor_blocks.23.attn.qkv.weight").shape == (Shape{3072, 1024}));
  BOOST_TEST(L.find("predictor_blocks.0.mlp.fc1.weight").shape == (Shape{4096, 1024}));
  BOOST_TEST(L.find("predictor_norm.weight").shape == (Shape{1024}));
  BOOST_TEST(L.find("predictor_proj.weight").shape == (Shape{1408, 1024}));
  BOOST_TEST(L.params().front().name == "predictor_embed.weight");
  BOOST_TEST(L.params().back().name == "predictor_proj.bias");
  auto c = presets::vjepa2_ac_predictor_config();
  c.extrinsics_encoder = false;
  BOOST_TEST(presets::VJepa2AcPredictor<>(c).param_count() == 305220992u - 7168u);
  // 8 frames at 256²: 8 × (2 + 256) = 2064 tokens, blocks of 258 (golden fact 16).
  BOOST_TEST(pred.mask().block == 258);
}

BOOST_AUTO_TEST_CASE(ac_predictor_bad_input) {
  using Pred = AcPredictor<1, RopeTiled, float>;
  const auto cfg = tiny_config();
  Pred pred(cfg);
  nn::ParameterSet<float> P(pred.layout());
  P.init(1);
  const index_t B = 1, T = 2, HW = cfg.tokens_per_frame(), D = cfg.encoder_dim;
  auto st = pred.make_state(Mode::inference, B, T);
  std::vector<float> z(B * T * HW * D), a(B * T * 4), s(B * T * 3);
  using V = TensorView<const float, 3>;
  test::expect_error<ShapeError>([&] { pred.forward(P.data(), V(z.data(), {B, T * HW, D}), V(a.data(), {B, T, 4}), V(s.data(), {B, T, 2}), st); },
                                 {"actions (dim 2) = 4", "action dimension mismatch", "action_dim = 3"});
  test::expect_error<ShapeError>([&] { pred.forward(P.data(), V(z.data(), {B, T * HW, D}), V(a.data(), {B, T, 3}), V(s.data(), {B, T, 3}), st); },
                                 {"states (dim 2) = 3", "state dimension mismatch", "state_dim = 2"});
  test::expect_error<ShapeError>([&] { pred.forward(P.data(), V(z.data(), {B, T * HW - 1, D}), V(a.data(), {B, T, 3}), V(s.data(), {B, T, 2}), st); },
                                 {"z (dim 1) = 11", "multiple of the 6 tokens per frame"});
  test::expect_error<ShapeError>([&] { pred.forward(P.data(), V(z.data(), {B, T * HW, D}), V(a.data(), {B, 1, 3}), V(s.data(), {B, T, 2}), st); },
                                 {"actions (dim 1) = 1", "one action per frame step (T = 2)"});
  std::vector<float> z3(B * 3 * HW * D), a3(B * 3 * 3), s3(B * 3 * 2);
  test::expect_error<ShapeError>([&] { pred.forward(P.data(), V(z3.data(), {B, 3 * HW, D}), V(a3.data(), {B, 3, 3}), V(s3.data(), {B, 3, 2}), st); },
                                 {"time steps T = 3", "at most 2 steps"});
  test::expect_error<ShapeError>([&] { pred.forward(P.data(), V(nullptr, {B, T * HW, D}), V(a.data(), {B, T, 3}), V(s.data(), {B, T, 2}), st); },
                                 {"frame features z are empty"});
  test::expect_error<ShapeError>([&] { pred.make_state(Mode::inference, 1, 0); }, {"max_steps = 0", "horizon >= 1"});
  auto bad = cfg;
  bad.action_dim = 0;
  test::expect_error<ConfigError>([&] { Pred p2(bad); }, {"AcPredictorConfig.action_dim = 0"});
  test::expect_error<ConfigError>([&] { Pred p2(cfg); std::vector<float> g(1); auto s2 = p2.make_state(Mode::inference, 1, 1);
                                        p2.backward(P.data(), nullptr, s2, g.data(), nullptr); }, {"Mode::training"});
  test::expect_error<ConfigError>([&] { train::AcObjective<Pred> o(pred, 1, 3, 3); }, {"auto_steps = 3", "K <= frames - 1 = 2"});
}
