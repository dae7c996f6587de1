// bench_attention — throughput of the CPU fused attention (jepa/backend/cpu/attention.hpp), float.
//
// Build standalone and run (from the repository root):
//   g++ -O3 -march=native -fopenmp -std=c++20 -Wall -Wextra -I include -I /usr/include/eigen3 benchmarks/bench_attention.cpp -o bench_attention
//   OMP_NUM_THREADS=2 ./bench_attention [repetitions, default 10]
//
// Operands sit in a packed (B,N,3·H·Dh) qkv buffer and a (B,N,H·Dh) output, as in the encoder.
// FLOPs are counted as 4·B·H·Nq·Nk·Dh for the forward and 2.5× that for the backward (the dense count,
// also for masked shapes); "eff" rescales by the fraction of (query, key) pairs the mask allows.
// Each time is the best of several runs after one warm-up run (the minimum is the statistic least
// disturbed by other load on a shared 2-core machine).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "jepa/backend/cpu/attention.hpp"
#include "jepa/core/rng.hpp"

namespace {

using jepa::index_t;
using jepa::backend::AttnMask;
using jepa::backend::AttnOperand;
using jepa::backend::AttnShape;

struct Shape {
  const char* name;
  index_t B, H, N, Dh;
  index_t block;  // 0: no mask; otherwise block-causal with this block size
};

template <class F>
double best_seconds(F&& f, int reps) {
  f();  // warm-up: scratch buffers, page faults, thread pool
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return *std::min_element(t.begin(), t.end());
}

}  // namespace

int main(int argc, char** argv) {
  const int reps = argc > 1 ? std::max(1, std::atoi(argv[1])) : 10;
  const Shape shapes[] = {{"ViT-S", 1, 6, 1568, 64, 0},
                          {"ViT-B", 1, 12, 1568, 64, 0},
                          {"ViT-L", 1, 16, 2048, 64, 0},
                          {"predictor", 1, 12, 1024, 32, 0},
                          {"AC block-causal", 1, 16, 2064, 64, 258}};
  std::printf("%-16s %-20s %10s %10s %8s %12s %10s %8s\n", "model", "(B,H,N,Dh)", "fwd s", "GFLOP/s", "eff",
              "fwd+bwd s", "GFLOP/s", "eff");
  for (const Shape& sh : shapes) {
    const index_t B = sh.B, H = sh.H, N = sh.N, Dh = sh.Dh, W = 3 * H * Dh;
    std::vector<float> qkv(static_cast<std::size_t>(B * N * W)), dqkv(qkv.size());
    std::vector<float> o(static_cast<std::size_t>(B * N * H * Dh)), dout(o.size());
    std::vector<float> lse(static_cast<std::size_t>(B * H * N));
    jepa::Rng rng(42, 0);
    for (float& x : qkv) x = static_cast<float>(rng.normal());
    for (float& x : dout) x = static_cast<float>(rng.normal());

    const AttnShape s{B, H, N, N, Dh, 1.0 / std::sqrt(static_cast<double>(Dh))};
    const AttnMask mask = sh.block > 0 ? AttnMask::block_causal_mask(sh.block) : AttnMask::full();
    const auto in = [&](const float* base, index_t off) {
      return AttnOperand<const float>{base + off, N * W, W, Dh};
    };
    const auto out = [&](float* base, index_t off) { return AttnOperand<float>{base + off, N * W, W, Dh}; };
    const AttnOperand<float> ov{o.data(), N * H * Dh, H * Dh, Dh};
    const AttnOperand<const float> oc{o.data(), N * H * Dh, H * Dh, Dh};
    const AttnOperand<const float> gc{dout.data(), N * H * Dh, H * Dh, Dh};

    const auto forward = [&] {
      jepa::backend::cpu::attention_flash_forward<float>(s, in(qkv.data(), 0), in(qkv.data(), H * Dh),
                                                         in(qkv.data(), 2 * H * Dh), ov, lse.data(), mask);
    };
    const auto forward_backward = [&] {
      forward();
      jepa::backend::cpu::attention_flash_backward<float>(
          s, in(qkv.data(), 0), in(qkv.data(), H * Dh), in(qkv.data(), 2 * H * Dh), oc, gc, lse.data(),
          out(dqkv.data(), 0), out(dqkv.data(), H * Dh), out(dqkv.data(), 2 * H * Dh), mask);
    };
    double allowed = 1.0;
    if (sh.block > 0) {
      index_t n = 0;
      for (index_t i = 0; i < N; ++i) n += std::min(N, (i / sh.block + 1) * sh.block);
      allowed = static_cast<double>(n) / static_cast<double>(N * N);
    }
    const double flop = 4.0 * static_cast<double>(B * H) * static_cast<double>(N) * static_cast<double>(N) *
                        static_cast<double>(Dh);
    const double tf = best_seconds(forward, reps);
    const double tfb = best_seconds(forward_backward, reps);
    const std::string dims = jepa::detail::cat("(", B, ",", H, ",", N, ",", Dh, ")");
    std::printf("%-16s %-20s %10.4f %10.1f %8.1f %12.4f %10.1f %8.1f\n", sh.name, dims.c_str(), tf, flop / tf * 1e-9,
                allowed * flop / tf * 1e-9, tfb, 3.5 * flop / tfb * 1e-9, 3.5 * allowed * flop / tfb * 1e-9);
  }
  return 0;
}
