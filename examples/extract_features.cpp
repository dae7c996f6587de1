// extract_features — encode a video, a folder of frames or an image with released JEPA weights and
// write the features as .npy plus a PCA feature map as PNG. See --help (usage() below).
//
// Pipeline: io::load_media (FFmpeg / stb decoding, the reference's frame window, EvalTransform:
// short side → int(crop·256/224), centre crop, ImageNet normalisation) → models::FeatureExtractor
// (Mode::inference, weights through models::Checkpoint: converted official files or Hugging Face
// safetensors) → io::write_npy and eval::pca_feature_map.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <filesystem>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "cli.hpp"
#include "jepa/core/memory_budget.hpp"
#include "jepa/data/synthetic_video.hpp"
#include "jepa/eval/feature_map.hpp"
#include "jepa/io/media.hpp"
#include "jepa/io/npy.hpp"
#include "jepa/io/png.hpp"
#include "jepa/models/inference.hpp"
#include "jepa/models/presets.hpp"

using namespace jepa;
using namespace jepa::models;
namespace P = jepa::models::presets;
namespace fs = std::filesystem;

namespace {

void usage() {
  std::puts(
      "extract_features — JEPA features of a video, frame folder or image, as .npy, plus a PCA feature map\n"
      "\n"
      "usage: extract_features INPUT [options]\n"
      "       extract_features --synthetic [options]\n"
      "\n"
      "INPUT\n"
      "  a video file (any container and codec FFmpeg decodes: mp4, mkv, webm, avi, mov, ...),\n"
      "  a folder of frames (its .png/.jpg/... files sorted by name are frames 0, 1, ...),\n"
      "  or an image (.png .jpg .jpeg .bmp .tga .gif .ppm .pgm .pnm).\n"
      "  --synthetic               use the built-in synthetic video instead (no file needed)\n"
      "\n"
      "Weights\n"
      "  --weights FILE            a .safetensors checkpoint: an official .pt converted once with\n"
      "                            tools/convert_checkpoint.py, or a Hugging Face VJEPA2Model file\n"
      "  --section NAME            the checkpoint section to load (default, as the official code: V-JEPA 2\n"
      "                            'encoder'; 2.1 'ema_encoder' then 'target_encoder'; I-JEPA 'target_encoder')\n"
      "  --family vjepa2|vjepa21|ijepa   model family (default: detected from the checkpoint)\n"
      "  --model NAME              vit_tiny vit_small vit_base vit_large vit_huge vit_giant vit_gigantic\n"
      "                            (default: detected from the checkpoint; giant/gigantic are the 22/26-head\n"
      "                            'xformers' shapes for V-JEPA 2/2.1 and the 16-head ones for I-JEPA)\n"
      "  --patch 14|16             I-JEPA patch size (default: detected; 14 without a checkpoint)\n"
      "  --random-weights SEED     no checkpoint: the recipe's random initialisation (demos and tests)\n"
      "\n"
      "Sampling and preprocessing (the reference's evaluation pipeline)\n"
      "  --frames N                frames per clip (default 16; 0 = every step-th frame to the end)\n"
      "  --frame-step K            take every K-th frame (default 1 unless --fps)\n"
      "  --fps F                   target rate: step = ceil(native fps) div F (V-JEPA 2's fps mode)\n"
      "  --start S                 first frame (default 0)\n"
      "  --folder-fps R            native rate of a frame folder (needed with --fps)\n"
      "  --crop C                  output side (default 256; 384 for the 384 px models; 224 for I-JEPA);\n"
      "                            the short side is resized to int(C*256/224), then centre-cropped.\n"
      "                            0 keeps the native size (it must be a multiple of the patch size)\n"
      "  --image-frames N          V-JEPA 2 images are repeated to N frames (default: one tubelet, 2;\n"
      "                            16 = the IN1K evaluation protocol). 2.1 uses its image tokenizer,\n"
      "                            I-JEPA its 2-D patches; an INPUT of one frame is an image.\n"
      "\n"
      "Outputs\n"
      "  --out FILE.npy            tokens (1, N, D) float32, N = T'*H'*W' in (t, h, w) order\n"
      "                            (default features.npy); next to it: FILE_pooled.npy (1, D) mean over\n"
      "                            tokens, FILE_grid.npy [T', H', W'], FILE_tap{j}.npy (2.1: the 4\n"
      "                            hierarchical taps), FILE_layer{l}.npy (--layers)\n"
      "  --layers l1,l2,...        also write these blocks' outputs (0-based; through the final norm, as\n"
      "                            the official out_layers)\n"
      "  --png FILE.png            PCA feature map: first frame | top-3 components of its tokens as RGB\n"
      "                            (default features.png; '' to skip)\n"
      "  --threads N               CPU threads, 1 to 4096 (default: OMP_NUM_THREADS or all cores)\n"
      "  --precision f32|bf16      GEMM precision (default f32); bf16 rounds GEMM inputs to bfloat16 and\n"
      "                            accumulates in fp32 (AMX or AVX512-BF16; fp32 where the CPU has\n"
      "                            neither): ~2x faster, token cosine to fp32 >= 0.999\n"
      "  -h, --help                this text\n"
      "\n"
      "The output paths are checked before the work, and the memory the input and the model need is\n"
      "estimated before anything large is allocated: a run that cannot fit is refused with the options\n"
      "that set its size. Features that come out non-finite (NaN or infinite) are an error, not an output.\n"
      "\n"
      "Examples\n"
      "  /usr/bin/python3 tools/convert_checkpoint.py vitl.pt vitl.safetensors\n"
      "  extract_features clip.mp4 --weights vitl.safetensors --fps 4 --out clip.npy --png clip.png\n"
      "  extract_features photo.jpg --weights vjepa2_1_vitb_dist_vitG_384.safetensors --crop 384\n"
      "  extract_features --synthetic --model vit_tiny --random-weights 0 --frames 4 --crop 64\n");
  examples::print_gemm_help_line();
}

struct Options {
  std::string input, weights, section, family, model, out = "features.npy", png = "features.png";
  bool synthetic = false, random = false, have_section = false;
  std::uint64_t seed = 0;
  int patch = 0, threads = 0;
  backend::cpu::MatmulPrecision precision = backend::cpu::MatmulPrecision::f32;
  io::MediaOptions media;
  index_t image_frames = 0;
  std::vector<int> layers;
};

// What main reports when memory runs out anyway: the step, and the options that set the size.
const char* g_stage = "reading the options";

/// An integer option's value within [lo, hi], else a ConfigError naming the option and the range.
long long in_range(examples::Args& args, const char* name, long long lo, long long hi, const char* meaning = "") {
  const long long v = args.integer();
  if (v < lo || v > hi) fail_field(name, v, jepa::detail::cat("must be in [", lo, ", ", hi, "]", meaning));
  return v;
}

Options parse(int argc, char** argv) {
  Options o;
  o.media.crop = 256;
  // Every value is range-checked as it is read, in the command line's terms; what depends on the
  // model (patch and tubelet multiples, block indices) is checked in run() before any work.
  for (examples::Args args(argc, argv); args.next();) {
    if (args.is("-h") || args.is("--help")) {
      usage();
      std::exit(0);
    } else if (args.is("--synthetic")) o.synthetic = true;
    else if (args.is("--weights")) o.weights = args.value();
    else if (args.is("--section")) o.section = args.value(), o.have_section = true;
    else if (args.is("--family")) o.family = args.value();
    else if (args.is("--model")) o.model = args.value();
    else if (args.is("--patch")) {
      o.patch = static_cast<int>(args.integer());
      if (o.patch != 14 && o.patch != 16) fail_field("--patch", o.patch, "I-JEPA releases use 14 or 16");
    } else if (args.is("--random-weights")) o.random = true, o.seed = args.count();
    else if (args.is("--frames")) o.media.frames = in_range(args, "--frames", 0, 1 << 20, " (0 = every step-th frame to the end)");
    else if (args.is("--frame-step")) o.media.frame_step = static_cast<int>(in_range(args, "--frame-step", 1, 1 << 30));
    else if (args.is("--fps")) o.media.target_fps = static_cast<int>(in_range(args, "--fps", 1, 1000));
    else if (args.is("--start")) o.media.start = in_range(args, "--start", 0, 1LL << 40, " (a frame index)");
    else if (args.is("--folder-fps")) {
      o.media.folder_fps = args.number();
      if (!(std::isfinite(o.media.folder_fps) && o.media.folder_fps > 0 && o.media.folder_fps <= 1e6))
        fail_field("--folder-fps", o.media.folder_fps, "must be a finite frame rate in (0, 1e6]");
    } else if (args.is("--crop")) o.media.crop = static_cast<int>(in_range(args, "--crop", 0, 1 << 16, " (0 = native size)"));
    else if (args.is("--image-frames")) o.image_frames = in_range(args, "--image-frames", 1, 1 << 20);
    else if (args.is("--out")) o.out = args.value();
    else if (args.is("--png")) o.png = args.value();
    else if (args.is("--threads")) o.threads = static_cast<int>(in_range(args, "--threads", 1, 4096));
    else if (args.is("--precision")) o.precision = backend::cpu::parse_matmul_precision(args.value(), "--precision");
    else if (args.is("--layers")) {
      for (const long long l : args.integer_list()) {
        if (l < 0 || l > 1024) fail_field("--layers", l, "block indices must be in [0, depth of the model)");
        o.layers.push_back(static_cast<int>(l));
      }
    } else if (args.is_option()) args.unknown();
    else if (o.input.empty()) o.input = args.flag();
    else throw ConfigError(jepa::detail::cat("jepa: a second input '", args.flag(), "' was given; extract_features takes one"));
  }
  if (o.input.empty() && !o.synthetic) throw ConfigError("jepa: no INPUT given (a video, a frame folder or an image; or --synthetic; see --help)");
  if (!o.input.empty() && o.synthetic) throw ConfigError("jepa: INPUT '" + o.input + "' and --synthetic exclude each other");
  if (o.weights.empty() && !o.random)
    throw ConfigError("jepa: no --weights FILE.safetensors given; pass one, or --random-weights SEED for a demo");
  if (!o.weights.empty() && o.random) throw ConfigError("jepa: --weights and --random-weights exclude each other");
  if (o.out.size() < 5 || o.out.substr(o.out.size() - 4) != ".npy")
    throw ConfigError(jepa::detail::cat("jepa: --out = '", o.out, "' must end in .npy"));
  if (o.media.target_fps > 0 && o.media.frame_step > 0)
    throw ConfigError("jepa: --fps and --frame-step exclude each other (--fps derives the step from the native frame rate)");
  for (std::size_t j = 0; j < o.layers.size(); ++j)
    for (std::size_t i = 0; i < j; ++i)
      if (o.layers[i] == o.layers[j]) fail_field("--layers", o.layers[j], "each block may be listed once");
  return o;
}

/// The library names its options by their C++ fields (MediaOptions.start); the command line calls
/// them --start. Applied to the messages of library errors that reach the user.
std::string in_user_terms(std::string m) {
  static const std::pair<const char*, const char*> names[] = {
      {"MediaOptions.frames_multiple_of", "the tubelet length"},
      {"MediaOptions.frame_step", "--frame-step"},
      {"MediaOptions.target_fps", "--fps"},
      {"MediaOptions.folder_fps", "--folder-fps"},
      {"MediaOptions.frames", "--frames"},
      {"MediaOptions.start", "--start"},
      {"MediaOptions.crop", "--crop"},
      {"EncodeOptions.image_frames", "--image-frames"},
      {"SyntheticVideoConfig.frames", "--frames"},
      {"SyntheticVideoConfig.height/width", "--crop"},
      {"needed for target_fps (use frame_step)", "needed for --fps (use --frame-step)"},
      {"target_fps needs", "--fps needs"},
  };
  for (const auto& [lib, cli] : names)
    for (std::size_t at = m.find(lib); at != std::string::npos; at = m.find(lib, at + std::strlen(cli)))
      m.replace(at, std::strlen(lib), cli);
  return m;
}

// ---------------------------------------------------------------------------------------------------
// Architecture from the checkpoint
// ---------------------------------------------------------------------------------------------------
void detect(const Checkpoint& ck, Options& o) {
  const CheckpointSection* sec = nullptr;
  if (o.have_section) sec = ck.find_section(o.section);
  for (const char* n : {"ema_encoder", "target_encoder", "encoder", ""})
    if (!sec) sec = ck.find_section(n);
  if (!sec || !sec->has("patch_embed.proj.weight")) {
    if (o.family.empty() || o.model.empty())
      throw ConfigError(jepa::detail::cat("jepa: cannot detect the encoder of '", o.weights, "' (sections: ", ck.section_list(),
                                          "); pass --family, --model and --section"));
    return;
  }
  const Shape pe = *sec->shape("patch_embed.proj.weight");
  const bool conv2d = pe.rank() == 4;
  const std::string fam = sec->has("norms_block.0.weight") ? "vjepa21" : conv2d ? "ijepa" : "vjepa2";
  if (o.family.empty()) o.family = fam;
  if (conv2d && o.patch == 0) o.patch = static_cast<int>(pe[2]);
  if (o.model.empty()) {
    const auto fc1 = sec->shape("blocks.0.mlp.fc1.weight");
    const auto shapes = matching_shapes(pe[0], sec->count_indexed("blocks.", ".norm1.weight"), fc1 ? (*fc1)[0] : 0, conv2d);
    if (shapes.empty()) throw ConfigError(jepa::detail::cat("jepa: '", o.weights, "': ", describe_encoder(*sec)));
    const std::string n(shapes[0].name);
    o.model = n.substr(0, n.find("_xformers"));
  }
  std::printf("checkpoint %s: %s %s (section %s)\n", o.weights.c_str(), o.family.c_str(), o.model.c_str(),
              sec->label().c_str());
}

// ---------------------------------------------------------------------------------------------------
// The run, for one encoder type
// ---------------------------------------------------------------------------------------------------
std::string sibling(const std::string& out, const std::string& suffix) {
  return jepa::detail::cat(out.substr(0, out.size() - 4), suffix, ".npy");
}

/// Bytes of the encoder's inference State for `tokens` tokens of clips of `piece_frames` frames (the
/// tubelet, or 1 for an image), with `layers`. A State's plan is affine in the token count (every
/// buffer is rows × a fixed width), so it is planned for real at two small geometries (64 and 128
/// tokens; a few MiB) and extrapolated in long double, which stays meaningful for sizes whose plan
/// itself would overflow.
template <class Enc>
long double planned_state_bytes(const Enc& enc, index_t piece_frames, long double tokens, const std::vector<int>& layers) {
  const index_t p = Enc::video_tokenizer_type::patch;
  const InputGeometry g1{piece_frames, 8 * p, 8 * p}, g2{piece_frames, 8 * p, 16 * p};
  const auto s1 = static_cast<long double>(enc.make_state(Mode::inference, 1, g1, enc.grid(g1).size(), layers).bytes());
  const auto s2 = static_cast<long double>(enc.make_state(Mode::inference, 1, g2, enc.grid(g2).size(), layers).bytes());
  const long double t1 = static_cast<long double>(enc.grid(g1).size()), t2 = static_cast<long double>(enc.grid(g2).size());
  return std::max(0.0L, s1 + (s2 - s1) / (t2 - t1) * (tokens - t1));
}

std::size_t to_bytes(long double b) { return bytes_of(std::max(b, 1.0L)); }

/// Throws NumericError when any feature is NaN or infinite: such features must not be written as if
/// they were a result.
void require_finite(const std::vector<float>& v, const char* what, const Options& o, index_t dim) {
  std::size_t bad = 0, first = v.size();
  for (std::size_t i = 0; i < v.size(); ++i)
    if (!std::isfinite(v[i])) {
      if (!bad) first = i;
      ++bad;
    }
  if (!bad) return;
  const std::string weights = o.weights.empty() ? jepa::detail::cat("the random weights (seed ", o.seed, ")")
                                                : "the weights in '" + o.weights + "'";
  throw NumericError(jepa::detail::cat("jepa: ", weights, " produce non-finite features: ", bad, " of ", v.size(), " ", what,
                                       " values are NaN or infinite (first at token ", first / static_cast<std::size_t>(dim),
                                       ", channel ", first % static_cast<std::size_t>(dim),
                                       "); nothing was written. The checkpoint holds values too large for float32 arithmetic, ",
                                       "or is damaged"));
}

template <class Enc>
int run(const Options& o, const VitConfig& cfg, const std::string& name) {
  using clock = std::chrono::steady_clock;
  using Ex = FeatureExtractor<Enc>;
  constexpr index_t t = Enc::video_tokenizer_type::tubelet;
  constexpr index_t p = Enc::video_tokenizer_type::patch;

  // Options that depend on the model, in the command line's terms, before any work.
  g_stage = "checking the options";
  for (const int l : o.layers)
    if (l >= Enc::depth) fail_field("--layers", l, jepa::detail::cat("block indices must be in [0, ", Enc::depth, ") for ", name));
  if (o.media.crop > 0 && o.media.crop % p)
    fail_field("--crop", o.media.crop, jepa::detail::cat("must be a multiple of the patch size ", p, " of ", name, " (or 0 for the native size)"));
  if (o.media.frames > 1 && o.media.frames % t)
    fail_field("--frames", o.media.frames, jepa::detail::cat("must be a multiple of the tubelet length ", t, " of ", name,
                                                             " (or 1 for a single frame, 0 for every frame)"));
  if constexpr (!Ex::image_tokenizer && !Ex::single_frame)
    if (o.image_frames % t)
      fail_field("--image-frames", o.image_frames, jepa::detail::cat("must be a multiple of the tubelet length ", t, " of ", name));

  // Input: decoded and shrunk frame by frame (io::load_media checks its own memory).
  g_stage = "loading the input";
  io::MediaClip clip;
  const auto t0 = clock::now();
  if (o.synthetic) {
    data::SyntheticVideoConfig sc;
    sc.frames = o.media.frames > 0 ? o.media.frames : 16;
    sc.height = sc.width = o.media.crop > 0 ? o.media.crop : 224;
    require_host_memory(bytes_of(3, sc.frames, sc.height, sc.width, sizeof(float)),
                        jepa::detail::cat("the synthetic clip (3x", sc.frames, "x", sc.height, "x", sc.width, " floats)"),
                        "lower --frames or --crop");
    data::SyntheticVideo src(sc);
    clip.pixels.resize(static_cast<std::size_t>(3 * sc.frames * sc.height * sc.width));
    src.batch(0, 1, clip.pixels.data());
    clip.frames = sc.frames, clip.height = sc.height, clip.width = sc.width;
    clip.kind = sc.frames == 1 ? io::MediaKind::image : io::MediaKind::video;
    clip.source = "synthetic video";
  } else {
    io::MediaOptions mo = o.media;
    mo.frames_multiple_of = t;
    clip = io::load_media(o.input, mo);
  }
  const double t_load = std::chrono::duration<double>(clock::now() - t0).count();
  std::printf("input      %s (%s): %lld frame(s) -> 3x%lldx%lldx%lld in %.2f s\n", clip.source.c_str(),
              io::media_kind_name(clip.kind), static_cast<long long>(clip.frames), static_cast<long long>(clip.frames),
              static_cast<long long>(clip.height), static_cast<long long>(clip.width), t_load);
  if (clip.height % p || clip.width % p)
    throw ConfigError(jepa::detail::cat("jepa: '", clip.source, "' is ", clip.width, "x", clip.height,
                                        " at its native size (--crop 0), not a multiple of the patch size ", p, " of ", name,
                                        "; pass --crop (e.g. --crop 256)"));

  // Memory, estimated before the model exists: parameters (and the checkpoint read), the inference
  // State, the feature copies, an image repeated in time, the PCA map.
  g_stage = "estimating the memory";
  const bool image = clip.frames == 1;
  index_t F = clip.frames;
  if constexpr (!Ex::image_tokenizer && !Ex::single_frame)
    if (image) F = o.image_frames > 0 ? o.image_frames : t;
  const index_t piece = (Ex::image_tokenizer && image) ? 1 : t;
  {
    const Enc enc(cfg);  // layout only
    const long double tokens = static_cast<long double>(F / piece) * static_cast<long double>(clip.height / p) *
                               static_cast<long double>(clip.width / p);
    const long double D = static_cast<long double>(cfg.embed_dim);
    const long double params_b = static_cast<long double>(enc.param_count()) * 4 * (o.weights.empty() ? 1 : 2);
    const long double state_b = planned_state_bytes(enc, piece, tokens, o.layers);
    const long double copies = 1.0L + Enc::num_taps + static_cast<long double>(o.layers.size());
    const long double hw = static_cast<long double>(clip.height / p) * static_cast<long double>(clip.width / p);
    const long double other_b = tokens * (D * 4 * copies + 8) +
                                (image && F > 1 ? 3.0L * F * clip.height * clip.width * 4 : 0.0L) + hw * D * 8 * 2 +
                                2.0L * clip.height * clip.width * 3;
    require_host_memory(to_bytes(params_b + state_b + other_b),
                        jepa::detail::cat("encoding a ", F, "x", clip.height, "x", clip.width, " input with ", name,
                                          " (parameters ", format_bytes(to_bytes(params_b)), ", activations ",
                                          format_bytes(to_bytes(state_b)), ", features and maps ", format_bytes(to_bytes(other_b)), ")"),
                        "lower --crop or --frames (or --image-frames), list fewer --layers, or use a smaller --model");
  }

  g_stage = "loading the weights";
  Ex ex(cfg);
  if (!o.weights.empty()) {
    const Checkpoint ck(o.weights);
    WeightsOptions wo;
    if (o.have_section) wo.section = o.section;
    const auto rep = ex.load(ck, wo);
    std::printf("weights    %s: %s\n", o.weights.c_str(), rep.summary().c_str());
  } else {
    ex.init(o.seed);
    std::printf("weights    random (seed %llu): the recipe's initialisation, not a trained model\n",
                static_cast<unsigned long long>(o.seed));
  }
  std::printf("model      %s, %zu parameters, depth %d, D %ld, heads %ld\n", name.c_str(), ex.encoder().param_count(),
              Enc::depth, static_cast<long>(cfg.embed_dim), static_cast<long>(cfg.num_heads));

  // Encode.
  g_stage = "encoding";
  EncodeOptions eo;
  eo.layers = o.layers;
  eo.image_frames = o.image_frames;
  std::fprintf(stderr, "[1/2] encoding %s ...\n", image ? "an image" : "a clip");
  const auto t1 = clock::now();
  const Features<float> f =
      image ? ex.encode_image(TensorView<const float, 4>(clip.pixels.data(), {1, 3, clip.height, clip.width}), eo)
            : ex.encode(TensorView<const float, 5>(clip.pixels.data(), {1, 3, clip.frames, clip.height, clip.width}), eo);
  const double t_enc = std::chrono::duration<double>(clock::now() - t1).count();
  std::fprintf(stderr, "[2/2] encoded in %.2f s (%.0f tokens/s), ETA 0 s\n", t_enc,
               static_cast<double>(f.tokens_per_sample) / std::max(t_enc, 1e-9));
  std::printf("features   (B, N, D) = (1, %lld, %lld) on a %lldx%lldx%lld token grid, %.2f s\n",
              static_cast<long long>(f.tokens_per_sample), static_cast<long long>(f.dim), static_cast<long long>(f.grid.t),
              static_cast<long long>(f.grid.h), static_cast<long long>(f.grid.w), t_enc);
  require_finite(f.tokens, "token", o, f.dim);
  for (const auto& tap : f.taps) require_finite(tap, "tap", o, f.dim);
  for (const auto& layer : f.layers) require_finite(layer, "layer", o, f.dim);
  require_finite(f.pooled, "pooled", o, f.dim);

  // Outputs.
  g_stage = "writing the outputs";
  const Shape tok{1, f.tokens_per_sample, f.dim};
  io::write_npy(o.out, tok, f.tokens);
  io::write_npy(sibling(o.out, "_pooled"), Shape{1, f.dim}, f.pooled);
  io::write_npy(sibling(o.out, "_grid"), Shape{3}, std::vector<std::int64_t>{f.grid.t, f.grid.h, f.grid.w});
  std::printf("wrote      %s (tokens), %s, %s", o.out.c_str(), sibling(o.out, "_pooled").c_str(), sibling(o.out, "_grid").c_str());
  for (std::size_t j = 0; j < f.taps.size(); ++j) {
    io::write_npy(sibling(o.out, jepa::detail::cat("_tap", j)), tok, f.taps[j]);
    std::printf(", %s", sibling(o.out, jepa::detail::cat("_tap", j)).c_str());
  }
  for (std::size_t j = 0; j < f.layers.size(); ++j) {
    io::write_npy(sibling(o.out, jepa::detail::cat("_layer", f.layer_ids[j])), tok, f.layers[j]);
    std::printf(", %s", sibling(o.out, jepa::detail::cat("_layer", f.layer_ids[j])).c_str());
  }
  std::printf("\n");
  if (!o.png.empty()) {
    const index_t Fc = clip.frames, H = clip.height, W = clip.width;
    const TensorView<const float, 3> frame0(clip.pixels.data(), {3, H, W}, {Fc * H * W, W, 1});
    eval::pca_feature_map(f.tokens.data(), f.grid.h, f.grid.w, f.dim, frame0, o.png);
    std::printf("wrote      %s (frame 0 | PCA of its %lld tokens)\n", o.png.c_str(), static_cast<long long>(f.grid.h * f.grid.w));
  }
  return 0;
}

const P::EncoderShape& shape_named(const std::string& model, const std::string& family) {
  const bool xf = family != "ijepa";
  if (model == "vit_tiny") return P::vit_tiny;
  if (model == "vit_small") return P::vit_small;
  if (model == "vit_base") return P::vit_base;
  if (model == "vit_large") return P::vit_large;
  if (model == "vit_huge") return P::vit_huge;
  if (model == "vit_giant") return xf ? P::vit_giant_xformers : P::vit_giant;
  if (model == "vit_gigantic") return xf ? P::vit_gigantic_xformers : P::vit_gigantic;
  throw ConfigError(jepa::detail::cat("jepa: --model = '", model,
                                      "' is invalid: use vit_tiny, vit_small, vit_base, vit_large, vit_huge, vit_giant or vit_gigantic"));
}

int dispatch(const Options& o) {
  const P::EncoderShape& S = shape_named(o.model, o.family);
  const std::string name = jepa::detail::cat(o.family, " ", S.name);
  if (o.family == "vjepa2") {
    const VitConfig c = P::vjepa2_config(S);
    switch (S.depth) {
      case 12: return run<P::VJepa2Encoder<P::vit_base>>(o, c, name);
      case 24: return run<P::VJepa2Encoder<P::vit_large>>(o, c, name);
      case 32: return run<P::VJepa2Encoder<P::vit_huge>>(o, c, name);
      case 40: return run<P::VJepa2Encoder<P::vit_giant_xformers>>(o, c, name);
      default: break;
    }
  } else if (o.family == "vjepa21") {
    const VitConfig c = P::vjepa21_config(S);
    switch (S.depth) {
      case 12: return run<P::VJepa21Encoder<P::vit_base>>(o, c, name);
      case 24: return run<P::VJepa21Encoder<P::vit_large>>(o, c, name);
      case 40: return run<P::VJepa21Encoder<P::vit_giant_xformers>>(o, c, name);
      case 48: return run<P::VJepa21Encoder<P::vit_gigantic_xformers>>(o, c, name);
      default: break;
    }
  } else if (o.family == "ijepa") {
    const VitConfig c = P::ijepa_config(S);
    const int p = o.patch ? o.patch : 14;
    if (p == 14 && S.depth == 32) return run<P::IJepaEncoder<P::vit_huge>>(o, c, name);
    using P16h = VitEncoder<32, tokenizers::Patch2d<16>, SinCos2d, FinalNorm, float>;
    using P16g = VitEncoder<40, tokenizers::Patch2d<16>, SinCos2d, FinalNorm, float>;
    if (p == 16 && S.depth == 32) return run<P16h>(o, c, name);
    if (p == 16 && S.depth == 40) return run<P16g>(o, c, name);
    throw ConfigError(jepa::detail::cat("jepa: I-JEPA is released as ViT-H/14, ViT-H/16 and ViT-g/16; --model ", o.model,
                                        " with --patch ", p, " is not built into this example"));
  } else {
    throw ConfigError(jepa::detail::cat("jepa: --family = '", o.family, "' is invalid: use vjepa2, vjepa21 or ijepa"));
  }
  throw ConfigError(jepa::detail::cat("jepa: ", o.family, " ", S.name, " (depth ", S.depth, ") is not built into this example"));
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  const auto sizes = [&] {
    return jepa::detail::cat("the memory is set by --crop ", o.media.crop, ", --frames ", o.media.frames,
                             o.media.crop == 0 ? " and the input's native size" : "", ", --layers and --model");
  };
  try {
    o = parse(argc, argv);
#ifdef _OPENMP
    if (o.threads > 0) omp_set_num_threads(o.threads);
#endif
    backend::cpu::set_matmul_precision(o.precision);
    std::fprintf(stderr, "extract_features: gemm %s\n", backend::cpu::gemm_report().c_str());
    // Outputs are checked before the work, so a bad path does not cost a whole run.
    io::check_writable(o.out, "--out");
    if (!o.png.empty()) io::check_writable(o.png, "--png");
    g_stage = "reading the checkpoint";
    if (!o.weights.empty()) detect(Checkpoint(o.weights), o);
    if (o.family.empty()) o.family = "vjepa2";
    if (o.model.empty()) o.model = "vit_large";
    return dispatch(o);
  } catch (const MemoryError& e) {
    const std::string m = in_user_terms(e.what());
    // The program's estimates name their options; an arena refused inside the library names only what
    // it holds, so the options that set the size are added.
    const bool generic = m.find(" --") == std::string::npos;
    std::fprintf(stderr, "extract_features: error: %s%s\n", m.c_str(), generic ? ("; " + sizes()).c_str() : "");
  } catch (const jepa::Error& e) {
    std::fprintf(stderr, "extract_features: error: %s\n", in_user_terms(e.what()).c_str());
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "extract_features: error: jepa: out of memory (std::bad_alloc) while %s; %s\n", g_stage, sizes().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "extract_features: error: jepa: unexpected error while %s: %s\n", g_stage, e.what());
  } catch (...) {
    std::fprintf(stderr, "extract_features: error: jepa: unknown exception while %s\n", g_stage);
  }
  return 2;
}
