// jepa/planning/reach_env.hpp — an embedded planar manipulation task for V-JEPA 2-AC: a 2-link arm
// with a gripper reaches a goal seen only as an image, rendered to frames, with no download.
//
// Scene (all coordinates normalised to the [0, 1]² frame, y down): a table; a static block (one
// colour per episode) somewhere on it; a 2-link arm whose base sits at the bottom centre, with
// link lengths l1, l2, and a two-finger gripper at the end effector p = (x, y). The arm's joints
// follow p by analytic inverse kinematics with the elbow always on the same side, so the whole arm —
// not just the gripper — moves with p and every frame is a smooth function of p (soft, anti-aliased
// edges: coverage = clamp(½ − signed distance in pixels, 0, 1)). The gripper carries a lamp: the table
// is lit by a Gaussian pool of light around p (`lamp_sigma`). Without it, the L1 distance between the
// frames (or their features) of two arm poses has long valleys along arcs around the base, where most
// of the arm's pixels barely change; the light makes every patch depend on p, and the energy of the
// frozen features tracks the distance to the goal far better (docs/results.md).
//
// Dynamics (`dynamics`), actions a ∈ [−1, 1]² (clipped per axis), W = the workspace box, m = max_step:
//   position   p_{t+1} = clip_W(p_t + m·a_t)
//              the action sets the displacement: the next frame depends on a_t, and the task is
//              solvable by a greedy one-step planner.
//   inertial   p_{t+1} = clip_W(p_t + v_t)                     explicit Euler, a point mass with
//              v_{t+1} = β·v'_t + m·a_t                          damping β (`damping`), force m·a_t
//              where v'_t = v_t with the component on an axis where p_t + v_t left W (and was clipped)
//              set to 0: the wall stops the motion into it (an inelastic stop), the force still acts.
//              The next frame does not depend on the current action at all — a one-step energy
//              carries no signal about a_t — while p_{t+2} = p_t + (1 + β)·v_t + m·a_t (away from the
//              walls) depends on a_t alone, so a horizon-2 planner with a terminal energy can drive
//              p_{t+2} onto the goal (deadbeat control) without any a_0 / a_1 ambiguity.
//              The speed per axis is bounded by the terminal speed v_max = m/(1 − β) (|v_0| ≤ v_max).
//
// Robot state (what the AC predictor sees, like the recipe's end-effector pose and its deltas, here in
// normalised units), c = centre of the workspace box, r = `state_scale`:
//   position   s = (p − c)/r                                    2-D
//   inertial   s = ((p − c)/r, v/v_max)                         4-D: both parts in [−1, 1] over W
// and the known state propagation used by the planner, propagate(s, a), maps s back to (p, v), takes
// one step of the dynamics above and maps the result to a state again.
//
// Data: trajectory i (a pure function of (seed, i)) starts at a uniform random p with a random
// block (inertial: and a uniform random velocity in [−v_max, v_max]², so the data cover moving
// starts) and takes T−1 random actions a ~ N(0, 1) clipped to [−1, 1] per axis (the CEM planner's
// initial sampling distribution). Episode i of the evaluation draws a start and a goal position at
// distance ≥ `min_goal_distance`, same block, starting at rest (v = 0); success = final
// ‖p − p_goal‖ < `success_radius`.
// Frames are (3, H, W) floats normalised with the ImageNet mean and std, as the encoder expects. The
// velocity is not visible in a single frame; the state tokens carry it.
#pragma once

#include "jepa/config.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "jepa/core/error.hpp"
#include "jepa/core/rng.hpp"
#include "jepa/core/tensor.hpp"
#include "jepa/data/synthetic_video.hpp"

