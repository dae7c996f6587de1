// jepa/backend/cuda/device.cuh — devices, device memory, streams and events.
//
//   device_count() / has_device()   never throw: a machine with no driver or no GPU has 0 devices
//   DeviceBuffer<T>                 owning cudaMalloc allocation of n elements (never managed memory)
//   DeviceArena                     one cudaMalloc carved into 256-byte-aligned slices by a MemoryPlan
//                                   (DESIGN.md decision 5: no allocation inside a training step)
//   Stream, Event                   RAII owners; Event::elapsed_ms for timing between two events
//   copy_to_device / copy_to_host   checked cudaMemcpyAsync on a stream (synchronous with stream 0)
// Copies transfer bytes; the caller keeps the host side alive until the stream has passed them.
// Host code only (the CUDA runtime is a C API).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "jepa/backend/cuda/error.cuh"
#include "jepa/core/error.hpp"
#include "jepa/core/memory_plan.hpp"

namespace jepa::backend::cuda {

/// Number of visible CUDA devices; 0 where there is no driver, no device, or the driver is older
/// than the runtime. Never throws; where a device exists it leaves no error behind. (Without a
/// driver the runtime cannot initialise, and every later runtime call reports that again.)
inline int device_count() noexcept {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return n;
}
inline bool has_device() noexcept { return device_count() > 0; }

/// "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs, 79.1 GiB)" for device `d`; throws CudaError if absent.
inline std::string device_description(int d = 0) {
  cudaDeviceProp p{};
  JEPA_CUDA_CHECK(cudaGetDeviceProperties(&p, d));
  return jepa::detail::cat(p.name, " (sm_", p.major, p.minor, ", ", p.multiProcessorCount, " SMs, ",
                           static_cast<double>(p.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0), " GiB)");
}

namespace detail {
inline void* device_malloc(std::size_t bytes, const char* what) {
  void* p = nullptr;
  if (bytes == 0) return nullptr;
  const cudaError_t e = cudaMalloc(&p, bytes);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    throw CudaError(jepa::detail::cat("jepa: cudaMalloc of ", bytes, " bytes for ", what, " failed: ",
                                      cudaGetErrorName(e), " (", cudaGetErrorString(e), ")"),
                    static_cast<int>(e));
  }
  return p;
}
}  // namespace detail

/// An owning device allocation of `size()` elements of T (uninitialised; `zero()` clears it).
template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t n) : n_(n) {
    p_ = static_cast<T*>(detail::device_malloc(n * sizeof(T), "a DeviceBuffer"));
  }
  ~DeviceBuffer() { reset(); }
  DeviceBuffer(DeviceBuffer&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      reset();
      p_ = std::exchange(o.p_, nullptr);
      n_ = std::exchange(o.n_, 0);
    }
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  T* data() const noexcept { return p_; }
  std::size_t size() const noexcept { return n_; }
  std::size_t bytes() const noexcept { return n_ * sizeof(T); }
  void zero(cudaStream_t s = nullptr) {
    if (n_) JEPA_CUDA_CHECK(cudaMemsetAsync(p_, 0, bytes(), s));
  }
  void reset() noexcept {
    if (p_) JEPA_CUDA_CHECK_NOTHROW(cudaFree(p_));
    p_ = nullptr;
    n_ = 0;
  }

 private:
  T* p_ = nullptr;
  std::size_t n_ = 0;
};

/// One device allocation holding every tensor of a MemoryPlan (the device twin of HostArena).
/// Slices start at the plan's 64-byte offsets; the base is cudaMalloc's (≥ 256-byte aligned), so
/// every slice is 16-byte aligned and vector (16-byte) loads are legal at each slice start.
class DeviceArena {
 public:
  DeviceArena() = default;
  explicit DeviceArena(std::size_t bytes) { resize(bytes); }
  explicit DeviceArena(const MemoryPlan& plan) { resize(plan.bytes()); }

  /// Reallocates (contents are lost) unless the size is unchanged. Zero-filled, as HostArena is.
  void resize(std::size_t bytes) {
    if (bytes == buf_.size()) return;
    buf_ = DeviceBuffer<std::byte>();
    buf_ = DeviceBuffer<std::byte>(MemoryPlan::align_up(bytes));
    buf_.zero();
    JEPA_CUDA_CHECK(cudaStreamSynchronize(nullptr));
    bytes_ = bytes;
  }
  void zero(cudaStream_t s = nullptr) { buf_.zero(s); }
  /// Synchronous copies of the first `bytes` bytes from / to host memory (setup and checkpoints,
  /// never inside a step).
  void upload(const void* host, std::size_t bytes) {
    if (bytes > bytes_)
      throw ShapeError(jepa::detail::cat("jepa: DeviceArena::upload of ", bytes, " bytes into an arena of ", bytes_));
    if (bytes) JEPA_CUDA_CHECK(cudaMemcpy(buf_.data(), host, bytes, cudaMemcpyHostToDevice));
  }
  void download(void* host, std::size_t bytes) const {
    if (bytes > bytes_)
      throw ShapeError(jepa::detail::cat("jepa: DeviceArena::download of ", bytes, " bytes from an arena of ", bytes_));
    if (bytes) JEPA_CUDA_CHECK(cudaMemcpy(host, buf_.data(), bytes, cudaMemcpyDeviceToHost));
  }
  std::byte* data() const noexcept { return buf_.data(); }
  std::size_t bytes() const noexcept { return bytes_; }

