// Planning with V-JEPA 2-AC: the embedded reaching environment (planning/reach_env.hpp), the
// world-model energy (planning/world_model.hpp) and the closed CEM loop.
//  - environment: clipping, the known state propagation, determinism, goals at distance;
//  - energy: batch-invariant, equal to a hand-written one-step rollout, goal as image or embedding;
//  - closed loop: CEM on the true simulator's distance (an oracle energy) reaches every goal with
//    receding horizon while random actions do not (the loop and the planner, without learning);
//  - bad input: empty goal, wrong goal shape, horizon 0, no observation, grid mismatch.
#include <boost/test/unit_test.hpp>
#include <cmath>

#include "jepa/jepa.hpp"
#include "jepa/models/ac_predictor.hpp"
#include "jepa/models/frame_encoder.hpp"
#include "jepa/planning/cem.hpp"
#include "jepa/planning/reach_env.hpp"
#include "jepa/planning/world_model.hpp"
#include "support/check.hpp"
#include "support/errors.hpp"

using namespace jepa;
using planning::ReachEnv;
using planning::ReachScene;

namespace {
planning::ReachEnvConfig small_env() {
  planning::ReachEnvConfig e;
  e.size = 32;
  e.seed = 11;
  return e;
}
using Enc = models::VitEncoder<1, tokenizers::Tubelet<2, 8>, models::RopeTiled, models::FinalNorm, float>;
using Pred = models::AcPredictor<1, models::RopeTiled, float>;
}  // namespace

BOOST_AUTO_TEST_CASE(reach_env_dynamics_and_data) {
  const ReachEnv env(small_env());
  const auto& c = env.config();
  ReachScene s;
  s.x = c.x_max - 0.01, s.y = 0.5;
  const double a[2] = {3.0, -0.5};  // clipped to 1 → x stops at the workspace edge
  const ReachScene n = env.step(s, a);
  BOOST_TEST(n.x == c.x_max);
  BOOST_TEST(n.y == 0.5 - 0.5 * c.max_step, boost::test_tools::tolerance(1e-12));
  // The planner's state propagation is the simulator's step seen through the state map.
  float st[2], nx[2], want[2];
  const float af[2] = {0.4f, -1.0f};
  const double ad[2] = {0.4, -1.0};
  env.state(s, st);
  env.propagate(st, af, nx);
  env.state(env.step(s, ad), want);
  BOOST_TEST(std::fabs(nx[0] - want[0]) < 1e-6);
  BOOST_TEST(std::fabs(nx[1] - want[1]) < 1e-6);
  // Trajectories are pure functions of their index; frames move with the arm.
  const planning::ReachTrajectories src{env, 5};
  const index_t F = 3 * 32 * 32;
  std::vector<float> f1(2 * 5 * F), a1(2 * 4 * 2), s1(2 * 5 * 2), f2(f1.size()), a2(a1.size()), s2(s1.size());
  src.fill(7, 2, f1.data(), a1.data(), s1.data());
  src.fill(8, 1, f2.data(), a2.data(), s2.data());
  BOOST_TEST(std::equal(f2.begin(), f2.begin() + 5 * F, f1.begin() + 5 * F));
  BOOST_TEST(!std::equal(f1.begin(), f1.begin() + F, f1.begin() + F));
  for (float v : a1) BOOST_TEST(std::fabs(v) <= 1.0f);
  // Evaluation goals are at least min_goal_distance away.
  for (std::uint64_t i = 0; i < 20; ++i) {
    const auto ep = env.episode(i);
    BOOST_TEST(ReachEnv::distance(ep.start, ep.goal) >= c.min_goal_distance);
    BOOST_TEST(ep.start.block_x == ep.goal.block_x);
  }
  test::expect_error<ConfigError>([] { planning::ReachEnvConfig b; b.link1 = 0.2; ReachEnv e(b); }, {"ReachEnvConfig.link1/link2"});
}

BOOST_AUTO_TEST_CASE(cem_closed_loop_on_the_true_simulator) {
  // Receding-horizon CEM on E(a) = distance to the goal after H simulated steps: the planner and the
  // loop must reach every goal; random actions must not.
  const ReachEnv env(small_env());
  // Horizon 1: with a terminal-only energy and H = 2, any split a0 + a1 of the remaining offset is
  // optimal, so the executed first action wanders near the goal (the H = 2 case is run in examples/plan).
  planning::CemConfig cfg = planning::CemConfig::box(2, 1.0);
  cfg.horizon = 1, cfg.samples = 100, cfg.iterations = 5;
  int cem_ok = 0, random_ok = 0;
  for (std::uint64_t e = 0; e < 10; ++e) {
    const auto ep = env.episode(e);
    ReachScene s = ep.start, r = ep.start;
    Rng rng(3, e);
    for (int k = 0; k < 14; ++k) {  // the farthest goals need ~9 full steps; the CEM mean is a bit shorter
      auto energy = [&](const float* a, index_t N, double* out) {
        for (index_t n = 0; n < N; ++n) {
          ReachScene x = s;
          for (index_t h = 0; h < cfg.horizon; ++h) {
            const double ad[2] = {a[(n * cfg.horizon + h) * 2], a[(n * cfg.horizon + h) * 2 + 1]};
            x = env.step(x, ad);
          }
          out[n] = ReachEnv::distance(x, ep.goal);
        }
      };
      s = env.step(s, planning::cem(energy, cfg, e * 100 + k).action(0).data());
      const double ar[2] = {rng.uniform(-1, 1), rng.uniform(-1, 1)};
      r = env.step(r, ar);
    }
    BOOST_TEST_MESSAGE("episode " << e << ": CEM final distance " << ReachEnv::distance(s, ep.goal));
    cem_ok += env.success(s, ep.goal);
    random_ok += env.success(r, ep.goal);
  }
  BOOST_TEST(cem_ok == 10);
  BOOST_TEST(random_ok <= 2);
}

