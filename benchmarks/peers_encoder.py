#!/usr/bin/env python3
"""CPU peer engines for bench_encoder: one engine, one shape of the V-JEPA 2 ViT encoder, one JSON line.

What it measures
  bench_encoder times jepa's encoder against what someone would run instead on a CPU. Besides the
  PyTorch 1.13 baseline (benchmarks/torch_encoder.py, the official explicit-attention code), the
  realistic alternatives are:
    torch       PyTorch 2.x eager with F.scaled_dot_product_attention (the official use_sdpa=True
                path), fp32, forward under torch.no_grad(); with --backward, forward + backward of
                loss = out.sum() with the parameter gradients set to None before each run (what
                optimizer.zero_grad(set_to_none=True) leaves), exactly as torch_encoder.py does;
    ort         ONNX Runtime, CPUExecutionProvider, fp32, graph optimisation level ALL,
                intra-op threads = --threads, inter-op threads 1, sequential execution;
    ov-f32      OpenVINO CPU plugin, INFERENCE_PRECISION_HINT f32, PERFORMANCE_HINT LATENCY,
                NUM_STREAMS 1, INFERENCE_NUM_THREADS = --threads: the same arithmetic as the others;
    ov-default  OpenVINO CPU plugin with the same thread settings but no precision hint, i.e. what a
                user gets out of the box. On CPUs with native bf16 (AVX512-BF16 / AMX) the plugin may
                pick bf16; the precision it actually compiled for is read back from the compiled
                model (INFERENCE_PRECISION_HINT) and reported, so the number is never mistaken for
                an fp32 one.
  All four run the same network: the VisionTransformer class of torch_encoder.py (Conv3d tubelet
  patch embedding 2x16x16, pre-norm blocks, 3-D RoPE, exact erf GELU, final LayerNorm), with the
  same seeded weights and the same seeded input. Every engine runs in its own process (the caller
  starts this script once per engine), so thread pools and allocators of one engine never share a
  process with another's.

Shapes
  --frames F --size S --batch B gives the input (B, 3, F, S, S). --frames 1 is an image: as V-JEPA 2
  does, the frame is repeated over the tubelet (2 frames) inside the model, so an image gives
  (S/16)^2 tokens (196 for 224^2) and a clip F/2 * (S/16)^2 (1568 for 16 x 224^2).

ONNX export (ort, ov-*)
  The PyTorch model (fp32, eval mode, explicit attention, which is the same math as SDPA and what
  the TorchScript exporter handles best) is exported with a static shape by torch.onnx.export
  (dynamo=False where the keyword exists, opset 17). Both ONNX Runtime and OpenVINO read that file.
  The export is done once per model / frames / size / batch / seed / opset and kept under --cache
  (default $TMPDIR/jepa-peers) as a directory holding model.onnx, ref.npz (the input and PyTorch's
  output for it) and meta.json. It is written to <entry>.tmp.<pid> and renamed into place, so a
  concurrent or interrupted run never sees half an export. The export time is reported separately
  (export_s) and is never part of the timings. A cached entry is reused without importing PyTorch.

Correctness check
  Before timing, the ort / ov engines run the stored input once and compare with the stored PyTorch
  output: max_abs_diff_vs_torch = max |y - y_torch| and max_rel_diff_vs_torch = max |y - y_torch| /
  max |y_torch|. A result above --tolerance (default 1e-3 for fp32, 0.1 for bf16 / fp16) is an
  error, so a broken export cannot report a fast but wrong number. The torch engine (forward)
  reports max_rel_diff_sdpa_vs_explicit instead: SDPA against the explicit attention path.

Timing
  After --warmup untimed runs (the check run comes before them), --reps runs are timed with
  time.perf_counter, each one call on the whole batch (ort: session.run; ov: infer_request.infer;
  both return the output as a numpy array). Threads: OMP / MKL / OpenBLAS environment variables are
  set before torch is imported, then torch.set_num_threads(threads) and
  torch.set_num_interop_threads(1); ORT and OpenVINO get the thread count through their options.

Usage
  /opt/peers/bin/python benchmarks/peers_encoder.py --engine ort --model vit_small --frames 1 \\
      --size 224 --batch 1 --threads 2 --reps 3 [--warmup 1] [--cache DIR] [--seed 0]
  /opt/peers/bin/python benchmarks/peers_encoder.py --engine torch --backward --model vit_small \\
      --frames 16 --size 224 --threads 2

Output contract: exactly one JSON line on stdout (everything else, including library chatter, goes
to stderr), then exit status
  0 with a result: engine, engine_version, model, frames, size, batch, tokens_per_sample (also as
    tokens), threads, backward, reps, warmup, median_s, min_s, times_s (seconds per call, whole
    batch), precision ("fp32", "bf16", ...), max_abs_diff_vs_torch and max_rel_diff_vs_torch
    (null for torch), tolerance, export_s and export_cached (ort / ov), load_s (session creation /
    model compilation), cpu_model, cpu_flags, python (sys.executable), plus engine details;
  0 with {"engine": ..., "skipped": "<reason>", ...} when this interpreter cannot run the engine
    (e.g. onnxruntime not installed, PyTorch without SDPA) or the combination makes no sense
    (--backward with an inference engine);
  1 with {"engine": ..., "error": "<message>"} on any failure (traceback on stderr).
"""

