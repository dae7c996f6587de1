// jepa/backend/cuda/attention.cuh — fused multi-head attention on the GPU: flash forward and backward
// (FlashAttention-2 schedule), the CUDA twin of backend/cpu/attention.hpp.
//
// Per batch b and head h, with q: (Nq,Dh), k, v: (Nk,Dh), o: (Nq,Dh), lse: (Nq):
//   S_ij  = scale · q_i·k_j   if the mask allows (i, j),  −∞ otherwise
//   P     = softmax_rows(S),   o = P v,   lse_i = ln Σ_j exp(S_ij)           (natural log)
// Backward, given dO = ∂L/∂o and the forward's o and lse:
//   D_i = Σ_c dO_ic O_ic,   P_ij = exp(S_ij − lse_i)
//   dV = Pᵀ dO,   dP = dO Vᵀ,   dS = P ∘ (dP − D),   dQ = scale · dS K,   dK = scale · dSᵀ Q
// A query row with no allowed key has o = 0, lse = −∞, P = 0, and contributes nothing to any gradient.
// Operands are AttnOperand views (backend/attention_args.hpp) read and written in place — q, k, v
// typically inside the packed (B,N,3·H·Dh) qkv buffer, o in a (B,N,H·Dh) buffer. lse is (B,H,Nq)
// contiguous fp32 for both element types (the CPU backend's lse has type T; for T = float the two
// agree, for bf16 the GPU keeps the fp32 value). Accumulation: o, lse, dq, dk, dv are OVERWRITTEN.
// Head dims 1 … 128 (the recipes use 32, 64, 80, 88, 104); any Nq, Nk ≥ 0, Nq ≠ Nk allowed.
//
// Masks (AttnMask): none, causal, block_causal and dense. For the first three the keys query i may
// see form a prefix [0, lim(i)) with lim non-decreasing in i, which is what lets whole key tiles be
// skipped (skipping is exact: a masked tile adds P = 0 and leaves the running max unchanged). A dense
// mask's `allowed` is a (Nq, cols) byte array in DEVICE memory on this backend.
//
// Kernels. Scores are kept in base 2, S2 = log2(e)·S, so every exponential is one exp2:
//   forward, per query tile, walking key tiles with an online softmax (running max m, sum l):
//     m' = max(m, max_j S2_ij),  α = 2^(m − m'),  l' = α l + Σ_j 2^(S2_ij − m'),
//     Oacc' = α ∘ Oacc + 2^(S2 − m') V,    o = Oacc / l,  lse = ln2 · (m + log2 l)
//   (m' = −∞ — nothing allowed yet — is replaced by 0 so that 2^(−∞ − 0) = 0 and no NaN appears).
//   backward: a prep pass computes D_i and lse2_i = log2(e)·lse_i (+∞ for an empty row, so that
//   P = 2^(S2 − lse2) = 0 there), then two passes that recompute P from q, k and lse2:
//     dK/dV: one block per (key tile, b·h), walking query tiles  (dV = Σ Pᵀ dO, dK = scale Σ dSᵀ Q)
//     dQ:    one block per (query tile, b·h), walking key tiles  (dQ = scale Σ dS K)
//   No atomics: every output element is summed by one thread in a fixed order, so results are
//   bitwise reproducible run to run (DESIGN.md decision 11).
//
// Two implementations of each pass:
//  - tensor cores (bf16 operands, sm_80+): mma.sync m16n8k16 bf16 with fp32 accumulation, operands
//    staged in shared memory by cp.async (double-buffered K/V or Q/dO tiles) and read by ldmatrix;
//    the head dim is padded to Dp ∈ {32, 64, 96, 128} with zero columns (zero-filled by cp.async), so
//    Dh = 80, 88, 104 are exact. P and dS are rounded to bf16 once before their products (as
//    FlashAttention-2 does); softmax statistics, accumulators and lse stay fp32. Used when Dh % 8 == 0
//    and every pointer is 16-byte aligned with strides that are multiples of 8 elements (16-byte
//    cp.async rows) — the packed qkv layout always qualifies.
//  - CUDA cores (fp32 arithmetic): float operands, and bf16 operands that miss the alignment rules
//    above. A warp owns 8 query (or key) rows, lanes own keys (or queries) for the dot products and
//    head-dim channels for the accumulators; tiles of 32 keys (queries) staged in shared memory.
// Both compute in float and round once on store (o, dq, dk, dv in T).
//
// Workspace: attention_backward needs attention_backward_workspace_bytes(shape) bytes of device
// memory (2 · B·H·Nq floats: D and lse2). Nothing here allocates, copies to or from the host, or
// synchronises, so both launchers can be captured in a CUDA graph. (Kernels needing more than 48 KB
// of dynamic shared memory get it through cudaFuncSetAttribute at launch, which is not a stream
// operation and is allowed during capture.)
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string_view>
#include <type_traits>

#include "jepa/backend/attention_args.hpp"
#include "jepa/backend/cuda/common.cuh"
#include "jepa/core/error.hpp"

namespace jepa::backend::cuda {

namespace detail::attn {

inline constexpr float kLog2e = 1.4426950408889634f;
inline constexpr float kLn2 = 0.69314718055994531f;
inline constexpr int kMaxHeadDim = 128;
inline constexpr unsigned kFull = 0xffffffffu;

/// The head dim a kernel is compiled for: Dh rounded up to 32, 64, 96 or 128.
inline int padded_head_dim(index_t dh) { return dh <= 32 ? 32 : dh <= 64 ? 64 : dh <= 96 ? 96 : 128; }

/// The mask as the kernels evaluate it. For none / causal / block_causal the keys query i may see are
/// the prefix [0, lim(i)), lim non-decreasing in i; dense adds a byte test inside [0, Nk).
struct DevMask {
  int kind;  // AttnMask::Kind: 0 none, 1 causal, 2 block_causal, 3 dense
  int nq, nk;
  index_t block;
  const std::uint8_t* allowed;  // device (Nq, cols) bytes (dense only)
  index_t cols;

  /// One past the last key query i (0 ≤ i < Nq) may attend to, at most Nk.
  __device__ __forceinline__ int lim(int i) const {
    if (kind == 1) return i + 1 < nk ? i + 1 : nk;
    if (kind == 2) {
      // j/block ≤ i/block  ⟺  j < (i/block + 1)·block; written so that nothing overflows for a huge block.
      const index_t start = (static_cast<index_t>(i) / block) * block;
      return start >= static_cast<index_t>(nk) - block ? nk : static_cast<int>(start + block);
    }
    return nk;
  }
  /// The smallest query that may attend to key j0 (every allowed query of keys ≥ j0 is ≥ this).
  __device__ __forceinline__ int first_query(int j0) const {
    if (kind == 1) return j0;
    if (kind == 2) return static_cast<int>((static_cast<index_t>(j0) / block) * block);
    return 0;
  }
  /// The dense byte for (i, j); true for the other kinds. Only called with i < Nq and j < Nk.
  __device__ __forceinline__ bool dense_ok(int i, int j) const {
    return kind != 3 || allowed[static_cast<index_t>(i) * cols + j] != 0;
  }
  /// Whether the later query tiles carry more work (causal kinds): such grids run them first.
  __host__ __device__ bool triangular() const { return kind == 1 || kind == 2; }
};

template <class S>
struct FwdArgs {
  AttnOperand<const S> q, k, v;
  AttnOperand<S> o;
  float* lse;  // (B,H,Nq) or null
  int heads, nq, nk, dh;
  float scale_log2;  // scale · log2(e)
  DevMask mask;
};

template <class S>
struct BwdArgs {
  AttnOperand<const S> q, k, v, dout;
  AttnOperand<S> dq, dk, dv;
  const float* lse2;  // (B,H,Nq) log2(e)·lse, +∞ for a row with no allowed key
  const float* dsum;  // (B,H,Nq) D_i = Σ_c dO_ic O_ic
  int heads, nq, nk, dh;
  float scale_log2, scale;
  DevMask mask;
};

// ------------------------------------------------------------------------------------------------
// Device helpers.
// ------------------------------------------------------------------------------------------------
__device__ __forceinline__ float warp_max(float x) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(kFull, x, o));
  return x;
}
__device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(kFull, x, o);
  return x;
}
/// Max / sum over the 4 lanes of a quad (the 4 threads that share a row of an mma accumulator).
__device__ __forceinline__ float quad_max(float x) {
  x = fmaxf(x, __shfl_xor_sync(kFull, x, 1));
  return fmaxf(x, __shfl_xor_sync(kFull, x, 2));
}
__device__ __forceinline__ float quad_sum(float x) {
  x += __shfl_xor_sync(kFull, x, 1);
  return x + __shfl_xor_sync(kFull, x, 2);
}

