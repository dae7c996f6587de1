// jepa/backend/cuda/gemm.cuh — row-major GEMM through cuBLASLt, with bias / bias+GELU(tanh) epilogues.
//
//   C (M×N) = α·op(A)·op(B) + β·C  [+ bias (N), broadcast over rows]  [then gelu_tanh]
//   op(A) is M×K (A stored M×K, or K×M when trans_a); op(B) is K×N (B stored K×N, or N×K when trans_b);
//   lda/ldb/ldc are the row strides of the matrices as stored (row-major, as in backend::Cpu::gemm).
//   Strided batches: matrix i of A starts at A + i·stride_a (same for B and C); the bias is shared.
// Types: (A, B, C) = (float, float, float) with fp32, tf32 or bf16 compute (bf16: the operands are
// rounded to bf16 for the tensor cores, accumulation and C stay fp32 — mixed precision on fp32
// storage), or (bf16, bf16, bf16 | float) with fp32 accumulation (DESIGN.md decision 7). The bias has C's type. With β = 0, C is not read.
//
// Row-major to cuBLAS. A row-major matrix with row stride ld is the column-major matrix of its
// transpose with leading dimension ld, so C = op(A)·op(B) is computed as the column-major product
//   Cᵀ (N×M) = op(B)ᵀ·op(A)ᵀ,
// i.e. cuBLASLt's "A" is our B and its "B" is our A, with the same transpose flags and strides; the
// bias (one value per column of C) is one value per row of Cᵀ, which is what the BIAS epilogue adds.
//
// GELU epilogue. cuBLASLt's GELU epilogue is the tanh approximation
//   gelu_tanh(x) = ½x(1 + tanh(√(2/π)(x + 0.044715x³)))
// which differs from the exact erf form the CPU backend and the recipes use (nn.GELU()) by up to
// ~5e-4. It is offered as Epilogue::bias_gelu_tanh, named for what it computes; modules that must
// match the CPU use Epilogue::bias followed by cuda::gelu_forward (activations.cuh).
//
// Algorithms come from cublasLtMatmulAlgoGetHeuristic (with the operands' real alignment) and are
// cached per problem in the LtHandle, so a repeated shape costs no heuristic query — and a CUDA
// graph capture issues only the matmul itself. A GEMM with M = 0 or N = 0 does nothing.
#pragma once

#include <cublasLt.h>

#include <cstdint>
#include <map>
#include <tuple>
#include <type_traits>

#include "jepa/backend/cuda/common.cuh"
#include "jepa/backend/cuda/device.cuh"

