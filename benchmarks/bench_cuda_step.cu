// bench_cuda_step — the GPU benchmarks of issue 5 that need the composed model: encoder inference and
// a whole V-JEPA 2.1 training step on backend::Cuda, side by side with PyTorch on the same GPU.
//
//   bench_cuda_step [--reps N] [--python PATH] [--no-torch] [--no-compile] [--only inference|train|gemm]
//                   [--train-batches 32,24,16,12,8,4,2,1] [--quick]
//
// Precision: the recipe's — fp32 master weights and activations, bf16 products (GEMMs through
// cuBLASLt CUBLAS_COMPUTE_32F_FAST_16BF, attention on bf16 operands on the tensor cores,
// backend::cuda::Context::set_mixed_bf16), exactly what torch.autocast(bfloat16) does to the same
// fp32 model. PyTorch runs benchmarks/torch_encoder.py (our port of the official encoder) with
// autocast bf16 and F.scaled_dot_product_attention, eager and under torch.compile, and
// benchmarks/torch_train_step.py (the same model's 2.1 step) for the training row.
//
// Tables:
//  1. GEMM peak: cuBLASLt 8192³ with bf16 operands, and with fp32 operands in the bf16 compute mode;
//     the first is "the measured bf16 GEMM peak" that model FLOP utilisation (MFU) divides by.
//  2. Encoder inference: V-JEPA 2 ViT-L/16 at 16×256² and 64×256², ViT-g/16 at 64×384², batch 1 and
//     8: median ms per forward (device events), PyTorch eager and compiled, speed-ups.
//  3. Training step: V-JEPA 2.1 ViT-L/16 (4 levels, 12-block predictor, context loss), 16×256², the
//     largest batch of --train-batches that runs: ms per step eager and graph-replayed, clips/s,
//     model TFLOP/s, MFU, and PyTorch's step at the same batch and the same mask lengths.
// FLOP model (forward; backward counted 2×): per block 2·n·(4D² + 2·D·Dmlp) + 4·n²·D (qkv, proj, the
// MLP, the two attention products), patch embedding 2·n·D·(3·t·p²). A training step = target
// encoder forward on N tokens + per mask generator 3× (context encoder on Kc tokens + predictor on
// Kc + Kt tokens), the predictor counted with its own width. Without a CUDA device the program says
// so and exits 0.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "common.hpp"
#include "cuda_timing.cuh"
#include "jepa/backend/cuda/backend.cuh"
#include "jepa/models/jepa_presets.hpp"
#include "jepa/train/cuda_step.cuh"

#ifndef JEPA_TORCH_ENCODER_SCRIPT
#define JEPA_TORCH_ENCODER_SCRIPT "benchmarks/torch_encoder.py"
#endif
#ifndef JEPA_TORCH_TRAIN_STEP_SCRIPT
#define JEPA_TORCH_TRAIN_STEP_SCRIPT "benchmarks/torch_train_step.py"
#endif

namespace {

namespace cu = jepa::backend::cuda;
namespace P = jepa::models::presets;
using Cuda = jepa::backend::Cuda;
using jepa::index_t;

struct Options {
  int reps = 10;
  std::string python = "python3";
  bool torch = true, compile = true, quick = false;
  std::string only;
  std::vector<index_t> train_batches{32, 24, 16, 12, 8, 4, 2, 1};
};

using jepa::bench::median_ms;

__global__ void fill_uniform(float* p, std::size_t n, unsigned seed) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    unsigned x = static_cast<unsigned>(i) * 0x9E3779B9u ^ seed;
    x ^= x >> 16;
    x *= 0x7FEB352Du;
    x ^= x >> 15;
    x *= 0x846CA68Bu;
    x ^= x >> 16;
    p[i] = (static_cast<float>(x >> 8) + 0.5f) * (2.0f / 16777216.0f) - 1.0f;
  }
}
void fill(float* p, std::size_t n, unsigned seed, cudaStream_t s) {
  fill_uniform<<<1024, 256, 0, s>>>(p, n, seed);
  JEPA_CUDA_CHECK_LAUNCH("fill_uniform");
}

/// Forward FLOPs of `depth` blocks of width D (MLP Dmlp) on n tokens, plus a patch embedding of kvol.
double encoder_flop(double n, double D, double Dmlp, int depth, double kvol) {
  return depth * (2.0 * n * (4.0 * D * D + 2.0 * D * Dmlp) + 4.0 * n * n * D) + 2.0 * n * D * kvol;
}

