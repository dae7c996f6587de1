// jepa/dist/nccl.cuh — data-parallel communication over NCCL: device buffers, one process per GPU.
//
//   jepa::dist::MpiSession mpi(argc, argv);                    // processes started by mpirun
//   jepa::dist::MpiCommunicator world;
//   auto nccl = jepa::dist::NcclCommunicator::bootstrap(world, /*device=*/local_rank);
//   // … or, without MPI: NcclCommunicator::from_file("/shared/job-1234.ncclid", rank, size, device)
//
// NcclCommunicator models jepa::dist::Communicator (communicator.hpp). Collectives run on the
// communicator's own CUDA stream, in the order they are called (NCCL's rule, as MPI's):
//   all_reduce / broadcast / barrier   enqueue and wait; a HOST pointer is staged through a device
//                                      scratch buffer (small control values: flags, loss terms)
//   all_reduce_async(p, n)             device pointer only: enqueues the sum and returns
//   wait_all()                         waits for the stream
// Bootstrap: rank 0 draws the ncclUniqueId and hands it to the others — over any Communicator
// (MPI: one 128-byte broadcast) or through a file on a file system every rank sees (written
// atomically by rank 0, polled by the others, removed once every rank has joined; the path must not
// exist when the job starts).
//
// Errors: NCCL and CUDA failures throw CommError naming the rank, the call, ncclGetErrorString and
// NCCL's last error message. The communicator is non-blocking (ncclConfig_t.blocking = 0): every
// wait polls ncclCommGetAsyncError, so a peer that died or stopped calling collectives turns into a
// CommError after `timeout_seconds` (the communicator is aborted first) instead of a hang.
//
// Host code only (the CUDA runtime and NCCL are C APIs): compiles with nvcc or with a host C++
// compiler that sees the CUDA headers; link CUDA::cudart and libnccl.
#pragma once

#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>
#include <unistd.h>

#include "jepa/core/error.hpp"
#include "jepa/dist/communicator.hpp"

namespace jepa::dist {

namespace detail {
template <class>
inline constexpr bool nccl_always_false = false;

template <class T>
ncclDataType_t nccl_datatype() {
  if constexpr (std::is_same_v<T, float>) return ncclFloat32;
  else if constexpr (std::is_same_v<T, double>) return ncclFloat64;
  else if constexpr (std::is_same_v<T, std::uint64_t>) return ncclUint64;
  else if constexpr (std::is_same_v<T, std::int64_t>) return ncclInt64;
  else if constexpr (std::is_same_v<T, int>) return ncclInt32;
  else if constexpr (std::is_same_v<T, char> || std::is_same_v<T, signed char>) return ncclInt8;
  else if constexpr (std::is_same_v<T, unsigned char>) return ncclUint8;
  else static_assert(nccl_always_false<T>, "jepa: NcclCommunicator has no NCCL datatype for this element type "
                                           "(float, double, std::int64_t, std::uint64_t, int, char, unsigned char)");
}
inline ncclRedOp_t nccl_op(ReduceOp op) { return op == ReduceOp::sum ? ncclSum : op == ReduceOp::min ? ncclMin : ncclMax; }
}  // namespace detail

struct NcclOptions {
  /// A setup or a collective that does not complete within this time aborts the communicator and
  /// throws CommError (a peer died, or ranks called collectives in different orders).
  double timeout_seconds = 600;
};

/// A Communicator over NCCL (see the header comment). Copies share one NCCL communicator.
class NcclCommunicator {
 public:
  /// Rank 0 draws the NCCL id and broadcasts it over `boot` (e.g. an MpiCommunicator); this rank's
  /// NCCL rank and size are boot's. `device`: this process's GPU (typically its rank on the node).
  template <Communicator Boot>
  static NcclCommunicator bootstrap(Boot& boot, int device, NcclOptions o = {}) {
    const int rank = boot.rank(), size = boot.size();
    ncclUniqueId id{};
    if (rank == 0) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId", rank, size, nullptr);
    boot.broadcast(id.internal, sizeof(id.internal), 0);
    return NcclCommunicator(id, rank, size, device, o);
  }

