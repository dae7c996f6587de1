// cuda::attention_forward / attention_backward against backend::Cpu in double, on random inputs.
// Tolerances (‖gpu − ref‖/‖ref‖ over the logical elements; reference from the same rounded inputs):
//   fp32 storage (CUDA-core kernels)  o, dq, dk, dv 1e-4; lse 1e-5
//   bf16 storage                      o, dq, dk, dv 2e-2 (P and dS are rounded to bf16 before their
//                                     products and every output once to 8 bits: ~3e-3 expected);
//                                     lse 1e-4 (fp32 sums of exact bf16 products)
// lse must be −∞ exactly where the reference is (rows with no allowed key), and nothing else.
// The backward of both sides is fed the same o (the reference's, rounded to T) and lse (rounded to
// float), so its check does not inherit the forward's error.
// Coverage: head dims 32, 64, 80, 88, 104 (and 20, 1: the unaligned CUDA-core path for bf16), Nq ≠ Nk,
// the packed (B,N,3·H·Dh) qkv layout, a separate q + packed kv layout, a head-major (B,H,N,Dh) layout,
// rows padded so that bf16 strides are not multiples of 8, every mask kind with a dense row that
// allows nothing, Nk = 0, batch > 1, heads > 1, several query and key tiles (N up to 700), and
// bitwise reproducibility of the backward. Every output buffer is poisoned (NaN) before the call.
#include "common.cuh"
#include "reference.hpp"

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "jepa/backend/cuda/attention.cuh"

