// ablation — a miniature of the V-JEPA 2.1 paper's ablation on the built-in synthetic video source.
//
// Four encoders with the same architecture size (vit_micro) and the same training budget:
//   random     the initialisation, untrained
//   vjepa2     V-JEPA 2 recipe: masked prediction loss only (tiled RoPE, final norm)
//   +context   + the 2.1 dense context loss (1/√dist weights, λ warm-up), one output level
//   +deep      + deep self-supervision: 4 hierarchical levels with the fusion predictor (full 2.1)
// and, on request (--encoders …,deeponly), deep self-supervision without the context loss.
// Each frozen encoder is scored on held-out clips by
//   motion direction (8 classes)   attentive probe, top-1 accuracy
//   foreground segmentation        linear per-token probe, mIoU at patch level
//   depth                          linear per-token probe, RMSE at patch level (depth in [0, 1])
// and writes the PCA feature maps of the same clip side by side (DIR/pca.png) and a Markdown table
// (DIR/results.md).
//
// The miniature's budget (24000 steps of batch 8, ~25 min per encoder on one core) is 1/10 of the
// recipe's 240k steps at 1/400 of its batch, so three recipe values are scaled to it, alike for every
// trained encoder (docs/results.md shows what they change):
//   - lr 2e-4: with the recipe's 5.25e-4 the effective rank of the micro model's target features fell
//     from 29 to 11 in 1200 steps, with 1e-3 to 8 in 1000; with 2e-4 it stays at 17–23;
//   - EMA momentum 0.9995: the target's time constant 1/(1 − m) = 2000 steps is a small part of the run,
//     as 0.99925 is a small part of the recipe's;
//   - the probes read the context encoder (`--target-features` for the EMA target the papers evaluate).
// Run it with OMP_NUM_THREADS=1: for a 64-token model the OpenMP fork/join costs more than it saves.
// Every trained encoder is written to DIR/encoder_<name>.npy and DIR/target_<name>.npy; `--reuse`
// loads them instead of training, to re-run the probes.
//
//   ablation [--steps 24000] [--lr 2e-4] [--ema 0.9995] [--target-features] [--frames 8] [--res 64]
//            [--batch 8] [--train-clips 2048] [--val-clips 512] [--probe-epochs 30] [--probe-depth 4]
//            [--reuse] [--seed 239]
//            [--encoders random,vjepa2,context,deep[,deeponly]] [--out ablation-run]
#include <chrono>
#include <cmath>
#include <sstream>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "cli.hpp"
#include "jepa/train/run_dir.hpp"
#include "jepa/data/synthetic_video.hpp"
#include "jepa/eval/attentive_probe.hpp"
#include "jepa/eval/feature_map.hpp"
#include "jepa/eval/linear_probe.hpp"
#include "jepa/eval/probe_training.hpp"
#include "jepa/models/jepa_presets.hpp"
#include "jepa/nn/pos_embed.hpp"
#include "jepa/io/npy.hpp"
#include "jepa/train/trainer.hpp"

#include <xtensor/xnpy.hpp>

using namespace jepa;
namespace P = jepa::models::presets;

