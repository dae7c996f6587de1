// jepa/backend/attention_args.hpp — argument types shared by every backend's fused attention.
//
// Attention reads q, k, v in place from strided buffers (typically the packed (B, N, 3D) output of the
// qkv projection, channels [q | k | v], heads contiguous inside each) and writes o into a (B, N, D)
// buffer with heads interleaved at h·Dh, so no transposes or copies are needed.
//
//   element (b, h, n, c) of an operand lives at data[b·batch_stride + n·row_stride + h·head_stride + c]
//
//   o = softmax(scale · q kᵀ + mask) v,  lse[b,h,i] = log Σ_j exp(scale · q_i·k_j)  over allowed j
#pragma once

#include <cstdint>
#include <limits>

#include "jepa/core/error.hpp"
#include "jepa/core/tensor.hpp"

namespace jepa::backend {

template <class T>
struct AttnOperand {
  T* data = nullptr;
  index_t batch_stride = 0;
  index_t row_stride = 0;
  index_t head_stride = 0;
  JEPA_HOST_DEVICE T* at(index_t b, index_t h, index_t n) const {
    return data + b * batch_stride + n * row_stride + h * head_stride;
  }
};

struct AttnShape {
  index_t batch = 0, heads = 0;
  index_t q_len = 0, kv_len = 0;  // Nq, Nk
  index_t head_dim = 0;           // Dh
  double scale = 0;               // usually 1/√Dh
};

/// Which keys each query may attend to.
///  - none:          all keys.
///  - causal:        key j is allowed for query i iff j <= i.
///  - block_causal:  tokens come in blocks of `block` consecutive positions (the V-JEPA 2-AC layout
///                   [a_t, s_t, 256 patches] per time step); key j is allowed for query i iff
///                   j / block <= i / block (block lower-triangular).
///  - dense:         `allowed` is a (Nq, Nk) row-major byte array shared by every batch and head;
///                   nonzero means allowed.
/// A query row with no allowed key produces o = 0, lse = -inf, and zero gradients.
struct AttnMask {
  enum class Kind : std::uint8_t { none, causal, block_causal, dense };
  Kind kind = Kind::none;
  index_t block = 0;
  const std::uint8_t* allowed = nullptr;
  index_t cols = 0;  // row length of `allowed` (= Nk) for dense masks

  static AttnMask full() { return {}; }
  static AttnMask causal_mask() { return {Kind::causal, 0, nullptr}; }
  static AttnMask block_causal_mask(index_t block) {
    if (block <= 0) fail_field("AttnMask.block", block, "block_causal needs a block size >= 1");
    return {Kind::block_causal, block, nullptr};
  }
  static AttnMask dense_mask(const std::uint8_t* allowed, index_t kv_len) {
    if (!allowed) fail_field("AttnMask.allowed", "null", "a dense mask needs a (Nq, Nk) byte array");
    return {Kind::dense, 0, allowed, kv_len};
  }
  JEPA_HOST_DEVICE bool allows(index_t i, index_t j) const {
    switch (kind) {
      case Kind::none: return true;
      case Kind::causal: return j <= i;
      case Kind::block_causal: return j / block <= i / block;
      case Kind::dense: return allowed[i * cols + j] != 0;
    }
    return true;
  }
};

}  // namespace jepa::backend
