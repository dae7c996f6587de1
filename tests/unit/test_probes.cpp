// Evaluation probes (jepa/eval/{attentive_probe, linear_probe, probe_training, feature_map}.hpp):
//  - layout: the official probe checkpoint keys, shapes and the recipe's init rescale (§7.1);
//  - gradient checks in double precision against fourth-order central differences,
//    g ≈ (−f(x+2h) + 8f(x+h) − 8f(x−h) + f(x−2h)) / 12h, h = 1e-4, with the real losses (softmax
//    cross-entropy, MSE); bound: norm-wise relative error ≤ 1e-8 over every parameter and input
//    (measured 1e-12 … 5e-10);
//  - learning on separable synthetic features (attentive ≥ 95 % top-1; dense mIoU, depth RMSE);
//  - metric golden values on hand-made arrays; pixel ↔ patch conversions;
//  - an encoder → probe pipeline on the synthetic video source (determinism, PCA feature-map PNG);
//  - bad input: jepa:: exceptions naming the field.
// Writes a PNG: the stb_image_write implementation is compiled into this TU, so the test links with
// or without libstb.
#define JEPA_PNG_IMPLEMENTATION
#include <boost/test/unit_test.hpp>

#include "support/errors.hpp"
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "jepa/data/synthetic_video.hpp"
#include "jepa/eval/attentive_probe.hpp"
#include "jepa/eval/feature_map.hpp"
#include "jepa/eval/linear_probe.hpp"
#include "jepa/eval/probe_training.hpp"
#include "jepa/jepa.hpp"
#include "support/check.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

using namespace jepa;
using namespace jepa::eval;
using Cpu = backend::Cpu;

namespace {

constexpr double kBound = 1e-8;

/// Fourth-order central differences of `loss` w.r.t. every one of the n values at x, against
/// `analytic`; returns the norm-wise relative error.
double fd_rel_error(double* x, std::size_t n, const double* analytic, const std::function<double()>& loss,
                    double h = 1e-4) {
  std::vector<double> num(n), ana(analytic, analytic + n);
  for (std::size_t i = 0; i < n; ++i) {
    const double x0 = x[i];
    auto at = [&](double d) {
      x[i] = x0 + d;
      return loss();
    };
    const double f2 = at(2 * h), f1 = at(h), m1 = at(-h), m2 = at(-2 * h);
    x[i] = x0;
    num[i] = (-f2 + 8 * f1 - 8 * m1 + m2) / (12 * h);
  }
  return test::rel_error(ana, num);
}

/// Runs the scope with one OpenMP thread. The gradient checks make ~10⁴ tiny forwards, each entering a
/// few parallel regions; on a shared, oversubscribed 2-core machine every barrier can wait a scheduler
/// slice (measured: 0.2 s with 1 thread, 2–28 s with 2). The backend is bitwise thread-count
/// independent, so nothing is lost.
struct SingleThread {
#ifdef _OPENMP
  int saved = omp_get_max_threads();
  SingleThread() { omp_set_num_threads(1); }
  ~SingleThread() { omp_set_num_threads(saved); }
#endif
};

using jepa::test::expect_error;

AttentiveProbeConfig small_probe(int depth, index_t nq) {
  AttentiveProbeConfig c;
  c.dim = 8;
  c.num_heads = 2;
  c.num_queries = nq;
  c.depth = depth;
  c.mlp_hidden = 12;
  c.num_classes = 3;
  return c;
}

/// Separable classification data: class means μ_c (‖μ_c‖ ≈ √D); every token of a sample of class y
/// is μ_y + N(0, σ²) — the token mean encodes the class.
struct ClassData {
  std::vector<float> x;
  std::vector<std::int32_t> y;
};
ClassData class_data(index_t count, index_t N, index_t D, index_t C, double sigma, std::uint64_t seed) {
  const auto mu = test::random_vector<float>(static_cast<std::size_t>(C * D), 1000);  // shared across splits
  ClassData d;
  d.x.resize(static_cast<std::size_t>(count * N * D));
  d.y.resize(static_cast<std::size_t>(count));
  Rng r(seed, 7);
  for (index_t b = 0; b < count; ++b) {
    const auto y = static_cast<std::int32_t>(r.uniform_int(static_cast<std::uint32_t>(C)));
    d.y[static_cast<std::size_t>(b)] = y;
    for (index_t n = 0; n < N; ++n)
      for (index_t j = 0; j < D; ++j)
        d.x[static_cast<std::size_t>((b * N + n) * D + j)] = mu[static_cast<std::size_t>(y * D + j)] + static_cast<float>(sigma * r.normal());
  }
  return d;
}

/// Dense data: per-token labels and depth z ~ U(0,1); token features μ_label + z·u + N(0, 0.1²)
/// (linear in both).
struct DenseData {
  std::vector<float> x, depth;
  std::vector<std::int32_t> labels;
};
DenseData dense_data(index_t count, index_t N, index_t D, index_t C, std::uint64_t seed) {
  const auto mu = test::random_vector<float>(static_cast<std::size_t>(C * D), 2000);
  const auto u = test::random_vector<float>(static_cast<std::size_t>(D), 2001);
  DenseData d;
  d.x.resize(static_cast<std::size_t>(count * N * D));
  d.depth.resize(static_cast<std::size_t>(count * N));
  d.labels.resize(static_cast<std::size_t>(count * N));
  Rng r(seed, 9);
  for (index_t t = 0; t < count * N; ++t) {
    const auto y = static_cast<std::int32_t>(r.uniform_int(static_cast<std::uint32_t>(C)));
    const double z = r.uniform();
    d.labels[static_cast<std::size_t>(t)] = y;
    d.depth[static_cast<std::size_t>(t)] = static_cast<float>(z);
    for (index_t j = 0; j < D; ++j)
      d.x[static_cast<std::size_t>(t * D + j)] =
          mu[static_cast<std::size_t>(y * D + j)] + static_cast<float>(z) * u[static_cast<std::size_t>(j)] + static_cast<float>(0.1 * r.normal());
  }
  return d;
}

}  // namespace

