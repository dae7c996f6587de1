// jepa/train/checkpoint.hpp — one-file checkpoints of a training run, and exact resume.
//
// A checkpoint is a single safetensors file (written atomically: temp file, fsync, rename), holding
//   encoder.<key>            context-encoder parameters      (official key names)
//   target_encoder.<key>     EMA target encoder
//   predictor.<key>          predictor
//   adam.m.encoder.<key>, adam.v.encoder.<key>, adam.m.predictor.<key>, adam.v.predictor.<key>
//   train_log                (steps, 15) float64: the per-step log, so CSV and loss curve continue
// and, as metadata, the run position: global/local step, stage, data positions, AdamW step count,
// the mask seed and skipped-step counters. Masks and synthetic data are functions of (seed, step,
// sample), so this is the whole state: resuming reproduces the uninterrupted run bitwise.
// A checkpoint is never written from non-finite parameters (NumericError instead), and a crash
// during the write leaves the previous checkpoint intact. The metadata also records the schedule
// (`stage_steps`) and a hash of the data; load_checkpoint checks every field against the run before
// it changes anything (train/run_health.hpp decides whether a run is healthy enough to checkpoint).
// Data-parallel runs: only rank 0 writes (save_checkpoint is a no-op on the other ranks, whose state
// is identical); loading on any ranks is enough — the next step broadcasts rank 0's state. Nothing
// in the file depends on the world size, so a run resumes at any number of ranks.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "jepa/core/error.hpp"
#include "jepa/io/safetensors.hpp"
#include "jepa/train/checkpoint_fields.hpp"
#include "jepa/train/trainer.hpp"

