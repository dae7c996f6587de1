// jepa/models/jepa.hpp — the composed JEPA model: context encoder, EMA target encoder, predictor,
// masking policy and loss policy (recipe_facts §2.5, §4).
//
// One training evaluation, per batch of clips x (B,C,F,H,W) at step s:
//   masks_j          = masking.sample(grid, seed, s, B)                     j = 1 … G generators
//   h_l              = LN_ε=1e-5(target_encoder(x))_l        all N tokens, no gradient; the extra
//                                                            non-affine LN is applied per level chunk
//   z_j              = context_encoder(x[ctx_j])             (B,Kc,L·D): the L outputs concatenated
//   ẑ_j, ẑ^ctx_j     = predictor(z_j, ctx_j, tgt_j)
//   L = 1/G Σ_j loss(ẑ_j, h[tgt_j]) + λ(s) · 1/G Σ_j loss_ω(ẑ^ctx_j, h[ctx_j])
// backward() walks predictor → encoder per generator; the gradient of each level of z_j enters the
// encoder at its tapped block (deep self-supervision). The target encoder is a forward-only
// instantiation with its own parameter buffer (stop-gradient is structural); its EMA update is the
// optimizer's job. A masking policy may declare `static constexpr bool shared_context = true`
// (I-JEPA: one context, several target blocks): the encoder then runs once and the predictor once
// per target block, whenever the contexts of all generators are identical (they may differ when the
// recipe's relaxation lets a context overlap a block; then each generator runs on its own).
//
// Accumulation contract: backward() ACCUMULATES into encoder_grads() and predictor_grads().
//
// Backends. With the encoder and predictor instantiated on a device backend (backend::Cuda), the
// parameter sets, targets and every intermediate live in device memory, and the same sequence runs
// there: the target LN, tap concatenation (copy_2d), losses and 2.1 distance weights through the
// backend's device kernels (backend/cuda/losses.cuh), the predictor's index tables built on the device.
// Two entry points:
//   forward_loss(clip, step[, masks])   host masks (drawn here, or given), uploaded; waits for the
//                                       device at the end and returns the full LossReport (throws
//                                       NumericError on a non-finite loss, as on the CPU).
//   enqueue_loss(clip, step, {DeviceMask…}, lambda_device)
//                                       masks already on the device; enqueues everything and returns
//                                       at once (no host synchronisation: capturable in a CUDA graph).
//                                       The values stay on the device (loss_values_backend()) until
//                                       read_report() waits and reads them.
// The host backend computes exactly what it computed before this split (same code path).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "jepa/backend/scratch.hpp"
#include "jepa/losses/context_weights.hpp"
#include "jepa/losses/losses.hpp"
#include "jepa/losses/objective.hpp"
#include "jepa/masking/mask.hpp"
#include "jepa/models/predictor.hpp"
#include "jepa/models/vit_encoder.hpp"

namespace jepa::models {

namespace detail {
template <class M>
constexpr bool shares_context() {
  if constexpr (requires { M::shared_context; }) return M::shared_context; else return false;
}
}  // namespace detail

/// Masks already in the backend's memory space, one per generator: (B,Kc) context and (B,Kt) target
/// indices (each row ascending or not; disjoint within a row), with their lengths known on the host.
struct DeviceMask {
  index_t batch = 0, context_len = 0, target_len = 0;
  const std::int64_t* context = nullptr;
  const std::int64_t* target = nullptr;
};

/// What one loss evaluation produced.
struct LossReport {
  double loss = 0;        // total
  double prediction = 0;  // mean over generators of the prediction term
  double context = 0;     // mean over generators of the (weighted) context term, before λ
  double lambda = 0;      // λ(step)
  std::vector<index_t> context_len, target_len;  // per generator, after truncation
};

template <class Encoder, class Predictor, class Masking, class Loss>
class Jepa {
 public:
  using T = typename Encoder::value_type;
  using Backend = typename Encoder::backend_type;
  using encoder_type = Encoder;
  using predictor_type = Predictor;
  using masking_type = Masking;
  using loss_type = Loss;
  static constexpr int levels = Encoder::has_final_norm ? 1 : Encoder::num_taps;
  static constexpr bool shared_context = detail::shares_context<Masking>();
  static constexpr bool on_device = Backend::space != MemorySpace::host;
  /// Parameters, gradients and the EMA target in the backend's memory (HostArena on the CPU).
  using Params = nn::ParameterSet<T, typename Backend::Arena>;

