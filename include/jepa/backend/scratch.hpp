// jepa/backend/scratch.hpp — a growable scratch array in a backend's memory space, for the
// intermediate buffers of composed models (models/jepa.hpp): concatenated taps, their gradients,
// normalised targets, loss gradients and weights.
//
//   Scratch<U, Backend>   std::vector<U> on a host backend; on a device backend an array in one
//                         Backend::Arena that is reallocated only when it must grow (so a training
//                         loop whose mask lengths vary a little reallocates only in its first steps,
//                         never in steady state). resize() does not keep the contents on a device
//                         backend: every user overwrites the array before reading it.
#pragma once

#include <cstddef>
#include <type_traits>
#include <vector>

#include "jepa/core/tensor.hpp"

namespace jepa::backend {

/// An array of U in one Arena (device memory for backend::Cuda::Arena), grown on demand.
template <class U, class Arena>
class ArenaVector {
 public:
  void resize(std::size_t n) {
    if (n > cap_) {
      arena_.resize(n * sizeof(U));
      cap_ = n;
    }
    n_ = n;
  }
  U* data() { return reinterpret_cast<U*>(arena_.data()); }
  const U* data() const { return reinterpret_cast<const U*>(arena_.data()); }
  std::size_t size() const { return n_; }

 private:
  Arena arena_;
  std::size_t n_ = 0, cap_ = 0;
};

namespace detail {
template <class U, class Backend, bool Host = Backend::space == MemorySpace::host>
struct scratch_select {
  using type = std::vector<U>;
};
template <class U, class Backend>
struct scratch_select<U, Backend, false> {
  using type = ArenaVector<U, typename Backend::Arena>;
};
}  // namespace detail

template <class U, class Backend>
using Scratch = typename detail::scratch_select<U, Backend>::type;

}  // namespace jepa::backend
