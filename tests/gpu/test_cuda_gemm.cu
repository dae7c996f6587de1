// cuda::gemm (cuBLASLt) against backend::Cpu::gemm in double on random inputs.
// Tolerances, as ‖C_gpu − C_ref‖/‖C_ref‖ with the reference computed from the same (rounded) inputs:
//   fp32 operands, fp32 compute   1e-5   (fp32 rounding of K-term sums)
//   fp32 operands, tf32 compute   3e-3   (10-bit mantissa products, ~5e-4 typical)
//   bf16 operands → fp32 output   1e-4   (exact products, fp32 accumulation: only summation error)
//   bf16 operands → bf16 output   8e-3   (final rounding to 8 bits, ~2e-3 typical)
#include "common.cuh"
#include "reference.hpp"

#include "jepa/backend/cuda/gemm.cuh"

namespace {
using namespace jepa::test::gpu;
using jepa::bf16;
using jepa::index_t;

struct Case {
  bool ta, tb;
  index_t M, N, K, pad;  // pad: extra columns in each stored row
  index_t batch;
};

/// Runs one case on the GPU and on the CPU; returns the relative error.
template <class TAB, class TC>
double run_case(cu::LtHandle& lt, const Case& c, cu::GemmCompute compute, cu::Epilogue ep, float alpha, float beta,
                std::uint64_t seed) {
  const index_t a_rows = c.ta ? c.K : c.M, a_cols = c.ta ? c.M : c.K;
  const index_t b_rows = c.tb ? c.N : c.K, b_cols = c.tb ? c.K : c.N;
  cu::GemmShape s;
  s.trans_a = c.ta;
  s.trans_b = c.tb;
  s.M = c.M;
  s.N = c.N;
  s.K = c.K;
  s.lda = a_cols + c.pad;
  s.ldb = b_cols + c.pad;
  s.ldc = c.N + c.pad;
  s.batch = c.batch;
  s.stride_a = a_rows * s.lda;
  s.stride_b = b_rows * s.ldb;
  s.stride_c = c.M * s.ldc;
  const std::size_t na = s.stride_a * c.batch, nb = s.stride_b * c.batch, nc = s.stride_c * c.batch;
  const auto A = random<TAB>(na, seed), B = random<TAB>(nb, seed + 1);
  const auto C0 = random<TC>(nc, seed + 2), bias = random<TC>(c.N, seed + 3);
  auto dA = cu::to_device(A), dB = cu::to_device(B);
  auto dC = cu::to_device(C0), dbias = cu::to_device(bias);
  if (beta == 0.f) poison(dC.data(), nc);  // C must not be read with β = 0
  cu::gemm<TAB, TC>(lt, s, alpha, dA.data(), dB.data(), beta, dC.data(), nullptr,
                      ep == cu::Epilogue::none ? nullptr : dbias.data(), ep, compute);
  JEPA_CUDA_CHECK(cudaDeviceSynchronize());
  const auto C = to_double(cu::to_host(dC.data(), nc));

  auto Ad = to_double(A), Bd = to_double(B), Cr = to_double(C0);
  for (index_t i = 0; i < c.batch; ++i) {
    double* Ci = Cr.data() + i * s.stride_c;
    jepa::test::cpu_ref::gemm(c.ta, c.tb, c.M, c.N, c.K, alpha, Ad.data() + i * s.stride_a, s.lda,
                              Bd.data() + i * s.stride_b, s.ldb, beta, Ci, s.ldc);
    for (index_t r = 0; r < c.M; ++r)
      for (index_t j = 0; j < c.N; ++j) {
        double& v = Ci[r * s.ldc + j];
        if (ep != cu::Epilogue::none) v += as_double(bias[j]);
        if (ep == cu::Epilogue::bias_gelu_tanh)
          v = 0.5 * v * (1.0 + std::tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)));
      }
  }
  // Compare the logical matrices (the padding columns of each row belong to neither side).
  std::vector<double> got, ref;
  for (index_t i = 0; i < c.batch; ++i)
    for (index_t r = 0; r < c.M; ++r)
      for (index_t j = 0; j < c.N; ++j) {
        const std::size_t o = i * s.stride_c + r * s.ldc + j;
        got.push_back(C[o]);
        ref.push_back(Cr[o]);
      }
  BOOST_REQUIRE_MESSAGE(all_finite(got), "unwritten (NaN) or non-finite output");
  return jepa::test::rel_error(got, ref);
}

