// jepa/backend/cuda/tokens.cuh — token subsets and tubelet im2col on the device (the twins of
// backend::Cpu's gather_rows, scatter_add_rows, im2col_tubelet, col2im_tubelet).
//
// idx is a (B, K) int64 array IN DEVICE MEMORY of flat token indices into N tokens per sample.
//   gather_rows:       dst[b, k, :] = src[b, idx[b,k], :]          src (B,N,D) → dst (B,K,D)
//   scatter_add_rows:  dsrc[b, idx[b,k], :] += ddst[b, k, :]       the adjoint of gather
//   im2col_tubelet:    cols[b·K + k, (c, i, y, x)] = clip[b, c, t'·t + i, h'·p + y, w'·p + x]
//                      clip (B,C,F,H,W); token n = (t', h', w') on the (F/t, H/p, W/p) grid, row-major
//   col2im_tubelet:    its adjoint on the kept tokens: dclip = 0, then each kept tubelet's pixels
//                      receive their column (tubelets do not overlap: stride = kernel)
// Indices within a row are distinct (the callers' contract, as on the CPU). Then every output element
// has exactly one writer and each kernel is a pure permutation: deterministic, no ordering needed.
// scatter_add_rows still adds with atomicAdd (a RED instruction: as fast as the plain read-modify-
// write when addresses are distinct), so a repeated index sums correctly instead of racing.
// The host cannot check device indices without a synchronisation, so the kernels guard themselves:
// an index outside [0, N) makes gather / im2col write NaN (all-ones bytes) into that row — visible,
// never an out-of-bounds read — and makes scatter / col2im skip it.
//
// Kernels: one thread per output element (16-byte units for gather when D·sizeof(T) allows), so
// stores are coalesced and loads are coalesced within each row / tubelet line of p pixels.
#pragma once

#include <cstdint>

#include "jepa/backend/cuda/common.cuh"

