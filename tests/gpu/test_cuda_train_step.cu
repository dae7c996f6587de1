// Whole training steps on the GPU (train/cuda_step.cuh: models::Jepa on backend::Cuda, device
// AdamW and EMA) against the CPU recipe (reference.cpp: models::Jepa on backend::Cpu, train::AdamW,
// train::ema_update), for the tiny V-JEPA 2 and V-JEPA 2.1 presets (vit_micro: D 64, depth 4;
// 2.1 with its 4 hierarchical levels, fusion predictor, distance-weighted context loss, λ = 0.5).
//
// Bands (fp32 GEMM mode, the backend default; the CPU runs float too):
//   loss, prediction and context terms of every step    relative ≤ 2e-5   (the device's sums run
//                                                        in another order; later steps also carry
//                                                        the parameter differences below)
//   gradient norm of every step                          relative ≤ 1e-4
//   parameters after the steps: |Δθ_gpu − Δθ_cpu| ≤ 2·lr per step elementwise (AdamW's update of a
//   near-zero gradient is ±lr whatever its size, so rounding can flip it), and the relative L2 error
//   of the update Δθ ≤ 2e-2; the EMA target within (1 − m)·lr·T(T + 1) after T steps.
// Graph replay: the same steps eagerly and through captured graphs give bitwise equal losses and
// parameters (the same kernels in the same order), and replays allocate no device memory.
// Mixed bf16 (GEMM bf16 products, bf16 attention; 2.1 model, graphs on): losses and gradient norms
// within 2e-2 of the CPU's fp32 run.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <vector>

#include "common.cuh"
#include "reference.hpp"

#include "jepa/backend/cuda/backend.cuh"
#include "jepa/core/rng.hpp"
#include "jepa/models/jepa_presets.hpp"
#include "jepa/train/cuda_step.cuh"

