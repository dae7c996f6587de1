// jepa/models/vit_encoder.hpp — the ViT encoder of I-JEPA, V-JEPA, V-JEPA 2 and V-JEPA 2.1.
//
//   tokens = PatchEmbed(clip)[kept]            (B,K,D)   K = N, or the context subset
//   tokens += sincos[kept]                     only with an absolute (SinCos3d) position policy
//   x_{l+1} = Block_l(x_l; RoPE(kept))         l = 0 … Depth−1 (RoPE from each token's grid index)
//   output  = norm(x_Depth)                    FinalNorm          (V-JEPA, V-JEPA 2, I-JEPA)
//   tap_j   = norms_block[j](x_{I_j + 1})      HierarchicalTaps<I…> (V-JEPA 2.1: no final norm;
//                                              the inference output is the last tap)
//   layer_j = norm(x_{l_j + 1})                optional per-block outputs planned with make_state(…,
//                                              layers): the official `out_layers` (the same final
//                                              norm on each chosen block); the raw x_{l_j + 1} when
//                                              the encoder has no final norm
//
// Composition (DESIGN.md decision 1): depth, tokenizer, position policy, outputs, scalar type and
// backend are template parameters; widths, heads, eps, the RoPE interpolation grid are runtime
// values (VitConfig), validated once at construction. Parameter names are the official state-dict
// keys, so released checkpoints load by name.
//
// Memory (decision 5): construction only builds the parameter layout — nothing is allocated. A
// State holds every activation of one input geometry in one arena: `Mode::training` keeps each
// block's cache for backward; `Mode::inference` shares one block cache and two residual buffers,
// and allocates no gradient buffers.
//
// Memory spaces: P, G, the clip, d_outputs, d_clip and every State buffer live in Backend::space (device
// memory for backend::Cuda). keep_idx is a host array (validated on the host, then uploaded on a
// device backend), or BackendIndices already in Backend::space (used as they are: the forward is then
// a pure sequence of stream operations, capturable in a CUDA graph). The sin-cos table and, on a
// device backend, the RoPE rows of every grid token are uploaded once when the State is planned; a
// forward gathers its tokens' rows from them on the device (the host backend computes them per token:
// the same values). Uploads are enqueued like every primitive on the backend's current stream: plan a
// State on the stream that will run it.
//
// Accumulation contract: backward ACCUMULATES into the parameter gradients G (G += ∂L/∂θ) and
// OVERWRITES the clip gradient. Gradients of the outputs enter through `d_outputs`: one (B,K,D)
// tensor for FinalNorm, or one per tap (null = no loss on that tap) for HierarchicalTaps — this is
// where deep self-supervision injects gradient during the backward walk.
#pragma once

#include <array>
#include <cmath>
#include <cstring>
#include <memory>
#include <numeric>
#include <span>
#include <string>
#include <vector>

// The default backend. nvcc translation units (which instantiate the encoder on backend::Cuda) get
// only its declaration, so that they do not parse Eigen (DESIGN.md practical notes); a .cu file that
// wants the CPU backend includes jepa/backend/cpu/backend.hpp itself.
#if defined(__CUDACC__)
namespace jepa::backend {
struct Cpu;
}
#else
#include "jepa/backend/cpu/backend.hpp"
#endif
#include "jepa/backend/host_staging.hpp"
#include "jepa/concepts/backend.hpp"
#include "jepa/concepts/tokenizer.hpp"
#include "jepa/core/binder.hpp"
#include "jepa/core/error.hpp"
#include "jepa/core/tensor.hpp"
#include "jepa/nn/block.hpp"
#include "jepa/nn/grad_ready.hpp"
#include "jepa/nn/layer_norm.hpp"
#include "jepa/nn/param.hpp"
#include "jepa/nn/patch_embed.hpp"
#include "jepa/nn/pos_embed.hpp"
#include "jepa/nn/rope.hpp"
#include "jepa/tokenizers/multimodal.hpp"

