// bench_ac_planning — V-JEPA 2-AC planning cost on the CPU (planning/world_model.hpp + planning/cem.hpp).
//
//   bench_ac_planning [--reps R] [--paper-candidates N] [--skip-paper]
//
// 1. The small model of examples/plan (frozen ViT D 64 depth 4 on 64×64 frames = 16 tokens/frame;
//    AC predictor depth 4, Dp 64): wall time of one receding-horizon action — observe (encode the
//    frame) + a full CEM plan — with the recipe's defaults (horizon 2, 400 samples, top 10,
//    10 iterations), with the paper's table setting (horizon 1, 800 samples, 10 iterations), and of
//    the greedy one-step baseline (one batch of 400, horizon 1). Weights are random: the cost does not
//    depend on them.
// 2. The released predictor's shape (depth 24, Dp 1024, 16 heads, on ViT-g features D 1408, 256 tokens
//    per 256² frame, 7-D actions and states): the energy of N candidates for one CEM iteration at
//    horizon 1 (the paper's setting: one predictor pass over T = 1 step, 258 tokens per candidate) and
//    at horizon 2 (the wrapper's: passes over T = 1 and T = 2). A whole iteration of 800 candidates
//    does not fit the time (≈ 2·305M·258·800 ≈ 126 TFLOP), so N candidates are timed and the cost is
//    scaled linearly to the setting's 800 (H 1) or 400 (H 2) candidates (candidates are independent
//    rows of the batch, so the cost is linear in N), and ×10 iterations per action. The encoder pass
//    on the observed frame (once per action) is not included.
// FLOPs are counted as 2·(weights)·(tokens) for the linear layers plus 4·H·Dh·(allowed pairs) for the
// attention. Times are the best of R runs after a warm-up.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "jepa/jepa.hpp"
#include "jepa/models/ac_predictor.hpp"
#include "jepa/models/frame_encoder.hpp"
#include "jepa/planning/cem.hpp"
#include "jepa/planning/reach_env.hpp"
#include "jepa/planning/world_model.hpp"

using namespace jepa;

