// jepa/eval/linear_probe.hpp — per-token linear heads on frozen features for dense tasks, the probe
// losses, and the evaluation metrics.
//
// Dense head (one Linear applied to every token of frozen encoder features):
//   out = x·Wᵀ + b         x (B,N,D) as (M = B·N, D);  W (K, D), b (K);  out (B,N,K)
//   segmentation:  K = classes, per-token logits, loss = softmax cross-entropy averaged over the M tokens
//   depth:         K = 1, per-token regression of the mean depth of the patch (its t·p·p pixels),
//                  loss = mean squared error over the M tokens; reported as RMSE at patch resolution.
// Segmentation predictions reach pixels by nearest patch (every pixel takes the label of the token whose
// tubelet contains it) for the pixel mIoU.
//
// Losses (each returns the loss and, when asked, OVERWRITES the gradient w.r.t. its input):
//   softmax_cross_entropy:  L = (1/R) Σ_r [log Σ_c exp z_rc − z_r,y_r],  ∂L/∂z_rc = (softmax(z_r)_c − [c = y_r])/R
//   mse_loss:               L = (1/R) Σ_r (p_r − t_r)²,                  ∂L/∂p_r = 2(p_r − t_r)/R
// Metrics:
//   miou      mean over the classes present in gt or pred of |P_c ∩ G_c| / |P_c ∪ G_c|
//   rmse      √((1/n) Σ (p − t)²)
//   top1      fraction of rows whose arg-max logit (first maximum on ties) equals the label
//
// Parameters are named `linear.weight` (K, D) and `linear.bias` (K) (the classifier-head naming of
// the official probes). Accumulation contract: backward ACCUMULATES parameter gradients (G += ∂L/∂θ)
// and OVERWRITES the feature gradient. Memory: a State plans the (B,N,K) outputs and their gradient
// for a (B,N) shape once (jepa::Binder); set_shape reuses it for any smaller batch or token count.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "jepa/backend/cpu/backend.hpp"
#include "jepa/concepts/backend.hpp"
#include "jepa/core/binder.hpp"
#include "jepa/core/dtype.hpp"
#include "jepa/core/error.hpp"
#include "jepa/core/tensor.hpp"
#include "jepa/nn/linear.hpp"
#include "jepa/nn/param.hpp"

