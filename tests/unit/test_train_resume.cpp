// Training loop: checkpoint/resume reproduces the uninterrupted run bitwise (losses, parameters,
// target encoder, AdamW moments), across the pretrain → cooldown boundary with progressive
// resolution; a process killed while writing a checkpoint leaves the previous one readable; the
// NaN guard skips poisoned steps and stops after too many, and never writes a poisoned checkpoint.
#include <boost/test/unit_test.hpp>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <sys/wait.h>
#include <unistd.h>

#include "jepa/models/jepa_presets.hpp"
#include "jepa/train/checkpoint.hpp"
#include "jepa/train/trainer.hpp"

using namespace jepa;
namespace P = jepa::models::presets;

namespace {
train::TrainConfig small_run(const std::string& dir) {
  train::TrainConfig c;
  auto pre = train::Recipes::vjepa2_pretrain(1, 6);
  pre.lr.cosine.warmup = 2;
  auto cool = train::Recipes::vjepa2_cooldown(1, 4);
  c.stages = {pre, cool};
  c.data = {{4, 64, 2, 0}, {6, 80, 2, 0}};  // cooldown: more frames, higher resolution
  c.out_dir = dir;
  c.progress = false;
  return c;
}
template <class T>
bool same(const nn::ParameterSet<T>& a, const nn::ParameterSet<T>& b) {
  return a.numel() == b.numel() && std::memcmp(a.data(), b.data(), a.numel() * sizeof(T)) == 0;
}
std::filesystem::path temp_dir(const char* name) {
  auto d = std::filesystem::temp_directory_path() / (std::string("jepa_test_") + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}
}  // namespace

BOOST_AUTO_TEST_CASE(resume_is_bitwise) {
  const auto dir = temp_dir("resume");
  const auto ckpt = (dir / "checkpoint.safetensors").string();
  train::SyntheticSource src{7};
  // Uninterrupted: 10 steps (6 pretrain + 4 cooldown).
  auto a = P::vjepa2<P::vit_micro>();
  a.init(239);
  train::Trainer ta(a, src, small_run(dir.string()));
  ta.run();
  BOOST_REQUIRE(ta.finished());
  BOOST_REQUIRE_EQUAL(ta.history().size(), 10u);
  // Interrupted after 4 steps (mid-pretraining), resumed in a fresh process-like setup.
  {
    auto b = P::vjepa2<P::vit_micro>();
    b.init(239);
    train::Trainer tb(b, src, small_run(dir.string()));
    tb.run(4);
    train::save_checkpoint(ckpt, b, tb);
  }
  auto c = P::vjepa2<P::vit_micro>();
  c.init(12345);  // deliberately different: everything must come from the checkpoint
  train::Trainer tc(c, src, small_run(dir.string()));
  train::load_checkpoint(ckpt, c, tc);
  BOOST_TEST(tc.state().global_step == 4u);
  tc.run();
  BOOST_REQUIRE_EQUAL(tc.history().size(), 10u);
  for (std::size_t i = 0; i < 10; ++i) {
    BOOST_TEST(tc.history()[i].loss == ta.history()[i].loss, "step " << i + 1);  // bitwise
    BOOST_TEST(tc.history()[i].grad_norm == ta.history()[i].grad_norm, "step " << i + 1);
  }
  BOOST_TEST(same(c.encoder_params(), a.encoder_params()));
  BOOST_TEST(same(c.target_params(), a.target_params()));
  BOOST_TEST(same(c.predictor_params(), a.predictor_params()));
  for (std::size_t g = 0; g < 2; ++g) {
    BOOST_TEST(same(tc.optimizer().first_moments()[g], ta.optimizer().first_moments()[g]));
    BOOST_TEST(same(tc.optimizer().second_moments()[g], ta.optimizer().second_moments()[g]));
  }
  // The loss fell and the logs were written.
  tc.write_csv((dir / "log.csv").string());
  tc.write_loss_png((dir / "loss.png").string(), "test");
  BOOST_TEST(std::filesystem::file_size(dir / "loss.png") > 1000u);
  std::filesystem::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(kill_during_checkpoint_write_keeps_previous) {
  const auto dir = temp_dir("kill");
  const auto ckpt = (dir / "checkpoint.safetensors").string();
  auto m = P::vjepa2<P::vit_tiny>();  // ~5.6M + 2.4M parameters: writes take long enough to interrupt
  m.init(1);
  train::SyntheticSource src{0};
  auto cfg = small_run(dir.string());
  train::Trainer t(m, src, cfg);
  train::save_checkpoint(ckpt, m, t);
  const auto before = std::filesystem::file_size(ckpt);
  int interrupted = 0;
  for (int attempt = 0; attempt < 6; ++attempt) {
    const pid_t pid = ::fork();
    BOOST_REQUIRE(pid >= 0);
    if (pid == 0) {  // child: keep rewriting the checkpoint until killed
      for (;;) {
        t.mutable_state().global_step += 1;
        train::save_checkpoint(ckpt, m, t);
      }
    }
    ::usleep(20000 + 15000 * attempt);
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    interrupted += WIFSIGNALED(status);
    // Whatever instant the kill hit, the checkpoint on disk is complete and loads.
    auto m2 = P::vjepa2<P::vit_tiny>();
    train::Trainer t2(m2, src, cfg);
    BOOST_REQUIRE_NO_THROW(train::load_checkpoint(ckpt, m2, t2));
    BOOST_TEST(std::filesystem::file_size(ckpt) == before);
    BOOST_TEST(same(m2.encoder_params(), m.encoder_params()));
  }
  BOOST_TEST(interrupted == 6);
  std::filesystem::remove_all(dir);
}

namespace {
/// A source that poisons chosen samples with NaN (a corrupt input that decoded to garbage).
struct PoisonSource {
  std::uint64_t poison_from = 0, poison_to = 0;
  std::uint64_t fill(std::uint64_t pos, index_t B, const models::InputGeometry& g, float* out,
                     std::vector<std::string>& skipped) const {
    train::SyntheticSource{0}.fill(pos, B, g, out, skipped);
    if (pos >= poison_from && pos < poison_to) out[0] = std::numeric_limits<float>::quiet_NaN();
    return static_cast<std::uint64_t>(B);
  }
};
}  // namespace

BOOST_AUTO_TEST_CASE(nan_guard) {
  const auto dir = temp_dir("nan");
  auto m = P::vjepa2<P::vit_micro>();
  m.init(1);
  auto cfg = small_run(dir.string());
  cfg.max_bad_steps = 3;
  // Samples 4..5 (step 3) are poisoned: that step is skipped, the run goes on.
  PoisonSource src{4, 6};
  train::Trainer t(m, src, cfg);
  t.run(6);
  BOOST_TEST(t.state().bad_steps == 1u);
  BOOST_TEST(t.history()[2].skipped);
  BOOST_TEST(!t.history()[3].skipped);
  for (std::size_t i = 0; i < m.encoder_params().numel(); ++i) BOOST_REQUIRE(std::isfinite(m.encoder_params().data()[i]));
  // Every sample poisoned: the run stops with a clear message after max_bad_steps.
  auto m2 = P::vjepa2<P::vit_micro>();
  m2.init(1);
  PoisonSource bad{0, ~0ull};
  train::Trainer t2(m2, bad, cfg);
  BOOST_CHECK_EXCEPTION(t2.run(), NumericError, [](const NumericError& e) {
    return std::string(e.what()).find("3 consecutive steps had a non-finite loss") != std::string::npos;
  });
  // A poisoned parameter buffer is never written to disk.
  m2.encoder_params().data()[3] = std::numeric_limits<float>::infinity();
  BOOST_CHECK_THROW(train::save_checkpoint((dir / "c.safetensors").string(), m2, t2), NumericError);
  BOOST_TEST(!std::filesystem::exists(dir / "c.safetensors"));
  // A checkpoint of another run shape is refused with a message.
  auto cfg1 = cfg;
  cfg1.stages.pop_back(), cfg1.data.pop_back();
  train::Trainer t3(m, src, cfg1);
  train::save_checkpoint((dir / "one.safetensors").string(), m, t3);
  BOOST_CHECK_THROW(train::load_checkpoint((dir / "one.safetensors").string(), m, t), ConfigError);
  std::filesystem::remove_all(dir);
}
