// jepa/backend/cuda/backend.cuh — backend::Cuda: the primitive set of backend::Cpu on an NVIDIA GPU,
// so that the module templates (nn/, models/) run unchanged with Backend = backend::Cuda
// (DESIGN.md decision 4: one module implementation, two backends).
//
// Semantics are Cpu's, primitive by primitive (backend/cpu/backend.hpp): the same argument order,
// row-major layouts, and accumulation contract — *_backward OVERWRITES input gradients (dx) and
// ACCUMULATES parameter gradients (dW += dyᵀx, db += Σ dy, LayerNorm dw/db +=). Every pointer is
// device memory (`space = MemorySpace::device`), token indices and dense attention masks included
// (copy alone also accepts a host source). T is float (the type every
// module is instantiated with on the CPU as well); the elementwise, token and RoPE primitives also
// take jepa::bf16 storage.
//
// Execution context. The primitives are static (the Backend concept), so the state a GPU call needs
// lives in a per-thread cuda::Context, reached through Cuda::context():
//   - the stream every primitive is enqueued on (default: the legacy default stream 0; set one with
//     CudaStreamGuard guard(stream) or context().set_stream);
//   - the cuBLASLt handle with its 32 MiB workspace and algorithm cache (gemm.cuh), and the GEMM
//     compute mode (GemmCompute::fp32 by default: Cpu-exact fp32 products; tf32 selectable);
//   - one scratch workspace (64 MiB by default) for the primitives that need temporary device memory:
//     LayerNorm dw/db partials, bias-gradient column sums, attention backward.
// The context is created on a thread's first use, on the device current at that moment, and that
// first use allocates (cublasLtCreate, two cudaMallocs). Afterwards no primitive allocates, and none
// synchronises with the host: a sequence of primitives is a pure sequence of stream operations and
// can be captured in a CUDA graph (warm up once before capturing, so cuBLASLt's algorithm cache is
// filled and the context exists). Module code that uploads host-made data (copy from host memory,
// e.g. VitEncoder's token indices and RoPE tables) is not capturable as it stands.
// A primitive whose scratch need exceeds the workspace throws ConfigError naming the bytes it needs;
// grow it up front with context().reserve_workspace(bytes).
// The workspace is reused by consecutive primitives, which is race-free because they are ordered on
// one stream. If you switch streams while work that used the workspace is still in flight, order the
// two streams yourself (an event), as for any buffer shared between streams.
//
// Determinism (decision 11): every reduction (bias and LayerNorm parameter gradients, attention) runs
// in an order fixed by the problem shape, without atomics, so a step is bitwise reproducible on one
// GPU model. (scatter_add_rows adds with atomicAdd, but with the distinct indices its callers
// guarantee each address receives one add.) cuBLASLt picks its algorithm by heuristic per shape;
// for a given library version and GPU the choice is fixed.
//
// Host code calls these; nvcc compiles them (kernels inside). Include from .cu files only.
#pragma once

#include <cuda_runtime.h>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <type_traits>
#include <utility>

#include "jepa/backend/attention_args.hpp"
#include "jepa/backend/cuda/activations.cuh"
#include "jepa/backend/cuda/attention.cuh"
#include "jepa/backend/cuda/common.cuh"
#include "jepa/backend/cuda/device.cuh"
#include "jepa/backend/cuda/elementwise.cuh"
#include "jepa/backend/cuda/error.cuh"
#include "jepa/backend/cuda/gemm.cuh"
#include "jepa/backend/cuda/index_tables.cuh"
#include "jepa/backend/cuda/layer_norm.cuh"
#include "jepa/backend/cuda/losses.cuh"
#include "jepa/backend/cuda/mixed.cuh"
#include "jepa/backend/cuda/rope.cuh"
#include "jepa/backend/cuda/tokens.cuh"
#include "jepa/core/dtype.hpp"
#include "jepa/core/error.hpp"
#include "jepa/core/memory_plan.hpp"
#include "jepa/core/tensor.hpp"

