// train — the reference training loop: a JEPA preset chosen by name, the recipe's hyperparameters as
// defaults (overridable from a JSON config file and the command line), warmup → constant → cooldown
// with progressive resolution, on the built-in synthetic video source or a folder of videos.
//
//   train [--config FILE.json] [--family vjepa2|vjepa2_1|vjepa|ijepa]
//         [--size micro|tiny|small|base|large|huge|giant|gigantic] [--steps N] [--cooldown-steps N]
//         [--batch B] [--frames F] [--res S] [--cooldown-frames F] [--cooldown-res S] [--lr X]
//         [--out DIR] [--checkpoint-every N] [--seed N] [--no-resume]
//
// Writes DIR/log.csv (one row per step), DIR/loss.png and DIR/checkpoint.safetensors (atomically,
// every N steps and at the end); a rerun with the same DIR resumes where it stopped, bitwise.
//
// Data parallel (built with MPI): `mpirun -np N train …` trains on N processes; --batch and
// --image-batch are the GLOBAL batch (multiples of N), so the run is the same for any N up to
// reduction order. Rank 0 prints and writes; the others stay quiet. A rank that fails stops the job
// with its message.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "cli.hpp"
#include "jepa/dist/communicator.hpp"
#include "jepa/models/jepa_presets.hpp"
#include "jepa/train/checkpoint.hpp"
#include "jepa/train/trainer.hpp"
#ifdef JEPA_TRAIN_WITH_MPI
#include <optional>

#include "jepa/dist/mpi.hpp"
#endif
#ifdef JEPA_TRAIN_WITH_FOLDERS
#include "jepa/train/folder_source.hpp"
#endif

using namespace jepa;
namespace P = jepa::models::presets;

