// train — the reference training loop: a JEPA preset chosen by name, the recipe's hyperparameters as
// defaults (overridable from a JSON config file and the command line), warmup → constant → cooldown
// with progressive resolution, on the built-in synthetic video source or a folder of videos.
//
//   train [--config FILE.json] [--family vjepa2|vjepa2_1|vjepa|ijepa]
//         [--size micro|tiny|small|base|large|huge|giant|gigantic] [--steps N] [--cooldown-steps N]
//         [--batch B] [--frames F] [--res S] [--cooldown-frames F] [--cooldown-res S] [--lr X]
//         [--out DIR] [--checkpoint-every N] [--seed N] [--no-resume]
//
// Writes DIR/log.csv (one row per step), DIR/loss.png and DIR/checkpoint.safetensors (atomically,
// every N steps and at the end); a rerun with the same DIR resumes where it stopped, bitwise.
//
// Data parallel (built with MPI): `mpirun -np N train …` trains on N processes; --batch and
// --image-batch are the GLOBAL batch (multiples of N), so the run is the same for any N up to
// reduction order. Rank 0 prints and writes; the others stay quiet. A rank that fails stops the job
// with its message.
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <set>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <type_traits>

#include "cli.hpp"
#include "jepa/dist/communicator.hpp"
#include "jepa/models/jepa_presets.hpp"
#include "jepa/train/checkpoint.hpp"
#include "jepa/train/run_dir.hpp"
#include "jepa/train/run_health.hpp"
#include "jepa/train/trainer.hpp"
#ifdef JEPA_TRAIN_WITH_MPI
#include <optional>

#include "jepa/dist/mpi.hpp"
#endif
#ifdef JEPA_TRAIN_WITH_FOLDERS
#include "jepa/train/folder_source.hpp"
#endif

using namespace jepa;
namespace P = jepa::models::presets;

