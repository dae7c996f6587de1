// jepa/train/cuda_step.cuh — one whole JEPA training step on an NVIDIA GPU, with no host
// synchronisation and no allocation inside the step, replayable as a CUDA graph.
//
// The step is the CPU trainer's (train/trainer.hpp), for one micro-batch on one device:
//   masks   = masking.sample(grid, mask_seed, step, B)            drawn on the host (the same counter
//                                                                 RNG the device mask kernels use)
//   L       = model.enqueue_loss(clip, …)                         target encoder, context encoder,
//                                                                 predictor, losses (models/jepa.hpp)
//   ∇       = model.backward()
//   skip    = !finite(L) ∨ !finite(‖∇‖)                           the trainer's NaN guard, on the device
//   n       ← n + 1                       unless skip             the AdamW counter, kept on the device
//   θ       ← AdamW(θ, ∇; lr(t), wd(t), n) unless skip            (bias corrections of n; clipped to
//                                                                 clip_grad when the stage clips at t)
//   θ̄       ← m(t)·θ̄ + (1 − m(t))·θ       unless skip
// with t = step + 1 within the stage (schedules step before the forward, as on the CPU).
//
// Inputs and outputs of a step go through two pinned host blocks:
//   in   every step-dependent value — the masks of each generator, λ(t), the AdamW scalars (lr, wd;
//        the bias corrections are written on the device from its own counter n), the EMA momentum — written by the host before the step's work is
//        launched, then copied to the device by the step's first operation (one cudaMemcpyAsync);
//   out  the loss values, the gradient norm, the guard flag and n, copied back by its last operation.
// Schedules follow the step number t; the bias corrections follow n, the number of updates actually
// applied, so after a skipped step the two differ by one, exactly as in the CPU trainer.
// Because nothing in the step depends on host values captured at enqueue time except the shapes,
// the whole step can be captured once per shape and replayed: `use_graphs = true` keeps one
// cudaGraphExec per (Kc, Kt) of every generator (the mask lengths change from step to step; each new
// shape runs eagerly once, which also plans its buffers and warms cuBLASLt, and is captured for
// the next time it occurs). run() waits for the step's end only to return its StepResult; enqueue()
// + wait() lets the host draw the next masks while the device works.
//
// What stays on the host: drawing the masks (a few microseconds per sample) and the schedules.
// Image+video mixed batches, gradient accumulation and data-parallel reduction remain the CPU
// trainer's; this class is the single-device step the GPU benchmark and the CUDA parity test run.
#pragma once

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "jepa/backend/cuda/backend.cuh"
#include "jepa/backend/cuda/optim.cuh"
#include "jepa/models/jepa.hpp"
#include "jepa/train/schedules.hpp"

namespace jepa::train {

struct CudaStepConfig {
  backend::cuda::AdamWConfig adamw{};  // β1, β2, ε (the recipe's 0.9, 0.999, 1e-8)
  bool use_graphs = false;             // capture each step shape once and replay it
  /// The recipe's precision on fp32 master weights: GEMMs with bf16 products and bf16 attention
  /// (backend::cuda::Context::set_mixed_bf16), set for the step's work only. false: fp32 throughout
  /// (CPU-close; what the parity test checks tightly).
  bool mixed_bf16 = false;
};

/// What one device step produced (read after the step).
struct CudaStepResult {
  std::uint64_t step = 0;
  double loss = 0, prediction = 0, context = 0, lambda = 0, grad_norm = 0;
  double lr = 0, wd = 0, ema = 0;
  bool skipped = false;     // non-finite loss or gradient: parameters and target left unchanged
  std::uint64_t optimizer_steps = 0;  // AdamW updates applied so far (the bias-correction count n)
  bool replayed = false;    // ran as a replay of a captured graph
  int index_errors = 0;     // bad mask indices seen by the loss kernels (1: outside the grid, 2: a
                            // context token that is also a target); the host validates the masks
                            // it draws, so this stays 0 unless device memory was corrupted
  std::vector<index_t> context_len, target_len;
};

namespace detail {

/// A page-locked host block (cudaMallocHost): the source / destination of the step's copies, which a
/// captured graph reads / writes at replay time.
class PinnedBlock {
 public:
  PinnedBlock() = default;
  explicit PinnedBlock(std::size_t bytes) : bytes_(bytes) {
    if (bytes) JEPA_CUDA_CHECK(cudaMallocHost(&p_, bytes));
  }
  ~PinnedBlock() {
    if (p_) JEPA_CUDA_CHECK_NOTHROW(cudaFreeHost(p_));
  }
  PinnedBlock(const PinnedBlock&) = delete;
  PinnedBlock& operator=(const PinnedBlock&) = delete;
  PinnedBlock& operator=(PinnedBlock&& o) noexcept {
    if (this != &o) {
      if (p_) JEPA_CUDA_CHECK_NOTHROW(cudaFreeHost(p_));
      p_ = std::exchange(o.p_, nullptr);
      bytes_ = std::exchange(o.bytes_, 0);
    }
    return *this;
  }
  std::byte* data() const { return static_cast<std::byte*>(p_); }
  std::size_t bytes() const { return bytes_; }

