// jepa/masking/multiblock.hpp — the multi-block masks of I-JEPA (2-D) and V-JEPA / V-JEPA 2 / 2.1 (3-D).
//
// Both policies draw block SIZES once per batch from the per-batch stream
// mask_rng(seed, step, kBatchSample, ·) and block POSITIONS per sample from mask_rng(seed, step, b, ·)
// (recipe_facts §3.1–3.2, pitfall 9.1.8), so sample b's untruncated pair depends on (seed, step, b)
// only, never on the batch size or on the other samples. The batch rule of mask.hpp then cuts every
// context row to the batch-minimum context length and every target row to the batch-minimum target
// length (highest indices dropped).
//
// Block size from a scale s, an aspect ratio a and a grid H'×W' (both recipes):
//   k = int(H'W'·s),  h = round(√(k·a)),  w = round(√(k/a))
// with Python's round (ties to even). I-JEPA then decrements h while h ≥ H' (w while w ≥ W'), so a
// block is at most (H'−1)×(W'−1); V-JEPA clips h ≤ H', w ≤ W'.
//
// Shapes: a grid has N = T'·H'·W' tokens, flat index n = t'·H'W' + h'·W' + w'. A MaskBatch holds
// (B, Kc) context and (B, Kt) target indices.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "jepa/core/error.hpp"
#include "jepa/core/rng.hpp"
#include "jepa/masking/mask.hpp"