namespace {

struct Options {
  std::string family = "vjepa2", size = "micro", out = "jepa-run", config, data = "synthetic", image_data;
  backend::cpu::MatmulPrecision precision = backend::cpu::MatmulPrecision::f32;
  std::uint64_t steps = 300, cooldown_steps = 60, checkpoint_every = 100, seed = 239, stop_after = 0;
  index_t batch = 4, frames = 4, res = 64, cooldown_frames = 8, cooldown_res = 64, image_batch = -1;
  index_t micro_batches = 1;
  std::optional<double> lr, lr_start, ema, wd;  // unset: the recipe's value
  double lr_final = 1e-6;
  std::set<std::string> given;  // the keys set by the config file or a flag
  bool resume = true;
};

// Every setting has one entry here: its config-file key, its command-line flag, its kind and the
// range it must lie in. The command line and the --config JSON go through the same checks, so a
// value is refused with the same rule whichever way it came (and names the way it came).
enum class Kind { count, seed, number, text };
struct Key {
  const char* key;   // config-file key
  const char* flag;  // command-line option
  Kind kind;
  double lo, hi;     // the allowed closed range (counts and numbers)
  bool lo_open;      // lo itself not allowed (e.g. a learning rate > 0)
  const char* help;
};
constexpr double kMaxSteps = 1e12, kMaxExtent = 1 << 20;
const Key kKeys[] = {
    {"family", "--family", Kind::text, 0, 0, false, "vjepa2 (default) | vjepa2_1 | vjepa | ijepa"},
    {"size", "--size", Kind::text, 0, 0, false, "micro (default) | tiny | small | base | large | huge | giant | gigantic"},
    {"steps", "--steps", Kind::count, 1, kMaxSteps, false, "pretraining steps (default 300)"},
    {"cooldown_steps", "--cooldown-steps", Kind::count, 0, kMaxSteps, false, "cooldown steps, 0 = none (default 60)"},
    {"batch", "--batch", Kind::count, 1, kMaxExtent, false, "clips per step (default 4)"},
    {"frames", "--frames", Kind::count, 1, kMaxExtent, false, "frames per pretraining clip (default 4)"},
    {"res", "--res", Kind::count, 1, kMaxExtent, false, "pretraining resolution (default 64)"},
    {"cooldown_frames", "--cooldown-frames", Kind::count, 1, kMaxExtent, false, "frames per cooldown clip (default 8)"},
    {"cooldown_res", "--cooldown-res", Kind::count, 1, kMaxExtent, false, "cooldown resolution (default 64)"},
    {"image_batch", "--image-batch", Kind::count, 0, kMaxExtent, false, "2.1 images per step (default = batch)"},
    {"micro_batches", "--micro-batches", Kind::count, 1, 1 << 16, false, "gradient accumulation (default 1)"},
    {"lr", "--lr", Kind::number, 0, 1e300, true, "peak learning rate, > 0 (default: the recipe's)"},
    {"lr_start", "--lr-start", Kind::number, 0, 1e300, true, "warmup start learning rate, > 0 (default: the recipe's)"},
    {"lr_final", "--lr-final", Kind::number, 0, 1e300, false, "cooldown target learning rate, >= 0 (default 1e-6)"},
    {"wd", "--wd", Kind::number, 0, 1e300, false, "weight decay, >= 0 (default 0.04)"},
    {"ema", "--ema", Kind::number, 0, 1, false, "EMA momentum in [0, 1] (default: the recipe's)"},
    {"out", "--out", Kind::text, 0, 0, false, "run directory (default jepa-run)"},
    {"checkpoint_every", "--checkpoint-every", Kind::count, 0, kMaxSteps, false, "checkpoint every N steps, 0 = at the end (default 100)"},
    {"stop_after", "--stop-after", Kind::count, 0, kMaxSteps, false, "train at most N steps now, checkpoint, exit; 0 = all (default 0)"},
    {"seed", "--seed", Kind::seed, 0, 0, false, "model and mask seed (default 239)"},
    {"data", "--data", Kind::text, 0, 0, false, "synthetic | videos:DIR | frames:DIR | images:DIR"},
    {"image_data", "--image-data", Kind::text, 0, 0, false, "2.1 image stream, e.g. images:DIR"},
    {"precision", "--precision", Kind::text, 0, 0, false, "f32 (default) | bf16 GEMMs (fp32 master weights)"},
};

void usage() {
  std::puts(
      "train: pretrain a JEPA model with the published recipe (defaults) on synthetic video\n"
      "  --config FILE      JSON object with any of the config keys listed below (flags override it)\n"
      "  --family NAME      vjepa2 (default) | vjepa2_1 | vjepa | ijepa\n"
      "  --size NAME        micro (default) | tiny | small | base | large | huge | giant | gigantic\n"
      "  --steps N          pretraining steps: linear warmup (5 %, as 40 of 800 epochs) then constant LR\n"
      "                     (V-JEPA 2 / 2.1) or cosine (V-JEPA, I-JEPA)                  (default 300)\n"
      "  --cooldown-steps N linear LR decay over T_max = 1.25·N (the recipe's real end value); 0 = none\n"
      "                     (V-JEPA 2 / 2.1 only; 2.1: constant λ, unweighted context loss) (default 60)\n"
      "  --batch B --frames F --res S              pretraining clips  (default 4 clips of 4x64x64)\n"
      "  --cooldown-frames F --cooldown-res S      cooldown clips: progressive resolution (default 8x64x64)\n"
      "  --image-batch B    2.1: 1-frame images per step beside the videos (default = batch for vjepa2_1)\n"
      "  --micro-batches K  gradient accumulation over K micro-batches (default 1)\n"
      "  --lr X (> 0) --lr-start X (> 0) --lr-final X (>= 0) --wd X (>= 0) --ema X (in [0, 1])\n"
      "                     override the recipe's peak, start and final LR, weight decay, EMA momentum\n"
      "  --out DIR          run directory: log.csv, loss.png, checkpoint.safetensors (default jepa-run);\n"
      "                     checked writable before the first step\n"
      "  --checkpoint-every N   atomic checkpoint every N steps (default 100); a checkpoint is replaced\n"
      "                     only while the run is healthy (no skipped step, no exploding loss or weights)\n"
      "  --stop-after N     train at most N more steps in this invocation, checkpoint, exit (resume later)\n"
      "  --seed N           model and mask seed (default 239, as the V-JEPA 2 configs)\n"
      "  --data SPEC        synthetic (default: moving shapes, no download) | videos:DIR | frames:DIR |\n"
      "                     images:DIR — videos at 4 fps with the recipe's crop, flip and normalisation;\n"
      "                     unreadable files are skipped and reported\n"
      "  --image-data SPEC  2.1 image stream (default: synthetic 1-frame clips), e.g. images:DIR\n"
      "  --no-resume        start afresh even if DIR has a checkpoint (which is then replaced)\n"
      "  --precision P      f32 (default) | bf16: mixed precision on the CPU — GEMM inputs rounded to\n"
      "                     bfloat16 with fp32 accumulation (AMX or AVX512-BF16; fp32 where the CPU has\n"
      "                     neither); master weights, AdamW, LayerNorm, softmax and the loss stay fp32\n"
      "CPU GEMMs: oneDNN when the build has it, else the BLAS unless it runs generic kernels, else Eigen;\n"
      "JEPA_GEMM=onednn|openblas|eigen forces one (docs/design.md). The line 'gemm' of the run says which.\n"
      "Data parallel (a build with MPI): mpirun -np N train ... — --batch and --image-batch are global\n"
      "(multiples of N); rank 0 prints and writes DIR\n"
      "JEPA_MEMORY_LIMIT=8G caps the memory a run may plan (it is refused before allocating otherwise)\n"
      "\nConfig keys (--config FILE.json; unknown keys, wrong types and out-of-range values are refused):");
  for (const Key& k : kKeys) std::printf("  %-17s %-19s %s\n", k.key, k.kind == Kind::text ? "(string)" : k.kind == Kind::number ? "(number)" : "(integer)", k.help);
  examples::print_gemm_help_line();
}

/// Stores a checked value into its Options field.
void assign(Options& o, const Key& k, double num, std::uint64_t u, const std::string& text) {
  const std::string key = k.key;
  o.given.insert(key);
  auto idx = [&] { return static_cast<index_t>(u); };
  if (key == "family") o.family = text;
  else if (key == "size") o.size = text;
  else if (key == "out") o.out = text;
  else if (key == "data") o.data = text;
  else if (key == "image_data") o.image_data = text;
  else if (key == "precision") o.precision = backend::cpu::parse_matmul_precision(text, k.flag);
  else if (key == "steps") o.steps = u;
  else if (key == "cooldown_steps") o.cooldown_steps = u;
  else if (key == "checkpoint_every") o.checkpoint_every = u;
  else if (key == "stop_after") o.stop_after = u;
  else if (key == "seed") o.seed = u;
  else if (key == "batch") o.batch = idx();
  else if (key == "frames") o.frames = idx();
  else if (key == "res") o.res = idx();
  else if (key == "cooldown_frames") o.cooldown_frames = idx();
  else if (key == "cooldown_res") o.cooldown_res = idx();
  else if (key == "image_batch") o.image_batch = idx();
  else if (key == "micro_batches") o.micro_batches = idx();
  else if (key == "lr") o.lr = num;
  else if (key == "lr_start") o.lr_start = num;
  else if (key == "lr_final") o.lr_final = num;
  else if (key == "wd") o.wd = num;
  else if (key == "ema") o.ema = num;
}

/// The range rule of a key, in words ("an integer in [1, 1e12]", "a finite number > 0").
std::string rule(const Key& k) {
  char b[96];
  if (k.kind == Kind::seed) return "an integer in [0, 18446744073709551615]";
  if (k.kind == Kind::count) std::snprintf(b, sizeof b, "an integer in [%.15g, %.15g]", k.lo, k.hi);
  else if (k.hi < 1e300) std::snprintf(b, sizeof b, "a number in [%g, %g]", k.lo, k.hi);
  else std::snprintf(b, sizeof b, "a finite number %s %g", k.lo_open ? ">" : ">=", k.lo);
  return b;
}

/// Checks a number against a key's rule; `where` names how it was given.
void check_number(const Key& k, double v, const std::string& where, const std::string& shown) {
  const bool ok = std::isfinite(v) && (k.lo_open ? v > k.lo : v >= k.lo) && v <= k.hi &&
                  (k.kind != Kind::count || v == std::floor(v));
  if (!ok) throw ConfigError("jepa: " + where + " = " + shown + " is invalid: must be " + rule(k));
}

/// A value from the command line (text as typed).
void set_from_flag(Options& o, const Key& k, const std::string& v) {
  const std::string where = std::string("option ") + k.flag;
  if (k.kind == Kind::text) {
    if (v.empty() && std::string(k.key) != "image_data")
      throw ConfigError("jepa: " + where + " is empty: " + k.help);
    return assign(o, k, 0, 0, v);
  }
  std::size_t pos = 0;
  double d = 0;
  std::uint64_t u = 0;
  bool parsed = false;
  try {
    if (k.kind == Kind::number) {
      d = std::stod(v, &pos);
      parsed = pos == v.size();
    } else if (!v.empty() && v[0] != '-' && v[0] != '+' && v[0] != ' ') {
      u = std::stoull(v, &pos);
      parsed = pos == v.size();
      d = static_cast<double>(u);
    } else if (!v.empty() && v[0] == '-') {
      d = std::stod(v, &pos);  // a negative integer: refused by the range rule below, with its value
      parsed = pos == v.size();
    }
  } catch (const std::exception&) {
  }
  if (!parsed) throw ConfigError("jepa: " + where + " = '" + v + "' is not " + (k.kind == Kind::number ? "a number" : "an integer") +
                                 ": must be " + rule(k));
  if (k.kind != Kind::seed) check_number(k, d, where, "'" + v + "'");
  assign(o, k, d, u, v);
}

/// A value from the config file (a JSON value of any type).
void set_from_json(Options& o, const Key& k, const nlohmann::json& v, const std::string& file) {
  const std::string where = "config file '" + file + "': key \"" + k.key + "\"";
  const char* type = v.type_name();
  if (k.kind == Kind::text) {
    if (!v.is_string()) throw ConfigError("jepa: " + where + " is " + type + " " + v.dump() + ": must be a string (" + k.help + ")");
    return set_from_flag(o, k, v.get<std::string>());
  }
  if (!v.is_number())
    throw ConfigError("jepa: " + where + " is " + type + " " + v.dump() + ": must be " + rule(k));
  if (k.kind == Kind::seed) {
    if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<std::int64_t>() >= 0))
      throw ConfigError("jepa: " + where + " = " + v.dump() + " is invalid: must be " + rule(k));
    return assign(o, k, 0, v.get<std::uint64_t>(), "");
  }
  const double d = v.get<double>();
  check_number(k, d, where, v.dump());
  assign(o, k, d, k.kind == Kind::count ? static_cast<std::uint64_t>(d) : 0, "");
}

