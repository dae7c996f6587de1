// Schedules against the recipe's hand-computed values (§10.14–15, §5.1 pitfalls); AdamW and EMA
// against closed form; clipping; parameter groups from the layout.
#include <boost/test/unit_test.hpp>
#include <cmath>

#include "jepa/jepa.hpp"
#include "jepa/train/optim.hpp"
#include "jepa/train/schedules.hpp"

using namespace jepa;
using namespace jepa::train;
namespace tt = boost::test_tools;

BOOST_AUTO_TEST_CASE(vjepa2_lr_golden) {
  // §10.14: ViT-L LR step 1 → 1.000354e-4; steps ≥ 12000 → 5.25e-4; cooldown's last step ≈ 1.058e-4.
  const Stage pre = Recipes::vjepa2_pretrain();
  BOOST_TEST(pre.lr(1) == 1.000354e-4, tt::tolerance(1e-6));
  BOOST_TEST(pre.lr(12000) == 5.25e-4, tt::tolerance(1e-12));
  BOOST_TEST(pre.lr(200000) == 5.25e-4, tt::tolerance(1e-12));
  BOOST_TEST(pre.wd(123456) == 0.04, tt::tolerance(1e-12));
  BOOST_TEST(pre.ema(99999) == 0.99925);
  const Stage cool = Recipes::vjepa2_cooldown();
  BOOST_TEST(cool.steps() == 12000u);
  BOOST_TEST(cool.horizon() == 15000u);
  BOOST_TEST(cool.lr(12000) == 1.058e-4, tt::tolerance(1e-3));
  BOOST_TEST(cool.lr(12000) == 5.25e-4 - 0.8 * (5.25e-4 - 1e-6), tt::tolerance(1e-12));
  // 2.1 cooldown: 6e-4 → ≈ 1.21e-4.
  BOOST_TEST(Recipes::vjepa21_cooldown().lr(12000) == 6e-4 - 0.8 * (6e-4 - 1e-6), tt::tolerance(1e-12));
  BOOST_TEST(Recipes::vjepa21_pretrain().lr(1) == 1e-4 + 5e-4 / 12000, tt::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(vjepa1_golden) {
  // §10.15: at step 90,000: EMA 0.9996, LR ≈ 7.50e-5, WD ≈ 0.3656 (horizons 112,500 never reached).
  const Stage s = Recipes::vjepa();
  BOOST_TEST(s.horizon() == 112500u);
  BOOST_TEST(s.ema(90000) == 0.9996, tt::tolerance(1e-9));
  BOOST_TEST(s.lr(90000) == 7.50e-5, tt::tolerance(0.01));
  BOOST_TEST(s.wd(90000) == 0.3656, tt::tolerance(1e-3));
  BOOST_TEST(s.lr(6000) == 2e-4 + 0.5 * (6.25e-4 - 2e-4), tt::tolerance(1e-12));
  BOOST_TEST(s.clip_grad == 10.0);
  // WD clamps at its final value; EMA 2.1 clamps at ema1.
  const CosineWD wd{0.04, 0.4, 1000};
  BOOST_TEST(wd(0) == 0.04, tt::tolerance(1e-12));
  BOOST_TEST(wd(1000) == 0.4, tt::tolerance(1e-12));
  BOOST_TEST(wd(5000) <= 0.4);
  const EmaSchedule e{0.99, 1.0, 100, true};
  BOOST_TEST(e(50) == 0.995, tt::tolerance(1e-12));
  BOOST_TEST(e(1000) == 1.0);
  const WSD w{0.0, 1.0, 0.0, 10, 100, 20};
  BOOST_TEST(w(5) == 0.5);
  BOOST_TEST(w(50) == 1.0);
  BOOST_TEST(w(90) == 0.5, tt::tolerance(1e-12));
  BOOST_TEST(w(100) == 0.0, tt::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(adamw_closed_form_and_groups) {
  nn::ParamLayout L;
  L.add("w", {2, 3}, nn::Init::zeros);  // rank 2: decayed
  L.add("b", {3}, nn::Init::zeros);     // rank 1: not decayed
  nn::ParameterSet<double> P(L), G(L);
  auto* w = P["w"];
  auto* b = P["b"];
  for (int i = 0; i < 6; ++i) w[i] = 0.5 - 0.1 * i;
  for (int i = 0; i < 3; ++i) b[i] = 0.2 * i - 0.1;
  const std::vector<double> w0(w, w + 6), b0(b, b + 3);
  AdamW<double> opt(std::vector<AdamW<double>::Group>{{&P, &G}});
  // Closed form of t steps with a constant gradient g: m_t = (1−β1^t)g, v_t = (1−β2^t)g², so each
  // step moves p by −lr·g/(|g| + ε) after the decay factor.
  const double lr = 1e-2, wd = 0.1, eps = 1e-8;
  for (int t = 1; t <= 3; ++t) {
    for (int i = 0; i < 6; ++i) G["w"][i] = 0.3 * (i + 1) - 1.0;
    for (int i = 0; i < 3; ++i) G["b"][i] = -0.2 * (i + 1);
    opt.step(lr, wd);
  }
  for (int i = 0; i < 6; ++i) {
    const double g = 0.3 * (i + 1) - 1.0;
    double p = w0[i];
    for (int t = 1; t <= 3; ++t) p = p * (1 - lr * wd) - lr * g / (std::abs(g) + eps);
    BOOST_TEST(w[i] == p, tt::tolerance(1e-9));
  }
  for (int i = 0; i < 3; ++i) {
    const double g = -0.2 * (i + 1);
    double p = b0[i];
    for (int t = 1; t <= 3; ++t) p = p - lr * g / (std::abs(g) + eps);  // no decay on rank-1 tensors
    BOOST_TEST(b[i] == p, tt::tolerance(1e-9));
  }
  BOOST_TEST(opt.steps_taken() == 3u);
}

BOOST_AUTO_TEST_CASE(ema_and_clipping) {
  nn::ParamLayout L;
  L.add("x", {4, 4}, nn::Init::zeros);
  nn::ParameterSet<float> online(L), target(L), g1(L), g2(L);
  for (int i = 0; i < 16; ++i) online.data()[i] = static_cast<float>(i), target.data()[i] = 1.0f;
  ema_update(target, online, 0.75);
  for (int i = 0; i < 16; ++i) BOOST_TEST(target.data()[i] == 0.75f + 0.25f * static_cast<float>(i));
  for (int i = 0; i < 16; ++i) g1.data()[i] = 3.0f, g2.data()[i] = 4.0f;  // norm = √(16·9 + 16·16) = 20
  std::vector<nn::ParameterSet<float>*> gs{&g1, &g2};
  BOOST_TEST(grad_norm(gs) == 20.0, tt::tolerance(1e-12));
  const double n = clip_grad_norm(gs, 10.0);
  BOOST_TEST(n == 20.0, tt::tolerance(1e-12));
  BOOST_TEST(grad_norm(gs) == 10.0, tt::tolerance(1e-6));
  BOOST_TEST(clip_grad_norm(gs, 100.0) == grad_norm(gs));  // below the threshold nothing changes
  std::vector<bf16> h(16);
  to_bf16(online.data(), h.data(), 16);
  BOOST_TEST(static_cast<float>(h[5]) == 5.0f);
}
