// bench_encoder — CPU throughput of the V-JEPA 2 encoder (issue 2), compared with PyTorch 1.13 in the
// same invocation.
//
// For each shape (ViT-S/16 and ViT-B/16 on a 16×224² clip = 1568 tokens, ViT-L/16 on 16×256² = 2048
// tokens; batch 1, float32) it
//   1. measures the fp32 GEMM peak of this run (a few large square and encoder-shaped GEMMs through
//      backend::Cpu::gemm; the best GFLOP/s is "the peak");
//   2. times the jepa forward (Mode::inference) and forward+backward (Mode::training, loss = Σ out,
//      no clip gradient): median of --reps runs after one warm-up;
//   3. times every primitive of one block at that shape (forward and backward) through the backend,
//      × depth, to say where the time goes — including the fused attention alone, whose share of the
//      forward is reported in the main table;
//   4. runs benchmarks/torch_encoder.py (the official V-JEPA 2 encoder in PyTorch, explicit attention)
//      with the same threads and shapes under Debian's /usr/bin/python3 and parses its JSON line.
// It prints one table row per shape; progress lines go to stderr. Performance is reported, never
// asserted. The build machine is shared, so before each timed stage the program waits (--wait-idle)
// for other processes to go quiet, and it reports the CPU load other processes caused during every
// stage ("other load", in cores) next to the numbers it disturbed.
//
// The per-block breakdown runs the steps of one block (forward, then backward) through the backend
// primitives in the encoder's order, timing each step in place, for max(reps, 5) passes after a
// warm-up; a step's time is its median × depth. Timing in sequence keeps the interference the real
// encoder sees on the step that suffers it — e.g. a pthreads OpenBLAS whose workers busy-wait after
// each GEMM while the next OpenMP region (bias add, LayerNorm, GELU, attention) needs the same cores.
// The sum is compared with the measured forward and backward ("unaccounted": the rest of the encoder
// and run-to-run variation).
//
// FLOP model (multiply-add = 2 FLOPs; elementwise work — LayerNorm, GELU, softmax exp, RoPE, residual
// adds, bias adds — is not counted). N tokens, D width, Hd MLP hidden width (exact, from the preset),
// Dh head dim, H heads (H·Dh = D), L depth, kvol = 3·2·16·16 = 1536:
//   forward, per block:  qkv 2·N·D·3D + proj 2·N·D·D + fc1/fc2 2·2·N·D·Hd       (linear)
//                        + q kᵀ 2·N²·D + P v 2·N²·D                              (attention)
//                        = 8·N·D² + 4·N·D·Hd + 4·N²·D   (= 24·N·D² + 4·N²·D at MLP ratio 4)
//   patch embed:         2·N·D·kvol
//   backward:            linear layers 2× their forward (dX and dW GEMMs); attention 2.5× its forward
//                        (FlashAttention-2's five N²·Dh GEMMs per head: S = q kᵀ recomputed, dV = Pᵀ dO,
//                        dP = dO vᵀ, dQ = dS k, dK = dSᵀ q; extra recomputation a kernel schedule may do
//                        is not counted); patch embed 1× (only dW: the clip needs no gradient).
//   forward+backward = forward + backward.
// GFLOP/s = model FLOPs / measured seconds; "% of peak" divides by the GEMM peak of the same run.
//
// Usage: bench_encoder [--quick] [--only S|B|L] [--no-torch] [--reps N] [--threads N]
//                      [--wait-idle SECONDS] [--python PATH] [--torch-script PATH]
// Threads: --threads, else OMP_NUM_THREADS, else the number of cores; the same count is given to
// OpenMP, to OpenBLAS (when it is the BLAS) and to PyTorch.
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <sys/resource.h>
#include <unistd.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "common.hpp"
#include "jepa/jepa.hpp"

#ifndef JEPA_TORCH_ENCODER_SCRIPT
#define JEPA_TORCH_ENCODER_SCRIPT "benchmarks/torch_encoder.py"
#endif