/// The entry whose flag (by_flag) or config key is `name`; null when there is none.
const Key* find_key(std::string_view name, bool by_flag) {
  for (const Key& k : kKeys)
    if (name == (by_flag ? k.flag : k.key)) return &k;
  return nullptr;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; ++i)
    if (std::string(argv[i]) == "--config") o.config = argv[i + 1];
  if (!o.config.empty()) {
    std::ifstream f(o.config);
    if (!f) throw IoError("jepa: option --config: cannot read the config file '" + o.config + "': " + std::strerror(errno));
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(f);
    } catch (const std::exception& e) {
      throw IoError("jepa: config file '" + o.config + "' is not valid JSON: " + e.what());
    }
    if (!j.is_object())
      throw ConfigError("jepa: config file '" + o.config + "' must hold a JSON object ({\"steps\": 300, ...}), not " +
                        std::string(j.type_name()) + "; see train --help for the keys");
    for (const auto& [key, value] : j.items()) {
      const Key* k = find_key(key, false);
      if (!k) {
        std::string all;
        for (const Key& c : kKeys) all += (all.empty() ? "" : ", ") + std::string(c.key);
        throw ConfigError("jepa: config file '" + o.config + "': unknown key \"" + key + "\"; the keys are " + all);
      }
      set_from_json(o, *k, value, o.config);
    }
  }
  for (examples::Args args(argc, argv); args.next();) {
    if (args.is("--help") || args.is("-h")) usage(), std::exit(0);
    else if (args.is("--config")) args.value();  // read above, before the other options
    else if (args.is("--no-resume")) o.resume = false;
    else if (const Key* k = find_key(args.flag(), true)) set_from_flag(o, *k, args.value());
    else args.unknown();
  }
  // Options that the chosen family has no use for are refused, not silently ignored.
  auto given = [&](const char* key) { return o.given.count(key) != 0; };
  auto flag_of = [](const char* key) { return std::string(find_key(key, false)->flag); };
  if (o.family == "vjepa" || o.family == "ijepa")
    for (const char* key : {"cooldown_steps", "cooldown_frames", "cooldown_res", "lr_final"})
      if (given(key))
        throw ConfigError("jepa: " + flag_of(key) + " applies to --family vjepa2 and vjepa2_1 only: " + o.family +
                          "'s recipe has no cooldown stage (its learning rate follows one cosine to 1e-6)");
  if (o.family != "vjepa2_1")
    for (const char* key : {"image_batch", "image_data"})
      if (given(key))
        throw ConfigError("jepa: " + flag_of(key) + " applies to --family vjepa2_1 only (the family that trains on images "
                          "beside videos); this run is --family " + o.family);
  if (o.family == "ijepa" && (given("frames")))
    throw ConfigError("jepa: --frames does not apply to --family ijepa: I-JEPA trains on single images");
  return o;
}