__device__ __forceinline__ unsigned smem_u32(const void* p) {
  return static_cast<unsigned>(__cvta_generic_to_shared(p));
}
/// 16-byte global → shared copy that bypasses registers; `valid` false writes 16 zero bytes instead
/// (src-size 0: nothing is read, `src` only has to be a legal address).
__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(dst)), "l"(src), "r"(valid ? 16 : 0)
               : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
/// Waits until at most N of this thread's committed cp.async groups are still in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}
/// Four 8×8 b16 matrices; lane l gives the row address of matrix l/8, row l%8. Register i holds
/// matrix i's (row lane/4, columns 2·(lane%4), +1) — or, with .trans, (rows 2·(lane%4), +1; column lane/4).
/// `volatile` keeps it in order with the barriers and cp.async waits (no "memory" clobber: the only
/// shared memory it reads is written by cp.async, ordered by those).
__device__ __forceinline__ void ldsm_x4(unsigned (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_u32(p)));
}
__device__ __forceinline__ void ldsm_x4_trans(unsigned (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_u32(p)));
}
/// d (16×8 fp32) += a (16×16 bf16, row) · b (16×8 bf16, col). Fragments (g = lane/4, t = lane%4):
///   a0 (g, 2t..2t+1)  a1 (g+8, 2t..)  a2 (g, 2t+8..)  a3 (g+8, 2t+8..);   b0 (k 2t..2t+1, n g)  b1 (k 2t+8.., n g)
///   d0, d1 (g, 2t..2t+1)   d2, d3 (g+8, 2t..2t+1)
__device__ __forceinline__ void mma_bf16(float (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
  asm(  // a pure function of its registers: free to schedule
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
/// Two floats rounded to bf16 (nearest even) in one register, `lo` in the low half (lower column).
__device__ __forceinline__ unsigned pack_bf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  unsigned u;
  memcpy(&u, &v, sizeof u);
  return u;
}
/// The A fragment of a 16×16 k-chunk from two 16×8 accumulator tiles (columns 0–7 and 8–15): the
/// accumulator layout of (row, column pair) is exactly the A layout, so no data moves between lanes.
__device__ __forceinline__ void acc_to_a(unsigned (&a)[4], const float (&c0)[4], const float (&c1)[4]) {
  a[0] = pack_bf16(c0[0], c0[1]);
  a[1] = pack_bf16(c0[2], c0[3]);
  a[2] = pack_bf16(c1[0], c1[1]);
  a[3] = pack_bf16(c1[2], c1[3]);
}

/// Stages rows [row0, row0 + ROWS) of one (b, h) slice into a (ROWS, DP+8) bf16 shared tile by cp.async:
/// 16-byte chunks; rows ≥ n and columns ≥ Dh (chunk c ≥ dh8) are zero-filled. The +8 row padding puts
/// the 8 rows an ldmatrix reads in distinct bank groups (row pitch ≡ 4 or 20 words mod 32).
template <int ROWS, int DP, int NT>
__device__ __forceinline__ void load_tile_async(__nv_bfloat16* sm, const __nv_bfloat16* base, index_t row_stride,
                                                int row0, int n, int dh8, int tid) {
  constexpr int CPR = DP / 8, LD = DP + 8;
#pragma unroll
  for (int idx = tid; idx < ROWS * CPR; idx += NT) {
    const int r = idx / CPR, c = idx - r * CPR;
    const bool ok = row0 + r < n && c < dh8;
    const __nv_bfloat16* src = ok ? base + static_cast<index_t>(row0 + r) * row_stride + c * 8 : base;
    cp_async16(sm + r * LD + c * 8, src, ok);
  }
}

/// Stores two adjacent output values (columns c, c+1 of a row) as T.
template <class S>
__device__ __forceinline__ void store2(S* p, float x, float y) {
  if constexpr (std::is_same_v<S, __nv_bfloat16>) {
    const __nv_bfloat162 v = __floats2bfloat162_rn(x, y);
    *reinterpret_cast<__nv_bfloat162*>(p) = v;  // 4-byte aligned: Dh, strides and base are multiples of 8
  } else {
    p[0] = x;
    p[1] = y;
  }
}

template <class S>
__device__ __forceinline__ const S* slice(const AttnOperand<const S>& x, int b, int h) {
  return x.data + static_cast<index_t>(b) * x.batch_stride + static_cast<index_t>(h) * x.head_stride;
}
template <class S>
__device__ __forceinline__ S* slice(const AttnOperand<S>& x, int b, int h) {
  return x.data + static_cast<index_t>(b) * x.batch_stride + static_cast<index_t>(h) * x.head_stride;
}

// ================================================================================================
// Tensor-core kernels (bf16).
// ================================================================================================

/// Forward: a block owns BM = 128 query rows of one (b, h); NW warps own 16·MT rows each. Key tiles
/// of BN = 64 rows are double-buffered (tile t+1 is in flight while tile t is used).
template <int DP, int MT>
struct FwdTc {
  static constexpr int BM = 128, BN = 64, NW = BM / (16 * MT), NT = 32 * NW, LD = DP + 8;
  static constexpr std::size_t smem = static_cast<std::size_t>(BM + 4 * BN) * LD * sizeof(__nv_bfloat16);
};
/// Rows per warp: two m16 tiles where the accumulators leave room (Dp ≤ 64), else one.
template <int DP>
inline constexpr int kFwdMt = DP <= 64 ? 2 : 1;

/// Backward: dK/dV blocks own BN = 64 keys (4 warps × 16) and walk query tiles of BMQ rows; dQ blocks
/// own BMD = 64 queries (4 warps × 16) and walk key tiles of BND rows.
template <int DP>
struct BwdTc {
  static constexpr int NT = 128, LD = DP + 8;
  static constexpr int BN = 64, BMQ = DP <= 64 ? 64 : 32;
  static constexpr int BMD = 64, BND = 64;
  static constexpr std::size_t smem_kv =
      static_cast<std::size_t>(2 * BN + 4 * BMQ) * LD * sizeof(__nv_bfloat16) + 2 * 3 * BMQ * sizeof(float);
  static constexpr std::size_t smem_q = static_cast<std::size_t>(2 * BMD + 4 * BND) * LD * sizeof(__nv_bfloat16);
};

template <int DP, int MT>
__global__ void __launch_bounds__(FwdTc<DP, MT>::NT)
    attn_fwd_tc(const FwdArgs<__nv_bfloat16> a, int n_qtiles) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  using C = FwdTc<DP, MT>;
  constexpr int BM = C::BM, BN = C::BN, LD = C::LD, NT = C::NT, NDT = DP / 8;
  extern __shared__ __align__(16) unsigned char attn_smem[];
  __nv_bfloat16* Qs = reinterpret_cast<__nv_bfloat16*>(attn_smem);  // (BM, LD)
  __nv_bfloat16* Ks = Qs + BM * LD;                                    // 2 × (BN, LD)
  __nv_bfloat16* Vs = Ks + 2 * BN * LD;                                // 2 × (BN, LD)
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, tg = lane & 3;
  const int bh = blockIdx.x / n_qtiles;
  int qt = blockIdx.x - bh * n_qtiles;
  if (a.mask.triangular()) qt = n_qtiles - 1 - qt;  // the longest rows first
  const int b = bh / a.heads, h = bh - b * a.heads;
  const int i0 = qt * BM;
  const int i_last = (i0 + BM < a.nq ? i0 + BM : a.nq) - 1;
  const int nkt = (a.mask.lim(i_last) + BN - 1) / BN;  // key tiles past this are masked for every row
  const int dh8 = a.dh / 8;
  const __nv_bfloat16* qb = slice(a.q, b, h);
  const __nv_bfloat16* kb = slice(a.k, b, h);
  const __nv_bfloat16* vb = slice(a.v, b, h);

  load_tile_async<BM, DP, NT>(Qs, qb, a.q.row_stride, i0, a.nq, dh8, tid);
  cp_async_commit();
  if (nkt > 0) {
    load_tile_async<BN, DP, NT>(Ks, kb, a.k.row_stride, 0, a.nk, dh8, tid);
    load_tile_async<BN, DP, NT>(Vs, vb, a.v.row_stride, 0, a.nk, dh8, tid);
  }
  cp_async_commit();

  // This thread's rows: i0 + warp·16·MT + mt·16 + g + 8·hf (accumulator halves hf = 0, 1).
  const int wrow = warp * 16 * MT;
  int lim[MT][2];
  float m[MT][2], l[MT][2], acc[MT][NDT][4];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
    for (int hf = 0; hf < 2; ++hf) {
      const int row = i0 + wrow + mt * 16 + g + 8 * hf;
      lim[mt][hf] = row < a.nq ? a.mask.lim(row) : 0;
      m[mt][hf] = -INFINITY;
      l[mt][hf] = 0.f;
    }
#pragma unroll
    for (int nd = 0; nd < NDT; ++nd)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[mt][nd][e] = 0.f;
  }

  for (int kt = 0; kt < nkt; ++kt) {
    const int buf = kt & 1;
    if (kt + 1 < nkt) {
      // The other buffer was last read in iteration kt−1, which ended with a barrier.
      load_tile_async<BN, DP, NT>(Ks + (buf ^ 1) * BN * LD, kb, a.k.row_stride, (kt + 1) * BN, a.nk, dh8, tid);
      load_tile_async<BN, DP, NT>(Vs + (buf ^ 1) * BN * LD, vb, a.v.row_stride, (kt + 1) * BN, a.nk, dh8, tid);
      cp_async_commit();
      cp_async_wait<1>();  // everything but the tile just issued (Q and tile kt) has landed
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const __nv_bfloat16* Kt = Ks + buf * BN * LD;
    const __nv_bfloat16* Vt = Vs + buf * BN * LD;

    // S = Q Kᵀ  (per warp: 16·MT rows × BN keys).
    float s[MT][BN / 8][4];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int nt = 0; nt < BN / 8; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) s[mt][nt][e] = 0.f;
#pragma unroll
    for (int kk = 0; kk < DP / 16; ++kk) {
      unsigned qa[MT][4];
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
        ldsm_x4(qa[mt], Qs + (wrow + mt * 16 + (lane & 15)) * LD + kk * 16 + (lane >> 4) * 8);
#pragma unroll
      for (int nb = 0; nb < BN / 16; ++nb) {
        // K rows nb·16 … +15 as the B operand (k = head dim, n = key): matrices (keys 0–7, dims 0–7),
        // (keys 0–7, dims 8–15), (keys 8–15, dims 0–7), (keys 8–15, dims 8–15) → b0 b1 of two n-tiles.
        unsigned kf[4];
        ldsm_x4(kf, Kt + (nb * 16 + ((lane >> 4) << 3) + (lane & 7)) * LD + kk * 16 + ((lane >> 3) & 1) * 8);
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          mma_bf16(s[mt][2 * nb], qa[mt], kf[0], kf[1]);
          mma_bf16(s[mt][2 * nb + 1], qa[mt], kf[2], kf[3]);
        }
      }
    }

    // Online softmax, base 2. A row's 4 quad lanes hold its BN scores between them.
    const int j0 = kt * BN;
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
      for (int hf = 0; hf < 2; ++hf) {
        const int row = i0 + wrow + mt * 16 + g + 8 * hf;
        float mx = -INFINITY;
#pragma unroll
        for (int nt = 0; nt < BN / 8; ++nt)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const int j = j0 + nt * 8 + tg * 2 + e;
            float x = s[mt][nt][2 * hf + e] * a.scale_log2;
            if (!(j < lim[mt][hf] && a.mask.dense_ok(row, j))) x = -INFINITY;
            s[mt][nt][2 * hf + e] = x;
            mx = fmaxf(mx, x);
          }
        mx = quad_max(mx);
        const float m_new = fmaxf(m[mt][hf], mx);
        const float m_use = m_new == -INFINITY ? 0.f : m_new;
        const float alpha = exp2f(m[mt][hf] - m_use);  // 0 while the row had nothing (m = −∞)
        float rs = 0.f;
#pragma unroll
        for (int nt = 0; nt < BN / 8; ++nt)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const float p = exp2f(s[mt][nt][2 * hf + e] - m_use);
            s[mt][nt][2 * hf + e] = p;
            rs += p;
          }
        // l is kept per lane (a partial over this lane's columns); α is uniform over the quad, so the
        // partials rescale consistently and are summed once at the end.
        l[mt][hf] = l[mt][hf] * alpha + rs;
        m[mt][hf] = m_new;
