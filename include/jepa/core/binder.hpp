// jepa/core/binder.hpp — collects named buffer requests into a MemoryPlan, then binds them all to one
// arena in a single allocation.
//
//   Binder<T> b(MemoryCategory::activations);
//   b.request(cache.qkv, "blocks.0.attn.qkv", {B, N, 3*D});    // remembers &cache.qkv
//   b.bind(arena);                                             // one allocation; every slot filled
// Slots must stay at the same address until bind() returns (keep them in storage that is not
// resized in between). Afterwards the pointers are ordinary pointers into the arena.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "jepa/core/memory_plan.hpp"

namespace jepa {

template <class T>
class Binder {
 public:
  explicit Binder(MemoryCategory c) : plan_(c) {}

  void request(T*& slot, std::string name, Shape shape) {
    slots_.emplace_back(&slot, plan_.add(std::move(name), std::move(shape), dtype_of_v<T>));
  }
  /// Also lets other element types share the arena (e.g. int64 token indices).
  template <class U>
  void request_as(U*& slot, std::string name, Shape shape) {
    other_.emplace_back(reinterpret_cast<void**>(&slot), plan_.add(std::move(name), std::move(shape), dtype_of_v<U>));
  }

  template <class Arena>
  void bind(Arena& arena) {
    if constexpr (requires { arena.resize(plan_.bytes(), category_description(plan_.category())); })
      arena.resize(plan_.bytes(), category_description(plan_.category()));
    else
      arena.resize(plan_.bytes());
    for (auto& [slot, h] : slots_) *slot = arena.template ptr<T>(plan_.spec(h));
    for (auto& [slot, h] : other_) *slot = static_cast<void*>(arena.data() + plan_.spec(h).offset);
    slots_.clear();
    other_.clear();
  }
  const MemoryPlan& plan() const { return plan_; }

 private:
  MemoryPlan plan_;
  std::vector<std::pair<T**, std::size_t>> slots_;
  std::vector<std::pair<void**, std::size_t>> other_;
};

}  // namespace jepa