namespace jepa::backend::cuda {

enum class GemmCompute : std::uint8_t {
  fp32,  // full fp32 products (CUBLAS_COMPUTE_32F)
  tf32,  // fp32 operands rounded to tf32 on the tensor cores (CUBLAS_COMPUTE_32F_FAST_TF32); fp32 only
  bf16,  // fp32 operands rounded to bf16 on the tensor cores, fp32 accumulation and output
         // (CUBLAS_COMPUTE_32F_FAST_16BF): the products of torch.autocast(bfloat16) on fp32 storage
};
enum class Epilogue : std::uint8_t {
  none,
  bias,            // C += bias (per column of C)
  bias_gelu_tanh,  // C = gelu_tanh(α·op(A)·op(B) + β·C + bias): NOT the CPU's erf GELU (see above)
};

/// The shape of a (strided-batched) row-major GEMM; see the header comment.
struct GemmShape {
  bool trans_a = false, trans_b = false;
  index_t M = 0, N = 0, K = 0;
  index_t lda = 0, ldb = 0, ldc = 0;
  index_t batch = 1;
  index_t stride_a = 0, stride_b = 0, stride_c = 0;
};

/// Throws jepa::ShapeError naming the first bad field of a GEMM (host-only; no device needed).
inline void validate_gemm(const GemmShape& s, const void* A, const void* B, const void* C, const void* bias,
                          Epilogue ep, const char* op = "cuda::gemm") {
  auto bad = [&](const char* field, index_t v, const std::string& allowed) {
    throw ShapeError(jepa::detail::cat("jepa: ", op, ": ", field, " = ", v, " is invalid: ", allowed));
  };
  if (s.M < 0) bad("M", s.M, "must be >= 0");
  if (s.N < 0) bad("N", s.N, "must be >= 0");
  if (s.K < 1) bad("K", s.K, "must be >= 1 (an empty reduction is not a cuBLASLt problem; scale C instead)");
  if (s.batch < 1) bad("batch", s.batch, "must be >= 1");
  const index_t a_cols = s.trans_a ? s.M : s.K, b_cols = s.trans_b ? s.K : s.N;
  if (s.lda < (a_cols > 1 ? a_cols : 1))
    bad("lda", s.lda, jepa::detail::cat("must be >= ", a_cols, " (columns of A as stored, ", s.trans_a ? "K×M" : "M×K", ")"));
  if (s.ldb < (b_cols > 1 ? b_cols : 1))
    bad("ldb", s.ldb, jepa::detail::cat("must be >= ", b_cols, " (columns of B as stored, ", s.trans_b ? "N×K" : "K×N", ")"));
  if (s.ldc < (s.N > 1 ? s.N : 1)) bad("ldc", s.ldc, jepa::detail::cat("must be >= N = ", s.N));
  if (s.batch > 1) {
    if (s.stride_a < 0) bad("stride_a", s.stride_a, "must be >= 0");
    if (s.stride_b < 0) bad("stride_b", s.stride_b, "must be >= 0");
    // Distinct outputs must not overlap (inputs may be shared with stride 0).
    if (s.stride_c < s.M * s.ldc && s.M > 0 && s.N > 0)
      bad("stride_c", s.stride_c, jepa::detail::cat("must be >= M·ldc = ", s.M * s.ldc, " (batched outputs may not overlap)"));
  }
  if (s.M == 0 || s.N == 0) return;
  if (!A) throw ShapeError(jepa::detail::cat("jepa: ", op, ": A is a null pointer"));
  if (!B) throw ShapeError(jepa::detail::cat("jepa: ", op, ": B is a null pointer"));
  if (!C) throw ShapeError(jepa::detail::cat("jepa: ", op, ": C is a null pointer"));
  if (ep != Epilogue::none && !bias)
    throw ShapeError(jepa::detail::cat("jepa: ", op, ": the bias epilogue needs a bias vector of N = ", s.N, " values (got null)"));
}

/// A cuBLASLt handle, its workspace (32 MiB: what cuBLASLt asks for on Hopper) and the cache of
/// chosen algorithms. One per device and thread; not thread-safe.
class LtHandle {
 public:
  static constexpr std::size_t kDefaultWorkspace = std::size_t{32} << 20;

  explicit LtHandle(std::size_t workspace_bytes = kDefaultWorkspace) : workspace_(workspace_bytes) {
    JEPA_CUBLAS_CHECK(cublasLtCreate(&h_));
  }
  ~LtHandle() {
    if (h_) {
      const cublasStatus_t s = cublasLtDestroy(h_);
      if (s != CUBLAS_STATUS_SUCCESS) std::fprintf(stderr, "jepa: cublasLtDestroy failed (%d), ignored\n", static_cast<int>(s));
    }
  }
  LtHandle(const LtHandle&) = delete;
  LtHandle& operator=(const LtHandle&) = delete;

  cublasLtHandle_t get() const noexcept { return h_; }
  void* workspace() const noexcept { return workspace_.data(); }
  std::size_t workspace_bytes() const noexcept { return workspace_.size(); }

  /// Problem key → algorithm. The key holds every descriptor field that changes which algorithms
  /// are valid, including the operands' alignment.
  using Key = std::tuple<int, int, int, int, int, int, index_t, index_t, index_t, index_t, index_t, index_t, index_t,
                         index_t, index_t, index_t, int, int, int, int>;
  std::map<Key, cublasLtMatmulAlgo_t>& cache() noexcept { return cache_; }

