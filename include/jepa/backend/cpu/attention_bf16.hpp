// jepa/backend/cpu/attention_bf16.hpp — the attention forward with bf16 GEMM inputs on the CPU, for
// the bf16 matmul precision (backend/cpu/gemm.hpp, set_matmul_precision).
//
// Per batch b, head h and block of up to 64 query rows i0 … i0+n−1 (every key at once: the whole row
// of scores is formed, n × Nk floats, so the softmax is exact without the flash kernel's rescaling):
//   S = scale · bf16(q) · bf16(k)ᵀ                      fp32 accumulation (oneDNN matmul)
//   m_i = max_j S_ij,  P_ij = exp(S_ij − m_i),  l_i = Σ_j P_ij      fp32
//   o_i = (bf16(P) · bf16(v))_i / l_i,   lse_i = m_i + log l_i     fp32 accumulation, fp32 output
// What is rounded to bfloat16: q, k, v and the unnormalised P (entries in [0, 1]); the scores, the
// softmax statistics and the output stay fp32 — as PyTorch's bf16 scaled-dot-product attention does.
// Band (tests/unit/test_bf16.cpp): against the fp32 flash kernel, per-row cosine ≥ 0.999 and |Δlse| ≤ 1e-2.
//
// Taken only when the GEMM layer runs bf16, for float, without a mask (the encoders' attention), with
// Nq, Nk, Dh ≥ 1 — and, from the backend, only where it pays: on AMX (oneDNN's avx512_core_amx), whose
// tile products are many times the fp32 FMA rate. On AVX512-BF16 without AMX it does not pay: on the
// 2-core EPYC (Zen 5) one ViT-S/16 16×224² attention layer (1, 6, 1568, 64) took 12.8 ms here against
// 12.3 ms for the fp32 flash kernel at AVX-512 (the exp, the bf16 conversions and the per-block calls
// eat what the bf16 products save), so there the backend keeps the fp32 kernel. Otherwise
// attention_bf16_forward returns false and the backend runs the fp32 flash kernel. The backward stays the fp32 flash backward (it recomputes P
// from q, k and this lse). Threads: OpenMP over (batch · head × query block); oneDNN runs each block's
// products on the calling thread (nested parallelism is off inside the region).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <exception>
#include <limits>
#include <type_traits>
#include <vector>

#include <Eigen/Core>

#include "jepa/backend/attention_args.hpp"
#include "jepa/backend/cpu/gemm.hpp"
#include "jepa/config.hpp"
#include "jepa/core/tensor.hpp"

