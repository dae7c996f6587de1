// plan — V-JEPA 2-AC end to end on the embedded reaching task (planning/reach_env.hpp): train the
// action-conditioned predictor on random-action trajectories seen through a frozen encoder, then
// plan in closed loop from a start frame to a goal frame with CEM (receding horizon), against a
// random-action baseline and a greedy one-step baseline that use the same world model.
//
//   plan [--dynamics inertial|position] [--out DIR] [--train-steps N] [--batch B] [--lr X]
//        [--encoder random|vjepa2] [--pretrain-steps N] [--episodes E] [--max-steps K] [--samples N]
//        [--topk K] [--iterations I] [--horizons LIST] [--greedy-samples N] [--no-lamp] [--oracle]
//        [--seed S] [--no-resume] [--skip-eval]
//
// The default task is the inertial one (a damped point-mass end effector driven by forces): the next
// frame does not depend on the current action, so one-step planning is blind and lookahead is needed;
// --dynamics position is the earlier position-controlled task, which a greedy one-step planner solves.
// Writes DIR/task.txt (the environment the checkpoint was trained on: a resume with another one is
// refused), DIR/ac_checkpoint.safetensors (resumed when present), DIR/ac_log.csv, DIR/ac_loss.png,
// DIR/results.csv (one row per episode and policy), DIR/rollout_<i>.png (start | goal | reached by
// each policy, with the path) and prints the success rates and the planning time per action.
// Policies: random actions; greedy one-step (lowest one-step predicted energy among candidates drawn
// like CEM's first batch); CEM at each horizon of --horizons (the recipe's energy and update rules);
// with --oracle, the same planners on the simulator's true distance (a perfect energy).
// Results and the commands that reproduce them: docs/results.md.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "cli.hpp"
#include "jepa/core/memory_budget.hpp"
#include "jepa/train/run_dir.hpp"
#include "jepa/io/plot.hpp"
#include "jepa/io/png.hpp"
#include "jepa/models/ac_predictor.hpp"
#include "jepa/models/frame_encoder.hpp"
#include "jepa/models/jepa_presets.hpp"
#include "jepa/planning/cem.hpp"
#include "jepa/planning/reach_env.hpp"
#include "jepa/planning/world_model.hpp"
#include "jepa/train/ac_trainer.hpp"
#include "jepa/train/checkpoint.hpp"
#include "jepa/train/trainer.hpp"

using namespace jepa;
namespace fs = std::filesystem;