import argparse
import ast
import gc
import json
import os
import shutil
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ENGINES = ("torch", "ort", "ov-f32", "ov-default")
CACHE_FORMAT = 1  # bump when the contents of a cache entry change

# The one JSON line goes to the real stdout; everything else (ours and the libraries') to stderr.
_STDOUT = None


def _redirect_stdout():
    global _STDOUT
    _STDOUT = os.fdopen(os.dup(1), "w")
    sys.stdout.flush()
    os.dup2(2, 1)
    sys.stdout = sys.stderr


def emit(obj):
    out = _STDOUT if _STDOUT is not None else sys.stdout
    out.write(json.dumps(obj) + "\n")
    out.flush()


def log(engine, msg):
    print("[peers:%s] %s" % (engine, msg), file=sys.stderr, flush=True)


def encoder_shapes():
    """torch_encoder.SHAPES without importing torch_encoder (which imports torch, and the thread
    variables must be set first): the literal dict is read from the file and evaluated alone."""
    path = os.path.join(HERE, "torch_encoder.py")
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "SHAPES" for t in node.targets):
            return eval(compile(ast.Expression(node.value), path, "eval"), {"__builtins__": {}})
    raise RuntimeError("no SHAPES in " + path)


def _engine_from_argv():
    argv = sys.argv[1:]
    for i, s in enumerate(argv):
        if s == "--engine" and i + 1 < len(argv):
            return argv[i + 1]
        if s.startswith("--engine="):
            return s.split("=", 1)[1]
    return None


class Parser(argparse.ArgumentParser):
    def error(self, message):  # keep the contract: a JSON line and exit 1, usage on stderr
        self.print_usage(sys.stderr)
        emit({"engine": _engine_from_argv(), "error": "bad arguments: " + message})
        sys.exit(1)


def parse_args(shapes):
    ap = Parser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--engine", choices=ENGINES, required=True)
    ap.add_argument("--model", choices=sorted(shapes), default="vit_small")
    ap.add_argument("--frames", type=int, default=16, help="1 = an image (repeated over the tubelet)")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--backward", action="store_true", help="forward + backward (torch only)")
    ap.add_argument("--cache", default=None, help="ONNX export cache (default $TMPDIR/jepa-peers)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--opset", type=int, default=17, help="ONNX opset of the export")
    ap.add_argument("--tolerance", type=float, default=None,
                    help="max allowed max_rel_diff_vs_torch (default 1e-3 fp32, 0.1 bf16/fp16)")
    a = ap.parse_args()
    if a.frames != 1 and (a.frames < 2 or a.frames % 2):
        ap.error("--frames must be 1 (an image) or a positive multiple of the tubelet size 2")
    if a.size < 16 or a.size % 16:
        ap.error("--size must be a positive multiple of the patch size 16")
    for name in ("batch", "threads", "reps"):
        if getattr(a, name) < 1:
            ap.error("--%s must be >= 1" % name)
    if a.warmup < 0:
        ap.error("--warmup must be >= 0")
    if a.cache is None:
        import tempfile
        a.cache = os.path.join(tempfile.gettempdir(), "jepa-peers")
    return a


def cpu_info():
    model, flags = None, set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, val = line.partition(":")
                key = key.strip()
                if key == "model name" and model is None:
                    model = val.strip()
                elif key == "flags" and not flags:
                    flags = set(val.split())
    except OSError:
        pass
    wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16")
    return model, [f for f in wanted if f in flags]