namespace {
using namespace jepa::test::gpu;
using jepa::index_t;
using Cuda = jepa::backend::Cuda;
namespace ref = jepa::test::cpu_ref;
namespace P = jepa::models::presets;
using jepa::test::rel_error;

using GpuV2 = P::VJepa2<P::vit_micro, float, Cuda>;
using GpuV21 = P::VJepa21<P::vit_micro, float, Cuda>;

jepa::train::Stage constant_stage(const ref::TrainStepSpec& s) {
  jepa::train::Stage st;
  st.lr.kind = jepa::train::LrSchedule::Kind::warmup_cosine;
  st.lr.cosine = {s.lr, s.lr, s.lr, 0, 1000};
  st.wd = {s.wd, s.wd, 1000};
  st.ema = {s.ema, s.ema, 1000, false};
  return st;
}

template <class Model>
Model make_model(const ref::TrainStepSpec& s) {
  Model m = [] {
    if constexpr (std::is_same_v<Model, GpuV2>) return P::vjepa2<P::vit_micro, float, Cuda>();
    else return P::vjepa2_1<P::vit_micro, float, Cuda>();
  }();
  m.init(s.seed);
  m.mask_seed = s.mask_seed;
  if constexpr (Model::loss_type::has_context_term) {
    m.loss_policy_mut().lambda.value = s.lambda;
    m.loss_policy_mut().lambda.progressive = false;
  }
  Cuda::synchronize();
  return m;
}

struct GpuRun {
  std::vector<jepa::train::CudaStepResult> steps;
  std::vector<float> encoder, predictor, target;
  std::size_t graphs = 0;
};

template <class Model>
GpuRun run_gpu(const ref::TrainStepSpec& s, const std::vector<float>& clip, bool graphs, std::size_t* free_drift = nullptr,
               bool mixed = false) {
  Model model = make_model<Model>(s);
  auto dclip = cu::to_device(clip);
  const jepa::TensorView<const float, 5> cv(dclip.data(), {s.B, 3, s.frames, s.res, s.res});
  jepa::train::CudaStepConfig cfg;
  cfg.use_graphs = graphs;
  cfg.mixed_bf16 = mixed;
  jepa::train::CudaStep<Model> step(model, constant_stage(s), s.B, {s.frames, s.res, s.res}, cfg);
  GpuRun r;
  std::size_t free_before = 0, total = 0;
  for (std::size_t i = 0; i < s.steps.size(); ++i) {
    if (i + 1 == s.steps.size()) JEPA_CUDA_CHECK(cudaMemGetInfo(&free_before, &total));
    r.steps.push_back(step.run(cv, s.steps[i]));
  }
  if (free_drift) {
    std::size_t free_after = 0;
    JEPA_CUDA_CHECK(cudaMemGetInfo(&free_after, &total));
    *free_drift = free_before > free_after ? free_before - free_after : 0;
  }
  r.encoder = cu::to_host(model.encoder_params().data(), model.encoder_params().numel());
  r.predictor = cu::to_host(model.predictor_params().data(), model.predictor_params().numel());
  r.target = cu::to_host(model.target_params().data(), model.target_params().numel());
  r.graphs = step.graphs();
  return r;
}

/// Row b: K distinct indices of [0, N) in random order (Fisher–Yates on a Philox stream).
std::vector<std::int64_t> distinct_rows(index_t B, index_t N, index_t K, std::uint64_t seed) {
  std::vector<std::int64_t> idx(static_cast<std::size_t>(B * K)), perm(static_cast<std::size_t>(N));
  jepa::Rng rng(seed, 0);
  for (index_t b = 0; b < B; ++b) {
    std::iota(perm.begin(), perm.end(), std::int64_t{0});
    for (index_t i = N - 1; i > 0; --i)
      std::swap(perm[static_cast<std::size_t>(i)],
                perm[static_cast<std::size_t>(rng.uniform() * static_cast<double>(i + 1)) % static_cast<std::size_t>(i + 1)]);
    std::copy(perm.begin(), perm.begin() + K, idx.begin() + b * K);
  }
  return idx;
}

/// max |a − b| and relative L2 error of the updates a − base, b − base.
struct UpdateErr {
  double max_abs = 0, rel = 0;
};
UpdateErr update_error(const std::vector<float>& gpu, const std::vector<float>& cpu, const std::vector<float>& base) {
  UpdateErr e;
  double num = 0, den = 0;
  for (std::size_t i = 0; i < gpu.size(); ++i) {
    const double dg = static_cast<double>(gpu[i]) - base[i], dc = static_cast<double>(cpu[i]) - base[i];
    e.max_abs = std::max(e.max_abs, std::abs(dg - dc));
    num += (dg - dc) * (dg - dc);
    den += dc * dc;
  }
  e.rel = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  return e;
}

template <class Model>
void check_against_cpu(ref::JepaKind kind) {
  ref::TrainStepSpec s;
  s.kind = kind;
  s.steps = {0, 1, 2};
  const auto clip = random<float>(static_cast<std::size_t>(s.B * 3 * s.frames * s.res * s.res), 42, 1.0);
  const ref::TrainStepRun c = ref::cpu_train_steps(s, clip.data());
  const GpuRun g = run_gpu<Model>(s, clip, false);
  BOOST_REQUIRE_EQUAL(g.steps.size(), c.loss.size());
  for (std::size_t i = 0; i < g.steps.size(); ++i) {
    const auto& r = g.steps[i];
    BOOST_TEST_MESSAGE("step " << i << ": loss gpu " << r.loss << " cpu " << c.loss[i] << ", grad norm gpu " << r.grad_norm
                               << " cpu " << c.grad_norm[i]);
    BOOST_TEST(!r.skipped);
    BOOST_TEST(r.index_errors == 0);
    BOOST_TEST(std::abs(r.loss - c.loss[i]) <= 2e-5 * std::abs(c.loss[i]));
    BOOST_TEST(std::abs(r.prediction - c.prediction[i]) <= 2e-5 * std::abs(c.prediction[i]));
    BOOST_TEST(std::abs(r.context - c.context[i]) <= 2e-5 * std::abs(c.context[i]) + 1e-12);
    BOOST_TEST(std::abs(r.grad_norm - c.grad_norm[i]) <= 1e-4 * c.grad_norm[i]);
  }
  const double steps = static_cast<double>(s.steps.size());
  const auto ee = update_error(g.encoder, c.encoder, c.encoder0);
  const auto pe = update_error(g.predictor, c.predictor, c.predictor0);
  const auto te = update_error(g.target, c.target, c.encoder0);
  BOOST_TEST_MESSAGE("update errors: encoder max " << ee.max_abs << " rel " << ee.rel << "; predictor max " << pe.max_abs
                                                   << " rel " << pe.rel << "; target max " << te.max_abs << " rel " << te.rel);
  BOOST_TEST(ee.max_abs <= 2 * s.lr * steps);
  BOOST_TEST(pe.max_abs <= 2 * s.lr * steps);
  // θ̄ after T steps moves by (1 − m)·Σ_k θ_k, and θ_k differs by at most 2·lr·k: ≤ (1 − m)·lr·T(T + 1).
  BOOST_TEST(te.max_abs <= (1 - s.ema) * s.lr * steps * (steps + 1) + 1e-7);
  BOOST_TEST(ee.rel <= 2e-2);
  BOOST_TEST(pe.rel <= 2e-2);
  BOOST_TEST(te.rel <= 2e-2);
}

/// The recipe's mixed precision (bf16 products, fp32 master weights): the losses follow the CPU's fp32
/// run within bf16 rounding (relative 2e-2 on every step's loss and gradient norm).
template <class Model>
void check_mixed_bf16(ref::JepaKind kind) {
  ref::TrainStepSpec s;
  s.kind = kind;
  s.steps = {0, 1, 2};
  const auto clip = random<float>(static_cast<std::size_t>(s.B * 3 * s.frames * s.res * s.res), 45, 1.0);
  const ref::TrainStepRun c = ref::cpu_train_steps(s, clip.data());
  const GpuRun g = run_gpu<Model>(s, clip, true, nullptr, true);
  for (std::size_t i = 0; i < g.steps.size(); ++i) {
    BOOST_TEST_MESSAGE("bf16 step " << i << ": loss gpu " << g.steps[i].loss << " cpu " << c.loss[i]);
    BOOST_TEST(!g.steps[i].skipped);
    BOOST_TEST(std::abs(g.steps[i].loss - c.loss[i]) <= 2e-2 * std::abs(c.loss[i]));
    BOOST_TEST(std::abs(g.steps[i].grad_norm - c.grad_norm[i]) <= 2e-2 * c.grad_norm[i]);
  }
  BOOST_TEST((Cuda::context().gemm_compute() == cu::GemmCompute::fp32));  // the step restored the precision
  BOOST_TEST(!Cuda::context().attention_bf16());
}

template <class Model>
void check_graph_replay(ref::JepaKind kind) {
  ref::TrainStepSpec s;
  s.kind = kind;
  s.steps = {0, 1, 0, 1, 0};  // steps 0 and 1 recur: their shapes are captured once, then replayed
  const auto clip = random<float>(static_cast<std::size_t>(s.B * 3 * s.frames * s.res * s.res), 43, 1.0);
  const GpuRun eager = run_gpu<Model>(s, clip, false);
  std::size_t drift = 0;
  const GpuRun graph = run_gpu<Model>(s, clip, true, &drift);
  BOOST_TEST(graph.graphs <= 2u);
  int replays = 0;
  for (std::size_t i = 0; i < s.steps.size(); ++i) {
    replays += graph.steps[i].replayed;
    BOOST_TEST(graph.steps[i].loss == eager.steps[i].loss);  // bitwise: the same kernels in the same order
    BOOST_TEST(graph.steps[i].grad_norm == eager.steps[i].grad_norm);
  }
  BOOST_TEST(replays >= 2);
  BOOST_TEST(bitwise_equal(graph.encoder, eager.encoder));
  BOOST_TEST(bitwise_equal(graph.predictor, eager.predictor));
  BOOST_TEST(bitwise_equal(graph.target, eager.target));
  BOOST_TEST(drift == 0u);  // the last step (a replay) allocated nothing
}
}  // namespace

