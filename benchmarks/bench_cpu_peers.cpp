// bench_cpu_peers — the V-JEPA 2 encoder on the CPU next to the engines a user would pick instead,
// same run, same shapes, same thread count: PyTorch 2.x eager with SDPA (the one peer that trains),
// ONNX Runtime, and OpenVINO at f32 and at its default precision (bf16 on a CPU with AVX512-BF16 or
// AMX), each on an ONNX export of the project's own PyTorch reference (benchmarks/peers_encoder.py).
//
// Shapes: ViT-S/16 and ViT-B/16 on a 224² image (196 tokens: the image repeated over the 2-frame
// tubelet, as the official code and peers_encoder.py do) at batch 1 and 8, and on a 16×224² clip
// (1568 tokens) at batch 1 (batch 8 with --clip-batch8). For each shape, `--rounds` rounds (default 3)
// run every engine once, interleaved; in a round every engine does one warm-up call and then R timed
// calls (R = enough calls for ~0.3 s of jepa's fp32 forward, at most 10; the same R for every engine),
// a peer in a fresh process, jepa in this process. A cell is the median over all timed calls. jepa runs at fp32 and with bf16 GEMMs (set_matmul_precision;
// the fused attention, LayerNorm and GELU stay fp32), forward (Mode::inference) and forward+backward
// (Mode::training, loss = Σ out, no clip gradient) — the same as peers_encoder.py --backward.
//
// Ratios (> 1: jepa faster):
//   fp32 fwd vs best   the fastest of torch, ORT and OpenVINO f32, over jepa fp32
//   fwd+bwd vs torch   PyTorch's forward+backward over jepa's fp32 forward+backward
//   bf16 / fp32        jepa fp32 forward over jepa bf16 forward (the same for training)
//   bf16 vs OV default OpenVINO at its default precision over jepa bf16
//
// Usage: bench_cpu_peers [--rounds N] [--threads N] [--only S|B] [--clip-batch8] [--no-peers]
//                        [--python PATH] [--script PATH] [--cache DIR] [--wait-idle S]
// Missing engines are reported as skipped with the reason peers_encoder.py gives. Performance is
// printed, never asserted.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common.hpp"
#include "jepa/jepa.hpp"

#ifndef JEPA_PEERS_SCRIPT
#define JEPA_PEERS_SCRIPT "benchmarks/peers_encoder.py"
#endif