/// The recipe's stages for a family, rescaled to `steps` (+ `cooldown_steps`) with the recipe's
/// proportions: warmup = 40/800 of pretraining; the 2.1 λ warmup spans 5 %–10 % of it (15k–30k of
/// 300k); the cooldown decays over 1.25× its length.
train::TrainConfig stages_for(const Options& o) {
  train::TrainConfig c;
  const std::uint64_t warm = std::max<std::uint64_t>(1, o.steps / 20);
  train::Stage pre;
  const bool v2 = o.family == "vjepa2" || o.family == "vjepa2_1";
  if (o.family == "vjepa2") pre = train::Recipes::vjepa2_pretrain(1, o.steps);
  else if (o.family == "vjepa2_1") pre = train::Recipes::vjepa21_pretrain(1, o.steps);
  else if (o.family == "vjepa") pre = train::Recipes::vjepa(1, o.steps);
  else pre = train::Recipes::ijepa(1, o.steps);
  pre.lr.cosine.warmup = warm;
  pre.lr.cosine.t_max = pre.horizon();
  if (o.lr) {
    pre.lr.cosine.ref = *o.lr;
    if (v2) pre.lr.cosine.final = *o.lr;
  }
  if (o.lr_start) pre.lr.cosine.start = *o.lr_start;
  if (o.wd) pre.wd = {*o.wd, *o.wd, pre.horizon()};
  if (o.ema) pre.ema = {*o.ema, *o.ema, 1.0, false};
  pre.clip_after = warm;
  c.stages.push_back(pre);
  const index_t images = o.family == "vjepa2_1" ? (o.image_batch < 0 ? o.batch : o.image_batch) : 0;
  c.data.push_back({o.frames, o.res, o.batch, images});
  if (v2 && o.cooldown_steps > 0) {
    train::Stage cool = o.family == "vjepa2" ? train::Recipes::vjepa2_cooldown(1, o.cooldown_steps, pre.lr.cosine.ref)
                                             : train::Recipes::vjepa21_cooldown(1, o.cooldown_steps);
    cool.lr.decay.ref = pre.lr.cosine.ref;
    cool.lr.decay.final = o.lr_final;
    cool.wd = pre.wd;
    cool.ema = pre.ema;
    c.stages.push_back(cool);
    c.data.push_back({o.cooldown_frames, o.cooldown_res, o.batch, images});
  }
  c.micro_batches = o.micro_batches;
  c.checkpoint_every = o.checkpoint_every;
  c.out_dir = o.out;
  return c;
}

