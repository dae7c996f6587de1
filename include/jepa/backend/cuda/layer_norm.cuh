// jepa/backend/cuda/layer_norm.cuh — LayerNorm over the last dimension of an (M, D) row-major matrix.
//
// Forward (the CPU backend's definition, backend/cpu/backend.hpp):
//   μ = mean(x),  σ² = mean((x − μ)²) (biased, two-pass),  r = 1/√(σ² + ε),
//   x̂ = (x − μ)·r,  y = x̂ ⊙ w + b          w, b optional (null: 1 and 0); mean, rstd (M) optional
// Fused with the residual add (add_layer_norm_forward): s = a + r is stored and normalised in the
// same pass, x = s above.
// Backward, with g = dy ⊙ w (g = dy without w):
//   dx = r·(g − mean(g) − x̂·mean(g ⊙ x̂))   overwrite, or += with accumulate_dx (residual stream)
//   dw += Σ_rows dy ⊙ x̂,   db += Σ_rows dy   (parameter gradients accumulate: the library contract)
// Storage: x, y, w, b, dy, dx are T (float or jepa::bf16); mean, rstd and the parameter gradients
// dw, db are float (fp32 master gradients). Arithmetic is float throughout.
//
// Kernels. Forward and dx: one warp per row (4 rows per 128-thread block); each lane walks the row in
// 16-byte packs (scalar loop when D or a pointer does not allow packs), the row staying in L1 between
// the passes; warp shuffles reduce. dw/db: deterministic two-stage column reduction with no atomics —
// blocks of 32 columns × a chunk of rows write fp32 partials to a workspace, then one thread per
// column sums the chunks in order and adds into dw/db. The chunking depends only on (M, D), so the
// result is bitwise reproducible run to run and across GPUs (DESIGN.md decision 11).
//   Workspace: layer_norm_backward_workspace_bytes(M, D) bytes of device memory (only when dw or db).
#pragma once

#include "jepa/backend/cuda/common.cuh"