namespace jepa::masking {

/// A closed interval [lo, hi]; a draw u ∈ [0, 1) maps to lo + u·(hi − lo).
struct Range {
  double lo = 0, hi = 0;
  double at(double u) const { return lo + u * (hi - lo); }
  friend bool operator==(const Range&, const Range&) = default;
};

/// Size of one block in tokens: t time steps × h rows × w columns.
struct BlockSize {
  index_t t = 1, h = 0, w = 0;
  index_t area() const { return h * w; }
  friend bool operator==(const BlockSize&, const BlockSize&) = default;
};

/// A placed block: time steps [start, start + t), rows [top, top + h), columns [left, left + w).
struct Block {
  index_t start = 0, top = 0, left = 0;
  BlockSize size;
};

// Helpers shared by the policies of jepa/masking (multiblock.hpp and random_tube.hpp).
namespace detail {

/// Python 3's round(): nearest integer, ties to even (the recipes compute block sides with it).
inline index_t round_half_even(double x) {
  const double f = std::floor(x);
  const double d = x - f;
  index_t r = static_cast<index_t>(f);
  if (d > 0.5 || (d == 0.5 && (r % 2 != 0))) ++r;
  return r;
}

inline std::string grid_string(const TokenGrid& g) { return jepa::detail::cat(g.t, "x", g.h, "x", g.w); }
inline std::string range_string(const Range& r) { return jepa::detail::cat("[", r.lo, ", ", r.hi, "]"); }

/// A scale range must satisfy 0 < lo ≤ hi ≤ 1 (a fraction of the grid).
inline void check_scale(const std::string& field, const Range& r) {
  check_field(r.lo > 0 && r.lo <= 1, field + ".lo", r.lo, "a scale is a fraction of the grid in (0, 1]");
  check_field(r.hi > 0 && r.hi <= 1, field + ".hi", r.hi, "a scale is a fraction of the grid in (0, 1]");
  check_field(r.lo <= r.hi, field, range_string(r), "lo must be <= hi");
}
/// An aspect-ratio range must satisfy 0 < lo ≤ hi (finite).
inline void check_aspect(const std::string& field, const Range& r) {
  check_field(r.lo > 0 && std::isfinite(r.lo), field + ".lo", r.lo, "an aspect ratio (h/w) must be > 0");
  check_field(r.hi > 0 && std::isfinite(r.hi), field + ".hi", r.hi, "an aspect ratio (h/w) must be > 0");
  check_field(r.lo <= r.hi, field, range_string(r), "lo must be <= hi");
}

inline void check_grid(const TokenGrid& g, const char* policy) {
  if (g.t < 1 || g.h < 1 || g.w < 1)
    throw ShapeError(jepa::detail::cat("jepa: TokenGrid = ", grid_string(g), " is invalid for ", policy,
                                       ": every extent must be >= 1"));
}
/// A sample index must stay below kBatchSample, the per-batch stream of mask_rng().
inline void check_batch(index_t batch, const char* policy) {
  if (batch < 1 || batch >= static_cast<index_t>(kBatchSample))
    throw ShapeError(jepa::detail::cat("jepa: batch = ", batch, " is invalid for ", policy, ": must be in [1, ",
                                       kBatchSample, ")"));
}
inline void check_sample(std::uint64_t sample, const char* policy) {
  if (sample >= kBatchSample)
    throw ShapeError(jepa::detail::cat("jepa: sample = ", sample, " is invalid for ", policy, ": must be < ",
                                       kBatchSample, " (the per-batch stream)"));
}

/// One attempt of the 3-D multi-block draw (Multiblock3d, below), shared by the CPU and the CUDA
/// kernel of jepa/backend/cuda/masks.cuh so both draw literally the same masks: masked (T·H·W bytes)
/// becomes the union of num_blocks boxes of size s — per box, from r in this order, top ~ U{0 … H−h},
/// left ~ U{0 … W−w}, start ~ U{0 … T−t} — plus every time step >= t_keep. Writes the boxes to
/// `blocks` when it is not null. Returns true when a context token (a 0 byte) remains.
JEPA_HOST_DEVICE inline bool multiblock3d_attempt(std::uint8_t* masked, index_t T, index_t H, index_t W,
                                                  const BlockSize& s, int num_blocks, index_t t_keep, Rng& r,
                                                  Block* blocks) {
  const index_t HW = H * W, N = T * HW;
  for (index_t n = 0; n < N; ++n) masked[n] = 0;
  for (int i = 0; i < num_blocks; ++i) {
    Block b;
    b.size = s;
    b.top = r.uniform_int(static_cast<std::uint32_t>(H - s.h + 1));
    b.left = r.uniform_int(static_cast<std::uint32_t>(W - s.w + 1));
    b.start = r.uniform_int(static_cast<std::uint32_t>(T - s.t + 1));
    for (index_t t = b.start; t < b.start + s.t; ++t)
      for (index_t y = b.top; y < b.top + s.h; ++y)
        for (index_t x = b.left; x < b.left + s.w; ++x) masked[t * HW + y * W + x] = 1;
    if (blocks) blocks[i] = b;
  }
  if (t_keep < T)
    for (index_t n = t_keep * HW; n < N; ++n) masked[n] = 1;
  for (index_t n = 0; n < N; ++n)
    if (!masked[n]) return true;
  return false;
}

/// The batch rule with explicit lengths: row b keeps the first Kc context and Kt target indices.
inline MaskBatch pack(const std::vector<MaskPair>& pairs, index_t Kc, index_t Kt) {
  MaskBatch mb;
  mb.batch = static_cast<index_t>(pairs.size());
  mb.context_len = Kc;
  mb.target_len = Kt;
  mb.context.reserve(static_cast<std::size_t>(mb.batch * Kc));
  mb.target.reserve(static_cast<std::size_t>(mb.batch * Kt));
  for (const auto& p : pairs) {
    mb.context.insert(mb.context.end(), p.context.begin(), p.context.begin() + Kc);
    mb.target.insert(mb.target.end(), p.target.begin(), p.target.begin() + Kt);
  }
  return mb;
}

}  // namespace detail

// =================================================================================================
// I-JEPA: 2-D multi-block (recipe_facts §3.1, pitfall 9.1.9).
// =================================================================================================

struct Multiblock2dConfig {
  int npred = 4;                   // target blocks per sample
  Range pred_scale{0.15, 0.2};     // target block area as a fraction of H'W'
  Range pred_aspect{0.75, 1.5};    // target block h/w
  Range enc_scale{0.85, 1.0};      // context block area as a fraction of H'W'
  Range enc_aspect{1.0, 1.0};      // context block h/w
  index_t min_keep = 10;           // a block is accepted only if it keeps > min_keep tokens
  bool allow_overlap = false;      // true: the context block is not carved by the target blocks
};

/// One sample's I-JEPA draw: the npred target blocks, the accepted context block, how many target
/// constraints the relaxation dropped, and the untruncated pair of every entry j.
struct Multiblock2dDraw {
  std::vector<Block> targets;
  Block context;
  int relaxed = 0;
  std::vector<MaskPair> pairs;  // entry j: {context minus block j, block j}
};

/// I-JEPA's multi-block mask.
///
/// Per batch (stream mask_rng(seed, step, kBatchSample, 0)):
///   u₁ → target size: scale s = pred_scale.at(u₁) and aspect a = pred_aspect.at(u₁) — ONE draw sets
///        both, they are coupled;
///   u₂ → context size: scale enc_scale.at(u₂), aspect enc_aspect.at(u₂) (1 by default).
///   Sides by block_size(): k = int(H'W'·s), h = round(√(k·a)), w = round(√(k/a)), then h decremented
///   while h ≥ H' and w while w ≥ W'.
/// Per sample b (stream mask_rng(seed, step, b, 0)):
///   npred target blocks, each top ~ U{0 … H'−h−1}, left ~ U{0 … W'−w−1} (exclusive upper bound: a
///   block never touches the bottom or right edge);
///   then the context block, placed the same way and multiplied by the complements of the first
///   max(npred − tries, 0) target blocks (all of them at first; none if allow_overlap). It is accepted
///   when it keeps > min_keep tokens; after every 20 rejections `tries` grows by one, i.e. the last
///   remaining target constraint is dropped.
///
/// Output layout: I-JEPA replicates the batch once per target block and runs the predictor on each
/// copy with the shared context. sample() therefore returns npred MaskBatch entries
/// (num_generators() = npred): entry j has the same context for every j and target = block j, so a
/// composed model runs the predictor once per target block on the shared context. Targets are full
/// h×w blocks, so every target row has h·w·T' tokens; context rows are truncated to the minimum over
/// the batch and over the entries. MaskBatch sets must be disjoint (validate()), so where the recipe
/// lets the context overlap a target — allow_overlap, or a dropped constraint — entry j's context
/// additionally excludes block j (then, and only then, the entries' contexts differ).
///
/// Grids with T' > 1: the 2-D mask is applied to every time step alike (blocks span all time);
/// min_keep counts 2-D positions, as in the recipe.
class Multiblock2d {
 public:
  /// All entries share one context (I-JEPA): a composed model runs the encoder once and the predictor
  /// once per target block.
  static constexpr bool shared_context = true;
  using Config = Multiblock2dConfig;
  static constexpr int kTimeout = 20;  // rejections before a constraint is dropped (recipe)