  /// Rank 0 writes the NCCL id to `path` (atomically: temporary file, then rename); the other ranks
  /// wait for it. `path` must be fresh for this job on a file system every rank sees.
  static NcclCommunicator from_file(const std::string& path, int rank, int size, int device, NcclOptions o = {}) {
    check_field<IndexError>(size >= 1 && rank >= 0 && rank < size, "NCCL rank", rank,
                            jepa::detail::cat("must be in [0, size = ", size, ")"));
    ncclUniqueId id{};
    namespace fs = std::filesystem;
    if (rank == 0) {
      if (fs::exists(path))
        throw IoError(jepa::detail::cat("jepa: NCCL bootstrap file '", path, "' already exists (a previous job's id?): "
                                        "remove it, or give each job a fresh path"));
      check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId", rank, size, nullptr);
      const std::string tmp = jepa::detail::cat(path, ".tmp.", ::getpid());
      {
        std::ofstream f(tmp, std::ios::binary);
        f.write(id.internal, sizeof(id.internal));
        f.flush();
        if (!f) throw IoError(jepa::detail::cat("jepa: NCCL rank 0: cannot write the bootstrap file '", tmp, "'"));
      }
      std::error_code ec;
      fs::rename(tmp, path, ec);
      if (ec) throw IoError(jepa::detail::cat("jepa: NCCL rank 0: cannot rename '", tmp, "' to '", path, "': ", ec.message()));
    } else {
      const auto t0 = std::chrono::steady_clock::now();
      for (;;) {
        std::error_code ec;
        if (fs::exists(path, ec) && fs::file_size(path, ec) == sizeof(id.internal)) {
          std::ifstream f(path, std::ios::binary);
          if (f.read(id.internal, sizeof(id.internal))) break;
        }
        if (seconds_since(t0) > o.timeout_seconds)
          throw CommError(jepa::detail::cat("jepa: NCCL rank ", rank, " of ", size, ": the bootstrap file '", path,
                                            "' did not appear within ", o.timeout_seconds, " s (did rank 0 start?)"),
                          rank);
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
    NcclCommunicator c(id, rank, size, device, o);
    if (rank == 0) {  // every rank has joined (init is collective): the id is no longer needed
      std::error_code ec;
      fs::remove(path, ec);
    }
    return c;
  }

  int rank() const { return s_->rank; }
  int size() const { return s_->size; }
  int device() const { return s_->device; }
  cudaStream_t stream() const { return s_->stream; }
  ncclComm_t native() const { return s_->comm; }

  /// p[i] ← op over ranks of p[i], in place; waits. Host pointers are staged through the device.
  template <class T>
  void all_reduce(T* p, std::size_t n, ReduceOp op = ReduceOp::sum) {
    if (n == 0) return;
    T* d = device_view(p, n);
    issue(ncclAllReduce(d, d, n, detail::nccl_datatype<T>(), detail::nccl_op(op), s_->comm, s_->stream), "ncclAllReduce");
    finish_view(p, d, n);
  }
  /// p[i] ← root's p[i]; waits. Host pointers are staged through the device.
  template <class T>
  void broadcast(T* p, std::size_t n, int root) {
    check_field<IndexError>(root >= 0 && root < size(), "broadcast root", root,
                            jepa::detail::cat("must be a rank of this group [0, ", size(), ")"));
    if (n == 0) return;
    T* d = device_view(p, n);
    issue(ncclBroadcast(d, d, n, detail::nccl_datatype<T>(), root, s_->comm, s_->stream), "ncclBroadcast");
    finish_view(p, d, n);
  }
  void barrier() {
    int one = 1;
    all_reduce(&one, 1, ReduceOp::sum);
  }
  /// Enqueues p[i] ← Σ_ranks p[i] on the communicator's stream (p: device memory).
  template <class T>
  void all_reduce_async(T* p, std::size_t n) {
    if (n == 0) return;
    if (!is_device(p))
      throw ConfigError(jepa::detail::cat("jepa: NCCL rank ", rank(), ": all_reduce_async needs a device pointer "
                                          "(gradients live on the GPU); use all_reduce for host values"));
    issue(ncclAllReduce(p, p, n, detail::nccl_datatype<T>(), ncclSum, s_->comm, s_->stream), "ncclAllReduce (async)");
  }
  /// Reports an asynchronous NCCL error now rather than at the next wait.
  void progress() { check_async("progress"); }
  /// Waits until every enqueued collective has completed (or the timeout passes).
  void wait_all() { wait_stream("wait_all"); }

 private:
  struct Shared {
    ncclComm_t comm = nullptr;
    cudaStream_t stream = nullptr;
    void* scratch = nullptr;
    std::size_t scratch_bytes = 0;
    int rank = 0, size = 1, device = 0;
    NcclOptions opt;
    Shared() = default;
    Shared(const Shared&) = delete;
    Shared& operator=(const Shared&) = delete;
    ~Shared() {  // errors here cannot be reported: release what can be released
      if (comm) {  // flush (finalize), then free; a communicator that does not flush in 10 s is aborted
        ncclResult_t st = ncclCommFinalize(comm);
        const auto t0 = std::chrono::steady_clock::now();
        while ((st == ncclSuccess || st == ncclInProgress) && ncclCommGetAsyncError(comm, &st) == ncclSuccess &&
               st == ncclInProgress && seconds_since(t0) < 10)
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
        if (st == ncclSuccess) ncclCommDestroy(comm);
        else ncclCommAbort(comm);
      }
      if (scratch) cudaFree(scratch);
      if (stream) cudaStreamDestroy(stream);
    }
  };

  NcclCommunicator(const ncclUniqueId& id, int rank, int size, int device, const NcclOptions& o)
      : s_(std::make_shared<Shared>()) {
    s_->rank = rank, s_->size = size, s_->device = device, s_->opt = o;
    check_cuda(cudaSetDevice(device), "cudaSetDevice");
    check_cuda(cudaStreamCreateWithFlags(&s_->stream, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
    ncclConfig_t cfg = NCCL_CONFIG_INITIALIZER;
    cfg.blocking = 0;
    const ncclResult_t r = ncclCommInitRankConfig(&s_->comm, size, id, rank, &cfg);
    if (r != ncclSuccess && r != ncclInProgress) {
      s_->comm = nullptr;
      check_nccl(r, "ncclCommInitRankConfig", rank, size, nullptr);
    }
    wait_comm("ncclCommInitRankConfig");
  }

  static double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }

  static void check_nccl(ncclResult_t r, const char* call, int rank, int size, ncclComm_t comm) {
    if (r == ncclSuccess || r == ncclInProgress) return;
    const char* last = comm ? ncclGetLastError(comm) : ncclGetLastError(nullptr);
    throw CommError(jepa::detail::cat("jepa: NCCL rank ", rank, " of ", size, ": ", call, " failed: ", ncclGetErrorString(r),
                                      last && *last ? jepa::detail::cat(" (", last, ")") : std::string()),
                    rank);
  }
  void check_cuda(cudaError_t e, const char* call) const {
    if (e == cudaSuccess) return;
    throw CommError(jepa::detail::cat("jepa: NCCL rank ", s_->rank, " of ", s_->size, " (GPU ", s_->device, "): ", call,
                                      " failed: ", cudaGetErrorName(e), ": ", cudaGetErrorString(e)),
                    s_->rank);
  }
  /// Aborts the communicator (so no rank of this process waits on it any more) and throws.
  [[noreturn]] void fail(const std::string& why) {
    if (s_->comm) {
      ncclCommAbort(s_->comm);
      s_->comm = nullptr;
    }
    throw CommError(jepa::detail::cat("jepa: NCCL rank ", s_->rank, " of ", s_->size, " (GPU ", s_->device, "): ", why,
                                      "; the communicator was aborted"),
                    s_->rank);
  }
  void require_comm(const char* call) {
    if (!s_->comm) fail(jepa::detail::cat(call, " on a communicator that an earlier error aborted"));
  }
  void check_async(const char* call) {
    require_comm(call);
    ncclResult_t st = ncclSuccess;
    const ncclResult_t r = ncclCommGetAsyncError(s_->comm, &st);
    if (r != ncclSuccess) fail(jepa::detail::cat(call, ": ncclCommGetAsyncError failed: ", ncclGetErrorString(r)));
    if (st != ncclSuccess && st != ncclInProgress) {
      const char* last = ncclGetLastError(s_->comm);
      fail(jepa::detail::cat(call, ": asynchronous NCCL error: ", ncclGetErrorString(st),
                             last && *last ? jepa::detail::cat(" (", last, ")") : std::string()));
    }
  }
  /// Non-blocking communicators: a call may return ncclInProgress; wait until NCCL has taken it.
  void wait_comm(const char* call) {
    require_comm(call);
    const auto t0 = std::chrono::steady_clock::now();
    for (;;) {
      ncclResult_t st = ncclSuccess;
      const ncclResult_t r = ncclCommGetAsyncError(s_->comm, &st);
      if (r != ncclSuccess) fail(jepa::detail::cat(call, ": ncclCommGetAsyncError failed: ", ncclGetErrorString(r)));
      if (st == ncclSuccess) return;
      if (st != ncclInProgress) {
        const char* last = ncclGetLastError(s_->comm);
        fail(jepa::detail::cat(call, " failed: ", ncclGetErrorString(st), last && *last ? jepa::detail::cat(" (", last, ")") : std::string()));
      }
      if (seconds_since(t0) > s_->opt.timeout_seconds)
        fail(jepa::detail::cat(call, " did not complete within ", s_->opt.timeout_seconds, " s (a peer failed or did not join?)"));
      std::this_thread::yield();
    }
  }
  void issue(ncclResult_t r, const char* call) {
    if (r != ncclSuccess && r != ncclInProgress) {
      check_nccl(r, call, s_->rank, s_->size, s_->comm);
    }
    wait_comm(call);
  }
  /// Waits for the stream, polling NCCL's asynchronous error state and the timeout.
  void wait_stream(const char* call) {
    require_comm(call);
    const auto t0 = std::chrono::steady_clock::now();
    for (;;) {
      const cudaError_t e = cudaStreamQuery(s_->stream);
      if (e == cudaSuccess) return;
      if (e != cudaErrorNotReady) check_cuda(e, call);
      check_async(call);
      if (seconds_since(t0) > s_->opt.timeout_seconds)
        fail(jepa::detail::cat(call, ": collectives did not complete within ", s_->opt.timeout_seconds,
                               " s (another rank failed, or the ranks called collectives in different orders)"));
      std::this_thread::yield();
    }
  }

  static bool is_device(const void* p) {
    cudaPointerAttributes a{};
    if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
      (void)cudaGetLastError();  // older runtimes flag plain host pointers as an error: clear it
      return false;
    }
    return a.type == cudaMemoryTypeDevice || a.type == cudaMemoryTypeManaged;
  }
  /// A device pointer holding p's n values: p itself, or the scratch buffer filled from host memory.
  template <class T>
  T* device_view(T* p, std::size_t n) {
    if (is_device(p)) return p;
    const std::size_t bytes = n * sizeof(T);
    if (bytes > s_->scratch_bytes) {
      if (s_->scratch) check_cuda(cudaFree(s_->scratch), "cudaFree");
      s_->scratch = nullptr;
      check_cuda(cudaMalloc(&s_->scratch, bytes), "cudaMalloc (staging buffer)");
      s_->scratch_bytes = bytes;
    }
    check_cuda(cudaMemcpyAsync(s_->scratch, p, bytes, cudaMemcpyHostToDevice, s_->stream), "cudaMemcpyAsync");
    return static_cast<T*>(s_->scratch);
  }
  template <class T>
  void finish_view(T* p, T* d, std::size_t n) {
    if (d != p) check_cuda(cudaMemcpyAsync(p, d, n * sizeof(T), cudaMemcpyDeviceToHost, s_->stream), "cudaMemcpyAsync");
    wait_stream("collective");
  }

  std::shared_ptr<Shared> s_;
};
static_assert(Communicator<NcclCommunicator>);

}  // namespace jepa::dist
