// jepa/models/ac_predictor.hpp — the V-JEPA 2-AC action-conditioned predictor (the world model).
//
// recipe_facts §6.2 and §1.5.4. Input: T time steps, each with the frozen encoder's features of one
// frame z_t (HW patch tokens of width D), an action a_t (A values) and an end-effector state s_t (Sd):
//   x_z = predictor_embed(z_t)   Linear(D→Dp)        x_a = action_encoder(a_t)   Linear(A→Dp)
//   x_s = state_encoder(s_t)     Linear(Sd→Dp)
//   seq = [x_a0, x_s0, x_z0(HW tokens), x_a1, x_s1, x_z1, …]                (B, T·(2+HW), Dp)
//   seq = predictor_blocks(seq)  block-causal attention: every token of step t1 attends to every token
//                                of the steps t2 ≤ t1 (backend::AttnMask::block_causal, block 2+HW);
//                                3-D RoPE (tiled pairing, as the released weights need): patch token k
//                                of step t sits at (t, k div W', k mod W'); the action and state tokens
//                                of step t rotate only the time block, with pos t — which is the
//                                position (t, 0, 0), since cos 0 = 1 leaves the h and w blocks as they are
//   y   = predictor_proj(predictor_norm(seq at the patch rows))              (B, T·HW, D)
// The patch outputs of step t predict the features of frame t+1. The output is not normalised here;
// the 2-AC recipe layer-norms it (non-affine, `normalize_reps`) in the loss and in planning
// (train/ac_trainer.hpp, planning/world_model.hpp).
// `extrinsics_encoder` Linear(A−1→Dp) exists in the official module and its checkpoints but is never
// used (use_extrinsics: false); it is registered (AcPredictorConfig::extrinsics_encoder) so released
// state dicts load strictly, and it never receives a gradient.
//
// Composition: depth, position policy (RoPE pairing), scalar type and backend are template
// parameters; widths, heads, action/state dimensions and the frame grid are runtime values
// (AcPredictorConfig), validated at construction. Parameter names are the official state-dict keys.
// Memory: a State holds the activations of B sequences of up to `max_steps` steps in one arena; a
// forward may use any T ≤ max_steps (a CEM rollout grows T by one each step within one State).
//
// Accumulation contract: backward ACCUMULATES into the parameter gradients G and OVERWRITES d_z
// (B, T·HW, D). The actions and states get no gradient (they are data).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "jepa/models/vit_encoder.hpp"

namespace jepa::models {

struct AcPredictorConfig {
  index_t encoder_dim = 1408;  // D: width of the frame features (ViT-g)
  index_t pred_dim = 1024;     // Dp
  index_t num_heads = 16;
  index_t mlp_hidden = 4096;
  index_t action_dim = 7;      // A: [dx, dy, dz, droll, dpitch, dyaw, dgripper] in the recipe
  index_t state_dim = 7;       // Sd: [x, y, z, roll, pitch, yaw, gripper]
  index_t grid_h = 16, grid_w = 16;  // patch grid of one frame: HW = grid_h·grid_w tokens per frame
  /// Register the unused `extrinsics_encoder` Linear(A−1→Dp) of the official module (for strict
  /// loading of released checkpoints; never used in forward).
  bool extrinsics_encoder = true;
  double eps = 1e-6;
  nn::MlpKind mlp = nn::MlpKind::gelu;
  bool residual_rescale = true;

  index_t tokens_per_frame() const { return grid_h * grid_w; }
  /// Tokens of one time step: the action token, the state token and the HW patch tokens.
  index_t step_tokens() const { return 2 + tokens_per_frame(); }
  index_t head_dim() const { return num_heads > 0 ? pred_dim / num_heads : 0; }

