// The JEPA objective on the device (backend/cuda/losses.cuh) against the CPU code it mirrors
// (losses/objective.hpp level_loss, losses/context_weights.hpp): L1, SmoothL1 (β = 1 and 0.5) and L2,
// one and four levels with unequal weights, with and without the 2.1 distance weights ω, targets
// gathered at random indices from (B,N,D) level tensors. The gradient and ω must equal the CPU's bit for
// bit (elementwise double expressions); the loss value within 1e-12 relative (a different, fixed
// summation order), and bitwise equal between two GPU runs. Outputs are poisoned first.
#include "common.cuh"

#include <cstdint>
#include <numeric>
#include <vector>

#include "jepa/backend/cuda/losses.cuh"
#include "jepa/core/rng.hpp"
#include "jepa/losses/context_weights.hpp"
#include "jepa/losses/objective.hpp"

namespace {
using namespace jepa::test::gpu;
using jepa::index_t;
namespace losses = jepa::losses;

std::vector<std::int64_t> random_rows(index_t B, index_t N, index_t K, std::uint64_t seed) {
  std::vector<std::int64_t> idx(static_cast<std::size_t>(B * K)), perm(static_cast<std::size_t>(N));
  jepa::Rng rng(seed, 0);
  for (index_t b = 0; b < B; ++b) {
    std::iota(perm.begin(), perm.end(), std::int64_t{0});
    for (index_t i = N - 1; i > 0; --i) std::swap(perm[i], perm[rng.uniform_int(static_cast<std::uint32_t>(i + 1))]);
    std::copy(perm.begin(), perm.begin() + K, idx.begin() + b * K);
  }
  return idx;
}

struct Case {
  index_t B, N, K, L, D;
  bool omega;
  double scale;
};

template <class Rho>
void check_loss(const Rho& rho, const Case& c, std::uint64_t seed) {
  const index_t B = c.B, N = c.N, K = c.K, L = c.L, D = c.D;
  const auto pred = random<float>(static_cast<std::size_t>(B * K * L * D), seed);
  std::vector<std::vector<float>> tg;
  for (index_t l = 0; l < L; ++l) tg.push_back(random<float>(static_cast<std::size_t>(B * N * D), seed + 1 + l, 0.8));
  const auto idx = random_rows(B, N, K, seed + 20);
  std::vector<double> w(static_cast<std::size_t>(L));
  for (index_t l = 0; l < L; ++l) w[l] = (l + 1.0) / (L * (L + 1) / 2.0);  // unequal, Σ = 1
  std::vector<float> omega;
  if (c.omega) {
    const auto o = random<float>(static_cast<std::size_t>(B * K), seed + 30, 0.2, 0.7);
    omega = o;
  }
  // CPU: losses::level_loss through a policy with these level weights.
  losses::MaskedLoss<Rho> policy;
  static_cast<Rho&>(policy) = rho;
  policy.level_weights = w;
  std::vector<const float*> tptr;
  for (auto& t : tg) tptr.push_back(t.data());
  std::vector<float> cgrad(pred.size());
  const double cval = losses::level_loss(policy, pred.data(), B, K, L, D, tptr, N, idx.data(),
                                         c.omega ? omega.data() : nullptr, c.scale, cgrad.data());
  // GPU.
  auto dPred = cu::to_device(pred), dGrad = cu::DeviceBuffer<float>(pred.size());
  std::vector<cu::DeviceBuffer<float>> dT;
  std::vector<const float*> dtp;
  for (auto& t : tg) {
    dT.push_back(cu::to_device(t));
    dtp.push_back(dT.back().data());
  }
  auto dIdx = cu::to_device(idx);
  cu::DeviceBuffer<float> dOm(c.omega ? omega.size() : 1);
  if (c.omega) cu::copy_to_device(dOm.data(), omega.data(), omega.size());
  const std::size_t ws = cu::level_loss_workspace_bytes(B, K);
  cu::DeviceBuffer<double> rows(ws / sizeof(double)), res(2);
  cu::DeviceBuffer<int> bad(1);
  JEPA_CUDA_CHECK(cudaMemset(bad.data(), 0, sizeof(int)));
  poison(dGrad.data(), pred.size());
  poison(res.data(), 2);
  JEPA_CUDA_CHECK(cudaDeviceSynchronize());
  for (int run = 0; run < 2; ++run)
    cu::level_loss(rho, dPred.data(), B, K, L, D, dtp.data(), w.data(), N, dIdx.data(),
                     c.omega ? dOm.data() : nullptr, c.scale, dGrad.data(), rows.data(), ws, res.data() + run,
                     bad.data(), nullptr);
  JEPA_CUDA_CHECK(cudaDeviceSynchronize());
  const auto gres = cu::to_host(res.data(), 2);
  const auto ggrad = cu::to_host(dGrad.data(), pred.size());
  BOOST_TEST_CONTEXT("B " << B << " N " << N << " K " << K << " L " << L << " D " << D << " omega " << c.omega) {
    BOOST_TEST(cu::to_host(bad.data(), 1)[0] == 0);
    BOOST_TEST(std::abs(gres[0] - cval) <= 1e-12 * std::abs(cval));
    BOOST_TEST(bitwise_equal(std::vector<double>{gres[0]}, std::vector<double>{gres[1]}));  // run-to-run
    BOOST_TEST(bitwise_equal(ggrad, cgrad));
  }
}
}  // namespace