namespace {

// The frozen encoder: a tiny V-JEPA 2 ViT (tiled RoPE, final norm) on 64×64 frames with
// Tubelet<2,16>: one frame = 4×4 = 16 tokens of width 64.
using Tok = tokenizers::Tubelet<2, 16>;
using Encoder = models::VitEncoder<4, Tok, models::RopeTiled, models::FinalNorm, float>;
// The AC predictor: depth 4, Dp 64, 4 heads.
using Predictor = models::AcPredictor<4, models::RopeTiled, float>;

models::VitConfig encoder_config() {
  models::VitConfig c;
  c.embed_dim = 64;
  c.num_heads = 4;
  c.mlp_hidden = 256;
  return c;
}
models::AcPredictorConfig predictor_config(const planning::ReachEnv& env) {
  models::AcPredictorConfig c;
  c.encoder_dim = 64;
  c.pred_dim = 64;
  c.num_heads = 4;
  c.mlp_hidden = 256;
  c.action_dim = planning::ReachEnv::action_dim;
  c.state_dim = env.state_dim();  // 2 (position) or 4 (inertial: position and velocity)
  c.grid_h = c.grid_w = 4;
  c.extrinsics_encoder = false;
  return c;
}

struct Options {
  std::string out, encoder = "random";  // out: default plan-run-<dynamics>
  planning::ReachDynamics dynamics = planning::ReachDynamics::inertial;
  std::uint64_t train_steps = 2000, pretrain_steps = 600, seed = 239;
  index_t batch = 16, episodes = 20, max_steps = 12, samples = 400, topk = 10, iterations = 10;
  index_t greedy_samples = 400;
  std::vector<index_t> horizons{1, 2};
  double lr = 2e-3;
  bool resume = true, eval = true, lamp = true, oracle = false;
};

void usage() {
  std::puts(
      "plan: train the V-JEPA 2-AC predictor on the embedded reaching task, then plan in closed loop\n"
      "  --dynamics KIND      inertial (default: force-controlled damped point mass, one-step planning is\n"
      "                       blind) | position (the action is the displacement; greedy-solvable)\n"
      "  --out DIR            run directory (default plan-run-<dynamics>); a checkpoint trained on another\n"
      "                       task (DIR/task.txt) is refused\n"
      "  --train-steps N      AC predictor steps, WSD schedule as the recipe (default 2000)\n"
      "  --batch B            trajectories of 8 frames per step (default 16)\n"
      "  --lr X               peak learning rate (default 2e-3; the recipe's 4.25e-4 is for the 300M model)\n"
      "  --encoder KIND       random (default: a randomly initialised frozen ViT) | vjepa2 (pretrained\n"
      "                       first with the V-JEPA 2 recipe on videos of the task)\n"
      "  --pretrain-steps N   V-JEPA 2 pretraining steps for --encoder vjepa2 (default 600)\n"
      "  --episodes E         evaluation episodes (default 20)    --max-steps K   actions per episode (12)\n"
      "  --samples N --topk K --iterations I   CEM (defaults: the recipe's 400, 10, 10)\n"
      "  --horizons LIST      CEM planners to run, by horizon (default 1,2: the paper's table and the\n"
      "                       world-model wrapper's default)\n"
      "  --greedy-samples N   candidates of the greedy one-step baseline (default 400)\n"
      "  --no-lamp            render the arm without the lamp's pool of light (see reach_env.hpp)\n"
      "  --oracle             also run greedy and CEM on the simulator's true distance to the goal after H\n"
      "                       steps (a perfect energy: separates the planner from the world model)\n"
      "  --seed S             (default 239)   --no-resume   retrain   --skip-eval   train only");
}

Options parse(int argc, char** argv) {
  Options o;
  for (examples::Args args(argc, argv); args.next();) {
    if (args.is("--help") || args.is("-h")) usage(), std::exit(0);
    else if (args.is("--out")) o.out = args.value();
    else if (args.is("--dynamics")) o.dynamics = planning::reach_dynamics(args.value(), "--dynamics");
    else if (args.is("--train-steps")) o.train_steps = args.count();
    else if (args.is("--pretrain-steps")) o.pretrain_steps = args.count();
    else if (args.is("--batch")) o.batch = static_cast<index_t>(args.count_in(1, (1u << 30)));
    else if (args.is("--lr")) o.lr = args.positive();
    else if (args.is("--encoder")) o.encoder = args.value();
    else if (args.is("--episodes")) o.episodes = static_cast<index_t>(args.count_in(1, (1u << 30)));
    else if (args.is("--max-steps")) o.max_steps = static_cast<index_t>(args.count_in(1, (1u << 30)));
    else if (args.is("--horizons")) {
      o.horizons.clear();
      for (const long long h : args.integer_list()) {
        if (h < 1 || h > 64) fail_field("--horizons", h, "each horizon must be in [1, 64]");
        o.horizons.push_back(static_cast<index_t>(h));
      }
    }
    else if (args.is("--no-lamp")) o.lamp = false;
    else if (args.is("--oracle")) o.oracle = true;
    else if (args.is("--samples")) o.samples = static_cast<index_t>(args.count_in(1, (1u << 30)));
    else if (args.is("--topk")) o.topk = static_cast<index_t>(args.count_in(1, (1u << 30)));
    else if (args.is("--iterations")) o.iterations = static_cast<index_t>(args.count_in(1, (1u << 30)));
    else if (args.is("--greedy-samples")) o.greedy_samples = static_cast<index_t>(args.count_in(1, (1u << 30)));
    else if (args.is("--seed")) o.seed = args.count();
    else if (args.is("--no-resume")) o.resume = false;
    else if (args.is("--skip-eval")) o.eval = false;
    else args.unknown();
  }
  return o;
}

std::string hms(double s) {
  char b[32];
  const long v = static_cast<long>(s + 0.5);
  std::snprintf(b, sizeof b, "%ldm%02lds", v / 60, v % 60);
  return b;
}

/// The task's videos as a ClipSource for the V-JEPA 2 pretraining of the encoder: clip i is
/// trajectory i of a differently seeded environment, F frames.
struct ReachVideos {
  planning::ReachEnvConfig env;
  std::uint64_t fill(std::uint64_t position, index_t B, const models::InputGeometry& g, float* out,
                     std::vector<std::string>&) const {
    planning::ReachEnv e(env);
    const index_t F = g.frames, S = e.size();
    std::vector<float> frames(static_cast<std::size_t>(F * 3 * S * S)), a(static_cast<std::size_t>(2 * F)),
        s(static_cast<std::size_t>(e.state_dim() * F));
    for (index_t b = 0; b < B; ++b) {
      e.trajectory(position + static_cast<std::uint64_t>(b), F, frames.data(), a.data(), s.data());
      for (index_t f = 0; f < F; ++f)  // (F,3,H,W) → (3,F,H,W)
        for (index_t c = 0; c < 3; ++c)
          std::copy_n(frames.data() + (f * 3 + c) * S * S, S * S, out + ((b * 3 + c) * F + f) * S * S);
    }
    return static_cast<std::uint64_t>(B);
  }
};

/// Loads a checkpoint found in --out; a refusal says why that file was read and what to do instead.
template <class Load>
void resuming(const fs::path& ck, const Options& o, Load&& load) {
  try {
    load();
  } catch (const jepa::Error& e) {
    throw IoError(std::string(e.what()) + " — '" + ck.string() + "' is resumed because --out '" + o.out +
                  "' holds it; use --no-resume to retrain from scratch there (it is then replaced), or another --out");
  }
}

/// The frozen encoder's weights: random (the recipe's init) or V-JEPA 2-pretrained on task videos.
void make_encoder(const Options& o, nn::ParameterSet<float>& P) {
  P.init(o.seed);
  if (o.encoder == "random") return;
  const fs::path ck = fs::path(o.out) / "encoder_checkpoint.safetensors";
  namespace Pz = jepa::models::presets;
  using Model = models::Jepa<Encoder, models::Predictor<2, models::RopeTiled, 1, float>, masking::Multiblock3d,
                             losses::MaskedLoss<losses::L1>>;
  models::PredictorConfig pc;
  pc.encoder_dim = 64, pc.pred_dim = 32, pc.num_heads = 2, pc.mlp_hidden = 128;
  Model model(encoder_config(), pc, masking::Multiblock3d::vjepa());
  model.init(o.seed);
  model.mask_seed = o.seed;
  train::TrainConfig tc;
  train::Stage st = train::Recipes::vjepa2_pretrain(1, o.pretrain_steps);
  st.lr.cosine.warmup = std::max<std::uint64_t>(1, o.pretrain_steps / 20);
  tc.stages = {st};
  tc.data = {train::StageData{4, 64, 8, 0}};
  tc.out_dir = o.out;
  planning::ReachEnvConfig vc;
  vc.dynamics = o.dynamics;
  vc.seed = o.seed + 1000;
  ReachVideos videos{vc};
  train::Trainer<Model, ReachVideos> trainer(model, videos, tc);
  if (o.resume && fs::exists(ck)) resuming(ck, o, [&] { train::load_checkpoint(ck.string(), model, trainer); });
  if (!trainer.finished()) {
    std::fprintf(stderr, "pretraining the frozen encoder with the V-JEPA 2 recipe on task videos (%llu steps)\n",
                 static_cast<unsigned long long>(o.pretrain_steps));
    trainer.run();
    train::save_checkpoint(ck.string(), model, trainer);
    trainer.write_loss_png((fs::path(o.out) / "encoder_loss.png").string(), "V-JEPA 2 pretraining on task videos");
  }
  // The recipe freezes the *target* encoder.
  std::copy_n(model.target_params().data(), P.numel(), P.data());
}

struct Policy {
  std::string name;
  std::function<std::vector<double>(const planning::ReachScene&, std::uint64_t call)> act;
};

struct EpisodeLog {
  double start_dist = 0, final_dist = 0, plan_seconds = 0;
  index_t actions = 0;
  bool success = false;
  std::vector<planning::ReachScene> path;
};

/// Runs one closed-loop episode: observe, act (first action of a plan), step, until success or K steps.
EpisodeLog run_episode(const planning::ReachEnv& env, const planning::ReachEpisode& ep, index_t K, const Policy& p,
                       std::uint64_t episode) {
  EpisodeLog log;
  planning::ReachScene s = ep.start;
  log.start_dist = planning::ReachEnv::distance(s, ep.goal);
  log.path.push_back(s);
  for (index_t k = 0; k < K; ++k) {
    const auto t0 = std::chrono::steady_clock::now();
    const auto a = p.act(s, episode * 1000 + static_cast<std::uint64_t>(k));
    log.plan_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ++log.actions;
    s = env.step(s, a.data());
    log.path.push_back(s);
  }
  log.final_dist = planning::ReachEnv::distance(s, ep.goal);
  log.success = env.success(s, ep.goal);
  return log;
}

/// start | goal | reached by each policy (labelled, with the end-effector path drawn in yellow).
void write_rollout_png(const fs::path& path, const planning::ReachEnv& env, const planning::ReachEpisode& ep,
                       const std::vector<EpisodeLog>& logs, const std::vector<Policy>& policies) {
  const int S = static_cast<int>(env.size()), scale = 3, T = S * scale, gap = 6, top = 18;
  const int n = 2 + static_cast<int>(logs.size());
  io::RgbImage img(n * T + (n - 1) * gap, T + top);
  std::fill(img.data.begin(), img.data.end(), std::uint8_t{255});
  std::vector<float> f(static_cast<std::size_t>(3 * S * S));
  auto tile = [&](int slot, const planning::ReachScene& sc, const std::vector<planning::ReachScene>* trail) {
    env.render_rgb(sc, f.data());
    const int ox = slot * (T + gap);
    for (int y = 0; y < T; ++y)
      for (int x = 0; x < T; ++x)
        for (int c = 0; c < 3; ++c)
          img.at(ox + x, top + y)[c] = static_cast<std::uint8_t>(255.0f * f[static_cast<std::size_t>(c * S * S + (y / scale) * S + x / scale)]);
    if (trail)
      for (std::size_t i = 0; i + 1 < trail->size(); ++i)
        for (int t = 0; t <= 20; ++t) {
          const double u = (*trail)[i].x + ((*trail)[i + 1].x - (*trail)[i].x) * t / 20.0;
          const double v = (*trail)[i].y + ((*trail)[i + 1].y - (*trail)[i].y) * t / 20.0;
          const int px = ox + static_cast<int>(u * T), py = top + static_cast<int>(v * T);
          for (int dy = 0; dy < 2; ++dy)
            for (int dx = 0; dx < 2; ++dx)
              if (px + dx >= ox && px + dx < ox + T && py + dy >= top && py + dy < top + T) {
                std::uint8_t* q = img.at(px + dx, py + dy);
                q[0] = 255, q[1] = 230, q[2] = 0;
              }
        }
  };
  tile(0, ep.start, nullptr);
  tile(1, ep.goal, nullptr);
  io::detail::text(img, 4, 3, "start", 2);
  io::detail::text(img, T + gap + 4, 3, "goal", 2);
  for (std::size_t i = 0; i < logs.size(); ++i) {
    const int slot = 2 + static_cast<int>(i);
    tile(slot, logs[i].path.back(), &logs[i].path);
    io::detail::text(img, slot * (T + gap) + 4, 3, policies[i].name + (logs[i].success ? " ok" : ""), 2,
                     logs[i].success ? std::array<std::uint8_t, 3>{0, 130, 0} : std::array<std::uint8_t, 3>{180, 0, 0});
  }
  io::write_png(path.string(), img);
}

/// What the training data depend on, one line: a checkpoint is resumed only for the same task.
std::string task_line(const planning::ReachEnvConfig& c) {
  const std::string damping =
      c.dynamics == planning::ReachDynamics::inertial ? jepa::detail::cat(" damping=", c.damping) : std::string();
  return jepa::detail::cat("dynamics=", planning::to_string(c.dynamics), damping, " max_step=", c.max_step,
                           " lamp_sigma=", c.lamp_sigma, " seed=", c.seed);
}
/// Refuses to resume DIR's checkpoints (the AC predictor's, and the encoder's of --encoder vjepa2, which
/// was pretrained on the task's videos) when DIR/task.txt names another task; writes it otherwise. A
/// checkpoint without task.txt predates the inertial task and was trained on the position one.
void check_task(const Options& o, const planning::ReachEnvConfig& c) {
  const fs::path f = fs::path(o.out) / "task.txt";
  fs::path ck = fs::path(o.out) / "ac_checkpoint.safetensors";
  if (!fs::exists(ck)) ck = fs::path(o.out) / "encoder_checkpoint.safetensors";
  const std::string want = task_line(c);
  if (o.resume && fs::exists(ck)) {
    std::string have;
    if (std::ifstream in(f); in) std::getline(in, have);
    const bool same = have.empty() ? c.dynamics == planning::ReachDynamics::position : have == want;
    if (!same)
      throw ConfigError(jepa::detail::cat("jepa: ", ck.string(), " was trained on another task (",
                                          have.empty() ? "position dynamics, before task.txt existed" : have,
                                          "); this run is ", want, ": use another --out or --no-resume"));
  }
  std::ofstream(f) << want << '\n';
}

}  // namespace