// -------------------------------------------------------------------------------------------------
// Layout: names, shapes, init (recipe_facts §7.1)
// -------------------------------------------------------------------------------------------------
BOOST_AUTO_TEST_CASE(attentive_probe_layout_follows_official_keys) {
  AttentiveProbeConfig c;  // V2 defaults: depth 4 (3 self-attention blocks), D 768 → use a small D
  c.dim = 32;
  c.num_heads = 4;
  c.num_classes = 174;
  AttentiveProbe<float> p(c);
  const auto& L = p.layout();
  BOOST_TEST(p.num_blocks() == 3);
  BOOST_TEST((L.find("pooler.query_tokens").shape == Shape{1, 1, 32}));
  BOOST_TEST((L.find("pooler.blocks.2.attn.qkv.weight").shape == Shape{96, 32}));
  BOOST_TEST((L.find("pooler.cross_attention_block.xattn.q.weight").shape == Shape{32, 32}));
  BOOST_TEST((L.find("pooler.cross_attention_block.xattn.kv.weight").shape == Shape{64, 32}));
  BOOST_TEST((L.find("pooler.cross_attention_block.mlp.fc1.weight").shape == Shape{128, 32}));
  BOOST_TEST((L.find("linear.weight").shape == Shape{174, 32}));
  BOOST_TEST((L.find("linear.bias").shape == Shape{174}));
  BOOST_TEST(!L.contains("pooler.cross_attention_block.xattn.proj.weight"));  // no output projection
  BOOST_TEST(L.find("pooler.query_tokens").weight_decay);                     // §9.1.11
  // Residual rescale: block i by 1/√(2(i+1)); the cross block's fc2 by 1/√(2(d−1)).
  BOOST_TEST(L.find("pooler.blocks.0.attn.proj.weight").scale == 1 / std::sqrt(2.0), boost::test_tools::tolerance(1e-15));
  BOOST_TEST(L.find("pooler.blocks.2.mlp.fc2.weight").scale == 1 / std::sqrt(6.0), boost::test_tools::tolerance(1e-15));
  BOOST_TEST(L.find("pooler.cross_attention_block.mlp.fc2.weight").scale == 1 / std::sqrt(6.0),
             boost::test_tools::tolerance(1e-15));
  c.depth = 1;
  c.num_queries = 3;
  AttentiveProbe<float> p1(c);
  BOOST_TEST(p1.layout().find("pooler.cross_attention_block.mlp.fc2.weight").scale == 1 / std::sqrt(2.0),
             boost::test_tools::tolerance(1e-15));
  BOOST_TEST((p1.layout().find("linear.weight").shape == Shape{174, 96}));  // n_q queries concatenated
  BOOST_TEST(!p1.layout().contains("pooler.blocks.0.norm1.weight"));
  BOOST_TEST_MESSAGE("V2-shaped probe (D 32, depth 4): " << p.param_count() << " parameters");
}