namespace jepa::planning {

/// How an action moves the end effector (see the header comment).
enum class ReachDynamics {
  position,  ///< p_{t+1} = clip_W(p_t + max_step·a_t)
  inertial,  ///< p_{t+1} = clip_W(p_t + v_t),  v_{t+1} = β·v_t + max_step·a_t
};

inline const char* to_string(ReachDynamics d) {
  switch (d) {
    case ReachDynamics::position: return "position";
    case ReachDynamics::inertial: return "inertial";
  }
  return "unknown";
}
inline std::ostream& operator<<(std::ostream& os, ReachDynamics d) { return os << to_string(d); }
/// "position" | "inertial"; anything else is a ConfigError naming the field.
inline ReachDynamics reach_dynamics(std::string_view name, std::string_view field = "ReachEnvConfig.dynamics") {
  if (name == "position") return ReachDynamics::position;
  if (name == "inertial") return ReachDynamics::inertial;
  fail_field(field, jepa::detail::cat("'", name, "'"), "must be position | inertial");
}

struct ReachEnvConfig {
  index_t size = 64;                 // frames are size × size
  ReachDynamics dynamics = ReachDynamics::position;
  /// position: displacement per unit action, per axis (normalised units); inertial: the velocity
  /// change per unit action (the force m·a).
  double max_step = 0.075;
  /// β of the inertial dynamics: the fraction of the velocity kept per step (0 = the velocity is the
  /// last force alone). Unused by the position dynamics.
  double damping = 0.5;
  double x_min = 0.2, x_max = 0.8;   // end-effector workspace
  double y_min = 0.2, y_max = 0.7;
  double base_x = 0.5, base_y = 0.97;
  double link1 = 0.45, link2 = 0.40;
  double state_scale = 0.3;          // r in s = (p − c)/r
  bool block = true;                 // draw the static block
  /// The gripper carries a lamp: the table is lit by a Gaussian pool of light of this width around
  /// the end effector (0 = off). It gives every patch of the frame a smooth function of the
  /// end-effector position (see the header comment).
  double lamp_sigma = 0.2;
  double lamp_gain = 0.45;
  double min_goal_distance = 0.25;   // evaluation episodes
  double success_radius = 0.05;
  std::uint64_t seed = 0;

  void validate() const {
    check_field(size >= 16, "ReachEnvConfig.size", size, "frames must be at least 16x16");
    check_field(dynamics == ReachDynamics::position || dynamics == ReachDynamics::inertial, "ReachEnvConfig.dynamics",
                static_cast<int>(dynamics), "must be position | inertial");
    // β < 1 keeps the terminal speed max_step/(1 − β) finite (β = 1 would be an undamped mass).
    check_field(damping >= 0 && damping < 1, "ReachEnvConfig.damping", damping, "must be in [0, 1)");
    check_field(max_step > 0 && max_step < 0.5, "ReachEnvConfig.max_step", max_step, "must be in (0, 0.5)");
    check_field(x_min < x_max && y_min < y_max && x_min >= 0 && y_min >= 0 && x_max <= 1 && y_max <= 1,
                "ReachEnvConfig workspace", jepa::detail::cat("[", x_min, ", ", x_max, "] x [", y_min, ", ", y_max, "]"),
                "needs 0 <= min < max <= 1 on both axes");
    check_field(link1 > 0 && link2 > 0, "ReachEnvConfig.link1/link2", jepa::detail::cat(link1, "/", link2), "must be > 0");
    // Every workspace point must be reachable without passing a singularity.
    const double far = std::max({std::hypot(x_min - base_x, y_min - base_y), std::hypot(x_max - base_x, y_min - base_y),
                                 std::hypot(x_min - base_x, y_max - base_y), std::hypot(x_max - base_x, y_max - base_y)});
    const double cx = std::clamp(base_x, x_min, x_max), cy = std::clamp(base_y, y_min, y_max);
    const double near = std::hypot(cx - base_x, cy - base_y);
    check_field(far < link1 + link2 && near > std::fabs(link1 - link2), "ReachEnvConfig.link1/link2",
                jepa::detail::cat(link1, "/", link2),
                jepa::detail::cat("the arm must reach the whole workspace (distances ", near, " .. ", far, " from the base)"));
    check_field(state_scale > 0, "ReachEnvConfig.state_scale", state_scale, "must be > 0");
    check_field(success_radius > 0, "ReachEnvConfig.success_radius", success_radius, "must be > 0");
    check_field(min_goal_distance >= 0 && min_goal_distance < std::hypot(x_max - x_min, y_max - y_min),
                "ReachEnvConfig.min_goal_distance", min_goal_distance, "must fit in the workspace");
  }
};

/// Everything that determines a frame.
struct ReachScene {
  double x = 0.5, y = 0.5;              // end effector
  double block_x = 0.3, block_y = 0.3;  // block centre
  double block_angle = 0;
  int block_colour = 0;
  double vx = 0, vy = 0;                // end-effector velocity (inertial dynamics; 0 otherwise)
};

struct ReachEpisode {
  ReachScene start, goal;
};

class ReachEnv {
 public:
  static constexpr index_t action_dim = 2;
  static constexpr index_t max_state_dim = 4;  // room for either task's state (fixed-size buffers)
  static constexpr index_t channels = 3;

