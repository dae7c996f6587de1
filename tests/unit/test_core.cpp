// Core: Philox known-answer tests, counter-based streams, distributions, bf16 rounding, memory plans,
// and thread-count independence of parameter initialisation.
#include <boost/test/unit_test.hpp>
#include <cmath>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "jepa/jepa.hpp"

using namespace jepa;

BOOST_AUTO_TEST_CASE(philox_known_answers) {
  // Random123's philox4x32-10 known-answer vectors.
  std::uint32_t out[4];
  const std::uint32_t zero[4] = {0, 0, 0, 0};
  Philox4x32::block(zero, 0, 0, out);
  BOOST_TEST(out[0] == 0x6627e8d5u);
  BOOST_TEST(out[1] == 0xe169c58du);
  BOOST_TEST(out[2] == 0xbc57ac4cu);
  BOOST_TEST(out[3] == 0x9b00dbd8u);
  const std::uint32_t ones[4] = {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu};
  Philox4x32::block(ones, 0xffffffffu, 0xffffffffu, out);
  BOOST_TEST(out[0] == 0x408f276du);
  BOOST_TEST(out[1] == 0x41c83b0eu);
  BOOST_TEST(out[2] == 0xa20bc7c6u);
  BOOST_TEST(out[3] == 0x6d5451fdu);
  const std::uint32_t pi[4] = {0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u};
  Philox4x32::block(pi, 0xa4093822u, 0x299f31d0u, out);
  BOOST_TEST(out[0] == 0xd16cfe09u);
  BOOST_TEST(out[1] == 0x94fdccebu);
  BOOST_TEST(out[2] == 0x5001e420u);
  BOOST_TEST(out[3] == 0x24126ea1u);
}

BOOST_AUTO_TEST_CASE(counter_based_streams) {
  Rng a(42, 7);
  std::vector<std::uint32_t> seq;
  for (int i = 0; i < 37; ++i) seq.push_back(a.next_u32());
  // Jumping anywhere reproduces the same words; position() resumes exactly.
  for (std::uint64_t start : {0u, 1u, 5u, 16u, 33u}) {
    Rng b(42, 7, start);
    for (std::uint64_t i = start; i < seq.size(); ++i) BOOST_TEST(b.next_u32() == seq[i]);
  }
  Rng c(42, 7);
  for (int i = 0; i < 11; ++i) c.next_u32();
  Rng d(42, 7, c.position());
  BOOST_TEST(d.next_u32() == c.next_u32());
  // Different streams and seeds differ.
  BOOST_TEST(Rng(42, 8).next_u32() != seq[0]);
  BOOST_TEST(Rng(43, 7).next_u32() != seq[0]);
}

BOOST_AUTO_TEST_CASE(distributions) {
  Rng r(1, 2);
  const int n = 200000;
  double s = 0, s2 = 0, su = 0;
  int in_bounds = 0;
  std::vector<int> hist(10);
  for (int i = 0; i < n; ++i) {
    const double u = r.uniform();
    BOOST_REQUIRE(u >= 0.0);
    BOOST_REQUIRE(u < 1.0);
    su += u;
    const double z = r.normal();
    s += z, s2 += z * z;
    const double t = r.trunc_normal(0, 1, -0.5, 0.5);
    in_bounds += (t >= -0.5 && t <= 0.5);
    hist[r.uniform_int(10)]++;
  }
  BOOST_TEST(su / n == 0.5, boost::test_tools::tolerance(0.01));
  BOOST_TEST(std::abs(s / n) < 0.01);
  BOOST_TEST(s2 / n == 1.0, boost::test_tools::tolerance(0.02));
  BOOST_TEST(in_bounds == n);
  for (int h : hist) BOOST_TEST(std::abs(h - n / 10) < n / 100);
}

BOOST_AUTO_TEST_CASE(bf16_rounding) {
  BOOST_TEST(static_cast<float>(bf16(1.0f)) == 1.0f);
  BOOST_TEST(bf16(1.0f).bits == 0x3f80);
  // 1 + 2^-8 is exactly half-way between 1 and 1 + 2^-7: ties to even → 1.
  BOOST_TEST(static_cast<float>(bf16(1.0f + 1.0f / 256)) == 1.0f);
  // 1 + 3·2^-8 is half-way between 1 + 2^-7 and 1 + 2^-6: ties to even → 1 + 2^-6.
  BOOST_TEST(static_cast<float>(bf16(1.0f + 3.0f / 256)) == 1.0f + 1.0f / 64);
  BOOST_TEST(std::isnan(static_cast<float>(bf16(std::nanf("")))));
  BOOST_TEST(std::isinf(static_cast<float>(bf16(INFINITY))));
  BOOST_TEST(static_cast<float>(bf16(-2.5f)) == -2.5f);
  BOOST_TEST(dtype_size(DType::bf16) == 2u);
  BOOST_TEST(dtype_name(dtype_of_v<double>) == "float64");
}