def module_available(name):
    import importlib.util
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def not_installed(module, pip_name):
    return "%s is not installed in %s (pip install %s)" % (module, sys.executable, pip_name)


def tokens_per_sample(a):
    return max(1, a.frames // 2) * (a.size // 16) ** 2


def diff_stats(y, ref):
    import numpy as np
    y = np.asarray(y, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if y.shape != ref.shape:
        raise RuntimeError("output shape %s, PyTorch's %s" % (y.shape, ref.shape))
    if not np.all(np.isfinite(y)):
        raise RuntimeError("output has non-finite values")
    max_abs = float(np.max(np.abs(y - ref)))
    return max_abs, max_abs / max(float(np.max(np.abs(ref))), 1e-30)


def time_runs(engine, a, run, what):
    for i in range(a.warmup):
        log(engine, "%s warm-up %d/%d" % (what, i + 1, a.warmup))
        run()
    times = []
    for i in range(a.reps):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
        log(engine, "%s rep %d/%d: %.4f s" % (what, i + 1, a.reps, times[-1]))
    return times


# ---------------------------------------------------------------------------------------------------
# PyTorch side: the model, the input, the export.
# ---------------------------------------------------------------------------------------------------
def import_torch(a):
    import torch
    torch.set_num_threads(a.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set, or the inter-op pool already started: harmless here
        pass
    if HERE not in sys.path:
        sys.path.insert(0, HERE)
    import torch_encoder as te
    return torch, te


def build(torch, te, a):
    """The seeded model and the seeded input (the input has its own generator, so it does not depend
    on the model's size)."""
    D, depth, heads, ratio = te.SHAPES[a.model]
    torch.manual_seed(a.seed)
    model = te.VisionTransformer(D, depth, heads, ratio)
    g = torch.Generator().manual_seed(a.seed + 1)
    x = torch.randn(a.batch, 3, a.frames, a.size, a.size, generator=g)
    return model, x


def run_torch(a, base):
    if not module_available("torch"):
        return dict(base, skipped=not_installed("torch", "torch"))
    torch, te = import_torch(a)
    import torch.nn.functional as F
    if not hasattr(F, "scaled_dot_product_attention"):
        return dict(base, skipped="PyTorch %s in %s has no F.scaled_dot_product_attention (the torch peer "
                    "is PyTorch >= 2.0 eager + SDPA; benchmarks/torch_encoder.py is the 1.13 baseline)"
                    % (torch.__version__, sys.executable))
    model, x = build(torch, te, a)
    what = "fwd+bwd" if a.backward else "fwd"
    log("torch", "torch %s, %d threads, %s %s input %s"
        % (torch.__version__, torch.get_num_threads(), a.model, what, tuple(x.shape)))
    te.USE_SDPA = True
    if a.backward:
        model.train()

        def run():
            for p in model.parameters():
                p.grad = None
            model(x).sum().backward()
    else:
        model.eval()

        def run():
            with torch.no_grad():
                return model(x)

    out = run()
    if out is not None and out.shape[1] != tokens_per_sample(a):
        raise RuntimeError("the model gave %d tokens, expected %d" % (out.shape[1], tokens_per_sample(a)))
    times = time_runs("torch", a, run, what)
    res = dict(base, engine_version=torch.__version__, precision="fp32", max_abs_diff_vs_torch=None,
               max_rel_diff_vs_torch=None, attention="sdpa", torch_num_threads=torch.get_num_threads(),
               times_s=times, median_s=statistics.median(times), min_s=min(times))
    if not a.backward:  # SDPA against the official explicit path, same weights and input
        te.USE_SDPA = False
        with torch.no_grad():
            ref = model(x)
        te.USE_SDPA = True
        res["max_abs_diff_sdpa_vs_explicit"], res["max_rel_diff_sdpa_vs_explicit"] = \
            diff_stats(out.numpy(), ref.numpy())
    return res


def cache_entry(a):
    name = "%s-f%d-s%d-b%d-seed%d-opset%d-v%d" % (a.model, a.frames, a.size, a.batch, a.seed, a.opset,
                                                  CACHE_FORMAT)
    return os.path.join(a.cache, name)


def export(a, engine, entry):
    """Export the model to <entry>/model.onnx with the reference input/output, atomically."""
    if not module_available("torch"):
        raise RuntimeError("no cached export at %s and %s cannot export one: %s"
                           % (entry, sys.executable, not_installed("torch", "torch")))
    import inspect
    import numpy as np
    torch, te = import_torch(a)
    model, x = build(torch, te, a)
    model.eval()
    te.USE_SDPA = False  # the explicit path: same math, plain MatMul / Softmax for the exporter
    os.makedirs(a.cache, exist_ok=True)
    tmp = "%s.tmp.%d" % (entry, os.getpid())
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        kw = dict(opset_version=a.opset, input_names=["clip"], output_names=["tokens"],
                  do_constant_folding=True)
        if "dynamo" in inspect.signature(torch.onnx.export).parameters:
            kw["dynamo"] = False  # the TorchScript exporter: static shapes, no onnxscript needed
        log(engine, "exporting %s (torch %s, opset %d) to %s" % (a.model, torch.__version__, a.opset, entry))
        # The TorchScript exporter types `1.0 * int64_ids` (the RoPE positions in separate_positions)
        # as double, where eager PyTorch gives float32, and ORT / OpenVINO then reject the mixed-type
        # Einsum. An explicit float32 cast during the export gives the graph eager's types; the
        # values (small integers) are identical.
        orig = te.RoPEAttention.separate_positions

        def separate_positions_f32(self, ids, H_patches, W_patches):
            return tuple(p.to(torch.float32) for p in orig(self, ids, H_patches, W_patches))

        t0 = time.perf_counter()
        te.RoPEAttention.separate_positions = separate_positions_f32
        try:
            with torch.no_grad():
                torch.onnx.export(model, (x,), os.path.join(tmp, "model.onnx"), **kw)
        finally:
            te.RoPEAttention.separate_positions = orig
        export_s = time.perf_counter() - t0
        log(engine, "export took %.1f s; computing the PyTorch reference output" % export_s)
        with torch.no_grad():
            y = model(x)
        if y.shape[1] != tokens_per_sample(a):
            raise RuntimeError("the model gave %d tokens, expected %d" % (y.shape[1], tokens_per_sample(a)))
        np.savez(os.path.join(tmp, "ref.npz"), x=x.numpy(), y=y.numpy())
        meta = {"export_s": export_s, "torch_version": torch.__version__, "opset": a.opset,
                "exporter": "torch.onnx.export(dynamo=False)" if "dynamo" in kw else "torch.onnx.export",
                "reference": "PyTorch fp32 eager, explicit attention", "python": sys.executable}
        with open(os.path.join(tmp, "meta.json"), "w") as f:
            json.dump(meta, f)
        try:
            os.replace(tmp, entry)
        except OSError:
            if not os.path.isfile(os.path.join(entry, "meta.json")):
                raise
            log(engine, "another process exported %s meanwhile; using that one" % entry)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    del model
    gc.collect()


def load_export(a, engine):
    import numpy as np
    entry = cache_entry(a)
    cached = os.path.isfile(os.path.join(entry, "meta.json"))
    if not cached:
        if os.path.exists(entry):
            raise RuntimeError("incomplete cache entry %s (no meta.json); delete it" % entry)
        export(a, engine, entry)
    else:
        log(engine, "reusing the export in %s" % entry)
    with open(os.path.join(entry, "meta.json")) as f:
        meta = json.load(f)
    with np.load(os.path.join(entry, "ref.npz")) as z:
        x, ref = z["x"], z["y"]
    return os.path.join(entry, "model.onnx"), x, ref, meta, cached


def finish_inference(a, engine, base, run, x, ref, meta, cached, precision, extra):
    y = run()  # the correctness check (also the first, untimed run)
    max_abs, max_rel = diff_stats(y, ref)
    tol = a.tolerance if a.tolerance is not None else (1e-3 if precision == "fp32" else 0.1)
    log(engine, "check vs PyTorch: max abs diff %.3g, max rel diff %.3g (tolerance %.3g, %s)"
        % (max_abs, max_rel, tol, precision))
    res = dict(base, precision=precision, max_abs_diff_vs_torch=max_abs, max_rel_diff_vs_torch=max_rel,
               tolerance=tol, export_s=meta["export_s"], export_cached=cached,
               export_torch_version=meta["torch_version"], opset=meta["opset"], **extra)
    if not max_rel <= tol:
        res["error"] = ("output differs from PyTorch's: max_rel_diff_vs_torch %.3g > tolerance %.3g"
                        % (max_rel, tol))
        return res
    times = time_runs(engine, a, run, "fwd")
    res.update(times_s=times, median_s=statistics.median(times), min_s=min(times))
    return res


def run_ort(a, base):
    if not module_available("onnxruntime"):
        return dict(base, skipped=not_installed("onnxruntime", "onnxruntime"))
    path, x, ref, meta, cached = load_export(a, "ort")
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    t0 = time.perf_counter()
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    load_s = time.perf_counter() - t0
    log("ort", "onnxruntime %s, session created in %.2f s, providers %s"
        % (ort.__version__, load_s, sess.get_providers()))
    in_name, out_name = sess.get_inputs()[0].name, sess.get_outputs()[0].name

    def run():
        return sess.run([out_name], {in_name: x})[0]

    extra = {"engine_version": ort.__version__, "load_s": load_s, "providers": sess.get_providers(),
             "graph_optimization_level": "ORT_ENABLE_ALL"}
    return finish_inference(a, "ort", base, run, x, ref, meta, cached, "fp32", extra)


def ov_precision_name(t):
    s = t.get_type_name() if hasattr(t, "get_type_name") else str(t)
    return {"f32": "fp32", "bf16": "bf16", "f16": "fp16"}.get(s, s)


def run_ov(a, base):
    engine = a.engine
    if not module_available("openvino"):
        return dict(base, skipped=not_installed("openvino", "openvino"))
    path, x, ref, meta, cached = load_export(a, engine)
    import openvino as ov
    core = ov.Core()
    cfg = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": "1", "INFERENCE_NUM_THREADS": str(a.threads)}
    if engine == "ov-f32":
        cfg["INFERENCE_PRECISION_HINT"] = "f32"
    t0 = time.perf_counter()
    compiled = core.compile_model(core.read_model(path), "CPU", cfg)
    load_s = time.perf_counter() - t0
    raw = compiled.get_property("INFERENCE_PRECISION_HINT")
    precision = ov_precision_name(raw)
    props = {}
    for key in ("NUM_STREAMS", "INFERENCE_NUM_THREADS", "PERFORMANCE_HINT"):
        try:
            props[key] = str(compiled.get_property(key))
        except Exception:  # a property this version does not report
            pass
    props["INFERENCE_PRECISION_HINT"] = raw.get_type_name() if hasattr(raw, "get_type_name") else str(raw)
    version = ov.get_version()
    log(engine, "openvino %s, compiled in %.2f s, %s" % (version, load_s, props))
    req = compiled.create_infer_request()
    out_port = compiled.output(0)

    def run():
        return req.infer({0: x})[out_port]

    extra = {"engine_version": version, "load_s": load_s, "ov_properties": props,
             "ov_device": core.get_property("CPU", "FULL_DEVICE_NAME")}
    return finish_inference(a, engine, base, run, x, ref, meta, cached, precision, extra)


def main():
    a = parse_args(encoder_shapes())  # --help still prints on stdout
    _redirect_stdout()
    # The thread counts of OpenMP / MKL / OpenBLAS are read when the libraries load: set them first.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
                "VECLIB_MAXIMUM_THREADS"):
        os.environ[var] = str(a.threads)
    cpu_model, cpu_flags = cpu_info()
    base = {"engine": a.engine, "model": a.model, "frames": a.frames, "size": a.size, "batch": a.batch,
            "tokens_per_sample": tokens_per_sample(a), "tokens": tokens_per_sample(a),
            "threads": a.threads, "backward": bool(a.backward), "reps": a.reps, "warmup": a.warmup,
            "seed": a.seed, "cpu_model": cpu_model, "cpu_flags": cpu_flags, "python": sys.executable}
    try:
        if a.backward and a.engine != "torch":
            res = dict(base, skipped="%s is an inference engine: it does not train (--backward is torch only)"
                       % a.engine)
        elif a.engine == "torch":
            res = run_torch(a, base)
        elif a.engine == "ort":
            res = run_ort(a, base)
        else:
            res = run_ov(a, base)
    except BaseException as e:  # noqa: BLE001 -- the contract: any failure is a JSON error line
        if isinstance(e, SystemExit) and not e.code:
            raise
        import traceback
        traceback.print_exc()
        msg = ("%s: %s" % (type(e).__name__, e)).strip().rstrip(":")
        emit({"engine": a.engine, "error": msg, "model": a.model, "frames": a.frames, "size": a.size,
              "batch": a.batch, "python": sys.executable})
        sys.exit(1)
    emit(res)
    sys.exit(1 if "error" in res else 0)


if __name__ == "__main__":
    main()
