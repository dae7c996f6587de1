// jepa/train/trainer.hpp — the reference training loop (recipe_facts §5).
//
// One optimizer step s of stage k (local step t = 1, 2, … restarting at each stage, as the recipe's
// schedulers do; they step BEFORE the forward pass):
//   lr, wd, m = stage.lr(t), stage.wd(t), stage.ema(t)
//   for each micro-batch: data → masks(step) → target encoder → context encoder → predictor → loss
//                         → backward (gradients accumulate)          [2.1: + an image micro-batch]
//   g ← g / (#micro-batches)      (a mean over the whole batch; images and videos weigh equally)
//   guard: a non-finite loss or gradient skips the step (no update); too many in a row stops the run
//   clip (V-JEPA 1 only, after warmup) → AdamW(lr, wd) → target ← m·target + (1 − m)·encoder
// Stages run back to back: the cooldown keeps weights and AdamW moments, restarts its schedules and
// may switch to more frames and a higher resolution (progressive resolution).
//
// Every step logs loss terms, lr/wd/ema, the gradient norm and collapse diagnostics (target feature
// std, effective rank of predictions and targets) to a CSV, shows a progress line with rate and ETA,
// and periodically writes an atomic checkpoint (train/checkpoint.hpp) and a loss-curve PNG.
// Resuming from a checkpoint reproduces the uninterrupted run bitwise: every random draw is a
// function of (seed, step, sample) and every reduction has a fixed order.
#pragma once

#include <chrono>
#include <unistd.h>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "jepa/core/error.hpp"
#include "jepa/data/synthetic_video.hpp"
#include "jepa/eval/rank.hpp"
#include "jepa/io/plot.hpp"
#include "jepa/masking/multiblock.hpp"
#include "jepa/models/jepa.hpp"
#include "jepa/train/optim.hpp"
#include "jepa/train/schedules.hpp"

namespace jepa::train {

/// What one stage feeds the model.
struct StageData {
  index_t frames = 16, size = 256, batch = 2;
  index_t image_batch = 0;  // 2.1: images per micro-batch (1-frame clips, image tokenizer); 0 = none
};

struct TrainConfig {
  std::vector<Stage> stages;
  std::vector<StageData> data;  // one per stage
  index_t micro_batches = 1;
  std::uint64_t checkpoint_every = 0;  // 0 = only at the end
  std::string out_dir = "jepa-run";
  int max_bad_steps = 10;          // consecutive non-finite steps before the run stops
  std::uint64_t diag_every = 1;    // collapse diagnostics every N steps (0 = never)
  bool progress = true;            // progress line on stderr

  void validate() const {
    if (stages.empty()) throw ConfigError("jepa: TrainConfig.stages is empty: give at least one training stage");
    check_field(data.size() == stages.size(), "TrainConfig.data", data.size(),
                jepa::detail::cat("needs one StageData per stage (", stages.size(), ")"));
    check_field(micro_batches >= 1, "TrainConfig.micro_batches", micro_batches, "must be >= 1");
    check_field(max_bad_steps >= 1, "TrainConfig.max_bad_steps", max_bad_steps, "must be >= 1");
    for (std::size_t i = 0; i < data.size(); ++i) {
      check_field(data[i].batch >= 1, "StageData.batch", data[i].batch, "must be >= 1");
      check_field(data[i].image_batch >= 0, "StageData.image_batch", data[i].image_batch, "must be >= 0");
      check_field(stages[i].steps() >= 1, "Stage.epochs·ipe", stages[i].steps(), "must be >= 1");
    }
  }
};

/// A source of clips. `fill` writes B normalised clips (B,3,F,H,W) starting at stream position
/// `position` and returns how many samples it consumed (more than B when it skipped bad ones, whose
/// descriptions it appends to `skipped`).
template <class S>
concept ClipSource = requires(const S& s, std::uint64_t pos, index_t b, const models::InputGeometry& g, float* out,
                              std::vector<std::string>& skipped) {
  { s.fill(pos, b, g, out, skipped) } -> std::convertible_to<std::uint64_t>;
};

/// The position of a run: enough to resume it exactly.
struct TrainState {
  std::uint64_t global_step = 0;  // optimizer steps taken in the whole run
  std::size_t stage = 0;          // current stage
  std::uint64_t local_step = 0;   // steps taken in the current stage
  std::uint64_t video_position = 0, image_position = 0;  // samples consumed from each source
  std::uint64_t bad_steps = 0;    // skipped (non-finite) steps so far
  int bad_in_row = 0;
};

struct StepLog {
  std::uint64_t step = 0;
  std::size_t stage = 0;
  double lr = 0, wd = 0, ema = 0, loss = 0, prediction = 0, context = 0, lambda = 0, grad_norm = 0;
  double target_std = NAN, rank_pred = NAN, rank_target = NAN, seconds = 0;
  bool skipped = false;
};

template <class Model, ClipSource Source>
class Trainer {
 public:
  using T = typename Model::T;