  explicit ReachEnv(const ReachEnvConfig& c) : cfg_(c) {
    cfg_.validate();
    // The table: warm grey with faint fixed stripes (a mat) and a vignette; the same in every frame.
    const index_t S = cfg_.size;
    const std::size_t plane = static_cast<std::size_t>(S * S);
    table_.resize(3 * plane);
    for (index_t iy = 0; iy < S; ++iy)
      for (index_t ix = 0; ix < S; ++ix) {
        const double u = (static_cast<double>(ix) + 0.5) / static_cast<double>(S);
        const double v = (static_cast<double>(iy) + 0.5) / static_cast<double>(S);
        const double stripe = 0.03 * std::sin(u * 37.0 + 2.0 * v) + 0.02 * std::sin(v * 23.0 - u * 5.0);
        const double vig = 0.08 * ((u - 0.5) * (u - 0.5) + (v - 0.5) * (v - 0.5));
        const std::size_t pix = static_cast<std::size_t>(iy * S + ix);
        table_[pix] = 0.80 + stripe - vig;
        table_[plane + pix] = 0.76 + stripe - vig;
        table_[2 * plane + pix] = 0.68 + 0.5 * stripe - vig;
      }
  }
  const ReachEnvConfig& config() const { return cfg_; }
  index_t size() const { return cfg_.size; }
  bool inertial() const { return cfg_.dynamics == ReachDynamics::inertial; }
  /// 2 (position: s = (p − c)/r) or 4 (inertial: s = ((p − c)/r, v/v_max)).
  index_t state_dim() const { return inertial() ? 4 : 2; }
  /// The inertial terminal speed per axis, v_max = m/(1 − β): the fixed point of v ← β·v + m under
  /// full force; |v| never exceeds it from |v_0| ≤ v_max. It scales the velocity part of the state.
  double max_speed() const { return cfg_.max_step / (1.0 - cfg_.damping); }

