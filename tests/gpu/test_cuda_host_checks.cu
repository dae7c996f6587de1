// Host-side behaviour of the CUDA backend that needs no GPU (label unit: runs in CI, which has nvcc
// but no device): device queries that never throw, the wording of CudaError, and argument checks
// that throw jepa:: errors before any CUDA call is made.
#include <boost/test/unit_test.hpp>

#include <string>

#include "jepa/backend/cuda/activations.cuh"
#include "jepa/backend/cuda/device.cuh"
#include "jepa/backend/cuda/gemm.cuh"
#include "jepa/backend/cuda/layer_norm.cuh"
#include "jepa/backend/cuda/optim.cuh"

namespace cu = jepa::backend::cuda;
using jepa::index_t;

namespace {
/// True when `f` throws E whose message contains every one of `parts`.
template <class E, class F>
bool throws_with(F&& f, std::initializer_list<const char*> parts) {
  try {
    f();
  } catch (const E& e) {
    const std::string m = e.what();
    for (const char* p : parts)
      if (m.find(p) == std::string::npos) {
        BOOST_TEST_MESSAGE("message '" << m << "' lacks '" << p << "'");
        return false;
      }
    return true;
  } catch (const std::exception& e) {
    BOOST_TEST_MESSAGE("threw another exception: " << e.what());
    return false;
  }
  return false;
}
cu::GemmShape square(index_t n) {
  cu::GemmShape s;
  s.M = s.N = s.K = s.lda = s.ldb = s.ldc = n;
  return s;
}
}  // namespace

BOOST_AUTO_TEST_SUITE(cuda_host_checks)

BOOST_AUTO_TEST_CASE(device_queries_never_throw) {
  int n = -1;
  BOOST_CHECK_NO_THROW(n = cu::device_count());
  BOOST_TEST(n >= 0);
  BOOST_TEST(cu::has_device() == (n > 0));
  if (n > 0) BOOST_TEST(cudaGetLastError() == cudaSuccess);  // no error left behind
  // (Without a driver every runtime call, cudaGetLastError included, reports the missing driver.)
  if (n == 0) {
    // Without a device, allocation is a CudaError (a jepa::DeviceError), never a crash.
    BOOST_CHECK_THROW(cu::DeviceBuffer<float>(16), jepa::DeviceError);
  }
}

BOOST_AUTO_TEST_CASE(cuda_error_names_the_call_the_error_and_the_place) {
  BOOST_TEST(throws_with<cu::CudaError>([] { JEPA_CUDA_CHECK(cudaErrorInvalidValue); },
                                          {"jepa: CUDA call cudaErrorInvalidValue failed", "cudaErrorInvalidValue",
                                           "test_cuda_host_checks.cu:"}));
  BOOST_TEST(throws_with<jepa::DeviceError>([] { JEPA_CUBLAS_CHECK(CUBLAS_STATUS_INVALID_VALUE); },
                                            {"jepa: cuBLAS call", "CUBLAS_STATUS_INVALID_VALUE", "test_cuda_host_checks.cu:"}));
  try {
    JEPA_CUDA_CHECK(cudaErrorMemoryAllocation);
  } catch (const cu::CudaError& e) {
    BOOST_TEST(e.code() == static_cast<int>(cudaErrorMemoryAllocation));
  }
}