  Trainer(Model& model, const Source& video, TrainConfig cfg, const Source* images = nullptr)
      : model_(model), video_(video), images_(images), cfg_(std::move(cfg)),
        opt_(std::vector<typename AdamW<T>::Group>{{&model.encoder_params(), &model.encoder_grads()},
                                                   {&model.predictor_params(), &model.predictor_grads()}}) {
    cfg_.validate();
    for (const auto& d : cfg_.data)
      if (d.image_batch > 0 && !images_)
        throw ConfigError("jepa: StageData.image_batch > 0 needs an image source (pass one to the Trainer)");
  }

  const TrainState& state() const { return st_; }
  TrainState& mutable_state() { return st_; }
  AdamW<T>& optimizer() { return opt_; }
  const std::vector<StepLog>& history() const { return history_; }
  std::vector<StepLog>& mutable_history() { return history_; }
  const TrainConfig& config() const { return cfg_; }
  bool finished() const { return st_.stage >= cfg_.stages.size(); }
  std::uint64_t total_steps() const {
    std::uint64_t n = 0;
    for (const auto& s : cfg_.stages) n += s.steps();
    return n;
  }
  /// Masks for images (2.1: one generator, 10 blocks of 15 %).
  masking::Multiblock3d image_masking = masking::Multiblock3d::vjepa21_image();
  /// Called after every step (checkpointing, logging hooks).
  std::function<void(const StepLog&)> on_step;

  /// Runs until the end of the last stage, or until `max_steps` more optimizer steps were taken.
  void run(std::uint64_t max_steps = ~std::uint64_t{0}) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::uint64_t total = total_steps();
    const bool tty = ::isatty(::fileno(stderr)) != 0;
    std::uint64_t done = 0;
    while (!finished() && done < max_steps) {
      const StepLog log = step();
      ++done;
      if (cfg_.progress) {
        const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const double rate = static_cast<double>(done) / el;
        const double left = static_cast<double>(std::min<std::uint64_t>(total - st_.global_step, max_steps - done));
        // On a terminal the line is redrawn in place; in a log file, a full line every ~5 % of the run.
        const std::uint64_t every = std::max<std::uint64_t>(1, total / 20);
        if (tty || done == 1 || st_.global_step % every == 0 || finished())
          std::fprintf(stderr, "%s[%s] step %llu/%llu  loss %.4f  lr %.2e  |  %.2f steps/s  elapsed %s  ETA %s%s",
                       tty ? "\r" : "", cfg_.stages[std::min(log.stage, cfg_.stages.size() - 1)].name.c_str(),
                       static_cast<unsigned long long>(st_.global_step), static_cast<unsigned long long>(total),
                       log.loss, log.lr, rate, hms(el).c_str(), hms(left / rate).c_str(), tty ? "   " : "\n");
      }
    }
    if (cfg_.progress && done && tty) std::fprintf(stderr, "\n");
  }