namespace {

// "+deep (2.1)" → "deep_2_1": a file-name-safe form of a row name.
std::string file_stem(const std::string& name) {
  std::string out;
  for (const char c : name)
    if (std::isalnum(static_cast<unsigned char>(c))) out += c;
    else if (!out.empty() && out.back() != '_') out += '_';
  while (!out.empty() && out.back() == '_') out.pop_back();
  return out;
}

struct Options {
  std::uint64_t steps = 24000, seed = 239;
  double lr = 2e-4, ema = 0.9995;
  bool context_features = true;  // probe the context encoder (false: the EMA target encoder)
  bool standardize = false;      // z-score every feature channel with training-set statistics first
  int depth = 4;                 // encoder depth: 4 (vit_micro) or 8 (vit_micro8)
  std::string encoders = "random,vjepa2,context,deep";
  index_t frames = 8, res = 64, batch = 8, train_clips = 2048, val_clips = 512;
  int probe_epochs = 30;
  int probe_depth = 4;  // the recipe's pooler: 3 self-attention blocks on the tokens + the cross-attention block
  std::vector<double> probe_lrs{1e-3, 3e-3, 1e-2};
  bool reuse = false;   // load DIR/encoder_<name>.npy from an earlier run instead of training
  std::string out = "ablation-run";
};

struct Scores {
  std::string name;
  double direction = 0, miou = 0, rmse = 0, train_seconds = 0, final_loss = NAN;
};

/// The held-out evaluation data: clips (from a different seed than training) with their labels.
struct EvalSet {
  index_t count = 0, tokens = 0;
  std::vector<float> clips;          // (count, 3, F, H, W)
  std::vector<std::int32_t> direction;  // (count)
  std::vector<std::int32_t> fg;         // (count, N) foreground per token
  std::vector<float> depth;             // (count, N) mean depth per token
};

EvalSet make_eval_set(const Options& o, std::uint64_t first, index_t count) {
  EvalSet e;
  e.count = count;
  const eval::PatchGrid g{o.frames, o.res, o.res, 2, 16};
  e.tokens = g.tokens();
  data::SyntheticVideo src({o.frames, o.res, o.res, 2, 4, o.seed + 1000});
  const std::size_t per = static_cast<std::size_t>(3 * o.frames * o.res * o.res);
  e.clips.resize(per * static_cast<std::size_t>(count));
  for (index_t i = 0; i < count; ++i) {
    const auto c = src.clip(first + static_cast<std::uint64_t>(i));
    std::copy(c.pixels.begin(), c.pixels.end(), e.clips.begin() + static_cast<std::ptrdiff_t>(per * i));
    e.direction.push_back(c.direction);
    const auto fgpix = eval::foreground_labels(c.segmentation.data(), static_cast<index_t>(c.segmentation.size()));
    const auto fgtok = eval::patch_majority_labels(fgpix.data(), g, 2);
    e.fg.insert(e.fg.end(), fgtok.begin(), fgtok.end());
    const auto dtok = eval::patch_mean<float>(c.depth.data(), g);
    e.depth.insert(e.depth.end(), dtok.begin(), dtok.end());
  }
  return e;
}

/// Frozen features (count, N, D) of an encoder.
template <class Enc>
std::vector<float> features(const Enc& enc, const float* P_, const EvalSet& e, const Options& o) {
  const models::InputGeometry g{o.frames, o.res, o.res};
  const index_t B = 16, D = enc.config().embed_dim;
  auto st = enc.make_state(models::Mode::inference, B, g);
  std::vector<float> out(static_cast<std::size_t>(e.count * e.tokens * D));
  const std::size_t per = static_cast<std::size_t>(3 * o.frames * o.res * o.res);
  std::vector<float> batch(per * B);
  for (index_t i = 0; i < e.count; i += B) {
    const index_t n = std::min(B, e.count - i);
    std::fill(batch.begin(), batch.end(), 0.0f);
    std::copy_n(e.clips.begin() + static_cast<std::ptrdiff_t>(per * i), per * n, batch.begin());
    enc.forward(P_, TensorView<const float, 5>(batch.data(), {B, 3, o.frames, o.res, o.res}), nullptr, st);
    const auto f = enc.output(st);
    std::copy_n(f.data(), static_cast<std::size_t>(n * e.tokens * D), out.begin() + i * e.tokens * D);
  }
  return out;
}

template <class Enc>
Scores evaluate(const std::string& name, const Enc& enc, const float* params, const EvalSet& tr, const EvalSet& va,
                const Options& o, io::RgbImage* pca_tile) {
  Scores s;
  s.name = name;
  const index_t D = enc.config().embed_dim, N = tr.tokens;
  auto ftr = features(enc, params, tr, o), fva = features(enc, params, va, o);
  {  // feature scale (the direction probe adds a unit-scale position table to these features)
    double ss = 0;
    for (const float v : ftr) ss += static_cast<double>(v) * v;
    std::fprintf(stderr, "%s: feature RMS %.3f\n", name.c_str(), std::sqrt(ss / static_cast<double>(ftr.size())));
  }
  if (o.standardize) {  // per channel: (f − mean_train) / std_train, the same map on both sets
    std::vector<double> mean(static_cast<std::size_t>(D)), var(static_cast<std::size_t>(D));
    const std::size_t rows = ftr.size() / static_cast<std::size_t>(D);
    for (std::size_t r = 0; r < rows; ++r)
      for (index_t c = 0; c < D; ++c) mean[c] += ftr[r * D + c] / static_cast<double>(rows);
    for (std::size_t r = 0; r < rows; ++r)
      for (index_t c = 0; c < D; ++c) var[c] += std::pow(ftr[r * D + c] - mean[c], 2) / static_cast<double>(rows);
    for (auto* f : {&ftr, &fva})
      for (std::size_t r = 0; r < f->size() / static_cast<std::size_t>(D); ++r)
        for (index_t c = 0; c < D; ++c)
          (*f)[r * D + c] = static_cast<float>(((*f)[r * D + c] - mean[c]) / std::sqrt(var[c] + 1e-6));
  }
  // Every probe is trained at three learning rates (the recipe sweeps the probe's lr, §7.3) and the
  // best held-out score is reported — the same protocol for every encoder.
  const auto sweep = [&](auto&& run_one, bool lower_is_better) {
    double best = lower_is_better ? INFINITY : -INFINITY;
    for (const double lr : o.probe_lrs) {
      eval::ProbeTrainConfig pc;
      pc.epochs = o.probe_epochs;
      pc.batch_size = 32;
      pc.lr = lr;
      pc.seed = o.seed;
      const double v = run_one(pc);
      best = lower_is_better ? std::min(best, v) : std::max(best, v);
    }
    return best;
  };
  // The encoders use RoPE only, so their tokens carry no absolute position, and the attentive pooler
  // has none either: it could not tell where the shape is in the first frames and where in the last.
  // The direction probe therefore reads features + a fixed 3-D sin-cos table of the token's (t, h, w)
  // (the same for every encoder; the segmentation and depth probes are per token and need none).
  std::vector<float> ptr = ftr, pva = fva;
  {
    const auto pos = nn::sincos_3d_table<float>(D, o.frames / 2, o.res / 16, o.res / 16, true);
    for (std::size_t i = 0; i < ptr.size(); ++i) ptr[i] += pos[i % pos.size()];
    for (std::size_t i = 0; i < pva.size(); ++i) pva[i] += pos[i % pos.size()];
  }
  s.direction = sweep([&](const eval::ProbeTrainConfig& pc) {  // motion direction: attentive probe over all tokens
    eval::AttentiveProbeConfig ac;
    ac.dim = D, ac.num_heads = 4, ac.depth = o.probe_depth, ac.num_classes = data::SyntheticVideo::num_directions;
    eval::AttentiveProbe<float> probe(ac);
    nn::ParameterSet<float> Pp(probe.layout());
    Pp.init(o.seed);
    return eval::train_probe(probe, Pp, eval::precomputed(ptr.data(), tr.count, N, D, tr.direction.data(), 1),
                             eval::precomputed(pva.data(), va.count, N, D, va.direction.data(), 1), pc)
        .val.top1;
  }, false);
  s.miou = sweep([&](const eval::ProbeTrainConfig& pc) {  // foreground segmentation: linear probe per token
    eval::LinearDenseProbe<float> probe({D, eval::DenseTask::segmentation, 2});
    nn::ParameterSet<float> Pp(probe.layout());
    Pp.init(o.seed);
    return eval::train_probe(probe, Pp, eval::precomputed(ftr.data(), tr.count, N, D, tr.fg.data(), N),
                             eval::precomputed(fva.data(), va.count, N, D, va.fg.data(), N), pc)
        .val.miou;
  }, false);
  s.rmse = sweep([&](const eval::ProbeTrainConfig& pc) {  // depth: linear regression per token
    eval::LinearDenseProbe<float> probe({D, eval::DenseTask::depth, 0});
    nn::ParameterSet<float> Pp(probe.layout());
    Pp.init(o.seed);
    return eval::train_probe(
               probe, Pp, eval::precomputed(ftr.data(), tr.count, N, D, static_cast<const std::int32_t*>(nullptr), 1, tr.depth.data()),
               eval::precomputed(fva.data(), va.count, N, D, static_cast<const std::int32_t*>(nullptr), 1, va.depth.data()), pc)
        .val.rmse;
  }, true);
  if (pca_tile) {  // PCA of the first time slice of validation clip 0
    const index_t h = o.res / 16, w = o.res / 16;
    const TensorView<const float, 3> frame(va.clips.data(), {3, o.res, o.res},
                                           {o.frames * o.res * o.res, o.res, 1});
    *pca_tile = eval::pca_feature_image(fva.data(), h, w, D, frame);
  }
  return s;
}

template <class Model>
Scores train_and_evaluate(const std::string& name, Model model, const EvalSet& tr, const EvalSet& va, const Options& o,
                          io::RgbImage* tile) {
  model.init(o.seed);
  model.mask_seed = o.seed;
  if constexpr (Model::loss_type::has_context_term) {
    model.loss_policy_mut().lambda.start = std::max<std::uint64_t>(1, o.steps / 20);
    model.loss_policy_mut().lambda.end = std::max<std::uint64_t>(2, o.steps / 10);
  }
  train::TrainConfig cfg;
  auto st = train::Recipes::vjepa2_pretrain(1, o.steps);
  st.lr.cosine.warmup = std::max<std::uint64_t>(1, o.steps / 20);
  st.lr.cosine.ref = st.lr.cosine.final = o.lr;
  st.ema.ema0 = st.ema.ema1 = o.ema;
  cfg.stages = {st};
  cfg.data = {{o.frames, o.res, o.batch, 0}};
  cfg.out_dir = o.out;
  train::SyntheticSource src{o.seed};
  // The trained parameters of both encoders are written next to the table, so the probes can be re-run
  // on them (--reuse) without training again.
  const auto saved = [&](const char* which) {
    return std::filesystem::path(o.out) / (std::string(which) + "_" + file_stem(name) + ".npy");
  };
  if (o.reuse && std::filesystem::exists(saved("encoder")) && std::filesystem::exists(saved("target"))) {
    for (auto [which, ps] : {std::pair{"encoder", &model.encoder_params()}, std::pair{"target", &model.target_params()}}) {
      const auto a = xt::load_npy<float>(saved(which).string());
      if (a.size() != ps->numel())
        throw ConfigError(detail::cat("jepa: ", saved(which).string(), " holds ", a.size(), " values, the ", name,
                                      " encoder has ", ps->numel(), " (written by another configuration?)"));
      std::copy(a.begin(), a.end(), ps->data());
    }
    std::fprintf(stderr, "reusing %s from %s\n", name.c_str(), saved("encoder").string().c_str());
    Scores s = evaluate(name, model.encoder(),
                        (o.context_features ? model.encoder_params() : model.target_params()).data(), tr, va, o, tile);
    s.final_loss = NAN;
    return s;
  }
  train::Trainer trainer(model, src, cfg);
  std::fprintf(stderr, "training %s (%llu steps)\n", name.c_str(), static_cast<unsigned long long>(o.steps));
  const auto t0 = std::chrono::steady_clock::now();
  trainer.run();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  trainer.write_loss_png((std::filesystem::path(o.out) / ("loss_" + name + ".png")).string(), name);
  io::write_npy(saved("encoder"), {static_cast<index_t>(model.encoder_params().numel())}, model.encoder_params().data());
  io::write_npy(saved("target"), {static_cast<index_t>(model.target_params().numel())}, model.target_params().data());
  Scores s = evaluate(name, model.encoder(), (o.context_features ? model.encoder_params() : model.target_params()).data(), tr,
                      va, o, tile);
  s.train_seconds = secs;
  double last = 0;
  const auto& h = trainer.history();
  const std::size_t k = std::min<std::size_t>(20, h.size());
  for (std::size_t i = h.size() - k; i < h.size(); ++i) last += h[i].prediction / static_cast<double>(k);
  s.final_loss = last;
  for (const auto& l : h)  // collapse diagnostics along the run (the trainer logs them every step)
    if (!std::isnan(l.rank_pred) && (l.step == 1 || l.step % std::max<std::uint64_t>(1, o.steps / 6) == 0))
      std::fprintf(stderr, "health at step %llu: target std %.3f, effective rank of predictions %.1f, of targets %.1f\n",
                   static_cast<unsigned long long>(l.step), l.target_std, l.rank_pred, l.rank_target);
  return s;
}

/// vit_micro at depth 8: the 2.1 tap formula then gives {1, 3, 5, 7} (at depth 4 it taps every block,
/// block 0 included, which the recipe's models never do: their first tap sits after 3–12 blocks).
inline constexpr P::EncoderShape vit_micro8{"vit_micro8", 64, 8, 4, 256};

/// The four encoders of the table at encoder shape S (same width, depth and budget for each).
template <const P::EncoderShape& S, class Rows>
void run_rows(const Options& o, const EvalSet& tr, const EvalSet& va, Rows& rows, std::vector<io::RgbImage>& tiles) {
  const auto want = [&](const std::string& e) { return ("," + o.encoders + ",").find("," + e + ",") != std::string::npos; };
  if (want("random")) {  // random initialisation
    P::VJepa2Encoder<S> enc(P::vjepa2_config(S));
    nn::ParameterSet<float> p(enc.layout());
    p.init(o.seed);
    std::fprintf(stderr, "evaluating random\n");
    rows.push_back(evaluate("random", enc, p.data(), tr, va, o, &tiles[0]));
  }
  if (want("vjepa2")) rows.push_back(train_and_evaluate("vjepa2", P::vjepa2<S>(), tr, va, o, &tiles[1]));
  if (want("context")) {  // + context loss: the 2.1 architecture with a single output level (no deep supervision)
    using Enc = models::VitEncoder<S.depth, P::VJepa21Tokenizer, models::RopeInterleaved, models::HierarchicalTaps<S.depth - 1>>;
    using Pred = models::Predictor<2, models::RopeInterleaved, 1>;
    using Model = models::Jepa<Enc, Pred, masking::Multiblock3d, losses::ContextLoss<losses::L1>>;
    auto c = P::vjepa21_model_config(S);
    rows.push_back(train_and_evaluate("+context", Model(c.encoder, c.predictor, masking::Multiblock3d::vjepa()), tr, va, o,
                                      &tiles[2]));
  }
  if (want("deep")) rows.push_back(train_and_evaluate("+deep (2.1)", P::vjepa2_1<S>(), tr, va, o, &tiles[3]));
  if (want("deeponly"))  // deep self-supervision without the context loss (not a row of the paper's
                         // cumulative ablation: it separates the two 2.1 ingredients)
    rows.push_back(train_and_evaluate(
        "deep, no context",
        P::vjepa2_1<S, float, backend::Cpu, masking::Multiblock3d, losses::MaskedLoss<losses::L1>>(masking::Multiblock3d::vjepa()),
        tr, va, o, &tiles[4]));
}

}  // namespace

