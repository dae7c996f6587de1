// Data-parallel training over MPI (jepa/dist/mpi.hpp, jepa/train/trainer.hpp with a communicator).
// Runs as one process (world size 1) and under `mpirun -np 2` (test_dist_mpi_np2):
// - the communicator's collectives; errors name the rank;
// - bucketed gradient all-reduce started during the backward walk equals one all-reduce of the whole
//   buffers, bitwise (real MPI, real gradients that differ per rank);
// - a tiny V-JEPA 2.1 model (videos + images) trained K steps data-parallel equals the single-process
//   run with the same global batch: bitwise at world size 1, to a stated tolerance (reduction order)
//   at 2 ranks; rank 0's initial weights reach every rank; replicas stay bitwise identical;
// - checkpoints: only rank 0 writes; a run resumes at a different world size (2 → 1 and 1 → 2);
// - a rank that throws (bad data path) stops every rank with its message (RankFailure), and a
//   non-finite loss on one rank skips the step on all, without a hang (ctest TIMEOUT bounds it).
#include <boost/test/unit_test.hpp>

#ifdef JEPA_HAVE_MPI
#include <cmath>
#include <cstring>
#include <filesystem>
#include <memory>
#include <unistd.h>

#include "jepa/data/synthetic_video.hpp"
#include "jepa/dist/mpi.hpp"
#include "jepa/models/jepa_presets.hpp"
#include "jepa/train/checkpoint.hpp"
#include "jepa/train/trainer.hpp"

using namespace jepa;
namespace P = jepa::models::presets;

namespace {

struct MpiGlobal {
  MpiGlobal() : session(std::make_unique<dist::MpiSession>()) {}
  std::unique_ptr<dist::MpiSession> session;
};

// The model trains in double precision here so that "equal up to reduction order" can be tight:
// summing per-rank gradients instead of one batch GEMM changes the last bits (~1e-16 relative);
// AdamW divides by √v + eps, so an element whose gradient is at rounding level could move by up to
// lr·|δg|/eps — in float (δg ~ 1e-7·|g|) that reaches 1e-4 on a few bias elements after 3 steps at
// lr 1e-3 (measured: predictor_proj.bias), in double it stays below 1e-10 (measured max |Δw| is
// printed by the test: 5e-13 at 2 ranks). Losses agree to 1e-12 relative.
constexpr double kWeightTol = 1e-9;
constexpr double kLossRelTol = 1e-12;
constexpr index_t kFrames = 4, kSize = 64;

using Model = decltype(P::vjepa2_1<P::vit_micro, double>());
Model make_model(std::uint64_t seed) {
  auto m = P::vjepa2_1<P::vit_micro, double>();
  m.init(seed);
  return m;
}

train::TrainConfig run_config(std::uint64_t steps, index_t batch = 2, index_t images = 2) {
  train::TrainConfig c;
  auto pre = train::Recipes::vjepa21_pretrain(1, steps);
  pre.lr.cosine.warmup = 1;
  pre.lr.cosine.ref = pre.lr.cosine.final = 1e-3;
  c.stages = {pre};
  c.data = {{kFrames, kSize, batch, images}};
  c.progress = false;
  c.out_dir = "unused";
  c.bucket_bytes = 16 << 10;  // several buckets even for the micro model
  return c;
}

double max_abs_diff(const nn::ParameterSet<double>& a, const nn::ParameterSet<double>& b) {
  double m = 0;
  for (std::size_t i = 0; i < a.numel(); ++i) m = std::max(m, std::abs(a.data()[i] - b.data()[i]));
  return m;
}
bool same_bits(const nn::ParameterSet<double>& a, const nn::ParameterSet<double>& b) {
  return a.numel() == b.numel() && std::memcmp(a.data(), b.data(), a.numel() * sizeof(double)) == 0;
}
double model_diff(Model& a, Model& b) {
  return std::max({max_abs_diff(a.encoder_params(), b.encoder_params()), max_abs_diff(a.target_params(), b.target_params()),
                   max_abs_diff(a.predictor_params(), b.predictor_params())});
}
bool model_same(Model& a, Model& b) {
  return same_bits(a.encoder_params(), b.encoder_params()) && same_bits(a.target_params(), b.target_params()) &&
         same_bits(a.predictor_params(), b.predictor_params());
}

/// A directory every rank agrees on (rank 0 names it, broadcasts it).
std::filesystem::path shared_dir(dist::MpiCommunicator& comm, const char* name) {
  std::string d = (std::filesystem::temp_directory_path() /
                   (std::string("jepa_test_") + name + "_" + std::to_string(::getpid()))).string();
  std::uint64_t n = d.size();
  comm.broadcast(&n, 1, 0);
  d.resize(n);
  comm.broadcast(d.data(), d.size(), 0);
  if (comm.rank() == 0) {
    std::filesystem::remove_all(d);
    std::filesystem::create_directories(d);
  }
  comm.barrier();
  return d;
}

/// A source that behaves like SyntheticSource, except on `bad_rank` for stream positions in
/// [from, to): it throws (a missing data path) or writes NaN pixels.
struct FaultySource {
  std::uint64_t seed = 7;
  int rank = 0, bad_rank = -1;
  std::uint64_t from = ~std::uint64_t{0}, to = ~std::uint64_t{0};
  bool nan = false;
  std::uint64_t fill(std::uint64_t pos, index_t B, const models::InputGeometry& g, float* out,
                     std::vector<std::string>& skipped) const {
    const auto n = train::SyntheticSource{seed}.fill(pos, B, g, out, skipped);
    if (rank == bad_rank && pos >= from && pos < to) {
      if (!nan) throw IoError("jepa: cannot open the video folder '/no/such/path/videos' (No such file or directory)");
      out[0] = std::nanf("");
    }
    return n;
  }
};

}  // namespace