namespace jepa::backend {

namespace cuda {

/// The per-thread state of backend::Cuda: stream, cuBLASLt handle, GEMM compute mode, scratch
/// workspace (see the header comment). Not copyable; one per thread, bound to one device.
class Context {
 public:
  static constexpr std::size_t kDefaultWorkspace = std::size_t{64} << 20;

  explicit Context(std::size_t workspace_bytes = kDefaultWorkspace) : device_(current_device()), lt_(), ws_(workspace_bytes) {}
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  /// The device this context's handle and workspace live on.
  int device() const noexcept { return device_; }
  /// The stream every primitive of this thread is enqueued on.
  cudaStream_t stream() const noexcept { return stream_; }
  void set_stream(cudaStream_t s) noexcept { stream_ = s; }
  LtHandle& lt() noexcept { return lt_; }
  GemmCompute gemm_compute() const noexcept { return compute_; }
  /// fp32 (default; matches the CPU to fp32 rounding), tf32 or bf16 (float GEMMs on the tensor cores).
  void set_gemm_compute(GemmCompute c) noexcept { compute_ = c; }
  /// Float attention on bf16-rounded operands through the tensor-core kernels (mixed.cuh); off by
  /// default (then float attention runs the fp32 CUDA-core kernels, Cpu-close).
  void set_attention_bf16(bool on) noexcept { attention_bf16_ = on; }
  bool attention_bf16() const noexcept { return attention_bf16_; }
  /// The recipe's mixed precision for float modules: GEMMs in GemmCompute::bf16 and bf16 attention
  /// (fp32 weights, activations, norms and accumulators; bf16 products) — or back to fp32.
  void set_mixed_bf16(bool on) noexcept {
    compute_ = on ? GemmCompute::bf16 : GemmCompute::fp32;
    attention_bf16_ = on;
  }

  /// Scratch for the bf16 copies of mixed-precision attention operands, grown on demand — only when
  /// this thread's stream is not being captured (growing waits for the device and allocates; the
  /// first, eager run of a step shape grows it, a capture of the same shape then finds it large
  /// enough). During a capture a too-small buffer throws ConfigError.
  void* mixed_workspace(std::size_t bytes) {
    if (bytes <= mixed_ws_.size()) return mixed_ws_.data();
    cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
    JEPA_CUDA_CHECK(cudaStreamIsCapturing(stream_, &cs));
    if (cs != cudaStreamCaptureStatusNone)
      throw ConfigError(jepa::detail::cat("jepa: mixed-precision attention needs ", bytes, " bytes of bf16 scratch, this "
                                          "context has ", mixed_ws_.size(), "; run the step once eagerly before capturing it"));
    JEPA_CUDA_CHECK(cudaDeviceSynchronize());
    mixed_ws_ = DeviceBuffer<std::byte>();
    mixed_ws_ = DeviceBuffer<std::byte>(bytes);
    return mixed_ws_.data();
  }

  void* workspace() const noexcept { return ws_.data(); }
  std::size_t workspace_bytes() const noexcept { return ws_.size(); }
  /// Grows the scratch workspace to at least `bytes`. Waits for the device first (the old buffer may
  /// be in use by queued work) and allocates: call it outside a training step and outside a capture.
  void reserve_workspace(std::size_t bytes) {
    if (bytes <= ws_.size()) return;
    JEPA_CUDA_CHECK(cudaDeviceSynchronize());
    ws_ = DeviceBuffer<std::byte>();
    ws_ = DeviceBuffer<std::byte>(bytes);
  }
  /// The workspace, after checking that it holds `bytes` (throws ConfigError naming `op` if not).
  void* workspace_for(std::size_t bytes, std::string_view op) const {
    if (bytes > ws_.size())
      throw ConfigError(jepa::detail::cat("jepa: ", op, " needs ", bytes, " bytes of scratch workspace; this thread's "
                                          "backend::Cuda context has ", ws_.size(), ". Call jepa::backend::Cuda::context()"
                                          ".reserve_workspace(", bytes, ") before the step (outside any graph capture)"));
    return bytes ? ws_.data() : nullptr;
  }

