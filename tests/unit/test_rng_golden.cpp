// Golden outputs of the counter-based RNG (jepa/core/rng.hpp), mask_rng() and the V-JEPA 3-D
// multi-block masks (jepa/masking/multiblock.hpp), compiled by the host compiler from the same
// JEPA_HOST_DEVICE code the CUDA mask kernel (backend/cuda/masks.cuh) runs. The values were recorded
// from the implementation before the masking draw was shared with the device (commit 565a92e,
// headers compiled from `git archive`): any change to a Philox
// word, to the stream packing of mask_rng, or to the order of the draws inside one multi-block attempt
// changes them — and would silently change every mask and initialisation of a resumed run
// (DESIGN.md decision 11).
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <vector>

#include "jepa/core/rng.hpp"
#include "jepa/masking/multiblock.hpp"

using namespace jepa;

namespace {
/// FNV-1a over the 8 little-endian bytes of each value.
std::uint64_t fnv(std::uint64_t h, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) {
    h ^= (v >> (8 * i)) & 0xff;
    h *= 1099511628211ull;
  }
  return h;
}
struct RngGolden {
  std::uint64_t seed, stream, counter;
  std::uint32_t words[6];
  double uniform;       // the next uniform() after the six words
  std::uint32_t below;  // then uniform_int(1000)
};
}  // namespace

BOOST_AUTO_TEST_SUITE(rng_golden)

BOOST_AUTO_TEST_CASE(philox_words_uniforms_and_integers_are_unchanged) {
  const RngGolden cases[] = {
      {0, 0, 0, {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u, 0xf8e4cca4u, 0x5cb200dbu}, 0x1.634ae9d612fdfp-1, 633},
      {42, 7, 0, {0x67ee6f2cu, 0xe55410ccu, 0x6c7eca35u, 0x557398d3u, 0xe5dde940u, 0x600f6196u}, 0x1.1f9bf1e2591dbp-1, 894},
      {0xDEADBEEFCAFEull, 123456789ull, 5,
       {0x54655defu, 0xdcf2efd7u, 0x3dde6792u, 0x8746da34u, 0xe2c140f9u, 0xfb0f305cu}, 0x1.d225e38216e7cp-3, 202},
      {1, 0xFFFFFFFFFFull, 1ull << 33,
       {0x10a53c62u, 0xdcdce67cu, 0xd25f3536u, 0x0f2b1e51u, 0x4bf22f18u, 0xbc3b540eu}, 0x1.1378227d69038p-3, 987},
  };
  for (const auto& c : cases) {
    Rng r(c.seed, c.stream, c.counter);
    BOOST_TEST_CONTEXT("seed " << c.seed << " stream " << c.stream << " counter " << c.counter) {
      for (int i = 0; i < 6; ++i) BOOST_TEST(r.next_u32() == c.words[i]);
      BOOST_TEST(r.uniform() == c.uniform);  // exact: 53 bits of two words
      BOOST_TEST(r.uniform_int(1000) == c.below);
    }
  }
}

BOOST_AUTO_TEST_CASE(mask_rng_stream_packing_is_unchanged) {
  Rng r = masking::mask_rng(3, 17, 5, 1);
  const std::uint32_t want[4] = {0xb36e6034u, 0xa5b33d44u, 0x1b5af7e4u, 0x6182b7e3u};
  for (std::uint32_t w : want) BOOST_TEST(r.next_u32() == w);
}