#pragma unroll
        for (int nd = 0; nd < NDT; ++nd) {
          acc[mt][nd][2 * hf] *= alpha;
          acc[mt][nd][2 * hf + 1] *= alpha;
        }
      }
    }

    // Oacc += P V: P (bf16) straight from the accumulators as A; V rows as B through ldmatrix.trans.
#pragma unroll
    for (int kk = 0; kk < BN / 16; ++kk) {
      unsigned pa[MT][4];
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) acc_to_a(pa[mt], s[mt][2 * kk], s[mt][2 * kk + 1]);
#pragma unroll
      for (int nd2 = 0; nd2 < DP / 16; ++nd2) {
        unsigned vf[4];
        ldsm_x4_trans(vf, Vt + (kk * 16 + (lane & 15)) * LD + nd2 * 16 + (lane >> 4) * 8);
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          mma_bf16(acc[mt][2 * nd2], pa[mt], vf[0], vf[1]);
          mma_bf16(acc[mt][2 * nd2 + 1], pa[mt], vf[2], vf[3]);
        }
      }
    }
    __syncthreads();  // all warps are done with buffer `buf` before it is refilled
  }
  cp_async_wait<0>();  // (nkt = 0: the Q group is still outstanding; never exit with copies in flight)

  // o = Oacc / l, lse = ln2 (m + log2 l); an empty row (l = 0) gets o = 0, lse = −∞.
  __nv_bfloat16* ob = slice(a.o, b, h);
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int hf = 0; hf < 2; ++hf) {
      const float lt = quad_sum(l[mt][hf]);
      const int row = i0 + wrow + mt * 16 + g + 8 * hf;
      if (row < a.nq) {
        const float inv = lt > 0.f ? 1.f / lt : 0.f;
        __nv_bfloat16* orow = ob + static_cast<index_t>(row) * a.o.row_stride;
#pragma unroll
        for (int nd = 0; nd < NDT; ++nd) {
          const int c = nd * 8 + tg * 2;
          if (c < a.dh) store2(orow + c, acc[mt][nd][2 * hf] * inv, acc[mt][nd][2 * hf + 1] * inv);
        }
        if (a.lse && tg == 0)
          a.lse[static_cast<index_t>(bh) * a.nq + row] = lt > 0.f ? (m[mt][hf] + log2f(lt)) * kLn2 : -INFINITY;
      }
    }
#else
  __trap();  // never launched: the host picks this kernel only on sm_80+
#endif
}

/// Backward, dK and dV. Each warp owns 16 keys and computes the transposed products, so that Pᵀ and
/// dSᵀ come out of the accumulators in the A layout of dV += Pᵀ dO and dK += dSᵀ Q:
///   Sᵀ = K Qᵀ,  Pᵀ = 2^(scale·log2e·Sᵀ − lse2),  dPᵀ = V dOᵀ,  dSᵀ = Pᵀ ∘ (dPᵀ − D).
template <int DP>
__global__ void __launch_bounds__(BwdTc<DP>::NT) attn_bwd_dkdv_tc(const BwdArgs<__nv_bfloat16> a, int n_ktiles) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  using C = BwdTc<DP>;
  constexpr int BN = C::BN, BMQ = C::BMQ, LD = C::LD, NT = C::NT, NDT = DP / 8;
  extern __shared__ __align__(16) unsigned char attn_smem[];
  __nv_bfloat16* Ks = reinterpret_cast<__nv_bfloat16*>(attn_smem);  // (BN, LD)
  __nv_bfloat16* Vs = Ks + BN * LD;                                    // (BN, LD)
  __nv_bfloat16* Qs = Vs + BN * LD;                                    // 2 × (BMQ, LD)
  __nv_bfloat16* dOs = Qs + 2 * BMQ * LD;                              // 2 × (BMQ, LD)
  float* lse2s = reinterpret_cast<float*>(dOs + 2 * BMQ * LD);         // 2 × BMQ
  float* Ds = lse2s + 2 * BMQ;                                         // 2 × BMQ
  int* lims = reinterpret_cast<int*>(Ds + 2 * BMQ);                    // 2 × BMQ
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, tg = lane & 3;
  const int bh = blockIdx.x / n_ktiles, kt = blockIdx.x - bh * n_ktiles;  // low key tiles (most work) first
  const int b = bh / a.heads, h = bh - b * a.heads;
  const int j0 = kt * BN;
  const int dh8 = a.dh / 8;
  const int nqt = (a.nq + BMQ - 1) / BMQ;
  const int qt0 = a.mask.first_query(j0) / BMQ;
  const __nv_bfloat16* qb = slice(a.q, b, h);
  const __nv_bfloat16* dob = slice(a.dout, b, h);
  const index_t row_base = static_cast<index_t>(bh) * a.nq;

  load_tile_async<BN, DP, NT>(Ks, slice(a.k, b, h), a.k.row_stride, j0, a.nk, dh8, tid);
  load_tile_async<BN, DP, NT>(Vs, slice(a.v, b, h), a.v.row_stride, j0, a.nk, dh8, tid);
  cp_async_commit();
  // Query tile `qt` into buffer `buf`: Q and dO by cp.async, the per-query scalars by plain stores
  // (rows ≥ Nq get lim = 0, which masks them, lse2 = +∞ and D = 0).
  auto load_query_tile = [&](int qt, int buf) {
    load_tile_async<BMQ, DP, NT>(Qs + buf * BMQ * LD, qb, a.q.row_stride, qt * BMQ, a.nq, dh8, tid);
    load_tile_async<BMQ, DP, NT>(dOs + buf * BMQ * LD, dob, a.dout.row_stride, qt * BMQ, a.nq, dh8, tid);
    if (tid < BMQ) {
      const int i = qt * BMQ + tid;
      const bool in = i < a.nq;
      lse2s[buf * BMQ + tid] = in ? a.lse2[row_base + i] : INFINITY;
      Ds[buf * BMQ + tid] = in ? a.dsum[row_base + i] : 0.f;
      lims[buf * BMQ + tid] = in ? a.mask.lim(i) : 0;
    }
  };
  if (qt0 < nqt) load_query_tile(qt0, 0);
  cp_async_commit();

  float dk[NDT][4], dv[NDT][4];