  /// One optimizer step.
  StepLog step() {
    if (finished()) throw ConfigError("jepa: the training run is finished (all stages done)");
    const auto t0 = std::chrono::steady_clock::now();
    const Stage& stage = cfg_.stages[st_.stage];
    const StageData& data = cfg_.data[st_.stage];
    const std::uint64_t t = st_.local_step + 1;  // schedulers step before the forward, from 1
    StepLog log;
    log.step = st_.global_step + 1;
    log.stage = st_.stage;
    log.lr = stage.lr(t), log.wd = stage.wd(t), log.ema = stage.ema(t);

    model_.zero_grad();
    bool ok = true;
    const index_t parts = cfg_.micro_batches * (data.image_batch > 0 ? 2 : 1);
    for (index_t mb = 0; mb < cfg_.micro_batches && ok; ++mb) {
      const std::uint64_t mask_step = st_.global_step * static_cast<std::uint64_t>(cfg_.micro_batches) + mb;
      ok = micro_step(data.batch, {data.frames, data.size, data.size}, models::Modality::video, mask_step, t - 1,
                      st_.video_position, video_, model_.masking(), log, static_cast<double>(parts));
      if (ok && data.image_batch > 0)
        ok = micro_step(data.image_batch, {1, data.size, data.size}, models::Modality::image, mask_step, t - 1,
                        st_.image_position, *images_, image_masking, log, static_cast<double>(parts));
    }
    if (ok) {
      std::vector<nn::ParameterSet<T>*> grads{&model_.encoder_grads(), &model_.predictor_grads()};
      const double inv = 1.0 / static_cast<double>(parts);
      for (auto* g : grads)
        for (std::size_t i = 0; i < g->numel(); ++i) g->data()[i] = static_cast<T>(g->data()[i] * inv);
      log.grad_norm = grad_norm(grads);
      if (!std::isfinite(log.grad_norm)) ok = false;
      else if (stage.clip_grad > 0 && t > stage.clip_after) clip_grad_norm(grads, stage.clip_grad);
    }
    if (ok) {
      opt_.step(log.lr, log.wd);
      ema_update(model_.target_params(), model_.encoder_params(), log.ema);
      st_.bad_in_row = 0;
      if (cfg_.diag_every && log.step % cfg_.diag_every == 0) diagnostics(log);
    } else {
      log.skipped = true;
      ++st_.bad_steps;
      if (++st_.bad_in_row >= cfg_.max_bad_steps)
        throw NumericError(jepa::detail::cat("jepa: stopping: ", st_.bad_in_row, " consecutive steps had a non-finite loss "
                                             "or gradient (last at step ", log.step, "); the last checkpoint in '",
                                             cfg_.out_dir, "' is unaffected — lower the learning rate or check the data"));
    }
    ++st_.global_step;
    if (++st_.local_step >= stage.steps()) {
      ++st_.stage;
      st_.local_step = 0;
    }
    log.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    history_.push_back(log);
    if (on_step) on_step(log);
    return log;
  }

  /// Writes the history as CSV (one row per step).
  void write_csv(const std::string& path) const {
    std::ofstream f(path);
    if (!f) throw IoError("jepa: cannot write the training log '" + path + "'");
    f << "step,stage,lr,wd,ema,loss,prediction,context,lambda,grad_norm,target_std,rank_pred,rank_target,seconds,skipped\n";
    for (const auto& l : history_)
      f << l.step << ',' << l.stage << ',' << l.lr << ',' << l.wd << ',' << l.ema << ',' << l.loss << ',' << l.prediction
        << ',' << l.context << ',' << l.lambda << ',' << l.grad_norm << ',' << l.target_std << ',' << l.rank_pred << ','
        << l.rank_target << ',' << l.seconds << ',' << (l.skipped ? 1 : 0) << '\n';
  }
  /// Loss curve (total, prediction, context) as PNG.
  void write_loss_png(const std::string& path, const std::string& title) const {
    io::Series total{"loss", {}, {}, {31, 119, 180}}, pred{"prediction", {}, {}, {255, 127, 14}},
        ctx{"context (x lambda)", {}, {}, {44, 160, 44}};
    bool any_ctx = false;
    for (const auto& l : history_) {
      if (l.skipped) continue;
      total.x.push_back(static_cast<double>(l.step)), total.y.push_back(l.loss);
      pred.x.push_back(static_cast<double>(l.step)), pred.y.push_back(l.prediction);
      ctx.x.push_back(static_cast<double>(l.step)), ctx.y.push_back(l.lambda * l.context);
      any_ctx = any_ctx || l.lambda > 0;
    }
    std::vector<io::Series> s{total};
    if (any_ctx) s.push_back(pred), s.push_back(ctx);
    io::write_line_plot(path, s, title, "step");
  }