namespace {
using namespace jepa::test::gpu;
using jepa::bf16;
using jepa::index_t;
using jepa::backend::AttnMask;
using jepa::backend::AttnOperand;
using jepa::backend::AttnShape;

enum class Layout { packed, separate, head_major };
enum class MaskKind { none, causal, block_causal, dense };

struct Case {
  index_t B, H, Nq, Nk, Dh;
  Layout layout;
  MaskKind mask;
  index_t block = 0;  // block_causal
  index_t pad = 0;    // extra elements per row (pad = 1 makes bf16 rows unaligned)
};

std::string describe(const Case& c) {
  const char* layouts[] = {"packed", "separate", "head_major"};
  const char* masks[] = {"none", "causal", "block_causal", "dense"};
  return "B=" + std::to_string(c.B) + " H=" + std::to_string(c.H) + " Nq=" + std::to_string(c.Nq) +
         " Nk=" + std::to_string(c.Nk) + " Dh=" + std::to_string(c.Dh) + " layout=" +
         layouts[static_cast<int>(c.layout)] + " mask=" + masks[static_cast<int>(c.mask)] +
         " block=" + std::to_string(c.block) + " pad=" + std::to_string(c.pad);
}

/// Where an operand lives: buffer `buf` (0: the q buffer, 1: the k/v buffer), offset and strides.
struct Desc {
  int buf = 0;
  index_t off = 0, bs = 0, rs = 0, hs = 0;
};
/// Layout of the inputs (q, k, v in buffers 0/1) and of o / dout (their own buffer). The gradients
/// dq, dk, dv use the inputs' layout in buffers of the same sizes (dqkv packed like qkv).
struct Geometry {
  std::size_t size[2] = {0, 0};
  std::size_t size_o = 0;
  Desc q, k, v, o;
};

Geometry make_geometry(const Case& c) {
  const index_t B = c.B, H = c.H, Nq = c.Nq, Nk = c.Nk, Dh = c.Dh, W = H * Dh, p = c.pad;
  Geometry g;
  switch (c.layout) {
    case Layout::packed: {  // (B, N, 3W + pad), channels [q | k | v]; needs Nq = Nk
      const index_t rl = 3 * W + p;
      g.size[0] = static_cast<std::size_t>(B * Nq * rl);
      g.q = {0, 0, Nq * rl, rl, Dh};
      g.k = {0, W, Nq * rl, rl, Dh};
      g.v = {0, 2 * W, Nq * rl, rl, Dh};
      g.o = {0, 0, Nq * (W + p), W + p, Dh};
      g.size_o = static_cast<std::size_t>(B * Nq * (W + p));
      break;
    }
    case Layout::separate: {  // q (B, Nq, W + pad); kv (B, Nk, 2W + pad)
      g.size[0] = static_cast<std::size_t>(B * Nq * (W + p));
      g.size[1] = static_cast<std::size_t>(B * Nk * (2 * W + p));
      g.q = {0, 0, Nq * (W + p), W + p, Dh};
      g.k = {1, 0, Nk * (2 * W + p), 2 * W + p, Dh};
      g.v = {1, W, Nk * (2 * W + p), 2 * W + p, Dh};
      g.o = g.q;
      g.size_o = g.size[0];
      break;
    }
    case Layout::head_major: {  // (B, H, N, Dh + pad) each; k and v one after the other in buffer 1
      const index_t dp = Dh + p;
      g.size[0] = static_cast<std::size_t>(B * H * Nq * dp);
      g.size[1] = static_cast<std::size_t>(2 * B * H * Nk * dp);
      g.q = {0, 0, H * Nq * dp, dp, Nq * dp};
      g.k = {1, 0, H * Nk * dp, dp, Nk * dp};
      g.v = {1, B * H * Nk * dp, H * Nk * dp, dp, Nk * dp};
      g.o = g.q;
      g.size_o = g.size[0];
      break;
    }
  }
  return g;
}

template <class X>
AttnOperand<X> view(X* base, const Desc& d) {
  return {base + d.off, d.bs, d.rs, d.hs};
}

/// The logical (b, h, n, c) elements of an operand, in that order.
template <class X>
std::vector<double> gather(const std::vector<X>& buf, const Desc& d, index_t B, index_t H, index_t N, index_t Dh) {
  std::vector<double> out;
  out.reserve(static_cast<std::size_t>(B * H * N * Dh));
  for (index_t b = 0; b < B; ++b)
    for (index_t h = 0; h < H; ++h)
      for (index_t n = 0; n < N; ++n)
        for (index_t c = 0; c < Dh; ++c) out.push_back(as_double(buf[d.off + b * d.bs + n * d.rs + h * d.hs + c]));
  return out;
}

struct Errors {
  double o = 0, lse = 0, dq = 0, dk = 0, dv = 0;
  bool finite = true;        // every logical output element was written and is finite (lse: or −∞ where due)
  bool lse_inf_match = true;  // lse is −∞ exactly where the reference's is
  index_t empty_rows = 0;     // reference rows with lse = −∞ (to show the case covered them)
  bool repeats_differ = false;  // a repeated backward gave different bits (reproducibility test)
};

template <class T>
Errors run_case(const Case& c, std::uint64_t seed, int repeats = 1) {
  const Geometry g = make_geometry(c);
  const AttnShape s{c.B, c.H, c.Nq, c.Nk, c.Dh, 1.0 / std::sqrt(static_cast<double>(c.Dh))};
  const std::size_t nlse = static_cast<std::size_t>(c.B * c.H * c.Nq);

  // Inputs (values representable in T; the reference sees the same values in double).
  const std::vector<T> in0 = random<T>(g.size[0], seed, 1.0), in1 = random<T>(g.size[1], seed + 1, 1.0);
  const std::vector<T> dout = random<T>(g.size_o, seed + 2, 1.0);
  std::vector<double> in0d = to_double(in0), in1d = to_double(in1), doutd = to_double(dout);

  // Mask.
  std::vector<std::uint8_t> allowed;
  AttnMask mask_h, mask_d;
  cu::DeviceBuffer<std::uint8_t> allowed_d;
  switch (c.mask) {
    case MaskKind::none: break;
    case MaskKind::causal: mask_h = mask_d = AttnMask::causal_mask(); break;
    case MaskKind::block_causal: mask_h = mask_d = AttnMask::block_causal_mask(c.block); break;
    case MaskKind::dense: {
      allowed.resize(static_cast<std::size_t>(c.Nq * c.Nk));
      const auto u = random<double>(allowed.size(), seed + 3);
      for (std::size_t i = 0; i < allowed.size(); ++i) allowed[i] = u[i] > -0.5 ? 1 : 0;  // ~70% allowed
      if (c.Nq > 2)  // one row that allows nothing, one that allows everything
        for (index_t j = 0; j < c.Nk; ++j) {
          allowed[static_cast<std::size_t>((c.Nq / 2) * c.Nk + j)] = 0;
          allowed[static_cast<std::size_t>(1 * c.Nk + j)] = 1;
        }
      allowed_d = cu::to_device(allowed);
      mask_h = AttnMask::dense_mask(allowed.data(), c.Nk);
      mask_d = AttnMask::dense_mask(allowed_d.data(), c.Nk);
      break;
    }
  }

  // Reference forward.
  const double* rb[2] = {in0d.data(), in1d.data()};
  std::vector<double> o_ref(g.size_o, 0.0), lse_ref(nlse);
  jepa::test::cpu_ref::attention_forward(s, view(rb[g.q.buf], g.q), view(rb[g.k.buf], g.k), view(rb[g.v.buf], g.v),
                                         view(o_ref.data(), g.o), lse_ref.data(), mask_h);

  // GPU forward.
  auto d0 = cu::to_device(in0), d1 = cu::to_device(in1);
  const T* db[2] = {d0.data(), d1.data()};
  cu::DeviceBuffer<T> d_o(g.size_o);
  cu::DeviceBuffer<float> d_lse(nlse);
  poison(d_o.data(), d_o.size());
  poison(d_lse.data(), nlse);
  cu::Stream stream;
  cu::attention_forward<T>(stream, s, view(db[g.q.buf], g.q), view(db[g.k.buf], g.k), view(db[g.v.buf], g.v),
                             view(d_o.data(), g.o), d_lse.data(), mask_d);
  stream.synchronize();
  const auto o_gpu = cu::to_host(d_o.data(), g.size_o);
  const auto lse_gpu = cu::to_host(d_lse.data(), nlse);

  Errors e;
  {
    const auto og = gather(o_gpu, g.o, c.B, c.H, c.Nq, c.Dh), orf = gather(o_ref, g.o, c.B, c.H, c.Nq, c.Dh);
    e.finite = e.finite && all_finite(og);
    e.o = jepa::test::rel_error(og, orf);
    std::vector<double> lg, lr;
    for (std::size_t i = 0; i < nlse; ++i) {
      const bool ref_inf = lse_ref[i] == -INFINITY;
      e.empty_rows += ref_inf;
      if (ref_inf != (lse_gpu[i] == -INFINITY)) e.lse_inf_match = false;
      if (!ref_inf) {
        if (!std::isfinite(lse_gpu[i])) e.finite = false;
        lg.push_back(lse_gpu[i]);
        lr.push_back(lse_ref[i]);
      }
    }
    e.lse = jepa::test::rel_error(lg, lr);
  }

  // Backward, both sides fed the reference o rounded to T and lse rounded to float.
  std::vector<T> o_in(g.size_o);
  for (std::size_t i = 0; i < g.size_o; ++i) o_in[i] = T(static_cast<float>(o_ref[i]));
  std::vector<float> lse_in(nlse);
  for (std::size_t i = 0; i < nlse; ++i) lse_in[i] = static_cast<float>(lse_ref[i]);
  const std::vector<double> o_ind = to_double(o_in);
  std::vector<double> lse_ind(lse_in.begin(), lse_in.end());
  std::vector<double> g_ref[2] = {std::vector<double>(g.size[0], 0.0), std::vector<double>(g.size[1], 0.0)};
  jepa::test::cpu_ref::attention_backward(s, view(rb[g.q.buf], g.q), view(rb[g.k.buf], g.k), view(rb[g.v.buf], g.v),
                                          view(o_ind.data(), g.o), view<const double>(doutd.data(), g.o), lse_ind.data(),
                                          view(g_ref[g.q.buf].data(), g.q), view(g_ref[g.k.buf].data(), g.k),
                                          view(g_ref[g.v.buf].data(), g.v), mask_h);

  auto d_oin = cu::to_device(o_in), d_dout = cu::to_device(dout);
  auto d_lsein = cu::to_device(lse_in);
  cu::DeviceBuffer<T> dg0(g.size[0]), dg1(g.size[1]);
  T* dgb[2] = {dg0.data(), dg1.data()};
  const std::size_t ws_bytes = cu::attention_backward_workspace_bytes(s);
  cu::DeviceBuffer<std::byte> ws(ws_bytes);
  std::vector<T> grad_gpu[2];
  for (int rep = 0; rep < repeats; ++rep) {
    poison(dg0.data(), dg0.size());
    poison(dg1.data(), dg1.size());
    if (ws_bytes) poison(ws.data(), ws_bytes);
    cu::attention_backward<T>(stream, s, view<const T>(db[g.q.buf], g.q), view<const T>(db[g.k.buf], g.k),
                                view<const T>(db[g.v.buf], g.v), view<const T>(d_oin.data(), g.o),
                                view<const T>(d_dout.data(), g.o), d_lsein.data(), view(dgb[g.q.buf], g.q),
                                view(dgb[g.k.buf], g.k), view(dgb[g.v.buf], g.v), mask_d, ws.data(), ws_bytes);
    stream.synchronize();
    std::vector<T> now[2] = {cu::to_host(dg0.data(), g.size[0]), cu::to_host(dg1.data(), g.size[1])};
    if (rep == 0) {
      grad_gpu[0] = now[0];
      grad_gpu[1] = now[1];
    } else if (!bitwise_equal(now[0], grad_gpu[0]) || !bitwise_equal(now[1], grad_gpu[1])) {
      e.repeats_differ = true;
    }
  }
  const auto cmp = [&](const Desc& d, index_t N, double& err) {
    const auto gg = gather(grad_gpu[d.buf], d, c.B, c.H, N, c.Dh), gr = gather(g_ref[d.buf], d, c.B, c.H, N, c.Dh);
    e.finite = e.finite && all_finite(gg);
    err = jepa::test::rel_error(gg, gr);
  };
  cmp(g.q, c.Nq, e.dq);
  cmp(g.k, c.Nk, e.dk);
  cmp(g.v, c.Nk, e.dv);
  return e;
}

template <class T>
void check_cases(const std::vector<Case>& cases, double tol, double tol_lse, std::uint64_t seed) {
  for (const Case& c : cases) {
    const Errors e = run_case<T>(c, seed++);
    BOOST_TEST_INFO(describe(c) << " | o " << e.o << " lse " << e.lse << " dq " << e.dq << " dk " << e.dk << " dv "
                                << e.dv << " empty rows " << e.empty_rows);
    BOOST_TEST(e.finite);
    BOOST_TEST(e.lse_inf_match);
    BOOST_TEST(e.o < tol);
    BOOST_TEST(e.lse < tol_lse);
    BOOST_TEST(e.dq < tol);
    BOOST_TEST(e.dk < tol);
    BOOST_TEST(e.dv < tol);
    if (c.mask == MaskKind::dense && c.Nq > 2) BOOST_TEST(e.empty_rows >= c.B * c.H);  // the empty row is there
    BOOST_TEST_MESSAGE(describe(c) << ": o " << e.o << " lse " << e.lse << " dq " << e.dq << " dk " << e.dk << " dv "
                                   << e.dv);
  }
}

/// Every head dim × the four masks, each with its own layout and Nq/Nk.
std::vector<Case> head_dim_cases() {
  std::vector<Case> cases;
  for (index_t dh : {32, 64, 80, 88, 104}) {
    cases.push_back({2, 3, 150, 150, dh, Layout::packed, MaskKind::none});
    cases.push_back({1, 2, 97, 203, dh, Layout::separate, MaskKind::causal});
    cases.push_back({2, 2, 200, 130, dh, Layout::head_major, MaskKind::block_causal, 24});
    cases.push_back({1, 3, 77, 140, dh, Layout::separate, MaskKind::dense});
  }
  return cases;
}

/// Shapes with many tiles, the AC block size, lengths at tile edges, Nk = 0 and unaligned strides.
std::vector<Case> edge_cases() {
  return {
      {1, 2, 700, 700, 64, Layout::packed, MaskKind::causal},
      {1, 2, 600, 600, 64, Layout::packed, MaskKind::block_causal, 258},
      {2, 1, 128, 64, 64, Layout::separate, MaskKind::none},
      {1, 1, 129, 65, 104, Layout::separate, MaskKind::causal},
      {1, 2, 5, 0, 64, Layout::separate, MaskKind::none},
      {1, 2, 33, 1, 88, Layout::separate, MaskKind::dense},
      {2, 2, 90, 90, 20, Layout::packed, MaskKind::causal},        // Dh % 8 != 0
      {1, 2, 70, 50, 64, Layout::separate, MaskKind::dense, 0, 1},  // rows not 16-byte multiples
      {1, 3, 40, 40, 1, Layout::head_major, MaskKind::block_causal, 7},
      {1, 1, 300, 260, 128, Layout::head_major, MaskKind::none},
  };
}

}  // namespace

