// jepa/models/predictor.hpp — the JEPA predictor: a narrow transformer that, from the context
// tokens' features and the grid positions of the targets, predicts the target tokens' features.
//
// recipe_facts §2.1–2.4. Per batch row, with context features z (Kc, Din), context indices Ic and
// target indices It:
//   x_c  = embed(z)                       Linear(D→Dp), or for L > 1 levels (2.1) the fusion MLP
//                                         Linear(L·D→D) → GELU → Linear(D→Dp)  (predictor_embed.0/.2)
//   x_t  = mask_tokens[m] for every target   (m = the mask-token index; 0 in V-JEPA 2 / 2.1 training)
//   seq  = sort_by_index([x_c ; x_t], [Ic ; It])   (+ sin-cos rows at the indices for absolute
//                                         position policies; + the 2.1 modality embedding on every token)
//   seq  = predictor_blocks(seq)          RoPE positions = the sorted grid indices
//   y    = unsort(predictor_norm(seq))
//   out_t = predictor_proj(y[Kc:])        (Kt, L·Dout)   shallow→deep level chunks
//   out_c = predictor_proj_context(y[:Kc])  (Kc, L·Dout)  2.1 only (the dense context loss)
// Sorting does not change full attention; it is kept because causal variants and the reference
// depend on the order. I-JEPA does not sort — with full attention the result is identical.
//
// Accumulation contract: parameter gradients accumulate; d_z is overwritten.
//
// Memory spaces (as VitEncoder): P, G, z, d_target, d_context, d_z and every State buffer live in
// Backend::space (device memory for backend::Cuda). The indices come in two ways:
//   - host arrays (const std::int64_t*): validated and sorted on the host; on a device backend the
//     index tables below are built in a host mirror and uploaded with one Backend::copy;
//   - BackendIndices (already in Backend::space): on a device backend a kernel builds the same tables
//     (counting sort, backend/cuda/index_tables.cuh) and flags bad indices in device memory, so the
//     forward is a pure sequence of stream operations (capturable in a CUDA graph).
// RoPE rows: on a host backend computed per sorted token; on a device backend gathered from the
// grid's full tables, which the State uploads once when it is planned (bitwise the same rows). All
// uploads are enqueued on the backend's current stream: plan and run a State on one stream. Every
// row movement is a gather_rows (an exact row copy), so there is no per-row host loop over device
// memory:
//   x0      = gather([xc ; mask_token], assemble)       (B·S rows from B·Kc + 1)
//   x0     += gather(pos, sorted)                      sin-cos policies (one add: x + 1·p = x + p)
//   sel_t   = gather_b(y, slot_t),  sel_c = gather_b(y, slot_c)     per row b, positions in [0, S)
//   d_y     = gather([d_sel_t ; d_sel_c], dy_src)      (d_sel_c zeroed when there is no d_context)
//   d_xc    = gather_b(dres, slot_c)
//   g_mtok += Σ_rows gather_b(dres, slot_t)            rows summed in (b, k) order, as a per-row axpy
#pragma once

#include <algorithm>
#include <numeric>
#include <string>
#include <vector>

#include "jepa/backend/host_staging.hpp"
#include "jepa/models/vit_encoder.hpp"
#include "jepa/nn/grad_ready.hpp"

namespace jepa::models {

enum class Modality : std::uint8_t { video, image };

struct PredictorConfig {
  index_t encoder_dim = 1024;   // D: width of each encoder level fed in
  index_t pred_dim = 384;       // Dp
  index_t num_heads = 12;
  index_t mlp_hidden = 1536;
  index_t num_mask_tokens = 10;
  index_t out_dim = 0;          // Dout per level; 0 = encoder_dim (1664 for the distilled 2.1 B/L)
  double eps = 1e-6;
  nn::MlpKind mlp = nn::MlpKind::gelu;
  index_t rope_interp_grid = 0;  // 2.1 interpolate_rope
  bool residual_rescale = true;
  bool zero_init_mask_tokens = true;  // V-JEPA / V-JEPA 2 / 2.1; I-JEPA draws trunc-normal
  bool ijepa_naming = false;          // one `mask_token` instead of `mask_tokens.i`
  bool modality_embedding = false;    // 2.1 video/img_mod_embed [1,1,Dp]
  bool predict_context = false;       // 2.1 predictor_proj_context