train::AnySource make_source(const std::string& spec, std::uint64_t seed) {
  if (spec == "synthetic") return train::AnySource::of(train::SyntheticSource{seed});
#ifdef JEPA_TRAIN_WITH_FOLDERS
  return train::AnySource::of(train::FolderSource::parse(spec));
#else
  throw ConfigError("jepa: --data '" + spec + "' needs FFmpeg and stb: this build has only the synthetic source");
#endif
}

/// "--steps 30 --cooldown-steps 2": the options that set a schedule of `steps` per stage.
std::string schedule_options(const std::vector<std::uint64_t>& steps, bool has_cooldown) {
  std::string r = "--steps ";
  r += std::to_string(steps.empty() ? 0 : steps[0]);
  if (has_cooldown) {
    r += " --cooldown-steps ";
    r += std::to_string(steps.size() > 1 ? steps[1] : 0);
  }
  return r;
}

template <class Model>
int run(Model model, const Options& o, const char* name, const dist::AnyCommunicator& comm) {
  const bool root = comm.rank() == 0;
  auto cfg = stages_for(o);
  if constexpr (Model::levels > 1) {  // 2.1: λ warms up over 5 %–10 % of pretraining (15k–30k of 300k)
    model.loss_policy_mut().lambda.start = std::max<std::uint64_t>(1, o.steps / 20);
    model.loss_policy_mut().lambda.end = std::max<std::uint64_t>(2, o.steps / 10);
  }
  // The run directory is checked before anything is trained: a path that cannot hold the run fails
  // now, naming --out, instead of after N steps. A killed run's temporaries are removed.
  if (root)
    for (const auto& t : train::prepare_run_directory(o.out, "--out"))
      std::fprintf(stderr, "jepa: removed %s/%s, a temporary file left by an interrupted run\n", o.out.c_str(), t.c_str());
  // The largest single buffer a step fills is the clip batch: refuse it before allocating.
  for (std::size_t s = 0; s < cfg.data.size(); ++s)
    require_host_memory(bytes_of(cfg.data[s].batch, 3, cfg.data[s].frames, cfg.data[s].size, cfg.data[s].size, sizeof(float)),
                        s == 0 ? "the clip batch (--batch x 3 x --frames x --res^2 floats)"
                               : "the cooldown clip batch (--batch x 3 x --cooldown-frames x --cooldown-res^2 floats)");
  model.init(o.seed);
  model.mask_seed = o.seed;
  const train::AnySource video = make_source(o.data, o.seed);
  const train::AnySource images = make_source(o.image_data.empty() ? "synthetic" : o.image_data, o.seed + 1);
  train::Trainer trainer(model, video, cfg, &images, comm);
  const auto ckpt = std::filesystem::path(o.out) / "checkpoint.safetensors";
  if (!root) {  // the other ranks train in step with rank 0, which prints, writes, and resumes
    trainer.run(o.stop_after ? o.stop_after : ~std::uint64_t{0});
    return 0;
  }
  const bool v2 = o.family == "vjepa2" || o.family == "vjepa2_1";
  std::printf("model      %s: encoder %zu + predictor %zu parameters\n", name, model.encoder().param_count(),
              model.predictor().param_count());
  std::printf("gemm       %s\n", backend::cpu::gemm_report().c_str());
  if (comm.size() > 1) std::printf("ranks      %d (data parallel: each takes 1/%d of every batch)\n", comm.size(), comm.size());
  for (std::size_t s = 0; s < cfg.stages.size(); ++s)
    std::printf("stage %zu    %-9s %llu steps, %ld clips of %ldx%ldx%ld%s, lr %s %.3g -> %.3g\n", s,
                cfg.stages[s].name.c_str(), static_cast<unsigned long long>(cfg.stages[s].steps()),
                static_cast<long>(cfg.data[s].batch), static_cast<long>(cfg.data[s].frames),
                static_cast<long>(cfg.data[s].size), static_cast<long>(cfg.data[s].size),
                cfg.data[s].image_batch ? " + images" : "",
                cfg.stages[s].lr.kind == train::LrSchedule::Kind::linear_decay ? "linear decay" : "warmup",
                cfg.stages[s].lr(1), cfg.stages[s].lr(cfg.stages[s].steps()));
  train::CheckpointGuard guard;
  if (o.resume && std::filesystem::exists(ckpt)) {  // rank 0 loads; the first step broadcasts it
    const std::string hint = "'" + ckpt.string() + "' is resumed because --out '" + o.out +
                             "' holds it; to start afresh there use --no-resume (its checkpoint is then replaced), "
                             "or give another --out";
    try {
      train::load_checkpoint(ckpt.string(), model, trainer);
    } catch (const train::ScheduleMismatch& e) {
      throw ConfigError("jepa: --out '" + o.out + "' holds a checkpoint of a run of " +
                        train::describe_schedule(e.theirs, cfg.stages) + ", but this command asks for " +
                        train::describe_schedule(e.mine, cfg.stages) + " (" + schedule_options(e.mine, v2) +
                        "). The warmup, the learning-rate decay and the 2.1 λ ramp are derived from these step counts, "
                        "so continuing would silently change the schedule. To continue that run, give " +
                        schedule_options(e.theirs, v2) + "; to train a new one, give another --out or --no-resume");
    } catch (const jepa::Error& e) {
      throw IoError(std::string(e.what()) + " — " + hint);
    }
    guard.reset(model, trainer.state().global_step);
    std::printf("resumed    from %s at step %llu\n", ckpt.string().c_str(),
                static_cast<unsigned long long>(trainer.state().global_step));
    if (trainer.finished()) {
      std::printf("finished   the run in %s is already complete (%llu steps): nothing to train. To train longer, "
                  "start a new run with more steps (another --out, or --no-resume)\n",
                  o.out.c_str(), static_cast<unsigned long long>(trainer.state().global_step));
      trainer.run(0);  // data parallel: the other ranks wait in the first step's broadcast
      return 0;
    }
  } else {
    guard.reset(model, 0);
  }
  std::fflush(stdout);  // the header before the progress lines, also when both go to one file
  const auto csv = (std::filesystem::path(o.out) / "log.csv").string();
  const auto png = (std::filesystem::path(o.out) / "loss.png").string();
  // Writes the checkpoint only while the run is healthy (train/run_health.hpp); the log and the plot
  // always (atomically), so the user sees what went wrong.
  auto checkpoint = [&](std::uint64_t step) {
    const auto verdict = guard.assess(model, trainer);
    if (verdict.healthy) {
      train::save_checkpoint(ckpt.string(), model, trainer);
      guard.accepted(model, step);
    } else {
      std::fprintf(stderr, "\njepa: step %llu: checkpoint not written: %s; %s\n", static_cast<unsigned long long>(step),
                   verdict.reason.c_str(),
                   guard.last_healthy_step() > 0
                       ? ("'" + ckpt.string() + "' keeps the last healthy state (step " +
                          std::to_string(guard.last_healthy_step()) + ")").c_str()
                       : "no checkpoint of this run has been written yet");
    }
    trainer.write_csv(csv);
    trainer.write_loss_png(png, name);
    return verdict.healthy;
  };
  trainer.on_step = [&](const train::StepLog& log) {
    if (o.checkpoint_every && log.step % o.checkpoint_every == 0) checkpoint(log.step);
  };
  try {
    trainer.run(o.stop_after ? o.stop_after : ~std::uint64_t{0});
  } catch (const NumericError& e) {  // too many non-finite steps in a row: say what is on disk
    trainer.write_csv(csv);
    trainer.write_loss_png(png, name);
    const bool have = std::filesystem::exists(ckpt);
    throw NumericError(std::string(e.what()) + ". " +
                       (have ? "'" + ckpt.string() + "' holds the last healthy state (step " +
                                   std::to_string(guard.last_healthy_step()) + ") and was not replaced after it"
                             : std::string("no checkpoint was written")) +
                       "; " + csv + " has every step");
  }
  const bool healthy = checkpoint(trainer.state().global_step);
  const auto& h = trainer.history();
  if (!h.empty()) {
    const std::size_t k = std::min<std::size_t>(10, h.size());
    double first = 0, last = 0;
    for (std::size_t i = 0; i < k; ++i) first += h[i].loss / k, last += h[h.size() - 1 - i].loss / k;
    std::printf("loss       %.4f (mean of the first %zu steps) -> %.4f (last %zu)\n", first, k, last, k);
    std::printf("health     target std %.3f, effective rank: predictions %.1f, targets %.1f; %llu skipped steps\n",
                h.back().target_std, h.back().rank_pred, h.back().rank_target,
                static_cast<unsigned long long>(trainer.state().bad_steps));
  }
  if (!healthy) {
    std::printf("wrote      %s, %s (the checkpoint was not replaced: the run ended unhealthy)\n", csv.c_str(), png.c_str());
    std::fflush(stdout);
    std::fprintf(stderr, "\nerror: jepa: the run ended unhealthy (see above); '%s' %s\n", ckpt.string().c_str(),
                 std::filesystem::exists(ckpt)
                     ? ("holds the last healthy state (step " + std::to_string(guard.last_healthy_step()) + ")").c_str()
                     : "was not written");
    return 3;
  }
  std::printf("wrote      %s, %s, %s\n", csv.c_str(), png.c_str(), ckpt.string().c_str());
  return 0;
}

