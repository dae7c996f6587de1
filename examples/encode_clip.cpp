// encode_clip — the README's main job (for now): encode clips of the built-in synthetic video source
// with a V-JEPA 2 or 2.1 encoder on the CPU, print the feature shape, timing and throughput, and
// write a PCA feature map (first frame beside the top-3 principal components of its tokens) as PNG.
//
//   encode_clip [--model vit_small|vit_base|vit_large] [--family vjepa2|vjepa21] [--frames 16]
//               [--size 224] [--clips 2] [--seed 0] [--png encode_clip.png]
// Weights are randomly initialised with the recipe's initialisation (loading released checkpoints
// is a later issue); the point here is the shapes, the speed and the pipeline.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <new>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>

#include "cli.hpp"
#include "jepa/core/memory_budget.hpp"
#include "jepa/data/synthetic_video.hpp"
#include "jepa/eval/pca.hpp"
#include "jepa/io/png.hpp"
#include "jepa/jepa.hpp"

using namespace jepa;
using namespace jepa::models;
namespace P = jepa::models::presets;

namespace {

// Bounds of the size options: generous (the memory estimate below refuses far smaller sizes on any
// real machine), but small enough that token counts and byte sizes stay exact in 64-bit integers.
constexpr long long kMaxSize = 1 << 20, kMaxFrames = 1 << 30, kMaxClips = 1LL << 31;

struct Options {
  std::string model = "vit_small", family = "vjepa2", png = "encode_clip.png";
  index_t frames = 16, size = 224, clips = 2;
  std::uint64_t seed = 0;
  backend::cpu::MatmulPrecision precision = backend::cpu::MatmulPrecision::f32;
};

// What main reports when memory runs out anyway: the step, and the options that set the size.
const char* g_stage = "reading the options";

void usage() {
  std::puts(
      "encode_clip: encode synthetic clips with a JEPA ViT encoder on the CPU\n"
      "  --model  vit_small|vit_base|vit_large   encoder shape            (default vit_small)\n"
      "  --family vjepa2|vjepa21                 V-JEPA 2 (tiled RoPE, final norm) or\n"
      "                                          V-JEPA 2.1 (interleaved RoPE, 4 taps)   (default vjepa2)\n"
      "  --frames N   clip length, a multiple of 2 (default 16)\n"
      "  --size S     square resolution, a multiple of 16 (default 224)\n"
      "  --clips K    number of clips to encode (default 2)\n"
      "  --seed N     synthetic data and weight seed (default 0)\n"
      "  --png PATH   PCA feature map of the first clip (default encode_clip.png; '' to skip)\n"
      "  --precision f32|bf16  GEMM precision (default f32; bf16: bfloat16 inputs, fp32 accumulation)\n"
      "The memory a configuration needs is estimated first; one that does not fit is refused.");
  examples::print_gemm_help_line();
}

Options parse(int argc, char** argv) {
  Options o;
  long long frames = o.frames, size = o.size, clips = o.clips;
  for (examples::Args args(argc, argv); args.next();) {
    if (args.is("--help") || args.is("-h")) { usage(); std::exit(0); }
    else if (args.is("--model")) o.model = args.value();
    else if (args.is("--family")) o.family = args.value();
    else if (args.is("--frames")) frames = args.integer();
    else if (args.is("--size")) size = args.integer();
    else if (args.is("--clips")) clips = args.integer();
    else if (args.is("--seed")) o.seed = args.count();
    else if (args.is("--png")) o.png = args.value();
    else if (args.is("--precision")) o.precision = backend::cpu::parse_matmul_precision(args.value(), "--precision");
    else args.unknown();
  }
  // Every option is checked here, in the command line's terms, before anything is built.
  if (o.model != "vit_small" && o.model != "vit_base" && o.model != "vit_large")
    throw ConfigError("jepa: --model = '" + o.model + "' is invalid: use vit_small, vit_base or vit_large");
  if (o.family != "vjepa2" && o.family != "vjepa21")
    throw ConfigError("jepa: --family = '" + o.family + "' is invalid: use vjepa2 or vjepa21");
  if (frames < 2 || frames > kMaxFrames || frames % 2)
    fail_field("--frames", frames, jepa::detail::cat("must be a multiple of 2 (the tubelet length) in [2, ", kMaxFrames, "]"));
  if (size < 16 || size > kMaxSize || size % 16)
    fail_field("--size", size, jepa::detail::cat("must be a multiple of 16 (the patch size) in [16, ", kMaxSize, "]"));
  if (clips < 1 || clips > kMaxClips) fail_field("--clips", clips, jepa::detail::cat("must be in [1, ", kMaxClips, "]"));
  o.frames = frames, o.size = size, o.clips = clips;
  return o;
}

/// Bytes of the encoder's inference State for `tokens` tokens of `frames`-frame clips. A State's plan
/// is affine in the token count (every buffer is rows × a fixed width), so it is planned for real at
/// two small geometries (64 and 128 tokens; a few MiB) and extrapolated in long double, which stays
/// meaningful for sizes whose plan itself would overflow.
template <class Enc>
long double planned_state_bytes(const Enc& enc, index_t frames_per_clip_piece, long double tokens) {
  const index_t p = Enc::video_tokenizer_type::patch;
  const auto s1 = static_cast<long double>(enc.make_state(Mode::inference, 1, {frames_per_clip_piece, 8 * p, 8 * p}).bytes());
  const auto s2 = static_cast<long double>(enc.make_state(Mode::inference, 1, {frames_per_clip_piece, 8 * p, 16 * p}).bytes());
  const long double per_token = (s2 - s1) / 64.0L;
  return std::max(0.0L, s1 + per_token * (tokens - 64.0L));
}

std::size_t to_bytes(long double b) { return bytes_of(std::max(b, 1.0L)); }

template <class Enc>
int run(const Options& o, const VitConfig& cfg, const char* name) {
  Enc enc(cfg);  // layout only: nothing allocated yet
  constexpr index_t t = Enc::video_tokenizer_type::tubelet, p = Enc::video_tokenizer_type::patch;
  const InputGeometry geom{o.frames, o.size, o.size};

  // Memory, estimated before anything large exists: parameters, the inference State, the clip, the
  // copy of clip 0's features, the PCA (double precision) and the PNG.
  g_stage = "estimating the memory";
  const long double T = static_cast<long double>(o.frames / t), HW = static_cast<long double>(o.size / p) * (o.size / p);
  const long double D = static_cast<long double>(cfg.embed_dim), S = static_cast<long double>(o.size);
  const long double params_b = static_cast<long double>(enc.param_count()) * 4;
  const long double state_b = planned_state_bytes(enc, t, T * HW);
  const long double other_b = 3.0L * static_cast<long double>(o.frames) * S * S * 4 + T * HW * D * 4 + 2 * HW * D * 8 + (2 * S + 8) * S * 3;
  require_host_memory(to_bytes(params_b + state_b + other_b),
                      jepa::detail::cat("encoding one ", o.frames, "x", o.size, "x", o.size, " clip with ", name, " (--frames ",
                                        o.frames, ", --size ", o.size, ", --model ", o.model, ": parameters ",
                                        format_bytes(to_bytes(params_b)), ", activations ", format_bytes(to_bytes(state_b)),
                                        ", clip and outputs ", format_bytes(to_bytes(other_b)), ")"),
                      "lower --size or --frames, or use a smaller --model (clips are encoded one at a time: --clips does not "
                      "change it)");

  g_stage = "planning the encoder";
  const nn::TokenGrid grid = enc.grid(geom);
  std::printf("model      %s (%s), %zu parameters, depth %d, D %ld, heads %ld\n", name, o.family.c_str(),
              enc.param_count(), Enc::depth, static_cast<long>(cfg.embed_dim), static_cast<long>(cfg.num_heads));
  std::printf("input      %ld clip(s) of %ldx3x%ldx%ld (synthetic moving shapes) -> %ldx%ldx%ld = %ld tokens\n",
              static_cast<long>(o.clips), static_cast<long>(o.frames), static_cast<long>(o.size),
              static_cast<long>(o.size), static_cast<long>(grid.t), static_cast<long>(grid.h),
              static_cast<long>(grid.w), static_cast<long>(grid.size()));

  g_stage = "allocating the parameters";
  nn::ParameterSet<float> params(enc.layout());
  params.init(o.seed);
  g_stage = "allocating the activations";
  auto state = enc.make_state(Mode::inference, 1, geom);
  std::printf("memory     parameters %.1f MiB, activations %.1f MiB (inference state)\n",
              params.numel() * 4.0 / (1 << 20), state.bytes() / double(1 << 20));

  g_stage = "generating the clips";
  data::SyntheticVideo source({o.frames, o.size, o.size, 2, 4, o.seed});
  std::vector<float> clip(static_cast<std::size_t>(3 * o.frames * o.size * o.size));
  const double N = static_cast<double>(grid.size()), Dd = static_cast<double>(cfg.embed_dim);
  const double flops = Enc::depth * (2 * N * (4 * Dd * Dd + 2 * Dd * static_cast<double>(cfg.mlp_hidden)) + 4 * N * N * Dd) +
                       2 * N * Dd * 3 * Enc::video_tokenizer_type::tubelet * 256.0;
  double total = 0, first_mean = 0, first_std = 0;
  std::vector<float> first;
  for (index_t c = 0; c < o.clips; ++c) {
    g_stage = "encoding";
    source.batch(static_cast<std::uint64_t>(c), 1, clip.data());
    const auto t0 = std::chrono::steady_clock::now();
    enc.forward(params.data(), TensorView<const float, 5>(clip.data(), {1, 3, o.frames, o.size, o.size}), nullptr, state);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    total += s;
    const double rate = static_cast<double>(c + 1) / total;
    std::fprintf(stderr, "\r[%ld/%ld] encoded, %.2f s/clip, %.1f GFLOP/s, ETA %.1f s   ", static_cast<long>(c + 1),
                 static_cast<long>(o.clips), total / static_cast<double>(c + 1), flops / s * 1e-9,
                 static_cast<double>(o.clips - c - 1) / rate);
    if (c == 0) {
      const auto out = enc.output(state);
      first.assign(out.data(), out.data() + out.numel());
      double m = 0, m2 = 0;
      for (float v : first) m += v, m2 += double(v) * v;
      first_mean = m / static_cast<double>(first.size());
      first_std = std::sqrt(m2 / static_cast<double>(first.size()) - first_mean * first_mean);
    }
  }
  std::fprintf(stderr, "\n");
  const auto out = enc.output(state);
  std::printf("features   (B, N, D) = (%ld, %ld, %ld)   mean %.4f  std %.4f (clip 0)\n", static_cast<long>(out.size(0)),
              static_cast<long>(out.size(1)), static_cast<long>(out.size(2)), first_mean, first_std);
  std::printf("gemm       %s\n", backend::cpu::gemm_report().c_str());
  std::printf("timing     %.3f s per clip forward (%.1f GFLOP/s, %.2f TFLOP per clip)\n",
              total / static_cast<double>(o.clips), flops / (total / static_cast<double>(o.clips)) * 1e-9, flops * 1e-12);

  if (!o.png.empty()) {
    g_stage = "writing the PNG";
    // Left: frame 0 of clip 0. Right: PCA (top 3 components → RGB) of the tokens of time slice 0.
    const int H = static_cast<int>(o.size), W = static_cast<int>(o.size);
    const index_t hw = grid.h * grid.w;
    const auto pcs = eval::pca_project(first.data(), hw, cfg.embed_dim, 3);
    source.batch(0, 1, clip.data());
    io::RgbImage img(2 * W + 8, H);
    std::fill(img.data.begin(), img.data.end(), std::uint8_t{255});
    const std::size_t plane = static_cast<std::size_t>(o.frames) * H * W;
    for (int y = 0; y < H; ++y)
      for (int x = 0; x < W; ++x) {
        for (int c = 0; c < 3; ++c) {
          const float v = clip[c * plane + static_cast<std::size_t>(y) * W + x] * data::kImagenetStd[c] + data::kImagenetMean[c];
          img.at(x, y)[c] = static_cast<std::uint8_t>(std::clamp(v, 0.0f, 1.0f) * 255.0f + 0.5f);
        }
        const index_t tok = (y / 16) * grid.w + (x / 16);
        for (int c = 0; c < 3; ++c) img.at(W + 8 + x, y)[c] = static_cast<std::uint8_t>(pcs[tok * 3 + c] * 255.0f + 0.5f);
      }
    io::write_png(o.png, img);
    std::printf("wrote      %s (frame 0 | PCA of its %ld tokens)\n", o.png.c_str(), static_cast<long>(hw));
  }
  return 0;
}

template <const P::EncoderShape& S>
int dispatch_family(const Options& o) {
  if (o.family == "vjepa2") return run<P::VJepa2Encoder<S>>(o, P::vjepa2_config(S), S.name.data());
  return run<P::VJepa21Encoder<S>>(o, P::vjepa21_config(S), S.name.data());
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  const auto sizes = [&] {
    return jepa::detail::cat("the memory is set by --size ", o.size, ", --frames ", o.frames, " and --model ", o.model);
  };
  try {
    o = parse(argc, argv);
    backend::cpu::set_matmul_precision(o.precision);
    // Outputs are checked before the work, so a bad path does not cost a whole run.
    if (!o.png.empty()) io::check_writable(o.png, "--png");
    if (o.model == "vit_small") return dispatch_family<P::vit_small>(o);
    if (o.model == "vit_base") return dispatch_family<P::vit_base>(o);
    return dispatch_family<P::vit_large>(o);
  } catch (const MemoryError& e) {
    const std::string m = e.what();
    // The program's estimates name their options; an arena refused inside the library names only what
    // it holds, so the options that set the size are added.
    const bool generic = m.find(" --") == std::string::npos;
    std::fprintf(stderr, "error: %s%s\n", m.c_str(), generic ? ("; " + sizes()).c_str() : "");
  } catch (const jepa::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "error: jepa: out of memory (std::bad_alloc) while %s; %s: lower them or use a smaller --model\n", g_stage,
                 sizes().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: jepa: unexpected error while %s: %s\n", g_stage, e.what());
  } catch (...) {
    std::fprintf(stderr, "error: jepa: unknown exception while %s\n", g_stage);
  }
  return 2;
}