namespace {

using namespace jepa;
using namespace jepa::bench;
using namespace jepa::models;
using Cpu = backend::Cpu;

// ---------------------------------------------------------------------------------------------------
// GEMM peak of this run.
// ---------------------------------------------------------------------------------------------------
struct GemmCase {
  const char* name;
  bool ta, tb;
  index_t M, N, K;
};

double gemm_peak(int reps) {
  // Square, the linear-forward shape (x·Wᵀ) of ViT-L fc1 and ViT-S qkv, and a weight-gradient (dyᵀ·x).
  const GemmCase cases[] = {{"square NN 2048^3", false, false, 2048, 2048, 2048},
                            {"x.W^T 2048x4096x1024 (ViT-L fc1)", false, true, 2048, 4096, 1024},
                            {"x.W^T 1568x1152x384 (ViT-S qkv)", false, true, 1568, 1152, 384},
                            {"dy^T.x 1024x4096x2048 (ViT-L fc2 dW)", true, false, 1024, 4096, 2048}};
  double best = 0;
  std::fprintf(stderr, "GEMM peak (fp32, backend::Cpu::gemm, best of %d after a warm-up):\n", reps);
  for (const GemmCase& c : cases) {
    const index_t am = c.ta ? c.K : c.M, an = c.ta ? c.M : c.K;
    const index_t bm = c.tb ? c.N : c.K, bn = c.tb ? c.K : c.N;
    std::vector<float> A(static_cast<std::size_t>(am * an)), B(static_cast<std::size_t>(bm * bn)),
        C(static_cast<std::size_t>(c.M * c.N));
    fill_normal(A, 1.f, 1);
    fill_normal(B, 1.f, 2);
    double tmin = 1e30;
    for (int r = 0; r <= reps; ++r) {
      const auto t0 = Clock::now();
      Cpu::gemm<float>(c.ta, c.tb, c.M, c.N, c.K, 1.f, A.data(), an, B.data(), bn, 0.f, C.data(), c.N);
      const double dt = seconds_since(t0);
      if (r > 0) tmin = std::min(tmin, dt);
    }
    const double gf = 2.0 * c.M * c.N * c.K / tmin / 1e9;
    std::fprintf(stderr, "  %-38s %7.1f GFLOP/s\n", c.name, gf);
    best = std::max(best, gf);
  }
  return best;
}

// ---------------------------------------------------------------------------------------------------
// FLOP model (see the header comment).
// ---------------------------------------------------------------------------------------------------
struct Flops {
  double linear_fwd = 0, attn_fwd = 0, patch_fwd = 0;
  double fwd() const { return linear_fwd + attn_fwd + patch_fwd; }
  double bwd() const { return 2.0 * linear_fwd + 2.5 * attn_fwd + patch_fwd; }
  double fwd_bwd() const { return fwd() + bwd(); }
};

Flops flop_model(const presets::EncoderShape& S, index_t N) {
  const double n = static_cast<double>(N), D = static_cast<double>(S.embed_dim), Hd = static_cast<double>(S.mlp_hidden);
  Flops f;
  f.linear_fwd = S.depth * (2 * n * D * 3 * D + 2 * n * D * D + 2 * 2 * n * D * Hd);
  f.attn_fwd = S.depth * (4 * n * n * D);
  f.patch_fwd = 2 * n * D * (3 * 2 * 16 * 16);
  return f;
}

// ---------------------------------------------------------------------------------------------------
// Per-block breakdown through the backend primitives.
// ---------------------------------------------------------------------------------------------------
struct Piece {
  std::string name;
  std::string category;  // linear, attention, layernorm, gelu, rope, residual, bias-grad, patch
  double seconds = 0;    // for the whole encoder (× depth for block pieces)
  double flops = 0;      // model FLOPs of the piece (whole encoder), 0 for elementwise
};

struct Breakdown {
  std::vector<Piece> fwd, bwd;
  double attn_fwd_s = 0, attn_bwd_s = 0;  // whole encoder (× depth)
};

Breakdown block_breakdown(const presets::EncoderShape& S, index_t N, int reps, const std::string& tag) {
  const index_t M = N, D = S.embed_dim, Hd = S.mlp_hidden, H = S.num_heads, Dh = S.head_dim();
  const index_t kvol = 3 * 2 * 16 * 16;
  const double L = S.depth;
  const auto sz = [](index_t a, index_t b = 1) { return static_cast<std::size_t>(a * b); };
  std::vector<float> x(sz(M, D)), ln(sz(M, D)), mean(sz(M)), rstd(sz(M)), qkv(sz(M, 3 * D)), o(sz(M, D)),
      y(sz(M, D)), h1(sz(M, Hd)), a(sz(M, Hd)), lse(sz(H, N));
  std::vector<float> Wqkv(sz(3 * D, D)), bqkv(sz(3 * D)), Wp(sz(D, D)), bp(sz(D)), W1(sz(Hd, D)), b1(sz(Hd)),
      W2(sz(D, Hd)), b2(sz(D)), lnw(sz(D), 1.f), lnb(sz(D), 0.f), Wpe(sz(D, kvol)), bpe(sz(D)), cols(sz(M, kvol));
  std::vector<float> gWqkv(Wqkv.size()), gbqkv(bqkv.size()), gWp(Wp.size()), gbp(bp.size()), gW1(W1.size()),
      gb1(b1.size()), gW2(W2.size()), gb2(b2.size()), glnw(sz(D)), glnb(sz(D)), gWpe(Wpe.size()), gbpe(bpe.size());
  std::vector<float> dres(sz(M, D)), d_ln(sz(M, D)), d_o(sz(M, D)), d_qkv(sz(M, 3 * D)),
      d_a(sz(M, Hd)), d_h1(sz(M, Hd));
  fill_normal(x, 1.f, 3);
  fill_normal(dres, 1e-3f, 5);
  fill_normal(cols, 1.f, 6);
  for (auto* w : {&Wqkv, &Wp, &W1, &W2, &Wpe}) fill_normal(*w, 0.02f, 7);

  // RoPE tables of the real grid (T' = 8, H' = W' = √(N/8)).
  const index_t side = static_cast<index_t>(std::lround(std::sqrt(static_cast<double>(N / 8))));
  const nn::TokenGrid grid{8, side, side};
  const index_t rot = 3 * nn::rope_axis_channels(Dh);
  std::vector<std::int64_t> idx(sz(N));
  for (index_t i = 0; i < N; ++i) idx[static_cast<std::size_t>(i)] = i;
  std::vector<float> rc(sz(M, rot)), rs(sz(M, rot));
  nn::rope_tables<float>(idx.data(), M, grid, Dh, nn::RopePairing::tiled, 0, rc.data(), rs.data());

  std::vector<float> clip(sz(3 * 16, 16 * side * 16 * side));
  fill_normal(clip, 1.f, 10);

  const backend::AttnShape ash{1, H, N, N, Dh, 1.0 / std::sqrt(static_cast<double>(Dh))};
  const auto qop = [&](float* base, index_t off) { return backend::AttnOperand<float>{base + off, N * 3 * D, 3 * D, Dh}; };
  const auto cqop = [&](const float* base, index_t off) {
    return backend::AttnOperand<const float>{base + off, N * 3 * D, 3 * D, Dh};
  };
  const auto oop = [&](float* base) { return backend::AttnOperand<float>{base, N * D, D, Dh}; };
  const auto coop = [&](const float* base) { return backend::AttnOperand<const float>{base, N * D, D, Dh}; };

  Breakdown bd;
  // Each pass runs one block's steps in the order the encoder runs them (patch embed and final norm
  // around them), timing every step in place; a step's time is its median over the passes. Timing in
  // sequence keeps the interference the real encoder sees (a BLAS worker still spinning after the
  // previous GEMM, threads waking up) on the step that suffers it.
  struct Step {
    std::string name, category;
    double mult, flops_one;
    std::function<void()> run;
  };
  const auto run_steps = [&](const std::vector<Step>& steps, std::vector<Piece>& out, const std::string& what) {
    const int passes = std::max(reps, 5);  // steps are short: at least 5 passes
    std::vector<std::vector<double>> t(steps.size());
    for (int r = 0; r <= passes; ++r) {  // pass 0 is the warm-up
      g_progress.report(tag + " breakdown " + what + (r == 0 ? std::string(" warm-up") : " pass " + std::to_string(r) + "/" + std::to_string(passes)),
                        (what == "fwd" ? 0.0 : 0.4) + (what == "fwd" ? 0.4 : 0.6) * r / (passes + 1));
      for (std::size_t i = 0; i < steps.size(); ++i) {
        const auto t0 = Clock::now();
        steps[i].run();
        if (r > 0) t[i].push_back(seconds_since(t0));
      }
    }
    for (std::size_t i = 0; i < steps.size(); ++i)
      out.push_back({steps[i].name, steps[i].category, median(t[i]) * steps[i].mult, steps[i].flops_one * steps[i].mult});
  };
  const double n = static_cast<double>(N), d = static_cast<double>(D), hd = static_cast<double>(Hd);

  // ---- forward ----
  std::vector<Step> fwd{
      {"patch embed im2col", "patch", 1.0, 0,
       [&] { Cpu::im2col_tubelet<float>(clip.data(), idx.data(), cols.data(), 1, 3, 16, 16 * side, 16 * side, 2, 16, N); }},
      {"patch embed linear (N x 1536 . W^T)", "patch", 1.0, 2 * n * d * kvol,
       [&] { Cpu::linear_forward<float>(cols.data(), Wpe.data(), bpe.data(), y.data(), M, kvol, D); }},
      {"norm1", "layernorm", L, 0,
       [&] {
         Cpu::layer_norm_forward<float>(x.data(), lnw.data(), lnb.data(), ln.data(), mean.data(), rstd.data(), M, D, 1e-6f);
       }},
      {"qkv linear (GEMM + bias)", "linear", L, 2 * n * d * 3 * d,
       [&] { Cpu::linear_forward<float>(ln.data(), Wqkv.data(), bqkv.data(), qkv.data(), M, D, 3 * D); }},
      {"rope q,k", "rope", L, 0,
       [&] {
         Cpu::rope_forward<float>(qkv.data(), M, H, 3 * D, Dh, rot, rc.data(), rs.data());
         Cpu::rope_forward<float>(qkv.data() + D, M, H, 3 * D, Dh, rot, rc.data(), rs.data());
       }},
      {"attention (fused)", "attention", L, 4 * n * n * d,
       [&] {
         Cpu::attention_forward<float>(ash, cqop(qkv.data(), 0), cqop(qkv.data(), D), cqop(qkv.data(), 2 * D),
                                       oop(o.data()), lse.data(), backend::AttnMask::full());
       }},
      {"proj linear (GEMM + bias)", "linear", L, 2 * n * d * d,
       [&] { Cpu::linear_forward<float>(o.data(), Wp.data(), bp.data(), y.data(), M, D, D); }},
      {"residual add 1", "residual", L, 0, [&] { Cpu::add<float>(y.data(), x.data(), y.data(), M * D); }},
      {"norm2", "layernorm", L, 0,
       [&] {
         Cpu::layer_norm_forward<float>(x.data(), lnw.data(), lnb.data(), ln.data(), mean.data(), rstd.data(), M, D, 1e-6f);
       }},
      {"fc1 linear (GEMM + bias)", "linear", L, 2 * n * d * hd,
       [&] { Cpu::linear_forward<float>(ln.data(), W1.data(), b1.data(), h1.data(), M, D, Hd); }},
      {"gelu", "gelu", L, 0, [&] { Cpu::gelu_forward<float>(h1.data(), a.data(), M * Hd); }},
      {"fc2 linear (GEMM + bias)", "linear", L, 2 * n * hd * d,
       [&] { Cpu::linear_forward<float>(a.data(), W2.data(), b2.data(), y.data(), M, Hd, D); }},
      {"residual add 2", "residual", L, 0, [&] { Cpu::add<float>(y.data(), x.data(), y.data(), M * D); }},
      {"final norm", "layernorm", 1.0, 0,
       [&] {
         Cpu::layer_norm_forward<float>(x.data(), lnw.data(), lnb.data(), ln.data(), mean.data(), rstd.data(), M, D, 1e-6f);
       }},
  };
  run_steps(fwd, bd.fwd, "fwd");

  // ---- backward (each linear backward split into dX GEMM, dW GEMM and the bias row sums) ----
  std::vector<Step> bwd;
  const auto linear_bwd = [&](const std::string& nm, const float* xin, const float* W, const float* dyv, float* dx,
                              float* gW, float* gb, index_t in, index_t outd) {
    const double fl = 2.0 * n * static_cast<double>(in) * static_cast<double>(outd);
    bwd.push_back({nm + " dX GEMM", "linear", L, fl,
                   [=] { Cpu::gemm<float>(false, false, M, in, outd, 1.f, dyv, outd, W, in, 0.f, dx, in); }});
    bwd.push_back({nm + " dW GEMM", "linear", L, fl,
                   [=] { Cpu::gemm<float>(true, false, outd, in, M, 1.f, dyv, outd, xin, in, 1.f, gW, in); }});
    bwd.push_back({nm + " db (row sums)", "bias-grad", L, 0, [=] { Cpu::sum_rows_accumulate<float>(dyv, gb, M, outd); }});
  };
  linear_bwd("fc2", a.data(), W2.data(), dres.data(), d_a.data(), gW2.data(), gb2.data(), Hd, D);
  bwd.push_back({"gelu backward", "gelu", L, 0, [&] { Cpu::gelu_backward<float>(h1.data(), d_a.data(), d_h1.data(), M * Hd); }});
  linear_bwd("fc1", ln.data(), W1.data(), d_h1.data(), d_ln.data(), gW1.data(), gb1.data(), D, Hd);
  bwd.push_back({"norm2 backward", "layernorm", L, 0, [&] {
                   Cpu::layer_norm_backward<float>(x.data(), lnw.data(), mean.data(), rstd.data(), d_ln.data(), dres.data(),
                                                   glnw.data(), glnb.data(), M, D, true);
                 }});
  linear_bwd("proj", o.data(), Wp.data(), dres.data(), d_o.data(), gWp.data(), gbp.data(), D, D);
  bwd.push_back({"attention backward (fused)", "attention", L, 2.5 * 4 * n * n * d, [&] {
                   Cpu::attention_backward<float>(ash, cqop(qkv.data(), 0), cqop(qkv.data(), D), cqop(qkv.data(), 2 * D),
                                                  coop(o.data()), coop(d_o.data()), lse.data(), qop(d_qkv.data(), 0),
                                                  qop(d_qkv.data(), D), qop(d_qkv.data(), 2 * D), backend::AttnMask::full());
                 }});
  bwd.push_back({"rope backward q,k", "rope", L, 0, [&] {
                   Cpu::rope_backward<float>(d_qkv.data(), M, H, 3 * D, Dh, rot, rc.data(), rs.data());
                   Cpu::rope_backward<float>(d_qkv.data() + D, M, H, 3 * D, Dh, rot, rc.data(), rs.data());
                 }});
  linear_bwd("qkv", ln.data(), Wqkv.data(), d_qkv.data(), d_ln.data(), gWqkv.data(), gbqkv.data(), D, 3 * D);
  bwd.push_back({"norm1 backward", "layernorm", L, 0, [&] {
                   Cpu::layer_norm_backward<float>(x.data(), lnw.data(), mean.data(), rstd.data(), d_ln.data(), dres.data(),
                                                   glnw.data(), glnb.data(), M, D, true);
                 }});
  bwd.push_back({"patch embed dW GEMM", "patch", 1.0, 2 * n * d * kvol, [&] {
                   Cpu::gemm<float>(true, false, D, kvol, M, 1.f, dres.data(), D, cols.data(), kvol, 1.f, gWpe.data(), kvol);
                 }});
  bwd.push_back({"patch embed db (row sums)", "bias-grad", 1.0, 0,
                 [&] { Cpu::sum_rows_accumulate<float>(dres.data(), gbpe.data(), M, D); }});
  run_steps(bwd, bd.bwd, "bwd");

  for (const Piece& p : bd.fwd)
    if (p.category == "attention") bd.attn_fwd_s += p.seconds;
  for (const Piece& p : bd.bwd)
    if (p.category == "attention") bd.attn_bwd_s += p.seconds;
  return bd;
}

void print_breakdown(const char* label, const std::vector<Piece>& pieces, double measured_s) {
  double sum = 0;
  for (const Piece& p : pieces) sum += p.seconds;
  std::printf("\n%s (whole encoder = one block x depth; measured %.3f s, sum of pieces %.3f s)\n", label, measured_s,
              sum);
  std::printf("| %-40s | %9s | %7s | %8s |\n", "piece", "seconds", "% meas.", "GFLOP/s");
  std::printf("|%s|%s|%s|%s|\n", std::string(42, '-').c_str(), std::string(11, '-').c_str(), std::string(9, '-').c_str(),
              std::string(10, '-').c_str());
  for (const Piece& p : pieces) {
    char gf[32] = "";
    if (p.flops > 0) std::snprintf(gf, sizeof gf, "%8.1f", p.flops / p.seconds / 1e9);
    std::printf("| %-40s | %9.3f | %6.1f%% | %8s |\n", p.name.c_str(), p.seconds, 100.0 * p.seconds / measured_s, gf);
  }
  // Per category.
  const char* cats[] = {"linear", "attention", "layernorm", "gelu", "rope", "residual", "bias-grad", "patch"};
  std::printf("by category:");
  for (const char* c : cats) {
    double s = 0;
    for (const Piece& p : pieces)
      if (p.category == c) s += p.seconds;
    if (s > 0) std::printf("  %s %.3f s (%.1f%%)", c, s, 100.0 * s / measured_s);
  }
  std::printf("  unaccounted %.3f s (%.1f%%)\n", measured_s - sum, 100.0 * (measured_s - sum) / measured_s);
}

struct Options : TorchBenchOptions {
  bool quick = false;
  Options() { script = JEPA_TORCH_ENCODER_SCRIPT; }
};

TorchResult run_torch(const Options& o, const char* model, index_t frames, index_t size, bool backward) {
  std::string args = "--model ";  // appended piecewise (GCC 12: `"literal" + std::string&&` warns)
  args.append(model).append(" --frames ").append(std::to_string(frames)).append(" --size ").append(std::to_string(size));
  args.append(" --threads ").append(std::to_string(o.threads)).append(" --reps ").append(std::to_string(o.reps));
  if (backward) args.append(" --backward");
  return bench::run_torch("bench_encoder", o.python, o.script, args);
}

// ---------------------------------------------------------------------------------------------------
// One shape.
// ---------------------------------------------------------------------------------------------------
struct Row {
  std::string model;
  index_t tokens = 0;
  Flops flops;
  double fwd_s = 0, fb_s = 0;
  std::vector<double> fwd_runs, fb_runs;  // every timed run
  TorchResult torch_fwd, torch_fb;
  Breakdown bd;
  // Foreign load (cores used by other processes) during each timed stage.
  double load_fwd = 0, load_fb = 0, load_bd = 0, load_torch_fwd = 0, load_torch_fb = 0;
};

struct ShapeSpec {
  const presets::EncoderShape* shape;
  const char* label;
  char key;
  index_t frames, size;
};

template <const presets::EncoderShape& S>
Row run_shape(const Options& o, const ShapeSpec& spec) {
  using Encoder = presets::VJepa2Encoder<S>;
  Row row;
  row.model = spec.label;
  const InputGeometry geom{spec.frames, spec.size, spec.size};
  {
    Encoder enc(presets::vjepa2_config(S));
    const index_t N = enc.grid(geom).size();
    row.tokens = N;
    row.flops = flop_model(S, N);
    nn::ParameterSet<float> P(enc.layout()), G(enc.layout());
    P.init(0);
    std::vector<float> clip(static_cast<std::size_t>(3 * spec.frames * spec.size * spec.size));
    fill_normal(clip, 1.f, 11);
    const TensorView<const float, 5> cv(clip.data(), {1, 3, spec.frames, spec.size, spec.size});
    const std::string tag = std::string(spec.label);
    {
      auto st = enc.make_state(Mode::inference, 1, geom);
      stage(o.wait_idle_s, row.load_fwd,
            [&] { row.fwd_s = time_median(o.reps, tag + " fwd", [&] { enc.forward(P.data(), cv, nullptr, st); }); });
      row.fwd_runs = g_last_times;
    }
    {
      auto st = enc.make_state(Mode::training, 1, geom);
      std::vector<float> dout(static_cast<std::size_t>(N * S.embed_dim), 1.f);  // ∂(Σ out)/∂out
      stage(o.wait_idle_s, row.load_fb, [&] {
        row.fb_s = time_median(o.reps, tag + " fwd+bwd", [&] {
          enc.forward(P.data(), cv, nullptr, st);
          enc.backward(P.data(), G.data(), st, dout.data(), nullptr);
        });
      });
      row.fb_runs = g_last_times;
    }
  }
  stage(o.wait_idle_s, row.load_bd, [&] { row.bd = block_breakdown(S, row.tokens, o.reps, spec.label); });
  if (o.torch) {
    const std::string reps = " (" + std::to_string(o.reps) + " reps + warm-up)";
    stage(o.wait_idle_s, row.load_torch_fwd, [&] {
      g_progress.report(std::string(spec.label) + " PyTorch fwd" + reps, 0);
      row.torch_fwd = run_torch(o, S.name.data(), spec.frames, spec.size, false);
    });
    stage(o.wait_idle_s, row.load_torch_fb, [&] {
      g_progress.report(std::string(spec.label) + " PyTorch fwd+bwd" + reps, 0);
      row.torch_fb = run_torch(o, S.name.data(), spec.frames, spec.size, true);
    });
  }
  return row;
}

int usage(const char* argv0, int rc) {
  std::fprintf(rc ? stderr : stdout,
               "usage: %s [--quick] [--only S|B|L] [--no-torch] [--reps N] [--threads N] [--wait-idle S]\n"
               "          [--python PATH] [--torch-script PATH]\n"
               "  --quick         ViT-S/16 only\n"
               "  --only S|B|L    one shape\n"
               "  --reps N        timed runs per measurement after one warm-up (default 3; median reported)\n"
               "%s",
               argv0, kTorchBenchHelp);
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto next = [&] { return option_value(argc, argv, i, "bench_encoder", usage); };
    if (parse_torch_bench_option(a, next, o)) continue;
    if (a == "--quick") o.quick = true;
    else if (a == "-h" || a == "--help") return usage(argv[0], 0);
    else {
      std::fprintf(stderr, "bench_encoder: unknown argument '%s'\n", a.c_str());
      return usage(argv[0], 2);
    }
  }
  apply_threads(o);

