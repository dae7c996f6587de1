// jepa/planning/cem.hpp — the cross-entropy method over action sequences, as V-JEPA 2-AC plans
// (recipe_facts §6.5), generic over the energy.
//
// The planner searches a Gaussian over action sequences a ∈ R^{H×A} (independent per step and
// dimension), starting from mean μ = init_mean (0) and std σ = init_std. Each iteration:
//   1. draw N = `samples` sequences a = μ + σ·ε, clip each dimension to [lower, upper] and, when
//      max_norm > 0, scale the first `norm_dims` dimensions of each step onto the L2 ball of that radius;
//   2. evaluate the N energies with ONE call of the energy (all candidates of an iteration are one batch);
//   3. take the k = `topk` lowest (ties: lower index first);
//   4. elite mean m and unbiased elite std s (N − 1 = k − 1 denominator);
//   5. μ ← (1 − α_μ)·m + α_μ·μ,  σ ← (1 − α_σ)·s + α_σ·σ   (per-dimension momenta allowed: the recipe
//      gives the gripper its own).
// The plan is the final μ, with |μ_d| < round_below_d set to 0 (the recipe zeroes a gripper
// command below 0.25). μ is a convex combination of in-bound samples (and of the in-bound initial
// mean), so it respects the box and the ball. Receding horizon: execute the plan's first action,
// observe, plan again (planning/reach_env.hpp runs that loop).
// Randomness: Philox stream (seed, call·2^20 + iteration), so a plan is a pure function of
// (config, call index, energy).
//
// Energy contract: energy(const float* actions /*(N, H, A) row-major*/, index_t N, double* out /*(N)*/)
// writes one energy per candidate (lower is better); a non-finite energy ranks last.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "jepa/core/error.hpp"
#include "jepa/core/rng.hpp"
#include "jepa/core/tensor.hpp"

namespace jepa::planning {

struct CemConfig {
  index_t horizon = 2;      // H: the rollout length (`rollout`)
  index_t samples = 400;    // N candidates per iteration
  index_t topk = 10;        // elites
  index_t iterations = 10;  // `cem_steps`
  double momentum_mean = 0.15, momentum_std = 0.15;
  /// Per action dimension (size A each; lower.size() defines A).
  std::vector<double> lower, upper;   // box bounds (samples are clipped)
  std::vector<double> init_mean;      // empty = 0
  std::vector<double> init_std;
  std::vector<double> round_below;    // empty = no rounding; |μ_d| < round_below_d → 0 in the plan
  std::vector<double> dim_momentum_mean, dim_momentum_std;  // empty = the global momenta
  /// Optional L2 max-norm over the first `norm_dims` dimensions of every step (0 = off).
  double max_norm = 0;
  index_t norm_dims = 0;
  std::uint64_t seed = 0;

  index_t action_dim() const { return static_cast<index_t>(lower.size()); }

  /// The V-JEPA 2-AC world-model wrapper's defaults over the searched [dx, dy, dz, dgripper]: H 2,
  /// 400 samples, top 10, 10 iterations, momenta 0.15/0.15 (gripper 0.15/0.15), xyz clipped to
  /// ±maxnorm with initial std maxnorm, gripper clipped to ±0.75 with initial std 1, a gripper
  /// command below 0.25 zeroed.
  static CemConfig vjepa2_ac(double maxnorm = 0.05) {
    CemConfig c;
    c.lower = {-maxnorm, -maxnorm, -maxnorm, -0.75};
    c.upper = {maxnorm, maxnorm, maxnorm, 0.75};
    c.init_std = {maxnorm, maxnorm, maxnorm, 1.0};
    c.round_below = {0, 0, 0, 0.25};
    c.dim_momentum_mean = {0.15, 0.15, 0.15, 0.15};
    c.dim_momentum_std = {0.15, 0.15, 0.15, 0.15};
    return c;
  }
  /// A dimensions, each in [−bound, bound] with initial std `bound` (the recipe's translation part),
  /// otherwise the wrapper defaults.
  static CemConfig box(index_t A, double bound) {
    CemConfig c;
    c.lower.assign(static_cast<std::size_t>(A), -bound);
    c.upper.assign(static_cast<std::size_t>(A), bound);
    c.init_std.assign(static_cast<std::size_t>(A), bound);
    return c;
  }