namespace jepa::train {

inline constexpr const char* kCheckpointFormat = "jepa-checkpoint-1";

/// A checkpoint written for a run with other stage step counts (load_checkpoint): `theirs` and `mine`
/// let a program name the options that would continue it.
struct ScheduleMismatch : ConfigError {
  ScheduleMismatch(const std::string& what, std::vector<std::uint64_t> t, std::vector<std::uint64_t> m)
      : ConfigError(what), theirs(std::move(t)), mine(std::move(m)) {}
  std::vector<std::uint64_t> theirs, mine;
};

template <class Model, class Trainer>
void save_checkpoint(const std::string& path, Model& model, Trainer& trainer) {
  if constexpr (requires { trainer.is_root(); })
    if (!trainer.is_root()) return;
  detail::require_finite(model.encoder_params().data(), model.encoder_params().layout(), "encoder");
  detail::require_finite(model.target_params().data(), model.target_params().layout(), "target encoder");
  detail::require_finite(model.predictor_params().data(), model.predictor_params().layout(), "predictor");
  const auto& el = model.encoder().layout();
  const auto& pl = model.predictor().layout();
  auto& opt = trainer.optimizer();
  io::SafetensorsWriter w;
  w.add_params(el, model.encoder_params().data(), "encoder.");
  w.add_params(el, model.target_params().data(), "target_encoder.");
  w.add_params(pl, model.predictor_params().data(), "predictor.");
  w.add_params(el, opt.first_moments()[0].data(), "adam.m.encoder.");
  w.add_params(el, opt.second_moments()[0].data(), "adam.v.encoder.");
  w.add_params(pl, opt.first_moments()[1].data(), "adam.m.predictor.");
  w.add_params(pl, opt.second_moments()[1].data(), "adam.v.predictor.");
  const auto& h = trainer.history();
  std::vector<double> log;
  log.reserve(h.size() * 15);
  for (const auto& l : h)
    for (double v : {static_cast<double>(l.step), static_cast<double>(l.stage), l.lr, l.wd, l.ema, l.loss, l.prediction,
                     l.context, l.lambda, l.grad_norm, l.target_std, l.rank_pred, l.rank_target, l.seconds,
                     l.skipped ? 1.0 : 0.0})
      log.push_back(v);
  if (!h.empty()) w.add_copy("train_log", Shape{static_cast<index_t>(h.size()), 15}, log);
  const auto& s = trainer.state();
  w.set_metadata("format", kCheckpointFormat);
  w.set_metadata("global_step", std::to_string(s.global_step));
  w.set_metadata("stage", std::to_string(s.stage));
  w.set_metadata("local_step", std::to_string(s.local_step));
  w.set_metadata("video_position", std::to_string(s.video_position));
  w.set_metadata("image_position", std::to_string(s.image_position));
  w.set_metadata("bad_steps", std::to_string(s.bad_steps));
  w.set_metadata("bad_in_row", std::to_string(s.bad_in_row));
  w.set_metadata("adam_steps", std::to_string(opt.steps_taken()));
  w.set_metadata("mask_seed", std::to_string(model.mask_seed));
  w.set_metadata("stages", std::to_string(trainer.config().stages.size()));
  std::string steps;
  for (const auto& st : trainer.config().stages) {
    if (!steps.empty()) steps += ',';
    steps += std::to_string(st.steps());
  }
  w.set_metadata("stage_steps", steps);
  // safetensors has no checksum of its own: without this hash a flipped bit in the data would load
  // silently. load_checkpoint verifies it (older checkpoints have none and load as before).
  w.set_content_hash(true);
  w.write(path);
}

/// The per-stage step counts a checkpoint's run was configured with ("stage_steps" = "300,60"), or
/// empty for a checkpoint written before they were recorded.
inline std::vector<std::uint64_t> checkpoint_stage_steps(const io::SafetensorsFile& f) {
  std::vector<std::uint64_t> out;
  const auto it = f.metadata().find("stage_steps");
  if (it == f.metadata().end()) return out;
  const std::string& t = it->second;
  for (std::size_t b = 0; b <= t.size();) {
    const std::size_t e = std::min(t.find(',', b), t.size());
    const auto n = detail::decimal_u64(std::string_view(t).substr(b, e - b));
    if (!n)
      throw IoError(jepa::detail::cat("jepa: checkpoint '", f.path(), "' metadata 'stage_steps' = '", t,
                                      "' is invalid: must be comma-separated step counts; the file is corrupt"));
    out.push_back(*n);
    b = e + 1;
  }
  return out;
}

/// Step counts as "300 + 60 steps (pretrain, cooldown)" for messages.
template <class Stages>
std::string describe_schedule(const std::vector<std::uint64_t>& steps, const Stages& stages) {
  std::string r;
  for (std::size_t i = 0; i < steps.size(); ++i) {
    if (i) r += " + ";
    r += std::to_string(steps[i]);
  }
  r += " steps";
  if (stages.size() == steps.size()) {
    r += " (";
    for (std::size_t i = 0; i < stages.size(); ++i) {
      if (i) r += ", ";
      r += stages[i].name;
    }
    r += ")";
  }
  return r;
}

/// Restores a run from a checkpoint written by save_checkpoint. Everything is read and checked before
/// anything is changed, so a refused file leaves the model and trainer as they were:
///   - the schedule: the stage step counts must equal this run's (the warmup length, the LR decay and
///     λ's ramp are derived from them, so a silent change would train another recipe);
///   - every run-position field against this run (global step = the steps of the finished stages +
///     the local step, bad steps ≤ steps, bad_in_row < max_bad_steps, …) and every train_log entry
///     (finite, integral where it is a step/stage/flag, steps increasing);
///   - the content hash, where the file has one (a bit flip in the data is refused, not trained on).
template <class Model, class Trainer>
void load_checkpoint(const std::string& path, Model& model, Trainer& trainer) {
  const io::SafetensorsFile f(path);
  const auto& m = f.metadata();
  auto it = m.find("format");
  if (it == m.end() || it->second != kCheckpointFormat)
    throw IoError(jepa::detail::cat("jepa: '", path, "' is not a jepa training checkpoint (metadata format = '",
                                    it == m.end() ? std::string("<missing>") : it->second, "', expected '",
                                    kCheckpointFormat, "')"));
  const auto& cfg = trainer.config();
  const std::size_t n_stages = cfg.stages.size();
  std::vector<std::uint64_t> mine;
  for (const auto& st : cfg.stages) mine.push_back(st.steps());
  const auto theirs = checkpoint_stage_steps(f);
  if (!theirs.empty() && theirs != mine)
    throw ScheduleMismatch(jepa::detail::cat("jepa: checkpoint '", path, "' was written by a run of ",
                                        describe_schedule(theirs, cfg.stages), "; this run is configured for ",
                                        describe_schedule(mine, cfg.stages),
                                        ". The schedules (warmup, learning-rate decay, λ ramp) are derived from these "
                                        "totals, so resuming would change them: resume with the original step counts, "
                                        "or start a new run"),
                           theirs, mine);
  const auto stages = detail::meta_u64(f, "stages");
  if (stages != n_stages)
    throw ConfigError(jepa::detail::cat("jepa: checkpoint '", path, "' was written by a run with ", stages,
                                        " stage(s); this run has ", n_stages));
  (void)f.verify_content_hash();
  // Run position, range-checked against this run.
  TrainState s;
  std::uint64_t total = 0;
  for (auto n : mine) total += n;
  s.stage = static_cast<std::size_t>(detail::meta_u64(f, "stage", "checkpoint", n_stages));
  const std::uint64_t stage_len = s.stage < n_stages ? mine[s.stage] - 1 : 0;  // local step < stage length
  s.local_step = detail::meta_u64(f, "local_step", "checkpoint", stage_len);
  std::uint64_t before = 0;
  for (std::size_t i = 0; i < s.stage; ++i) before += mine[i];
  s.global_step = detail::meta_u64(f, "global_step", "checkpoint", total);
  if (s.global_step != before + s.local_step)
    throw IoError(jepa::detail::cat("jepa: checkpoint '", path, "' is inconsistent: global_step = ", s.global_step,
                                    " but stage ", s.stage, " at local step ", s.local_step, " means step ",
                                    before + s.local_step, " of this schedule; the file is corrupt"));
  s.video_position = detail::meta_u64(f, "video_position");
  s.image_position = detail::meta_u64(f, "image_position");
  s.bad_steps = detail::meta_u64(f, "bad_steps", "checkpoint", s.global_step);
  s.bad_in_row = static_cast<int>(
      detail::meta_u64(f, "bad_in_row", "checkpoint", std::min<std::uint64_t>(s.bad_steps, static_cast<std::uint64_t>(cfg.max_bad_steps - 1))));
  const auto adam_steps = detail::meta_u64(f, "adam_steps", "checkpoint", s.global_step);
  const auto mask_seed = detail::meta_u64(f, "mask_seed");
  std::vector<StepLog> hist;
  if (f.contains("train_log")) {
    const auto v = f.read<double>("train_log");
    if (v.size() % 15 != 0 || v.size() / 15 > s.global_step)
      throw IoError(jepa::detail::cat("jepa: checkpoint '", path, "' train_log holds ", v.size(), " values: must be "
                                      "(steps, 15) with at most global_step = ", s.global_step, " rows; the file is corrupt"));
    std::uint64_t prev = 0;
    for (std::size_t r = 0; r < v.size(); r += 15) {
      const std::size_t row = r / 15;
      StepLog l;
      l.step = detail::log_u64(v[r], static_cast<double>(prev + 1), static_cast<double>(s.global_step), path, row, "step");
      l.stage = static_cast<std::size_t>(detail::log_u64(v[r + 1], 0, static_cast<double>(n_stages - 1), path, row, "stage"));
      l.lr = v[r + 2], l.wd = v[r + 3], l.ema = v[r + 4], l.loss = v[r + 5], l.prediction = v[r + 6];
      l.context = v[r + 7], l.lambda = v[r + 8], l.grad_norm = v[r + 9], l.target_std = v[r + 10];
      l.rank_pred = v[r + 11], l.rank_target = v[r + 12], l.seconds = v[r + 13];
      l.skipped = detail::log_u64(v[r + 14], 0, 1, path, row, "skipped") != 0;
      prev = l.step;
      hist.push_back(l);
    }
  }
  const auto& el = model.encoder().layout();
  const auto& pl = model.predictor().layout();
  auto& opt = trainer.optimizer();
  io::LoadOptions o;
  o.strict = true;
  auto load = [&](const nn::ParamLayout& L, auto* dst, const char* prefix) {
    o.prefix = prefix;
    f.read_into(L, dst, o);
  };
  load(el, model.encoder_params().data(), "encoder.");
  load(el, model.target_params().data(), "target_encoder.");
  load(pl, model.predictor_params().data(), "predictor.");
  load(el, opt.first_moments()[0].data(), "adam.m.encoder.");
  load(el, opt.second_moments()[0].data(), "adam.v.encoder.");
  load(pl, opt.first_moments()[1].data(), "adam.m.predictor.");
  load(pl, opt.second_moments()[1].data(), "adam.v.predictor.");
  trainer.mutable_state() = s;
  opt.set_steps_taken(adam_steps);
  model.mask_seed = mask_seed;
  trainer.mutable_history() = std::move(hist);
  model.zero_grad();
  if constexpr (requires { trainer.resync(); }) trainer.resync();
}

}  // namespace jepa::train