namespace jepa::backend::cuda {

namespace kernels {

/// All-ones bytes of U: NaN for float and bf16, so a bad index shows in the result.
template <class U>
__device__ __forceinline__ U poison_value() {
  unsigned char bytes[sizeof(U)];
#pragma unroll
  for (unsigned k = 0; k < sizeof(U); ++k) bytes[k] = 0xff;
  U u;
  memcpy(&u, bytes, sizeof(U));
  return u;
}

/// dst[bk, :] = src[b·N + idx[bk], :] in units U (a row is `units` U's).
template <class U>
__global__ void gather_rows(const U* __restrict__ src, const std::int64_t* __restrict__ idx, U* __restrict__ dst, index_t K,
                            index_t N, index_t units, index_t total) {
  const index_t stride = static_cast<index_t>(gridDim.x) * blockDim.x;
  for (index_t e = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; e < total; e += stride) {
    const index_t bk = e / units, j = e - bk * units;
    const std::int64_t n = idx[bk];
    dst[e] = (n >= 0 && n < N) ? src[((bk / K) * N + n) * units + j] : poison_value<U>();
  }
}

/// dsrc[b·N + idx[bk], j] += ddst[bk, j].
template <class S>
__global__ void scatter_add_rows(const S* __restrict__ ddst, const std::int64_t* __restrict__ idx, S* __restrict__ dsrc,
                                 index_t K, index_t N, index_t D, index_t total) {
  const index_t stride = static_cast<index_t>(gridDim.x) * blockDim.x;
  for (index_t e = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; e < total; e += stride) {
    const index_t bk = e / D, j = e - bk * D;
    const std::int64_t n = idx[bk];
    if (n >= 0 && n < N) atomicAdd(dsrc + ((bk / K) * N + n) * D + j, ddst[e]);
  }
}

/// The geometry of a tubelet im2col: clip (B,C,F,H,W), kernel t×p×p, K kept tokens per sample.
struct TubeletGeometry {
  index_t C, F, H, W;
  int t, p;
  index_t K;
  index_t gh, gw, tokens;  // grid rows, columns, and N = (F/t)·gh·gw
  int kvol;                // C·t·p·p
};

/// The clip offset of element q of token n of sample b (q indexes (c, i, y, x) row-major).
__device__ __forceinline__ index_t tubelet_offset(const TubeletGeometry& g, index_t b, index_t n, int q) {
  const int x = q % g.p, y = (q / g.p) % g.p, i = (q / (g.p * g.p)) % g.t, c = q / (g.t * g.p * g.p);
  const index_t hw = g.gh * g.gw;
  const index_t tt = n / hw, hh = (n % hw) / g.gw, ww = n % g.gw;
  return (((b * g.C + c) * g.F + tt * g.t + i) * g.H + hh * g.p + y) * g.W + ww * g.p + x;
}

template <class T>
__global__ void im2col_tubelet(const T* __restrict__ clip, const std::int64_t* __restrict__ idx, T* __restrict__ cols,
                               TubeletGeometry g, index_t total) {
  const index_t stride = static_cast<index_t>(gridDim.x) * blockDim.x;
  for (index_t e = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; e < total; e += stride) {
    const index_t bk = e / g.kvol;
    const int q = static_cast<int>(e - bk * g.kvol);
    const std::int64_t n = idx[bk];
    cols[e] = (n >= 0 && n < g.tokens) ? clip[tubelet_offset(g, bk / g.K, n, q)] : poison_value<T>();
  }
}

template <class T>
__global__ void col2im_tubelet(const T* __restrict__ dcols, const std::int64_t* __restrict__ idx, T* __restrict__ dclip,
                               TubeletGeometry g, index_t total) {
  const index_t stride = static_cast<index_t>(gridDim.x) * blockDim.x;
  for (index_t e = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; e < total; e += stride) {
    const index_t bk = e / g.kvol;
    const int q = static_cast<int>(e - bk * g.kvol);
    const std::int64_t n = idx[bk];
    if (n >= 0 && n < g.tokens) dclip[tubelet_offset(g, bk / g.K, n, q)] = dcols[e];
  }
}

}  // namespace kernels

namespace detail {
inline constexpr int kTokenThreads = 256;

inline void check_rows(const void* in, const void* idx, const void* out, index_t B, index_t N, index_t K, index_t D,
                       const char* op, const char* in_name, const char* out_name) {
  require_extent(B, 0, op, "B (batch)");
  require_extent(N, 0, op, "N (tokens per sample)");
  require_extent(K, 0, op, "K (indices per sample)");
  require_extent(D, 0, op, "D (row width)");
  if (B == 0 || K == 0 || D == 0) return;
  require_extent(N, 1, op, "N (tokens per sample, with K > 0 indices)");
  require_pointer(in, op, in_name);
  require_pointer(idx, op, "idx");
  require_pointer(out, op, out_name);
}

inline kernels::TubeletGeometry tubelet_geometry(const void* in, const void* idx, const void* out, index_t B, index_t C,
                                                 index_t F, index_t H, index_t W, index_t t, index_t p, index_t K,
                                                 const char* op, const char* in_name, const char* out_name) {
  require_extent(B, 0, op, "B (batch)");
  require_extent(C, 1, op, "C (channels)");
  require_extent(t, 1, op, "t (tubelet frames)");
  require_extent(p, 1, op, "p (patch size)");
  require_extent(F, t, op, "F (frames, at least one tubelet)");
  require_extent(H, p, op, "H (height, at least one patch)");
  require_extent(W, p, op, "W (width, at least one patch)");
  require_extent(K, 0, op, "K (tokens per sample)");
  const index_t kvol = C * t * p * p;
  if (kvol > (index_t{1} << 30))
    throw ShapeError(jepa::detail::cat("jepa: ", op, ": C·t·p·p = ", kvol, " is invalid: must be < 2^30"));
  if (B > 0 && K > 0) {
    require_pointer(in, op, in_name);
    require_pointer(idx, op, "idx");
  }
  if (B > 0) require_pointer(out, op, out_name);
  const index_t gh = H / p, gw = W / p;
  return {C, F, H, W, static_cast<int>(t), static_cast<int>(p), K, gh, gw, (F / t) * gh * gw, static_cast<int>(kvol)};
}
}  // namespace detail

/// dst (B,K,D) = rows idx (B,K, device int64) of src (B,N,D). Any trivially copyable T.
template <class T>
void gather_rows(const T* src, const std::int64_t* idx, T* dst, index_t B, index_t N, index_t K, index_t D,
                 cudaStream_t stream) {
  constexpr const char* op = "cuda::gather_rows";
  detail::check_rows(src, idx, dst, B, N, K, D, op, "src", "dst");
  if (B == 0 || K == 0 || D == 0) return;
  const std::size_t row_bytes = static_cast<std::size_t>(D) * sizeof(T);
  if (row_bytes % 16 == 0 && detail::aligned16(src) && detail::aligned16(dst)) {
    const index_t units = static_cast<index_t>(row_bytes / 16), total = B * K * units;
    kernels::gather_rows<<<detail::grid_for(total, detail::kTokenThreads), detail::kTokenThreads, 0, stream>>>(
        reinterpret_cast<const uint4*>(src), idx, reinterpret_cast<uint4*>(dst), K, N, units, total);
  } else {
    const index_t total = B * K * D;
    kernels::gather_rows<<<detail::grid_for(total, detail::kTokenThreads), detail::kTokenThreads, 0, stream>>>(
        dev(src), idx, dev(dst), K, N, D, total);
  }
  JEPA_CUDA_CHECK_LAUNCH("cuda::gather_rows");
}

/// dsrc (B,N,D)[b, idx[b,k], :] += ddst (B,K,D)[b, k, :] (idx in device memory).
template <DeviceReal T>
void scatter_add_rows(const T* ddst, const std::int64_t* idx, T* dsrc, index_t B, index_t N, index_t K, index_t D,
                      cudaStream_t stream) {
  constexpr const char* op = "cuda::scatter_add_rows";
  detail::check_rows(ddst, idx, dsrc, B, N, K, D, op, "ddst", "dsrc");
  if (B == 0 || K == 0 || D == 0) return;
  const index_t total = B * K * D;
  kernels::scatter_add_rows<<<detail::grid_for(total, detail::kTokenThreads), detail::kTokenThreads, 0, stream>>>(
      dev(ddst), idx, dev(dsrc), K, N, D, total);
  JEPA_CUDA_CHECK_LAUNCH("cuda::scatter_add_rows");
}

/// cols (B·K, C·t·p·p) = the kept tubelets idx (B,K, device int64) of clip (B,C,F,H,W).
template <class T>
void im2col_tubelet(const T* clip, const std::int64_t* idx, T* cols, index_t B, index_t C, index_t F, index_t H,
                    index_t W, index_t t, index_t p, index_t K, cudaStream_t stream) {
  const auto g = detail::tubelet_geometry(clip, idx, cols, B, C, F, H, W, t, p, K, "cuda::im2col_tubelet", "clip", "cols");
  const index_t total = B * K * g.kvol;
  if (total == 0) return;
  kernels::im2col_tubelet<<<detail::grid_for(total, detail::kTokenThreads), detail::kTokenThreads, 0, stream>>>(
      dev(clip), idx, dev(cols), g, total);
  JEPA_CUDA_CHECK_LAUNCH("cuda::im2col_tubelet");
}

/// dclip (B,C,F,H,W) = col2im of dcols (B·K, C·t·p·p): zero, then the kept tubelets (overwrite).
template <class T>
void col2im_tubelet(const T* dcols, const std::int64_t* idx, T* dclip, index_t B, index_t C, index_t F, index_t H,
                    index_t W, index_t t, index_t p, index_t K, cudaStream_t stream) {
  const auto g =
      detail::tubelet_geometry(dcols, idx, dclip, B, C, F, H, W, t, p, K, "cuda::col2im_tubelet", "dcols", "dclip");
  const index_t clip_elems = B * C * F * H * W;
  if (clip_elems == 0) return;
  JEPA_CUDA_CHECK(cudaMemsetAsync(dclip, 0, static_cast<std::size_t>(clip_elems) * sizeof(T), stream));
  const index_t total = B * K * g.kvol;
  if (total == 0) return;
  kernels::col2im_tubelet<<<detail::grid_for(total, detail::kTokenThreads), detail::kTokenThreads, 0, stream>>>(
      dev(dcols), idx, dev(dclip), g, total);
  JEPA_CUDA_CHECK_LAUNCH("cuda::col2im_tubelet");
}

}  // namespace jepa::backend::cuda