 private:
  static int current_device() {
    int d = 0;
    JEPA_CUDA_CHECK(cudaGetDevice(&d));
    return d;
  }
  int device_;
  cudaStream_t stream_ = nullptr;
  LtHandle lt_;
  DeviceBuffer<std::byte> ws_, mixed_ws_;
  GemmCompute compute_ = GemmCompute::fp32;
  bool attention_bf16_ = false;
};

}  // namespace cuda

struct Cuda {
  static constexpr MemorySpace space = MemorySpace::device;
  static constexpr std::string_view name = "cuda";
  /// Activations, parameters and gradients of a module live in one device allocation per plan.
  using Arena = cuda::DeviceArena;

  /// This thread's execution context (created, on the current device, at the first call).
  static cuda::Context& context() {
    thread_local cuda::Context ctx;
    return ctx;
  }
  static cudaStream_t stream() { return context().stream(); }
  /// Waits until this thread's stream has finished its work (for tests and host read-back).
  static void synchronize() { JEPA_CUDA_CHECK(cudaStreamSynchronize(stream())); }

  // ---------------------------------------------------------------------------------------------
  // Memory
  // ---------------------------------------------------------------------------------------------
  /// dst = src (n elements), stream-ordered. src may also be HOST memory (cudaMemcpyDefault under
  /// unified addressing): that is how a module uploads data it makes on the host (token indices,
  /// RoPE tables). A pageable host source is consumed before the call returns, so it may be reused
  /// at once — but such a copy cannot be captured in a CUDA graph.
  template <class T>
  static void copy(const T* src, T* dst, index_t n) {
    cuda::copy(src, dst, n, stream());
  }
  template <class T>
  static void zero(T* p, index_t n) {
    cuda::zero(p, n, stream());
  }
  /// host[0:n] = device[0:n]: waits for this thread's stream first, then copies (for reading results
  /// after a step; never inside one).
  template <class T>
  static void download(T* host, const T* device, index_t n) {
    if (n <= 0) return;
    synchronize();
    JEPA_CUDA_CHECK(cudaMemcpy(host, device, static_cast<std::size_t>(n) * sizeof(T), cudaMemcpyDeviceToHost));
  }
  /// dst[r, 0:cols] = src[r, 0:cols] for r < rows, rows `src_ld` / `dst_ld` elements apart (device
  /// memory on both sides; one cudaMemcpy2DAsync, capturable in a CUDA graph).
  template <class T>
  static void copy_2d(const T* src, index_t src_ld, T* dst, index_t dst_ld, index_t rows, index_t cols) {
    if (rows <= 0 || cols <= 0) return;
    if (src_ld < cols || dst_ld < cols)
      throw ShapeError(jepa::detail::cat("jepa: backend::Cuda::copy_2d: leading dimensions ", src_ld, " / ", dst_ld,
                                         " must be >= cols = ", cols));
    JEPA_CUDA_CHECK(cudaMemcpy2DAsync(dst, static_cast<std::size_t>(dst_ld) * sizeof(T), src,
                                      static_cast<std::size_t>(src_ld) * sizeof(T),
                                      static_cast<std::size_t>(cols) * sizeof(T), static_cast<std::size_t>(rows),
                                      cudaMemcpyDeviceToDevice, stream()));
  }