int main(int argc, char** argv) {
  try {
    Options o;
    for (examples::Args args(argc, argv); args.next();) {
      if (args.is("--help") || args.is("-h")) {
        std::puts("ablation [--steps 24000] [--lr 2e-4] [--ema 0.9995] [--target-features] [--standardize] [--frames 8] [--res 64]\n"
                  "         [--batch 8] [--train-clips 2048] [--val-clips 512] [--depth 4|8]\n"
                  "         [--probe-epochs 30] [--probe-depth 4] [--reuse] [--seed 239]\n"
                  "         [--encoders random,vjepa2,context,deep[,deeponly]] [--out ablation-run]");
        return 0;
      } else if (args.is("--steps")) o.steps = args.count();
      else if (args.is("--frames")) o.frames = static_cast<index_t>(args.count_in(1, (1u << 30)));
      else if (args.is("--res")) o.res = static_cast<index_t>(args.count_in(1, (1u << 30)));
      else if (args.is("--batch")) o.batch = static_cast<index_t>(args.count_in(1, (1u << 30)));
      else if (args.is("--train-clips")) o.train_clips = static_cast<index_t>(args.count_in(1, (1u << 30)));
      else if (args.is("--val-clips")) o.val_clips = static_cast<index_t>(args.count_in(1, (1u << 30)));
      else if (args.is("--probe-epochs")) o.probe_epochs = static_cast<int>(args.count_in(1, (1u << 30)));
      else if (args.is("--probe-depth")) o.probe_depth = static_cast<int>(args.count_in(1, (1u << 30)));
      else if (args.is("--reuse")) o.reuse = true;
      else if (args.is("--lr")) o.lr = args.positive();
      else if (args.is("--ema")) o.ema = args.number_in(0, 1);
      else if (args.is("--target-features")) o.context_features = false;
      else if (args.is("--standardize")) o.standardize = true;
      else if (args.is("--depth")) o.depth = static_cast<int>(args.count_in(1, (1u << 30)));
      else if (args.is("--seed")) o.seed = args.count();
      else if (args.is("--out")) o.out = args.value();
      else if (args.is("--encoders")) o.encoders = args.value();
      else args.unknown();
    }
    train::prepare_run_directory(o.out, "--out");  // checked before any work
    const EvalSet tr = make_eval_set(o, 0, o.train_clips), va = make_eval_set(o, 1u << 20, o.val_clips);
    // Rows are printed as soon as they are measured, so a run cut short still reports what it finished.
    struct Rows : std::vector<Scores> {
      void push_back(Scores s) {
        std::fprintf(stderr, "result: %s  direction %.3f  mIoU %.3f  depth RMSE %.4f  final loss %.4f  (%.0f s)\n", s.name.c_str(),
                     s.direction, s.miou, s.rmse, s.final_loss, s.train_seconds);
        std::vector<Scores>::push_back(std::move(s));
      }
    } rows;
    std::vector<io::RgbImage> tiles(5);

    if (o.depth == 4) run_rows<P::vit_micro>(o, tr, va, rows, tiles);
    else if (o.depth == 8) run_rows<vit_micro8>(o, tr, va, rows, tiles);
    else throw ConfigError(jepa::detail::cat("jepa: --depth ", o.depth, " is not built: 4 (vit_micro) or 8"));

    // Table.
    std::ostringstream md;
    md << "| encoder | direction top-1 (attentive) | fg mIoU (linear) | depth RMSE (linear) | final pred. loss | train s |\n"
       << "|---|---|---|---|---|---|\n";
    for (const auto& r : rows) {
      char b[256];
      std::snprintf(b, sizeof b, "| %s | %.3f | %.3f | %.4f | %s | %.0f |\n", r.name.c_str(), r.direction, r.miou, r.rmse,
                    std::isfinite(r.final_loss) ? std::to_string(r.final_loss).substr(0, 6).c_str() : "-", r.train_seconds);
      md << b;
    }
    std::printf("%s", md.str().c_str());
    std::ofstream((std::filesystem::path(o.out) / "results.md").string()) << md.str();
    // PCA maps: each tile is frame | PCA; the evaluated encoders' tiles are stacked vertically, in the
    // table's order, with a gap.
    std::vector<io::RgbImage*> done;
    for (auto& t : tiles)
      if (t.width > 0) done.push_back(&t);
    if (!done.empty()) {
      const int W = done[0]->width, H = done[0]->height, gap = 6, K = static_cast<int>(done.size());
      io::RgbImage all(W, K * H + (K - 1) * gap);
      std::fill(all.data.begin(), all.data.end(), std::uint8_t{255});
      for (int t = 0; t < K; ++t)
        for (int y = 0; y < H; ++y) std::copy_n(done[static_cast<std::size_t>(t)]->at(0, y), 3 * W, all.at(0, t * (H + gap) + y));
      io::write_png((std::filesystem::path(o.out) / "pca.png").string(), all);
    }
    std::printf("wrote %s/results.md, %s/pca.png (rows in table order), %s/loss_*.png\n", o.out.c_str(), o.out.c_str(),
                o.out.c_str());
    return 0;
  } catch (const jepa::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "error: jepa: out of memory; the memory is set by --batch, --frames, --res, --train-clips and "
                         "--val-clips: lower them\n");
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  } catch (...) {
    std::fprintf(stderr, "error: jepa: an unknown exception ended the run\n");
    return 2;
  }
}
