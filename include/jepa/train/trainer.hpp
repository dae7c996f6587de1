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
//
// Data parallelism (jepa/dist/): the third template parameter is the communicator; the default
// SelfCommunicator is one process, and every collective below is then the identity, so the
// single-process trainer IS the world-size-1 case (bitwise). With W ranks (MpiCommunicator for host
// buffers; NcclCommunicator once a model's buffers live on the GPU) every StageData.batch /
// image_batch is the GLOBAL micro-batch, split evenly:
//   rank r, micro-batch of B clips:  samples  position + r·B/W … + B/W − 1 of the stream
//                                    masks    rows r·B/W … of masking.sample(grid, seed, step, B)
// so the masks are those of the single-process batch: keyed by the global sample index and truncated
// to the GLOBAL batch minimum (the official code truncates per GPU, which makes its runs depend on
// the GPU count; here the same config gives the same training for any W, up to reduction order).
// Policies with sample_rows (masking/mask.hpp; the built-in multi-block and tube masks) draw only
// this rank's rows and take the minimum lengths with one small all-reduce(min) per micro-batch;
// others draw the whole global batch on every rank and keep their rows.
//   start       parameters, target encoder, AdamW moments and run position broadcast from rank 0
//               (at the first step: after init or after a checkpoint was loaded on any ranks)
//   backward    gradients all-reduced (summed) in buckets that start during the last backward walk
//               (dist/bucket_reducer.hpp); g ← Σ_r g_r / (W · #micro-batches)
//   update      clip → AdamW → EMA, identical on every rank (same summed gradient)
//   logging     loss terms summed / W; target std over the global batch; effective ranks averaged
//               over ranks (each a subsampled estimate); only rank 0 prints and writes
//   failures    a non-finite loss on any rank skips the step on all; an exception on one rank (bad
//               data, I/O) makes every rank throw dist::RankFailure naming it, at the next agreement
//               point of the step — no rank is left waiting in a collective
//   resume      nothing in a checkpoint depends on W: it resumes at any world size
#pragma once

#include <array>
#include <chrono>
#include <unistd.h>
#include <cmath>
#include <exception>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "jepa/core/error.hpp"
#include "jepa/data/synthetic_video.hpp"
#include "jepa/dist/bucket_reducer.hpp"
#include "jepa/dist/communicator.hpp"
#include "jepa/eval/rank.hpp"
#include "jepa/train/progress.hpp"
#include "jepa/io/atomic_file.hpp"
#include "jepa/io/plot.hpp"
#include "jepa/masking/multiblock.hpp"
#include "jepa/models/jepa.hpp"
#include "jepa/train/optim.hpp"
#include "jepa/train/schedules.hpp"

namespace jepa::train {

/// What one stage feeds the model. Batches are global: a data-parallel run splits them over the ranks.
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
  // Data parallelism (world size > 1): gradient buckets of at least this many bytes, and whether
  // their all-reduce starts during the backward walk (true) or after it (false).
  std::size_t bucket_bytes = std::size_t{25} << 20;
  bool overlap_reduction = true;

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

namespace detail {
/// Rows [first, first + count) of a MaskBatch (this rank's share of the global batch's masks).
inline masking::MaskBatch take_rows(const masking::MaskBatch& m, index_t first, index_t count) {
  masking::MaskBatch r;
  r.batch = count, r.context_len = m.context_len, r.target_len = m.target_len;
  r.context.assign(m.context.begin() + first * m.context_len, m.context.begin() + (first + count) * m.context_len);
  r.target.assign(m.target.begin() + first * m.target_len, m.target.begin() + (first + count) * m.target_len);
  return r;
}
/// The message of a caught exception.
inline std::string what_of(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "an exception that is not a std::exception";
  }
}
/// Order-sensitive 64-bit checksum (FNV-1a over the bytes): equal on every rank iff replicas agree.
inline std::uint64_t checksum(const void* p, std::size_t bytes, std::uint64_t h = 1469598103934665603ull) {
  const auto* b = static_cast<const unsigned char*>(p);
  for (std::size_t i = 0; i < bytes; ++i) h = (h ^ b[i]) * 1099511628211ull;
  return h;
}
}  // namespace detail

template <class Model, ClipSource Source, dist::Communicator Comm = dist::SelfCommunicator>
class Trainer {
 public:
  using T = typename Model::T;
  using communicator_type = Comm;

