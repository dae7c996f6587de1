// jepa/backend/cuda/optim.cuh — AdamW, global gradient norm with clipping, and the EMA of the target
// encoder, each a pass over flat fp32 parameter arenas (the device twin of train/optim.hpp).
//
// The same update as the CPU (train/optim.hpp), through the same scalar functions (backend/scalar.hpp):
//   clip:   n = √(Σ g²) over every group;  c = max_norm/(n + 1e-6);  g ← g·c when c < 1 (max_norm > 0)
//   AdamW:  p ← p(1 − lr·wd);  m ← β1m + (1−β1)g;  v ← β2v + (1−β2)g²;  p ← p − lr/bc1 · m/(√v/√bc2 + ε)
//           wd only for tensors marked decayed (rank ≥ 2 in nn::ParamLayout); a tensor whose gradient
//           is all zero this step is skipped entirely (PyTorch's .grad = None), as on the CPU
//   EMA:    θ̄ ← m·θ̄ + (1 − m)·θ
// The scalar update runs in double, as the CPU's does (memory-bound: the fp64 units are not the limit).
//
// Layout. A ParamTable describes G ≤ 8 groups (e.g. encoder and predictor), each one flat buffer of
// tensors at element offsets (nn::ParamLayout). Each tensor is cut into chunks of ≤ 16384 elements
// that never straddle two tensors; one block handles one chunk, so a launch covers every tensor of
// every group (multi-tensor apply) and each block knows its tensor's weight-decay flag and skip flag.
//
// Determinism (DESIGN.md decision 11). Σ g² is accumulated in double: per chunk by a fixed-shape block
// reduction, per tensor by summing its chunks in order, globally by a fixed-shape reduction over the
// tensors. No atomics: the norm is bitwise reproducible. (A tensor's Σ g² in double is exactly zero
// iff every g is zero — the square of the smallest fp32 subnormal is still a normal double — so the
// skip test is exact.) The CPU sums in another order; the two norms agree to double rounding.
//
// Streams. Everything is enqueued on the caller's stream; results stay on the device
// (`grad_norm_device()`), so a step can be captured in a CUDA graph. `last_grad_norm()` synchronises.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "jepa/backend/cuda/common.cuh"
#include "jepa/backend/cuda/device.cuh"
#include "jepa/backend/scalar.hpp"
#include "jepa/nn/param.hpp"

