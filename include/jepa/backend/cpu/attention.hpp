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
// Kernels: register-blocked micro-kernels written with GNU vector extensions (GCC, Clang) at the
// widest width the target enables (AVX-512: 16 floats, AVX: 8, otherwise 4; JEPA_ATTENTION_SIMD_BYTES
// overrides). float uses a polynomial 2^x (< 1 ulp); double uses std::exp2 (for gradient checks).
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
#include "jepa/config.hpp"
#include "jepa/core/error.hpp"
#include "jepa/core/tensor.hpp"

#if !defined(__GNUC__) && !defined(__clang__)
#error "jepa/backend/cpu/attention.hpp needs GCC or Clang (it uses GNU vector extensions)"
#endif

// Everything that depends on the vector width lives in an inline namespace named after it, so
// translation units compiled for different instruction sets (e.g. a .cu file's host side without
// -march=native next to a .cpp with it) never share — and never silently swap — instantiations.
#if defined(JEPA_ATTENTION_SIMD_BYTES)
#define JEPA_DETAIL_ATTN_SIMD_BYTES JEPA_ATTENTION_SIMD_BYTES
#elif defined(__AVX512F__)
#define JEPA_DETAIL_ATTN_SIMD_BYTES 64
#elif defined(__AVX__)
#define JEPA_DETAIL_ATTN_SIMD_BYTES 32
#else
#define JEPA_DETAIL_ATTN_SIMD_BYTES 16
#endif
#if defined(__FMA__)
#define JEPA_DETAIL_ATTN_FMA _fma
#else
#define JEPA_DETAIL_ATTN_FMA _nofma
#endif
#define JEPA_DETAIL_ATTN_CAT3_(a, b, c) a##b##c
#define JEPA_DETAIL_ATTN_CAT3(a, b, c) JEPA_DETAIL_ATTN_CAT3_(a, b, c)
#define JEPA_DETAIL_ATTN_ABI JEPA_DETAIL_ATTN_CAT3(simd, JEPA_DETAIL_ATTN_SIMD_BYTES, JEPA_DETAIL_ATTN_FMA)

