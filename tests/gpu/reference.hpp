// CPU references for the CUDA parity tests, compiled by the host compiler in reference.cpp (keeps
// Eigen out of the nvcc translation units). Each forwards to backend::Cpu in double precision, the
// readable reference the CUDA backend is checked against (DESIGN.md testing layer 4).
#pragma once

#include <cstdint>

namespace jepa::test::cpu_ref {

/// C = α·op(A)·op(B) + β·C, row-major (backend::Cpu::gemm<double>).
void gemm(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, double alpha, const double* A,
          std::int64_t lda, const double* B, std::int64_t ldb, double beta, double* C, std::int64_t ldc);
void layer_norm_forward(const double* x, const double* w, const double* b, double* y, double* mean, double* rstd,
                        std::int64_t M, std::int64_t D, double eps);
void layer_norm_backward(const double* x, const double* w, const double* mean, const double* rstd, const double* dy,
                         double* dx, double* dw, double* db, std::int64_t M, std::int64_t D, bool accumulate_dx);
void gelu_forward(const double* x, double* y, std::int64_t n);
void gelu_backward(const double* x, const double* dy, double* dx, std::int64_t n);

}  // namespace jepa::test::cpu_ref

// ---- backend::Cuda parity (test_cuda_backend.cu): backend::Cpu primitives in double ----
namespace jepa::test::cpu_ref {

void linear_forward(const double* x, const double* W, const double* b, double* y, std::int64_t M, std::int64_t in,
                    std::int64_t out);
void linear_backward(const double* x, const double* W, const double* dy, double* dx, double* dW, double* db,
                     std::int64_t M, std::int64_t in, std::int64_t out);
void add_row_vector(double* y, const double* v, std::int64_t M, std::int64_t N);
void sum_rows_accumulate(const double* x, double* acc, std::int64_t M, std::int64_t N);
void axpy(double alpha, const double* x, double* y, std::int64_t n);
void add(const double* a, const double* b, double* y, std::int64_t n);
void swiglu_forward(const double* a, const double* b, double* y, std::int64_t n);
void swiglu_backward(const double* a, const double* b, const double* dy, double* da, double* db, std::int64_t n);
void rope_forward(double* x, std::int64_t M, std::int64_t heads, std::int64_t row_stride, std::int64_t head_stride,
                  std::int64_t rot, const double* cos, const double* sin);
void rope_backward(double* dx, std::int64_t M, std::int64_t heads, std::int64_t row_stride, std::int64_t head_stride,
                   std::int64_t rot, const double* cos, const double* sin);
void gather_rows(const double* src, const std::int64_t* idx, double* dst, std::int64_t B, std::int64_t N,
                 std::int64_t K, std::int64_t D);
void scatter_add_rows(const double* ddst, const std::int64_t* idx, double* dsrc, std::int64_t B, std::int64_t N,
                      std::int64_t K, std::int64_t D);
void im2col_tubelet(const double* clip, const std::int64_t* idx, double* cols, std::int64_t B, std::int64_t C,
                    std::int64_t F, std::int64_t H, std::int64_t W, std::int64_t t, std::int64_t p, std::int64_t K);
void col2im_tubelet(const double* dcols, const std::int64_t* idx, double* dclip, std::int64_t B, std::int64_t C,
                    std::int64_t F, std::int64_t H, std::int64_t W, std::int64_t t, std::int64_t p, std::int64_t K);
/// backend::Cpu::attention_forward / attention_backward in double, on packed (B, N, 3D) qkv with
/// [q | k | v] channels (the nn::Attention layout), o / dout (B, N, D), lse (B, H, N), dqkv (B, N, 3D).
/// mask_kind: 0 none, 1 causal, 2 block_causal (with `block`).
void attention_forward_packed(const double* qkv, double* o, double* lse, std::int64_t B, std::int64_t N,
                              std::int64_t heads, std::int64_t head_dim, int mask_kind, std::int64_t block);
void attention_backward_packed(const double* qkv, const double* o, const double* dout, const double* lse,
                               double* dqkv, std::int64_t B, std::int64_t N, std::int64_t heads, std::int64_t head_dim,
                               int mask_kind, std::int64_t block);

/// One pre-norm transformer block, nn::Block<T, backend::Cpu> named "blocks.0" with block ordinal 1
/// (the parameter layout a Block<T, backend::Cuda> built the same way has).
struct BlockSpec {
  std::int64_t B = 1, N = 1, dim = 0, heads = 0, mlp_hidden = 0;
  bool swiglu = false;
  int mask_kind = 0;  // 0 none, 1 causal
};
/// Elements of the block's parameter buffer (its ParamLayout::numel()).
std::size_t block_param_numel(const BlockSpec& s);
/// y = block(x); dres: in ∂L/∂y, out ∂L/∂x; G += ∂L/∂θ. cos/sin (B·N, rot) or null (no RoPE).
void block_forward_backward(const BlockSpec& s, const float* params, const float* x, const float* cos,
                            const float* sin, std::int64_t rot, float* y, float* dres, float* G);
void block_forward_backward(const BlockSpec& s, const double* params, const double* x, const double* cos,
                            const double* sin, std::int64_t rot, double* y, double* dres, double* G);

}  // namespace jepa::test::cpu_ref