namespace jepa::backend::cuda {

inline constexpr int kMaxParamGroups = 8;
inline constexpr std::uint32_t kParamChunkElems = 16384;

/// One block's work: `numel` elements of tensor `tensor` of group `group`, from element `offset`.
struct ParamChunk {
  std::uint64_t offset;
  std::uint32_t numel;
  std::uint32_t tensor;  // index over all groups' tensors
  std::uint16_t group;
  std::uint16_t decay;   // 1: weight decay applies
};
static_assert(sizeof(ParamChunk) == 24);

/// The device-side result of the gradient-norm pass.
struct GradNormResult {
  double sumsq;      // Σ g² over every group
  double norm;       // √sumsq
  double clip_coef;  // min(1, max_norm/(norm + 1e-6)); 1 when max_norm ≤ 0
};

namespace kernels {

template <class T>
struct GroupPointers {
  T* p[kMaxParamGroups];
};

inline constexpr int kOptimThreads = 256;

/// partials[chunk] = Σ g² over the chunk (double). (Kernels without a natural template parameter
/// take a defaulted one: a template may be defined in a header that many TUs include.)
template <int = 0>
__global__ void __launch_bounds__(kOptimThreads)
    grad_sumsq_partials(const ParamChunk* __restrict__ chunks, GroupPointers<const float> grads, double* __restrict__ partials,
                        bool vec) {
  __shared__ double scratch[32];
  const ParamChunk c = chunks[blockIdx.x];
  const float* g = grads.p[c.group] + c.offset;
  double acc = 0;
  std::uint32_t done = 0;
  if (vec && (c.offset & 3u) == 0) {
    const std::uint32_t packs = c.numel / 4;
    for (std::uint32_t i = threadIdx.x; i < packs; i += blockDim.x) {
      const auto a = detail::load_pack(g + 4 * i);
#pragma unroll
      for (int j = 0; j < 4; ++j) acc += static_cast<double>(a.v[j]) * static_cast<double>(a.v[j]);
    }
    done = packs * 4;
  }
  for (std::uint32_t i = done + threadIdx.x; i < c.numel; i += blockDim.x)
    acc += static_cast<double>(g[i]) * static_cast<double>(g[i]);
  acc = detail::block_sum(acc, scratch);
  if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

/// tensor_sumsq[t] = Σ of tensor t's chunk partials in order; out = {Σ, √Σ, clip coefficient}.
/// One block of 1024 threads.
template <int = 0>
__global__ void __launch_bounds__(1024)
    grad_sumsq_finalize(const double* __restrict__ partials, const std::uint32_t* __restrict__ tensor_chunk_begin,
                        std::uint32_t tensors, double* __restrict__ tensor_sumsq, GradNormResult* __restrict__ out,
                        double max_norm) {
  __shared__ double scratch[32];
  double acc = 0;
  for (std::uint32_t t = threadIdx.x; t < tensors; t += blockDim.x) {
    double s = 0;
    for (std::uint32_t c = tensor_chunk_begin[t]; c < tensor_chunk_begin[t + 1]; ++c) s += partials[c];
    tensor_sumsq[t] = s;
    acc += s;
  }
  const double total = detail::block_sum(acc, scratch);
  if (threadIdx.x == 0) {
    const double n = sqrt(total);
    const double coef = max_norm > 0 ? max_norm / (n + 1e-6) : 1.0;
    out->sumsq = total;
    out->norm = n;
    out->clip_coef = coef < 1.0 ? coef : 1.0;
  }
}

/// Scalars of one AdamW step (host-computed, as train::AdamW computes them).
struct AdamWScalars {
  double lr, wd, beta1, beta2, eps, bc1, sqrt_bc2;
};

__device__ __forceinline__ void adamw_one(float& p, float g, float& m, float& v, double coef, double wd,
                                          const AdamWScalars& s) {
  // clip_grad_norm_ on the CPU stores static_cast<float>(g·coef), then AdamW reads it.
  if (coef < 1.0) g = static_cast<float>(g * coef);
  scalar::adamw_step(p, g, m, v, s.lr, wd, s.beta1, s.beta2, s.eps, s.bc1, s.sqrt_bc2);
}

template <bool WithBf16>
__global__ void __launch_bounds__(kOptimThreads)
    adamw_chunks(const ParamChunk* __restrict__ chunks, GroupPointers<float> params, GroupPointers<const float> grads,
                 GroupPointers<float> m1, GroupPointers<float> m2, GroupPointers<__nv_bfloat16> params_bf16,
                 const double* __restrict__ tensor_sumsq, const GradNormResult* __restrict__ gn, AdamWScalars s_arg,
                 const AdamWScalars* __restrict__ s_dev, const int* __restrict__ skip, bool vec) {
  if (skip && *skip) return;  // a non-finite step (step_device): parameters and moments stay as they are
  const ParamChunk c = chunks[blockIdx.x];
  if (tensor_sumsq[c.tensor] == 0.0) return;  // not part of the loss this step: no decay, no moments
  const AdamWScalars s = s_dev ? *s_dev : s_arg;
  const double coef = gn->clip_coef;
  const double wd = c.decay ? s.wd : 0.0;
  float* P = params.p[c.group] + c.offset;
  const float* G = grads.p[c.group] + c.offset;
  float* M = m1.p[c.group] + c.offset;
  float* V = m2.p[c.group] + c.offset;
  __nv_bfloat16* B = WithBf16 ? params_bf16.p[c.group] + c.offset : nullptr;
  std::uint32_t done = 0;
  if (vec && (c.offset & 3u) == 0) {
    const std::uint32_t packs = c.numel / 4;
    for (std::uint32_t i = threadIdx.x; i < packs; i += blockDim.x) {
      auto p = detail::load_pack(P + 4 * i), m = detail::load_pack(M + 4 * i), v = detail::load_pack(V + 4 * i);
      const auto g = detail::load_pack(G + 4 * i);
#pragma unroll
      for (int j = 0; j < 4; ++j) adamw_one(p.v[j], g.v[j], m.v[j], v.v[j], coef, wd, s);
      detail::store_pack(P + 4 * i, p);
      detail::store_pack(M + 4 * i, m);
      detail::store_pack(V + 4 * i, v);
      if constexpr (WithBf16) {
        // 4 bf16 = 8 bytes: one 64-bit store.
        __nv_bfloat162 lo = __floats2bfloat162_rn(p.v[0], p.v[1]), hi = __floats2bfloat162_rn(p.v[2], p.v[3]);
        uint2 raw;
        memcpy(&raw.x, &lo, 4);
        memcpy(&raw.y, &hi, 4);
        *reinterpret_cast<uint2*>(B + 4 * i) = raw;
      }
    }
    done = packs * 4;
  }
  for (std::uint32_t i = done + threadIdx.x; i < c.numel; i += blockDim.x) {
    float p = P[i], m = M[i], v = V[i];
    adamw_one(p, G[i], m, v, coef, wd, s);
    P[i] = p;
    M[i] = m;
    V[i] = v;
    if constexpr (WithBf16) B[i] = __float2bfloat16_rn(p);
  }
}

/// target = ema_lerp(target, online, momentum) over n floats; optional bf16 copy of the result.
template <int = 0>
__global__ void __launch_bounds__(kOptimThreads)
    ema_lerp_f32(float* __restrict__ target, const float* __restrict__ online, __nv_bfloat16* __restrict__ target_bf16,
                 index_t n, double momentum, const double* __restrict__ momentum_dev, const int* __restrict__ skip,
                 bool vec) {
  if (skip && *skip) return;
  if (momentum_dev) momentum = *momentum_dev;
  const index_t tid = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x;
  const index_t stride = static_cast<index_t>(gridDim.x) * blockDim.x;
  index_t done = 0;
  if (vec) {
    const index_t packs = n / 4;
    for (index_t i = tid; i < packs; i += stride) {
      auto t = detail::load_pack(target + 4 * i);
      const auto o = detail::load_pack(online + 4 * i);
#pragma unroll
      for (int j = 0; j < 4; ++j) t.v[j] = scalar::ema_lerp(t.v[j], o.v[j], momentum);
      detail::store_pack(target + 4 * i, t);
      if (target_bf16) {
        __nv_bfloat162 lo = __floats2bfloat162_rn(t.v[0], t.v[1]), hi = __floats2bfloat162_rn(t.v[2], t.v[3]);
        uint2 raw;
        memcpy(&raw.x, &lo, 4);
        memcpy(&raw.y, &hi, 4);
        *reinterpret_cast<uint2*>(target_bf16 + 4 * i) = raw;
      }
    }
    done = packs * 4;
  }
  for (index_t i = done + tid; i < n; i += stride) {
    const float t = scalar::ema_lerp(target[i], online[i], momentum);
    target[i] = t;
    if (target_bf16) target_bf16[i] = __float2bfloat16_rn(t);
  }
}

/// *skip = 1 when any of values[0 … n) or the gradient norm is not finite, else 0 (one thread).
template <int = 0>
__global__ void nonfinite_guard(const double* __restrict__ values, int n, const GradNormResult* __restrict__ gn,
                                int* __restrict__ skip) {
  bool bad = gn && !isfinite(gn->sumsq);
  for (int i = 0; i < n; ++i) bad = bad || !isfinite(values[i]);
  *skip = bad ? 1 : 0;
}

/// The AdamW step counter of a captured training step, on the device: unless *skip, t ← t + 1 and
/// the bias corrections of t are written into *s (bc1 = 1 − β1^t, sqrt_bc2 = √(1 − β2^t)); a skipped
/// step leaves t and *s as they are, as the CPU trainer's skipped step leaves train::AdamW's counter.
template <int = 0>
__global__ void adamw_advance(AdamWScalars* __restrict__ s, unsigned long long* __restrict__ t,
                              const int* __restrict__ skip) {
  if (skip && *skip) return;
  const unsigned long long n = *t + 1;
  *t = n;
  s->bc1 = 1.0 - pow(s->beta1, static_cast<double>(n));
  s->sqrt_bc2 = sqrt(1.0 - pow(s->beta2, static_cast<double>(n)));
}

}  // namespace kernels

/// The chunked description of G parameter groups, uploaded once, plus the device scratch of the
/// gradient-norm pass. Build it from the model's layouts (`from_layouts`) or from explicit ranges.
class ParamTable {
 public:
  /// One tensor of a group: `numel` elements from element `offset`; `decay`: weight decay applies.
  struct Tensor {
    std::size_t offset = 0, numel = 0;
    bool decay = true;
  };

