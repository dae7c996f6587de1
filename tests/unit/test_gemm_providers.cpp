// The CPU GEMM layer (backend/cpu/gemm.hpp): every provider gives the product within its band, the
// provider rule refuses what it cannot do, bf16 stays within its stated band, the fused linear
// epilogues equal the unfused path, and concurrent callers get the results of serial calls.
//
// CTest runs this program once per provider in the build (JEPA_GEMM=onednn|openblas|eigen), once with
// OpenBLAS made generic (OPENBLAS_CORETYPE=Prescott: the "mis-detected BLAS" case), and once with
// oneDNN held to AVX2 (ONEDNN_MAX_CPU_ISA=AVX2: a CPU without AVX-512); tests/CMakeLists.txt.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "jepa/backend/cpu/backend.hpp"
#include "jepa/backend/cpu/gemm.hpp"

namespace {
using namespace jepa;
using namespace jepa::backend::cpu;
namespace cpu_detail = jepa::backend::cpu::detail;

std::vector<float> random_matrix(std::size_t n, unsigned seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.f, 1.f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

struct Product {
  bool ta, tb;
  index_t M, N, K;
  float alpha, beta;
};

/// C = α·op(A)·op(B) + β·C0 in double; also Σ_k |a||b| per element (the rounding scale).
void reference(const Product& p, const std::vector<float>& A, index_t lda, const std::vector<float>& B, index_t ldb,
               const std::vector<float>& C0, index_t ldc, std::vector<double>& ref, std::vector<double>& mag) {
  ref.assign(static_cast<std::size_t>(p.M * p.N), 0.0);
  mag.assign(ref.size(), 0.0);
  for (index_t i = 0; i < p.M; ++i)
    for (index_t j = 0; j < p.N; ++j) {
      double s = 0, m = 0;
      for (index_t k = 0; k < p.K; ++k) {
        const double a = p.ta ? A[k * lda + i] : A[i * lda + k];
        const double b = p.tb ? B[j * ldb + k] : B[k * ldb + j];
        s += a * b;
        m += std::abs(a * b);
      }
      const double c0 = p.beta != 0.f ? static_cast<double>(C0[i * ldc + j]) : 0.0;
      ref[i * p.N + j] = p.alpha * s + p.beta * c0;
      mag[i * p.N + j] = std::abs(p.alpha) * m + std::abs(p.beta * c0);
    }
}

/// max over elements of |C − ref| / Σ|terms|: fp32 rounding gives ~K·2^-24, bf16 inputs ~2^-8.
double worst_relative(const Product& p, const std::vector<float>& C, index_t ldc, const std::vector<double>& ref,
                      const std::vector<double>& mag) {
  double worst = 0;
  for (index_t i = 0; i < p.M; ++i)
    for (index_t j = 0; j < p.N; ++j)
      worst = std::max(worst, std::abs(C[i * ldc + j] - ref[i * p.N + j]) / (mag[i * p.N + j] + 1e-30));
  return worst;
}

double run_product(const Product& p, unsigned seed) {
  const index_t a_rows = p.ta ? p.K : p.M, a_cols = p.ta ? p.M : p.K;
  const index_t b_rows = p.tb ? p.N : p.K, b_cols = p.tb ? p.K : p.N;
  const index_t lda = a_cols + 3, ldb = b_cols + 5, ldc = p.N + 2;  // padded strides are part of the contract
  const auto A = random_matrix(static_cast<std::size_t>(a_rows * lda), seed);
  const auto B = random_matrix(static_cast<std::size_t>(b_rows * ldb), seed + 1);
  auto C = random_matrix(static_cast<std::size_t>(p.M * ldc), seed + 2);
  const auto C0 = C;
  if (p.beta == 0.f)
    for (auto& x : C) x = std::nanf("");  // β = 0 must not read C
  std::vector<double> ref, mag;
  reference(p, A, lda, B, ldb, C0, ldc, ref, mag);
  jepa::backend::cpu::gemm<float>(p.ta, p.tb, p.M, p.N, p.K, p.alpha, A.data(), lda, B.data(), ldb, p.beta,
                                  C.data(), ldc);
  return worst_relative(p, C, ldc, ref, mag);
}

const std::vector<Product>& products() {
  static const std::vector<Product> ps = {
      {false, true, 196, 384, 384, 1.f, 0.f},   // a linear layer's forward (x·Wᵀ)
      {false, false, 196, 384, 1152, 1.f, 0.f}, // its input gradient (dy·W)
      {true, false, 384, 96, 196, 1.f, 1.f},    // its weight gradient, accumulated (dW += dyᵀ·x)
      {true, true, 17, 23, 31, 0.5f, -2.f},     // every flag, odd sizes, α and β
      {false, true, 1, 7, 5, 1.f, 0.f},         // one row
      {false, false, 64, 64, 1, 2.f, 0.5f},     // K = 1
  };
  return ps;
}

}  // namespace

BOOST_AUTO_TEST_CASE(provider_rule_and_refusals) {
  // auto: oneDNN when the build has it, else a BLAS that knows the CPU, else Eigen.
  BOOST_TEST((cpu_detail::choose_gemm_provider("", true, true, false, "Haswell").provider == GemmProvider::onednn));
  BOOST_TEST((cpu_detail::choose_gemm_provider("auto", false, true, false, "Haswell").provider == GemmProvider::openblas));
  const auto generic = cpu_detail::choose_gemm_provider("auto", false, true, true, "Prescott");
  BOOST_TEST((generic.provider == GemmProvider::eigen));
  BOOST_TEST(generic.why.find("Prescott") != std::string::npos);
  BOOST_TEST((cpu_detail::choose_gemm_provider("auto", false, false, false, "").provider == GemmProvider::eigen));
  // Forcing: honoured when present (a generic BLAS too: the user asked for it), refused when absent.
  BOOST_TEST((cpu_detail::choose_gemm_provider("openblas", true, true, true, "Prescott").provider == GemmProvider::openblas));
  BOOST_TEST(cpu_detail::choose_gemm_provider("eigen", true, true, false, "").forced);
  try {
    cpu_detail::choose_gemm_provider("onednn", false, true, false, "Haswell");
    BOOST_FAIL("a provider the build lacks was accepted");
  } catch (const ConfigError& e) {
    const std::string m = e.what();
    BOOST_TEST(m.find("JEPA_GEMM=onednn") != std::string::npos);
    BOOST_TEST(m.find("libdnnl-dev") != std::string::npos);
    BOOST_TEST(m.find("allowed here: auto, openblas, eigen") != std::string::npos);
  }
  try {
    cpu_detail::choose_gemm_provider("mkl", true, true, false, "");
    BOOST_FAIL("an unknown provider was accepted");
  } catch (const ConfigError& e) {
    BOOST_TEST(std::string(e.what()).find("'mkl' is not a GEMM provider; allowed here: auto, onednn, openblas, eigen") !=
               std::string::npos);
  }
  // OpenBLAS cores: which names mean AVX2 kernels.
  BOOST_TEST(cpu_detail::blas_core_has_avx2_kernels("Haswell"));
  BOOST_TEST(cpu_detail::blas_core_has_avx2_kernels("SKYLAKEX"));
  BOOST_TEST(cpu_detail::blas_core_has_avx2_kernels("Zen"));
  BOOST_TEST(!cpu_detail::blas_core_has_avx2_kernels("Prescott"));
  BOOST_TEST(!cpu_detail::blas_core_has_avx2_kernels("Sandybridge"));
  BOOST_TEST((parse_matmul_precision("bf16") == MatmulPrecision::bf16));
  BOOST_CHECK_THROW(parse_matmul_precision("fp8"), ConfigError);
}

BOOST_AUTO_TEST_CASE(this_process_uses_the_provider_it_was_given) {
  const GemmSetup& s = gemm_setup();
  BOOST_TEST_MESSAGE("GEMM: " << gemm_report());
  if (const char* want = std::getenv("JEPA_GEMM"); want && *want && std::string(want) != "auto") {
    BOOST_TEST(std::string(to_string(s.provider)) == want);
    BOOST_TEST(s.forced);
  } else if (kHaveOneDnn) {
    BOOST_TEST((s.provider == GemmProvider::onednn));
  }
  // The generic-BLAS case (OPENBLAS_CORETYPE=Prescott on an AVX2 CPU) is recognised, and never chosen by auto.
  if (const char* core = std::getenv("OPENBLAS_CORETYPE"); core && std::string(core) == "Prescott" &&
                                                           cpu_features().avx2 && !s.blas_core.empty()) {
    BOOST_TEST(s.blas_generic);
    if (!s.forced) BOOST_TEST((s.provider != GemmProvider::openblas));
  }
  BOOST_TEST(gemm_report().find(cpu_features().summary()) != std::string::npos);
}

BOOST_AUTO_TEST_CASE(fp32_products_are_within_rounding_of_a_double_reference) {
  unsigned seed = 1;
  for (const Product& p : products()) {
    const double worst = run_product(p, seed += 10);
    // fp32 accumulation: a few K·2^-24 at worst; 1e-5 with K ≤ 1152 leaves room and catches any wrong
    // flag, stride, α or β (those give O(1) errors).
    BOOST_TEST(worst < 1e-5, "ta=" << p.ta << " tb=" << p.tb << " " << p.M << "x" << p.N << "x" << p.K
                                   << ": worst relative error " << worst);
  }
}

BOOST_AUTO_TEST_CASE(bf16_products_are_within_the_bf16_band) {
  ScopedMatmulPrecision bf16(MatmulPrecision::bf16);
  const bool runs_bf16 = effective_matmul_precision() == MatmulPrecision::bf16;
  BOOST_TEST_MESSAGE("bf16 asked; runs " << to_string(effective_matmul_precision()) << ": " << gemm_report());
  unsigned seed = 100;
  for (const Product& p : products()) {
    const double worst = run_product(p, seed += 10);
    // Rounding both inputs to bf16 (8 significant bits, RNE) errs by ≤ 2·2^-9 per term relative; the
    // fp32 sum adds K·2^-24. Band: 2^-7 of Σ|terms| (also holds where bf16 falls back to fp32).
    BOOST_TEST(worst < 1.0 / 128, "bf16 " << p.M << "x" << p.N << "x" << p.K << ": worst " << worst);
    if (!runs_bf16) BOOST_TEST(worst < 1e-5);  // the fp32 fallback is exact to fp32
  }
  if (runs_bf16) {
    // It really is bf16: a product whose inputs need more than 8 bits differs from fp32.
    // (128³ multiply-adds: at the bf16 threshold, kBf16MinMacs.)
    const float v = 1.00390625f + 0.001f;  // between the bf16 neighbours 1 and 1 + 2^-7
    const std::vector<float> a(128 * 128, v), b(128 * 128, 1.f);
    std::vector<float> c(128 * 128);
    jepa::backend::cpu::gemm<float>(false, false, 128, 128, 128, 1.f, a.data(), 128, b.data(), 128, 0.f, c.data(), 128);
    BOOST_TEST(std::abs(c[0] - 128.f * 1.0078125f) < 1e-4f);  // 128 · bf16(v), not 128 · v
    // A product below the threshold stays fp32.
    jepa::backend::cpu::gemm<float>(false, false, 16, 16, 16, 1.f, a.data(), 16, b.data(), 16, 0.f, c.data(), 16);
    BOOST_TEST(std::abs(c[0] - 16.f * v) < 1e-5f);
  }
}

BOOST_AUTO_TEST_CASE(batched_products_equal_one_by_one) {
  const index_t batch = 6, M = 33, N = 20, K = 64;
  const auto A = random_matrix(static_cast<std::size_t>(batch * M * K), 7);
  const auto B = random_matrix(static_cast<std::size_t>(batch * N * K), 8);
  std::vector<float> C(static_cast<std::size_t>(batch * M * N)), C1(C.size());
  jepa::backend::cpu::gemm<float>(false, true, M, N, K, 0.125f, A.data(), K, B.data(), K, 0.f, C.data(), N, batch,
                                  M * K, N * K, M * N);
  for (index_t i = 0; i < batch; ++i)
    jepa::backend::cpu::gemm<float>(false, true, M, N, K, 0.125f, A.data() + i * M * K, K, B.data() + i * N * K, K,
                                    0.f, C1.data() + i * M * N, N);
  double worst = 0;
  for (std::size_t i = 0; i < C.size(); ++i) worst = std::max(worst, double(std::abs(C[i] - C1[i])));
  BOOST_TEST(worst < 1e-4);
}

BOOST_AUTO_TEST_CASE(fused_linear_epilogues_equal_the_unfused_primitives) {
  using Cpu = jepa::backend::Cpu;
  const index_t M = 50, in = 96, out = 130;
  const auto x = random_matrix(static_cast<std::size_t>(M * in), 11);
  const auto W = random_matrix(static_cast<std::size_t>(out * in), 12);
  const auto b = random_matrix(static_cast<std::size_t>(out), 13);
  std::vector<float> fused(static_cast<std::size_t>(M * out)), ref(fused.size()), gelu(fused.size());
  Cpu::linear_forward<float>(x.data(), W.data(), b.data(), fused.data(), M, in, out);
  Cpu::gemm<float>(false, true, M, out, in, 1.f, x.data(), in, W.data(), in, 0.f, ref.data(), out);
  Cpu::add_row_vector<float>(ref.data(), b.data(), M, out);
  double worst = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) worst = std::max(worst, double(std::abs(fused[i] - ref[i])));
  BOOST_TEST(worst < 1e-4);
  Cpu::linear_gelu_forward<float>(x.data(), W.data(), b.data(), gelu.data(), M, in, out);
  Cpu::gelu_forward<float>(ref.data(), ref.data(), M * out);
  worst = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) worst = std::max(worst, double(std::abs(gelu[i] - ref[i])));
  BOOST_TEST(worst < 1e-4);  // oneDNN's erf and Eigen's erf differ by a few ulp of values of size ~10
  // A wrong epilogue (no GELU, or a GELU without the bias) would differ by O(1).
  BOOST_TEST(std::abs(gelu[0] - fused[0]) + std::abs(gelu[1] - fused[1]) > 0.0f);
}