BOOST_AUTO_TEST_SUITE(cuda_train_step)

BOOST_AUTO_TEST_CASE(vjepa2_steps_match_cpu) { check_against_cpu<GpuV2>(ref::JepaKind::vjepa2); }
BOOST_AUTO_TEST_CASE(vjepa2_1_steps_match_cpu) { check_against_cpu<GpuV21>(ref::JepaKind::vjepa2_1); }
BOOST_AUTO_TEST_CASE(vjepa2_graph_replay_is_bitwise_eager) { check_graph_replay<GpuV2>(ref::JepaKind::vjepa2); }
BOOST_AUTO_TEST_CASE(vjepa2_1_graph_replay_is_bitwise_eager) { check_graph_replay<GpuV21>(ref::JepaKind::vjepa2_1); }

BOOST_AUTO_TEST_CASE(vjepa2_1_mixed_bf16_steps_follow_cpu) { check_mixed_bf16<GpuV21>(ref::JepaKind::vjepa2_1); }

BOOST_AUTO_TEST_CASE(nonfinite_step_is_skipped_and_leaves_parameters) {
  ref::TrainStepSpec s;
  s.steps = {0};
  GpuV2 model = make_model<GpuV2>(s);
  auto clip = random<float>(static_cast<std::size_t>(s.B * 3 * s.frames * s.res * s.res), 44, 1.0);
  clip[5] = std::numeric_limits<float>::quiet_NaN();
  auto dclip = cu::to_device(clip);
  const auto before = cu::to_host(model.encoder_params().data(), model.encoder_params().numel());
  const auto target_before = cu::to_host(model.target_params().data(), model.target_params().numel());
  jepa::train::CudaStep<GpuV2> step(model, constant_stage(s), s.B, {s.frames, s.res, s.res});
  const auto r = step.run(jepa::TensorView<const float, 5>(dclip.data(), {s.B, 3, s.frames, s.res, s.res}), 0);
  BOOST_TEST(r.skipped);
  BOOST_TEST(!std::isfinite(r.loss));
  BOOST_TEST(bitwise_equal(cu::to_host(model.encoder_params().data(), model.encoder_params().numel()), before));
  BOOST_TEST(bitwise_equal(cu::to_host(model.target_params().data(), model.target_params().numel()), target_before));
  BOOST_TEST(r.optimizer_steps == 0u);
  BOOST_TEST(step.steps_taken() == 0u);
}

