// Parity of the V-JEPA 2-AC predictor and its loss with the PyTorch reference
// (tools/make_ac_fixtures.py, fixture ac_tiny): depth 2, Dp 32, 2 heads (Dh 16: tiled RoPE 4/4/4 + 4),
// D 16, A = 4, Sd = 3, a 2×3 patch grid, B = 2 trajectories of T = 4 frames, auto_steps = 2.
// The reference rotates the action/state tokens' time block in a separate call and masks an explicit
// softmax; here one RoPE table (conditioning tokens at (t, 0, 0)) and the fused block-causal kernel.
// Checked: the teacher-forcing pass's raw output, the rollout's normalised ẑ_2, the loss
// [L, L_tf, L_roll] and every parameter gradient of L.
// Bounds (norm-wise relative error): float outputs and losses ≤ 1e-5, float gradients ≤ 1e-4; the
// double instantiation ≤ 1e-10 on outputs and losses, ≤ 1e-6 on gradients (stored as float32).
#include <boost/test/unit_test.hpp>

#include "jepa/jepa.hpp"
#include "jepa/models/ac_predictor.hpp"
#include "jepa/train/ac_objective.hpp"
#include "support/check.hpp"
#include "support/fixtures.hpp"

using namespace jepa;
using namespace jepa::models;

namespace {

template <class T>
void run_case(double out_tol, double grad_tol) {
  const auto dir = test::fixture_dir("ac_tiny");
  const auto j = test::load_json(dir / "config.json");
  AcPredictorConfig cfg;
  cfg.encoder_dim = j["encoder_dim"];
  cfg.pred_dim = j["pred_dim"];
  cfg.num_heads = j["num_heads"];
  cfg.mlp_hidden = j["mlp_hidden"];
  cfg.action_dim = j["action_dim"];
  cfg.state_dim = j["state_dim"];
  cfg.grid_h = j["grid_h"];
  cfg.grid_w = j["grid_w"];
  cfg.eps = j["eps"];
  cfg.extrinsics_encoder = j["extrinsics_encoder"];
  BOOST_REQUIRE_EQUAL(static_cast<int>(j["depth"]), 2);
  BOOST_REQUIRE(j["rope"] == "tiled");
  using Pred = AcPredictor<2, RopeTiled, T>;
  Pred pred(cfg);
  nn::ParameterSet<T> P(pred.layout()), G(pred.layout());
  BOOST_REQUIRE_EQUAL(test::load_params(pred.layout(), P.data(), dir), pred.layout().params().size());
  const index_t B = j["batch"], Tn = j["frames"], K = j["auto_steps"], HW = cfg.tokens_per_frame(), D = cfg.encoder_dim;
  const auto h = test::as<T>(test::load_array(dir / "features.npy"));
  const auto a = test::as<T>(test::load_array(dir / "actions.npy"));
  const auto s = test::as<T>(test::load_array(dir / "states.npy"));
  BOOST_REQUIRE_EQUAL(h.size(), static_cast<std::size_t>(B * Tn * HW * D));

  train::AcObjective<Pred> obj(pred, B, Tn, K, j["ln_eps"]);
  const auto rep = obj.forward(P.data(), h.data(), a.data(), s.data());
  const auto loss = test::load_array(dir / "loss.npy");
  const double got[3] = {rep.loss, rep.teacher_forcing, rep.rollout};
  const double el = test::rel_error(got, loss.data.data(), 3);
  BOOST_TEST_MESSAGE("loss " << rep.loss << " (tf " << rep.teacher_forcing << ", rollout " << rep.rollout
                             << ") vs " << loss.data[0] << ": rel error " << el);
  BOOST_TEST(el <= out_tol);

  // The teacher-forcing pass's raw output (the predictor itself).
  auto st = pred.make_state(Mode::inference, B, Tn - 1);
  std::vector<T> hin(B * (Tn - 1) * HW * D), sin(B * (Tn - 1) * cfg.state_dim);
  for (index_t b = 0; b < B; ++b) {
    std::copy_n(h.begin() + b * Tn * HW * D, (Tn - 1) * HW * D, hin.begin() + b * (Tn - 1) * HW * D);
    std::copy_n(s.begin() + b * Tn * cfg.state_dim, (Tn - 1) * cfg.state_dim, sin.begin() + b * (Tn - 1) * cfg.state_dim);
  }
  pred.forward(P.data(), TensorView<const T, 3>(hin.data(), {B, (Tn - 1) * HW, D}),
               TensorView<const T, 3>(a.data(), {B, Tn - 1, cfg.action_dim}),
               TensorView<const T, 3>(sin.data(), {B, Tn - 1, cfg.state_dim}), st);
  const auto tf = test::load_array(dir / "tf_out.npy");
  const double eo = test::rel_error(pred.output(st).data(), tf.data.data(), tf.size());
  BOOST_TEST_MESSAGE("teacher-forcing output rel error " << eo);
  BOOST_TEST(eo <= out_tol);
  const auto z2 = test::load_array(dir / "rollout_z2.npy");
  const double ez = test::rel_error(obj.rollout(2).data(), z2.data.data(), z2.size());
  BOOST_TEST_MESSAGE("rollout z2 rel error " << ez);
  BOOST_TEST(ez <= out_tol);

  obj.backward(P.data(), G.data());
  double worst = 0;
  std::string worst_name;
  for (const auto& p : pred.layout().params()) {
    const auto ref = test::load_array(dir / "grad" / (p.name + ".npy"));
    BOOST_REQUIRE_EQUAL(ref.size(), p.numel());
    double e;
    if (p.name.starts_with("extrinsics_encoder")) {  // unused: exactly zero on both sides
      e = 0;
      for (std::size_t i = 0; i < p.numel(); ++i) e += std::fabs(static_cast<double>(G.data()[p.offset + i])) + std::fabs(ref.data[i]);
    } else {
      e = test::rel_error(G.data() + p.offset, ref.data.data(), ref.size());
    }
    if (e > worst) worst = e, worst_name = p.name;
    BOOST_TEST(e <= grad_tol, "gradient of " << p.name << " rel error " << e << " > " << grad_tol);
  }
  BOOST_TEST_MESSAGE("worst parameter gradient rel error " << worst << " (" << worst_name << ")");
}

}  // namespace

BOOST_AUTO_TEST_CASE(ac_tiny_float) { run_case<float>(1e-5, 1e-4); }
BOOST_AUTO_TEST_CASE(ac_tiny_double) { run_case<double>(1e-10, 1e-6); }