  explicit Multiblock2d(Config c = {}) : c_(c) {
    check_field(c_.npred >= 1, "Multiblock2d.npred", c_.npred, "needs at least 1 target block");
    detail::check_scale("Multiblock2d.pred_scale", c_.pred_scale);
    detail::check_aspect("Multiblock2d.pred_aspect", c_.pred_aspect);
    detail::check_scale("Multiblock2d.enc_scale", c_.enc_scale);
    detail::check_aspect("Multiblock2d.enc_aspect", c_.enc_aspect);
    check_field(c_.min_keep >= 0, "Multiblock2d.min_keep", c_.min_keep, "must be >= 0");
  }
  /// The I-JEPA configuration (all four released configs).
  static Multiblock2d ijepa() { return Multiblock2d(Config{}); }

  const Config& config() const { return c_; }
  int num_generators() const { return c_.npred; }

  /// I-JEPA block sides for scale s and aspect a on grid (t = grid.t: the block spans all time).
  static BlockSize block_size(const TokenGrid& grid, double scale, double aspect) {
    const index_t k = static_cast<index_t>(static_cast<double>(grid.h * grid.w) * scale);
    index_t h = detail::round_half_even(std::sqrt(static_cast<double>(k) * aspect));
    index_t w = detail::round_half_even(std::sqrt(static_cast<double>(k) / aspect));
    // The recipe's `while h >= H': h -= 1` is h = min(h, H' − 1).
    return {grid.t, std::min(h, grid.h - 1), std::min(w, grid.w - 1)};
  }
  /// The batch's target block size (first per-batch draw).
  BlockSize target_block_size(const TokenGrid& grid, std::uint64_t seed, std::uint64_t step) const {
    Rng r = mask_rng(seed, step, kBatchSample, 0);
    const double u = r.uniform();
    return block_size(grid, c_.pred_scale.at(u), c_.pred_aspect.at(u));
  }
  /// The batch's context block size (second per-batch draw).
  BlockSize context_block_size(const TokenGrid& grid, std::uint64_t seed, std::uint64_t step) const {
    Rng r = mask_rng(seed, step, kBatchSample, 0);
    (void)r.uniform();
    const double u = r.uniform();
    return block_size(grid, c_.enc_scale.at(u), c_.enc_aspect.at(u));
  }

