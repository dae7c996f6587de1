// jepa/backend/host_staging.hpp — writing host-made data (token indices, RoPE and sin-cos tables)
// into a module's State arena on any backend.
//
// On a host backend the data is written straight into the arena. On a device backend it is built in
// a host mirror (a std::vector the State owns) and copied in with one Backend::copy, enqueued on the
// backend's current stream like every primitive. Modules call
//   U* p = host_side<Backend>(arena_ptr, mirror, n, at);   // where to write element `at` onwards
//   ... fill p ...
//   to_backend<Backend>(p, arena_ptr, n);                   // no-op on a host backend
#pragma once

#include <cstddef>
#include <vector>

#include "jepa/core/tensor.hpp"

namespace jepa::backend {

/// Where host-made data is written: the arena itself on a host backend; on a device backend the host
/// mirror (resized to n elements, which keeps earlier pointers into it valid when n does not grow),
/// starting at element `at`.
template <class Backend, class U>
U* host_side(U* arena_ptr, std::vector<U>& mirror, index_t n, index_t at = 0) {
  if constexpr (Backend::space == MemorySpace::host) {
    (void)mirror, (void)n, (void)at;
    return arena_ptr;
  } else {
    mirror.resize(static_cast<std::size_t>(n));
    return mirror.data() + at;
  }
}

/// Copies n host-made elements into the arena on a device backend (nothing to do on a host one).
template <class Backend, class U>
void to_backend(const U* host, U* arena_ptr, index_t n) {
  if constexpr (Backend::space != MemorySpace::host) Backend::template copy<U>(host, arena_ptr, n);
  else (void)host, (void)arena_ptr, (void)n;
}

}  // namespace jepa::backend