 private:
  void* p_ = nullptr;
  std::size_t bytes_ = 0;
};

}  // namespace detail

template <class Model>
class CudaStep {
  using T = typename Model::T;
  static_assert(std::is_same_v<T, float>, "jepa: CudaStep trains fp32 master weights (the recipe's setting)");
  static_assert(Model::on_device, "jepa: CudaStep needs a models::Jepa instantiated on backend::Cuda");
  using Cuda = backend::Cuda;

 public:
  /// `stage` gives the schedules (lr, wd, EMA, clipping); `batch` and the geometry fix the clip shape.
  CudaStep(Model& model, Stage stage, index_t batch, models::InputGeometry geometry, CudaStepConfig cfg = {})
      : model_(model), stage_(std::move(stage)), B_(batch), geom_(geometry), cfg_(cfg),
        grid_(model.encoder().grid(geometry)), opt_(make_table(model), cfg.adamw) {
    if (batch < 1) fail_field<ShapeError>("CudaStep batch", batch, "must be >= 1");
    JEPA_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    // The input block: scalars first, then room for every generator's masks at their largest.
    const std::size_t G = model.masking().sample(grid_, model.mask_seed, 0, batch).size();
    in_bytes_ = sizeof(Scalars) + 2 * G * static_cast<std::size_t>(batch * grid_.size()) * sizeof(std::int64_t);
    in_host_ = detail::PinnedBlock(in_bytes_);
    in_dev_ = backend::cuda::DeviceBuffer<std::byte>(in_bytes_);
    out_host_ = detail::PinnedBlock(sizeof(Outputs) + 2 * G * sizeof(double));
    out_dev_ = backend::cuda::DeviceBuffer<std::byte>(out_host_.bytes());
    skip_ = backend::cuda::DeviceBuffer<int>(1);
    adam_t_ = backend::cuda::DeviceBuffer<unsigned long long>(1);
    adam_t_.zero();
    JEPA_CUDA_CHECK(cudaStreamSynchronize(nullptr));
    JEPA_CUDA_CHECK(cudaEventCreateWithFlags(&inputs_read_, cudaEventDisableTiming));
    JEPA_CUDA_CHECK(cudaEventCreateWithFlags(&done_, cudaEventDisableTiming));
  }
  ~CudaStep() {
    for (auto& [k, g] : graphs_) JEPA_CUDA_CHECK_NOTHROW(cudaGraphExecDestroy(g));
    if (inputs_read_) JEPA_CUDA_CHECK_NOTHROW(cudaEventDestroy(inputs_read_));
    if (done_) JEPA_CUDA_CHECK_NOTHROW(cudaEventDestroy(done_));
    if (stream_) JEPA_CUDA_CHECK_NOTHROW(cudaStreamDestroy(stream_));
  }
  CudaStep(const CudaStep&) = delete;
  CudaStep& operator=(const CudaStep&) = delete;

