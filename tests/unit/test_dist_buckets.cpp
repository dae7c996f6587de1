// Data-parallel gradient buckets, without MPI (jepa/nn/grad_ready.hpp, jepa/dist/bucket_reducer.hpp):
// - every model's grad_walk() partitions its gradient buffer;
// - a backward walk with notifications computes bitwise the same gradients as one without, reports
//   exactly the grad_walk() ranges in that order (predictor, then encoder; last generator only), and
//   a range reported final is never written again by the walk (what makes the overlap safe);
// - bucketing is exact: with a simulated second rank, the bucketed reduction started during the walk
//   equals one reduction of the whole buffers, bitwise, for any bucket size; buckets start in walk
//   order whatever order ranges are reported in; every element is reduced exactly once;
// - masks drawn by shards (sample_rows, each shard its rows, lengths min-reduced over the shards) are
//   bitwise the rows of the whole batch's masks, for every built-in policy with sample_rows.
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <vector>

#include "jepa/data/synthetic_video.hpp"
#include "jepa/dist/bucket_reducer.hpp"
#include "jepa/masking/random_tube.hpp"
#include "jepa/models/jepa_presets.hpp"
#include "support/errors.hpp"

using namespace jepa;
namespace P = jepa::models::presets;

namespace {

/// A stand-in for a 2-rank group: the "other rank" holds peer(buffer, i) in every gradient element;
/// all_reduce_async records the message, wait_all adds the peer's values (in place, as MPI would).
struct TwinComm {
  struct Buf {
    float* base;
    std::size_t numel;
  };
  std::vector<Buf>* bufs = nullptr;
  std::vector<std::pair<float*, std::size_t>>* posted = nullptr;  // every message, in start order
  std::vector<std::pair<float*, std::size_t>> pending;
  int rank() const { return 0; }
  int size() const { return 2; }
  template <class T>
  void all_reduce(T*, std::size_t, dist::ReduceOp = dist::ReduceOp::sum) {}
  template <class T>
  void broadcast(T*, std::size_t, int) {}
  void barrier() {}
  template <class T>
  void all_reduce_async(T* p, std::size_t n) {
    if constexpr (std::is_same_v<T, float>) {
      pending.push_back({p, n});
      posted->push_back({p, n});
    }
  }
  void progress() {}
  void wait_all() {
    for (auto [p, n] : pending)
      for (std::size_t b = 0; b < bufs->size(); ++b) {
        const Buf& B = (*bufs)[b];
        if (p >= B.base && p < B.base + B.numel)
          for (std::size_t i = 0; i < n; ++i) p[i] += peer(b, static_cast<std::size_t>(p - B.base) + i);
      }
    pending.clear();
  }
  static float peer(std::size_t buffer, std::size_t i) {
    return static_cast<float>(1e-3 * std::sin(0.37 * static_cast<double>(i) + 1.3 * static_cast<double>(buffer)));
  }
};
static_assert(dist::Communicator<TwinComm>);

constexpr index_t kB = 2, kF = 4, kS = 64;

std::vector<float> clip_of(index_t frames, index_t size = kS) {
  std::vector<float> x(static_cast<std::size_t>(kB * 3 * frames * size * size));
  data::SyntheticVideo({frames, size, size, 2, 4, 5}).batch(0, kB, x.data());
  return x;
}

template <class Model>
void forward(Model& m, const std::vector<float>& x, index_t frames, index_t size = kS) {
  const TensorView<const float, 5> cv(x.data(), {kB, 3, frames, size, size});
  m.forward_loss(cv, 3, m.masking().sample(m.encoder().grid({frames, size, size}), 11, 3, kB));
}

bool same_bits(const nn::ParameterSet<float>& a, const nn::ParameterSet<float>& b) {
  return a.numel() == b.numel() && std::memcmp(a.data(), b.data(), a.numel() * sizeof(float)) == 0;
}

template <class Layoutish>
void check_partition(const std::vector<nn::ParamRange>& walk, const Layoutish& layout) {
  std::vector<int> hits(layout.numel(), 0);
  for (const auto& r : walk) {
    BOOST_TEST(r.begin <= r.end);
    BOOST_TEST(r.end <= layout.numel());
    for (std::size_t i = r.begin; i < r.end && i < hits.size(); ++i) ++hits[i];
  }
  std::size_t bad = 0;
  for (int h : hits) bad += h != 1;
  BOOST_TEST(bad == 0u, bad << " elements covered 0 or several times");
}

/// Runs backward with notifications that snapshot each reported range, and checks the contract.
template <class Model>
void check_walk(Model& plain, Model& hooked, index_t frames, index_t size) {
  const auto x = clip_of(frames, size);
  forward(plain, x, frames, size);
  plain.backward();
  forward(hooked, x, frames, size);
  struct Report {
    int buffer;
    nn::ParamRange r;
    std::vector<float> snapshot;
  };
  struct Rec {
    std::vector<Report> reports;
    float* base[2];
  } rec{{}, {hooked.encoder_grads().data(), hooked.predictor_grads().data()}};
  struct Port {
    Rec* rec;
    int buffer;
  } pe{&rec, 0}, pp{&rec, 1};
  auto fn = [](void* ctx, nn::ParamRange r) {
    auto* p = static_cast<Port*>(ctx);
    const float* g = p->rec->base[p->buffer];
    p->rec->reports.push_back({p->buffer, r, std::vector<float>(g + r.begin, g + r.end)});
  };
  hooked.backward(nn::GradReady{fn, &pe}, nn::GradReady{fn, &pp});

  BOOST_TEST(same_bits(plain.encoder_grads(), hooked.encoder_grads()), "notifications changed the encoder gradient");
  BOOST_TEST(same_bits(plain.predictor_grads(), hooked.predictor_grads()), "notifications changed the predictor gradient");
  std::vector<std::pair<int, nn::ParamRange>> want;
  for (const auto& r : hooked.predictor().grad_walk()) want.push_back({1, r});
  for (const auto& r : hooked.encoder().grad_walk()) want.push_back({0, r});
  BOOST_REQUIRE_EQUAL(rec.reports.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    BOOST_TEST(rec.reports[i].buffer == want[i].first, "report " << i);
    BOOST_TEST((rec.reports[i].r == want[i].second), "report " << i << " range [" << rec.reports[i].r.begin << ", "
                                                                << rec.reports[i].r.end << ")");
    const float* g = rec.base[rec.reports[i].buffer] + rec.reports[i].r.begin;
    BOOST_TEST(std::memcmp(g, rec.reports[i].snapshot.data(), rec.reports[i].r.size() * sizeof(float)) == 0,
               "range " << i << " was written after the walk reported it final");
  }
  check_partition(hooked.encoder().grad_walk(), hooked.encoder().layout());
  check_partition(hooked.predictor().grad_walk(), hooked.predictor().layout());
}

}  // namespace