  // ---------------------------------------------------------------------------------------------
  // Index work and the objective on the device (models/predictor.hpp and models/jepa.hpp use these
  // on a device backend; the host path computes the same on the CPU).
  // ---------------------------------------------------------------------------------------------
  /// The predictor's (4, B, Kc + Kt) index tables from device indices (index_tables.cuh).
  static void predictor_index_tables(const std::int64_t* ctx, const std::int64_t* tgt, index_t B, index_t Kc, index_t Kt,
                                     index_t N, std::int64_t* tables, std::int32_t* mark, int* bad) {
    cuda::predictor_index_tables(ctx, tgt, B, Kc, Kt, N, tables, mark, bad, stream());
  }
  /// losses::level_loss on the device (losses.cuh): the value goes to *result (device double).
  template <class T, class Rho>
  static void level_loss(const Rho& rho, const T* pred, index_t B, index_t K, index_t L, index_t D, const T* const* targets,
                         const double* level_weights, index_t N, const std::int64_t* idx, const T* omega,
                         double grad_scale, const double* grad_scale_device, T* dpred, double* rows,
                         std::size_t rows_bytes, double* result, int* bad_index) {
    cuda::level_loss(rho, pred, B, K, L, D, targets, level_weights, N, idx, omega, grad_scale, dpred, rows, rows_bytes,
                     result, bad_index, stream(), grad_scale_device);
  }
  /// losses::context_distance_weights on the device.
  template <class T>
  static void context_distance_weights(const std::int64_t* ctx, index_t Kc, const std::int64_t* tgt, index_t Kt, index_t B,
                                       const nn::TokenGrid& grid, T* weights, int* bad) {
    cuda::context_distance_weights(ctx, Kc, tgt, Kt, B, grid, weights, bad, stream());
  }

  // ---------------------------------------------------------------------------------------------
  // GEMM.  C (M×N) = α·op(A)·op(B) + β·C, row-major; op(A) is M×K, op(B) is K×N (Cpu::gemm).
  // With β = 0, C is not read. K = 0 gives C = β·C.
  // ---------------------------------------------------------------------------------------------
  template <cuda::DeviceReal T>
  static void gemm(bool trans_a, bool trans_b, index_t M, index_t N, index_t K, T alpha, const T* A, index_t lda,
                   const T* B, index_t ldb, T beta, T* C, index_t ldc) {
    gemm_strided_batched<T>(trans_a, trans_b, M, N, K, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1);
  }
  /// `batch` independent GEMMs; matrix i starts at A + i·stride_a (etc.).
  template <cuda::DeviceReal T>
  static void gemm_strided_batched(bool trans_a, bool trans_b, index_t M, index_t N, index_t K, T alpha, const T* A,
                                   index_t lda, index_t stride_a, const T* B, index_t ldb, index_t stride_b, T beta, T* C,
                                   index_t ldc, index_t stride_c, index_t batch) {
    if (M <= 0 || N <= 0 || batch <= 0) return;
    const float a = static_cast<float>(alpha), b = static_cast<float>(beta);
    if (K <= 0) {  // empty reduction: C = β·C (cuBLASLt has no K = 0 problem)
      for (index_t i = 0; i < batch; ++i) cuda::scale_matrix<T>(b, C + i * stride_c, M, N, ldc, stream());
      return;
    }
    cuda::GemmShape s;
    s.trans_a = trans_a;
    s.trans_b = trans_b;
    s.M = M;
    s.N = N;
    s.K = K;
    s.lda = lda;
    s.ldb = ldb;
    s.ldc = ldc;
    s.batch = batch;
    s.stride_a = stride_a;
    s.stride_b = stride_b;
    s.stride_c = stride_c;
    auto& ctx = context();
    cuda::gemm<T, T>(ctx.lt(), s, a, A, B, b, C, ctx.stream(), nullptr, cuda::Epilogue::none, compute_for<T>());
  }