namespace jepa::eval {

// -------------------------------------------------------------------------------------------------
// Losses
// -------------------------------------------------------------------------------------------------

/// Throws IndexError naming `field`[i] when a label lies outside [0, classes).
inline void check_labels(const std::int32_t* labels, index_t rows, index_t classes, std::string_view field) {
  if (rows > 0 && !labels) throw ShapeError(detail::cat("jepa: ", field, " is null; ", rows, " labels are needed"));
  for (index_t r = 0; r < rows; ++r)
    if (labels[r] < 0 || labels[r] >= classes)
      throw IndexError(detail::cat("jepa: ", field, "[", r, "] = ", labels[r], " is out of range: labels must be in [0, ",
                                   classes, ")"));
}

/// Mean softmax cross-entropy of R rows of C logits (R, C) against integer labels (R). Writes
/// d_logits = ∂L/∂logits (R, C) when it is not null (may alias logits). Computed in double.
template <Real T>
double softmax_cross_entropy(const T* logits, const std::int32_t* labels, index_t rows, index_t classes,
                             T* d_logits = nullptr, std::string_view field = "labels") {
  if (rows <= 0) fail_field<ShapeError>("cross-entropy rows (batch)", rows, "the batch is empty; need >= 1 row");
  if (classes <= 0) fail_field<ShapeError>("cross-entropy classes", classes, "must be >= 1");
  check_labels(labels, rows, classes, field);
  const double inv = 1.0 / static_cast<double>(rows);
  double loss = 0;
  std::vector<double> p(static_cast<std::size_t>(classes));
  for (index_t r = 0; r < rows; ++r) {
    const T* z = logits + r * classes;
    double mx = -std::numeric_limits<double>::infinity();
    for (index_t c = 0; c < classes; ++c) mx = std::max(mx, static_cast<double>(z[c]));
    double s = 0;
    for (index_t c = 0; c < classes; ++c) s += (p[c] = std::exp(static_cast<double>(z[c]) - mx));
    const double lse = mx + std::log(s);
    loss += lse - static_cast<double>(z[labels[r]]);
    if (d_logits) {
      T* dz = d_logits + r * classes;
      for (index_t c = 0; c < classes; ++c) dz[c] = static_cast<T>((p[c] / s - (c == labels[r] ? 1.0 : 0.0)) * inv);
    }
  }
  return loss * inv;
}

/// Mean squared error over n values; writes d_pred = ∂L/∂pred when it is not null.
template <Real T>
double mse_loss(const T* pred, const T* target, index_t n, T* d_pred = nullptr) {
  if (n <= 0) fail_field<ShapeError>("mse rows (batch)", n, "the batch is empty; need >= 1 value");
  if (!target) throw ShapeError("jepa: targets is null; the depth task needs one target per token");
  double s = 0;
  const double inv = 1.0 / static_cast<double>(n);
  for (index_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(pred[i]) - static_cast<double>(target[i]);
    s += d * d;
    if (d_pred) d_pred[i] = static_cast<T>(2.0 * d * inv);
  }
  return s * inv;
}

// -------------------------------------------------------------------------------------------------
// Metrics
// -------------------------------------------------------------------------------------------------

/// Mean IoU of n predicted vs ground-truth labels in [0, classes): IoU_c = |P_c ∩ G_c| / |P_c ∪ G_c|,
/// averaged over the classes that occur in gt or pred (a class absent from both is not counted).
inline double miou(const std::int32_t* pred, const std::int32_t* gt, index_t n, index_t classes) {
  if (n <= 0) fail_field<ShapeError>("miou n (pixels)", n, "nothing to score; need >= 1 label");
  if (classes <= 0) fail_field<ShapeError>("miou classes", classes, "must be >= 1");
  check_labels(pred, n, classes, "miou pred");
  check_labels(gt, n, classes, "miou gt");
  std::vector<std::int64_t> inter(static_cast<std::size_t>(classes)), uni(static_cast<std::size_t>(classes));
  for (index_t i = 0; i < n; ++i) {
    const auto p = static_cast<std::size_t>(pred[i]), g = static_cast<std::size_t>(gt[i]);
    if (p == g) {
      ++inter[p];
      ++uni[p];
    } else {
      ++uni[p];
      ++uni[g];
    }
  }
  double s = 0;
  int present = 0;
  for (std::size_t c = 0; c < inter.size(); ++c)
    if (uni[c] > 0) {
      s += static_cast<double>(inter[c]) / static_cast<double>(uni[c]);
      ++present;
    }
  return s / present;
}
inline double miou(const std::vector<std::int32_t>& pred, const std::vector<std::int32_t>& gt, index_t classes) {
  if (pred.size() != gt.size())
    fail_field<ShapeError>("miou pred.size()", pred.size(), detail::cat("must equal gt.size() = ", gt.size()));
  return miou(pred.data(), gt.data(), static_cast<index_t>(pred.size()), classes);
}

/// Root mean squared error √((1/n) Σ (p − t)²).
template <class A, class B>
double rmse(const A* pred, const B* target, index_t n) {
  if (n <= 0) fail_field<ShapeError>("rmse n", n, "nothing to score; need >= 1 value");
  double s = 0;
  for (index_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(pred[i]) - static_cast<double>(target[i]);
    s += d * d;
  }
  return std::sqrt(s / static_cast<double>(n));
}
template <class A, class B>
double rmse(const std::vector<A>& pred, const std::vector<B>& target) {
  if (pred.size() != target.size())
    fail_field<ShapeError>("rmse pred.size()", pred.size(), detail::cat("must equal target.size() = ", target.size()));
  return rmse(pred.data(), target.data(), static_cast<index_t>(pred.size()));
}

/// Arg-max of each row of an (R, C) matrix (first maximum on ties).
template <Real T>
void argmax_rows(const T* x, index_t rows, index_t cols, std::int32_t* out) {
  for (index_t r = 0; r < rows; ++r) {
    const T* z = x + r * cols;
    out[r] = static_cast<std::int32_t>(std::max_element(z, z + cols) - z);
  }
}

/// Top-1 accuracy of (R, C) logits against labels (R), in [0, 1].
template <Real T>
double top1_accuracy(const T* logits, const std::int32_t* labels, index_t rows, index_t classes) {
  if (rows <= 0) fail_field<ShapeError>("top1_accuracy rows (batch)", rows, "nothing to score; need >= 1 row");
  check_labels(labels, rows, classes, "top1_accuracy labels");
  index_t hit = 0;
  for (index_t r = 0; r < rows; ++r) {
    const T* z = logits + r * classes;
    hit += (std::max_element(z, z + classes) - z) == labels[r];
  }
  return static_cast<double>(hit) / static_cast<double>(rows);
}

// -------------------------------------------------------------------------------------------------
// Pixel ↔ patch conversions (token n = t'·H'W' + h'·W' + w'; tubelet t frames × p × p pixels)
// -------------------------------------------------------------------------------------------------

/// A pixel grid (F,H,W) and its tokenisation into tubelets of t frames × p × p pixels.
struct PatchGrid {
  index_t frames = 1, height = 0, width = 0;
  index_t tubelet = 1, patch = 16;