BOOST_AUTO_TEST_SUITE(cuda_attention)

BOOST_AUTO_TEST_CASE(fp32_matches_cpu_for_every_head_dim_and_mask) {
  check_cases<float>(head_dim_cases(), 1e-4, 1e-5, 100);
}

BOOST_AUTO_TEST_CASE(bf16_matches_cpu_for_every_head_dim_and_mask) {
  check_cases<bf16>(head_dim_cases(), 2e-2, 1e-4, 200);
}

BOOST_AUTO_TEST_CASE(fp32_edge_shapes) { check_cases<float>(edge_cases(), 1e-4, 1e-5, 300); }

BOOST_AUTO_TEST_CASE(bf16_edge_shapes) { check_cases<bf16>(edge_cases(), 2e-2, 1e-4, 400); }

BOOST_AUTO_TEST_CASE(backward_is_bitwise_reproducible) {
  for (const Case& c : {Case{2, 2, 300, 300, 64, Layout::packed, MaskKind::causal},
                        Case{1, 2, 100, 90, 88, Layout::separate, MaskKind::dense}}) {
    const Errors eb = run_case<bf16>(c, 500, 3);
    BOOST_TEST_INFO(describe(c));
    BOOST_TEST(!eb.repeats_differ);
    const Errors ef = run_case<float>(c, 600, 2);
    BOOST_TEST(!ef.repeats_differ);
  }
}

BOOST_AUTO_TEST_SUITE_END()