// -------------------------------------------------------------------------------------------------
// Gradient checks (double)
// -------------------------------------------------------------------------------------------------
BOOST_AUTO_TEST_CASE(attentive_probe_gradcheck) {
  const SingleThread one;
  const index_t B = 2, N = 5;
  for (int depth : {1, 2})
    for (index_t nq : {1, 2}) {
      AttentiveProbe<double> probe(small_probe(depth, nq));
      nn::ParameterSet<double> P(probe.layout()), G(probe.layout());
      test::fill_normal(P.data(), P.numel(), 11 + depth * 10 + nq, 0.3);
      auto x = test::random_vector<double>(B * N * 8, 3 + depth + nq, 1.0, 0.2);
      const std::vector<std::int32_t> labels{2, 0};
      auto s = probe.make_state(B, N);
      const TensorView<const double, 3> xv(x.data(), {B, N, 8});
      auto loss = [&] {
        probe.forward(P.data(), xv, s);
        return softmax_cross_entropy(probe.logits(s).data(), labels.data(), B, 3);
      };
      probe.forward(P.data(), xv, s);
      const double L0 = probe.loss(s, labels.data());
      std::vector<double> dx(x.size(), 123.0);
      probe.backward(P.data(), G.data(), s, dx.data());
      const std::vector<double> G1(G.data(), G.data() + G.numel()), dx1 = dx;
      const double ep = fd_rel_error(P.data(), P.numel(), G1.data(), loss);
      const double ex = fd_rel_error(x.data(), x.size(), dx1.data(), loss);
      BOOST_TEST_MESSAGE("attentive probe depth " << depth << ", n_q " << nq << ": loss " << L0 << ", rel error params "
                                                  << ep << " (" << probe.param_count() << "), features " << ex);
      BOOST_TEST(ep <= kBound);
      BOOST_TEST(ex <= kBound);
      // Accumulation contract: a second backward doubles G; the feature gradient is overwritten.
      probe.forward(P.data(), xv, s);
      probe.loss(s, labels.data());
      probe.backward(P.data(), G.data(), s, dx.data());
      double worst = 0;
      for (std::size_t i = 0; i < G1.size(); ++i) worst = std::max(worst, std::abs(G.data()[i] - 2 * G1[i]));
      BOOST_TEST(worst <= 1e-14);
      BOOST_TEST(dx == dx1);
      // Inference mode gives the same logits (shared block cache, no backward buffers).
      auto si = probe.make_state(B, N, Mode::inference);
      probe.forward(P.data(), xv, s);
      probe.forward(P.data(), xv, si);
      const std::vector<double> a(probe.logits(s).data(), probe.logits(s).data() + B * 3),
          b(probe.logits(si).data(), probe.logits(si).data() + B * 3);
      BOOST_TEST(a == b);
      BOOST_TEST(si.bytes() < s.bytes());
    }
}

BOOST_AUTO_TEST_CASE(dense_probe_gradcheck) {
  const SingleThread one;
  const index_t B = 2, N = 6, D = 5;
  auto x = test::random_vector<double>(B * N * D, 21);
  {
    LinearDenseProbe<double> seg({D, DenseTask::segmentation, 4});
    nn::ParameterSet<double> P(seg.layout()), G(seg.layout());
    test::fill_normal(P.data(), P.numel(), 22, 0.3);
    std::vector<std::int32_t> labels(static_cast<std::size_t>(B * N));
    for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::int32_t>((i * 7) % 4);
    auto s = seg.make_state(B, N);
    const TensorView<const double, 3> xv(x.data(), {B, N, D});
    auto loss = [&] {
      seg.forward(P.data(), xv, s);
      return softmax_cross_entropy(seg.output(s).data(), labels.data(), B * N, 4);
    };
    seg.forward(P.data(), xv, s);
    seg.loss(s, labels.data());
    std::vector<double> dx(x.size());
    seg.backward(P.data(), G.data(), s, dx.data());
    const std::vector<double> G1(G.data(), G.data() + G.numel()), dx1 = dx;
    const double ep = fd_rel_error(P.data(), P.numel(), G1.data(), loss), ex = fd_rel_error(x.data(), x.size(), dx1.data(), loss);
    BOOST_TEST_MESSAGE("dense segmentation head: rel error params " << ep << ", features " << ex);
    BOOST_TEST(ep <= kBound);
    BOOST_TEST(ex <= kBound);
  }
  {
    LinearDenseProbe<double> dep({D, DenseTask::depth, 0});
    BOOST_TEST(dep.outputs() == 1);
    nn::ParameterSet<double> P(dep.layout()), G(dep.layout());
    test::fill_normal(P.data(), P.numel(), 23, 0.3);
    const auto t = test::random_vector<double>(B * N, 24);
    auto s = dep.make_state(B, N);
    const TensorView<const double, 3> xv(x.data(), {B, N, D});
    auto loss = [&] {
      dep.forward(P.data(), xv, s);
      return mse_loss(dep.output(s).data(), t.data(), B * N);
    };
    dep.forward(P.data(), xv, s);
    dep.loss(s, t.data());
    std::vector<double> dx(x.size());
    dep.backward(P.data(), G.data(), s, dx.data());
    const std::vector<double> G1(G.data(), G.data() + G.numel()), dx1 = dx;
    const double ep = fd_rel_error(P.data(), P.numel(), G1.data(), loss), ex = fd_rel_error(x.data(), x.size(), dx1.data(), loss);
    BOOST_TEST_MESSAGE("dense depth head: rel error params " << ep << ", features " << ex);
    BOOST_TEST(ep <= kBound);
    BOOST_TEST(ex <= kBound);
  }
}

