// bench_cuda_attention — throughput of the CUDA fused attention (jepa/backend/cuda/attention.cuh),
// bf16, next to PyTorch's F.scaled_dot_product_attention on the same shapes.
//
//   bench_cuda_attention [--reps N] [--python PATH] [--no-torch]
//
// Shapes: N = 2048, 8192, 18432 tokens, 16 heads of Dh = 64, batch B = round(32768 / N) so every row
// holds about 32k tokens; no mask. Operands sit in a packed (B,N,3·H·Dh) qkv buffer and a (B,N,H·Dh)
// output, as in the encoder; gradients go to a packed dqkv buffer. Inputs are random (never zeros).
// FLOPs: forward 4·B·H·N²·Dh (two N×N×Dh products), backward 2.5× that (five products) — the usual
// FlashAttention count. Each time is the median over `reps` runs (device events around each run)
// after 3 warm-up runs. The backward time includes its D/lse2 prep pass.
// PyTorch: benchmarks/torch_attention.py runs as a subprocess (python3 with torch and a CUDA device);
// its columns say "n/a" when that is not available. Without a CUDA device this program says so and
// exits 0.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "common.hpp"
#include "cuda_timing.cuh"
#include "jepa/backend/cuda/attention.cuh"
#include "jepa/backend/cuda/device.cuh"

#ifndef JEPA_TORCH_ATTENTION_SCRIPT
#define JEPA_TORCH_ATTENTION_SCRIPT "benchmarks/torch_attention.py"
#endif

namespace {

namespace cu = jepa::backend::cuda;
using jepa::index_t;
using jepa::backend::AttnMask;
using jepa::backend::AttnOperand;
using jepa::backend::AttnShape;

/// Fills p with bf16 values ~ uniform(−√3, √3) (unit variance) from a counter hash of (seed, i).
__global__ void fill_random_bf16(__nv_bfloat16* p, std::size_t n, unsigned seed) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    unsigned x = static_cast<unsigned>(i) * 0x9E3779B9u ^ seed ^ static_cast<unsigned>(i >> 32) * 0x85EBCA6Bu;
    x ^= x >> 16;
    x *= 0x7FEB352Du;
    x ^= x >> 15;
    x *= 0x846CA68Bu;
    x ^= x >> 16;
    const float u = (static_cast<float>(x >> 8) + 0.5f) * (1.0f / 16777216.0f);  // (0, 1)
    p[i] = __float2bfloat16_rn((2.f * u - 1.f) * 1.7320508f);
  }
}
void fill_random(jepa::bf16* p, std::size_t n, unsigned seed) {
  fill_random_bf16<<<1024, 256>>>(cu::dev(p), n, seed);
  JEPA_CUDA_CHECK_LAUNCH("fill_random_bf16");
}

/// Median milliseconds of `reps` runs of f (each between two events), after 3 warm-up runs.
using jepa::bench::median_ms;

struct Row {
  index_t N, B;
  double fwd_ms, bwd_ms;
  double torch_fwd_ms = -1, torch_bwd_ms = -1;
};