  void validate() const {
    const index_t A = action_dim();
    check_field(horizon >= 1, "CemConfig.horizon", horizon, "the planning horizon must be >= 1 step");
    check_field(A >= 1, "CemConfig.lower", A, "give the bounds of at least one action dimension (lower/upper)");
    check_field(topk >= 2, "CemConfig.topk", topk, "needs >= 2 elites (their unbiased std divides by topk - 1)");
    check_field(samples >= topk, "CemConfig.samples", samples, jepa::detail::cat("must be >= topk (", topk, ")"));
    check_field(iterations >= 1, "CemConfig.iterations", iterations, "must be >= 1");
    check_field(momentum_mean >= 0 && momentum_mean < 1, "CemConfig.momentum_mean", momentum_mean, "must be in [0, 1)");
    check_field(momentum_std >= 0 && momentum_std < 1, "CemConfig.momentum_std", momentum_std, "must be in [0, 1)");
    auto sized = [&](const std::vector<double>& v, const char* name, bool optional) {
      check_field(static_cast<index_t>(v.size()) == A || (optional && v.empty()), name, v.size(),
                  jepa::detail::cat("needs one value per action dimension (A = ", A, ")", optional ? " or none" : ""));
    };
    sized(upper, "CemConfig.upper (size)", false);
    sized(init_std, "CemConfig.init_std (size)", false);
    sized(init_mean, "CemConfig.init_mean (size)", true);
    sized(round_below, "CemConfig.round_below (size)", true);
    sized(dim_momentum_mean, "CemConfig.dim_momentum_mean (size)", true);
    sized(dim_momentum_std, "CemConfig.dim_momentum_std (size)", true);
    for (index_t d = 0; d < A; ++d) {
      check_field(std::isfinite(lower[d]) && std::isfinite(upper[d]) && lower[d] <= upper[d], "CemConfig.lower/upper",
                  jepa::detail::cat("[", lower[d], ", ", upper[d], "] at dimension ", d), "need finite lower <= upper");
      check_field(init_std[d] >= 0 && std::isfinite(init_std[d]), "CemConfig.init_std", init_std[d], "must be finite and >= 0");
      if (!round_below.empty())
        check_field(round_below[d] >= 0 && (round_below[d] == 0 || (lower[d] <= 0 && upper[d] >= 0)),
                    "CemConfig.round_below", round_below[d],
                    jepa::detail::cat("must be >= 0, and > 0 only where 0 lies in the bounds of dimension ", d));
      if (!init_mean.empty())
        check_field(init_mean[d] >= lower[d] && init_mean[d] <= upper[d], "CemConfig.init_mean", init_mean[d],
                    jepa::detail::cat("must lie in the bounds [", lower[d], ", ", upper[d], "] of dimension ", d));
    }
    check_field(max_norm >= 0 && std::isfinite(max_norm), "CemConfig.max_norm", max_norm, "must be finite and >= 0 (0 = off)");
    check_field(max_norm == 0 || (norm_dims >= 1 && norm_dims <= A), "CemConfig.norm_dims", norm_dims,
                jepa::detail::cat("the max-norm needs 1 <= norm_dims <= A = ", A));
  }
};

/// A plan: the final mean sequence (H, A) and what the search saw.
struct CemPlan {
  index_t horizon = 0, action_dim = 0;
  std::vector<double> mean;          // (H, A): the plan (after rounding)
  std::vector<double> std;           // (H, A): the final std
  std::vector<double> best_energy;   // per iteration: the lowest energy of the batch
  std::vector<double> elite_energy;  // per iteration: the mean energy of the elites
  index_t evaluations = 0;           // candidates evaluated
  /// Action h of the plan (A values).
  std::vector<double> action(index_t h = 0) const {
    return std::vector<double>(mean.begin() + h * action_dim, mean.begin() + (h + 1) * action_dim);
  }
};

namespace detail {
/// Clip one step's A values to the box, then onto the max-norm ball.
inline void project(const CemConfig& c, double* a) {
  const index_t A = c.action_dim();
  for (index_t d = 0; d < A; ++d) a[d] = std::clamp(a[d], c.lower[d], c.upper[d]);
  if (c.max_norm > 0) {
    double n2 = 0;
    for (index_t d = 0; d < c.norm_dims; ++d) n2 += a[d] * a[d];
    if (n2 > c.max_norm * c.max_norm) {
      const double s = c.max_norm / std::sqrt(n2);
      for (index_t d = 0; d < c.norm_dims; ++d) a[d] *= s;
    }
  }
}
/// Draws N projected sequences from N(μ, σ²) into out (N, H, A) as float (the model's type) and
/// double (the statistics).
inline void draw(const CemConfig& c, const std::vector<double>& mu, const std::vector<double>& sd, Rng& rng, index_t N,
                 std::vector<double>& cand, std::vector<float>& cand_f) {
  const index_t H = c.horizon, A = c.action_dim(), HA = H * A;
  cand.resize(static_cast<std::size_t>(N * HA));
  cand_f.resize(cand.size());
  for (index_t n = 0; n < N; ++n) {
    double* a = cand.data() + n * HA;
    for (index_t i = 0; i < HA; ++i) a[i] = mu[i] + sd[i] * rng.normal();
    for (index_t h = 0; h < H; ++h) project(c, a + h * A);
  }
  for (std::size_t i = 0; i < cand.size(); ++i) cand_f[i] = static_cast<float>(cand[i]);
}
/// Indices of the k lowest energies (non-finite last; ties by index).
inline std::vector<index_t> lowest(const std::vector<double>& e, index_t k) {
  std::vector<index_t> idx(e.size());
  std::iota(idx.begin(), idx.end(), index_t{0});
  auto key = [&](index_t i) { return std::isfinite(e[i]) ? e[i] : std::numeric_limits<double>::infinity(); };
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](index_t a, index_t b) {
    const double ka = key(a), kb = key(b);
    return ka < kb || (ka == kb && a < b);
  });
  idx.resize(static_cast<std::size_t>(k));
  return idx;
}
template <class Energy>
void evaluate(Energy& energy, const std::vector<float>& cand, index_t N, std::vector<double>& e) {
  e.assign(static_cast<std::size_t>(N), std::numeric_limits<double>::quiet_NaN());
  energy(static_cast<const float*>(cand.data()), N, e.data());
  if (std::none_of(e.begin(), e.end(), [](double v) { return std::isfinite(v); }))
    throw NumericError(jepa::detail::cat("jepa: every one of the ", N, " candidate energies is non-finite"));
}
}  // namespace detail