BOOST_AUTO_TEST_CASE(world_model_energy) {
  const ReachEnv env(small_env());
  Enc enc([] { models::VitConfig c; c.embed_dim = 16, c.num_heads = 2, c.mlp_hidden = 32; return c; }());
  nn::ParameterSet<float> E(enc.layout());
  E.init(1);
  models::FrameEncoder<Enc> frames(enc, E.data(), 32, 32);
  models::AcPredictorConfig pc;
  pc.encoder_dim = 16, pc.pred_dim = 16, pc.num_heads = 2, pc.mlp_hidden = 32, pc.action_dim = 2, pc.state_dim = 2;
  pc.grid_h = pc.grid_w = 4, pc.extrinsics_encoder = false;
  Pred pred(pc);
  nn::ParameterSet<float> P(pred.layout());
  P.init(2);
  for (std::size_t i = 0; i < P.numel(); ++i) P.data()[i] *= 10.0f;  // well away from the near-linear init
  auto prop = [&](const float* s, const float* a, float* n) { env.propagate(s, a, n); };
  planning::AcWorldModel<Enc, Pred> wm(frames, pred, P.data(), prop);
  const auto ep = env.episode(0);
  float s0[2];
  env.state(ep.start, s0);
  const auto f0 = env.render(ep.start), fg = env.render(ep.goal);

  // Bad input first: nothing set yet.
  std::vector<float> acts = test::random_vector<float>(3 * 2 * 2, 9, 0.5);
  std::vector<double> e3(3), e1(1);
  test::expect_error<ConfigError>([&] { wm.energies(acts.data(), 3, 2, e3.data()); }, {"no goal"});
  test::expect_error<ShapeError>([&] { wm.set_goal_embedding(nullptr, 16, 16); }, {"goal embedding is empty"});
  test::expect_error<ShapeError>([&] { wm.set_goal_embedding(f0.data(), 0, 0); }, {"goal embedding is empty"});
  test::expect_error<ShapeError>([&] { wm.set_goal_image(nullptr); }, {"goal image is empty"});
  std::vector<float> zbad(10 * 16);
  test::expect_error<ShapeError>([&] { wm.set_goal_embedding(zbad.data(), 10, 16); }, {"shape (10, 16)", "needs (16, 16)"});
  wm.set_goal_image(fg.data());
  test::expect_error<ConfigError>([&] { wm.energies(acts.data(), 3, 2, e3.data()); }, {"no observation"});
  wm.observe(f0.data(), s0);
  test::expect_error<ConfigError>([&] { wm.energies(acts.data(), 3, 0, e3.data()); }, {"planning horizon H = 0"});
  auto bad = planning::CemConfig::box(2, 1.0);
  bad.horizon = 0;
  test::expect_error<ConfigError>([&] { planning::cem(wm.energy(1), bad); }, {"CemConfig.horizon = 0"});
  auto pc2 = pc;
  pc2.grid_w = 3;
  Pred pred2(pc2);
  test::expect_error<ShapeError>([&] { planning::AcWorldModel<Enc, Pred> w2(frames, pred2, P.data(), prop); },
                                 {"grid_h x grid_w = 4x3", "4x4 patch grid"});

  // Batch invariance: 3 candidates at once = one at a time (up to GEMM blocking round-off).
  wm.energies(acts.data(), 3, 2, e3.data());
  for (index_t n = 0; n < 3; ++n) {
    wm.energies(acts.data() + n * 4, 1, 2, e1.data());
    BOOST_TEST(std::fabs(e1[0] - e3[n]) <= 1e-5 * std::fabs(e3[n]));
  }
  BOOST_TEST(e3[0] != e3[1]);
  // H = 1 by hand: LN(P(z0, a0, s0)) against the goal.
  auto z0 = frames.encode(f0.data(), 1);
  auto zg = frames.encode(fg.data(), 1);
  auto st = pred.make_state(models::Mode::inference, 1, 1);
  pred.forward(P.data(), TensorView<const float, 3>(z0.data(), {1, 16, 16}), TensorView<const float, 3>(acts.data(), {1, 1, 2}),
               TensorView<const float, 3>(s0, {1, 1, 2}), st);
  std::vector<float> zn(16 * 16);
  backend::Cpu::layer_norm_forward<float>(pred.output(st).data(), nullptr, nullptr, zn.data(), nullptr, nullptr, 16, 16, 1e-5f);
  double want = 0;
  for (std::size_t i = 0; i < zn.size(); ++i) want += std::fabs(zn[i] - zg[i]);
  want /= static_cast<double>(zn.size());
  wm.energies(acts.data(), 1, 1, e1.data());
  BOOST_TEST(e1[0] == want, boost::test_tools::tolerance(1e-6));
  // The goal as an embedding gives the same energies as the goal image.
  wm.set_goal_embedding(zg.data(), 16, 16);
  std::vector<double> e3b(3);
  wm.energies(acts.data(), 3, 2, e3b.data());
  BOOST_TEST(e3b == e3);
  BOOST_TEST(wm.evaluations() == 3 + 3 + 1 + 3);
}
