// jepa/backend/cpu/backend.hpp — the CPU backend: the small primitive set every module is written in.
//
// backend::Cpu is a stateless tag type whose static member templates are the primitives (DESIGN.md
// decision 4). All tensors are row-major and contiguous unless a stride argument says otherwise;
// pointers are host pointers. Matrix products go through the CPU GEMM layer (backend/cpu/gemm.hpp:
// oneDNN, the BLAS or Eigen, chosen at run time from the CPU). Loops over rows are parallelised with
// OpenMP; every reduction over rows (parameter gradients) runs in a fixed order so results do not
// depend on the thread count.
//
// Accumulation contract of the primitives (the same one the modules state):
//   *_backward writes input gradients (dx = …) and ACCUMULATES parameter gradients (dW += …).
#pragma once

#include "jepa/config.hpp"

#include <Eigen/Core>
#include <unsupported/Eigen/SpecialFunctions>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "jepa/backend/attention_args.hpp"
#include "jepa/backend/cpu/attention.hpp"
#include "jepa/backend/cpu/attention_bf16.hpp"
#include "jepa/backend/cpu/gemm.hpp"
#include "jepa/backend/scalar.hpp"
#include "jepa/core/dtype.hpp"
#include "jepa/core/error.hpp"
#include "jepa/core/memory_plan.hpp"
#include "jepa/core/tensor.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace jepa::backend {

namespace cpu::detail {
template <class T>
using MapArr = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;
template <class T>
using CMapArr = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>;

/// Elementwise work is split into chunks of this many elements (large enough to amortise the
/// OpenMP fork, small enough to load-balance).
inline constexpr index_t kChunk = 16384;

}  // namespace cpu::detail

struct Cpu {
  static constexpr MemorySpace space = MemorySpace::host;
  static constexpr std::string_view name = "cpu";
  using Arena = HostArena;

  // ---------------------------------------------------------------------------------------------
  // Memory
  // ---------------------------------------------------------------------------------------------
  template <class T>
  static void copy(const T* src, T* dst, index_t n) {
    if (n > 0 && src != dst) std::memcpy(dst, src, static_cast<std::size_t>(n) * sizeof(T));
  }
  template <class T>
  static void zero(T* p, index_t n) {
    if (n > 0) std::memset(p, 0, static_cast<std::size_t>(n) * sizeof(T));
  }

  // ---------------------------------------------------------------------------------------------
  // GEMM.  C (M×N) = α·op(A)·op(B) + β·C, row-major; op(A) is M×K, op(B) is K×N.
  // lda/ldb/ldc are row strides of the matrices as stored (A stored K×M when trans_a).
  // With β = 0, C is not read (it may hold garbage or NaN).
  // ---------------------------------------------------------------------------------------------
  template <Real T>
  static void gemm(bool trans_a, bool trans_b, index_t M, index_t N, index_t K, T alpha, const T* A,
                   index_t lda, const T* B, index_t ldb, T beta, T* C, index_t ldc) {
    cpu::gemm<T>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  }

