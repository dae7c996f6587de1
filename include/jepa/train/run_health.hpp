// jepa/train/run_health.hpp — is the run healthy enough to replace its checkpoint?
//
// A checkpoint is the user's last good state: it must not be overwritten by a run that is going
// wrong. A run with an absurd learning rate can take one finite step that drives |w| to 1e10 and
// then skip every later step as non-finite; its weights are still finite, so "refuse non-finite
// weights" alone would write them. CheckpointGuard therefore calls the state healthy only when
//   1. the last step was taken (not skipped for a non-finite loss or gradient: bad_in_row = 0);
//   2. its loss is finite and at most loss_factor × the median loss of the `window` steps before it
//      (once min_history steps exist): an exploding loss;
//   3. the RMS of the encoder's and of the predictor's parameters is at most weight_factor × the RMS
//      they had at the reference point — the last healthy checkpoint, or the start of this process
//      (initialisation or the loaded checkpoint): exploding weights.
// Healthy training moves a parameter set's RMS slowly (AdamW moves each weight by ≈ lr per step and
// weight decay pulls back): the default runs of `train` for vjepa2, vjepa2_1 and vjepa, checkpointing
// every 20 steps, pass every check (docs/testing.md), while a diverged run's 1e10 is far beyond 10×.
// Device backends: the RMS is read from host memory, so the guard is for host parameter sets.
// The guard answers with a reason in words; examples/train prints it and keeps the last healthy
// checkpoint, whose step it reports when the run stops.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include "jepa/core/error.hpp"

namespace jepa::train {

struct HealthRules {
  double loss_factor = 10.0;
  std::size_t window = 20;
  std::size_t min_history = 5;
  double weight_factor = 10.0;
};

class CheckpointGuard {
 public:
  struct Verdict {
    bool healthy = true;
    std::string reason;  // empty when healthy
  };

  explicit CheckpointGuard(HealthRules rules = {}) : rules_(rules) {}

  /// Takes the model's current weights as the reference (after init, or after loading a checkpoint
  /// at step `step`, which is then the last healthy one).
  template <class Model>
  void reset(Model& model, std::uint64_t step = 0) {
    ref_encoder_ = rms(model.encoder_params());
    ref_predictor_ = rms(model.predictor_params());
    last_healthy_ = step;
  }

  /// Judges the state after the trainer's last step.
  template <class Model, class Trainer>
  Verdict assess(Model& model, const Trainer& trainer) const {
    const auto& h = trainer.history();
    if (trainer.state().bad_in_row > 0 || (!h.empty() && h.back().skipped))
      return {false, jepa::detail::cat("step ", h.empty() ? 0 : h.back().step, " was skipped (", trainer.state().bad_in_row,
                                       " non-finite step(s) in a row)")};
    if (!h.empty()) {
      const double loss = h.back().loss;
      if (!std::isfinite(loss)) return {false, jepa::detail::cat("the loss of step ", h.back().step, " is not finite")};
      std::vector<double> prev;
      for (std::size_t i = h.size() - 1; i-- > 0 && prev.size() < rules_.window;)
        if (!h[i].skipped && std::isfinite(h[i].loss)) prev.push_back(h[i].loss);
      if (prev.size() >= rules_.min_history) {
        std::nth_element(prev.begin(), prev.begin() + static_cast<std::ptrdiff_t>(prev.size() / 2), prev.end());
        const double median = prev[prev.size() / 2];
        if (loss > rules_.loss_factor * median)
          return {false, jepa::detail::cat("the loss exploded: ", loss, " at step ", h.back().step, ", more than ",
                                           rules_.loss_factor, "x the median ", median, " of the ", prev.size(),
                                           " steps before")};
      }
    }
    for (auto [now, ref, what] : {std::tuple{rms(model.encoder_params()), ref_encoder_, "encoder"},
                                  std::tuple{rms(model.predictor_params()), ref_predictor_, "predictor"}}) {
      if (!std::isfinite(now))
        return {false, jepa::detail::cat("the ", what, " parameters hold non-finite values")};
      if (ref > 0 && now > rules_.weight_factor * ref)
        return {false, jepa::detail::cat("the ", what, " weights exploded: RMS ", now, ", more than ", rules_.weight_factor,
                                         "x the ", ref, " of the last healthy state (step ", last_healthy_, ")")};
    }
    return {};
  }

  /// Records a healthy checkpoint written at `step`: the new reference.
  template <class Model>
  void accepted(Model& model, std::uint64_t step) {
    reset(model, step);
  }

  /// The step of the last healthy state recorded (0: the start of the run, nothing written yet).
  std::uint64_t last_healthy_step() const { return last_healthy_; }
  const HealthRules& rules() const { return rules_; }

 private:
  template <class Set>
  static double rms(Set& set) {
    const auto* p = set.data();
    const std::size_t n = set.numel();
    double s = 0;
    for (std::size_t i = 0; i < n; ++i) s += static_cast<double>(p[i]) * static_cast<double>(p[i]);
    return n ? std::sqrt(s / static_cast<double>(n)) : 0.0;
  }

  HealthRules rules_;
  double ref_encoder_ = 0, ref_predictor_ = 0;
  std::uint64_t last_healthy_ = 0;
};

}  // namespace jepa::train