  /// `comm`: the group this trainer runs in (data parallelism); every rank constructs its Trainer
  /// with the same config. Batches in `cfg` are global and must be multiples of comm.size().
  Trainer(Model& model, const Source& video, TrainConfig cfg, const Source* images = nullptr, Comm comm = {})
      : model_(model), video_(video), images_(images), cfg_(std::move(cfg)),
        opt_(std::vector<typename AdamW<T>::Group>{{&model.encoder_params(), &model.encoder_grads()},
                                                   {&model.predictor_params(), &model.predictor_grads()}}),
        comm_(std::move(comm)) {
    cfg_.validate();
    for (std::size_t i = 0; i < cfg_.stages.size(); ++i)
      if (cfg_.stages[i].context && !settable_context_term)
        throw ConfigError(jepa::detail::cat("jepa: stage ", i, " ('", cfg_.stages[i].name,
                                            "') sets the context term (Stage.context), but the model's loss policy has "
                                            "none to set (it needs members `lambda.progressive` and `weight_distance`, "
                                            "as losses::ContextLoss has); leave Stage.context empty"));
    if constexpr (settable_context_term)
      base_context_ = {model_.loss_policy().lambda.progressive, model_.loss_policy().weight_distance};
    for (const auto& d : cfg_.data)
      if (d.image_batch > 0 && !images_)
        throw ConfigError("jepa: StageData.image_batch > 0 needs an image source (pass one to the Trainer)");
    const index_t W = comm_.size();
    for (const auto& d : cfg_.data) {
      check_field(d.batch % W == 0, "StageData.batch", d.batch,
                  jepa::detail::cat("the global batch must be a multiple of the world size ", W,
                                    " (each rank takes batch / world clips)"));
      check_field(d.image_batch % W == 0, "StageData.image_batch", d.image_batch,
                  jepa::detail::cat("the global image batch must be a multiple of the world size ", W));
    }
  }