namespace jepa::models {

// ---------------------------------------------------------------------------------------------------
// Position policies
// ---------------------------------------------------------------------------------------------------
/// 3-D RoPE with the V-JEPA 2 / 2-AC "tiled" pairing (required to load those weights).
struct RopeTiled {
  static constexpr bool rope = true;
  static constexpr nn::RopePairing pairing = nn::RopePairing::tiled;
};
/// 3-D RoPE with the V-JEPA 2.1 interleaved pairing (a true rotation).
struct RopeInterleaved {
  static constexpr bool rope = true;
  static constexpr nn::RopePairing pairing = nn::RopePairing::interleaved;
};
/// Frozen 3-D sin-cos table added after patch embedding (V-JEPA 1; uniform_power as its configs).
template <bool UniformPower = true>
struct SinCos3d {
  static constexpr bool rope = false;
  template <class T>
  static std::vector<T> table(index_t dim, const nn::TokenGrid& g) {
    return nn::sincos_3d_table<T>(dim, g.t, g.h, g.w, UniformPower);
  }
};
/// Frozen 2-D sin-cos table, I-JEPA channel order [column | row] (images: one frame).
struct SinCos2d {
  static constexpr bool rope = false;
  template <class T>
  static std::vector<T> table(index_t dim, const nn::TokenGrid& g) {
    if (g.t != 1) fail_field<ShapeError>("token grid frames", g.t, "2-D sin-cos positions need single-frame input");
    return nn::sincos_2d_table<T>(dim, g.h, g.w, nn::SinCos2dOrder::col_row);
  }
};

// ---------------------------------------------------------------------------------------------------
// Output policies
// ---------------------------------------------------------------------------------------------------
/// One final LayerNorm `norm` after the last block.
struct FinalNorm {
  static constexpr int num_taps = 0;
};
/// V-JEPA 2.1 hierarchical taps: the output of block I_j passes through its own `norms_block.j`.
template <int... I>
struct HierarchicalTaps {
  static constexpr int num_taps = sizeof...(I);
  static constexpr std::array<int, sizeof...(I)> indices{I...};
};

/// The 2.1 tap sets (recipe_facts §1.7): depth 12 → {2,5,8,11}, 24 → {5,11,17,23},
/// 40 → {9,19,29,39}, 48 → {11,23,37,47} (37, not 35).
template <int Depth> struct DefaultTaps { using type = HierarchicalTaps<Depth / 4 - 1, Depth / 2 - 1, 3 * Depth / 4 - 1, Depth - 1>; };
template <> struct DefaultTaps<48> { using type = HierarchicalTaps<11, 23, 37, 47>; };
template <int Depth> using default_taps_t = typename DefaultTaps<Depth>::type;

namespace detail {
/// The video and image tokenizers of Tok (both Tok itself unless Tok is MultiModal).
template <class Tok, bool = tokenizers::is_multimodal_v<Tok>>
struct tok_parts {
  static_assert(jepa::detail::check_tokenizer<Tok>());
  using video = Tok;
  using image = Tok;
};
template <class Tok>
struct tok_parts<Tok, true> {
  using video = typename Tok::video;
  using image = typename Tok::image;
};
template <class Tok>
constexpr bool has_modality_embedding() {
  if constexpr (tokenizers::is_multimodal_v<Tok>) return Tok::modality_embedding; else return false;
}
template <class Out, int Depth>
struct check_outputs {
  static constexpr bool value = true;
};
template <int Depth, int... I>
struct check_outputs<HierarchicalTaps<I...>, Depth> {
  static_assert(sizeof...(I) >= 1, "jepa: HierarchicalTaps needs at least one tap index");
  static_assert(((I >= 0) && ...), "jepa: tap index out of range: every HierarchicalTaps index must be >= 0");
  static_assert(((I < Depth) && ...), "jepa: tap index out of range: every HierarchicalTaps index must be < Depth");
  static constexpr bool ascending() {
    constexpr std::array<int, sizeof...(I)> a{I...};
    for (std::size_t i = 1; i < a.size(); ++i)
      if (a[i] <= a[i - 1]) return false;
    return true;
  }
  static_assert(ascending(), "jepa: HierarchicalTaps indices must be strictly increasing (shallow to deep)");
  static constexpr bool value = true;
};
}  // namespace detail

// ---------------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------------
struct VitConfig {
  index_t embed_dim = 768;
  index_t num_heads = 12;
  index_t mlp_hidden = 3072;
  index_t in_chans = 3;
  double eps = 1e-6;
  nn::MlpKind mlp = nn::MlpKind::gelu;
  /// 2.1 `interpolate_rope`: spatial RoPE positions rescaled onto a G0 × G0 grid (16 for p = 16).
  /// 0 disables it (V-JEPA 2).
  index_t rope_interp_grid = 0;
  /// Apply the 1/√(2l) residual rescale at init (V-JEPA 2 / 2.1 keep it; V-JEPA 1 / I-JEPA undo it).
  bool residual_rescale = true;

  index_t head_dim() const { return num_heads > 0 ? embed_dim / num_heads : 0; }