namespace jepa::backend::cpu {

namespace detail::attn {
inline namespace JEPA_DETAIL_ATTN_ABI {

// ---------------------------------------------------------------------------------------------
// SIMD vocabulary: GNU vector extensions of the widest width the target enables.
// ---------------------------------------------------------------------------------------------
inline constexpr int kSimdBytes = JEPA_DETAIL_ATTN_SIMD_BYTES;
static_assert(kSimdBytes == 16 || kSimdBytes == 32 || kSimdBytes == 64,
              "jepa: JEPA_ATTENTION_SIMD_BYTES must be 16, 32 or 64");

template <class T>
struct Simd;
template <>
struct Simd<float> {
  typedef float V __attribute__((vector_size(kSimdBytes)));
  typedef std::int32_t I __attribute__((vector_size(kSimdBytes)));
};
template <>
struct Simd<double> {
  typedef double V __attribute__((vector_size(kSimdBytes)));
  typedef std::int64_t I __attribute__((vector_size(kSimdBytes)));
};
template <class T>
using vec_t = typename Simd<T>::V;
/// Lanes per vector.
template <class T>
inline constexpr index_t kLanes = kSimdBytes / static_cast<index_t>(sizeof(T));

/// Rows of a GEMM micro-tile: MR × (2 vectors) accumulators plus 2 B vectors and 1 broadcast must fit
/// the register file (16 vector registers below AVX-512, 32 with it).
inline constexpr int kMR = kSimdBytes == 64 ? 12 : 6;

// Tile sizes (rows of q or k per tile). Query tiles of the forward are the vectorised dimension, so
// they and the backward's key tiles are multiples of 2 vectors for every element type.
inline constexpr index_t kFwdQueryTile = 64;
inline constexpr index_t kFwdKeyTile = 96;
inline constexpr index_t kBwdQueryTile = 64;
inline constexpr index_t kBwdKeyTile = 64;
static_assert(kFwdQueryTile % (2 * kLanes<float>) == 0 && kBwdKeyTile % (2 * kLanes<float>) == 0);

template <class T>
JEPA_ALWAYS_INLINE vec_t<T> vload(const T* p) {
  vec_t<T> v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <class T>
JEPA_ALWAYS_INLINE void vstore(T* p, const vec_t<T>& v) {
  std::memcpy(p, &v, sizeof v);
}
template <class T>
JEPA_ALWAYS_INLINE vec_t<T> vbroadcast(T x) {
  return x - vec_t<T>{};  // x − (+0) = x exactly, including x = −0
}
template <class V>
JEPA_ALWAYS_INLINE V vmax(const V& a, const V& b) {
  return a > b ? a : b;
}

/// 2^x lane-wise for x ≤ 127 (larger x saturates at 2^127); x < −126.5 (and −∞) gives exactly 0.
/// float: x = n + f with n = round(x), f ∈ [−½, ½]; 2^f by its degree-7 Taylor polynomial (truncation
/// error < 5.3e-9 relative; measured ≤ 0.85 ulp over [−126, 20]); 2^n assembled in the exponent field.
/// double: std::exp2 per lane (the double path serves gradient checks; accuracy over speed).
template <class T>
JEPA_ALWAYS_INLINE vec_t<T> vexp2(vec_t<T> x) {
  if constexpr (std::is_same_v<T, float>) {
    using V = vec_t<float>;
    using I = typename Simd<float>::I;
    x = x < -127.0f ? vbroadcast(-127.0f) : x;
    x = x > 127.0f ? vbroadcast(127.0f) : x;
    const V shifter = vbroadcast(12582912.0f);  // 1.5·2^23: adding it rounds to an integer
    const V t = x + shifter;
    const V n = t - shifter;
    const V f = x - n;
    const I e = ((I)t - (I)shifter + 127) << 23;
    V p = vbroadcast(1.5252733804059840e-5f);  // ln2^k / k!, k = 7 … 0
    p = p * f + 1.5403530393381609e-4f;
    p = p * f + 1.3333558146428443e-3f;
    p = p * f + 9.6181291076284772e-3f;
    p = p * f + 5.5504108664821580e-2f;
    p = p * f + 2.4022650695910071e-1f;
    p = p * f + 6.9314718055994531e-1f;
    p = p * f + 1.0f;
    return p * (V)e;  // n = −127 gives the bit pattern of +0
  } else {
    vec_t<T> r{};
    for (index_t l = 0; l < kLanes<T>; ++l) r[l] = std::exp2(x[l]);
    return r;
  }
}

// ---------------------------------------------------------------------------------------------
// GEMM micro-kernels: C (M×N) ⊕= A (M×K) · B (K×N), all row-major tiles in scratch or packed copies.
//   A(r, k) = a[r·lda + k]  (kATrans = false)   or   a[k·lda + r]  (kATrans = true); A is broadcast.
//   B rows are read as vectors; N is a multiple of kLanes<T> (callers pad B with zero columns).
// Every C element is one sequential fused-multiply-add chain over k = 0 … K−1 starting from its
// initial value, whatever the blocking, so results do not depend on tile shape or thread.
// ---------------------------------------------------------------------------------------------
enum class CInit : std::uint8_t {
  zero,       // C = A B
  load,       // C = C + A B
  load_scaled  // C = C ∘ colscale + A B   (colscale: one factor per column of C)
};

template <class T, int MR, int NV, bool kATrans, CInit kInit>
JEPA_ALWAYS_INLINE void gemm_micro(index_t K, const T* JEPA_RESTRICT a, index_t lda, const T* JEPA_RESTRICT b,
                                   index_t ldb, T* JEPA_RESTRICT c, index_t ldc,
                                   const T* JEPA_RESTRICT colscale) {
  using V = vec_t<T>;
  constexpr index_t W = kLanes<T>;
  V acc[MR][NV];
  if constexpr (kInit == CInit::zero) {
    for (int r = 0; r < MR; ++r)
      for (int v = 0; v < NV; ++v) acc[r][v] = V{};
  } else if constexpr (kInit == CInit::load) {
    for (int r = 0; r < MR; ++r)
      for (int v = 0; v < NV; ++v) acc[r][v] = vload(c + r * ldc + v * W);
  } else {
    V cs[NV];
    for (int v = 0; v < NV; ++v) cs[v] = vload(colscale + v * W);
    for (int r = 0; r < MR; ++r)
      for (int v = 0; v < NV; ++v) acc[r][v] = vload(c + r * ldc + v * W) * cs[v];
  }
  for (index_t k = 0; k < K; ++k) {
    V bv[NV];
    for (int v = 0; v < NV; ++v) bv[v] = vload(b + k * ldb + v * W);
    for (int r = 0; r < MR; ++r) {
      const V ar = vbroadcast(kATrans ? a[k * lda + r] : a[r * lda + k]);
      for (int v = 0; v < NV; ++v) acc[r][v] = ar * bv[v] + acc[r][v];
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) vstore(c + r * ldc + v * W, acc[r][v]);
}

template <class T, int NV, bool kATrans, CInit kInit, int MR>
JEPA_ALWAYS_INLINE void gemm_tail(index_t rows, index_t K, const T* a, index_t lda, const T* b, index_t ldb, T* c,
                                  index_t ldc, const T* cs) {
  if constexpr (MR > 0) {
    if (rows == MR) return gemm_micro<T, MR, NV, kATrans, kInit>(K, a, lda, b, ldb, c, ldc, cs);
    gemm_tail<T, NV, kATrans, kInit, MR - 1>(rows, K, a, lda, b, ldb, c, ldc, cs);
  }
}

template <class T, int NV, bool kATrans, CInit kInit>
void gemm_strip(index_t M, index_t K, const T* a, index_t lda, const T* b, index_t ldb, T* c, index_t ldc,
                const T* cs) {
  index_t m0 = 0;
  for (; m0 + kMR <= M; m0 += kMR)
    gemm_micro<T, kMR, NV, kATrans, kInit>(K, kATrans ? a + m0 : a + m0 * lda, lda, b, ldb, c + m0 * ldc, ldc, cs);
  if (m0 < M)
    gemm_tail<T, NV, kATrans, kInit, kMR - 1>(M - m0, K, kATrans ? a + m0 : a + m0 * lda, lda, b, ldb,
                                              c + m0 * ldc, ldc, cs);
}

/// C (M×N) ⊕= A (M×K) · B (K×N); N % kLanes<T> == 0.
template <class T, bool kATrans, CInit kInit>
void gemm(index_t M, index_t N, index_t K, const T* a, index_t lda, const T* b, index_t ldb, T* c, index_t ldc,
          const T* colscale = nullptr) {
  constexpr index_t W = kLanes<T>;
  for (index_t n0 = 0; n0 < N; n0 += 2 * W) {
    const T* cs = kInit == CInit::load_scaled ? colscale + n0 : nullptr;
    if (N - n0 >= 2 * W)
      gemm_strip<T, 2, kATrans, kInit>(M, K, a, lda, b + n0, ldb, c + n0, ldc, cs);
    else
      gemm_strip<T, 1, kATrans, kInit>(M, K, a, lda, b + n0, ldb, c + n0, ldc, cs);
  }
}

// ---------------------------------------------------------------------------------------------
// Scratch, threads, masks.
// ---------------------------------------------------------------------------------------------

/// A grow-only, 64-byte-aligned byte buffer.
class ScratchBuffer {
 public:
  void* get(std::size_t bytes) {
    if (bytes > capacity_) {
      ptr_.reset();
      ptr_.reset(static_cast<std::byte*>(::operator new(bytes, std::align_val_t{64})));
      capacity_ = bytes;
    }
    return ptr_.get();
  }

 private:
  struct Free {
    void operator()(std::byte* p) const { ::operator delete(p, std::align_val_t{64}); }
  };
  std::unique_ptr<std::byte, Free> ptr_;
  std::size_t capacity_ = 0;
};

/// Scratch slots; each names one buffer per thread and element type.
enum ScratchSlot : int {
  kq, kk, kv, ko, kdo, kdq, kdk, kdv, ks, kdp, kvec0, kvec1, kvec2, kall0, kall1, kall2, kSlots
};

/// The calling thread's grow-only buffer `slot` with room for n elements of T (contents unspecified).
template <class T>
T* scratch(ScratchSlot slot, index_t n) {
  thread_local std::array<ScratchBuffer, kSlots> buffers;
  return static_cast<T*>(buffers[slot].get(static_cast<std::size_t>(std::max<index_t>(n, 1)) * sizeof(T)));
}

inline int max_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}
inline int team_size() {
#ifdef _OPENMP
  return omp_get_num_threads();
#else
  return 1;
#endif
}
/// Forking a team costs microseconds and, on a loaded machine, a scheduler wait: below ~4 MFLOP of
/// attention the call runs on the calling thread (results are identical: see the header comment).
inline bool worth_threads(const AttnShape& s) {
  return static_cast<double>(s.batch) * static_cast<double>(s.heads) * static_cast<double>(s.q_len) *
             static_cast<double>(s.kv_len) * static_cast<double>(s.head_dim) >
         1.0e6;
}
inline int thread_id() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

inline constexpr index_t ceil_div(index_t a, index_t b) { return (a + b - 1) / b; }
inline constexpr index_t round_up(index_t a, index_t b) { return ceil_div(a, b) * b; }

/// Validates the shape and mask of an attention call; throws ShapeError naming the field.
inline void validate(const AttnShape& s, const AttnMask& mask, std::string_view fn) {
  const auto field = [&](std::string_view f) { return jepa::detail::cat(fn, ": AttnShape.", f); };
  check_field<ShapeError>(s.batch >= 0, field("batch"), s.batch, "must be >= 0");
  check_field<ShapeError>(s.heads >= 0, field("heads"), s.heads, "must be >= 0");
  check_field<ShapeError>(s.q_len >= 0, field("q_len"), s.q_len, "must be >= 0 (Nq)");
  check_field<ShapeError>(s.kv_len >= 0, field("kv_len"), s.kv_len, "must be >= 0 (Nk)");
  check_field<ShapeError>(s.head_dim >= 1, field("head_dim"), s.head_dim, "must be >= 1 (Dh)");
  check_field<ShapeError>(std::isfinite(s.scale), field("scale"), s.scale, "must be finite");
  if (mask.kind == AttnMask::Kind::block_causal)
    check_field<ShapeError>(mask.block >= 1, jepa::detail::cat(fn, ": AttnMask.block"), mask.block,
                            "block_causal needs a block size >= 1");
  if (mask.kind == AttnMask::Kind::dense) {
    check_field<ShapeError>(mask.allowed != nullptr || s.q_len == 0 || s.kv_len == 0,
                            jepa::detail::cat(fn, ": AttnMask.allowed"), "null",
                            "a dense mask needs a (Nq, Nk) byte array");
    check_field<ShapeError>(mask.cols >= s.kv_len, jepa::detail::cat(fn, ": AttnMask.cols"), mask.cols,
                            jepa::detail::cat("a dense mask row must hold kv_len = ", s.kv_len, " entries"));
  }
}

template <class P>
void check_operand(const P* p, bool needed, std::string_view fn, std::string_view name) {
  check_field<ShapeError>(p != nullptr || !needed, jepa::detail::cat(fn, ": ", name, ".data"), "null",
                          "operand pointer must be non-null when the shape is non-empty");
}

enum class TileKind : std::uint8_t { empty, partial, full };

/// Whether the mask allows none, some or all pairs of queries [i0, i0+ni) × keys [j0, j0+nj).
inline TileKind classify(const AttnMask& m, index_t i0, index_t ni, index_t j0, index_t nj) {
  switch (m.kind) {
    case AttnMask::Kind::none: return TileKind::full;
    case AttnMask::Kind::causal:
      if (j0 > i0 + ni - 1) return TileKind::empty;
      return j0 + nj - 1 <= i0 ? TileKind::full : TileKind::partial;
    case AttnMask::Kind::block_causal:
      if (j0 / m.block > (i0 + ni - 1) / m.block) return TileKind::empty;
      return (j0 + nj - 1) / m.block <= i0 / m.block ? TileKind::full : TileKind::partial;
    case AttnMask::Kind::dense: return TileKind::partial;
  }
  return TileKind::partial;
}

/// One past the last key any query of [i0, i0+ni) may attend to (the allowed keys of every mask kind
/// except dense form a prefix [0, limit)).
inline index_t key_limit(const AttnMask& m, index_t i0, index_t ni, index_t nk) {
  switch (m.kind) {
    case AttnMask::Kind::causal: return std::min(nk, i0 + ni);
    case AttnMask::Kind::block_causal: return std::min(nk, ((i0 + ni - 1) / m.block + 1) * m.block);
    default: return nk;
  }
}
/// The first query that may attend to key j0 (the queries allowing a key form a suffix).
inline index_t first_query(const AttnMask& m, index_t j0) {
  switch (m.kind) {
    case AttnMask::Kind::causal: return j0;
    case AttnMask::Kind::block_causal: return (j0 / m.block) * m.block;
    default: return 0;
  }
}

/// For a partial tile: sets x[ii·si + jj·sj] (and y[…] if y) to `fill` for every pair the mask
/// disallows, ii < ni, jj < nj. Returns whether any pair of the tile is allowed.
template <class T>
bool mask_tile(const AttnMask& m, index_t i0, index_t ni, index_t j0, index_t nj, T* x, T* y, index_t si,
               index_t sj, T fill) {
  bool any = false;
  for (index_t ii = 0; ii < ni; ++ii) {
    const index_t i = i0 + ii;
    T* xr = x + ii * si;
    T* yr = y ? y + ii * si : nullptr;
    if (m.kind == AttnMask::Kind::dense) {
      const std::uint8_t* row = m.allowed + i * m.cols + j0;
      for (index_t jj = 0; jj < nj; ++jj) {
        if (row[jj]) {
          any = true;
        } else {
          xr[jj * sj] = fill;
          if (yr) yr[jj * sj] = fill;
        }
      }
    } else {
      // Allowed keys of row i are [0, limit).
      const index_t limit = m.kind == AttnMask::Kind::causal         ? i + 1
                            : m.kind == AttnMask::Kind::block_causal ? (i / m.block + 1) * m.block
                                                                     : j0 + nj;
      const index_t start = std::clamp<index_t>(limit - j0, 0, nj);
      any = any || start > 0;
      for (index_t jj = start; jj < nj; ++jj) {
        xr[jj * sj] = fill;
        if (yr) yr[jj * sj] = fill;
      }
    }
  }
  return any;
}

/// Collects the first exception thrown inside a parallel region, to rethrow after it.
class ParallelErrors {
 public:
  template <class F>
  void run(F&& f) noexcept {
    try {
      f();
    } catch (...) {
#ifdef _OPENMP
#pragma omp critical(jepa_attention_errors)
#endif
      if (!error_) error_ = std::current_exception();
    }
  }
  void rethrow() const {
    if (error_) std::rethrow_exception(error_);
  }

 private:
  std::exception_ptr error_;
};

/// Contiguous, cost-balanced split of `units` work units over the team: unit u goes to the thread
/// floor(C_u · nt / total) where C_u is the summed cost of the units before it. Calls f(u) for the
/// calling thread's units in increasing order.
template <class Cost, class F>
void for_my_units(index_t units, const Cost& cost, F&& f) {
  const index_t nt = team_size(), t = thread_id();
  index_t total = 0;
  for (index_t u = 0; u < units; ++u) total += cost(u);
  index_t prefix = 0;
  for (index_t u = 0; u < units; ++u) {
    const index_t owner = total > 0 ? prefix * nt / total : 0;
    prefix += cost(u);
    if (owner == t) f(u);
  }
}

/// Copies rows [r0, r0+n) of head (b,h) of x into dst (n × ld, row-major), scaled by `mul`, zero-padding
/// columns [Dh, ld).
template <class T>
void pack_rows(AttnOperand<const T> x, index_t b, index_t h, index_t r0, index_t n, index_t Dh, T* dst, index_t ld,
               T mul = T(1)) {
  for (index_t r = 0; r < n; ++r) {
    const T* src = x.at(b, h, r0 + r);
    T* d = dst + r * ld;
    for (index_t c = 0; c < Dh; ++c) d[c] = src[c] * mul;
    for (index_t c = Dh; c < ld; ++c) d[c] = T(0);
  }
}
/// Transposed copy: dst[c·ld + r] = x(b,h,r0+r)[c] for r < n, zero for n ≤ r < npad.
template <class T>
void pack_cols(AttnOperand<const T> x, index_t b, index_t h, index_t r0, index_t n, index_t npad, index_t Dh, T* dst,
               index_t ld, T mul = T(1)) {
  for (index_t r = 0; r < n; ++r) {
    const T* src = x.at(b, h, r0 + r);
    for (index_t c = 0; c < Dh; ++c) dst[c * ld + r] = src[c] * mul;
  }
  for (index_t c = 0; c < Dh; ++c)
    for (index_t r = n; r < npad; ++r) dst[c * ld + r] = T(0);
}

template <class T>
inline constexpr T kLog2e = std::numbers::log2e_v<T>;
template <class T>
inline constexpr T kLn2 = std::numbers::ln2_v<T>;
template <class T>
inline constexpr T kInf = std::numeric_limits<T>::infinity();

// ---------------------------------------------------------------------------------------------
// Forward: one query tile of one head.
// ---------------------------------------------------------------------------------------------
template <class T>
struct FwdScratch {
  T* kp;     // (Nk, Dh)   packed keys of the current head
  T* vp;     // (Nk, Dh)   packed values
  T* qt;     // (Dh, Br)   log2(e)·scale · qᵀ of the tile
  T* st;     // (Bc, Br)   S2ᵀ, then Pᵀ, of one key tile
  T* ot;     // (Dh, Br)   Oaccᵀ
  T* m;      // (Br)       running max (base-2 units)
  T* l;      // (Br)       running sum
  T* alpha;  // (Br)       rescale factor of the current key tile
};

template <class T>
void flash_forward_tile(const AttnShape& s, AttnOperand<const T> q, AttnOperand<T> o, T* lse, const AttnMask& mask,
                        const FwdScratch<T>& w, index_t b, index_t h, index_t i0) {
  using V = vec_t<T>;
  constexpr index_t W = kLanes<T>, Br = kFwdQueryTile, Bc = kFwdKeyTile;
  const index_t Dh = s.head_dim, Nk = s.kv_len;
  const index_t nq = std::min(Br, s.q_len - i0), nqp = round_up(nq, W);

  pack_cols(q, b, h, i0, nq, nqp, Dh, w.qt, Br, static_cast<T>(s.scale) * kLog2e<T>);
  std::fill(w.ot, w.ot + Dh * Br, T(0));
  std::fill(w.m, w.m + Br, -kInf<T>);
  std::fill(w.l, w.l + Br, T(0));

  const index_t kt_end = ceil_div(key_limit(mask, i0, nq, Nk), Bc);
  for (index_t kt = 0; kt < kt_end; ++kt) {
    const index_t j0 = kt * Bc, nk = std::min(Bc, Nk - j0);
    const TileKind kind = classify(mask, i0, nq, j0, nk);
    if (kind == TileKind::empty) continue;
    // S2ᵀ (nk × nqp) = K_tile · (log2e·scale·qᵀ)
    gemm<T, false, CInit::zero>(nk, nqp, Dh, w.kp + j0 * Dh, Dh, w.qt, Br, w.st, Br);
    if (kind == TileKind::partial && !mask_tile(mask, i0, nq, j0, nk, w.st, static_cast<T*>(nullptr), 1, Br, -kInf<T>))
      continue;
    // Online softmax, vectorised over queries (columns of S2ᵀ).
    for (index_t c0 = 0; c0 < nqp; c0 += W) {
      V mx = vbroadcast(-kInf<T>);
      for (index_t jj = 0; jj < nk; ++jj) mx = vmax(mx, vload(w.st + jj * Br + c0));
      const V m_old = vload(w.m + c0);
      const V m_new = vmax(m_old, mx);
      const V ref = m_new == -kInf<T> ? V{} : m_new;
      const V alpha = vexp2<T>(m_old - ref);
      V sum{};
      for (index_t jj = 0; jj < nk; ++jj) {
        const V p = vexp2<T>(vload(w.st + jj * Br + c0) - ref);
        vstore(w.st + jj * Br + c0, p);
        sum += p;
      }
      vstore(w.l + c0, alpha * vload(w.l + c0) + sum);
      vstore(w.m + c0, m_new);
      vstore(w.alpha + c0, alpha);
    }
    // Oaccᵀ (Dh × nqp) = α ∘ Oaccᵀ + V_tileᵀ · Pᵀ
    gemm<T, true, CInit::load_scaled>(Dh, nqp, nk, w.vp + j0 * Dh, Dh, w.st, Br, w.ot, Br, w.alpha);
  }

  for (index_t ii = 0; ii < nq; ++ii) {
    const T l = w.l[ii];
    const T inv = l > T(0) ? T(1) / l : T(0);
    T* row = o.at(b, h, i0 + ii);
    for (index_t c = 0; c < Dh; ++c) row[c] = w.ot[c * Br + ii] * inv;
    if (lse) lse[(b * s.heads + h) * s.q_len + i0 + ii] = l > T(0) ? (w.m[ii] + std::log2(l)) * kLn2<T> : -kInf<T>;
  }
}

// ---------------------------------------------------------------------------------------------
// Backward pieces shared by both schedules.
// ---------------------------------------------------------------------------------------------

/// Per-row constants of the backward for rows [r0, r0+n) of head (b,h): D_i = Σ_c dO_ic O_ic and the
/// base-2 logsumexp lse2_i = log2(e)·lse_i (0 for a fully masked row, whose P is 0 through the mask).
template <class T>
void row_constants(const AttnShape& s, AttnOperand<const T> o, AttnOperand<const T> dout, const T* lse, index_t b,
                   index_t h, index_t r0, index_t n, T* d, T* lse2) {
  const T* lrow = lse + (b * s.heads + h) * s.q_len + r0;
  for (index_t r = 0; r < n; ++r) {
    const T* orow = o.at(b, h, r0 + r);
    const T* grow = dout.at(b, h, r0 + r);
    T acc = 0;
    for (index_t c = 0; c < s.head_dim; ++c) acc += grow[c] * orow[c];
    d[r] = acc;
    lse2[r] = lrow[r] == -kInf<T> ? T(0) : lrow[r] * kLog2e<T>;
  }
}

/// For query rows [i0, i0+nq) and the key tile at j0 (nk keys):
///   P  (nq × nkp) = 2^(log2e·scale · Q Kᵀ − lse2),   dS = scale · P ∘ (dO Vᵀ − D)   (masked pairs 0)
/// qp/dop point at the tile's first packed row (ld = ldp); kt/vt are the packed transposed key/value
/// tiles (Dh × Bc); d/lse2 are per-row constants of the tile's rows. Returns false if the mask allows
/// no pair (then p and ds are unspecified).
template <class T>
bool bwd_scores(const AttnShape& s, const AttnMask& mask, TileKind kind, index_t i0, index_t nq, index_t j0,
                index_t nk, const T* qp, const T* dop, index_t ldp, const T* kt, const T* vt, const T* d,
                const T* lse2, T* p, T* ds) {
  using V = vec_t<T>;
  constexpr index_t W = kLanes<T>, Bc = kBwdKeyTile;
  const index_t Dh = s.head_dim, nkp = round_up(nk, W);
  const T c2 = static_cast<T>(s.scale) * kLog2e<T>, scale = static_cast<T>(s.scale);
  gemm<T, false, CInit::zero>(nq, nkp, Dh, qp, ldp, kt, Bc, p, Bc);
  gemm<T, false, CInit::zero>(nq, nkp, Dh, dop, ldp, vt, Bc, ds, Bc);
  for (index_t ii = 0; ii < nq; ++ii) {
    const V l2 = vbroadcast(lse2[ii]), dd = vbroadcast(d[ii]);
    T* pr = p + ii * Bc;
    T* dr = ds + ii * Bc;
    for (index_t c0 = 0; c0 < nkp; c0 += W) {
      const V pv = vexp2<T>(vload(pr + c0) * c2 - l2);
      vstore(pr + c0, pv);
      vstore(dr + c0, pv * (vload(dr + c0) - dd) * scale);
    }
  }
  if (kind == TileKind::partial) return mask_tile(mask, i0, nq, j0, nk, p, ds, Bc, 1, T(0));
  return true;
}

template <class T>
struct BwdHeadScratch {
  T* qp;    // (Nq, Dhp) packed q of the head (or of one query tile in pass 2)
  T* dop;   // (Nq, Dhp) packed dO
  T* d;     // (Nq)      D
  T* lse2;  // (Nq)      log2(e)·lse
};
template <class T>
struct BwdTileScratch {
  T* kp;   // (Bc, Dhp)  packed keys of the key tile
  T* kt;   // (Dh, Bc)   keysᵀ
  T* vt;   // (Dh, Bc)   valuesᵀ
  T* p;    // (Bq, Bc)   P
  T* ds;   // (Bq, Bc)   dP, then dS
  T* dk;   // (Bc, Dhp)  dK accumulator
  T* dv;   // (Bc, Dhp)  dV accumulator
};

template <class T>
void pack_key_tile(AttnOperand<const T> k, AttnOperand<const T> v, index_t b, index_t h, index_t j0, index_t nk,
                   index_t Dh, index_t Dhp, T* kp, T* kt, T* vt) {
  const index_t nkp = round_up(nk, kLanes<T>);
  pack_rows(k, b, h, j0, nk, Dh, kp, Dhp);
  pack_cols(k, b, h, j0, nk, nkp, Dh, kt, kBwdKeyTile);
  pack_cols(v, b, h, j0, nk, nkp, Dh, vt, kBwdKeyTile);
}

/// dK, dV of the key tile at j0 over all query tiles (and, if dq_acc, dQ_acc += dS K for every query
/// tile). hs holds the packed head rows (qp, dop, d, lse2 for all Nq rows).
template <class T>
void bwd_key_tile(const AttnShape& s, const AttnMask& mask, const BwdHeadScratch<T>& hs, const BwdTileScratch<T>& ts,
                  AttnOperand<const T> k, AttnOperand<const T> v, AttnOperand<T> dk, AttnOperand<T> dv, index_t b,
                  index_t h, index_t kt_index, T* dq_acc) {
  constexpr index_t Br = kBwdQueryTile, Bc = kBwdKeyTile;
  const index_t Dh = s.head_dim, Dhp = round_up(Dh, kLanes<T>), Nq = s.q_len;
  const index_t j0 = kt_index * Bc, nk = std::min(Bc, s.kv_len - j0);
  pack_key_tile(k, v, b, h, j0, nk, Dh, Dhp, ts.kp, ts.kt, ts.vt);
  std::fill(ts.dk, ts.dk + nk * Dhp, T(0));
  std::fill(ts.dv, ts.dv + nk * Dhp, T(0));
  for (index_t qt = first_query(mask, j0) / Br; qt * Br < Nq; ++qt) {
    const index_t i0 = qt * Br, nq = std::min(Br, Nq - i0);
    const TileKind kind = classify(mask, i0, nq, j0, nk);
    if (kind == TileKind::empty) continue;
    const T* qp = hs.qp + i0 * Dhp;
    const T* dop = hs.dop + i0 * Dhp;
    if (!bwd_scores(s, mask, kind, i0, nq, j0, nk, qp, dop, Dhp, ts.kt, ts.vt, hs.d + i0, hs.lse2 + i0, ts.p, ts.ds))
      continue;
    gemm<T, true, CInit::load>(nk, Dhp, nq, ts.p, Bc, dop, Dhp, ts.dv, Dhp);   // dV += Pᵀ dO
    gemm<T, true, CInit::load>(nk, Dhp, nq, ts.ds, Bc, qp, Dhp, ts.dk, Dhp);   // dK += dSᵀ Q
    if (dq_acc) gemm<T, false, CInit::load>(nq, Dhp, nk, ts.ds, Bc, ts.kp, Dhp, dq_acc + i0 * Dhp, Dhp);  // dQ += dS K
  }
  for (index_t jj = 0; jj < nk; ++jj) {
    std::copy_n(ts.dk + jj * Dhp, Dh, dk.at(b, h, j0 + jj));
    std::copy_n(ts.dv + jj * Dhp, Dh, dv.at(b, h, j0 + jj));
  }
}

template <class T>
BwdTileScratch<T> bwd_tile_scratch(index_t Dhp, index_t Dh) {
  constexpr index_t Br = kBwdQueryTile, Bc = kBwdKeyTile;
  return {scratch<T>(kk, Bc * Dhp),  scratch<T>(kv, Dh * Bc),     scratch<T>(ko, Dh * Bc),
          scratch<T>(ks, Br * Bc),   scratch<T>(kdp, Br * Bc),    scratch<T>(kdk, Bc * Dhp),
          scratch<T>(kdv, Bc * Dhp)};
}

}  // inline namespace JEPA_DETAIL_ATTN_ABI
}  // namespace detail::attn

inline namespace JEPA_DETAIL_ATTN_ABI {

// =============================================================================================
// Flash attention (tiled, online softmax).
// =============================================================================================

/// o = softmax(scale · q kᵀ + mask) v and lse (B,H,Nq), without forming the Nq×Nk scores.
/// lse may be null when no backward follows. o and lse are overwritten.
template <class T>
void attention_flash_forward(const AttnShape& s, AttnOperand<const T> q, AttnOperand<const T> k,
                             AttnOperand<const T> v, AttnOperand<T> o, T* lse, const AttnMask& mask) {
  namespace impl = detail::attn;
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "jepa: attention supports float and double");
  constexpr std::string_view fn = "attention_flash_forward";
  impl::validate(s, mask, fn);
  const bool rows = s.batch * s.heads * s.q_len > 0, keys = s.batch * s.heads * s.kv_len > 0;
  impl::check_operand(q.data, rows, fn, "q");
  impl::check_operand(o.data, rows, fn, "o");
  impl::check_operand(k.data, rows && keys, fn, "k");
  impl::check_operand(v.data, rows && keys, fn, "v");
  if (!rows) return;

  constexpr index_t Br = impl::kFwdQueryTile, Bc = impl::kFwdKeyTile;
  const index_t Dh = s.head_dim, Nk = s.kv_len, nqt = impl::ceil_div(s.q_len, Br);
  const index_t units = s.batch * s.heads * nqt;
  // Cost of a unit: its key tiles plus one for packing and the epilogue.
  const auto cost = [&](index_t u) {
    const index_t i0 = (u % nqt) * Br;
    return impl::ceil_div(impl::key_limit(mask, i0, std::min(Br, s.q_len - i0), Nk), Bc) + 1;
  };

  impl::ParallelErrors errors;
#ifdef _OPENMP
#pragma omp parallel if (impl::worth_threads(s))
#endif
  errors.run([&] {
    const impl::FwdScratch<T> w{impl::scratch<T>(impl::kk, Nk * Dh), impl::scratch<T>(impl::kv, Nk * Dh),
                                impl::scratch<T>(impl::kq, Dh * Br),  impl::scratch<T>(impl::ks, Bc * Br),
                                impl::scratch<T>(impl::ko, Dh * Br),  impl::scratch<T>(impl::kvec0, Br),
                                impl::scratch<T>(impl::kvec1, Br),    impl::scratch<T>(impl::kvec2, Br)};
    index_t packed = -1;  // batch·head whose k, v are in w.kp, w.vp
    impl::for_my_units(units, cost, [&](index_t u) {
      const index_t bh = u / nqt, b = bh / s.heads, h = bh % s.heads;
      if (bh != packed) {
        impl::pack_rows(k, b, h, 0, Nk, Dh, w.kp, Dh);
        impl::pack_rows(v, b, h, 0, Nk, Dh, w.vp, Dh);
        packed = bh;
      }
      impl::flash_forward_tile(s, q, o, lse, mask, w, b, h, (u % nqt) * Br);
    });
  });
  errors.rethrow();
}

/// FlashAttention-2 backward: dq, dk, dv (overwritten) from q, k, v, the forward's o and lse, and dout.
template <class T>
void attention_flash_backward(const AttnShape& s, AttnOperand<const T> q, AttnOperand<const T> k,
                              AttnOperand<const T> v, AttnOperand<const T> o, AttnOperand<const T> dout,
                              const T* lse, AttnOperand<T> dq, AttnOperand<T> dk, AttnOperand<T> dv,
                              const AttnMask& mask) {
  namespace impl = detail::attn;
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "jepa: attention supports float and double");
  constexpr std::string_view fn = "attention_flash_backward";
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
  const index_t BH = s.batch * s.heads, Nq = s.q_len, Nk = s.kv_len, Dh = s.head_dim;
  if (BH == 0) return;