BOOST_AUTO_TEST_CASE(grad_walk_partitions_every_layout) {
  check_partition(P::vjepa2<P::vit_micro>().encoder().grad_walk(), P::vjepa2<P::vit_micro>().encoder().layout());
  auto m21 = P::vjepa2_1<P::vit_micro>();
  check_partition(m21.encoder().grad_walk(), m21.encoder().layout());
  check_partition(m21.predictor().grad_walk(), m21.predictor().layout());
  auto mi = P::ijepa<P::vit_micro>();
  check_partition(mi.encoder().grad_walk(), mi.encoder().layout());
  check_partition(mi.predictor().grad_walk(), mi.predictor().layout());
  auto mv = P::vjepa<P::vit_micro>();
  check_partition(mv.predictor().grad_walk(), mv.predictor().layout());
  // 2.1: four taps, each reported right before its block; final norm first for V-JEPA 2.
  BOOST_TEST(m21.encoder().grad_walk().size() == static_cast<std::size_t>(decltype(m21)::encoder_type::depth +
                                                                           decltype(m21)::encoder_type::num_taps + 1));
}

BOOST_AUTO_TEST_CASE(notified_walk_is_bitwise_the_plain_walk_and_reports_final_ranges) {
  {  // V-JEPA 2.1: hierarchical taps, context loss, two generators
    auto a = P::vjepa2_1<P::vit_micro>(), b = P::vjepa2_1<P::vit_micro>();
    a.init(239), b.init(239);
    check_walk(a, b, kF, kS);
  }
  {  // I-JEPA: one shared context, four target blocks (the encoder walks once, after the predictors)
    auto a = P::ijepa<P::vit_micro>(), b = P::ijepa<P::vit_micro>();
    a.init(3), b.init(3);
    check_walk(a, b, 1, 168);  // Patch2d<14>: a 12x12 grid
  }
}