  // ---------------------------------------------------------------------------------------------
  // Linear:  y (M×out) = x (M×in) · Wᵀ + b,  W stored (out, in).
  // Backward: dx = dy·W (overwrite; skipped when null), dW += dyᵀ·x, db += Σ_rows dy.
  // ---------------------------------------------------------------------------------------------
  template <cuda::DeviceReal T>
  static void linear_forward(const T* x, const T* W, const T* b, T* y, index_t M, index_t in, index_t out) {
    if (M <= 0 || out <= 0) return;
    if (in <= 0) {  // y = b broadcast (Cpu: the empty product is 0, then + b)
      cuda::scale_matrix<T>(0.f, y, M, out, out, stream());
      if (b) add_row_vector<T>(y, b, M, out);
      return;
    }
    cuda::GemmShape s;
    s.trans_b = true;
    s.M = M;
    s.N = out;
    s.K = in;
    s.lda = in;
    s.ldb = in;
    s.ldc = out;
    auto& ctx = context();
    // The bias rides in cuBLASLt's BIAS epilogue (one value per column of y): y = x·Wᵀ + b in one pass,
    // rounded once. Used where cuBLASLt's epilogue kernels are certain to exist (more than one row,
    // 16-byte aligned operands and rows); elsewhere the product is followed by add_row_vector, as
    // on the CPU.
    constexpr index_t P = 16 / static_cast<index_t>(sizeof(T));
    const bool fused = b && M > 1 && in % P == 0 && out % P == 0 && cuda::detail::aligned16(x) &&
                       cuda::detail::aligned16(W) && cuda::detail::aligned16(y) && cuda::detail::aligned16(b);
    cuda::gemm<T, T>(ctx.lt(), s, 1.f, x, W, 0.f, y, ctx.stream(), fused ? b : nullptr,
                     fused ? cuda::Epilogue::bias : cuda::Epilogue::none, compute_for<T>());
    if (b && !fused) add_row_vector<T>(y, b, M, out);
  }
  /// a = gelu(x·Wᵀ + b) without the pre-activation (inference): the product with its bias epilogue,
  /// then the GELU kernel in place (cuBLASLt's GELU epilogue is the tanh form, not the recipe's erf).
  template <cuda::DeviceReal T>
  static void linear_gelu_forward(const T* x, const T* W, const T* b, T* a, index_t M, index_t in, index_t out) {
    linear_forward<T>(x, W, b, a, M, in, out);
    gelu_forward<T>(a, a, M * out);
  }
  template <cuda::DeviceReal T>
  static void linear_backward(const T* x, const T* W, const T* dy, T* dx, T* dW, T* db, index_t M, index_t in,
                              index_t out) {
    if (dx) gemm<T>(false, false, M, in, out, T(1.f), dy, out, W, in, T(0.f), dx, in);
    if (dW && M > 0) gemm<T>(true, false, out, in, M, T(1.f), dy, out, x, in, T(1.f), dW, in);
    if (db) sum_rows_accumulate<T>(dy, db, M, out);
  }

  /// y[r, :] += v for every row r of the (M, N) matrix y.
  template <cuda::DeviceReal T>
  static void add_row_vector(T* y, const T* v, index_t M, index_t N) {
    cuda::add_row_vector(y, v, M, N, stream());
  }
  /// acc[j] += Σ_r x[r, j] (fixed summation order: bitwise reproducible).
  template <cuda::DeviceReal T>
  static void sum_rows_accumulate(const T* x, T* acc, index_t M, index_t N) {
    const std::size_t need = cuda::sum_rows_workspace_bytes(M, N);
    void* ws = context().workspace_for(need, "backend::Cuda::sum_rows_accumulate");
    cuda::sum_rows_accumulate<T, T>(x, acc, M, N, ws, need, stream());
  }