BOOST_TEST_GLOBAL_FIXTURE(MpiGlobal);

BOOST_AUTO_TEST_CASE(communicator_collectives) {
  dist::MpiCommunicator comm;
  const int W = comm.size(), r = comm.rank();
  BOOST_TEST_MESSAGE("rank " << r << " of " << W);
  BOOST_TEST(r >= 0);
  BOOST_TEST(r < W);
  std::vector<float> f{1.0f + static_cast<float>(r), 2.0f};
  comm.all_reduce(f.data(), f.size(), dist::ReduceOp::sum);
  BOOST_TEST(f[0] == static_cast<float>(W * (W + 1) / 2));
  BOOST_TEST(f[1] == 2.0f * static_cast<float>(W));
  std::vector<double> d{static_cast<double>(r), -static_cast<double>(r)};
  comm.all_reduce(d.data(), 1, dist::ReduceOp::max);
  comm.all_reduce(d.data() + 1, 1, dist::ReduceOp::min);
  BOOST_TEST(d[0] == W - 1.0);
  BOOST_TEST(d[1] == -(W - 1.0));
  std::uint64_t u = 40 + static_cast<std::uint64_t>(r);
  comm.broadcast(&u, 1, W - 1);
  BOOST_TEST(u == 40u + static_cast<std::uint64_t>(W - 1));
  std::vector<float> a(1000, static_cast<float>(r + 1));
  comm.all_reduce_async(a.data(), 500);
  comm.all_reduce_async(a.data() + 500, 500);
  comm.progress();
  comm.wait_all();
  BOOST_TEST(a[0] == static_cast<float>(W * (W + 1) / 2));
  BOOST_TEST(a[999] == a[0]);
  comm.barrier();
  dist::MpiCommunicator copy = comm;  // copies share the duplicate communicator
  copy.barrier();
  const int local = dist::node_rank(comm);  // every rank of this test runs on this machine
  BOOST_TEST(local == r);
  try {
    comm.broadcast(&u, 1, W);
    BOOST_ERROR("expected IndexError");
  } catch (const IndexError& e) {
    BOOST_TEST(std::string(e.what()).find("broadcast root = " + std::to_string(W)) != std::string::npos, e.what());
  }
}