  void validate() const {
    check_field(encoder_dim > 0, "AcPredictorConfig.encoder_dim", encoder_dim, "must be > 0");
    check_field(pred_dim > 0, "AcPredictorConfig.pred_dim", pred_dim, "must be > 0");
    check_field(num_heads > 0 && pred_dim % num_heads == 0, "AcPredictorConfig.num_heads", num_heads,
                jepa::detail::cat("pred_dim (", pred_dim, ") must be divisible by num_heads"));
    check_field(mlp_hidden > 0, "AcPredictorConfig.mlp_hidden", mlp_hidden, "must be > 0");
    check_field(action_dim >= 1, "AcPredictorConfig.action_dim", action_dim, "must be >= 1");
    check_field(state_dim >= 1, "AcPredictorConfig.state_dim", state_dim, "must be >= 1");
    check_field(!extrinsics_encoder || action_dim >= 2, "AcPredictorConfig.extrinsics_encoder", extrinsics_encoder,
                "the extrinsics encoder has action_dim - 1 inputs, so it needs action_dim >= 2");
    check_field(grid_h >= 1 && grid_w >= 1, "AcPredictorConfig.grid_h/grid_w", jepa::detail::cat(grid_h, "x", grid_w),
                "the frame's patch grid must be at least 1x1");
    check_field(eps > 0, "AcPredictorConfig.eps", eps, "must be > 0");
    check_field(nn::rope_axis_channels(head_dim()) > 0, "AcPredictorConfig head_dim", head_dim(),
                "3-D RoPE needs head_dim >= 6 (pred_dim / num_heads)");
  }
};

template <int Depth, class Pos = RopeTiled, Real T = float, class Backend = backend::Cpu>
class AcPredictor {
  static_assert(Depth >= 1, "jepa: AcPredictor depth must be >= 1");
  static_assert(Pos::rope, "jepa: the AC predictor uses 3-D RoPE (RopeTiled for V-JEPA 2-AC, or RopeInterleaved)");
  static_assert(jepa::detail::check_backend<Backend, T>());

 public:
  static constexpr int depth = Depth;
  using value_type = T;
  using backend_type = Backend;

  explicit AcPredictor(const AcPredictorConfig& cfg) : cfg_(cfg) {
    cfg_.validate();
    const index_t D = cfg.encoder_dim, Dp = cfg.pred_dim;
    embed_ = nn::Linear<T, Backend>(layout_, "predictor_embed", D, Dp);
    action_ = nn::Linear<T, Backend>(layout_, "action_encoder", cfg.action_dim, Dp);
    state_ = nn::Linear<T, Backend>(layout_, "state_encoder", cfg.state_dim, Dp);
    if (cfg.extrinsics_encoder) extrinsics_ = nn::Linear<T, Backend>(layout_, "extrinsics_encoder", cfg.action_dim - 1, Dp);
    const nn::BlockConfig bc{Dp, cfg.num_heads, cfg.mlp_hidden, cfg.mlp, cfg.eps};
    for (int l = 0; l < Depth; ++l)
      blocks_.emplace_back(layout_, "predictor_blocks." + std::to_string(l), bc, cfg.residual_rescale ? l + 1 : 0);
    norm_ = nn::LayerNorm<T, Backend>(layout_, "predictor_norm", Dp, cfg.eps);
    proj_ = nn::Linear<T, Backend>(layout_, "predictor_proj", Dp, D);
  }

  const AcPredictorConfig& config() const { return cfg_; }
  const nn::ParamLayout& layout() const { return layout_; }
  std::size_t param_count() const { return layout_.count(); }
  /// The attention mask of a sequence: block lower-triangular over steps of 2 + HW tokens.
  backend::AttnMask mask() const { return backend::AttnMask::block_causal_mask(cfg_.step_tokens()); }

  class State {
   public:
    Mode mode() const { return mode_; }
    index_t batch() const { return B_; }
    /// Steps of the last forward.
    index_t steps() const { return T_; }
    /// The most steps this State holds.
    index_t max_steps() const { return T_cap_; }
    std::size_t bytes() const { return arena_.bytes(); }
    const MemoryPlan& plan() const { return plan_; }

