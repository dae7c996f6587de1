// jepa/backend/cuda/elementwise.cuh — memory primitives, elementwise sums, row/column broadcasts and
// the SwiGLU gate, on a stream (the device twins of backend::Cpu's, backend/cpu/backend.hpp).
//
//   copy(src, dst, n)              dst = src                      (cudaMemcpyAsync; no-op when src == dst)
//   zero(p, n)                     p = 0                          (cudaMemsetAsync: all-zero bytes are +0)
//   axpy(α, x, y, n)               y += α·x
//   add(a, b, y, n)                y = a + b                      (y may alias a or b)
//   scale(α, y, n)                 y *= α
//   scale_matrix(β, C, M, N, ldc)  C = β·C on an (M, N) matrix of row stride ldc; β = 0 writes 0 and
//                                  does not read C (GEMM with K = 0, as Cpu::gemm)
//   add_row_vector(y, v, M, N)     y[r, :] += v                   (bias broadcast)
//   sum_rows_accumulate(x, acc, M, N, ws)  acc[j] += Σ_r x[r, j]   (bias gradient; deterministic)
//   swiglu_forward(a, b, y, n)     y = silu(a) ⊙ b
//   swiglu_backward(a, b, dy, da, db, n)   da = silu'(a)·b·dy, db = silu(a)·dy  (overwrite)
// silu/silu' are jepa::scalar's (backend/scalar.hpp), so CPU and GPU evaluate the same expression.
// Storage T is float or jepa::bf16; arithmetic is float, rounded once on store. Pointers are device
// memory (copy also accepts host pointers: cudaMemcpyDefault with unified addressing).
//
// Column sums without atomics. sum_rows_accumulate is the bias gradient of every linear layer; the
// library promises bitwise-reproducible gradients (DESIGN.md decision 11), so it reduces in a fixed
// order: rows are cut into chunks (≥ 64 rows, ≤ 512 chunks — a function of M only), a block of
// 32 columns × 8 row lanes sums one chunk (each lane its rows in increasing order, the 8 lanes in
// fixed order) into a (chunks, N) fp32 workspace, and one thread per column adds the chunks in order
// onto acc. One chunk (M ≤ 64) adds straight into acc, with no workspace.
//   Workspace: sum_rows_workspace_bytes(M, N) bytes of device memory.
#pragma once

#include "jepa/backend/cuda/activations.cuh"
#include "jepa/backend/cuda/common.cuh"
#include "jepa/backend/scalar.hpp"

