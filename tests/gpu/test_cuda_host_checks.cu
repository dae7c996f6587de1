// Host-side behaviour of the CUDA backend that needs no GPU (label unit: runs in CI, which has nvcc
// but no device): device queries that never throw, the wording of CudaError, and argument checks
// that throw jepa:: errors before any CUDA call is made.
#include <boost/test/unit_test.hpp>

#include <string>

#include "jepa/backend/cuda/activations.cuh"
#include "jepa/backend/cuda/device.cuh"
#include "jepa/backend/cuda/gemm.cuh"
#include "jepa/backend/cuda/layer_norm.cuh"
#include "jepa/backend/cuda/optim.cuh"

namespace cuda = jepa::backend::cuda;
using jepa::index_t;

namespace {
/// True when `f` throws E whose message contains every one of `parts`.
template <class E, class F>
bool throws_with(F&& f, std::initializer_list<const char*> parts) {
  try {
    f();
  } catch (const E& e) {
    const std::string m = e.what();
    for (const char* p : parts)
      if (m.find(p) == std::string::npos) {
        BOOST_TEST_MESSAGE("message '" << m << "' lacks '" << p << "'");
        return false;
      }
    return true;
  } catch (const std::exception& e) {
    BOOST_TEST_MESSAGE("threw another exception: " << e.what());
    return false;
  }
  return false;
}
cuda::GemmShape square(index_t n) {
  cuda::GemmShape s;
  s.M = s.N = s.K = s.lda = s.ldb = s.ldc = n;
  return s;
}
}  // namespace

BOOST_AUTO_TEST_SUITE(cuda_host_checks)

BOOST_AUTO_TEST_CASE(device_queries_never_throw) {
  int n = -1;
  BOOST_CHECK_NO_THROW(n = cuda::device_count());
  BOOST_TEST(n >= 0);
  BOOST_TEST(cuda::has_device() == (n > 0));
  if (n > 0) BOOST_TEST(cudaGetLastError() == cudaSuccess);  // no error left behind
  // (Without a driver every runtime call, cudaGetLastError included, reports the missing driver.)
  if (n == 0) {
    // Without a device, allocation is a CudaError (a jepa::DeviceError), never a crash.
    BOOST_CHECK_THROW(cuda::DeviceBuffer<float>(16), jepa::DeviceError);
  }
}

BOOST_AUTO_TEST_CASE(cuda_error_names_the_call_the_error_and_the_place) {
  BOOST_TEST(throws_with<cuda::CudaError>([] { JEPA_CUDA_CHECK(cudaErrorInvalidValue); },
                                          {"jepa: CUDA call cudaErrorInvalidValue failed", "cudaErrorInvalidValue",
                                           "test_cuda_host_checks.cu:"}));
  BOOST_TEST(throws_with<jepa::DeviceError>([] { JEPA_CUBLAS_CHECK(CUBLAS_STATUS_INVALID_VALUE); },
                                            {"jepa: cuBLAS call", "CUBLAS_STATUS_INVALID_VALUE", "test_cuda_host_checks.cu:"}));
  try {
    JEPA_CUDA_CHECK(cudaErrorMemoryAllocation);
  } catch (const cuda::CudaError& e) {
    BOOST_TEST(e.code() == static_cast<int>(cudaErrorMemoryAllocation));
  }
}

BOOST_AUTO_TEST_CASE(gemm_shapes_are_validated) {
  float buf[4] = {};
  const float* p = buf;
  BOOST_CHECK_NO_THROW(cuda::validate_gemm(square(2), p, p, buf, nullptr, cuda::Epilogue::none));
  auto s = square(8);
  s.lda = 4;
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { cuda::validate_gemm(s, p, p, buf, nullptr, cuda::Epilogue::none); },
                                           {"jepa: cuda::gemm: lda = 4 is invalid", "must be >= 8"}));
  s = square(8);
  s.trans_b = true;
  s.N = 16;
  s.ldc = 16;
  s.ldb = 7;  // B stored N×K = 16×8: row stride must be >= 8
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { cuda::validate_gemm(s, p, p, buf, nullptr, cuda::Epilogue::none); },
                                           {"ldb = 7", "N×K"}));
  s = square(8);
  s.ldc = 3;
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { cuda::validate_gemm(s, p, p, buf, nullptr, cuda::Epilogue::none); }, {"ldc = 3"}));
  s = square(8);
  s.K = 0;
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { cuda::validate_gemm(s, p, p, buf, nullptr, cuda::Epilogue::none); }, {"K = 0"}));
  s = square(8);
  s.M = -1;
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { cuda::validate_gemm(s, p, p, buf, nullptr, cuda::Epilogue::none); }, {"M = -1"}));
  s = square(8);
  s.batch = 2;
  s.stride_c = 10;
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { cuda::validate_gemm(s, p, p, buf, nullptr, cuda::Epilogue::none); },
                                           {"stride_c = 10", "may not overlap"}));
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { cuda::validate_gemm(square(8), nullptr, p, buf, nullptr, cuda::Epilogue::none); },
                                           {"A is a null pointer"}));
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { cuda::validate_gemm(square(8), p, p, buf, nullptr, cuda::Epilogue::bias); },
                                           {"bias epilogue needs a bias vector of N = 8"}));
  // Empty products are valid and need no pointers.
  s = square(8);
  s.M = 0;
  BOOST_CHECK_NO_THROW(cuda::validate_gemm(s, nullptr, nullptr, nullptr, nullptr, cuda::Epilogue::none));
}