std::string fmt(double v, const char* f = "%.2f") {
  if (!(v > 0)) return "n/a";
  char b[32];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

// ---------------------------------------------------------------------------------------------------
// 1. GEMM peak
// ---------------------------------------------------------------------------------------------------
struct Peak {
  double bf16 = 0, f32_bf16 = 0;
};
Peak gemm_peak(const Options& o, cudaStream_t stream) {
  const index_t n = o.quick ? 4096 : 8192;
  cu::DeviceBuffer<float> a(static_cast<std::size_t>(n * n)), b(static_cast<std::size_t>(n * n)),
      c(static_cast<std::size_t>(n * n));
  cu::DeviceBuffer<jepa::bf16> a16(static_cast<std::size_t>(n * n)), b16(static_cast<std::size_t>(n * n)),
      c16(static_cast<std::size_t>(n * n));
  fill(a.data(), a.size(), 1, stream);
  fill(b.data(), b.size(), 2, stream);
  jepa::backend::CudaStreamGuard on(stream);
  {  // bf16 operands: the fp32 fill rounded once
    std::vector<float> h(static_cast<std::size_t>(n * n));
    std::vector<jepa::bf16> h16(h.size());
    JEPA_CUDA_CHECK(cudaMemcpyAsync(h.data(), a.data(), h.size() * sizeof(float), cudaMemcpyDeviceToHost, stream));
    JEPA_CUDA_CHECK(cudaStreamSynchronize(stream));
    for (std::size_t i = 0; i < h.size(); ++i) h16[i] = jepa::bf16(h[i]);
    JEPA_CUDA_CHECK(cudaMemcpy(a16.data(), h16.data(), h16.size() * sizeof(jepa::bf16), cudaMemcpyHostToDevice));
    JEPA_CUDA_CHECK(cudaMemcpy(b16.data(), h16.data(), h16.size() * sizeof(jepa::bf16), cudaMemcpyHostToDevice));
  }
  const double flop = 2.0 * static_cast<double>(n) * n * n;
  Peak p;
  const double t16 = median_ms([&] { Cuda::gemm<jepa::bf16>(false, true, n, n, n, jepa::bf16(1.f), a16.data(), n, b16.data(), n,
                                                            jepa::bf16(0.f), c16.data(), n); },
                               o.reps, stream);
  p.bf16 = flop / (t16 * 1e-3) / 1e12;
  auto& ctx = Cuda::context();
  const auto saved = ctx.gemm_compute();
  ctx.set_gemm_compute(cu::GemmCompute::bf16);
  const double t32 = median_ms([&] { Cuda::gemm<float>(false, true, n, n, n, 1.f, a.data(), n, b.data(), n, 0.f, c.data(), n); },
                               o.reps, stream);
  ctx.set_gemm_compute(saved);
  p.f32_bf16 = flop / (t32 * 1e-3) / 1e12;
  std::printf("\n1. cuBLASLt GEMM peak, %lld^3 (median of %d)\n", static_cast<long long>(n), o.reps);
  std::printf("   bf16 operands, fp32 accumulation:              %8.1f TFLOP/s   <- MFU denominator\n", p.bf16);
  std::printf("   fp32 operands, CUBLAS_COMPUTE_32F_FAST_16BF:   %8.1f TFLOP/s\n", p.f32_bf16);
  return p;
}

// ---------------------------------------------------------------------------------------------------
// 2. Encoder inference
// ---------------------------------------------------------------------------------------------------
struct InferRow {
  std::string model;
  index_t frames = 0, res = 0, batch = 0;
  double ms = 0, tflops = 0, torch_ms = -1, torch_compiled_ms = -1;
  std::string note;
};

template <const P::EncoderShape& S>
InferRow infer_one(const Options& o, index_t frames, index_t res, index_t batch, cudaStream_t stream) {
  using Enc = P::VJepa2Encoder<S, float, Cuda>;
  InferRow r;
  r.model = std::string(S.name), r.frames = frames, r.res = res, r.batch = batch;
  jepa::backend::CudaStreamGuard on(stream);
  Cuda::context().set_mixed_bf16(true);
  const Enc enc(P::vjepa2_config(S));
  jepa::nn::ParameterSet<float, cu::DeviceArena> params(enc.layout());
  params.init(1);
  const jepa::models::InputGeometry g{frames, res, res};
  auto st = enc.make_state(jepa::models::Mode::inference, batch, g);
  cu::DeviceBuffer<float> clip(static_cast<std::size_t>(batch * 3 * frames * res * res));
  fill(clip.data(), clip.size(), 3, stream);
  const jepa::TensorView<const float, 5> cv(clip.data(), {batch, 3, frames, res, res});
  r.ms = median_ms([&] { enc.forward(params.data(), cv, nullptr, st); }, o.reps, stream);
  const double n = static_cast<double>(enc.grid(g).size());
  r.tflops = batch * encoder_flop(n, S.embed_dim, S.mlp_hidden, S.depth, 3.0 * 2 * 16 * 16) / (r.ms * 1e-3) / 1e12;
  Cuda::context().set_mixed_bf16(false);
  if (o.torch) {
    const std::string torch_name = S.name == std::string_view("vit_giant_xformers") ? "vit_giant" : std::string(S.name);
    const std::string args = "--model " + torch_name + " --frames " + std::to_string(frames) + " --size " +
                             std::to_string(res) + " --batch " + std::to_string(batch) + " --reps " + std::to_string(o.reps) +
                             " --device cuda --dtype bf16 --sdpa --threads 4";
    const auto t = jepa::bench::run_torch("torch (eager)", o.python, jepa::bench::script_path(JEPA_TORCH_ENCODER_SCRIPT), args);
    if (t.ok) r.torch_ms = 1e3 * t.median_s;
    if (o.compile) {
      const auto tc = jepa::bench::run_torch("torch (compile)", o.python, jepa::bench::script_path(JEPA_TORCH_ENCODER_SCRIPT), args + " --compile");
      if (tc.ok) r.torch_compiled_ms = 1e3 * tc.median_s;
    }
  }
  return r;
}

template <const P::EncoderShape& S>
void infer_safe(const Options& o, index_t frames, index_t res, index_t batch, cudaStream_t stream, std::vector<InferRow>& rows) {
  std::fprintf(stderr, "inference %s %lldx%lld^2 batch %lld ...\n", std::string(S.name).c_str(),
               static_cast<long long>(frames), static_cast<long long>(res), static_cast<long long>(batch));
  try {
    rows.push_back(infer_one<S>(o, frames, res, batch, stream));
  } catch (const std::exception& e) {
    InferRow r;
    r.model = std::string(S.name), r.frames = frames, r.res = res, r.batch = batch;
    r.note = e.what();
    rows.push_back(r);
    Cuda::context().set_mixed_bf16(false);
    JEPA_CUDA_CHECK_NOTHROW(cudaDeviceSynchronize());
  }
}

void inference(const Options& o, cudaStream_t stream) {
  std::vector<InferRow> rows;
  const std::vector<index_t> batches = o.quick ? std::vector<index_t>{1} : std::vector<index_t>{1, 8};
  for (const index_t b : batches) {
    infer_safe<P::vit_large>(o, 16, 256, b, stream, rows);
    infer_safe<P::vit_large>(o, 64, 256, b, stream, rows);
    if (!o.quick) infer_safe<P::vit_giant_xformers>(o, 64, 384, b, stream, rows);
  }
  std::printf("\n2. Encoder inference (V-JEPA 2, tiled RoPE), mixed bf16, median of %d forwards\n", o.reps);
  std::printf("   torch: benchmarks/torch_encoder.py, autocast bf16 + SDPA, eager / torch.compile\n");
  std::printf("%-20s %6s %6s %5s | %9s %8s | %9s %7s | %9s %7s\n", "model", "frames", "res", "B", "jepa ms", "TFLOP/s",
              "torch ms", "speedup", "compiled", "speedup");
  for (const auto& r : rows) {
    if (!r.note.empty()) {
      std::printf("%-20s %6lld %6lld %5lld | failed: %s\n", r.model.c_str(), static_cast<long long>(r.frames),
                  static_cast<long long>(r.res), static_cast<long long>(r.batch), r.note.c_str());
      continue;
    }
    std::printf("%-20s %6lld %6lld %5lld | %9.2f %8.1f | %9s %7s | %9s %7s\n", r.model.c_str(),
                static_cast<long long>(r.frames), static_cast<long long>(r.res), static_cast<long long>(r.batch), r.ms,
                r.tflops, fmt(r.torch_ms).c_str(), fmt(r.torch_ms / r.ms, "%.2fx").c_str(), fmt(r.torch_compiled_ms).c_str(),
                fmt(r.torch_compiled_ms / r.ms, "%.2fx").c_str());
  }
}

// ---------------------------------------------------------------------------------------------------
// 3. Training step
// ---------------------------------------------------------------------------------------------------
using Model21 = P::VJepa21<P::vit_large, float, Cuda>;

struct TrainRow {
  index_t batch = 0;
  double eager_ms = 0, graph_ms = 0, flop = 0;
  std::vector<index_t> kc, kt;
  double torch_ms = -1, torch_compiled_ms = -1;
};

std::optional<TrainRow> train_at(const Options& o, index_t B) {
  const index_t F = 16, R = 256;
  TrainRow row;
  row.batch = B;
  Model21 model = P::vjepa2_1<P::vit_large, float, Cuda>();
  model.init(1);
  model.mask_seed = 5;
  cu::DeviceBuffer<float> clip(static_cast<std::size_t>(B * 3 * F * R * R));
  fill(clip.data(), clip.size(), 4, nullptr);
  JEPA_CUDA_CHECK(cudaDeviceSynchronize());
  const jepa::TensorView<const float, 5> cv(clip.data(), {B, 3, F, R, R});
  auto stage = jepa::train::Recipes::vjepa2_pretrain(1, 1000);
  const int steps = std::max(3, o.reps);
  for (const bool graphs : {false, true}) {
    jepa::train::CudaStepConfig cfg;
    cfg.use_graphs = graphs;
    cfg.mixed_bf16 = true;
    jepa::train::CudaStep<Model21> step(model, stage, B, {F, R, R}, cfg);
    // The same step index repeats, so the graph run replays one captured shape (its first call
    // runs eagerly and captures).
    std::vector<double> t;
    jepa::train::CudaStepResult last;
    for (int i = 0; i < steps + 2; ++i) {
      const auto t0 = jepa::bench::Clock::now();
      last = step.run(cv, 7);
      if (i >= 2) t.push_back(1e3 * jepa::bench::seconds_since(t0));
    }
    if (last.skipped) std::fprintf(stderr, "bench_cuda_step: the training step was skipped (non-finite loss)\n");
    (graphs ? row.graph_ms : row.eager_ms) = jepa::bench::median(t);
    row.kc = last.context_len;
    row.kt = last.target_len;
  }
  // FLOPs of one step (see the header): predictor width Dp 384, 12 blocks, MLP 1536, heads of 32.
  const auto& S = P::vit_large;
  const double N = (F / 2.0) * (R / 16.0) * (R / 16.0), kvol = 3.0 * 2 * 16 * 16;
  double flop = B * encoder_flop(N, S.embed_dim, S.mlp_hidden, S.depth, kvol);
  for (std::size_t j = 0; j < row.kc.size(); ++j) {
    const double kc = static_cast<double>(row.kc[j]), st = kc + static_cast<double>(row.kt[j]);
    flop += 3.0 * B * encoder_flop(kc, S.embed_dim, S.mlp_hidden, S.depth, kvol);
    // predictor blocks; fusion MLP 4D→D→Dp on the context; predictor_proj and predictor_proj_context
    // (Dp → 4D) on the targets and the context
    flop += 3.0 * B * (encoder_flop(st, 384, 1536, 12, 0) + 2.0 * kc * (4 * S.embed_dim * S.embed_dim + S.embed_dim * 384) +
                       2.0 * st * 384 * 4 * S.embed_dim);
  }
  row.flop = flop;
  return row;
}

void training(const Options& o, const Peak& peak) {
  std::optional<TrainRow> row;
  for (const index_t B : o.train_batches) {
    std::fprintf(stderr, "training step, batch %lld ...\n", static_cast<long long>(B));
    try {
      row = train_at(o, B);
      break;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "  batch %lld does not run: %s\n", static_cast<long long>(B), e.what());
      JEPA_CUDA_CHECK_NOTHROW(cudaDeviceSynchronize());
      cudaGetLastError();
    }
  }
  std::printf("\n3. V-JEPA 2.1 training step, ViT-L/16 16x256^2, 4 levels, 12-block predictor, context loss, mixed bf16\n");
  if (!row) {
    std::printf("   no batch of --train-batches ran\n");
    return;
  }
  std::string lens;
  for (std::size_t j = 0; j < row->kc.size(); ++j)
    lens += (j ? ", " : "") + std::to_string(row->kc[j]) + "/" + std::to_string(row->kt[j]);
  if (o.torch) {
    std::string kc, kt;
    for (std::size_t j = 0; j < row->kc.size(); ++j) {
      kc += (j ? "," : "") + std::to_string(row->kc[j]);
      kt += (j ? "," : "") + std::to_string(row->kt[j]);
    }
    const std::string args = "--batch " + std::to_string(row->batch) + " --context " + kc + " --targets " + kt +
                             " --reps " + std::to_string(std::max(3, o.reps));
    const auto t = jepa::bench::run_torch("torch train step", o.python, jepa::bench::script_path(JEPA_TORCH_TRAIN_STEP_SCRIPT), args);
    if (t.ok) row->torch_ms = 1e3 * t.median_s;
    if (o.compile) {
      const auto tc = jepa::bench::run_torch("torch train step (compile)", o.python, jepa::bench::script_path(JEPA_TORCH_TRAIN_STEP_SCRIPT), args + " --compile");
      if (tc.ok) row->torch_compiled_ms = 1e3 * tc.median_s;
    }
  }
  const double best = std::min(row->eager_ms, row->graph_ms);
  const double tf = row->flop / (best * 1e-3) / 1e12;
  std::printf("   batch %lld (largest of --train-batches that ran); Kc/Kt per generator %s; %.1f TFLOP per step\n",
              static_cast<long long>(row->batch), lens.c_str(), row->flop / 1e12);
  std::printf("   %-28s %10s %10s %10s %8s\n", "", "ms/step", "clips/s", "TFLOP/s", "MFU");
  std::printf("   %-28s %10.1f %10.1f %10.1f %7.1f%%\n", "jepa eager", row->eager_ms, row->batch / (row->eager_ms * 1e-3),
              row->flop / (row->eager_ms * 1e-3) / 1e12, 100.0 * row->flop / (row->eager_ms * 1e-3) / 1e12 / peak.bf16);
  std::printf("   %-28s %10.1f %10.1f %10.1f %7.1f%%\n", "jepa CUDA graph", row->graph_ms, row->batch / (row->graph_ms * 1e-3),
              row->flop / (row->graph_ms * 1e-3) / 1e12, 100.0 * row->flop / (row->graph_ms * 1e-3) / 1e12 / peak.bf16);
  std::printf("   %-28s %10s %10s\n", "torch eager (autocast, SDPA)", fmt(row->torch_ms, "%.1f").c_str(),
              fmt(row->torch_ms > 0 ? row->batch / (row->torch_ms * 1e-3) : 0, "%.1f").c_str());
  std::printf("   %-28s %10s %10s\n", "torch.compile", fmt(row->torch_compiled_ms, "%.1f").c_str(),
              fmt(row->torch_compiled_ms > 0 ? row->batch / (row->torch_compiled_ms * 1e-3) : 0, "%.1f").c_str());
  const double tbest = row->torch_compiled_ms > 0 ? std::min(row->torch_ms, row->torch_compiled_ms) : row->torch_ms;
  std::printf("   throughput vs the faster PyTorch: %s (target >= 1.3x); MFU %.1f%% of the measured bf16 peak (target >= 45%%); "
              "%.1f TFLOP/s\n",
              fmt(tbest > 0 ? tbest / best : 0, "%.2fx").c_str(), 100.0 * tf / peak.bf16, tf);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--reps" && i + 1 < argc) o.reps = std::max(1, std::atoi(argv[++i]));
    else if (a == "--python" && i + 1 < argc) o.python = argv[++i];
    else if (a == "--no-torch") o.torch = false;
    else if (a == "--no-compile") o.compile = false;
    else if (a == "--quick") o.quick = true;
    else if (a == "--only" && i + 1 < argc) o.only = argv[++i];
    else if (a == "--train-batches" && i + 1 < argc) {
      o.train_batches.clear();
      std::stringstream ss(argv[++i]);
      std::string t;
      while (std::getline(ss, t, ','))
        if (!t.empty()) o.train_batches.push_back(std::max<index_t>(1, std::atoll(t.c_str())));
    } else {
      std::printf("usage: bench_cuda_step [--reps N] [--python PATH] [--no-torch] [--no-compile] [--quick]\n"
                  "                       [--only gemm|inference|train] [--train-batches 32,24,16,12,8,4,2,1]\n");
      return a == "--help" || a == "-h" ? 0 : 2;
    }
  }
  if (!cu::has_device()) {
    std::printf("bench_cuda_step: no CUDA device: nothing to measure (this benchmark needs a GPU)\n");
    return 0;
  }
  std::printf("device: %s\n", cu::device_description(0).c_str());
  try {
    cu::Stream stream;
    const Peak peak = gemm_peak(o, stream.get());
    if (o.only.empty() || o.only == "inference") inference(o, stream.get());
    if (o.only.empty() || o.only == "train") training(o, peak);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_cuda_step: %s\n", e.what());
    return 1;
  }
  return 0;
}
