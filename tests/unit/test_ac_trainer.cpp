// V-JEPA 2-AC training (train/ac_trainer.hpp) on the embedded reaching task's trajectories with a
// frozen tiny encoder: the loss falls, a checkpoint/resume reproduces the uninterrupted run bitwise,
// and mismatched sources, encoders and run lengths are refused with clear errors.
#include <boost/test/unit_test.hpp>
#include <cstring>
#include <filesystem>

#include "jepa/jepa.hpp"
#include "jepa/models/ac_predictor.hpp"
#include "jepa/models/frame_encoder.hpp"
#include "jepa/planning/reach_env.hpp"
#include "jepa/train/ac_trainer.hpp"
#include "support/errors.hpp"

using namespace jepa;
namespace fs = std::filesystem;

namespace {
using Enc = models::VitEncoder<1, tokenizers::Tubelet<2, 8>, models::RopeTiled, models::FinalNorm, float>;
using Pred = models::AcPredictor<1, models::RopeTiled, float>;
using Trainer = train::AcTrainer<Enc, Pred, planning::ReachTrajectories>;

models::VitConfig enc_config() {
  models::VitConfig c;
  c.embed_dim = 16, c.num_heads = 2, c.mlp_hidden = 32;
  return c;
}
models::AcPredictorConfig pred_config() {
  models::AcPredictorConfig c;
  c.encoder_dim = 16, c.pred_dim = 16, c.num_heads = 2, c.mlp_hidden = 32;
  c.action_dim = 2, c.state_dim = 2, c.grid_h = c.grid_w = 4;
  c.extrinsics_encoder = false;
  return c;
}
planning::ReachTrajectories source() {
  planning::ReachEnvConfig e;
  e.size = 32;
  e.seed = 5;
  return {planning::ReachEnv(e), 4};
}

struct Rig {
  Enc enc{enc_config()};
  nn::ParameterSet<float> E{enc.layout()};
  models::FrameEncoder<Enc> frames;
  Pred pred{pred_config()};
  nn::ParameterSet<float> P{pred.layout()};
  planning::ReachTrajectories src = source();
  Trainer tr;
  explicit Rig(std::uint64_t steps, double lr = 1e-3)
      : frames((E.init(3), enc), E.data(), 32, 32), tr(frames, pred, (P.init(4), P), src, cfg(steps, lr)) {}
  static train::AcTrainConfig cfg(std::uint64_t steps, double lr) {
    auto c = train::AcTrainConfig::recipe(steps, 3, lr);
    c.progress = false;
    return c;
  }
};
}  // namespace

BOOST_AUTO_TEST_CASE(ac_training_loss_falls) {
  Rig r(60, 2e-3);
  r.tr.run();
  const auto& h = r.tr.history();
  BOOST_REQUIRE_EQUAL(h.size(), 60u);
  double first = 0, last = 0;
  for (int i = 0; i < 5; ++i) first += h[i].loss / 5, last += h[h.size() - 1 - i].loss / 5;
  BOOST_TEST_MESSAGE("AC loss: first 5 steps " << first << ", last 5 steps " << last);
  BOOST_TEST(last < 0.7 * first);
  BOOST_TEST(h[0].lr < h[10].lr);  // warmup
  BOOST_TEST(h.back().lr < h[30].lr);  // anneal
  BOOST_TEST(r.tr.state().position == 60u * 3u);
}

BOOST_AUTO_TEST_CASE(ac_checkpoint_resume_is_bitwise) {
  const fs::path dir = fs::temp_directory_path() / "jepa_test_ac_resume";
  fs::create_directories(dir);
  const std::string ck = (dir / "ac.safetensors").string();
  Rig full(6);
  full.tr.run();
  Rig first(6);
  first.tr.run(3);
  train::save_ac_checkpoint(ck, first.tr);
  Rig second(6);
  train::load_ac_checkpoint(ck, second.tr);
  BOOST_TEST(second.tr.state().step == 3u);
  BOOST_TEST(second.tr.history().size() == 3u);
  second.tr.run();
  BOOST_TEST(std::memcmp(second.P.data(), full.P.data(), full.P.numel() * sizeof(float)) == 0);
  for (std::size_t i = 0; i < 6; ++i) BOOST_TEST(second.tr.history()[i].loss == full.tr.history()[i].loss);
  BOOST_TEST(second.tr.optimizer().steps_taken() == 6u);
  // A different frozen encoder or another run length is refused.
  Rig other(6);
  other.E.data()[0] += 1.0f;
  test::expect_error<ConfigError>([&] { train::load_ac_checkpoint(ck, other.tr); }, {"different frozen encoder"});
  Rig longer(7);
  test::expect_error<ConfigError>([&] { train::load_ac_checkpoint(ck, longer.tr); }, {"run of 6 steps", "this run has 7"});
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(ac_trainer_bad_input) {
  Enc enc(enc_config());
  nn::ParameterSet<float> E(enc.layout());
  E.init(1);
  models::FrameEncoder<Enc> frames(enc, E.data(), 32, 32);
  auto pc = pred_config();
  pc.action_dim = 7;
  Pred pred(pc);
  nn::ParameterSet<float> P(pred.layout());
  const auto src = source();
  test::expect_error<ShapeError>([&] { Trainer t(frames, pred, P, src, train::AcTrainConfig::recipe(5, 2)); },
                                 {"source action_dim = 2", "action dimension mismatch", "predictor takes 7"});
  pc = pred_config();
  pc.state_dim = 3;
  Pred pred2(pc);
  nn::ParameterSet<float> P2(pred2.layout());
  test::expect_error<ShapeError>([&] { Trainer t(frames, pred2, P2, src, train::AcTrainConfig::recipe(5, 2)); },
                                 {"source state_dim = 2", "state dimension mismatch"});
  test::expect_error<ShapeError>([&] { models::FrameEncoder<Enc> f(enc, E.data(), 30, 32); }, {"not divisible by the patch size 8"});
  test::expect_error<IoError>([&] {
    Pred p3(pred_config());
    nn::ParameterSet<float> P3(p3.layout());
    Trainer t(frames, p3, P3, src, train::AcTrainConfig::recipe(5, 2));
    train::load_ac_checkpoint("/nonexistent/ac.safetensors", t);
  }, {"/nonexistent/ac.safetensors"});
}