BOOST_AUTO_TEST_CASE(gemm_shapes_are_validated) {
  float buf[4] = {};
  const float* p = buf;
  BOOST_CHECK_NO_THROW(cu::validate_gemm(square(2), p, p, buf, nullptr, cu::Epilogue::none));
  auto s = square(8);
  s.lda = 4;
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { cu::validate_gemm(s, p, p, buf, nullptr, cu::Epilogue::none); },
                                           {"jepa: cuda::gemm: lda = 4 is invalid", "must be >= 8"}));
  s = square(8);
  s.trans_b = true;
  s.N = 16;
  s.ldc = 16;
  s.ldb = 7;  // B stored N×K = 16×8: row stride must be >= 8
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { cu::validate_gemm(s, p, p, buf, nullptr, cu::Epilogue::none); },
                                           {"ldb = 7", "N×K"}));
  s = square(8);
  s.ldc = 3;
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { cu::validate_gemm(s, p, p, buf, nullptr, cu::Epilogue::none); }, {"ldc = 3"}));
  s = square(8);
  s.K = 0;
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { cu::validate_gemm(s, p, p, buf, nullptr, cu::Epilogue::none); }, {"K = 0"}));
  s = square(8);
  s.M = -1;
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { cu::validate_gemm(s, p, p, buf, nullptr, cu::Epilogue::none); }, {"M = -1"}));
  s = square(8);
  s.batch = 2;
  s.stride_c = 10;
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { cu::validate_gemm(s, p, p, buf, nullptr, cu::Epilogue::none); },
                                           {"stride_c = 10", "may not overlap"}));
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { cu::validate_gemm(square(8), nullptr, p, buf, nullptr, cu::Epilogue::none); },
                                           {"A is a null pointer"}));
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { cu::validate_gemm(square(8), p, p, buf, nullptr, cu::Epilogue::bias); },
                                           {"bias epilogue needs a bias vector of N = 8"}));
  // Empty products are valid and need no pointers.
  s = square(8);
  s.M = 0;
  BOOST_CHECK_NO_THROW(cu::validate_gemm(s, nullptr, nullptr, nullptr, nullptr, cu::Epilogue::none));
}

BOOST_AUTO_TEST_CASE(kernel_launchers_check_arguments_before_any_cuda_call) {
  float* null = nullptr;
  float dummy[8] = {};
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { cu::gelu_forward<float>(null, dummy, 8, nullptr); },
                                           {"jepa: cuda::gelu_forward: `x` is a null pointer"}));
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { cu::gelu_backward<float>(dummy, dummy, null, 8, nullptr); },
                                           {"cuda::gelu_backward: `dx` is a null pointer"}));
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { cu::gelu_forward<float>(dummy, dummy, -1, nullptr); }, {"n = -1"}));
  BOOST_CHECK_NO_THROW(cu::gelu_forward<float>(null, null, 0, nullptr));  // nothing to do
  BOOST_TEST(throws_with<jepa::ShapeError>(
      [&] { cu::layer_norm_forward<float>(dummy, nullptr, nullptr, dummy, nullptr, nullptr, 4, 0, 1e-6f, nullptr); },
      {"cuda::layer_norm_forward: D (normalised width) = 0 is invalid"}));
  BOOST_TEST(throws_with<jepa::ConfigError>(
      [&] { cu::layer_norm_forward<float>(dummy, nullptr, nullptr, dummy, nullptr, nullptr, 4, 2, -1.f, nullptr); },
      {"eps = -1"}));
  BOOST_TEST(throws_with<jepa::ShapeError>(
      [&] {
        cu::layer_norm_backward<float>(dummy, nullptr, dummy, dummy, dummy, dummy, dummy, nullptr, 1000, 64, false, dummy,
                                         16, nullptr);
      },
      {"workspace of 16 bytes is too small", "layer_norm_backward_workspace_bytes"}));
  BOOST_TEST(throws_with<jepa::ShapeError>(
      [&] {
        cu::layer_norm_backward<float>(dummy, nullptr, nullptr, dummy, dummy, dummy, nullptr, nullptr, 4, 2, false,
                                         nullptr, 0, nullptr);
      },
      {"`mean` is a null pointer"}));
  BOOST_TEST(cu::layer_norm_backward_workspace_bytes(1000, 64) == 2u * 16u * 64u * sizeof(float));
  BOOST_TEST(throws_with<jepa::ConfigError>([&] { cu::ema_update(dummy, dummy, 8, 1.5, nullptr); }, {"momentum = 1.5"}));
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { cu::ema_update(dummy, null, 8, 0.9, nullptr); }, {"`online` is a null pointer"}));
}