BOOST_AUTO_TEST_CASE(concurrent_callers_get_the_serial_results) {
  // Several user threads call the layer at once, with shapes that create primitives concurrently.
  const int threads = 4;
  std::vector<std::vector<float>> A(threads), B(threads), serial(threads), parallel(threads);
  std::vector<index_t> Ms(threads);
  for (int t = 0; t < threads; ++t) {
    Ms[t] = 40 + 13 * t;
    A[t] = random_matrix(static_cast<std::size_t>(Ms[t] * 72), 20 + t);
    B[t] = random_matrix(static_cast<std::size_t>(72 * 56), 30 + t);
    serial[t].resize(static_cast<std::size_t>(Ms[t] * 56));
    parallel[t].resize(serial[t].size());
    jepa::backend::cpu::gemm<float>(false, false, Ms[t], 56, 72, 1.f, A[t].data(), 72, B[t].data(), 56, 0.f,
                                    serial[t].data(), 56);
  }
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      for (int rep = 0; rep < 20; ++rep)
        jepa::backend::cpu::gemm<float>(false, false, Ms[t], 56, 72, 1.f, A[t].data(), 72, B[t].data(), 56, 0.f,
                                        parallel[t].data(), 56);
    });
  for (auto& th : pool) th.join();
  for (int t = 0; t < threads; ++t) BOOST_TEST(parallel[t] == serial[t]);
}

BOOST_AUTO_TEST_CASE(double_products_stay_exact) {
  // double never goes to oneDNN (no f64 matmul): it runs on the BLAS or Eigen at full precision.
  const index_t M = 31, N = 17, K = 45;
  std::mt19937 g(5);
  std::normal_distribution<double> d;
  std::vector<double> A(M * K), B(K * N), C(M * N);
  for (auto& v : A) v = d(g);
  for (auto& v : B) v = d(g);
  ScopedMatmulPrecision bf16(MatmulPrecision::bf16);  // does not apply to double
  jepa::backend::cpu::gemm<double>(false, false, M, N, K, 1.0, A.data(), K, B.data(), N, 0.0, C.data(), N);
  double worst = 0;
  for (index_t i = 0; i < M; ++i)
    for (index_t j = 0; j < N; ++j) {
      double s = 0;
      for (index_t k = 0; k < K; ++k) s += A[i * K + k] * B[k * N + j];
      worst = std::max(worst, std::abs(C[i * N + j] - s));
    }
  BOOST_TEST(worst < 1e-12);
}