  /// groups[g] lists group g's tensors; group_numel[g] is the length of its buffer (tensors must lie
  /// inside it and must not overlap — they are updated in parallel).
  ParamTable(const std::vector<std::vector<Tensor>>& groups, std::vector<std::size_t> group_numel)
      : group_numel_(std::move(group_numel)) {
    if (groups.empty() || groups.size() > static_cast<std::size_t>(kMaxParamGroups))
      throw ConfigError(jepa::detail::cat("jepa: cuda::ParamTable: ", groups.size(),
                                          " parameter groups is invalid: must be 1 to ", kMaxParamGroups));
    if (group_numel_.size() != groups.size())
      throw ShapeError(jepa::detail::cat("jepa: cuda::ParamTable: ", groups.size(), " groups but ", group_numel_.size(),
                                         " buffer lengths"));
    std::vector<ParamChunk> chunks;
    std::vector<std::uint32_t> begin{0};
    std::uint32_t tensor = 0;
    for (std::size_t g = 0; g < groups.size(); ++g) {
      std::vector<std::pair<std::size_t, std::size_t>> spans;
      for (const Tensor& t : groups[g]) {
        if (t.offset + t.numel > group_numel_[g])
          throw ShapeError(jepa::detail::cat("jepa: cuda::ParamTable: tensor [", t.offset, ", ", t.offset + t.numel,
                                             ") of group ", g, " lies outside its buffer of ", group_numel_[g], " elements"));
        spans.emplace_back(t.offset, t.offset + t.numel);
        for (std::size_t o = 0; o < t.numel; o += kParamChunkElems) {
          const std::size_t len = t.numel - o < kParamChunkElems ? t.numel - o : kParamChunkElems;
          chunks.push_back(ParamChunk{t.offset + o, static_cast<std::uint32_t>(len), tensor,
                                      static_cast<std::uint16_t>(g), static_cast<std::uint16_t>(t.decay ? 1 : 0)});
        }
        begin.push_back(static_cast<std::uint32_t>(chunks.size()));
        ++tensor;
      }
      std::sort(spans.begin(), spans.end());
      for (std::size_t i = 1; i < spans.size(); ++i)
        if (spans[i].first < spans[i - 1].second)
          throw ShapeError(jepa::detail::cat("jepa: cuda::ParamTable: tensors of group ", g, " overlap at element ",
                                             spans[i].first, " (each element may belong to one tensor)"));
    }
    tensors_ = tensor;
    chunk_count_ = chunks.size();
    if (chunk_count_ > 0x7fffffffu) throw ShapeError("jepa: cuda::ParamTable: more than 2^31 chunks");
    chunks_ = to_device(chunks);
    tensor_chunk_begin_ = to_device(begin);
    partials_ = DeviceBuffer<double>(chunk_count_ ? chunk_count_ : 1);
    tensor_sumsq_ = DeviceBuffer<double>(tensors_ ? tensors_ : 1);
    result_ = DeviceBuffer<GradNormResult>(1);
    const GradNormResult init{0, 0, 1};
    copy_to_device(result_.data(), &init, 1);
    JEPA_CUDA_CHECK(cudaStreamSynchronize(nullptr));
  }