namespace jepa::backend::cuda {

namespace detail {
inline constexpr int kLnRowsPerBlock = 4;  // warps per block in the row kernels
inline constexpr int kLnColTile = 32;      // columns per block of the dw/db partial kernel
inline constexpr int kLnRowLanes = 8;      // row lanes per block of the dw/db partial kernel
/// Rows per chunk of the dw/db reduction: at least 64, and at most 512 chunks.
inline index_t ln_rows_per_chunk(index_t M) {
  const index_t by_count = (M + 511) / 512;
  return by_count > 64 ? by_count : 64;
}
inline index_t ln_chunks(index_t M) { return (M + ln_rows_per_chunk(M) - 1) / ln_rows_per_chunk(M); }
}  // namespace detail

/// Device workspace the backward needs for dw/db: two (chunks, D) fp32 partial arrays.
inline std::size_t layer_norm_backward_workspace_bytes(index_t M, index_t D) {
  if (M <= 0 || D <= 0) return 0;
  return static_cast<std::size_t>(2 * detail::ln_chunks(M) * D) * sizeof(float);
}

namespace kernels {

/// The rest of a LayerNorm row once its mean μ is known: the variance pass, mean/rstd, and
/// y = (x − μ)·r ⊙ w + b. One warp per row; lane walks the same elements as the mean pass did.
template <class S>
__device__ __forceinline__ void layer_norm_row_finish(const S* xr, float mu, const S* __restrict__ w,
                                                      const S* __restrict__ b, S* __restrict__ yr,
                                                      float* __restrict__ mean, float* __restrict__ rstd, index_t row,
                                                      int D, float eps, bool vec, int lane) {
  constexpr int P = detail::Pack<S>::size;
  const int packs = vec ? D / P : 0;

  float v = 0.f;
  for (int i = lane; i < packs; i += 32) {
    const auto a = detail::load_pack(xr + i * P);
#pragma unroll
    for (int j = 0; j < P; ++j) {
      const float d = detail::to_f32(a.v[j]) - mu;
      v += d * d;
    }
  }
  for (int j = packs * P + lane; j < D; j += 32) {
    const float d = detail::to_f32(xr[j]) - mu;
    v += d * d;
  }
  const float rs = 1.f / sqrtf(detail::warp_sum(v) / static_cast<float>(D) + eps);
  if (lane == 0) {
    if (mean) mean[row] = mu;
    if (rstd) rstd[row] = rs;
  }

  for (int i = lane; i < packs; i += 32) {
    const auto a = detail::load_pack(xr + i * P);
    detail::Pack<S> o;
    if (w) {
      const auto wp = detail::load_pack(w + i * P);
      if (b) {
        const auto bp = detail::load_pack(b + i * P);
#pragma unroll
        for (int j = 0; j < P; ++j)
          o.v[j] = detail::from_f32<S>((detail::to_f32(a.v[j]) - mu) * rs * detail::to_f32(wp.v[j]) + detail::to_f32(bp.v[j]));
      } else {
#pragma unroll
        for (int j = 0; j < P; ++j) o.v[j] = detail::from_f32<S>((detail::to_f32(a.v[j]) - mu) * rs * detail::to_f32(wp.v[j]));
      }
    } else {
#pragma unroll
      for (int j = 0; j < P; ++j) {
        const float h = (detail::to_f32(a.v[j]) - mu) * rs;
        o.v[j] = detail::from_f32<S>(b ? h + detail::to_f32(b[i * P + j]) : h);
      }
    }
    detail::store_pack(yr + i * P, o);
  }
  for (int j = packs * P + lane; j < D; j += 32) {
    float h = (detail::to_f32(xr[j]) - mu) * rs;
    if (w) h *= detail::to_f32(w[j]);
    if (b) h += detail::to_f32(b[j]);
    yr[j] = detail::from_f32<S>(h);
  }
}

template <class S>
__global__ void __launch_bounds__(32 * detail::kLnRowsPerBlock)
    layer_norm_fwd(const S* __restrict__ x, const S* __restrict__ w, const S* __restrict__ b, S* __restrict__ y,
                   float* __restrict__ mean, float* __restrict__ rstd, index_t M, int D, float eps, bool vec) {
  const int lane = threadIdx.x & 31;
  const index_t row = static_cast<index_t>(blockIdx.x) * detail::kLnRowsPerBlock + (threadIdx.x >> 5);
  if (row >= M) return;
  const S* xr = x + row * D;
  constexpr int P = detail::Pack<S>::size;
  const int packs = vec ? D / P : 0;

  float s = 0.f;
  for (int i = lane; i < packs; i += 32) {
    const auto a = detail::load_pack(xr + i * P);
#pragma unroll
    for (int j = 0; j < P; ++j) s += detail::to_f32(a.v[j]);
  }
  for (int j = packs * P + lane; j < D; j += 32) s += detail::to_f32(xr[j]);
  const float mu = detail::warp_sum(s) / static_cast<float>(D);
  layer_norm_row_finish(xr, mu, w, b, y + row * D, mean, rstd, row, D, eps, vec, lane);
}

/// The residual add fused into the following LayerNorm: s = a + r (stored, rounded to S as a
/// separate add would store it), then y = LayerNorm(s). s may alias a or r (the block adds in place);
/// every lane re-reads only the elements it wrote itself, so no barrier is needed between the passes.
template <class S>
__global__ void __launch_bounds__(32 * detail::kLnRowsPerBlock)
    add_layer_norm_fwd(const S* a, const S* r, S* sum, const S* __restrict__ w, const S* __restrict__ b,
                       S* __restrict__ y, float* __restrict__ mean, float* __restrict__ rstd, index_t M, int D, float eps,
                       bool vec) {
  const int lane = threadIdx.x & 31;
  const index_t row = static_cast<index_t>(blockIdx.x) * detail::kLnRowsPerBlock + (threadIdx.x >> 5);
  if (row >= M) return;
  const S* ar = a + row * D;
  const S* rr = r + row * D;
  S* sr = sum + row * D;
  constexpr int P = detail::Pack<S>::size;
  const int packs = vec ? D / P : 0;

  float s = 0.f;
  for (int i = lane; i < packs; i += 32) {
    const auto pa = detail::load_pack(ar + i * P), pr = detail::load_pack(rr + i * P);
    detail::Pack<S> o;
#pragma unroll
    for (int j = 0; j < P; ++j) {
      o.v[j] = detail::from_f32<S>(detail::to_f32(pa.v[j]) + detail::to_f32(pr.v[j]));
      s += detail::to_f32(o.v[j]);
    }
    detail::store_pack(sr + i * P, o);
  }
  for (int j = packs * P + lane; j < D; j += 32) {
    const S v = detail::from_f32<S>(detail::to_f32(ar[j]) + detail::to_f32(rr[j]));
    sr[j] = v;
    s += detail::to_f32(v);
  }
  const float mu = detail::warp_sum(s) / static_cast<float>(D);
  layer_norm_row_finish<S>(sr, mu, w, b, y + row * D, mean, rstd, row, D, eps, vec, lane);
}

template <class S>
__global__ void __launch_bounds__(32 * detail::kLnRowsPerBlock)
    layer_norm_bwd_dx(const S* __restrict__ x, const S* __restrict__ w, const float* __restrict__ mean,
                      const float* __restrict__ rstd, const S* __restrict__ dy, S* __restrict__ dx, index_t M, int D,
                      bool accumulate, bool vec) {
  const int lane = threadIdx.x & 31;
  const index_t row = static_cast<index_t>(blockIdx.x) * detail::kLnRowsPerBlock + (threadIdx.x >> 5);
  if (row >= M) return;
  const S* xr = x + row * D;
  const S* dyr = dy + row * D;
  S* dxr = dx + row * D;
  const float mu = mean[row], rs = rstd[row];
  constexpr int P = detail::Pack<S>::size;
  const int packs = vec ? D / P : 0;

  // Pass 1: Σ g and Σ g·x̂.
  float sg = 0.f, sgx = 0.f;
  for (int i = lane; i < packs; i += 32) {
    const auto a = detail::load_pack(xr + i * P), d = detail::load_pack(dyr + i * P);
    detail::Pack<S> wp;
    if (w) wp = detail::load_pack(w + i * P);
#pragma unroll
    for (int j = 0; j < P; ++j) {
      const float g = w ? detail::to_f32(d.v[j]) * detail::to_f32(wp.v[j]) : detail::to_f32(d.v[j]);
      sg += g;
      sgx += g * (detail::to_f32(a.v[j]) - mu) * rs;
    }
  }
  for (int j = packs * P + lane; j < D; j += 32) {
    const float g = w ? detail::to_f32(dyr[j]) * detail::to_f32(w[j]) : detail::to_f32(dyr[j]);
    sg += g;
    sgx += g * (detail::to_f32(xr[j]) - mu) * rs;
  }
  const float mg = detail::warp_sum(sg) / static_cast<float>(D);
  const float mgx = detail::warp_sum(sgx) / static_cast<float>(D);

  // Pass 2: dx = r·(g − mean(g) − x̂·mean(g·x̂)).
  for (int i = lane; i < packs; i += 32) {
    const auto a = detail::load_pack(xr + i * P), d = detail::load_pack(dyr + i * P);
    detail::Pack<S> wp, o;
    if (w) wp = detail::load_pack(w + i * P);
    if (accumulate) o = detail::load_pack(dxr + i * P);
#pragma unroll
    for (int j = 0; j < P; ++j) {
      const float g = w ? detail::to_f32(d.v[j]) * detail::to_f32(wp.v[j]) : detail::to_f32(d.v[j]);
      const float v = rs * (g - mg - (detail::to_f32(a.v[j]) - mu) * rs * mgx);
      o.v[j] = detail::from_f32<S>(accumulate ? detail::to_f32(o.v[j]) + v : v);
    }
    detail::store_pack(dxr + i * P, o);
  }
  for (int j = packs * P + lane; j < D; j += 32) {
    const float g = w ? detail::to_f32(dyr[j]) * detail::to_f32(w[j]) : detail::to_f32(dyr[j]);
    const float v = rs * (g - mg - (detail::to_f32(xr[j]) - mu) * rs * mgx);
    dxr[j] = detail::from_f32<S>(accumulate ? detail::to_f32(dxr[j]) + v : v);
  }
}

/// Partial column sums over one chunk of rows: pw[c, j] = Σ_r dy·x̂, pb[c, j] = Σ_r dy.
/// Block (32, 8): threadIdx.x is the column (coalesced), threadIdx.y strides the chunk's rows; the 8
/// row lanes are combined in fixed order through shared memory.
template <class S>
__global__ void __launch_bounds__(detail::kLnColTile * detail::kLnRowLanes)
    layer_norm_bwd_partials(const S* __restrict__ x, const float* __restrict__ mean, const float* __restrict__ rstd,
                            const S* __restrict__ dy, float* __restrict__ pw, float* __restrict__ pb, index_t M, int D,
                            index_t rows_per_chunk) {
  __shared__ float sw[detail::kLnRowLanes][detail::kLnColTile + 1];
  __shared__ float sb[detail::kLnRowLanes][detail::kLnColTile + 1];
  const int col = blockIdx.x * detail::kLnColTile + threadIdx.x;
  const index_t chunk = blockIdx.y;
  const index_t r0 = chunk * rows_per_chunk;
  const index_t r1 = r0 + rows_per_chunk < M ? r0 + rows_per_chunk : M;
  float aw = 0.f, ab = 0.f;
  if (col < D) {
    for (index_t r = r0 + threadIdx.y; r < r1; r += detail::kLnRowLanes) {
      const float d = detail::to_f32(dy[r * D + col]);
      aw += d * (detail::to_f32(x[r * D + col]) - mean[r]) * rstd[r];
      ab += d;
    }
  }
  sw[threadIdx.y][threadIdx.x] = aw;
  sb[threadIdx.y][threadIdx.x] = ab;
  __syncthreads();
  if (threadIdx.y == 0 && col < D) {
    float tw = 0.f, tb = 0.f;
#pragma unroll
    for (int k = 0; k < detail::kLnRowLanes; ++k) {
      tw += sw[k][threadIdx.x];
      tb += sb[k][threadIdx.x];
    }
    pw[chunk * D + col] = tw;
    pb[chunk * D + col] = tb;
  }
}

/// dw[j] += Σ_c pw[c, j], db[j] += Σ_c pb[c, j], chunks in order (deterministic).
template <int = 0>  // a template, so the header may be included by many TUs (ODR)
__global__ void layer_norm_bwd_finalize(const float* __restrict__ pw, const float* __restrict__ pb,
                                               float* __restrict__ dw, float* __restrict__ db, index_t chunks, int D) {
  const int col = blockIdx.x * blockDim.x + threadIdx.x;
  if (col >= D) return;
  float tw = 0.f, tb = 0.f;
  for (index_t c = 0; c < chunks; ++c) {
    tw += pw[c * D + col];
    tb += pb[c * D + col];
  }
  if (dw) dw[col] += tw;
  if (db) db[col] += tb;
}

}  // namespace kernels

namespace detail {
inline void check_ln_shape(index_t M, index_t D, const char* op) {
  require_extent(M, 0, op, "M (rows)");
  require_extent(D, 1, op, "D (normalised width)");
  if (D > (index_t{1} << 30))
    throw ShapeError(jepa::detail::cat("jepa: ", op, ": D = ", D, " is invalid: must be < 2^30"));
}
}  // namespace detail

/// y = LayerNorm(x; w, b) over rows of the (M, D) matrix x; mean/rstd (M, fp32) saved when non-null.
template <DeviceReal T>
void layer_norm_forward(const T* x, const T* w, const T* b, T* y, float* mean, float* rstd, index_t M, index_t D,
                        float eps, cudaStream_t stream) {
  constexpr const char* op = "cuda::layer_norm_forward";
  detail::check_ln_shape(M, D, op);
  if (!(eps >= 0.f)) throw ConfigError(jepa::detail::cat("jepa: ", op, ": eps = ", eps, " is invalid: must be >= 0"));
  if (M == 0) return;
  detail::require_pointer(x, op, "x");
  detail::require_pointer(y, op, "y");
  constexpr int P = detail::Pack<device_t<T>>::size;
  const bool vec = D % P == 0 && detail::aligned16(x) && detail::aligned16(y) && (!w || detail::aligned16(w)) &&
                   (!b || detail::aligned16(b));
  const unsigned blocks = static_cast<unsigned>((M + detail::kLnRowsPerBlock - 1) / detail::kLnRowsPerBlock);
  kernels::layer_norm_fwd<<<blocks, 32 * detail::kLnRowsPerBlock, 0, stream>>>(
      dev(x), dev(w), dev(b), dev(y), mean, rstd, M, static_cast<int>(D), eps, vec);
  JEPA_CUDA_CHECK_LAUNCH("cuda::layer_norm_forward");
}

/// sum = a + r, then y = LayerNorm(sum; w, b) in one pass over the rows (the pre-norm block's residual
/// add fused into the next LayerNorm; reads a and r and writes sum and y once, where add +
/// layer_norm_forward read sum again). sum may alias a or r; y must alias none of them. The values
/// equal add() followed by layer_norm_forward() bit for bit.
template <DeviceReal T>
void add_layer_norm_forward(const T* a, const T* r, T* sum, const T* w, const T* b, T* y, float* mean, float* rstd,
                            index_t M, index_t D, float eps, cudaStream_t stream) {
  constexpr const char* op = "cuda::add_layer_norm_forward";
  detail::check_ln_shape(M, D, op);
  if (!(eps >= 0.f)) throw ConfigError(jepa::detail::cat("jepa: ", op, ": eps = ", eps, " is invalid: must be >= 0"));
  if (M == 0) return;
  detail::require_pointer(a, op, "a");
  detail::require_pointer(r, op, "r");
  detail::require_pointer(sum, op, "sum");
  detail::require_pointer(y, op, "y");
  if (y == sum || y == a || y == r)
    throw ShapeError(jepa::detail::cat("jepa: ", op, ": y aliases an input or sum; only sum may alias a or r"));
  constexpr int P = detail::Pack<device_t<T>>::size;
  const bool vec = D % P == 0 && detail::aligned16(a) && detail::aligned16(r) && detail::aligned16(sum) &&
                   detail::aligned16(y) && (!w || detail::aligned16(w)) && (!b || detail::aligned16(b));
  const unsigned blocks = static_cast<unsigned>((M + detail::kLnRowsPerBlock - 1) / detail::kLnRowsPerBlock);
  kernels::add_layer_norm_fwd<<<blocks, 32 * detail::kLnRowsPerBlock, 0, stream>>>(
      dev(a), dev(r), dev(sum), dev(w), dev(b), dev(y), mean, rstd, M, static_cast<int>(D), eps, vec);
  JEPA_CUDA_CHECK_LAUNCH("cuda::add_layer_norm_forward");
}

/// The backward of layer_norm_forward (see the header comment). dx, dw, db may each be null
/// (skipped); `workspace` (layer_norm_backward_workspace_bytes(M, D) bytes) is needed when dw or db is.
template <DeviceReal T>
void layer_norm_backward(const T* x, const T* w, const float* mean, const float* rstd, const T* dy, T* dx, float* dw,
                         float* db, index_t M, index_t D, bool accumulate_dx, void* workspace,
                         std::size_t workspace_bytes, cudaStream_t stream) {
  constexpr const char* op = "cuda::layer_norm_backward";
  detail::check_ln_shape(M, D, op);
  if (M == 0) return;
  detail::require_pointer(x, op, "x");
  detail::require_pointer(mean, op, "mean");
  detail::require_pointer(rstd, op, "rstd");
  detail::require_pointer(dy, op, "dy");
  if (dw || db) {
    detail::require_pointer(workspace, op, "workspace");
    const std::size_t need = layer_norm_backward_workspace_bytes(M, D);
    if (workspace_bytes < need)
      throw ShapeError(jepa::detail::cat("jepa: ", op, ": workspace of ", workspace_bytes, " bytes is too small: (M, D) = (", M,
                                         ", ", D, ") needs layer_norm_backward_workspace_bytes = ", need));
  }
  if (dx) {
    constexpr int P = detail::Pack<device_t<T>>::size;
    const bool vec = D % P == 0 && detail::aligned16(x) && detail::aligned16(dy) && detail::aligned16(dx) &&
                     (!w || detail::aligned16(w));
    const unsigned blocks = static_cast<unsigned>((M + detail::kLnRowsPerBlock - 1) / detail::kLnRowsPerBlock);
    kernels::layer_norm_bwd_dx<<<blocks, 32 * detail::kLnRowsPerBlock, 0, stream>>>(
        dev(x), dev(w), mean, rstd, dev(dy), dev(dx), M, static_cast<int>(D), accumulate_dx, vec);
    JEPA_CUDA_CHECK_LAUNCH("cuda::layer_norm_backward (dx)");
  }
  if (dw || db) {
    const index_t rows = detail::ln_rows_per_chunk(M), chunks = detail::ln_chunks(M);
    float* pw = static_cast<float*>(workspace);
    float* pb = pw + chunks * D;
    const dim3 grid(static_cast<unsigned>((D + detail::kLnColTile - 1) / detail::kLnColTile), static_cast<unsigned>(chunks));
    kernels::layer_norm_bwd_partials<<<grid, dim3(detail::kLnColTile, detail::kLnRowLanes), 0, stream>>>(
        dev(x), mean, rstd, dev(dy), pw, pb, M, static_cast<int>(D), rows);
    JEPA_CUDA_CHECK_LAUNCH("cuda::layer_norm_backward (dw/db partials)");
    kernels::layer_norm_bwd_finalize<><<<static_cast<unsigned>((D + 255) / 256), 256, 0, stream>>>(pw, pb, dw, db, chunks,
                                                                                                 static_cast<int>(D));
    JEPA_CUDA_CHECK_LAUNCH("cuda::layer_norm_backward (dw/db)");
  }
}

}  // namespace jepa::backend::cuda