BOOST_AUTO_TEST_CASE(param_tables_reject_bad_layouts_before_uploading) {
  using T = cu::ParamTable::Tensor;
  BOOST_TEST(throws_with<jepa::ShapeError>([] { cu::ParamTable({{T{0, 10, true}, T{8, 4, false}}}, {16}); },
                                           {"overlap at element 8"}));
  BOOST_TEST(throws_with<jepa::ShapeError>([] { cu::ParamTable({{T{10, 10, true}}}, {16}); },
                                           {"lies outside its buffer of 16 elements"}));
  BOOST_TEST(throws_with<jepa::ConfigError>([] { cu::ParamTable(std::vector<std::vector<T>>(9), std::vector<std::size_t>(9, 1)); },
                                            {"9 parameter groups is invalid"}));
  BOOST_TEST(throws_with<jepa::ShapeError>([] { cu::ParamTable({{T{0, 1, true}}}, {1, 2}); }, {"1 groups but 2 buffer lengths"}));
}

BOOST_AUTO_TEST_SUITE_END()

// ---- backend::Cuda (backend.cuh) and its phase-2 launchers: elementwise.cuh, rope.cuh, tokens.cuh ----
#include "jepa/backend/cuda/backend.cuh"
#include "jepa/backend/cuda/elementwise.cuh"
#include "jepa/backend/cuda/rope.cuh"
#include "jepa/backend/cuda/tokens.cuh"
#include "jepa/concepts/backend.hpp"

// The Backend concept holds for backend::Cuda (the modules' static_assert would name what is missing).
static_assert(jepa::detail::check_backend<jepa::backend::Cuda, float>());
static_assert(jepa::Backend<jepa::backend::Cuda, float>);
static_assert(jepa::backend::Cuda::space == jepa::MemorySpace::device);
static_assert(std::is_same_v<jepa::backend::Cuda::Arena, jepa::backend::cuda::DeviceArena>);

BOOST_AUTO_TEST_SUITE(cuda_backend_host_checks)

BOOST_AUTO_TEST_CASE(context_needs_a_device_and_says_so) {
  if (cu::device_count() == 0) {
    // The context's first use creates the cuBLASLt handle and workspace: without a device that is a
    // jepa::DeviceError, never a crash.
    BOOST_CHECK_THROW(jepa::backend::Cuda::context(), jepa::DeviceError);
  } else {
    auto& ctx = jepa::backend::Cuda::context();
    BOOST_TEST(ctx.workspace_bytes() >= jepa::backend::cuda::Context::kDefaultWorkspace);
    BOOST_TEST(throws_with<jepa::ConfigError>([&] { (void)ctx.workspace_for(ctx.workspace_bytes() + 1, "op"); },
                                              {"jepa: op needs", "reserve_workspace("}));
  }
}