BOOST_AUTO_TEST_CASE(bucketed_reduction_equals_one_reduction_for_any_bucket_size) {
  // Reference: the gradient of one backward plus the simulated peer's, element by element.
  auto ref = P::vjepa2_1<P::vit_micro>();
  ref.init(239);
  const auto x = clip_of(kF);
  forward(ref, x, kF);
  ref.backward();
  for (std::size_t b = 0; b < 2; ++b) {
    auto& g = b == 0 ? ref.encoder_grads() : ref.predictor_grads();
    for (std::size_t i = 0; i < g.numel(); ++i) g.data()[i] += TwinComm::peer(b, i);
  }
  for (std::size_t bucket_bytes : {std::size_t{1}, std::size_t{4096}, std::size_t{64} << 10,
                                   std::numeric_limits<std::size_t>::max()}) {
    auto m = P::vjepa2_1<P::vit_micro>();
    m.init(239);
    using R = dist::BucketReducer<float, TwinComm>;
    std::vector<TwinComm::Buf> bufs{{m.encoder_grads().data(), m.encoder_grads().numel()},
                                    {m.predictor_grads().data(), m.predictor_grads().numel()}};
    std::vector<std::pair<float*, std::size_t>> posted;
    TwinComm comm{&bufs, &posted, {}};
    std::vector<R::Item> walk;
    for (const auto& r : m.predictor().grad_walk()) walk.push_back({1, r});
    for (const auto& r : m.encoder().grad_walk()) walk.push_back({0, r});
    R red({{bufs[0].base, bufs[0].numel}, {bufs[1].base, bufs[1].numel}}, walk, bucket_bytes);
    forward(m, x, kF);
    red.begin(comm);
    m.backward(red.hook(0), red.hook(1));
    const std::size_t early = red.stats().started_early;
    red.finish();
    BOOST_TEST_MESSAGE("bucket_bytes " << bucket_bytes << ": " << red.num_buckets() << " buckets, " << early
                                       << " started during the walk, " << posted.size() << " messages");
    BOOST_TEST(same_bits(m.encoder_grads(), ref.encoder_grads()), "bucket_bytes " << bucket_bytes);
    BOOST_TEST(same_bits(m.predictor_grads(), ref.predictor_grads()), "bucket_bytes " << bucket_bytes);
    BOOST_TEST(early == red.num_buckets(), "every bucket starts during the walk (the walk reports every range)");
    if (bucket_bytes == 1) BOOST_TEST(red.num_buckets() == walk.size());
    if (bucket_bytes == std::numeric_limits<std::size_t>::max()) {
      BOOST_TEST(red.num_buckets() == 1u);
      BOOST_TEST(posted.size() == 2u, "one bucket = one contiguous message per buffer");
    }
    // Every element travels exactly once.
    std::size_t elems = 0;
    for (auto [p, n] : posted) elems += n;
    BOOST_TEST(elems == bufs[0].numel + bufs[1].numel);
  }
}

BOOST_AUTO_TEST_CASE(buckets_start_in_walk_order_whatever_the_report_order) {
  std::vector<float> g(64, 1.0f);
  std::vector<TwinComm::Buf> bufs{{g.data(), 64}};
  std::vector<std::pair<float*, std::size_t>> posted;
  TwinComm comm{&bufs, &posted, {}};
  using R = dist::BucketReducer<float, TwinComm>;
  // Walk: [48,64) [32,48) [16,32) [0,16), one bucket each.
  std::vector<R::Item> walk{{0, {48, 64}}, {0, {32, 48}}, {0, {16, 32}}, {0, {0, 16}}};
  R red({{g.data(), 64}}, walk, 1);
  red.begin(comm);
  red.ready(0, {0, 16});
  red.ready(0, {16, 32});
  BOOST_TEST(posted.empty(), "bucket 0 is not final yet: nothing may start");
  red.ready(0, {48, 64});
  BOOST_REQUIRE_EQUAL(posted.size(), 1u);
  red.ready(0, {32, 48});  // completes bucket 1, and 2 and 3 were waiting behind it
  BOOST_REQUIRE_EQUAL(posted.size(), 4u);
  for (std::size_t k = 0; k < 4; ++k) BOOST_TEST(posted[k].first == g.data() + walk[k].range.begin);
  red.finish();
  BOOST_TEST(g[0] == 1.0f + TwinComm::peer(0, 0));
  // A rank whose walk never ran still starts every bucket, in the same order.
  posted.clear();
  red.begin(comm);
  red.finish();
  BOOST_REQUIRE_EQUAL(posted.size(), 4u);
  for (std::size_t k = 0; k < 4; ++k) BOOST_TEST(posted[k].first == g.data() + walk[k].range.begin);
  // Adjacent ranges in one bucket travel as one message.
  posted.clear();
  R one({{g.data(), 64}}, walk, 1 << 20);
  one.begin(comm);
  one.finish();
  BOOST_REQUIRE_EQUAL(posted.size(), 1u);
  BOOST_TEST(posted[0].first == g.data());
  BOOST_TEST(posted[0].second == 64u);
}