 private:
  cublasLtHandle_t h_ = nullptr;
  DeviceBuffer<std::byte> workspace_;
  std::map<Key, cublasLtMatmulAlgo_t> cache_;
};

namespace detail {

template <class T>
constexpr cudaDataType_t cuda_dtype() {
  if constexpr (std::is_same_v<T, float>) return CUDA_R_32F;
  else return CUDA_R_16BF;
}

/// RAII holders for the cuBLASLt descriptors of one call.
struct LtMatmulDesc {
  cublasLtMatmulDesc_t d = nullptr;
  LtMatmulDesc(cublasComputeType_t c, cudaDataType_t scale) { JEPA_CUBLAS_CHECK(cublasLtMatmulDescCreate(&d, c, scale)); }
  ~LtMatmulDesc() { if (d) cublasLtMatmulDescDestroy(d); }
  template <class V>
  void set(cublasLtMatmulDescAttributes_t a, const V& v) {
    JEPA_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(d, a, &v, sizeof v));
  }
};
struct LtLayout {
  cublasLtMatrixLayout_t l = nullptr;
  LtLayout(cudaDataType_t t, std::uint64_t rows, std::uint64_t cols, std::int64_t ld, std::int32_t batch,
           std::int64_t stride) {
    JEPA_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&l, t, rows, cols, ld));
    if (batch > 1) {
      JEPA_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &batch, sizeof batch));
      JEPA_CUBLAS_CHECK(
          cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof stride));
    }
  }
  ~LtLayout() { if (l) cublasLtMatrixLayoutDestroy(l); }
};
struct LtPreference {
  cublasLtMatmulPreference_t p = nullptr;
  LtPreference() { JEPA_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&p)); }
  ~LtPreference() { if (p) cublasLtMatmulPreferenceDestroy(p); }
  template <class V>
  void set(cublasLtMatmulPreferenceAttributes_t a, const V& v) {
    JEPA_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(p, a, &v, sizeof v));
  }
};

/// Largest power-of-two alignment (≤ 256 bytes) of a pointer, as cuBLASLt's preferences want it.
inline std::uint32_t alignment_of(const void* p) {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  std::uint32_t al = 256;
  while (al > 1 && (a % al) != 0) al >>= 1;
  return al;
}

}  // namespace detail

