// The JEPA objective: distance weights, λ schedule, loss policies, the predictor and the whole
// composed model (loss w.r.t. context-encoder and predictor parameters) against fourth-order finite
// differences in double precision. Bound: norm-wise relative error ≤ 1e-8 (measured ~1e-10).
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <functional>

#include "jepa/jepa.hpp"
#include "jepa/models/jepa.hpp"
#include "support/check.hpp"

using namespace jepa;
using namespace jepa::models;

namespace {
constexpr double kBound = 1e-8;

double fd_check(double* x, std::size_t n, const double* analytic, const std::function<double()>& f, std::size_t max_coords,
                const char* what) {
  const std::size_t step = n > max_coords ? n / max_coords : 1;
  std::vector<double> num, ana;
  for (std::size_t i = 0; i < n; i += step) {
    const double x0 = x[i], h = 1e-4;
    auto at = [&](double d) { x[i] = x0 + d; return f(); };
    const double g = (-at(2 * h) + 8 * at(h) - 8 * at(-h) + at(-2 * h)) / (12 * h);
    x[i] = x0;
    num.push_back(g);
    ana.push_back(analytic[i]);
  }
  const double e = test::rel_error(ana, num);
  BOOST_TEST_MESSAGE(what << ": rel error " << e << " over " << num.size() << " coordinates");
  BOOST_TEST(e <= kBound, what << ": rel error " << e);
  return e;
}

/// A user-style masking policy: fixed random context/target sets per (step, sample, generator).
struct FixedRandomMasks {
  int generators = 2;
  int num_generators() const { return generators; }
  std::vector<masking::MaskBatch> sample(const nn::TokenGrid& g, std::uint64_t seed, std::uint64_t step, index_t B) const {
    std::vector<masking::MaskBatch> out;
    for (int j = 0; j < generators; ++j) {
      std::vector<masking::MaskPair> pairs;
      for (index_t b = 0; b < B; ++b) {
        Rng r = masking::mask_rng(seed, step, static_cast<std::uint64_t>(b), static_cast<std::uint64_t>(j));
        masking::MaskPair p;
        for (index_t n = 0; n < g.size(); ++n) {
          const double u = r.uniform();
          if (u < 0.3 + 0.1 * j) p.context.push_back(n);
          else if (u < 0.85) p.target.push_back(n);
        }
        pairs.push_back(std::move(p));
      }
      out.push_back(masking::truncate_batch(pairs));
    }
    return out;
  }
};
static_assert(masking::MaskingPolicy<FixedRandomMasks>);

template <class Model>
void model_gradcheck(Model& model, index_t frames, const char* what, std::uint64_t step, index_t size = 8) {
  auto& EP = model.encoder_params();
  auto& PP = model.predictor_params();
  model.init(3);
  // Spread the weights (init 0.02 is nearly linear) and make the target encoder differ, as an EMA would.
  for (auto* set : {&EP, &PP})
    for (const auto& p : set->layout().params())
      for (std::size_t i = 0; i < p.numel(); ++i)
        set->data()[p.offset + i] = set->data()[p.offset + i] * (p.shape.rank() >= 2 ? 10.0 : 1.0) +
                                    (p.shape.rank() >= 2 ? 0.0 : 0.05 * std::sin(3.0 * static_cast<double>(i + p.offset)));
  for (std::size_t i = 0; i < model.target_params().numel(); ++i)
    model.target_params().data()[i] = EP.data()[i] * 0.9 + 0.01 * std::cos(static_cast<double>(i));
  const index_t B = 2;
  auto clip = test::random_vector<double>(B * 3 * frames * size * size, 11);
  const TensorView<const double, 5> cv(clip.data(), {B, 3, frames, size, size});
  auto rep = model.forward_loss(cv, step);
  BOOST_TEST_MESSAGE(what << ": loss " << rep.loss << " (prediction " << rep.prediction << ", context " << rep.context
                          << ", λ " << rep.lambda << ")");
  model.zero_grad();
  model.backward();
  auto f = [&] { return model.forward_loss(cv, step).loss; };
  std::vector<double> ge(model.encoder_grads().data(), model.encoder_grads().data() + EP.numel());
  std::vector<double> gp(model.predictor_grads().data(), model.predictor_grads().data() + PP.numel());
  fd_check(EP.data(), EP.numel(), ge.data(), f, 250, what);
  fd_check(PP.data(), PP.numel(), gp.data(), f, 250, what);
  // backward() accumulates: a second forward+backward doubles the gradients.
  model.forward_loss(cv, step);
  model.backward();
  BOOST_TEST(model.encoder_grads().data()[7] == 2 * ge[7], boost::test_tools::tolerance(1e-12));
}
}  // namespace

