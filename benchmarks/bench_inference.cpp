// bench_inference — CPU inference throughput of the feature-extraction API (models::FeatureExtractor,
// Mode::inference) for the V-JEPA 2 encoder, compared with PyTorch 1.13 in the same invocation.
//
// Shapes: ViT-S/16 and ViT-B/16, batch 1, float32, on
//   image  224² — an image fed as one tubelet of 2 repeated frames (encode_image; 14·14 = 196 tokens),
//   clip   16×224² (encode; 8·14·14 = 1568 tokens).
// jepa: FeatureExtractor::encode / encode_image on preprocessed input (tokens copied out and pooled,
// as a user gets them); median of --reps runs after one warm-up (images: at least 10 runs).
// PyTorch: benchmarks/torch_encoder.py (the official V-JEPA 2 encoder, explicit attention, under
// torch.no_grad) with the same threads, frames and size, run by /usr/bin/python3.
// Reported: seconds per input, inputs per second, model GFLOP/s (FLOP model of bench_encoder: per
// block 8·N·D² + 4·N·D·Hd + 4·N²·D, patch embed 2·N·D·1536), the inference State's memory, the
// speed-up over PyTorch, and the load other processes put on the machine during each stage (the build
// machine is shared; before each stage the program waits --wait-idle seconds for quiet).
//
// Usage: bench_inference [--only S|B] [--no-torch] [--reps N] [--threads N] [--wait-idle S]
//                        [--python PATH] [--torch-script PATH]
#include <cctype>
#include <cstdio>
#include <ctime>
#include <string>
#include <thread>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "common.hpp"
#include "jepa/models/inference.hpp"
#include "jepa/models/presets.hpp"

#ifndef JEPA_TORCH_ENCODER_SCRIPT
#define JEPA_TORCH_ENCODER_SCRIPT "benchmarks/torch_encoder.py"
#endif

namespace {

using namespace jepa;
using namespace jepa::bench;
using namespace jepa::models;
namespace P = jepa::models::presets;

struct Options : TorchBenchOptions {
  Options() { script = JEPA_TORCH_ENCODER_SCRIPT; }
};

struct Case {
  const char* input;  // "image" or "clip"
  index_t frames;     // input frames fed to the encoder (image: repeated to one tubelet)
};
constexpr Case kCases[] = {{"image 224²", 2}, {"clip 16×224²", 16}};
constexpr index_t kSize = 224;

struct Row {
  std::string model, input;
  index_t tokens = 0;
  double flops = 0, jepa_s = 0, state_mib = 0, load_jepa = 0, load_torch = 0;
  std::vector<double> runs;
  TorchResult torch;
};

double flops_fwd(const P::EncoderShape& S, index_t N) {
  const double n = static_cast<double>(N), D = static_cast<double>(S.embed_dim), Hd = static_cast<double>(S.mlp_hidden);
  return S.depth * (8 * n * D * D + 4 * n * D * Hd + 4 * n * n * D) + 2 * n * D * 1536;
}

template <const P::EncoderShape& S>
std::vector<Row> run_shape(const Options& o, const char* label) {
  std::vector<Row> rows;
  FeatureExtractor<P::VJepa2Encoder<S>> ex(P::vjepa2_config(S));
  ex.init(0);
  for (const Case& c : kCases) {
    Row r;
    r.model = label;
    r.input = c.input;
    const bool image = c.frames == 2;
    const int reps = image ? std::max(o.reps, 10) : o.reps;
    std::vector<float> px(static_cast<std::size_t>(3 * (image ? 1 : c.frames) * kSize * kSize));
    fill_normal(px, 1.f, 11);
    const std::string tag = std::string(label) + " " + c.input;
    stage(o.wait_idle_s, r.load_jepa, [&] {
      r.jepa_s = time_median(reps, tag + " jepa", [&] {
        const auto f = image ? ex.encode_image(TensorView<const float, 4>(px.data(), {1, 3, kSize, kSize}))
                             : ex.encode(TensorView<const float, 5>(px.data(), {1, 3, c.frames, kSize, kSize}));
        r.tokens = f.tokens_per_sample;
      });
    });
    r.runs = g_last_times;
    r.flops = flops_fwd(S, r.tokens);
    r.state_mib = static_cast<double>(ex.last_state()->bytes()) / (1 << 20);
    if (o.torch) {
      stage(o.wait_idle_s, r.load_torch, [&] {
        g_progress.report(tag + " PyTorch (" + std::to_string(reps) + " reps + warm-up)", 0);
        std::string args = "--model ";  // appended piecewise (GCC 12: `"literal" + std::string&&` warns)
        args.append(S.name).append(" --frames ").append(std::to_string(c.frames)).append(" --size ");
        args.append(std::to_string(kSize)).append(" --threads ").append(std::to_string(o.threads));
        args.append(" --reps ").append(std::to_string(reps));
        r.torch = run_torch("bench_inference", o.python, o.script, args);
      });
    }
    std::printf("%s, %s: %lld tokens, jepa %.4f s (runs:", label, c.input, static_cast<long long>(r.tokens), r.jepa_s);
    for (double t : r.runs) std::printf(" %.4f", t);
    if (r.torch.ok) std::printf("), torch %.4f s\n", r.torch.median_s);
    else std::printf(")\n");
    std::fflush(stdout);
    rows.push_back(r);
  }
  return rows;
}

int usage(const char* argv0, int rc) {
  std::fprintf(rc ? stderr : stdout,
               "usage: %s [--only S|B] [--no-torch] [--reps N] [--threads N] [--wait-idle S] [--python PATH]\n"
               "          [--torch-script PATH]\n"
               "  --only S|B      one shape (ViT-S/16 or ViT-B/16)\n"
               "  --reps N        timed runs per clip measurement after one warm-up (default 3; images: >= 10)\n"
               "%s",
               argv0, kTorchBenchHelp);
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto next = [&] { return option_value(argc, argv, i, "bench_inference", usage); };
    if (parse_torch_bench_option(a, next, o)) continue;
    if (a == "-h" || a == "--help") return usage(argv[0], 0);
    else {
      std::fprintf(stderr, "bench_inference: unknown argument '%s'\n", a.c_str());
      return usage(argv[0], 2);
    }
  }
  if (o.only && o.only != 'S' && o.only != 'B') {
    std::fprintf(stderr, "bench_inference: --only takes S or B\n");
    return 2;
  }
  apply_threads(o);