// Fused attention (appended). Shapes, layouts and masks as in jepa/backend/attention_args.hpp; here
// every pointer, a dense mask's `allowed` included, is host memory.
#include "jepa/backend/attention_args.hpp"

namespace jepa::test::cpu_ref {

/// backend::Cpu::attention_forward<double>: o and lse (B,H,Nq) overwritten.
void attention_forward(const backend::AttnShape& s, backend::AttnOperand<const double> q,
                       backend::AttnOperand<const double> k, backend::AttnOperand<const double> v,
                       backend::AttnOperand<double> o, double* lse, const backend::AttnMask& mask);
/// backend::Cpu::attention_backward<double>: dq, dk, dv overwritten.
void attention_backward(const backend::AttnShape& s, backend::AttnOperand<const double> q,
                        backend::AttnOperand<const double> k, backend::AttnOperand<const double> v,
                        backend::AttnOperand<const double> o, backend::AttnOperand<const double> dout,
                        const double* lse, backend::AttnOperand<double> dq, backend::AttnOperand<double> dk,
                        backend::AttnOperand<double> dv, const backend::AttnMask& mask);

}  // namespace jepa::test::cpu_ref

// ---- backend::Cuda parity: whole encoders (models::VitEncoder on backend::Cpu) ----
namespace jepa::test::cpu_ref {

/// The encoder instantiations test_cuda_backend.cu runs on both backends (the type lists are written
/// out identically on both sides):
///   rope_tiled:   VitEncoder<2, Tubelet<2, 8>, RopeTiled, FinalNorm>
///   sincos:       VitEncoder<2, Tubelet<2, 8>, SinCos3d<true>, FinalNorm>
///   rope_taps:    VitEncoder<3, Tubelet<2, 8>, RopeInterleaved, HierarchicalTaps<0, 2>> (interp grid 4)
enum class EncoderKind { rope_tiled, sincos, rope_taps };
struct EncoderSpec {
  EncoderKind kind = EncoderKind::rope_tiled;
  std::int64_t B = 1, frames = 4, height = 16, width = 24;
  std::int64_t dim = 64, heads = 2, mlp_hidden = 128;
  std::int64_t keep = 0;  // tokens per clip; 0 = all N (then keep_idx is null)
};
std::size_t encoder_param_numel(const EncoderSpec& s);
/// Forward then backward (Mode::training): outputs (n_out, B, K, D) written in order; G += ∂L/∂θ
/// with L = Σ_j ⟨output_j, d_outputs[j]⟩; dclip (B, 3, F, H, W) overwritten. keep_idx (B, K) host.
void encoder_forward_backward(const EncoderSpec& s, const float* params, const float* clip,
                              const std::int64_t* keep_idx, const float* const* d_outputs, float* outputs, float* G,
                              float* dclip);
void encoder_forward_backward(const EncoderSpec& s, const double* params, const double* clip,
                              const std::int64_t* keep_idx, const double* const* d_outputs, double* outputs, double* G,
                              double* dclip);

}  // namespace jepa::test::cpu_ref