  cudaStream_t stream() const { return stream_; }
  /// AdamW updates applied so far (the device's bias-correction counter; skipped steps do not count).
  /// Waits for the work enqueued so far.
  std::uint64_t steps_taken() const {
    JEPA_CUDA_CHECK(cudaStreamSynchronize(stream_));
    unsigned long long t = 0;
    JEPA_CUDA_CHECK(cudaMemcpy(&t, adam_t_.data(), sizeof t, cudaMemcpyDeviceToHost));
    return t;
  }
  /// Graphs captured so far (one per distinct step shape).
  std::size_t graphs() const { return graphs_.size(); }

  /// One step on `clip` (B,C,F,H,W) in device memory: enqueue() then wait().
  CudaStepResult run(TensorView<const T, 5> clip, std::uint64_t step) {
    enqueue(clip, step);
    return wait();
  }

  /// Draws the masks of `step`, writes the step's inputs and launches its work (eagerly, or as a
  /// graph replay); returns without waiting for the device. The previous step's inputs must have been
  /// consumed (the call waits for that event only: the device may still be running it).
  void enqueue(TensorView<const T, 5> clip, std::uint64_t step) {
    if (clip.size(0) != B_ || clip.size(2) != geom_.frames || clip.size(3) != geom_.height || clip.size(4) != geom_.width)
      throw ShapeError(jepa::detail::cat("jepa: CudaStep was set up for a (", B_, ", C, ", geom_.frames, ", ", geom_.height,
                                         ", ", geom_.width, ") clip"));
    const std::uint64_t t = step + 1;
    auto masks = model_.masking().sample(grid_, model_.mask_seed, step, B_);
    for (const auto& m : masks) masking::validate(m, grid_);
    JEPA_CUDA_CHECK(cudaEventSynchronize(inputs_read_));  // the previous step has copied its inputs
    // Host side of the inputs.
    Scalars sc{};
    const auto& a = opt_.config();
    const double lr = stage_.lr(t), wd = stage_.wd(t), ema = stage_.ema(t);
    sc.adamw = {lr, wd, a.beta1, a.beta2, a.eps, 0.0, 0.0};  // bias corrections: AdamW::advance_device
    sc.lambda = Model::loss_type::has_context_term ? model_.loss_policy().context_lambda(t - 1) : 0.0;
    sc.ema = ema;
    std::byte* host = in_host_.data();
    std::memcpy(host, &sc, sizeof sc);
    std::size_t off = sizeof(Scalars);
    std::vector<models::DeviceMask> dm(masks.size());
    Key key;
    for (std::size_t j = 0; j < masks.size(); ++j) {
      const auto& m = masks[j];
      const std::size_t nc = m.context.size() * sizeof(std::int64_t), nt = m.target.size() * sizeof(std::int64_t);
      std::memcpy(host + off, m.context.data(), nc);
      std::memcpy(host + off + nc, m.target.data(), nt);
      dm[j] = {m.batch, m.context_len, m.target_len,
               reinterpret_cast<const std::int64_t*>(in_dev_.data() + off),
               reinterpret_cast<const std::int64_t*>(in_dev_.data() + off + nc)};
      off += nc + nt;
      key.push_back(m.context_len);
      key.push_back(m.target_len);
    }
    const double max_norm = stage_.clip_grad > 0 && t > stage_.clip_after ? stage_.clip_grad : 0.0;
    key.push_back(max_norm > 0 ? 1 : 0);
    key.push_back(static_cast<index_t>(reinterpret_cast<std::uintptr_t>(clip.data()) & 0x7fffffffffffffff));
    pending_ = {};
    pending_.step = step;
    pending_.lr = lr, pending_.wd = wd, pending_.ema = ema, pending_.lambda = sc.lambda;
    for (const auto& m : masks) {
      pending_.context_len.push_back(m.context_len);
      pending_.target_len.push_back(m.target_len);
    }
    G_ = masks.size();
    backend::CudaStreamGuard on(stream_);
    PrecisionGuard precision(cfg_.mixed_bf16);
    const auto it = cfg_.use_graphs ? graphs_.find(key) : graphs_.end();
    if (it != graphs_.end()) {
      JEPA_CUDA_CHECK(cudaGraphLaunch(it->second, stream_));
      pending_.replayed = true;
    } else {
      enqueue_work(clip, step, dm, off, max_norm);
      if (cfg_.use_graphs) capture(key, clip, step, dm, off, max_norm);
    }
    JEPA_CUDA_CHECK(cudaEventRecord(done_, stream_));
  }

