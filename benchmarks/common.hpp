// benchmarks/common.hpp — what the benchmark programs share: timing (median of runs after a warm-up),
// a progress line with ETA, the CPU load other processes cause (the build machine is shared), the
// PyTorch baseline through popen (benchmarks/torch_encoder.py prints one JSON line), and the machine
// description (CPU, BLAS libraries mapped). Used by bench_encoder.cpp and bench_inference.cpp.
#pragma once

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cctype>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

// OpenBLAS reads OPENBLAS_NUM_THREADS when it loads; these set and report it at run time when
// OpenBLAS is the BLAS (weak: null when it is not linked).
extern "C" void openblas_set_num_threads(int) __attribute__((weak));
extern "C" int openblas_get_num_threads() __attribute__((weak));
extern "C" int openblas_get_parallel() __attribute__((weak));  // 0 sequential, 1 pthreads, 2 OpenMP
extern "C" char* openblas_get_config() __attribute__((weak));

namespace jepa::bench {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// ---------------------------------------------------------------------------------------------------
// Progress: "[k/K] what, elapsed, ETA" on stderr. The ETA scales the elapsed time by the remaining /
// finished share of an a-priori work estimate (FLOPs at assumed rates), so it self-calibrates.
// ---------------------------------------------------------------------------------------------------
class Progress {
 public:
  void add_stage(double work) {
    stages_.push_back(work);
    total_ += work;
  }
  void begin_stage() { ++stage_; }
  /// Marks `frac` of the current stage's work as done and prints a line.
  void report(const std::string& what, double frac_done_in_stage) {
    const double stage_work = stage_ >= 1 && stage_ <= static_cast<int>(stages_.size()) ? stages_[stage_ - 1] : 0;
    const double done = done_before_stage() + frac_done_in_stage * stage_work;
    const double el = seconds_since(t0_);
    char eta[64] = "?";
    if (done > 0 && total_ > done) std::snprintf(eta, sizeof eta, "%.0f s", el * (total_ - done) / done);
    if (total_ <= done) std::snprintf(eta, sizeof eta, "0 s");
    std::fprintf(stderr, "[%d/%zu] %s, elapsed %.0f s, ETA %s\n", stage_, stages_.size(), what.c_str(), el, eta);
  }
  double elapsed() const { return seconds_since(t0_); }