  index_t output_dim() const { return out_dim > 0 ? out_dim : encoder_dim; }
  void validate(bool rope) const {
    check_field(encoder_dim > 0, "PredictorConfig.encoder_dim", encoder_dim, "must be > 0");
    check_field(pred_dim > 0, "PredictorConfig.pred_dim", pred_dim, "must be > 0");
    check_field(num_heads > 0 && pred_dim % num_heads == 0, "PredictorConfig.num_heads", num_heads,
                jepa::detail::cat("pred_dim (", pred_dim, ") must be divisible by num_heads"));
    check_field(mlp_hidden > 0, "PredictorConfig.mlp_hidden", mlp_hidden, "must be > 0");
    check_field(num_mask_tokens >= 1, "PredictorConfig.num_mask_tokens", num_mask_tokens, "must be >= 1");
    check_field(!ijepa_naming || num_mask_tokens == 1, "PredictorConfig.num_mask_tokens", num_mask_tokens,
                "I-JEPA naming has exactly one mask_token");
    check_field(out_dim >= 0, "PredictorConfig.out_dim", out_dim, "must be >= 0 (0 = encoder_dim)");
    check_field(eps > 0, "PredictorConfig.eps", eps, "must be > 0");
    if (rope)
      check_field(nn::rope_axis_channels(pred_dim / num_heads) > 0, "PredictorConfig head_dim", pred_dim / num_heads,
                  "3-D RoPE needs head_dim >= 6 (pred_dim / num_heads)");
  }
};

template <int Depth, class Pos = RopeTiled, int Levels = 1, Real T = float, class Backend = backend::Cpu>
class Predictor {
  static_assert(Depth >= 1, "jepa: Predictor depth must be >= 1");
  static_assert(Levels >= 1, "jepa: Predictor needs at least one output level");
  static_assert(jepa::detail::check_backend<Backend, T>());

 public:
  static constexpr int depth = Depth;
  static constexpr int levels = Levels;
  static constexpr bool uses_rope = Pos::rope;
  using value_type = T;
  using backend_type = Backend;

  explicit Predictor(const PredictorConfig& cfg) : cfg_(cfg) {
    cfg_.validate(uses_rope);
    const index_t D = cfg.encoder_dim, Dp = cfg.pred_dim;
    if constexpr (Levels > 1) {
      embed0_ = nn::Linear<T, Backend>(layout_, "predictor_embed.0", Levels * D, D);
      embed2_ = nn::Linear<T, Backend>(layout_, "predictor_embed.2", D, Dp);
    } else {
      embed0_ = nn::Linear<T, Backend>(layout_, "predictor_embed", D, Dp);
    }
    const nn::Init mt_init = cfg.zero_init_mask_tokens ? nn::Init::zeros : nn::Init::trunc_normal;
    if (cfg.ijepa_naming) {
      mask_tokens_.push_back(layout_.add("mask_token", {1, 1, Dp}, mt_init, 0.02));
    } else {
      for (index_t i = 0; i < cfg.num_mask_tokens; ++i)
        mask_tokens_.push_back(layout_.add("mask_tokens." + std::to_string(i), {1, 1, Dp}, mt_init, 0.02));
    }
    if (cfg.modality_embedding) {
      video_mod_ = layout_.add("video_mod_embed", {1, 1, Dp}, nn::Init::normal, 1e-6);
      img_mod_ = layout_.add("img_mod_embed", {1, 1, Dp}, nn::Init::normal, 1e-6);
    }
    const nn::BlockConfig bc{Dp, cfg.num_heads, cfg.mlp_hidden, cfg.mlp, cfg.eps};
    for (int l = 0; l < Depth; ++l) {
      block_first_.push_back(layout_.params().size());
      blocks_.emplace_back(layout_, "predictor_blocks." + std::to_string(l), bc, cfg.residual_rescale ? l + 1 : 0);
    }
    block_first_.push_back(layout_.params().size());
    norm_ = nn::LayerNorm<T, Backend>(layout_, "predictor_norm", Dp, cfg.eps);
    proj_ = nn::Linear<T, Backend>(layout_, "predictor_proj", Dp, Levels * cfg.output_dim());
    if (cfg.predict_context)
      proj_ctx_ = nn::Linear<T, Backend>(layout_, "predictor_proj_context", Dp, Levels * cfg.output_dim());
  }