 private:
  template <class Src, class Masking>
  bool micro_step(index_t B, const models::InputGeometry& g, models::Modality modality, std::uint64_t mask_step,
                  std::uint64_t lambda_step, std::uint64_t& position, const Src& src, const Masking& masking,
                  StepLog& log, double parts) {
    clip_.resize(static_cast<std::size_t>(B * 3 * g.frames * g.height * g.width));
    skipped_.clear();
    position += src.fill(position, B, g, clip_.data(), skipped_);
    for (const auto& s : skipped_) std::fprintf(stderr, "\njepa: skipped a bad sample: %s\n", s.c_str());
    std::vector<T> converted;
    const T* data = nullptr;
    if constexpr (std::is_same_v<T, float>) {
      data = clip_.data();
    } else {
      converted.assign(clip_.begin(), clip_.end());
      data = converted.data();
    }
    const TensorView<const T, 5> cv(data, {B, 3, g.frames, g.height, g.width});
    auto masks = masking.sample(model_.encoder().grid(g), model_.mask_seed, mask_step, B);
    try {
      const auto rep = model_.forward_loss(cv, lambda_step, std::move(masks), modality);
      model_.backward();
      log.loss += rep.loss / parts;
      log.prediction += rep.prediction / parts;
      log.context += rep.context / parts;
      log.lambda = rep.lambda;
      return true;
    } catch (const NumericError& e) {
      std::fprintf(stderr, "\njepa: step %llu skipped: %s\n", static_cast<unsigned long long>(log.step), e.what());
      return false;
    }
  }

  void diagnostics(StepLog& log) const {
    const auto h = model_.targets(0);
    const index_t rows = h.size(0) * h.size(1), D = h.size(2);
    log.target_std = eval::feature_std(h.data(), rows, D);
    log.rank_target = eval::effective_rank(h.data(), rows, D);
    const auto p = model_.predictions(0);
    log.rank_pred = eval::effective_rank(p.data(), p.size(0) * p.size(1), p.size(2));
  }

  static std::string hms(double s) {
    if (!std::isfinite(s) || s < 0) return "--";
    const long v = static_cast<long>(s + 0.5);
    char b[32];
    if (v >= 3600) std::snprintf(b, sizeof b, "%ldh%02ldm", v / 3600, (v / 60) % 60);
    else std::snprintf(b, sizeof b, "%ldm%02lds", v / 60, v % 60);
    return b;
  }

  Model& model_;
  const Source& video_;
  const Source* images_;
  TrainConfig cfg_;
  AdamW<T> opt_;
  TrainState st_;
  std::vector<StepLog> history_;
  std::vector<float> clip_;
  std::vector<std::string> skipped_;
};

/// The built-in procedural source as a ClipSource: sample i of any geometry is clip i of a
/// SyntheticVideo with that geometry (a pure function of (seed, i)).
struct SyntheticSource {
  std::uint64_t seed = 0;
  std::uint64_t fill(std::uint64_t position, index_t B, const models::InputGeometry& g, float* out,
                     std::vector<std::string>&) const {
    data::SyntheticVideo src({g.frames, g.height, g.width, 2, 4, seed});
    src.batch(position, B, out);
    return static_cast<std::uint64_t>(B);
  }
};

/// Any ClipSource behind one type (so a program picks synthetic or folder data at run time without a
/// second instantiation of the trainer).
struct AnySource {
  std::function<std::uint64_t(std::uint64_t, index_t, const models::InputGeometry&, float*, std::vector<std::string>&)> fn;
  template <ClipSource S>
  static AnySource of(S source) {
    return {[s = std::move(source)](std::uint64_t p, index_t b, const models::InputGeometry& g, float* o,
                                    std::vector<std::string>& k) { return s.fill(p, b, g, o, k); }};
  }
  std::uint64_t fill(std::uint64_t p, index_t b, const models::InputGeometry& g, float* o,
                     std::vector<std::string>& k) const {
    return fn(p, b, g, o, k);
  }
};

}  // namespace jepa::train