 private:
  static_assert(masking::detail::check_masking_policy<Masking>());
  static_assert(losses::detail::check_loss_policy<Loss>());
  static_assert(std::is_same_v<T, typename Predictor::value_type>,
                "jepa: the encoder and the predictor must use the same scalar type");
  static_assert(Predictor::levels == levels,
                "jepa: Predictor levels must equal the encoder's outputs (1 with FinalNorm, the number of "
                "HierarchicalTaps otherwise)");
  static_assert(std::is_same_v<Backend, typename Predictor::backend_type>,
                "jepa: the encoder and the predictor must run on the same backend");
  // On a device backend the loss kernels take the elementwise distance by value (losses.hpp).
  static constexpr bool check_device_loss() {
    if constexpr (on_device) return losses::detail::check_device_distance<Loss>();
    return true;
  }
  static_assert(check_device_loss());

 public:
  Jepa(const VitConfig& enc, const PredictorConfig& pred, Masking masking = {}, Loss loss = {})
      : encoder_(std::make_unique<Encoder>(enc)), predictor_(std::make_unique<Predictor>(pred)),
        masking_(std::move(masking)), loss_(std::move(loss)), enc_params_(encoder_->layout()),
        enc_grads_(encoder_->layout()), target_params_(encoder_->layout()), pred_params_(predictor_->layout()),
        pred_grads_(predictor_->layout()) {
    check_field(pred.encoder_dim == enc.embed_dim, "PredictorConfig.encoder_dim", pred.encoder_dim,
                jepa::detail::cat("must equal the encoder width ", enc.embed_dim));
    check_field(pred.output_dim() == enc.embed_dim, "PredictorConfig.out_dim", pred.output_dim(),
                jepa::detail::cat("the predictor predicts target-encoder features: must equal ", enc.embed_dim));
    if constexpr (Loss::has_context_term)
      check_field(pred.predict_context, "PredictorConfig.predict_context", pred.predict_context,
                  "the loss has a context term, so the predictor must predict the context tokens");
  }

  /// Initialises encoder and predictor with the recipe's initialisation; the target encoder starts
  /// as an exact copy of the context encoder. Gradients are zeroed.
  void init(std::uint64_t seed) {
    enc_params_.init(seed);
    pred_params_.init(seed ^ 0x9E3779B97F4A7C15ull);
    if constexpr (on_device)
      Backend::template copy<T>(enc_params_.data(), target_params_.data(), static_cast<index_t>(enc_params_.numel()));
    else
      std::memcpy(target_params_.data(), enc_params_.data(), enc_params_.numel() * sizeof(T));
    zero_grad();
  }
  /// Zeroes both gradient buffers (on a device backend: enqueued on the backend's stream).
  void zero_grad() {
    if constexpr (on_device) {
      Backend::template zero<T>(enc_grads_.data(), static_cast<index_t>(enc_grads_.numel()));
      Backend::template zero<T>(pred_grads_.data(), static_cast<index_t>(pred_grads_.numel()));
    } else {
      enc_grads_.zero();
      pred_grads_.zero();
    }
  }

  const Encoder& encoder() const { return *encoder_; }
  const Predictor& predictor() const { return *predictor_; }
  const Masking& masking() const { return masking_; }
  const Loss& loss_policy() const { return loss_; }
  Loss& loss_policy_mut() { return loss_; }
  Params& encoder_params() { return enc_params_; }
  Params& encoder_grads() { return enc_grads_; }
  Params& target_params() { return target_params_; }
  Params& predictor_params() { return pred_params_; }
  Params& predictor_grads() { return pred_grads_; }
  /// Masks of the last forward_loss.
  const std::vector<masking::MaskBatch>& masks() const { return masks_; }
  /// Normalised targets of level l from the last forward_loss: (B, N, D).
  TensorView<const T, 3> targets(int l = 0) const {
    if (!target_state_ || l < 0 || l >= levels)
      fail_field<IndexError>("target level", l, jepa::detail::cat("need a forward_loss first and 0 <= level < ", levels));
    const index_t B = target_state_->batch(), N = target_state_->tokens(), D = encoder_->config().embed_dim;
    return {targets_.data() + static_cast<std::size_t>(l) * B * N * D, {B, N, D}};
  }
  /// Predictions of generator j from the last forward_loss: (B, Kt, L·D).
  TensorView<const T, 3> predictions(std::size_t j = 0) const {
    if (j >= gens_.size() || !gens_[j].pred)
      fail_field<IndexError>("generator", j, jepa::detail::cat("the last forward_loss had ", gens_.size(), " generator(s)"));
    return predictor_->target_output(*gens_[j].pred);
  }
  /// The seed of the masks (masks are a function of (mask_seed, step, sample)).
  std::uint64_t mask_seed = 0;
  /// Which mask token the predictor uses (the frames-per-clip group index; 0 in V-JEPA 2 / 2.1
  /// pretraining, recipe pitfall 9.1.7).
  index_t mask_index = 0;
  /// V-JEPA 1 uses one mask token per generator: generator j uses mask token j.
  bool mask_token_per_generator = false;
  /// eps of the extra non-affine LayerNorm on the targets.
  double target_ln_eps = 1e-5;

