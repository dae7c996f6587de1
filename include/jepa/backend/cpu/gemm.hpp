// jepa/backend/cpu/gemm.hpp — the CPU matrix-multiply layer, chosen at run time from what the CPU can do.
//
//   C (M×N) = α·op(A)·op(B) + β·C [+ bias row] [then GELU],   row-major, op(X) = X or Xᵀ,
//   optionally batched (matrix i at A + i·stride_a, …).
//
// Three providers compute it (docs/design.md, "The CPU GEMM layer"):
//   onednn    oneDNN's matmul primitive (Debian: libdnnl-dev). Its JIT picks the kernels from the CPU
//             at run time (AVX2, AVX-512, AVX512-BF16, AMX) and it runs on the same OpenMP pool as
//             jepa's own loops. The bias add and the GELU of an MLP's fc1 run as the matmul's epilogue.
//   openblas  the BLAS the build linked (sgemm_/dgemm_), small products on one BLAS thread.
//   eigen     Eigen's own GEMM: the readable reference, always present.
// `auto` (the default) takes oneDNN when the build has it; else the BLAS, unless the BLAS does not
// know this CPU and runs generic kernels (OpenBLAS's `openblas_get_corename()` names a core without
// AVX2 kernels on a CPU that has AVX2: Debian 12's OpenBLAS 0.3.21 says "Prescott" on Sapphire
// Rapids, ~36 GFLOP/s instead of ~150); else Eigen. The environment variable JEPA_GEMM
// (auto|onednn|openblas|eigen) forces one; a provider this build lacks is refused with the list of
// those it has. double always runs on the BLAS or Eigen (oneDNN has no f64 matmul).
//
// Precision (process-wide, like torch.set_float32_matmul_precision): `f32` (default) or `bf16`:
// float GEMMs of at least kBf16MinMacs multiply-adds then round A and B to bfloat16 (round to nearest
// even) and accumulate in fp32 into an fp32 C, on AMX or AVX512-BF16 (smaller ones stay fp32). Where the CPU has neither, or the provider is not oneDNN, bf16
// requests run at fp32 (never slower than fp32) and gemm_report() says so. The environment variable
// JEPA_MATMUL_PRECISION (f32|bf16) sets the starting value; set_matmul_precision() and
// ScopedMatmulPrecision change it. The fused attention (backend/cpu/attention.hpp) keeps fp32.
//
// Thread safety: every entry point may be called from several threads at once. oneDNN primitives
// are created once per shape under a mutex and executed with a per-thread scratchpad and stream.
// Results are deterministic for a given provider, shape and thread count.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <unordered_map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include <Eigen/Core>

#include "jepa/backend/cpu/cpu_features.hpp"
#include "jepa/config.hpp"
#include "jepa/core/dtype.hpp"
#include "jepa/core/error.hpp"
#include "jepa/core/tensor.hpp"

#ifdef JEPA_HAVE_ONEDNN
#include <oneapi/dnnl/dnnl.hpp>
#endif
#if defined(JEPA_HAVE_BLAS)
// The Fortran BLAS interface every BLAS exports; OpenBLAS's extras are weak (null with another BLAS).
extern "C" void sgemm_(const char*, const char*, const int*, const int*, const int*, const float*, const float*,
                       const int*, const float*, const int*, const float*, float*, const int*);
extern "C" void dgemm_(const char*, const char*, const int*, const int*, const int*, const double*, const double*,
                       const int*, const double*, const int*, const double*, double*, const int*);
#if defined(__GNUC__)
extern "C" void openblas_set_num_threads(int) __attribute__((weak));
extern "C" int openblas_get_num_threads() __attribute__((weak));
extern "C" char* openblas_get_corename() __attribute__((weak));
#endif
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