  const PredictorConfig& config() const { return cfg_; }
  const nn::ParamLayout& layout() const { return layout_; }
  std::size_t param_count() const { return layout_.count(); }
  /// Width of the input features: L·D (the concatenated encoder taps).
  index_t input_dim() const { return Levels * cfg_.encoder_dim; }
  /// Width of each output: L·Dout.
  index_t output_width() const { return Levels * cfg_.output_dim(); }

  class State {
   public:
    index_t batch() const { return B_; }
    index_t context_len() const { return Kc_; }
    index_t target_len() const { return Kt_; }
    /// Use Kc context and Kt target tokens from the next forward on, within the planned capacity.
    void set_lengths(index_t Kc, index_t Kt) {
      if (Kc < 1 || Kc > Kc_cap_ || Kt < 1 || Kt > Kt_cap_ || Kc + Kt > grid_.size())
        throw ShapeError(jepa::detail::cat("jepa: predictor lengths Kc = ", Kc, ", Kt = ", Kt, " do not fit: need 1 <= Kc <= ",
                                           Kc_cap_, ", 1 <= Kt <= ", Kt_cap_, " and Kc + Kt <= ", grid_.size(), " tokens"));
      Kc_ = Kc;
      Kt_ = Kt;
    }
    index_t context_capacity() const { return Kc_cap_; }
    index_t target_capacity() const { return Kt_cap_; }
    std::size_t bytes() const { return arena_.bytes(); }
    const MemoryPlan& plan() const { return plan_; }
    /// Device backends: the index-error flags of the last forward with BackendIndices (one int in
    /// device memory: bit 1 = an index outside the grid, bit 2 = a token listed twice; 0 = valid),
    /// read after the step since the device cannot throw. Null on a host backend (it throws instead).
    const int* index_errors_backend() const { return bad_; }

   private:
    friend class Predictor;
    index_t B_ = 0, Kc_ = 0, Kt_ = 0, Kc_cap_ = 0, Kt_cap_ = 0;
    Mode mode_ = Mode::training;
    nn::TokenGrid grid_;
    index_t mask_index_ = 0;
    Modality modality_ = Modality::video;
    const T* z_ = nullptr;                // the forward input (read again by backward: keep it alive)
    MemoryPlan plan_{MemoryCategory::activations};
    typename Backend::Arena arena_;
    // Index tables (4, B, S) at the current lengths (S = Kc + Kt; planned for the capacities):
    //   [0] sorted  (B·S) grid index of each sorted position
    //   [1] assemble(B·S) row of [xc ; mask token] at each sorted position (target → row B·Kc)
    //   [2] slot    (B·Kt) then (B·Kc): sorted position in [0, S) of target k / context k of row b
    //   [3] dy_src  (B·S) row of [d_sel_t ; d_sel_c] at each sorted position
    std::int64_t* idx_ = nullptr;
    T* h0_ = nullptr;                     // (B·Kc, D) fusion pre-activation (Levels > 1)
    T* g0_ = nullptr;                     // (B·Kc, D) fusion GELU output
    T* xc_ = nullptr;                     // (B·Kc + 1, Dp): embedded context, then the mask token row
    T* rope_cos_ = nullptr;               // (B·S, rot)
    T* rope_sin_ = nullptr;
    T* rope_full_cos_ = nullptr;          // (N, rot) every grid token's rows (device backends: gathered
    T* rope_full_sin_ = nullptr;          //  by the sorted indices on the device)
    std::int32_t* mark_ = nullptr;        // (B, N) scratch of the device index tables (device backends)
    int* bad_ = nullptr;                  // (1) index-error flags of the device index tables
    T* pos_ = nullptr;                    // (N, Dp) sin-cos table
    std::vector<T*> x_;                   // Depth+1 (training) or 2 (inference) × (B·S, Dp)
    std::vector<nn::BlockCache<T>> caches_;
    T* y_ = nullptr;                      // (B·S, Dp) predictor_norm output (sorted order)
    T* y_mean_ = nullptr;
    T* y_rstd_ = nullptr;
    T* sel_t_ = nullptr;                  // (B·Kt, Dp) y at the targets, in It order
    T* sel_c_ = nullptr;                  // (B·Kc, Dp) y at the context, in Ic order
    T* out_t_ = nullptr;                  // (B·Kt, L·Dout)
    T* out_c_ = nullptr;                  // (B·Kc, L·Dout)
    nn::BlockWorkspace<T> ws_{};
    T* dres_ = nullptr;                   // (B·S, Dp)
    T* d_y_ = nullptr;                    // (B·S, Dp)
    T* d_sel_ = nullptr;                  // (B·Kt + B·Kc, Dp): d_sel_t, then d_sel_c
    T* d_xc_ = nullptr;                   // (B·Kc, Dp)
    T* d_g0_ = nullptr;                   // (B·Kc, D)
    // Host mirrors of host-made data on a device backend (unused on a host backend).
    std::vector<std::int64_t> idx_host_;  // the index tables, (4, B, S)