  void validate(bool rope) const {
    check_field(embed_dim > 0, "VitConfig.embed_dim", embed_dim, "must be > 0");
    check_field(num_heads > 0, "VitConfig.num_heads", num_heads, "must be > 0");
    check_field(embed_dim % num_heads == 0, "VitConfig.num_heads", num_heads,
                jepa::detail::cat("embed_dim (", embed_dim, ") must be divisible by num_heads"));
    check_field(mlp_hidden > 0, "VitConfig.mlp_hidden", mlp_hidden, "must be > 0");
    check_field(in_chans > 0, "VitConfig.in_chans", in_chans, "must be > 0");
    check_field(eps > 0 && std::isfinite(eps), "VitConfig.eps", eps, "must be a finite value > 0");
    check_field(rope_interp_grid >= 0, "VitConfig.rope_interp_grid", rope_interp_grid, "must be >= 0 (0 = off)");
    if (rope)
      check_field(nn::rope_axis_channels(head_dim()) > 0, "VitConfig head_dim", head_dim(),
                  "3-D RoPE needs head_dim >= 6 (embed_dim / num_heads)");
  }
};

enum class Mode : std::uint8_t { inference, training };

/// Input geometry of one call: frames, height, width of the clip (an image is frames = 1 with
/// Patch2d or a Tubelet<1, p> tokenizer).
struct InputGeometry {
  index_t frames = 1, height = 0, width = 0;
  friend bool operator==(const InputGeometry&, const InputGeometry&) = default;
};

/// Token indices that already live in the backend's memory space (device memory on backend::Cuda),
/// e.g. masks drawn or uploaded ahead of a training step. The modules use them as they are: nothing
/// is read back or validated on the host (that would need a synchronisation); device kernels guard
/// every access against out-of-range values instead (backend/cuda/tokens.cuh, index_tables.cuh).
struct BackendIndices {
  const std::int64_t* data = nullptr;
};

// ---------------------------------------------------------------------------------------------------
// The encoder
// ---------------------------------------------------------------------------------------------------
template <int Depth, class Tok, class Pos = RopeTiled, class Out = FinalNorm, Real T = float,
          class Backend = backend::Cpu>
class VitEncoder {
  static_assert(Depth >= 1, "jepa: VitEncoder depth must be >= 1");
  static_assert(jepa::detail::check_backend<Backend, T>());
  static_assert(detail::check_outputs<Out, Depth>::value);
  using VideoTok = typename detail::tok_parts<Tok>::video;
  using ImageTok = typename detail::tok_parts<Tok>::image;
  static constexpr bool multimodal = tokenizers::is_multimodal_v<Tok>;
  static constexpr bool modality_embedding = detail::has_modality_embedding<Tok>();

 public:
  static constexpr int depth = Depth;
  static constexpr int num_taps = Out::num_taps;
  static constexpr bool has_final_norm = num_taps == 0;
  static constexpr bool uses_rope = Pos::rope;
  using tokenizer_type = Tok;
  using video_tokenizer_type = VideoTok;
  using image_tokenizer_type = ImageTok;
  using value_type = T;
  using backend_type = Backend;

  explicit VitEncoder(const VitConfig& cfg) : cfg_(cfg) {
    cfg_.validate(uses_rope);
    const nn::BlockConfig bc{cfg.embed_dim, cfg.num_heads, cfg.mlp_hidden, cfg.mlp, cfg.eps};
    patch_embed_ = nn::PatchEmbed<VideoTok, T, Backend>(layout_, "patch_embed", cfg.in_chans, cfg.embed_dim);
    if constexpr (multimodal) {
      patch_embed_img_ = nn::PatchEmbed<ImageTok, T, Backend>(layout_, "patch_embed_img", cfg.in_chans, cfg.embed_dim);
      if constexpr (modality_embedding) {
        img_mod_embed_ = layout_.add("img_mod_embed", {1, 1, cfg.embed_dim}, nn::Init::normal, 1e-6);
        video_mod_embed_ = layout_.add("video_mod_embed", {1, 1, cfg.embed_dim}, nn::Init::normal, 1e-6);
      }
    }
    for (int l = 0; l < Depth; ++l) {
      block_first_.push_back(layout_.params().size());
      blocks_.emplace_back(layout_, "blocks." + std::to_string(l), bc, cfg.residual_rescale ? l + 1 : 0);
    }
    block_first_.push_back(layout_.params().size());
    if constexpr (has_final_norm) {
      norm_ = nn::LayerNorm<T, Backend>(layout_, "norm", cfg.embed_dim, cfg.eps);
    } else {
      for (int j = 0; j < num_taps; ++j) {
        tap_first_.push_back(layout_.params().size());
        tap_norms_.emplace_back(layout_, "norms_block." + std::to_string(j), cfg.embed_dim, cfg.eps);
      }
    }
    tap_first_.push_back(layout_.params().size());
  }

  const VitConfig& config() const { return cfg_; }
  const nn::ParamLayout& layout() const { return layout_; }
  /// Trainable parameters (the published parameter count).
  std::size_t param_count() const { return layout_.count(); }
  static constexpr std::array<int, (num_taps > 0 ? num_taps : 1)> tap_indices() {
    if constexpr (num_taps > 0) return Out::indices; else return {Depth - 1};
  }

  /// True when an input of this geometry goes through the image tokenizer (MultiModal only).
  static constexpr bool is_image(const InputGeometry& g) {
    if constexpr (multimodal) return g.frames == Tok::image_frames; else return false;
  }

  /// The token grid for an input geometry; throws ShapeError when the geometry does not tile.
  nn::TokenGrid grid(const InputGeometry& g) const {
    if (g.frames <= 0 || g.height <= 0 || g.width <= 0)
      throw ShapeError(jepa::detail::cat("jepa: input geometry (frames=", g.frames, ", height=", g.height, ", width=",
                                         g.width, ") must be positive"));
    const int t = is_image(g) ? ImageTok::tubelet : VideoTok::tubelet;
    const int p = VideoTok::patch;
    if (g.frames % t) {
      std::string hint;
      if constexpr (multimodal) hint = jepa::detail::cat(" (or ", Tok::image_frames, " for an image)");
      throw ShapeError(jepa::detail::cat("jepa: frames = ", g.frames, " is not divisible by the tubelet size ", t,
                                         " of ", VideoTok::name, "<", t, ", ", p, ">; use a multiple of ", t, hint));
    }
    if (g.height % p || g.width % p)
      throw ShapeError(jepa::detail::cat("jepa: resolution ", g.height, "x", g.width,
                                         " is not divisible by the patch size ", p,
                                         "; height and width must be multiples of ", p));
    return {g.frames / t, g.height / p, g.width / p};
  }