#pragma unroll
  for (int nd = 0; nd < NDT; ++nd)
#pragma unroll
    for (int e = 0; e < 4; ++e) dk[nd][e] = dv[nd][e] = 0.f;
  const int wkey = warp * 16;  // this warp's keys: j0 + wkey + g + 8·hf

  for (int qt = qt0; qt < nqt; ++qt) {
    const int buf = (qt - qt0) & 1;
    if (qt + 1 < nqt) {
      load_query_tile(qt + 1, buf ^ 1);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const __nv_bfloat16* Qt = Qs + buf * BMQ * LD;
    const __nv_bfloat16* dOt = dOs + buf * BMQ * LD;
    const float* lse2t = lse2s + buf * BMQ;
    const float* Dt = Ds + buf * BMQ;
    const int* limt = lims + buf * BMQ;
    const int i0 = qt * BMQ;

    // Sᵀ = K Qᵀ (16 keys × BMQ queries) and dPᵀ = V dOᵀ, sharing the k loop over the head dim.
    float st[BMQ / 8][4], dpt[BMQ / 8][4];
#pragma unroll
    for (int nt = 0; nt < BMQ / 8; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) st[nt][e] = dpt[nt][e] = 0.f;
#pragma unroll
    for (int kk = 0; kk < DP / 16; ++kk) {
      unsigned ka[4], va[4];
      ldsm_x4(ka, Ks + (wkey + (lane & 15)) * LD + kk * 16 + (lane >> 4) * 8);
      ldsm_x4(va, Vs + (wkey + (lane & 15)) * LD + kk * 16 + (lane >> 4) * 8);
#pragma unroll
      for (int nb = 0; nb < BMQ / 16; ++nb) {
        const int off = (nb * 16 + ((lane >> 4) << 3) + (lane & 7)) * LD + kk * 16 + ((lane >> 3) & 1) * 8;
        unsigned qf[4], df[4];
        ldsm_x4(qf, Qt + off);
        ldsm_x4(df, dOt + off);
        mma_bf16(st[2 * nb], ka, qf[0], qf[1]);
        mma_bf16(st[2 * nb + 1], ka, qf[2], qf[3]);
        mma_bf16(dpt[2 * nb], va, df[0], df[1]);
        mma_bf16(dpt[2 * nb + 1], va, df[2], df[3]);
      }
    }
    // Pᵀ and dSᵀ = Pᵀ ∘ (dPᵀ − D). Accumulator element (nt, e + 2·hf) is key j0+wkey+g+8hf, query
    // column nt·8 + 2·tg + e of the tile.
#pragma unroll
    for (int nt = 0; nt < BMQ / 8; ++nt)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int col = nt * 8 + tg * 2 + e;
        const float l2 = lse2t[col], dd = Dt[col];
        const int lm = limt[col];
#pragma unroll
        for (int hf = 0; hf < 2; ++hf) {
          const int j = j0 + wkey + g + 8 * hf;
          const bool ok = j < lm && a.mask.dense_ok(i0 + col, j);
          const float p = ok ? exp2f(st[nt][2 * hf + e] * a.scale_log2 - l2) : 0.f;
          st[nt][2 * hf + e] = p;
          dpt[nt][2 * hf + e] = p * (dpt[nt][2 * hf + e] - dd);
        }
      }
    // dV += Pᵀ dO and dK += dSᵀ Q: B operands (k = query, n = head dim) through ldmatrix.trans.
#pragma unroll
    for (int kk = 0; kk < BMQ / 16; ++kk) {
      unsigned pa[4], da[4];
      acc_to_a(pa, st[2 * kk], st[2 * kk + 1]);
      acc_to_a(da, dpt[2 * kk], dpt[2 * kk + 1]);
#pragma unroll
      for (int nd2 = 0; nd2 < DP / 16; ++nd2) {
        const int off = (kk * 16 + (lane & 15)) * LD + nd2 * 16 + (lane >> 4) * 8;
        unsigned of[4], qf[4];
        ldsm_x4_trans(of, dOt + off);
        ldsm_x4_trans(qf, Qt + off);
        mma_bf16(dv[2 * nd2], pa, of[0], of[1]);
        mma_bf16(dv[2 * nd2 + 1], pa, of[2], of[3]);
        mma_bf16(dk[2 * nd2], da, qf[0], qf[1]);
        mma_bf16(dk[2 * nd2 + 1], da, qf[2], qf[3]);
      }
    }
    __syncthreads();
  }
  cp_async_wait<0>();

  __nv_bfloat16* dkb = slice(a.dk, b, h);
  __nv_bfloat16* dvb = slice(a.dv, b, h);
#pragma unroll
  for (int hf = 0; hf < 2; ++hf) {
    const int j = j0 + wkey + g + 8 * hf;
    if (j < a.nk) {
      __nv_bfloat16* kr = dkb + static_cast<index_t>(j) * a.dk.row_stride;
      __nv_bfloat16* vr = dvb + static_cast<index_t>(j) * a.dv.row_stride;
#pragma unroll
      for (int nd = 0; nd < NDT; ++nd) {
        const int c = nd * 8 + tg * 2;
        if (c < a.dh) {
          store2(kr + c, dk[nd][2 * hf] * a.scale, dk[nd][2 * hf + 1] * a.scale);
          store2(vr + c, dv[nd][2 * hf], dv[nd][2 * hf + 1]);
        }
      }
    }
  }
#else
  __trap();
#endif
}

/// Backward, dQ. Each warp owns 16 queries: S = Q Kᵀ, P = 2^(scale·log2e·S − lse2), dP = dO Vᵀ,
/// dS = P ∘ (dP − D), dQ += dS K (dS from the accumulators as A, K rows through ldmatrix.trans).
template <int DP>
__global__ void __launch_bounds__(BwdTc<DP>::NT) attn_bwd_dq_tc(const BwdArgs<__nv_bfloat16> a, int n_qtiles) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  using C = BwdTc<DP>;
  constexpr int BM = C::BMD, BN = C::BND, LD = C::LD, NT = C::NT, NDT = DP / 8;
  extern __shared__ __align__(16) unsigned char attn_smem[];
  __nv_bfloat16* Qs = reinterpret_cast<__nv_bfloat16*>(attn_smem);  // (BM, LD)
  __nv_bfloat16* dOs = Qs + BM * LD;                                   // (BM, LD)
  __nv_bfloat16* Ks = dOs + BM * LD;                                   // 2 × (BN, LD)
  __nv_bfloat16* Vs = Ks + 2 * BN * LD;                                // 2 × (BN, LD)
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, tg = lane & 3;
  const int bh = blockIdx.x / n_qtiles;
  int qt = blockIdx.x - bh * n_qtiles;
  if (a.mask.triangular()) qt = n_qtiles - 1 - qt;
  const int b = bh / a.heads, h = bh - b * a.heads;
  const int i0 = qt * BM;
  const int i_last = (i0 + BM < a.nq ? i0 + BM : a.nq) - 1;
  const int nkt = (a.mask.lim(i_last) + BN - 1) / BN;
  const int dh8 = a.dh / 8;
  const __nv_bfloat16* kb = slice(a.k, b, h);
  const __nv_bfloat16* vb = slice(a.v, b, h);
  const index_t row_base = static_cast<index_t>(bh) * a.nq;

  load_tile_async<BM, DP, NT>(Qs, slice(a.q, b, h), a.q.row_stride, i0, a.nq, dh8, tid);
  load_tile_async<BM, DP, NT>(dOs, slice(a.dout, b, h), a.dout.row_stride, i0, a.nq, dh8, tid);
  cp_async_commit();
  if (nkt > 0) {
    load_tile_async<BN, DP, NT>(Ks, kb, a.k.row_stride, 0, a.nk, dh8, tid);
    load_tile_async<BN, DP, NT>(Vs, vb, a.v.row_stride, 0, a.nk, dh8, tid);
  }
  cp_async_commit();

  const int wrow = warp * 16;
  int lim[2];
  float l2[2], dd[2];