  /// The group of processes this trainer runs in, this process's rank and the group size.
  Comm& communicator() { return comm_; }
  int rank() const { return comm_.rank(); }
  int world_size() const { return comm_.size(); }
  /// Rank 0 prints progress and writes checkpoints, logs and plots; the other ranks stay quiet.
  bool is_root() const { return comm_.rank() == 0; }
  /// The gradient reduction of the last step (world size > 1; null before the first step).
  const dist::ReducerStats* reduction_stats() const { return reducer_ ? &reducer_->stats() : nullptr; }
  /// Makes the next step start by broadcasting rank 0's parameters, target encoder, AdamW moments and
  /// run position to every rank (load_checkpoint calls it; so does construction).
  void resync() { synced_ = false; }

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
    if (!synced_) sync_from_root();  // every rank decides "finished?" on rank 0's state
    const std::uint64_t total = total_steps();
    const bool show = cfg_.progress && is_root();
    ProgressLine progress(total);
    std::uint64_t done = 0;
    while (!finished() && done < max_steps) {
      const StepLog log = step();
      ++done;
      if (show) {
        char what[160];
        std::snprintf(what, sizeof what, "[%s] step %llu/%llu  loss %.4f  lr %.2e",
                      cfg_.stages[std::min(log.stage, cfg_.stages.size() - 1)].name.c_str(),
                      static_cast<unsigned long long>(st_.global_step), static_cast<unsigned long long>(total), log.loss, log.lr);
        progress.update(done, st_.global_step, std::min<std::uint64_t>(total - st_.global_step, max_steps - done), finished(), what);
      }
    }
  }

  /// One optimizer step (on every rank of the group together).
  StepLog step() {
    if (finished()) throw ConfigError("jepa: the training run is finished (all stages done)");
    const auto t0 = std::chrono::steady_clock::now();
    const int W = comm_.size();
    if (!synced_) sync_from_root();
    const Stage& stage = cfg_.stages[st_.stage];
    const StageData& data = cfg_.data[st_.stage];
    const std::uint64_t t = st_.local_step + 1;  // schedulers step before the forward, from 1
    StepLog log;
    log.step = st_.global_step + 1;
    log.stage = st_.stage;
    log.lr = stage.lr(t), log.wd = stage.wd(t), log.ema = stage.ema(t);

    apply_context_term(stage);
    model_.zero_grad();
    bool ok = true;
    const index_t parts = cfg_.micro_batches * (data.image_batch > 0 ? 2 : 1);
    // World size > 1: the gradient buckets reduce during the step's last backward walk.
    dist::BucketReducer<T, Comm>* red = W > 1 ? &reducer() : nullptr;
    if (red) red->begin(comm_);
    std::exception_ptr failure;
    mask_reductions_ = 0;
    try {
      for (index_t mb = 0; mb < cfg_.micro_batches && ok; ++mb) {
        const std::uint64_t mask_step = st_.global_step * static_cast<std::uint64_t>(cfg_.micro_batches) + mb;
        const bool last = mb + 1 == cfg_.micro_batches;
        ok = micro_step(data.batch, {data.frames, data.size, data.size}, models::Modality::video, mask_step, t - 1,
                        st_.video_position, video_, model_.masking(), log, static_cast<double>(parts),
                        last && data.image_batch == 0 ? red : nullptr);
        if (ok && data.image_batch > 0)
          ok = micro_step(data.image_batch, {1, data.size, data.size}, models::Modality::image, mask_step, t - 1,
                          st_.image_position, *images_, image_masking, log, static_cast<double>(parts),
                          last ? red : nullptr);
      }
    } catch (...) {
      if (W == 1) throw;  // one process: nobody waits for it
      failure = std::current_exception();
    }
    if (W > 1) {
      // Every rank takes part in every collective of the step, in the same order, whether its own
      // micro-batches ran or not (a failed or skipped rank contributes placeholders: the step is then
      // dropped anyway): the mask-length minima it did not reach, every gradient bucket, and one
      // agreement on failures, skips, data positions and the loss terms.
      const std::uint64_t per_micro_batch =
          uses_row_sampling(model_.masking()) + (data.image_batch > 0 ? uses_row_sampling(image_masking) : 0);
      const std::uint64_t want = static_cast<std::uint64_t>(cfg_.micro_batches) * per_micro_batch;
      while (mask_reductions_ < want) reduce_mask_lengths(nullptr);
      red->finish();
      std::array<std::uint64_t, 4> u{failure ? static_cast<std::uint64_t>(W - comm_.rank()) : 0, ok ? 0u : 1u,
                                     st_.video_position, st_.image_position};
      comm_.all_reduce(u.data(), u.size(), dist::ReduceOp::max);
      std::array<double, 3> d{log.loss, log.prediction, log.context};
      comm_.all_reduce(d.data(), d.size(), dist::ReduceOp::sum);
      if (u[0]) throw_failure(W - static_cast<int>(u[0]), failure, log.step);
      ok = u[1] == 0;
      st_.video_position = u[2], st_.image_position = u[3];
      log.loss = d[0] / W, log.prediction = d[1] / W, log.context = d[2] / W;
    }
    if (ok) {
      std::vector<nn::ParameterSet<T>*> grads{&model_.encoder_grads(), &model_.predictor_grads()};
      const double inv = 1.0 / (static_cast<double>(parts) * W);
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
      if (cfg_.diag_every && log.step % cfg_.diag_every == 0) {
        diagnostics(log);
        if (W > 1) reduce_diagnostics(log);
      }
      if (W > 1 && cfg_.checkpoint_every && log.step % cfg_.checkpoint_every == 0) check_replicas(log.step);
    } else {
      log.skipped = true;
      ++st_.bad_steps;
      if (++st_.bad_in_row >= cfg_.max_bad_steps)
        throw NumericError(jepa::detail::cat("jepa: stopping: ", st_.bad_in_row, " consecutive steps had a non-finite loss "
                                             "or gradient (last at step ", log.step, ") — lower the learning rate or check the data"));
    }
    ++st_.global_step;
    if (++st_.local_step >= stage.steps()) {
      ++st_.stage;
      st_.local_step = 0;
    }
    log.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    history_.push_back(log);
    if (W == 1) {
      if (on_step) on_step(log);
      return log;
    }
    // The hook may fail on one rank only (rank 0 writing a checkpoint): agree before the next step.
    std::exception_ptr hook_failure;
    try {
      if (on_step) on_step(log);
    } catch (...) {
      hook_failure = std::current_exception();
    }
    std::uint64_t f = hook_failure ? static_cast<std::uint64_t>(W - comm_.rank()) : 0;
    comm_.all_reduce(&f, 1, dist::ReduceOp::max);
    if (f) throw_failure(W - static_cast<int>(f), hook_failure, log.step);
    return log;
  }

  /// Broadcasts rank 0's parameters, target encoder, AdamW moments and run position to every rank
  /// (the start of data-parallel training; step() calls it when needed). Collective.
  void sync_from_root() {
    synced_ = true;
    if (comm_.size() == 1) return;
    for (auto* p : {&model_.encoder_params(), &model_.target_params(), &model_.predictor_params()})
      comm_.broadcast(p->data(), p->numel(), 0);
    for (auto* moments : {&opt_.first_moments(), &opt_.second_moments()})
      for (auto& m : *moments) comm_.broadcast(m.data(), m.numel(), 0);
    std::array<std::uint64_t, 9> u{st_.global_step, st_.stage, st_.local_step, st_.video_position, st_.image_position,
                                   st_.bad_steps, static_cast<std::uint64_t>(st_.bad_in_row), opt_.steps_taken(),
                                   model_.mask_seed};
    comm_.broadcast(u.data(), u.size(), 0);
    st_.global_step = u[0], st_.stage = static_cast<std::size_t>(u[1]), st_.local_step = u[2];
    st_.video_position = u[3], st_.image_position = u[4], st_.bad_steps = u[5];
    st_.bad_in_row = static_cast<int>(u[6]);
    opt_.set_steps_taken(u[7]);
    model_.mask_seed = u[8];
  }

  /// True when every rank holds the same parameters, target encoder and AdamW moments (a checksum
  /// compared across ranks; collective). The trainer checks it at every checkpoint_every step and,
  /// should the replicas ever differ, re-broadcasts rank 0's state and says so on stderr.
  bool replicas_agree() {
    std::uint64_t h = 1469598103934665603ull;
    for (auto* p : {&model_.encoder_params(), &model_.target_params(), &model_.predictor_params()})
      h = detail::checksum(p->data(), p->numel() * sizeof(T), h);
    for (auto* moments : {&opt_.first_moments(), &opt_.second_moments()})
      for (auto& m : *moments) h = detail::checksum(m.data(), m.numel() * sizeof(T), h);
    std::array<std::uint64_t, 2> mm{h, ~h};  // max of h and max of ~h (= ~min h)
    comm_.all_reduce(mm.data(), mm.size(), dist::ReduceOp::max);
    return mm[0] == ~mm[1];
  }

  /// Writes the history as CSV (one row per step), atomically (io/atomic_file.hpp): a kill at any
  /// moment leaves the previous log or the new one, never a truncated file. Rank 0 only.
  void write_csv(const std::string& path) const {
    if (!is_root()) return;
    std::ostringstream f;
    f << "step,stage,lr,wd,ema,loss,prediction,context,lambda,grad_norm,target_std,rank_pred,rank_target,seconds,skipped\n";
    for (const auto& l : history_)
      f << l.step << ',' << l.stage << ',' << l.lr << ',' << l.wd << ',' << l.ema << ',' << l.loss << ',' << l.prediction
        << ',' << l.context << ',' << l.lambda << ',' << l.grad_norm << ',' << l.target_std << ',' << l.rank_pred << ','
        << l.rank_target << ',' << l.seconds << ',' << (l.skipped ? 1 : 0) << '\n';
    io::write_atomic(path, {f.str()}, "the training log");
  }
  /// Loss curve (total, prediction, context) as PNG. Rank 0 only: a no-op on the other ranks.
  void write_loss_png(const std::string& path, const std::string& title) const {
    if (!is_root()) return;
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
    const std::string tmp = io::temporary_for(path);  // atomic, as the log
    io::write_line_plot(tmp, s, title, "step");
    io::replace_atomic(tmp, path);
  }

 private:
  /// Loss policies whose context term a Stage can set (losses::ContextLoss and look-alikes).
  static constexpr bool settable_context_term = requires(Model& m) {
    m.loss_policy_mut().lambda.progressive = true;
    m.loss_policy_mut().weight_distance = true;
  };
  /// The stage's context-term settings, or the policy's own when the stage has none.
  void apply_context_term(const Stage& stage) {
    if constexpr (settable_context_term) {
      const ContextTermSettings c = stage.context.value_or(base_context_);
      model_.loss_policy_mut().lambda.progressive = c.lambda_progressive;
      model_.loss_policy_mut().weight_distance = c.weight_distance;
    }
  }

  /// One micro-batch of B clips (global): this rank's B/W of them, forward and backward. `red`: the
  /// gradient reducer to feed during this backward walk (the step's last), or null.
  template <class Src, class Masking>
  bool micro_step(index_t B, const models::InputGeometry& g, models::Modality modality, std::uint64_t mask_step,
                  std::uint64_t lambda_step, std::uint64_t& position, const Src& src, const Masking& masking,
                  StepLog& log, double parts, dist::BucketReducer<T, Comm>* red) {
    const index_t W = comm_.size(), Bg = B, first = comm_.rank() * (Bg / W);
    B = Bg / W;  // this rank's clips: global samples first … first + B − 1 of this micro-batch
    clip_.resize(static_cast<std::size_t>(B * 3 * g.frames * g.height * g.width));
    skipped_.clear();
    // The stream advances by this rank's consumption plus the other ranks' shares (skipped bad
    // samples only shift this rank; the step's end position is the maximum over ranks).
    position += src.fill(position + static_cast<std::uint64_t>(first), B, g, clip_.data(), skipped_) +
                static_cast<std::uint64_t>(Bg - B);
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
    std::vector<masking::MaskBatch> masks;
    const nn::TokenGrid grid = model_.encoder().grid(g);
    if constexpr (masking::RowSampling<Masking>) {
      if (W > 1) {  // this rank's rows only; one all-reduce(min) of the lengths (even if unused)
        const std::uint64_t before = mask_reductions_;
        masks = masking.sample_rows(grid, model_.mask_seed, mask_step, first, B,
                                    [this](std::vector<index_t>& len) { reduce_mask_lengths(&len); });
        if (mask_reductions_ == before) reduce_mask_lengths(nullptr);
        if (mask_reductions_ != before + 1)
          throw ConfigError("jepa: a masking policy's sample_rows must call its BatchMin at most once per call");
      }
    }
    if (masks.empty()) {
      masks = masking.sample(grid, model_.mask_seed, mask_step, Bg);
      if (W > 1)
        for (auto& m : masks) m = detail::take_rows(m, first, B);
    }
    try {
      const auto rep = model_.forward_loss(cv, lambda_step, std::move(masks), modality);
      if constexpr (requires { model_.predictor().grad_walk(); model_.encoder().grad_walk(); }) {
        if (red && cfg_.overlap_reduction) model_.backward(red->hook(0), red->hook(1));
        else model_.backward();
      } else {
        model_.backward();
      }
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

  template <class Masking>
  static constexpr std::uint64_t uses_row_sampling(const Masking&) {
    return masking::RowSampling<Masking> ? 1 : 0;
  }
  /// The batch minimum of a masking policy's row lengths over the ranks (a fixed-size all-reduce, so
  /// that a rank with nothing to contribute — len = null — takes part with placeholders).
  void reduce_mask_lengths(std::vector<index_t>* len) {
    constexpr std::size_t kSlots = 64;
    std::array<std::uint64_t, kSlots> v;
    v.fill(~std::uint64_t{0});
    if (len) {
      if (len->size() > kSlots)
        fail_field("masking lengths", len->size(), jepa::detail::cat("at most ", kSlots, " per sample_rows call"));
      for (std::size_t i = 0; i < len->size(); ++i) v[i] = static_cast<std::uint64_t>((*len)[i]);
    }
    ++mask_reductions_;
    comm_.all_reduce(v.data(), v.size(), dist::ReduceOp::min);
    if (len)
      for (std::size_t i = 0; i < len->size(); ++i) (*len)[i] = static_cast<index_t>(v[i]);
  }

  /// The gradient reducer: the predictor's walk, then the encoder's (the order Jepa::backward finishes
  /// them in); buffer 0 = encoder gradients, 1 = predictor gradients.
  dist::BucketReducer<T, Comm>& reducer() {
    if (!reducer_) {
      using R = dist::BucketReducer<T, Comm>;
      auto& eg = model_.encoder_grads();
      auto& pg = model_.predictor_grads();
      std::vector<typename R::Item> walk;
      if constexpr (requires { model_.predictor().grad_walk(); model_.encoder().grad_walk(); }) {
        for (const auto& r : model_.predictor().grad_walk()) walk.push_back({1, r});
        for (const auto& r : model_.encoder().grad_walk()) walk.push_back({0, r});
      } else {
        walk = {{1, {0, pg.numel()}}, {0, {0, eg.numel()}}};
      }
      reducer_.emplace(std::vector<typename R::Buffer>{{eg.data(), eg.numel()}, {pg.data(), pg.numel()}}, std::move(walk),
                       cfg_.bucket_bytes);
    }
    return *reducer_;
  }

  /// Every rank throws RankFailure naming `failed` with its message (broadcast from it); on the failing
  /// rank the original exception is nested inside.
  [[noreturn]] void throw_failure(int failed, const std::exception_ptr& local, std::uint64_t step) {
    std::string msg = comm_.rank() == failed && local ? detail::what_of(local) : std::string();
    std::uint64_t n = msg.size();
    comm_.broadcast(&n, 1, failed);
    msg.resize(static_cast<std::size_t>(n));
    comm_.broadcast(msg.data(), msg.size(), failed);
    const std::string what = jepa::detail::cat("jepa: rank ", failed, " of ", comm_.size(), " failed at step ", step,
                                               ": ", msg);
    dist::RankFailure e(what, comm_.rank(), failed, msg);
    if (comm_.rank() == failed && local) {
      try {
        std::rethrow_exception(local);
      } catch (...) {
        std::throw_with_nested(e);
      }
    }
    throw e;
  }

  void check_replicas(std::uint64_t step) {
    if (replicas_agree()) return;
    if (is_root())
      std::fprintf(stderr, "\njepa: step %llu: the ranks' parameters differ (the reduction gave different sums on "
                           "different ranks); re-synchronised from rank 0\n",
                   static_cast<unsigned long long>(step));
    sync_from_root();
  }

  /// World size > 1: the target std over the global batch (per-channel Σh and Σh² summed over ranks),
  /// and the mean over ranks of each rank's effective-rank estimate (a subsampled estimate already).
  void reduce_diagnostics(StepLog& log) {
    const auto h = model_.targets(0);
    const index_t rows = h.size(0) * h.size(1), D = h.size(2);
    std::vector<double> acc(static_cast<std::size_t>(2 * D + 3), 0.0);
    for (index_t r = 0; r < rows; ++r)
      for (index_t c = 0; c < D; ++c) {
        const double v = static_cast<double>(h.data()[r * D + c]);
        acc[static_cast<std::size_t>(c)] += v, acc[static_cast<std::size_t>(D + c)] += v * v;
      }
    acc[static_cast<std::size_t>(2 * D)] = static_cast<double>(rows);
    acc[static_cast<std::size_t>(2 * D + 1)] = log.rank_pred, acc[static_cast<std::size_t>(2 * D + 2)] = log.rank_target;
    comm_.all_reduce(acc.data(), acc.size(), dist::ReduceOp::sum);
    const double n = acc[static_cast<std::size_t>(2 * D)];
    double sd = 0;
    for (index_t c = 0; c < D; ++c) {
      const double mean = acc[static_cast<std::size_t>(c)] / n;
      sd += std::sqrt(std::max(0.0, acc[static_cast<std::size_t>(D + c)] / n - mean * mean));
    }
    const double W = comm_.size();
    log.target_std = n > 1 ? sd / static_cast<double>(D) : 0.0;
    log.rank_pred = acc[static_cast<std::size_t>(2 * D + 1)] / W, log.rank_target = acc[static_cast<std::size_t>(2 * D + 2)] / W;
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
  Comm comm_;
  bool synced_ = false;
  std::uint64_t mask_reductions_ = 0;  // mask-length all-reduces of the current step
  std::optional<dist::BucketReducer<T, Comm>> reducer_;
  ContextTermSettings base_context_;
};

/// `Trainer t(model, source, cfg, nullptr, comm)`: a data-parallel trainer without an image source.
template <class Model, ClipSource Source, dist::Communicator Comm>
Trainer(Model&, const Source&, TrainConfig, std::nullptr_t, Comm) -> Trainer<Model, Source, Comm>;

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