  // -----------------------------------------------------------------------------------------------
  // State: every activation of one (batch, geometry, kept-token count, mode), in one arena.
  // -----------------------------------------------------------------------------------------------
  class State {
   public:
    Mode mode() const { return mode_; }
    index_t batch() const { return B_; }
    /// Tokens encoded per sample (N for a full clip, K for a context subset).
    index_t tokens() const { return K_; }
    /// The most tokens per sample this State's buffers hold.
    index_t capacity() const { return cap_; }
    /// Encode K tokens per sample from the next forward on (1 <= K <= capacity()); the buffers are
    /// reused, so a training loop whose mask lengths vary step to step does not allocate.
    void set_tokens(index_t K) {
      if (K < 1 || K > cap_)
        fail_field<ShapeError>("State tokens", K, jepa::detail::cat("must be in [1, ", cap_, "] (the capacity it was planned for)"));
      K_ = K;
    }
    const nn::TokenGrid& grid() const { return grid_; }
    const InputGeometry& geometry() const { return geom_; }
    const MemoryPlan& plan() const { return plan_; }
    std::size_t bytes() const { return arena_.bytes(); }
    /// The flat grid indices (B,K) of the encoded tokens from the last forward (host memory). After a
    /// forward with BackendIndices on a device backend they exist on the device only: use
    /// token_indices_backend().
    const std::int64_t* token_indices() const {
      if constexpr (Backend::space == MemorySpace::host) {
        return idx_;
      } else {
        if (!idx_host_valid_)
          throw ConfigError("jepa: the last forward took its token indices from device memory (BackendIndices); "
                            "read them with token_indices_backend()");
        return idx_host_.data();
      }
    }
    /// The same indices in the backend's memory space (what the backend's primitives read).
    const std::int64_t* token_indices_backend() const { return idx_; }
    /// The block indices whose outputs this State keeps (make_state(…, layers)), in the order given.
    const std::vector<int>& layers() const { return layers_; }

   private:
    friend class VitEncoder;
    Mode mode_ = Mode::inference;
    index_t B_ = 0, K_ = 0, cap_ = 0;
    nn::TokenGrid grid_;
    InputGeometry geom_;
    MemoryPlan plan_{MemoryCategory::activations};
    typename Backend::Arena arena_;
    std::int64_t* idx_ = nullptr;  // (B,K)
    T* cols_ = nullptr;            // (B·K, C·t·p·p)
    T* rope_cos_ = nullptr;        // (B·K, 3s)
    T* rope_sin_ = nullptr;
    T* rope_full_cos_ = nullptr;   // (N, 3s) the tables of every grid token (device backends: rows are
    T* rope_full_sin_ = nullptr;   //  gathered by index on the device instead of uploaded each step)
    T* pos_ = nullptr;             // (N, D) sin-cos table of this grid (SinCos3d only)
    std::vector<T*> x_;            // residual streams: Depth+1 (training) or 2 (inference)
    std::vector<nn::BlockCache<T>> caches_;  // Depth (training) or 1 (inference)
    std::vector<T*> out_, out_mean_, out_rstd_;  // per output (final norm, or per tap), (B,K,D), (B·K)
    std::vector<int> layers_;                        // requested per-block outputs
    std::vector<T*> layer_out_, layer_mean_, layer_rstd_;  // (B,K,D), (B·K) each
    nn::BlockWorkspace<T> ws_{};
    T* dres_ = nullptr;   // (B·K, D)
    T* dcols_ = nullptr;  // (B·K, C·t·p·p)
    // Host mirrors of host-made data on a device backend (unused on a host backend).
    std::vector<std::int64_t> idx_host_;  // (B,K)
    bool idx_host_valid_ = true;          // idx_host_ mirrors idx_ (false after a BackendIndices forward)
    bool idx_iota_ = false;               // idx_ holds 0 … N−1 in every row (device backends: no re-upload)
  };

