// jepa/dist/bucket_reducer.hpp — gradient all-reduce in buckets that overlap with the backward pass.
//
// Data-parallel step: every rank computes the gradient of its shard, g_r; the step needs
//   g = Σ_r g_r                         (elementwise; the trainer divides by the number of parts)
// on every rank. Instead of one all-reduce after the backward pass, the gradient buffers are cut
// into buckets along the backward walk (jepa/nn/grad_ready.hpp): the walk reports each parameter
// range as soon as its gradient is final, and a bucket's all-reduce starts as soon as all its
// ranges are final — while the walk computes the blocks below it.
//
//   walk       the ranges (buffer, [begin, end)) in the order the backward finishes them; per buffer
//              they must partition [0, numel) exactly (checked at construction)
//   bucket k   consecutive walk ranges, at least `bucket_bytes` of them (the last one may be less);
//              its ranges travel as contiguous messages (sorted by address, adjacent ones merged)
//   order      buckets are started strictly in walk order, on every rank the same (the collective
//              order rule of MPI and NCCL), whatever order the ranges are reported in
//   finish()   starts every bucket not started yet (a rank whose backward never ran — a skipped
//              micro-batch, a failure — takes part in exactly the same collectives) and waits
//
// Exactness: each element is reduced once, by one all-reduce of the engine; cutting the buffers into
// buckets changes which message an element travels in, not the operands of its sum.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "jepa/core/error.hpp"
#include "jepa/dist/communicator.hpp"
#include "jepa/nn/grad_ready.hpp"

namespace jepa::dist {

/// Timings and counts of the last step (for benchmarks and logs).
struct ReducerStats {
  std::size_t buckets = 0;            // buckets per step
  std::size_t started_early = 0;      // of them, started during the backward walk (overlapped)
  double wait_seconds = 0;            // time finish() waited for the reductions to complete
};

template <class T, Communicator C>
class BucketReducer {
 public:
  /// One gradient buffer the walk indexes into.
  struct Buffer {
    T* data = nullptr;
    std::size_t numel = 0;
  };
  /// One walk entry: range `range` of buffer `buffer`.
  struct Item {
    std::size_t buffer = 0;
    nn::ParamRange range;
  };
  /// A contiguous message: elements [begin, end) of one buffer.
  struct Segment {
    std::size_t buffer = 0, begin = 0, end = 0;
  };

  BucketReducer(std::vector<Buffer> buffers, std::vector<Item> walk, std::size_t bucket_bytes)
      : buffers_(std::move(buffers)), walk_(std::move(walk)) {
    check_field(!walk_.empty(), "BucketReducer walk", "{}", "needs at least one gradient range");
    check_field(bucket_bytes >= 1, "bucket_bytes", bucket_bytes, "must be >= 1");
    check_partition();
    // Buckets: consecutive walk items until at least bucket_bytes.
    bucket_of_.resize(walk_.size());
    std::size_t bytes = 0;
    for (std::size_t i = 0; i < walk_.size(); ++i) {
      if (buckets_.empty() || bytes >= bucket_bytes) {
        buckets_.push_back({});
        bytes = 0;
      }
      Bucket& b = buckets_.back();
      const Item& it = walk_[i];
      bucket_of_[i] = buckets_.size() - 1;
      ++b.items;
      bytes += it.range.size() * sizeof(T);
      if (it.range.size() > 0) b.segments.push_back({it.buffer, it.range.begin, it.range.end});
    }
    // A bucket starts all at once: its ranges travel as few contiguous messages as possible (sorted
    // by buffer and address, adjacent ones merged; the same on every rank).
    for (Bucket& b : buckets_) {
      std::sort(b.segments.begin(), b.segments.end(), [](const Segment& x, const Segment& y) {
        return x.buffer != y.buffer ? x.buffer < y.buffer : x.begin < y.begin;
      });
      std::vector<Segment> merged;
      for (const Segment& s : b.segments) {
        if (!merged.empty() && merged.back().buffer == s.buffer && merged.back().end == s.begin) merged.back().end = s.end;
        else merged.push_back(s);
      }
      b.segments = std::move(merged);
    }
    ports_.resize(buffers_.size());
    for (std::size_t k = 0; k < buffers_.size(); ++k) ports_[k] = {this, k};
    ready_.assign(walk_.size(), 0);
  }

  // The walk's notifications point at this object: it stays where it was built.
  BucketReducer(const BucketReducer&) = delete;
  BucketReducer& operator=(const BucketReducer&) = delete;

  std::size_t num_buckets() const { return buckets_.size(); }
  /// The messages of bucket k (for tests and logs).
  const std::vector<Segment>& segments(std::size_t k) const { return buckets_.at(k).segments; }
  const ReducerStats& stats() const { return stats_; }