  /// One step of the dynamics (header comment); the action is clipped to [−1, 1]² and the end
  /// effector to the workspace.
  ReachScene step(ReachScene s, const double* a) const {
    const double ax = std::clamp(a[0], -1.0, 1.0), ay = std::clamp(a[1], -1.0, 1.0);
    if (!inertial()) {
      s.x = std::clamp(s.x + cfg_.max_step * ax, cfg_.x_min, cfg_.x_max);
      s.y = std::clamp(s.y + cfg_.max_step * ay, cfg_.y_min, cfg_.y_max);
      return s;
    }
    // p_{t+1} = clip_W(p_t + v_t); where the clip acted, the wall took that axis's momentum (v' = 0).
    const double nx = s.x + s.vx, ny = s.y + s.vy;
    const double px = std::clamp(nx, cfg_.x_min, cfg_.x_max), py = std::clamp(ny, cfg_.y_min, cfg_.y_max);
    const double vx = px == nx ? s.vx : 0.0, vy = py == ny ? s.vy : 0.0;
    s.x = px, s.y = py;
    // v_{t+1} = β·v'_t + m·a_t.
    s.vx = cfg_.damping * vx + cfg_.max_step * ax;
    s.vy = cfg_.damping * vy + cfg_.max_step * ay;
    return s;
  }
  /// The robot state: s = (p − c)/r, and for the inertial dynamics also v/v_max (state_dim() values).
  template <class T>
  void state(const ReachScene& s, T* out) const {
    out[0] = static_cast<T>((s.x - cx()) / cfg_.state_scale);
    out[1] = static_cast<T>((s.y - cy()) / cfg_.state_scale);
    if (inertial()) {
      out[2] = static_cast<T>(s.vx / max_speed());
      out[3] = static_cast<T>(s.vy / max_speed());
    }
  }
  /// The known state propagation the planner uses (the recipe's analytic pose update): the state
  /// mapped back to (p, v), one step(), mapped to a state again.
  template <class T>
  void propagate(const T* s, const T* a, T* next) const {
    ReachScene sc;
    sc.x = cx() + cfg_.state_scale * static_cast<double>(s[0]);
    sc.y = cy() + cfg_.state_scale * static_cast<double>(s[1]);
    if (inertial()) {
      sc.vx = max_speed() * static_cast<double>(s[2]);
      sc.vy = max_speed() * static_cast<double>(s[3]);
    }
    const double ad[2] = {static_cast<double>(a[0]), static_cast<double>(a[1])};
    state(step(sc, ad), next);
  }
  static double distance(const ReachScene& a, const ReachScene& b) { return std::hypot(a.x - b.x, a.y - b.y); }
  bool success(const ReachScene& s, const ReachScene& goal) const { return distance(s, goal) < cfg_.success_radius; }

  /// A random scene: uniform end effector in the workspace, a random block.
  ReachScene random_scene(Rng& rng) const {
    ReachScene s;
    s.x = rng.uniform(cfg_.x_min, cfg_.x_max);
    s.y = rng.uniform(cfg_.y_min, cfg_.y_max);
    s.block_x = rng.uniform(0.12, 0.88);
    s.block_y = rng.uniform(0.1, 0.55);
    s.block_angle = rng.uniform(0.0, 1.5707963267948966);
    s.block_colour = static_cast<int>(rng.uniform_int(3));
    return s;
  }

  /// Evaluation episode i: start and goal end effector at distance ≥ min_goal_distance, same block,
  /// both at rest.
  ReachEpisode episode(std::uint64_t i) const {
    Rng rng(cfg_.seed ^ 0x5EEDu, (1ull << 40) + i);
    ReachEpisode e;
    e.start = random_scene(rng);
    e.goal = e.start;
    do {
      e.goal.x = rng.uniform(cfg_.x_min, cfg_.x_max);
      e.goal.y = rng.uniform(cfg_.y_min, cfg_.y_max);
    } while (distance(e.start, e.goal) < cfg_.min_goal_distance);
    return e;
  }

  /// Training trajectory i: T frames (T,3,H,W), T−1 actions (T−1,2), T states (T,state_dim()).
  void trajectory(std::uint64_t i, index_t T, float* frames, float* actions, float* states) const {
    Rng rng(cfg_.seed, i);
    ReachScene s = random_scene(rng);
    if (inertial()) {  // a moving start (drawn after the scene, so the position task's stream is unchanged)
      s.vx = rng.uniform(-max_speed(), max_speed());
      s.vy = rng.uniform(-max_speed(), max_speed());
    }
    const std::size_t F = static_cast<std::size_t>(channels * cfg_.size * cfg_.size);
    const index_t Sd = state_dim();
    for (index_t t = 0; t < T; ++t) {
      render(s, frames + static_cast<std::size_t>(t) * F);
      state(s, states + t * Sd);
      if (t + 1 < T) {
        double a[2];
        for (double& v : a) v = std::clamp(rng.normal(), -1.0, 1.0);
        actions[t * action_dim] = static_cast<float>(a[0]);
        actions[t * action_dim + 1] = static_cast<float>(a[1]);
        s = step(s, a);
      }
    }
  }