 private:
  double done_before_stage() const {
    double d = 0;
    for (int i = 0; i + 1 < stage_ && i < static_cast<int>(stages_.size()); ++i) d += stages_[i];
    return d;
  }
  std::vector<double> stages_;
  double total_ = 0;
  int stage_ = 0;
  Clock::time_point t0_ = Clock::now();
};

inline Progress g_progress;

// ---------------------------------------------------------------------------------------------------
// Other load on the machine. "Foreign load" = CPU time the whole machine spent busy (/proc/stat) minus
// the CPU time of this process and its children (getrusage), per second of wall time, in cores.
// ---------------------------------------------------------------------------------------------------
struct CpuSample {
  double busy_s = 0, own_s = 0;
  Clock::time_point t = Clock::now();
};
inline CpuSample cpu_sample() {
  CpuSample c;
  std::ifstream f("/proc/stat");
  std::string cpu;
  unsigned long long user = 0, nice = 0, sys = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  if (f >> cpu >> user >> nice >> sys >> idle >> iowait >> irq >> softirq >> steal)
    c.busy_s = static_cast<double>(user + nice + sys + irq + softirq + steal) / static_cast<double>(sysconf(_SC_CLK_TCK));
  const auto tv = [](const timeval& v) { return static_cast<double>(v.tv_sec) + 1e-6 * static_cast<double>(v.tv_usec); };
  rusage self{}, children{};
  getrusage(RUSAGE_SELF, &self);
  getrusage(RUSAGE_CHILDREN, &children);
  c.own_s = tv(self.ru_utime) + tv(self.ru_stime) + tv(children.ru_utime) + tv(children.ru_stime);
  return c;
}
/// Cores kept busy by other processes between two samples (clamped at 0: the counters tick at 100 Hz).
inline double foreign_cores(const CpuSample& a, const CpuSample& b) {
  const double wall = std::chrono::duration<double>(b.t - a.t).count();
  if (wall <= 0) return 0;
  return std::max(0.0, ((b.busy_s - a.busy_s) - (b.own_s - a.own_s)) / wall);
}

/// Waits (at most max_s seconds) until other processes use less than `threshold` cores, measured over
/// 1.5 s windows. Returns the foreign load of the last window.
inline double wait_for_quiet(double max_s, double threshold = 0.15) {
  if (max_s <= 0) return 0;
  const auto t0 = Clock::now();
  bool told = false;
  for (;;) {
    const CpuSample a = cpu_sample();
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    const double f = foreign_cores(a, cpu_sample());
    if (f < threshold || seconds_since(t0) >= max_s) {
      if (told) std::fprintf(stderr, "  other load now %.2f cores; continuing\n", f);
      return f;
    }
    if (!told) {
      std::fprintf(stderr, "  other processes use %.2f cores; waiting up to %.0f s for a quiet machine ...\n", f, max_s);
      told = true;
    }
  }
}

/// Runs f() as one timed stage: waits for a quiet machine, then records the foreign load during f.
template <class F>
void stage(double wait_idle_s, double& load, F&& f) {
  g_progress.begin_stage();
  wait_for_quiet(wait_idle_s);
  const CpuSample a = cpu_sample();
  f();
  load = foreign_cores(a, cpu_sample());
}

/// Seconds of every timed run of the last time_median call (for the min/max printed with the medians).
inline std::vector<double> g_last_times;

/// One warm-up call, then `reps` timed calls; returns the median seconds. `tag` names the progress line.
template <class F>
double time_median(int reps, const std::string& tag, F&& f, bool progress = true) {
  std::vector<double> t;
  for (int r = 0; r <= reps; ++r) {
    if (progress)
      g_progress.report(tag + (r == 0 ? std::string(" warm-up") : " rep " + std::to_string(r) + "/" + std::to_string(reps)),
                        static_cast<double>(r) / (reps + 1));
    const auto t0 = Clock::now();
    f();
    const double dt = seconds_since(t0);
    if (r > 0) t.push_back(dt);
  }
  g_last_times = t;
  return median(t);
}

inline void fill_normal(std::vector<float>& v, float stddev, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> d(0.f, stddev);
  for (float& x : v) x = d(gen);
}

// ---------------------------------------------------------------------------------------------------
// PyTorch baseline through popen.
// ---------------------------------------------------------------------------------------------------
struct TorchResult {
  bool ok = false;
  double median_s = 0, gemm_gflops = 0;
  std::string blas;  // the BLAS libraries the PyTorch process mapped
};

inline double json_number(const std::string& line, const std::string& key, bool& ok) {
  const std::string k = "\"" + key + "\":";
  const auto pos = line.find(k);
  if (pos == std::string::npos) {
    ok = false;
    return 0;
  }
  char* end = nullptr;
  const char* s = line.c_str() + pos + k.size();
  const double v = std::strtod(s, &end);
  if (end == s) ok = false;
  return v;
}

/// The PyTorch script: the source-tree path compiled in, or benchmarks/<name> under the working
/// directory when the binary runs elsewhere (e.g. a bundle carried to a GPU machine: tools/gpu_bundle.sh).
inline std::string script_path(const char* compiled) {
  if (access(compiled, R_OK) == 0) return compiled;
  std::string name = compiled;
  const auto slash = name.rfind('/');
  return "benchmarks/" + (slash == std::string::npos ? name : name.substr(slash + 1));
}

inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

/// What a helper process printed: all of stdout, its last line that starts with '{' (the result of
/// the Python scripts in benchmarks/), and its exit status (−1: it could not be started).
struct ProcessOutput {
  std::string all, json;
  int rc = -1;
};

/// Runs the shell command `cmd` (stdout and stderr flushed first, so the order of lines stays right).
inline ProcessOutput run_for_json(const std::string& cmd) {
  std::fflush(stdout);
  std::fflush(stderr);
  ProcessOutput out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, p)) out.all += buf;
  out.rc = pclose(p);
  std::size_t start = 0;
  while (start < out.all.size()) {
    std::size_t end = out.all.find('\n', start);
    if (end == std::string::npos) end = out.all.size();
    if (out.all[start] == '{') out.json = out.all.substr(start, end - start);
    start = end + 1;
  }
  return out;
}

/// Runs `python script args` and parses the last stdout line that starts with '{' (median_s,
/// torch_gemm_gflops, torch_blas). `who` prefixes the error messages.
inline TorchResult run_torch(const std::string& who, const std::string& python, const std::string& script,
                             const std::string& args) {
  const std::string cmd = shell_quote(python) + " " + shell_quote(script) + " " + args;
  TorchResult r;
  const ProcessOutput out = run_for_json(cmd);
  const std::string& json = out.json;
  const int rc = out.rc;
  if (rc == -1) {
    std::fprintf(stderr, "%s: could not start: %s\n", who.c_str(), cmd.c_str());
    return r;
  }
  const std::string& all = out.all;
  if (rc != 0 || json.empty()) {
    std::fprintf(stderr, "%s: PyTorch run failed (exit %d): %s\n%s", who.c_str(), rc, cmd.c_str(), all.c_str());
    return r;
  }
  bool ok = true;
  r.median_s = json_number(json, "median_s", ok);
  r.gemm_gflops = json_number(json, "torch_gemm_gflops", ok);
  r.ok = ok;
  const auto b = json.find("\"torch_blas\": [");
  if (b != std::string::npos) {
    const auto e = json.find(']', b);
    r.blas = json.substr(b + 15, e == std::string::npos ? std::string::npos : e - b - 15);
  }
  if (!ok) std::fprintf(stderr, "%s: could not parse the PyTorch JSON line: %s\n", who.c_str(), json.c_str());
  return r;
}

