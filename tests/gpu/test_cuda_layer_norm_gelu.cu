// cuda::layer_norm_forward/backward and cuda::gelu_forward/backward against backend::Cpu in double.
// Tolerances (‖gpu − ref‖/‖ref‖, reference from the same rounded inputs):
//   fp32 storage  LN y/dx 1e-5, dw/db 1e-5; GELU 1e-6 (erff/expf are ≤ 2 ulp)
//   bf16 storage  LN y/dx 1e-2, dw/db 1e-4 (fp32 gradients from bf16 inputs: only summation error);
//                 GELU 8e-3 (one rounding of the output to 8 bits)
// add_layer_norm_forward (the residual add fused into LN): bitwise equal to add + layer_norm_forward.
// D covers the vector path (multiple of 8, aligned) and the scalar path (odd D, offset pointers).
#include "common.cuh"
#include "reference.hpp"

#include "jepa/backend/cuda/activations.cuh"
#include "jepa/backend/cuda/elementwise.cuh"
#include "jepa/backend/cuda/layer_norm.cuh"

namespace {
using namespace jepa::test::gpu;
using jepa::bf16;
using jepa::index_t;

struct LnErrors {
  double y, mean, rstd, dx, dw, db;
};

template <class T>
LnErrors run_layer_norm(index_t M, index_t D, bool affine, bool accumulate, index_t offset, std::uint64_t seed) {
  const float eps = 1e-6f;
  const auto x = random<T>(M * D + offset, seed, 2.0, 0.5), dy = random<T>(M * D + offset, seed + 1);
  const auto w = random<T>(D + offset, seed + 2, 0.5, 1.0), b = random<T>(D + offset, seed + 3);
  const auto dx0 = random<T>(M * D + offset, seed + 4);
  const auto dw0 = random<float>(D, seed + 5), db0 = random<float>(D, seed + 6);
  auto dX = cu::to_device(x), dDY = cu::to_device(dy), dW = cu::to_device(w), dB = cu::to_device(b);
  auto dDX = cu::to_device(dx0);
  auto dDW = cu::to_device(dw0), dDB = cu::to_device(db0);
  cu::DeviceBuffer<T> dY(M * D + offset);
  cu::DeviceBuffer<float> dMean(M), dRstd(M);
  poison(dY.data(), dY.size());
  poison(dMean.data(), M);
  poison(dRstd.data(), M);
  if (!accumulate) poison(dDX.data(), dDX.size());
  const std::size_t ws_bytes = cu::layer_norm_backward_workspace_bytes(M, D);
  cu::DeviceBuffer<std::byte> ws(ws_bytes);
  const T* wp = affine ? dW.data() + offset : nullptr;
  const T* bp = affine ? dB.data() + offset : nullptr;
  cu::Stream stream;
  cu::layer_norm_forward(dX.data() + offset, wp, bp, dY.data() + offset, dMean.data(), dRstd.data(), M, D, eps, stream);
  cu::layer_norm_backward(dX.data() + offset, wp, dMean.data(), dRstd.data(), dDY.data() + offset, dDX.data() + offset,
                            affine ? dDW.data() : nullptr, affine ? dDB.data() : nullptr, M, D, accumulate, ws.data(),
                            ws_bytes, stream);
  stream.synchronize();
  const auto y = to_double(cu::to_host(dY.data() + offset, M * D));
  const auto mean = to_double(cu::to_host(dMean.data(), M)), rstd = to_double(cu::to_host(dRstd.data(), M));
  const auto gdx = to_double(cu::to_host(dDX.data() + offset, M * D));
  const auto gdw = to_double(cu::to_host(dDW.data(), D)), gdb = to_double(cu::to_host(dDB.data(), D));
  BOOST_REQUIRE(all_finite(y) && all_finite(mean) && all_finite(rstd) && all_finite(gdx));

  auto xd = to_double(x), dyd = to_double(dy), wd = to_double(w), bd = to_double(b), rdx = to_double(dx0);
  std::vector<double> ry(M * D), rmean(M), rrstd(M), rdw = to_double(dw0), rdb = to_double(db0);
  const double* rw = affine ? wd.data() + offset : nullptr;
  const double* rb = affine ? bd.data() + offset : nullptr;
  jepa::test::cpu_ref::layer_norm_forward(xd.data() + offset, rw, rb, ry.data(), rmean.data(), rrstd.data(), M, D, eps);
  jepa::test::cpu_ref::layer_norm_backward(xd.data() + offset, rw, rmean.data(), rrstd.data(), dyd.data() + offset,
                                           rdx.data() + offset, affine ? rdw.data() : nullptr, affine ? rdb.data() : nullptr,
                                           M, D, accumulate);
  const std::vector<double> rdx_view(rdx.begin() + offset, rdx.end());
  using jepa::test::rel_error;
  return {rel_error(y, ry), rel_error(mean, rmean), rel_error(rstd, rrstd), rel_error(gdx, rdx_view),
          rel_error(gdw, rdw), rel_error(gdb, rdb)};
}

template <class T>
double run_gelu(index_t n, index_t offset, bool backward, std::uint64_t seed) {
  const auto x = random<T>(n + offset, seed, 3.0), dy = random<T>(n + offset, seed + 1);
  auto dX = cu::to_device(x), dDY = cu::to_device(dy);
  cu::DeviceBuffer<T> dOut(n + offset);
  poison(dOut.data(), dOut.size());
  if (backward) cu::gelu_backward(dX.data() + offset, dDY.data() + offset, dOut.data() + offset, n, nullptr);
  else cu::gelu_forward(dX.data() + offset, dOut.data() + offset, n, nullptr);
  JEPA_CUDA_CHECK(cudaDeviceSynchronize());
  const auto got = to_double(cu::to_host(dOut.data() + offset, n));
  BOOST_REQUIRE(all_finite(got));
  const auto xd = to_double(x), dyd = to_double(dy);
  std::vector<double> ref(n);
  if (backward) jepa::test::cpu_ref::gelu_backward(xd.data() + offset, dyd.data() + offset, ref.data(), n);
  else jepa::test::cpu_ref::gelu_forward(xd.data() + offset, ref.data(), n);
  return jepa::test::rel_error(got, ref);
}
}  // namespace

