// jepa/backend/cuda/index_tables.cuh — the predictor's index tables built on the device from device
// token indices, so a training step whose masks already live on the device needs no host round trip
// (models/predictor.hpp, "device indices" path; the host path builds the same tables with a sort).
//
// Per row b, with context indices Ic (Kc) and target indices It (Kt), S = Kc + Kt, all in [0, N):
//   sorted[b, j]   = the j-th smallest of Ic ∪ It               (the sequence order of the predictor)
//   assemble[b, j] = b·Kc + k     if sorted[b, j] = Ic[k]        (row of [xc ; mask token])
//                  = B·Kc         if it is a target              (the mask-token row)
//   slot_t[b, k]   = j with sorted[b, j] = It[k];   slot_c[b, k] = j with sorted[b, j] = Ic[k]
//   dy_src[b, j]   = B·Kt + b·Kc + k  (context k)  or  b·Kt + k  (target k)
// The tables are (4, B, S) int64, laid out as Predictor::State expects: sorted, assemble, then slot_t
// (B·Kt) followed by slot_c (B·Kc), then dy_src.
//
// Algorithm (counting sort by grid index; the indices are small integers): one block per row marks
// mark[n] = 1 + (source item) for every item, then a block-wide exclusive scan over n ∈ [0, N) of
// (mark[n] ≠ 0) gives each item its sorted position (cub::BlockScan, tile by tile, carrying the
// running count between tiles). O(N + S) per row, no comparison sort, and the
// result equals the host's stable sort exactly (the indices of a valid row are distinct, so the
// order is unique). The CPU validates range and disjointness and throws; the device cannot throw
// without a synchronisation, so an index outside [0, N) sets bit 1 of *bad and a repeated index sets
// bit 2 (read *bad after the step); the affected row's tables then keep in-range values only
// (never an out-of-bounds gather) but are meaningless.
#pragma once

#include <cuda_runtime.h>

#include <cub/block/block_scan.cuh>

#include <cstdint>

#include "jepa/backend/cuda/common.cuh"
#include "jepa/backend/cuda/error.cuh"

namespace jepa::backend::cuda {

namespace kernels {

inline constexpr int kTableThreads = 256;

template <int Threads = kTableThreads>
__global__ void __launch_bounds__(Threads)
    predictor_index_tables(const std::int64_t* __restrict__ ctx, const std::int64_t* __restrict__ tgt, index_t B,
                           index_t Kc, index_t Kt, index_t N, std::int64_t* __restrict__ tab,
                           std::int32_t* __restrict__ mark_all, int* __restrict__ bad) {
  static_assert(Threads % 32 == 0 && Threads <= 1024, "whole warps, at most 32 of them");
  using Scan = cub::BlockScan<int, Threads>;
  __shared__ typename Scan::TempStorage scan_storage;
  __shared__ index_t carry;
  const index_t b = blockIdx.x, S = Kc + Kt;
  std::int32_t* mark = mark_all + b * N;
  for (index_t n = threadIdx.x; n < N; n += Threads) mark[n] = 0;
  __syncthreads();
  for (index_t i = threadIdx.x; i < S; i += Threads) {
    const std::int64_t key = i < Kc ? ctx[b * Kc + i] : tgt[b * Kt + (i - Kc)];
    if (key < 0 || key >= N) {
      atomicOr(bad, 1);
      continue;
    }
    if (atomicExch(&mark[key], static_cast<std::int32_t>(i + 1)) != 0) atomicOr(bad, 2);
  }
  if (threadIdx.x == 0) carry = 0;
  __syncthreads();
  std::int64_t* sorted = tab;
  std::int64_t* assemble = tab + B * S;
  std::int64_t* slot_t = tab + 2 * B * S;
  std::int64_t* slot_c = slot_t + B * Kt;
  std::int64_t* dy_src = tab + 3 * B * S;
  for (index_t base = 0; base < N; base += Threads) {
    const index_t n = base + threadIdx.x;
    const std::int32_t m = n < N ? mark[n] : 0;
    int pos = 0, total = 0;
    Scan(scan_storage).ExclusiveSum(m != 0 ? 1 : 0, pos, total);
    const index_t j = carry + pos;
    if (m != 0 && j < S) {
      const index_t i = m - 1;  // source item: context i (i < Kc) or target i − Kc
      sorted[b * S + j] = n;
      if (i < Kc) {
        slot_c[b * Kc + i] = j;
        assemble[b * S + j] = b * Kc + i;
        dy_src[b * S + j] = B * Kt + b * Kc + i;
      } else {
        slot_t[b * Kt + (i - Kc)] = j;
        assemble[b * S + j] = B * Kc;
        dy_src[b * S + j] = b * Kt + (i - Kc);
      }
    }
    __syncthreads();  // every thread has read carry; scan_storage may be reused
    if (threadIdx.x == 0) carry += total;
    __syncthreads();
  }
}

}  // namespace kernels

/// Bytes of the `mark` scratch of predictor_index_tables: B·N int32.
inline std::size_t predictor_index_tables_scratch(index_t B, index_t N) {
  return static_cast<std::size_t>(B > 0 && N > 0 ? B * N : 0) * sizeof(std::int32_t);
}

/// Builds the (4, B, Kc + Kt) tables from device ctx (B,Kc) and tgt (B,Kt) (see the header comment).
/// mark: device scratch of B·N int32; bad: device int the caller zeroes (bits: 1 range, 2 repeat).
inline void predictor_index_tables(const std::int64_t* ctx, const std::int64_t* tgt, index_t B, index_t Kc, index_t Kt,
                                   index_t N, std::int64_t* tables, std::int32_t* mark, int* bad, cudaStream_t stream) {
  constexpr const char* op = "cuda::predictor_index_tables";
  detail::require_extent(B, 1, op, "B (batch)");
  detail::require_extent(Kc, 1, op, "Kc (context tokens)");
  detail::require_extent(Kt, 1, op, "Kt (target tokens)");
  detail::require_extent(N, Kc + Kt, op, "N (grid tokens; at least Kc + Kt)");
  if (N > index_t{0x7fffffff}) throw ShapeError(jepa::detail::cat("jepa: ", op, ": N = ", N, " exceeds 2^31 - 1"));
  detail::require_pointer(ctx, op, "ctx");
  detail::require_pointer(tgt, op, "tgt");
  detail::require_pointer(tables, op, "tables");
  detail::require_pointer(mark, op, "mark");
  detail::require_pointer(bad, op, "bad");
  kernels::predictor_index_tables<><<<static_cast<unsigned>(B), kernels::kTableThreads, 0, stream>>>(ctx, tgt, B, Kc, Kt, N,
                                                                                                    tables, mark, bad);
  JEPA_CUDA_CHECK_LAUNCH("cuda::predictor_index_tables");
}

}  // namespace jepa::backend::cuda
