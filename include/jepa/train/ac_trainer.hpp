// jepa/train/ac_trainer.hpp — training the V-JEPA 2-AC predictor on (frames, states, actions)
// trajectories with a frozen encoder, and exact checkpoint/resume (recipe_facts §6.3–6.4, §5.1).
//
// One optimizer step s (1-based; the schedule steps before the forward, as the recipe's do):
//   lr = WSD(s), wd = const                 (2-AC: warmup 7.5e-5 → 4.25e-4, constant, linear anneal to 0;
//                                            WD 0.04; no clipping; no EMA)
//   trajectories [pos, pos + B) of the source → frames (B,T,3,H,W), actions (B,T−1,A), states (B,T,Sd)
//   h = LN(encoder(each frame as a duplicated tubelet))          frozen, no gradient (FrameEncoder)
//   L = L_tf + L_roll                                             train/ac_objective.hpp
//   backward → AdamW on the predictor (the encoder is not in the optimizer: it gets no gradient)
// A non-finite loss or gradient skips the step (no update); too many in a row stop the run.
//
// Checkpoints are one safetensors file written atomically (temp file, fsync, rename):
//   encoder.<key>            the frozen encoder (official names; checked on resume)
//   predictor.<key>          the AC predictor (official names: the released file's "predictor")
//   adam.m.predictor.<key>, adam.v.predictor.<key>
//   train_log                (steps, 9) float64: step, lr, wd, loss, L_tf, L_roll, copy baseline, grad norm,
//                            seconds
// with metadata format = jepa-ac-checkpoint-1, step, data position, AdamW step count, skipped-step
// counters and the run length. Data is a pure function of the stream position, so resuming
// reproduces the uninterrupted run bitwise.
#pragma once

#include <chrono>
#include <unistd.h>
#include <cmath>
#include <concepts>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "jepa/io/plot.hpp"
#include "jepa/io/safetensors.hpp"
#include "jepa/train/checkpoint_fields.hpp"
#include "jepa/models/frame_encoder.hpp"
#include "jepa/train/ac_objective.hpp"
#include "jepa/train/optim.hpp"
#include "jepa/train/progress.hpp"
#include "jepa/train/schedules.hpp"

namespace jepa::train {

inline constexpr const char* kAcCheckpointFormat = "jepa-ac-checkpoint-1";

/// A source of trajectories: sample i of the stream is trajectory i, a pure function of i.
template <class S>
concept TrajectorySource = requires(const S& s, std::uint64_t pos, index_t b, float* f) {
  { s.frames() } -> std::convertible_to<index_t>;
  { s.height() } -> std::convertible_to<index_t>;
  { s.width() } -> std::convertible_to<index_t>;
  { s.channels() } -> std::convertible_to<index_t>;
  { s.action_dim() } -> std::convertible_to<index_t>;
  { s.state_dim() } -> std::convertible_to<index_t>;
  s.fill(pos, b, f, f, f);  // frames (B,T,C,H,W), actions (B,T−1,A), states (B,T,Sd)
};

struct AcTrainConfig {
  std::uint64_t steps = 94500;  // 315 epochs × 300 iterations
  index_t batch = 256;
  index_t auto_steps = 2;
  WSD lr{7.5e-5, 4.25e-4, 0.0, 4500, 94500, 4500};
  double weight_decay = 0.04;
  std::uint64_t checkpoint_every = 0;  // 0 = only when the caller saves
  std::string out_dir;                 // where run() writes checkpoints (empty = nowhere)
  int max_bad_steps = 10;
  bool progress = true;