BOOST_AUTO_TEST_CASE(elementwise_launchers_check_arguments_before_any_cuda_call) {
  float* null = nullptr;
  float dummy[8] = {};
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { cu::copy<float>(dummy, dummy + 1, -1, nullptr); }, {"cuda::copy: n = -1"}));
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { cu::zero<float>(null, 4, nullptr); }, {"cuda::zero: `p` is a null pointer"}));
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { cu::axpy<float>(1.f, null, dummy, 8, nullptr); },
                                           {"cuda::axpy: `x` is a null pointer"}));
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { cu::add<float>(dummy, dummy, null, 8, nullptr); },
                                           {"cuda::add: `y` is a null pointer"}));
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { cu::scale_matrix<float>(0.f, dummy, 2, 4, 3, nullptr); },
                                           {"cuda::scale_matrix: ldc = 3 is invalid: must be >= 4"}));
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { cu::add_row_vector<float>(dummy, null, 2, 4, nullptr); },
                                           {"cuda::add_row_vector: `v` is a null pointer"}));
  BOOST_TEST(throws_with<jepa::ShapeError>(
      [&] { cu::swiglu_backward<float>(dummy, dummy, dummy, dummy, dummy, 8, nullptr); }, {"`da` and `db` are the same buffer"}));
  // Column sums: one chunk (M <= 64) needs no workspace; more rows need (chunks, N) floats.
  BOOST_TEST(cu::sum_rows_workspace_bytes(64, 100) == 0u);
  BOOST_TEST(cu::sum_rows_workspace_bytes(1000, 64) == 16u * 64u * sizeof(float));  // 64-row chunks
  BOOST_TEST(cu::sum_rows_workspace_bytes(100000, 8) == 511u * 8u * sizeof(float));  // ⌈100000/512⌉ = 196-row chunks
  BOOST_TEST(throws_with<jepa::ShapeError>(
      [&] { cu::sum_rows_accumulate<float, float>(dummy, dummy, 1000, 64, dummy, 16, nullptr); },
      {"workspace of 16 bytes is too small", "sum_rows_workspace_bytes = 4096"}));
  BOOST_TEST(throws_with<jepa::ShapeError>(
      [&] { cu::sum_rows_accumulate<float, float>(dummy, dummy, 1000, 64, nullptr, 0, nullptr); }, {"`workspace` is a null pointer"}));
  BOOST_CHECK_NO_THROW((cu::sum_rows_accumulate<float, float>(null, null, 0, 64, nullptr, 0, nullptr)));  // no rows
}

BOOST_AUTO_TEST_CASE(rope_launchers_check_layouts_before_any_cuda_call) {
  float dummy[8] = {};
  // Packed qkv of nn::Attention: rows of 3D = 384, heads Dh = 32 apart, 30 rotated channels: valid.
  BOOST_CHECK_NO_THROW(cu::detail::check_rope(dummy, 10, 4, 384, 32, 30, dummy, dummy, "op"));
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { cu::rope_forward<float>(dummy, 10, 4, 384, 16, 30, dummy, dummy, nullptr); },
                                           {"cuda::rope_forward: head_stride = 16 is invalid: must be >= 30"}));
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { cu::rope_backward<float>(dummy, 10, 4, 100, 32, 30, dummy, dummy, nullptr); },
                                           {"cuda::rope_backward: row_stride = 100 is invalid: must be >= 126"}));
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { cu::rope_forward<float>(dummy, 10, 4, 384, 32, 30, nullptr, dummy, nullptr); },
                                           {"`cos` is a null pointer"}));
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { cu::rope_forward<float>(dummy, -1, 4, 384, 32, 30, dummy, dummy, nullptr); },
                                           {"M (rows) = -1"}));
  // Nothing to rotate (rot < 2, or no rows): valid and no launch.
  BOOST_CHECK_NO_THROW(cu::rope_forward<float>(nullptr, 10, 4, 384, 32, 1, nullptr, nullptr, nullptr));
  BOOST_CHECK_NO_THROW(cu::rope_forward<float>(nullptr, 0, 4, 384, 32, 30, nullptr, nullptr, nullptr));
}