    const std::int64_t* sorted() const { return idx_; }
    const std::int64_t* assemble() const { return idx_ + B_ * (Kc_ + Kt_); }
    const std::int64_t* slot_t() const { return idx_ + 2 * B_ * (Kc_ + Kt_); }
    const std::int64_t* slot_c() const { return slot_t() + B_ * Kt_; }
    const std::int64_t* dy_src() const { return idx_ + 3 * B_ * (Kc_ + Kt_); }
  };

  /// Plans the activations for B rows of (up to) Kc context and Kt target tokens on token grid `grid`.
  State make_state(Mode mode, index_t B, index_t Kc, index_t Kt, const nn::TokenGrid& grid) const {
    if (B < 1) fail_field<ShapeError>("batch", B, "must be >= 1");
    if (Kc < 1) fail_field<ShapeError>("context tokens (Kc)", Kc, "the predictor needs at least one context token");
    if (Kt < 1) fail_field<ShapeError>("target tokens (Kt)", Kt, "the predictor needs at least one target token");
    if (Kc > grid.size() || Kt > grid.size())
      fail_field<ShapeError>("Kc / Kt", jepa::detail::cat(Kc, " / ", Kt), jepa::detail::cat("each must be <= the ", grid.size(),
                                                             " tokens of the ", grid.t, "x", grid.h, "x", grid.w, " grid"));
    State s;
    s.B_ = B, s.Kc_ = s.Kc_cap_ = Kc, s.Kt_ = s.Kt_cap_ = Kt, s.mode_ = mode, s.grid_ = grid;
    const index_t S = Kc + Kt, D = cfg_.encoder_dim, Dp = cfg_.pred_dim, W = output_width();
    const bool train = mode == Mode::training;
    const int n_x = train ? Depth + 1 : 2;
    s.x_.assign(static_cast<std::size_t>(n_x), nullptr);
    s.caches_.assign(train ? Depth : 1, {});
    Binder<T> b(MemoryCategory::activations);
    b.request_as(s.idx_, "predictor.indices", {4, B, S});
    if constexpr (Backend::space != MemorySpace::host) {
      b.request_as(s.mark_, "predictor.indices.mark", {B, grid.size()});
      b.request_as(s.bad_, "predictor.indices.errors", {1});
    }
    if constexpr (Levels > 1) {
      b.request(s.h0_, "predictor_embed.0.out", {B * Kc, D});
      b.request(s.g0_, "predictor_embed.1.out", {B * Kc, D});
    }
    b.request(s.xc_, "predictor_embed.out", {B * Kc + 1, Dp});
    if constexpr (uses_rope) {
      const index_t rot = 3 * nn::rope_axis_channels(Dp / cfg_.num_heads);
      b.request(s.rope_cos_, "predictor.rope.cos", {B * S, rot});
      b.request(s.rope_sin_, "predictor.rope.sin", {B * S, rot});
      if constexpr (Backend::space != MemorySpace::host) {
        b.request(s.rope_full_cos_, "predictor.rope.grid_cos", {grid.size(), rot});
        b.request(s.rope_full_sin_, "predictor.rope.grid_sin", {grid.size(), rot});
      }
    } else {
      b.request(s.pos_, "predictor.pos_embed", {grid.size(), Dp});
    }
    for (int i = 0; i < n_x; ++i) b.request(s.x_[i], "predictor.x." + std::to_string(i), {B * S, Dp});
    for (std::size_t i = 0; i < s.caches_.size(); ++i)
      blocks_[i].plan_cache(b, train ? "predictor_blocks." + std::to_string(i) : "predictor_block", B, S, s.caches_[i], train);
    b.request(s.y_, "predictor_norm.out", {B * S, Dp});
    b.request(s.y_mean_, "predictor_norm.mean", {B * S});
    b.request(s.y_rstd_, "predictor_norm.rstd", {B * S});
    b.request(s.sel_t_, "predictor.sel_target", {B * Kt, Dp});
    b.request(s.out_t_, "predictor_proj.out", {B * Kt, W});
    if (cfg_.predict_context) {
      b.request(s.sel_c_, "predictor.sel_context", {B * Kc, Dp});
      b.request(s.out_c_, "predictor_proj_context.out", {B * Kc, W});
    }
    if (train) {
      blocks_[0].plan_workspace(b, "predictor.workspace", B, S, s.ws_);
      b.request(s.dres_, "predictor.workspace.d_residual", {B * S, Dp});
      b.request(s.d_y_, "predictor.workspace.d_norm", {B * S, Dp});
      b.request(s.d_sel_, "predictor.workspace.d_sel", {B * Kt + B * Kc, Dp});
      b.request(s.d_xc_, "predictor.workspace.d_embed", {B * Kc, Dp});
      if constexpr (Levels > 1) b.request(s.d_g0_, "predictor.workspace.d_fusion", {B * Kc, D});
    }
    s.plan_ = b.plan();
    b.bind(s.arena_);
    if constexpr (!uses_rope) {
      const auto table = Pos::template table<T>(Dp, grid);
      if constexpr (Backend::space == MemorySpace::host)
        std::copy(table.begin(), table.end(), s.pos_);
      else
        Backend::template copy<T>(table.data(), s.pos_, static_cast<index_t>(table.size()));  // host → device
    } else if constexpr (Backend::space != MemorySpace::host) {
      // Every grid token's RoPE rows, once per State (a gathered row equals the host path's row).
      const index_t N = grid.size(), rot = 3 * nn::rope_axis_channels(Dp / cfg_.num_heads);
      const auto cs = nn::rope_grid_tables<T>(grid, Dp / cfg_.num_heads, Pos::pairing, cfg_.rope_interp_grid);
      Backend::template copy<T>(cs.data(), s.rope_full_cos_, N * rot);  // host → device (plan time)
      Backend::template copy<T>(cs.data() + N * rot, s.rope_full_sin_, N * rot);
    }
    return s;
  }