  /// Draws the masks of `step` and evaluates the loss.
  LossReport forward_loss(TensorView<const T, 5> clip, std::uint64_t step, Modality modality = Modality::video) {
    const InputGeometry g{clip.size(2), clip.size(3), clip.size(4)};
    return forward_loss(clip, step, masking_.sample(encoder_->grid(g), mask_seed, step, clip.size(0)), modality);
  }

  /// Evaluates the loss on given masks (one MaskBatch per generator, host memory).
  LossReport forward_loss(TensorView<const T, 5> clip, std::uint64_t step, std::vector<masking::MaskBatch> masks,
                          Modality modality = Modality::video) {
    const index_t B = clip.size(0);
    const InputGeometry g{clip.size(2), clip.size(3), clip.size(4)};
    const nn::TokenGrid grid = encoder_->grid(g);
    if (masks.empty()) throw ConfigError("jepa: the masking policy produced no mask generator");
    for (std::size_t j = 0; j < masks.size(); ++j) {
      if (masks[j].batch != B)
        throw ShapeError(jepa::detail::cat("jepa: mask generator ", j, " was drawn for a batch of ", masks[j].batch,
                                           " but the clip batch is ", B));
      masking::validate(masks[j], grid);
    }
    share_ = shared_context;
    for (std::size_t j = 1; j < masks.size() && share_; ++j)
      share_ = masks[j].context_len == masks[0].context_len && masks[j].context == masks[0].context;
    masks_ = std::move(masks);
    const std::size_t G = masks_.size();
    gens_.resize(G);
    std::vector<DeviceMask> views(G);
    for (std::size_t j = 0; j < G; ++j) {
      const auto& m = masks_[j];
      views[j] = {m.batch, m.context_len, m.target_len, m.context.data(), m.target.data()};
      if constexpr (on_device) {  // validated on the host above; upload (pageable: not capturable)
        auto& gen = gens_[j];
        gen.ctx_dev.resize(m.context.size());
        gen.tgt_dev.resize(m.target.size());
        Backend::template copy<std::int64_t>(m.context.data(), gen.ctx_dev.data(), static_cast<index_t>(m.context.size()));
        Backend::template copy<std::int64_t>(m.target.data(), gen.tgt_dev.data(), static_cast<index_t>(m.target.size()));
        views[j].context = gen.ctx_dev.data();
        views[j].target = gen.tgt_dev.data();
      }
    }
    LossReport rep = evaluate(clip, step, views, modality, nullptr);
    if constexpr (on_device) rep = read_report();
    if (!std::isfinite(rep.loss))
      throw NumericError(jepa::detail::cat("jepa: the loss is not finite (prediction ", rep.prediction, ", context ",
                                           rep.context, ", schedule step ", step, ")"));
    return rep;
  }