  constexpr index_t Br = impl::kBwdQueryTile, Bc = impl::kBwdKeyTile;
  const index_t Dhp = impl::round_up(Dh, impl::kLanes<T>);
  const index_t nqt = impl::ceil_div(Nq, Br), nkt = impl::ceil_div(Nk, Bc);

  // Schedule (a) costs ceil(BH/nt) head-times, (b) about 1.4·BH/nt (7 GEMMs instead of 5).
  const index_t nt = impl::max_threads();
  const bool per_head = nt == 1 || 10 * impl::ceil_div(BH, nt) * nt <= 14 * BH;

  impl::ParallelErrors errors;
  if (per_head) {
#ifdef _OPENMP
#pragma omp parallel if (impl::worth_threads(s))
#endif
    errors.run([&] {
      const impl::BwdHeadScratch<T> hs{impl::scratch<T>(impl::kq, Nq * Dhp), impl::scratch<T>(impl::kdo, Nq * Dhp),
                                       impl::scratch<T>(impl::kvec0, Nq), impl::scratch<T>(impl::kvec1, Nq)};
      const impl::BwdTileScratch<T> ts = impl::bwd_tile_scratch<T>(Dhp, Dh);
      T* dq_acc = impl::scratch<T>(impl::kdq, Nq * Dhp);
      impl::for_my_units(BH, [](index_t) { return index_t{1}; }, [&](index_t bh) {
        const index_t b = bh / s.heads, h = bh % s.heads;
        impl::pack_rows(q, b, h, 0, Nq, Dh, hs.qp, Dhp);
        impl::pack_rows(dout, b, h, 0, Nq, Dh, hs.dop, Dhp);
        impl::row_constants(s, o, dout, lse, b, h, 0, Nq, hs.d, hs.lse2);
        std::fill(dq_acc, dq_acc + Nq * Dhp, T(0));
        for (index_t kt = 0; kt < nkt; ++kt) impl::bwd_key_tile(s, mask, hs, ts, k, v, dk, dv, b, h, kt, dq_acc);
        for (index_t r = 0; r < Nq; ++r) std::copy_n(dq_acc + r * Dhp, Dh, dq.at(b, h, r));
      });
    });
    errors.rethrow();
    return;
  }