  /// The blocks and untruncated pairs of sample `sample` (independent of the batch size).
  Multiblock2dDraw sample_blocks(const TokenGrid& grid, std::uint64_t seed, std::uint64_t step,
                                 std::uint64_t sample) const {
    detail::check_sample(sample, "Multiblock2d");
    detail::check_grid(grid, "Multiblock2d");
    const BlockSize ts = target_block_size(grid, seed, step), cs = context_block_size(grid, seed, step);
    check_sizes(grid, ts, cs);
    Rng r = mask_rng(seed, step, sample, 0);
    return draw(grid, ts, cs, r);
  }
  /// Untruncated pair of entry j (target block j) of sample `sample`.
  MaskPair sample_pair(const TokenGrid& grid, std::uint64_t seed, std::uint64_t step, std::uint64_t sample,
                       int entry) const {
    check_field<IndexError>(entry >= 0 && entry < c_.npred, "Multiblock2d entry", entry,
                            "must be in [0, npred)");
    return sample_blocks(grid, seed, step, sample).pairs[static_cast<std::size_t>(entry)];
  }

  std::vector<MaskBatch> sample(const TokenGrid& grid, std::uint64_t seed, std::uint64_t step, index_t batch) const {
    return sample_rows(grid, seed, step, 0, batch, {});
  }
  /// Rows [first, first + count) of sample(grid, seed, step, B) (mask.hpp, data-parallel drawing).
  std::vector<MaskBatch> sample_rows(const TokenGrid& grid, std::uint64_t seed, std::uint64_t step, index_t first,
                                     index_t count, const BatchMin& batch_min) const {
    detail::check_batch(count, "Multiblock2d");
    detail::check_batch(first + count, "Multiblock2d");
    detail::check_grid(grid, "Multiblock2d");
    const BlockSize ts = target_block_size(grid, seed, step), cs = context_block_size(grid, seed, step);
    check_sizes(grid, ts, cs);
    const auto J = static_cast<std::size_t>(c_.npred);
    std::vector<std::vector<MaskPair>> per_entry(J, std::vector<MaskPair>(static_cast<std::size_t>(count)));
    index_t Kc = grid.size(), Kt = grid.size();
    for (index_t b = 0; b < count; ++b) {
      Rng r = mask_rng(seed, step, static_cast<std::uint64_t>(first + b), 0);
      Multiblock2dDraw d = draw(grid, ts, cs, r);
      for (std::size_t j = 0; j < J; ++j) {
        Kc = std::min<index_t>(Kc, static_cast<index_t>(d.pairs[j].context.size()));
        Kt = std::min<index_t>(Kt, static_cast<index_t>(d.pairs[j].target.size()));
        per_entry[j][static_cast<std::size_t>(b)] = std::move(d.pairs[j]);
      }
    }
    if (batch_min) {
      std::vector<index_t> len{Kc, Kt};
      batch_min(len);
      Kc = len[0], Kt = len[1];
    }
    std::vector<MaskBatch> out;
    out.reserve(J);
    for (std::size_t j = 0; j < J; ++j) out.push_back(detail::pack(per_entry[j], Kc, Kt));
    return out;
  }

 private:
  /// Rejects sizes the recipe cannot place (it would loop forever or build empty blocks).
  void check_sizes(const TokenGrid& grid, const BlockSize& ts, const BlockSize& cs) const {
    detail::check_grid(grid, "Multiblock2d");
    if (grid.h < 2 || grid.w < 2)
      throw ShapeError(jepa::detail::cat("jepa: TokenGrid = ", detail::grid_string(grid),
                                         " is invalid for Multiblock2d: blocks are placed with top < H'-h and "
                                         "left < W'-w, so H' and W' must be >= 2"));
    const std::string g = detail::grid_string(grid);
    if (ts.h < 1 || ts.w < 1)
      fail_field("Multiblock2d.pred_scale", detail::range_string(c_.pred_scale),
                 jepa::detail::cat("on the ", g, " token grid it gives a ", ts.h, "x", ts.w,
                                   " target block (no token); use a larger scale or grid"));
    if (cs.h < 1 || cs.w < 1)
      fail_field("Multiblock2d.enc_scale", detail::range_string(c_.enc_scale),
                 jepa::detail::cat("on the ", g, " token grid it gives a ", cs.h, "x", cs.w,
                                   " context block (no token); use a larger scale or grid"));
    if (ts.area() <= c_.min_keep)
      fail_field("Multiblock2d.min_keep", c_.min_keep,
                 jepa::detail::cat("on the ", g, " token grid the target blocks are ", ts.h, "x", ts.w, " = ",
                                   ts.area(), " tokens, and a block must keep > min_keep tokens"));
    if (cs.area() <= c_.min_keep)
      fail_field("Multiblock2d.min_keep", c_.min_keep,
                 jepa::detail::cat("on the ", g, " token grid the context block is ", cs.h, "x", cs.w, " = ",
                                   cs.area(), " tokens, and a block must keep > min_keep tokens"));
  }