namespace jepa::backend::cpu {

enum class GemmProvider : std::uint8_t { onednn, openblas, eigen };
enum class MatmulPrecision : std::uint8_t { f32, bf16 };
/// What runs after the product, on C = α·op(A)·op(B) + β·C: nothing, + bias row, or gelu(· + bias).
enum class GemmEpilogue : std::uint8_t { none, bias, bias_gelu };

inline std::string_view to_string(GemmProvider p) {
  switch (p) {
    case GemmProvider::onednn: return "onednn";
    case GemmProvider::openblas: return "openblas";
    case GemmProvider::eigen: return "eigen";
  }
  return "?";
}
inline std::string_view to_string(MatmulPrecision p) { return p == MatmulPrecision::bf16 ? "bf16" : "f32"; }

/// Which providers this build contains.
inline constexpr bool kHaveOneDnn =
#ifdef JEPA_HAVE_ONEDNN
    true;
#else
    false;
#endif
inline constexpr bool kHaveBlas =
#ifdef JEPA_HAVE_BLAS
    true;
#else
    false;
#endif

/// The decision, made once per process.
struct GemmSetup {
  GemmProvider provider = GemmProvider::eigen;
  bool forced = false;          // JEPA_GEMM named it
  std::string why;              // one clause: why this provider
  std::string blas_core;        // OpenBLAS's core name ("" when the BLAS is not OpenBLAS or absent)
  bool blas_generic = false;    // the BLAS runs generic kernels on a CPU with AVX2
  std::string onednn_version;   // "2.6.0" when the build has oneDNN
  std::string onednn_isa;       // the instruction set oneDNN's JIT uses, e.g. "avx512_core_bf16"
  bool onednn_bf16 = false;     // that instruction set multiplies bf16 natively (AVX512-BF16 or AMX)
};

namespace detail {

/// OpenBLAS cores whose kernels use AVX2 (or newer). Any other name on a CPU with AVX2 means the
/// library did not recognise the CPU and fell back to SSE-era kernels.
inline bool blas_core_has_avx2_kernels(std::string_view core) {
  for (std::string_view k : {"haswell", "zen", "skylakex", "cooperlake", "sapphirerapids", "excavator",
                             "atomx", "neoversen2"})
    if (core.size() == k.size() &&
        std::equal(core.begin(), core.end(), k.begin(), [](char a, char b) { return (a | 0x20) == b; }))
      return true;
  return false;
}

inline std::string blas_core_name() {
#if defined(JEPA_HAVE_BLAS) && defined(__GNUC__)
  if (openblas_get_corename) {
    const char* s = openblas_get_corename();
    return s ? std::string(s) : std::string();
  }
#endif
  return {};
}

#ifdef JEPA_HAVE_ONEDNN
inline std::string onednn_isa_name() {
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::sse41: return "sse41";
    case dnnl::cpu_isa::avx: return "avx";
    case dnnl::cpu_isa::avx2: return "avx2";
    case dnnl::cpu_isa::avx512_mic: return "avx512_mic";
    case dnnl::cpu_isa::avx512_mic_4ops: return "avx512_mic_4ops";
    case dnnl::cpu_isa::avx512_core: return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni: return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16: return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx: return "avx512_core_amx";
    default: return "isa " + std::to_string(static_cast<int>(dnnl::get_effective_cpu_isa()));
  }
}
#endif

inline std::string providers_allowed(bool have_onednn, bool have_blas) {
  std::string s = "auto";
  if (have_onednn) s += ", onednn";
  if (have_blas) s += ", openblas";
  return s + ", eigen";
}

struct ProviderChoice {
  GemmProvider provider;
  bool forced;
  std::string why;
};

/// The rule, apart from the machine: `request` is JEPA_GEMM's value ("" or "auto": choose).
inline ProviderChoice choose_gemm_provider(std::string_view request, bool have_onednn, bool have_blas,
                                           bool blas_generic, std::string_view blas_core) {
  const std::string want(request.empty() ? std::string_view("auto") : request);
  if (want == "onednn" || want == "openblas" || want == "eigen") {
    const bool have = want == "eigen" || (want == "onednn" && have_onednn) || (want == "openblas" && have_blas);
    if (!have)
      throw ConfigError("jepa: JEPA_GEMM=" + want + ", but this build has no " +
                        (want == "onednn" ? std::string("oneDNN (CMake option JEPA_USE_ONEDNN; Debian: libdnnl-dev)")
                                          : std::string("BLAS (CMake option JEPA_USE_BLAS; Debian: libopenblas-dev)")) +
                        "; allowed here: " + providers_allowed(have_onednn, have_blas));
    const GemmProvider p =
        want == "onednn" ? GemmProvider::onednn : want == "openblas" ? GemmProvider::openblas : GemmProvider::eigen;
    return {p, true, "JEPA_GEMM=" + want};
  }
  if (want != "auto")
    throw ConfigError("jepa: JEPA_GEMM='" + want + "' is not a GEMM provider; allowed here: " +
                      providers_allowed(have_onednn, have_blas));
  if (have_onednn) return {GemmProvider::onednn, false, "oneDNN dispatches on this CPU's instruction sets"};
  if (have_blas && !blas_generic) return {GemmProvider::openblas, false, "no oneDNN in this build"};
  if (have_blas)
    return {GemmProvider::eigen, false,
            "the BLAS runs generic kernels (core '" + std::string(blas_core) + "') on a CPU with AVX2"};
  return {GemmProvider::eigen, false, "no oneDNN or BLAS in this build"};
}

inline GemmSetup decide_gemm_setup() {
  GemmSetup s;
  const CpuFeatures& cpu = cpu_features();
  s.blas_core = blas_core_name();
  s.blas_generic = kHaveBlas && cpu.avx2 && !s.blas_core.empty() && !blas_core_has_avx2_kernels(s.blas_core);
#ifdef JEPA_HAVE_ONEDNN
  {
    const dnnl_version_t* v = dnnl_version();
    s.onednn_version = std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
    s.onednn_isa = onednn_isa_name();
    // ONEDNN_MAX_CPU_ISA can hold oneDNN below what the CPU has; its own answer decides.
    s.onednn_bf16 = cpu.native_bf16() && (s.onednn_isa == "avx512_core_bf16" || s.onednn_isa == "avx512_core_amx" ||
                                          s.onednn_isa.rfind("isa ", 0) == 0);
  }
#endif
  const char* env = std::getenv("JEPA_GEMM");
  ProviderChoice c = choose_gemm_provider(env ? env : "", kHaveOneDnn, kHaveBlas, s.blas_generic, s.blas_core);
  s.provider = c.provider;
  s.forced = c.forced;
  s.why = std::move(c.why);
  return s;
}

inline MatmulPrecision precision_from_environment() {
  const char* env = std::getenv("JEPA_MATMUL_PRECISION");
  if (!env || !*env || std::string_view(env) == "f32") return MatmulPrecision::f32;
  if (std::string_view(env) == "bf16") return MatmulPrecision::bf16;
  throw ConfigError("jepa: JEPA_MATMUL_PRECISION='" + std::string(env) + "' is not a precision; allowed: f32, bf16");
}

inline std::atomic<MatmulPrecision>& precision_slot() {
  static std::atomic<MatmulPrecision> p{precision_from_environment()};
  return p;
}

}  // namespace detail