  /// Renders a scene as RGB in [0, 1]: out (3, H, W).
  void render_rgb(const ReachScene& s, float* out) const {
    const index_t S = cfg_.size;
    const double px = 1.0 / static_cast<double>(S);
    // Inverse kinematics, elbow on the left of the base→hand line (seen from the base).
    const double dx = s.x - cfg_.base_x, dy = s.y - cfg_.base_y, d = std::hypot(dx, dy);
    const double l1 = cfg_.link1, l2 = cfg_.link2;
    const double a = (l1 * l1 - l2 * l2 + d * d) / (2 * d), h = std::sqrt(std::max(0.0, l1 * l1 - a * a));
    const double ex = cfg_.base_x + a * dx / d + h * dy / d, ey = cfg_.base_y + a * dy / d - h * dx / d;
    // Gripper: two fingers along the forearm direction, opening across it.
    const double fx = (s.x - ex) / l2, fy = (s.y - ey) / l2;  // unit forearm direction
    const double nx = -fy, ny = fx;
    const double open = 0.035, flen = 0.05;
    static constexpr std::array<std::array<float, 3>, 3> block_rgb{{{0.20f, 0.62f, 0.30f}, {0.25f, 0.45f, 0.80f}, {0.85f, 0.55f, 0.15f}}};
    const std::size_t plane = static_cast<std::size_t>(S * S);
    const double ca = std::cos(s.block_angle), sa = std::sin(s.block_angle);
    for (index_t iy = 0; iy < S; ++iy)
      for (index_t ix = 0; ix < S; ++ix) {
        const double u = (static_cast<double>(ix) + 0.5) * px, v = (static_cast<double>(iy) + 0.5) * px;
        const std::size_t pix = static_cast<std::size_t>(iy * S + ix);
        std::array<double, 3> c{table_[pix], table_[plane + pix], table_[2 * plane + pix]};
        if (cfg_.lamp_sigma > 0) {
          const double r2 = (u - s.x) * (u - s.x) + (v - s.y) * (v - s.y);
          const double light = 0.7 + cfg_.lamp_gain * std::exp(-0.5 * r2 / (cfg_.lamp_sigma * cfg_.lamp_sigma));
          for (int k = 0; k < 3; ++k) c[k] *= light;
        }
        auto paint = [&](double sd, const std::array<double, 3>& col) {
          const double cov = std::clamp(0.5 - sd / px, 0.0, 1.0);
          for (int k = 0; k < 3; ++k) c[k] = (1 - cov) * c[k] + cov * col[k];
        };
        if (cfg_.block) {
          const double qu = (u - s.block_x) * ca + (v - s.block_y) * sa, qv = -(u - s.block_x) * sa + (v - s.block_y) * ca;
          const auto& bc = block_rgb[static_cast<std::size_t>(s.block_colour % 3)];
          paint(box_sd(qu, qv, 0.055, 0.055), {bc[0], bc[1], bc[2]});
        }
        // Shadow of the arm (offset), then links, joints and the gripper.
        paint(segment_sd(u - 0.012, v - 0.012, cfg_.base_x, cfg_.base_y, ex, ey) - 0.03, {0.55, 0.52, 0.47});
        paint(segment_sd(u - 0.012, v - 0.012, ex, ey, s.x, s.y) - 0.025, {0.55, 0.52, 0.47});
        paint(segment_sd(u, v, cfg_.base_x, cfg_.base_y, ex, ey) - 0.03, {0.30, 0.34, 0.45});
        paint(segment_sd(u, v, ex, ey, s.x, s.y) - 0.025, {0.42, 0.47, 0.60});
        paint(std::sqrt((u - cfg_.base_x) * (u - cfg_.base_x) + (v - cfg_.base_y) * (v - cfg_.base_y)) - 0.06, {0.15, 0.15, 0.18});
        paint(std::sqrt((u - ex) * (u - ex) + (v - ey) * (v - ey)) - 0.035, {0.15, 0.15, 0.18});
        // Palm across the forearm, then two fingers.
        paint(segment_sd(u, v, s.x - open * nx, s.y - open * ny, s.x + open * nx, s.y + open * ny) - 0.012, {0.75, 0.15, 0.12});
        for (int side = -1; side <= 1; side += 2) {
          const double bx = s.x + side * open * nx, by = s.y + side * open * ny;
          paint(segment_sd(u, v, bx, by, bx + flen * fx, by + flen * fy) - 0.011, {0.85, 0.20, 0.15});
        }
        for (int k = 0; k < 3; ++k)
          out[static_cast<std::size_t>(k) * plane + pix] = static_cast<float>(std::clamp(c[k], 0.0, 1.0));
      }
  }
  /// Renders a scene normalised for the encoder: out (3, H, W).
  void render(const ReachScene& s, float* out) const {
    render_rgb(s, out);
    const std::size_t plane = static_cast<std::size_t>(cfg_.size * cfg_.size);
    for (int k = 0; k < 3; ++k)
      for (std::size_t i = 0; i < plane; ++i)
        out[k * plane + i] = (out[k * plane + i] - data::kImagenetMean[k]) / data::kImagenetStd[k];
  }
  std::vector<float> render(const ReachScene& s) const {
    std::vector<float> f(static_cast<std::size_t>(channels * cfg_.size * cfg_.size));
    render(s, f.data());
    return f;
  }