  // ---------------------------------------------------------------------------------------------
  // Elementwise
  // ---------------------------------------------------------------------------------------------
  /// y = a + b (y may alias a or b).
  template <cuda::DeviceReal T>
  static void add(const T* a, const T* b, T* y, index_t n) {
    cuda::add(a, b, y, n, stream());
  }
  /// y += α·x
  template <cuda::DeviceReal T>
  static void axpy(T alpha, const T* x, T* y, index_t n) {
    cuda::axpy(static_cast<float>(alpha), x, y, n, stream());
  }
  template <cuda::DeviceReal T>
  static void scale(T alpha, T* y, index_t n) {
    cuda::scale(static_cast<float>(alpha), y, n, stream());
  }
  /// y = gelu(x), exact erf form (y may alias x).
  template <cuda::DeviceReal T>
  static void gelu_forward(const T* x, T* y, index_t n) {
    cuda::gelu_forward(x, y, n, stream());
  }
  /// dx = gelu'(x) ⊙ dy (overwrite; dx may alias dy).
  template <cuda::DeviceReal T>
  static void gelu_backward(const T* x, const T* dy, T* dx, index_t n) {
    cuda::gelu_backward(x, dy, dx, n, stream());
  }
  /// y = silu(a) ⊙ b.
  template <cuda::DeviceReal T>
  static void swiglu_forward(const T* a, const T* b, T* y, index_t n) {
    cuda::swiglu_forward(a, b, y, n, stream());
  }
  /// da = silu'(a)·b·dy, db = silu(a)·dy (overwrite).
  template <cuda::DeviceReal T>
  static void swiglu_backward(const T* a, const T* b, const T* dy, T* da, T* db, index_t n) {
    cuda::swiglu_backward(a, b, dy, da, db, n, stream());
  }

  // ---------------------------------------------------------------------------------------------
  // LayerNorm over the last dimension D of an (M, D) matrix (Cpu's definition; layer_norm.cuh).
  // float only: the kernels keep mean/rstd and dw/db in fp32, which is T here.
  // ---------------------------------------------------------------------------------------------
  template <std::same_as<float> T>
  static void layer_norm_forward(const T* x, const T* w, const T* b, T* y, T* mean, T* rstd, index_t M, index_t D,
                                 T eps) {
    cuda::layer_norm_forward<float>(x, w, b, y, mean, rstd, M, D, eps, stream());
  }
  /// sum = a + r; y = LayerNorm(sum) in one kernel (the block's residual add fused into its LN2;
  /// nn::LayerNorm::forward_residual uses it when a backend has it).
  template <std::same_as<float> T>
  static void add_layer_norm_forward(const T* a, const T* r, T* sum, const T* w, const T* b, T* y, T* mean, T* rstd,
                                     index_t M, index_t D, T eps) {
    cuda::add_layer_norm_forward<float>(a, r, sum, w, b, y, mean, rstd, M, D, eps, stream());
  }
  template <std::same_as<float> T>
  static void layer_norm_backward(const T* x, const T* w, const T* mean, const T* rstd, const T* dy, T* dx, T* dw, T* db,
                                  index_t M, index_t D, bool accumulate_dx = false) {
    const std::size_t need = (dw || db) ? cuda::layer_norm_backward_workspace_bytes(M, D) : 0;
    void* ws = context().workspace_for(need, "backend::Cuda::layer_norm_backward");
    cuda::layer_norm_backward<float>(x, w, mean, rstd, dy, dx, dw, db, M, D, accumulate_dx, ws, need, stream());
  }

  // ---------------------------------------------------------------------------------------------
  // Rotary position embedding, in place on `heads` heads of M rows (rope.cuh; Cpu's pairing).
  // ---------------------------------------------------------------------------------------------
  template <cuda::DeviceReal T>
  static void rope_forward(T* x, index_t M, index_t heads, index_t row_stride, index_t head_stride, index_t rot,
                           const T* cos, const T* sin) {
    cuda::rope_forward(x, M, heads, row_stride, head_stride, rot, cos, sin, stream());
  }
  template <cuda::DeviceReal T>
  static void rope_backward(T* dx, index_t M, index_t heads, index_t row_stride, index_t head_stride, index_t rot,
                            const T* cos, const T* sin) {
    cuda::rope_backward(dx, M, heads, row_stride, head_stride, rot, cos, sin, stream());
  }