BOOST_AUTO_TEST_SUITE(cuda_layer_norm)

BOOST_AUTO_TEST_CASE(fp32_matches_cpu) {
  struct S { index_t M, D, offset; bool affine, acc; };
  for (const S s : {S{64, 384, 0, true, false}, S{33, 77, 1, true, true}, S{1000, 1024, 0, false, false},
                    S{5, 1664, 0, true, true}, S{130, 96, 3, false, true}}) {
    const auto e = run_layer_norm<float>(s.M, s.D, s.affine, s.acc, s.offset, 10 + s.D);
    BOOST_TEST_INFO("M=" << s.M << " D=" << s.D << " offset=" << s.offset << " affine=" << s.affine);
    BOOST_TEST(e.y < 1e-5);
    BOOST_TEST(e.mean < 1e-6);
    BOOST_TEST(e.rstd < 1e-6);
    BOOST_TEST(e.dx < 1e-5);
    if (s.affine) {
      BOOST_TEST(e.dw < 1e-5);
      BOOST_TEST(e.db < 1e-5);
    }
  }
}

BOOST_AUTO_TEST_CASE(bf16_matches_cpu) {
  struct S { index_t M, D, offset; bool affine, acc; };
  for (const S s : {S{64, 384, 0, true, false}, S{33, 77, 1, true, true}, S{700, 1024, 0, true, false}}) {
    const auto e = run_layer_norm<bf16>(s.M, s.D, s.affine, s.acc, s.offset, 20 + s.D);
    BOOST_TEST_INFO("M=" << s.M << " D=" << s.D << " offset=" << s.offset);
    BOOST_TEST(e.y < 1e-2);
    BOOST_TEST(e.mean < 1e-5);
    BOOST_TEST(e.rstd < 1e-5);
    BOOST_TEST(e.dx < 1e-2);
    BOOST_TEST(e.dw < 1e-4);
    BOOST_TEST(e.db < 1e-4);
  }
}

/// add_layer_norm_forward against add() then layer_norm_forward() on the device: bitwise equal sum,
/// y, mean and rstd (the fused kernel rounds the sum to T before normalising, as the separate add
/// stores it), in place (sum = a, as the block calls it) and out of place; plus y against the double
/// reference of the rounded sum.
template <class T>
void check_add_layer_norm(index_t M, index_t D, index_t offset, bool in_place, std::uint64_t seed, double tol) {
  const float eps = 1e-6f;
  const auto a = random<T>(M * D + offset, seed, 1.0), r = random<T>(M * D + offset, seed + 1, 2.0, 0.3);
  const auto w = random<T>(D + offset, seed + 2, 0.5, 1.0), b = random<T>(D + offset, seed + 3);
  auto dA = cu::to_device(a), dR = cu::to_device(r), dW = cu::to_device(w), dB = cu::to_device(b);
  auto dA2 = cu::to_device(a);
  cu::DeviceBuffer<T> dS(M * D + offset), dY(M * D + offset), dS2(M * D + offset), dY2(M * D + offset);
  cu::DeviceBuffer<float> m1(M), r1(M), m2(M), r2(M);
  for (auto* p : {&dS, &dY, &dS2, &dY2}) poison(p->data(), p->size());
  cu::Stream stream;
  T* sum = in_place ? dA.data() + offset : dS.data() + offset;
  cu::add_layer_norm_forward(dA.data() + offset, dR.data() + offset, sum, dW.data() + offset, dB.data() + offset,
                               dY.data() + offset, m1.data(), r1.data(), M, D, eps, stream);
  cu::add(dA2.data() + offset, dR.data() + offset, dS2.data() + offset, M * D, stream);
  cu::layer_norm_forward(dS2.data() + offset, dW.data() + offset, dB.data() + offset, dY2.data() + offset, m2.data(),
                           r2.data(), M, D, eps, stream);
  stream.synchronize();
  const auto fs = cu::to_host(sum, M * D), us = cu::to_host(dS2.data() + offset, M * D);
  const auto fy = cu::to_host(dY.data() + offset, M * D), uy = cu::to_host(dY2.data() + offset, M * D);
  BOOST_TEST_INFO("M=" << M << " D=" << D << " offset=" << offset << " in_place=" << in_place);
  BOOST_TEST(bitwise_equal(fs, us));
  BOOST_TEST(bitwise_equal(fy, uy));
  BOOST_TEST(bitwise_equal(cu::to_host(m1.data(), M), cu::to_host(m2.data(), M)));
  BOOST_TEST(bitwise_equal(cu::to_host(r1.data(), M), cu::to_host(r2.data(), M)));
  auto sd = to_double(us), wd = to_double(w), bd = to_double(b);
  std::vector<double> ry(M * D), rmean(M), rrstd(M);
  jepa::test::cpu_ref::layer_norm_forward(sd.data(), wd.data() + offset, bd.data() + offset, ry.data(), rmean.data(),
                                          rrstd.data(), M, D, eps);
  BOOST_TEST(jepa::test::rel_error(to_double(fy), ry) < tol);
}

