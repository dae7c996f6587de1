// Training-run reliability (issue: every hostile input and every fault ends in a named error, with
// nothing lost): the 2.1 cooldown trains the recipe's cooldown objective (λ held at its value, no
// distance weighting) at every step, across the stage boundary and across a resume inside the
// cooldown; every run-position field of a checkpoint is range-checked before anything is taken from
// it; a changed schedule is refused; an exploding run is not healthy enough to checkpoint; the run
// directory is checked up front and its stale temporaries removed; the content hash catches a flip.
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "jepa/models/jepa_presets.hpp"
#include "jepa/train/checkpoint.hpp"
#include "jepa/train/run_dir.hpp"
#include "jepa/train/run_health.hpp"
#include "jepa/train/trainer.hpp"

using namespace jepa;
namespace P = jepa::models::presets;
namespace fs = std::filesystem;

namespace {
fs::path temp_dir(const char* name) {
  auto d = fs::temp_directory_path() / (std::string("jepa_rel_") + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

/// 2.1 micro: 6 pretraining steps (λ ramps over local steps 2 → 4) and 4 cooldown steps.
train::TrainConfig run21(std::uint64_t pre_steps = 6, std::uint64_t cool_steps = 4) {
  train::TrainConfig c;
  auto pre = train::Recipes::vjepa21_pretrain(1, pre_steps);
  pre.lr.cosine.warmup = 2;
  auto cool = train::Recipes::vjepa21_cooldown(1, cool_steps);
  c.stages = {pre, cool};
  c.data = {{4, 64, 2, 0}, {4, 64, 2, 0}};
  c.progress = false;
  return c;
}
template <class M>
void ramp(M& m) {
  m.loss_policy_mut().lambda.start = 2;
  m.loss_policy_mut().lambda.end = 4;
}

struct Seen {
  double lambda;
  bool weighting;
};

/// Rewrites metadata field `key` of a safetensors file (the header is re-serialised; the data
/// section is unchanged, its offsets are relative to it); `erase` removes it instead.
void set_metadata(const fs::path& p, const std::string& key, const std::string& value, bool erase = false) {
  std::ifstream in(p, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  auto j = nlohmann::json::parse(bytes.substr(8, n));
  if (erase) j["__metadata__"].erase(key);
  else j["__metadata__"][key] = value;
  std::string h = j.dump();
  while (h.size() % 8) h += ' ';
  const std::uint64_t m = h.size();
  std::string out(reinterpret_cast<const char*>(&m), 8);
  out += h + bytes.substr(8 + n);
  std::ofstream(p, std::ios::binary | std::ios::trunc) << out;
}

/// Overwrites float64 element `i` of tensor `name` in a safetensors file.
void poke_f64(const fs::path& p, const std::string& name, std::size_t i, double v) {
  std::fstream f(p, std::ios::binary | std::ios::in | std::ios::out);
  std::uint64_t n = 0;
  f.read(reinterpret_cast<char*>(&n), 8);
  std::string h(n, ' ');
  f.read(h.data(), static_cast<std::streamsize>(n));
  const auto j = nlohmann::json::parse(h);
  const std::uint64_t at = 8 + n + j.at(name).at("data_offsets")[0].get<std::uint64_t>() + 8 * i;
  f.seekp(static_cast<std::streamoff>(at));
  f.write(reinterpret_cast<const char*>(&v), 8);
}
}  // namespace

BOOST_AUTO_TEST_CASE(cooldown_trains_the_recipes_context_term_at_every_step) {
  const auto dir = temp_dir("cool");
  train::SyntheticSource src{3};
  auto a = P::vjepa2_1<P::vit_micro>();
  ramp(a);
  a.init(5);
  train::Trainer ta(a, src, run21());
  std::vector<Seen> seen;
  ta.on_step = [&](const train::StepLog& l) { seen.push_back({l.lambda, a.loss_policy().context_weighting()}); };
  ta.run();
  BOOST_REQUIRE_EQUAL(seen.size(), 10u);
  // Pretraining: λ(it) with it = local step − 1: 0, 0, 0 (it < start = 2 … it = 2 gives 0), 0.25, 0.5, 0.5;
  // weighted by 1/√dist. Cooldown: λ held at 0.5 from its first step, unweighted.
  const double want[10] = {0, 0, 0, 0.25, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5};
  for (std::size_t i = 0; i < 10; ++i) {
    BOOST_TEST(seen[i].lambda == want[i], "step " << i + 1 << " lambda " << seen[i].lambda);
    BOOST_TEST(seen[i].weighting == (i < 6), "step " << i + 1 << " distance weighting");
  }
  // The policy the user constructed is what the pretraining stage uses (Stage::context restores it).
  BOOST_TEST(a.loss_policy().lambda.start == 2u);

  // Resume inside the cooldown (after step 8): the same λ, weighting and losses, bitwise.
  const auto ckpt = (dir / "c.safetensors").string();
  {
    auto b = P::vjepa2_1<P::vit_micro>();
    ramp(b);
    b.init(5);
    train::Trainer tb(b, src, run21());
    tb.run(8);
    train::save_checkpoint(ckpt, b, tb);
  }
  auto c = P::vjepa2_1<P::vit_micro>();
  ramp(c);
  c.init(99);
  train::Trainer tc(c, src, run21());
  train::load_checkpoint(ckpt, c, tc);
  std::vector<Seen> after;
  tc.on_step = [&](const train::StepLog& l) { after.push_back({l.lambda, c.loss_policy().context_weighting()}); };
  tc.run();
  BOOST_REQUIRE_EQUAL(after.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    BOOST_TEST(after[i].lambda == 0.5);
    BOOST_TEST(!after[i].weighting);
    BOOST_TEST(tc.history()[8 + i].loss == ta.history()[8 + i].loss, "step " << 9 + i);
    BOOST_TEST(tc.history()[8 + i].context == ta.history()[8 + i].context, "step " << 9 + i);
  }
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(weighting_changes_the_cooldown_loss) {
  // Control: the switch matters — the first cooldown step with the pretraining settings (weighted)
  // gives a different context loss than the recipe's (unweighted).
  train::SyntheticSource src{3};
  auto run_first_cooldown = [&](bool recipe) {
    auto m = P::vjepa2_1<P::vit_micro>();
    ramp(m);
    m.init(5);
    auto cfg = run21();
    if (!recipe) cfg.stages[1].context = train::ContextTermSettings{false, true};
    train::Trainer t(m, src, cfg);
    t.run(7);
    return t.history()[6].context;
  };
  BOOST_TEST(run_first_cooldown(true) != run_first_cooldown(false));
}

BOOST_AUTO_TEST_CASE(stage_context_settings_need_a_context_loss) {
  train::SyntheticSource src{3};
  auto m = P::vjepa2<P::vit_micro>();  // no context term
  auto cfg = run21();
  BOOST_CHECK_EXCEPTION(train::Trainer(m, src, cfg), ConfigError, [](const ConfigError& e) {
    return std::string(e.what()).find("Stage.context") != std::string::npos;
  });
}

BOOST_AUTO_TEST_CASE(checkpoint_metadata_is_range_checked) {
  const auto dir = temp_dir("meta");
  train::SyntheticSource src{3};
  const auto good = dir / "good.safetensors";
  {
    auto m = P::vjepa2<P::vit_micro>();
    m.init(1);
    auto cfg = run21();
    cfg.stages = {train::Recipes::vjepa2_pretrain(1, 6), train::Recipes::vjepa2_cooldown(1, 4)};
    train::Trainer t(m, src, cfg);
    t.run(7);
    train::save_checkpoint(good.string(), m, t);
  }
  struct Case {
    const char* key;
    const char* value;
  };
  const Case cases[] = {
      {"global_step", "-1"}, {"global_step", "nan"}, {"global_step", "18446744073709551616"}, {"global_step", " 7"},
      {"global_step", "+7"}, {"global_step", "8"}, {"global_step", "99999"}, {"stage", "3"}, {"stage", "-1"},
      {"local_step", "4"}, {"local_step", "1e3"}, {"bad_in_row", "10"}, {"bad_steps", "8"}, {"adam_steps", "8"},
      {"mask_seed", "-1"}, {"video_position", "0x10"}, {"stage_steps", "6,-4"}, {"stage_steps", "8,4"},
  };
  for (const auto& c : cases) {
    const auto bad = dir / "bad.safetensors";
    fs::copy_file(good, bad, fs::copy_options::overwrite_existing);
    set_metadata(bad, c.key, c.value);
    auto m = P::vjepa2<P::vit_micro>();
    m.init(2);
    auto cfg = run21();
    cfg.stages = {train::Recipes::vjepa2_pretrain(1, 6), train::Recipes::vjepa2_cooldown(1, 4)};
    train::Trainer t(m, src, cfg);
    std::vector<float> before(m.encoder_params().data(), m.encoder_params().data() + m.encoder_params().numel());
    bool threw = false;
    try {
      train::load_checkpoint(bad.string(), m, t);
    } catch (const jepa::Error& e) {
      threw = true;
      const std::string w = e.what();
      BOOST_TEST((w.find(c.key) != std::string::npos || w.find("schedule") != std::string::npos ||
                  w.find("inconsistent") != std::string::npos),
                 c.key << "=" << c.value << ": " << w);
    }
    BOOST_TEST(threw, c.key << " = '" << c.value << "' was accepted");
    // Nothing was taken from the refused file.
    BOOST_TEST(t.state().global_step == 0u);
    BOOST_TEST(std::memcmp(before.data(), m.encoder_params().data(), before.size() * sizeof(float)) == 0);
  }
  // The per-step log: a NaN, a huge, a fractional or a decreasing step; a stage out of range.
  struct LogCase {
    std::size_t index;
    double value;
  };
  const LogCase logs[] = {{0, std::nan("")}, {0, 1e300}, {0, 2.5}, {15, 1.0}, {1, 7.0}, {1, -1.0}, {14, 0.5}, {29, 2.0}};
  for (const auto& c : logs) {
    const auto bad = dir / "badlog.safetensors";
    fs::copy_file(good, bad, fs::copy_options::overwrite_existing);
    poke_f64(bad, "train_log", c.index, c.value);
    set_metadata(bad, "content_hash", "", true);  // as a file without a hash: the log's own checks
    auto m = P::vjepa2<P::vit_micro>();
    auto cfg = run21();
    cfg.stages = {train::Recipes::vjepa2_pretrain(1, 6), train::Recipes::vjepa2_cooldown(1, 4)};
    train::Trainer t(m, src, cfg);
    BOOST_CHECK_EXCEPTION(train::load_checkpoint(bad.string(), m, t), IoError, [&](const IoError& e) {
      return std::string(e.what()).find("train_log row") != std::string::npos;
    });
    BOOST_TEST(t.state().global_step == 0u);
  }
  // The untouched file loads.
  auto m = P::vjepa2<P::vit_micro>();
  auto cfg = run21();
  cfg.stages = {train::Recipes::vjepa2_pretrain(1, 6), train::Recipes::vjepa2_cooldown(1, 4)};
  train::Trainer t(m, src, cfg);
  train::load_checkpoint(good.string(), m, t);
  BOOST_TEST(t.state().global_step == 7u);
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(a_changed_schedule_is_refused) {
  const auto dir = temp_dir("sched");
  train::SyntheticSource src{3};
  const auto ckpt = (dir / "c.safetensors").string();
  auto make = [](std::uint64_t pre) {
    auto cfg = run21();
    cfg.stages = {train::Recipes::vjepa2_pretrain(1, pre), train::Recipes::vjepa2_cooldown(1, 4)};
    return cfg;
  };
  {
    auto m = P::vjepa2<P::vit_micro>();
    train::Trainer t(m, src, make(6));
    t.run();
    train::save_checkpoint(ckpt, m, t);
  }
  for (std::uint64_t pre : {3u, 30u}) {  // shortened, extended
    auto m = P::vjepa2<P::vit_micro>();
    train::Trainer t(m, src, make(pre));
    BOOST_CHECK_EXCEPTION(train::load_checkpoint(ckpt, m, t), ConfigError, [](const ConfigError& e) {
      const std::string w = e.what();
      return w.find("6 + 4 steps (pretrain, cooldown)") != std::string::npos &&
             w.find("resume with the original step counts") != std::string::npos;
    });
    BOOST_TEST(t.state().global_step == 0u);
  }
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(an_exploding_run_is_not_healthy) {
  train::SyntheticSource src{3};
  auto m = P::vjepa2<P::vit_micro>();
  m.init(1);
  auto cfg = run21();
  cfg.stages = {train::Recipes::vjepa2_pretrain(1, 40)};
  cfg.stages[0].lr.cosine.warmup = 2;
  cfg.data.resize(1);
  cfg.max_bad_steps = 40;
  train::Trainer t(m, src, cfg);
  train::CheckpointGuard guard;
  guard.reset(m, 0);
  t.run(10);  // the recipe's learning rate: healthy
  auto v = guard.assess(m, t);
  BOOST_TEST(v.healthy, v.reason);
  guard.accepted(m, 10);
  // The case: an absurd learning rate. Step 11 is finite but explodes the weights.
  t.mutable_state();
  auto& st = const_cast<train::Stage&>(t.config().stages[0]);
  st.lr.cosine.ref = st.lr.cosine.final = st.lr.cosine.start = 1e10;
  t.run(1);
  v = guard.assess(m, t);
  BOOST_TEST(!v.healthy);
  BOOST_TEST(v.reason.find("exploded") != std::string::npos, v.reason);
  t.run(3);
  v = guard.assess(m, t);
  BOOST_TEST(!v.healthy, "after steps 12-14: " << v.reason);
  BOOST_TEST(guard.last_healthy_step() == 10u);
}

BOOST_AUTO_TEST_CASE(run_directory_is_checked_up_front) {
  auto msg = [](const std::string& dir) {
    try {
      train::prepare_run_directory(dir, "--out");
    } catch (const jepa::Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  BOOST_TEST(msg("").find("--out is empty") != std::string::npos);
  BOOST_TEST(msg("/dev/null").find("is not a directory") != std::string::npos);
  const auto dir = temp_dir("dir");
  std::ofstream(dir / "file") << "x";
  BOOST_TEST(msg((dir / "file").string()).find("--out '" + (dir / "file").string() + "' is not a directory") != std::string::npos);
  BOOST_TEST(msg((dir / "file" / "sub").string()).find("cannot be created") != std::string::npos);
  BOOST_TEST(msg("/proc/jepa-run-test").find("--out '/proc/jepa-run-test'") != std::string::npos);
  // Stale temporaries of dead processes are removed; a live process's is kept.
  std::ofstream(dir / "checkpoint.safetensors.tmp.999999998") << "half";
  std::ofstream(dir / "log.csv.tmp.999999997") << "half";
  const std::string live = "checkpoint.safetensors.tmp." + std::to_string(::getppid());
  std::ofstream(dir / live) << "busy";
  std::ofstream(dir / "notes.tmp.txt") << "user file";
  const auto removed = train::prepare_run_directory(dir.string(), "--out");
  BOOST_TEST(removed.size() == 2u);
  BOOST_TEST(!fs::exists(dir / "checkpoint.safetensors.tmp.999999998"));
  BOOST_TEST(fs::exists(dir / live));
  BOOST_TEST(fs::exists(dir / "notes.tmp.txt"));
  // Atomic text: the old file or the new one, never a temporary left behind.
  io::write_atomic((dir / "log.csv").string(), {"a\n"});
  io::write_atomic((dir / "log.csv").string(), {"b\n"});
  std::ifstream in(dir / "log.csv");
  std::string line;
  std::getline(in, line);
  BOOST_TEST(line == "b");
  for (const auto& e : fs::directory_iterator(dir))
    BOOST_TEST(e.path().filename().string().find("log.csv.tmp") == std::string::npos);
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(a_flipped_bit_in_a_checkpoint_is_refused) {
  const auto dir = temp_dir("flip");
  train::SyntheticSource src{3};
  const auto ckpt = dir / "c.safetensors";
  auto cfg = run21();
  cfg.stages = {train::Recipes::vjepa2_pretrain(1, 6)};
  cfg.data.resize(1);
  {
    auto m = P::vjepa2<P::vit_micro>();
    train::Trainer t(m, src, cfg);
    t.run(3);
    train::save_checkpoint(ckpt.string(), m, t);
  }
  // One bit of one weight (the last byte of the file lies in the data section).
  {
    std::fstream f(ckpt, std::ios::binary | std::ios::in | std::ios::out);
    f.seekg(-1000, std::ios::end);
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x04);
    f.seekp(-1000, std::ios::end);
    f.write(&c, 1);
  }
  auto m = P::vjepa2<P::vit_micro>();
  train::Trainer t(m, src, cfg);
  BOOST_CHECK_EXCEPTION(train::load_checkpoint(ckpt.string(), m, t), IoError, [](const IoError& e) {
    return std::string(e.what()).find("content hash") != std::string::npos || std::string(e.what()).find("xxh64") != std::string::npos;
  });
  BOOST_TEST(t.state().global_step == 0u);
  fs::remove_all(dir);
}