// -------------------------------------------------------------------------------------------------
// Golden values
// -------------------------------------------------------------------------------------------------
BOOST_AUTO_TEST_CASE(metric_golden_values) {
  // IoU: class 0 → 1/3, class 1 → 2/3, class 2 → 1/2; class 3 is absent from both and not counted.
  const std::vector<std::int32_t> pred{0, 0, 1, 1, 2, 2}, gt{0, 1, 1, 1, 2, 0};
  BOOST_TEST(miou(pred, gt, 4) == 0.5, boost::test_tools::tolerance(1e-15));
  BOOST_TEST(miou(gt, gt, 4) == 1.0);
  BOOST_TEST(miou(std::vector<std::int32_t>{1, 1}, std::vector<std::int32_t>{0, 0}, 2) == 0.0);
  BOOST_TEST(rmse(std::vector<double>{1, 2, 3, 4}, std::vector<double>{1, 1, 1, 1}) == std::sqrt(3.5),
             boost::test_tools::tolerance(1e-15));
  const std::vector<float> logits{1, 2, 0, 3, 1, 1, 0, 0, 5, 2, 2, 1};
  const std::vector<std::int32_t> y{1, 0, 1, 1};
  BOOST_TEST(top1_accuracy(logits.data(), y.data(), 4, 3) == 0.5);  // row 3: tie → first maximum (0)
  // Cross-entropy: softmax(0, ln2, ln3) = (1,2,3)/6 → −ln(1/2); softmax(0, 0) → −ln(1/2).
  // (Row 2 is (0, 0, −800): the third class underflows to probability 0.)
  const std::vector<double> z{0, std::log(2.0), std::log(3.0), 0, 0, -800};
  const std::vector<std::int32_t> yz{2, 0};
  std::vector<double> dz(6);
  BOOST_TEST(softmax_cross_entropy(z.data(), yz.data(), 2, 3, dz.data()) == std::log(2.0), boost::test_tools::tolerance(1e-14));
  const std::vector<double> want{1.0 / 12, 2.0 / 12, -3.0 / 12, -0.25, 0.25, 0};
  BOOST_TEST(test::rel_error(dz, want) <= 1e-14);
  const std::vector<double> p{1, 3}, t{0, 0};
  std::vector<double> dp(2);
  BOOST_TEST(mse_loss(p.data(), t.data(), 2, dp.data()) == 5.0);
  BOOST_TEST((dp == std::vector<double>{1.0, 3.0}));
}

BOOST_AUTO_TEST_CASE(pixel_patch_conversions) {
  // 2 frames of 4×4 pixels, tubelet 2, patch 2 → 1×2×2 = 4 tokens.
  const PatchGrid g{2, 4, 4, 2, 2};
  BOOST_TEST(g.tokens() == 4);
  // Frame 0 and frame 1 (rows of 4):
  const std::vector<std::int32_t> px{
      0, 0, 1, 1,  //
      0, 2, 1, 1,  //
      2, 2, 0, 1,  //
      2, 2, 1, 1,  //
      0, 0, 1, 0,  //
      2, 2, 1, 0,  //
      2, 2, 0, 0,  //
      2, 0, 0, 0};
  // token 0: {0,0,0,2, 0,0,2,2} → 0 (5 vs 3); token 1: {1,1,1,1, 1,0,1,0} → 1;
  // token 2: {2,2,2,2, 2,2,2,0} → 2; token 3: {0,1,1,1, 0,0,0,0} → 0 (5 vs 3).
  const auto lab = patch_majority_labels(px.data(), g, 3);
  BOOST_TEST((lab == std::vector<std::int32_t>{0, 1, 2, 0}));
  const auto up = upsample_nearest_patch(lab.data(), g);
  BOOST_TEST(up.size() == 32u);
  BOOST_TEST(up[0] == 0);
  BOOST_TEST(up[3] == 1);
  BOOST_TEST(up[16 + 15] == 0);
  BOOST_TEST(up[16 + 12] == 2);
  // Pixel mIoU of the upsampled patch labels: class 0 → 10/19, class 1 → 6/11, class 2 → 7/11.
  BOOST_TEST(miou(up, px, 3) == (10.0 / 19 + 6.0 / 11 + 7.0 / 11) / 3, boost::test_tools::tolerance(1e-14));
  std::vector<float> depth(32);
  for (std::size_t i = 0; i < depth.size(); ++i) depth[i] = static_cast<float>(i);
  const auto dm = patch_mean<double>(depth.data(), g);  // token 0: pixels {0,1,4,5, 16,17,20,21} → 10.5
  BOOST_TEST((dm == std::vector<double>{10.5, 12.5, 18.5, 20.5}));
  const auto fg = foreground_labels(std::vector<std::int32_t>{0, 3, 1, 0}.data(), 4);
  BOOST_TEST((fg == std::vector<std::int32_t>{0, 1, 1, 0}));
}