  /// Every tensor of each layout; decay as the layout says (rank ≥ 2), buffers of layout.numel().
  static ParamTable from_layouts(const std::vector<const nn::ParamLayout*>& layouts) {
    std::vector<std::vector<Tensor>> groups;
    std::vector<std::size_t> numel;
    for (const auto* l : layouts) {
      if (!l) throw ShapeError("jepa: cuda::ParamTable::from_layouts: null layout");
      std::vector<Tensor> ts;
      for (const auto& p : l->params()) ts.push_back(Tensor{p.offset, p.numel(), p.weight_decay});
      groups.push_back(std::move(ts));
      numel.push_back(l->numel());
    }
    return ParamTable(groups, std::move(numel));
  }

  int groups() const noexcept { return static_cast<int>(group_numel_.size()); }
  std::size_t group_numel(int g) const { return group_numel_.at(static_cast<std::size_t>(g)); }
  std::size_t tensors() const noexcept { return tensors_; }
  std::size_t chunks() const noexcept { return chunk_count_; }

  /// Σ g² per tensor and the global norm over every group's gradient buffer (see the header
  /// comment); the result stays on the device. max_norm > 0 also sets the clip coefficient.
  const GradNormResult* grad_norm(std::span<const float* const> grads, double max_norm, cudaStream_t stream) {
    auto g = pointers<const float>(grads, "grads");
    const bool vec = all_aligned(grads);
    if (chunk_count_) {
      kernels::grad_sumsq_partials<><<<static_cast<unsigned>(chunk_count_), kernels::kOptimThreads, 0, stream>>>(
          chunks_.data(), g, partials_.data(), vec);
      JEPA_CUDA_CHECK_LAUNCH("cuda::ParamTable::grad_norm (partials)");
    }
    kernels::grad_sumsq_finalize<><<<1, 1024, 0, stream>>>(partials_.data(), tensor_chunk_begin_.data(),
                                                         static_cast<std::uint32_t>(tensors_), tensor_sumsq_.data(),
                                                         result_.data(), max_norm);
    JEPA_CUDA_CHECK_LAUNCH("cuda::ParamTable::grad_norm (finalize)");
    return result_.data();
  }
  const GradNormResult* grad_norm_device() const noexcept { return result_.data(); }
  /// Σ g² of each tensor from the last grad_norm (device, tensors() doubles).
  const double* tensor_sumsq_device() const noexcept { return tensor_sumsq_.data(); }
  /// The last grad_norm's result, copied to the host (synchronises the stream).
  GradNormResult last_grad_norm(cudaStream_t stream) const {
    GradNormResult r{};
    copy_to_host(&r, result_.data(), 1, stream);
    JEPA_CUDA_CHECK(cudaStreamSynchronize(stream));
    return r;
  }

