// jepa/backend/cuda/masks.cuh — the V-JEPA / V-JEPA 2 / 2.1 3-D multi-block masks drawn on the device,
// identical bit for bit to masking::Multiblock3d on the CPU (DESIGN.md decision 11: masks come from a
// counter-based RNG keyed by (seed, step, sample), so CPU and GPU draw the same masks).
//
// What is shared. The per-sample draw is inherently sequential (redraw the whole set of blocks until
// a context token remains), so the kernel runs it one thread per sample with the very same
// JEPA_HOST_DEVICE code the CPU runs: Rng (core/rng.hpp, Philox-4x32-10), mask_rng(seed, step,
// sample, generator) (masking/mask.hpp) and masking::detail::multiblock3d_attempt (multiblock.hpp).
// The per-batch block size t×h×w is computed on the host by Multiblock3d::checked_block_size (three
// doubles from the per-batch stream and a square root: the same host code as the CPU path, and it
// validates the size), then passed to the kernel.
//
// Two launches per generator (all enqueued on `stream`, nothing synchronises with the host):
//   multiblock3d_draw   thread b: r = mask_rng(seed, step, first + b, g); up to kMaxRedraws attempts;
//                       masked (count, N) bytes; untruncated, ascending context and target lists
//                       (count, N) int64 (row b's first lengths[2b] / lengths[2b+1] entries valid).
//                       A row whose blocks cover the grid kMaxRedraws times sets *failed = 1 (the CPU
//                       throws ConfigError there; read *failed after the step to report it).
//   multiblock3d_pack   the batch rule of MaskBatch: Kc = min_b |context_b| (then ≤ max_keep when
//                       > 0), Kt = min_b |target_b|; or, with full_complement, target = the ascending
//                       complement of the truncated context, Kt = N − Kc. Writes the packed (count,
//                       Kc) context and (count, Kt) target (row-major, capacity count·N each) and
//                       packed_lengths = {Kc, Kt} (int64). Every block computes the minima itself over
//                       the same lengths in the same order, so no grid-wide barrier is needed.
// Not supported on the device: the BatchMin hook of sample_rows (a data-parallel all-reduce of the
// lengths); apply it between the two launches through packed lengths if needed.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "jepa/backend/cuda/common.cuh"
#include "jepa/backend/cuda/error.cuh"
#include "jepa/masking/multiblock.hpp"