#pragma unroll
  for (int hf = 0; hf < 2; ++hf) {
    const int row = i0 + wrow + g + 8 * hf;
    const bool in = row < a.nq;
    lim[hf] = in ? a.mask.lim(row) : 0;
    l2[hf] = in ? a.lse2[row_base + row] : INFINITY;
    dd[hf] = in ? a.dsum[row_base + row] : 0.f;
  }
  float dq[NDT][4];
#pragma unroll
  for (int nd = 0; nd < NDT; ++nd)
#pragma unroll
    for (int e = 0; e < 4; ++e) dq[nd][e] = 0.f;

  for (int kt = 0; kt < nkt; ++kt) {
    const int buf = kt & 1;
    if (kt + 1 < nkt) {
      load_tile_async<BN, DP, NT>(Ks + (buf ^ 1) * BN * LD, kb, a.k.row_stride, (kt + 1) * BN, a.nk, dh8, tid);
      load_tile_async<BN, DP, NT>(Vs + (buf ^ 1) * BN * LD, vb, a.v.row_stride, (kt + 1) * BN, a.nk, dh8, tid);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const __nv_bfloat16* Kt = Ks + buf * BN * LD;
    const __nv_bfloat16* Vt = Vs + buf * BN * LD;

    float s[BN / 8][4], dp[BN / 8][4];
#pragma unroll
    for (int nt = 0; nt < BN / 8; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) s[nt][e] = dp[nt][e] = 0.f;
#pragma unroll
    for (int kk = 0; kk < DP / 16; ++kk) {
      unsigned qa[4], oa[4];
      ldsm_x4(qa, Qs + (wrow + (lane & 15)) * LD + kk * 16 + (lane >> 4) * 8);
      ldsm_x4(oa, dOs + (wrow + (lane & 15)) * LD + kk * 16 + (lane >> 4) * 8);
#pragma unroll
      for (int nb = 0; nb < BN / 16; ++nb) {
        const int off = (nb * 16 + ((lane >> 4) << 3) + (lane & 7)) * LD + kk * 16 + ((lane >> 3) & 1) * 8;
        unsigned kf[4], vf[4];
        ldsm_x4(kf, Kt + off);
        ldsm_x4(vf, Vt + off);
        mma_bf16(s[2 * nb], qa, kf[0], kf[1]);
        mma_bf16(s[2 * nb + 1], qa, kf[2], kf[3]);
        mma_bf16(dp[2 * nb], oa, vf[0], vf[1]);
        mma_bf16(dp[2 * nb + 1], oa, vf[2], vf[3]);
      }
    }
    const int j0 = kt * BN;
#pragma unroll
    for (int hf = 0; hf < 2; ++hf) {
      const int row = i0 + wrow + g + 8 * hf;
#pragma unroll
      for (int nt = 0; nt < BN / 8; ++nt)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int j = j0 + nt * 8 + tg * 2 + e;
          const bool ok = j < lim[hf] && a.mask.dense_ok(row, j);
          const float p = ok ? exp2f(s[nt][2 * hf + e] * a.scale_log2 - l2[hf]) : 0.f;
          dp[nt][2 * hf + e] = p * (dp[nt][2 * hf + e] - dd[hf]);
        }
    }
#pragma unroll
    for (int kk = 0; kk < BN / 16; ++kk) {
      unsigned da[4];
      acc_to_a(da, dp[2 * kk], dp[2 * kk + 1]);
#pragma unroll
      for (int nd2 = 0; nd2 < DP / 16; ++nd2) {
        unsigned kf[4];
        ldsm_x4_trans(kf, Kt + (kk * 16 + (lane & 15)) * LD + nd2 * 16 + (lane >> 4) * 8);
        mma_bf16(dq[2 * nd2], da, kf[0], kf[1]);
        mma_bf16(dq[2 * nd2 + 1], da, kf[2], kf[3]);
      }
    }
    __syncthreads();
  }
  cp_async_wait<0>();

  __nv_bfloat16* dqb = slice(a.dq, b, h);
#pragma unroll
  for (int hf = 0; hf < 2; ++hf) {
    const int row = i0 + wrow + g + 8 * hf;
    if (row < a.nq) {
      __nv_bfloat16* r = dqb + static_cast<index_t>(row) * a.dq.row_stride;
#pragma unroll
      for (int nd = 0; nd < NDT; ++nd) {
        const int c = nd * 8 + tg * 2;
        if (c < a.dh) store2(r + c, dq[nd][2 * hf] * a.scale, dq[nd][2 * hf + 1] * a.scale);
      }
    }
  }
#else
  __trap();
#endif
}

// ================================================================================================
// CUDA-core kernels (float arithmetic; S = float or __nv_bfloat16; any Dh ≤ 128, any strides).
// A block is 4 warps; a warp owns R = 8 rows; tiles are 32 rows (one per lane). Shared rows that
// lanes read at lane-dependent addresses have an odd pitch (DP+1 floats) so the 32 lanes hit 32
// distinct banks; rows read by all lanes at once (broadcasts) are unpadded.
// ================================================================================================
template <int DP>
struct Simple {
  static constexpr int R = 8, NW = 4, NT = 128, TILE = 32, LDP = DP + 1, NC = DP / 32;
  static constexpr std::size_t smem_fwd = static_cast<std::size_t>(2 * TILE * LDP + TILE * DP) * sizeof(float);
  static constexpr std::size_t smem_dq = static_cast<std::size_t>(2 * TILE * LDP + 2 * TILE * DP) * sizeof(float);
  static constexpr std::size_t smem_dkdv =
      static_cast<std::size_t>(2 * TILE * LDP + 2 * TILE * DP + 3 * TILE) * sizeof(float);
};

/// Rows [row0, row0 + 32) of one (b, h) slice into a (32, pitch) float tile; zeros past n rows or Dh.
template <int DP, class S>
__device__ __forceinline__ void load_rows_f32(float* sm, int pitch, const S* base, index_t row_stride, int row0, int n,
                                              int dh, int tid) {
  for (int idx = tid; idx < 32 * DP; idx += Simple<DP>::NT) {
    const int r = idx / DP, c = idx - r * DP;
    sm[r * pitch + c] = row0 + r < n && c < dh ? to_f32(base[static_cast<index_t>(row0 + r) * row_stride + c]) : 0.f;
  }
}

template <class S, int DP>
__global__ void __launch_bounds__(Simple<DP>::NT) attn_fwd_simple(const FwdArgs<S> a, int n_qtiles) {
  using C = Simple<DP>;
  constexpr int R = C::R, TILE = C::TILE, LDP = C::LDP, NC = C::NC;
  extern __shared__ __align__(16) unsigned char attn_smem[];
  float* Ks = reinterpret_cast<float*>(attn_smem);  // (TILE, LDP): lane j reads row j
  float* Vs = Ks + TILE * LDP;                       // (TILE, LDP): lanes read one row, channel = lane
  float* Qs = Vs + TILE * LDP;                       // (TILE, DP): broadcast
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int bh = blockIdx.x / n_qtiles;
  int qt = blockIdx.x - bh * n_qtiles;
  if (a.mask.triangular()) qt = n_qtiles - 1 - qt;
  const int b = bh / a.heads, h = bh - b * a.heads;
  const int i0 = qt * TILE;
  const int i_last = (i0 + TILE < a.nq ? i0 + TILE : a.nq) - 1;
  const int nkt = (a.mask.lim(i_last) + TILE - 1) / TILE;
  const S* kb = slice(a.k, b, h);
  const S* vb = slice(a.v, b, h);
  load_rows_f32<DP>(Qs, DP, slice(a.q, b, h), a.q.row_stride, i0, a.nq, a.dh, tid);

  int row[R], lim[R];
  float m[R], l[R], acc[R][NC];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    row[r] = i0 + warp * R + r;
    lim[r] = row[r] < a.nq ? a.mask.lim(row[r]) : 0;
    m[r] = -INFINITY;
    l[r] = 0.f;
#pragma unroll
    for (int t = 0; t < NC; ++t) acc[r][t] = 0.f;
  }
  for (int kt = 0; kt < nkt; ++kt) {
    const int j0 = kt * TILE;
    __syncthreads();  // the previous tile is no longer read (and, first time, Qs is complete)
    load_rows_f32<DP>(Ks, LDP, kb, a.k.row_stride, j0, a.nk, a.dh, tid);
    load_rows_f32<DP>(Vs, LDP, vb, a.v.row_stride, j0, a.nk, a.dh, tid);
    __syncthreads();
    const int j = j0 + lane;
    const float* kr = Ks + lane * LDP;
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const float* qr = Qs + (warp * R + r) * DP;
      float dot = 0.f;
#pragma unroll 8
      for (int c = 0; c < a.dh; ++c) dot = fmaf(qr[c], kr[c], dot);
      float x = dot * a.scale_log2;
      if (!(j < lim[r] && a.mask.dense_ok(row[r], j))) x = -INFINITY;
      const float m_new = fmaxf(m[r], warp_max(x));
      const float m_use = m_new == -INFINITY ? 0.f : m_new;
      const float alpha = exp2f(m[r] - m_use);
      const float p = exp2f(x - m_use);
      l[r] = l[r] * alpha + warp_sum(p);
      m[r] = m_new;
#pragma unroll
      for (int t = 0; t < NC; ++t) acc[r][t] *= alpha;
#pragma unroll 8
      for (int jj = 0; jj < TILE; ++jj) {
        const float pj = __shfl_sync(kFull, p, jj);
#pragma unroll
        for (int t = 0; t < NC; ++t) acc[r][t] = fmaf(pj, Vs[jj * LDP + lane + 32 * t], acc[r][t]);
      }
    }
  }
  S* ob = slice(a.o, b, h);