  /// Arms a step: nothing is reduced yet; `comm` must outlive finish().
  void begin(C& comm) {
    comm_ = &comm;
    std::fill(ready_.begin(), ready_.end(), 0);
    for (auto& b : buckets_) b.pending = b.items;
    next_ = 0;
    stats_ = {buckets_.size(), 0, 0.0};
  }

  /// The notification to pass to the backward walk that writes buffer k.
  nn::GradReady hook(std::size_t buffer) {
    check_field<IndexError>(buffer < buffers_.size(), "BucketReducer buffer", buffer,
                            jepa::detail::cat("must be < ", buffers_.size()));
    return {&BucketReducer::on_ready, &ports_[buffer]};
  }

  /// Range r of buffer k is final: starts every bucket that is complete and next in order.
  void ready(std::size_t buffer, nn::ParamRange r) {
    if (!comm_) throw ConfigError("jepa: BucketReducer::ready before begin(): arm the reducer for the step first");
    const std::size_t i = find(buffer, r);
    if (!ready_[i]) {
      ready_[i] = 1;
      --buckets_[bucket_of_[i]].pending;
    }
    std::size_t started = 0;
    while (next_ < buckets_.size() && buckets_[next_].pending == 0) start(next_++), ++started;
    stats_.started_early += started;
    comm_->progress();
  }

  /// Starts every bucket not started yet, in order, and waits for all of them.
  void finish() {
    if (!comm_) throw ConfigError("jepa: BucketReducer::finish before begin(): arm the reducer for the step first");
    C& comm = *comm_;
    comm_ = nullptr;
    while (next_ < buckets_.size()) start_on(comm, next_++);
    const auto t0 = std::chrono::steady_clock::now();
    comm.wait_all();
    stats_.wait_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }

 private:
  struct Bucket {
    std::vector<Segment> segments;
    std::size_t items = 0, pending = 0;
  };
  struct Port {
    BucketReducer* self = nullptr;
    std::size_t buffer = 0;
  };
  static void on_ready(void* ctx, nn::ParamRange r) {
    auto* p = static_cast<Port*>(ctx);
    p->self->ready(p->buffer, r);
  }

  void start(std::size_t k) { start_on(*comm_, k); }
  void start_on(C& comm, std::size_t k) {
    for (const Segment& s : buckets_[k].segments) comm.all_reduce_async(buffers_[s.buffer].data + s.begin, s.end - s.begin);
  }

  std::size_t find(std::size_t buffer, nn::ParamRange r) const {
    // Walk items are few (≈ 2 per block); the reports arrive in walk order, so search from the hint.
    for (std::size_t n = 0; n < walk_.size(); ++n) {
      const std::size_t i = (hint_ + n) % walk_.size();
      if (walk_[i].buffer == buffer && walk_[i].range == r) {
        hint_ = i + 1;
        return i;
      }
    }
    throw ConfigError(jepa::detail::cat("jepa: the backward walk reported gradient range [", r.begin, ", ", r.end,
                                        ") of buffer ", buffer, ", which is not a range of the reducer's walk "
                                        "(the model's grad_walk() and its backward disagree)"));
  }

  void check_partition() const {
    for (std::size_t k = 0; k < buffers_.size(); ++k) {
      std::vector<nn::ParamRange> rs;
      for (const Item& it : walk_) {
        check_field<IndexError>(it.buffer < buffers_.size(), "BucketReducer walk buffer", it.buffer,
                                jepa::detail::cat("must be < ", buffers_.size()));
        if (it.buffer == k) rs.push_back(it.range);
      }
      std::sort(rs.begin(), rs.end(), [](const nn::ParamRange& a, const nn::ParamRange& b) { return a.begin < b.begin; });
      std::size_t at = 0;
      for (const auto& r : rs) {
        if (r.begin != at || r.end < r.begin)
          throw ConfigError(jepa::detail::cat("jepa: the gradient ranges of buffer ", k, " do not partition [0, ",
                                              buffers_[k].numel, "): range [", r.begin, ", ", r.end, ") where element ",
                                              at, " was expected to start one"));
        at = r.end;
      }
      if (at != buffers_[k].numel)
        throw ConfigError(jepa::detail::cat("jepa: the gradient ranges of buffer ", k, " cover [0, ", at, ") of its ",
                                            buffers_[k].numel, " elements"));
    }
  }

  std::vector<Buffer> buffers_;
  std::vector<Item> walk_;
  std::vector<std::size_t> bucket_of_;
  std::vector<Bucket> buckets_;
  std::vector<Port> ports_;
  std::vector<char> ready_;
  std::size_t next_ = 0;
  mutable std::size_t hint_ = 0;
  C* comm_ = nullptr;
  ReducerStats stats_;
};

}  // namespace jepa::dist