  /// Device backends: enqueues the loss of `step` on masks already in device memory, without any host
  /// synchronisation (a captured CUDA graph may contain it; the masks' lengths are fixed in the graph,
  /// their contents are read at replay). lambda_device, when not null, is a device double holding
  /// λ(step) for the context term's gradient (a graph reads it at replay); when null, λ(step) is
  /// baked in. The masks are used as they are (not validated on the host): bad indices surface as
  /// flags in index_errors_backend() and as a NaN loss. The report holds the lengths and λ; the
  /// values come from read_report() after the step. Every generator runs the encoder on its own
  /// context (a shared-context policy's saving needs a host comparison of the contexts).
  LossReport enqueue_loss(TensorView<const T, 5> clip, std::uint64_t step, const std::vector<DeviceMask>& masks,
                          const double* lambda_device = nullptr, Modality modality = Modality::video) {
    static_assert(on_device, "jepa: Jepa::enqueue_loss is for device backends; on the CPU call forward_loss");
    const index_t B = clip.size(0);
    const nn::TokenGrid grid = encoder_->grid({clip.size(2), clip.size(3), clip.size(4)});
    if (masks.empty()) throw ConfigError("jepa: enqueue_loss needs at least one mask generator");
    for (std::size_t j = 0; j < masks.size(); ++j) {
      const auto& m = masks[j];
      if (m.batch != B)
        throw ShapeError(jepa::detail::cat("jepa: device mask ", j, " has batch ", m.batch, " but the clip batch is ", B));
      if (m.context_len < 1 || m.target_len < 1 || m.context_len + m.target_len > grid.size())
        throw ShapeError(jepa::detail::cat("jepa: device mask ", j, " has Kc = ", m.context_len, ", Kt = ", m.target_len,
                                           ": need Kc >= 1, Kt >= 1 and Kc + Kt <= ", grid.size(), " tokens"));
      if (!m.context || !m.target) throw ShapeError(jepa::detail::cat("jepa: device mask ", j, " has a null index pointer"));
    }
    share_ = false;
    masks_.clear();
    gens_.resize(masks.size());
    return evaluate(clip, step, masks, modality, lambda_device);
  }

  /// Device backends: waits for the stream, reads the values of the last enqueue_loss / forward_loss and
  /// returns the full report (loss NaN when an index was bad: see index_errors()).
  LossReport read_report() {
    static_assert(on_device, "jepa: read_report is for device backends (the CPU's forward_loss returns the values)");
    Backend::synchronize();
    std::vector<double> v(loss_dev_.size());
    std::vector<int> bad(1, 0);
    Backend::template download<double>(v.data(), loss_dev_.data(), static_cast<index_t>(v.size()));
    Backend::template download<int>(bad.data(), bad_dev_.data(), 1);
    LossReport rep = pending_;
    const std::size_t G = gens_.size();
    const double gscale = 1.0 / static_cast<double>(G);
    rep.prediction = rep.context = 0;
    for (std::size_t j = 0; j < G; ++j) {
      rep.prediction += gscale * v[2 * j];
      if constexpr (Loss::has_context_term) rep.context += gscale * v[2 * j + 1];
    }
    rep.loss = rep.prediction + rep.lambda * rep.context;
    index_errors_ = bad[0];
    for (auto& gen : gens_)
      if (gen.pred) {
        int pb = 0;
        Backend::template download<int>(&pb, gen.pred->index_errors_backend(), 1);
        index_errors_ |= pb << 4;
      }
    if (index_errors_) rep.loss = std::numeric_limits<double>::quiet_NaN();
    return rep;
  }
  /// Device backends, after read_report(): 0, or flags of bad device masks (1: a loss index outside
  /// the grid, 2: a context token that is also a target; 16/32: the predictor saw an index outside the
  /// grid / a token twice).
  int index_errors() const { return index_errors_; }
  /// Device backends: the per-generator loss values of the last evaluation, (G, 2) doubles in device
  /// memory: prediction term, context term (before λ); a training step reads them after it finishes.
  const double* loss_values_backend() const { return loss_dev_.data(); }
  /// Device backends: the loss kernels' bad-index flags of the last evaluation (one device int).
  const int* loss_index_errors_backend() const { return bad_dev_.data(); }