BOOST_AUTO_TEST_CASE(distance_weights_golden_and_brute_force) {
  const nn::TokenGrid g{2, 4, 4};
  // Context token 0 = (0,0,0); targets at distance 1, √2, 2 → weights 1, 0.841, 0.7071.
  auto w_of = [&](std::int64_t target) {
    const std::int64_t c = 0;
    double w;
    losses::context_distance_weights(&c, 1, &target, 1, 1, g, &w);
    return w;
  };
  BOOST_TEST(w_of(1) == 1.0, boost::test_tools::tolerance(1e-12));             // (0,0,1)
  BOOST_TEST(w_of(5) == 0.840896, boost::test_tools::tolerance(1e-6));         // (0,1,1): √2
  BOOST_TEST(w_of(2) == 0.707107, boost::test_tools::tolerance(1e-6));         // (0,0,2): 2
  BOOST_TEST(w_of(16 + 3) == std::pow(10.0, -0.25), boost::test_tools::tolerance(1e-12));  // (1,0,3): √10
  // Brute force on random masks.
  const nn::TokenGrid G{4, 6, 5};
  FixedRandomMasks pol;
  const auto mb = pol.sample(G, 9, 4, 3)[0];
  std::vector<double> w(mb.context.size());
  losses::context_distance_weights(mb.context.data(), mb.context_len, mb.target.data(), mb.target_len, 3, G, w.data());
  for (index_t b = 0; b < 3; ++b)
    for (index_t k = 0; k < mb.context_len; ++k) {
      const auto c = mb.context_row(b)[k];
      double best = 1e300;
      for (index_t t = 0; t < mb.target_len; ++t) {
        const auto n = mb.target_row(b)[t];
        const double dd = double(n / 30 - c / 30), dh = double((n % 30) / 5 - (c % 30) / 5), dw = double(n % 5 - c % 5);
        best = std::min(best, std::sqrt(dd * dd + dh * dh + dw * dw));
      }
      BOOST_REQUIRE_CLOSE(w[b * mb.context_len + k], 1.0 / std::sqrt(best), 1e-10);
    }
}

BOOST_AUTO_TEST_CASE(lambda_schedule_golden) {
  // §10.13: λ = 0.5, progressive: 0 → 0; 15000 → 0; 22500 → 0.25; ≥ 30000 → 0.5.
  losses::LambdaSchedule s;
  BOOST_TEST(s(0) == 0.0);
  BOOST_TEST(s(15000) == 0.0);
  BOOST_TEST(s(22500) == 0.25);
  BOOST_TEST(s(30000) == 0.5);
  BOOST_TEST(s(1000000) == 0.5);
  s.progressive = false;
  BOOST_TEST(s(0) == 0.5);
}

BOOST_AUTO_TEST_CASE(elementwise_losses) {
  static_assert(losses::LossPolicy<losses::MaskedLoss<losses::L1>>);
  static_assert(losses::LossPolicy<losses::MaskedLoss<losses::SmoothL1>>);
  static_assert(losses::LossPolicy<losses::ContextLoss<losses::L2>>);
  const losses::SmoothL1 h{1.0};
  BOOST_TEST(h.value(0.5) == 0.125);
  BOOST_TEST(h.value(-3.0) == 2.5);
  for (double d : {-2.0, -0.7, -0.1, 0.3, 0.99, 1.5})
    for (auto rho : {0, 1, 2}) {
      auto v = [&](double x) { return rho == 0 ? losses::L1{}.value(x) : rho == 1 ? h.value(x) : losses::L2{}.value(x); };
      const double g = rho == 0 ? losses::L1{}.grad(d) : rho == 1 ? h.grad(d) : losses::L2{}.grad(d);
      BOOST_TEST(g == (v(d + 1e-6) - v(d - 1e-6)) / 2e-6, boost::test_tools::tolerance(1e-6));
    }
  BOOST_TEST(losses::L1{}.grad(0.0) == 0.0);  // PyTorch's sign(0) = 0
}

