// CPU backend primitives that the gradient checks do not reach directly: GEMM in all four
// transpose combinations with α/β (β = 0 must not read C), strided batching, strided row layouts,
// K = 0; the non-affine LayerNorm (targets) and im2col/col2im round trips.
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <limits>

#include "jepa/jepa.hpp"
#include "support/check.hpp"

using namespace jepa;
using Cpu = backend::Cpu;

namespace {
/// Reference C = α·op(A)·op(B) + β·C with explicit loops (row-major, leading dimensions).
template <class T>
void naive_gemm(bool ta, bool tb, index_t M, index_t N, index_t K, T alpha, const T* A, index_t lda, const T* B,
                index_t ldb, T beta, T* C, index_t ldc) {
  for (index_t i = 0; i < M; ++i)
    for (index_t j = 0; j < N; ++j) {
      double s = 0;
      for (index_t k = 0; k < K; ++k)
        s += double(ta ? A[k * lda + i] : A[i * lda + k]) * double(tb ? B[j * ldb + k] : B[k * ldb + j]);
      C[i * ldc + j] = static_cast<T>(alpha * s + (beta == T(0) ? 0.0 : double(beta) * C[i * ldc + j]));
    }
}
}  // namespace

BOOST_AUTO_TEST_CASE(gemm_all_transposes) {
  const index_t M = 37, N = 29, K = 41;
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (double beta : {0.0, 1.0, -0.5}) {
        // Leading dimensions larger than the logical widths (strided rows).
        const index_t lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 5, ldc = N + 7;
        auto A = test::random_vector<double>((ta ? K : M) * lda, 1), B = test::random_vector<double>((tb ? N : K) * ldb, 2);
        auto C = test::random_vector<double>(M * ldc, 3), R = C;
        if (beta == 0.0) std::fill(C.begin(), C.end(), std::numeric_limits<double>::quiet_NaN());  // must not be read
        Cpu::gemm(ta, tb, M, N, K, 0.75, A.data(), lda, B.data(), ldb, beta, C.data(), ldc);
        naive_gemm(ta, tb, M, N, K, 0.75, A.data(), lda, B.data(), ldb, beta, R.data(), ldc);
        for (index_t i = 0; i < M; ++i)
          for (index_t j = 0; j < N; ++j)
            BOOST_REQUIRE_MESSAGE(std::abs(C[i * ldc + j] - R[i * ldc + j]) < 1e-12,
                                  "ta=" << ta << " tb=" << tb << " beta=" << beta << " at " << i << "," << j);
      }
}

BOOST_AUTO_TEST_CASE(gemm_batched_float_and_k0) {
  const index_t M = 8, N = 12, K = 16, batch = 3;
  auto A = test::random_vector<float>(batch * M * K, 4), B = test::random_vector<float>(batch * K * N, 5);
  std::vector<float> C(batch * M * N), R(batch * M * N);
  Cpu::gemm_strided_batched(false, false, M, N, K, 1.0f, A.data(), K, M * K, B.data(), N, K * N, 0.0f, C.data(), N,
                            M * N, batch);
  for (index_t b = 0; b < batch; ++b)
    naive_gemm(false, false, M, N, K, 1.0f, A.data() + b * M * K, K, B.data() + b * K * N, N, 0.0f, R.data() + b * M * N, N);
  BOOST_TEST(test::rel_error(C, R) < 1e-6);
  // K = 0: C = β·C.
  std::vector<float> c2(M * N, 2.0f);
  Cpu::gemm(false, false, M, N, 0, 1.0f, A.data(), 1, B.data(), N, 0.5f, c2.data(), N);
  for (float v : c2) BOOST_TEST(v == 1.0f);
}

BOOST_AUTO_TEST_CASE(layer_norm_non_affine) {
  // The extra target normalisation of the JEPA losses: LN without weight and bias.
  const index_t M = 3, D = 10;
  auto x = test::random_vector<double>(M * D, 6, 3.0, 1.0);
  std::vector<double> y(M * D), mean(M), rstd(M);
  Cpu::layer_norm_forward<double>(x.data(), nullptr, nullptr, y.data(), mean.data(), rstd.data(), M, D, 1e-6);
  for (index_t r = 0; r < M; ++r) {
    double s = 0, s2 = 0;
    for (index_t j = 0; j < D; ++j) s += y[r * D + j], s2 += y[r * D + j] * y[r * D + j];
    BOOST_TEST(std::abs(s / D) < 1e-12);
    BOOST_TEST(s2 / D == 1.0, boost::test_tools::tolerance(1e-5));
  }
}

BOOST_AUTO_TEST_CASE(im2col_matches_conv3d_definition) {
  // token(b, n)[c, i, y, x] = clip[b, c, t'·t + i, h'·p + y, w'·p + x]
  const index_t B = 2, C = 3, F = 4, H = 6, W = 9, t = 2, p = 3, K = 4;
  std::vector<float> clip(B * C * F * H * W);
  for (std::size_t i = 0; i < clip.size(); ++i) clip[i] = static_cast<float>(i);
  const std::vector<std::int64_t> idx = {0, 5, 11, 7, 1, 2, 3, 10};  // grid 2×2×3
  std::vector<float> cols(B * K * C * t * p * p), back(clip.size());
  Cpu::im2col_tubelet(clip.data(), idx.data(), cols.data(), B, C, F, H, W, t, p, K);
  for (index_t b = 0; b < B; ++b)
    for (index_t k = 0; k < K; ++k) {
      const index_t n = idx[b * K + k], tt = n / 6, hh = (n % 6) / 3, ww = n % 3;
      for (index_t c = 0; c < C; ++c)
        for (index_t i = 0; i < t; ++i)
          for (index_t y = 0; y < p; ++y)
            for (index_t x = 0; x < p; ++x)
              BOOST_REQUIRE(cols[(b * K + k) * C * t * p * p + ((c * t + i) * p + y) * p + x] ==
                            clip[(((b * C + c) * F + tt * t + i) * H + hh * p + y) * W + ww * p + x]);
    }
  // col2im puts every kept value back and zeroes the rest.
  Cpu::col2im_tubelet(cols.data(), idx.data(), back.data(), B, C, F, H, W, t, p, K);
  std::size_t nonzero = 0;
  for (std::size_t i = 0; i < back.size(); ++i)
    if (back[i] != 0) {
      BOOST_REQUIRE(back[i] == clip[i]);
      ++nonzero;
    }
  BOOST_TEST(nonzero == static_cast<std::size_t>(B * K * C * t * p * p) - 1);  // clip[0] == 0 is kept too
}