 private:
  /// The loss evaluation proper, on masks whose indices are in the backend's memory space.
  LossReport evaluate(TensorView<const T, 5> clip, std::uint64_t step, const std::vector<DeviceMask>& masks,
                      Modality modality, const double* lambda_device) {
    const index_t B = clip.size(0);
    const InputGeometry g{clip.size(2), clip.size(3), clip.size(4)};
    const nn::TokenGrid grid = encoder_->grid(g);
    const index_t N = grid.size(), D = encoder_->config().embed_dim, W = levels * D;
    const std::size_t G = masks.size();
    LossReport rep;
    rep.lambda = Loss::has_context_term ? loss_.context_lambda(step) : 0.0;
    lambda_ = rep.lambda;

    // Targets: the target encoder on every token, then the non-affine LN per level.
    if (!target_state_ || target_state_->geometry() != g || target_state_->batch() != B) {
      target_state_.emplace(encoder_->make_state(Mode::inference, B, g));
      targets_.resize(static_cast<std::size_t>(levels * B * N * D));
    }
    encoder_->forward(target_params_.data(), clip, nullptr, *target_state_);
    std::vector<const T*> h(levels);
    for (int l = 0; l < levels; ++l) {
      T* dst = targets_.data() + static_cast<std::size_t>(l) * B * N * D;
      Backend::template layer_norm_forward<T>(encoder_->output(*target_state_, l).data(), nullptr, nullptr, dst, nullptr,
                                              nullptr, B * N, D, static_cast<T>(target_ln_eps));
      h[static_cast<std::size_t>(l)] = dst;
    }
    [[maybe_unused]] std::vector<double> level_w(static_cast<std::size_t>(levels));
    for (int l = 0; l < levels; ++l) level_w[static_cast<std::size_t>(l)] = loss_.level_weight(l, levels);
    if constexpr (on_device) {
      loss_dev_.resize(2 * G);
      bad_dev_.resize(1);
      Backend::template zero<double>(loss_dev_.data(), static_cast<index_t>(2 * G));
      Backend::template zero<int>(bad_dev_.data(), 1);
      index_t most = 1;
      for (const auto& m : masks) most = std::max(most, B * std::max(m.context_len, m.target_len));
      loss_rows_.resize(static_cast<std::size_t>(most));
    }

    // Per generator: context encoder → predictor → loss (gradients of the loss w.r.t. the predictions
    // are formed here, so backward() only walks the networks).
    for (std::size_t j = 0; j < G; ++j) {
      auto& gen = gens_[j];
      const auto& m = masks[j];
      const index_t Kc = m.context_len, Kt = m.target_len;
      rep.context_len.push_back(Kc);
      rep.target_len.push_back(Kt);
      gen.run_encoder = !share_ || j == 0;
      GenState& src = share_ ? gens_[0] : gen;
      if (gen.run_encoder) {
        ensure_encoder_state(gen, B, g, Kc);
        if constexpr (on_device) encoder_->forward(enc_params_.data(), clip, BackendIndices{m.context}, *gen.enc);
        else encoder_->forward(enc_params_.data(), clip, m.context, *gen.enc);
        if constexpr (levels == 1) {
          gen.z_ptr = encoder_->output(*gen.enc).data();
        } else {  // concatenate the taps along channels, shallow → deep: (B,Kc,L·D)
          gen.z.resize(static_cast<std::size_t>(B * Kc * W));
          for (int l = 0; l < levels; ++l) {
            const T* tap = encoder_->output(*gen.enc, l).data();
            if constexpr (on_device) {
              Backend::template copy_2d<T>(tap, D, gen.z.data() + l * D, W, B * Kc, D);
            } else {
              for (index_t r = 0; r < B * Kc; ++r)
                std::memcpy(gen.z.data() + r * W + l * D, tap + r * D, static_cast<std::size_t>(D) * sizeof(T));
            }
          }
          gen.z_ptr = gen.z.data();
        }
      }
      ensure_predictor_state(gen, B, Kc, Kt, grid);
      const index_t mtok = mask_token_per_generator ? static_cast<index_t>(j) : mask_index;
      if constexpr (on_device)
        predictor_->forward(pred_params_.data(), src.z_ptr, BackendIndices{m.context}, BackendIndices{m.target}, *gen.pred,
                            mtok, modality);
      else
        predictor_->forward(pred_params_.data(), src.z_ptr, m.context, m.target, *gen.pred, mtok, modality);
      const double gscale = 1.0 / static_cast<double>(G);
      gen.d_target.resize(static_cast<std::size_t>(B * Kt * W));
      if constexpr (on_device) {
        Backend::level_loss(device_distance(), predictor_->target_output(*gen.pred).data(), B, Kt, levels, D, h.data(),
                            level_w.data(), N, m.target, static_cast<const T*>(nullptr), gscale, nullptr,
                            gen.d_target.data(), loss_rows_.data(), loss_rows_.size() * sizeof(double),
                            loss_dev_.data() + 2 * j, bad_dev_.data());
      } else {
        rep.prediction += gscale * losses::level_loss(loss_, predictor_->target_output(*gen.pred).data(), B, Kt, levels, D,
                                                      h, N, m.target, static_cast<const T*>(nullptr), gscale,
                                                      gen.d_target.data());
      }
      gen.use_context = false;
      if constexpr (Loss::has_context_term) {
        const T* omega = nullptr;
        if (loss_.context_weighting()) {
          gen.omega.resize(static_cast<std::size_t>(B * Kc));
          if constexpr (on_device)
            Backend::template context_distance_weights<T>(m.context, Kc, m.target, Kt, B, grid, gen.omega.data(),
                                                          bad_dev_.data());
          else
            losses::context_distance_weights(m.context, Kc, m.target, Kt, B, grid, gen.omega.data());
          omega = gen.omega.data();
        }
        gen.d_context.resize(static_cast<std::size_t>(B * Kc * W));
        if constexpr (on_device) {
          // With λ read from device memory its value is unknown here, so the context gradient always
          // flows (λ = 0 makes it zero: the same update, since AdamW skips all-zero tensors).
          gen.use_context = lambda_device != nullptr || rep.lambda != 0.0;
          Backend::level_loss(device_distance(), predictor_->context_output(*gen.pred).data(), B, Kc, levels, D, h.data(),
                              level_w.data(), N, m.context, omega, gscale * (lambda_device ? 1.0 : rep.lambda),
                              lambda_device, gen.use_context ? gen.d_context.data() : static_cast<T*>(nullptr),
                              loss_rows_.data(), loss_rows_.size() * sizeof(double), loss_dev_.data() + 2 * j + 1,
                              bad_dev_.data());
        } else {
          gen.use_context = rep.lambda != 0.0;
          rep.context += gscale * losses::level_loss(loss_, predictor_->context_output(*gen.pred).data(), B, Kc, levels, D,
                                                     h, N, m.context, omega, gscale * rep.lambda,
                                                     gen.use_context ? gen.d_context.data() : static_cast<T*>(nullptr));
        }
      }
    }
    if constexpr (on_device) {
      rep.prediction = rep.context = rep.loss = std::numeric_limits<double>::quiet_NaN();
      pending_ = rep;
    } else {
      rep.loss = rep.prediction + rep.lambda * rep.context;
      if (!std::isfinite(rep.loss))
        throw NumericError(jepa::detail::cat("jepa: the loss is not finite (prediction ", rep.prediction, ", context ",
                                             rep.context, ", schedule step ", step, ")"));
    }
    have_forward_ = true;
    return rep;
  }