   private:
    friend class AcPredictor;
    Mode mode_ = Mode::inference;
    index_t B_ = 0, T_ = 0, T_cap_ = 0, rope_T_ = 0;
    const T* z_ = nullptr;                // forward input, read again by backward (keep it alive)
    const T* a_ = nullptr;
    const T* st_ = nullptr;
    MemoryPlan plan_{MemoryCategory::activations};
    typename Backend::Arena arena_;
    std::int64_t* pos_ = nullptr;         // (B·S) RoPE grid index of each sequence row
    T* rope_cos_ = nullptr;               // (B·S, 3s)
    T* rope_sin_ = nullptr;
    T* xz_ = nullptr;                     // (B·T·HW, Dp) predictor_embed output
    T* xa_ = nullptr;                     // (B·T, Dp)
    T* xs_ = nullptr;                     // (B·T, Dp)
    std::vector<T*> x_;                   // Depth+1 (training) or 2 (inference) × (B·S, Dp)
    std::vector<nn::BlockCache<T>> caches_;
    T* sel_ = nullptr;                    // (B·T·HW, Dp) last residual stream at the patch rows
    T* y_ = nullptr;                      // (B·T·HW, Dp) predictor_norm output
    T* y_mean_ = nullptr;
    T* y_rstd_ = nullptr;
    T* out_ = nullptr;                    // (B·T·HW, D)
    nn::BlockWorkspace<T> ws_{};
    T* dres_ = nullptr;                   // (B·S, Dp)
    T* d_y_ = nullptr;                    // (B·T·HW, Dp)
    T* d_sel_ = nullptr;                  // (B·T·HW, Dp)
    T* d_cond_ = nullptr;                 // (B·T, Dp)
  };

  /// Plans the activations for B sequences of up to `max_steps` time steps.
  State make_state(Mode mode, index_t B, index_t max_steps) const {
    if (B < 1) fail_field<ShapeError>("batch", B, "must be >= 1");
    if (max_steps < 1)
      fail_field<ShapeError>("max_steps", max_steps, "the AC predictor needs at least one time step (horizon >= 1)");
    State s;
    s.mode_ = mode, s.B_ = B, s.T_cap_ = max_steps;
    const index_t HW = cfg_.tokens_per_frame(), S = max_steps * cfg_.step_tokens(), Dp = cfg_.pred_dim;
    const index_t Mz = B * max_steps * HW, Mc = B * max_steps;
    const bool train = mode == Mode::training;
    const int n_x = train ? Depth + 1 : 2;
    s.x_.assign(static_cast<std::size_t>(n_x), nullptr);
    s.caches_.assign(train ? Depth : 1, {});
    Binder<T> b(MemoryCategory::activations);
    b.request_as(s.pos_, "ac_predictor.positions", {B, S});
    const index_t rot = 3 * nn::rope_axis_channels(cfg_.head_dim());
    b.request(s.rope_cos_, "ac_predictor.rope.cos", {B * S, rot});
    b.request(s.rope_sin_, "ac_predictor.rope.sin", {B * S, rot});
    b.request(s.xz_, "predictor_embed.out", {Mz, Dp});
    b.request(s.xa_, "action_encoder.out", {Mc, Dp});
    b.request(s.xs_, "state_encoder.out", {Mc, Dp});
    for (int i = 0; i < n_x; ++i) b.request(s.x_[i], "ac_predictor.x." + std::to_string(i), {B * S, Dp});
    for (std::size_t i = 0; i < s.caches_.size(); ++i)
      blocks_[i].plan_cache(b, train ? "predictor_blocks." + std::to_string(i) : "predictor_block", B, S, s.caches_[i], train);
    b.request(s.sel_, "ac_predictor.patch_rows", {Mz, Dp});
    b.request(s.y_, "predictor_norm.out", {Mz, Dp});
    b.request(s.y_mean_, "predictor_norm.mean", {Mz});
    b.request(s.y_rstd_, "predictor_norm.rstd", {Mz});
    b.request(s.out_, "predictor_proj.out", {Mz, cfg_.encoder_dim});
    if (train) {
      blocks_[0].plan_workspace(b, "ac_predictor.workspace", B, S, s.ws_);
      b.request(s.dres_, "ac_predictor.workspace.d_residual", {B * S, Dp});
      b.request(s.d_y_, "ac_predictor.workspace.d_norm", {Mz, Dp});
      b.request(s.d_sel_, "ac_predictor.workspace.d_patch_rows", {Mz, Dp});
      b.request(s.d_cond_, "ac_predictor.workspace.d_cond", {Mc, Dp});
    }
    s.plan_ = b.plan();
    b.bind(s.arena_);
    return s;
  }