  index_t tokens_t() const { return frames / tubelet; }
  index_t tokens_h() const { return height / patch; }
  index_t tokens_w() const { return width / patch; }
  /// N = T'·H'·W'
  index_t tokens() const { return tokens_t() * tokens_h() * tokens_w(); }
  index_t pixels() const { return frames * height * width; }
  /// The token that contains pixel (f, y, x).
  index_t token_of(index_t f, index_t y, index_t x) const {
    return ((f / tubelet) * tokens_h() + y / patch) * tokens_w() + x / patch;
  }
  void validate() const {
    check_field<ShapeError>(tubelet >= 1, "PatchGrid.tubelet", tubelet, "must be >= 1");
    check_field<ShapeError>(patch >= 1, "PatchGrid.patch", patch, "must be >= 1");
    check_field<ShapeError>(frames >= 1 && frames % tubelet == 0, "PatchGrid.frames", frames,
                            detail::cat("must be a positive multiple of the tubelet size ", tubelet));
    check_field<ShapeError>(height >= 1 && height % patch == 0, "PatchGrid.height", height,
                            detail::cat("must be a positive multiple of the patch size ", patch));
    check_field<ShapeError>(width >= 1 && width % patch == 0, "PatchGrid.width", width,
                            detail::cat("must be a positive multiple of the patch size ", patch));
  }
};

/// Per-token class targets (N) from a pixel label map (F,H,W): the most frequent label among the
/// t·p·p pixels of each tubelet (ties go to the smaller label).
inline std::vector<std::int32_t> patch_majority_labels(const std::int32_t* pixels, const PatchGrid& g, index_t classes) {
  g.validate();
  check_labels(pixels, g.pixels(), classes, "pixel labels");
  const index_t N = g.tokens();
  std::vector<std::int32_t> counts(static_cast<std::size_t>(N * classes), 0);
  for (index_t f = 0; f < g.frames; ++f)
    for (index_t y = 0; y < g.height; ++y)
      for (index_t x = 0; x < g.width; ++x)
        ++counts[static_cast<std::size_t>(g.token_of(f, y, x) * classes + pixels[(f * g.height + y) * g.width + x])];
  std::vector<std::int32_t> out(static_cast<std::size_t>(N));
  for (index_t n = 0; n < N; ++n) {
    const auto* c = counts.data() + n * classes;
    out[static_cast<std::size_t>(n)] = static_cast<std::int32_t>(std::max_element(c, c + classes) - c);
  }
  return out;
}

/// Per-token regression targets (N): the mean of a pixel map (F,H,W) over each tubelet.
template <Real T = float, class S>
std::vector<T> patch_mean(const S* pixels, const PatchGrid& g) {
  g.validate();
  const index_t N = g.tokens();
  std::vector<double> sum(static_cast<std::size_t>(N), 0.0);
  for (index_t f = 0; f < g.frames; ++f)
    for (index_t y = 0; y < g.height; ++y)
      for (index_t x = 0; x < g.width; ++x)
        sum[static_cast<std::size_t>(g.token_of(f, y, x))] += static_cast<double>(pixels[(f * g.height + y) * g.width + x]);
  const double inv = 1.0 / static_cast<double>(g.tubelet * g.patch * g.patch);
  std::vector<T> out(static_cast<std::size_t>(N));
  for (index_t n = 0; n < N; ++n) out[static_cast<std::size_t>(n)] = static_cast<T>(sum[static_cast<std::size_t>(n)] * inv);
  return out;
}

/// Nearest-patch upsampling of per-token values (N) to pixels (F,H,W): pixel (f,y,x) takes the value
/// of the token whose tubelet contains it.
template <class V>
std::vector<V> upsample_nearest_patch(const V* tokens, const PatchGrid& g) {
  g.validate();
  std::vector<V> out(static_cast<std::size_t>(g.pixels()));
  for (index_t f = 0; f < g.frames; ++f)
    for (index_t y = 0; y < g.height; ++y)
      for (index_t x = 0; x < g.width; ++x)
        out[static_cast<std::size_t>((f * g.height + y) * g.width + x)] = tokens[g.token_of(f, y, x)];
  return out;
}

/// Binary foreground/background classes from an instance map (0 = background, s+1 = instance s), as
/// data::SyntheticClip::segmentation: 0 background, 1 foreground.
inline std::vector<std::int32_t> foreground_labels(const std::int32_t* instances, index_t n) {
  std::vector<std::int32_t> out(static_cast<std::size_t>(n));
  for (index_t i = 0; i < n; ++i) out[static_cast<std::size_t>(i)] = instances[i] > 0 ? 1 : 0;
  return out;
}

// -------------------------------------------------------------------------------------------------
// The dense linear head
// -------------------------------------------------------------------------------------------------

enum class DenseTask : std::uint8_t { segmentation, depth };

struct DenseProbeConfig {
  index_t dim = 0;          // D, the encoder width
  DenseTask task = DenseTask::segmentation;
  index_t num_classes = 2;  // segmentation classes (ignored for depth)