// -------------------------------------------------------------------------------------------------
// Learning
// -------------------------------------------------------------------------------------------------
BOOST_AUTO_TEST_CASE(attentive_probe_learns_separable_classes) {
  const index_t N = 8, D = 16, C = 4;
  const auto tr = class_data(512, N, D, C, 1.0, 1), va = class_data(256, N, D, C, 1.0, 2);
  for (int depth : {1, 2}) {
    AttentiveProbeConfig c;
    c.dim = D;
    c.num_heads = 2;
    c.depth = depth;
    c.num_classes = C;
    AttentiveProbe<float> probe(c);
    nn::ParameterSet<float> P(probe.layout());
    P.init(5);
    ProbeTrainConfig tc;
    tc.epochs = 8;
    tc.batch_size = 32;  // 16 steps per epoch → 128 steps
    tc.lr = 3e-3;
    tc.weight_decay = 0.01;
    const auto before = evaluate_probe(probe, P, precomputed(va.x.data(), 256, N, D, va.y.data(), 1), 64);
    const auto r = train_probe(probe, P, precomputed(tr.x.data(), 512, N, D, tr.y.data(), 1),
                               precomputed(va.x.data(), 256, N, D, va.y.data(), 1), tc);
    BOOST_TEST_MESSAGE("attentive probe depth " << depth << ": " << r.steps << " steps, train loss "
                                                << r.epoch_loss.front() << " → " << r.epoch_loss.back() << ", val top-1 "
                                                << before.top1 << " → " << r.val.top1 << ", val loss " << r.val.loss);
    BOOST_TEST(r.steps == 128u);
    BOOST_TEST(r.val.samples == 256);
    BOOST_TEST(r.val.top1 >= 0.95);
    BOOST_TEST(r.epoch_loss.back() < r.epoch_loss.front());
  }
}

BOOST_AUTO_TEST_CASE(dense_probes_learn_linear_targets) {
  const index_t N = 16, D = 12, C = 3;
  const auto tr = dense_data(96, N, D, C, 1), va = dense_data(32, N, D, C, 2);
  ProbeTrainConfig tc;
  tc.epochs = 10;
  tc.batch_size = 8;  // 12 steps per epoch
  tc.lr = 2e-2;
  tc.weight_decay = 0.0;
  {
    LinearDenseProbe<float> seg({D, DenseTask::segmentation, C});
    nn::ParameterSet<float> P(seg.layout());
    P.init(1);
    const auto r = train_probe(seg, P, precomputed(tr.x.data(), 96, N, D, tr.labels.data(), N),
                               precomputed(va.x.data(), 32, N, D, va.labels.data(), N), tc);
    BOOST_TEST_MESSAGE("dense segmentation: train loss " << r.epoch_loss.front() << " → " << r.epoch_loss.back()
                                                         << ", val mIoU " << r.val.miou << ", val CE " << r.val.loss);
    BOOST_TEST(r.val.miou >= 0.9);
  }
  {
    LinearDenseProbe<float> dep({D, DenseTask::depth, 0});
    nn::ParameterSet<float> P(dep.layout());
    P.init(1);
    const auto r = train_probe(dep, P, precomputed(tr.x.data(), 96, N, D, nullptr, 0, tr.depth.data()),
                               precomputed(va.x.data(), 32, N, D, nullptr, 0, va.depth.data()), tc);
    BOOST_TEST_MESSAGE("dense depth: train MSE " << r.epoch_loss.front() << " → " << r.epoch_loss.back()
                                                 << ", val RMSE " << r.val.rmse << " (targets U(0,1): std 0.289)");
    BOOST_TEST(r.val.rmse <= 0.05);
  }
}