BOOST_AUTO_TEST_CASE(token_launchers_check_arguments_before_any_cuda_call) {
  float dummy[8] = {};
  std::int64_t idx[2] = {0, 1};
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { cu::gather_rows<float>(dummy, nullptr, dummy, 1, 4, 2, 4, nullptr); },
                                           {"cuda::gather_rows: `idx` is a null pointer"}));
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { cu::scatter_add_rows<float>(dummy, idx, dummy, 1, 0, 2, 4, nullptr); },
                                           {"cuda::scatter_add_rows: N (tokens per sample, with K > 0 indices) = 0"}));
  BOOST_CHECK_NO_THROW(cu::gather_rows<float>(nullptr, nullptr, nullptr, 1, 4, 0, 4, nullptr));  // K = 0
  BOOST_TEST(throws_with<jepa::ShapeError>(
      [&] { cu::im2col_tubelet<float>(dummy, idx, dummy, 1, 3, 4, 16, 16, 2, 0, 2, nullptr); },
      {"cuda::im2col_tubelet: p (patch size) = 0 is invalid"}));
  BOOST_TEST(throws_with<jepa::ShapeError>(
      [&] { cu::col2im_tubelet<float>(dummy, idx, dummy, 1, 3, 4, 8, 16, 2, 16, 2, nullptr); },
      {"cuda::col2im_tubelet: H (height, at least one patch) = 8 is invalid: must be >= 16"}));
  BOOST_TEST(throws_with<jepa::ShapeError>(
      [&] { cu::im2col_tubelet<float>(dummy, idx, nullptr, 1, 3, 4, 16, 16, 2, 16, 2, nullptr); }, {"`cols` is a null pointer"}));
}

BOOST_AUTO_TEST_SUITE_END()

// ---- cuda::attention_forward / attention_backward: argument checks before any CUDA call (appended) ----
#include "jepa/backend/cuda/attention.cuh"

BOOST_AUTO_TEST_SUITE(cuda_attention_host_checks)

BOOST_AUTO_TEST_CASE(attention_launchers_check_arguments_before_any_cuda_call) {
  using jepa::backend::AttnMask;
  using jepa::backend::AttnOperand;
  using jepa::backend::AttnShape;
  float buf[64] = {};
  float lse[8] = {};
  std::uint8_t bytes[16] = {};
  const AttnOperand<const float> in{buf, 0, 0, 0}, null_in{};
  const AttnOperand<float> out{buf, 0, 0, 0}, null_out{};
  const AttnShape good{1, 2, 4, 4, 64, 0.125};
  const auto fwd = [&](const AttnShape& s, AttnOperand<const float> q, const AttnMask& m) {
    cu::attention_forward<float>(nullptr, s, q, in, in, out, lse, m);
  };
  const auto bwd = [&](const AttnShape& s, AttnOperand<float> dk, const float* l, void* ws, std::size_t ws_bytes,
                       const AttnMask& m) {
    cu::attention_backward<float>(nullptr, s, in, in, in, in, in, l, out, dk, out, m, ws, ws_bytes);
  };
  const std::size_t ws_need = cu::attention_backward_workspace_bytes(good);
  BOOST_TEST(ws_need == 2u * 256u);  // 2·H·Nq = 8 floats, each array padded to 256 bytes
  BOOST_TEST(cu::attention_backward_workspace_bytes(AttnShape{2, 3, 100, 7, 64, 1.0}) == 2u * 2560u);
  BOOST_TEST(cu::attention_backward_workspace_bytes(AttnShape{0, 3, 100, 7, 64, 1.0}) == 0u);

  // Head dims outside [1, 128].
  AttnShape s = good;
  s.head_dim = 129;
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { fwd(s, in, AttnMask::full()); },
                                           {"jepa: cuda::attention_forward: AttnShape.head_dim = 129 is invalid",
                                            "[1, 128]"}));
  s.head_dim = 0;
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { bwd(s, out, lse, buf, ws_need, AttnMask::full()); },
                                           {"cuda::attention_backward: AttnShape.head_dim = 0 is invalid"}));
  s = good;
  s.q_len = -1;
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { fwd(s, in, AttnMask::full()); }, {"AttnShape.q_len = -1"}));
  s = good;
  s.scale = std::numeric_limits<double>::infinity();
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { fwd(s, in, AttnMask::full()); }, {"AttnShape.scale", "finite"}));

  // Null operands, lse and workspace.
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { fwd(good, null_in, AttnMask::full()); },
                                           {"cuda::attention_forward: q.data = null is invalid"}));
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { bwd(good, null_out, lse, buf, ws_need, AttnMask::full()); },
                                           {"cuda::attention_backward: dk.data = null"}));
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { bwd(good, out, nullptr, buf, ws_need, AttnMask::full()); },
                                           {"cuda::attention_backward: lse.data = null"}));
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { bwd(good, out, lse, nullptr, ws_need, AttnMask::full()); },
                                           {"workspace.data = null"}));
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { bwd(good, out, lse, buf, 16, AttnMask::full()); },
                                           {"workspace of 16 bytes is too small", "attention_backward_workspace_bytes = 512"}));

  // Masks: block 0, a dense mask without bytes, a dense row shorter than kv_len.
  AttnMask m;
  m.kind = AttnMask::Kind::block_causal;
  m.block = 0;
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { fwd(good, in, m); }, {"cuda::attention_forward: AttnMask.block = 0"}));
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { bwd(good, out, lse, buf, ws_need, m); },
                                           {"cuda::attention_backward: AttnMask.block = 0"}));
  m = AttnMask{};
  m.kind = AttnMask::Kind::dense;
  m.cols = 4;
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { fwd(good, in, m); }, {"AttnMask.allowed = null", "device memory"}));
  m.allowed = bytes;
  m.cols = 3;  // kv_len is 4
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { fwd(good, in, m); }, {"AttnMask.cols = 3", "kv_len = 4"}));

  // Empty problems are valid, need no pointers and make no CUDA call.
  s = good;
  s.batch = 0;
  BOOST_CHECK_NO_THROW(cu::attention_forward<float>(nullptr, s, null_in, null_in, null_in, null_out, nullptr,
                                                      AttnMask::causal_mask()));
  BOOST_CHECK_NO_THROW(cu::attention_backward<float>(nullptr, s, null_in, null_in, null_in, null_in, null_in, nullptr,
                                                       null_out, null_out, null_out, AttnMask::full(), nullptr, 0));
  s = good;
  s.q_len = 0;
  BOOST_CHECK_NO_THROW(cu::attention_forward<jepa::bf16>(nullptr, s, {}, {}, {}, {}, nullptr, AttnMask::full()));
}

