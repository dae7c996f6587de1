// The Boost.Test main of the CUDA tests. With JEPA_TEST_REQUIRES_DEVICE=1 (label gpu) a machine
// without a CUDA device prints "no CUDA device: skipped" and exits 77, which CTest reports as
// SKIPPED (SKIP_RETURN_CODE 77); otherwise it runs the suite like tests/support/test_main.cpp.
#define BOOST_TEST_MODULE jepa_cuda
#define BOOST_TEST_NO_MAIN
#include <boost/test/unit_test.hpp>

#include <cstdio>

#include "jepa/backend/cuda/device.cuh"

int main(int argc, char* argv[]) {
#if JEPA_TEST_REQUIRES_DEVICE
  if (!jepa::backend::cuda::has_device()) {
    std::printf("no CUDA device: skipped\n");
    return 77;
  }
  std::printf("jepa: running on %s\n", jepa::backend::cuda::device_description(0).c_str());
#endif
  return boost::unit_test::unit_test_main(&init_unit_test, argc, argv);
}
