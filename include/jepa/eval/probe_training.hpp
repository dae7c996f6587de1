// jepa/eval/probe_training.hpp — a small driver that trains a probe on frozen features and scores it
// on a held-out split (recipe_facts §7.3, one (lr, wd) pair per call).
//
//   for epoch e < E, for step k < ⌊count / B⌋ (the last partial batch is dropped, as DataLoader's
//   drop_last does in the official evals):
//     samples = π_e[k·B, (k+1)·B)        π_e a Fisher–Yates permutation drawn from Philox(seed, e)
//     G = 0;  L = loss(probe(features));  G = ∂L/∂θ
//     s = e·steps + k + 1 (schedulers step before the forward, from 1; §9.1.12)
//     lr_s = WarmupCosine(start → ref over W steps, then cosine ref → final at T = E·steps)
//     AdamW(lr_s, wd)  with every tensor decayed when decay_all (§7.3: the probes exclude nothing)
// Evaluation walks the held-out split in order, all samples (the last batch may be partial):
//   attentive probe:   top-1 accuracy and mean cross-entropy over clips
//   segmentation head: mIoU over the patch (token) labels and mean cross-entropy over tokens
//   depth head:        RMSE over tokens (patch resolution) and mean squared error
// Deterministic: same data, config and seed → bitwise-identical results (fixed order, fixed-order
// reductions in the backend).
//
// Data comes through ProbeData: a count of samples of (N, D) features and a fetch function that fills
// a batch for a list of sample indices — a view of precomputed arrays (precomputed()) or a closure
// that runs a frozen encoder on the listed clips.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <numeric>
#include <span>
#include <vector>

#include "jepa/core/error.hpp"
#include "jepa/core/rng.hpp"
#include "jepa/core/tensor.hpp"
#include "jepa/eval/attentive_probe.hpp"
#include "jepa/eval/linear_probe.hpp"
#include "jepa/nn/param.hpp"
#include "jepa/train/optim.hpp"
#include "jepa/train/schedules.hpp"

namespace jepa::eval {

/// `count` samples of frozen features (N, D) with their ground truth.
template <Real T>
struct ProbeData {
  index_t count = 0, tokens = 0, dim = 0;
  /// Fills the B = samples.size() listed samples, in that order: features (B,N,D); labels (B) for a
  /// classifier or (B,N) for segmentation, null otherwise; targets (B,N) for depth, null otherwise.
  std::function<void(std::span<const index_t> samples, T* features, std::int32_t* labels, T* targets)> fetch;
  /// Labels fetch writes per sample when asked (1 or N), checked against the probe; −1: not declared.
  index_t labels_per_sample = -1;
};

/// ProbeData over arrays the caller keeps alive: features (count,N,D); labels (count, labels_per_sample)
/// with labels_per_sample = 1 (classification) or N (segmentation), or null; targets (count,N) or null.
template <Real T>
ProbeData<T> precomputed(const T* features, index_t count, index_t tokens, index_t dim, const std::int32_t* labels,
                         index_t labels_per_sample, const T* targets = nullptr) {
  if (!features && count > 0) throw ShapeError("jepa: precomputed features are null");
  ProbeData<T> d{count, tokens, dim, {}, labels ? labels_per_sample : -1};
  d.fetch = [=](std::span<const index_t> samples, T* f, std::int32_t* l, T* t) {
    const index_t fs = tokens * dim;
    for (std::size_t i = 0; i < samples.size(); ++i) {
      const index_t n = samples[i];
      std::copy(features + n * fs, features + (n + 1) * fs, f + static_cast<index_t>(i) * fs);
      if (l) {
        if (!labels) throw ShapeError("jepa: this probe needs labels, but the precomputed data has none");
        std::copy(labels + n * labels_per_sample, labels + (n + 1) * labels_per_sample,
                  l + static_cast<index_t>(i) * labels_per_sample);
      }
      if (t) {
        if (!targets) throw ShapeError("jepa: this probe needs per-token targets, but the precomputed data has none");
        std::copy(targets + n * tokens, targets + (n + 1) * tokens, t + static_cast<index_t>(i) * tokens);
      }
    }
  };
  return d;
}

struct ProbeTrainConfig {
  int epochs = 20;
  index_t batch_size = 16;
  double lr = 1e-3;            // reference learning rate
  double start_lr = -1;        // < 0: = lr (V2 probes: no warmup, the cosine starts at lr)
  double final_lr = 0;         // cosine end value
  double warmup_epochs = 0;
  double weight_decay = 0.01;  // constant
  bool decay_all = true;       // §7.3: the probes decay biases and norms too
  index_t eval_batch_size = 0; // 0: = batch_size
  std::uint64_t seed = 0;      // shuffling order
  bool shuffle = true;