BOOST_AUTO_TEST_CASE(composed_vjepa2_tiny) {
  using Enc = VitEncoder<2, tokenizers::Tubelet<2, 4>, RopeTiled, FinalNorm, double>;
  using Pred = Predictor<2, RopeTiled, 1, double>;
  VitConfig ec;
  ec.embed_dim = 12, ec.num_heads = 2, ec.mlp_hidden = 16;
  PredictorConfig pc;
  pc.encoder_dim = 12, pc.pred_dim = 12, pc.num_heads = 2, pc.mlp_hidden = 16, pc.num_mask_tokens = 3;
  pc.zero_init_mask_tokens = false;
  Jepa<Enc, Pred, FixedRandomMasks, losses::MaskedLoss<losses::L1>> model(ec, pc);
  model_gradcheck(model, 4, "V-JEPA 2 (L1, 2 generators)", 7);
}

BOOST_AUTO_TEST_CASE(composed_vjepa21_tiny) {
  using Tok = tokenizers::MultiModal<tokenizers::Tubelet<2, 4>, tokenizers::Tubelet<1, 4>, true>;
  using Enc = VitEncoder<4, Tok, RopeInterleaved, HierarchicalTaps<0, 1, 2, 3>, double>;
  using Pred = Predictor<2, RopeInterleaved, 4, double>;
  VitConfig ec;
  ec.embed_dim = 12, ec.num_heads = 2, ec.mlp_hidden = 16, ec.rope_interp_grid = 16;
  PredictorConfig pc;
  pc.encoder_dim = 12, pc.pred_dim = 12, pc.num_heads = 2, pc.mlp_hidden = 16, pc.num_mask_tokens = 2;
  pc.zero_init_mask_tokens = false, pc.modality_embedding = true, pc.predict_context = true, pc.rope_interp_grid = 16;
  losses::ContextLoss<losses::L1> loss;
  Jepa<Enc, Pred, FixedRandomMasks, losses::ContextLoss<losses::L1>> model(ec, pc, {}, loss);
  // Mid-warmup step: λ = 0.25, distance-weighted context term, fusion MLP, 4 taps.
  model_gradcheck(model, 4, "V-JEPA 2.1 video (context loss, 4 levels)", 22500);
  // Images through the 1-frame tokenizer.
  model_gradcheck(model, 1, "V-JEPA 2.1 image (context loss, 4 levels)", 40000, 16);
}

namespace {
struct SharedMasks : FixedRandomMasks {
  static constexpr bool shared_context = true;
  std::vector<masking::MaskBatch> sample(const nn::TokenGrid& g, std::uint64_t seed, std::uint64_t step, index_t B) const {
    auto m = FixedRandomMasks::sample(g, seed, step, B);
    for (auto& mb : m) {  // same context for all; the targets of generator j drop any context token
      mb.context = m[0].context;
      mb.context_len = m[0].context_len;
      std::vector<masking::MaskPair> pairs(static_cast<std::size_t>(B));
      for (index_t b = 0; b < B; ++b) {
        pairs[b].context.assign(mb.context_row(b), mb.context_row(b) + mb.context_len);
        for (index_t t = 0; t < mb.target_len; ++t)
          if (!std::binary_search(pairs[b].context.begin(), pairs[b].context.end(), mb.target_row(b)[t]))
            pairs[b].target.push_back(mb.target_row(b)[t]);
      }
      mb = masking::truncate_batch(pairs);
    }
    return m;
  }
};
}  // namespace

BOOST_AUTO_TEST_CASE(smooth_l1_shared_context) {
  // I-JEPA style: one context, several target blocks (shared_context), sin-cos positions, SmoothL1.
  using Enc = VitEncoder<2, tokenizers::Patch2d<4>, SinCos2d, FinalNorm, double>;
  using Pred = Predictor<2, SinCos2d, 1, double>;
  VitConfig ec;
  ec.embed_dim = 12, ec.num_heads = 2, ec.mlp_hidden = 16, ec.residual_rescale = false;
  PredictorConfig pc;
  pc.encoder_dim = 12, pc.pred_dim = 12, pc.num_heads = 2, pc.mlp_hidden = 16, pc.num_mask_tokens = 1;
  pc.ijepa_naming = true, pc.zero_init_mask_tokens = false;
  Jepa<Enc, Pred, SharedMasks, losses::MaskedLoss<losses::SmoothL1>> model(ec, pc);
  BOOST_TEST(model.predictor().layout().contains("mask_token"));
  model_gradcheck(model, 1, "I-JEPA style (SmoothL1, shared context, 2-D sin-cos)", 3, 16);
}