BOOST_AUTO_TEST_CASE(skipped_step_does_not_advance_the_adamw_counter) {
  // As on the CPU, a skipped step leaves AdamW's bias-correction count alone: NaN step 0, then step 1
  // on a finite clip, must equal step 1 alone on a fresh model (the same masks, lr and wd, and the bias
  // corrections of n = 1 in both), bitwise.
  ref::TrainStepSpec s;
  auto good = random<float>(static_cast<std::size_t>(s.B * 3 * s.frames * s.res * s.res), 45, 1.0);
  auto bad = good;
  bad[7] = std::numeric_limits<float>::infinity();
  auto dgood = cu::to_device(good), dbad = cu::to_device(bad);
  const jepa::TensorView<const float, 5> vgood(dgood.data(), {s.B, 3, s.frames, s.res, s.res}),
      vbad(dbad.data(), {s.B, 3, s.frames, s.res, s.res});
  std::vector<std::vector<float>> params;
  for (const bool with_skip : {true, false}) {
    GpuV2 model = make_model<GpuV2>(s);
    jepa::train::CudaStep<GpuV2> step(model, constant_stage(s), s.B, {s.frames, s.res, s.res});
    if (with_skip) BOOST_TEST(step.run(vbad, 0).skipped);
    const auto r = step.run(vgood, 1);
    BOOST_TEST(!r.skipped);
    BOOST_TEST(r.optimizer_steps == 1u);
    BOOST_TEST(step.steps_taken() == 1u);
    params.push_back(cu::to_host(model.encoder_params().data(), model.encoder_params().numel()));
  }
  BOOST_TEST(bitwise_equal(params[0], params[1]));
}

