// bench_data_parallel — time of one data-parallel training step on this machine's CPU cores.
//
//   mpirun -np R bench_data_parallel [--frames F] [--res S] [--batch-per-rank b]
//                                    [--steps N] [--warmup K] [--no-overlap] [--label TEXT]
//   (or alone: one rank). benchmarks/bench_data_parallel.sh runs the configurations and prints the
//   scaling table of docs/benchmarks.md.
//
// Every rank trains V-JEPA 2 ViT-Ti (encoder 5.5M + predictor 21.5M parameters: 108 MB of float32
// gradients to all-reduce per step; synthetic clips, the recipe's masks, AdamW, EMA) on b clips of the
// global batch R·b; the step time is the median over N steps of the slowest rank, after K warmup
// steps. Prints a human line and one machine-readable `ROW key=value …` line (rank 0 only):
//   step_ms          median step time                    clips_per_s    R·b / step time
//   reduce_wait_ms   mean time the step waited for the gradient all-reduce after the backward walk
//   buckets, early   gradient buckets per step, and how many started during the backward walk
//   cpu_ms_per_clip  CPU time of all ranks (all threads) per clip: the work, independent of how many
//                    other programs share the cores (wall-clock scaling is not, on a shared machine)
#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "jepa/dist/mpi.hpp"
#include "jepa/models/jepa_presets.hpp"
#include "jepa/train/trainer.hpp"

using namespace jepa;
namespace P = jepa::models::presets;

namespace {
struct Args {
  std::string label;
  index_t frames = 8, res = 96, batch = 2;
  int steps = 6, warmup = 2;
  bool overlap = true;
};

template <class Model>
int bench(Model model, const Args& a, dist::AnyCommunicator comm) {
  const int R = comm.size();
  model.init(1);
  train::TrainConfig cfg;
  auto pre = train::Recipes::vjepa2_pretrain(1, static_cast<std::uint64_t>(a.steps + a.warmup));
  pre.lr.cosine.warmup = 1;
  cfg.stages = {pre};
  cfg.data = {{a.frames, a.res, a.batch * R, 0}};
  cfg.progress = false;
  cfg.diag_every = 0;
  cfg.overlap_reduction = a.overlap;
  const train::SyntheticSource src{3};
  train::Trainer trainer(model, src, cfg, nullptr, comm);
  for (int i = 0; i < a.warmup; ++i) trainer.step();
  std::vector<double> ms;
  double wait = 0, cpu = 0;
  std::size_t buckets = 0, early = 0;
  for (int i = 0; i < a.steps; ++i) {
    comm.barrier();
    const auto t0 = std::chrono::steady_clock::now();
    const std::clock_t c0 = std::clock();
    trainer.step();
    double t = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    double c = 1e3 * static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC;
    comm.all_reduce(&t, 1, dist::ReduceOp::max);  // the step of the slowest rank
    comm.all_reduce(&c, 1, dist::ReduceOp::sum);  // CPU time of every rank
    cpu += c;
    ms.push_back(t);
    if (const auto* st = trainer.reduction_stats()) wait += st->wait_seconds * 1e3, buckets = st->buckets, early = st->started_early;
    if (comm.rank() == 0)
      std::fprintf(stderr, "\r  %s: step %d/%d  %.0f ms   ", a.label.c_str(), i + 1, a.steps, t);
  }
  std::sort(ms.begin(), ms.end());
  const double med = ms[ms.size() / 2];
  double wait_max = wait / a.steps;
  comm.all_reduce(&wait_max, 1, dist::ReduceOp::max);
  if (comm.rank() == 0) {
    const char* threads = std::getenv("OMP_NUM_THREADS");
    const double cpu_clip = cpu / a.steps / static_cast<double>(a.batch * R);
    std::fprintf(stderr, "\n");
    std::printf("%-28s ranks %d, threads/rank %s, global batch %ld (%ld/rank): step %.0f ms, %.2f clips/s, "
                "%.0f CPU ms/clip, reduce wait %.1f ms, %zu/%zu buckets overlapped\n",
                a.label.c_str(), R, threads ? threads : "?", static_cast<long>(a.batch * R), static_cast<long>(a.batch),
                med, static_cast<double>(a.batch * R) * 1e3 / med, cpu_clip, wait_max, early, buckets);
    std::printf("ROW ranks=%d threads=%s global_batch=%ld step_ms=%.2f clips_per_s=%.4f cpu_ms_per_clip=%.1f "
                "reduce_wait_ms=%.2f buckets=%zu early=%zu params=%zu label=%s\n",
                R, threads ? threads : "?", static_cast<long>(a.batch * R), med,
                static_cast<double>(a.batch * R) * 1e3 / med, cpu_clip, wait_max, buckets, early,
                model.encoder().param_count() + model.predictor().param_count(), a.label.c_str());
  }
  return 0;
}
}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string s = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (s == "--frames") a.frames = std::atol(next().c_str());
    else if (s == "--res") a.res = std::atol(next().c_str());
    else if (s == "--batch-per-rank") a.batch = std::atol(next().c_str());
    else if (s == "--steps") a.steps = std::atoi(next().c_str());
    else if (s == "--warmup") a.warmup = std::atoi(next().c_str());
    else if (s == "--no-overlap") a.overlap = false;
    else if (s == "--label") a.label = next();
    else {
      std::fprintf(stderr, "bench_data_parallel: unknown option '%s'\n", s.c_str());
      return 2;
    }
  }
  if (a.steps < 1) a.steps = 1;
  std::optional<dist::MpiSession> mpi;
  dist::AnyCommunicator comm;
  try {
    if (dist::launched_by_mpi()) {
      mpi.emplace(argc, argv);
      comm = dist::MpiCommunicator();
    }
    return bench(P::vjepa2<P::vit_tiny>(), a, comm);
  } catch (const dist::RankFailure& e) {
    if (e.is_origin()) std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    if (comm.size() > 1) dist::abort_job(e.what());
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
}