namespace jepa::backend::cuda {

namespace kernels {

__global__ void multiblock3d_draw(index_t T, index_t H, index_t W, masking::BlockSize s, int num_blocks, index_t t_keep,
                                  std::uint64_t seed, std::uint64_t step, std::uint64_t first, index_t count,
                                  int generator, std::uint8_t* __restrict__ masked, std::int64_t* __restrict__ context,
                                  std::int64_t* __restrict__ target, std::int32_t* __restrict__ lengths,
                                  int* __restrict__ failed) {
  const index_t b = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x;
  if (b >= count) return;
  const index_t N = T * H * W;
  Rng r = masking::mask_rng(seed, step, first + static_cast<std::uint64_t>(b), static_cast<std::uint64_t>(generator));
  std::uint8_t* m = masked + b * N;
  // The CPU's loop: attempts 0 … kMaxRedraws−1, then it gives up.
  bool ok = false;
  for (int a = 0; a < masking::Multiblock3d::kMaxRedraws && !ok; ++a)
    ok = masking::detail::multiblock3d_attempt(m, T, H, W, s, num_blocks, t_keep, r, nullptr);
  if (!ok) {
    atomicOr(failed, 1);
    lengths[2 * b] = lengths[2 * b + 1] = 0;
    return;
  }
  std::int64_t* ctx = context + b * N;
  std::int64_t* tgt = target + b * N;
  std::int32_t kc = 0, kt = 0;
  for (index_t n = 0; n < N; ++n) {
    if (m[n]) tgt[kt++] = n;
    else ctx[kc++] = n;
  }
  lengths[2 * b] = kc;
  lengths[2 * b + 1] = kt;
}

/// One block per row b. in_ctx (count, N) bytes is scratch (the masked bytes of the draw may be reused).
__global__ void multiblock3d_pack(const std::int64_t* __restrict__ context, const std::int64_t* __restrict__ target,
                                  const std::int32_t* __restrict__ lengths, index_t count, index_t N, index_t max_keep,
                                  bool full_complement, std::uint8_t* __restrict__ in_ctx,
                                  std::int64_t* __restrict__ packed_context, std::int64_t* __restrict__ packed_target,
                                  std::int64_t* __restrict__ packed_lengths) {
  __shared__ index_t s_kc, s_kt;
  const index_t b = blockIdx.x;
  if (threadIdx.x == 0) {
    index_t kc = N, kt = N;  // the CPU starts its minima at N as well
    for (index_t i = 0; i < count; ++i) {
      kc = min(kc, static_cast<index_t>(lengths[2 * i]));
      kt = min(kt, static_cast<index_t>(lengths[2 * i + 1]));
    }
    if (max_keep > 0) kc = min(kc, max_keep);
    if (full_complement) kt = N - kc;
    s_kc = kc;
    s_kt = kt;
    if (b == 0) {
      packed_lengths[0] = kc;
      packed_lengths[1] = kt;
    }
  }
  __syncthreads();
  const index_t Kc = s_kc, Kt = s_kt;
  for (index_t k = threadIdx.x; k < Kc; k += blockDim.x) packed_context[b * Kc + k] = context[b * N + k];
  if (!full_complement) {
    for (index_t k = threadIdx.x; k < Kt; k += blockDim.x) packed_target[b * Kt + k] = target[b * N + k];
    return;
  }
  // target := {0 … N−1} \ (the first Kc context entries), ascending.
  std::uint8_t* mark = in_ctx + b * N;
  for (index_t n = threadIdx.x; n < N; n += blockDim.x) mark[n] = 0;
  __syncthreads();
  for (index_t k = threadIdx.x; k < Kc; k += blockDim.x) mark[context[b * N + k]] = 1;
  __syncthreads();
  if (threadIdx.x == 0) {
    index_t j = 0;
    for (index_t n = 0; n < N; ++n)
      if (!mark[n]) packed_target[b * Kt + j++] = n;
  }
}

}  // namespace kernels

/// Device buffers of one generator's draw (all device memory; N = grid.size()):
///   masked (count·N) bytes; context, target (count·N) int64; lengths (2·count) int32; failed (1) int
///   (set to 0 by the caller before the first draw — the kernel only ever sets it);
///   packed_context, packed_target (count·N) int64; packed_lengths (2) int64.
struct Multiblock3dBuffers {
  std::uint8_t* masked = nullptr;
  std::int64_t* context = nullptr;
  std::int64_t* target = nullptr;
  std::int32_t* lengths = nullptr;
  int* failed = nullptr;
  std::int64_t* packed_context = nullptr;
  std::int64_t* packed_target = nullptr;
  std::int64_t* packed_lengths = nullptr;
};

namespace detail {
inline void check_multiblock3d_buffers(const Multiblock3dBuffers& b, const char* op) {
  require_pointer(b.masked, op, "masked");
  require_pointer(b.context, op, "context");
  require_pointer(b.target, op, "target");
  require_pointer(b.lengths, op, "lengths");
  require_pointer(b.failed, op, "failed");
  require_pointer(b.packed_context, op, "packed_context");
  require_pointer(b.packed_target, op, "packed_target");
  require_pointer(b.packed_lengths, op, "packed_lengths");
}
}  // namespace detail

/// Draws rows [first, first + count) of generator `generator` of policy.sample(grid, seed, step, B)
/// on the device: the per-sample pairs and the packed MaskBatch (see the header comment). The
/// arguments are validated on the host exactly as the CPU policy validates them (ShapeError for a bad
/// batch range or grid, IndexError for a bad generator, ConfigError for a block size that cannot be
/// drawn), before anything is launched.
inline void multiblock3d_sample(const masking::Multiblock3d& policy, const nn::TokenGrid& grid, std::uint64_t seed,
                                std::uint64_t step, index_t first, index_t count, int generator,
                                const Multiblock3dBuffers& buf, cudaStream_t stream) {
  constexpr const char* op = "cuda::multiblock3d_sample";
  masking::detail::check_batch(count, "Multiblock3d");
  detail::require_extent(first, 0, op, "first (row)");
  masking::detail::check_batch(first + count, "Multiblock3d");
  const masking::BlockSize s = policy.checked_block_size(grid, seed, step, generator);  // grid + generator checks
  const index_t N = grid.size();
  if (N > index_t{0x7fffffff})
    throw ShapeError(jepa::detail::cat("jepa: ", op, ": the ", grid.t, "x", grid.h, "x", grid.w,
                                       " token grid has more than 2^31 - 1 tokens"));
  detail::check_multiblock3d_buffers(buf, op);
  const masking::BlockGenerator& g = policy.generators()[static_cast<std::size_t>(generator)];
  constexpr int threads = 64;
  kernels::multiblock3d_draw<<<static_cast<unsigned>((count + threads - 1) / threads), threads, 0, stream>>>(
      grid.t, grid.h, grid.w, s, g.num_blocks, policy.temporal_keep(grid, generator), seed, step,
      static_cast<std::uint64_t>(first), count, generator, buf.masked, buf.context, buf.target, buf.lengths, buf.failed);
  JEPA_CUDA_CHECK_LAUNCH("cuda::multiblock3d_draw");
  kernels::multiblock3d_pack<<<static_cast<unsigned>(count), 128, 0, stream>>>(
      buf.context, buf.target, buf.lengths, count, N, g.max_keep, g.full_complement, buf.masked, buf.packed_context,
      buf.packed_target, buf.packed_lengths);
  JEPA_CUDA_CHECK_LAUNCH("cuda::multiblock3d_pack");
}

}  // namespace jepa::backend::cuda