  /// z (B,Kc,L·D) context features; ctx_idx (B,Kc), tgt_idx (B,Kt) grid indices (disjoint per row).
  /// z is read again by backward, so it must stay alive until then (it is the encoder's output).
  void forward(const T* P, const T* z, const std::int64_t* ctx_idx, const std::int64_t* tgt_idx, State& s,
               index_t mask_index = 0, Modality modality = Modality::video) const {
    check_mask_index(mask_index);
    sort_indices(ctx_idx, tgt_idx, s);
    forward_body(P, z, s, mask_index, modality);
  }
  /// Same, with ctx (B,Kc) and tgt (B,Kt) already in the backend's memory space. On a device backend
  /// the index tables are built by a device kernel (backend/cuda/index_tables.cuh), so the call is a
  /// pure sequence of stream operations (capturable in a CUDA graph); bad indices are reported through
  /// State::index_errors_backend() instead of an exception. On a host backend this is the host path.
  void forward(const T* P, const T* z, BackendIndices ctx_idx, BackendIndices tgt_idx, State& s, index_t mask_index = 0,
               Modality modality = Modality::video) const {
    if (!ctx_idx.data || !tgt_idx.data)
      throw ShapeError("jepa: Predictor::forward: BackendIndices.data is a null pointer");
    if constexpr (Backend::space == MemorySpace::host) {
      forward(P, z, ctx_idx.data, tgt_idx.data, s, mask_index, modality);
    } else {
      check_mask_index(mask_index);
      Backend::template zero<int>(s.bad_, 1);
      Backend::predictor_index_tables(ctx_idx.data, tgt_idx.data, s.B_, s.Kc_, s.Kt_, s.grid_.size(), s.idx_, s.mark_,
                                      s.bad_);
      forward_body(P, z, s, mask_index, modality);
    }
  }