// -------------------------------------------------------------------------------------------------
// Encoder → probe pipeline on the synthetic video source
// -------------------------------------------------------------------------------------------------
BOOST_AUTO_TEST_CASE(encoder_probe_pipeline_is_deterministic) {
  using Enc = models::VitEncoder<1, tokenizers::Tubelet<2, 8>, models::RopeTiled, models::FinalNorm, float>;
  models::VitConfig vc;
  vc.embed_dim = 24;
  vc.num_heads = 2;
  vc.mlp_hidden = 48;
  Enc enc(vc);
  nn::ParameterSet<float> W(enc.layout());
  W.init(0);
  const data::SyntheticVideo video({2, 32, 32, 1, 2, 3});
  const models::InputGeometry geom{2, 32, 32};
  auto es = enc.make_state(models::Mode::inference, 1, geom);
  const index_t N = es.tokens(), D = 24;
  const PatchGrid pg{2, 32, 32, 2, 8};
  BOOST_TEST(N == pg.tokens());
  // fetch: render the listed clips and encode them one by one; labels are the clip class, or the
  // per-patch foreground class for the dense probe.
  auto source = [&](std::uint64_t base, index_t count, bool dense) {
    ProbeData<float> d{count, N, D, {}};
    d.fetch = [&, base, dense](std::span<const index_t> idx, float* x, std::int32_t* lab, float* tgt) {
      for (std::size_t i = 0; i < idx.size(); ++i) {
        const auto clip = video.clip(base + static_cast<std::uint64_t>(idx[i]));
        enc.forward(W.data(), TensorView<const float, 5>(clip.pixels.data(), {1, 3, 2, 32, 32}), nullptr, es);
        std::copy(enc.output(es).data(), enc.output(es).data() + N * D, x + static_cast<index_t>(i) * N * D);
        if (lab && !dense) lab[i] = clip.label;
        if (lab && dense) {
          // A patch is foreground when >= 1/4 of its pixels are (majority would leave most 8×8
          // patches of these small shapes background).
          const auto fg = foreground_labels(clip.segmentation.data(), pg.pixels());
          const auto frac = patch_mean(fg.data(), pg);
          for (index_t n = 0; n < N; ++n) lab[static_cast<index_t>(i) * N + n] = frac[static_cast<std::size_t>(n)] >= 0.25f;
        }
        if (tgt) {
          const auto t = patch_mean(clip.depth.data(), pg);
          std::copy(t.begin(), t.end(), tgt + static_cast<index_t>(i) * N);
        }
      }
    };
    return d;
  };
  AttentiveProbeConfig c;
  c.dim = D;
  c.num_heads = 2;
  c.depth = 2;
  c.num_classes = data::SyntheticVideo::num_classes;
  AttentiveProbe<float> probe(c);
  ProbeTrainConfig tc;
  tc.epochs = 2;
  tc.batch_size = 4;
  tc.seed = 9;
  auto run = [&] {
    nn::ParameterSet<float> P(probe.layout());
    P.init(1);
    return train_probe(probe, P, source(0, 10, false), source(1000, 6, false), tc);
  };
  const auto r1 = run(), r2 = run();
  BOOST_TEST_MESSAGE("pipeline: " << r1.steps << " steps, epoch losses " << r1.epoch_loss[0] << ", " << r1.epoch_loss[1]
                                  << "; val top-1 " << r1.val.top1 << " over " << r1.val.samples << " clips");
  BOOST_TEST(r1.steps == 4u);  // ⌊10/4⌋ = 2 steps per epoch (drop last)
  BOOST_TEST(r1.val.samples == 6);  // eval keeps the partial batch
  BOOST_TEST(r1.epoch_loss == r2.epoch_loss);  // bitwise
  BOOST_TEST(r1.val.loss == r2.val.loss);

  LinearDenseProbe<float> seg({D, DenseTask::segmentation, 2});
  nn::ParameterSet<float> Ps(seg.layout());
  Ps.init(2);
  tc.lr = 1e-2;
  const auto rs = train_probe(seg, Ps, source(0, 8, true), source(1000, 4, true), tc);
  LinearDenseProbe<float> dep({D, DenseTask::depth, 0});
  nn::ParameterSet<float> Pd(dep.layout());
  Pd.init(2);
  const auto rd = train_probe(dep, Pd, source(0, 8, false), source(1000, 4, false), tc);
  BOOST_TEST_MESSAGE("pipeline dense: fg/bg patch mIoU " << rs.val.miou << ", depth RMSE " << rd.val.rmse);
  BOOST_TEST(std::isfinite(rs.val.miou));
  BOOST_TEST(std::isfinite(rd.val.rmse));

  // PCA feature map of clip 0, time slice 0: frame | map.
  const auto clip = video.clip(0);
  enc.forward(W.data(), TensorView<const float, 5>(clip.pixels.data(), {1, 3, 2, 32, 32}), nullptr, es);
  const TensorView<const float, 3> frame(clip.pixels.data(), {3, 32, 32}, {2 * 32 * 32, 32, 1});
  const auto img = pca_feature_image(enc.output(es).data(), 4, 4, D, frame);
  BOOST_TEST(img.width == 32 + 8 + 32);
  BOOST_TEST(img.height == 32);
  const auto path = (std::filesystem::temp_directory_path() / "jepa_test_probes_pca.png").string();
  pca_feature_map(enc.output(es).data(), 4, 4, D, frame, path);
  std::ifstream f(path, std::ios::binary);
  char sig[8] = {};
  f.read(sig, 8);
  BOOST_TEST((f.good() && sig[1] == 'P' && sig[2] == 'N' && sig[3] == 'G'));
  f.close();
  std::filesystem::remove(path);
}

