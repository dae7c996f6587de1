// jepa/backend/cuda/losses.cuh — the JEPA objective on the device: the masked level loss of
// losses/objective.hpp and the 2.1 context distance weights of losses/context_weights.hpp.
//
//   level_loss = Σ_{b,k} ω_bk · Σ_l w_l · Σ_c ρ(ẑ[b,k,l·D+c] − h_l[b, idx[b,k], c])  / (B·K·D)
//   ∂/∂ẑ[b,k,l·D+c] = scale · w_l · ω_bk · ρ'(·) / (B·K·D)                 (written, not accumulated)
//   ω_bc = 1/√dist_bc,  dist_bc = min_t ‖grid(c) − grid(t)‖₂ over the targets t of sample b
// ρ / ρ' are the policy's JEPA_HOST_DEVICE formulas (losses.hpp: L1, SmoothL1, L2), evaluated in
// double exactly as on the CPU.
//
// Agreement with the CPU. The gradient and the weights are elementwise expressions of the same double
// operations (the gradient is a product of five doubles, so there is nothing to fuse; the weights are
// exact integer arithmetic, then IEEE sqrt and division) and equal the CPU's bit for bit. The loss value is
// a sum: the CPU adds channels, levels and rows sequentially; here one warp reduces a row (lane-strided
// partial sums, then a butterfly) and one block sums the row values (thread-strided, then a tree).
// Both orders are fixed by the shape alone, so the value is bitwise reproducible run to run on the
// GPU (DESIGN.md decision 11), and it differs from the CPU's only by double rounding (~1e-15 relative).
// The value is left in device memory (`result`, one double), so a training step needs no host sync.
//
// Memory: every pointer is device memory except `targets` and `level_weights`, small host arrays of L
// entries passed by value to the kernel (at most kMaxLossLevels levels). `rows` is scratch of B·K
// doubles (level_loss_workspace_bytes).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "jepa/backend/cuda/common.cuh"
#include "jepa/backend/cuda/error.cuh"
#include "jepa/losses/losses.hpp"
#include "jepa/nn/rope.hpp"