/// The provider and the facts behind it, decided on first use (throws ConfigError for a bad JEPA_GEMM).
inline const GemmSetup& gemm_setup() {
  static const GemmSetup s = detail::decide_gemm_setup();
  return s;
}

/// The precision float GEMMs are asked to run at (process-wide).
inline MatmulPrecision matmul_precision() { return detail::precision_slot().load(std::memory_order_relaxed); }
inline void set_matmul_precision(MatmulPrecision p) { detail::precision_slot().store(p, std::memory_order_relaxed); }

/// The precision float GEMMs actually run at: bf16 only with oneDNN on a CPU with AMX or AVX512-BF16.
inline MatmulPrecision effective_matmul_precision() {
  if (matmul_precision() == MatmulPrecision::bf16 && gemm_setup().provider == GemmProvider::onednn &&
      gemm_setup().onednn_bf16)
    return MatmulPrecision::bf16;
  return MatmulPrecision::f32;
}

/// Sets the precision for a scope and restores the previous one (process-wide, not per thread).
class ScopedMatmulPrecision {
 public:
  explicit ScopedMatmulPrecision(MatmulPrecision p) : saved_(matmul_precision()) { set_matmul_precision(p); }
  ~ScopedMatmulPrecision() { set_matmul_precision(saved_); }
  ScopedMatmulPrecision(const ScopedMatmulPrecision&) = delete;
  ScopedMatmulPrecision& operator=(const ScopedMatmulPrecision&) = delete;

