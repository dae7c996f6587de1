// Tests of jepa/backend/cpu/attention.hpp: flash forward/backward against the naive reference, finite
// differences, mask properties, fully masked rows, thread-count determinism and input validation.
//
// Operands are laid out as at the real call site: q, k, v strided inside a packed (B,N,3·H·Dh) qkv
// buffer (q at h·Dh, k at H·Dh + h·Dh, v at 2·H·Dh + h·Dh), o in a (B,N,H·Dh) buffer. Self-attention
// (Nq = Nk) shares one qkv buffer; cross-length cases take q from one buffer and k, v from another.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "jepa/backend/cpu/attention.hpp"
#include "support/check.hpp"

namespace {

using jepa::index_t;
using jepa::backend::AttnMask;
using jepa::backend::AttnOperand;
using jepa::backend::AttnShape;
namespace cpu = jepa::backend::cpu;

constexpr double kInf = std::numeric_limits<double>::infinity();

struct Case {
  index_t B = 1, H = 1, Nq = 1, Nk = 1, Dh = 8;
  AttnMask::Kind kind = AttnMask::Kind::none;
  index_t block = 1;
  std::uint64_t seed = 1;
  bool masked_rows = false;  // dense: also force a few fully masked query rows

  std::string str() const {
    return jepa::detail::cat("B=", B, " H=", H, " Nq=", Nq, " Nk=", Nk, " Dh=", Dh, " mask=", static_cast<int>(kind),
                             " block=", block);
  }
};

/// Inputs of one case in double, in the call-site layout, plus a dense mask array and dout.
struct Inputs {
  Case c;
  std::vector<double> qbuf, kvbuf;  // (B,Nq,3HDh) and (B,Nk,3HDh); the same buffer when Nq = Nk
  std::vector<double> dout;         // (B,Nq,HDh)
  std::vector<std::uint8_t> allowed;
  bool shared() const { return c.Nq == c.Nk; }
  AttnShape shape() const { return {c.B, c.H, c.Nq, c.Nk, c.Dh, 1.0 / std::sqrt(static_cast<double>(c.Dh))}; }
  AttnMask mask() const {
    switch (c.kind) {
      case AttnMask::Kind::none: return AttnMask::full();
      case AttnMask::Kind::causal: return AttnMask::causal_mask();
      case AttnMask::Kind::block_causal: return AttnMask::block_causal_mask(c.block);
      case AttnMask::Kind::dense: return AttnMask::dense_mask(allowed.data(), c.Nk);
    }
    return {};
  }
};

Inputs make_inputs(const Case& c) {
  Inputs in;
  in.c = c;
  const index_t w = 3 * c.H * c.Dh;
  in.qbuf = jepa::test::random_vector<double>(static_cast<std::size_t>(c.B * c.Nq * w), c.seed);
  if (!in.shared()) in.kvbuf = jepa::test::random_vector<double>(static_cast<std::size_t>(c.B * c.Nk * w), c.seed + 1);
  in.dout = jepa::test::random_vector<double>(static_cast<std::size_t>(c.B * c.Nq * c.H * c.Dh), c.seed + 2);
  in.allowed.assign(static_cast<std::size_t>(std::max<index_t>(c.Nq * c.Nk, 1)), 1);
  if (c.kind == AttnMask::Kind::dense) {
    jepa::Rng r(c.seed + 3, 0);
    for (auto& a : in.allowed) a = r.uniform() < 0.7 ? 1 : 0;
    if (c.masked_rows)
      for (index_t i = 0; i < c.Nq; i += 3)
        for (index_t j = 0; j < c.Nk; ++j) in.allowed[static_cast<std::size_t>(i * c.Nk + j)] = 0;
  }
  return in;
}

/// Operand views over buffers of element type T in the call-site layout.
template <class T>
struct Views {
  index_t B, H, Nq, Nk, Dh;
  T* qbuf;
  T* kvbuf;
  T* obuf;
  AttnOperand<T> q() const { return {qbuf, Nq * 3 * H * Dh, 3 * H * Dh, Dh}; }
  AttnOperand<T> k() const { return {kvbuf + H * Dh, Nk * 3 * H * Dh, 3 * H * Dh, Dh}; }
  AttnOperand<T> v() const { return {kvbuf + 2 * H * Dh, Nk * 3 * H * Dh, 3 * H * Dh, Dh}; }
  AttnOperand<T> o() const { return {obuf, Nq * H * Dh, H * Dh, Dh}; }
};
template <class T>
AttnOperand<const T> cview(AttnOperand<T> x) {
  return {x.data, x.batch_stride, x.row_stride, x.head_stride};
}

/// Everything a forward + backward produces, gathered densely as (B,H,N,Dh) in double.
struct Result {
  std::vector<double> o, lse, dq, dk, dv;
};

template <class T>
std::vector<double> gather(AttnOperand<T> x, index_t B, index_t H, index_t N, index_t Dh) {
  std::vector<double> out;
  out.reserve(static_cast<std::size_t>(B * H * N * Dh));
  for (index_t b = 0; b < B; ++b)
    for (index_t h = 0; h < H; ++h)
      for (index_t n = 0; n < N; ++n)
        for (index_t c = 0; c < Dh; ++c) out.push_back(static_cast<double>(x.at(b, h, n)[c]));
  return out;
}

enum class Impl { naive, flash };

/// Runs forward and backward of `impl` in precision T. Gradient buffers start as NaN so that any
/// element the backward fails to overwrite shows up.
template <class T>
Result run(const Inputs& in, Impl impl) {
  const Case& c = in.c;
  std::vector<T> qbuf(in.qbuf.begin(), in.qbuf.end()), kvbuf(in.kvbuf.begin(), in.kvbuf.end());
  std::vector<T> obuf(static_cast<std::size_t>(c.B * c.Nq * c.H * c.Dh), T(-7));
  std::vector<T> dout(in.dout.begin(), in.dout.end());
  std::vector<T> lse(static_cast<std::size_t>(c.B * c.H * c.Nq), T(-7));
  const T nan = std::numeric_limits<T>::quiet_NaN();
  std::vector<T> dqbuf(qbuf.size(), nan), dkvbuf(kvbuf.size(), nan);
  T* kv = in.shared() ? qbuf.data() : kvbuf.data();
  T* dkv = in.shared() ? dqbuf.data() : dkvbuf.data();
  const Views<T> x{c.B, c.H, c.Nq, c.Nk, c.Dh, qbuf.data(), kv, obuf.data()};
  const Views<T> g{c.B, c.H, c.Nq, c.Nk, c.Dh, dqbuf.data(), dkv, dout.data()};
  const AttnShape s = in.shape();
  const AttnMask m = in.mask();
  if (impl == Impl::flash) {
    cpu::attention_flash_forward<T>(s, cview(x.q()), cview(x.k()), cview(x.v()), x.o(), lse.data(), m);
    cpu::attention_flash_backward<T>(s, cview(x.q()), cview(x.k()), cview(x.v()), cview(x.o()), cview(g.o()),
                                     lse.data(), g.q(), g.k(), g.v(), m);
  } else {
    cpu::attention_naive_forward<T>(s, cview(x.q()), cview(x.k()), cview(x.v()), x.o(), lse.data(), m);
    cpu::attention_naive_backward<T>(s, cview(x.q()), cview(x.k()), cview(x.v()), cview(x.o()), cview(g.o()),
                                     lse.data(), g.q(), g.k(), g.v(), m);
  }
  Result r;
  r.o = gather(x.o(), c.B, c.H, c.Nq, c.Dh);
  r.lse.assign(lse.begin(), lse.end());
  r.dq = gather(g.q(), c.B, c.H, c.Nq, c.Dh);
  r.dk = gather(g.k(), c.B, c.H, c.Nk, c.Dh);
  r.dv = gather(g.v(), c.B, c.H, c.Nk, c.Dh);
  return r;
}

/// Norm-wise relative error of lse over finite entries; -inf entries must coincide (else returns inf).
double lse_error(const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<double> fa, fb;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::isinf(a[i]) || std::isinf(b[i])) {
      if (!(a[i] == -kInf && b[i] == -kInf)) return kInf;
      continue;
    }
    fa.push_back(a[i]);
    fb.push_back(b[i]);
  }
  return fa.empty() ? 0.0 : jepa::test::rel_error(fa, fb);
}

