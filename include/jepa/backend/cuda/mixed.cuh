// jepa/backend/cuda/mixed.cuh — bf16 mixed precision for fp32 modules: the attention operands of a
// float model rounded to bf16 so the fused attention runs on the tensor cores (attention.cuh's mma.sync
// path), the way torch.autocast(bfloat16) runs SDPA on fp32 weights. With the GEMMs in
// GemmCompute::bf16 (fp32 storage, bf16 products, fp32 accumulation) this is the recipe's precision:
// fp32 master weights, activations and LayerNorm/GELU/softmax statistics in fp32, products in bf16.
//
//   to_bf16_packed:    dst[b, n, h, c] = bf16(src(b, h, n, c))        src a strided AttnOperand<float>
//   from_bf16_packed:  dst(b, h, n, c) = float(src[b, n, h, c])       back into a strided operand
// Packed layout (B, N, H, Dh): batch stride N·H·Dh, row stride H·Dh, head stride Dh — 16-byte rows
// whenever Dh % 8 == 0, which is what the tensor-core kernels need. The conversions are memory-bound
// elementwise passes (one thread per element; the destination is written contiguously).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "jepa/backend/attention_args.hpp"
#include "jepa/backend/cuda/common.cuh"
#include "jepa/backend/cuda/error.cuh"

namespace jepa::backend::cuda {

namespace kernels {

template <int = 0>
__global__ void operand_to_bf16(const float* __restrict__ src, index_t bs, index_t rs, index_t hs, __nv_bfloat16* __restrict__ dst,
                                index_t N, index_t H, index_t Dh, index_t total) {
  const index_t stride = static_cast<index_t>(gridDim.x) * blockDim.x;
  for (index_t e = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; e < total; e += stride) {
    const index_t c = e % Dh, h = (e / Dh) % H, n = (e / (Dh * H)) % N, b = e / (Dh * H * N);
    dst[e] = __float2bfloat16_rn(src[b * bs + n * rs + h * hs + c]);
  }
}

template <int = 0>
__global__ void operand_from_bf16(const __nv_bfloat16* __restrict__ src, float* __restrict__ dst, index_t bs, index_t rs,
                                  index_t hs, index_t N, index_t H, index_t Dh, index_t total) {
  const index_t stride = static_cast<index_t>(gridDim.x) * blockDim.x;
  for (index_t e = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; e < total; e += stride) {
    const index_t c = e % Dh, h = (e / Dh) % H, n = (e / (Dh * H)) % N, b = e / (Dh * H * N);
    dst[b * bs + n * rs + h * hs + c] = __bfloat162float(src[e]);
  }
}

}  // namespace kernels

/// Elements of one packed (B, N, H, Dh) bf16 operand.
inline index_t packed_elems(index_t B, index_t N, index_t H, index_t Dh) { return B * N * H * Dh; }

/// The packed bf16 view of a (B, N, H, Dh) buffer, as an AttnOperand.
inline AttnOperand<jepa::bf16> packed_operand(jepa::bf16* p, index_t N, index_t H, index_t Dh) {
  return {p, N * H * Dh, H * Dh, Dh};
}

inline void to_bf16_packed(AttnOperand<const float> src, jepa::bf16* dst, index_t B, index_t N, index_t H, index_t Dh,
                           cudaStream_t stream) {
  const index_t total = packed_elems(B, N, H, Dh);
  if (total <= 0) return;
  kernels::operand_to_bf16<><<<detail::grid_for(total, 256), 256, 0, stream>>>(
      src.data, src.batch_stride, src.row_stride, src.head_stride, reinterpret_cast<__nv_bfloat16*>(dst), N, H, Dh, total);
  JEPA_CUDA_CHECK_LAUNCH("cuda::to_bf16_packed");
}

inline void from_bf16_packed(const jepa::bf16* src, AttnOperand<float> dst, index_t B, index_t N, index_t H, index_t Dh,
                             cudaStream_t stream) {
  const index_t total = packed_elems(B, N, H, Dh);
  if (total <= 0) return;
  kernels::operand_from_bf16<><<<detail::grid_for(total, 256), 256, 0, stream>>>(
      reinterpret_cast<const __nv_bfloat16*>(src), dst.data, dst.batch_stride, dst.row_stride, dst.head_stride, N, H, Dh,
      total);
  JEPA_CUDA_CHECK_LAUNCH("cuda::from_bf16_packed");
}

}  // namespace jepa::backend::cuda