  /// Plans and allocates the activations for `batch` clips of geometry `g`, encoding all N tokens.
  State make_state(Mode mode, index_t batch, const InputGeometry& g) const {
    return plan_state(mode, batch, g, grid(g).size());
  }
  /// Same, encoding a subset of `keep` tokens per clip (the masked context), 1 <= keep <= N.
  State make_state(Mode mode, index_t batch, const InputGeometry& g, index_t keep) const {
    return make_state(mode, batch, g, keep, {});
  }
  /// Same, also keeping the output of every block in `layers` (0-based block indices, distinct, any
  /// order): layer_output(s, j) is norm(x_{layers[j] + 1}) for an encoder with a final norm (the
  /// official `out_layers`) and the raw block output x_{layers[j] + 1} otherwise. In Mode::inference
  /// this costs one (B,K,D) buffer per layer and keeps the shared block cache.
  State make_state(Mode mode, index_t batch, const InputGeometry& g, index_t keep, std::vector<int> layers) const {
    const nn::TokenGrid gr = grid(g);
    if (keep < 1 || keep > gr.size())
      fail_field<ShapeError>("keep (tokens per clip)", keep,
                             jepa::detail::cat(keep == 0 ? "the token subset is empty; " : "", "must be in [1, ",
                                               gr.size(), "] for a ", gr.t, "x", gr.h, "x", gr.w, " token grid"));
    for (std::size_t j = 0; j < layers.size(); ++j) {
      if (layers[j] < 0 || layers[j] >= Depth)
        fail_field<IndexError>("layers", layers[j], jepa::detail::cat("block indices must be in [0, ", Depth, ")"));
      for (std::size_t i = 0; i < j; ++i)
        if (layers[i] == layers[j]) fail_field<IndexError>("layers", layers[j], "each block may be requested once");
    }
    return plan_state(mode, batch, g, keep, std::move(layers));
  }

 private:
  State plan_state(Mode mode, index_t batch, const InputGeometry& g, index_t keep, std::vector<int> layers = {}) const {
    const nn::TokenGrid gr = grid(g);
    const index_t N = gr.size();
    if (batch <= 0) fail_field<ShapeError>("batch", batch, "must be >= 1");
    State s;
    s.mode_ = mode;
    s.B_ = batch;
    s.K_ = s.cap_ = keep;
    s.grid_ = gr;
    s.geom_ = g;
    const index_t B = batch, K = s.K_, D = cfg_.embed_dim, M = B * K;
    const index_t kvol = is_image(g) ? patch_embed_img_.kernel_volume() : patch_embed_.kernel_volume();
    const bool train = mode == Mode::training;
    const int n_x = train ? Depth + 1 : 2;
    const int n_cache = train ? Depth : 1;
    const int n_out = has_final_norm ? 1 : num_taps;
    s.x_.assign(static_cast<std::size_t>(n_x), nullptr);
    s.caches_.assign(static_cast<std::size_t>(n_cache), {});
    s.out_.assign(static_cast<std::size_t>(n_out), nullptr);
    s.out_mean_.assign(static_cast<std::size_t>(n_out), nullptr);
    s.out_rstd_.assign(static_cast<std::size_t>(n_out), nullptr);
    s.layers_ = std::move(layers);
    s.layer_out_.assign(s.layers_.size(), nullptr);
    s.layer_mean_.assign(s.layers_.size(), nullptr);
    s.layer_rstd_.assign(s.layers_.size(), nullptr);

    Binder<T> b(MemoryCategory::activations);
    b.request_as(s.idx_, "token_indices", {B, K});
    b.request(s.cols_, "patch_embed.cols", {M, kvol});
    if constexpr (uses_rope) {
      const index_t rot = 3 * nn::rope_axis_channels(cfg_.head_dim());
      b.request(s.rope_cos_, "rope.cos", {M, rot});
      b.request(s.rope_sin_, "rope.sin", {M, rot});
      if constexpr (Backend::space != MemorySpace::host) {
        b.request(s.rope_full_cos_, "rope.grid_cos", {N, rot});
        b.request(s.rope_full_sin_, "rope.grid_sin", {N, rot});
      }
    } else {
      b.request(s.pos_, "pos_embed", {N, D});
    }
    for (int i = 0; i < n_x; ++i) b.request(s.x_[i], "x." + std::to_string(i), {M, D});
    for (int i = 0; i < n_cache; ++i)
      blocks_[static_cast<std::size_t>(i)].plan_cache(b, train ? "blocks." + std::to_string(i) : "block", B, K,
                                                      s.caches_[static_cast<std::size_t>(i)], train);
    for (int j = 0; j < n_out; ++j) {
      const std::string nm = has_final_norm ? std::string("norm") : "norms_block." + std::to_string(j);
      b.request(s.out_[j], nm + ".out", {B, K, D});
      b.request(s.out_mean_[j], nm + ".mean", {M});
      b.request(s.out_rstd_[j], nm + ".rstd", {M});
    }
    for (std::size_t j = 0; j < s.layers_.size(); ++j) {
      const std::string nm = "layers." + std::to_string(s.layers_[j]);
      b.request(s.layer_out_[j], nm + ".out", {B, K, D});
      if constexpr (has_final_norm) {
        b.request(s.layer_mean_[j], nm + ".mean", {M});
        b.request(s.layer_rstd_[j], nm + ".rstd", {M});
      }
    }
    if (train) {
      blocks_[0].plan_workspace(b, "workspace", B, K, s.ws_);
      b.request(s.dres_, "workspace.d_residual", {M, D});
      b.request(s.dcols_, "workspace.d_cols", {M, kvol});
    }
    s.plan_ = b.plan();
    b.bind(s.arena_);
    if constexpr (!uses_rope) {
      const auto table = Pos::template table<T>(D, gr);
      if constexpr (Backend::space == MemorySpace::host)
        std::memcpy(s.pos_, table.data(), table.size() * sizeof(T));
      else
        Backend::template copy<T>(table.data(), s.pos_, static_cast<index_t>(table.size()));  // host → device
    } else if constexpr (Backend::space != MemorySpace::host) {
      // The RoPE rows of every grid token, once per State: a forward gathers its tokens' rows from
      // them on the device (bitwise the rows the host path computes: nn::rope_grid_tables).
      const index_t rot = 3 * nn::rope_axis_channels(cfg_.head_dim());
      const auto cs = nn::rope_grid_tables<T>(gr, cfg_.head_dim(), Pos::pairing, cfg_.rope_interp_grid);
      Backend::template copy<T>(cs.data(), s.rope_full_cos_, N * rot);  // host → device (plan time)
      Backend::template copy<T>(cs.data() + N * rot, s.rope_full_sin_, N * rot);
    }
    (void)N;
    return s;
  }