namespace jepa::backend::cuda {

inline constexpr int kMaxLossLevels = 8;

/// Level target pointers and weights, by value (a kernel argument).
template <class T>
struct LossLevels {
  const T* target[kMaxLossLevels] = {};
  double weight[kMaxLossLevels] = {};
};

namespace kernels {

inline constexpr int kLossWarpsPerBlock = 8;

/// One warp per row r = (b, k): rows[r] = ω_r · Σ_l w_l · Σ_c ρ(d); dpred written when not null.
template <class T, class Rho>
__global__ void level_loss_rows(Rho rho, const T* __restrict__ pred, index_t rows_n, index_t K, index_t L, index_t D,
                                LossLevels<T> lv, index_t N, const std::int64_t* __restrict__ idx,
                                const T* __restrict__ omega, double grad_scale, const double* __restrict__ grad_scale_device,
                                double inv, T* __restrict__ dpred, double* __restrict__ rows, int* __restrict__ bad_index) {
  if (grad_scale_device) grad_scale *= *grad_scale_device;
  const index_t r = blockIdx.x * static_cast<index_t>(kLossWarpsPerBlock) + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (r >= rows_n) return;  // whole warps leave together (r is uniform across a warp)
  const index_t b = r / K;
  const std::int64_t n = idx[r];
  if (n < 0 || n >= N) {  // cannot be checked on the host without a sync: flag it, poison the row
    if (lane == 0) {
      atomicOr(bad_index, 1);
      rows[r] = __longlong_as_double(0x7ff8000000000000ll);  // NaN: the loss shows it
    }
    return;
  }
  const double om = omega ? static_cast<double>(omega[r]) : 1.0;
  double acc = 0;
  for (index_t l = 0; l < L; ++l) {
    const T* p = pred + r * L * D + l * D;
    const T* h = lv.target[l] + (b * N + n) * D;
    const double wl = lv.weight[l];
    double part = 0;
    for (index_t c = lane; c < D; c += 32) {
      const double d = static_cast<double>(p[c]) - static_cast<double>(h[c]);
      part += rho.value(d);
      if (dpred) dpred[r * L * D + l * D + c] = static_cast<T>(grad_scale * wl * om * rho.grad(d) * inv);
    }
    acc += wl * detail::warp_sum(part);
  }
  if (lane == 0) rows[r] = om * acc;
}

/// result = inv · Σ_r rows[r] (one block; thread-strided partials, then the block tree).
__global__ void sum_rows_scaled(const double* __restrict__ rows, index_t n, double inv, double* __restrict__ result) {
  __shared__ double scratch[32];
  double s = 0;
  for (index_t i = threadIdx.x; i < n; i += blockDim.x) s += rows[i];
  s = detail::block_sum(s, scratch);
  if (threadIdx.x == 0) *result = s * inv;
}

/// One thread per context token (b, k): ω = 1/√(√(min_t d²)), the CPU's expression.
template <class T>
__global__ void context_distance_weights(const std::int64_t* __restrict__ ctx, index_t Kc,
                                         const std::int64_t* __restrict__ tgt, index_t Kt, index_t B, index_t gh,
                                         index_t gw, T* __restrict__ weights, int* __restrict__ bad) {
  const index_t bk = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x;
  if (bk >= B * Kc) return;
  const index_t b = bk / Kc, hw = gh * gw;
  const std::int64_t c = ctx[bk];
  const double cd = static_cast<double>(c / hw), ch = static_cast<double>((c % hw) / gw),
               cw = static_cast<double>(c % gw);
  double best = __longlong_as_double(0x7ff0000000000000ll);  // +inf
  for (index_t k = 0; k < Kt; ++k) {
    const std::int64_t t = tgt[b * Kt + k];
    const double dd = static_cast<double>(t / hw) - cd, dh = static_cast<double>((t % hw) / gw) - ch,
                 dw = static_cast<double>(t % gw) - cw;
    // The CPU's dd·dd + dh·dh + dw·dw. The coordinates are small integers, so every product and sum
    // is exact in double whether or not a compiler fuses them: d2 equals the CPU's bit for bit.
    const double d2 = __dadd_rn(__dadd_rn(__dmul_rn(dd, dd), __dmul_rn(dh, dh)), __dmul_rn(dw, dw));
    if (d2 < best) best = d2;
  }
  if (!(best >= 1.0)) {
    atomicOr(bad, 1);
    weights[bk] = static_cast<T>(__longlong_as_double(0x7ff8000000000000ll));
    return;
  }
  weights[bk] = static_cast<T>(1.0 / sqrt(sqrt(best)));
}

}  // namespace kernels

/// Bytes of the `rows` scratch of level_loss for B·K rows.
inline std::size_t level_loss_workspace_bytes(index_t B, index_t K) {
  return static_cast<std::size_t>(B > 0 && K > 0 ? B * K : 0) * sizeof(double);
}

/// The level loss of losses::level_loss on the device. pred (B,K,L·D); targets[l] (B,N,D) per level
/// (host array of L device pointers); level_weights (host array of L); idx (B,K) device; omega (B,K)
/// device or null (1); dpred (B,K,L·D) or null. Writes *result (device double) and, when an index is
/// outside [0, N), sets *bad_index = 1 (device int; the caller zeroes it) and makes the loss NaN.
/// grad_scale_device, when not null, is a device double multiplied into grad_scale by the kernel: a
/// step-dependent factor (the 2.1 λ(step)) that a captured CUDA graph reads at replay time instead of
/// baking the value of the capturing step into its kernel arguments.
template <class T, class Rho>
void level_loss(const Rho& rho, const T* pred, index_t B, index_t K, index_t L, index_t D, const T* const* targets,
                const double* level_weights, index_t N, const std::int64_t* idx, const T* omega, double grad_scale,
                T* dpred, double* rows, std::size_t rows_bytes, double* result, int* bad_index, cudaStream_t stream,
                const double* grad_scale_device = nullptr) {
  static_assert(std::is_trivially_copyable_v<Rho>,
                "jepa: cuda::level_loss passes the distance rho to a kernel by value: pass the elementwise part "
                "(e.g. static_cast<const jepa::losses::L1&>(policy)), not a policy holding std::vector members");
  constexpr const char* op = "cuda::level_loss";
  detail::require_extent(B, 1, op, "B (batch)");
  detail::require_extent(K, 1, op, "K (tokens per sample)");
  detail::require_extent(L, 1, op, "L (levels)");
  if (L > kMaxLossLevels)
    throw ShapeError(jepa::detail::cat("jepa: ", op, ": L (levels) = ", L, " is invalid: at most ", kMaxLossLevels));
  detail::require_extent(D, 1, op, "D (channels per level)");
  detail::require_extent(N, 1, op, "N (target tokens per sample)");
  detail::require_pointer(pred, op, "pred");
  detail::require_pointer(idx, op, "idx");
  detail::require_pointer(result, op, "result");
  detail::require_pointer(bad_index, op, "bad_index");
  detail::require_pointer(targets, op, "targets (host array)");
  detail::require_pointer(level_weights, op, "level_weights (host array)");
  if (!rows || rows_bytes < level_loss_workspace_bytes(B, K))
    throw ShapeError(jepa::detail::cat("jepa: ", op, ": the rows workspace of ", rows ? rows_bytes : 0,
                                       " bytes is too small: level_loss_workspace_bytes = ",
                                       level_loss_workspace_bytes(B, K)));
  LossLevels<T> lv;
  for (index_t l = 0; l < L; ++l) {
    detail::require_pointer(targets[l], op, jepa::detail::cat("targets[", l, "]"));
    lv.target[l] = targets[l];
    lv.weight[l] = level_weights[l];
  }
  const index_t rows_n = B * K;
  const double inv = 1.0 / static_cast<double>(B * K * D);
  constexpr int warps = kernels::kLossWarpsPerBlock;
  kernels::level_loss_rows<T, Rho><<<static_cast<unsigned>((rows_n + warps - 1) / warps), 32 * warps, 0, stream>>>(
      rho, pred, rows_n, K, L, D, lv, N, idx, omega, grad_scale, grad_scale_device, inv, dpred, rows, bad_index);
  JEPA_CUDA_CHECK_LAUNCH("cuda::level_loss_rows");
  kernels::sum_rows_scaled<<<1, 1024, 0, stream>>>(rows, rows_n, inv, result);
  JEPA_CUDA_CHECK_LAUNCH("cuda::sum_rows_scaled");
}

/// ω (B,Kc) of losses::context_distance_weights on the device; ctx (B,Kc), tgt (B,Kt) device. A context
/// token that is also a target sets *bad = 1 (device int; the caller zeroes it) and gets ω = NaN.
template <class T>
void context_distance_weights(const std::int64_t* ctx, index_t Kc, const std::int64_t* tgt, index_t Kt, index_t B,
                              const nn::TokenGrid& grid, T* weights, int* bad, cudaStream_t stream) {
  constexpr const char* op = "cuda::context_distance_weights";
  detail::require_extent(B, 1, op, "B (batch)");
  detail::require_extent(Kc, 1, op, "Kc (context tokens)");
  if (Kt < 1) throw ShapeError("jepa: context distance weights need at least one target token per sample");
  if (grid.t < 1 || grid.h < 1 || grid.w < 1)
    throw ShapeError(jepa::detail::cat("jepa: ", op, ": TokenGrid = ", grid.t, "x", grid.h, "x", grid.w,
                                       " is invalid: every extent must be >= 1"));
  detail::require_pointer(ctx, op, "ctx");
  detail::require_pointer(tgt, op, "tgt");
  detail::require_pointer(weights, op, "weights");
  detail::require_pointer(bad, op, "bad");
  constexpr int threads = 128;
  kernels::context_distance_weights<T><<<static_cast<unsigned>((B * Kc + threads - 1) / threads), threads, 0, stream>>>(
      ctx, Kc, tgt, Kt, B, grid.h, grid.w, weights, bad);
  JEPA_CUDA_CHECK_LAUNCH("cuda::context_distance_weights");
}

}  // namespace jepa::backend::cuda