  /// The device pointer of spec `s`, checked against the arena size and the requested dtype.
  template <class T>
  T* ptr(const TensorSpec& s) const {
    if (dtype_of_v<std::remove_const_t<T>> != s.dtype)
      throw ShapeError(jepa::detail::cat("jepa: tensor '", s.name, "' has dtype ", dtype_name(s.dtype),
                                         ", requested as ", dtype_name(dtype_of_v<std::remove_const_t<T>>)));
    if (s.offset + s.bytes() > bytes_)
      throw IndexError(jepa::detail::cat("jepa: tensor '", s.name, "' lies outside its device arena (arena is ",
                                         bytes_, " bytes)"));
    return reinterpret_cast<T*>(buf_.data() + s.offset);
  }

 private:
  DeviceBuffer<std::byte> buf_;
  std::size_t bytes_ = 0;
};

/// An owned non-blocking stream (does not synchronise with the legacy default stream).
class Stream {
 public:
  Stream() { JEPA_CUDA_CHECK(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking)); }
  ~Stream() {
    if (s_) JEPA_CUDA_CHECK_NOTHROW(cudaStreamDestroy(s_));
  }
  Stream(Stream&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  Stream& operator=(Stream&& o) noexcept {
    if (this != &o) {
      if (s_) JEPA_CUDA_CHECK_NOTHROW(cudaStreamDestroy(s_));
      s_ = std::exchange(o.s_, nullptr);
    }
    return *this;
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  cudaStream_t get() const noexcept { return s_; }
  operator cudaStream_t() const noexcept { return s_; }
  void synchronize() const { JEPA_CUDA_CHECK(cudaStreamSynchronize(s_)); }

 private:
  cudaStream_t s_ = nullptr;
};

/// An owned event. Timing events record GPU timestamps; `Event(false)` makes a cheaper sync-only one.
class Event {
 public:
  explicit Event(bool timing = true) {
    JEPA_CUDA_CHECK(cudaEventCreateWithFlags(&e_, timing ? cudaEventDefault : cudaEventDisableTiming));
  }
  ~Event() {
    if (e_) JEPA_CUDA_CHECK_NOTHROW(cudaEventDestroy(e_));
  }
  Event(Event&& o) noexcept : e_(std::exchange(o.e_, nullptr)) {}
  Event& operator=(Event&& o) noexcept {
    if (this != &o) {
      if (e_) JEPA_CUDA_CHECK_NOTHROW(cudaEventDestroy(e_));
      e_ = std::exchange(o.e_, nullptr);
    }
    return *this;
  }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  cudaEvent_t get() const noexcept { return e_; }
  void record(cudaStream_t s) { JEPA_CUDA_CHECK(cudaEventRecord(e_, s)); }
  void synchronize() const { JEPA_CUDA_CHECK(cudaEventSynchronize(e_)); }
  /// Makes stream `s` wait for this event (cross-stream dependency without a host sync).
  void wait_on(cudaStream_t s) const { JEPA_CUDA_CHECK(cudaStreamWaitEvent(s, e_, 0)); }
  /// Milliseconds from `start` to this event (both recorded, this one complete).
  float elapsed_ms(const Event& start) const {
    float ms = 0;
    JEPA_CUDA_CHECK(cudaEventElapsedTime(&ms, start.e_, e_));
    return ms;
  }

 private:
  cudaEvent_t e_ = nullptr;
};

template <class T>
void copy_to_device(T* dst, const T* src, std::size_t n, cudaStream_t s = nullptr) {
  if (n) JEPA_CUDA_CHECK(cudaMemcpyAsync(dst, src, n * sizeof(T), cudaMemcpyHostToDevice, s));
}
template <class T>
void copy_to_host(T* dst, const T* src, std::size_t n, cudaStream_t s = nullptr) {
  if (n) JEPA_CUDA_CHECK(cudaMemcpyAsync(dst, src, n * sizeof(T), cudaMemcpyDeviceToHost, s));
}
/// A device copy of a host vector (synchronous).
template <class T>
DeviceBuffer<T> to_device(const std::vector<T>& v) {
  DeviceBuffer<T> d(v.size());
  copy_to_device(d.data(), v.data(), v.size());
  JEPA_CUDA_CHECK(cudaStreamSynchronize(nullptr));
  return d;
}
/// A host copy of the first n elements of a device array (synchronous).
template <class T>
std::vector<T> to_host(const T* d, std::size_t n) {
  std::vector<T> v(n);
  copy_to_host(v.data(), d, n);
  JEPA_CUDA_CHECK(cudaStreamSynchronize(nullptr));
  return v;
}

}  // namespace jepa::backend::cuda