 public:
  /// Encodes clip (B,C,F,H,W). keep_idx (B,K) lists the grid indices of the tokens to encode (the
  /// context subset; distinct within a row, any order); null encodes all N tokens in grid order.
  void forward(const T* P, TensorView<const T, 5> clip, const std::int64_t* keep_idx, State& s) const {
    check_input(clip, s);
    set_indices(keep_idx, s);
    forward_body(P, clip, s);
  }
  /// Same, with the (B,K) kept-token indices already in the backend's memory space (device memory on
  /// backend::Cuda): one device-to-device copy, no host work that depends on them, so the call is a
  /// pure sequence of stream operations (capturable in a CUDA graph). The indices are not validated
  /// on the host; an out-of-range one makes that token's features NaN (never an out-of-bounds read).
  void forward(const T* P, TensorView<const T, 5> clip, BackendIndices keep, State& s) const {
    check_input(clip, s);
    if (!keep.data) throw ShapeError("jepa: VitEncoder::forward: BackendIndices.data is a null pointer");
    Backend::template copy<std::int64_t>(keep.data, s.idx_, s.B_ * s.K_);
    s.idx_iota_ = false;
    s.idx_host_valid_ = Backend::space == MemorySpace::host;
    forward_body(P, clip, s);
  }

 private:
  void forward_body(const T* P, TensorView<const T, 5> clip, State& s) const {
    const index_t B = s.B_, K = s.K_, D = cfg_.embed_dim, M = B * K, N = s.grid_.size();
    if (is_image(s.geom_))
      patch_embed_img_.forward(P, clip.data(), B, s.geom_.frames, s.geom_.height, s.geom_.width, s.idx_, K, s.cols_,
                               s.x_[0]);
    else
      patch_embed_.forward(P, clip.data(), B, s.geom_.frames, s.geom_.height, s.geom_.width, s.idx_, K, s.cols_,
                           s.x_[0]);
    if constexpr (modality_embedding)  // 2.1: + img_mod_embed / video_mod_embed
      Backend::template add_row_vector<T>(s.x_[0], P + (is_image(s.geom_) ? img_mod_embed_ : video_mod_embed_), M, D);
    nn::RopeTables<T> rope;
    if constexpr (uses_rope) {
      const index_t rot = 3 * nn::rope_axis_channels(cfg_.head_dim());
      if constexpr (Backend::space == MemorySpace::host) {
        nn::rope_tables<T>(s.token_indices(), M, s.grid_, cfg_.head_dim(), Pos::pairing, cfg_.rope_interp_grid,
                           s.rope_cos_, s.rope_sin_);
      } else {  // rows of the grid tables, gathered by the device indices
        Backend::template gather_rows<T>(s.rope_full_cos_, s.idx_, s.rope_cos_, 1, N, M, rot);
        Backend::template gather_rows<T>(s.rope_full_sin_, s.idx_, s.rope_sin_, 1, N, M, rot);
      }
      rope = {s.rope_cos_, s.rope_sin_, rot};
    } else {
      // x0[b,k] += pos[idx[b,k]]: gather the rows of the (N, D) table into x_[1] (free until block 0
      // writes it), then one add — the same sums as a per-row axpy with α = 1, in two launches.
      for (index_t b = 0; b < B; ++b)
        Backend::template gather_rows<T>(s.pos_, s.idx_ + b * K, s.x_[1] + b * K * D, 1, N, K, D);
      Backend::template add<T>(s.x_[0], s.x_[1], s.x_[0], M * D);
    }
    (void)N;
    const bool train = s.mode_ == Mode::training;
    for (int l = 0; l < Depth; ++l) {
      const T* xin = train ? s.x_[l] : s.x_[l % 2];
      T* xout = train ? s.x_[l + 1] : s.x_[(l + 1) % 2];
      blocks_[static_cast<std::size_t>(l)].forward(P, xin, B, K, rope, s.caches_[train ? l : 0], xout);
      for (std::size_t j = 0; j < s.layers_.size(); ++j)
        if (s.layers_[j] == l) {
          if constexpr (has_final_norm) norm_.forward(P, xout, M, s.layer_out_[j], s.layer_mean_[j], s.layer_rstd_[j]);
          else Backend::template copy<T>(xout, s.layer_out_[j], M * D);
        }
      if constexpr (!has_final_norm) {
        for (int j = 0; j < num_taps; ++j)
          if (Out::indices[j] == l) tap_norms_[j].forward(P, xout, M, s.out_[j], s.out_mean_[j], s.out_rstd_[j]);
      }
    }
    if constexpr (has_final_norm) {
      const T* xl = train ? s.x_[Depth] : s.x_[Depth % 2];
      norm_.forward(P, xl, M, s.out_[0], s.out_mean_[0], s.out_rstd_[0]);
    }
  }

