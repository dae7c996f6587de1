// bench_gemm — the CPU GEMM layer (backend/cpu/gemm.hpp) on the encoder's GEMM shapes, one provider
// per process (so a pthreads BLAS's spinning workers never share the cores with another provider's
// timing): onednn at fp32 and bf16, openblas, eigen, and the "mis-detected BLAS" case
// (OPENBLAS_CORETYPE=Prescott, provider auto) — which must run as fast as the right kernels, because
// auto then never picks the generic BLAS.
//
// Without arguments it re-runs itself once per configuration with the environment set and prints one
// table (GFLOP/s, best of 5 timed calls after a warm-up; multiply-add = 2 FLOPs). With --child it
// times the shapes for the provider its environment selects and prints one line per shape.
//
// Usage: bench_gemm [--threads N]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

#include "common.hpp"
#include "jepa/backend/cpu/gemm.hpp"

namespace {
using namespace jepa;
using namespace jepa::backend::cpu;

struct GemmShape {
  const char* what;
  bool ta, tb;
  index_t M, N, K;
};
// ViT-S/16 on a 224² image (196 tokens) and ViT-B/16 on a 16×224² clip (1568 tokens): forward x·Wᵀ,
// input gradient dy·W, weight gradient dyᵀ·x (accumulated).
const GemmShape kShapes[] = {
    {"ViT-S img qkv x·Wᵀ", false, true, 196, 1152, 384},     {"ViT-S img proj x·Wᵀ", false, true, 196, 384, 384},
    {"ViT-S img fc1 x·Wᵀ", false, true, 196, 1536, 384},     {"ViT-S img fc2 x·Wᵀ", false, true, 196, 384, 1536},
    {"ViT-S img fc1 dy·W", false, false, 196, 384, 1536},    {"ViT-S img fc1 dyᵀ·x", true, false, 1536, 384, 196},
    {"ViT-B clip qkv x·Wᵀ", false, true, 1568, 2304, 768},   {"ViT-B clip fc1 x·Wᵀ", false, true, 1568, 3072, 768},
    {"ViT-B clip fc2 x·Wᵀ", false, true, 1568, 768, 3072},   {"ViT-B clip fc1 dy·W", false, false, 1568, 768, 3072},
    {"ViT-B clip fc1 dyᵀ·x", true, false, 3072, 768, 1568},
};

int child() {
  std::printf("# %s\n", gemm_report().c_str());
  for (const GemmShape& s : kShapes) {
    std::mt19937 g(1);
    std::normal_distribution<float> d;
    std::vector<float> A(static_cast<std::size_t>(s.M * s.K)), B(static_cast<std::size_t>(s.K * s.N)),
        C(static_cast<std::size_t>(s.M * s.N), 0.f);
    for (auto& x : A) x = d(g);
    for (auto& x : B) x = d(g);
    const index_t lda = s.ta ? s.M : s.K, ldb = s.tb ? s.K : s.N;
    const float beta = s.ta ? 1.f : 0.f;  // the weight gradient accumulates
    auto call = [&] { gemm<float>(s.ta, s.tb, s.M, s.N, s.K, 1.f, A.data(), lda, B.data(), ldb, beta, C.data(), s.N); };
    call();
    double best = 1e30;
    for (int r = 0; r < 5; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      int n = 0;
      double el = 0;
      do {
        call();
        ++n;
        el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      } while (el < 0.05);
      best = std::min(best, el / n);
    }
    std::printf("%s\t%.1f\n", s.what, 2.0 * s.M * s.N * s.K / best / 1e9);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--child") return child();
    if (a == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (a == "-h" || a == "--help") {
      std::printf("usage: %s [--threads N]\n  the encoder's GEMM shapes through each CPU GEMM provider, one process each\n", argv[0]);
      return 0;
    } else {
      std::fprintf(stderr, "bench_gemm: unknown argument '%s'\n", a.c_str());
      return 2;
    }
  }
  threads = bench::default_threads(threads);
  struct Config {
    const char* name;
    const char* env;
  };
  std::vector<Config> configs;
  if (kHaveOneDnn) {
    configs.push_back({"onednn fp32", "JEPA_GEMM=onednn"});
    configs.push_back({"onednn bf16", "JEPA_GEMM=onednn JEPA_MATMUL_PRECISION=bf16"});
  }
  if (kHaveBlas) configs.push_back({"openblas", "JEPA_GEMM=openblas"});
  configs.push_back({"eigen", "JEPA_GEMM=eigen"});
  if (kHaveBlas) {
    configs.push_back({"openblas, generic", "JEPA_GEMM=openblas OPENBLAS_CORETYPE=Prescott"});
    configs.push_back({"auto, BLAS generic", "JEPA_GEMM=auto OPENBLAS_CORETYPE=Prescott"});
  }
  char self[4096];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return 1;
  self[n] = 0;
  std::printf("bench_gemm — GFLOP/s of the CPU GEMM layer, best of 5, %d threads | date %s | CPU %s\n", threads,
              bench::now_string().c_str(), bench::cpu_model().c_str());
  std::map<std::string, std::vector<std::string>> cols;
  std::vector<std::string> rows;
  for (const Config& c : configs) {
    const std::string cmd = std::string("env OMP_NUM_THREADS=") + std::to_string(threads) +
                            " OPENBLAS_NUM_THREADS=" + std::to_string(threads) + " " + c.env + " " +
                            bench::shell_quote(self) + " --child";
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) return 1;
    char line[1024];
    while (std::fgets(line, sizeof line, p)) {
      std::string l(line);
      if (!l.empty() && l.back() == '\n') l.pop_back();
      if (l.rfind("# ", 0) == 0) {
        std::printf("%-20s %s\n", c.name, l.c_str() + 2);
        continue;
      }
      const auto tab = l.find('\t');
      if (tab == std::string::npos) continue;
      const std::string what = l.substr(0, tab);
      if (std::find(rows.begin(), rows.end(), what) == rows.end()) rows.push_back(what);
      cols[c.name].push_back(l.substr(tab + 1));
    }
    pclose(p);
  }
  std::printf("\n| shape (M×N×K) |");
  for (const Config& c : configs) std::printf(" %s |", c.name);
  std::printf("\n|---|");
  for (std::size_t i = 0; i < configs.size(); ++i) std::printf("---:|");
  std::printf("\n");
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const GemmShape& s = kShapes[r];
    std::printf("| %s (%lld×%lld×%lld) |", rows[r].c_str(), static_cast<long long>(s.M), static_cast<long long>(s.N),
                static_cast<long long>(s.K));
    for (const Config& c : configs) {
      const auto& v = cols[c.name];
      std::printf(" %s |", r < v.size() ? v[r].c_str() : "n/a");
    }
    std::printf("\n");
  }
  return 0;
}
