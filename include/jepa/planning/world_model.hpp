// jepa/planning/world_model.hpp — the V-JEPA 2-AC world model as a planning energy
// (recipe_facts §6.5, the notebooks' world-model wrapper).
//
// Holds the frozen frame encoder, the AC predictor and the robot's known state propagation. With
// the current observation (frame → z_0, robot state s_0) and a goal (an image, encoded the same way,
// or a given embedding z_goal (HW, D)), the energy of an action sequence a_{0:H−1} is
//   s_{k+1} = propagate(s_k, a_k)                                 analytic, as the recipe's pose update
//   ẑ_{k+1} = LN(P([z_0, ẑ_1, …, ẑ_k], a_{0:k}, s_{0:k}))_last    k = 0 … H−1, the predictor re-run on
//                                                                 the whole trajectory each step (no KV cache)
//   E(a)    = mean |ẑ_H − z_goal|                                  over HW·D elements
// energies() evaluates N candidate sequences in one batch per rollout step (the predictor's batch is
// the candidate count), which is what the CEM planner calls once per iteration.
#pragma once

#include <chrono>
#include <cmath>
#include <functional>
#include <optional>
#include <vector>

#include "jepa/models/ac_predictor.hpp"
#include "jepa/models/frame_encoder.hpp"

namespace jepa::planning {

template <class Encoder, class Predictor>
class AcWorldModel {
 public:
  using T = typename Predictor::value_type;
  using Backend = typename Predictor::backend_type;
  /// next (Sd) = the robot state after action a (A) from state s (Sd).
  using Propagate = std::function<void(const T* s, const T* a, T* next)>;

  AcWorldModel(models::FrameEncoder<Encoder>& frames, const Predictor& pred, const T* pred_params, Propagate propagate,
               double ln_eps = 1e-5)
      : frames_(&frames), pred_(&pred), P_(pred_params), propagate_(std::move(propagate)), eps_(ln_eps) {
    if (!pred_params) throw ConfigError("jepa: AcWorldModel needs the predictor's parameters (got null)");
    if (!propagate_) throw ConfigError("jepa: AcWorldModel needs the robot's state propagation function");
    const auto& c = pred.config();
    check_field<ShapeError>(frames.tokens_per_frame() == c.tokens_per_frame(), "AcPredictorConfig.grid_h x grid_w",
                            jepa::detail::cat(c.grid_h, "x", c.grid_w),
                            jepa::detail::cat("must match the encoder's ", frames.grid_h(), "x", frames.grid_w(), " patch grid"));
    check_field<ShapeError>(frames.dim() == c.encoder_dim, "AcPredictorConfig.encoder_dim", c.encoder_dim,
                            jepa::detail::cat("must equal the encoder width ", frames.dim()));
    HW_ = c.tokens_per_frame(), D_ = c.encoder_dim, A_ = c.action_dim, Sd_ = c.state_dim;
  }

  index_t tokens_per_frame() const { return HW_; }
  index_t dim() const { return D_; }
  index_t action_dim() const { return A_; }
  index_t state_dim() const { return Sd_; }

  /// The goal as an image (3, H, W), encoded like every frame.
  void set_goal_image(const T* frame) {
    if (!frame) throw ShapeError("jepa: the goal image is empty (null)");
    goal_ = frames_->encode(frame, 1);
  }
  /// The goal as an embedding (tokens, dim) = (HW, D), e.g. a stored or edited representation.
  void set_goal_embedding(const T* z, index_t tokens, index_t dim) {
    if (!z || tokens == 0 || dim == 0)
      throw ShapeError(jepa::detail::cat("jepa: the goal embedding is empty (", tokens, " tokens of width ", dim,
                                         "); give (", HW_, ", ", D_, ") normalised features"));
    if (tokens != HW_ || dim != D_)
      throw ShapeError(jepa::detail::cat("jepa: the goal embedding has shape (", tokens, ", ", dim, "); this world model needs (",
                                         HW_, ", ", D_, ")"));
    goal_.assign(z, z + tokens * dim);
  }
  bool has_goal() const { return !goal_.empty(); }
  const std::vector<T>& goal() const { return goal_; }

  /// The current observation: a frame (3, H, W) and the robot state (Sd).
  void observe(const T* frame, const T* state) {
    if (!frame || !state) throw ShapeError("jepa: AcWorldModel::observe: the frame or the state is empty (null)");
    cur_ = frames_->encode(frame, 1);
    s0_.assign(state, state + Sd_);
  }
  void observe_embedding(const T* z, const T* state) {
    if (!z || !state) throw ShapeError("jepa: AcWorldModel::observe_embedding: the embedding or the state is empty (null)");
    cur_.assign(z, z + HW_ * D_);
    s0_.assign(state, state + Sd_);
  }
  const std::vector<T>& current() const { return cur_; }

