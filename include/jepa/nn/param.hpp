// jepa/nn/param.hpp — the parameter category of the memory plan: every trainable tensor of a model
// laid out in one buffer, with its checkpoint name, shape, initialiser and weight-decay flag.
//
// Modules register their tensors at construction (ParamLayout::add) and keep only element offsets.
// The same layout indexes the parameter buffer, the gradient buffer and the optimizer state, so
// AdamW, the EMA of the target encoder and checkpointing are single passes over one array
// (DESIGN.md decision 5). Names are the official PyTorch state-dict keys ("blocks.3.attn.qkv.weight"),
// so released checkpoints map onto the layout by name.
//
// Initialisation (recipe_facts §1.3): trunc_normal(0, 0.02) with ABSOLUTE bounds ±2, then an optional
// multiplicative rescale (the 1/√(2·l) residual rescale of attn.proj and mlp.fc2 of block l, 1-based).
// Each tensor draws from its own Philox stream (seed, stream = tensor ordinal), so initialisation is
// independent of the thread count.
// Weight decay follows the recipe (§9.1.11): every tensor with rank ≥ 2 decays (weights, mask tokens,
// modality embeddings); rank-1 tensors (biases, norms) do not.
#pragma once

#include "jepa/config.hpp"

#include <algorithm>
#include <cstddef>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "jepa/core/error.hpp"
#include "jepa/core/memory_plan.hpp"
#include "jepa/core/rng.hpp"
#include "jepa/core/tensor.hpp"

namespace jepa::nn {

enum class Init : std::uint8_t { zeros, ones, trunc_normal, normal };

struct ParamInfo {
  std::string name;
  Shape shape;
  Init init = Init::zeros;
  double std = 0.02;     // for trunc_normal / normal
  double scale = 1.0;    // multiplied in after drawing (residual rescale)
  bool weight_decay = true;
  std::size_t offset = 0;  // in elements
  std::size_t numel() const { return static_cast<std::size_t>(shape.numel()); }
};

class ParamLayout {
 public:
  /// Offsets are aligned to this many elements (64 bytes for float).
  static constexpr std::size_t kAlignElems = 16;

  /// Registers a tensor and returns its element offset.
  std::size_t add(std::string name, Shape shape, Init init, double std = 0.02, double scale = 1.0) {
    if (index_.count(name)) throw ConfigError(detail::cat("jepa: parameter '", name, "' is registered twice"));
    for (index_t d : shape.dims)
      if (d <= 0) throw ShapeError(detail::cat("jepa: parameter '", name, "' has non-positive extent ", shape.str()));
    ParamInfo p{std::move(name), std::move(shape), init, std, scale, true, numel_};
    p.weight_decay = p.shape.rank() >= 2;
    numel_ = (numel_ + p.numel() + kAlignElems - 1) / kAlignElems * kAlignElems;
    count_ += p.numel();
    index_.emplace(p.name, params_.size());
    params_.push_back(std::move(p));
    return params_.back().offset;
  }

  const std::vector<ParamInfo>& params() const { return params_; }
  /// Elements of the buffer (including alignment padding).
  std::size_t numel() const { return numel_; }
  /// Number of trainable scalars (what papers call the parameter count).
  std::size_t count() const { return count_; }
  bool contains(const std::string& name) const { return index_.count(name) != 0; }

  const ParamInfo& find(const std::string& name) const {
    auto it = index_.find(name);
    if (it == index_.end()) {
      std::string near;
      for (const auto& p : params_)
        if (common_prefix(p.name, name) > near.size() / 2 + 3) near = p.name;
      throw IndexError(detail::cat("jepa: no parameter named '", name, "' in this model (", params_.size(),
                                   " tensors", near.empty() ? "" : ", e.g. '" + near + "'", ")"));
    }
    return params_[it->second];
  }

 private:
  static std::size_t common_prefix(const std::string& a, const std::string& b) {
    std::size_t i = 0;
    while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
    return i;
  }
  std::vector<ParamInfo> params_;
  std::unordered_map<std::string, std::size_t> index_;
  std::size_t numel_ = 0, count_ = 0;
};

/// A buffer laid out by a ParamLayout: parameters, their gradients, or optimizer moments. In host
/// memory by default; with Arena = a device arena (backend::Cuda::Arena) the buffer is device memory,
/// init() draws on the host and uploads once, and data() / operator[] return device pointers.
template <class T, class Arena = HostArena>
class ParameterSet {
 public:
  static constexpr bool on_host = std::is_same_v<Arena, HostArena>;

  ParameterSet() = default;
  explicit ParameterSet(const ParamLayout& layout) : layout_(&layout), arena_(make_arena(layout.numel() * sizeof(T))) {}

  T* data() { return reinterpret_cast<T*>(arena_.data()); }
  const T* data() const { return reinterpret_cast<const T*>(arena_.data()); }
  std::size_t numel() const { return layout_ ? layout_->numel() : 0; }
  const ParamLayout& layout() const { return *layout_; }

  T* operator[](const std::string& name) { return data() + layout_->find(name).offset; }
  const T* operator[](const std::string& name) const { return data() + layout_->find(name).offset; }

  void zero() { arena_.zero(); }

  /// Draws every tensor from its initialiser (see the header comment). Deterministic in `seed`.
  void init(std::uint64_t seed) {
    if constexpr (on_host) {
      draw(data(), seed);
    } else {  // the same values, drawn on the host, then one upload (padding stays 0)
      std::vector<T> host(numel(), T(0));
      draw(host.data(), seed);
      arena_.upload(host.data(), host.size() * sizeof(T));
    }
  }

 private:
  void draw(T* base, std::uint64_t seed) const {
    const auto& ps = layout_->params();
JEPA_OMP(parallel for schedule(dynamic, 1))
    for (std::size_t i = 0; i < ps.size(); ++i) {
      const ParamInfo& p = ps[i];
      T* dst = base + p.offset;
      Rng rng(seed, /*stream=*/i + 1);
      for (std::size_t j = 0; j < p.numel(); ++j) {
        double v = 0;
        switch (p.init) {
          case Init::zeros: v = 0; break;
          case Init::ones: v = 1; break;
          case Init::trunc_normal: v = rng.trunc_normal(0.0, p.std, -2.0, 2.0); break;
          case Init::normal: v = p.std * rng.normal(); break;
        }
        dst[j] = static_cast<T>(v * p.scale);
      }
    }
  }

  const ParamLayout* layout_ = nullptr;
  static Arena make_arena(std::size_t bytes) {
    if constexpr (on_host) return Arena(bytes, "a parameter set (weights, gradients or optimizer moments)");
    else return Arena(bytes);
  }
  Arena arena_;
};

}  // namespace jepa::nn