  /// z (B, T·HW, D) frame features of T steps (frame-major, each frame's HW tokens in grid order);
  /// actions (B, T, A); states (B, T, Sd). All three are read again by backward: keep them alive.
  void forward(const T* P, TensorView<const T, 3> z, TensorView<const T, 3> actions, TensorView<const T, 3> states,
               State& s) const {
    const index_t Tn = check_inputs(z, actions, states, s);
    s.T_ = Tn;
    s.z_ = z.data(), s.a_ = actions.data(), s.st_ = states.data();
    const index_t B = s.B_, HW = cfg_.tokens_per_frame(), K = cfg_.step_tokens(), S = Tn * K, Dp = cfg_.pred_dim;
    embed_.forward(P, s.z_, B * Tn * HW, s.xz_);
    action_.forward(P, s.a_, B * Tn, s.xa_);
    state_.forward(P, s.st_, B * Tn, s.xs_);
    // Interleave [a_t, s_t, z_t] per step.
    T* x0 = s.x_[0];
    JEPA_OMP(parallel for schedule(static) if (B * Tn > 64))
    for (index_t bt = 0; bt < B * Tn; ++bt) {
      T* row = x0 + bt * K * Dp;  // (b·T + t)·K = b·S + t·K
      Backend::template copy<T>(s.xa_ + bt * Dp, row, Dp);
      Backend::template copy<T>(s.xs_ + bt * Dp, row + Dp, Dp);
      Backend::template copy<T>(s.xz_ + bt * HW * Dp, row + 2 * Dp, HW * Dp);
    }
    if (s.rope_T_ != Tn) set_rope(s, Tn);
    const nn::RopeTables<T> rope{s.rope_cos_, s.rope_sin_, 3 * nn::rope_axis_channels(cfg_.head_dim())};
    const backend::AttnMask msk = mask();
    const bool train = s.mode_ == Mode::training;
    for (int l = 0; l < Depth; ++l)
      blocks_[static_cast<std::size_t>(l)].forward(P, train ? s.x_[l] : s.x_[l % 2], B, S, rope,
                                                   s.caches_[train ? l : 0], train ? s.x_[l + 1] : s.x_[(l + 1) % 2], msk);
    // Drop the conditioning tokens, then predictor_norm and predictor_proj on the patch rows.
    const T* xl = train ? s.x_[Depth] : s.x_[Depth % 2];
    JEPA_OMP(parallel for schedule(static) if (B * Tn > 64))
    for (index_t bt = 0; bt < B * Tn; ++bt)
      Backend::template copy<T>(xl + (bt * K + 2) * Dp, s.sel_ + bt * HW * Dp, HW * Dp);
    norm_.forward(P, s.sel_, B * Tn * HW, s.y_, s.y_mean_, s.y_rstd_);
    proj_.forward(P, s.y_, B * Tn * HW, s.out_);
  }