  /// Waits for the step launched last and returns its result.
  CudaStepResult wait() {
    JEPA_CUDA_CHECK(cudaEventSynchronize(done_));
    CudaStepResult r = pending_;
    Outputs o;
    std::memcpy(&o, out_host_.data(), sizeof o);
    std::vector<double> v(2 * G_);
    std::memcpy(v.data(), out_host_.data() + sizeof(Outputs), v.size() * sizeof(double));
    const double gscale = 1.0 / static_cast<double>(G_);
    for (std::size_t j = 0; j < G_; ++j) {
      r.prediction += gscale * v[2 * j];
      if constexpr (Model::loss_type::has_context_term) r.context += gscale * v[2 * j + 1];
    }
    r.loss = r.prediction + r.lambda * r.context;
    r.grad_norm = o.grad.norm;
    r.skipped = o.skip != 0;
    r.optimizer_steps = o.adam_t;
    r.index_errors = o.bad;
    return r;
  }

 private:
  struct Scalars {
    backend::cuda::kernels::AdamWScalars adamw;
    double lambda, ema;
  };
  struct Outputs {
    backend::cuda::GradNormResult grad;
    unsigned long long adam_t;
    int skip, bad;
  };
  using Key = std::vector<index_t>;

  /// Sets this thread's backend::Cuda precision for one step and restores it after.
  class PrecisionGuard {
   public:
    explicit PrecisionGuard(bool mixed)
        : gemm_(Cuda::context().gemm_compute()), attn_(Cuda::context().attention_bf16()) {
      if (mixed) Cuda::context().set_mixed_bf16(true);
    }
    ~PrecisionGuard() {
      Cuda::context().set_gemm_compute(gemm_);
      Cuda::context().set_attention_bf16(attn_);
    }
    PrecisionGuard(const PrecisionGuard&) = delete;
    PrecisionGuard& operator=(const PrecisionGuard&) = delete;

   private:
    backend::cuda::GemmCompute gemm_;
    bool attn_;
  };

  static backend::cuda::ParamTable make_table(Model& m) {
    return backend::cuda::ParamTable::from_layouts({&m.encoder().layout(), &m.predictor().layout()});
  }

