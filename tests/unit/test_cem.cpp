// The CEM planner (planning/cem.hpp): convergence to the minimum of a known quadratic energy, bounds
// and max-norm respected by every candidate and by the plan, the recipe's defaults and gripper
// rounding, one energy call per iteration with all candidates, determinism, and bad input.
#include <boost/test/unit_test.hpp>
#include <cmath>

#include "jepa/planning/cem.hpp"
#include "support/errors.hpp"

using namespace jepa;
using namespace jepa::planning;

namespace {
/// E(a) = Σ_{h,d} w_d (a_hd − c_hd)², counting calls and checking every candidate against the box.
struct Quadratic {
  std::vector<double> c, w;
  const CemConfig* cfg;
  index_t calls = 0, max_batch = 0;
  bool in_bounds = true;
  double worst_norm = 0;
  void operator()(const float* a, index_t N, double* out) {
    ++calls;
    max_batch = std::max(max_batch, N);
    const index_t A = cfg->action_dim(), HA = cfg->horizon * A;
    for (index_t n = 0; n < N; ++n) {
      double e = 0;
      for (index_t i = 0; i < HA; ++i) {
        const index_t d = i % A;
        const double v = a[n * HA + i];
        in_bounds = in_bounds && v >= cfg->lower[d] - 1e-7 && v <= cfg->upper[d] + 1e-7;
        e += w[d] * (v - c[i]) * (v - c[i]);
      }
      if (cfg->max_norm > 0)
        for (index_t h = 0; h < cfg->horizon; ++h) {
          double n2 = 0;
          for (index_t d = 0; d < cfg->norm_dims; ++d) n2 += static_cast<double>(a[n * HA + h * A + d]) * a[n * HA + h * A + d];
          worst_norm = std::max(worst_norm, std::sqrt(n2));
        }
      out[n] = e;
    }
  }
};
}  // namespace

BOOST_AUTO_TEST_CASE(cem_converges_to_the_quadratic_minimum) {
  CemConfig c = CemConfig::box(3, 1.0);
  c.horizon = 2;
  c.iterations = 25;
  Quadratic q{{0.3, -0.5, 0.7, -0.2, 0.1, 0.6}, {1.0, 2.0, 0.5}, &c};
  const CemPlan plan = cem(q, c);
  double err = 0;
  for (std::size_t i = 0; i < plan.mean.size(); ++i) err = std::max(err, std::fabs(plan.mean[i] - q.c[i]));
  BOOST_TEST_MESSAGE("max |mean - minimiser| = " << err << ", final elite energy " << plan.elite_energy.back());
  BOOST_TEST(err < 0.02);
  BOOST_TEST(q.calls == 25);  // one batched call per iteration
  BOOST_TEST(q.max_batch == 400);
  BOOST_TEST(plan.evaluations == 25 * 400);
  BOOST_TEST(plan.elite_energy.back() < 1e-3);
  BOOST_TEST(plan.elite_energy.front() > 10 * plan.elite_energy.back());
  BOOST_TEST(q.in_bounds);
  // Deterministic in (config, call); another call draws other samples.
  Quadratic q2{q.c, q.w, &c};
  BOOST_TEST(cem(q2, c).mean == plan.mean);
  BOOST_TEST(cem(q2, c, 1).mean != plan.mean);
}

BOOST_AUTO_TEST_CASE(cem_respects_bounds_and_max_norm) {
  // Minimiser outside the box: the plan sits on the box face, and no candidate ever leaves the box.
  CemConfig c = CemConfig::box(2, 0.05);
  c.iterations = 15;
  Quadratic q{{0.2, -0.01, -0.3, 0.0}, {1.0, 1.0}, &c};
  const CemPlan plan = cem(q, c);
  BOOST_TEST(q.in_bounds);
  for (std::size_t i = 0; i < plan.mean.size(); ++i) BOOST_TEST(std::fabs(plan.mean[i]) <= 0.05 + 1e-12);
  BOOST_TEST(plan.mean[0] > 0.049);
  BOOST_TEST(plan.mean[2] < -0.049);
  BOOST_TEST(std::fabs(plan.mean[1] + 0.01) < 0.005);
  // With a max-norm of 0.04 over both dimensions, every candidate and the plan stay in the ball.
  c.max_norm = 0.04;
  c.norm_dims = 2;
  Quadratic qb{{0.2, 0.2, 0.2, 0.2}, {1.0, 1.0}, &c};
  const CemPlan pb = cem(qb, c);
  BOOST_TEST(qb.worst_norm <= 0.04 + 1e-6);
  for (index_t h = 0; h < 2; ++h) {
    const double n = std::hypot(pb.mean[h * 2], pb.mean[h * 2 + 1]);
    BOOST_TEST(n <= 0.04 + 1e-9);
    BOOST_TEST(n > 0.039);  // pushed against the ball, along the diagonal
    BOOST_TEST(std::fabs(pb.mean[h * 2] - pb.mean[h * 2 + 1]) < 0.003);
  }
}