// ---------------------------------------------------------------------------------------------------
// The machine.
// ---------------------------------------------------------------------------------------------------
/// The BLAS shared libraries mapped into this process.
inline std::string loaded_blas() {
  std::ifstream f("/proc/self/maps");
  std::string line, out;
  while (std::getline(f, line)) {
    const auto sp = line.find('/');
    if (sp == std::string::npos) continue;
    const std::string path = line.substr(sp);
    const std::string base = path.substr(path.rfind('/') + 1);
    if (base.find("blas") != std::string::npos && out.find(path) == std::string::npos)
      out += (out.empty() ? "" : ", ") + path;
  }
  return out.empty() ? "none" : out;
}

inline std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) {
      const auto c = line.find(':');
      return c == std::string::npos ? line : line.substr(c + 2);
    }
  return "unknown CPU";
}

/// --threads, else OMP_NUM_THREADS, else the number of cores.
inline int default_threads(int requested) {
  if (requested > 0) return requested;
  const char* env = std::getenv("OMP_NUM_THREADS");
  const int n = env ? std::atoi(env) : 0;
  return n > 0 ? n : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

/// The options every jepa-vs-PyTorch benchmark takes (bench_encoder, bench_inference).
struct TorchBenchOptions {
  bool torch = true;
  char only = 0;  // one model shape by its letter (S, B, L), 0 = all
  int reps = 3, threads = 0;
  double wait_idle_s = 60;
  std::string python = "/usr/bin/python3";
  std::string script;
};

/// The help lines of TorchBenchOptions (after the program's own lines).
inline constexpr const char* kTorchBenchHelp =
    "  --no-torch      skip the PyTorch baseline\n"
    "  --threads N     default: OMP_NUM_THREADS, else the number of cores\n"
    "  --wait-idle S   before each timed stage, wait up to S seconds for other processes to use\n"
    "                  < 0.15 cores (default 60; 0 = never wait)\n"
    "  --python PATH   interpreter with PyTorch 1.13 (default /usr/bin/python3)\n";

/// The value after option argv[i], advancing i; a missing value names the option, prints the usage
/// (`usage(argv0, 2)`, which returns the exit code) and exits.
template <class Usage>
std::string option_value(int argc, char** argv, int& i, const char* who, Usage&& usage) {
  if (i + 1 >= argc) {
    std::fprintf(stderr, "%s: %s needs a value\n", who, argv[i]);
    std::exit(usage(argv[0], 2));
  }
  return argv[++i];
}

/// Gives `n` threads to OpenMP and, when it is the BLAS, to OpenBLAS.
inline void set_thread_count(int n) {
#ifdef _OPENMP
  omp_set_num_threads(n);
#endif
  if (openblas_set_num_threads) openblas_set_num_threads(n);
}

/// Consumes argument `a` if it is one of TorchBenchOptions (`next()` returns its value); false if not.
template <class Next>
bool parse_torch_bench_option(const std::string& a, Next&& next, TorchBenchOptions& o) {
  if (a == "--no-torch") o.torch = false;
  else if (a == "--reps") o.reps = std::max(1, std::atoi(next().c_str()));
  else if (a == "--threads") o.threads = std::atoi(next().c_str());
  else if (a == "--wait-idle") o.wait_idle_s = std::atof(next().c_str());
  else if (a == "--only") o.only = static_cast<char>(std::toupper(static_cast<unsigned char>(next()[0])));
  else if (a == "--python") o.python = next();
  else if (a == "--torch-script") o.script = next();
  else return false;
  return true;
}

/// Resolves the thread count and gives it to OpenMP and OpenBLAS.
inline void apply_threads(TorchBenchOptions& o) {
  o.threads = default_threads(o.threads);
  set_thread_count(o.threads);
}

/// Local time as "YYYY-MM-DD HH:MM" for the benchmark's header line.
inline std::string now_string() {
  const std::time_t now = std::time(nullptr);
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M", std::localtime(&now));
  return date;
}

}  // namespace jepa::bench
