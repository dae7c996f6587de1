#include "reference.hpp"

#include "jepa/backend/cpu/backend.hpp"

namespace jepa::test::cpu_ref {

using backend::Cpu;

void gemm(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, double alpha, const double* A,
          std::int64_t lda, const double* B, std::int64_t ldb, double beta, double* C, std::int64_t ldc) {
  Cpu::gemm<double>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
void layer_norm_forward(const double* x, const double* w, const double* b, double* y, double* mean, double* rstd,
                        std::int64_t M, std::int64_t D, double eps) {
  Cpu::layer_norm_forward<double>(x, w, b, y, mean, rstd, M, D, eps);
}
void layer_norm_backward(const double* x, const double* w, const double* mean, const double* rstd, const double* dy,
                         double* dx, double* dw, double* db, std::int64_t M, std::int64_t D, bool accumulate_dx) {
  Cpu::layer_norm_backward<double>(x, w, mean, rstd, dy, dx, dw, db, M, D, accumulate_dx);
}
void gelu_forward(const double* x, double* y, std::int64_t n) { Cpu::gelu_forward<double>(x, y, n); }
void gelu_backward(const double* x, const double* dy, double* dx, std::int64_t n) {
  Cpu::gelu_backward<double>(x, dy, dx, n);
}

}  // namespace jepa::test::cpu_ref

// ---- backend::Cuda parity (test_cuda_backend.cu) ----
#include <cmath>
#include <string>

#include "jepa/core/binder.hpp"
#include "jepa/nn/block.hpp"

namespace jepa::test::cpu_ref {

using backend::Cpu;

void linear_forward(const double* x, const double* W, const double* b, double* y, std::int64_t M, std::int64_t in,
                    std::int64_t out) {
  Cpu::linear_forward<double>(x, W, b, y, M, in, out);
}
void linear_backward(const double* x, const double* W, const double* dy, double* dx, double* dW, double* db,
                     std::int64_t M, std::int64_t in, std::int64_t out) {
  Cpu::linear_backward<double>(x, W, dy, dx, dW, db, M, in, out);
}
void add_row_vector(double* y, const double* v, std::int64_t M, std::int64_t N) { Cpu::add_row_vector<double>(y, v, M, N); }
void sum_rows_accumulate(const double* x, double* acc, std::int64_t M, std::int64_t N) {
  Cpu::sum_rows_accumulate<double>(x, acc, M, N);
}
void axpy(double alpha, const double* x, double* y, std::int64_t n) { Cpu::axpy<double>(alpha, x, y, n); }
void add(const double* a, const double* b, double* y, std::int64_t n) { Cpu::add<double>(a, b, y, n); }
void swiglu_forward(const double* a, const double* b, double* y, std::int64_t n) { Cpu::swiglu_forward<double>(a, b, y, n); }
void swiglu_backward(const double* a, const double* b, const double* dy, double* da, double* db, std::int64_t n) {
  Cpu::swiglu_backward<double>(a, b, dy, da, db, n);
}
void rope_forward(double* x, std::int64_t M, std::int64_t heads, std::int64_t row_stride, std::int64_t head_stride,
                  std::int64_t rot, const double* cos, const double* sin) {
  Cpu::rope_forward<double>(x, M, heads, row_stride, head_stride, rot, cos, sin);
}
void rope_backward(double* dx, std::int64_t M, std::int64_t heads, std::int64_t row_stride, std::int64_t head_stride,
                   std::int64_t rot, const double* cos, const double* sin) {
  Cpu::rope_backward<double>(dx, M, heads, row_stride, head_stride, rot, cos, sin);
}
void gather_rows(const double* src, const std::int64_t* idx, double* dst, std::int64_t B, std::int64_t N,
                 std::int64_t K, std::int64_t D) {
  Cpu::gather_rows<double>(src, idx, dst, B, N, K, D);
}
void scatter_add_rows(const double* ddst, const std::int64_t* idx, double* dsrc, std::int64_t B, std::int64_t N,
                      std::int64_t K, std::int64_t D) {
  Cpu::scatter_add_rows<double>(ddst, idx, dsrc, B, N, K, D);
}
void im2col_tubelet(const double* clip, const std::int64_t* idx, double* cols, std::int64_t B, std::int64_t C,
                    std::int64_t F, std::int64_t H, std::int64_t W, std::int64_t t, std::int64_t p, std::int64_t K) {
  Cpu::im2col_tubelet<double>(clip, idx, cols, B, C, F, H, W, t, p, K);
}
void col2im_tubelet(const double* dcols, const std::int64_t* idx, double* dclip, std::int64_t B, std::int64_t C,
                    std::int64_t F, std::int64_t H, std::int64_t W, std::int64_t t, std::int64_t p, std::int64_t K) {
  Cpu::col2im_tubelet<double>(dcols, idx, dclip, B, C, F, H, W, t, p, K);
}

namespace {
backend::AttnMask packed_mask(int kind, std::int64_t block) {
  if (kind == 1) return backend::AttnMask::causal_mask();
  if (kind == 2) return backend::AttnMask::block_causal_mask(block);
  return {};
}
template <class U>
backend::AttnOperand<U> packed_part(U* base, std::int64_t N, std::int64_t D, std::int64_t off, std::int64_t dh) {
  return {base + off, N * 3 * D, 3 * D, dh};
}
template <class U>
backend::AttnOperand<U> packed_out(U* base, std::int64_t N, std::int64_t D, std::int64_t dh) {
  return {base, N * D, D, dh};
}
}  // namespace

void attention_forward_packed(const double* qkv, double* o, double* lse, std::int64_t B, std::int64_t N,
                              std::int64_t heads, std::int64_t head_dim, int mask_kind, std::int64_t block) {
  const std::int64_t D = heads * head_dim;
  const backend::AttnShape s{B, heads, N, N, head_dim, 1.0 / std::sqrt(static_cast<double>(head_dim))};
  Cpu::attention_forward<double>(s, packed_part(qkv, N, D, 0, head_dim), packed_part(qkv, N, D, D, head_dim),
                                 packed_part(qkv, N, D, 2 * D, head_dim), packed_out(o, N, D, head_dim), lse,
                                 packed_mask(mask_kind, block));
}
void attention_backward_packed(const double* qkv, const double* o, const double* dout, const double* lse,
                               double* dqkv, std::int64_t B, std::int64_t N, std::int64_t heads, std::int64_t head_dim,
                               int mask_kind, std::int64_t block) {
  const std::int64_t D = heads * head_dim;
  const backend::AttnShape s{B, heads, N, N, head_dim, 1.0 / std::sqrt(static_cast<double>(head_dim))};
  Cpu::attention_backward<double>(s, packed_part(qkv, N, D, 0, head_dim), packed_part(qkv, N, D, D, head_dim),
                                  packed_part(qkv, N, D, 2 * D, head_dim), packed_out(o, N, D, head_dim),
                                  packed_out(dout, N, D, head_dim), lse, packed_part(dqkv, N, D, 0, head_dim),
                                  packed_part(dqkv, N, D, D, head_dim), packed_part(dqkv, N, D, 2 * D, head_dim),
                                  packed_mask(mask_kind, block));
}

namespace {
nn::BlockConfig block_config(const BlockSpec& s) {
  return {s.dim, s.heads, s.mlp_hidden, s.swiglu ? nn::MlpKind::swiglu : nn::MlpKind::gelu, 1e-6};
}
template <class T>
void run_block(const BlockSpec& s, const T* params, const T* x, const T* cos, const T* sin, std::int64_t rot, T* y,
               T* dres, T* G) {
  nn::ParamLayout L;
  const nn::Block<T, Cpu> block(L, "blocks.0", block_config(s), 1);
  nn::BlockCache<T> cache;
  nn::BlockWorkspace<T> ws;
  Binder<T> binder(MemoryCategory::activations);
  block.plan_cache(binder, "blocks.0", s.B, s.N, cache);
  block.plan_workspace(binder, "workspace", s.B, s.N, ws);
  HostArena arena;
  binder.bind(arena);
  const nn::RopeTables<T> rope{cos, sin, cos ? rot : 0};
  const backend::AttnMask mask = s.mask_kind == 1 ? backend::AttnMask::causal_mask() : backend::AttnMask{};
  block.forward(params, x, s.B, s.N, rope, cache, y, mask);
  block.backward(params, G, x, cache, rope, dres, s.B, s.N, ws, mask);
}
}  // namespace

std::size_t block_param_numel(const BlockSpec& s) {
  nn::ParamLayout L;
  const nn::Block<float, Cpu> block(L, "blocks.0", block_config(s), 1);
  return L.numel();
}
void block_forward_backward(const BlockSpec& s, const float* params, const float* x, const float* cos,
                            const float* sin, std::int64_t rot, float* y, float* dres, float* G) {
  run_block<float>(s, params, x, cos, sin, rot, y, dres, G);
}
void block_forward_backward(const BlockSpec& s, const double* params, const double* x, const double* cos,
                            const double* sin, std::int64_t rot, double* y, double* dres, double* G) {
  run_block<double>(s, params, x, cos, sin, rot, y, dres, G);
}

}  // namespace jepa::test::cpu_ref

namespace jepa::test::cpu_ref {

void attention_forward(const backend::AttnShape& s, backend::AttnOperand<const double> q,
                       backend::AttnOperand<const double> k, backend::AttnOperand<const double> v,
                       backend::AttnOperand<double> o, double* lse, const backend::AttnMask& mask) {
  backend::Cpu::attention_forward<double>(s, q, k, v, o, lse, mask);
}
void attention_backward(const backend::AttnShape& s, backend::AttnOperand<const double> q,
                        backend::AttnOperand<const double> k, backend::AttnOperand<const double> v,
                        backend::AttnOperand<const double> o, backend::AttnOperand<const double> dout,
                        const double* lse, backend::AttnOperand<double> dq, backend::AttnOperand<double> dk,
                        backend::AttnOperand<double> dv, const backend::AttnMask& mask) {
  backend::Cpu::attention_backward<double>(s, q, k, v, o, dout, lse, dq, dk, dv, mask);
}

}  // namespace jepa::test::cpu_ref

// ---- backend::Cuda parity: whole encoders ----
#include <span>
#include <vector>

#include "jepa/models/vit_encoder.hpp"
#include "jepa/tokenizers/tubelet.hpp"

namespace jepa::test::cpu_ref {

namespace {
template <class T>
using EncRopeTiled = models::VitEncoder<2, tokenizers::Tubelet<2, 8>, models::RopeTiled, models::FinalNorm, T, Cpu>;
template <class T>
using EncSinCos = models::VitEncoder<2, tokenizers::Tubelet<2, 8>, models::SinCos3d<true>, models::FinalNorm, T, Cpu>;
template <class T>
using EncRopeTaps =
    models::VitEncoder<3, tokenizers::Tubelet<2, 8>, models::RopeInterleaved, models::HierarchicalTaps<0, 2>, T, Cpu>;

models::VitConfig encoder_config(const EncoderSpec& s) {
  models::VitConfig c;
  c.embed_dim = s.dim;
  c.num_heads = s.heads;
  c.mlp_hidden = s.mlp_hidden;
  if (s.kind == EncoderKind::rope_taps) c.rope_interp_grid = 4;
  return c;
}
/// Calls f(type tag) with the encoder type of `kind` for element type T.
template <class T, class F>
void with_encoder(EncoderKind kind, F&& f) {
  switch (kind) {
    case EncoderKind::rope_tiled: f(static_cast<EncRopeTiled<T>*>(nullptr)); break;
    case EncoderKind::sincos: f(static_cast<EncSinCos<T>*>(nullptr)); break;
    case EncoderKind::rope_taps: f(static_cast<EncRopeTaps<T>*>(nullptr)); break;
  }
}
template <class T>
void run_encoder(const EncoderSpec& s, const T* params, const T* clip, const std::int64_t* keep_idx,
                 const T* const* d_outputs, T* outputs, T* G, T* dclip) {
  with_encoder<T>(s.kind, [&](auto* tag) {
    using Enc = std::remove_pointer_t<decltype(tag)>;
    const Enc enc(encoder_config(s));
    const models::InputGeometry g{s.frames, s.height, s.width};
    auto state = s.keep > 0 ? enc.make_state(models::Mode::training, s.B, g, s.keep)
                            : enc.make_state(models::Mode::training, s.B, g);
    enc.forward(params, TensorView<const T, 5>(clip, {s.B, 3, s.frames, s.height, s.width}), keep_idx, state);
    const int n_out = Enc::has_final_norm ? 1 : Enc::num_taps;
    for (int j = 0; j < n_out; ++j) {
      const auto o = enc.output(state, j);
      std::copy(o.data(), o.data() + o.numel(), outputs + j * o.numel());
    }
    enc.backward(params, G, state, std::span<const T* const>(d_outputs, static_cast<std::size_t>(n_out)), dclip);
  });
}
}  // namespace

std::size_t encoder_param_numel(const EncoderSpec& s) {
  std::size_t n = 0;
  with_encoder<float>(s.kind, [&](auto* tag) {
    using Enc = std::remove_pointer_t<decltype(tag)>;
    n = Enc(encoder_config(s)).layout().numel();
  });
  return n;
}
void encoder_forward_backward(const EncoderSpec& s, const float* params, const float* clip,
                              const std::int64_t* keep_idx, const float* const* d_outputs, float* outputs, float* G,
                              float* dclip) {
  run_encoder<float>(s, params, clip, keep_idx, d_outputs, outputs, G, dclip);
}
void encoder_forward_backward(const EncoderSpec& s, const double* params, const double* clip,
                              const std::int64_t* keep_idx, const double* const* d_outputs, double* outputs, double* G,
                              double* dclip) {
  run_encoder<double>(s, params, clip, keep_idx, d_outputs, outputs, G, dclip);
}

}  // namespace jepa::test::cpu_ref

// ---- the JEPA predictor ----
#include "jepa/models/predictor.hpp"

namespace jepa::test::cpu_ref {

namespace {
template <class T>
using PredRopeTiled = models::Predictor<2, models::RopeTiled, 1, T, Cpu>;
template <class T>
using PredSinCos = models::Predictor<1, models::SinCos3d<true>, 1, T, Cpu>;
template <class T>
using PredRope2Level = models::Predictor<2, models::RopeInterleaved, 2, T, Cpu>;

models::PredictorConfig predictor_config(const PredictorSpec& s) {
  models::PredictorConfig c;
  c.encoder_dim = s.encoder_dim;
  c.pred_dim = s.pred_dim;
  c.num_heads = s.heads;
  c.mlp_hidden = s.mlp_hidden;
  c.num_mask_tokens = 2;
  if (s.kind == PredictorKind::rope_2level) {
    c.modality_embedding = true;
    c.predict_context = true;
    c.rope_interp_grid = 4;
  }
  return c;
}
template <class T, class F>
void with_predictor(PredictorKind kind, F&& f) {
  switch (kind) {
    case PredictorKind::rope_tiled: f(static_cast<PredRopeTiled<T>*>(nullptr)); break;
    case PredictorKind::sincos: f(static_cast<PredSinCos<T>*>(nullptr)); break;
    case PredictorKind::rope_2level: f(static_cast<PredRope2Level<T>*>(nullptr)); break;
  }
}
template <class T>
void run_predictor(const PredictorSpec& s, const T* params, const T* z, const std::int64_t* ctx, const std::int64_t* tgt,
                   const T* d_target, const T* d_context, T* out_t, T* out_c, T* G, T* dz) {
  with_predictor<T>(s.kind, [&](auto* tag) {
    using Pred = std::remove_pointer_t<decltype(tag)>;
    const Pred pred(predictor_config(s));
    auto st = pred.make_state(models::Mode::training, s.B, s.Kc + 2, s.Kt + 3, nn::TokenGrid{s.t, s.h, s.w});
    st.set_lengths(s.Kc, s.Kt);
    pred.forward(params, z, ctx, tgt, st, s.mask_index, s.image ? models::Modality::image : models::Modality::video);
    const auto ot = pred.target_output(st);
    std::copy(ot.data(), ot.data() + ot.numel(), out_t);
    if (pred.config().predict_context) {
      const auto oc = pred.context_output(st);
      std::copy(oc.data(), oc.data() + oc.numel(), out_c);
    }
    pred.backward(params, G, st, d_target, d_context, dz);
  });
}
}  // namespace

std::size_t predictor_param_numel(const PredictorSpec& s) {
  std::size_t n = 0;
  with_predictor<float>(s.kind, [&](auto* tag) { n = std::remove_pointer_t<decltype(tag)>(predictor_config(s)).layout().numel(); });
  return n;
}
std::int64_t predictor_input_dim(const PredictorSpec& s) {
  std::int64_t n = 0;
  with_predictor<float>(s.kind, [&](auto* tag) { n = std::remove_pointer_t<decltype(tag)>(predictor_config(s)).input_dim(); });
  return n;
}
std::int64_t predictor_output_dim(const PredictorSpec& s) {
  std::int64_t n = 0;
  with_predictor<float>(s.kind, [&](auto* tag) { n = std::remove_pointer_t<decltype(tag)>(predictor_config(s)).output_width(); });
  return n;
}
void predictor_forward_backward(const PredictorSpec& s, const float* params, const float* z, const std::int64_t* ctx,
                                const std::int64_t* tgt, const float* d_target, const float* d_context, float* out_t,
                                float* out_c, float* G, float* dz) {
  run_predictor<float>(s, params, z, ctx, tgt, d_target, d_context, out_t, out_c, G, dz);
}
void predictor_forward_backward(const PredictorSpec& s, const double* params, const double* z, const std::int64_t* ctx,
                                const std::int64_t* tgt, const double* d_target, const double* d_context, double* out_t,
                                double* out_c, double* G, double* dz) {
  run_predictor<double>(s, params, z, ctx, tgt, d_target, d_context, out_t, out_c, G, dz);
}

}  // namespace jepa::test::cpu_ref

// ---- whole training steps ----
#include "jepa/models/jepa_presets.hpp"
#include "jepa/train/optim.hpp"
#include "jepa/train/schedules.hpp"

namespace jepa::test::cpu_ref {

namespace {
template <class Model>
TrainStepRun run_cpu_steps(Model model, const TrainStepSpec& s, const float* clip) {
  model.init(s.seed);
  model.mask_seed = s.mask_seed;
  if constexpr (Model::loss_type::has_context_term) {
    model.loss_policy_mut().lambda.value = s.lambda;
    model.loss_policy_mut().lambda.progressive = false;
  }
  train::AdamW<float> opt(std::vector<train::AdamW<float>::Group>{{&model.encoder_params(), &model.encoder_grads()},
                                                                  {&model.predictor_params(), &model.predictor_grads()}});
  TrainStepRun r;
  r.encoder0.assign(model.encoder_params().data(), model.encoder_params().data() + model.encoder_params().numel());
  r.predictor0.assign(model.predictor_params().data(), model.predictor_params().data() + model.predictor_params().numel());
  const models::InputGeometry g{s.frames, s.res, s.res};
  const TensorView<const float, 5> cv(clip, {s.B, 3, s.frames, s.res, s.res});
  for (const std::uint64_t step : s.steps) {
    model.zero_grad();
    const auto rep = model.forward_loss(cv, step, model.masking().sample(model.encoder().grid(g), model.mask_seed, step, s.B));
    model.backward();
    const double gn = train::grad_norm(std::vector<nn::ParameterSet<float>*>{&model.encoder_grads(), &model.predictor_grads()});
    opt.step(s.lr, s.wd);
    train::ema_update(model.target_params(), model.encoder_params(), s.ema);
    r.loss.push_back(rep.loss);
    r.prediction.push_back(rep.prediction);
    r.context.push_back(rep.context);
    r.grad_norm.push_back(gn);
  }
  r.encoder.assign(model.encoder_params().data(), model.encoder_params().data() + model.encoder_params().numel());
  r.predictor.assign(model.predictor_params().data(), model.predictor_params().data() + model.predictor_params().numel());
  r.target.assign(model.target_params().data(), model.target_params().data() + model.target_params().numel());
  return r;
}
}  // namespace

TrainStepRun cpu_train_steps(const TrainStepSpec& s, const float* clip) {
  namespace P = models::presets;
  if (s.kind == JepaKind::vjepa2) return run_cpu_steps(P::vjepa2<P::vit_micro>(), s, clip);
  return run_cpu_steps(P::vjepa2_1<P::vit_micro>(), s, clip);
}

}  // namespace jepa::test::cpu_ref