int main(int argc, char** argv) try {
  const Options o = parse(argc, argv);
  for (const auto& t : train::prepare_run_directory(o.out, "--out"))  // checked before any work
    std::fprintf(stderr, "jepa: removed %s/%s, a temporary file left by an interrupted run\n", o.out.c_str(), t.c_str());
  planning::ReachEnvConfig ec;
  ec.dynamics = o.dynamics;
  ec.seed = o.seed;
  if (!o.lamp) ec.lamp_sigma = 0;
  const planning::ReachEnv env(ec);
  check_task(o, ec);

  Encoder enc(encoder_config());
  nn::ParameterSet<float> enc_params(enc.layout());
  make_encoder(o, enc_params);
  models::FrameEncoder<Encoder> frames(enc, enc_params.data(), env.size(), env.size(), 64);

  // ---- train the AC predictor ---------------------------------------------------------------
  Predictor pred(predictor_config(env));
  nn::ParameterSet<float> P(pred.layout());
  P.init(o.seed + 1);
  const planning::ReachTrajectories data{env, 8};
  auto tc = train::AcTrainConfig::recipe(o.train_steps, o.batch, o.lr);
  train::AcTrainer<Encoder, Predictor, planning::ReachTrajectories> trainer(frames, pred, P, data, tc);
  const fs::path ck = fs::path(o.out) / "ac_checkpoint.safetensors";
  if (o.resume && fs::exists(ck)) {
    resuming(ck, o, [&] { train::load_ac_checkpoint(ck.string(), trainer); });
    std::fprintf(stderr, "resumed %s at step %llu\n", ck.c_str(), static_cast<unsigned long long>(trainer.state().step));
  }
  if (!trainer.finished()) {
    std::fprintf(stderr, "training the AC predictor (%zu parameters; encoder %s, frozen) on random-action trajectories\n",
                 pred.param_count(), o.encoder.c_str());
    const std::uint64_t every = std::max<std::uint64_t>(100, o.train_steps / 10);
    trainer.on_step = [&](const train::AcStepLog& l) {
      if (l.step % every == 0) train::save_ac_checkpoint(ck.string(), trainer);
    };
    const auto t0 = std::chrono::steady_clock::now();
    trainer.run();
    train::save_ac_checkpoint(ck.string(), trainer);
    std::printf("trained %llu steps in %s\n", static_cast<unsigned long long>(o.train_steps),
                hms(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()).c_str());
  }
  trainer.write_csv((fs::path(o.out) / "ac_log.csv").string());
  trainer.write_loss_png((fs::path(o.out) / "ac_loss.png").string(), "V-JEPA 2-AC predictor on the reaching task");
  {
    const auto& h = trainer.history();
    double first = 0, last = 0;
    const std::size_t n = std::max<std::size_t>(1, std::min<std::size_t>(50, h.size() / 2));
    for (std::size_t i = 0; i < n; ++i) first += h[i].loss / n, last += h[h.size() - 1 - i].loss / n;
    std::printf("AC loss (mean of %zu steps): first %.4f -> last %.4f\n", n, first, last);
  }
  if (!o.eval) return 0;

  // ---- plan in closed loop --------------------------------------------------------------------
  planning::AcWorldModel<Encoder, Predictor> wm(frames, pred, P.data(),
                                                [&](const float* s, const float* a, float* nx) { env.propagate(s, a, nx); });
  planning::CemConfig cem = planning::CemConfig::box(planning::ReachEnv::action_dim, 1.0);  // a ∈ [−1, 1]²
  cem.samples = o.samples, cem.topk = o.topk, cem.iterations = o.iterations, cem.seed = o.seed;
  planning::CemConfig greedy = cem;
  greedy.horizon = 1;
  greedy.samples = o.greedy_samples;
  auto observe = [&](const planning::ReachScene& s) {
    const auto f = env.render(s);
    std::vector<float> st(static_cast<std::size_t>(env.state_dim()));
    env.state(s, st.data());
    wm.observe(f.data(), st.data());
  };
  auto set_goal = [&](const planning::ReachEpisode& ep) { wm.set_goal_image(env.render(ep.goal).data()); };
  std::vector<Policy> policies{
      {"random", [&](const planning::ReachScene&, std::uint64_t call) {
         Rng r(o.seed ^ 0xAB, call);
         return std::vector<double>{r.uniform(-1, 1), r.uniform(-1, 1)};
       }},
      {"greedy", [&](const planning::ReachScene& s, std::uint64_t call) {
         observe(s);
         return planning::best_of_samples(wm.energy(1), greedy, call).action(0);
       }}};
  for (index_t H : o.horizons) {
    planning::CemConfig c = cem;
    c.horizon = H;
    c.validate();
    policies.push_back({"cem-h" + std::to_string(H), [&, c](const planning::ReachScene& s, std::uint64_t call) {
                          observe(s);
                          return planning::cem(wm.energy(c.horizon), c, call).action(0);
                        }});
  }
  const std::size_t learned = policies.size();   // the policies that use the world model (and random)
  const planning::ReachEpisode* goal = nullptr;  // the current episode (for the oracle energy)
  if (o.oracle) {
    // The same planners on a perfect energy: the simulator's distance to the goal after H steps.
    auto true_energy = [&](const planning::ReachScene& s, index_t H) {
      return [&, s, H](const float* a, index_t N, double* out) {
        for (index_t n = 0; n < N; ++n) {
          planning::ReachScene x = s;
          for (index_t h = 0; h < H; ++h) {
            const double ad[2] = {a[(n * H + h) * 2], a[(n * H + h) * 2 + 1]};
            x = env.step(x, ad);
          }
          out[n] = planning::ReachEnv::distance(x, goal->goal);
        }
      };
    };
    policies.push_back({"greedy*", [=](const planning::ReachScene& s, std::uint64_t call) {
                          return planning::best_of_samples(true_energy(s, 1), greedy, call).action(0);
                        }});
    for (index_t H : o.horizons) {
      planning::CemConfig c = cem;
      c.horizon = H;
      policies.push_back({"cem-h" + std::to_string(H) + "*", [=](const planning::ReachScene& s, std::uint64_t call) {
                            return planning::cem(true_energy(s, c.horizon), c, call).action(0);
                          }});
    }
  }
  std::ofstream csv(fs::path(o.out) / "results.csv");
  csv << "episode,policy,start_distance,final_distance,success,actions,plan_seconds\n";
  std::vector<int> wins(policies.size(), 0);
  std::vector<double> secs(policies.size(), 0), dist(policies.size(), 0);
  std::vector<index_t> acts(policies.size(), 0);
  const auto t0 = std::chrono::steady_clock::now();
  for (index_t e = 0; e < o.episodes; ++e) {
    const auto ep = env.episode(static_cast<std::uint64_t>(e));
    set_goal(ep);
    goal = &ep;
    std::vector<EpisodeLog> logs;
    for (std::size_t p = 0; p < policies.size(); ++p) {
      logs.push_back(run_episode(env, ep, o.max_steps, policies[p], static_cast<std::uint64_t>(e)));
      const auto& l = logs.back();
      wins[p] += l.success, secs[p] += l.plan_seconds, acts[p] += l.actions, dist[p] += l.final_dist;
      csv << e << ',' << policies[p].name << ',' << l.start_dist << ',' << l.final_dist << ',' << l.success << ','
          << l.actions << ',' << l.plan_seconds << '\n';
    }
    if (e < 6)  // the world-model policies only (the oracle rows would make the strip too wide)
      write_rollout_png(fs::path(o.out) / ("rollout_" + std::to_string(e) + ".png"), env, ep,
                        std::vector<EpisodeLog>(logs.begin(), logs.begin() + static_cast<std::ptrdiff_t>(learned)),
                        std::vector<Policy>(policies.begin(), policies.begin() + static_cast<std::ptrdiff_t>(learned)));
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::string so_far;
    for (std::size_t p = 0; p < policies.size(); ++p) so_far += (p ? ", " : "") + policies[p].name + " " + std::to_string(wins[p]);
    std::fprintf(stderr, "[plan] episode %lld/%lld  successes: %s  |  elapsed %s  ETA %s\n", static_cast<long long>(e + 1),
                 static_cast<long long>(o.episodes), so_far.c_str(), hms(el).c_str(),
                 hms(el / static_cast<double>(e + 1) * static_cast<double>(o.episodes - e - 1)).c_str());
  }
  std::printf("\nclosed-loop reaching (%s), %lld episodes, %lld actions each, success = final distance < %.3f (%.1f px)\n",
              task_line(ec).c_str(), static_cast<long long>(o.episodes), static_cast<long long>(o.max_steps),
              ec.success_radius, ec.success_radius * static_cast<double>(ec.size));
  std::printf("%-9s %10s %14s %22s\n", "policy", "success", "mean final d", "planning s / action");
  for (std::size_t p = 0; p < policies.size(); ++p)
    std::printf("%-9s %9.0f%% %14.3f %22.4f\n", policies[p].name.c_str(), 100.0 * wins[p] / static_cast<double>(o.episodes),
                dist[p] / static_cast<double>(o.episodes), secs[p] / static_cast<double>(acts[p]));
  std::printf("CEM: %lld samples, top %lld, %lld iterations, momenta 0.15/0.15; greedy: horizon 1, %lld samples\n",
              static_cast<long long>(cem.samples), static_cast<long long>(cem.topk), static_cast<long long>(cem.iterations),
              static_cast<long long>(greedy.samples));
  return 0;
} catch (const MemoryError& e) {
  std::fprintf(stderr, "error: %s; the memory is set by --batch, --samples and --horizons: lower them\n", e.what());
  return 2;
} catch (const std::bad_alloc&) {
  std::fprintf(stderr, "error: jepa: out of memory (%s available); the memory is set by --batch, --samples and "
                       "--horizons: lower them\n", format_bytes(available_host_memory()).c_str());
  return 2;
} catch (const std::exception& e) {
  std::fprintf(stderr, "error: %s\n", e.what());
  return 2;
} catch (...) {
  std::fprintf(stderr, "error: jepa: an unknown exception ended the run\n");
  return 2;
}