// -------------------------------------------------------------------------------------------------
// Bad input
// -------------------------------------------------------------------------------------------------
BOOST_AUTO_TEST_CASE(bad_input_names_the_field) {
  AttentiveProbe<float> probe(small_probe(2, 1));
  nn::ParameterSet<float> P(probe.layout());
  P.init(0);
  auto s = probe.make_state(2, 5);
  std::vector<float> x(2 * 5 * 8, 0.5f), x7(2 * 5 * 7, 0.5f);
  // Wrong feature width.
  expect_error<ShapeError>([&] { probe.forward(P.data(), TensorView<const float, 3>(x7.data(), {2, 5, 7}), s); },
                           {"features width (dim 2) = 7", "D = 8"});
  expect_error<ShapeError>([&] { probe.forward(P.data(), TensorView<const float, 3>(x.data(), {1, 10, 8}), s); },
                           {"features batch (dim 0) = 1", "B = 2"});
  // Label out of range.
  probe.forward(P.data(), TensorView<const float, 3>(x.data(), {2, 5, 8}), s);
  const std::vector<std::int32_t> bad{0, 3}, neg{-1, 0};
  expect_error<IndexError>([&] { probe.loss(s, bad.data()); }, {"labels[1] = 3", "[0, 3)"});
  expect_error<IndexError>([&] { probe.loss(s, neg.data()); }, {"labels[0] = -1"});
  // Empty batch.
  expect_error<ShapeError>([&] { probe.make_state(0, 5); }, {"batch = 0", "empty"});
  expect_error<ShapeError>([&] { probe.make_state(2, 0); }, {"tokens = 0"});
  expect_error<ShapeError>([&] { probe.forward(P.data(), TensorView<const float, 3>(x.data(), {0, 5, 8}), s); },
                           {"features", "empty"});
  expect_error<ShapeError>([&] { s.set_shape(3, 5); }, {"batch = 3", "[1, 2]"});
  std::vector<float> none;
  expect_error<ShapeError>(
      [&] { train_probe(probe, P, precomputed(none.data(), 0, 5, 8, bad.data(), 1), precomputed(x.data(), 2, 5, 8, bad.data(), 1), {}); },
      {"train.count = 0", "empty"});
  expect_error<ShapeError>(
      [&] { evaluate_probe(probe, P, precomputed(x7.data(), 2, 5, 7, bad.data(), 1)); }, {"val.dim = 7", "D = 8"});
  expect_error<ShapeError>(
      [&] { evaluate_probe(probe, P, precomputed(x.data(), 1, 10, 8, bad.data(), 10)); },
      {"val.labels_per_sample = 10", "needs 1 label(s) per sample"});
  expect_error<ShapeError>([&] { softmax_cross_entropy(x.data(), bad.data(), 0, 3); }, {"batch", "empty"});
  expect_error<ShapeError>([&] { miou(bad.data(), bad.data(), 0, 3); }, {"miou n", "= 0"});
  expect_error<IndexError>([&] { miou(std::vector<std::int32_t>{0, 5}, std::vector<std::int32_t>{0, 1}, 3); },
                           {"miou pred[1] = 5"});
  // Configuration.
  auto c = small_probe(1, 1);
  c.num_heads = 3;
  expect_error<ConfigError>([&] { AttentiveProbe<float> p(c); }, {"AttentiveProbeConfig.num_heads = 3", "divisible"});
  c = small_probe(1, 1);
  c.num_classes = 1;
  expect_error<ConfigError>([&] { AttentiveProbe<float> p(c); }, {"AttentiveProbeConfig.num_classes = 1"});
  c = small_probe(0, 1);
  expect_error<ConfigError>([&] { AttentiveProbe<float> p(c); }, {"AttentiveProbeConfig.depth = 0"});
  ProbeTrainConfig tc;
  tc.epochs = 0;
  expect_error<ConfigError>([&] { tc.validate(); }, {"ProbeTrainConfig.epochs = 0"});
  // Mode and task misuse.
  auto si = probe.make_state(2, 5, Mode::inference);
  probe.forward(P.data(), TensorView<const float, 3>(x.data(), {2, 5, 8}), si);
  expect_error<ConfigError>([&] { probe.backward(P.data(), nullptr, si); }, {"Mode::training"});
  LinearDenseProbe<float> dep({8, DenseTask::depth, 0});
  auto ds = dep.make_state(2, 5);
  dep.forward(P.data(), TensorView<const float, 3>(x.data(), {2, 5, 8}), ds);
  expect_error<ConfigError>([&] { dep.loss(ds, bad.data()); }, {"depth"});
  expect_error<ConfigError>([&] { LinearDenseProbe<float> d({0, DenseTask::depth, 0}); }, {"DenseProbeConfig.dim = 0"});
  expect_error<ShapeError>([&] { pca_feature_image(x.data(), 3, 3, 8, TensorView<const float, 3>(nullptr, {3, 10, 10})); },
                           {"frame size", "10x10"});
}