/// Plans with the cross-entropy method (see the header comment). `call` keys the random stream (the
/// step index of a closed loop), so consecutive plans draw different samples.
template <class Energy>
CemPlan cem(Energy&& energy, const CemConfig& c, std::uint64_t call = 0) {
  c.validate();
  const index_t H = c.horizon, A = c.action_dim(), HA = H * A, N = c.samples, K = c.topk;
  std::vector<double> mu(static_cast<std::size_t>(HA)), sd(static_cast<std::size_t>(HA)), e, cand;
  std::vector<float> cand_f;
  for (index_t h = 0; h < H; ++h)
    for (index_t d = 0; d < A; ++d) {
      mu[h * A + d] = c.init_mean.empty() ? 0.0 : c.init_mean[d];
      sd[h * A + d] = c.init_std[d];
    }
  // The initial mean must respect the ball too (the box is checked by validate()).
  for (index_t h = 0; h < H; ++h) detail::project(c, mu.data() + h * A);
  CemPlan plan;
  plan.horizon = H, plan.action_dim = A;
  for (index_t it = 0; it < c.iterations; ++it) {
    Rng rng(c.seed, (call << 20) + static_cast<std::uint64_t>(it));
    detail::draw(c, mu, sd, rng, N, cand, cand_f);
    detail::evaluate(energy, cand_f, N, e);
    plan.evaluations += N;
    const auto elite = detail::lowest(e, K);
    plan.best_energy.push_back(e[elite[0]]);
    double em = 0;
    for (index_t i : elite) em += e[i];
    plan.elite_energy.push_back(em / static_cast<double>(K));
    for (index_t h = 0; h < H; ++h)
      for (index_t d = 0; d < A; ++d) {
        const index_t j = h * A + d;
        double m = 0;
        for (index_t i : elite) m += cand[i * HA + j];
        m /= static_cast<double>(K);
        double v = 0;
        for (index_t i : elite) v += (cand[i * HA + j] - m) * (cand[i * HA + j] - m);
        const double s = std::sqrt(v / static_cast<double>(K - 1));
        const double am = c.dim_momentum_mean.empty() ? c.momentum_mean : c.dim_momentum_mean[d];
        const double as = c.dim_momentum_std.empty() ? c.momentum_std : c.dim_momentum_std[d];
        mu[j] = (1 - am) * m + am * mu[j];
        sd[j] = (1 - as) * s + as * sd[j];
      }
  }
  plan.mean = mu;
  plan.std = sd;
  if (!c.round_below.empty())
    for (index_t h = 0; h < H; ++h)
      for (index_t d = 0; d < A; ++d)
        if (std::fabs(plan.mean[h * A + d]) < c.round_below[d]) plan.mean[h * A + d] = 0;
  return plan;
}

/// The greedy baseline: one batch of `c.samples` sequences from the initial distribution (same
/// clipping), and the one of lowest energy. With c.horizon = 1 this is "choose the action that
/// minimises the one-step predicted energy among the candidates".
template <class Energy>
CemPlan best_of_samples(Energy&& energy, const CemConfig& c, std::uint64_t call = 0) {
  CemConfig one = c;
  one.iterations = 1;
  one.validate();
  const index_t H = c.horizon, A = c.action_dim(), HA = H * A, N = c.samples;
  std::vector<double> mu(static_cast<std::size_t>(HA)), sd(static_cast<std::size_t>(HA)), e, cand;
  std::vector<float> cand_f;
  for (index_t h = 0; h < H; ++h)
    for (index_t d = 0; d < A; ++d) {
      mu[h * A + d] = c.init_mean.empty() ? 0.0 : c.init_mean[d];
      sd[h * A + d] = c.init_std[d];
    }
  Rng rng(c.seed, (call << 20) + 0xB5u);
  detail::draw(c, mu, sd, rng, N, cand, cand_f);
  detail::evaluate(energy, cand_f, N, e);
  const index_t best = detail::lowest(e, 1)[0];
  CemPlan plan;
  plan.horizon = H, plan.action_dim = A, plan.evaluations = N;
  plan.mean.assign(cand.begin() + best * HA, cand.begin() + (best + 1) * HA);
  plan.std.assign(static_cast<std::size_t>(HA), 0.0);
  plan.best_energy = {e[best]};
  plan.elite_energy = {e[best]};
  return plan;
}

}  // namespace jepa::planning