 private:
  void check_mask_index(index_t mask_index) const {
    if (mask_index < 0 || mask_index >= static_cast<index_t>(mask_tokens_.size()))
      fail_field<IndexError>("mask_index", mask_index,
                             jepa::detail::cat("this predictor has ", mask_tokens_.size(), " mask token(s)"));
  }
  void forward_body(const T* P, const T* z, State& s, index_t mask_index, Modality modality) const {
    s.z_ = z;
    s.mask_index_ = mask_index;
    s.modality_ = modality;
    const index_t B = s.B_, Kc = s.Kc_, Kt = s.Kt_, S = Kc + Kt, Dp = cfg_.pred_dim, M = B * S;
    // Embed the context features.
    if constexpr (Levels > 1) {
      embed0_.forward(P, z, B * Kc, s.h0_);
      Backend::template gelu_forward<T>(s.h0_, s.g0_, B * Kc * cfg_.encoder_dim);
      embed2_.forward(P, s.g0_, B * Kc, s.xc_);
    } else {
      embed0_.forward(P, z, B * Kc, s.xc_);
    }
    // Assemble the sorted sequence: context rows from xc, target rows = the mask token (copied after
    // xc's B·Kc rows, so one gather places every row: x0[r] = [xc ; mtok][assemble[r]]).
    T* x0 = s.x_[0];
    const T* mtok = P + mask_tokens_[static_cast<std::size_t>(mask_index)];
    Backend::template copy<T>(mtok, s.xc_ + B * Kc * Dp, Dp);
    Backend::template gather_rows<T>(s.xc_, s.assemble(), x0, 1, B * Kc + 1, M, Dp);
    nn::RopeTables<T> rope;
    if constexpr (uses_rope) {
      const index_t rot = 3 * nn::rope_axis_channels(Dp / cfg_.num_heads);
      if constexpr (Backend::space == MemorySpace::host) {
        nn::rope_tables<T>(s.sorted(), M, s.grid_, Dp / cfg_.num_heads, Pos::pairing, cfg_.rope_interp_grid,
                           s.rope_cos_, s.rope_sin_);
      } else {  // the sorted tokens' rows of the grid tables
        Backend::template gather_rows<T>(s.rope_full_cos_, s.sorted(), s.rope_cos_, 1, s.grid_.size(), M, rot);
        Backend::template gather_rows<T>(s.rope_full_sin_, s.sorted(), s.rope_sin_, 1, s.grid_.size(), M, rot);
      }
      rope = {s.rope_cos_, s.rope_sin_, rot};
    } else {
      // x0[r] += pos[sorted[r]]: gather the table rows into x_[1] (free until block 0 writes it, in
      // both modes), then one add — the same sums as a per-row axpy with α = 1.
      Backend::template gather_rows<T>(s.pos_, s.sorted(), s.x_[1], 1, s.grid_.size(), M, Dp);
      Backend::template add<T>(x0, s.x_[1], x0, M * Dp);
    }
    if (cfg_.modality_embedding)
      Backend::template add_row_vector<T>(x0, P + (modality == Modality::image ? img_mod_ : video_mod_), M, Dp);
    const bool train = s.mode_ == Mode::training;
    for (int l = 0; l < Depth; ++l)
      blocks_[static_cast<std::size_t>(l)].forward(P, train ? s.x_[l] : s.x_[l % 2], B, S, rope,
                                                   s.caches_[train ? l : 0], train ? s.x_[l + 1] : s.x_[(l + 1) % 2]);
    norm_.forward(P, train ? s.x_[Depth] : s.x_[Depth % 2], M, s.y_, s.y_mean_, s.y_rstd_);
    // Unsort: the target rows in It order (and context rows in Ic order), then project.
    Backend::template gather_rows<T>(s.y_, s.slot_t(), s.sel_t_, B, S, Kt, Dp);
    if (cfg_.predict_context) Backend::template gather_rows<T>(s.y_, s.slot_c(), s.sel_c_, B, S, Kc, Dp);
    proj_.forward(P, s.sel_t_, B * Kt, s.out_t_);
    if (cfg_.predict_context) proj_ctx_.forward(P, s.sel_c_, B * Kc, s.out_c_);
  }