#pragma unroll
  for (int r = 0; r < R; ++r) {
    if (row[r] >= a.nq) continue;
    const float inv = l[r] > 0.f ? 1.f / l[r] : 0.f;
    S* orow = ob + static_cast<index_t>(row[r]) * a.o.row_stride;
#pragma unroll
    for (int t = 0; t < NC; ++t) {
      const int c = lane + 32 * t;
      if (c < a.dh) orow[c] = from_f32<S>(acc[r][t] * inv);
    }
    if (a.lse && lane == 0)
      a.lse[static_cast<index_t>(bh) * a.nq + row[r]] = l[r] > 0.f ? (m[r] + log2f(l[r])) * kLn2 : -INFINITY;
  }
}

template <class S, int DP>
__global__ void __launch_bounds__(Simple<DP>::NT) attn_bwd_dq_simple(const BwdArgs<S> a, int n_qtiles) {
  using C = Simple<DP>;
  constexpr int R = C::R, TILE = C::TILE, LDP = C::LDP, NC = C::NC;
  extern __shared__ __align__(16) unsigned char attn_smem[];
  float* Ks = reinterpret_cast<float*>(attn_smem);  // (TILE, LDP): lane rows for S, channel reads for dS K
  float* Vs = Ks + TILE * LDP;                       // (TILE, LDP)
  float* Qs = Vs + TILE * LDP;                       // (TILE, DP) broadcast
  float* dOs = Qs + TILE * DP;                       // (TILE, DP) broadcast
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int bh = blockIdx.x / n_qtiles;
  int qt = blockIdx.x - bh * n_qtiles;
  if (a.mask.triangular()) qt = n_qtiles - 1 - qt;
  const int b = bh / a.heads, h = bh - b * a.heads;
  const int i0 = qt * TILE;
  const int i_last = (i0 + TILE < a.nq ? i0 + TILE : a.nq) - 1;
  const int nkt = (a.mask.lim(i_last) + TILE - 1) / TILE;
  const S* kb = slice(a.k, b, h);
  const S* vb = slice(a.v, b, h);
  const index_t row_base = static_cast<index_t>(bh) * a.nq;
  load_rows_f32<DP>(Qs, DP, slice(a.q, b, h), a.q.row_stride, i0, a.nq, a.dh, tid);
  load_rows_f32<DP>(dOs, DP, slice(a.dout, b, h), a.dout.row_stride, i0, a.nq, a.dh, tid);

  int row[R], lim[R];
  float l2[R], dd[R], acc[R][NC];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    row[r] = i0 + warp * R + r;
    const bool in = row[r] < a.nq;
    lim[r] = in ? a.mask.lim(row[r]) : 0;
    l2[r] = in ? a.lse2[row_base + row[r]] : INFINITY;
    dd[r] = in ? a.dsum[row_base + row[r]] : 0.f;
#pragma unroll
    for (int t = 0; t < NC; ++t) acc[r][t] = 0.f;
  }
  for (int kt = 0; kt < nkt; ++kt) {
    const int j0 = kt * TILE;
    __syncthreads();
    load_rows_f32<DP>(Ks, LDP, kb, a.k.row_stride, j0, a.nk, a.dh, tid);
    load_rows_f32<DP>(Vs, LDP, vb, a.v.row_stride, j0, a.nk, a.dh, tid);
    __syncthreads();
    const int j = j0 + lane;
    const float* kr = Ks + lane * LDP;
    const float* vr = Vs + lane * LDP;
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const float* qr = Qs + (warp * R + r) * DP;
      const float* dr = dOs + (warp * R + r) * DP;
      float sc = 0.f, dpv = 0.f;
#pragma unroll 8
      for (int c = 0; c < a.dh; ++c) {
        sc = fmaf(qr[c], kr[c], sc);
        dpv = fmaf(dr[c], vr[c], dpv);
      }
      const bool ok = j < lim[r] && a.mask.dense_ok(row[r], j);
      const float p = ok ? exp2f(sc * a.scale_log2 - l2[r]) : 0.f;
      const float ds = p * (dpv - dd[r]);
#pragma unroll 8
      for (int jj = 0; jj < TILE; ++jj) {
        const float dsj = __shfl_sync(kFull, ds, jj);
#pragma unroll
        for (int t = 0; t < NC; ++t) acc[r][t] = fmaf(dsj, Ks[jj * LDP + lane + 32 * t], acc[r][t]);
      }
    }
  }
  S* dqb = slice(a.dq, b, h);
#pragma unroll
  for (int r = 0; r < R; ++r) {
    if (row[r] >= a.nq) continue;
    S* qrow = dqb + static_cast<index_t>(row[r]) * a.dq.row_stride;
#pragma unroll
    for (int t = 0; t < NC; ++t) {
      const int c = lane + 32 * t;
      if (c < a.dh) qrow[c] = from_f32<S>(acc[r][t] * a.scale);
    }
  }
}

template <class S, int DP>
__global__ void __launch_bounds__(Simple<DP>::NT) attn_bwd_dkdv_simple(const BwdArgs<S> a, int n_ktiles) {
  using C = Simple<DP>;
  constexpr int R = C::R, TILE = C::TILE, LDP = C::LDP, NC = C::NC;
  extern __shared__ __align__(16) unsigned char attn_smem[];
  float* Qs = reinterpret_cast<float*>(attn_smem);  // (TILE, LDP): lane i reads query row i
  float* dOs = Qs + TILE * LDP;                      // (TILE, LDP)
  float* Ks = dOs + TILE * LDP;                      // (TILE, DP) broadcast: this block's 32 keys
  float* Vs = Ks + TILE * DP;                        // (TILE, DP)
  float* lse2s = Vs + TILE * DP;                     // TILE
  float* Ds = lse2s + TILE;                          // TILE
  int* lims = reinterpret_cast<int*>(Ds + TILE);     // TILE
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int bh = blockIdx.x / n_ktiles, kt = blockIdx.x - bh * n_ktiles;
  const int b = bh / a.heads, h = bh - b * a.heads;
  const int j0 = kt * TILE;
  const S* qb = slice(a.q, b, h);
  const S* dob = slice(a.dout, b, h);
  const index_t row_base = static_cast<index_t>(bh) * a.nq;
  load_rows_f32<DP>(Ks, DP, slice(a.k, b, h), a.k.row_stride, j0, a.nk, a.dh, tid);
  load_rows_f32<DP>(Vs, DP, slice(a.v, b, h), a.v.row_stride, j0, a.nk, a.dh, tid);

  int key[R];
  float dk[R][NC], dv[R][NC];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    key[r] = j0 + warp * R + r;
#pragma unroll
    for (int t = 0; t < NC; ++t) dk[r][t] = dv[r][t] = 0.f;
  }
  const int nqt = (a.nq + TILE - 1) / TILE;
  for (int qt = a.mask.first_query(j0) / TILE; qt < nqt; ++qt) {
    const int i0 = qt * TILE;
    __syncthreads();
    load_rows_f32<DP>(Qs, LDP, qb, a.q.row_stride, i0, a.nq, a.dh, tid);
    load_rows_f32<DP>(dOs, LDP, dob, a.dout.row_stride, i0, a.nq, a.dh, tid);
    if (tid < TILE) {
      const int i = i0 + tid;
      const bool in = i < a.nq;
      lse2s[tid] = in ? a.lse2[row_base + i] : INFINITY;
      Ds[tid] = in ? a.dsum[row_base + i] : 0.f;
      lims[tid] = in ? a.mask.lim(i) : 0;
    }
    __syncthreads();
    const int i = i0 + lane;
    const float* qr = Qs + lane * LDP;
    const float* dr = dOs + lane * LDP;
    const float l2 = lse2s[lane], dd = Ds[lane];
    const int lm = lims[lane];
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const float* kr = Ks + (warp * R + r) * DP;
      const float* vr = Vs + (warp * R + r) * DP;
      float sc = 0.f, dpv = 0.f;
#pragma unroll 8
      for (int c = 0; c < a.dh; ++c) {
        sc = fmaf(qr[c], kr[c], sc);
        dpv = fmaf(dr[c], vr[c], dpv);
      }
      const bool ok = key[r] < lm && a.mask.dense_ok(i, key[r]);
      const float p = ok ? exp2f(sc * a.scale_log2 - l2) : 0.f;
      const float ds = p * (dpv - dd);
#pragma unroll 8
      for (int ii = 0; ii < TILE; ++ii) {
        const float pi = __shfl_sync(kFull, p, ii), dsi = __shfl_sync(kFull, ds, ii);
#pragma unroll
        for (int t = 0; t < NC; ++t) {
          dv[r][t] = fmaf(pi, dOs[ii * LDP + lane + 32 * t], dv[r][t]);
          dk[r][t] = fmaf(dsi, Qs[ii * LDP + lane + 32 * t], dk[r][t]);
        }
      }
    }
  }
  S* dkb = slice(a.dk, b, h);
  S* dvb = slice(a.dv, b, h);
