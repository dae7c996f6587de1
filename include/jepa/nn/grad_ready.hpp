// jepa/nn/grad_ready.hpp — "this gradient range is final" notifications from a backward walk.
//
// A module's backward walk finishes its parameters piece by piece (the last block first, the
// embeddings last). Data-parallel training (jepa/dist/bucket_reducer.hpp) starts reducing a piece
// across processes as soon as its gradient is final, while the walk goes on with the next piece.
//
//   ParamRange{begin, end}   elements [begin, end) of a module's ParamLayout (gradients use the same
//                            layout); a module's ranges partition [0, layout.numel()), alignment
//                            padding included
//   grad_walk()              the ranges in the order the walk finishes them (a module method)
//   GradReady                called once per range, in that order, right after the walk's last write
//                            to it: the walk will not touch [begin, end) of G again
//
// A GradReady is a plain function pointer and a context: a null one costs one branch per block, and
// the walk's arithmetic is the same with or without it (bitwise).
#pragma once

#include <cstddef>
#include <vector>

#include "jepa/nn/param.hpp"

namespace jepa::nn {

/// Elements [begin, end) of a parameter (or gradient) buffer laid out by one ParamLayout.
struct ParamRange {
  std::size_t begin = 0, end = 0;
  std::size_t size() const { return end - begin; }
  friend bool operator==(const ParamRange&, const ParamRange&) = default;
};

/// The notification of a backward walk. `fn(ctx, r)` is called when range r is final.
struct GradReady {
  void (*fn)(void* ctx, ParamRange r) = nullptr;
  void* ctx = nullptr;
  void operator()(ParamRange r) const {
    if (fn) fn(ctx, r);
  }
  explicit operator bool() const { return fn != nullptr; }
};

/// Offset of parameter `index` of `L` (the first element of the tensor registered index-th), or
/// L.numel() when index == L.params().size(): the boundaries modules use to cut their ranges.
inline std::size_t param_boundary(const ParamLayout& L, std::size_t index) {
  return index < L.params().size() ? L.params()[index].offset : L.numel();
}

}  // namespace jepa::nn