 public:

  /// Predictions for the targets (B,Kt,L·Dout), in the order of the target indices.
  TensorView<const T, 3> target_output(const State& s) const { return {s.out_t_, {s.B_, s.Kt_, output_width()}}; }
  /// Predictions for the context tokens (B,Kc,L·Dout) — 2.1's dense prediction (predict_context).
  TensorView<const T, 3> context_output(const State& s) const {
    if (!cfg_.predict_context)
      throw ConfigError("jepa: this predictor has no context output (PredictorConfig.predict_context = false)");
    return {s.out_c_, {s.B_, s.Kc_, output_width()}};
  }

  /// The parameter ranges the backward walk finishes, in walk order (jepa/nn/grad_ready.hpp): the head
  /// (norm and output projections), the blocks from the last, then the embeddings and tokens.
  std::vector<nn::ParamRange> grad_walk() const {
    auto at = [&](std::size_t i) { return nn::param_boundary(layout_, i); };
    std::vector<nn::ParamRange> w{{at(block_first_[Depth]), layout_.numel()}};
    for (int l = Depth - 1; l >= 0; --l) w.push_back({at(block_first_[l]), at(block_first_[l + 1])});
    w.push_back({0, at(block_first_[0])});
    return w;
  }

  /// d_target (B,Kt,L·Dout); d_context (B,Kc,L·Dout) or null; writes d_z (B,Kc,L·D) when not null.
  /// `ready` hears each range of grad_walk() as soon as the walk is done with it.
  void backward(const T* P, T* G, State& s, const T* d_target, const T* d_context, T* d_z,
                const nn::GradReady& ready = {}) const {
    auto at = [&](std::size_t i) { return nn::param_boundary(layout_, i); };
    if (s.mode_ != Mode::training)
      throw ConfigError("jepa: Predictor::backward needs a State made with Mode::training");
    if (d_context && !cfg_.predict_context)
      throw ConfigError("jepa: d_context given, but this predictor has no context output");
    const index_t B = s.B_, Kc = s.Kc_, Kt = s.Kt_, S = Kc + Kt, Dp = cfg_.pred_dim, M = B * S;
    // d_y (sorted order) = d_sel_t at the target positions, d_sel_c (or 0) at the context positions.
    T* d_sel_t = s.d_sel_;
    T* d_sel_c = s.d_sel_ + B * Kt * Dp;
    proj_.backward(P, G, s.sel_t_, d_target, B * Kt, d_sel_t);
    if (d_context) proj_ctx_.backward(P, G, s.sel_c_, d_context, B * Kc, d_sel_c);
    else Backend::template zero<T>(d_sel_c, B * Kc * Dp);
    Backend::template gather_rows<T>(s.d_sel_, s.dy_src(), s.d_y_, 1, B * (Kt + Kc), M, Dp);
    Backend::template zero<T>(s.dres_, M * Dp);
    norm_.backward(P, G, s.x_[Depth], s.y_mean_, s.y_rstd_, s.d_y_, M, s.dres_, true);
    if (ready) ready({at(block_first_[Depth]), layout_.numel()});
    nn::RopeTables<T> rope;
    if constexpr (uses_rope) rope = {s.rope_cos_, s.rope_sin_, 3 * nn::rope_axis_channels(Dp / cfg_.num_heads)};
    for (int l = Depth - 1; l >= 0; --l) {
      blocks_[static_cast<std::size_t>(l)].backward(P, G, s.x_[l], s.caches_[l], rope, s.dres_, B, S, s.ws_);
      if (ready) ready({at(block_first_[l]), at(block_first_[l + 1])});
    }
    // dres = ∂L/∂seq (sorted). Modality embedding: Σ over all rows; mask token: Σ over target rows.
    if (G && cfg_.modality_embedding)
      Backend::template sum_rows_accumulate<T>(s.dres_, G + (s.modality_ == Modality::image ? img_mod_ : video_mod_), M, Dp);
    Backend::template gather_rows<T>(s.dres_, s.slot_c(), s.d_xc_, B, S, Kc, Dp);
    if (G) {  // d_sel_t is free again: gather the target rows there, then sum them in (b, k) order
      Backend::template gather_rows<T>(s.dres_, s.slot_t(), d_sel_t, B, S, Kt, Dp);
      Backend::template sum_rows_accumulate<T>(d_sel_t, G + mask_tokens_[static_cast<std::size_t>(s.mask_index_)],
                                               B * Kt, Dp);
    }
    if constexpr (Levels > 1) {
      embed2_.backward(P, G, s.g0_, s.d_xc_, B * Kc, s.d_g0_);
      Backend::template gelu_backward<T>(s.h0_, s.d_g0_, s.d_g0_, B * Kc * cfg_.encoder_dim);
      embed0_.backward(P, G, s.z_, s.d_g0_, B * Kc, d_z);
    } else {
      embed0_.backward(P, G, s.z_, s.d_xc_, B * Kc, d_z);
    }
    if (ready) ready({0, at(block_first_[0])});
  }