  /// The recipe's WSD shape on a run of `steps`: 15/315 warmup from 7.5e-5 to `ref_lr`, constant,
  /// then a linear anneal to 0 over the last 15/315; WD 0.04.
  static AcTrainConfig recipe(std::uint64_t steps, index_t batch, double ref_lr = 4.25e-4) {
    AcTrainConfig c;
    c.steps = steps;
    c.batch = batch;
    const std::uint64_t w = std::max<std::uint64_t>(1, steps * 15 / 315);
    c.lr = WSD{7.5e-5 * ref_lr / 4.25e-4, ref_lr, 0.0, w, steps, w};
    return c;
  }
  void validate() const {
    check_field(steps >= 1, "AcTrainConfig.steps", steps, "must be >= 1");
    check_field(batch >= 1, "AcTrainConfig.batch", batch, "must be >= 1");
    check_field(auto_steps >= 1, "AcTrainConfig.auto_steps", auto_steps, "must be >= 1");
    check_field(max_bad_steps >= 1, "AcTrainConfig.max_bad_steps", max_bad_steps, "must be >= 1");
    check_field(weight_decay >= 0, "AcTrainConfig.weight_decay", weight_decay, "must be >= 0");
  }
};

struct AcTrainState {
  std::uint64_t step = 0;      // optimizer steps taken
  std::uint64_t position = 0;  // trajectories consumed
  std::uint64_t bad_steps = 0;
  int bad_in_row = 0;
};

struct AcStepLog {
  std::uint64_t step = 0;
  double lr = 0, wd = 0, loss = 0, teacher_forcing = 0, rollout = 0, grad_norm = 0, seconds = 0;
  double copy_baseline = 0;  // L_tf of predicting "nothing moves" on the same batch (diagnostic)
  bool skipped = false;
};

template <class Encoder, class Predictor, TrajectorySource Source>
class AcTrainer {
 public:
  using T = typename Predictor::value_type;
  static_assert(std::is_same_v<T, typename Encoder::value_type>, "jepa: the encoder and the AC predictor must share a scalar type");

  /// `params` are the predictor's parameters (trained in place); the encoder inside `frames` is frozen.
  AcTrainer(models::FrameEncoder<Encoder>& frames, const Predictor& pred, nn::ParameterSet<T>& params, const Source& source,
            AcTrainConfig cfg)
      : frames_(&frames), pred_(&pred), params_(&params), grads_(pred.layout()), src_(&source), cfg_(std::move(cfg)),
        opt_(std::vector<typename AdamW<T>::Group>{{&params, &grads_}}),
        obj_(pred, cfg_.batch, source.frames(), cfg_.auto_steps) {
    cfg_.validate();
    const auto& c = pred.config();
    check_field<ShapeError>(source.action_dim() == c.action_dim, "source action_dim", source.action_dim(),
                            jepa::detail::cat("action dimension mismatch: the predictor takes ", c.action_dim));
    check_field<ShapeError>(source.state_dim() == c.state_dim, "source state_dim", source.state_dim(),
                            jepa::detail::cat("state dimension mismatch: the predictor takes ", c.state_dim));
    check_field<ShapeError>(source.height() == frames.height() && source.width() == frames.width(), "source frame size",
                            jepa::detail::cat(source.height(), "x", source.width()),
                            jepa::detail::cat("the frame encoder was built for ", frames.height(), "x", frames.width()));
    check_field<ShapeError>(frames.tokens_per_frame() == c.tokens_per_frame() && frames.dim() == c.encoder_dim,
                            "AcPredictorConfig grid/encoder_dim", jepa::detail::cat(c.grid_h, "x", c.grid_w, ", D ", c.encoder_dim),
                            jepa::detail::cat("must match the encoder (", frames.grid_h(), "x", frames.grid_w(), ", D ", frames.dim(), ")"));
    check_field<ShapeError>(source.channels() == frames.encoder().config().in_chans, "source channels", source.channels(),
                            jepa::detail::cat("the encoder takes ", frames.encoder().config().in_chans));
  }

  const AcTrainState& state() const { return st_; }
  AcTrainState& mutable_state() { return st_; }
  const AcTrainConfig& config() const { return cfg_; }
  AdamW<T>& optimizer() { return opt_; }
  nn::ParameterSet<T>& params() { return *params_; }
  nn::ParameterSet<T>& grads() { return grads_; }
  const Predictor& predictor() const { return *pred_; }
  const models::FrameEncoder<Encoder>& frame_encoder() const { return *frames_; }
  const std::vector<AcStepLog>& history() const { return history_; }
  std::vector<AcStepLog>& mutable_history() { return history_; }
  bool finished() const { return st_.step >= cfg_.steps; }
  /// Called after every step (logging and checkpoint hooks).
  std::function<void(const AcStepLog&)> on_step;

