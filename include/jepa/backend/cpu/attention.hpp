// jepa/backend/cpu/attention.hpp — fused multi-head attention on the CPU: flash forward and backward,
// and a naive materialising reference.
//
// Per batch b and head h, with q: (Nq,Dh), k, v: (Nk,Dh), o: (Nq,Dh), lse: (Nq):
//   S_ij  = scale · q_i·k_j   if the mask allows (i, j),  −∞ otherwise
//   P     = softmax_rows(S),   o = P v,   lse_i = log Σ_j exp(S_ij)
// Backward (FlashAttention-2, Dao 2023), given dO = ∂L/∂o and the forward's o and lse:
//   D_i = Σ_c dO_ic O_ic,   P_ij = exp(S_ij − lse_i)
//   dV = Pᵀ dO,   dP = dO Vᵀ,   dS = P ∘ (dP − D),   dQ = scale · dS K,   dK = scale · dSᵀ Q
// A query row with no allowed key has o = 0, lse = −∞, P = 0, and contributes nothing to any
// gradient (no NaN). Nq ≠ Nk, any Dh ≥ 1 and any lengths ≥ 0 are allowed.
//
// Layout: operands are AttnOperand views (jepa/backend/attention_args.hpp), read and written in place:
// q, k, v typically live in the packed (B,N,3·H·Dh) qkv buffer and o in a (B,N,H·Dh) buffer.
// lse is (B,H,Nq) contiguous. Accumulation: o, lse, dq, dk, dv are all OVERWRITTEN.
//
// Flash algorithm (no Nq×Nk matrix is ever formed). Scores are kept in base 2, S2 = log2(e)·S, and
// each query tile walks the key tiles with an online softmax (running max m, running sum l):
//   m' = max(m, max_j S2_ij),  α = 2^(m − m'),  l' = α l + Σ_j 2^(S2_ij − m'),
//   Oacc' = α ∘ Oacc + 2^(S2 − m') V,    finally o = Oacc / l,  lse = ln2 · (m + log2 l).
// When m' = −∞ (nothing allowed yet) the reference m' is replaced by 0 so that 2^(−∞ − 0) = 0.
// Key tiles a causal / block-causal mask disallows for the whole query tile are skipped; skipping is
// exact (a fully masked tile adds P = 0 and has α = 1). The backward recomputes P tile by tile from lse.
//
// Determinism: every output element is produced by one thread with a fixed summation order that does
// not depend on the number of threads or on how work is split (bitwise-identical results for any
// OMP_NUM_THREADS). Both backward schedules below compute every value with identical operations.
//
// Threads: OpenMP over (batch·head × query tile) in the forward, split into contiguous cost-balanced
// ranges (a thread packs the k, v of a head once per range). The backward runs either
//   (a) one (batch, head) per thread: key tiles outer, query tiles inner, dQ accumulated per head; or
//   (b) when B·H is too small to occupy the threads: pass 1 over (batch·head × key tile) for dK, dV,
//       pass 2 over (batch·head × query tile) for dQ (recomputes S and dP: 7 instead of 5 GEMMs).
// No BLAS is called inside a parallel region; the GEMM micro-kernels below are self-contained.
// An exception inside a parallel region (allocation failure) is rethrown after it.
//
// Kernels (attention_kernels.inc): register-blocked micro-kernels written with GNU vector extensions
// (GCC, Clang) at the widest width the target enables (AVX-512: 16 floats, AVX: 8, otherwise 4;
// JEPA_ATTENTION_SIMD_BYTES overrides). A translation unit compiled below AVX-512 with GCC on x86 also
// gets an AVX-512 build of the kernels, which attention_flash_forward/backward_dispatch run when the
// CPU has AVX-512 (a program built for x86-64-v3 uses the whole vector width of the CPU it runs on). float uses a polynomial 2^x (< 1 ulp); double uses std::exp2 (for gradient checks).
//
// Scratch: per-thread, grow-only thread_local buffers (64-byte aligned), allocated the first time a
// thread needs a given size and reused afterwards; their contents never carry over between calls.
// Per thread, roughly: forward 2·Nk·Dh + 3·64·Dh elements; backward (a) 3·Nq·Dh, (b) 3·Nq·Dh + 3·Nk·Dh.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <limits>
#include <memory>
#include <new>
#include <numbers>
#include <string_view>
#include <type_traits>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "jepa/backend/attention_args.hpp"
#include "jepa/backend/cpu/cpu_features.hpp"
#include "jepa/config.hpp"
#include "jepa/core/error.hpp"
#include "jepa/core/tensor.hpp"

#if !defined(__GNUC__) && !defined(__clang__)
#error "jepa/backend/cpu/attention.hpp needs GCC or Clang (it uses GNU vector extensions)"
#endif


// The kernels at the translation unit's own vector width (an inline namespace).
#include "jepa/backend/cpu/attention_kernels.inc"

// The same kernels for AVX-512, selected at run time (GCC on x86, when the translation unit is compiled
// below AVX-512; not in CUDA host passes). JEPA_NO_AVX512_DISPATCH leaves it out.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__) && \
    !defined(__AVX512F__) && !defined(JEPA_ATTENTION_SIMD_BYTES) && !defined(JEPA_NO_AVX512_DISPATCH)
#define JEPA_ATTENTION_AVX512_VARIANT 1
#pragma GCC push_options
#pragma GCC target("avx2,fma,avx512f,avx512dq,avx512bw,avx512vl")
#define JEPA_DETAIL_ATTN_VARIANT_BYTES 64
#include "jepa/backend/cpu/attention_kernels.inc"
#undef JEPA_DETAIL_ATTN_VARIANT_BYTES
#pragma GCC pop_options
#endif

namespace jepa::backend::cpu {

/// True when the fused attention runs its AVX-512 build on this CPU.
inline bool attention_uses_avx512() {
#if defined(JEPA_ATTENTION_AVX512_VARIANT)
  static const bool yes = cpu_features().avx512 && std::getenv("JEPA_ATTENTION_NO_AVX512") == nullptr;
  return yes;
#else
  return detail::attn::kSimdBytes == 64;
#endif
}

/// attention_flash_forward at the widest vector width this CPU runs (the backend's entry point).
template <class T>
void attention_flash_forward_dispatch(const AttnShape& s, AttnOperand<const T> q, AttnOperand<const T> k,
                                      AttnOperand<const T> v, AttnOperand<T> o, T* lse, const AttnMask& mask) {
#if defined(JEPA_ATTENTION_AVX512_VARIANT)
  if (attention_uses_avx512()) return simd64_fma::attention_flash_forward<T>(s, q, k, v, o, lse, mask);
#endif
  attention_flash_forward<T>(s, q, k, v, o, lse, mask);
}

/// attention_flash_backward at the widest vector width this CPU runs (the backend's entry point).
template <class T>
void attention_flash_backward_dispatch(const AttnShape& s, AttnOperand<const T> q, AttnOperand<const T> k,
                                       AttnOperand<const T> v, AttnOperand<const T> o, AttnOperand<const T> dout,
                                       const T* lse, AttnOperand<T> dq, AttnOperand<T> dk, AttnOperand<T> dv,
                                       const AttnMask& mask) {
#if defined(JEPA_ATTENTION_AVX512_VARIANT)
  if (attention_uses_avx512())
    return simd64_fma::attention_flash_backward<T>(s, q, k, v, o, dout, lse, dq, dk, dv, mask);
#endif
  attention_flash_backward<T>(s, q, k, v, o, dout, lse, dq, dk, dv, mask);
}

}  // namespace jepa::backend::cpu