BOOST_AUTO_TEST_CASE(reducer_rejects_walks_that_do_not_partition_the_buffer) {
  std::vector<float> g(64);
  using R = dist::BucketReducer<float, TwinComm>;
  test::expect_error<ConfigError>([&] { R({{g.data(), 64}}, {{0, {0, 16}}, {0, {32, 64}}}, 1); },
                                  {"do not partition", "[32, 64)", "element 16"});
  test::expect_error<ConfigError>([&] { R({{g.data(), 64}}, {{0, {0, 48}}}, 1); }, {"cover [0, 48)", "64 elements"});
  R ok({{g.data(), 64}}, {{0, {0, 64}}}, 1);
  std::vector<TwinComm::Buf> bufs{{g.data(), 64}};
  std::vector<std::pair<float*, std::size_t>> posted;
  TwinComm comm{&bufs, &posted, {}};
  test::expect_error<ConfigError>([&] { ok.ready(0, {0, 64}); }, {"before begin()"});
  ok.begin(comm);
  test::expect_error<ConfigError>([&] { ok.ready(0, {0, 32}); }, {"[0, 32)", "not a range of the reducer's walk"});
  ok.finish();
}

namespace {
template <class Policy>
void check_sharded_masks(const Policy& policy, const nn::TokenGrid& grid, index_t B, index_t shards, const char* name) {
  static_assert(masking::RowSampling<Policy>);
  const auto whole = policy.sample(grid, 17, 9, B);
  const index_t rows = B / shards;
  // Phase 1: each shard's minima over its rows; their elementwise minimum is what an all-reduce gives.
  std::vector<index_t> global;
  for (index_t s = 0; s < shards; ++s)
    policy.sample_rows(grid, 17, 9, s * rows, rows, [&](std::vector<index_t>& len) {
      if (global.empty()) global = len;
      for (std::size_t i = 0; i < len.size(); ++i) global[i] = std::min(global[i], len[i]);
    });
  // Phase 2: each shard with the batch minima.
  for (index_t s = 0; s < shards; ++s) {
    int calls = 0;
    const auto part = policy.sample_rows(grid, 17, 9, s * rows, rows, [&](std::vector<index_t>& len) {
      ++calls;
      len = global;
    });
    BOOST_TEST(calls == 1, name << ": BatchMin must be called once");
    BOOST_REQUIRE_EQUAL(part.size(), whole.size());
    for (std::size_t j = 0; j < whole.size(); ++j) {
      const auto& w = whole[j];
      const auto& p = part[j];
      BOOST_TEST(p.batch == rows);
      BOOST_TEST(p.context_len == w.context_len, name << " generator " << j << " shard " << s);
      BOOST_TEST(p.target_len == w.target_len, name << " generator " << j << " shard " << s);
      const bool same_ctx = std::equal(p.context.begin(), p.context.end(), w.context.begin() + s * rows * w.context_len);
      const bool same_tgt = std::equal(p.target.begin(), p.target.end(), w.target.begin() + s * rows * w.target_len);
      BOOST_TEST(same_ctx, name << " generator " << j << " shard " << s << ": context rows differ");
      BOOST_TEST(same_tgt, name << " generator " << j << " shard " << s << ": target rows differ");
    }
  }
}
}  // namespace

BOOST_AUTO_TEST_CASE(sharded_masks_are_the_rows_of_the_whole_batch) {
  const nn::TokenGrid video{4, 8, 8}, image{1, 8, 8}, ij{1, 12, 12};
  check_sharded_masks(masking::Multiblock3d::vjepa(), video, 12, 3, "Multiblock3d::vjepa");
  check_sharded_masks(masking::Multiblock3d::vjepa21_image(), image, 8, 4, "Multiblock3d::vjepa21_image");
  masking::BlockGenerator g{};
  g.max_keep = 150, g.full_complement = true, g.max_temporal_keep = 0.5;
  check_sharded_masks(masking::Multiblock3d({g}), video, 6, 2, "Multiblock3d(max_keep, full_complement)");
  check_sharded_masks(masking::Multiblock2d::ijepa(), ij, 8, 2, "Multiblock2d::ijepa");
  check_sharded_masks(masking::RandomTube(0.75), video, 6, 3, "RandomTube");
  // One shard with no BatchMin is sample() itself.
  const auto a = masking::Multiblock3d::vjepa().sample(video, 1, 2, 4);
  const auto b = masking::Multiblock3d::vjepa().sample_rows(video, 1, 2, 0, 4, {});
  BOOST_TEST((a[1].context == b[1].context && a[1].target == b[1].target));
}