  /// The loss policy's elementwise distance, by value (device kernels).
  auto device_distance() const {
    if constexpr (requires { typename Loss::distance_type; })
      return static_cast<const typename Loss::distance_type&>(loss_);
    else
      return losses::L1{};  // unreachable: check_device_loss() rejects such a policy on a device backend
  }

 public:
  /// Accumulates ∂L/∂θ of the last forward_loss into encoder_grads() and predictor_grads().
  /// `on_predictor` / `on_encoder` hear the ranges of predictor().grad_walk() / encoder().grad_walk()
  /// as soon as their gradient of this call is final (during the last generator's walks; the
  /// predictor's walk always ends before the encoder's last one): data-parallel training starts
  /// reducing them while the walk goes on (jepa/dist/bucket_reducer.hpp). Same arithmetic either way.
  void backward(const nn::GradReady& on_encoder = {}, const nn::GradReady& on_predictor = {}) {
    if (!have_forward_) throw ConfigError("jepa: Jepa::backward() needs a forward_loss() first");
    have_forward_ = false;
    const index_t D = encoder_->config().embed_dim, W = levels * D;
    const nn::GradReady none{};
    Buf<T>* dz_shared = nullptr;
    for (std::size_t j = 0; j < gens_.size(); ++j) {
      auto& gen = gens_[j];
      const bool last = j + 1 == gens_.size();
      const index_t B = gen.pred->batch(), Kc = gen.pred->context_len();
      GenState& src = share_ ? gens_[0] : gen;
      src.dz.resize(static_cast<std::size_t>(B * Kc * W));
      if (share_ && j > 0) {  // the predictor of block j adds onto the shared context gradient
        gen.dz_tmp.resize(src.dz.size());
        predictor_->backward(pred_params_.data(), pred_grads_.data(), *gen.pred, gen.d_target.data(),
                            gen.use_context ? gen.d_context.data() : nullptr, gen.dz_tmp.data(), last ? on_predictor : none);
        Backend::template add<T>(src.dz.data(), gen.dz_tmp.data(), src.dz.data(), B * Kc * W);
      } else {
        predictor_->backward(pred_params_.data(), pred_grads_.data(), *gen.pred, gen.d_target.data(),
                            gen.use_context ? gen.d_context.data() : nullptr, src.dz.data(), last ? on_predictor : none);
      }
      dz_shared = &src.dz;
      if (!share_) encoder_backward(gen, B, Kc, D, last ? on_encoder : none);
    }
    if (share_ && dz_shared) encoder_backward(gens_[0], gens_[0].enc->batch(), gens_[0].enc->tokens(), D, on_encoder);
  }