 private:
  double cx() const { return 0.5 * (cfg_.x_min + cfg_.x_max); }
  double cy() const { return 0.5 * (cfg_.y_min + cfg_.y_max); }
  /// Distance from (u, v) to the segment (ax, ay)–(bx, by).
  static double segment_sd(double u, double v, double ax, double ay, double bx, double by) {
    const double px = u - ax, py = v - ay, qx = bx - ax, qy = by - ay;
    const double t = std::clamp((px * qx + py * qy) / std::max(qx * qx + qy * qy, 1e-12), 0.0, 1.0);
    const double ex = px - t * qx, ey = py - t * qy;
    return std::sqrt(ex * ex + ey * ey);
  }
  /// Signed distance to an axis-aligned box of half sizes (hx, hy) centred at 0.
  static double box_sd(double u, double v, double hx, double hy) {
    const double qx = std::fabs(u) - hx, qy = std::fabs(v) - hy;
    const double ox = std::max(qx, 0.0), oy = std::max(qy, 0.0);
    return std::sqrt(ox * ox + oy * oy) + std::min(std::max(qx, qy), 0.0);
  }

  ReachEnvConfig cfg_;
  std::vector<double> table_;  // (3, S, S) background
};

/// Random-action trajectories of a ReachEnv as a training source for train::AcTrainer: sample i of
/// the stream is trajectory i (frames (T,3,H,W), actions (T−1,2), states (T,Sd), Sd = env.state_dim()).
struct ReachTrajectories {
  ReachEnv env;
  index_t length = 8;  // frames per trajectory (the recipe's 8)

  index_t frames() const { return length; }
  index_t height() const { return env.size(); }
  index_t width() const { return env.size(); }
  index_t channels() const { return ReachEnv::channels; }
  index_t action_dim() const { return ReachEnv::action_dim; }
  index_t state_dim() const { return env.state_dim(); }
  /// Trajectories [position, position + B) into frames (B,T,3,H,W), actions (B,T−1,2), states (B,T,Sd).
  void fill(std::uint64_t position, index_t B, float* frames, float* actions, float* states) const {
    const index_t T = length, S = env.size(), A = ReachEnv::action_dim, Sd = env.state_dim();
    JEPA_OMP(parallel for schedule(dynamic, 1))
    for (index_t b = 0; b < B; ++b)
      env.trajectory(position + static_cast<std::uint64_t>(b), T, frames + b * T * 3 * S * S, actions + b * (T - 1) * A,
                     states + b * T * Sd);
  }
};

}  // namespace jepa::planning