  /// Predictions (B, T·HW, D): the patch outputs of step t predict frame t+1.
  TensorView<const T, 3> output(const State& s) const {
    return {s.out_, {s.B_, s.T_ * cfg_.tokens_per_frame(), cfg_.encoder_dim}};
  }

  /// d_out (B, T·HW, D) = ∂L/∂output; accumulates into G (may be null); writes d_z (B, T·HW, D) if
  /// not null.
  void backward(const T* P, T* G, State& s, const T* d_out, T* d_z) const {
    if (s.mode_ != Mode::training)
      throw ConfigError("jepa: AcPredictor::backward needs a State made with Mode::training (this one is inference)");
    if (!s.z_) throw ConfigError("jepa: AcPredictor::backward needs a forward first");
    if (!d_out) throw ShapeError("jepa: AcPredictor::backward: the output gradient d_out is empty (null)");
    const index_t B = s.B_, Tn = s.T_, HW = cfg_.tokens_per_frame(), K = cfg_.step_tokens(), S = Tn * K;
    const index_t Dp = cfg_.pred_dim, Mz = B * Tn * HW, M = B * S;
    proj_.backward(P, G, s.y_, d_out, Mz, s.d_y_);
    norm_.backward(P, G, s.sel_, s.y_mean_, s.y_rstd_, s.d_y_, Mz, s.d_sel_, false);
    Backend::template zero<T>(s.dres_, M * Dp);
    JEPA_OMP(parallel for schedule(static) if (B * Tn > 64))
    for (index_t bt = 0; bt < B * Tn; ++bt)
      Backend::template copy<T>(s.d_sel_ + bt * HW * Dp, s.dres_ + (bt * K + 2) * Dp, HW * Dp);
    const nn::RopeTables<T> rope{s.rope_cos_, s.rope_sin_, 3 * nn::rope_axis_channels(cfg_.head_dim())};
    const backend::AttnMask msk = mask();
    for (int l = Depth - 1; l >= 0; --l)
      blocks_[static_cast<std::size_t>(l)].backward(P, G, s.x_[l], s.caches_[l], rope, s.dres_, B, S, s.ws_, msk);
    // dres = ∂L/∂seq: split into the action rows, the state rows and the patch rows.
    for (int which = 0; which < 2; ++which) {
      for (index_t bt = 0; bt < B * Tn; ++bt)
        Backend::template copy<T>(s.dres_ + (bt * K + which) * Dp, s.d_cond_ + bt * Dp, Dp);
      if (which == 0) action_.backward(P, G, s.a_, s.d_cond_, B * Tn, nullptr);
      else state_.backward(P, G, s.st_, s.d_cond_, B * Tn, nullptr);
    }
    JEPA_OMP(parallel for schedule(static) if (B * Tn > 64))
    for (index_t bt = 0; bt < B * Tn; ++bt)
      Backend::template copy<T>(s.dres_ + (bt * K + 2) * Dp, s.d_sel_ + bt * HW * Dp, HW * Dp);
    embed_.backward(P, G, s.z_, s.d_sel_, Mz, d_z);
  }