  /// E for N candidate sequences (N, H, A) into out (N). One predictor batch of N per rollout step.
  void energies(const float* actions, index_t N, index_t H, double* out) {
    if (H < 1) fail_field("planning horizon H", H, "must be >= 1");
    if (N < 1) fail_field<ShapeError>("candidates N", N, "must be >= 1");
    if (goal_.empty()) throw ConfigError("jepa: AcWorldModel has no goal: call set_goal_image or set_goal_embedding first");
    if (cur_.empty()) throw ConfigError("jepa: AcWorldModel has no observation: call observe first");
    const auto t0 = std::chrono::steady_clock::now();
    const index_t F = HW_ * D_;
    if (!st_ || st_->batch() != N || st_->max_steps() < H) st_.emplace(pred_->make_state(models::Mode::inference, N, H));
    zhat_.resize(static_cast<std::size_t>(H * N * F));
    states_.resize(static_cast<std::size_t>(N * H * Sd_));
    acts_.resize(static_cast<std::size_t>(N * H * A_));
    // Candidate actions in the model's type, and the analytically propagated states s_0 … s_{H−1}.
    for (index_t i = 0; i < N * H * A_; ++i) acts_[i] = static_cast<T>(actions[i]);
    for (index_t n = 0; n < N; ++n) {
      T* s = states_.data() + n * H * Sd_;
      std::copy(s0_.begin(), s0_.end(), s);
      for (index_t k = 0; k + 1 < H; ++k) propagate_(s + k * Sd_, acts_.data() + (n * H + k) * A_, s + (k + 1) * Sd_);
    }
    for (index_t k = 0; k < H; ++k) {
      const index_t Tn = k + 1;
      zin_.resize(static_cast<std::size_t>(N * Tn * F));
      ain_.resize(static_cast<std::size_t>(N * Tn * A_));
      sin_.resize(static_cast<std::size_t>(N * Tn * Sd_));
      JEPA_OMP(parallel for schedule(static) if (N * Tn * F > 65536))
      for (index_t n = 0; n < N; ++n) {
        T* z = zin_.data() + n * Tn * F;
        std::copy(cur_.begin(), cur_.end(), z);
        for (index_t j = 1; j <= k; ++j)
          std::copy_n(zhat_.data() + ((j - 1) * N + n) * F, F, z + j * F);
        std::copy_n(acts_.data() + n * H * A_, Tn * A_, ain_.data() + n * Tn * A_);
        std::copy_n(states_.data() + n * H * Sd_, Tn * Sd_, sin_.data() + n * Tn * Sd_);
      }
      pred_->forward(P_, TensorView<const T, 3>(zin_.data(), {N, Tn * HW_, D_}), TensorView<const T, 3>(ain_.data(), {N, Tn, A_}),
                     TensorView<const T, 3>(sin_.data(), {N, Tn, Sd_}), *st_);
      const T* o = pred_->output(*st_).data();
      raw_.resize(static_cast<std::size_t>(N * F));
      for (index_t n = 0; n < N; ++n) std::copy_n(o + (n * Tn + k) * F, F, raw_.data() + n * F);  // the last step
      Backend::template layer_norm_forward<T>(raw_.data(), nullptr, nullptr, zhat_.data() + k * N * F, nullptr, nullptr,
                                              N * HW_, D_, static_cast<T>(eps_));
    }
    const T* zH = zhat_.data() + (H - 1) * N * F;
    JEPA_OMP(parallel for schedule(static) if (N * F > 65536))
    for (index_t n = 0; n < N; ++n) {
      double e = 0;
      for (index_t i = 0; i < F; ++i) e += std::fabs(static_cast<double>(zH[n * F + i]) - static_cast<double>(goal_[i]));
      out[n] = e / static_cast<double>(F);
    }
    seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    evaluations_ += N;
  }

  /// The energy callable the CEM planner takes, for horizon H.
  auto energy(index_t H) {
    return [this, H](const float* a, index_t N, double* out) { energies(a, N, H, out); };
  }
  /// E of the observation itself against the goal (how far the world model thinks we are).
  double current_energy() const {
    if (goal_.empty() || cur_.empty()) throw ConfigError("jepa: AcWorldModel::current_energy needs a goal and an observation");
    double e = 0;
    for (std::size_t i = 0; i < goal_.size(); ++i) e += std::fabs(static_cast<double>(cur_[i]) - static_cast<double>(goal_[i]));
    return e / static_cast<double>(goal_.size());
  }
  /// Wall time spent in energies() and the number of candidates evaluated, since the last reset.
  double seconds() const { return seconds_; }
  index_t evaluations() const { return evaluations_; }
  void reset_timer() { seconds_ = 0, evaluations_ = 0; }

 private:
  models::FrameEncoder<Encoder>* frames_;
  const Predictor* pred_;
  const T* P_;
  Propagate propagate_;
  double eps_;
  index_t HW_ = 0, D_ = 0, A_ = 0, Sd_ = 0;
  std::vector<T> goal_, cur_, s0_, zhat_, states_, acts_, zin_, ain_, sin_, raw_;
  std::optional<typename Predictor::State> st_;
  double seconds_ = 0;
  index_t evaluations_ = 0;
};

}  // namespace jepa::planning