BOOST_AUTO_TEST_CASE(bucketed_all_reduce_equals_one_all_reduce) {
  dist::MpiCommunicator comm;
  // Every rank: the gradient of its own clips (different per rank), from identical weights.
  std::vector<float> xf(static_cast<std::size_t>(2 * 3 * kFrames * kSize * kSize));
  data::SyntheticVideo({kFrames, kSize, kSize, 2, 4, 100 + static_cast<std::uint64_t>(comm.rank())}).batch(0, 2, xf.data());
  const std::vector<double> x(xf.begin(), xf.end());
  const TensorView<const double, 5> cv(x.data(), {2, 3, kFrames, kSize, kSize});
  auto grads = [&](Model& m) {
    m.forward_loss(cv, 5, m.masking().sample(m.encoder().grid({kFrames, kSize, kSize}), 3, 5, 2));
  };
  auto whole = make_model(239);
  grads(whole);
  whole.backward();
  comm.all_reduce(whole.encoder_grads().data(), whole.encoder_grads().numel());
  comm.all_reduce(whole.predictor_grads().data(), whole.predictor_grads().numel());
  for (std::size_t bucket_bytes : {std::size_t{1}, std::size_t{8} << 10, std::size_t{1} << 30}) {
    auto m = make_model(239);
    grads(m);
    using R = dist::BucketReducer<double, dist::MpiCommunicator>;
    std::vector<R::Item> walk;
    for (const auto& rg : m.predictor().grad_walk()) walk.push_back({1, rg});
    for (const auto& rg : m.encoder().grad_walk()) walk.push_back({0, rg});
    R red({{m.encoder_grads().data(), m.encoder_grads().numel()}, {m.predictor_grads().data(), m.predictor_grads().numel()}},
          walk, bucket_bytes);
    red.begin(comm);
    m.backward(red.hook(0), red.hook(1));
    red.finish();
    BOOST_TEST_MESSAGE("bucket_bytes " << bucket_bytes << ": " << red.num_buckets() << " buckets");
    BOOST_TEST(same_bits(m.encoder_grads(), whole.encoder_grads()), "encoder, bucket_bytes " << bucket_bytes);
    BOOST_TEST(same_bits(m.predictor_grads(), whole.predictor_grads()), "predictor, bucket_bytes " << bucket_bytes);
  }
}

BOOST_AUTO_TEST_CASE(data_parallel_equals_single_process_with_the_same_global_batch) {
  dist::MpiCommunicator comm;
  const int W = comm.size();
  constexpr std::uint64_t K = 3;
  const train::SyntheticSource videos{7}, images{8};
  // Single process, global batch 2 videos + 2 images (computed on every rank).
  auto s = make_model(239);
  train::Trainer ts(s, videos, run_config(K), &images);
  ts.run();
  // Data-parallel: rank 0's initial weights must reach the others (theirs start elsewhere).
  auto d = make_model(comm.rank() == 0 ? 239 : 1000 + static_cast<std::uint64_t>(comm.rank()));
  train::Trainer td(d, videos, run_config(K), &images, comm);
  td.run();
  BOOST_REQUIRE_EQUAL(td.history().size(), K);
  const double diff = model_diff(s, d);
  BOOST_TEST_MESSAGE("world size " << W << ": max |w_dp - w_1| after " << K << " steps = " << diff);
  for (std::uint64_t k = 0; k < K; ++k) {
    const auto &a = ts.history()[k], &b = td.history()[k];
    BOOST_TEST(!b.skipped);
    BOOST_TEST(std::abs(a.loss - b.loss) <= kLossRelTol * std::abs(a.loss), "step " << k + 1 << ": " << a.loss << " vs " << b.loss);
    BOOST_TEST(std::abs(a.context - b.context) <= kLossRelTol * std::abs(a.context) + 1e-12);
    BOOST_TEST(std::abs(a.grad_norm - b.grad_norm) <= 1e-10 * a.grad_norm, "step " << k + 1);
    BOOST_TEST(std::abs(a.target_std - b.target_std) <= 1e-10 * a.target_std, "step " << k + 1 << ": target std "
                                                                                  << a.target_std << " vs " << b.target_std);
  }
  BOOST_TEST(td.state().video_position == ts.state().video_position);
  BOOST_TEST(td.state().image_position == ts.state().image_position);
  if (W == 1) {
    BOOST_TEST(model_same(s, d), "world size 1 must be bitwise the single-process trainer");
    for (std::uint64_t k = 0; k < K; ++k) BOOST_TEST(ts.history()[k].loss == td.history()[k].loss);
  } else {
    BOOST_TEST(diff <= kWeightTol);
    const auto* st = td.reduction_stats();
    BOOST_REQUIRE(st);
    BOOST_TEST(st->buckets > 1u);
    BOOST_TEST(st->started_early == st->buckets, "every bucket starts during the last backward walk");
  }
  BOOST_TEST(td.replicas_agree(), "every rank must hold bitwise the same weights and moments");
  // Without overlap: the same result, bitwise (the overlap changes when, not what, is summed).
  auto o = make_model(239);
  auto cfg = run_config(K);
  cfg.overlap_reduction = false;
  train::Trainer to(o, videos, cfg, &images, comm);
  to.run();
  BOOST_TEST(model_same(o, d), "overlapped and non-overlapped reductions differ");
}