BOOST_AUTO_TEST_CASE(mixed_bf16_gemm_and_attention_follow_fp32) {
  // GemmCompute::bf16 and the bf16 attention path on float operands, against the same calls in fp32
  // (whose CPU parity test_cuda_backend checks): relative error within bf16 rounding (1e-2), on a
  // strided packed-qkv layout as the encoder uses, forward and backward, head dims 64 and 32.
  auto& ctx = Cuda::context();
  const index_t M = 96, K = 160, Nn = 72;
  const auto a = random<float>(static_cast<std::size_t>(M * K), 90), b = random<float>(static_cast<std::size_t>(K * Nn), 91);
  auto da = cu::to_device(a), db = cu::to_device(b);
  cu::DeviceBuffer<float> c32(static_cast<std::size_t>(M * Nn)), c16(static_cast<std::size_t>(M * Nn));
  Cuda::gemm<float>(false, false, M, Nn, K, 1.f, da.data(), K, db.data(), Nn, 0.f, c32.data(), Nn);
  ctx.set_gemm_compute(cu::GemmCompute::bf16);
  Cuda::gemm<float>(false, false, M, Nn, K, 1.f, da.data(), K, db.data(), Nn, 0.f, c16.data(), Nn);
  ctx.set_gemm_compute(cu::GemmCompute::fp32);
  Cuda::synchronize();
  BOOST_TEST(rel_error(to_double(cu::to_host(c16.data(), c16.size())), to_double(cu::to_host(c32.data(), c32.size()))) < 1e-2);

  for (const index_t Dh : {index_t{64}, index_t{32}}) {
    const index_t B = 2, H = 3, N = 77, D = H * Dh;
    const jepa::backend::AttnShape sh{B, H, N, N, Dh, 1.0 / std::sqrt(static_cast<double>(Dh))};
    const auto qkv = random<float>(static_cast<std::size_t>(B * N * 3 * D), 92 + Dh);
    const auto dout = random<float>(static_cast<std::size_t>(B * N * D), 93 + Dh);
    auto dqkv_in = cu::to_device(qkv), ddo = cu::to_device(dout);
    auto op = [&](const float* p, index_t part) {
      return jepa::backend::AttnOperand<const float>{p + part * D, N * 3 * D, 3 * D, Dh};
    };
    std::vector<double> out[2], grad[2];
    for (int mode = 0; mode < 2; ++mode) {
      ctx.set_attention_bf16(mode == 1);
      cu::DeviceBuffer<float> o(static_cast<std::size_t>(B * N * D)), lse(static_cast<std::size_t>(B * H * N)),
          dqkv(static_cast<std::size_t>(B * N * 3 * D));
      const jepa::backend::AttnOperand<float> ov{o.data(), N * D, D, Dh};
      Cuda::attention_forward<float>(sh, op(dqkv_in.data(), 0), op(dqkv_in.data(), 1), op(dqkv_in.data(), 2), ov, lse.data(),
                                     jepa::backend::AttnMask::full());
      auto gop = [&](index_t part) { return jepa::backend::AttnOperand<float>{dqkv.data() + part * D, N * 3 * D, 3 * D, Dh}; };
      Cuda::attention_backward<float>(sh, op(dqkv_in.data(), 0), op(dqkv_in.data(), 1), op(dqkv_in.data(), 2),
                                      {o.data(), N * D, D, Dh}, {ddo.data(), N * D, D, Dh}, lse.data(), gop(0), gop(1), gop(2),
                                      jepa::backend::AttnMask::full());
      Cuda::synchronize();
      out[mode] = to_double(cu::to_host(o.data(), o.size()));
      grad[mode] = to_double(cu::to_host(dqkv.data(), dqkv.size()));
    }
    ctx.set_attention_bf16(false);
    BOOST_TEST_MESSAGE("Dh " << Dh << ": attention bf16 vs fp32 rel error o " << rel_error(out[1], out[0]) << ", dqkv "
                             << rel_error(grad[1], grad[0]));
    BOOST_TEST(all_finite(out[1]));
    BOOST_TEST(rel_error(out[1], out[0]) < 1e-2);
    BOOST_TEST(rel_error(grad[1], grad[0]) < 2e-2);
  }
}

