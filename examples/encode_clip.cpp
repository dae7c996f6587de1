// encode_clip — the README's main job (for now): encode clips of the built-in synthetic video source
// with a V-JEPA 2 or 2.1 encoder on the CPU, print the feature shape, timing and throughput, and
// write a PCA feature map (first frame beside the top-3 principal components of its tokens) as PNG.
//
//   encode_clip [--model vit_small|vit_base|vit_large] [--family vjepa2|vjepa21] [--frames 16]
//               [--size 224] [--clips 2] [--seed 0] [--png encode_clip.png]
// Weights are randomly initialised with the recipe's initialisation (loading released checkpoints
// is a later issue); the point here is the shapes, the speed and the pipeline.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>

#include "cli.hpp"
#include "jepa/data/synthetic_video.hpp"
#include "jepa/eval/pca.hpp"
#include "jepa/io/png.hpp"
#include "jepa/jepa.hpp"

using namespace jepa;
using namespace jepa::models;
namespace P = jepa::models::presets;

namespace {

struct Options {
  std::string model = "vit_small", family = "vjepa2", png = "encode_clip.png";
  index_t frames = 16, size = 224, clips = 2;
  std::uint64_t seed = 0;
};

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
      "  --png PATH   PCA feature map of the first clip (default encode_clip.png; '' to skip)");
}

Options parse(int argc, char** argv) {
  Options o;
  for (examples::Args args(argc, argv); args.next();) {
    if (args.is("--help") || args.is("-h")) { usage(); std::exit(0); }
    else if (args.is("--model")) o.model = args.value();
    else if (args.is("--family")) o.family = args.value();
    else if (args.is("--frames")) o.frames = static_cast<index_t>(args.integer());
    else if (args.is("--size")) o.size = static_cast<index_t>(args.integer());
    else if (args.is("--clips")) o.clips = static_cast<index_t>(args.integer());
    else if (args.is("--seed")) o.seed = args.count();
    else if (args.is("--png")) o.png = args.value();
    else args.unknown();
  }
  if (o.clips < 1) fail_field("--clips", o.clips, "must be >= 1");
  return o;
}

template <class Enc>
int run(const Options& o, const VitConfig& cfg, const char* name) {
  Enc enc(cfg);
  const InputGeometry geom{o.frames, o.size, o.size};
  const nn::TokenGrid grid = enc.grid(geom);  // validates frames and size with a clear message
  std::printf("model      %s (%s), %zu parameters, depth %d, D %ld, heads %ld\n", name, o.family.c_str(),
              enc.param_count(), Enc::depth, static_cast<long>(cfg.embed_dim), static_cast<long>(cfg.num_heads));
  std::printf("input      %ld clip(s) of %ldx3x%ldx%ld (synthetic moving shapes) -> %ldx%ldx%ld = %ld tokens\n",
              static_cast<long>(o.clips), static_cast<long>(o.frames), static_cast<long>(o.size),
              static_cast<long>(o.size), static_cast<long>(grid.t), static_cast<long>(grid.h),
              static_cast<long>(grid.w), static_cast<long>(grid.size()));

  nn::ParameterSet<float> params(enc.layout());
  params.init(o.seed);
  auto state = enc.make_state(Mode::inference, 1, geom);
  std::printf("memory     parameters %.1f MiB, activations %.1f MiB (inference state)\n",
              params.numel() * 4.0 / (1 << 20), state.bytes() / double(1 << 20));

  data::SyntheticVideo source({o.frames, o.size, o.size, 2, 4, o.seed});
  std::vector<float> clip(static_cast<std::size_t>(3 * o.frames * o.size * o.size));
  const double N = static_cast<double>(grid.size()), D = static_cast<double>(cfg.embed_dim);
  const double flops = Enc::depth * (2 * N * (4 * D * D + 2 * D * static_cast<double>(cfg.mlp_hidden)) + 4 * N * N * D) +
                       2 * N * D * 3 * Enc::video_tokenizer_type::tubelet * 256.0;
  double total = 0, first_mean = 0, first_std = 0;
  std::vector<float> first;
  for (index_t c = 0; c < o.clips; ++c) {
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
  std::printf("timing     %.3f s per clip forward (%.1f GFLOP/s, %.2f TFLOP per clip)\n",
              total / static_cast<double>(o.clips), flops / (total / static_cast<double>(o.clips)) * 1e-9, flops * 1e-12);

  if (!o.png.empty()) {
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
  if (o.family == "vjepa21") return run<P::VJepa21Encoder<S>>(o, P::vjepa21_config(S), S.name.data());
  throw ConfigError("jepa: --family = '" + o.family + "' is invalid: use vjepa2 or vjepa21");
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Options o = parse(argc, argv);
    if (o.model == "vit_small") return dispatch_family<P::vit_small>(o);
    if (o.model == "vit_base") return dispatch_family<P::vit_base>(o);
    if (o.model == "vit_large") return dispatch_family<P::vit_large>(o);
    throw ConfigError("jepa: --model = '" + o.model + "' is invalid: use vit_small, vit_base or vit_large");
  } catch (const jepa::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
}