  const ShapeSpec specs[] = {{&presets::vit_small, "ViT-S/16", 'S', 16, 224},
                             {&presets::vit_base, "ViT-B/16", 'B', 16, 224},
                             {&presets::vit_large, "ViT-L/16", 'L', 16, 256}};
  std::vector<ShapeSpec> run;
  for (const ShapeSpec& s : specs)
    if ((o.quick && s.key == 'S') || (!o.quick && (o.only == 0 || o.only == s.key))) run.push_back(s);
  if (run.empty()) {
    std::fprintf(stderr, "bench_encoder: --only takes S, B or L\n");
    return 2;
  }

  // Work estimate for the ETA: seconds at assumed rates (jepa ~100 GFLOP/s, PyTorch ~40).
  g_progress.add_stage(2.0);  // GEMM peak
  for (const ShapeSpec& s : run) {
    const index_t N = (s.frames / 2) * (s.size / 16) * (s.size / 16);
    const Flops f = flop_model(*s.shape, N);
    const double r1 = o.reps + 1;
    g_progress.add_stage(r1 * f.fwd() / 100e9);
    g_progress.add_stage(r1 * f.fwd_bwd() / 90e9);
    g_progress.add_stage(r1 * f.fwd_bwd() / 90e9 / s.shape->depth * 1.3);
    if (o.torch) {
      g_progress.add_stage(5 + r1 * f.fwd() / 40e9);
      g_progress.add_stage(5 + r1 * f.fwd_bwd() / 30e9);
    }
  }