BOOST_AUTO_TEST_CASE(device_index_tables_match_the_host_sort) {
  // The predictor's counting-sort tables (index_tables.cuh) against the host path, on unsorted rows.
  const index_t B = 3, Kc = 11, Kt = 7, N = 40, S = Kc + Kt;
  const auto perm = distinct_rows(B, N, S, 77);
  std::vector<std::int64_t> ctx(static_cast<std::size_t>(B * Kc)), tgt(static_cast<std::size_t>(B * Kt));
  for (index_t b = 0; b < B; ++b) {
    std::copy(perm.begin() + b * S, perm.begin() + b * S + Kc, ctx.begin() + b * Kc);
    std::copy(perm.begin() + b * S + Kc, perm.begin() + (b + 1) * S, tgt.begin() + b * Kt);
  }
  auto dc = cu::to_device(ctx), dt = cu::to_device(tgt);
  cu::DeviceBuffer<std::int64_t> tab(static_cast<std::size_t>(4 * B * S));
  cu::DeviceBuffer<std::int32_t> mark(static_cast<std::size_t>(B * N));
  cu::DeviceBuffer<int> bad(1);
  bad.zero();
  Cuda::predictor_index_tables(dc.data(), dt.data(), B, Kc, Kt, N, tab.data(), mark.data(), bad.data());
  Cuda::synchronize();
  const auto got = cu::to_host(tab.data(), tab.size());
  BOOST_TEST(cu::to_host(bad.data(), 1)[0] == 0);
  // Host tables by definition (stable sort of [ctx ; tgt] per row).
  for (index_t b = 0; b < B; ++b) {
    std::vector<std::pair<std::int64_t, index_t>> items;
    for (index_t k = 0; k < Kc; ++k) items.push_back({ctx[b * Kc + k], k});
    for (index_t k = 0; k < Kt; ++k) items.push_back({tgt[b * Kt + k], Kc + k});
    std::sort(items.begin(), items.end());
    for (index_t j = 0; j < S; ++j) {
      const index_t i = items[j].second;
      BOOST_TEST(got[b * S + j] == items[j].first);
      if (i < Kc) {
        BOOST_TEST(got[B * S + b * S + j] == b * Kc + i);
        BOOST_TEST(got[2 * B * S + B * Kt + b * Kc + i] == j);
        BOOST_TEST(got[3 * B * S + b * S + j] == B * Kt + b * Kc + i);
      } else {
        BOOST_TEST(got[B * S + b * S + j] == B * Kc);
        BOOST_TEST(got[2 * B * S + b * Kt + (i - Kc)] == j);
        BOOST_TEST(got[3 * B * S + b * S + j] == b * Kt + (i - Kc));
      }
    }
  }
  // A repeated and an out-of-range index are flagged (bits 2 and 1).
  ctx[3] = ctx[4];
  tgt[0] = N + 5;
  auto dc2 = cu::to_device(ctx), dt2 = cu::to_device(tgt);
  bad.zero();
  Cuda::predictor_index_tables(dc2.data(), dt2.data(), B, Kc, Kt, N, tab.data(), mark.data(), bad.data());
  Cuda::synchronize();
  BOOST_TEST(cu::to_host(bad.data(), 1)[0] == 3);
}

BOOST_AUTO_TEST_SUITE_END()