  // ---------------------------------------------------------------------------------------------
  // Token subsets and tubelet im2col (tokens.cuh). idx (B, K) int64 in device memory.
  // ---------------------------------------------------------------------------------------------
  template <class T>
  static void gather_rows(const T* src, const std::int64_t* idx, T* dst, index_t B, index_t N, index_t K, index_t D) {
    cuda::gather_rows(src, idx, dst, B, N, K, D, stream());
  }
  template <cuda::DeviceReal T>
  static void scatter_add_rows(const T* ddst, const std::int64_t* idx, T* dsrc, index_t B, index_t N, index_t K,
                               index_t D) {
    cuda::scatter_add_rows(ddst, idx, dsrc, B, N, K, D, stream());
  }
  template <cuda::DeviceReal T>
  static void im2col_tubelet(const T* clip, const std::int64_t* idx, T* cols, index_t B, index_t C, index_t F, index_t H,
                             index_t W, index_t t, index_t p, index_t K) {
    cuda::im2col_tubelet(clip, idx, cols, B, C, F, H, W, t, p, K, stream());
  }
  template <cuda::DeviceReal T>
  static void col2im_tubelet(const T* dcols, const std::int64_t* idx, T* dclip, index_t B, index_t C, index_t F,
                             index_t H, index_t W, index_t t, index_t p, index_t K) {
    cuda::col2im_tubelet(dcols, idx, dclip, B, C, F, H, W, t, p, K, stream());
  }

