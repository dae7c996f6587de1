// NCCL communicator (jepa/dist/nccl.cuh) on one GPU, one rank: bootstrap through a file and through
// a Communicator, in-place all-reduce (sum/min/max, device and host buffers), broadcast, barrier,
// the asynchronous sum, and the errors (host pointer to the async path, a stale bootstrap file).
// Label `gpu`: exits 77 (skipped) where no CUDA device exists. CI without a GPU compiles this file
// with nvcc (test dist_nccl_compiles) so the NCCL path always builds.
//
// Plain main, no Boost and no Eigen: this TU is compiled by nvcc.
#include <cuda_runtime.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <unistd.h>
#include <vector>

#include "jepa/dist/nccl.cuh"

namespace {
int failures = 0;
void check(bool ok, const char* what) {
  std::printf("%s  %s\n", ok ? "ok  " : "FAIL", what);
  if (!ok) ++failures;
}
template <class E, class F>
void check_throws(F&& f, const std::string& fragment, const char* what) {
  try {
    f();
    check(false, what);
  } catch (const E& e) {
    const std::string m = e.what();
    check(m.rfind("jepa: ", 0) == 0 && m.find(fragment) != std::string::npos, what);
    if (m.find(fragment) == std::string::npos) std::printf("      message: %s\n", m.c_str());
  }
}
}  // namespace

int main() {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("test_dist_nccl: skipped: no CUDA device\n");
    return 77;
  }
  using namespace jepa::dist;
  try {
    const std::string id = (std::filesystem::temp_directory_path() / ("jepa_nccl_" + std::to_string(::getpid()))).string();
    NcclCommunicator c = NcclCommunicator::from_file(id, 0, 1, 0);
    check(c.rank() == 0 && c.size() == 1, "from_file: rank 0 of 1");
    check(!std::filesystem::exists(id), "from_file: rank 0 removed the bootstrap file once everyone joined");

    const std::size_t n = 1 << 20;
    std::vector<float> h(n);
    for (std::size_t i = 0; i < n; ++i) h[i] = static_cast<float>(i % 1000) * 0.5f;
    float* d = nullptr;
    cudaMalloc(&d, n * sizeof(float));
    cudaMemcpy(d, h.data(), n * sizeof(float), cudaMemcpyHostToDevice);
    c.all_reduce(d, n, ReduceOp::sum);
    c.all_reduce_async(d, n / 2);
    c.all_reduce_async(d + n / 2, n - n / 2);
    c.progress();
    c.wait_all();
    c.broadcast(d, n, 0);
    c.barrier();
    std::vector<float> back(n);
    cudaMemcpy(back.data(), d, n * sizeof(float), cudaMemcpyDeviceToHost);
    check(back == h, "device all_reduce / async / broadcast of one rank leave the buffer as it is");

    std::vector<std::uint64_t> u{3, 9, 1};
    c.all_reduce(u.data(), u.size(), ReduceOp::max);
    double x[2] = {1.5, -2.0};
    c.all_reduce(x, 2, ReduceOp::min);
    char msg[6] = "hello";
    c.broadcast(msg, 6, 0);
    check(u[0] == 3 && u[1] == 9 && u[2] == 1 && x[0] == 1.5 && x[1] == -2.0 && std::string(msg) == "hello",
          "host values are staged through the device");

    check_throws<jepa::ConfigError>([&] { c.all_reduce_async(h.data(), n); }, "needs a device pointer",
                                    "all_reduce_async rejects a host pointer");
    check_throws<jepa::IndexError>([&] { c.broadcast(d, n, 1); }, "broadcast root", "broadcast root out of range");

    SelfCommunicator self;
    NcclCommunicator b = NcclCommunicator::bootstrap(self, 0);
    b.all_reduce(d, n);
    check(b.size() == 1, "bootstrap over a Communicator");

    {
      std::FILE* f = std::fopen(id.c_str(), "w");
      if (f) std::fclose(f);
      check_throws<jepa::IoError>([&] { NcclCommunicator::from_file(id, 0, 1, 0); }, "already exists",
                                  "a stale bootstrap file is refused");
      std::filesystem::remove(id);
    }
    cudaFree(d);
  } catch (const std::exception& e) {
    std::printf("FAIL  unexpected exception: %s\n", e.what());
    return 1;
  }
  std::printf("test_dist_nccl: %d failure(s)\n", failures);
  return failures ? 1 : 0;
}