  const ParamChunk* chunks_device() const noexcept { return chunks_.data(); }

  template <class T, class Ptr>
  kernels::GroupPointers<T> pointers(std::span<Ptr const> ps, const char* what) const {
    if (ps.size() != group_numel_.size())
      throw ShapeError(jepa::detail::cat("jepa: cuda::ParamTable: ", ps.size(), " ", what, " buffers given, the table has ",
                                         group_numel_.size(), " groups"));
    kernels::GroupPointers<T> out{};
    for (std::size_t g = 0; g < ps.size(); ++g) {
      if (!ps[g] && group_numel_[g] > 0)
        throw ShapeError(jepa::detail::cat("jepa: cuda::ParamTable: ", what, " buffer of group ", g, " is a null pointer"));
      out.p[g] = reinterpret_cast<T*>(ps[g]);
    }
    return out;
  }
  template <class Ptr>
  static bool all_aligned(std::span<Ptr const> ps) {
    for (auto p : ps)
      if (!detail::aligned16(p)) return false;
    return true;
  }

 private:
  std::vector<std::size_t> group_numel_;
  std::size_t tensors_ = 0, chunk_count_ = 0;
  DeviceBuffer<ParamChunk> chunks_;
  DeviceBuffer<std::uint32_t> tensor_chunk_begin_;
  DeviceBuffer<double> partials_, tensor_sumsq_;
  DeviceBuffer<GradNormResult> result_;
};

struct AdamWConfig {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
};

/// AdamW over the groups of a ParamTable, with fp32 moments on the device (zero at construction).
/// step() = the gradient-norm pass (clip coefficient, skip flags) + one fused update launch.
class AdamW {
 public:
  explicit AdamW(ParamTable table, AdamWConfig cfg = {}) : table_(std::move(table)), cfg_(cfg) {
    for (int g = 0; g < table_.groups(); ++g) {
      m_.emplace_back(table_.group_numel(g));
      v_.emplace_back(table_.group_numel(g));
      m_.back().zero();
      v_.back().zero();
    }
    JEPA_CUDA_CHECK(cudaStreamSynchronize(nullptr));
  }