  Multiblock2dDraw draw(const TokenGrid& grid, const BlockSize& ts, const BlockSize& cs, Rng& r) const {
    const index_t H = grid.h, W = grid.w, HW = H * W;
    const int J = c_.npred;
    Multiblock2dDraw d;
    d.targets.resize(static_cast<std::size_t>(J));
    // in_target[j][p] = 1 iff 2-D position p = y·W' + x lies in target block j.
    std::vector<std::vector<std::uint8_t>> in_target(static_cast<std::size_t>(J), std::vector<std::uint8_t>(HW));
    for (int j = 0; j < J; ++j) {
      Block& blk = d.targets[static_cast<std::size_t>(j)];
      blk.size = ts;
      blk.top = r.uniform_int(static_cast<std::uint32_t>(H - ts.h));
      blk.left = r.uniform_int(static_cast<std::uint32_t>(W - ts.w));
      for (index_t y = blk.top; y < blk.top + ts.h; ++y)
        for (index_t x = blk.left; x < blk.left + ts.w; ++x) in_target[static_cast<std::size_t>(j)][y * W + x] = 1;
    }
    // Context block with the recipe's rejection loop. The extra condition (every entry keeps a
    // context token after removing its own block) only matters once a constraint is dropped.
    const int cap = kTimeout * J + 100 * kTimeout;
    std::vector<std::uint8_t> keep(HW);
    int tries = 0, timeout = kTimeout;
    for (int attempt = 0;; ++attempt) {
      if (attempt == cap)
        fail_field("Multiblock2d.enc_scale", detail::range_string(c_.enc_scale),
                   jepa::detail::cat("on the ", detail::grid_string(grid), " token grid no ", cs.h, "x", cs.w,
                                     " context block keeps a token outside every ", ts.h, "x", ts.w,
                                     " target block (", cap, " draws)"));
      Block& cb = d.context;
      cb.size = cs;
      cb.top = r.uniform_int(static_cast<std::uint32_t>(H - cs.h));
      cb.left = r.uniform_int(static_cast<std::uint32_t>(W - cs.w));
      const int constrained = c_.allow_overlap ? 0 : std::max(J - tries, 0);
      std::fill(keep.begin(), keep.end(), 0);
      index_t kept = 0;
      for (index_t y = cb.top; y < cb.top + cs.h; ++y)
        for (index_t x = cb.left; x < cb.left + cs.w; ++x) {
          bool ok = true;
          for (int j = 0; j < constrained && ok; ++j) ok = !in_target[static_cast<std::size_t>(j)][y * W + x];
          if (ok) {
            keep[y * W + x] = 1;
            ++kept;
          }
        }
      bool valid = kept > c_.min_keep;
      for (int j = constrained; j < J && valid; ++j) {
        bool any = false;
        for (index_t p = 0; p < HW && !any; ++p) any = keep[p] && !in_target[static_cast<std::size_t>(j)][p];
        valid = any;
      }
      if (valid) break;
      if (--timeout == 0) {
        ++tries;
        timeout = kTimeout;
      }
    }
    d.relaxed = std::min(tries, J);
    // Entries: both sets replicated over all T' time steps, ascending.
    d.pairs.resize(static_cast<std::size_t>(J));
    for (int j = 0; j < J; ++j) {
      MaskPair& p = d.pairs[static_cast<std::size_t>(j)];
      const auto& tj = in_target[static_cast<std::size_t>(j)];
      for (index_t t = 0; t < grid.t; ++t)
        for (index_t q = 0; q < HW; ++q) {
          if (tj[q]) p.target.push_back(t * HW + q);
          else if (keep[q]) p.context.push_back(t * HW + q);
        }
    }
    return d;
  }