  void validate() const {
    check_field(epochs >= 1, "ProbeTrainConfig.epochs", epochs, "must be >= 1");
    check_field(batch_size >= 1, "ProbeTrainConfig.batch_size", batch_size, "must be >= 1");
    check_field(lr > 0 && std::isfinite(lr), "ProbeTrainConfig.lr", lr, "must be a finite value > 0");
    check_field(final_lr >= 0 && std::isfinite(final_lr), "ProbeTrainConfig.final_lr", final_lr, "must be >= 0");
    check_field(warmup_epochs >= 0 && warmup_epochs < epochs, "ProbeTrainConfig.warmup_epochs", warmup_epochs,
                "must be in [0, epochs)");
    check_field(weight_decay >= 0 && std::isfinite(weight_decay), "ProbeTrainConfig.weight_decay", weight_decay,
                "must be >= 0");
    check_field(eval_batch_size >= 0, "ProbeTrainConfig.eval_batch_size", eval_batch_size, "must be >= 0");
  }
};

/// Held-out scores. Metrics that do not apply to the probe are NaN.
struct ProbeMetrics {
  index_t samples = 0;
  double loss = std::numeric_limits<double>::quiet_NaN();
  double top1 = std::numeric_limits<double>::quiet_NaN();  // attentive probe
  double miou = std::numeric_limits<double>::quiet_NaN();  // segmentation, over patch labels
  double rmse = std::numeric_limits<double>::quiet_NaN();  // depth, at patch resolution
};

struct ProbeResult {
  std::vector<double> epoch_loss;  // mean training loss of each epoch
  std::uint64_t steps = 0;
  ProbeMetrics val;
};

namespace probe_detail {

template <Real T>
void check_data(const ProbeData<T>& d, const char* split, index_t dim, index_t labels_per_sample) {
  if (d.count <= 0)
    fail_field<ShapeError>(detail::cat(split, ".count"), d.count, "the split is empty; need >= 1 sample");
  if (d.tokens <= 0) fail_field<ShapeError>(detail::cat(split, ".tokens"), d.tokens, "must be >= 1");
  if (d.dim != dim)
    fail_field<ShapeError>(detail::cat(split, ".dim"), d.dim, detail::cat("the probe was built for D = ", dim));
  if (!d.fetch) throw ConfigError(detail::cat("jepa: ", split, ".fetch is empty; it must fill the listed samples"));
  if (labels_per_sample > 0 && d.labels_per_sample >= 0 && d.labels_per_sample != labels_per_sample)
    fail_field<ShapeError>(detail::cat(split, ".labels_per_sample"), d.labels_per_sample,
                           detail::cat("this probe needs ", labels_per_sample, " label(s) per sample"));
}

/// What the driver needs from each probe kind.
template <class Probe>
struct Ops;

template <Real T, class Backend>
struct Ops<AttentiveProbe<T, Backend>> {
  using Probe = AttentiveProbe<T, Backend>;
  static index_t dim(const Probe& p) { return p.config().dim; }
  static index_t labels_per_sample(const Probe&, index_t) { return 1; }
  static bool needs_targets(const Probe&) { return false; }
  static auto state(const Probe& p, index_t B, index_t N, bool train) {
    return p.make_state(B, N, train ? Mode::training : Mode::inference);
  }
  static double train_step(const Probe& p, const T* P, T* G, typename Probe::State& s, TensorView<const T, 3> x,
                           const std::int32_t* labels, const T*) {
    p.forward(P, x, s);
    const double l = p.loss(s, labels);
    p.backward(P, G, s);
    return l;
  }
  struct Acc {
    double loss = 0, hits = 0;
    index_t n = 0;
  };
  static void eval_batch(const Probe& p, const T* P, typename Probe::State& s, TensorView<const T, 3> x,
                         const std::int32_t* labels, const T*, Acc& a) {
    p.forward(P, x, s);
    const index_t B = s.batch(), C = p.config().num_classes;
    a.loss += softmax_cross_entropy(p.logits(s).data(), labels, B, C) * static_cast<double>(B);
    a.hits += top1_accuracy(p.logits(s).data(), labels, B, C) * static_cast<double>(B);
    a.n += B;
  }
  static ProbeMetrics finish(const Probe&, const Acc& a) {
    ProbeMetrics m;
    m.samples = a.n;
    m.loss = a.loss / static_cast<double>(a.n);
    m.top1 = a.hits / static_cast<double>(a.n);
    return m;
  }
};

template <Real T, class Backend>
struct Ops<LinearDenseProbe<T, Backend>> {
  using Probe = LinearDenseProbe<T, Backend>;
  static bool seg(const Probe& p) { return p.config().task == DenseTask::segmentation; }
  static index_t dim(const Probe& p) { return p.config().dim; }
  static index_t labels_per_sample(const Probe& p, index_t N) { return seg(p) ? N : 0; }
  static bool needs_targets(const Probe& p) { return !seg(p); }
  static auto state(const Probe& p, index_t B, index_t N, bool) { return p.make_state(B, N); }
  static double train_step(const Probe& p, const T* P, T* G, typename Probe::State& s, TensorView<const T, 3> x,
                           const std::int32_t* labels, const T* targets) {
    p.forward(P, x, s);
    const double l = seg(p) ? p.loss(s, labels) : p.loss(s, targets);
    p.backward(P, G, s);
    return l;
  }
  struct Acc {
    double loss = 0;
    index_t n = 0, rows = 0;
    std::vector<std::int32_t> pred, gt;
    std::vector<T> out, tgt;
  };
  static void eval_batch(const Probe& p, const T* P, typename Probe::State& s, TensorView<const T, 3> x,
                         const std::int32_t* labels, const T* targets, Acc& a) {
    p.forward(P, x, s);
    const index_t R = s.batch() * s.tokens();
    const double l = seg(p) ? p.loss(s, labels) : p.loss(s, targets);
    a.loss += l * static_cast<double>(R);
    a.rows += R;
    a.n += s.batch();
    if (seg(p)) {
      const std::size_t o = a.pred.size();
      a.pred.resize(o + static_cast<std::size_t>(R));
      p.predict_labels(s, a.pred.data() + o);
      a.gt.insert(a.gt.end(), labels, labels + R);
    } else {
      const T* out = p.output(s).data();
      a.out.insert(a.out.end(), out, out + R);
      a.tgt.insert(a.tgt.end(), targets, targets + R);
    }
  }
  static ProbeMetrics finish(const Probe& p, const Acc& a) {
    ProbeMetrics m;
    m.samples = a.n;
    m.loss = a.loss / static_cast<double>(a.rows);
    if (seg(p)) m.miou = miou(a.pred, a.gt, p.config().num_classes);
    else m.rmse = rmse(a.out, a.tgt);
    return m;
  }
};

}  // namespace probe_detail

/// Scores a probe on every sample of `data`, in order, `batch_size` clips at a time.
template <class Probe, Real T = typename Probe::value_type>
ProbeMetrics evaluate_probe(const Probe& probe, const nn::ParameterSet<T>& P, const ProbeData<T>& data,
                            index_t batch_size = 16) {
  using Ops = probe_detail::Ops<Probe>;
  probe_detail::check_data(data, "val", Ops::dim(probe), Ops::labels_per_sample(probe, data.tokens));
  if (batch_size < 1) fail_field<ShapeError>("batch_size", batch_size, "must be >= 1");
  const index_t N = data.tokens, D = data.dim, B = std::min(batch_size, data.count);
  const index_t lps = Ops::labels_per_sample(probe, N);
  auto s = Ops::state(probe, B, N, /*train=*/false);
  std::vector<T> x(static_cast<std::size_t>(B * N * D)), tgt(Ops::needs_targets(probe) ? static_cast<std::size_t>(B * N) : 0);
  std::vector<std::int32_t> lab(static_cast<std::size_t>(B * lps));
  std::vector<index_t> idx;
  typename Ops::Acc acc;
  for (index_t first = 0; first < data.count; first += B) {
    const index_t b = std::min(B, data.count - first);
    idx.resize(static_cast<std::size_t>(b));
    std::iota(idx.begin(), idx.end(), first);
    data.fetch(std::span<const index_t>(idx), x.data(), lps ? lab.data() : nullptr, tgt.empty() ? nullptr : tgt.data());
    s.set_shape(b, N);
    Ops::eval_batch(probe, P.data(), s, TensorView<const T, 3>(x.data(), {b, N, D}), lab.data(), tgt.data(), acc);
  }
  return Ops::finish(probe, acc);
}

/// Trains `probe`'s parameters P in place on `train` (see the header comment) and scores the result
/// on `val`. P must be initialised by the caller (P.init(seed) gives the recipe's initialisation).
template <class Probe, Real T = typename Probe::value_type>
ProbeResult train_probe(const Probe& probe, nn::ParameterSet<T>& P, const ProbeData<T>& train,
                        const ProbeData<T>& val, const ProbeTrainConfig& cfg) {
  using Ops = probe_detail::Ops<Probe>;
  cfg.validate();
  probe_detail::check_data(train, "train", Ops::dim(probe), Ops::labels_per_sample(probe, train.tokens));
  probe_detail::check_data(val, "val", Ops::dim(probe), Ops::labels_per_sample(probe, val.tokens));
  if (P.numel() != probe.layout().numel())
    fail_field<ShapeError>("P.numel()", P.numel(), detail::cat("the probe's layout has ", probe.layout().numel()));
  const index_t N = train.tokens, D = train.dim, B = std::min(cfg.batch_size, train.count);
  const index_t steps = train.count / B, lps = Ops::labels_per_sample(probe, N);
  const std::uint64_t total = static_cast<std::uint64_t>(steps) * static_cast<std::uint64_t>(cfg.epochs);
  const train::WarmupCosine sched{cfg.start_lr < 0 ? cfg.lr : cfg.start_lr, cfg.lr, cfg.final_lr,
                                  static_cast<std::uint64_t>(std::llround(cfg.warmup_epochs * static_cast<double>(steps))),
                                  total};

  auto s = Ops::state(probe, B, N, /*train=*/true);
  nn::ParameterSet<T> G(probe.layout());
  train::AdamW<T> opt(std::vector<typename train::AdamW<T>::Group>{{&P, &G}});
  std::vector<T> x(static_cast<std::size_t>(B * N * D)), tgt(Ops::needs_targets(probe) ? static_cast<std::size_t>(B * N) : 0);
  std::vector<std::int32_t> lab(static_cast<std::size_t>(B * lps));
  std::vector<index_t> order(static_cast<std::size_t>(train.count));
  const TensorView<const T, 3> xv(x.data(), {B, N, D});

  ProbeResult res;
  for (int e = 0; e < cfg.epochs; ++e) {
    std::iota(order.begin(), order.end(), index_t{0});
    if (cfg.shuffle) {  // Fisher–Yates with the epoch's own Philox stream
      Rng rng(cfg.seed, static_cast<std::uint64_t>(e));
      for (std::size_t i = order.size() - 1; i > 0; --i)
        std::swap(order[i], order[rng.uniform_int(static_cast<std::uint32_t>(i + 1))]);
    }
    double sum = 0;
    for (index_t k = 0; k < steps; ++k) {
      train.fetch(std::span<const index_t>(order.data() + k * B, static_cast<std::size_t>(B)), x.data(),
                  lps ? lab.data() : nullptr, tgt.empty() ? nullptr : tgt.data());
      G.zero();
      sum += Ops::train_step(probe, P.data(), G.data(), s, xv, lab.data(), tgt.data());
      const double lr = sched(++res.steps), wd = cfg.weight_decay;
      if (cfg.decay_all && wd > 0) {  // AdamW's decoupled decay p ← p(1 − lr·wd) on the tensors it skips
        for (const auto& p : probe.layout().params())
          if (!p.weight_decay)
            for (std::size_t i = 0; i < p.numel(); ++i) P.data()[p.offset + i] *= static_cast<T>(1.0 - lr * wd);
      }
      opt.step(lr, wd);
    }
    res.epoch_loss.push_back(sum / static_cast<double>(steps));
  }
  res.val = evaluate_probe(probe, P, val, cfg.eval_batch_size > 0 ? cfg.eval_batch_size : cfg.batch_size);
  return res;
}

}  // namespace jepa::eval
