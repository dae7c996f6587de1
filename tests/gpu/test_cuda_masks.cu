// Multi-block 3-D masks drawn on the device (backend/cuda/masks.cuh) against masking::Multiblock3d on
// the CPU: for several seeds, steps, grids and batch offsets, every row's untruncated context/target
// pair and the packed MaskBatch (batch rule, max_keep, full_complement, max_temporal_keep) must be
// identical bit for bit (DESIGN.md decision 11). Outputs are poisoned first.
#include "common.cuh"

#include <cstdint>
#include <vector>

#include "jepa/backend/cuda/masks.cuh"

namespace {
using namespace jepa::test::gpu;
using jepa::index_t;
namespace masking = jepa::masking;

struct DeviceDraw {
  index_t count, N;
  cu::DeviceBuffer<std::uint8_t> masked;
  cu::DeviceBuffer<std::int64_t> context, target, packed_context, packed_target, packed_lengths;
  cu::DeviceBuffer<std::int32_t> lengths;
  cu::DeviceBuffer<int> failed;
  DeviceDraw(index_t c, index_t n)
      : count(c), N(n), masked(c * n), context(c * n), target(c * n), packed_context(c * n), packed_target(c * n),
        packed_lengths(2), lengths(2 * c), failed(1) {
    poison(context.data(), c * n);
    poison(target.data(), c * n);
    poison(packed_context.data(), c * n);
    poison(packed_target.data(), c * n);
    poison(packed_lengths.data(), 2);
    JEPA_CUDA_CHECK(cudaMemset(failed.data(), 0, sizeof(int)));
    JEPA_CUDA_CHECK(cudaDeviceSynchronize());
  }
  cu::Multiblock3dBuffers buffers() {
    return {masked.data(), context.data(), target.data(), lengths.data(), failed.data(),
            packed_context.data(), packed_target.data(), packed_lengths.data()};
  }
};

/// Draws on the device and compares with the CPU policy; returns the number of mismatching rows.
int check_policy(const masking::Multiblock3d& policy, const jepa::nn::TokenGrid& grid, std::uint64_t seed,
                 std::uint64_t step, index_t first, index_t count) {
  const index_t N = grid.size();
  const auto cpu = policy.sample_rows(grid, seed, step, first, count, {});
  int bad = 0;
  for (int g = 0; g < policy.num_generators(); ++g) {
    DeviceDraw d(count, N);
    cu::multiblock3d_sample(policy, grid, seed, step, first, count, g, d.buffers(), nullptr);
    JEPA_CUDA_CHECK(cudaDeviceSynchronize());
    BOOST_TEST(cu::to_host(d.failed.data(), 1)[0] == 0);
    const auto lens = cu::to_host(d.lengths.data(), static_cast<std::size_t>(2 * count));
    const auto ctx = cu::to_host(d.context.data(), static_cast<std::size_t>(count * N));
    const auto tgt = cu::to_host(d.target.data(), static_cast<std::size_t>(count * N));
    for (index_t b = 0; b < count; ++b) {
      const auto pair = policy.sample_pair(grid, seed, step, static_cast<std::uint64_t>(first + b), g);
      const std::vector<std::int64_t> gc(ctx.begin() + b * N, ctx.begin() + b * N + lens[2 * b]);
      const std::vector<std::int64_t> gt(tgt.begin() + b * N, tgt.begin() + b * N + lens[2 * b + 1]);
      if (gc != pair.context || gt != pair.target) ++bad;
    }
    const auto plen = cu::to_host(d.packed_lengths.data(), 2);
    const auto& mb = cpu[static_cast<std::size_t>(g)];
    BOOST_TEST_CONTEXT("seed " << seed << " step " << step << " grid " << grid.t << "x" << grid.h << "x" << grid.w
                               << " first " << first << " generator " << g) {
      BOOST_TEST(plen[0] == mb.context_len);
      BOOST_TEST(plen[1] == mb.target_len);
      if (plen[0] == mb.context_len && plen[1] == mb.target_len) {
        const auto pc = cu::to_host(d.packed_context.data(), static_cast<std::size_t>(count * plen[0]));
        const auto pt = cu::to_host(d.packed_target.data(), static_cast<std::size_t>(count * plen[1]));
        BOOST_TEST(pc == mb.context);
        BOOST_TEST(pt == mb.target);
      }
    }
  }
  return bad;
}
}  // namespace

BOOST_AUTO_TEST_SUITE(cuda_masks)

BOOST_AUTO_TEST_CASE(vjepa_multiblock3d_identical_to_cpu) {
  const auto policy = masking::Multiblock3d::vjepa();
  int bad = 0;
  for (std::uint64_t seed : {0ull, 1ull, 1234ull, 0xFEEDFACEull})
    for (std::uint64_t step : {0ull, 5ull, 99ull, 100000ull}) {
      bad += check_policy(policy, {8, 16, 16}, seed, step, 0, 16);
      bad += check_policy(policy, {4, 6, 10}, seed, step, 3, 5);
    }
  BOOST_TEST(bad == 0);
}

BOOST_AUTO_TEST_CASE(image_and_custom_generators_identical_to_cpu) {
  masking::BlockGenerator a{}, b{};
  a.num_blocks = 4;
  a.spatial_scale = {0.1, 0.3};
  a.temporal_scale = {0.5, 1.0};
  a.max_temporal_keep = 0.5;
  a.max_keep = 40;
  b.num_blocks = 2;
  b.spatial_scale = {0.2, 0.4};
  b.full_complement = true;
  const masking::Multiblock3d custom({a, b});
  const auto image = masking::Multiblock3d::vjepa21_image();
  int bad = 0;
  for (std::uint64_t seed : {3ull, 17ull})
    for (std::uint64_t step : {1ull, 2ull, 1000ull}) {
      bad += check_policy(custom, {8, 14, 14}, seed, step, 0, 9);
      bad += check_policy(image, {1, 16, 16}, seed, step, 2, 7);
    }
  BOOST_TEST(bad == 0);
}

BOOST_AUTO_TEST_SUITE_END()