namespace {

struct Options {
  std::string family = "vjepa2", size = "micro", out = "jepa-run", config, data = "synthetic", image_data;
  std::uint64_t steps = 300, cooldown_steps = 60, checkpoint_every = 100, seed = 239;
  index_t batch = 4, frames = 4, res = 64, cooldown_frames = 8, cooldown_res = 64, image_batch = -1;
  index_t micro_batches = 1;
  double lr = -1, lr_start = -1, lr_final = 1e-6, wd = 0.04, ema = -1;
  bool resume = true;
};

void usage() {
  std::puts(
      "train: pretrain a JEPA model with the published recipe (defaults) on synthetic video\n"
      "  --config FILE      JSON with any of the keys below (command-line flags override it)\n"
      "  --family NAME      vjepa2 (default) | vjepa2_1 | vjepa | ijepa\n"
      "  --size NAME        micro (default) | tiny | small | base | large | huge | giant | gigantic\n"
      "  --steps N          pretraining steps: linear warmup (5 %, as 40 of 800 epochs) then constant LR\n"
      "                     (V-JEPA 2 / 2.1) or cosine (V-JEPA, I-JEPA)                  (default 300)\n"
      "  --cooldown-steps N linear LR decay over T_max = 1.25·N (the recipe's real end value); 0 = none\n"
      "                     (V-JEPA 2 / 2.1 only)                                             (default 60)\n"
      "  --batch B --frames F --res S              pretraining clips  (default 4 clips of 4x64x64)\n"
      "  --cooldown-frames F --cooldown-res S      cooldown clips: progressive resolution (default 8x64x64)\n"
      "  --image-batch B    2.1: 1-frame images per step beside the videos (default = batch for vjepa2_1)\n"
      "  --micro-batches K  gradient accumulation over K micro-batches (default 1)\n"
      "  --lr X --lr-start X --wd X --ema X   override the recipe's peak LR, start LR, weight decay, EMA\n"
      "  --out DIR          run directory: log.csv, loss.png, checkpoint.safetensors (default jepa-run)\n"
      "  --checkpoint-every N   atomic checkpoint every N steps (default 100)\n"
      "  --seed N           model and mask seed (default 239, as the V-JEPA 2 configs)\n"
      "  --data SPEC        synthetic (default: moving shapes, no download) | videos:DIR | frames:DIR |\n"
      "                     images:DIR — videos at 4 fps with the recipe's crop, flip and normalisation;\n"
      "                     unreadable files are skipped and reported\n"
      "  --image-data SPEC  2.1 image stream (default: synthetic 1-frame clips), e.g. images:DIR\n"
      "  --no-resume        start afresh even if DIR has a checkpoint\n"
      "Data parallel (a build with MPI): mpirun -np N train ... — --batch and --image-batch are global\n"
      "(multiples of N); rank 0 prints and writes DIR");
}

template <class V>
void take(const nlohmann::json& j, const char* key, V& v) {
  if (j.contains(key)) v = j.at(key).get<V>();
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--config" && i + 1 < argc) o.config = argv[i + 1];
  if (!o.config.empty()) {
    std::ifstream f(o.config);
    if (!f) throw IoError("jepa: cannot read the config file '" + o.config + "'");
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(f);
    } catch (const std::exception& e) {
      throw IoError("jepa: config file '" + o.config + "' is not valid JSON: " + e.what());
    }
    try {
      take(j, "family", o.family), take(j, "size", o.size), take(j, "out", o.out), take(j, "steps", o.steps);
      take(j, "cooldown_steps", o.cooldown_steps), take(j, "checkpoint_every", o.checkpoint_every), take(j, "seed", o.seed);
      take(j, "batch", o.batch), take(j, "frames", o.frames), take(j, "res", o.res);
      take(j, "cooldown_frames", o.cooldown_frames), take(j, "cooldown_res", o.cooldown_res);
      take(j, "image_batch", o.image_batch), take(j, "micro_batches", o.micro_batches), take(j, "lr", o.lr);
      take(j, "lr_start", o.lr_start), take(j, "lr_final", o.lr_final), take(j, "wd", o.wd), take(j, "ema", o.ema);
      take(j, "data", o.data), take(j, "image_data", o.image_data);
    } catch (const nlohmann::json::exception& e) {
      throw ConfigError("jepa: config file '" + o.config + "' has a value of the wrong type: " + e.what());
    }
  }
  for (examples::Args args(argc, argv); args.next();) {
    if (args.is("--help") || args.is("-h")) usage(), std::exit(0);
    else if (args.is("--config")) args.value();  // read above, before the other options
    else if (args.is("--family")) o.family = args.value();
    else if (args.is("--size")) o.size = args.value();
    else if (args.is("--out")) o.out = args.value();
    else if (args.is("--steps")) o.steps = args.count();
    else if (args.is("--cooldown-steps")) o.cooldown_steps = args.count();
    else if (args.is("--checkpoint-every")) o.checkpoint_every = args.count();
    else if (args.is("--seed")) o.seed = args.count();
    else if (args.is("--batch")) o.batch = static_cast<index_t>(args.count());
    else if (args.is("--frames")) o.frames = static_cast<index_t>(args.count());
    else if (args.is("--res")) o.res = static_cast<index_t>(args.count());
    else if (args.is("--cooldown-frames")) o.cooldown_frames = static_cast<index_t>(args.count());
    else if (args.is("--cooldown-res")) o.cooldown_res = static_cast<index_t>(args.count());
    else if (args.is("--image-batch")) o.image_batch = static_cast<index_t>(args.count());
    else if (args.is("--micro-batches")) o.micro_batches = static_cast<index_t>(args.count());
    else if (args.is("--lr")) o.lr = args.number();
    else if (args.is("--lr-start")) o.lr_start = args.number();
    else if (args.is("--wd")) o.wd = args.number();
    else if (args.is("--ema")) o.ema = args.number();
    else if (args.is("--no-resume")) o.resume = false;
    else if (args.is("--data")) o.data = args.value();
    else if (args.is("--image-data")) o.image_data = args.value();
    else args.unknown();
  }
  check_field(o.steps >= 1, "--steps", o.steps, "must be >= 1");
  return o;
}

