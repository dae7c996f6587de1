// jepa/backend/cuda/common.cuh — what every CUDA kernel of the backend shares: element types,
// 16-byte vector packs, warp/block reductions, launch geometry and the host-side argument checks.
//
// Element types. The public launchers take jepa::bf16 (core/dtype.hpp), which is bit-identical to
// __nv_bfloat16 (the upper half of an IEEE float); `device_t<T>` maps it to the CUDA type. Kernels
// always compute in float and round once on store (__float2bfloat16_rn: nearest, ties to even — the
// same rounding as jepa::bf16(float) on the host).
//
// Vector access. `Pack<S>` is 16 bytes: 4 floats or 8 bf16. A kernel takes the vector path when the
// pointers it touches are 16-byte aligned (checked on the host, `aligned16`); a scalar loop covers the
// tail. 16-byte accesses coalesced across a warp are what memory-bound kernels need on sm_80/sm_90.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <string_view>
#include <type_traits>

#include "jepa/backend/cuda/error.cuh"
#include "jepa/core/dtype.hpp"
#include "jepa/core/error.hpp"
#include "jepa/core/tensor.hpp"

namespace jepa::backend::cuda {

static_assert(sizeof(__nv_bfloat16) == sizeof(jepa::bf16), "jepa: bf16 must be the same 2 bytes on host and device");

template <class T> struct device_type { using type = T; };
template <> struct device_type<jepa::bf16> { using type = __nv_bfloat16; };
template <> struct device_type<const jepa::bf16> { using type = const __nv_bfloat16; };
/// The CUDA element type for a public element type (jepa::bf16 → __nv_bfloat16, float → float).
template <class T> using device_t = typename device_type<T>::type;

template <class T>
device_t<T>* dev(T* p) noexcept { return reinterpret_cast<device_t<T>*>(p); }
template <class T>
const device_t<T>* dev(const T* p) noexcept { return reinterpret_cast<const device_t<T>*>(p); }

/// Element types a CUDA kernel stores (compute is always float).
template <class T>
concept DeviceReal = std::is_same_v<T, float> || std::is_same_v<T, jepa::bf16>;

namespace detail {

// ------------------------------------------------------------------------------------------------
// Scalar conversions (device).
// ------------------------------------------------------------------------------------------------
__device__ __forceinline__ float to_f32(float x) { return x; }
__device__ __forceinline__ float to_f32(__nv_bfloat16 x) { return __bfloat162float(x); }
template <class S>
__device__ __forceinline__ S from_f32(float x) {
  if constexpr (std::is_same_v<S, float>) return x;
  else return __float2bfloat16_rn(x);
}

// ------------------------------------------------------------------------------------------------
// 16-byte packs.
// ------------------------------------------------------------------------------------------------
template <class S>
struct alignas(16) Pack {
  static constexpr int size = 16 / static_cast<int>(sizeof(S));
  S v[size];
};
template <class S>
__device__ __forceinline__ Pack<S> load_pack(const S* p) {
  // One 128-bit load. Plain (not __ldg): in-place kernels read memory the same launch writes.
  const uint4 raw = *reinterpret_cast<const uint4*>(p);
  Pack<S> out;
  static_assert(sizeof(out) == sizeof(raw));
  memcpy(&out, &raw, sizeof raw);
  return out;
}
template <class S>
__device__ __forceinline__ void store_pack(S* p, const Pack<S>& v) {
  uint4 raw;
  memcpy(&raw, &v, sizeof raw);
  *reinterpret_cast<uint4*>(p) = raw;
}

// ------------------------------------------------------------------------------------------------
// Reductions. Butterfly (xor) shuffles leave the full sum in every lane, in an order fixed by the
// lane pattern, so results are deterministic run to run.
// ------------------------------------------------------------------------------------------------
template <class T>
__device__ __forceinline__ T warp_sum(T x) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  return x;
}
/// Sum over a block of blockDim.x threads (a multiple of 32, at most 1024); every thread gets the
/// result. `scratch` holds 32 values; the call ends with a barrier, so scratch may be reused.
template <class T>
__device__ __forceinline__ T block_sum(T x, T* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  x = warp_sum(x);
  if (lane == 0) scratch[warp] = x;
  __syncthreads();
  T y = lane < warps ? scratch[lane] : T(0);
  y = warp_sum(y);
  __syncthreads();
  return y;
}

// ------------------------------------------------------------------------------------------------
// Host-side helpers.
// ------------------------------------------------------------------------------------------------
inline bool aligned16(const void* p) { return (reinterpret_cast<std::uintptr_t>(p) & 15u) == 0; }

/// Throws jepa::ShapeError unless a pointer that must hold data is non-null.
inline void require_pointer(const void* p, std::string_view op, std::string_view name) {
  if (!p) throw ShapeError(jepa::detail::cat("jepa: ", op, ": `", name, "` is a null pointer (it must point to device memory)"));
}
/// Throws jepa::ShapeError unless extent `value` of `name` is ≥ lo.
inline void require_extent(index_t value, index_t lo, std::string_view op, std::string_view name) {
  if (value < lo)
    throw ShapeError(jepa::detail::cat("jepa: ", op, ": ", name, " = ", value, " is invalid: must be >= ", lo));
}

/// Blocks for a grid-stride elementwise kernel over `work` items with `threads` threads per block:
/// enough to fill the device a few times over, never more than the work needs. Depends only on the
/// work size (not the device), so results are reproducible across GPUs.
inline unsigned grid_for(index_t work, int threads) {
  const index_t blocks = (work + threads - 1) / threads;
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > 65535 * 8 ? 65535 * 8 : blocks));
}

}  // namespace detail
}  // namespace jepa::backend::cuda