  index_t outputs() const { return task == DenseTask::segmentation ? num_classes : 1; }
  void validate() const {
    check_field(dim > 0, "DenseProbeConfig.dim", dim, "must be > 0 (the feature width D)");
    if (task == DenseTask::segmentation)
      check_field(num_classes >= 2, "DenseProbeConfig.num_classes", num_classes, "segmentation needs >= 2 classes");
  }
};

template <Real T = float, class Backend = backend::Cpu>
class LinearDenseProbe {
  static_assert(jepa::detail::check_backend<Backend, T>());

 public:
  using value_type = T;
  explicit LinearDenseProbe(const DenseProbeConfig& cfg) : cfg_(cfg) {
    cfg_.validate();
    linear_ = nn::Linear<T, Backend>(layout_, "linear", cfg_.dim, cfg_.outputs());
  }
  const DenseProbeConfig& config() const { return cfg_; }
  const nn::ParamLayout& layout() const { return layout_; }
  /// K: classes (segmentation) or 1 (depth).
  index_t outputs() const { return cfg_.outputs(); }

  class State {
   public:
    index_t batch() const { return B_; }
    index_t tokens() const { return N_; }
    /// Use B <= the planned batch and N <= the planned tokens from the next forward on.
    void set_shape(index_t B, index_t N) {
      if (B < 1 || B > capB_) fail_field<ShapeError>("batch", B, detail::cat("must be in [1, ", capB_, "] (the planned batch)"));
      if (N < 1 || N > capN_) fail_field<ShapeError>("tokens", N, detail::cat("must be in [1, ", capN_, "] (the planned tokens)"));
      B_ = B;
      N_ = N;
    }
    const MemoryPlan& plan() const { return plan_; }
    std::size_t bytes() const { return arena_.bytes(); }

   private:
    friend class LinearDenseProbe;
    index_t B_ = 0, N_ = 0, capB_ = 0, capN_ = 0;
    const T* x_ = nullptr;  // the features of the last forward (kept by the caller until backward)
    MemoryPlan plan_{MemoryCategory::activations};
    typename Backend::Arena arena_;
    T* out_ = nullptr;   // (B,N,K)
    T* dout_ = nullptr;  // (B,N,K)
  };