/// The recipe's stages for a family, rescaled to `steps` (+ `cooldown_steps`) with the recipe's
/// proportions: warmup = 40/800 of pretraining; the 2.1 λ warmup spans 5 %–10 % of it (15k–30k of
/// 300k); the cooldown decays over 1.25× its length.
train::TrainConfig stages_for(const Options& o) {
  train::TrainConfig c;
  const std::uint64_t warm = std::max<std::uint64_t>(1, o.steps / 20);
  train::Stage pre;
  const bool v2 = o.family == "vjepa2" || o.family == "vjepa2_1";
  if (o.family == "vjepa2") pre = train::Recipes::vjepa2_pretrain(1, o.steps);
  else if (o.family == "vjepa2_1") pre = train::Recipes::vjepa21_pretrain(1, o.steps);
  else if (o.family == "vjepa") pre = train::Recipes::vjepa(1, o.steps);
  else pre = train::Recipes::ijepa(1, o.steps);
  pre.lr.cosine.warmup = warm;
  pre.lr.cosine.t_max = pre.horizon();
  if (o.lr > 0) {
    pre.lr.cosine.ref = o.lr;
    if (v2) pre.lr.cosine.final = o.lr;
  }
  if (o.lr_start > 0) pre.lr.cosine.start = o.lr_start;
  if (v2) pre.wd = {o.wd, o.wd, pre.horizon()};
  if (o.ema > 0) pre.ema = {o.ema, o.ema, 1.0, false};
  pre.clip_after = warm;
  c.stages.push_back(pre);
  const index_t images = o.family == "vjepa2_1" ? (o.image_batch < 0 ? o.batch : o.image_batch) : 0;
  c.data.push_back({o.frames, o.res, o.batch, images});
  if (v2 && o.cooldown_steps > 0) {
    train::Stage cool = o.family == "vjepa2" ? train::Recipes::vjepa2_cooldown(1, o.cooldown_steps, pre.lr.cosine.ref)
                                             : train::Recipes::vjepa21_cooldown(1, o.cooldown_steps);
    cool.lr.decay.ref = pre.lr.cosine.ref;
    cool.lr.decay.final = o.lr_final;
    cool.wd = pre.wd;
    cool.ema = pre.ema;
    c.stages.push_back(cool);
    c.data.push_back({o.cooldown_frames, o.cooldown_res, o.batch, images});
  }
  c.micro_batches = o.micro_batches;
  c.checkpoint_every = o.checkpoint_every;
  c.out_dir = o.out;
  return c;
}

train::AnySource make_source(const std::string& spec, std::uint64_t seed) {
  if (spec == "synthetic") return train::AnySource::of(train::SyntheticSource{seed});
#ifdef JEPA_TRAIN_WITH_FOLDERS
  return train::AnySource::of(train::FolderSource::parse(spec));
#else
  throw ConfigError("jepa: --data '" + spec + "' needs FFmpeg and stb: this build has only the synthetic source");
#endif
}

template <class Model>
int run(Model model, const Options& o, const char* name, const dist::AnyCommunicator& comm) {
  const bool root = comm.rank() == 0;
  auto cfg = stages_for(o);
  if constexpr (Model::levels > 1) {  // 2.1: λ warms up over 5 %–10 % of pretraining (15k–30k of 300k)
    model.loss_policy_mut().lambda.start = std::max<std::uint64_t>(1, o.steps / 20);
    model.loss_policy_mut().lambda.end = std::max<std::uint64_t>(2, o.steps / 10);
  }
  model.init(o.seed);
  model.mask_seed = o.seed;
  if (root) std::filesystem::create_directories(o.out);
  const train::AnySource video = make_source(o.data, o.seed);
  const train::AnySource images = make_source(o.image_data.empty() ? "synthetic" : o.image_data, o.seed + 1);
  train::Trainer trainer(model, video, cfg, &images, comm);
  const auto ckpt = std::filesystem::path(o.out) / "checkpoint.safetensors";
  if (!root) {  // the other ranks train in step with rank 0, which prints, writes, and resumes
    trainer.run();
    return 0;
  }
  std::printf("model      %s: encoder %zu + predictor %zu parameters\n", name, model.encoder().param_count(),
              model.predictor().param_count());
  if (comm.size() > 1) std::printf("ranks      %d (data parallel: each takes 1/%d of every batch)\n", comm.size(), comm.size());
  for (std::size_t s = 0; s < cfg.stages.size(); ++s)
    std::printf("stage %zu    %-9s %llu steps, %ld clips of %ldx%ldx%ld%s, lr %s %.3g -> %.3g\n", s,
                cfg.stages[s].name.c_str(), static_cast<unsigned long long>(cfg.stages[s].steps()),
                static_cast<long>(cfg.data[s].batch), static_cast<long>(cfg.data[s].frames),
                static_cast<long>(cfg.data[s].size), static_cast<long>(cfg.data[s].size),
                cfg.data[s].image_batch ? " + images" : "",
                cfg.stages[s].lr.kind == train::LrSchedule::Kind::linear_decay ? "linear decay" : "warmup",
                cfg.stages[s].lr(1), cfg.stages[s].lr(cfg.stages[s].steps()));
  if (o.resume && std::filesystem::exists(ckpt)) {  // rank 0 loads; the first step broadcasts it
    train::load_checkpoint(ckpt.string(), model, trainer);
    std::printf("resumed    from %s at step %llu\n", ckpt.string().c_str(),
                static_cast<unsigned long long>(trainer.state().global_step));
  }
  const auto csv = (std::filesystem::path(o.out) / "log.csv").string();
  const auto png = (std::filesystem::path(o.out) / "loss.png").string();
  trainer.on_step = [&](const train::StepLog& log) {
    if (o.checkpoint_every && log.step % o.checkpoint_every == 0) {
      train::save_checkpoint(ckpt.string(), model, trainer);
      trainer.write_csv(csv);
      trainer.write_loss_png(png, name);
    }
  };
  trainer.run();
  train::save_checkpoint(ckpt.string(), model, trainer);
  trainer.write_csv(csv);
  trainer.write_loss_png(png, name);
  const auto& h = trainer.history();
  if (!h.empty()) {
    const std::size_t k = std::min<std::size_t>(10, h.size());
    double first = 0, last = 0;
    for (std::size_t i = 0; i < k; ++i) first += h[i].loss / k, last += h[h.size() - 1 - i].loss / k;
    std::printf("loss       %.4f (mean of the first %zu steps) -> %.4f (last %zu)\n", first, k, last, k);
    std::printf("health     target std %.3f, effective rank: predictions %.1f, targets %.1f; %llu skipped steps\n",
                h.back().target_std, h.back().rank_pred, h.back().rank_target,
                static_cast<unsigned long long>(trainer.state().bad_steps));
  }
  std::printf("wrote      %s, %s, %s\n", csv.c_str(), png.c_str(), ckpt.string().c_str());
  return 0;
}