  /// One optimizer step.
  AcStepLog step() {
    if (finished()) throw ConfigError("jepa: the AC training run is finished");
    const auto t0 = std::chrono::steady_clock::now();
    const index_t B = cfg_.batch, Tn = src_->frames(), C = src_->channels(), H = src_->height(), W = src_->width();
    const index_t A = src_->action_dim(), Sd = src_->state_dim();
    AcStepLog log;
    log.step = st_.step + 1;
    log.lr = cfg_.lr(log.step);
    log.wd = cfg_.weight_decay;
    frames_f_.resize(static_cast<std::size_t>(B * Tn * C * H * W));
    act_f_.resize(static_cast<std::size_t>(B * (Tn - 1) * A));
    sta_f_.resize(static_cast<std::size_t>(B * Tn * Sd));
    src_->fill(st_.position, B, frames_f_.data(), act_f_.data(), sta_f_.data());
    const T* frames = convert(frames_f_, frames_t_);
    const T* actions = convert(act_f_, act_t_);
    const T* states = convert(sta_f_, sta_t_);
    h_.resize(static_cast<std::size_t>(B * Tn * frames_->tokens_per_frame() * frames_->dim()));
    frames_->encode(frames, B * Tn, h_.data());  // (B·T, HW, D) = (B, T·HW, D)
    grads_.zero();
    bool ok = true;
    try {
      const auto rep = obj_.forward(params_->data(), h_.data(), actions, states);
      obj_.backward(params_->data(), grads_.data());
      log.loss = rep.loss, log.teacher_forcing = rep.teacher_forcing, log.rollout = rep.rollout;
      log.copy_baseline = rep.copy_baseline;
      log.grad_norm = grad_norm(std::vector<nn::ParameterSet<T>*>{&grads_});
      ok = std::isfinite(log.grad_norm);
    } catch (const NumericError& e) {
      std::fprintf(stderr, "\njepa: AC step %llu skipped: %s\n", static_cast<unsigned long long>(log.step), e.what());
      ok = false;
    }
    if (ok) {
      opt_.step(log.lr, log.wd);
      st_.bad_in_row = 0;
    } else {
      log.skipped = true;
      ++st_.bad_steps;
      if (++st_.bad_in_row >= cfg_.max_bad_steps)
        throw NumericError(jepa::detail::cat("jepa: stopping: ", st_.bad_in_row, " consecutive AC steps had a non-finite loss "
                                             "or gradient (last at step ", log.step, "); lower the learning rate"));
    }
    ++st_.step;
    st_.position += static_cast<std::uint64_t>(B);
    log.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    history_.push_back(log);
    if (on_step) on_step(log);
    return log;
  }

  /// Runs to the end, or `max_steps` more steps, with a progress line (rate, ETA).
  void run(std::uint64_t max_steps = ~std::uint64_t{0}) {
    ProgressLine progress(cfg_.steps);
    std::uint64_t done = 0;
    while (!finished() && done < max_steps) {
      const AcStepLog log = step();
      ++done;
      if (cfg_.progress) {
        char what[200];
        std::snprintf(what, sizeof what, "[ac] step %llu/%llu  loss %.4f (tf %.4f [nothing-moves %.4f], rollout %.4f)  lr %.2e",
                      static_cast<unsigned long long>(st_.step), static_cast<unsigned long long>(cfg_.steps), log.loss,
                      log.teacher_forcing, log.copy_baseline, log.rollout, log.lr);
        progress.update(done, st_.step, std::min<std::uint64_t>(cfg_.steps - st_.step, max_steps - done), finished(), what);
      }
    }
  }