// The synthetic source's ground truth is what the ablation's probes are scored against: the
// direction label must be what the clip shows, the labelled shape must be large enough not to be a
// rare class at a 16-pixel patch grid, clips must be pure functions of (seed, index), and bad
// settings must be refused.
BOOST_AUTO_TEST_CASE(synthetic_video_ground_truth) {
  const index_t F = 8, S = 64;
  const data::SyntheticVideo video({F, S, S, 2, 4, 239});
  int exact = 0, near = 0, counted = 0;
  double main_area = 0;
  for (std::uint64_t i = 0; i < 40; ++i) {
    const auto c = video.clip(i);
    const auto c2 = video.clip(i);
    BOOST_TEST((c.pixels == c2.pixels && c.segmentation == c2.segmentation && c.direction == c2.direction));
    BOOST_TEST((c.direction >= 0 && c.direction < data::SyntheticVideo::num_directions));
    // Centroid of the labelled shape (segmentation id 1) in the first and the last frame.
    auto centroid = [&](index_t f, double& x, double& y) {
      double sx = 0, sy = 0, n = 0;
      for (index_t yy = 0; yy < S; ++yy)
        for (index_t xx = 0; xx < S; ++xx)
          if (c.segmentation[static_cast<std::size_t>((f * S + yy) * S + xx)] == 1) sx += xx, sy += yy, n += 1;
      x = sx / std::max(n, 1.0), y = sy / std::max(n, 1.0);
      return n;
    };
    double x0, y0, x1, y1;
    const double n0 = centroid(0, x0, y0), n1 = centroid(F - 1, x1, y1);
    main_area += n0 / static_cast<double>(S * S);
    if (n0 < 50 || n1 < 50 || std::hypot(x1 - x0, y1 - y0) < 3) continue;  // hidden, or too little motion to measure
    ++counted;
    double a = std::atan2(y1 - y0, x1 - x0);
    if (a < 0) a += 2 * std::numbers::pi;
    const int sector = static_cast<int>(std::lround(a / (std::numbers::pi / 4))) % 8;
    const int d = std::abs(sector - c.direction) % 8;
    exact += d == 0;
    near += std::min(d, 8 - d) <= 1;  // occluders can pull the visible centroid across a sector edge
  }
  BOOST_TEST_MESSAGE("direction label vs visible centroid motion: " << exact << " exact, " << near << " within one sector of "
                                                                     << counted << "; main shape covers " << main_area / 40
                                                                     << " of frame 0 on average");
  BOOST_TEST(counted >= 30);
  BOOST_TEST(near == counted);
  BOOST_TEST(exact >= counted * 8 / 10);
  BOOST_TEST(main_area / 40 >= 0.15);
  jepa::test::expect_error<ConfigError>([] { data::SyntheticVideo({F, S, S, 2, 4, 0, 1.5}); },
                                        {"SyntheticVideoConfig.contrast", "[0, 1]"});
  jepa::test::expect_error<ConfigError>([] { data::SyntheticVideo({F, S, S, 3, 2, 0}); },
                                        {"min_shapes/max_shapes"});
}