BOOST_AUTO_TEST_CASE(kernel_launchers_check_arguments_before_any_cuda_call) {
  float* null = nullptr;
  float dummy[8] = {};
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { cuda::gelu_forward<float>(null, dummy, 8, nullptr); },
                                           {"jepa: cuda::gelu_forward: `x` is a null pointer"}));
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { cuda::gelu_backward<float>(dummy, dummy, null, 8, nullptr); },
                                           {"cuda::gelu_backward: `dx` is a null pointer"}));
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { cuda::gelu_forward<float>(dummy, dummy, -1, nullptr); }, {"n = -1"}));
  BOOST_CHECK_NO_THROW(cuda::gelu_forward<float>(null, null, 0, nullptr));  // nothing to do
  BOOST_TEST(throws_with<jepa::ShapeError>(
      [&] { cuda::layer_norm_forward<float>(dummy, nullptr, nullptr, dummy, nullptr, nullptr, 4, 0, 1e-6f, nullptr); },
      {"cuda::layer_norm_forward: D (normalised width) = 0 is invalid"}));
  BOOST_TEST(throws_with<jepa::ConfigError>(
      [&] { cuda::layer_norm_forward<float>(dummy, nullptr, nullptr, dummy, nullptr, nullptr, 4, 2, -1.f, nullptr); },
      {"eps = -1"}));
  BOOST_TEST(throws_with<jepa::ShapeError>(
      [&] {
        cuda::layer_norm_backward<float>(dummy, nullptr, dummy, dummy, dummy, dummy, dummy, nullptr, 1000, 64, false, dummy,
                                         16, nullptr);
      },
      {"workspace of 16 bytes is too small", "layer_norm_backward_workspace_bytes"}));
  BOOST_TEST(throws_with<jepa::ShapeError>(
      [&] {
        cuda::layer_norm_backward<float>(dummy, nullptr, nullptr, dummy, dummy, dummy, nullptr, nullptr, 4, 2, false,
                                         nullptr, 0, nullptr);
      },
      {"`mean` is a null pointer"}));
  BOOST_TEST(cuda::layer_norm_backward_workspace_bytes(1000, 64) == 2u * 16u * 64u * sizeof(float));
  BOOST_TEST(throws_with<jepa::ConfigError>([&] { cuda::ema_update(dummy, dummy, 8, 1.5, nullptr); }, {"momentum = 1.5"}));
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { cuda::ema_update(dummy, null, 8, 0.9, nullptr); }, {"`online` is a null pointer"}));
}

BOOST_AUTO_TEST_CASE(param_tables_reject_bad_layouts_before_uploading) {
  using T = cuda::ParamTable::Tensor;
  BOOST_TEST(throws_with<jepa::ShapeError>([] { cuda::ParamTable({{T{0, 10, true}, T{8, 4, false}}}, {16}); },
                                           {"overlap at element 8"}));
  BOOST_TEST(throws_with<jepa::ShapeError>([] { cuda::ParamTable({{T{10, 10, true}}}, {16}); },
                                           {"lies outside its buffer of 16 elements"}));
  BOOST_TEST(throws_with<jepa::ConfigError>([] { cuda::ParamTable(std::vector<std::vector<T>>(9), std::vector<std::size_t>(9, 1)); },
                                            {"9 parameter groups is invalid"}));
  BOOST_TEST(throws_with<jepa::ShapeError>([] { cuda::ParamTable({{T{0, 1, true}}}, {1, 2}); }, {"1 groups but 2 buffer lengths"}));
}

BOOST_AUTO_TEST_SUITE_END()