/// C = α·op(A)·op(B) + β·C (+ bias, + epilogue) on `stream`; see the header comment.
/// TAB: float or jepa::bf16; TC: float, or jepa::bf16 when TAB is bf16.
template <class TAB, class TC>
void gemm(LtHandle& lt, const GemmShape& s, float alpha, const TAB* A, const TAB* B, float beta, TC* C,
          cudaStream_t stream, const TC* bias = nullptr, Epilogue ep = Epilogue::none,
          GemmCompute compute = GemmCompute::fp32) {
  static_assert((std::is_same_v<TAB, float> && std::is_same_v<TC, float>) ||
                    (std::is_same_v<TAB, jepa::bf16> && (std::is_same_v<TC, jepa::bf16> || std::is_same_v<TC, float>)),
                "jepa: cuda::gemm supports (A,B,C) = (float,float,float), (bf16,bf16,bf16) and (bf16,bf16,float)");
  validate_gemm(s, A, B, C, bias, ep);
  if (compute != GemmCompute::fp32 && !std::is_same_v<TAB, float>)
    throw ConfigError("jepa: cuda::gemm: compute = tf32 / bf16 is invalid for bf16 operands (they run on the tensor "
                      "cores with fp32 accumulation already)");
  if (s.M == 0 || s.N == 0) return;

  const cublasComputeType_t ct = compute == GemmCompute::tf32   ? CUBLAS_COMPUTE_32F_FAST_TF32
                                 : compute == GemmCompute::bf16 ? CUBLAS_COMPUTE_32F_FAST_16BF
                                                                : CUBLAS_COMPUTE_32F;
  const cudaDataType_t tab = detail::cuda_dtype<TAB>(), tc = detail::cuda_dtype<TC>();
  // Column-major view: Cᵀ (N×M) = op(B)ᵀ (N×K) · op(A)ᵀ (K×M). cuBLAS "A" := our B, "B" := our A.
  const cublasOperation_t op_b = s.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;  // applies to cuBLAS A (our B)
  const cublasOperation_t op_a = s.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;  // applies to cuBLAS B (our A)
  // Column-major stored shapes (rows × cols, ld): our B stored row-major (K×N or N×K) is column-major
  // (N×K or K×N) with ld = ldb; likewise A.
  const std::uint64_t lb_rows = s.trans_b ? s.K : s.N, lb_cols = s.trans_b ? s.N : s.K;
  const std::uint64_t la_rows = s.trans_a ? s.M : s.K, la_cols = s.trans_a ? s.K : s.M;
  const auto batch = static_cast<std::int32_t>(s.batch);
  if (s.batch > 0x7fffffff) throw ShapeError("jepa: cuda::gemm: batch must be < 2^31");

  cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_DEFAULT;
  if (ep == Epilogue::bias) epi = CUBLASLT_EPILOGUE_BIAS;
  else if (ep == Epilogue::bias_gelu_tanh) epi = CUBLASLT_EPILOGUE_GELU_BIAS;

  detail::LtMatmulDesc desc(ct, CUDA_R_32F);
  desc.set(CUBLASLT_MATMUL_DESC_TRANSA, op_b);
  desc.set(CUBLASLT_MATMUL_DESC_TRANSB, op_a);
  desc.set(CUBLASLT_MATMUL_DESC_EPILOGUE, epi);
  if (ep != Epilogue::none) {
    desc.set(CUBLASLT_MATMUL_DESC_BIAS_POINTER, static_cast<const void*>(bias));
    const cudaDataType_t bt = tc;
    desc.set(CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, bt);
    const std::int64_t bias_stride = 0;  // one bias for every batch entry
    if (batch > 1) desc.set(CUBLASLT_MATMUL_DESC_BIAS_BATCH_STRIDE, bias_stride);
  }
  detail::LtLayout la(tab, lb_rows, lb_cols, s.ldb, batch, s.stride_b);                 // cuBLAS A = our B
  detail::LtLayout lb(tab, la_rows, la_cols, s.lda, batch, s.stride_a);                 // cuBLAS B = our A
  detail::LtLayout lc(tc, static_cast<std::uint64_t>(s.N), static_cast<std::uint64_t>(s.M), s.ldc, batch, s.stride_c);

  const std::uint32_t al_a = detail::alignment_of(B), al_b = detail::alignment_of(A), al_c = detail::alignment_of(C);
  const LtHandle::Key key{static_cast<int>(ct), static_cast<int>(tab), static_cast<int>(tc), static_cast<int>(op_b),
                          static_cast<int>(op_a), static_cast<int>(epi), s.M, s.N, s.K, s.lda, s.ldb, s.ldc, s.batch,
                          s.stride_a, s.stride_b, s.stride_c, static_cast<int>(al_a), static_cast<int>(al_b),
                          static_cast<int>(al_c), ep != Epilogue::none ? static_cast<int>(detail::alignment_of(bias)) : 0};
  auto& cache = lt.cache();
  auto it = cache.find(key);
  if (it == cache.end()) {
    detail::LtPreference pref;
    const std::uint64_t ws = lt.workspace_bytes();
    pref.set(CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, ws);
    pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, al_a);
    pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, al_b);
    pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, al_c);
    pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, al_c);
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    JEPA_CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(lt.get(), desc.d, la.l, lb.l, lc.l, lc.l, pref.p, 1, &result, &found));
    if (found == 0)
      throw CudaError(jepa::detail::cat("jepa: cuda::gemm: cuBLASLt has no algorithm for M=", s.M, " N=", s.N, " K=", s.K,
                                        " lda=", s.lda, " ldb=", s.ldb, " ldc=", s.ldc, " batch=", s.batch,
                                        " (alignments A/B/C ", al_b, "/", al_a, "/", al_c, " bytes)"),
                      static_cast<int>(CUBLAS_STATUS_NOT_SUPPORTED));
    it = cache.emplace(key, result.algo).first;
  }
  JEPA_CUBLAS_CHECK(cublasLtMatmul(lt.get(), desc.d, &alpha, B, la.l, A, lb.l, &beta, C, lc.l, C, lc.l, &it->second,
                                   lt.workspace(), lt.workspace_bytes(), stream));
}

}  // namespace jepa::backend::cuda