 private:
  /// Sorts [Ic ; It] per row and builds the index tables of State (see there): the ascending grid
  /// indices, where each source item lands, and the gather sources of the sorted sequence and of its
  /// gradient. Validates range and disjointness. One upload on a device backend.
  void sort_indices(const std::int64_t* ctx, const std::int64_t* tgt, State& s) const {
    const index_t B = s.B_, Kc = s.Kc_, Kt = s.Kt_, S = Kc + Kt, N = s.grid_.size();
    std::int64_t* tab = backend::host_side<Backend>(s.idx_, s.idx_host_, 4 * B * S);
    std::int64_t* sorted = tab;
    std::int64_t* assemble = tab + B * S;
    std::int64_t* slot_t = tab + 2 * B * S;
    std::int64_t* slot_c = slot_t + B * Kt;
    std::int64_t* dy_src = tab + 3 * B * S;
    std::vector<std::int64_t> all(static_cast<std::size_t>(S));
    std::vector<index_t> order(static_cast<std::size_t>(S));
    for (index_t b = 0; b < B; ++b) {
      for (index_t k = 0; k < Kc; ++k) all[k] = ctx[b * Kc + k];
      for (index_t k = 0; k < Kt; ++k) all[Kc + k] = tgt[b * Kt + k];
      for (index_t k = 0; k < S; ++k)
        if (all[k] < 0 || all[k] >= N)
          throw IndexError(jepa::detail::cat("jepa: predictor ", k < Kc ? "context" : "target", " index ", all[k], " of row ", b,
                                       " is outside the token grid [0, ", N, ")"));
      std::iota(order.begin(), order.end(), index_t{0});
      std::stable_sort(order.begin(), order.end(), [&](index_t a, index_t c) { return all[a] < all[c]; });
      for (index_t j = 0; j < S; ++j) {
        if (j && all[order[j]] == all[order[j - 1]])
          throw IndexError(jepa::detail::cat("jepa: token ", all[order[j]], " appears twice in row ", b,
                                       " of the predictor's context and target indices (they must be disjoint)"));
        const index_t k = order[j];  // source item: context k (k < Kc) or target k − Kc
        sorted[b * S + j] = all[k];
        if (k < Kc) {
          slot_c[b * Kc + k] = j;
          assemble[b * S + j] = b * Kc + k;
          dy_src[b * S + j] = B * Kt + b * Kc + k;
        } else {
          slot_t[b * Kt + k - Kc] = j;
          assemble[b * S + j] = B * Kc;  // the mask-token row
          dy_src[b * S + j] = b * Kt + k - Kc;
        }
      }
    }
    backend::to_backend<Backend>(tab, s.idx_, 4 * B * S);
  }

  PredictorConfig cfg_;
  nn::ParamLayout layout_;
  nn::Linear<T, Backend> embed0_, embed2_;
  std::vector<std::size_t> mask_tokens_;
  std::size_t video_mod_ = 0, img_mod_ = 0;
  std::vector<nn::Block<T, Backend>> blocks_;
  nn::LayerNorm<T, Backend> norm_;
  nn::Linear<T, Backend> proj_, proj_ctx_;
  std::vector<std::size_t> block_first_;  // layout index of each block's first tensor (+ the norm's)
};

}  // namespace jepa::models
