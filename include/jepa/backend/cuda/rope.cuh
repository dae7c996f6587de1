// jepa/backend/cuda/rope.cuh — rotary position embedding applied in place, forward and backward (the
// device twin of backend::Cpu::rope_forward / rope_backward).
//
// Layout: `heads` heads of M rows; head h of row r starts at x + r·row_stride + h·head_stride (for
// the packed qkv buffer of nn::Attention: row_stride = 3D, head_stride = Dh, and the k part is the
// same call at x + D). The first `rot` channels of each head are rotated in pairs (2i, 2i+1),
// i < ⌊rot/2⌋, with the per-row tables C = cos, S = sin of shape (M, rot) shared by every head;
// the remaining channels (and a last channel of an odd rot) are untouched:
//   forward    out[2i]   = x[2i]·C[2i]     − x[2i+1]·S[2i]
//              out[2i+1] = x[2i+1]·C[2i+1] + x[2i]·S[2i+1]
//   backward (the transpose of that 2×2 map, applied to the gradient)
//              dx[2i]    = dy[2i]·C[2i]     + dy[2i+1]·S[2i+1]
//              dx[2i+1]  = dy[2i+1]·C[2i+1] − dy[2i]·S[2i]
// Both published pairings go through the same formula: the tables carry the pairing (nn/rope.hpp).
// Interleaved (V-JEPA 2.1) has C[2i] = C[2i+1], S[2i] = S[2i+1] — a true rotation, whose transpose
// is the rotation by −θ. Tiled (V-JEPA 2) pairs two different frequencies, C[2i] ≠ C[2i+1]: the map
// is not orthogonal and the backward must use the transpose written above, not the inverse.
//
// Kernel: one thread per (row, head, pair); consecutive threads take consecutive pairs of one head,
// so the loads of x and of the tables are coalesced. In place: each pair is read and written by one
// thread only. Storage T is float or jepa::bf16 (tables of the same type), arithmetic float.
#pragma once

#include "jepa/backend/cuda/common.cuh"

namespace jepa::backend::cuda {

namespace kernels {

template <class S, bool Transpose>
__global__ void rope_apply(S* x, index_t M, int heads, index_t row_stride, index_t head_stride, int rot,
                           const S* __restrict__ cos, const S* __restrict__ sin) {
  const int pairs = rot / 2;
  const index_t total = M * heads * static_cast<index_t>(pairs);
  const index_t stride = static_cast<index_t>(gridDim.x) * blockDim.x;
  for (index_t t = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; t < total; t += stride) {
    const int i = 2 * static_cast<int>(t % pairs);
    const index_t rh = t / pairs;
    const int h = static_cast<int>(rh % heads);
    const index_t r = rh / heads;
    S* p = x + r * row_stride + h * head_stride;
    const S* c = cos + r * rot;
    const S* s = sin + r * rot;
    const float a = detail::to_f32(p[i]), b = detail::to_f32(p[i + 1]);
    float o0, o1;
    if constexpr (!Transpose) {
      o0 = a * detail::to_f32(c[i]) - b * detail::to_f32(s[i]);
      o1 = b * detail::to_f32(c[i + 1]) + a * detail::to_f32(s[i + 1]);
    } else {
      o0 = a * detail::to_f32(c[i]) + b * detail::to_f32(s[i + 1]);
      o1 = b * detail::to_f32(c[i + 1]) - a * detail::to_f32(s[i]);
    }
    p[i] = detail::from_f32<S>(o0);
    p[i + 1] = detail::from_f32<S>(o1);
  }
}

}  // namespace kernels

namespace detail {
inline void check_rope(const void* x, index_t M, index_t heads, index_t row_stride, index_t head_stride, index_t rot,
                       const void* cos, const void* sin, const char* op) {
  require_extent(M, 0, op, "M (rows)");
  require_extent(heads, 0, op, "heads");
  require_extent(rot, 0, op, "rot (rotated channels)");
  if (heads > (index_t{1} << 30) || rot > (index_t{1} << 30))
    throw ShapeError(jepa::detail::cat("jepa: ", op, ": heads = ", heads, ", rot = ", rot, " are invalid: each must be < 2^30"));
  if (M == 0 || heads == 0 || rot < 2) return;
  // In place and one thread per pair: the rotated channels of two heads, or of two rows, must not
  // overlap (they would be rotated twice, racing).
  if (heads > 1) require_extent(head_stride, rot, op, "head_stride");
  if (M > 1) require_extent(row_stride, (heads - 1) * head_stride + rot, op, "row_stride");
  require_pointer(x, op, "x");
  require_pointer(cos, op, "cos");
  require_pointer(sin, op, "sin");
}
template <bool Transpose, class T>
void rope_launch(T* x, index_t M, index_t heads, index_t row_stride, index_t head_stride, index_t rot, const T* cos,
                 const T* sin, cudaStream_t stream, const char* op) {
  check_rope(x, M, heads, row_stride, head_stride, rot, cos, sin, op);
  if (M == 0 || heads == 0 || rot < 2) return;
  const index_t work = M * heads * (rot / 2);
  kernels::rope_apply<device_t<T>, Transpose><<<grid_for(work, 256), 256, 0, stream>>>(
      dev(x), M, static_cast<int>(heads), row_stride, head_stride, static_cast<int>(rot), dev(cos), dev(sin));
  JEPA_CUDA_CHECK_LAUNCH("cuda::rope");
}
}  // namespace detail

/// In-place RoPE of `heads` heads of M rows (see the header comment).
template <DeviceReal T>
void rope_forward(T* x, index_t M, index_t heads, index_t row_stride, index_t head_stride, index_t rot, const T* cos,
                  const T* sin, cudaStream_t stream) {
  detail::rope_launch<false>(x, M, heads, row_stride, head_stride, rot, cos, sin, stream, "cuda::rope_forward");
}
/// In-place transpose of rope_forward applied to a gradient (see the header comment).
template <DeviceReal T>
void rope_backward(T* dx, index_t M, index_t heads, index_t row_stride, index_t head_stride, index_t rot, const T* cos,
                   const T* sin, cudaStream_t stream) {
  detail::rope_launch<true>(dx, M, heads, row_stride, head_stride, rot, cos, sin, stream, "cuda::rope_backward");
}

}  // namespace jepa::backend::cuda