  std::printf("bench_encoder — V-JEPA 2 encoder (RoPE tiled, final norm), float32, batch 1\n");
  std::printf("date %s | CPU %s | %u hardware threads | %d threads used", now_string().c_str(), cpu_model().c_str(),
              std::thread::hardware_concurrency(), o.threads);
  if (openblas_get_num_threads) std::printf(" (OpenBLAS %d)", openblas_get_num_threads());
  std::printf("\nGEMM: %s\nattention: %s | compiler %s | reps %d (median after 1 warm-up)\n",
              backend::cpu::gemm_report().c_str(),
              backend::cpu::attention_uses_avx512() ? "AVX-512 build" : "compiled vector width", __VERSION__, o.reps);
  std::printf("BLAS libraries: %s\n", loaded_blas().c_str());
  if (openblas_get_config) std::printf("OpenBLAS config: %s\n", openblas_get_config());
#ifdef _OPENMP
  if (openblas_get_parallel && openblas_get_parallel() == 1)
    std::printf("NOTE: OpenBLAS uses its own pthreads next to jepa's OpenMP threads. Its workers busy-wait for a\n"
                "      while after every GEMM (OPENBLAS_THREAD_TIMEOUT, default 2^28 cycles) and take a core from\n"
                "      the OpenMP regions between GEMMs; an OpenMP build of OpenBLAS (libopenblas0-openmp) shares\n"
                "      one thread pool instead.\n");
#endif
  std::fflush(stdout);