 private:
  index_t check_inputs(const TensorView<const T, 3>& z, const TensorView<const T, 3>& a,
                       const TensorView<const T, 3>& st, const State& s) const {
    const index_t HW = cfg_.tokens_per_frame();
    if (!z.data() || z.numel() == 0) throw ShapeError("jepa: the AC predictor's frame features z are empty");
    if (!a.data() || a.numel() == 0) throw ShapeError("jepa: the AC predictor's actions are empty");
    if (!st.data() || st.numel() == 0) throw ShapeError("jepa: the AC predictor's states are empty");
    if (z.size(0) != s.B_ || a.size(0) != s.B_ || st.size(0) != s.B_)
      fail_field<ShapeError>("batch of z / actions / states", jepa::detail::cat(z.size(0), " / ", a.size(0), " / ", st.size(0)),
                             jepa::detail::cat("each must equal the State's batch ", s.B_));
    if (z.size(2) != cfg_.encoder_dim)
      fail_field<ShapeError>("frame features z (dim 2)", z.size(2),
                             jepa::detail::cat("must equal AcPredictorConfig.encoder_dim = ", cfg_.encoder_dim));
    if (z.size(1) % HW)
      fail_field<ShapeError>("frame features z (dim 1)", z.size(1),
                             jepa::detail::cat("must be a multiple of the ", HW, " tokens per frame (grid ", cfg_.grid_h, "x",
                                               cfg_.grid_w, ")"));
    const index_t Tn = z.size(1) / HW;
    if (Tn > s.T_cap_)
      fail_field<ShapeError>("time steps T", Tn, jepa::detail::cat("this State holds at most ", s.T_cap_, " steps"));
    if (a.size(2) != cfg_.action_dim)
      fail_field<ShapeError>("actions (dim 2)", a.size(2),
                             jepa::detail::cat("action dimension mismatch: AcPredictorConfig.action_dim = ", cfg_.action_dim));
    if (st.size(2) != cfg_.state_dim)
      fail_field<ShapeError>("states (dim 2)", st.size(2),
                             jepa::detail::cat("state dimension mismatch: AcPredictorConfig.state_dim = ", cfg_.state_dim));
    if (a.size(1) != Tn)
      fail_field<ShapeError>("actions (dim 1)", a.size(1), jepa::detail::cat("need one action per frame step (T = ", Tn, ")"));
    if (st.size(1) != Tn)
      fail_field<ShapeError>("states (dim 1)", st.size(1), jepa::detail::cat("need one state per frame step (T = ", Tn, ")"));
    if (!z.is_contiguous() || !a.is_contiguous() || !st.is_contiguous())
      throw ShapeError("jepa: the AC predictor's inputs must be contiguous row-major tensors");
    return Tn;
  }

  /// RoPE grid index of every sequence row: (t, 0, 0) → t·HW for the action/state tokens, t·HW + k
  /// for patch k; the grid is (T, grid_h, grid_w).
  void set_rope(State& s, index_t Tn) const {
    const index_t HW = cfg_.tokens_per_frame(), K = cfg_.step_tokens(), S = Tn * K, B = s.B_;
    for (index_t b = 0; b < B; ++b)
      for (index_t j = 0; j < S; ++j) {
        const index_t t = j / K, k = j % K;
        s.pos_[b * S + j] = t * HW + (k < 2 ? 0 : k - 2);
      }
    nn::rope_tables<T>(s.pos_, B * S, nn::TokenGrid{Tn, cfg_.grid_h, cfg_.grid_w}, cfg_.head_dim(), Pos::pairing, 0,
                       s.rope_cos_, s.rope_sin_);
    s.rope_T_ = Tn;
  }

  AcPredictorConfig cfg_;
  nn::ParamLayout layout_;
  nn::Linear<T, Backend> embed_, action_, state_, extrinsics_;
  std::vector<nn::Block<T, Backend>> blocks_;
  nn::LayerNorm<T, Backend> norm_;
  nn::Linear<T, Backend> proj_;
};

namespace presets {
/// The released V-JEPA 2-AC predictor (`vit_ac_predictor`, recipe_facts §6.2): on ViT-g features
/// (D 1408), Dp 1024, depth 24, 16 heads, MLP 4096, 7-D actions and states, 256² frames (16×16
/// patches); 305,220,992 parameters including the unused extrinsics encoder.
inline AcPredictorConfig vjepa2_ac_predictor_config() { return AcPredictorConfig{}; }
inline constexpr int vjepa2_ac_predictor_depth = 24;
template <Real T = float, class Backend = backend::Cpu>
using VJepa2AcPredictor = AcPredictor<vjepa2_ac_predictor_depth, RopeTiled, T, Backend>;
}  // namespace presets

}  // namespace jepa::models