BOOST_AUTO_TEST_CASE(add_fused_into_layer_norm_equals_add_then_layer_norm) {
  check_add_layer_norm<float>(64, 384, 0, true, 50, 1e-5);   // vector path, in place (the block's call)
  check_add_layer_norm<float>(64, 384, 0, false, 51, 1e-5);
  check_add_layer_norm<float>(33, 77, 1, true, 52, 1e-5);    // scalar path, offset pointers
  check_add_layer_norm<bf16>(130, 1024, 0, true, 53, 1e-2);
  check_add_layer_norm<bf16>(9, 88, 3, false, 54, 1e-2);
  // y may not alias the sum (the row is re-read after y is written).
  cu::DeviceBuffer<float> x(64);
  BOOST_CHECK_THROW(cu::add_layer_norm_forward<float>(x.data(), x.data(), x.data(), nullptr, nullptr, x.data(), nullptr,
                                                        nullptr, 2, 32, 1e-6f, nullptr),
                    jepa::ShapeError);
}

BOOST_AUTO_TEST_CASE(parameter_gradients_are_bitwise_reproducible) {
  const index_t M = 3000, D = 512;
  const auto x = random<float>(M * D, 1), dy = random<float>(M * D, 2);
  auto dX = cu::to_device(x), dDY = cu::to_device(dy);
  cu::DeviceBuffer<float> y(M * D), mean(M), rstd(M), dw(D), db(D);
  cu::DeviceBuffer<std::byte> ws(cu::layer_norm_backward_workspace_bytes(M, D));
  cu::layer_norm_forward<float>(dX.data(), nullptr, nullptr, y.data(), mean.data(), rstd.data(), M, D, 1e-6f, nullptr);
  std::vector<float> first;
  for (int rep = 0; rep < 2; ++rep) {
    dw.zero();
    db.zero();
    cu::layer_norm_backward<float>(dX.data(), nullptr, mean.data(), rstd.data(), dDY.data(), nullptr, dw.data(),
                                     db.data(), M, D, false, ws.data(), ws.size(), nullptr);
    JEPA_CUDA_CHECK(cudaDeviceSynchronize());
    auto h = cu::to_host(dw.data(), D);
    if (rep == 0) first = h;
    else BOOST_TEST(bitwise_equal(first, h));
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(cuda_gelu)

BOOST_AUTO_TEST_CASE(fp32_matches_cpu) {
  for (index_t n : {index_t{1}, index_t{1000}, index_t{1 << 20}})
    for (index_t off : {index_t{0}, index_t{1}}) {
      BOOST_TEST_INFO("n=" << n << " offset=" << off);
      BOOST_TEST(run_gelu<float>(n, off, false, 7 + n) < 1e-6);
      BOOST_TEST(run_gelu<float>(n, off, true, 9 + n) < 1e-6);
    }
}

BOOST_AUTO_TEST_CASE(bf16_matches_cpu) {
  for (index_t n : {index_t{13}, index_t{4096}, index_t{300001}})
    for (index_t off : {index_t{0}, index_t{3}}) {
      BOOST_TEST_INFO("n=" << n << " offset=" << off);
      BOOST_TEST(run_gelu<bf16>(n, off, false, 11 + n) < 8e-3);
      BOOST_TEST(run_gelu<bf16>(n, off, true, 13 + n) < 8e-3);
    }
}

BOOST_AUTO_TEST_CASE(cast_to_bf16_rounds_like_the_host) {
  const index_t n = 10007;
  const auto x = random<float>(n, 5, 10.0);
  auto dX = cu::to_device(x);
  cu::DeviceBuffer<bf16> dY(n);
  cu::cast_to_bf16(dX.data(), dY.data(), n, nullptr);
  JEPA_CUDA_CHECK(cudaDeviceSynchronize());
  const auto y = cu::to_host(dY.data(), n);
  std::size_t mismatches = 0;
  for (index_t i = 0; i < n; ++i) mismatches += y[i].bits != bf16(x[i]).bits;
  BOOST_TEST(mismatches == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