#pragma unroll
  for (int r = 0; r < R; ++r) {
    if (key[r] >= a.nk) continue;
    S* kr = dkb + static_cast<index_t>(key[r]) * a.dk.row_stride;
    S* vr = dvb + static_cast<index_t>(key[r]) * a.dv.row_stride;
#pragma unroll
    for (int t = 0; t < NC; ++t) {
      const int c = lane + 32 * t;
      if (c < a.dh) {
        kr[c] = from_f32<S>(dk[r][t] * a.scale);
        vr[c] = from_f32<S>(dv[r][t]);
      }
    }
  }
}

/// Backward prep, one warp per query row: D_i = Σ_c dO_ic O_ic and lse2_i = log2(e)·lse_i (+∞ when
/// lse_i = −∞, so that every P of an empty row is 2^(−∞) = 0 without a NaN).
template <class S>
__global__ void __launch_bounds__(256)
    attn_bwd_prep(const AttnOperand<const S> o, const AttnOperand<const S> dout, const float* __restrict__ lse,
                  float* __restrict__ lse2, float* __restrict__ dsum, int heads, int nq, int dh, index_t rows) {
  const index_t w = (static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (w >= rows) return;  // whole warps leave together (rows are warp-granular)
  const index_t bh = w / nq;
  const int i = static_cast<int>(w - bh * nq);
  const int b = static_cast<int>(bh / heads), h = static_cast<int>(bh % heads);
  const S* orow = slice(o, b, h) + static_cast<index_t>(i) * o.row_stride;
  const S* drow = slice(dout, b, h) + static_cast<index_t>(i) * dout.row_stride;
  float acc = 0.f;
  for (int c = lane; c < dh; c += 32) acc = fmaf(to_f32(orow[c]), to_f32(drow[c]), acc);
  acc = warp_sum(acc);
  if (lane == 0) {
    dsum[w] = acc;
    const float x = lse[w];
    lse2[w] = x == -INFINITY ? INFINITY : x * kLog2e;
  }
}

// ================================================================================================
// Host side: validation, dispatch, launch.
// ================================================================================================

/// Throws jepa::ShapeError naming the field unless the call is valid for this backend.
inline void validate(const AttnShape& s, const AttnMask& mask, std::string_view fn) {
  const auto field = [&](std::string_view f) { return jepa::detail::cat(fn, ": AttnShape.", f); };
  constexpr index_t kMaxLen = index_t{1} << 30;  // row indices are 32-bit in the kernels
  check_field<ShapeError>(s.batch >= 0, field("batch"), s.batch, "must be >= 0");
  check_field<ShapeError>(s.heads >= 0, field("heads"), s.heads, "must be >= 0");
  check_field<ShapeError>(s.q_len >= 0 && s.q_len <= kMaxLen, field("q_len"), s.q_len, "must be in [0, 2^30] (Nq)");
  check_field<ShapeError>(s.kv_len >= 0 && s.kv_len <= kMaxLen, field("kv_len"), s.kv_len,
                          "must be in [0, 2^30] (Nk)");
  check_field<ShapeError>(s.head_dim >= 1 && s.head_dim <= kMaxHeadDim, field("head_dim"), s.head_dim,
                          "must be in [1, 128] on the CUDA backend (Dh; kernels exist for Dh padded to 32, 64, 96, 128)");
  check_field<ShapeError>(std::isfinite(s.scale), field("scale"), s.scale, "must be finite");
  check_field<ShapeError>(s.batch * s.heads <= (index_t{1} << 24), jepa::detail::cat(fn, ": AttnShape.batch·heads"),
                          s.batch * s.heads, "must be <= 2^24");
  if (mask.kind == AttnMask::Kind::block_causal)
    check_field<ShapeError>(mask.block >= 1, jepa::detail::cat(fn, ": AttnMask.block"), mask.block,
                            "block_causal needs a block size >= 1");
  if (mask.kind == AttnMask::Kind::dense) {
    check_field<ShapeError>(mask.allowed != nullptr || s.q_len == 0 || s.kv_len == 0,
                            jepa::detail::cat(fn, ": AttnMask.allowed"), "null",
                            "a dense mask needs a (Nq, Nk) byte array (in device memory on the CUDA backend)");
    check_field<ShapeError>(mask.cols >= s.kv_len, jepa::detail::cat(fn, ": AttnMask.cols"), mask.cols,
                            jepa::detail::cat("a dense mask row must hold kv_len = ", s.kv_len, " entries"));
  }
}

inline void check_operand(const void* p, bool needed, std::string_view fn, std::string_view name) {
  check_field<ShapeError>(p != nullptr || !needed, jepa::detail::cat(fn, ": ", name, ".data"), "null",
                          "operand pointer must be non-null device memory when the shape is non-empty");
}

/// Whether a bf16 operand can be staged by 16-byte cp.async rows: aligned base, strides multiple of 8.
template <class T>
bool tile_aligned(const AttnOperand<T>& x) {
  return aligned16(x.data) && x.batch_stride % 8 == 0 && x.row_stride % 8 == 0 && x.head_stride % 8 == 0;
}

/// True when the current device runs the mma.sync bf16 kernels (compute capability 8.0 or newer).
inline bool device_has_bf16_mma() {
  int dev = 0, major = 0;
  JEPA_CUDA_CHECK(cudaGetDevice(&dev));
  JEPA_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
  return major >= 8;
}

template <class K, class... Args>
void launch(K* kernel, index_t blocks, int threads, std::size_t smem, cudaStream_t stream, const char* what,
            const Args&... args) {
  if (blocks <= 0) return;
  if (blocks > index_t{0x7fffffff})
    throw ShapeError(jepa::detail::cat("jepa: ", what, ": ", blocks, " thread blocks exceed the grid limit 2^31 - 1"));
  if (smem > 48 * 1024)
    cuda_check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)),
               "cudaFuncSetAttribute(attention kernel, MaxDynamicSharedMemorySize)", __FILE__, __LINE__);
  kernel<<<static_cast<unsigned>(blocks), threads, smem, stream>>>(args...);
  cuda_check(cudaGetLastError(), what, __FILE__, __LINE__);
}

/// Calls f(std::integral_constant<int, Dp>) for the padded head dim of Dh.
template <class F>
void with_padded_dim(index_t dh, F&& f) {
  switch (padded_head_dim(dh)) {
    case 32: f(std::integral_constant<int, 32>{}); break;
    case 64: f(std::integral_constant<int, 64>{}); break;
    case 96: f(std::integral_constant<int, 96>{}); break;
    default: f(std::integral_constant<int, 128>{}); break;
  }
}

template <class T>
AttnOperand<const device_t<T>> dev_operand(const AttnOperand<const T>& x) {
  return {dev(x.data), x.batch_stride, x.row_stride, x.head_stride};
}
template <class T>
AttnOperand<device_t<T>> dev_operand(const AttnOperand<T>& x) {
  return {dev(x.data), x.batch_stride, x.row_stride, x.head_stride};
}

inline DevMask dev_mask(const AttnMask& m, const AttnShape& s) {
  return {static_cast<int>(m.kind), static_cast<int>(s.q_len), static_cast<int>(s.kv_len), m.block, m.allowed, m.cols};
}

inline std::size_t align256(std::size_t n) { return (n + 255) / 256 * 256; }

}  // namespace detail::attn