  State make_state(index_t batch, index_t tokens) const {
    if (batch < 1) fail_field<ShapeError>("batch", batch, "the batch is empty; must be >= 1");
    if (tokens < 1) fail_field<ShapeError>("tokens", tokens, "no tokens; must be >= 1");
    State s;
    s.B_ = s.capB_ = batch;
    s.N_ = s.capN_ = tokens;
    Binder<T> b(MemoryCategory::activations);
    b.request(s.out_, "linear.out", {batch, tokens, outputs()});
    b.request(s.dout_, "linear.d_out", {batch, tokens, outputs()});
    s.plan_ = b.plan();
    b.bind(s.arena_);
    return s;
  }

  /// out = features·Wᵀ + b for every token. features (B,N,D) contiguous, B and N those of the State.
  /// The features must stay alive and unchanged until backward.
  void forward(const T* P, TensorView<const T, 3> features, State& s) const {
    check_features(features, s, cfg_.dim);
    s.x_ = features.data();
    linear_.forward(P, s.x_, s.B_ * s.N_, s.out_);
  }
  /// Per-token outputs (B,N,K) of the last forward.
  TensorView<const T, 3> output(const State& s) const { return {s.out_, {s.B_, s.N_, outputs()}}; }

  /// Segmentation: mean cross-entropy over the B·N tokens against labels (B,N). Fills the output
  /// gradient for backward.
  double loss(State& s, const std::int32_t* labels) const {
    if (cfg_.task != DenseTask::segmentation)
      throw ConfigError("jepa: LinearDenseProbe::loss(labels) is the segmentation loss; this probe's task is depth "
                        "(pass per-token targets)");
    return softmax_cross_entropy(s.out_, labels, s.B_ * s.N_, outputs(), s.dout_);
  }
  /// Depth: mean squared error over the B·N tokens against targets (B,N). Fills the output gradient.
  double loss(State& s, const T* targets) const {
    if (cfg_.task != DenseTask::depth)
      throw ConfigError("jepa: LinearDenseProbe::loss(targets) is the depth loss; this probe's task is segmentation "
                        "(pass per-token labels)");
    return mse_loss(s.out_, targets, s.B_ * s.N_, s.dout_);
  }
  /// The output gradient buffer (B,N,K) that backward reads (loss() fills it; a caller may write its own).
  T* output_grad(State& s) const { return s.dout_; }

  /// G += ∂L/∂θ; d_features (B,N,D) overwritten when not null.
  void backward(const T* P, T* G, State& s, T* d_features = nullptr) const {
    if (!s.x_) throw ConfigError("jepa: LinearDenseProbe::backward needs a forward on this State first");
    linear_.backward(P, G, s.x_, s.dout_, s.B_ * s.N_, d_features);
  }

  /// Per-token predicted labels (segmentation) into pred (B·N).
  void predict_labels(const State& s, std::int32_t* pred) const {
    if (cfg_.task != DenseTask::segmentation)
      throw ConfigError("jepa: predict_labels needs a segmentation probe (this one regresses depth)");
    argmax_rows(s.out_, s.B_ * s.N_, outputs(), pred);
  }

  /// Shared with the attentive probe: (B,N,D) contiguous, B and N those of the State, D the width.
  template <class St>
  static void check_features(const TensorView<const T, 3>& f, const St& s, index_t D) {
    if (!f.data() || f.numel() == 0)
      fail_field<ShapeError>("features", Shape::dims_str(f.shape().data(), 3), "the feature batch is empty");
    if (f.size(2) != D)
      fail_field<ShapeError>("features width (dim 2)", f.size(2), detail::cat("this probe was built for D = ", D));
    if (f.size(0) != s.batch())
      fail_field<ShapeError>("features batch (dim 0)", f.size(0), detail::cat("the State is set for B = ", s.batch()));
    if (f.size(1) != s.tokens())
      fail_field<ShapeError>("features tokens (dim 1)", f.size(1), detail::cat("the State is set for N = ", s.tokens()));
    if (!f.is_contiguous()) throw ShapeError("jepa: features must be contiguous (row-major B,N,D)");
  }

 private:
  DenseProbeConfig cfg_;
  nn::ParamLayout layout_;
  nn::Linear<T, Backend> linear_;
};

}  // namespace jepa::eval