std::string tflops(double flop, double ms) {
  if (!(ms > 0)) return "n/a";
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", flop / (ms * 1e-3) / 1e12);
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 20;
  std::string python = "python3";
  bool torch = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--reps" && i + 1 < argc) reps = std::max(1, std::atoi(argv[++i]));
    else if (a == "--python" && i + 1 < argc) python = argv[++i];
    else if (a == "--no-torch") torch = false;
    else {
      std::printf("usage: bench_cuda_attention [--reps N] [--python PATH] [--no-torch]\n");
      return a == "--help" || a == "-h" ? 0 : 2;
    }
  }
  if (!cu::has_device()) {
    std::printf("bench_cuda_attention: no CUDA device: nothing to measure (this benchmark needs a GPU)\n");
    return 0;
  }
  std::printf("device: %s\n", cu::device_description(0).c_str());

  const index_t H = 16, Dh = 64, W = H * Dh, tokens = 32768;
  const std::vector<index_t> sizes = {2048, 8192, 18432};
  std::vector<Row> rows;
  cu::Stream stream;
  try {
    for (const index_t N : sizes) {
      const index_t B = std::max<index_t>(1, std::llround(static_cast<double>(tokens) / static_cast<double>(N)));
      const AttnShape s{B, H, N, N, Dh, 1.0 / std::sqrt(static_cast<double>(Dh))};
      const std::size_t nqkv = static_cast<std::size_t>(B * N * 3 * W), no = static_cast<std::size_t>(B * N * W);
      cu::DeviceBuffer<jepa::bf16> qkv(nqkv), dqkv(nqkv), o(no), dout(no);
      cu::DeviceBuffer<float> lse(static_cast<std::size_t>(B * H * N));
      const std::size_t ws_bytes = cu::attention_backward_workspace_bytes(s);
      cu::DeviceBuffer<std::byte> ws(ws_bytes);
      fill_random(qkv.data(), nqkv, 1);
      fill_random(dout.data(), no, 2);
      JEPA_CUDA_CHECK(cudaDeviceSynchronize());  // the fills ran on the legacy stream; `stream` does not wait for it
      const auto in = [&](index_t off) {
        return AttnOperand<const jepa::bf16>{qkv.data() + off, N * 3 * W, 3 * W, Dh};
      };
      const auto grad = [&](index_t off) { return AttnOperand<jepa::bf16>{dqkv.data() + off, N * 3 * W, 3 * W, Dh}; };
      const AttnOperand<jepa::bf16> ov{o.data(), N * W, W, Dh};
      const AttnOperand<const jepa::bf16> oc{o.data(), N * W, W, Dh}, dc{dout.data(), N * W, W, Dh};
      const AttnMask mask = AttnMask::full();
      const double f = median_ms([&] { cu::attention_forward<jepa::bf16>(stream, s, in(0), in(W), in(2 * W), ov, lse.data(), mask); },
                                 reps, stream);
      const double b = median_ms(
          [&] {
            cu::attention_backward<jepa::bf16>(stream, s, in(0), in(W), in(2 * W), oc, dc, lse.data(), grad(0),
                                                 grad(W), grad(2 * W), mask, ws.data(), ws_bytes);
          },
          reps, stream);
      // A sanity look at the results: a NaN would make the timings meaningless.
      const auto o_host = cu::to_host(o.data(), std::min<std::size_t>(no, 4096));
      const auto g_host = cu::to_host(dqkv.data(), std::min<std::size_t>(nqkv, 4096));
      bool finite = true;
      for (const auto x : o_host) finite = finite && std::isfinite(static_cast<float>(x));
      for (const auto x : g_host) finite = finite && std::isfinite(static_cast<float>(x));
      if (!finite) std::fprintf(stderr, "bench_cuda_attention: N = %lld produced non-finite values\n", static_cast<long long>(N));
      rows.push_back({N, B, f, b});
      std::fprintf(stderr, "N = %lld done\n", static_cast<long long>(N));
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_cuda_attention: %s\n", e.what());
    return 1;
  }

  // PyTorch baseline: one subprocess for all sizes (it prints one JSON line).
  std::string torch_note = "not run (--no-torch)";
  if (torch) {
    std::string sz;
    for (const index_t N : sizes) sz += (sz.empty() ? "" : ",") + std::to_string(N);
    const std::string cmd = jepa::bench::shell_quote(python) + " " + jepa::bench::shell_quote(jepa::bench::script_path(JEPA_TORCH_ATTENTION_SCRIPT)) +
                            " --sizes " + sz + " --heads " + std::to_string(H) + " --head-dim " + std::to_string(Dh) +
                            " --tokens " + std::to_string(tokens) + " --reps " + std::to_string(reps) + " 2>&1";
    std::fflush(stdout);
    FILE* p = popen(cmd.c_str(), "r");
    std::string json, all;
    if (p) {
      char buf[4096];
      while (std::fgets(buf, sizeof buf, p)) {
        all += buf;
        if (buf[0] == '{') json = buf;
      }
      pclose(p);
    }
    bool ok = !json.empty() && json.find("\"error\"") == std::string::npos;
    if (ok) {
      for (Row& r : rows) {
        bool k = true;
        const double tf = jepa::bench::json_number(json, "fwd_ms_" + std::to_string(r.N), k);
        const double tb = jepa::bench::json_number(json, "bwd_ms_" + std::to_string(r.N), k);
        if (k) {
          r.torch_fwd_ms = tf;
          r.torch_bwd_ms = tb;
        }
      }
      const auto v = json.find("\"torch\": \"");
      const auto v0 = v == std::string::npos ? v : v + 10;
      torch_note = "PyTorch " + (v0 == std::string::npos ? std::string("?") : json.substr(v0, json.find('"', v0) - v0));
      const auto bk = json.find("\"backend\": \"");
      if (bk != std::string::npos) torch_note += ", " + json.substr(bk + 12, json.find('"', bk + 12) - bk - 12);
    } else {
      torch_note = "n/a (" + (json.empty() ? std::string("python3 + torch + CUDA not available") : json.substr(0, json.size() - 1)) + ")";
      if (json.empty() && !all.empty()) std::fprintf(stderr, "torch_attention.py said:\n%s", all.c_str());
    }
  }

  std::printf("\nbf16 attention, H = %lld, Dh = %lld, no mask; TFLOP/s with fwd = 4·B·H·N²·Dh, bwd = 2.5× fwd\n",
              static_cast<long long>(H), static_cast<long long>(Dh));
  std::printf("torch column: F.scaled_dot_product_attention, %s\n\n", torch_note.c_str());
  std::printf("%7s %4s | %9s %9s %9s | %9s %9s %9s\n", "N", "B", "fwd ms", "TFLOP/s", "torch", "bwd ms", "TFLOP/s",
              "torch");
  for (const Row& r : rows) {
    const double flop = 4.0 * static_cast<double>(r.B * H) * static_cast<double>(r.N) * static_cast<double>(r.N) *
                        static_cast<double>(Dh);
    std::printf("%7lld %4lld | %9.3f %9s %9s | %9.3f %9s %9s\n", static_cast<long long>(r.N),
                static_cast<long long>(r.B), r.fwd_ms, tflops(flop, r.fwd_ms).c_str(),
                tflops(flop, r.torch_fwd_ms).c_str(), r.bwd_ms, tflops(2.5 * flop, r.bwd_ms).c_str(),
                tflops(2.5 * flop, r.torch_bwd_ms).c_str());
  }
  return 0;
}