BOOST_AUTO_TEST_SUITE_END()

// ---- device masks (masks.cuh): argument checks before any launch ----
#include "jepa/backend/cuda/masks.cuh"

BOOST_AUTO_TEST_SUITE(cuda_masks_host_checks)

BOOST_AUTO_TEST_CASE(multiblock3d_sample_validates_like_the_cpu_policy) {
  const auto policy = jepa::masking::Multiblock3d::vjepa();
  const jepa::nn::TokenGrid grid{4, 6, 10};
  const cu::Multiblock3dBuffers none{};
  // Batch range, generator and grid: the CPU policy's own checks and wording.
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { cu::multiblock3d_sample(policy, grid, 1, 2, 0, 0, 0, none, nullptr); },
                                           {"batch = 0 is invalid for Multiblock3d"}));
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { cu::multiblock3d_sample(policy, grid, 1, 2, -1, 4, 0, none, nullptr); },
                                           {"cuda::multiblock3d_sample", "first (row) = -1"}));
  BOOST_TEST(throws_with<jepa::IndexError>([&] { cu::multiblock3d_sample(policy, grid, 1, 2, 0, 4, 2, none, nullptr); },
                                           {"Multiblock3d generator = 2"}));
  BOOST_TEST(throws_with<jepa::ShapeError>(
      [&] { cu::multiblock3d_sample(policy, jepa::nn::TokenGrid{0, 6, 10}, 1, 2, 0, 4, 0, none, nullptr); },
      {"TokenGrid = 0x6x10 is invalid for Multiblock3d"}));
  // A block that covers the whole grid cannot be drawn (ConfigError, as sample() throws).
  jepa::masking::BlockGenerator all{};
  all.num_blocks = 1;
  all.spatial_scale = {1.0, 1.0};
  all.aspect = {1.0, 1.0};
  const jepa::masking::Multiblock3d full({all});
  BOOST_TEST(throws_with<jepa::ConfigError>(
      [&] { cu::multiblock3d_sample(full, jepa::nn::TokenGrid{2, 4, 4}, 1, 2, 0, 4, 0, none, nullptr); },
      {"leave no context token"}));
  // Null device buffers (checked after the policy's checks).
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { cu::multiblock3d_sample(policy, grid, 1, 2, 0, 4, 0, none, nullptr); },
                                           {"cuda::multiblock3d_sample: `masked` is a null pointer"}));
}