  g_progress.begin_stage();
  wait_for_quiet(o.wait_idle_s);
  g_progress.report("GEMM peak", 0);
  const double peak = gemm_peak(5);
  std::printf("GEMM peak of this run: %.1f GFLOP/s\n", peak);
  std::fflush(stdout);

  std::vector<Row> rows;
  for (const ShapeSpec& s : run) {
    if (s.key == 'S') rows.push_back(run_shape<presets::vit_small>(o, s));
    else if (s.key == 'B') rows.push_back(run_shape<presets::vit_base>(o, s));
    else rows.push_back(run_shape<presets::vit_large>(o, s));
    const Row& r = rows.back();
    std::printf("\n== %s, %lld tokens: forward %.3f s, forward+backward %.3f s ==", r.model.c_str(),
                static_cast<long long>(r.tokens), r.fwd_s, r.fb_s);
    const auto runs = [](const std::vector<double>& v) {
      std::string out;
      for (double x : v) out += (out.empty() ? "" : ", ") + std::to_string(x).substr(0, 6);
      return out;
    };
    std::printf("\nruns (s): fwd [%s], fwd+bwd [%s]", runs(r.fwd_runs).c_str(), runs(r.fb_runs).c_str());
    std::printf("\nother load during the stages (cores): jepa fwd %.2f, jepa fwd+bwd %.2f, breakdown %.2f", r.load_fwd,
                r.load_fb, r.load_bd);
    if (o.torch) std::printf(", torch fwd %.2f, torch fwd+bwd %.2f", r.load_torch_fwd, r.load_torch_fb);
    std::printf("\n");
    print_breakdown("forward breakdown", r.bd.fwd, r.fwd_s);
    print_breakdown("backward breakdown", r.bd.bwd, r.fb_s - r.fwd_s);
    std::fflush(stdout);
  }