BOOST_AUTO_TEST_CASE(cem_recipe_defaults_and_gripper_rounding) {
  const CemConfig c = CemConfig::vjepa2_ac();
  BOOST_TEST(c.horizon == 2);
  BOOST_TEST(c.samples == 400);
  BOOST_TEST(c.topk == 10);
  BOOST_TEST(c.iterations == 10);
  BOOST_TEST(c.momentum_mean == 0.15);
  BOOST_TEST(c.momentum_std == 0.15);
  BOOST_TEST(c.upper[0] == 0.05);
  BOOST_TEST(c.upper[3] == 0.75);
  BOOST_TEST(c.init_std[3] == 1.0);
  // Gripper minimiser 0.1 < 0.25: the plan's gripper command is zeroed; xyz converge inside ±0.05.
  Quadratic q{{0.02, -0.03, 0.01, 0.1, 0.02, -0.03, 0.01, 0.1}, {1.0, 1.0, 1.0, 1.0}, &c};
  const CemPlan plan = cem(q, c);
  BOOST_TEST(q.in_bounds);
  BOOST_TEST(plan.mean[3] == 0.0);
  BOOST_TEST(plan.mean[7] == 0.0);
  BOOST_TEST(std::fabs(plan.mean[0] - 0.02) < 0.01);
  BOOST_TEST(plan.action(1).size() == 4u);
  // A gripper minimiser of 0.6 survives the rounding.
  Quadratic q2{{0, 0, 0, 0.6, 0, 0, 0, 0.6}, {1.0, 1.0, 1.0, 1.0}, &c};
  BOOST_TEST(std::fabs(cem(q2, c).mean[3] - 0.6) < 0.1);
}

BOOST_AUTO_TEST_CASE(cem_greedy_baseline_is_one_batch) {
  CemConfig c = CemConfig::box(2, 1.0);
  c.horizon = 1;
  Quadratic q{{0.5, -0.5}, {1.0, 1.0}, &c};
  const CemPlan g = best_of_samples(q, c);
  BOOST_TEST(q.calls == 1);
  BOOST_TEST(g.evaluations == 400);
  BOOST_TEST(q.in_bounds);
  BOOST_TEST(std::hypot(g.mean[0] - 0.5, g.mean[1] + 0.5) < 0.2);  // the best of 400 draws is close
}

BOOST_AUTO_TEST_CASE(cem_bad_input) {
  auto noop = [](const float*, index_t N, double* out) { std::fill(out, out + N, 0.0); };
  CemConfig c = CemConfig::box(2, 1.0);
  c.horizon = 0;
  test::expect_error<ConfigError>([&] { cem(noop, c); }, {"CemConfig.horizon = 0", "must be >= 1"});
  c = CemConfig::box(2, 1.0);
  c.topk = 500;
  test::expect_error<ConfigError>([&] { cem(noop, c); }, {"CemConfig.samples = 400", "topk (500)"});
  c = CemConfig::box(2, 1.0);
  c.topk = 1;
  test::expect_error<ConfigError>([&] { cem(noop, c); }, {"CemConfig.topk = 1"});
  c = CemConfig::box(2, 1.0);
  c.init_std.push_back(1.0);
  test::expect_error<ConfigError>([&] { cem(noop, c); }, {"CemConfig.init_std (size) = 3", "A = 2"});
  c = CemConfig::box(2, 1.0);
  c.lower[1] = 2.0;
  test::expect_error<ConfigError>([&] { cem(noop, c); }, {"CemConfig.lower/upper", "lower <= upper"});
  c = CemConfig{};
  test::expect_error<ConfigError>([&] { cem(noop, c); }, {"CemConfig.lower = 0", "at least one action dimension"});
  c = CemConfig::box(2, 1.0);
  c.max_norm = 0.5;
  test::expect_error<ConfigError>([&] { cem(noop, c); }, {"CemConfig.norm_dims = 0"});
  c = CemConfig::box(2, 1.0);
  auto nan = [](const float*, index_t N, double* out) { std::fill(out, out + N, std::nan("")); };
  test::expect_error<NumericError>([&] { cem(nan, c); }, {"non-finite"});
}