  Config c_;
};

// =================================================================================================
// V-JEPA / V-JEPA 2 / 2.1: 3-D multi-block (recipe_facts §3.2–3.3).
// =================================================================================================

/// One mask generator of the 3-D multi-block policy (one row of the recipe's mask config).
struct BlockGenerator {
  int num_blocks = 8;                 // blocks per sample; the masked set is their union
  Range spatial_scale{0.15, 0.15};    // block area per time step as a fraction of H'W'
  Range temporal_scale{1.0, 1.0};     // block duration as a fraction of T'
  Range aspect{0.75, 1.5};            // block h/w
  double max_temporal_keep = 1.0;     // < 1: time steps >= max(1, int(T'·ratio)) leave the context
  index_t max_keep = 0;               // > 0: context rows are also truncated to max_keep (0 = none)
  bool full_complement = false;       // target = exact complement of the truncated context
};

/// One sample's 3-D draw for one generator: the accepted blocks, the number of redraws caused by an
/// empty context, and the untruncated pair.
struct Multiblock3dDraw {
  std::vector<Block> blocks;
  int redraws = 0;
  MaskPair pair;
};

/// V-JEPA's 3-D multi-block mask: one MaskBatch per generator.
///
/// Per batch and generator: three uniforms u_τ, u_σ, u_a give
///   t = max(1, int(T'·τ)),  k = int(H'W'·σ),  a = aspect.at(u_a),
///   h = min(round(√(k·a)), H'),  w = min(round(√(k/a)), W')            (block_size()).
/// The recipe seeds each generator's torch Generator with its own step counter; the counters advance
/// in lock-step, so all generators use the SAME seed each step and their u_τ, u_σ, u_a coincide (the
/// short- and long-range blocks of a batch share one aspect ratio). This is reproduced by reading the
/// sizes of every generator from the same stream mask_rng(seed, step, kBatchSample, 0), restarted for
/// each generator.
/// Per sample b and generator g (stream mask_rng(seed, step, b, g)), per block:
///   top ~ U{0 … H'−h}, left ~ U{0 … W'−w}, start ~ U{0 … T'−t} (inclusive);
///   masked = union of the num_blocks t×h×w boxes (plus every time step ≥ max(1, int(T'·max_temporal_keep))
///   when that ratio is < 1); context = complement, target = masked. An empty context redraws all
///   blocks of the sample (at most kMaxRedraws times, then a ConfigError).
/// Per generator: context rows are truncated to the batch minimum (and to max_keep when > 0), target
/// rows to their batch minimum; with full_complement the target becomes the exact complement of the
/// truncated context (so truncated context tokens are predicted).
class Multiblock3d {
 public:
  static constexpr int kMaxGenerators = 16;  // mask_rng() keeps 4 bits for the generator
  static constexpr int kMaxRedraws = 1000;

  explicit Multiblock3d(std::vector<BlockGenerator> generators) : g_(std::move(generators)) {
    check_field(!g_.empty(), "Multiblock3d.generators", "{}", "needs at least one generator");
    check_field(g_.size() <= static_cast<std::size_t>(kMaxGenerators), "Multiblock3d.generators", g_.size(),
                "at most 16 generators (mask_rng keeps 4 bits for the generator index)");
    for (std::size_t i = 0; i < g_.size(); ++i) {
      const BlockGenerator& g = g_[i];
      const std::string f = jepa::detail::cat("Multiblock3d.generators[", i, "]");
      check_field(g.num_blocks >= 1, f + ".num_blocks", g.num_blocks, "needs at least 1 block");
      detail::check_scale(f + ".spatial_scale", g.spatial_scale);
      detail::check_scale(f + ".temporal_scale", g.temporal_scale);
      detail::check_aspect(f + ".aspect", g.aspect);
      check_field(g.max_temporal_keep > 0 && g.max_temporal_keep <= 1, f + ".max_temporal_keep",
                  g.max_temporal_keep, "a fraction of T' in (0, 1]");
      check_field(g.max_keep >= 0, f + ".max_keep", g.max_keep, "must be >= 0 (0 = no limit)");
    }
  }

  /// V-JEPA, V-JEPA 2 and V-JEPA 2.1 video: short-range 8 × 0.15 and long-range 2 × 0.7, temporal
  /// scale 1, aspect [0.75, 1.5].
  static Multiblock3d vjepa() {
    BlockGenerator s{}, l{};
    s.num_blocks = 8;
    s.spatial_scale = {0.15, 0.15};
    l.num_blocks = 2;
    l.spatial_scale = {0.7, 0.7};
    return Multiblock3d({s, l});
  }
  /// V-JEPA 2.1 images (grid 1×H'×W'): one generator, 10 blocks × 0.15.
  static Multiblock3d vjepa21_image() {
    BlockGenerator g{};
    g.num_blocks = 10;
    g.spatial_scale = {0.15, 0.15};
    return Multiblock3d({g});
  }