/// Before the model is built: its parameters, gradients, EMA target and AdamW moments (5 copies of
/// the encoder's weights, 4 of the predictor's) must fit, or the run is refused with the total and
/// what it consists of. Constructing the modules alone plans their layouts and allocates nothing.
template <class Model>
void require_model_memory(const models::VitConfig& enc, const models::PredictorConfig& pred, const Options& o) {
  const typename Model::encoder_type e(enc);
  const typename Model::predictor_type p(pred);
  const std::size_t elem = sizeof(typename Model::T);
  const std::size_t bytes = bytes_of(5 * e.param_count() + 4 * p.param_count(), elem);
  require_host_memory(bytes,
                      "--size " + o.size + " (" + std::to_string(e.param_count()) + " encoder and " +
                          std::to_string(p.param_count()) +
                          " predictor parameters, kept as weights, gradients, EMA target and two AdamW moments)",
                      "choose a smaller --size");
}

template <const P::EncoderShape& S>
int dispatch(const Options& o, const dist::AnyCommunicator& comm) {
  const std::string name = o.family + " " + std::string(S.name);
  auto check = [&](auto tag, const auto& c) {
    require_model_memory<typename decltype(tag)::type>(c.encoder, c.predictor, o);
  };
  if (o.family == "vjepa2") {
    check(std::type_identity<decltype(P::vjepa2<S>())>{}, P::vjepa2_model_config(S));
    return run(P::vjepa2<S>(), o, name.c_str(), comm);
  }
  if (o.family == "vjepa2_1") {
    check(std::type_identity<decltype(P::vjepa2_1<S>())>{}, P::vjepa21_model_config(S));
    return run(P::vjepa2_1<S>(), o, name.c_str(), comm);
  }
  if (o.family == "vjepa") {
    check(std::type_identity<decltype(P::vjepa<S>())>{}, P::vjepa_model_config(S));
    return run(P::vjepa<S>(), o, name.c_str(), comm);
  }
  if (o.family == "ijepa") {
    Options img = o;  // I-JEPA trains on images: one frame through Patch2d<14>
    img.frames = 1;
    if (img.res % 14) img.res = 14 * std::max<index_t>(2, img.res / 14);
    check(std::type_identity<decltype(P::ijepa<S>())>{}, P::ijepa_model_config(S));
    return run(P::ijepa<S>(), img, name.c_str(), comm);
  }
  throw ConfigError("jepa: --family = '" + o.family + "' is invalid: use vjepa2, vjepa2_1, vjepa or ijepa");
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") return usage(), 0;
  dist::AnyCommunicator comm;  // one process, unless started by an MPI launcher
#ifdef JEPA_TRAIN_WITH_MPI
  std::optional<dist::MpiSession> mpi;
  try {
    if (dist::launched_by_mpi()) {
      mpi.emplace(argc, argv);
      comm = dist::MpiCommunicator();
    }
  } catch (const jepa::Error& e) {
    std::fprintf(stderr, "\nerror: %s\n", e.what());
    return 2;
  }
#endif
  try {
    const Options o = parse(argc, argv);
    backend::cpu::set_matmul_precision(o.precision);
    if (o.size == "micro") return dispatch<P::vit_micro>(o, comm);
    if (o.size == "tiny") return dispatch<P::vit_tiny>(o, comm);
    if (o.size == "small") return dispatch<P::vit_small>(o, comm);
    if (o.size == "base") return dispatch<P::vit_base>(o, comm);
    if (o.size == "large") return dispatch<P::vit_large>(o, comm);
    if (o.size == "huge") return dispatch<P::vit_huge>(o, comm);
    if (o.size == "giant") return dispatch<P::vit_giant_xformers>(o, comm);
    if (o.size == "gigantic") return dispatch<P::vit_gigantic_xformers>(o, comm);
    throw ConfigError("jepa: --size = '" + o.size +
                      "' is invalid: use micro, tiny, small, base, large, huge, giant or gigantic");
  } catch (const dist::RankFailure& e) {  // every rank knows: the failing one says why, all end
    if (e.is_origin()) std::fprintf(stderr, "\nerror: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::string msg = e.what();
    const bool bad_alloc = dynamic_cast<const std::bad_alloc*>(&e) != nullptr;
    if (bad_alloc) msg = "jepa: out of memory (" + format_bytes(available_host_memory()) + " available)";
    if (bad_alloc || dynamic_cast<const MemoryError*>(&e))
      msg += ".\nThe memory a run needs is set by --size, --batch, --frames and --res (and --cooldown-frames, "
             "--cooldown-res, --image-batch): lower them";
#ifdef JEPA_TRAIN_WITH_MPI
    // The other ranks may be waiting for this one in a collective: end the whole job.
    if (comm.size() > 1) dist::abort_job(msg);
#endif
    std::fprintf(stderr, "\nerror: %s\n", msg.c_str());
    return 2;
  } catch (...) {
    std::fprintf(stderr, "\nerror: jepa: an unknown exception ended the run\n");
    return 2;
  }
}