  void write_csv(const std::string& path) const {
    std::ofstream f(path);
    if (!f) throw IoError("jepa: cannot write the AC training log '" + path + "'");
    f << "step,lr,wd,loss,teacher_forcing,rollout,copy_baseline,grad_norm,seconds,skipped\n";
    for (const auto& l : history_)
      f << l.step << ',' << l.lr << ',' << l.wd << ',' << l.loss << ',' << l.teacher_forcing << ',' << l.rollout << ','
        << l.copy_baseline << ',' << l.grad_norm << ',' << l.seconds << ',' << (l.skipped ? 1 : 0) << '\n';
  }
  void write_loss_png(const std::string& path, const std::string& title) const {
    io::Series tot{"loss", {}, {}, {31, 119, 180}}, tf{"teacher forcing", {}, {}, {255, 127, 14}},
        ro{"rollout", {}, {}, {44, 160, 44}}, cp{"'nothing moves'", {}, {}, {150, 150, 150}};
    for (const auto& l : history_) {
      if (l.skipped) continue;
      const double x = static_cast<double>(l.step);
      tot.x.push_back(x), tot.y.push_back(l.loss), tf.x.push_back(x), tf.y.push_back(l.teacher_forcing);
      ro.x.push_back(x), ro.y.push_back(l.rollout), cp.x.push_back(x), cp.y.push_back(l.copy_baseline);
    }
    io::write_line_plot(path, {tot, tf, ro, cp}, title, "step");
  }

 private:
  const T* convert(const std::vector<float>& f, std::vector<T>& t) {
    if constexpr (std::is_same_v<T, float>) {
      (void)t;
      return f.data();
    } else {
      t.assign(f.begin(), f.end());
      return t.data();
    }
  }