  /// One update with learning rate lr and weight decay wd (decayed tensors only). Gradients are
  /// clipped to max_norm first when max_norm > 0 (read-only: the clipped values feed the update, the
  /// gradient buffers are left as they are). params_bf16, when given (one per group, or null
  /// entries), receives the bf16 copy of the updated parameters in the same pass.
  void step(std::span<float* const> params, std::span<const float* const> grads, double lr, double wd, double max_norm,
            cudaStream_t stream, std::span<jepa::bf16* const> params_bf16 = {}) {
    if (!(lr >= 0) || !(wd >= 0))
      throw ConfigError(jepa::detail::cat("jepa: cuda::AdamW::step: lr = ", lr, ", wd = ", wd, " are invalid: must be >= 0"));
    auto P = table_.pointers<float>(params, "params");
    auto G = table_.pointers<const float>(grads, "grads");
    kernels::GroupPointers<float> M{}, V{};
    kernels::GroupPointers<__nv_bfloat16> B{};
    bool vec = ParamTable::all_aligned(params) && ParamTable::all_aligned(grads);
    for (int g = 0; g < table_.groups(); ++g) {
      M.p[g] = m_[static_cast<std::size_t>(g)].data();
      V.p[g] = v_[static_cast<std::size_t>(g)].data();
    }
    const bool with_bf16 = !params_bf16.empty();
    if (with_bf16) {
      if (params_bf16.size() != static_cast<std::size_t>(table_.groups()))
        throw ShapeError(jepa::detail::cat("jepa: cuda::AdamW::step: ", params_bf16.size(),
                                           " bf16 parameter buffers given, the table has ", table_.groups(), " groups"));
      for (int g = 0; g < table_.groups(); ++g) {
        if (!params_bf16[static_cast<std::size_t>(g)])
          throw ShapeError(jepa::detail::cat("jepa: cuda::AdamW::step: bf16 parameter buffer of group ", g, " is a null pointer"));
        B.p[g] = dev(params_bf16[static_cast<std::size_t>(g)]);
        vec = vec && (reinterpret_cast<std::uintptr_t>(B.p[g]) & 7u) == 0;
      }
    }
    const GradNormResult* gn = table_.grad_norm(grads, max_norm, stream);
    ++t_;
    const kernels::AdamWScalars s{lr, wd, cfg_.beta1, cfg_.beta2, cfg_.eps,
                                  1.0 - std::pow(cfg_.beta1, static_cast<double>(t_)),
                                  std::sqrt(1.0 - std::pow(cfg_.beta2, static_cast<double>(t_)))};
    if (table_.chunks() == 0) return;
    const unsigned blocks = static_cast<unsigned>(table_.chunks());
    if (with_bf16)
      kernels::adamw_chunks<true><<<blocks, kernels::kOptimThreads, 0, stream>>>(
          table_.chunks_device(), P, G, M, V, B, table_.tensor_sumsq_device(), gn, s, nullptr, nullptr, vec);
    else
      kernels::adamw_chunks<false><<<blocks, kernels::kOptimThreads, 0, stream>>>(
          table_.chunks_device(), P, G, M, V, B, table_.tensor_sumsq_device(), gn, s, nullptr, nullptr, vec);
    JEPA_CUDA_CHECK_LAUNCH("cuda::AdamW::step");
  }

  /// The step of a captured training step (train/cuda_step.cuh): the update's scalars are read from
  /// device memory (`scalars`, written by the caller before each launch: lr, wd, β1, β2, ε and the bias
  /// corrections of this step), so one CUDA graph serves every step; grad_norm() must have run on
  /// `grads` first (its clip coefficient and per-tensor sums are used), and the update is skipped
  /// when *skip != 0 (a non-finite loss or gradient). The host step counter is not touched; a
  /// captured step keeps its counter on the device (advance_device).
  void step_device(std::span<float* const> params, std::span<const float* const> grads,
                   const kernels::AdamWScalars* scalars, const int* skip, cudaStream_t stream) {
    detail::require_pointer(scalars, "cuda::AdamW::step_device", "scalars");
    auto P = table_.pointers<float>(params, "params");
    auto G = table_.pointers<const float>(grads, "grads");
    kernels::GroupPointers<float> M{}, V{};
    kernels::GroupPointers<__nv_bfloat16> B{};
    const bool vec = ParamTable::all_aligned(params) && ParamTable::all_aligned(grads);
    for (int g = 0; g < table_.groups(); ++g) {
      M.p[g] = m_[static_cast<std::size_t>(g)].data();
      V.p[g] = v_[static_cast<std::size_t>(g)].data();
    }
    if (table_.chunks() == 0) return;
    kernels::adamw_chunks<false><<<static_cast<unsigned>(table_.chunks()), kernels::kOptimThreads, 0, stream>>>(
        table_.chunks_device(), P, G, M, V, B, table_.tensor_sumsq_device(), table_.grad_norm_device(),
        kernels::AdamWScalars{}, scalars, skip, vec);
    JEPA_CUDA_CHECK_LAUNCH("cuda::AdamW::step_device");
  }
  /// Advances the device step counter `t` (one unsigned long long in device memory) unless *skip and
  /// writes the bias corrections of the new count into `scalars` (device memory, read by a following
  /// step_device). Enqueue it after the guard that sets *skip and before step_device: then a skipped
  /// step does not advance the count, as on the CPU.
  static void advance_device(kernels::AdamWScalars* scalars, unsigned long long* t, const int* skip,
                             cudaStream_t stream) {
    detail::require_pointer(scalars, "cuda::AdamW::advance_device", "scalars");
    detail::require_pointer(t, "cuda::AdamW::advance_device", "t");
    kernels::adamw_advance<><<<1, 1, 0, stream>>>(scalars, t, skip);
    JEPA_CUDA_CHECK_LAUNCH("cuda::AdamW::advance_device");
  }
  const AdamWConfig& config() const noexcept { return cfg_; }