BOOST_AUTO_TEST_SUITE(cuda_losses)

BOOST_AUTO_TEST_CASE(level_loss_value_and_gradient_match_cpu) {
  const Case cases[] = {
      {2, 40, 13, 1, 64, false, 1.0},   // V-JEPA 2 prediction term
      {3, 50, 17, 4, 48, true, 0.25},   // 2.1: four levels, distance-weighted context term, λ·1/G scale
      {1, 9, 9, 2, 33, false, 0.5},     // D not a multiple of 32, every token
      {4, 300, 129, 1, 200, true, 1.0},
  };
  std::uint64_t seed = 100;
  for (const auto& c : cases) {
    check_loss(losses::L1{}, c, seed++);
    check_loss(losses::SmoothL1{}, c, seed++);
    check_loss(losses::SmoothL1{0.5}, c, seed++);
    check_loss(losses::L2{}, c, seed++);
  }
}

BOOST_AUTO_TEST_CASE(context_distance_weights_match_cpu_bitwise) {
  for (const jepa::nn::TokenGrid grid : {jepa::nn::TokenGrid{8, 16, 16}, jepa::nn::TokenGrid{1, 14, 14}}) {
    const index_t N = grid.size(), B = 3, Kc = N / 3, Kt = N / 2;
    const auto perm = random_rows(B, N, Kc + Kt, 77 + N);
    std::vector<std::int64_t> ctx(static_cast<std::size_t>(B * Kc)), tgt(static_cast<std::size_t>(B * Kt));
    for (index_t b = 0; b < B; ++b) {
      std::copy(perm.begin() + b * (Kc + Kt), perm.begin() + b * (Kc + Kt) + Kc, ctx.begin() + b * Kc);
      std::copy(perm.begin() + b * (Kc + Kt) + Kc, perm.begin() + (b + 1) * (Kc + Kt), tgt.begin() + b * Kt);
    }
    std::vector<float> cw(ctx.size());
    losses::context_distance_weights(ctx.data(), Kc, tgt.data(), Kt, B, grid, cw.data());
    auto dC = cu::to_device(ctx), dT = cu::to_device(tgt);
    cu::DeviceBuffer<float> dW(ctx.size());
    cu::DeviceBuffer<int> bad(1);
    JEPA_CUDA_CHECK(cudaMemset(bad.data(), 0, sizeof(int)));
    poison(dW.data(), ctx.size());
    JEPA_CUDA_CHECK(cudaDeviceSynchronize());
    cu::context_distance_weights(dC.data(), Kc, dT.data(), Kt, B, grid, dW.data(), bad.data(), nullptr);
    JEPA_CUDA_CHECK(cudaDeviceSynchronize());
    BOOST_TEST(cu::to_host(bad.data(), 1)[0] == 0);
    BOOST_TEST(bitwise_equal(cu::to_host(dW.data(), ctx.size()), cw));
  }
}

BOOST_AUTO_TEST_SUITE_END()