 private:
  MatmulPrecision saved_;
};

/// Parses a user's precision word (`--precision` in the programs); names the option on refusal.
inline MatmulPrecision parse_matmul_precision(std::string_view word, std::string_view option = "--precision") {
  if (word == "f32" || word == "fp32") return MatmulPrecision::f32;
  if (word == "bf16") return MatmulPrecision::bf16;
  throw ConfigError("jepa: " + std::string(option) + " '" + std::string(word) + "' is not a precision; allowed: f32, bf16");
}

/// One line for banners and --help: provider, instruction set, precision, and the BLAS's state, e.g.
/// "oneDNN 2.6.0 matmul, JIT avx512_core_bf16 (AMD EPYC …: AVX2, AVX-512, AVX512-BF16, no AMX); f32;
///  OpenBLAS core Haswell (not used)".
inline std::string gemm_report() {
  const GemmSetup& s = gemm_setup();
  const CpuFeatures& cpu = cpu_features();
  std::string r;
  switch (s.provider) {
    case GemmProvider::onednn: r = "oneDNN " + s.onednn_version + " matmul, JIT " + s.onednn_isa; break;
    case GemmProvider::openblas:
      r = s.blas_core.empty() ? std::string("BLAS sgemm") : "OpenBLAS sgemm, core " + s.blas_core;
      if (s.blas_generic) r += " (generic kernels on this CPU)";
      break;
    case GemmProvider::eigen: r = "Eigen GEMM"; break;
  }
  r += " (" + cpu.brand + ": " + cpu.summary() + "; " + s.why + "); ";
  const MatmulPrecision want = matmul_precision(), run = effective_matmul_precision();
  r += std::string(to_string(run));
  if (want != run && s.provider != GemmProvider::onednn) {
    r += " (bf16 asked; only the onednn provider has bf16 kernels)";
  } else if (want != run) {
    r += " (bf16 asked; oneDNN runs ";
    r += s.onednn_isa;
    r += ", without AMX or AVX512-BF16)";
  }
  if (s.provider != GemmProvider::openblas && !s.blas_core.empty())
    r += "; OpenBLAS core " + s.blas_core + (s.blas_generic ? " (generic, not used)" : " (not used)");
  return r;
}

namespace detail {

template <class T>
using GemmRowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using GemmMap = Eigen::Map<GemmRowMat<T>, Eigen::Unaligned, Eigen::OuterStride<>>;
template <class T>
using GemmCMap = Eigen::Map<const GemmRowMat<T>, Eigen::Unaligned, Eigen::OuterStride<>>;

/// Products below 2^24 multiply-adds (M·N·K) run on one OpenBLAS thread. A pthreads OpenBLAS splits
/// every GEMM above a tiny size over its own threads, which then spin after the call and take the
/// cores from jepa's OpenMP regions: the micro model's training step (GEMMs of ≤ 8·10^6 MACs) ran
/// 3.4× slower with two BLAS threads than with one (main job, 240 steps: 12.4 s vs 3.7 s on two
/// cores). Outside a parallel region only: openblas_set_num_threads changes a process-wide setting,
/// so concurrent callers serialise on a mutex while it is changed (the openblas provider is the only
/// one that needs this; onednn and eigen run on OpenMP).
class SmallGemmOnOneBlasThread {
 public:
  static constexpr double kMacs = 16777216.0;  // 2^24
  explicit SmallGemmOnOneBlasThread(double macs) {
#if defined(JEPA_HAVE_BLAS) && defined(__GNUC__)
    if (macs >= kMacs || !openblas_set_num_threads || !openblas_get_num_threads) return;
#ifdef _OPENMP
    if (omp_in_parallel()) return;
#endif
    lock_ = std::unique_lock<std::mutex>(mutex());
    const int n = openblas_get_num_threads();
    if (n > 1) {
      saved_ = n;
      openblas_set_num_threads(1);
    }
#else
    (void)macs;
#endif
  }
  ~SmallGemmOnOneBlasThread() {
#if defined(JEPA_HAVE_BLAS) && defined(__GNUC__)
    if (saved_ > 1) openblas_set_num_threads(saved_);
#endif
  }
  SmallGemmOnOneBlasThread(const SmallGemmOnOneBlasThread&) = delete;
  SmallGemmOnOneBlasThread& operator=(const SmallGemmOnOneBlasThread&) = delete;