  models::FrameEncoder<Encoder>* frames_;
  const Predictor* pred_;
  nn::ParameterSet<T>* params_;
  nn::ParameterSet<T> grads_;
  const Source* src_;
  AcTrainConfig cfg_;
  AdamW<T> opt_;
  AcObjective<Predictor> obj_;
  AcTrainState st_;
  std::vector<AcStepLog> history_;
  std::vector<float> frames_f_, act_f_, sta_f_;
  std::vector<T> frames_t_, act_t_, sta_t_, h_;
};


/// Writes the whole run state (see the header comment) atomically to `path`.
template <class Trainer>
void save_ac_checkpoint(const std::string& path, Trainer& tr) {
  const auto& fe = tr.frame_encoder();
  const auto& el = fe.encoder().layout();
  const auto& pl = tr.predictor().layout();
  detail::require_finite(tr.params().data(), pl, "predictor", "AC checkpoint");
  auto& opt = tr.optimizer();
  io::SafetensorsWriter w;
  w.add_params(el, fe.params(), "encoder.");
  w.add_params(pl, tr.params().data(), "predictor.");
  w.add_params(pl, opt.first_moments()[0].data(), "adam.m.predictor.");
  w.add_params(pl, opt.second_moments()[0].data(), "adam.v.predictor.");
  std::vector<double> log;
  for (const auto& l : tr.history())
    for (double v : {static_cast<double>(l.step), l.lr, l.wd, l.loss, l.teacher_forcing, l.rollout, l.copy_baseline,
                     l.grad_norm, l.seconds})
      log.push_back(v);
  if (!tr.history().empty()) w.add_copy("train_log", Shape{static_cast<index_t>(tr.history().size()), 9}, log);
  const auto& s = tr.state();
  w.set_metadata("format", kAcCheckpointFormat);
  w.set_metadata("step", std::to_string(s.step));
  w.set_metadata("position", std::to_string(s.position));
  w.set_metadata("bad_steps", std::to_string(s.bad_steps));
  w.set_metadata("bad_in_row", std::to_string(s.bad_in_row));
  w.set_metadata("adam_steps", std::to_string(opt.steps_taken()));
  w.set_metadata("total_steps", std::to_string(tr.config().steps));
  w.set_content_hash(true);  // verified on resume: a damaged file is refused, not trained on
  w.write(path);
}

/// Restores a run written by save_ac_checkpoint; the encoder given to the trainer must be the one
/// the checkpoint was trained with (checked bitwise), and the run length must match.
template <class Trainer>
void load_ac_checkpoint(const std::string& path, Trainer& tr) {
  using T = typename Trainer::T;
  const io::SafetensorsFile f(path);
  const auto& m = f.metadata();
  const auto it = m.find("format");
  (void)f.verify_content_hash();
  if (it == m.end() || it->second != kAcCheckpointFormat)
    throw IoError(jepa::detail::cat("jepa: '", path, "' is not a jepa AC training checkpoint (metadata format = '",
                                    it == m.end() ? std::string("<missing>") : it->second, "', expected '",
                                    kAcCheckpointFormat, "')"));
  const auto total = detail::meta_u64(f, "total_steps", "AC checkpoint");
  if (total != tr.config().steps)
    throw ConfigError(jepa::detail::cat("jepa: AC checkpoint '", path, "' was written by a run of ", total,
                                        " steps; this run has ", tr.config().steps, " (the schedule would differ)"));
  const auto& fe = tr.frame_encoder();
  const auto& el = fe.encoder().layout();
  const auto& pl = tr.predictor().layout();
  io::LoadOptions o;
  o.strict = true;
  o.prefix = "encoder.";
  std::vector<T> enc(el.numel());
  f.read_into(el, enc.data(), o);
  for (const auto& p : el.params())
    if (std::memcmp(enc.data() + p.offset, fe.params() + p.offset, p.numel() * sizeof(T)) != 0)
      throw ConfigError(jepa::detail::cat("jepa: AC checkpoint '", path, "' was trained on a different frozen encoder (parameter '",
                                          p.name, "' differs); resume with the same encoder weights"));
  auto& opt = tr.optimizer();
  o.prefix = "predictor.";
  f.read_into(pl, tr.params().data(), o);
  o.prefix = "adam.m.predictor.";
  f.read_into(pl, opt.first_moments()[0].data(), o);
  o.prefix = "adam.v.predictor.";
  f.read_into(pl, opt.second_moments()[0].data(), o);
  // Every run-position field is range-checked against this run before anything is taken from it.
  AcTrainState s;
  s.step = detail::meta_u64(f, "step", "AC checkpoint", total);
  s.position = detail::meta_u64(f, "position", "AC checkpoint");
  s.bad_steps = detail::meta_u64(f, "bad_steps", "AC checkpoint", s.step);
  s.bad_in_row = static_cast<int>(detail::meta_u64(f, "bad_in_row", "AC checkpoint",
                                                   static_cast<std::uint64_t>(tr.config().max_bad_steps - 1)));
  const auto adam_steps = detail::meta_u64(f, "adam_steps", "AC checkpoint", s.step);
  std::vector<AcStepLog> hist;
  if (f.contains("train_log")) {
    const auto v = f.read<double>("train_log");
    for (std::size_t r = 0; r + 9 <= v.size(); r += 9) {
      AcStepLog l;
      l.step = detail::log_u64(v[r], 1, static_cast<double>(s.step), path, r / 9, "step", "AC checkpoint");
      l.lr = v[r + 1], l.wd = v[r + 2], l.loss = v[r + 3], l.teacher_forcing = v[r + 4], l.rollout = v[r + 5];
      l.copy_baseline = v[r + 6], l.grad_norm = v[r + 7], l.seconds = v[r + 8];
      hist.push_back(l);
    }
  }
  tr.mutable_state() = s;
  opt.set_steps_taken(adam_steps);
  tr.mutable_history() = std::move(hist);
}

/// Loads the frozen encoder and the AC predictor from an AC checkpoint (for planning).
template <class T>
void load_ac_weights(const std::string& path, const nn::ParamLayout& encoder_layout, T* encoder_params,
                     const nn::ParamLayout& predictor_layout, T* predictor_params) {
  const io::SafetensorsFile f(path);
  io::LoadOptions o;
  o.prefix = "encoder.";
  f.read_into(encoder_layout, encoder_params, o);
  o.prefix = "predictor.";
  f.read_into(predictor_layout, predictor_params, o);
}

}  // namespace jepa::train