BOOST_AUTO_TEST_CASE(only_rank_0_writes_and_runs_resume_at_another_world_size) {
  dist::MpiCommunicator comm;
  const auto dir = shared_dir(comm, "dist_resume");
  const train::SyntheticSource videos{7}, images{8};
  constexpr std::uint64_t K = 4, half = 2;
  // Reference: one process, K steps.
  auto ref = make_model(239);
  train::Trainer tr(ref, videos, run_config(K), &images);
  tr.run();

  // W ranks for half the run, checkpoint (rank 0 only), then one process finishes it.
  const std::string ck_dp = (dir / "dp.safetensors").string();
  {
    auto m = make_model(239);
    train::Trainer t(m, videos, run_config(K), &images, comm);
    t.run(half);
    train::save_checkpoint(ck_dp, m, t);
    const std::string mine = (dir / ("rank" + std::to_string(comm.rank()) + ".safetensors")).string();
    train::save_checkpoint(mine, m, t);
    comm.barrier();
    BOOST_TEST(std::filesystem::exists(dir / "rank0.safetensors"));
    for (int r = 1; r < comm.size(); ++r)
      BOOST_TEST(!std::filesystem::exists(dir / ("rank" + std::to_string(r) + ".safetensors")), "rank " << r << " wrote");
  }
  {
    auto m = make_model(1);
    train::Trainer t(m, videos, run_config(K), &images);
    train::load_checkpoint(ck_dp, m, t);
    t.run();
    BOOST_TEST(t.state().global_step == K);
    const double diff = model_diff(ref, m);
    BOOST_TEST_MESSAGE(comm.size() << " ranks -> 1: max |dw| = " << diff);
    BOOST_TEST(diff <= kWeightTol);
    if (comm.size() == 1) BOOST_TEST(model_same(ref, m));
  }
  // One process for half the run (rank 0 writes), then W ranks finish it; only rank 0 loads.
  const std::string ck_1 = (dir / "one.safetensors").string();
  if (comm.rank() == 0) {
    auto m = make_model(239);
    train::Trainer t(m, videos, run_config(K), &images);
    t.run(half);
    train::save_checkpoint(ck_1, m, t);
  }
  comm.barrier();
  {
    auto m = make_model(5);
    train::Trainer t(m, videos, run_config(K), &images, comm);
    if (comm.rank() == 0) train::load_checkpoint(ck_1, m, t);
    t.run();
    BOOST_TEST(t.state().global_step == K);
    const double diff = model_diff(ref, m);
    BOOST_TEST_MESSAGE("1 -> " << comm.size() << " ranks: max |dw| = " << diff);
    BOOST_TEST(diff <= kWeightTol);
    BOOST_TEST(t.replicas_agree());
  }
  comm.barrier();
  if (comm.rank() == 0) std::filesystem::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(a_failing_rank_stops_every_rank_with_its_message) {
  dist::MpiCommunicator comm;
  const int W = comm.size(), bad = W - 1;
  auto m = make_model(239);
  // The last rank's data path is missing from the second step on (stream position >= 2).
  const FaultySource videos{7, comm.rank(), bad, 2, ~std::uint64_t{0}, false};
  const FaultySource images{8};
  train::Trainer t(m, videos, run_config(4), &images, comm);
  if (W == 1) {  // nobody to tell: the original error propagates
    BOOST_CHECK_THROW(t.run(), IoError);
    return;
  }
  try {
    t.run();
    BOOST_ERROR("expected RankFailure");
  } catch (const dist::RankFailure& e) {
    const std::string msg = e.what();
    BOOST_TEST_MESSAGE("rank " << comm.rank() << ": " << msg);
    BOOST_TEST(e.failed_rank() == bad);
    BOOST_TEST(e.is_origin() == (comm.rank() == bad));
    BOOST_TEST(msg.find("jepa: rank " + std::to_string(bad) + " of " + std::to_string(W) + " failed at step 2") == 0, msg);
    BOOST_TEST(msg.find("/no/such/path/videos") != std::string::npos, msg);
    BOOST_TEST(e.reason().find("cannot open the video folder") != std::string::npos);
    if (e.is_origin()) {
      bool nested = false;
      try {
        std::rethrow_if_nested(e);
      } catch (const IoError&) {
        nested = true;
      }
      BOOST_TEST(nested, "the failing rank keeps its original IoError nested");
    }
  }
  BOOST_TEST(t.state().global_step == 1u, "the failed step is not counted");
  comm.barrier();  // the group is still usable: nobody is stuck in a collective

  // A failure in the step hook of rank 0 only (a checkpoint write): every rank learns it.
  auto m2 = make_model(239);
  const train::SyntheticSource ok{7}, ok_images{8};
  train::Trainer t2(m2, ok, run_config(3), &ok_images, comm);
  t2.on_step = [&](const train::StepLog&) {
    if (comm.rank() == 0) throw IoError("jepa: cannot write the checkpoint '/read-only/checkpoint.safetensors'");
  };
  try {
    t2.run();
    BOOST_ERROR("expected RankFailure");
  } catch (const dist::RankFailure& e) {
    BOOST_TEST(e.failed_rank() == 0);
    BOOST_TEST(std::string(e.what()).find("jepa: rank 0 of " + std::to_string(W) + " failed at step 1: jepa: cannot write") == 0,
               e.what());
  }
  comm.barrier();
}

BOOST_AUTO_TEST_CASE(a_non_finite_loss_on_one_rank_skips_the_step_on_every_rank) {
  dist::MpiCommunicator comm;
  const int W = comm.size();
  auto m = make_model(239);
  // NaN pixels on the last rank at step 2 only (it reads position 2 + (W − 1)·2/W there; 4 + … next).
  const FaultySource videos{7, comm.rank(), W - 1, 2, 4, true};
  const FaultySource images{8};
  train::Trainer t(m, videos, run_config(3), &images, comm);
  t.step();
  auto before = make_model(0);
  std::memcpy(before.encoder_params().data(), m.encoder_params().data(), m.encoder_params().numel() * sizeof(double));
  std::memcpy(before.target_params().data(), m.target_params().data(), m.target_params().numel() * sizeof(double));
  std::memcpy(before.predictor_params().data(), m.predictor_params().data(), m.predictor_params().numel() * sizeof(double));
  const auto log = t.step();
  BOOST_TEST(log.skipped, "rank " << comm.rank() << " did not skip the poisoned step");
  BOOST_TEST(t.state().bad_steps == 1u);
  BOOST_TEST(model_same(before, m), "a skipped step must not change the weights");
  BOOST_TEST(!t.step().skipped);
  BOOST_TEST(t.replicas_agree());
}

#endif  // JEPA_HAVE_MPI