/// ‖a − b‖₂ / max(‖b‖₂, √n): the norm-wise relative error, except where the reference is (nearly)
/// zero — e.g. dq when every query sees exactly one key, so o = v and dS = 0 up to rounding — where it
/// becomes the RMS error against the unit scale of the data (all inputs are N(0, 1)).
double rel_error_floor(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size()) return kInf;
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return std::sqrt(num) / std::max(std::sqrt(den), std::sqrt(static_cast<double>(a.size())));
}

/// Relative error of every output; NaN anywhere counts as an infinite error.
double max_error(const Result& a, const Result& b) {
  double e = lse_error(a.lse, b.lse);
  for (auto p : {&Result::o, &Result::dq, &Result::dk, &Result::dv}) {
    const double r = rel_error_floor(a.*p, b.*p);
    e = std::max(e, std::isnan(r) ? kInf : r);
  }
  return e;
}

std::vector<Case> sweep_cases() {
  const index_t lens[] = {1, 5, 63, 64, 65, 130};
  const index_t dims[] = {7, 32, 64, 80, 88, 104};
  const index_t blocks[] = {3, 17, 64, 40};
  const AttnMask::Kind kinds[] = {AttnMask::Kind::none, AttnMask::Kind::causal, AttnMask::Kind::block_causal,
                                  AttnMask::Kind::dense};
  std::vector<Case> cases;
  std::uint64_t n = 0;
  for (index_t nq : lens)
    for (index_t nk : lens)
      for (auto kind : kinds) {
        Case c;
        c.B = 1 + static_cast<index_t>(n % 2);
        c.H = (n / 2) % 2 == 0 ? 1 : 3;
        c.Nq = nq;
        c.Nk = nk;
        c.Dh = dims[(n * 5 + n / 7) % 6];
        c.kind = kind;
        c.block = blocks[n % 4];
        c.seed = 100 + n;
        c.masked_rows = n % 3 == 0;
        cases.push_back(c);
        ++n;
      }
  // Every head dim on a shape that exercises query and key tails of both passes.
  for (index_t dh : dims)
    for (auto kind : kinds) {
      Case c{2, 3, 130, 65, dh, kind, 17, 900 + n++, true};
      cases.push_back(c);
      cases.push_back(Case{1, 3, 65, 130, dh, kind, 40, 900 + n++, false});
    }
  return cases;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(attention)

// Flash vs naive, both in double: relative (norm-wise) error ≤ 1e-12 on o, lse, dq, dk, dv for every
// swept case (B ∈ {1,2}, H ∈ {1,3}, Nq, Nk ∈ {1,5,63,64,65,130}, Dh ∈ {7,32,64,80,88,104}, all masks).
BOOST_AUTO_TEST_CASE(flash_matches_naive_double) {
  double worst = 0;
  for (const Case& c : sweep_cases()) {
    const Inputs in = make_inputs(c);
    const double e = max_error(run<double>(in, Impl::flash), run<double>(in, Impl::naive));
    BOOST_TEST(e <= 1e-12, c.str() << ": rel error " << e);
    worst = std::max(worst, e);
  }
  BOOST_TEST_MESSAGE("flash vs naive (double): worst rel error " << worst);
}

// Flash in float vs naive in double: relative error ≤ 1e-5 on every output.
BOOST_AUTO_TEST_CASE(flash_float_matches_naive_double) {
  std::vector<Case> cases = sweep_cases();
  cases.push_back(Case{1, 2, 300, 300, 64, AttnMask::Kind::none, 1, 7, false});
  cases.push_back(Case{1, 2, 516, 516, 64, AttnMask::Kind::block_causal, 258, 8, false});
  double worst = 0;
  for (const Case& c : cases) {
    const Inputs in = make_inputs(c);
    const double e = max_error(run<float>(in, Impl::flash), run<double>(in, Impl::naive));
    BOOST_TEST(e <= 1e-5, c.str() << ": rel error " << e);
    worst = std::max(worst, e);
  }
  BOOST_TEST_MESSAGE("flash (float) vs naive (double): worst rel error " << worst);
}

// Gradient check in double: the naive and flash backward against central finite differences
// (h = 1e-6) of L = Σ dout ∘ o with respect to every entry of the qkv buffer(s): rel error ≤ 1e-7.
BOOST_AUTO_TEST_CASE(backward_matches_finite_differences) {
  const AttnMask::Kind kinds[] = {AttnMask::Kind::none, AttnMask::Kind::causal, AttnMask::Kind::block_causal,
                                  AttnMask::Kind::dense};
  double worst = 0;
  for (auto kind : kinds)
    for (const Case& c : {Case{1, 2, 6, 6, 3, kind, 2, 31, true}, Case{2, 1, 5, 7, 4, kind, 3, 37, true}}) {
      Inputs in = make_inputs(c);
      const AttnShape s = in.shape();
      const auto loss = [&] {
        std::vector<double> obuf(in.dout.size());
        double* kv = in.shared() ? in.qbuf.data() : in.kvbuf.data();
        const Views<double> x{c.B, c.H, c.Nq, c.Nk, c.Dh, in.qbuf.data(), kv, obuf.data()};
        cpu::attention_naive_forward<double>(s, cview(x.q()), cview(x.k()), cview(x.v()), x.o(), nullptr, in.mask());
        return jepa::test::dot(obuf.data(), in.dout.data(), obuf.size());
      };
      std::vector<double> num_q = jepa::test::numerical_gradient(in.qbuf.data(), in.qbuf.size(), loss, 1e-6);
      std::vector<double> num_kv =
          in.shared() ? std::vector<double>{}
                      : jepa::test::numerical_gradient(in.kvbuf.data(), in.kvbuf.size(), loss, 1e-6);
      for (Impl impl : {Impl::naive, Impl::flash}) {
        // Analytic gradient of the qkv buffer(s): slots the backward does not own stay 0.
        std::vector<double> obuf(in.dout.size()), lse(static_cast<std::size_t>(c.B * c.H * c.Nq));
        std::vector<double> gq(in.qbuf.size(), 0.0), gkv(in.kvbuf.size(), 0.0);
        std::vector<double> dout = in.dout;
        double* kv = in.shared() ? in.qbuf.data() : in.kvbuf.data();
        double* gk = in.shared() ? gq.data() : gkv.data();
        const Views<double> x{c.B, c.H, c.Nq, c.Nk, c.Dh, in.qbuf.data(), kv, obuf.data()};
        const Views<double> g{c.B, c.H, c.Nq, c.Nk, c.Dh, gq.data(), gk, dout.data()};
        if (impl == Impl::flash) {
          cpu::attention_flash_forward<double>(s, cview(x.q()), cview(x.k()), cview(x.v()), x.o(), lse.data(),
                                               in.mask());
          cpu::attention_flash_backward<double>(s, cview(x.q()), cview(x.k()), cview(x.v()), cview(x.o()),
                                                cview(g.o()), lse.data(), g.q(), g.k(), g.v(), in.mask());
        } else {
          cpu::attention_naive_forward<double>(s, cview(x.q()), cview(x.k()), cview(x.v()), x.o(), lse.data(),
                                               in.mask());
          cpu::attention_naive_backward<double>(s, cview(x.q()), cview(x.k()), cview(x.v()), cview(x.o()),
                                                cview(g.o()), lse.data(), g.q(), g.k(), g.v(), in.mask());
        }
        const double eq = jepa::test::rel_error(gq, num_q);
        BOOST_TEST(eq <= 1e-7, c.str() << (impl == Impl::flash ? " flash" : " naive") << ": dqkv rel error " << eq);
        worst = std::max(worst, eq);
        if (!in.shared()) {
          const double ekv = jepa::test::rel_error(gkv, num_kv);
          BOOST_TEST(ekv <= 1e-7, c.str() << (impl == Impl::flash ? " flash" : " naive") << ": dkv rel error " << ekv);
          worst = std::max(worst, ekv);
        }
      }
    }
  BOOST_TEST_MESSAGE("backward vs finite differences: worst rel error " << worst);
}

// Block-causal masks: perturbing keys and values of the last block leaves o, lse and dq of every query
// in earlier blocks bitwise unchanged (float and double; the AC layout with blocks of 258 tokens).
template <class T>
void check_block_causal_locality() {
  const index_t block = 258, blocks = 3;
  Case c{1, 2, block * blocks, block * blocks, 64, AttnMask::Kind::block_causal, block, 55, false};
  Inputs in = make_inputs(c);
  const Result base = run<T>(in, Impl::flash);
  const index_t w = 3 * c.H * c.Dh;
  jepa::Rng r(77, 0);
  for (index_t n = block * (blocks - 1); n < c.Nk; ++n)
    for (index_t ch = c.H * c.Dh; ch < w; ++ch) in.qbuf[static_cast<std::size_t>(n * w + ch)] += r.normal();
  const Result changed = run<T>(in, Impl::flash);
  const index_t early = block * (blocks - 1);
  std::size_t differ = 0, lse_differ = 0;
  for (index_t h = 0; h < c.H; ++h)
    for (index_t i = 0; i < early; ++i) {
      const std::size_t row = static_cast<std::size_t>(h * c.Nq + i);
      lse_differ += std::memcmp(&base.lse[row], &changed.lse[row], sizeof(double)) != 0;
      for (index_t ch = 0; ch < c.Dh; ++ch) {
        const std::size_t at = row * static_cast<std::size_t>(c.Dh) + static_cast<std::size_t>(ch);
        differ += std::memcmp(&base.o[at], &changed.o[at], sizeof(double)) != 0;
        differ += std::memcmp(&base.dq[at], &changed.dq[at], sizeof(double)) != 0;
      }
    }
  BOOST_TEST(differ == 0u);
  BOOST_TEST(lse_differ == 0u);
  // The perturbation does reach the last block's queries.
  BOOST_TEST(std::memcmp(&base.o.back(), &changed.o.back(), sizeof(double)) != 0);
}
BOOST_AUTO_TEST_CASE(block_causal_earlier_blocks_are_unchanged) {
  check_block_causal_locality<float>();
  check_block_causal_locality<double>();
}

// Dense mask with fully masked query rows: o = 0 and lse = −∞ exactly for those rows, dq = 0 for them,
// and every gradient finite and equal to the naive one (double ≤ 1e-12, float ≤ 1e-5).
template <class T>
void check_fully_masked_rows(double tol) {
  Case c{2, 3, 70, 90, 32, AttnMask::Kind::dense, 1, 61, true};
  const Inputs in = make_inputs(c);
  const Result f = run<T>(in, Impl::flash);
  for (const auto* v : {&f.o, &f.lse, &f.dq, &f.dk, &f.dv})
    for (double x : *v) BOOST_REQUIRE(!std::isnan(x));
  for (const auto* v : {&f.o, &f.dq, &f.dk, &f.dv})
    for (double x : *v) BOOST_REQUIRE(std::isfinite(x));
  std::size_t bad = 0;
  for (index_t b = 0; b < c.B; ++b)
    for (index_t h = 0; h < c.H; ++h)
      for (index_t i = 0; i < c.Nq; i += 3) {
        const std::size_t row = static_cast<std::size_t>((b * c.H + h) * c.Nq + i);
        bad += f.lse[row] != -kInf;
        for (index_t ch = 0; ch < c.Dh; ++ch) {
          const std::size_t at = row * static_cast<std::size_t>(c.Dh) + static_cast<std::size_t>(ch);
          bad += f.o[at] != 0.0;
          bad += f.dq[at] != 0.0;
        }
      }
  BOOST_TEST(bad == 0u);
  const double e = max_error(f, run<double>(in, Impl::naive));
  BOOST_TEST(e <= tol, "rel error " << e);
}
BOOST_AUTO_TEST_CASE(fully_masked_rows) {
  check_fully_masked_rows<double>(1e-12);
  check_fully_masked_rows<float>(1e-5);
}

// Zero-length keys: every row is fully masked; o = 0, lse = −∞, dq = 0.
BOOST_AUTO_TEST_CASE(empty_keys) {
  Case c{1, 2, 9, 0, 16, AttnMask::Kind::none, 1, 5, false};
  const Result f = run<float>(make_inputs(c), Impl::flash);
  for (double x : f.o) BOOST_TEST(x == 0.0);
  for (double x : f.dq) BOOST_TEST(x == 0.0);
  for (double x : f.lse) BOOST_TEST(x == -kInf);
}

// The same forward + backward with 1, 2, 3 and 4 threads is bitwise identical (this also compares the
// per-head backward schedule with the two-pass one, which the thread count selects).
BOOST_AUTO_TEST_CASE(deterministic_across_thread_counts) {
#ifdef _OPENMP
  const int saved = omp_get_max_threads();
  const Case cases[] = {Case{1, 1, 300, 300, 64, AttnMask::Kind::none, 1, 3, false},
                        Case{1, 2, 200, 170, 88, AttnMask::Kind::causal, 1, 4, false},
                        Case{1, 5, 260, 260, 32, AttnMask::Kind::block_causal, 50, 5, false},
                        Case{2, 3, 150, 150, 7, AttnMask::Kind::dense, 1, 6, true}};
  for (const Case& c : cases) {
    const Inputs in = make_inputs(c);
    omp_set_num_threads(1);
    const Result ref = run<float>(in, Impl::flash);
    for (int nt : {2, 3, 4}) {
      omp_set_num_threads(nt);
      const Result r = run<float>(in, Impl::flash);
      for (auto v : {&Result::o, &Result::lse, &Result::dq, &Result::dk, &Result::dv}) {
        const auto& a = ref.*v;
        const auto& b = r.*v;
        BOOST_TEST_REQUIRE(a.size() == b.size());
        BOOST_TEST(std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0,
                   c.str() << ": differs with " << nt << " threads");
      }
    }
  }
  omp_set_num_threads(saved);
#else
  // Without OpenMP: two runs are bitwise identical.
  const Inputs in = make_inputs(Case{1, 2, 200, 170, 88, AttnMask::Kind::causal, 1, 4, false});
  const Result a = run<float>(in, Impl::flash), b = run<float>(in, Impl::flash);
  for (auto v : {&Result::o, &Result::lse, &Result::dq, &Result::dk, &Result::dv})
    BOOST_TEST(std::memcmp((a.*v).data(), (b.*v).data(), (a.*v).size() * sizeof(double)) == 0);
#endif
}

// Invalid shapes throw jepa::ShapeError naming the field.
BOOST_AUTO_TEST_CASE(invalid_shapes_throw) {
  std::vector<float> buf(64, 0.0f), lse(8, 0.0f);
  const AttnOperand<const float> in{buf.data(), 16, 8, 8};
  const AttnOperand<float> out{buf.data(), 16, 8, 8};
  const auto fwd = [&](const AttnShape& s) {
    cpu::attention_flash_forward<float>(s, in, in, in, out, lse.data(), AttnMask::full());
  };
  const auto bwd = [&](const AttnShape& s) {
    cpu::attention_flash_backward<float>(s, in, in, in, in, in, lse.data(), out, out, out, AttnMask::full());
  };
  const auto message_names = [](const char* field) {
    return [field](const jepa::ShapeError& e) { return std::string(e.what()).find(field) != std::string::npos; };
  };
  const std::pair<AttnShape, const char*> bad[] = {{{1, 1, 2, 2, 0, 1.0}, "head_dim"},
                                                   {{1, 1, 2, 2, -3, 1.0}, "head_dim"},
                                                   {{1, 1, -1, 2, 8, 1.0}, "q_len"},
                                                   {{1, 1, 2, -2, 8, 1.0}, "kv_len"},
                                                   {{-1, 1, 2, 2, 8, 1.0}, "batch"},
                                                   {{1, -1, 2, 2, 8, 1.0}, "heads"}};
  for (const auto& [s, field] : bad) {
    BOOST_CHECK_EXCEPTION(fwd(s), jepa::ShapeError, message_names(field));
    BOOST_CHECK_EXCEPTION(bwd(s), jepa::ShapeError, message_names(field));
  }
  AttnMask block = AttnMask::full();
  block.kind = AttnMask::Kind::block_causal;  // block = 0
  BOOST_CHECK_THROW(cpu::attention_flash_forward<float>({1, 1, 2, 2, 8, 1.0}, in, in, in, out, lse.data(), block),
                    jepa::ShapeError);
}

BOOST_AUTO_TEST_SUITE_END()
