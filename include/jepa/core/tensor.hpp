// jepa/core/tensor.hpp — non-owning tensor views: pointer, shape, strides and memory space.
//
// A TensorView<T, Rank> never owns memory; arenas (core/memory_plan.hpp) own it. Strides are in
// elements. Views made from a shape alone are row-major contiguous ("C order"), which is the layout
// every primitive expects unless it documents otherwise; the shape glossary is docs/conventions.md.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <ostream>
#include <span>
#include <string>
#include <vector>

#include "jepa/core/dtype.hpp"
#include "jepa/core/error.hpp"

namespace jepa {

using index_t = std::int64_t;

enum class MemorySpace : std::uint8_t { host, device };

/// A dynamic-rank shape (used by memory plans and file formats).
struct Shape {
  std::vector<index_t> dims;

  Shape() = default;
  Shape(std::initializer_list<index_t> d) : dims(d) {}
  explicit Shape(std::vector<index_t> d) : dims(std::move(d)) {}

  std::size_t rank() const { return dims.size(); }
  index_t operator[](std::size_t i) const { return dims[i]; }
  index_t numel() const {
    index_t n = 1;
    for (index_t d : dims) n *= d;
    return n;
  }
  friend bool operator==(const Shape&, const Shape&) = default;
  std::string str() const { return dims_str(dims.data(), dims.size()); }
  /// "[d0, d1, …]" (appends piecewise: GCC 12 warns falsely on `const char* + std::string&&`).
  static std::string dims_str(const index_t* d, std::size_t n) {
    std::string s = "[";
    for (std::size_t i = 0; i < n; ++i) {
      if (i) s.append(", ");
      s.append(std::to_string(d[i]));
    }
    s.append("]");
    return s;
  }
  friend std::ostream& operator<<(std::ostream& os, const Shape& s) { return os << s.str(); }
};

template <class T, int Rank, MemorySpace Space = MemorySpace::host>
class TensorView {
  static_assert(Rank >= 1, "jepa: TensorView needs Rank >= 1");

 public:
  using value_type = T;
  static constexpr int rank = Rank;
  static constexpr MemorySpace space = Space;

  TensorView() = default;
  /// Contiguous row-major view.
  TensorView(T* data, std::array<index_t, Rank> shape) : data_(data), shape_(shape) {
    index_t s = 1;
    for (int i = Rank - 1; i >= 0; --i) {
      strides_[i] = s;
      s *= shape_[i];
    }
  }
  TensorView(T* data, std::array<index_t, Rank> shape, std::array<index_t, Rank> strides)
      : data_(data), shape_(shape), strides_(strides) {}

  T* data() const { return data_; }
  index_t size(int i) const { return shape_[i]; }
  index_t stride(int i) const { return strides_[i]; }
  const std::array<index_t, Rank>& shape() const { return shape_; }
  const std::array<index_t, Rank>& strides() const { return strides_; }
  index_t numel() const {
    index_t n = 1;
    for (index_t d : shape_) n *= d;
    return n;
  }
  bool is_contiguous() const {
    index_t s = 1;
    for (int i = Rank - 1; i >= 0; --i) {
      if (shape_[i] != 1 && strides_[i] != s) return false;
      s *= shape_[i];
    }
    return true;
  }

  template <class... I>
  T& operator()(I... idx) const
    requires(sizeof...(I) == Rank && Space == MemorySpace::host)
  {
    const std::array<index_t, Rank> ix{static_cast<index_t>(idx)...};
    index_t off = 0;
    for (int i = 0; i < Rank; ++i) off += ix[i] * strides_[i];
    return data_[off];
  }

  /// The sub-view at index i of the leading dimension.
  TensorView<T, (Rank > 1 ? Rank - 1 : 1), Space> operator[](index_t i) const
    requires(Rank > 1)
  {
    std::array<index_t, Rank - 1> sh{}, st{};
    for (int d = 1; d < Rank; ++d) {
      sh[d - 1] = shape_[d];
      st[d - 1] = strides_[d];
    }
    return {data_ + i * strides_[0], sh, st};
  }

  operator TensorView<const T, Rank, Space>() const
    requires(!std::is_const_v<T>)
  {
    return {data_, shape_, strides_};
  }

  Shape dyn_shape() const { return Shape(std::vector<index_t>(shape_.begin(), shape_.end())); }

 private:
  T* data_ = nullptr;
  std::array<index_t, Rank> shape_{};
  std::array<index_t, Rank> strides_{};
};

/// Throws ShapeError unless `v` has exactly the expected extents; `what` names the argument.
template <class T, int Rank, MemorySpace S>
void check_shape(const TensorView<T, Rank, S>& v, const std::array<index_t, static_cast<std::size_t>(Rank)>& expected,
                 std::string_view what) {
  if (v.shape() != expected)
    throw ShapeError(detail::cat("jepa: ", what, " has shape ", Shape::dims_str(v.shape().data(), Rank), "; expected ",
                                 Shape::dims_str(expected.data(), Rank)));
}

}  // namespace jepa