namespace jepa::backend::cpu {

/// o and lse (may be null) as above; false (nothing written) when this path does not apply.
/// `only_where_it_pays` (the backend's call): also false unless oneDNN runs AMX.
template <class T>
bool attention_bf16_forward(const AttnShape& s, AttnOperand<const T> q, AttnOperand<const T> k,
                            AttnOperand<const T> v, AttnOperand<T> o, T* lse, const AttnMask& mask,
                            bool only_where_it_pays = true) {
#ifndef JEPA_HAVE_ONEDNN
  (void)s, (void)q, (void)k, (void)v, (void)o, (void)lse, (void)mask, (void)only_where_it_pays;
  return false;
#else
  if constexpr (!std::is_same_v<T, float>) {
    (void)s, (void)q, (void)k, (void)v, (void)o, (void)lse, (void)mask, (void)only_where_it_pays;
    return false;
  } else {
    if (mask.kind != AttnMask::Kind::none || effective_matmul_precision() != MatmulPrecision::bf16) return false;
    if (only_where_it_pays && gemm_setup().onednn_isa != "avx512_core_amx") return false;
    const index_t B = s.batch, H = s.heads, Nq = s.q_len, Nk = s.kv_len, Dh = s.head_dim;
    if (B <= 0 || H <= 0 || Nq <= 0 || Nk <= 0 || Dh <= 0) return false;
    constexpr index_t kRows = 64;
    const index_t tiles = (Nq + kRows - 1) / kRows, tail = Nq - (tiles - 1) * kRows;
    const float scale = static_cast<float>(s.scale);
    // The four products a block needs (full and last block), created before the parallel region.
    using detail::bf16_packed_matmul;
    const auto s_full = bf16_packed_matmul(true, kRows, Nk, Dh, scale, Nk);
    const auto s_tail = bf16_packed_matmul(true, tail, Nk, Dh, scale, Nk);
    const auto o_full = bf16_packed_matmul(false, kRows, Dh, Nk, 1.0f, Dh);
    const auto o_tail = bf16_packed_matmul(false, tail, Dh, Nk, 1.0f, Dh);
    if (!s_full || !s_tail || !o_full || !o_tail) return false;

    // k and v of every (batch, head), dense (Nk, Dh) in bf16.
    const index_t heads = B * H, per = Nk * Dh;
    std::vector<std::uint16_t> kb(static_cast<std::size_t>(heads * per)), vb(kb.size());
JEPA_OMP(parallel for schedule(static) if (heads * per > 65536))
    for (index_t bh = 0; bh < heads; ++bh) {
      const index_t b = bh / H, h = bh % H;
      for (index_t j = 0; j < Nk; ++j) {
        const float* kr = k.at(b, h, j);
        const float* vr = v.at(b, h, j);
        std::uint16_t* kd = kb.data() + bh * per + j * Dh;
        std::uint16_t* vd = vb.data() + bh * per + j * Dh;
        for (index_t c = 0; c < Dh; ++c) {
          kd[c] = detail::to_bf16(kr[c]);
          vd[c] = detail::to_bf16(vr[c]);
        }
      }
    }

    std::exception_ptr error;
JEPA_OMP(parallel for schedule(dynamic, 1))
    for (index_t unit = 0; unit < heads * tiles; ++unit) {
      try {
        const index_t bh = unit / tiles, t = unit % tiles, b = bh / H, h = bh % H;
        const index_t i0 = t * kRows, n = t + 1 == tiles ? tail : kRows;
        thread_local std::vector<std::uint16_t> qb, pb;
        thread_local std::vector<float> S, O;
        qb.resize(static_cast<std::size_t>(kRows * Dh));
        pb.resize(static_cast<std::size_t>(kRows * Nk));
        S.resize(static_cast<std::size_t>(kRows * Nk));
        O.resize(static_cast<std::size_t>(kRows * Dh));
        for (index_t r = 0; r < n; ++r) {
          const float* qr = q.at(b, h, i0 + r);
          for (index_t c = 0; c < Dh; ++c) qb[r * Dh + c] = detail::to_bf16(qr[c]);
        }
        detail::run_onednn(n == kRows ? *s_full : *s_tail, qb.data(), kb.data() + bh * per, S.data(), nullptr);
        float inv_l[kRows];
        for (index_t r = 0; r < n; ++r) {
          Eigen::Map<Eigen::ArrayXf> row(S.data() + r * Nk, Nk);
          const float m = row.maxCoeff();
          row = (row - m).exp();
          const float l = row.sum();
          inv_l[r] = 1.0f / l;
          if (lse) lse[bh * Nq + i0 + r] = m + std::log(l);
          std::uint16_t* pr = pb.data() + r * Nk;
          for (index_t j = 0; j < Nk; ++j) pr[j] = detail::to_bf16(row[j]);
        }
        detail::run_onednn(n == kRows ? *o_full : *o_tail, pb.data(), vb.data() + bh * per, O.data(), nullptr);
        for (index_t r = 0; r < n; ++r) {
          float* orow = o.at(b, h, i0 + r);
          for (index_t c = 0; c < Dh; ++c) orow[c] = O[r * Dh + c] * inv_l[r];
        }
      } catch (...) {
JEPA_OMP(critical(jepa_attention_bf16_errors))
        if (!error) error = std::current_exception();
      }
    }
    if (error) std::rethrow_exception(error);
    return true;
  }
#endif
}

}  // namespace jepa::backend::cpu