 public:
  /// The main output (B,K,D): the final norm, or the last tap (what "the 2.1 features" are).
  TensorView<const T, 3> output(const State& s) const { return view(s, static_cast<int>(s.out_.size()) - 1); }
  /// Output j: tap j for HierarchicalTaps (shallow → deep), or 0 for the final norm.
  TensorView<const T, 3> output(const State& s, int j) const {
    if (j < 0 || j >= static_cast<int>(s.out_.size()))
      fail_field<IndexError>("output index", j, jepa::detail::cat("this encoder has ", s.out_.size(), " output(s)"));
    return view(s, j);
  }

  /// Per-block output j (B,K,D) of a State planned with layers (see make_state); j indexes
  /// State::layers().
  TensorView<const T, 3> layer_output(const State& s, int j) const {
    if (j < 0 || j >= static_cast<int>(s.layer_out_.size()))
      fail_field<IndexError>("layer output index", j,
                             jepa::detail::cat("this State keeps ", s.layer_out_.size(),
                                               " per-block output(s); plan them with make_state(mode, batch, geometry, keep, layers)"));
    return {s.layer_out_[static_cast<std::size_t>(j)], {s.B_, s.K_, cfg_.embed_dim}};
  }

  /// The parameter ranges the backward walk finishes, in walk order (jepa/nn/grad_ready.hpp): the
  /// final norm, then per block from the last (its tap norms first), then the embeddings.
  std::vector<nn::ParamRange> grad_walk() const {
    auto at = [&](std::size_t i) { return nn::param_boundary(layout_, i); };
    std::vector<nn::ParamRange> w;
    if constexpr (has_final_norm) w.push_back({at(block_first_[Depth]), layout_.numel()});
    for (int l = Depth - 1; l >= 0; --l) {
      if constexpr (!has_final_norm)
        for (int j = 0; j < num_taps; ++j)
          if (Out::indices[j] == l) w.push_back({at(tap_first_[j]), at(tap_first_[j + 1])});
      w.push_back({at(block_first_[l]), at(block_first_[l + 1])});
    }
    w.push_back({0, at(block_first_[0])});
    return w;
  }

  /// Backward walk. d_outputs: one (B,K,D) gradient per output (null entries contribute nothing).
  /// Accumulates into G; writes d_clip (B,C,F,H,W) when it is not null. `ready` hears each range of
  /// grad_walk() as soon as the walk is done with it.
  void backward(const T* P, T* G, State& s, std::span<const T* const> d_outputs, T* d_clip = nullptr,
                const nn::GradReady& ready = {}) const {
    if (s.mode_ != Mode::training)
      throw ConfigError("jepa: VitEncoder::backward needs a State made with Mode::training (this one is inference)");
    if (d_outputs.size() != s.out_.size())
      fail_field<ShapeError>("d_outputs.size()", d_outputs.size(),
                             jepa::detail::cat("this encoder has ", s.out_.size(), " output(s), one gradient each"));
    const index_t B = s.B_, K = s.K_, D = cfg_.embed_dim, M = B * K;
    Backend::template zero<T>(s.dres_, M * D);
    nn::RopeTables<T> rope;
    if constexpr (uses_rope) rope = {s.rope_cos_, s.rope_sin_, 3 * nn::rope_axis_channels(cfg_.head_dim())};
    auto at = [&](std::size_t i) { return nn::param_boundary(layout_, i); };
    if constexpr (has_final_norm) {
      if (d_outputs[0])
        norm_.backward(P, G, s.x_[Depth], s.out_mean_[0], s.out_rstd_[0], d_outputs[0], M, s.dres_, true);
      if (ready) ready({at(block_first_[Depth]), layout_.numel()});
    }
    for (int l = Depth - 1; l >= 0; --l) {
      if constexpr (!has_final_norm) {
        for (int j = 0; j < num_taps; ++j)
          if (Out::indices[j] == l) {
            if (d_outputs[j])
              tap_norms_[j].backward(P, G, s.x_[l + 1], s.out_mean_[j], s.out_rstd_[j], d_outputs[j], M, s.dres_, true);
            if (ready) ready({at(tap_first_[j]), at(tap_first_[j + 1])});
          }
      }
      blocks_[static_cast<std::size_t>(l)].backward(P, G, s.x_[l], s.caches_[l], rope, s.dres_, B, K, s.ws_);
      if (ready) ready({at(block_first_[l]), at(block_first_[l + 1])});
    }
    if constexpr (modality_embedding)
      Backend::template sum_rows_accumulate<T>(s.dres_, G + (is_image(s.geom_) ? img_mod_embed_ : video_mod_embed_), M, D);
    if (is_image(s.geom_))
      patch_embed_img_.backward(P, G, s.cols_, s.dres_, B, s.geom_.frames, s.geom_.height, s.geom_.width, s.idx_, K,
                                d_clip ? s.dcols_ : nullptr, d_clip);
    else
      patch_embed_.backward(P, G, s.cols_, s.dres_, B, s.geom_.frames, s.geom_.height, s.geom_.width, s.idx_, K,
                            d_clip ? s.dcols_ : nullptr, d_clip);
    if (ready) ready({0, at(block_first_[0])});
  }
  /// Convenience for a single output gradient (FinalNorm, or the last tap only).
  void backward(const T* P, T* G, State& s, const T* d_output, T* d_clip = nullptr) const {
    std::vector<const T*> d(s.out_.size(), nullptr);
    d.back() = d_output;
    backward(P, G, s, std::span<const T* const>(d.data(), d.size()), d_clip);
  }

