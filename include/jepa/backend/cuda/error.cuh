// jepa/backend/cuda/error.cuh — checked CUDA runtime and cuBLAS/cuBLASLt calls.
//
// DESIGN.md decision 8: library code never aborts. Every runtime/cuBLAS call of the CUDA backend
// goes through one of these macros, which throw jepa::backend::cuda::CudaError (a jepa::DeviceError)
// whose message names the call as written, the library's error name and string, and file:line:
//   "jepa: CUDA call cudaMalloc(&p, bytes) failed: cudaErrorMemoryAllocation (out of memory) at
//    include/jepa/backend/cuda/device.cuh:57"
//   JEPA_CUDA_CHECK(expr)         expr returns cudaError_t
//   JEPA_CUBLAS_CHECK(expr)       expr returns cublasStatus_t (cuBLAS and cuBLASLt share it)
//   JEPA_CUDA_CHECK_LAUNCH(what)  after a <<<…>>> launch: cudaGetLastError (bad configuration,
//                                 missing kernel image for this GPU) — asynchronous faults surface
//                                 at the next synchronising call, which is itself checked
//   JEPA_CUDA_CHECK_NOTHROW(expr) for destructors: prints to stderr and continues
// Host code only: compiles with nvcc or with a host compiler that sees the CUDA headers.
#pragma once

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdio>
#include <string>

#include "jepa/core/error.hpp"

namespace jepa::backend::cuda {

/// A CUDA runtime, cuBLAS or cuBLASLt call failed. `code()` is the library's numeric status.
class CudaError : public DeviceError {
 public:
  CudaError(const std::string& what, int code) : DeviceError(what), code_(code) {}
  int code() const noexcept { return code_; }

 private:
  int code_;
};

namespace detail {

inline const char* cublas_status_name(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
    default: return "CUBLAS_STATUS_<unknown>";
  }
}

inline std::string cuda_message(const char* call, cudaError_t e, const char* file, int line) {
  return jepa::detail::cat("jepa: CUDA call ", call, " failed: ", cudaGetErrorName(e), " (", cudaGetErrorString(e),
                           ") at ", file, ":", line);
}
inline std::string cublas_message(const char* call, cublasStatus_t s, const char* file, int line) {
  return jepa::detail::cat("jepa: cuBLAS call ", call, " failed: ", cublas_status_name(s), " (",
                           cublasGetStatusString(s), ") at ", file, ":", line);
}

inline void cuda_check(cudaError_t e, const char* call, const char* file, int line) {
  if (e != cudaSuccess) {
    // A sticky error (a kernel fault) stays; a non-sticky one is cleared so the next call starts clean.
    (void)cudaGetLastError();
    throw CudaError(cuda_message(call, e, file, line), static_cast<int>(e));
  }
}
inline void cublas_check(cublasStatus_t s, const char* call, const char* file, int line) {
  if (s != CUBLAS_STATUS_SUCCESS) throw CudaError(cublas_message(call, s, file, line), static_cast<int>(s));
}
inline void cuda_check_nothrow(cudaError_t e, const char* call, const char* file, int line) noexcept {
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    std::fprintf(stderr, "%s (ignored in a destructor)\n", cuda_message(call, e, file, line).c_str());
  }
}

}  // namespace detail
}  // namespace jepa::backend::cuda

#define JEPA_CUDA_CHECK(expr) ::jepa::backend::cuda::detail::cuda_check((expr), #expr, __FILE__, __LINE__)
#define JEPA_CUBLAS_CHECK(expr) ::jepa::backend::cuda::detail::cublas_check((expr), #expr, __FILE__, __LINE__)
#define JEPA_CUDA_CHECK_LAUNCH(what) \
  ::jepa::backend::cuda::detail::cuda_check(cudaGetLastError(), "launch of " what, __FILE__, __LINE__)
#define JEPA_CUDA_CHECK_NOTHROW(expr) \
  ::jepa::backend::cuda::detail::cuda_check_nothrow((expr), #expr, __FILE__, __LINE__)