BOOST_AUTO_TEST_CASE(vjepa_multiblock3d_masks_are_unchanged) {
  struct Case {
    std::uint64_t seed, step;
    nn::TokenGrid grid;
    index_t Kc0, Kt0, Kc1, Kt1;
    std::uint64_t hash;
  };
  const Case cases[] = {
      {0, 0, {8, 16, 16}, 624, 1088, 384, 1408, 0x4c0d67dfba84ad6bull},
      {0, 0, {4, 6, 10}, 56, 148, 72, 120, 0x86a7c34326a6787cull},
      {1, 5, {8, 16, 16}, 376, 1320, 280, 1560, 0xcc819544ee94c368ull},
      {1, 5, {4, 6, 10}, 84, 116, 24, 144, 0x9e94a14f8de2f682ull},
      {1234, 99, {8, 16, 16}, 568, 1304, 368, 1456, 0xebeade342af2ea59ull},
      {1234, 99, {4, 6, 10}, 48, 136, 72, 168, 0x80eb442b9a74e9ccull},
      {77, 100000, {8, 16, 16}, 600, 1072, 256, 1408, 0xa68cae93862d1af8ull},
      {77, 100000, {4, 6, 10}, 48, 152, 48, 120, 0x5b06ae9fb5a0feaeull},
  };
  const auto policy = masking::Multiblock3d::vjepa();
  for (const auto& c : cases) {
    const auto mbs = policy.sample(c.grid, c.seed, c.step, 4);
    BOOST_REQUIRE_EQUAL(mbs.size(), 2u);
    std::uint64_t h = 1469598103934665603ull;
    for (const auto& mb : mbs) {
      h = fnv(h, static_cast<std::uint64_t>(mb.context_len));
      h = fnv(h, static_cast<std::uint64_t>(mb.target_len));
      for (auto v : mb.context) h = fnv(h, static_cast<std::uint64_t>(v));
      for (auto v : mb.target) h = fnv(h, static_cast<std::uint64_t>(v));
    }
    BOOST_TEST_CONTEXT("seed " << c.seed << " step " << c.step << " grid " << c.grid.t << "x" << c.grid.h << "x"
                               << c.grid.w) {
      BOOST_TEST(mbs[0].context_len == c.Kc0);
      BOOST_TEST(mbs[0].target_len == c.Kt0);
      BOOST_TEST(mbs[1].context_len == c.Kc1);
      BOOST_TEST(mbs[1].target_len == c.Kt1);
      BOOST_TEST(h == c.hash);
    }
  }
}

/// The shared attempt function reproduces sample_blocks' blocks and pair when driven by hand.
BOOST_AUTO_TEST_CASE(multiblock3d_attempt_reproduces_the_policy_draw) {
  const auto policy = masking::Multiblock3d::vjepa();
  const nn::TokenGrid g{4, 6, 10};
  for (std::uint64_t sample = 0; sample < 6; ++sample)
    for (int gi = 0; gi < 2; ++gi) {
      const auto d = policy.sample_blocks(g, 9, 3, sample, gi);
      const masking::BlockSize s = policy.checked_block_size(g, 9, 3, gi);
      Rng r = masking::mask_rng(9, 3, sample, static_cast<std::uint64_t>(gi));
      std::vector<std::uint8_t> masked(static_cast<std::size_t>(g.size()));
      std::vector<masking::Block> blocks(static_cast<std::size_t>(policy.generators()[gi].num_blocks));
      int redraws = 0;
      while (!masking::detail::multiblock3d_attempt(masked.data(), g.t, g.h, g.w, s, static_cast<int>(blocks.size()),
                                                     policy.temporal_keep(g, gi), r, blocks.data()))
        ++redraws;
      BOOST_TEST(redraws == d.redraws);
      std::vector<std::int64_t> ctx, tgt;
      for (index_t n = 0; n < g.size(); ++n) (masked[static_cast<std::size_t>(n)] ? tgt : ctx).push_back(n);
      BOOST_TEST(ctx == d.pair.context);
      BOOST_TEST(tgt == d.pair.target);
      for (std::size_t i = 0; i < blocks.size(); ++i) {
        BOOST_TEST(blocks[i].top == d.blocks[i].top);
        BOOST_TEST(blocks[i].left == d.blocks[i].left);
        BOOST_TEST(blocks[i].start == d.blocks[i].start);
      }
    }
}

BOOST_AUTO_TEST_SUITE_END()