  // ---------------------------------------------------------------------------------------------
  // Fused attention (attention.cuh, FlashAttention-2 schedule): no N×N buffer; o, lse, dq, dk, dv
  // overwritten; lse (B,H,Nq) fp32. A dense mask's `allowed` bytes must be device memory here.
  // ---------------------------------------------------------------------------------------------
  // With context().attention_bf16() (and Dh % 8 == 0) the operands are rounded to packed bf16 copies in
  // the mixed workspace, the tensor-core kernels run on them, and o / dq, dk, dv are widened back
  // into the float views; lse stays fp32 either way.
  template <std::same_as<float> T>
  static void attention_forward(const AttnShape& s, AttnOperand<const T> q, AttnOperand<const T> k,
                                AttnOperand<const T> v, AttnOperand<T> o, T* lse, const AttnMask& mask) {
    auto& ctx = context();
    if (ctx.attention_bf16() && s.head_dim % 8 == 0 && s.batch * s.heads * s.q_len * s.kv_len > 0) {
      const index_t B = s.batch, H = s.heads, Nq = s.q_len, Nk = s.kv_len, Dh = s.head_dim;
      const index_t nq = pad8(cuda::packed_elems(B, Nq, H, Dh)), nk = pad8(cuda::packed_elems(B, Nk, H, Dh));
      auto* w = static_cast<jepa::bf16*>(ctx.mixed_workspace(static_cast<std::size_t>(2 * nq + 2 * nk) * sizeof(jepa::bf16)));
      jepa::bf16 *q16 = w, *o16 = w + nq, *k16 = w + 2 * nq, *v16 = w + 2 * nq + nk;
      cuda::to_bf16_packed(q, q16, B, Nq, H, Dh, stream());
      cuda::to_bf16_packed(k, k16, B, Nk, H, Dh, stream());
      cuda::to_bf16_packed(v, v16, B, Nk, H, Dh, stream());
      cuda::attention_forward<jepa::bf16>(stream(), s, as_const(cuda::packed_operand(q16, Nq, H, Dh)),
                                          as_const(cuda::packed_operand(k16, Nk, H, Dh)),
                                          as_const(cuda::packed_operand(v16, Nk, H, Dh)), cuda::packed_operand(o16, Nq, H, Dh),
                                          lse, mask);
      cuda::from_bf16_packed(o16, o, B, Nq, H, Dh, stream());
      return;
    }
    cuda::attention_forward<float>(stream(), s, q, k, v, o, lse, mask);
  }
  template <std::same_as<float> T>
  static void attention_backward(const AttnShape& s, AttnOperand<const T> q, AttnOperand<const T> k,
                                 AttnOperand<const T> v, AttnOperand<const T> o, AttnOperand<const T> dout,
                                 const T* lse, AttnOperand<T> dq, AttnOperand<T> dk, AttnOperand<T> dv,
                                 const AttnMask& mask) {
    auto& ctx = context();
    const std::size_t need = cuda::attention_backward_workspace_bytes(s);
    void* ws = ctx.workspace_for(need, "backend::Cuda::attention_backward");
    if (ctx.attention_bf16() && s.head_dim % 8 == 0 && s.batch * s.heads * s.q_len * s.kv_len > 0) {
      const index_t B = s.batch, H = s.heads, Nq = s.q_len, Nk = s.kv_len, Dh = s.head_dim;
      const index_t nq = pad8(cuda::packed_elems(B, Nq, H, Dh)), nk = pad8(cuda::packed_elems(B, Nk, H, Dh));
      auto* w = static_cast<jepa::bf16*>(ctx.mixed_workspace(static_cast<std::size_t>(4 * nq + 4 * nk) * sizeof(jepa::bf16)));
      jepa::bf16 *q16 = w, *o16 = w + nq, *do16 = w + 2 * nq, *dq16 = w + 3 * nq;
      jepa::bf16 *k16 = w + 4 * nq, *v16 = k16 + nk, *dk16 = k16 + 2 * nk, *dv16 = k16 + 3 * nk;
      cuda::to_bf16_packed(q, q16, B, Nq, H, Dh, stream());
      cuda::to_bf16_packed(k, k16, B, Nk, H, Dh, stream());
      cuda::to_bf16_packed(v, v16, B, Nk, H, Dh, stream());
      cuda::to_bf16_packed(o, o16, B, Nq, H, Dh, stream());
      cuda::to_bf16_packed(dout, do16, B, Nq, H, Dh, stream());
      cuda::attention_backward<jepa::bf16>(
          stream(), s, as_const(cuda::packed_operand(q16, Nq, H, Dh)), as_const(cuda::packed_operand(k16, Nk, H, Dh)),
          as_const(cuda::packed_operand(v16, Nk, H, Dh)), as_const(cuda::packed_operand(o16, Nq, H, Dh)),
          as_const(cuda::packed_operand(do16, Nq, H, Dh)), lse, cuda::packed_operand(dq16, Nq, H, Dh),
          cuda::packed_operand(dk16, Nk, H, Dh), cuda::packed_operand(dv16, Nk, H, Dh), mask, ws, need);
      cuda::from_bf16_packed(dq16, dq, B, Nq, H, Dh, stream());
      cuda::from_bf16_packed(dk16, dk, B, Nk, H, Dh, stream());
      cuda::from_bf16_packed(dv16, dv, B, Nk, H, Dh, stream());
      return;
    }
    cuda::attention_backward<float>(stream(), s, q, k, v, o, dout, lse, dq, dk, dv, mask, ws, need);
  }

 private:
  static index_t pad8(index_t n) { return (n + 7) / 8 * 8; }  // keeps every bf16 sub-buffer 16-byte aligned
  template <class U>
  static AttnOperand<const U> as_const(AttnOperand<U> a) {
    return {a.data, a.batch_stride, a.row_stride, a.head_stride};
  }
  template <class T>
  static cuda::GemmCompute compute_for() {
    // tf32 is a float mode; bf16 operands already accumulate in fp32.
    return std::is_same_v<T, float> ? context().gemm_compute() : cuda::GemmCompute::fp32;
  }
};

/// Sets this thread's backend::Cuda stream for its lifetime, restoring the previous one after.
class CudaStreamGuard {
 public:
  explicit CudaStreamGuard(cudaStream_t s) : prev_(Cuda::context().stream()) { Cuda::context().set_stream(s); }
  ~CudaStreamGuard() { Cuda::context().set_stream(prev_); }
  CudaStreamGuard(const CudaStreamGuard&) = delete;
  CudaStreamGuard& operator=(const CudaStreamGuard&) = delete;

 private:
  cudaStream_t prev_;
};

}  // namespace jepa::backend