const Case kCases[] = {
    {false, false, 64, 96, 128, 0, 1}, {false, true, 64, 96, 128, 0, 1}, {true, false, 64, 96, 128, 0, 1},
    {true, true, 64, 96, 128, 0, 1},   {false, true, 37, 53, 29, 3, 1},  {false, false, 128, 64, 256, 8, 3},
    {true, true, 17, 40, 72, 0, 2},
};
}  // namespace

BOOST_AUTO_TEST_SUITE(cuda_gemm)

BOOST_AUTO_TEST_CASE(fp32_fp32_compute) {
  cu::LtHandle lt;
  std::uint64_t seed = 100;
  for (const auto& c : kCases) {
    const double e = run_case<float, float>(lt, c, cu::GemmCompute::fp32, cu::Epilogue::none, 1.f, 0.f, seed++);
    BOOST_TEST_INFO("M=" << c.M << " N=" << c.N << " K=" << c.K << " ta=" << c.ta << " tb=" << c.tb);
    BOOST_TEST(e < 1e-5);
  }
}

BOOST_AUTO_TEST_CASE(fp32_tf32_compute_alpha_beta) {
  cu::LtHandle lt;
  std::uint64_t seed = 200;
  for (const auto& c : kCases) {
    const double e = run_case<float, float>(lt, c, cu::GemmCompute::tf32, cu::Epilogue::none, 0.5f, 1.5f, seed++);
    BOOST_TEST_INFO("M=" << c.M << " N=" << c.N << " K=" << c.K);
    BOOST_TEST(e < 3e-3);
  }
}

BOOST_AUTO_TEST_CASE(bf16_operands) {
  cu::LtHandle lt;
  std::uint64_t seed = 300;
  for (const auto& c : kCases) {
    BOOST_TEST_INFO("M=" << c.M << " N=" << c.N << " K=" << c.K << " ta=" << c.ta << " tb=" << c.tb);
    {
      const double e = run_case<bf16, float>(lt, c, cu::GemmCompute::fp32, cu::Epilogue::none, 1.f, 0.f, seed++);
      BOOST_TEST(e < 1e-4);
    }
    {
      const double e = run_case<bf16, bf16>(lt, c, cu::GemmCompute::fp32, cu::Epilogue::none, 1.f, 0.f, seed++);
      BOOST_TEST(e < 8e-3);
    }
  }
}

BOOST_AUTO_TEST_CASE(bias_and_gelu_tanh_epilogues) {
  cu::LtHandle lt;
  const Case c{false, true, 96, 128, 64, 0, 1};  // the linear layer's shape: x·Wᵀ + b
  {
    const double e = run_case<float, float>(lt, c, cu::GemmCompute::fp32, cu::Epilogue::bias, 1.f, 0.f, 400);
    BOOST_TEST(e < 1e-5);
  }
  {
    const double e = run_case<bf16, bf16>(lt, c, cu::GemmCompute::fp32, cu::Epilogue::bias, 1.f, 0.f, 401);
    BOOST_TEST(e < 8e-3);
  }
  {
    const double e = run_case<float, float>(lt, c, cu::GemmCompute::fp32, cu::Epilogue::bias_gelu_tanh, 1.f, 0.f, 402);
    BOOST_TEST(e < 1e-4);
  }
  {
    const double e = run_case<bf16, bf16>(lt, c, cu::GemmCompute::fp32, cu::Epilogue::bias_gelu_tanh, 1.f, 0.f, 403);
    BOOST_TEST(e < 1e-2);
  }
}

BOOST_AUTO_TEST_CASE(repeat_is_bitwise_identical_and_cached) {
  cu::LtHandle lt;
  const auto A = random<bf16>(200 * 320, 1), B = random<bf16>(160 * 320, 2);
  auto dA = cu::to_device(A), dB = cu::to_device(B);
  cu::DeviceBuffer<float> dC(200 * 160);
  cu::GemmShape s{false, true, 200, 160, 320, 320, 320, 160};
  cu::gemm(lt, s, 1.f, dA.data(), dB.data(), 0.f, dC.data(), nullptr);
  JEPA_CUDA_CHECK(cudaDeviceSynchronize());
  const auto first = cu::to_host(dC.data(), dC.size());
  const std::size_t cached = lt.cache().size();
  cu::gemm(lt, s, 1.f, dA.data(), dB.data(), 0.f, dC.data(), nullptr);
  JEPA_CUDA_CHECK(cudaDeviceSynchronize());
  BOOST_TEST(lt.cache().size() == cached);
  BOOST_TEST(bitwise_equal(first, cu::to_host(dC.data(), dC.size())));
}

BOOST_AUTO_TEST_SUITE_END()