  const auto kt_cost = [&](index_t u) {
    const index_t j0 = (u % nkt) * Bc;
    return nqt - std::min(nqt, impl::first_query(mask, j0) / Br) + 1;
  };
  const auto qt_cost = [&](index_t u) {
    const index_t i0 = (u % nqt) * Br;
    return impl::ceil_div(impl::key_limit(mask, i0, std::min(Br, Nq - i0), Nk), Bc) + 1;
  };
#ifdef _OPENMP
#pragma omp parallel if (impl::worth_threads(s))
#endif
  errors.run([&] {
    const impl::BwdTileScratch<T> ts = impl::bwd_tile_scratch<T>(Dhp, Dh);
    // Pass 1: dK, dV over (batch·head × key tile).
    {
      const impl::BwdHeadScratch<T> hs{impl::scratch<T>(impl::kq, Nq * Dhp), impl::scratch<T>(impl::kdo, Nq * Dhp),
                                       impl::scratch<T>(impl::kvec0, Nq), impl::scratch<T>(impl::kvec1, Nq)};
      index_t packed = -1;
      if (nkt > 0)
        impl::for_my_units(BH * nkt, kt_cost, [&](index_t u) {
          const index_t bh = u / nkt, b = bh / s.heads, h = bh % s.heads;
          if (bh != packed) {
            impl::pack_rows(q, b, h, 0, Nq, Dh, hs.qp, Dhp);
            impl::pack_rows(dout, b, h, 0, Nq, Dh, hs.dop, Dhp);
            impl::row_constants(s, o, dout, lse, b, h, 0, Nq, hs.d, hs.lse2);
            packed = bh;
          }
          impl::bwd_key_tile(s, mask, hs, ts, k, v, dk, dv, b, h, u % nkt, static_cast<T*>(nullptr));
        });
    }
    // Pass 2: dQ over (batch·head × query tile), the same dS recomputed, summed over key tiles in order.
    {
      const impl::BwdHeadScratch<T> hs{impl::scratch<T>(impl::kq, Br * Dhp), impl::scratch<T>(impl::kdo, Br * Dhp),
                                       impl::scratch<T>(impl::kvec0, Br), impl::scratch<T>(impl::kvec1, Br)};
      T* kp_all = impl::scratch<T>(impl::kall0, nkt * Bc * Dhp);  // key tiles, each (Bc, Dhp)
      T* kt_all = impl::scratch<T>(impl::kall1, nkt * Dh * Bc);   // key tiles transposed, each (Dh, Bc)
      T* vt_all = impl::scratch<T>(impl::kall2, nkt * Dh * Bc);   // value tiles transposed
      T* dq_acc = impl::scratch<T>(impl::kdq, Br * Dhp);
      index_t packed = -1;
      impl::for_my_units(BH * nqt, qt_cost, [&](index_t u) {
        const index_t bh = u / nqt, b = bh / s.heads, h = bh % s.heads;
        if (bh != packed) {
          for (index_t kt = 0; kt < nkt; ++kt)
            impl::pack_key_tile(k, v, b, h, kt * Bc, std::min(Bc, Nk - kt * Bc), Dh, Dhp, kp_all + kt * Bc * Dhp,
                                kt_all + kt * Dh * Bc, vt_all + kt * Dh * Bc);
          packed = bh;
        }
        const index_t i0 = (u % nqt) * Br, nq = std::min(Br, Nq - i0);
        impl::pack_rows(q, b, h, i0, nq, Dh, hs.qp, Dhp);
        impl::pack_rows(dout, b, h, i0, nq, Dh, hs.dop, Dhp);
        impl::row_constants(s, o, dout, lse, b, h, i0, nq, hs.d, hs.lse2);
        std::fill(dq_acc, dq_acc + nq * Dhp, T(0));
        const index_t kt_end = impl::ceil_div(impl::key_limit(mask, i0, nq, Nk), Bc);
        for (index_t kt = 0; kt < kt_end; ++kt) {
          const index_t j0 = kt * Bc, nk = std::min(Bc, Nk - j0);
          const impl::TileKind kind = impl::classify(mask, i0, nq, j0, nk);
          if (kind == impl::TileKind::empty) continue;
          if (!impl::bwd_scores(s, mask, kind, i0, nq, j0, nk, hs.qp, hs.dop, Dhp, kt_all + kt * Dh * Bc,
                                vt_all + kt * Dh * Bc, hs.d, hs.lse2, ts.p, ts.ds))
            continue;
          impl::gemm<T, false, impl::CInit::load>(nq, Dhp, nk, ts.ds, Bc, kp_all + kt * Bc * Dhp, Dhp, dq_acc, Dhp);
        }
        for (index_t r = 0; r < nq; ++r) std::copy_n(dq_acc + r * Dhp, Dh, dq.at(b, h, i0 + r));
      });
    }
  });
  errors.rethrow();
}

// =============================================================================================
// Naive reference: materialises S and P per (batch, head). For tests and tiny sizes.
// =============================================================================================

template <class T>
void attention_naive_forward(const AttnShape& s, AttnOperand<const T> q, AttnOperand<const T> k,
                             AttnOperand<const T> v, AttnOperand<T> o, T* lse, const AttnMask& mask) {
  namespace impl = detail::attn;
  impl::validate(s, mask, "attention_naive_forward");
  const index_t Nq = s.q_len, Nk = s.kv_len, Dh = s.head_dim;
  const T scale = static_cast<T>(s.scale), inf = std::numeric_limits<T>::infinity();
  std::vector<T> S(static_cast<std::size_t>(Nq * Nk));  // (Nq, Nk)
  for (index_t b = 0; b < s.batch; ++b)
    for (index_t h = 0; h < s.heads; ++h) {
      for (index_t i = 0; i < Nq; ++i)
        for (index_t j = 0; j < Nk; ++j) {
          T acc = 0;
          for (index_t c = 0; c < Dh; ++c) acc += q.at(b, h, i)[c] * k.at(b, h, j)[c];
          S[i * Nk + j] = mask.allows(i, j) ? scale * acc : -inf;
        }
      for (index_t i = 0; i < Nq; ++i) {
        T* srow = S.data() + i * Nk;
        T* orow = o.at(b, h, i);
        const T mx = Nk > 0 ? *std::max_element(srow, srow + Nk) : -inf;
        std::fill_n(orow, Dh, T(0));
        T l = 0;
        if (mx != -inf) {
          for (index_t j = 0; j < Nk; ++j) l += (srow[j] = std::exp(srow[j] - mx));
          for (index_t j = 0; j < Nk; ++j)
            for (index_t c = 0; c < Dh; ++c) orow[c] += srow[j] / l * v.at(b, h, j)[c];
        }
        if (lse) lse[(b * s.heads + h) * Nq + i] = mx == -inf ? -inf : mx + std::log(l);
      }
    }
}

template <class T>
void attention_naive_backward(const AttnShape& s, AttnOperand<const T> q, AttnOperand<const T> k,
                              AttnOperand<const T> v, AttnOperand<const T> o, AttnOperand<const T> dout,
                              const T* lse, AttnOperand<T> dq, AttnOperand<T> dk, AttnOperand<T> dv,
                              const AttnMask& mask) {
  namespace impl = detail::attn;
  impl::validate(s, mask, "attention_naive_backward");
  const index_t Nq = s.q_len, Nk = s.kv_len, Dh = s.head_dim;
  const T scale = static_cast<T>(s.scale), inf = std::numeric_limits<T>::infinity();
  std::vector<T> P(static_cast<std::size_t>(Nq * Nk)), dS(P.size());  // (Nq, Nk)
  for (index_t b = 0; b < s.batch; ++b)
    for (index_t h = 0; h < s.heads; ++h) {
      const T* l = lse + (b * s.heads + h) * Nq;
      for (index_t i = 0; i < Nq; ++i) {
        T d = 0;
        for (index_t c = 0; c < Dh; ++c) d += dout.at(b, h, i)[c] * o.at(b, h, i)[c];
        for (index_t j = 0; j < Nk; ++j) {
          T sc = 0, dp = 0;
          for (index_t c = 0; c < Dh; ++c) {
            sc += q.at(b, h, i)[c] * k.at(b, h, j)[c];
            dp += dout.at(b, h, i)[c] * v.at(b, h, j)[c];
          }
          const T p = mask.allows(i, j) && l[i] != -inf ? std::exp(scale * sc - l[i]) : T(0);
          P[i * Nk + j] = p;
          dS[i * Nk + j] = p * (dp - d);
        }
      }
      for (index_t i = 0; i < Nq; ++i) {
        T* g = dq.at(b, h, i);
        std::fill_n(g, Dh, T(0));
        for (index_t j = 0; j < Nk; ++j)
          for (index_t c = 0; c < Dh; ++c) g[c] += scale * dS[i * Nk + j] * k.at(b, h, j)[c];
      }
      for (index_t j = 0; j < Nk; ++j) {
        T* gk = dk.at(b, h, j);
        T* gv = dv.at(b, h, j);
        std::fill_n(gk, Dh, T(0));
        std::fill_n(gv, Dh, T(0));
        for (index_t i = 0; i < Nq; ++i)
          for (index_t c = 0; c < Dh; ++c) {
            gk[c] += scale * dS[i * Nk + j] * q.at(b, h, i)[c];
            gv[c] += P[i * Nk + j] * dout.at(b, h, i)[c];
          }
      }
    }
}

}  // inline namespace JEPA_DETAIL_ATTN_ABI
}  // namespace jepa::backend::cpu