namespace jepa::backend::cuda {

namespace detail {
inline constexpr int kColTile = 32;   // columns per block of the column-sum kernel
inline constexpr int kRowLanes = 8;   // row lanes per block of the column-sum kernel
/// Rows per chunk of the column reduction: at least 64, and at most 512 chunks.
inline index_t colsum_rows_per_chunk(index_t M) {
  const index_t by_count = (M + 511) / 512;
  return by_count > 64 ? by_count : 64;
}
inline index_t colsum_chunks(index_t M) { return M <= 0 ? 0 : (M + colsum_rows_per_chunk(M) - 1) / colsum_rows_per_chunk(M); }
}  // namespace detail

/// Device workspace sum_rows_accumulate needs: a (chunks, N) fp32 array, or nothing for M ≤ 64.
inline std::size_t sum_rows_workspace_bytes(index_t M, index_t N) {
  if (M <= 0 || N <= 0 || detail::colsum_chunks(M) <= 1) return 0;
  return static_cast<std::size_t>(detail::colsum_chunks(M) * N) * sizeof(float);
}

namespace kernels {

struct AddOp {
  __device__ float operator()(float a, float b) const { return a + b; }
};
/// y ← y + α·x, as binary_map(x, y, y): the second argument is the old y.
struct AxpyOp {
  float alpha;
  __device__ float operator()(float x, float y) const { return y + alpha * x; }
};
struct ScaleOp {
  float alpha;
  __device__ float operator()(float y) const { return y * alpha; }
};
struct SwigluOp {
  __device__ float operator()(float a, float b) const { return scalar::silu(a) * b; }
};

/// da = silu'(a)·b·dy, db = silu(a)·dy (da, db may alias dy, but not each other).
template <class S>
__global__ void swiglu_bwd(const S* a, const S* b, const S* dy, S* da, S* db, index_t n, bool vec) {
  const index_t tid = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x;
  const index_t stride = static_cast<index_t>(gridDim.x) * blockDim.x;
  constexpr int P = detail::Pack<S>::size;
  index_t done = 0;
  if (vec) {
    const index_t packs = n / P;
    for (index_t i = tid; i < packs; i += stride) {
      const auto pa = detail::load_pack(a + i * P), pb = detail::load_pack(b + i * P), pg = detail::load_pack(dy + i * P);
      detail::Pack<S> oa, ob;
#pragma unroll
      for (int j = 0; j < P; ++j) {
        const float ai = detail::to_f32(pa.v[j]), bi = detail::to_f32(pb.v[j]), g = detail::to_f32(pg.v[j]);
        oa.v[j] = detail::from_f32<S>(scalar::silu_grad(ai) * bi * g);
        ob.v[j] = detail::from_f32<S>(scalar::silu(ai) * g);
      }
      detail::store_pack(da + i * P, oa);
      detail::store_pack(db + i * P, ob);
    }
    done = packs * P;
  }
  for (index_t i = done + tid; i < n; i += stride) {
    const float ai = detail::to_f32(a[i]), bi = detail::to_f32(b[i]), g = detail::to_f32(dy[i]);
    da[i] = detail::from_f32<S>(scalar::silu_grad(ai) * bi * g);
    db[i] = detail::from_f32<S>(scalar::silu(ai) * g);
  }
}

/// y[r, j] += v[j] over an (M, N) row-major matrix; vector path when N is a whole number of packs.
template <class S>
__global__ void add_row_vector(S* __restrict__ y, const S* __restrict__ v, index_t M, index_t N, bool vec) {
  const index_t tid = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x;
  const index_t stride = static_cast<index_t>(gridDim.x) * blockDim.x;
  constexpr int P = detail::Pack<S>::size;
  if (vec) {
    const index_t per_row = N / P, packs = M * per_row;
    for (index_t i = tid; i < packs; i += stride) {
      const index_t j = (i % per_row) * P;
      S* yp = y + (i / per_row) * N + j;
      auto a = detail::load_pack(yp);
      const auto b = detail::load_pack(v + j);
#pragma unroll
      for (int k = 0; k < P; ++k) a.v[k] = detail::from_f32<S>(detail::to_f32(a.v[k]) + detail::to_f32(b.v[k]));
      detail::store_pack(yp, a);
    }
    return;
  }
  for (index_t e = tid; e < M * N; e += stride)
    y[e] = detail::from_f32<S>(detail::to_f32(y[e]) + detail::to_f32(v[e % N]));
}

/// C[r, j] = β·C[r, j] on an (M, N) matrix with row stride ldc; β = 0 stores 0 without reading C.
template <class S>
__global__ void scale_matrix(S* C, index_t M, index_t N, index_t ldc, float beta) {
  const index_t tid = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x;
  const index_t stride = static_cast<index_t>(gridDim.x) * blockDim.x;
  for (index_t e = tid; e < M * N; e += stride) {
    S* c = C + (e / N) * ldc + e % N;
    *c = detail::from_f32<S>(beta == 0.f ? 0.f : beta * detail::to_f32(*c));
  }
}

/// Column sums of one chunk of rows (see the header comment). Block (32, 8): threadIdx.x is the
/// column (coalesced loads), threadIdx.y the row lane. With `acc` non-null (a single chunk) the sum
/// is added onto acc; otherwise it is stored to part[chunk, col].
template <class S, class A>
__global__ void __launch_bounds__(detail::kColTile * detail::kRowLanes)
    column_sum_partials(const S* __restrict__ x, float* __restrict__ part, A* __restrict__ acc, index_t M, int N,
                        index_t rows_per_chunk) {
  __shared__ float s[detail::kRowLanes][detail::kColTile + 1];
  const int col = blockIdx.x * detail::kColTile + threadIdx.x;
  const index_t chunk = blockIdx.y;
  const index_t r0 = chunk * rows_per_chunk;
  const index_t r1 = r0 + rows_per_chunk < M ? r0 + rows_per_chunk : M;
  float a = 0.f;
  if (col < N)
    for (index_t r = r0 + threadIdx.y; r < r1; r += detail::kRowLanes) a += detail::to_f32(x[r * N + col]);
  s[threadIdx.y][threadIdx.x] = a;
  __syncthreads();
  if (threadIdx.y == 0 && col < N) {
    float t = 0.f;
#pragma unroll
    for (int k = 0; k < detail::kRowLanes; ++k) t += s[k][threadIdx.x];
    if (acc) acc[col] = detail::from_f32<A>(detail::to_f32(acc[col]) + t);
    else part[chunk * N + col] = t;
  }
}

/// acc[j] += Σ_c part[c, j], chunks in increasing order (deterministic).
template <class A>
__global__ void column_sum_finalize(const float* __restrict__ part, A* __restrict__ acc, index_t chunks, int N) {
  const int col = blockIdx.x * blockDim.x + threadIdx.x;
  if (col >= N) return;
  float t = 0.f;
  for (index_t c = 0; c < chunks; ++c) t += part[c * N + col];
  acc[col] = detail::from_f32<A>(detail::to_f32(acc[col]) + t);
}

}  // namespace kernels

namespace detail {
/// Launch geometry of an elementwise kernel over n elements (packs when vec).
template <class T>
inline unsigned elementwise_grid(index_t n, bool vec) {
  constexpr int P = Pack<device_t<T>>::size;
  return grid_for(vec ? (n + P - 1) / P : n, kElementwiseThreads);
}
}  // namespace detail

/// dst = src over n elements (device or host pointers; stream-ordered).
template <class T>
void copy(const T* src, T* dst, index_t n, cudaStream_t stream) {
  detail::require_extent(n, 0, "cuda::copy", "n");
  if (n == 0 || src == dst) return;
  detail::require_pointer(src, "cuda::copy", "src");
  detail::require_pointer(dst, "cuda::copy", "dst");
  JEPA_CUDA_CHECK(cudaMemcpyAsync(dst, src, static_cast<std::size_t>(n) * sizeof(T), cudaMemcpyDefault, stream));
}

/// p = 0 over n elements (all-zero bytes are +0 for float and bf16).
template <class T>
void zero(T* p, index_t n, cudaStream_t stream) {
  detail::require_extent(n, 0, "cuda::zero", "n");
  if (n == 0) return;
  detail::require_pointer(p, "cuda::zero", "p");
  JEPA_CUDA_CHECK(cudaMemsetAsync(p, 0, static_cast<std::size_t>(n) * sizeof(T), stream));
}

/// y += α·x over n elements.
template <DeviceReal T>
void axpy(float alpha, const T* x, T* y, index_t n, cudaStream_t stream) {
  constexpr const char* op = "cuda::axpy";
  detail::require_extent(n, 0, op, "n");
  if (n == 0) return;
  detail::require_pointer(x, op, "x");
  detail::require_pointer(y, op, "y");
  const bool vec = detail::aligned16(x) && detail::aligned16(y);
  kernels::binary_map<<<detail::elementwise_grid<T>(n, vec), kElementwiseThreads, 0, stream>>>(
      dev(x), static_cast<const device_t<T>*>(dev(y)), dev(y), n, vec, kernels::AxpyOp{alpha});
  JEPA_CUDA_CHECK_LAUNCH("cuda::axpy");
}

/// y = a + b over n elements (y may alias a or b).
template <DeviceReal T>
void add(const T* a, const T* b, T* y, index_t n, cudaStream_t stream) {
  constexpr const char* op = "cuda::add";
  detail::require_extent(n, 0, op, "n");
  if (n == 0) return;
  detail::require_pointer(a, op, "a");
  detail::require_pointer(b, op, "b");
  detail::require_pointer(y, op, "y");
  const bool vec = detail::aligned16(a) && detail::aligned16(b) && detail::aligned16(y);
  kernels::binary_map<<<detail::elementwise_grid<T>(n, vec), kElementwiseThreads, 0, stream>>>(dev(a), dev(b), dev(y), n,
                                                                                                 vec, kernels::AddOp{});
  JEPA_CUDA_CHECK_LAUNCH("cuda::add");
}

/// y *= α over n elements.
template <DeviceReal T>
void scale(float alpha, T* y, index_t n, cudaStream_t stream) {
  constexpr const char* op = "cuda::scale";
  detail::require_extent(n, 0, op, "n");
  if (n == 0) return;
  detail::require_pointer(y, op, "y");
  const bool vec = detail::aligned16(y);
  kernels::unary_map<<<detail::elementwise_grid<T>(n, vec), kElementwiseThreads, 0, stream>>>(
      static_cast<const device_t<T>*>(dev(y)), dev(y), n, vec, kernels::ScaleOp{alpha});
  JEPA_CUDA_CHECK_LAUNCH("cuda::scale");
}

/// C = β·C on an (M, N) matrix with row stride ldc ≥ N; β = 0 stores zeros without reading C.
template <DeviceReal T>
void scale_matrix(float beta, T* C, index_t M, index_t N, index_t ldc, cudaStream_t stream) {
  constexpr const char* op = "cuda::scale_matrix";
  detail::require_extent(M, 0, op, "M");
  detail::require_extent(N, 0, op, "N");
  if (M == 0 || N == 0) return;
  detail::require_extent(ldc, N, op, "ldc");
  detail::require_pointer(C, op, "C");
  kernels::scale_matrix<<<detail::grid_for(M * N, kElementwiseThreads), kElementwiseThreads, 0, stream>>>(dev(C), M, N,
                                                                                                         ldc, beta);
  JEPA_CUDA_CHECK_LAUNCH("cuda::scale_matrix");
}

/// y[r, :] += v for every row r of the (M, N) row-major matrix y.
template <DeviceReal T>
void add_row_vector(T* y, const T* v, index_t M, index_t N, cudaStream_t stream) {
  constexpr const char* op = "cuda::add_row_vector";
  detail::require_extent(M, 0, op, "M");
  detail::require_extent(N, 0, op, "N");
  if (M == 0 || N == 0) return;
  detail::require_pointer(y, op, "y");
  detail::require_pointer(v, op, "v");
  constexpr int P = detail::Pack<device_t<T>>::size;
  const bool vec = N % P == 0 && detail::aligned16(y) && detail::aligned16(v);
  kernels::add_row_vector<<<detail::elementwise_grid<T>(M * N, vec), kElementwiseThreads, 0, stream>>>(dev(y), dev(v), M,
                                                                                                       N, vec);
  JEPA_CUDA_CHECK_LAUNCH("cuda::add_row_vector");
}

/// acc[j] += Σ_r x[r, j] over the (M, N) row-major matrix x, in a fixed order (see the header
/// comment). A: float (fp32 gradients of bf16 activations) or T. `workspace` holds
/// sum_rows_workspace_bytes(M, N) bytes (may be null when that is 0).
template <DeviceReal T, class A>
void sum_rows_accumulate(const T* x, A* acc, index_t M, index_t N, void* workspace, std::size_t workspace_bytes,
                         cudaStream_t stream) {
  static_assert(std::is_same_v<A, float> || std::is_same_v<A, T>, "jepa: cuda::sum_rows_accumulate: acc is float or T");
  constexpr const char* op = "cuda::sum_rows_accumulate";
  detail::require_extent(M, 0, op, "M (rows)");
  detail::require_extent(N, 0, op, "N (columns)");
  if (N > (index_t{1} << 30)) throw ShapeError(jepa::detail::cat("jepa: ", op, ": N = ", N, " is invalid: must be < 2^30"));
  if (M == 0 || N == 0) return;
  detail::require_pointer(x, op, "x");
  detail::require_pointer(acc, op, "acc");
  const index_t rows = detail::colsum_rows_per_chunk(M), chunks = detail::colsum_chunks(M);
  const std::size_t need = sum_rows_workspace_bytes(M, N);
  if (need > 0) {
    detail::require_pointer(workspace, op, "workspace");
    if (workspace_bytes < need)
      throw ShapeError(jepa::detail::cat("jepa: ", op, ": workspace of ", workspace_bytes, " bytes is too small: (M, N) = (",
                                         M, ", ", N, ") needs sum_rows_workspace_bytes = ", need));
  }
  const dim3 grid(static_cast<unsigned>((N + detail::kColTile - 1) / detail::kColTile), static_cast<unsigned>(chunks));
  float* part = static_cast<float*>(workspace);
  kernels::column_sum_partials<<<grid, dim3(detail::kColTile, detail::kRowLanes), 0, stream>>>(
      dev(x), need > 0 ? part : nullptr, need > 0 ? nullptr : dev(acc), M, static_cast<int>(N), rows);
  JEPA_CUDA_CHECK_LAUNCH("cuda::sum_rows_accumulate (partials)");
  if (need > 0) {
    kernels::column_sum_finalize<<<static_cast<unsigned>((N + 255) / 256), 256, 0, stream>>>(part, dev(acc), chunks,
                                                                                             static_cast<int>(N));
    JEPA_CUDA_CHECK_LAUNCH("cuda::sum_rows_accumulate (finalize)");
  }
}

/// y = silu(a) ⊙ b over n elements.
template <DeviceReal T>
void swiglu_forward(const T* a, const T* b, T* y, index_t n, cudaStream_t stream) {
  constexpr const char* op = "cuda::swiglu_forward";
  detail::require_extent(n, 0, op, "n");
  if (n == 0) return;
  detail::require_pointer(a, op, "a");
  detail::require_pointer(b, op, "b");
  detail::require_pointer(y, op, "y");
  const bool vec = detail::aligned16(a) && detail::aligned16(b) && detail::aligned16(y);
  kernels::binary_map<<<detail::elementwise_grid<T>(n, vec), kElementwiseThreads, 0, stream>>>(dev(a), dev(b), dev(y), n,
                                                                                                 vec, kernels::SwigluOp{});
  JEPA_CUDA_CHECK_LAUNCH("cuda::swiglu_forward");
}

/// da = silu'(a)·b·dy, db = silu(a)·dy over n elements (overwrite; da and db must not alias).
template <DeviceReal T>
void swiglu_backward(const T* a, const T* b, const T* dy, T* da, T* db, index_t n, cudaStream_t stream) {
  constexpr const char* op = "cuda::swiglu_backward";
  detail::require_extent(n, 0, op, "n");
  if (n == 0) return;
  detail::require_pointer(a, op, "a");
  detail::require_pointer(b, op, "b");
  detail::require_pointer(dy, op, "dy");
  detail::require_pointer(da, op, "da");
  detail::require_pointer(db, op, "db");
  if (da == db) throw ShapeError("jepa: cuda::swiglu_backward: `da` and `db` are the same buffer (each needs its own)");
  const bool vec = detail::aligned16(a) && detail::aligned16(b) && detail::aligned16(dy) && detail::aligned16(da) &&
                   detail::aligned16(db);
  kernels::swiglu_bwd<<<detail::elementwise_grid<T>(n, vec), kElementwiseThreads, 0, stream>>>(dev(a), dev(b), dev(dy),
                                                                                                dev(da), dev(db), n, vec);
  JEPA_CUDA_CHECK_LAUNCH("cuda::swiglu_backward");
}

}  // namespace jepa::backend::cuda