template <const P::EncoderShape& S>
int dispatch(const Options& o, const dist::AnyCommunicator& comm) {
  const std::string name = o.family + " " + std::string(S.name);
  if (o.family == "vjepa2") return run(P::vjepa2<S>(), o, name.c_str(), comm);
  if (o.family == "vjepa2_1") return run(P::vjepa2_1<S>(), o, name.c_str(), comm);
  if (o.family == "vjepa") return run(P::vjepa<S>(), o, name.c_str(), comm);
  if (o.family == "ijepa") {
    Options img = o;  // I-JEPA trains on images: one frame through Patch2d<14>
    img.frames = 1;
    if (img.res % 14) img.res = 14 * std::max<index_t>(2, img.res / 14);
    return run(P::ijepa<S>(), img, name.c_str(), comm);
  }
  throw ConfigError("jepa: --family = '" + o.family + "' is invalid: use vjepa2, vjepa2_1, vjepa or ijepa");
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") return usage(), 0;
  dist::AnyCommunicator comm;  // one process, unless started by an MPI launcher
#ifdef JEPA_TRAIN_WITH_MPI
  std::optional<dist::MpiSession> mpi;
  try {
    if (dist::launched_by_mpi()) {
      mpi.emplace(argc, argv);
      comm = dist::MpiCommunicator();
    }
  } catch (const jepa::Error& e) {
    std::fprintf(stderr, "\nerror: %s\n", e.what());
    return 2;
  }
#endif
  try {
    const Options o = parse(argc, argv);
    if (o.size == "micro") return dispatch<P::vit_micro>(o, comm);
    if (o.size == "tiny") return dispatch<P::vit_tiny>(o, comm);
    if (o.size == "small") return dispatch<P::vit_small>(o, comm);
    if (o.size == "base") return dispatch<P::vit_base>(o, comm);
    if (o.size == "large") return dispatch<P::vit_large>(o, comm);
    if (o.size == "huge") return dispatch<P::vit_huge>(o, comm);
    if (o.size == "giant") return dispatch<P::vit_giant_xformers>(o, comm);
    if (o.size == "gigantic") return dispatch<P::vit_gigantic_xformers>(o, comm);
    throw ConfigError("jepa: --size = '" + o.size +
                      "' is invalid: use micro, tiny, small, base, large, huge, giant or gigantic");
  } catch (const dist::RankFailure& e) {  // every rank knows: the failing one says why, all end
    if (e.is_origin()) std::fprintf(stderr, "\nerror: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
#ifdef JEPA_TRAIN_WITH_MPI
    // The other ranks may be waiting for this one in a collective: end the whole job.
    if (comm.size() > 1) dist::abort_job(e.what());
#endif
    std::fprintf(stderr, "\nerror: %s\n", e.what());
    return 2;
  }
}