 private:
  static std::mutex& mutex() {
    static std::mutex m;
    return m;
  }
  int saved_ = 0;
  std::unique_lock<std::mutex> lock_;
};

template <Real T>
void gemm_eigen(bool trans_a, bool trans_b, index_t M, index_t N, index_t K, T alpha, const T* A, index_t lda,
                const T* B, index_t ldb, T beta, T* C, index_t ldc) {
  GemmMap<T> c(C, M, N, Eigen::OuterStride<>(ldc));
  if (K <= 0) {
    if (beta == T(0)) c.setZero(); else c *= beta;
    return;
  }
  GemmCMap<T> a(A, trans_a ? K : M, trans_a ? M : K, Eigen::OuterStride<>(lda));
  GemmCMap<T> b(B, trans_b ? N : K, trans_b ? K : N, Eigen::OuterStride<>(ldb));
  auto run = [&](const auto& opa, const auto& opb) {
    if (beta == T(0)) {
      c.noalias() = alpha * opa * opb;
    } else {
      if (beta != T(1)) c *= beta;
      c.noalias() += alpha * opa * opb;
    }
  };
  if (!trans_a && !trans_b) run(a, b);
  else if (!trans_a && trans_b) run(a, b.transpose());
  else if (trans_a && !trans_b) run(a.transpose(), b);
  else run(a.transpose(), b.transpose());
}

#ifdef JEPA_HAVE_BLAS
/// Row-major C = op(A)·op(B) is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ, and a row-major matrix read
/// column-major is its transpose: so the column-major call swaps the operands and keeps the flags.
template <Real T>
void gemm_blas(bool trans_a, bool trans_b, index_t M, index_t N, index_t K, T alpha, const T* A, index_t lda,
               const T* B, index_t ldb, T beta, T* C, index_t ldc) {
  constexpr index_t kMax = 2147483647;
  if (M > kMax || N > kMax || K > kMax || lda > kMax || ldb > kMax || ldc > kMax)
    return gemm_eigen(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  const SmallGemmOnOneBlasThread one_thread(static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K));
  const char ta = trans_b ? 'T' : 'N', tb = trans_a ? 'T' : 'N';
  const int m = static_cast<int>(N), n = static_cast<int>(M), k = static_cast<int>(K);
  const int la = static_cast<int>(std::max<index_t>(ldb, 1)), lb = static_cast<int>(std::max<index_t>(lda, 1)),
            lc = static_cast<int>(std::max<index_t>(ldc, 1));
  if constexpr (std::is_same_v<T, float>)
    sgemm_(&ta, &tb, &m, &n, &k, &alpha, B, &la, A, &lb, &beta, C, &lc);
  else
    dgemm_(&ta, &tb, &m, &n, &k, &alpha, B, &la, A, &lb, &beta, C, &lc);
}
#endif

#ifdef JEPA_HAVE_ONEDNN
/// bfloat16 of x, rounded to nearest even (NaN stays NaN): the upper 16 bits after rounding.
inline std::uint16_t to_bf16(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<std::uint16_t>(u >> 16);
}
/// Packs a rows×cols block with row stride ld into a dense bf16 buffer (rows in parallel).
inline void pack_bf16(const float* src, index_t rows, index_t cols, index_t ld, std::uint16_t* dst) {
JEPA_OMP(parallel for schedule(static) if (rows * cols > 65536))
  for (index_t r = 0; r < rows; ++r) {
    const float* JEPA_RESTRICT s = src + r * ld;
    std::uint16_t* JEPA_RESTRICT d = dst + r * cols;
    for (index_t j = 0; j < cols; ++j) d[j] = to_bf16(s[j]);
  }
}

/// One cached matmul: the primitive for one (shape, strides, precision, α, β, epilogue).
struct OneDnnMatmul {
  dnnl::matmul prim;
  dnnl::memory::desc src, wei, bias, dst;
  std::size_t scratch_bytes = 0;
  bool usable = false;  // false when only oneDNN's reference implementation could take it
};

struct OneDnnKey {
  bool ta, tb, bf16;
  index_t batch, M, N, K, lda, ldb, ldc, sa, sb, sc;
  std::uint32_t alpha_bits, beta_bits;
  GemmEpilogue epilogue;
  auto tie() const { return std::tie(ta, tb, bf16, batch, M, N, K, lda, ldb, ldc, sa, sb, sc, alpha_bits, beta_bits, epilogue); }
  bool operator<(const OneDnnKey& o) const { return tie() < o.tie(); }
};

struct OneDnnState {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  std::mutex mutex;
  std::map<OneDnnKey, std::shared_ptr<const OneDnnMatmul>> cache;
};
inline OneDnnState& onednn_state() {
  static OneDnnState s;
  return s;
}

inline std::uint32_t float_bits(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

inline std::shared_ptr<const OneDnnMatmul> onednn_matmul(const OneDnnKey& k) {
  using dt = dnnl::memory::data_type;
  using dims = dnnl::memory::dims;
  OneDnnState& st = onednn_state();
  {
    std::lock_guard<std::mutex> lock(st.mutex);
    auto it = st.cache.find(k);
    if (it != st.cache.end()) return it->second;
  }
  auto m = std::make_shared<OneDnnMatmul>();
  const dt in = k.bf16 ? dt::bf16 : dt::f32;
  // Operands as stored: with bf16 they are packed densely (ld = stored columns, stride = rows·ld).
  const index_t a_rows = k.ta ? k.K : k.M, a_cols = k.ta ? k.M : k.K;
  const index_t b_rows = k.tb ? k.N : k.K, b_cols = k.tb ? k.K : k.N;
  const index_t lda = k.bf16 ? a_cols : k.lda, ldb = k.bf16 ? b_cols : k.ldb;
  // One product (batch 1) has no batch stride: give the extent, as oneDNN takes a zero stride for a
  // broadcast and then runs its reference kernel.
  const index_t sa = k.bf16 || k.batch == 1 ? a_rows * lda : k.sa, sb = k.bf16 || k.batch == 1 ? b_rows * ldb : k.sb;
  // Logical src is M×K, weights K×N; the strides say how each is stored.
  const dims a_dims{k.batch, k.M, k.K}, a_str{sa, k.ta ? 1 : lda, k.ta ? lda : 1};
  const dims b_dims{k.batch, k.K, k.N}, b_str{sb, k.tb ? 1 : ldb, k.tb ? ldb : 1};
  const dims c_dims{k.batch, k.M, k.N}, c_str{k.batch == 1 ? k.M * k.ldc : k.sc, k.ldc, 1};
  m->src = dnnl::memory::desc(a_dims, in, a_str);
  m->wei = dnnl::memory::desc(b_dims, in, b_str);
  m->dst = dnnl::memory::desc(c_dims, dt::f32, c_str);
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  float alpha, beta;
  std::memcpy(&alpha, &k.alpha_bits, 4);
  std::memcpy(&beta, &k.beta_bits, 4);
  if (alpha != 1.0f) attr.set_output_scales(0, {alpha});
  dnnl::post_ops po;
  if (beta != 0.0f) po.append_sum(beta);
  if (k.epilogue == GemmEpilogue::bias_gelu) po.append_eltwise(1.0f, dnnl::algorithm::eltwise_gelu_erf, 0.0f, 0.0f);
  attr.set_post_ops(po);
  try {
    std::unique_ptr<dnnl::matmul::desc> d;
    if (k.epilogue != GemmEpilogue::none) {
      m->bias = dnnl::memory::desc(dims{1, 1, k.N}, dt::f32, dims{k.N, k.N, 1});
      d = std::make_unique<dnnl::matmul::desc>(m->src, m->wei, m->bias, m->dst);
    } else {
      d = std::make_unique<dnnl::matmul::desc>(m->src, m->wei, m->dst);
    }
    dnnl::matmul::primitive_desc pd(*d, attr, st.engine);
    const std::string impl = pd.impl_info_str();
    m->usable = impl.rfind("ref", 0) != 0;  // the reference kernel is slower than Eigen: not used
    if (m->usable) {
      m->scratch_bytes = pd.scratchpad_desc().get_size();
      m->prim = dnnl::matmul(pd);
    }
  } catch (const dnnl::error&) {
    m->usable = false;
  }
  std::lock_guard<std::mutex> lock(st.mutex);
  return st.cache.emplace(k, std::move(m)).first->second;
}

/// Per-thread buffers: the oneDNN scratchpad and the bf16 copies of A and B.
struct OneDnnThreadBuffers {
  std::vector<std::uint8_t> scratch;
  std::vector<std::uint16_t> a16, b16;
};
inline OneDnnThreadBuffers& onednn_buffers() {
  thread_local OneDnnThreadBuffers b;
  return b;
}

/// Executes a cached primitive on this thread's stream and scratchpad.
inline void run_onednn(const OneDnnMatmul& m, void* a, void* b, float* C, const float* bias) {
  OneDnnState& st = onednn_state();
  OneDnnThreadBuffers& buf = onednn_buffers();
  if (buf.scratch.size() < m.scratch_bytes) buf.scratch.resize(m.scratch_bytes);
  thread_local dnnl::stream stream(st.engine);
  std::unordered_map<int, dnnl::memory> args;
  args.emplace(DNNL_ARG_SRC, dnnl::memory(m.src, st.engine, a));
  args.emplace(DNNL_ARG_WEIGHTS, dnnl::memory(m.wei, st.engine, b));
  args.emplace(DNNL_ARG_DST, dnnl::memory(m.dst, st.engine, C));
  if (bias) args.emplace(DNNL_ARG_BIAS, dnnl::memory(m.bias, st.engine, const_cast<float*>(bias)));
  dnnl::memory::desc scratch_desc(dnnl::memory::dims{static_cast<dnnl::memory::dim>(m.scratch_bytes)},
                                  dnnl::memory::data_type::u8, dnnl::memory::format_tag::a);
  if (m.scratch_bytes) args.emplace(DNNL_ARG_SCRATCHPAD, dnnl::memory(scratch_desc, st.engine, buf.scratch.data()));
  m.prim.execute(stream, args);
  stream.wait();
}

/// The cached primitive for C (M×N, row stride ldc) = α·A·op(B) on dense bf16 operands (A: M×K,
/// B: N×K when tb, else K×N); null when oneDNN has no fast kernel for it.
inline std::shared_ptr<const OneDnnMatmul> bf16_packed_matmul(bool tb, index_t M, index_t N, index_t K, float alpha,
                                                              index_t ldc) {
  const OneDnnKey key{false, tb, true, 1, M, N, K, K, tb ? K : N, ldc, 0, 0, 0, float_bits(alpha),
                      float_bits(0.0f), GemmEpilogue::none};
  auto m = onednn_matmul(key);
  return m->usable ? m : nullptr;
}

/// Runs the product on oneDNN; false when oneDNN has no fast kernel for it (the caller falls back).
inline bool gemm_onednn(bool ta, bool tb, index_t batch, index_t M, index_t N, index_t K, float alpha,
                        const float* A, index_t lda, index_t sa, const float* B, index_t ldb, index_t sb,
                        float beta, float* C, index_t ldc, index_t sc, const float* bias, GemmEpilogue ep,
                        bool bf16) {
  if (K <= 0) return false;
  if (ep != GemmEpilogue::none && alpha != 1.0f) return false;  // the scale would apply to the bias too
  // Batch strides only key a batched product (onednn_matmul derives one product's own extents).
  const OneDnnKey key{ta, tb, bf16, batch, M, N, K, lda, ldb, ldc, batch > 1 ? sa : 0, batch > 1 ? sb : 0,
                      batch > 1 ? sc : 0, float_bits(alpha), float_bits(beta), ep};
  const auto m = onednn_matmul(key);
  if (!m->usable) return false;
  OneDnnThreadBuffers& buf = onednn_buffers();
  void* a_ptr = const_cast<float*>(A);
  void* b_ptr = const_cast<float*>(B);
  if (bf16) {
    const index_t a_rows = ta ? K : M, a_cols = ta ? M : K, b_rows = tb ? N : K, b_cols = tb ? K : N;
    buf.a16.resize(static_cast<std::size_t>(batch * a_rows * a_cols));
    buf.b16.resize(static_cast<std::size_t>(batch * b_rows * b_cols));
    for (index_t i = 0; i < batch; ++i) {
      pack_bf16(A + i * sa, a_rows, a_cols, lda, buf.a16.data() + i * a_rows * a_cols);
      pack_bf16(B + i * sb, b_rows, b_cols, ldb, buf.b16.data() + i * b_rows * b_cols);
    }
    a_ptr = buf.a16.data();
    b_ptr = buf.b16.data();
  }
  run_onednn(*m, a_ptr, b_ptr, C, ep != GemmEpilogue::none ? bias : nullptr);
  return true;
}
#endif

}  // namespace detail

/// Products below this many multiply-adds run at fp32 even at bf16 precision: rounding A and B to
/// bf16 costs more than the bf16 kernel saves (the main job's micro model, all of whose GEMMs are
/// below it, trained 10 % slower with bf16 everywhere; 60 steps on the 2-core EPYC: 0.69 s vs 0.63 s).
inline constexpr double kBf16MinMacs = 1 << 21;

/// C = α·op(A)·op(B) + β·C for `batch` products (batch 1: the strides are unused). With β = 0, C is
/// not read (it may hold garbage or NaN).
template <Real T>
void gemm(bool trans_a, bool trans_b, index_t M, index_t N, index_t K, T alpha, const T* A, index_t lda,
          const T* B, index_t ldb, T beta, T* C, index_t ldc, index_t batch = 1, index_t stride_a = 0,
          index_t stride_b = 0, index_t stride_c = 0) {
  if (M <= 0 || N <= 0 || batch <= 0) return;
  const GemmSetup& setup = gemm_setup();
#ifdef JEPA_HAVE_ONEDNN
  if constexpr (std::is_same_v<T, float>) {
    if (setup.provider == GemmProvider::onednn &&
        detail::gemm_onednn(trans_a, trans_b, batch, M, N, K, alpha, A, lda, stride_a, B, ldb, stride_b, beta, C,
                            ldc, stride_c, nullptr, GemmEpilogue::none,
                            effective_matmul_precision() == MatmulPrecision::bf16 &&
                                double(batch) * double(M) * double(N) * double(K) >= kBf16MinMacs))
      return;
  }
#endif
  // double, or a product oneDNN has no fast kernel for: the BLAS unless it runs generic kernels.
  const bool blas = setup.provider == GemmProvider::openblas ||
                    (setup.provider == GemmProvider::onednn && !setup.blas_generic);
  for (index_t i = 0; i < batch; ++i) {
    const T* a = A + i * stride_a;
    const T* b = B + i * stride_b;
    T* c = C + i * stride_c;
#ifdef JEPA_HAVE_BLAS
    if (blas && K > 0) {
      detail::gemm_blas(trans_a, trans_b, M, N, K, alpha, a, lda, b, ldb, beta, c, ldc);
      continue;
    }
#endif
    detail::gemm_eigen(trans_a, trans_b, M, N, K, alpha, a, lda, b, ldb, beta, c, ldc);
  }
  (void)blas;
}

/// y (M×out) = x (M×in)·Wᵀ + b, then gelu when `gelu`, as one fused matmul (bias and GELU in its
/// epilogue). Returns false — and writes nothing — when the provider cannot fuse it (not oneDNN, or
/// double); the caller then runs the GEMM and its own bias and GELU primitives.
template <Real T>
bool linear_fused(const T* x, const T* W, const T* b, T* y, index_t M, index_t in, index_t out, bool gelu) {
#ifdef JEPA_HAVE_ONEDNN
  if constexpr (std::is_same_v<T, float>) {
    if (M > 0 && out > 0 && b && gemm_setup().provider == GemmProvider::onednn)
      return detail::gemm_onednn(false, true, 1, M, out, in, 1.0f, x, in, 0, W, in, 0, 0.0f, y, out, 0, b,
                                 gelu ? GemmEpilogue::bias_gelu : GemmEpilogue::bias,
                                 effective_matmul_precision() == MatmulPrecision::bf16 &&
                                     double(M) * double(out) * double(in) >= kBf16MinMacs);
  }
#endif
  (void)x, (void)W, (void)b, (void)y, (void)M, (void)in, (void)out, (void)gelu;
  return false;
}

}  // namespace jepa::backend::cpu