  const std::vector<BlockGenerator>& generators() const { return g_; }
  int num_generators() const { return static_cast<int>(g_.size()); }

  /// V-JEPA block size for temporal fraction τ, spatial fraction σ and aspect a on grid.
  static BlockSize block_size(const TokenGrid& grid, double temporal, double spatial, double aspect) {
    const index_t t = std::max<index_t>(1, static_cast<index_t>(static_cast<double>(grid.t) * temporal));
    const index_t k = static_cast<index_t>(static_cast<double>(grid.h * grid.w) * spatial);
    const index_t h = detail::round_half_even(std::sqrt(static_cast<double>(k) * aspect));
    const index_t w = detail::round_half_even(std::sqrt(static_cast<double>(k) / aspect));
    return {t, std::min(h, grid.h), std::min(w, grid.w)};
  }
  /// Generator g's block size for the batch at (seed, step).
  BlockSize batch_block_size(const TokenGrid& grid, std::uint64_t seed, std::uint64_t step, int generator) const {
    const BlockGenerator& g = gen(generator);
    Rng r = mask_rng(seed, step, kBatchSample, 0);  // same stream for every generator (lock-step seeds)
    const double ut = r.uniform();
    const double us = r.uniform();
    const double ua = r.uniform();
    return block_size(grid, g.temporal_scale.at(ut), g.spatial_scale.at(us), g.aspect.at(ua));
  }

  /// Generator g's block size for the batch at (seed, step), after the checks sample() makes (throws
  /// ConfigError for a size that cannot be drawn): what a device draw (backend/cuda/masks.cuh) takes.
  BlockSize checked_block_size(const TokenGrid& grid, std::uint64_t seed, std::uint64_t step, int generator) const {
    detail::check_grid(grid, "Multiblock3d");
    const BlockSize s = batch_block_size(grid, seed, step, generator);
    check_size(grid, s, generator);
    return s;
  }
  /// The time steps [0, t_keep) that may hold context for generator g (max_temporal_keep).
  index_t temporal_keep(const TokenGrid& grid, int generator) const {
    return std::max<index_t>(1, static_cast<index_t>(static_cast<double>(grid.t) * gen(generator).max_temporal_keep));
  }

  /// The blocks and untruncated pair of sample `sample` for generator g (independent of the batch size).
  Multiblock3dDraw sample_blocks(const TokenGrid& grid, std::uint64_t seed, std::uint64_t step, std::uint64_t sample,
                                 int generator) const {
    detail::check_sample(sample, "Multiblock3d");
    detail::check_grid(grid, "Multiblock3d");
    const BlockSize s = batch_block_size(grid, seed, step, generator);
    check_size(grid, s, generator);
    Rng r = mask_rng(seed, step, sample, static_cast<std::uint64_t>(generator));
    return draw(grid, s, generator, r);
  }
  MaskPair sample_pair(const TokenGrid& grid, std::uint64_t seed, std::uint64_t step, std::uint64_t sample,
                       int generator) const {
    return sample_blocks(grid, seed, step, sample, generator).pair;
  }

