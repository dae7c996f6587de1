// jepa/backend/cuda/activations.cuh — GELU forward/backward and the fp32 → bf16 cast, on a stream.
//
//   gelu(x)  = ½·x·(1 + erf(x/√2))                 (exact erf form, the CPU backend's definition)
//   gelu'(x) = Φ(x) + x·φ(x) = ½(1 + erf(x/√2)) + x·exp(−x²/2)/√(2π)
//   gelu_forward:  y = gelu(x)            gelu_backward: dx = gelu'(x)·dy   (overwrite; dx may alias dy)
//   cast_to_bf16:  y = bf16(x), round to nearest even (train::to_bf16 on the host)
// The formulas are jepa::scalar::gelu / gelu_grad (backend/scalar.hpp), evaluated in float with
// CUDA's erff/expf (max 2 ulp), so CPU and GPU compute the same expression. Storage T is float or
// jepa::bf16 (computed in float, rounded once on store). n elements; pointers are device memory.
// Memory-bound: one 16-byte load per operand and one 16-byte store per pack, grid-stride.
#pragma once

#include "jepa/backend/cuda/common.cuh"
#include "jepa/backend/scalar.hpp"

namespace jepa::backend::cuda {

namespace kernels {

/// y[i] = f(x[i]) for a unary float functor f (y may alias x); vector path over packs, scalar tail.
template <class S, class F>
__global__ void unary_map(const S* x, S* y, index_t n, bool vec, F f) {
  const index_t tid = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x;
  const index_t stride = static_cast<index_t>(gridDim.x) * blockDim.x;
  constexpr int P = detail::Pack<S>::size;
  index_t done = 0;
  if (vec) {
    const index_t packs = n / P;
    for (index_t i = tid; i < packs; i += stride) {
      const auto a = detail::load_pack(x + i * P);
      detail::Pack<S> b;
#pragma unroll
      for (int j = 0; j < P; ++j) b.v[j] = detail::from_f32<S>(f(detail::to_f32(a.v[j])));
      detail::store_pack(y + i * P, b);
    }
    done = packs * P;
  }
  for (index_t i = done + tid; i < n; i += stride) y[i] = detail::from_f32<S>(f(detail::to_f32(x[i])));
}

/// z[i] = f(x[i], y[i]) (z may alias y): the shape of every activation backward.
template <class S, class F>
__global__ void binary_map(const S* x, const S* y, S* z, index_t n, bool vec, F f) {
  const index_t tid = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x;
  const index_t stride = static_cast<index_t>(gridDim.x) * blockDim.x;
  constexpr int P = detail::Pack<S>::size;
  index_t done = 0;
  if (vec) {
    const index_t packs = n / P;
    for (index_t i = tid; i < packs; i += stride) {
      const auto a = detail::load_pack(x + i * P);
      const auto b = detail::load_pack(y + i * P);
      detail::Pack<S> c;
#pragma unroll
      for (int j = 0; j < P; ++j) c.v[j] = detail::from_f32<S>(f(detail::to_f32(a.v[j]), detail::to_f32(b.v[j])));
      detail::store_pack(z + i * P, c);
    }
    done = packs * P;
  }
  for (index_t i = done + tid; i < n; i += stride)
    z[i] = detail::from_f32<S>(f(detail::to_f32(x[i]), detail::to_f32(y[i])));
}

/// bf16 output of a float input: two float packs in, one bf16 pack out.
template <int = 0>  // a template, so the header may be included by many TUs (ODR)
__global__ void cast_f32_bf16(const float* __restrict__ x, __nv_bfloat16* __restrict__ y, index_t n, bool vec) {
  const index_t tid = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x;
  const index_t stride = static_cast<index_t>(gridDim.x) * blockDim.x;
  index_t done = 0;
  if (vec) {
    const index_t packs = n / 8;
    for (index_t i = tid; i < packs; i += stride) {
      const auto a = detail::load_pack(x + i * 8), b = detail::load_pack(x + i * 8 + 4);
      detail::Pack<__nv_bfloat16> c;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        c.v[j] = __float2bfloat16_rn(a.v[j]);
        c.v[4 + j] = __float2bfloat16_rn(b.v[j]);
      }
      detail::store_pack(y + i * 8, c);
    }
    done = packs * 8;
  }
  for (index_t i = done + tid; i < n; i += stride) y[i] = __float2bfloat16_rn(x[i]);
}

struct GeluOp {
  __device__ float operator()(float x) const { return scalar::gelu(x); }
};
struct GeluGradOp {
  __device__ float operator()(float x, float dy) const { return dy * scalar::gelu_grad(x); }
};

}  // namespace kernels

inline constexpr int kElementwiseThreads = 256;

/// y = gelu(x) over n elements (see the header comment). y may alias x.
template <DeviceReal T>
void gelu_forward(const T* x, T* y, index_t n, cudaStream_t stream) {
  detail::require_extent(n, 0, "cuda::gelu_forward", "n");
  if (n == 0) return;
  detail::require_pointer(x, "cuda::gelu_forward", "x");
  detail::require_pointer(y, "cuda::gelu_forward", "y");
  const bool vec = detail::aligned16(x) && detail::aligned16(y);
  const index_t work = vec ? (n + detail::Pack<device_t<T>>::size - 1) / detail::Pack<device_t<T>>::size : n;
  kernels::unary_map<<<detail::grid_for(work, kElementwiseThreads), kElementwiseThreads, 0, stream>>>(
      dev(x), dev(y), n, vec, kernels::GeluOp{});
  JEPA_CUDA_CHECK_LAUNCH("cuda::gelu_forward");
}

/// dx = gelu'(x)·dy over n elements (overwrite; dx may alias dy).
template <DeviceReal T>
void gelu_backward(const T* x, const T* dy, T* dx, index_t n, cudaStream_t stream) {
  detail::require_extent(n, 0, "cuda::gelu_backward", "n");
  if (n == 0) return;
  detail::require_pointer(x, "cuda::gelu_backward", "x");
  detail::require_pointer(dy, "cuda::gelu_backward", "dy");
  detail::require_pointer(dx, "cuda::gelu_backward", "dx");
  const bool vec = detail::aligned16(x) && detail::aligned16(dy) && detail::aligned16(dx);
  const index_t work = vec ? (n + detail::Pack<device_t<T>>::size - 1) / detail::Pack<device_t<T>>::size : n;
  kernels::binary_map<<<detail::grid_for(work, kElementwiseThreads), kElementwiseThreads, 0, stream>>>(
      dev(x), dev(dy), dev(dx), n, vec, kernels::GeluGradOp{});
  JEPA_CUDA_CHECK_LAUNCH("cuda::gelu_backward");
}

/// y = bf16(x): the bf16 copy of fp32 master weights a mixed-precision forward reads.
inline void cast_to_bf16(const float* x, jepa::bf16* y, index_t n, cudaStream_t stream) {
  detail::require_extent(n, 0, "cuda::cast_to_bf16", "n");
  if (n == 0) return;
  detail::require_pointer(x, "cuda::cast_to_bf16", "x");
  detail::require_pointer(y, "cuda::cast_to_bf16", "y");
  const bool vec = detail::aligned16(x) && detail::aligned16(y);
  kernels::cast_f32_bf16<><<<detail::grid_for(vec ? (n + 7) / 8 : n, kElementwiseThreads), kElementwiseThreads, 0,
                           stream>>>(x, dev(y), n, vec);
  JEPA_CUDA_CHECK_LAUNCH("cuda::cast_to_bf16");
}

}  // namespace jepa::backend::cuda