// ---- backend::Cuda parity: the JEPA predictor (models::Predictor on backend::Cpu) ----
namespace jepa::test::cpu_ref {

/// The predictor instantiations test_cuda_backend.cu runs on both backends (type lists and configs
/// written out identically on both sides; encoder_dim E, pred_dim Dp, heads, mlp_hidden from the spec,
/// num_mask_tokens 2):
///   rope_tiled:  Predictor<2, RopeTiled, 1>
///   sincos:      Predictor<1, SinCos3d<true>, 1>
///   rope_2level: Predictor<2, RopeInterleaved, 2> with modality embeddings, predict_context and
///                rope_interp_grid 4 (the V-JEPA 2.1 shape of the predictor)
enum class PredictorKind { rope_tiled, sincos, rope_2level };
struct PredictorSpec {
  PredictorKind kind = PredictorKind::rope_tiled;
  std::int64_t B = 2, Kc = 13, Kt = 9;   // lengths used; the State is planned for Kc + 2, Kt + 3
  std::int64_t t = 2, h = 4, w = 6;      // token grid
  std::int64_t encoder_dim = 48, pred_dim = 64, heads = 2, mlp_hidden = 96;
  std::int64_t mask_index = 1;
  bool image = false;        // Modality::image (selects img_mod_embed) instead of video
  bool use_context = false;  // pass d_context (rope_2level only)
};
std::size_t predictor_param_numel(const PredictorSpec& s);
/// Input width L·E and output width L·E of the spec's predictor.
std::int64_t predictor_input_dim(const PredictorSpec& s);
std::int64_t predictor_output_dim(const PredictorSpec& s);
/// Forward then backward (Mode::training). z (B,Kc,L·E); ctx (B,Kc), tgt (B,Kt) host indices;
/// d_target (B,Kt,W), d_context (B,Kc,W) or null. Writes out_t (B,Kt,W), out_c (B,Kc,W) (when the
/// predictor predicts the context, else untouched), dz (B,Kc,L·E); G += ∂L/∂θ.
void predictor_forward_backward(const PredictorSpec& s, const float* params, const float* z, const std::int64_t* ctx,
                                const std::int64_t* tgt, const float* d_target, const float* d_context, float* out_t,
                                float* out_c, float* G, float* dz);
void predictor_forward_backward(const PredictorSpec& s, const double* params, const double* z, const std::int64_t* ctx,
                                const std::int64_t* tgt, const double* d_target, const double* d_context, double* out_t,
                                double* out_c, double* G, double* dz);

}  // namespace jepa::test::cpu_ref

// ---- backend::Cuda parity: whole training steps (train/cuda_step.cuh against the CPU recipe) ----
#include <vector>

namespace jepa::test::cpu_ref {

/// The models test_cuda_train_step.cu trains on both backends: presets::vjepa2<vit_micro> and
/// presets::vjepa2_1<vit_micro> (the recipe's masks and losses), float.
enum class JepaKind { vjepa2, vjepa2_1 };
struct TrainStepSpec {
  JepaKind kind = JepaKind::vjepa2;
  std::int64_t B = 2, frames = 4, res = 64;  // a 2×4×4 token grid, as the main job's pretraining clips
  std::uint64_t seed = 1, mask_seed = 7;
  std::vector<std::uint64_t> steps;  // the global step indices run, in order (masks and schedules)
  double lr = 1e-3, wd = 0.04, ema = 0.99;   // constant schedules (warm-up 0)
  double lambda = 0.5;                         // 2.1: λ constant from step 0
};
struct TrainStepRun {
  std::vector<double> loss, prediction, context, grad_norm;  // per step
  std::vector<float> encoder, predictor, target;             // parameter buffers after the last step
  std::vector<float> encoder0, predictor0;                   // … and before the first
};
/// The CPU training steps: zero_grad, forward_loss on masking.sample(grid, mask_seed, step, B),
/// backward, global grad norm, AdamW(lr, wd), EMA(ema) — the CPU trainer's step for one micro-batch.
/// clip (B, 3, F, H, W) host.
TrainStepRun cpu_train_steps(const TrainStepSpec& s, const float* clip);

}  // namespace jepa::test::cpu_ref