  std::uint64_t steps_taken() const noexcept { return t_; }
  void set_steps_taken(std::uint64_t t) noexcept { t_ = t; }
  ParamTable& table() noexcept { return table_; }
  float* first_moment(int g) { return m_.at(static_cast<std::size_t>(g)).data(); }
  float* second_moment(int g) { return v_.at(static_cast<std::size_t>(g)).data(); }

 private:
  ParamTable table_;
  AdamWConfig cfg_;
  std::vector<DeviceBuffer<float>> m_, v_;
  std::uint64_t t_ = 0;
};

namespace detail {
/// The one launch behind ema_update and ema_update_device: the momentum by value, or from device
/// memory when momentum_dev is set; skipped when *skip != 0.
inline void launch_ema(const char* op, float* target, const float* online, jepa::bf16* target_bf16, index_t n,
                       double momentum, const double* momentum_dev, const int* skip, cudaStream_t stream) {
  require_extent(n, 0, op, "n");
  if (n == 0) return;
  require_pointer(target, op, "target");
  require_pointer(online, op, "online");
  const bool vec = aligned16(target) && aligned16(online) &&
                   (!target_bf16 || (reinterpret_cast<std::uintptr_t>(target_bf16) & 7u) == 0);
  kernels::ema_lerp_f32<><<<grid_for(vec ? (n + 3) / 4 : n, kernels::kOptimThreads), kernels::kOptimThreads, 0, stream>>>(
      target, online, dev(target_bf16), n, momentum, momentum_dev, skip, vec);
  cuda_check(cudaGetLastError(), op, __FILE__, __LINE__);  // the launch (JEPA_CUDA_CHECK_LAUNCH needs a literal)
}
}  // namespace detail

/// θ̄ ← m·θ̄ + (1 − m)·θ over n floats (the whole parameter arena, padding included: it stays 0).
/// target_bf16, when non-null, receives the bf16 copy of θ̄ in the same pass.
inline void ema_update(float* target, const float* online, index_t n, double momentum, cudaStream_t stream,
                       jepa::bf16* target_bf16 = nullptr) {
  if (!(momentum >= 0.0 && momentum <= 1.0))
    throw ConfigError(jepa::detail::cat("jepa: cuda::ema_update: momentum = ", momentum, " is invalid: must be in [0, 1]"));
  detail::launch_ema("cuda::ema_update", target, online, target_bf16, n, momentum, nullptr, nullptr, stream);
}

/// ema_update with the momentum read from device memory at run time (a captured step) and skipped
/// when *skip != 0 (skip may be null).
inline void ema_update_device(float* target, const float* online, index_t n, const double* momentum, const int* skip,
                              cudaStream_t stream) {
  detail::require_pointer(momentum, "cuda::ema_update_device", "momentum");
  detail::launch_ema("cuda::ema_update_device", target, online, nullptr, n, 0.0, momentum, skip, stream);
}

/// *skip = 1 when a loss value (values, n doubles, device) or the gradient norm (gn, may be null) is
/// not finite, else 0: the guard of a device training step (the CPU trainer's NaN guard).
inline void nonfinite_guard(const double* values, int n, const GradNormResult* gn, int* skip, cudaStream_t stream) {
  detail::require_pointer(skip, "cuda::nonfinite_guard", "skip");
  kernels::nonfinite_guard<><<<1, 1, 0, stream>>>(values, n, gn, skip);
  JEPA_CUDA_CHECK_LAUNCH("cuda::nonfinite_guard");
}

}  // namespace jepa::backend::cuda