  // Work estimate for the ETA: seconds at assumed rates (jepa ~80 GFLOP/s, PyTorch ~40).
  for (const P::EncoderShape* s : {&P::vit_small, &P::vit_base}) {
    if (o.only && o.only != (s == &P::vit_small ? 'S' : 'B')) continue;
    for (const Case& c : kCases) {
      const double f = flops_fwd(*s, (c.frames / 2) * 196), r1 = (c.frames == 2 ? std::max(o.reps, 10) : o.reps) + 1;
      g_progress.add_stage(r1 * f / 80e9);
      if (o.torch) g_progress.add_stage(5 + r1 * f / 40e9);
    }
  }

  std::printf("bench_inference — FeatureExtractor (V-JEPA 2 encoder, Mode::inference), float32, batch 1\n");
  std::printf("date %s | CPU %s | %u hardware threads | %d threads used | GPU: none\n", now_string().c_str(), cpu_model().c_str(),
              std::thread::hardware_concurrency(), o.threads);
  std::printf("GEMM: %s\n", backend::cpu::gemm_report().c_str());
  std::printf("BLAS libraries: %s | compiler %s\n", loaded_blas().c_str(), __VERSION__);
  std::fflush(stdout);

  std::vector<Row> rows;
  if (!o.only || o.only == 'S')
    for (auto& r : run_shape<P::vit_small>(o, "ViT-S/16")) rows.push_back(r);
  if (!o.only || o.only == 'B')
    for (auto& r : run_shape<P::vit_base>(o, "ViT-B/16")) rows.push_back(r);

  std::printf("\n| model | input | tokens | jepa s | jepa inputs/s | GFLOP/s | state MiB | torch s | torch inputs/s | "
              "speed-up | other load jepa / torch |\n");
  std::printf("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  double torch_gemm = 0;
  std::string torch_blas;
  for (const Row& r : rows) {
    char ts[32] = "n/a", tr[32] = "n/a", sp[32] = "n/a";
    if (r.torch.ok) {
      std::snprintf(ts, sizeof ts, "%.4f", r.torch.median_s);
      std::snprintf(tr, sizeof tr, "%.2f", 1.0 / r.torch.median_s);
      std::snprintf(sp, sizeof sp, "%.2fx", r.torch.median_s / r.jepa_s);
      torch_gemm = std::max(torch_gemm, r.torch.gemm_gflops);
      if (torch_blas.empty()) torch_blas = r.torch.blas;
    }
    std::printf("| %s | %s | %lld | %.4f | %.2f | %.1f | %.1f | %s | %s | %s | %.2f / %.2f |\n", r.model.c_str(), r.input.c_str(),
                static_cast<long long>(r.tokens), r.jepa_s, 1.0 / r.jepa_s, r.flops / r.jepa_s / 1e9, r.state_mib, ts, tr, sp,
                r.load_jepa, r.load_torch);
  }
  if (o.torch)
    std::printf("PyTorch: %s, %d threads, BLAS %s, best 1024^3 matmul %.1f GFLOP/s%s\n", o.python.c_str(), o.threads,
                torch_blas.empty() ? "?" : torch_blas.c_str(), torch_gemm,
                torch_gemm > 0 && torch_gemm < 20 ? " (WARNING: reference BLAS? install libopenblas0-pthread)" : "");
  std::printf("times are medians after a warm-up (%d runs per clip, >= 10 per image); other load = cores used by other\n"
              "processes during the stage (0 = quiet machine). No GPU in this run.\n",
              o.reps);
  std::fprintf(stderr, "done in %.0f s\n", g_progress.elapsed());
  return 0;
}