 private:
  TensorView<const T, 3> view(const State& s, int j) const { return {s.out_[j], {s.B_, s.K_, cfg_.embed_dim}}; }

  void check_input(const TensorView<const T, 5>& clip, const State& s) const {
    if (!clip.data()) throw ShapeError("jepa: the input clip is empty (null data)");
    const std::array<index_t, 5> want{s.B_, cfg_.in_chans, s.geom_.frames, s.geom_.height, s.geom_.width};
    if (clip.shape() != want) {
      // Name the first thing that is wrong, with the rule it breaks.
      grid({clip.size(2), clip.size(3), clip.size(4)});
      if (clip.size(1) != cfg_.in_chans)
        fail_field<ShapeError>("clip channels (dim 1)", clip.size(1), jepa::detail::cat("this encoder takes ", cfg_.in_chans));
      check_shape(clip, want, "the input clip (B,C,F,H,W) for this State");
    }
    if (!clip.is_contiguous()) throw ShapeError("jepa: the input clip must be contiguous (row-major B,C,F,H,W)");
  }


  void set_indices(const std::int64_t* keep_idx, State& s) const {
    const index_t B = s.B_, K = s.K_, N = s.grid_.size();
    if (!keep_idx) {
      if (K != N)
        throw ShapeError(jepa::detail::cat("jepa: this State encodes K = ", K, " of N = ", N,
                                           " tokens; pass the (B,K) token indices to keep"));
      // On a device backend the iota rows are uploaded once and kept while no other indices replace
      // them, so the target encoder's forward has no host-to-device copy (capturable).
      if (Backend::space != MemorySpace::host && s.idx_iota_ && s.idx_host_valid_) return;
      std::int64_t* idx = backend::host_side<Backend>(s.idx_, s.idx_host_, B * K);
      for (index_t b = 0; b < B; ++b) std::iota(idx + b * K, idx + (b + 1) * K, std::int64_t{0});
      backend::to_backend<Backend>(idx, s.idx_, B * K);
      s.idx_iota_ = true;
      s.idx_host_valid_ = true;
      return;
    }
    s.idx_iota_ = false;
    s.idx_host_valid_ = true;
    std::int64_t* idx = backend::host_side<Backend>(s.idx_, s.idx_host_, B * K);
    std::vector<std::uint8_t> seen(static_cast<std::size_t>(N));
    for (index_t b = 0; b < B; ++b) {
      std::fill(seen.begin(), seen.end(), 0);
      for (index_t k = 0; k < K; ++k) {
        const std::int64_t n = keep_idx[b * K + k];
        if (n < 0 || n >= N)
          throw IndexError(jepa::detail::cat("jepa: token index ", n, " at (", b, ", ", k, ") is out of range [0, ", N,
                                             ") for the ", s.grid_.t, "x", s.grid_.h, "x", s.grid_.w, " token grid"));
        if (seen[static_cast<std::size_t>(n)]++)
          throw IndexError(jepa::detail::cat("jepa: token index ", n, " appears twice in row ", b,
                                             " of the kept-token indices; each token may be kept once"));
        idx[b * K + k] = n;
      }
    }
    backend::to_backend<Backend>(idx, s.idx_, B * K);
  }

  VitConfig cfg_;
  nn::ParamLayout layout_;
  nn::PatchEmbed<VideoTok, T, Backend> patch_embed_;
  nn::PatchEmbed<ImageTok, T, Backend> patch_embed_img_;  // MultiModal only
  std::size_t img_mod_embed_ = 0, video_mod_embed_ = 0;    // MultiModal with modality embeddings
  std::vector<nn::Block<T, Backend>> blocks_;
  nn::LayerNorm<T, Backend> norm_;
  std::vector<nn::LayerNorm<T, Backend>> tap_norms_;
  // Layout indices of the first tensor of each block (+ the one after the last block) and of each tap
  // norm (+ the end): the boundaries of grad_walk()'s ranges.
  std::vector<std::size_t> block_first_, tap_first_;
};

}  // namespace jepa::models