BOOST_AUTO_TEST_CASE(memory_plan_and_arena) {
  MemoryPlan plan(MemoryCategory::activations);
  const auto a = plan.add("a", {3, 5}, DType::f32);
  const auto b = plan.add("b", {7}, DType::f64);
  const auto c = plan.add("c", {2, 2, 2}, DType::bf16);
  BOOST_TEST(plan.spec(a).offset == 0u);
  BOOST_TEST(plan.spec(b).offset % MemoryPlan::kAlignment == 0u);
  BOOST_TEST(plan.spec(c).offset % MemoryPlan::kAlignment == 0u);
  BOOST_TEST(plan.spec(b).offset >= 60u);
  BOOST_TEST(plan.handle("c") == c);
  BOOST_CHECK_THROW(plan.add("a", {1}, DType::f32), ConfigError);
  BOOST_CHECK_THROW(plan.add("neg", Shape{-1}, DType::f32), ShapeError);
  BOOST_CHECK_THROW(plan.handle("zzz"), IndexError);
  HostArena arena(plan.bytes());
  float* pa = arena.ptr<float>(plan.spec(a));
  double* pb = arena.ptr<double>(plan.spec(b));
  BOOST_TEST(reinterpret_cast<std::uintptr_t>(pa) % 64 == 0u);
  BOOST_TEST(pb[6] == 0.0);  // arenas start zeroed
  BOOST_CHECK_THROW(arena.ptr<float>(plan.spec(b)), ShapeError);  // wrong dtype names the tensor
  try {
    arena.ptr<float>(plan.spec(b));
  } catch (const ShapeError& e) {
    BOOST_TEST(std::string(e.what()).find("'b'") != std::string::npos);
  }
  // Binder: every request is bound into one allocation.
  Binder<float> binder(MemoryCategory::workspace);
  float *x = nullptr, *y = nullptr;
  binder.request(x, "x", {10});
  binder.request(y, "y", {4, 4});
  HostArena ws;
  binder.bind(ws);
  BOOST_TEST((x != nullptr && y != nullptr && y >= x + 10));
  BOOST_TEST(ws.bytes() == MemoryPlan::align_up(40) + 64);
}

BOOST_AUTO_TEST_CASE(tensor_views) {
  std::vector<float> buf(24);
  for (int i = 0; i < 24; ++i) buf[i] = static_cast<float>(i);
  TensorView<float, 3> v(buf.data(), {2, 3, 4});
  BOOST_TEST(v(1, 2, 3) == 23.0f);
  BOOST_TEST(v.stride(0) == 12);
  BOOST_TEST(v[1](0, 1) == 13.0f);
  BOOST_TEST(v.is_contiguous());
  TensorView<float, 2> col(buf.data(), {3, 2}, {4, 1});
  BOOST_TEST(!col.is_contiguous());
  TensorView<const float, 3> cv = v;
  BOOST_CHECK_THROW(check_shape(cv, {2, 3, 5}, "the test tensor"), ShapeError);
  try {
    check_shape(cv, {2, 3, 5}, "the test tensor");
  } catch (const ShapeError& e) {
    BOOST_TEST(std::string(e.what()) == "jepa: the test tensor has shape [2, 3, 4]; expected [2, 3, 5]");
  }
}

BOOST_AUTO_TEST_CASE(init_independent_of_thread_count) {
  models::presets::VJepa2Encoder<models::presets::vit_tiny> e(models::presets::config(models::presets::vit_tiny));
  nn::ParameterSet<float> p1(e.layout()), p2(e.layout());
#ifdef _OPENMP
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  p1.init(5);
  omp_set_num_threads(2);
  p2.init(5);
  omp_set_num_threads(saved);
#else
  p1.init(5);
  p2.init(5);
#endif
  BOOST_TEST(std::memcmp(p1.data(), p2.data(), p1.numel() * sizeof(float)) == 0);
  nn::ParameterSet<float> p3(e.layout());
  p3.init(6);
  BOOST_TEST(std::memcmp(p1.data(), p3.data(), p1.numel() * sizeof(float)) != 0);
}