BOOST_AUTO_TEST_SUITE_END()

// ---- device losses (losses.cuh): argument checks before any launch ----
#include "jepa/backend/cuda/losses.cuh"

BOOST_AUTO_TEST_SUITE(cuda_losses_host_checks)

BOOST_AUTO_TEST_CASE(level_loss_and_distance_weights_validate_their_arguments) {
  // Fake (never dereferenced) device pointers: every check fires before a launch.
  const float* pred = reinterpret_cast<const float*>(std::uintptr_t{256});
  const std::int64_t* idx = reinterpret_cast<const std::int64_t*>(std::uintptr_t{512});
  double* rows = reinterpret_cast<double*>(std::uintptr_t{1024});
  double* res = reinterpret_cast<double*>(std::uintptr_t{2048});
  int* bad = reinterpret_cast<int*>(std::uintptr_t{4096});
  const float* tg[2] = {pred, nullptr};
  const double w[2] = {0.5, 0.5};
  const jepa::losses::L1 l1;
  const std::size_t ws = cu::level_loss_workspace_bytes(2, 3);
  BOOST_TEST(ws == 6 * sizeof(double));
  auto call = [&](jepa::index_t B, jepa::index_t L, const float* p, const float* const* t, double* r, std::size_t rb) {
    cu::level_loss(l1, p, B, 3, L, 8, t, w, 10, idx, static_cast<const float*>(nullptr), 1.0,
                     static_cast<float*>(nullptr), r, rb, res, bad, nullptr);
  };
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { call(0, 1, pred, tg, rows, ws); },
                                           {"cuda::level_loss: B (batch) = 0 is invalid"}));
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { call(2, 9, pred, tg, rows, ws); },
                                           {"cuda::level_loss: L (levels) = 9 is invalid: at most 8"}));
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { call(2, 1, nullptr, tg, rows, ws); }, {"`pred` is a null pointer"}));
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { call(2, 1, pred, tg, rows, ws - 1); },
                                           {"rows workspace of 47 bytes is too small", "level_loss_workspace_bytes = 48"}));
  BOOST_TEST(throws_with<jepa::ShapeError>([&] { call(2, 2, pred, tg, rows, ws); }, {"`targets[1]` is a null pointer"}));
  float* wt = reinterpret_cast<float*>(std::uintptr_t{8192});
  BOOST_TEST(throws_with<jepa::ShapeError>(
      [&] { cu::context_distance_weights(idx, 4, idx, 0, 2, jepa::nn::TokenGrid{2, 4, 4}, wt, bad, nullptr); },
      {"at least one target token"}));
  BOOST_TEST(throws_with<jepa::ShapeError>(
      [&] { cu::context_distance_weights(idx, 4, idx, 3, 2, jepa::nn::TokenGrid{2, 0, 4}, wt, bad, nullptr); },
      {"TokenGrid = 2x0x4 is invalid"}));
  BOOST_TEST(throws_with<jepa::ShapeError>(
      [&] { cu::context_distance_weights(idx, 4, idx, 3, 2, jepa::nn::TokenGrid{2, 4, 4}, wt, nullptr, nullptr); },
      {"`bad` is a null pointer"}));
}

BOOST_AUTO_TEST_SUITE_END()