  const auto cell = [](const TorchResult& t, double v, const char* fmt) {
    char b[32] = "n/a";
    if (t.ok) std::snprintf(b, sizeof b, fmt, v);
    return std::string(b);
  };
  std::printf("\nGEMM peak %.1f GFLOP/s; %d threads; times are medians of %d runs after a warm-up.\n", peak, o.threads,
              o.reps);
  std::printf("| model | tokens | jepa fwd s | GFLOP/s | %% peak | torch fwd s | speedup | jepa fwd+bwd s | GFLOP/s | "
              "torch fwd+bwd s | speedup | attn %% fwd | attn %% fwd+bwd | other load |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  double torch_gemm = 0;
  std::string torch_blas;
  for (const Row& r : rows) {
    const double gf = r.flops.fwd() / r.fwd_s / 1e9, gfb = r.flops.fwd_bwd() / r.fb_s / 1e9;
    if (r.torch_fwd.ok) torch_gemm = std::max(torch_gemm, r.torch_fwd.gemm_gflops);
    if (r.torch_fwd.ok && torch_blas.empty()) torch_blas = r.torch_fwd.blas;
    if (r.torch_fb.ok) torch_gemm = std::max(torch_gemm, r.torch_fb.gemm_gflops);
    const double load = std::max({r.load_fwd, r.load_fb, r.load_bd, r.load_torch_fwd, r.load_torch_fb});
    std::printf("| %s | %lld | %.3f | %.1f | %.0f%% | %s | %s | %.3f | %.1f | %s | %s | %.1f%% | %.1f%% | %.2f |\n",
                r.model.c_str(), static_cast<long long>(r.tokens), r.fwd_s, gf, 100.0 * gf / peak,
                cell(r.torch_fwd, r.torch_fwd.median_s, "%.3f").c_str(),
                cell(r.torch_fwd, r.torch_fwd.median_s / r.fwd_s, "%.2fx").c_str(), r.fb_s, gfb,
                cell(r.torch_fb, r.torch_fb.median_s, "%.3f").c_str(),
                cell(r.torch_fb, r.torch_fb.median_s / r.fb_s, "%.2fx").c_str(), 100.0 * r.bd.attn_fwd_s / r.fwd_s,
                100.0 * (r.bd.attn_fwd_s + r.bd.attn_bwd_s) / r.fb_s, load);
  }
  if (o.torch) {
    std::printf("PyTorch: %s, %d threads, BLAS %s, best 1024^3 matmul %.1f GFLOP/s%s\n", o.python.c_str(), o.threads,
                torch_blas.empty() ? "?" : torch_blas.c_str(), torch_gemm,
                torch_gemm > 0 && torch_gemm < 20 ? " (WARNING: reference BLAS? install libopenblas0-pthread)" : "");
  }
  std::printf("other load: the most cores other processes kept busy during any timed stage of the row "
              "(0 = quiet machine).\n");
  std::printf("FLOP model: per block 8·N·D² + 4·N·D·Hd + 4·N²·D forward, patch embed 2·N·D·1536; backward 2x "
              "(linear), 2.5x (attention), 1x (patch embed, no clip gradient).\n");
  std::fprintf(stderr, "done in %.0f s\n", g_progress.elapsed());
  return 0;
}
