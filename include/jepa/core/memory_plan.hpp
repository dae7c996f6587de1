// jepa/core/memory_plan.hpp — plan memory up front, then carve it out of one arena per category.
//
// A MemoryPlan is an ordered list of named TensorSpecs {name, shape, dtype}; each gets a byte offset
// aligned to `kAlignment`. An Arena owns one allocation of plan.bytes() and hands out views by
// handle. DESIGN.md decision 5: parameters, gradients, optimizer state, activations and workspace are
// each one plan and one arena, so a training step never allocates, checkpointing the parameters is
// one copy and the EMA is one pass over one buffer.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "jepa/core/dtype.hpp"
#include "jepa/core/error.hpp"
#include "jepa/core/memory_budget.hpp"
#include "jepa/core/tensor.hpp"

namespace jepa {

enum class MemoryCategory : std::uint8_t { parameters, gradients, optimizer_state, activations, workspace };

/// What a category holds, for messages ("the activations of a forward/backward state").
inline const char* category_description(MemoryCategory c) {
  switch (c) {
    case MemoryCategory::parameters: return "the parameters";
    case MemoryCategory::gradients: return "the gradients";
    case MemoryCategory::optimizer_state: return "the optimizer state";
    case MemoryCategory::activations: return "the activations of a forward/backward state";
    case MemoryCategory::workspace: return "a workspace";
  }
  return "a host arena";
}

struct TensorSpec {
  std::string name;
  Shape shape;
  DType dtype = DType::f32;
  std::size_t offset = 0;  // bytes from the arena base, filled by MemoryPlan::add
  std::size_t bytes() const { return static_cast<std::size_t>(shape.numel()) * dtype_size(dtype); }
};

class MemoryPlan {
 public:
  static constexpr std::size_t kAlignment = 64;  // one cache line; also satisfies AVX-512 and cp.async

  explicit MemoryPlan(MemoryCategory c = MemoryCategory::activations) : category_(c) {}

  /// Appends a tensor and returns its handle (its index in the plan). Names must be unique.
  std::size_t add(std::string name, Shape shape, DType dtype) {
    for (index_t d : shape.dims)
      if (d < 0) throw ShapeError(detail::cat("jepa: MemoryPlan tensor '", name, "' has negative extent ", shape.str()));
    if (index_.count(name)) throw ConfigError(detail::cat("jepa: MemoryPlan already has a tensor named '", name, "'"));
    TensorSpec s{std::move(name), std::move(shape), dtype, bytes_};
    bytes_ = align_up(bytes_ + s.bytes());
    index_.emplace(s.name, specs_.size());
    specs_.push_back(std::move(s));
    return specs_.size() - 1;
  }

  const std::vector<TensorSpec>& specs() const { return specs_; }
  const TensorSpec& spec(std::size_t h) const { return specs_.at(h); }
  std::size_t bytes() const { return bytes_; }
  MemoryCategory category() const { return category_; }
  bool contains(const std::string& name) const { return index_.count(name) != 0; }
  std::size_t handle(const std::string& name) const {
    auto it = index_.find(name);
    if (it == index_.end()) throw IndexError(detail::cat("jepa: MemoryPlan has no tensor named '", name, "'"));
    return it->second;
  }
  static constexpr std::size_t align_up(std::size_t n) { return (n + kAlignment - 1) / kAlignment * kAlignment; }

 private:
  MemoryCategory category_;
  std::vector<TensorSpec> specs_;
  std::unordered_map<std::string, std::size_t> index_;
  std::size_t bytes_ = 0;
};

/// One aligned host allocation holding every tensor of a plan. Zero-initialised.
class HostArena {
 public:
  HostArena() = default;
  explicit HostArena(std::size_t bytes, std::string_view what = "a host arena") { resize(bytes, what); }

  /// `what` names the contents in the message of a refused allocation ("the parameters", …).
  void resize(std::size_t bytes, std::string_view what = "a host arena") {
    if (bytes == bytes_) return;
    void* p = nullptr;
    if (bytes) {
      require_host_memory(bytes, what);  // refuse before the kernel's OOM killer acts
      p = std::aligned_alloc(MemoryPlan::kAlignment, MemoryPlan::align_up(bytes));
      if (!p)
        throw MemoryError(detail::cat("jepa: could not allocate ", format_bytes(bytes), " (", format_bytes(available_host_memory()),
                                      " available)"));
      std::memset(p, 0, bytes);
    }
    data_.reset(static_cast<std::byte*>(p));
    bytes_ = bytes;
  }
  void zero() {
    if (bytes_) std::memset(data_.get(), 0, bytes_);
  }
  std::byte* data() const { return data_.get(); }
  std::size_t bytes() const { return bytes_; }

  template <class T>
  T* ptr(const TensorSpec& s) const {
    if (dtype_of_v<std::remove_const_t<T>> != s.dtype)
      throw ShapeError(detail::cat("jepa: tensor '", s.name, "' has dtype ", dtype_name(s.dtype),
                                   ", requested as ", dtype_name(dtype_of_v<std::remove_const_t<T>>)));
    if (s.offset + s.bytes() > bytes_)
      throw IndexError(detail::cat("jepa: tensor '", s.name, "' lies outside its arena (arena is ", bytes_, " bytes)"));
    return reinterpret_cast<T*>(data_.get() + s.offset);
  }

 private:
  struct Free {
    void operator()(std::byte* p) const { std::free(p); }
  };
  std::unique_ptr<std::byte, Free> data_;
  std::size_t bytes_ = 0;
};

}  // namespace jepa