  /// The step's device work, on stream_ (the CudaStreamGuard of enqueue): pure stream operations.
  void enqueue_work(TensorView<const T, 5> clip, std::uint64_t step, const std::vector<models::DeviceMask>& dm,
                    std::size_t in_used, double max_norm) {
    namespace cu = backend::cuda;
    cu::copy_to_device(in_dev_.data(), in_host_.data(), in_used, stream_);
    // In a capture the record must become a node of the graph (External), so that every replay
    // records it; eagerly it is an ordinary record.
    cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
    JEPA_CUDA_CHECK(cudaStreamIsCapturing(stream_, &cs));
    JEPA_CUDA_CHECK(cudaEventRecordWithFlags(inputs_read_, stream_,
                                             cs == cudaStreamCaptureStatusActive ? cudaEventRecordExternal
                                                                                 : cudaEventRecordDefault));
    auto* sc = reinterpret_cast<Scalars*>(in_dev_.data());
    model_.zero_grad();
    model_.enqueue_loss(clip, step, dm, &sc->lambda);
    model_.backward();
    float* params[2] = {model_.encoder_params().data(), model_.predictor_params().data()};
    const float* grads[2] = {model_.encoder_grads().data(), model_.predictor_grads().data()};
    const cu::GradNormResult* gn = opt_.table().grad_norm(std::span<const float* const>(grads, 2), max_norm, stream_);
    cu::nonfinite_guard(model_.loss_values_backend(), static_cast<int>(2 * dm.size()), gn, skip_.data(), stream_);
    cu::AdamW::advance_device(&sc->adamw, adam_t_.data(), skip_.data(), stream_);
    opt_.step_device(std::span<float* const>(params, 2), std::span<const float* const>(grads, 2), &sc->adamw,
                     skip_.data(), stream_);
    cu::ema_update_device(model_.target_params().data(), model_.encoder_params().data(),
                          static_cast<index_t>(model_.encoder_params().numel()), &sc->ema, skip_.data(), stream_);
    // Outputs: grad-norm result, guard, index flags (device ints of the model), loss values.
    std::byte* out = out_dev_.data();
    JEPA_CUDA_CHECK(cudaMemcpyAsync(out + offsetof(Outputs, grad), gn, sizeof(cu::GradNormResult),
                                    cudaMemcpyDeviceToDevice, stream_));
    JEPA_CUDA_CHECK(cudaMemcpyAsync(out + offsetof(Outputs, skip), skip_.data(), sizeof(int), cudaMemcpyDeviceToDevice,
                                    stream_));
    JEPA_CUDA_CHECK(cudaMemcpyAsync(out + offsetof(Outputs, adam_t), adam_t_.data(), sizeof(unsigned long long),
                                    cudaMemcpyDeviceToDevice, stream_));
    JEPA_CUDA_CHECK(cudaMemcpyAsync(out + offsetof(Outputs, bad), model_.loss_index_errors_backend(), sizeof(int),
                                    cudaMemcpyDeviceToDevice, stream_));
    JEPA_CUDA_CHECK(cudaMemcpyAsync(out + sizeof(Outputs), model_.loss_values_backend(), 2 * dm.size() * sizeof(double),
                                    cudaMemcpyDeviceToDevice, stream_));
    JEPA_CUDA_CHECK(cudaMemcpyAsync(out_host_.data(), out, out_host_.bytes(), cudaMemcpyDeviceToHost, stream_));
  }

  /// Captures the same work as a graph for this key (after the eager run planned every buffer).
  void capture(const Key& key, TensorView<const T, 5> clip, std::uint64_t step, const std::vector<models::DeviceMask>& dm,
               std::size_t in_used, double max_norm) {
    // The capture records the work; it does not run it. The parameters it touches are the same
    // buffers, so the eager step above and later replays update them in place.
    cudaGraph_t graph = nullptr;
    JEPA_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
    try {
      enqueue_work(clip, step, dm, in_used, max_norm);
    } catch (...) {
      cudaStreamEndCapture(stream_, &graph);
      if (graph) cudaGraphDestroy(graph);
      throw;
    }
    JEPA_CUDA_CHECK(cudaStreamEndCapture(stream_, &graph));
    cudaGraphExec_t exec = nullptr;
    const cudaError_t e = cudaGraphInstantiate(&exec, graph, 0);
    JEPA_CUDA_CHECK_NOTHROW(cudaGraphDestroy(graph));
    JEPA_CUDA_CHECK(e);
    graphs_.emplace(key, exec);
  }

  Model& model_;
  Stage stage_;
  index_t B_;
  models::InputGeometry geom_;
  CudaStepConfig cfg_;
  nn::TokenGrid grid_;
  backend::cuda::AdamW opt_;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t inputs_read_ = nullptr, done_ = nullptr;
  std::size_t in_bytes_ = 0, G_ = 1;
  detail::PinnedBlock in_host_, out_host_;
  backend::cuda::DeviceBuffer<std::byte> in_dev_, out_dev_;
  backend::cuda::DeviceBuffer<int> skip_;
  backend::cuda::DeviceBuffer<unsigned long long> adam_t_;
  std::map<Key, cudaGraphExec_t> graphs_;
  CudaStepResult pending_;
};

}  // namespace jepa::train
