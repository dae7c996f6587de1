// CPU references for the CUDA parity tests, compiled by the host compiler in reference.cpp (keeps
// Eigen out of the nvcc translation units). Each forwards to backend::Cpu in double precision, the
// readable reference the CUDA backend is checked against (DESIGN.md testing layer 4).
#pragma once

#include <cstdint>

namespace jepa::test::cpu_ref {

/// C = α·op(A)·op(B) + β·C, row-major (backend::Cpu::gemm<double>).
void gemm(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, double alpha, const double* A,
          std::int64_t lda, const double* B, std::int64_t ldb, double beta, double* C, std::int64_t ldc);
void layer_norm_forward(const double* x, const double* w, const double* b, double* y, double* mean, double* rstd,
                        std::int64_t M, std::int64_t D, double eps);
void layer_norm_backward(const double* x, const double* w, const double* mean, const double* rstd, const double* dy,
                         double* dx, double* dw, double* db, std::int64_t M, std::int64_t D, bool accumulate_dx);
void gelu_forward(const double* x, double* y, std::int64_t n);
void gelu_backward(const double* x, const double* dy, double* dx, std::int64_t n);

}  // namespace jepa::test::cpu_ref