/// Device workspace attention_backward needs: D and lse2, (B,H,Nq) fp32 each (0 for an empty shape).
inline std::size_t attention_backward_workspace_bytes(const AttnShape& s) {
  if (s.batch <= 0 || s.heads <= 0 || s.q_len <= 0) return 0;
  return 2 * detail::attn::align256(static_cast<std::size_t>(s.batch * s.heads * s.q_len) * sizeof(float));
}

/// o = softmax(scale · q kᵀ + mask) v, and lse (B,H,Nq) fp32 in natural log when non-null (the
/// backward needs it). o and lse are overwritten. All pointers, the dense mask's included, are device
/// memory; the work is queued on `stream` (no host synchronisation).
template <DeviceReal T>
void attention_forward(cudaStream_t stream, const AttnShape& s, AttnOperand<const T> q, AttnOperand<const T> k,
                       AttnOperand<const T> v, AttnOperand<T> o, float* lse, const AttnMask& mask) {
  namespace impl = detail::attn;
  constexpr std::string_view fn = "cuda::attention_forward";
  impl::validate(s, mask, fn);
  const bool rows = s.batch * s.heads * s.q_len > 0, keys = s.batch * s.heads * s.kv_len > 0;
  impl::check_operand(q.data, rows, fn, "q");
  impl::check_operand(o.data, rows, fn, "o");
  impl::check_operand(k.data, rows && keys, fn, "k");
  impl::check_operand(v.data, rows && keys, fn, "v");
  if (!rows) return;

  using S = device_t<T>;
  const impl::FwdArgs<S> args{impl::dev_operand(q),
                              impl::dev_operand(k),
                              impl::dev_operand(v),
                              impl::dev_operand(o),
                              lse,
                              static_cast<int>(s.heads),
                              static_cast<int>(s.q_len),
                              static_cast<int>(s.kv_len),
                              static_cast<int>(s.head_dim),
                              static_cast<float>(s.scale * 1.4426950408889634),
                              impl::dev_mask(mask, s)};
  const index_t BH = s.batch * s.heads;
  bool tensor_cores = false;
  if constexpr (std::is_same_v<T, jepa::bf16>)
    tensor_cores = s.head_dim % 8 == 0 && impl::tile_aligned(q) && impl::tile_aligned(k) && impl::tile_aligned(v) &&
                   impl::tile_aligned(o) && impl::device_has_bf16_mma();
  impl::with_padded_dim(s.head_dim, [&](auto dp) {
    constexpr int DP = decltype(dp)::value;
    if constexpr (std::is_same_v<T, jepa::bf16>) {
      if (tensor_cores) {
        constexpr int MT = impl::kFwdMt<DP>;
        using C = impl::FwdTc<DP, MT>;
        const index_t nqt = (s.q_len + C::BM - 1) / C::BM;
        impl::launch(impl::attn_fwd_tc<DP, MT>, nqt * BH, C::NT, C::smem, stream,
                     "launch of cuda::attention_forward (tensor cores)", args, static_cast<int>(nqt));
        return;
      }
    }
    using C = impl::Simple<DP>;
    const index_t nqt = (s.q_len + C::TILE - 1) / C::TILE;
    impl::launch(impl::attn_fwd_simple<S, DP>, nqt * BH, C::NT, C::smem_fwd, stream,
                 "launch of cuda::attention_forward", args, static_cast<int>(nqt));
  });
}

/// FlashAttention-2 backward: dq, dk, dv (overwritten) from q, k, v, the forward's o and lse (fp32,
/// (B,H,Nq)) and dout. `workspace` is attention_backward_workspace_bytes(s) bytes of device memory
/// (16-byte aligned; contents need not be initialised and are clobbered). Queued on `stream`.
template <DeviceReal T>
void attention_backward(cudaStream_t stream, const AttnShape& s, AttnOperand<const T> q, AttnOperand<const T> k,
                        AttnOperand<const T> v, AttnOperand<const T> o, AttnOperand<const T> dout, const float* lse,
                        AttnOperand<T> dq, AttnOperand<T> dk, AttnOperand<T> dv, const AttnMask& mask, void* workspace,
                        std::size_t workspace_bytes) {
  namespace impl = detail::attn;
  constexpr std::string_view fn = "cuda::attention_backward";
  impl::validate(s, mask, fn);
  const bool rows = s.batch * s.heads * s.q_len > 0, keys = s.batch * s.heads * s.kv_len > 0;
  impl::check_operand(q.data, rows, fn, "q");
  impl::check_operand(o.data, rows, fn, "o");
  impl::check_operand(dout.data, rows, fn, "dout");
  impl::check_operand(dq.data, rows, fn, "dq");
  impl::check_operand(lse, rows, fn, "lse");
  impl::check_operand(k.data, keys, fn, "k");
  impl::check_operand(v.data, keys, fn, "v");
  impl::check_operand(dk.data, keys, fn, "dk");
  impl::check_operand(dv.data, keys, fn, "dv");
  const std::size_t need = attention_backward_workspace_bytes(s);
  if (need > 0) {
    impl::check_operand(workspace, true, fn, "workspace");
    if (workspace_bytes < need)
      throw ShapeError(jepa::detail::cat("jepa: ", fn, ": workspace of ", workspace_bytes,
                                         " bytes is too small: (B, H, Nq) = (", s.batch, ", ", s.heads, ", ", s.q_len,
                                         ") needs attention_backward_workspace_bytes = ", need));
    if (!detail::aligned16(workspace))
      throw ShapeError(jepa::detail::cat("jepa: ", fn, ": workspace must be 16-byte aligned"));
  }
  const index_t BH = s.batch * s.heads;
  if (BH == 0) return;

  using S = device_t<T>;
  const index_t nrows = BH * s.q_len;
  float* lse2 = static_cast<float*>(workspace);
  float* dsum = need > 0 ? reinterpret_cast<float*>(static_cast<std::byte*>(workspace) + need / 2) : nullptr;
  if (nrows > 0)
    impl::launch(impl::attn_bwd_prep<S>, (nrows * 32 + 255) / 256, 256, 0, stream,
                 "launch of cuda::attention_backward (D, lse2)", impl::dev_operand(o), impl::dev_operand(dout), lse,
                 lse2, dsum, static_cast<int>(s.heads), static_cast<int>(s.q_len), static_cast<int>(s.head_dim),
                 nrows);

  const impl::BwdArgs<S> args{impl::dev_operand(q),
                              impl::dev_operand(k),
                              impl::dev_operand(v),
                              impl::dev_operand(dout),
                              impl::dev_operand(dq),
                              impl::dev_operand(dk),
                              impl::dev_operand(dv),
                              lse2,
                              dsum,
                              static_cast<int>(s.heads),
                              static_cast<int>(s.q_len),
                              static_cast<int>(s.kv_len),
                              static_cast<int>(s.head_dim),
                              static_cast<float>(s.scale * 1.4426950408889634),
                              static_cast<float>(s.scale),
                              impl::dev_mask(mask, s)};
  bool tensor_cores = false;
  if constexpr (std::is_same_v<T, jepa::bf16>)
    tensor_cores = s.head_dim % 8 == 0 && impl::tile_aligned(q) && impl::tile_aligned(k) && impl::tile_aligned(v) &&
                   impl::tile_aligned(dout) && impl::tile_aligned(dq) && impl::tile_aligned(dk) &&
                   impl::tile_aligned(dv) && impl::device_has_bf16_mma();
  impl::with_padded_dim(s.head_dim, [&](auto dp) {
    constexpr int DP = decltype(dp)::value;
    if constexpr (std::is_same_v<T, jepa::bf16>) {
      if (tensor_cores) {
        using C = impl::BwdTc<DP>;
        const index_t nqt = (s.q_len + C::BMD - 1) / C::BMD, nkt = (s.kv_len + C::BN - 1) / C::BN;
        impl::launch(impl::attn_bwd_dq_tc<DP>, nqt * BH, C::NT, C::smem_q, stream,
                     "launch of cuda::attention_backward (dq, tensor cores)", args, static_cast<int>(nqt));
        impl::launch(impl::attn_bwd_dkdv_tc<DP>, nkt * BH, C::NT, C::smem_kv, stream,
                     "launch of cuda::attention_backward (dk, dv, tensor cores)", args, static_cast<int>(nkt));
        return;
      }
    }
    using C = impl::Simple<DP>;
    const index_t nqt = (s.q_len + C::TILE - 1) / C::TILE, nkt = (s.kv_len + C::TILE - 1) / C::TILE;
    impl::launch(impl::attn_bwd_dq_simple<S, DP>, nqt * BH, C::NT, C::smem_dq, stream,
                 "launch of cuda::attention_backward (dq)", args, static_cast<int>(nqt));
    impl::launch(impl::attn_bwd_dkdv_simple<S, DP>, nkt * BH, C::NT, C::smem_dkdv, stream,
                 "launch of cuda::attention_backward (dk, dv)", args, static_cast<int>(nkt));
  });
}

}  // namespace jepa::backend::cuda