namespace {

using namespace jepa;
using namespace jepa::bench;
using namespace jepa::models;
using backend::cpu::MatmulPrecision;

struct Options {
  int rounds = 3, threads = 0;
  char only = 0;
  bool clip_batch8 = false, peers = true;
  double wait_idle_s = 30;
  std::string python = "/opt/peers/bin/python";
  std::string script = script_path(JEPA_PEERS_SCRIPT);
  std::string cache;
};

struct PeerRun {
  bool ok = false;
  std::string note;  // skipped / error reason
  double seconds = 0;
  std::vector<double> times;
  std::string version, precision;
};

const char* const kPeers[] = {"torch", "ort", "ov-f32", "ov-default", "torch-train"};

PeerRun run_peer(const Options& o, const std::string& engine, const char* model, index_t frames, index_t batch,
                 int reps) {
  const bool train = engine == "torch-train";
  std::string cmd = shell_quote(o.python) + " " + shell_quote(o.script) + " --engine " + (train ? "torch" : engine);
  cmd.append(" --model ").append(model).append(" --frames ").append(std::to_string(frames));
  cmd.append(" --size 224 --batch ").append(std::to_string(batch)).append(" --threads ").append(std::to_string(o.threads));
  cmd.append(" --reps ").append(std::to_string(reps)).append(" --warmup 1");
  if (train) cmd.append(" --backward");
  if (!o.cache.empty()) cmd.append(" --cache ").append(shell_quote(o.cache));
  cmd.append(" 2>/dev/null");
  PeerRun r;
  const ProcessOutput out = run_for_json(cmd);
  const std::string& line = out.json;
  if (out.rc == -1) {
    r.note = "could not start " + o.python;
    return r;
  }
  if (line.empty()) {
    r.note = "no result from " + o.python + " (is it the interpreter with the peers? --python)";
    return r;
  }
  try {
    const auto j = nlohmann::json::parse(line);
    if (j.contains("skipped")) r.note = "skipped: " + j["skipped"].get<std::string>();
    else if (j.contains("error")) r.note = "error: " + j["error"].get<std::string>();
    else {
      r.ok = true;
      r.seconds = j.at("median_s").get<double>();
      if (j.contains("times_s") && j["times_s"].is_array())
        for (const auto& t : j["times_s"]) r.times.push_back(t.get<double>());
      if (r.times.empty()) r.times.push_back(r.seconds);
      if (j.contains("engine_version") && j["engine_version"].is_string()) r.version = j["engine_version"].get<std::string>();
      if (j.contains("precision") && j["precision"].is_string()) r.precision = j["precision"].get<std::string>();
    }
  } catch (const std::exception& e) {
    r.note = std::string("unreadable result: ") + e.what();
  }
  return r;
}

struct PeerShape {
  const presets::EncoderShape* shape;
  const char* label;
  char key;
  const char* input;
  index_t frames;  // jepa frames (an image is 2 frames of the same picture)
  index_t peer_frames;
  index_t batch;
};

struct Cell {
  std::vector<double> runs;
  std::string note, version, precision;
  double med() const { return runs.empty() ? 0.0 : median(runs); }
};

struct Result {
  PeerShape shape;
  index_t tokens = 0;
  std::map<std::string, Cell> cells;  // "jepa-f32", "jepa-bf16", "jepa-f32-train", "jepa-bf16-train", peers
};

template <const presets::EncoderShape& S>
Result run_shape(const Options& o, const PeerShape& sh) {
  using Encoder = presets::VJepa2Encoder<S>;
  Result res;
  res.shape = sh;
  const InputGeometry geom{sh.frames, 224, 224};
  Encoder enc(presets::vjepa2_config(S));
  const index_t N = enc.grid(geom).size();
  res.tokens = N;
  nn::ParameterSet<float> P(enc.layout()), G(enc.layout());
  P.init(0);
  std::vector<float> clip(static_cast<std::size_t>(sh.batch * 3 * sh.frames * 224 * 224));
  fill_normal(clip, 1.f, 11);
  const TensorView<const float, 5> cv(clip.data(), {sh.batch, 3, sh.frames, 224, 224});
  auto inf = enc.make_state(Mode::inference, sh.batch, geom);
  auto trn = enc.make_state(Mode::training, sh.batch, geom);
  std::vector<float> dout(static_cast<std::size_t>(sh.batch * N * S.embed_dim), 1.f);
  const std::string tag = std::string(sh.label) + " " + sh.input + " b" + std::to_string(sh.batch);
  int reps = 1;  // timed calls per engine and round, set from jepa's first fp32 forward
  auto jepa_run = [&](const std::string& key, MatmulPrecision p, bool train) {
    backend::cpu::ScopedMatmulPrecision scope(p);
    auto once = [&] {
      if (train) {
        enc.forward(P.data(), cv, nullptr, trn);
        enc.backward(P.data(), G.data(), trn, dout.data(), nullptr);
      } else {
        enc.forward(P.data(), cv, nullptr, inf);
      }
    };
    once();  // warm-up, as every peer does in its process
    for (int r = 0; r < reps; ++r) {
      const auto t0 = Clock::now();
      once();
      res.cells[key].runs.push_back(seconds_since(t0));
    }
  };
  {
    const auto t0 = Clock::now();
    enc.forward(P.data(), cv, nullptr, inf);
    reps = std::clamp(static_cast<int>(0.3 / std::max(1e-4, seconds_since(t0))), 1, 10);
  }
  for (int round = 0; round < o.rounds; ++round) {
    const std::string rt = tag + " round " + std::to_string(round + 1) + "/" + std::to_string(o.rounds);
    wait_for_quiet(o.wait_idle_s);
    g_progress.report(rt + ": jepa", 0);
    jepa_run("jepa-f32", MatmulPrecision::f32, false);
    jepa_run("jepa-bf16", MatmulPrecision::bf16, false);
    jepa_run("jepa-f32-train", MatmulPrecision::f32, true);
    jepa_run("jepa-bf16-train", MatmulPrecision::bf16, true);
    if (!o.peers) continue;
    for (const char* peer : kPeers) {
      g_progress.report(rt + ": " + peer, 0.5);
      const PeerRun r = run_peer(o, peer, S.name.data(), sh.peer_frames, sh.batch, reps);
      Cell& c = res.cells[peer];
      if (r.ok) {
        c.runs.insert(c.runs.end(), r.times.begin(), r.times.end());
        c.version = r.version;
        c.precision = r.precision;
      } else if (c.note.empty()) {
        c.note = r.note;
      }
    }
  }
  return res;
}

std::string fmt(double v, const char* f = "%.3f") {
  if (v <= 0) return "n/a";
  char b[32];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

int usage(const char* argv0, int rc) {
  std::fprintf(rc ? stderr : stdout,
               "usage: %s [--rounds N] [--threads N] [--only S|B] [--clip-batch8] [--no-peers]\n"
               "          [--python PATH] [--script PATH] [--cache DIR] [--wait-idle S]\n"
               "  --rounds N      rounds per shape, every engine once per round (default 3; median reported)\n"
               "  --threads N     threads for every engine (default: OMP_NUM_THREADS, else the cores)\n"
               "  --only S|B      ViT-S/16 or ViT-B/16 only\n"
               "  --clip-batch8   also the 16x224^2 clip at batch 8 (minutes per round on 2 cores)\n"
               "  --no-peers      jepa only\n"
               "  --python PATH   the interpreter with PyTorch 2.x, onnxruntime and openvino\n"
               "                  (default /opt/peers/bin/python; docs/benchmarks.md says how to make it)\n"
               "  --script PATH   peers_encoder.py (default: the source tree's)\n"
               "  --cache DIR     where the ONNX exports are kept (default: peers_encoder.py's)\n"
               "  --wait-idle S   before each round, wait up to S s for other processes to go quiet (default 30)\n"
               "The CPU GEMM provider follows JEPA_GEMM (auto|onednn|openblas|eigen).\n",
               argv0);
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto next = [&] { return option_value(argc, argv, i, "bench_cpu_peers", usage); };
    if (a == "--rounds") o.rounds = std::max(1, std::atoi(next().c_str()));
    else if (a == "--threads") o.threads = std::atoi(next().c_str());
    else if (a == "--only") o.only = static_cast<char>(std::toupper(static_cast<unsigned char>(next()[0])));
    else if (a == "--clip-batch8") o.clip_batch8 = true;
    else if (a == "--no-peers") o.peers = false;
    else if (a == "--python") o.python = next();
    else if (a == "--script") o.script = next();
    else if (a == "--cache") o.cache = next();
    else if (a == "--wait-idle") o.wait_idle_s = std::atof(next().c_str());
    else if (a == "-h" || a == "--help") return usage(argv[0], 0);
    else {
      std::fprintf(stderr, "bench_cpu_peers: unknown argument '%s'\n", a.c_str());
      return usage(argv[0], 2);
    }
  }
  if (o.only != 0 && o.only != 'S' && o.only != 'B') {
    std::fprintf(stderr, "bench_cpu_peers: --only takes S or B\n");
    return 2;
  }
  o.threads = default_threads(o.threads);
  set_thread_count(o.threads);

  std::vector<PeerShape> shapes;
  for (const auto* s : {&presets::vit_small, &presets::vit_base}) {
    const char key = s == &presets::vit_small ? 'S' : 'B';
    if (o.only && o.only != key) continue;
    const char* label = key == 'S' ? "ViT-S/16" : "ViT-B/16";
    shapes.push_back({s, label, key, "image 224²", 2, 1, 1});
    shapes.push_back({s, label, key, "image 224²", 2, 1, 8});
    shapes.push_back({s, label, key, "clip 16×224²", 16, 16, 1});
    if (o.clip_batch8) shapes.push_back({s, label, key, "clip 16×224²", 16, 16, 8});
  }
  for (const PeerShape& s : shapes) g_progress.add_stage(static_cast<double>(s.frames * s.batch * (s.key == 'S' ? 1 : 3)));

  try {
    std::printf("bench_cpu_peers — V-JEPA 2 encoder (RoPE, final norm) on the CPU next to its peers\n");
    std::printf("date %s | CPU %s | %u hardware threads | %d threads per engine | %d rounds (median)\n",
                now_string().c_str(), cpu_model().c_str(), std::thread::hardware_concurrency(), o.threads, o.rounds);
    std::printf("jepa GEMM: %s\n", backend::cpu::gemm_report().c_str());
    std::printf("compiler %s\n", __VERSION__);
    std::fflush(stdout);

    std::vector<Result> results;
    for (const PeerShape& s : shapes) {
      g_progress.begin_stage();
      results.push_back(s.key == 'S' ? run_shape<presets::vit_small>(o, s) : run_shape<presets::vit_base>(o, s));
      const Result& r = results.back();
      std::printf("%s %s batch %lld (%lld tokens each):", s.label, s.input, static_cast<long long>(s.batch),
                  static_cast<long long>(r.tokens));
      for (const auto& [k, c] : r.cells)
        std::printf(" %s %s", k.c_str(), c.runs.empty() ? ("(" + c.note + ")").c_str() : fmt(c.med()).c_str());
      std::printf("\n");
      std::fflush(stdout);
    }

    std::printf("\nseconds per call (whole batch), median of all timed calls of %d rounds; ratios > 1 mean jepa is faster\n",
                o.rounds);
    std::printf("| model | input | batch | jepa fp32 | torch 2 eager | ORT | OV f32 | fp32 fwd vs best | jepa bf16 | "
                "OV default | bf16/fp32 | bf16 vs OV default | jepa fp32 fwd+bwd | torch fwd+bwd | fwd+bwd vs torch | "
                "jepa bf16 fwd+bwd | bf16/fp32 train |\n");
    std::printf("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (const Result& r : results) {
      auto m = [&](const char* k) {
        auto it = r.cells.find(k);
        return it == r.cells.end() ? 0.0 : it->second.med();
      };
      const double jf = m("jepa-f32"), jb = m("jepa-bf16"), jft = m("jepa-f32-train"), jbt = m("jepa-bf16-train");
      double best = 0;
      for (const char* k : {"torch", "ort", "ov-f32"})
        if (m(k) > 0) best = best > 0 ? std::min(best, m(k)) : m(k);
      auto ratio = [](double a, double b) { return a > 0 && b > 0 ? fmt(a / b, "%.2fx") : std::string("n/a"); };
      std::printf("| %s | %s | %lld | %s | %s | %s | %s | **%s** | %s | %s | %s | %s | %s | %s | **%s** | %s | %s |\n",
                  r.shape.label, r.shape.input, static_cast<long long>(r.shape.batch), fmt(jf).c_str(),
                  fmt(m("torch")).c_str(), fmt(m("ort")).c_str(), fmt(m("ov-f32")).c_str(), ratio(best, jf).c_str(),
                  fmt(jb).c_str(), fmt(m("ov-default")).c_str(), ratio(jf, jb).c_str(), ratio(m("ov-default"), jb).c_str(),
                  fmt(jft).c_str(), fmt(m("torch-train")).c_str(), ratio(m("torch-train"), jft).c_str(), fmt(jbt).c_str(),
                  ratio(jft, jbt).c_str());
    }
    // Engine versions and anything skipped.
    std::map<std::string, std::string> seen;
    for (const Result& r : results)
      for (const auto& [k, c] : r.cells) {
        if (k.rfind("jepa", 0) == 0) continue;
        std::string v = c.runs.empty() ? c.note : c.version + (c.precision.empty() ? "" : ", " + c.precision);
        if (!v.empty()) seen[k] = v;
      }
    for (const auto& [k, v] : seen) std::printf("%s: %s\n", k.c_str(), v.c_str());
    std::fprintf(stderr, "done in %.0f s\n", g_progress.elapsed());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_cpu_peers: %s\n", e.what());
    return 1;
  }
  return 0;
}