  /// `batch` independent GEMMs; matrix i starts at A + i·stride_a (etc.).
  template <Real T>
  static void gemm_strided_batched(bool trans_a, bool trans_b, index_t M, index_t N, index_t K, T alpha,
                                   const T* A, index_t lda, index_t stride_a, const T* B, index_t ldb,
                                   index_t stride_b, T beta, T* C, index_t ldc, index_t stride_c,
                                   index_t batch) {
    cpu::gemm<T>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, batch, stride_a, stride_b,
                 stride_c);
  }

  // ---------------------------------------------------------------------------------------------
  // Linear:  y (M×out) = x (M×in) · Wᵀ + b,  W stored (out, in) as PyTorch does.
  // Backward: dx = dy·W (overwrite; skipped when dx is null), dW += dyᵀ·x, db += Σ_rows dy.
  // ---------------------------------------------------------------------------------------------
  template <Real T>
  static void linear_forward(const T* x, const T* W, const T* b, T* y, index_t M, index_t in, index_t out) {
    if (cpu::linear_fused(x, W, b, y, M, in, out, /*gelu=*/false)) return;  // bias in the GEMM's epilogue
    gemm<T>(false, true, M, out, in, T(1), x, in, W, in, T(0), y, out);
    if (b) add_row_vector(y, b, M, out);
  }
  /// a = gelu(x·Wᵀ + b) without keeping the pre-activation (inference: an MLP's fc1 and its GELU as
  /// one fused matmul where the GEMM layer can, else the GEMM, the bias and the GELU in turn).
  template <Real T>
  static void linear_gelu_forward(const T* x, const T* W, const T* b, T* a, index_t M, index_t in, index_t out) {
    if (cpu::linear_fused(x, W, b, a, M, in, out, /*gelu=*/true)) return;
    gemm<T>(false, true, M, out, in, T(1), x, in, W, in, T(0), a, out);
    if (b) add_row_vector(a, b, M, out);
    gelu_forward(a, a, M * out);
  }
  template <Real T>
  static void linear_backward(const T* x, const T* W, const T* dy, T* dx, T* dW, T* db, index_t M,
                              index_t in, index_t out) {
    if (dx) gemm<T>(false, false, M, in, out, T(1), dy, out, W, in, T(0), dx, in);
    if (dW) gemm<T>(true, false, out, in, M, T(1), dy, out, x, in, T(1), dW, in);
    if (db) sum_rows_accumulate(dy, db, M, out);
  }

  /// y[r, :] += v for every row r of the (M, N) matrix y.
  template <Real T>
  static void add_row_vector(T* y, const T* v, index_t M, index_t N) {
JEPA_OMP(parallel for schedule(static) if (M * N > cpu::detail::kChunk))
    for (index_t r = 0; r < M; ++r) {
      T* JEPA_RESTRICT yr = y + r * N;
      for (index_t j = 0; j < N; ++j) yr[j] += v[j];
    }
  }
  /// acc[j] += Σ_r x[r, j], rows summed in increasing order (deterministic).
  template <Real T>
  static void sum_rows_accumulate(const T* x, T* acc, index_t M, index_t N) {
    for (index_t r = 0; r < M; ++r) {
      const T* JEPA_RESTRICT xr = x + r * N;
      for (index_t j = 0; j < N; ++j) acc[j] += xr[j];
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Elementwise
  // ---------------------------------------------------------------------------------------------
  /// y = a + b (y may alias a or b).
  template <Real T>
  static void add(const T* a, const T* b, T* y, index_t n) {
JEPA_OMP(parallel for schedule(static) if (n > cpu::detail::kChunk))
    for (index_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
  }
  /// y += α·x
  template <Real T>
  static void axpy(T alpha, const T* x, T* y, index_t n) {
JEPA_OMP(parallel for schedule(static) if (n > cpu::detail::kChunk))
    for (index_t i = 0; i < n; ++i) y[i] += alpha * x[i];
  }
  template <Real T>
  static void scale(T alpha, T* y, index_t n) {
JEPA_OMP(parallel for schedule(static) if (n > cpu::detail::kChunk))
    for (index_t i = 0; i < n; ++i) y[i] *= alpha;
  }

  /// y = gelu(x), exact erf form. Float uses Eigen's vectorised erf (a rational approximation good
  /// to a few ulp); double uses std::erf through scalar::gelu.
  template <Real T>
  static void gelu_forward(const T* x, T* y, index_t n) {
    using namespace cpu::detail;
    const index_t chunks = (n + kChunk - 1) / kChunk;
JEPA_OMP(parallel for schedule(static) if (chunks > 1))
    for (index_t c = 0; c < chunks; ++c) {
      const index_t lo = c * kChunk, len = std::min(kChunk, n - lo);
      CMapArr<T> xa(x + lo, len);
      MapArr<T> ya(y + lo, len);
      if constexpr (std::is_same_v<T, float>) {
        ya = T(0.5) * xa * (T(1) + (xa * T(scalar::kSqrtHalf)).erf());
      } else {
        for (index_t i = 0; i < len; ++i) ya[i] = scalar::gelu(xa[i]);
      }
    }
  }
  /// dx = gelu'(x) ⊙ dy (overwrite; dx may alias dy).
  template <Real T>
  static void gelu_backward(const T* x, const T* dy, T* dx, index_t n) {
    using namespace cpu::detail;
    const index_t chunks = (n + kChunk - 1) / kChunk;
JEPA_OMP(parallel for schedule(static) if (chunks > 1))
    for (index_t c = 0; c < chunks; ++c) {
      const index_t lo = c * kChunk, len = std::min(kChunk, n - lo);
      CMapArr<T> xa(x + lo, len), dya(dy + lo, len);
      MapArr<T> dxa(dx + lo, len);
      if constexpr (std::is_same_v<T, float>) {
        dxa = dya * (T(0.5) * (T(1) + (xa * T(scalar::kSqrtHalf)).erf()) +
                     xa * T(scalar::kInvSqrt2Pi) * (T(-0.5) * xa * xa).exp());
      } else {
        for (index_t i = 0; i < len; ++i) dxa[i] = dya[i] * scalar::gelu_grad(xa[i]);
      }
    }
  }
  /// SwiGLU gate: y = silu(a) ⊙ b.
  template <Real T>
  static void swiglu_forward(const T* a, const T* b, T* y, index_t n) {
JEPA_OMP(parallel for schedule(static) if (n > cpu::detail::kChunk))
    for (index_t i = 0; i < n; ++i) y[i] = scalar::silu(a[i]) * b[i];
  }
  /// da = silu'(a)·b·dy, db = silu(a)·dy (overwrite).
  template <Real T>
  static void swiglu_backward(const T* a, const T* b, const T* dy, T* da, T* db, index_t n) {
JEPA_OMP(parallel for schedule(static) if (n > cpu::detail::kChunk))
    for (index_t i = 0; i < n; ++i) {
      const T g = dy[i];
      const T ai = a[i], bi = b[i];
      da[i] = scalar::silu_grad(ai) * bi * g;
      db[i] = scalar::silu(ai) * g;
    }
  }

  /// Row softmax of an (M, N) matrix: y_ij = exp(x_ij − max_j x) / Σ_j exp(x_ij − max_j x).
  template <Real T>
  static void softmax_rows(const T* x, T* y, index_t M, index_t N) {
JEPA_OMP(parallel for schedule(static) if (M * N > cpu::detail::kChunk))
    for (index_t r = 0; r < M; ++r) {
      cpu::detail::CMapArr<T> xr(x + r * N, N);
      cpu::detail::MapArr<T> yr(y + r * N, N);
      const T mx = xr.maxCoeff();
      yr = (xr - mx).exp();
      yr /= yr.sum();
    }
  }
  /// dx = y ⊙ (dy − Σ_j y_j dy_j) per row.
  template <Real T>
  static void softmax_rows_backward(const T* y, const T* dy, T* dx, index_t M, index_t N) {
JEPA_OMP(parallel for schedule(static) if (M * N > cpu::detail::kChunk))
    for (index_t r = 0; r < M; ++r) {
      cpu::detail::CMapArr<T> yr(y + r * N, N), dyr(dy + r * N, N);
      cpu::detail::MapArr<T> dxr(dx + r * N, N);
      const T s = (yr * dyr).sum();
      dxr = yr * (dyr - s);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // LayerNorm over the last dimension D of an (M, D) matrix:
  //   μ = mean(x), σ² = mean((x−μ)²) (biased), r = 1/√(σ² + ε), x̂ = (x−μ)·r, y = x̂ ⊙ w + b.
  // w, b may be null (the non-affine LN applied to targets). mean/rstd (M) are saved for backward.
  // Backward: g = dy ⊙ w;  dx = r·(g − mean(g) − x̂·mean(g ⊙ x̂))  (overwrite, or += if accumulate),
  //           dw += Σ_rows dy ⊙ x̂,  db += Σ_rows dy   (rows summed in order: deterministic).
  // ---------------------------------------------------------------------------------------------
  template <Real T>
  static void layer_norm_forward(const T* x, const T* w, const T* b, T* y, T* mean, T* rstd, index_t M,
                                 index_t D, T eps) {
JEPA_OMP(parallel for schedule(static) if (M * D > cpu::detail::kChunk))
    for (index_t r = 0; r < M; ++r) {
      const T* JEPA_RESTRICT xr = x + r * D;
      T* JEPA_RESTRICT yr = y + r * D;
      T s = 0;
      for (index_t j = 0; j < D; ++j) s += xr[j];
      const T mu = s / T(D);
      T v = 0;
      for (index_t j = 0; j < D; ++j) {
        const T d = xr[j] - mu;
        v += d * d;
      }
      const T rs = T(1) / std::sqrt(v / T(D) + eps);
      if (mean) mean[r] = mu;
      if (rstd) rstd[r] = rs;
      if (w && b) {
        for (index_t j = 0; j < D; ++j) yr[j] = (xr[j] - mu) * rs * w[j] + b[j];
      } else if (w) {
        for (index_t j = 0; j < D; ++j) yr[j] = (xr[j] - mu) * rs * w[j];
      } else {
        for (index_t j = 0; j < D; ++j) yr[j] = (xr[j] - mu) * rs;
      }
    }
  }
  template <Real T>
  static void layer_norm_backward(const T* x, const T* w, const T* mean, const T* rstd, const T* dy, T* dx,
                                  T* dw, T* db, index_t M, index_t D, bool accumulate_dx = false) {
    if (dx) {
JEPA_OMP(parallel for schedule(static) if (M * D > cpu::detail::kChunk))
      for (index_t r = 0; r < M; ++r) {
        const T* JEPA_RESTRICT xr = x + r * D;
        const T* JEPA_RESTRICT dyr = dy + r * D;
        T* JEPA_RESTRICT dxr = dx + r * D;
        const T mu = mean[r], rs = rstd[r];
        T sg = 0, sgx = 0;
        for (index_t j = 0; j < D; ++j) {
          const T g = w ? dyr[j] * w[j] : dyr[j];
          sg += g;
          sgx += g * (xr[j] - mu) * rs;
        }
        const T mg = sg / T(D), mgx = sgx / T(D);
        for (index_t j = 0; j < D; ++j) {
          const T g = w ? dyr[j] * w[j] : dyr[j];
          const T v = rs * (g - mg - (xr[j] - mu) * rs * mgx);
          dxr[j] = accumulate_dx ? dxr[j] + v : v;
        }
      }
    }
    if (dw || db) {
      for (index_t r = 0; r < M; ++r) {
        const T* JEPA_RESTRICT xr = x + r * D;
        const T* JEPA_RESTRICT dyr = dy + r * D;
        const T mu = mean[r], rs = rstd[r];
        if (dw)
          for (index_t j = 0; j < D; ++j) dw[j] += dyr[j] * (xr[j] - mu) * rs;
        if (db)
          for (index_t j = 0; j < D; ++j) db[j] += dyr[j];
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Rotary position embedding, applied in place to `heads` heads of M rows:
  //   head h of row r is x + r·row_stride + h·head_stride; its first `rot` channels are rotated with
  //   the per-row tables cos, sin (M, rot); remaining channels are untouched.
  //   out[2i]   = x[2i]·C[2i]     − x[2i+1]·S[2i]
  //   out[2i+1] = x[2i+1]·C[2i+1] + x[2i]·S[2i+1]
  // (For the 2.1 interleaved pairing C[2i] = C[2i+1], a true rotation; for the V-JEPA 2 tiled pairing
  // they differ — see nn/rope.hpp.) Backward applies the transpose:
  //   dx[2i]   = dy[2i]·C[2i]     + dy[2i+1]·S[2i+1]
  //   dx[2i+1] = dy[2i+1]·C[2i+1] − dy[2i]·S[2i]
  // ---------------------------------------------------------------------------------------------
  template <Real T>
  static void rope_forward(T* x, index_t M, index_t heads, index_t row_stride, index_t head_stride, index_t rot,
                           const T* cos, const T* sin) {
    rope_apply<T, false>(x, M, heads, row_stride, head_stride, rot, cos, sin);
  }
  template <Real T>
  static void rope_backward(T* dx, index_t M, index_t heads, index_t row_stride, index_t head_stride,
                            index_t rot, const T* cos, const T* sin) {
    rope_apply<T, true>(dx, M, heads, row_stride, head_stride, rot, cos, sin);
  }

  // ---------------------------------------------------------------------------------------------
  // Token subsets. idx is (B, K) int64 of indices into N tokens (validated by the caller).
  //   gather:  dst[b, k, :] = src[b, idx[b,k], :]          src (B,N,D) → dst (B,K,D)
  //   scatter_add: dsrc[b, idx[b,k], :] += ddst[b, k, :]   (indices within a row must be distinct
  //                for the parallel loop to be race-free; callers guarantee it)
  // ---------------------------------------------------------------------------------------------
  template <class T>
  static void gather_rows(const T* src, const std::int64_t* idx, T* dst, index_t B, index_t N, index_t K,
                          index_t D) {
JEPA_OMP(parallel for schedule(static) if (B * K * D > cpu::detail::kChunk))
    for (index_t bk = 0; bk < B * K; ++bk) {
      const index_t b = bk / K;
      std::memcpy(dst + bk * D, src + (b * N + idx[bk]) * D, static_cast<std::size_t>(D) * sizeof(T));
    }
  }
  template <Real T>
  static void scatter_add_rows(const T* ddst, const std::int64_t* idx, T* dsrc, index_t B, index_t N,
                               index_t K, index_t D) {
JEPA_OMP(parallel for schedule(static) if (B * K * D > cpu::detail::kChunk))
    for (index_t b = 0; b < B; ++b)
      for (index_t k = 0; k < K; ++k) {
        const T* JEPA_RESTRICT s = ddst + (b * K + k) * D;
        T* JEPA_RESTRICT d = dsrc + (b * N + idx[b * K + k]) * D;
        for (index_t j = 0; j < D; ++j) d[j] += s[j];
      }
  }

  // ---------------------------------------------------------------------------------------------
  // Tubelet im2col. clip (B,C,F,H,W); token grid (F/t, H/p, W/p); idx (B,K) flat token indices.
  //   cols[b·K + k, (c, i, y, x)] = clip[b, c, t'·t + i, h'·p + y, w'·p + x]   (M = B·K, C·t·p·p)
  // col2im is its adjoint restricted to the kept tokens: tubelets do not overlap (stride = kernel),
  // so each pixel receives at most one value; pixels of tokens not kept get 0 (dclip is overwritten).
  // ---------------------------------------------------------------------------------------------
  template <class T>
  static void im2col_tubelet(const T* clip, const std::int64_t* idx, T* cols, index_t B, index_t C, index_t F,
                             index_t H, index_t W, index_t t, index_t p, index_t K) {
    const index_t gh = H / p, gw = W / p, hw = gh * gw, kvol = C * t * p * p;
JEPA_OMP(parallel for schedule(static) if (B * K * kvol > cpu::detail::kChunk))
    for (index_t bk = 0; bk < B * K; ++bk) {
      const index_t b = bk / K, n = idx[bk];
      const index_t tt = n / hw, hh = (n % hw) / gw, ww = n % gw;
      T* JEPA_RESTRICT dst = cols + bk * kvol;
      for (index_t c = 0; c < C; ++c)
        for (index_t i = 0; i < t; ++i)
          for (index_t y = 0; y < p; ++y) {
            const T* src = clip + (((b * C + c) * F + tt * t + i) * H + hh * p + y) * W + ww * p;
            std::memcpy(dst, src, static_cast<std::size_t>(p) * sizeof(T));
            dst += p;
          }
    }
  }
  template <class T>
  static void col2im_tubelet(const T* dcols, const std::int64_t* idx, T* dclip, index_t B, index_t C, index_t F,
                             index_t H, index_t W, index_t t, index_t p, index_t K) {
    zero(dclip, B * C * F * H * W);
    const index_t gh = H / p, gw = W / p, hw = gh * gw, kvol = C * t * p * p;
JEPA_OMP(parallel for schedule(static) if (B * K * kvol > cpu::detail::kChunk))
    for (index_t bk = 0; bk < B * K; ++bk) {
      const index_t b = bk / K, n = idx[bk];
      const index_t tt = n / hw, hh = (n % hw) / gw, ww = n % gw;
      const T* JEPA_RESTRICT src = dcols + bk * kvol;
      for (index_t c = 0; c < C; ++c)
        for (index_t i = 0; i < t; ++i)
          for (index_t y = 0; y < p; ++y) {
            T* dst = dclip + (((b * C + c) * F + tt * t + i) * H + hh * p + y) * W + ww * p;
            std::memcpy(dst, src, static_cast<std::size_t>(p) * sizeof(T));
            src += p;
          }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Fused attention (backend/cpu/attention.hpp): no N×N buffer; dq, dk, dv overwritten.
  // ---------------------------------------------------------------------------------------------
  template <Real T>
  static void attention_forward(const AttnShape& s, AttnOperand<const T> q, AttnOperand<const T> k,
                                AttnOperand<const T> v, AttnOperand<T> o, T* lse, const AttnMask& mask) {
    if (cpu::attention_bf16_forward<T>(s, q, k, v, o, lse, mask)) return;  // bf16 precision, no mask
    cpu::attention_flash_forward_dispatch<T>(s, q, k, v, o, lse, mask);
  }
  template <Real T>
  static void attention_backward(const AttnShape& s, AttnOperand<const T> q, AttnOperand<const T> k,
                                 AttnOperand<const T> v, AttnOperand<const T> o, AttnOperand<const T> dout,
                                 const T* lse, AttnOperand<T> dq, AttnOperand<T> dk, AttnOperand<T> dv,
                                 const AttnMask& mask) {
    cpu::attention_flash_backward_dispatch<T>(s, q, k, v, o, dout, lse, dq, dk, dv, mask);
  }

 private:
  template <Real T, bool Transpose>
  static void rope_apply(T* x, index_t M, index_t heads, index_t row_stride, index_t head_stride, index_t rot,
                         const T* cos, const T* sin) {
JEPA_OMP(parallel for schedule(static) if (M * heads * rot > cpu::detail::kChunk))
    for (index_t r = 0; r < M; ++r) {
      const T* JEPA_RESTRICT c = cos + r * rot;
      const T* JEPA_RESTRICT s = sin + r * rot;
      for (index_t h = 0; h < heads; ++h) {
        T* JEPA_RESTRICT p = x + r * row_stride + h * head_stride;
        for (index_t i = 0; i + 1 < rot; i += 2) {
          const T a = p[i], b = p[i + 1];
          if constexpr (!Transpose) {
            p[i] = a * c[i] - b * s[i];
            p[i + 1] = b * c[i + 1] + a * s[i + 1];
          } else {
            p[i] = a * c[i] + b * s[i + 1];
            p[i + 1] = b * c[i + 1] - a * s[i];
          }
        }
      }
    }
  }
};

}  // namespace jepa::backend