  std::vector<MaskBatch> sample(const TokenGrid& grid, std::uint64_t seed, std::uint64_t step, index_t batch) const {
    return sample_rows(grid, seed, step, 0, batch, {});
  }
  /// Rows [first, first + count) of sample(grid, seed, step, B) (mask.hpp, data-parallel drawing).
  std::vector<MaskBatch> sample_rows(const TokenGrid& grid, std::uint64_t seed, std::uint64_t step, index_t first,
                                     index_t count, const BatchMin& batch_min) const {
    detail::check_batch(count, "Multiblock3d");
    detail::check_batch(first + count, "Multiblock3d");
    detail::check_grid(grid, "Multiblock3d");
    const auto G = g_.size();
    std::vector<std::vector<MaskPair>> pairs(G);
    std::vector<index_t> len(2 * G, grid.size());  // per generator: Kc, Kt (minima over the rows)
    for (int gi = 0; gi < num_generators(); ++gi) {
      const BlockSize s = batch_block_size(grid, seed, step, gi);
      check_size(grid, s, gi);
      auto& ps = pairs[static_cast<std::size_t>(gi)];
      ps.resize(static_cast<std::size_t>(count));
      index_t& Kc = len[2 * static_cast<std::size_t>(gi)];
      index_t& Kt = len[2 * static_cast<std::size_t>(gi) + 1];
      for (index_t b = 0; b < count; ++b) {
        Rng r = mask_rng(seed, step, static_cast<std::uint64_t>(first + b), static_cast<std::uint64_t>(gi));
        MaskPair& p = ps[static_cast<std::size_t>(b)];
        p = draw(grid, s, gi, r).pair;
        Kc = std::min<index_t>(Kc, static_cast<index_t>(p.context.size()));
        Kt = std::min<index_t>(Kt, static_cast<index_t>(p.target.size()));
      }
    }
    if (batch_min) batch_min(len);
    std::vector<MaskBatch> out;
    out.reserve(G);
    for (std::size_t gi = 0; gi < G; ++gi) {
      const BlockGenerator& g = g_[gi];
      auto& ps = pairs[gi];
      index_t Kc = len[2 * gi], Kt = len[2 * gi + 1];
      if (g.max_keep > 0) Kc = std::min(Kc, g.max_keep);
      if (g.full_complement) {
        // target := {0 … N−1} \ (truncated context); every row then has N − Kc tokens.
        std::vector<std::uint8_t> in_ctx(static_cast<std::size_t>(grid.size()));
        for (auto& p : ps) {
          std::fill(in_ctx.begin(), in_ctx.end(), 0);
          for (index_t k = 0; k < Kc; ++k) in_ctx[static_cast<std::size_t>(p.context[k])] = 1;
          p.target.clear();
          for (index_t n = 0; n < grid.size(); ++n)
            if (!in_ctx[static_cast<std::size_t>(n)]) p.target.push_back(n);
        }
        Kt = grid.size() - Kc;
      }
      out.push_back(detail::pack(ps, Kc, Kt));
    }
    return out;
  }

 private:
  const BlockGenerator& gen(int g) const {
    check_field<IndexError>(g >= 0 && g < num_generators(), "Multiblock3d generator", g,
                            jepa::detail::cat("must be in [0, ", num_generators(), ")"));
    return g_[static_cast<std::size_t>(g)];
  }

  void check_size(const TokenGrid& grid, const BlockSize& s, int gi) const {
    detail::check_grid(grid, "Multiblock3d");
    const BlockGenerator& g = g_[static_cast<std::size_t>(gi)];
    const std::string f = jepa::detail::cat("Multiblock3d.generators[", gi, "]");
    if (s.h < 1 || s.w < 1)
      fail_field(f + ".spatial_scale", detail::range_string(g.spatial_scale),
                 jepa::detail::cat("on the ", detail::grid_string(grid), " token grid it gives a ", s.h, "x", s.w,
                                   " block (no token, k = int(H'W'*scale) too small); use a larger scale or grid"));
    if (s.t == grid.t && s.h == grid.h && s.w == grid.w)
      fail_field(f + ".spatial_scale", detail::range_string(g.spatial_scale),
                 jepa::detail::cat("each block is ", s.t, "x", s.h, "x", s.w, ", so the blocks cover the whole ",
                                   detail::grid_string(grid), " token grid and leave no context token"));
  }

  Multiblock3dDraw draw(const TokenGrid& grid, const BlockSize& s, int gi, Rng& r) const {
    const BlockGenerator& g = g_[static_cast<std::size_t>(gi)];
    const index_t T = grid.t, H = grid.h, W = grid.w, N = grid.size();
    const index_t t_keep = temporal_keep(grid, gi);
    Multiblock3dDraw d;
    d.blocks.resize(static_cast<std::size_t>(g.num_blocks));
    std::vector<std::uint8_t> masked(static_cast<std::size_t>(N));
    for (;; ++d.redraws) {
      if (d.redraws == kMaxRedraws)
        fail_field(jepa::detail::cat("Multiblock3d.generators[", gi, "]"),
                   jepa::detail::cat("{num_blocks ", g.num_blocks, ", block ", s.t, "x", s.h, "x", s.w, "}"),
                   jepa::detail::cat("the blocks cover the whole ", detail::grid_string(grid),
                                     " token grid (no context token left after ", kMaxRedraws,
                                     " redraws); use fewer or smaller blocks or a larger grid"));
      if (detail::multiblock3d_attempt(masked.data(), T, H, W, s, g.num_blocks, t_keep, r, d.blocks.data())) break;
    }
    for (index_t n = 0; n < N; ++n) (masked[static_cast<std::size_t>(n)] ? d.pair.target : d.pair.context).push_back(n);
    return d;
  }

  std::vector<BlockGenerator> g_;
};

}  // namespace jepa::masking