 private:
  template <class U>
  using Buf = backend::Scratch<U, Backend>;  // std::vector on the CPU, a device array on a device backend

  struct GenState {
    std::optional<typename Encoder::State> enc;
    std::optional<typename Predictor::State> pred;
    bool run_encoder = true, use_context = false;
    nn::TokenGrid grid;
    const T* z_ptr = nullptr;
    Buf<T> z, dz, dz_tmp, d_target, d_context, omega;
    std::vector<Buf<T>> d_levels;
    Buf<std::int64_t> ctx_dev, tgt_dev;  // device backends: the uploaded host masks
  };

  void encoder_backward(GenState& gen, index_t B, index_t Kc, index_t D, const nn::GradReady& ready) {
    const index_t W = levels * D;
    std::vector<const T*> d_out(levels);
    if constexpr (levels == 1) {
      d_out[0] = gen.dz.data();
    } else {  // split (B,Kc,L·D) into L contiguous (B,Kc,D) tap gradients
      gen.d_levels.resize(levels);
      for (int l = 0; l < levels; ++l) {
        auto& dl = gen.d_levels[static_cast<std::size_t>(l)];
        dl.resize(static_cast<std::size_t>(B * Kc * D));
        if constexpr (on_device) {
          Backend::template copy_2d<T>(gen.dz.data() + l * D, W, dl.data(), D, B * Kc, D);
        } else {
          for (index_t r = 0; r < B * Kc; ++r)
            std::memcpy(dl.data() + r * D, gen.dz.data() + r * W + l * D, static_cast<std::size_t>(D) * sizeof(T));
        }
        d_out[static_cast<std::size_t>(l)] = dl.data();
      }
    }
    encoder_->backward(enc_params_.data(), enc_grads_.data(), *gen.enc, std::span<const T* const>(d_out), nullptr, ready);
  }

  /// Reuses the State when it can hold Kc tokens; otherwise plans one with 25 % headroom (mask
  /// lengths vary a little from step to step, so steady-state training does not allocate).
  void ensure_encoder_state(GenState& gen, index_t B, const InputGeometry& g, index_t Kc) {
    const index_t N = encoder_->grid(g).size();
    if (!gen.enc || gen.enc->geometry() != g || gen.enc->batch() != B || gen.enc->capacity() < Kc)
      gen.enc.emplace(encoder_->make_state(Mode::training, B, g, std::min(N, Kc + Kc / 4)));
    gen.enc->set_tokens(Kc);
  }
  void ensure_predictor_state(GenState& gen, index_t B, index_t Kc, index_t Kt, const nn::TokenGrid& grid) {
    const index_t N = grid.size();
    if (!gen.pred || gen.pred->batch() != B || gen.pred->context_capacity() < Kc || gen.pred->target_capacity() < Kt ||
        gen.grid != grid) {
      gen.pred.emplace(predictor_->make_state(Mode::training, B, std::min(N, Kc + Kc / 4), std::min(N, Kt + Kt / 4), grid));
      gen.grid = grid;
    }
    gen.pred->set_lengths(Kc, Kt);
  }

  // Owned through pointers so the parameter sets' layout references survive moves of the model.
  std::unique_ptr<Encoder> encoder_;
  std::unique_ptr<Predictor> predictor_;
  Masking masking_;
  Loss loss_;
  Params enc_params_, enc_grads_, target_params_, pred_params_, pred_grads_;
  std::optional<typename Encoder::State> target_state_;
  Buf<T> targets_;
  // Device backends: per-generator loss values (G,2), bad-index flags, row partials of the loss.
  Buf<double> loss_dev_, loss_rows_;
  Buf<int> bad_dev_;
  LossReport pending_;
  int index_errors_ = 0;
  std::vector<masking::MaskBatch> masks_;
  std::vector<GenState> gens_;
  double lambda_ = 0;
  bool have_forward_ = false;
  bool share_ = false;  // this evaluation runs the encoder once for all generators
};

}  // namespace jepa::models
