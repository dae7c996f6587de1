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
// during the write leaves the previous checkpoint intact.
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
  w.write(path);
}

template <class Model, class Trainer>
void load_checkpoint(const std::string& path, Model& model, Trainer& trainer) {
  const io::SafetensorsFile f(path);
  const auto& m = f.metadata();
  auto it = m.find("format");
  if (it == m.end() || it->second != kCheckpointFormat)
    throw IoError(jepa::detail::cat("jepa: '", path, "' is not a jepa training checkpoint (metadata format = '",
                                    it == m.end() ? std::string("<missing>") : it->second, "', expected '",
                                    kCheckpointFormat, "')"));
  const auto stages = detail::meta_u64(f, "stages");
  if (stages != trainer.config().stages.size())
    throw ConfigError(jepa::detail::cat("jepa: checkpoint '", path, "' was written by a run with ", stages,
                                        " stage(s); this run has ", trainer.config().stages.size()));
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
  TrainState s;
  s.global_step = detail::meta_u64(f, "global_step");
  s.stage = static_cast<std::size_t>(detail::meta_u64(f, "stage"));
  s.local_step = detail::meta_u64(f, "local_step");
  s.video_position = detail::meta_u64(f, "video_position");
  s.image_position = detail::meta_u64(f, "image_position");
  s.bad_steps = detail::meta_u64(f, "bad_steps");
  s.bad_in_row = static_cast<int>(detail::meta_u64(f, "bad_in_row"));
  trainer.mutable_state() = s;
  opt.set_steps_taken(detail::meta_u64(f, "adam_steps"));
  model.mask_seed = detail::meta_u64(f, "mask_seed");
  auto& h = trainer.mutable_history();
  h.clear();
  if (f.contains("train_log")) {
    const auto v = f.read<double>("train_log");
    for (std::size_t r = 0; r + 15 <= v.size(); r += 15) {
      StepLog l;
      l.step = static_cast<std::uint64_t>(v[r]), l.stage = static_cast<std::size_t>(v[r + 1]);
      l.lr = v[r + 2], l.wd = v[r + 3], l.ema = v[r + 4], l.loss = v[r + 5], l.prediction = v[r + 6];
      l.context = v[r + 7], l.lambda = v[r + 8], l.grad_norm = v[r + 9], l.target_std = v[r + 10];
      l.rank_pred = v[r + 11], l.rank_target = v[r + 12], l.seconds = v[r + 13], l.skipped = v[r + 14] != 0;
      h.push_back(l);
    }
  }
  model.zero_grad();
  if constexpr (requires { trainer.resync(); }) trainer.resync();
}

}  // namespace jepa::train
