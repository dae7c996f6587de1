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
#pragma once

#include <cmath>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

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

 private:
  static_assert(masking::detail::check_masking_policy<Masking>());
  static_assert(losses::detail::check_loss_policy<Loss>());
  static_assert(std::is_same_v<T, typename Predictor::value_type>,
                "jepa: the encoder and the predictor must use the same scalar type");
  static_assert(Predictor::levels == levels,
                "jepa: Predictor levels must equal the encoder's outputs (1 with FinalNorm, the number of "
                "HierarchicalTaps otherwise)");

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
    std::memcpy(target_params_.data(), enc_params_.data(), enc_params_.numel() * sizeof(T));
    zero_grad();
  }
  void zero_grad() {
    enc_grads_.zero();
    pred_grads_.zero();
  }

  const Encoder& encoder() const { return *encoder_; }
  const Predictor& predictor() const { return *predictor_; }
  const Masking& masking() const { return masking_; }
  const Loss& loss_policy() const { return loss_; }
  Loss& loss_policy_mut() { return loss_; }
  nn::ParameterSet<T>& encoder_params() { return enc_params_; }
  nn::ParameterSet<T>& encoder_grads() { return enc_grads_; }
  nn::ParameterSet<T>& target_params() { return target_params_; }
  nn::ParameterSet<T>& predictor_params() { return pred_params_; }
  nn::ParameterSet<T>& predictor_grads() { return pred_grads_; }
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

  /// Evaluates the loss on given masks (one MaskBatch per generator).
  LossReport forward_loss(TensorView<const T, 5> clip, std::uint64_t step, std::vector<masking::MaskBatch> masks,
                          Modality modality = Modality::video) {
    const index_t B = clip.size(0);
    const InputGeometry g{clip.size(2), clip.size(3), clip.size(4)};
    const nn::TokenGrid grid = encoder_->grid(g);
    const index_t N = grid.size(), D = encoder_->config().embed_dim, W = levels * D;
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
    LossReport rep;
    rep.lambda = Loss::has_context_term ? loss_.context_lambda(step) : 0.0;
    lambda_ = rep.lambda;

    // Targets: the target encoder on every token, then the non-affine LN per level.
    if (!target_state_ || target_state_->geometry() != g || target_state_->batch() != B) {
      target_state_.emplace(encoder_->make_state(Mode::inference, B, g));
      targets_.assign(static_cast<std::size_t>(levels * B * N * D), T(0));
    }
    encoder_->forward(target_params_.data(), clip, nullptr, *target_state_);
    std::vector<const T*> h(levels);
    for (int l = 0; l < levels; ++l) {
      T* dst = targets_.data() + static_cast<std::size_t>(l) * B * N * D;
      Backend::template layer_norm_forward<T>(encoder_->output(*target_state_, l).data(), nullptr, nullptr, dst, nullptr,
                                              nullptr, B * N, D, static_cast<T>(target_ln_eps));
      h[static_cast<std::size_t>(l)] = dst;
    }

    // Per generator: context encoder → predictor → loss (gradients of the loss w.r.t. the predictions
    // are formed here, so backward() only walks the networks).
    gens_.resize(G);
    for (std::size_t j = 0; j < G; ++j) {
      auto& gen = gens_[j];
      const auto& m = masks_[j];
      const index_t Kc = m.context_len, Kt = m.target_len;
      rep.context_len.push_back(Kc);
      rep.target_len.push_back(Kt);
      gen.run_encoder = !share_ || j == 0;
      GenState& src = share_ ? gens_[0] : gen;
      if (gen.run_encoder) {
        ensure_encoder_state(gen, B, g, Kc);
        encoder_->forward(enc_params_.data(), clip, m.context.data(), *gen.enc);
        if constexpr (levels == 1) {
          gen.z_ptr = encoder_->output(*gen.enc).data();
        } else {  // concatenate the taps along channels, shallow → deep: (B,Kc,L·D)
          gen.z.resize(static_cast<std::size_t>(B * Kc * W));
          for (int l = 0; l < levels; ++l) {
            const T* tap = encoder_->output(*gen.enc, l).data();
            for (index_t r = 0; r < B * Kc; ++r)
              std::memcpy(gen.z.data() + r * W + l * D, tap + r * D, static_cast<std::size_t>(D) * sizeof(T));
          }
          gen.z_ptr = gen.z.data();
        }
      }
      ensure_predictor_state(gen, B, Kc, Kt, grid);
      predictor_->forward(pred_params_.data(), src.z_ptr, m.context.data(), m.target.data(), *gen.pred,
                         mask_token_per_generator ? static_cast<index_t>(j) : mask_index, modality);
      const double gscale = 1.0 / static_cast<double>(G);
      gen.d_target.resize(static_cast<std::size_t>(B * Kt * W));
      rep.prediction += gscale * losses::level_loss(loss_, predictor_->target_output(*gen.pred).data(), B, Kt, levels, D, h, N,
                                                    m.target.data(), static_cast<const T*>(nullptr), gscale,
                                                    gen.d_target.data());
      gen.use_context = false;
      if constexpr (Loss::has_context_term) {
        const T* omega = nullptr;
        if (loss_.context_weighting()) {
          gen.omega.resize(static_cast<std::size_t>(B * Kc));
          losses::context_distance_weights(m.context.data(), Kc, m.target.data(), Kt, B, grid, gen.omega.data());
          omega = gen.omega.data();
        }
        gen.use_context = rep.lambda != 0.0;
        gen.d_context.resize(static_cast<std::size_t>(B * Kc * W));
        rep.context += gscale * losses::level_loss(loss_, predictor_->context_output(*gen.pred).data(), B, Kc, levels, D, h,
                                                   N, m.context.data(), omega, gscale * rep.lambda,
                                                   gen.use_context ? gen.d_context.data() : static_cast<T*>(nullptr));
      }
    }
    rep.loss = rep.prediction + rep.lambda * rep.context;
    if (!std::isfinite(rep.loss))
      throw NumericError(jepa::detail::cat("jepa: the loss is not finite (prediction ", rep.prediction, ", context ",
                                           rep.context, ", schedule step ", step, ")"));
    have_forward_ = true;
    return rep;
  }

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
    std::vector<T>* dz_shared = nullptr;
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
  struct GenState {
    std::optional<typename Encoder::State> enc;
    std::optional<typename Predictor::State> pred;
    bool run_encoder = true, use_context = false;
    nn::TokenGrid grid;
    const T* z_ptr = nullptr;
    std::vector<T> z, dz, dz_tmp, d_target, d_context, omega;
    std::vector<std::vector<T>> d_levels;
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
        for (index_t r = 0; r < B * Kc; ++r)
          std::memcpy(dl.data() + r * D, gen.dz.data() + r * W + l * D, static_cast<std::size_t>(D) * sizeof(T));
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
  nn::ParameterSet<T> enc_params_, enc_grads_, target_params_, pred_params_, pred_grads_;
  std::optional<typename Encoder::State> target_state_;
  std::vector<T> targets_;
  std::vector<masking::MaskBatch> masks_;
  std::vector<GenState> gens_;
  double lambda_ = 0;
  bool have_forward_ = false;
  bool share_ = false;  // this evaluation runs the encoder once for all generators
};

}  // namespace jepa::models