namespace {

template <class F>
double best_seconds(F&& f, int reps, bool warm = true) {
  if (warm) f();
  double best = 1e300;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

/// FLOPs of one AC predictor forward over N sequences of T steps.
double predictor_flops(const models::AcPredictorConfig& c, int depth, index_t N, index_t T) {
  const double HW = static_cast<double>(c.tokens_per_frame()), K = HW + 2, S = T * K, Dp = static_cast<double>(c.pred_dim);
  const double D = static_cast<double>(c.encoder_dim), Hd = static_cast<double>(c.mlp_hidden);
  const double linear = 2.0 * S * depth * (4 * Dp * Dp + 2 * Dp * Hd) + 2.0 * T * HW * (2 * D * Dp);
  double pairs = 0;  // block-causal: step t attends to (t+1)·K keys
  for (index_t t = 0; t < T; ++t) pairs += K * (t + 1) * K;
  return static_cast<double>(N) * (linear + 4.0 * depth * Dp * pairs);
}

void small_model(int reps) {
  using Encoder = models::VitEncoder<4, tokenizers::Tubelet<2, 16>, models::RopeTiled, models::FinalNorm, float>;
  using Predictor = models::AcPredictor<4, models::RopeTiled, float>;
  models::VitConfig ec;
  ec.embed_dim = 64, ec.num_heads = 4, ec.mlp_hidden = 256;
  models::AcPredictorConfig pc;
  pc.encoder_dim = 64, pc.pred_dim = 64, pc.num_heads = 4, pc.mlp_hidden = 256, pc.action_dim = 2, pc.state_dim = 2;
  pc.grid_h = pc.grid_w = 4, pc.extrinsics_encoder = false;
  Encoder enc(ec);
  nn::ParameterSet<float> E(enc.layout());
  E.init(1);
  Predictor pred(pc);
  nn::ParameterSet<float> P(pred.layout());
  P.init(2);
  planning::ReachEnv env(planning::ReachEnvConfig{});
  models::FrameEncoder<Encoder> frames(enc, E.data(), 64, 64);
  planning::AcWorldModel<Encoder, Predictor> wm(frames, pred, P.data(),
                                                [&](const float* s, const float* a, float* n) { env.propagate(s, a, n); });
  const auto ep = env.episode(0);
  const auto f0 = env.render(ep.start), fg = env.render(ep.goal);
  float s0[planning::ReachEnv::max_state_dim];
  env.state(ep.start, s0);
  wm.set_goal_image(fg.data());
  std::printf("\nsmall model (examples/plan): encoder 64x4 on 64x64 frames (16 tokens), AC predictor depth 4, Dp 64 "
              "(%zu parameters)\n", pred.param_count());
  std::printf("%-44s %12s %14s %10s\n", "setting", "s / action", "predictor GF", "GFLOP/s");
  struct Setting {
    const char* name;
    index_t H, N, iters;
    bool greedy;
  };
  for (const Setting& st : {Setting{"CEM recipe defaults (H 2, 400 x 10 it)", 2, 400, 10, false},
                            Setting{"CEM paper table (H 1, 800 x 10 it)", 1, 800, 10, false},
                            Setting{"greedy one-step (H 1, 400 x 1)", 1, 400, 1, true}}) {
    planning::CemConfig c = planning::CemConfig::box(2, 1.0);
    c.horizon = st.H, c.samples = st.N, c.iterations = st.iters;
    std::uint64_t call = 0;
    const double s = best_seconds([&] {
      wm.observe(f0.data(), s0);
      if (st.greedy) (void)planning::best_of_samples(wm.energy(c.horizon), c, call++);
      else (void)planning::cem(wm.energy(c.horizon), c, call++);
    }, reps);
    double fl = 0;
    for (index_t k = 1; k <= st.H; ++k) fl += predictor_flops(pc, 4, st.N, k);
    fl *= static_cast<double>(st.iters);
    std::printf("%-44s %12.3f %14.2f %10.1f\n", st.name, s, fl / 1e9, fl / 1e9 / s);
  }
}

void paper_model(int reps, index_t N) {
  using Predictor = models::presets::VJepa2AcPredictor<float>;
  const auto pc = models::presets::vjepa2_ac_predictor_config();
  Predictor pred(pc);
  nn::ParameterSet<float> P(pred.layout());
  P.init(3);
  std::printf("\nreleased AC predictor shape (depth 24, Dp 1024, D 1408, 16x16 patches, A = Sd = 7; %zu parameters),"
              " %lld candidates timed, scaled linearly to the setting's candidate count\n",
              pred.param_count(), static_cast<long long>(N));
  std::printf("%-34s %9s %11s %9s %16s %16s\n", "one CEM iteration", "s (N)", "TFLOP (N)", "GFLOP/s", "s / iteration", "s / action");
  const index_t HW = pc.tokens_per_frame(), D = pc.encoder_dim;
  auto z = std::vector<float>(static_cast<std::size_t>(N * 2 * HW * D));
  Rng rng(4, 0);
  for (auto& v : z) v = static_cast<float>(rng.normal());
  std::vector<float> a(static_cast<std::size_t>(N * 2 * 7), 0.01f), s(static_cast<std::size_t>(N * 2 * 7), 0.1f);
  for (index_t H : {1, 2}) {
    auto st = pred.make_state(models::Mode::inference, N, H);
    double fl = 0;
    const double sec = best_seconds([&] {
      for (index_t k = 1; k <= H; ++k)
        pred.forward(P.data(), TensorView<const float, 3>(z.data(), {N, k * HW, D}), TensorView<const float, 3>(a.data(), {N, k, 7}),
                     TensorView<const float, 3>(s.data(), {N, k, 7}), st);
    }, reps, /*warm=*/false);
    for (index_t k = 1; k <= H; ++k) fl += predictor_flops(pc, 24, N, k);
    const double cand = H == 1 ? 800.0 : 400.0;  // the paper's table / the world-model wrapper's default
    const double iter = sec * cand / static_cast<double>(N);
    std::printf("%-34s %9.2f %11.3f %9.1f %16.1f %16.0f\n", H == 1 ? "H 1, 800 cand. (paper, 10 it)" : "H 2, 400 cand. (wrapper, 10 it)",
                sec, fl / 1e12, fl / 1e9 / sec, iter, 10 * iter);
  }
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 3;
  index_t paper_n = 4;
  bool paper = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--reps" && i + 1 < argc) reps = std::max(1, std::atoi(argv[++i]));
    else if (a == "--paper-candidates" && i + 1 < argc) paper_n = std::max(1, std::atoi(argv[++i]));
    else if (a == "--skip-paper") paper = false;
    else {
      std::fprintf(stderr, "usage: bench_ac_planning [--reps R] [--paper-candidates N] [--skip-paper]\n");
      return 2;
    }
  }
  try {
    small_model(reps);
    if (paper) paper_model(std::max(1, reps / 3), paper_n);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
