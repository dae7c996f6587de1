#include "reference.hpp"

#include "jepa/backend/cpu/backend.hpp"

namespace jepa::test::cpu_ref {

using backend::Cpu;

void gemm(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, double alpha, const double* A,
          std::int64_t lda, const double* B, std::int64_t ldb, double beta, double* C, std::int64_t ldc) {
  Cpu::gemm<double>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
void layer_norm_forward(const double* x, const double* w, const double* b, double* y, double* mean, double* rstd,
                        std::int64_t M, std::int64_t D, double eps) {
  Cpu::layer_norm_forward<double>(x, w, b, y, mean, rstd, M, D, eps);
}
void layer_norm_backward(const double* x, const double* w, const double* mean, const double* rstd, const double* dy,
                         double* dx, double* dw, double* db, std::int64_t M, std::int64_t D, bool accumulate_dx) {
  Cpu::layer_norm_backward<double>(x, w, mean, rstd, dy, dx, dw, db, M, D, accumulate_dx);
}
void gelu_forward(const double* x, double* y, std::int64_t n) { Cpu::gelu_forward<double>(x, y, n); }
void gelu_backward(const double* x, const double* dy, double* dx, std::int64_t n) {
  Cpu::gelu_backward<double>(x, dy, dx, n);
}

}  // namespace jepa::test::cpu_ref
