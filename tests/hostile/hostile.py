#!/usr/bin/env python3
"""Hostile-input suite: every case is generated here (no committed inputs), run against the example
programs, and must end in a `jepa:` error that names what was wrong (exit code 2 or 3, never a signal,
a sanitizer report or a hang) — or, for the control cases, in a correct result.

    hostile.py --bin DIR [--suffix _asan] [--subset smoke|all] [--list] [--only NAME]
    hostile.py --make-vit-tiny OUT [--fill 1e30]     (an input for other tests: vit_tiny weights)

DIR holds the programs (train, encode_clip, extract_features, plan, each with --suffix); programs
that are missing are reported and their cases skipped (exit 77 if nothing could run). The CTest
label `hostile` runs --subset all on the ASan+UBSan builds; the default suite runs --subset smoke.
Each case has a time limit; its class (the issue's defect number) is printed with its result.
"""
import argparse, hashlib, json, os, shutil, struct, subprocess, sys, tempfile, time, zipfile

SAN_MARKERS = ("AddressSanitizer", "runtime error:", "LeakSanitizer", "UndefinedBehaviorSanitizer")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CASES = []


def case(name, klass, smoke=False, program="train"):
    def wrap(fn):
        CASES.append(dict(name=name, klass=klass, smoke=smoke, program=program, fn=fn))
        return fn
    return wrap


class Ctx:
    def __init__(self, bins, suffix, work):
        self.bins, self.suffix, self.work = bins, suffix, work

    def exe(self, program):
        return os.path.join(self.bins, program + self.suffix)

    def run(self, program, args, env=None, timeout=240, cwd=None):
        e = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
                 ASAN_OPTIONS="detect_leaks=0:abort_on_error=0:allocator_may_return_null=1",
                 UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
        e.update(env or {})
        t0 = time.time()
        p = subprocess.run([self.exe(program)] + args, capture_output=True, text=True, errors="replace",
                           env=e, timeout=timeout, cwd=cwd or self.work)
        return p.returncode, p.stdout, p.stderr, time.time() - t0

    def path(self, *parts):
        return os.path.join(self.work, *parts)


def expect_error(ctx, program, args, words, env=None, codes=(2, 3)):
    rc, out, err, secs = ctx.run(program, args, env)
    text = out + err
    for m in SAN_MARKERS:
        if m in err:
            return False, f"sanitizer report: {err[err.find(m) - 200:][:1500]}"
    if rc < 0:
        return False, f"killed by signal {-rc}; stderr tail: {err[-600:]}"
    if rc not in codes:
        return False, f"exit code {rc} (want one of {codes}); output tail: {text[-600:]}"
    if "jepa" not in err:
        return False, f"no jepa message on stderr: {err[-600:]}"
    missing = [w for w in words if w not in text]
    if missing:
        return False, f"message lacks {missing}: {err.strip().splitlines()[-1] if err.strip() else '(empty)'}"
    return True, err.strip().splitlines()[-1][:240]


# ---------------------------------------------------------------------------------------------------
# Helpers that make inputs.
# ---------------------------------------------------------------------------------------------------
TINY = ["--steps", "6", "--cooldown-steps", "0", "--batch", "2", "--checkpoint-every", "1"]


def base_run(ctx):
    """A run of 2 of 6 steps (the checkpoint to resume), made once and copied by each case."""
    d = ctx.path("base")
    if not os.path.exists(os.path.join(d, "checkpoint.safetensors")):
        rc, out, err, _ = ctx.run("train", TINY + ["--stop-after", "2", "--out", d])
        if rc != 0:
            raise RuntimeError(f"the base run failed ({rc}): {err[-800:]}")
    return d


def copy_run(ctx, name):
    d = ctx.path(name)
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(base_run(ctx), d)
    return d


def read_st(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    return json.loads(b[8:8 + n]), b[8 + n:]


def write_st(path, header, data):
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + data)


def set_meta(path, key, value, drop_hash=True):
    h, data = read_st(path)
    if value is None:
        h["__metadata__"].pop(key, None)
    else:
        h["__metadata__"][key] = value
    if drop_hash:
        h["__metadata__"].pop("content_hash", None)
    write_st(path, h, data)


def write_config(ctx, name, text):
    p = ctx.path(name + ".json")
    open(p, "w").write(text)
    return p


def md5(path):
    return hashlib.md5(open(path, "rb").read()).hexdigest()


# ---------------------------------------------------------------------------------------------------
# 1. Data loss: an absurd learning rate must not overwrite the last good checkpoint.
# ---------------------------------------------------------------------------------------------------
@case("absurd_lr_keeps_the_last_healthy_checkpoint", 1, smoke=True)
def _(ctx):
    d = copy_run(ctx, "lr")
    before = md5(os.path.join(d, "checkpoint.safetensors"))
    ok, why = expect_error(ctx, "train", TINY + ["--lr", "1e10", "--out", d],
                           ["checkpoint not written", "last healthy state (step 2)"])
    if ok and md5(os.path.join(d, "checkpoint.safetensors")) != before:
        return False, "the checkpoint was replaced"
    return ok, why


# ---------------------------------------------------------------------------------------------------
# 2. Checkpoint metadata: every field range-checked (no UB converting NaN or -1).
# ---------------------------------------------------------------------------------------------------
for key, value, smoke in [("global_step", "nan", True), ("global_step", "-1", False), ("stage", "9", False),
                          ("local_step", "1e3", False), ("bad_in_row", "99", False), ("adam_steps", "3", False),
                          ("mask_seed", "-1", False), ("global_step", "18446744073709551616", False),
                          ("stage_steps", "6,x", False)]:
    @case(f"checkpoint_metadata_{key}_{value}", 2, smoke=smoke)
    def _(ctx, key=key, value=value):
        d = copy_run(ctx, f"meta_{key}")
        set_meta(os.path.join(d, "checkpoint.safetensors"), key, value)
        return expect_error(ctx, "train", TINY + ["--out", d], [key, "--no-resume"])


@case("checkpoint_train_log_nan_step", 2)
def _(ctx):
    d = copy_run(ctx, "log_nan")
    p = os.path.join(d, "checkpoint.safetensors")
    h, data = read_st(p)
    off = h["train_log"]["data_offsets"][0]
    data = bytearray(data)
    data[off:off + 8] = struct.pack("<d", float("nan"))
    h["__metadata__"].pop("content_hash", None)
    write_st(p, h, bytes(data))
    return expect_error(ctx, "train", TINY + ["--out", d], ["train_log row 0", "step"])


# ---------------------------------------------------------------------------------------------------
# 3. A safetensors header with very many entries parses in linear time (the quadratic parser took
#    minutes at this size), then is refused as not this run's checkpoint.
# ---------------------------------------------------------------------------------------------------
@case("safetensors_header_with_300k_entries", 3, smoke=True)
def _(ctx):
    d = ctx.path("many")
    os.makedirs(d, exist_ok=True)
    h = {f"t{i}": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]} for i in range(300000)}
    h["__metadata__"] = {"format": "jepa-checkpoint-1"}
    write_st(os.path.join(d, "checkpoint.safetensors"), h, b"")
    t0 = time.time()
    ok, why = expect_error(ctx, "train", TINY + ["--out", d], ["--no-resume"])
    if ok and time.time() - t0 > 120:
        return False, f"took {time.time() - t0:.0f} s"
    return ok, why


# ---------------------------------------------------------------------------------------------------
# 4. Absurd sizes: refused before allocating, naming the options and the memory.
# ---------------------------------------------------------------------------------------------------
@case("size_gigantic_with_a_small_machine", 4, smoke=True)
def _(ctx):
    return expect_error(ctx, "train", ["--size", "gigantic", "--out", ctx.path("gig")], ["of memory", "--size"],
                        env={"JEPA_MEMORY_LIMIT": "2G"})


@case("large_res512_frames16_batch64", 4)
def _(ctx):
    return expect_error(ctx, "train", ["--size", "large", "--res", "512", "--frames", "16", "--batch", "64",
                                       "--out", ctx.path("big")], ["of memory", "--batch"])


@case("res_1048576", 4)
def _(ctx):
    return expect_error(ctx, "train", ["--res", "1048576", "--out", ctx.path("res")], ["of memory", "--res"])


# ---------------------------------------------------------------------------------------------------
# 5. Stale temporaries of a killed run are removed on start.
# ---------------------------------------------------------------------------------------------------
@case("stale_temporaries_are_removed", 5, smoke=True)
def _(ctx):
    d = copy_run(ctx, "stale")
    stale = os.path.join(d, "checkpoint.safetensors.tmp.999999998")
    open(stale, "wb").write(b"\0" * 4096)
    rc, out, err, _ = ctx.run("train", TINY + ["--stop-after", "1", "--out", d])
    if rc != 0:
        return False, f"exit {rc}: {err[-400:]}"
    if os.path.exists(stale):
        return False, "the stale temporary is still there"
    if any(m in err for m in SAN_MARKERS):
        return False, "sanitizer report"
    log = open(os.path.join(d, "log.csv")).read().splitlines()
    if len(log) != 4:
        return False, f"log.csv has {len(log)} lines, want header + 3 steps"
    return True, "removed, and log.csv holds steps 1-3"


@case("kill9_at_random_moments_never_truncates", 5)
def _(ctx):
    """kill -9 a checkpointing run at random moments: log.csv and the checkpoint are always whole, and
    the run resumes from them."""
    import random, signal
    d = ctx.path("kill")
    shutil.rmtree(d, ignore_errors=True)
    rng = random.Random(18)
    args = ["--steps", "400", "--cooldown-steps", "0", "--batch", "2", "--checkpoint-every", "1", "--out", d]
    env = dict(os.environ, OMP_NUM_THREADS="1", ASAN_OPTIONS="detect_leaks=0")
    for k in range(12):
        p = subprocess.Popen([ctx.exe("train")] + args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        time.sleep(0.3 + rng.random() * 1.5)
        p.send_signal(signal.SIGKILL)
        p.wait()
        log = open(os.path.join(d, "log.csv")).read()
        if not log.startswith("step,") or not log.endswith("\n"):
            return False, f"kill {k}: log.csv is {len(log)} bytes and not whole"
        if not os.path.exists(os.path.join(d, "checkpoint.safetensors")):
            continue  # killed before the first checkpoint
        try:
            h, _ = read_st(os.path.join(d, "checkpoint.safetensors"))
        except Exception as e:
            return False, f"kill {k}: the checkpoint does not parse: {e}"
    rc, out, err, _ = ctx.run("train", args + ["--stop-after", "1"])
    if rc != 0 or "resumed" not in out:
        return False, f"resume after the kills: exit {rc}: {err[-300:]}"
    step = int(read_st(os.path.join(d, "checkpoint.safetensors"))[0]["__metadata__"]["global_step"])
    if step < 12:
        return False, f"only {step} steps were trained over 12 runs: the kills did not hit a training run"
    return True, f"12 kills; log and checkpoint whole each time; resumed and reached step {step}"


# ---------------------------------------------------------------------------------------------------
# 6. The run directory is checked before the first step.
# ---------------------------------------------------------------------------------------------------
for label, target, words, smoke in [("empty", "", ["--out is empty"], False),
                                    ("dev_null", "/dev/null", ["--out '/dev/null' is not a directory"], True),
                                    ("proc", "/proc/jepa-hostile", ["--out '/proc/jepa-hostile'"], False)]:
    @case(f"out_{label}", 6, smoke=smoke)
    def _(ctx, target=target, words=words):
        return expect_error(ctx, "train", TINY + ["--out", target], words)


@case("out_is_a_file", 6)
def _(ctx):
    f = ctx.path("a_file")
    open(f, "w").write("x")
    return expect_error(ctx, "train", TINY + ["--out", f], ["is not a directory"])


# ---------------------------------------------------------------------------------------------------
# 7. Every option and config key validated with the same rules.
# ---------------------------------------------------------------------------------------------------
for args, words, smoke in [
        (["--lr", "nan"], ["--lr", "'nan'", "finite number > 0"], True),
        (["--lr", "-1"], ["--lr", "> 0"], False),
        (["--lr-start", "nan"], ["--lr-start"], False),
        (["--ema", "nan"], ["--ema"], False),
        (["--ema", "2"], ["--ema", "[0, 1]"], False),
        (["--wd", "-5"], ["--wd", ">= 0"], False),
        (["--steps", "-5"], ["--steps", "'-5'"], False),
        (["--steps", "1.5"], ["--steps", "not an integer"], False),
        (["--batch", "0"], ["--batch"], False),
        (["--steps", "99999999999999999999999"], ["--steps"], False),
        (["--family", "vjepa", "--cooldown-steps", "5"], ["--cooldown-steps", "vjepa2"], False),
        (["--image-batch", "2"], ["--image-batch", "vjepa2_1"], False),
        (["--family", "nope"], ["--family", "vjepa2_1"], False),
        (["--size", "enormous"], ["--size", "gigantic"], False)]:
    @case("option_" + "_".join(a.strip("-") for a in args), 7, smoke=smoke)
    def _(ctx, args=args, words=words):
        return expect_error(ctx, "train", args + ["--out", ctx.path("opt")], words)


for label, text, words, smoke in [
        ("top_level_array", "[1, 2]", ["must hold a JSON object", "array"], True),
        ("negative_steps", '{"steps": -5}', ['"steps"', "-5", "[1,"], True),
        ("fraction", '{"steps": 2.5}', ['"steps"', "2.5"], False),
        ("huge", '{"steps": 1e30}', ['"steps"', "1e+30"], False),
        ("wrong_type", '{"lr": "0.1"}', ['"lr"', "string"], False),
        ("unknown_key", '{"stepz": 5}', ['unknown key "stepz"', "steps"], False),
        ("nan_text", '{"ema": NaN}', ["not valid JSON"], False),
        ("negative_seed", '{"seed": -1}', ['"seed"'], False),
        ("ema_2", '{"ema": 2}', ['"ema"', "[0, 1]"], False),
        ("out_number", '{"out": 5}', ['"out"', "string"], False),
        ("not_json", "steps = 5", ["not valid JSON"], False)]:
    @case(f"config_{label}", 7, smoke=smoke)
    def _(ctx, label=label, text=text, words=words):
        return expect_error(ctx, "train", ["--config", write_config(ctx, label, text), "--out", ctx.path("cfg")], words)


@case("config_missing_file", 7)
def _(ctx):
    return expect_error(ctx, "train", ["--config", ctx.path("no_such.json")], ["--config", "No such file"])


# ---------------------------------------------------------------------------------------------------
# 8. Resume with a changed schedule: refused with what to do.
# ---------------------------------------------------------------------------------------------------
for label, steps, smoke in [("extended", "30", True), ("shortened", "3", False)]:
    @case(f"schedule_{label}", 8, smoke=smoke)
    def _(ctx, label=label, steps=steps):
        d = copy_run(ctx, f"sched_{label}")
        args = ["--steps", steps, "--cooldown-steps", "0", "--batch", "2", "--out", d]
        return expect_error(ctx, "train", args, ["run of 6 steps", f"asks for {steps} steps", "--steps 6"])


@case("finished_run_says_so", 8)
def _(ctx):
    d = copy_run(ctx, "finished")
    rc, out, err, _ = ctx.run("train", TINY + ["--out", d])
    if rc != 0:
        return False, f"finishing the run: exit {rc}: {err[-300:]}"
    rc, out, err, _ = ctx.run("train", TINY + ["--out", d])
    return rc == 0 and "already complete" in out, out.strip().splitlines()[-1]


# ---------------------------------------------------------------------------------------------------
# 9. Messages a user can act on.
# ---------------------------------------------------------------------------------------------------
@case("foreign_file_in_out_mentions_no_resume", 9, smoke=True)
def _(ctx):
    d = ctx.path("foreign")
    os.makedirs(d, exist_ok=True)
    write_st(os.path.join(d, "checkpoint.safetensors"), {"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}},
             b"\0\0\0\0")
    return expect_error(ctx, "train", TINY + ["--out", d], ["not a jepa training checkpoint", "--no-resume"])


@case("pytorch_file_as_checkpoint", 9)
def _(ctx):
    d = ctx.path("pt")
    os.makedirs(d, exist_ok=True)
    with zipfile.ZipFile(os.path.join(d, "checkpoint.safetensors"), "w") as z:
        z.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
    return expect_error(ctx, "train", TINY + ["--out", d], ["PyTorch", "convert_checkpoint.py", "--no-resume"])


# ---------------------------------------------------------------------------------------------------
# 10. The 2.1 cooldown trains the recipe's cooldown objective: λ held at 0.5 from its first step, also
#     after a resume inside the cooldown (the weighting is checked per step by the unit tests).
# ---------------------------------------------------------------------------------------------------
@case("vjepa21_cooldown_lambda_held_across_a_resume", 10, smoke=True)
def _(ctx):
    d = ctx.path("cool21")
    args = ["--family", "vjepa2_1", "--steps", "20", "--cooldown-steps", "4", "--batch", "2", "--image-batch", "1",
            "--checkpoint-every", "1", "--out", d]
    rc, out, err, _ = ctx.run("train", args + ["--stop-after", "22"])  # stops inside the cooldown
    if rc != 0:
        return False, f"exit {rc}: {err[-300:]}"
    rc, out, err, _ = ctx.run("train", args)
    if rc != 0 or "resumed" not in out:
        return False, f"resume: exit {rc}: {err[-300:]}"
    rows = [r.split(",") for r in open(os.path.join(d, "log.csv")).read().splitlines()[1:]]
    lam = [(int(r[0]), int(r[1]), float(r[8])) for r in rows]
    cool = [l for s, st, l in lam if st == 1]
    pre_start = [l for s, st, l in lam if st == 0 and s == 1]
    if len(cool) != 4 or any(abs(l - 0.5) > 1e-12 for l in cool):
        return False, f"cooldown lambda {cool}, want 4 x 0.5"
    if pre_start != [0.0]:
        return False, f"pretraining starts at lambda {pre_start}, want 0 (the ramp)"
    return True, "lambda 0 -> ramp -> 0.5 held through the cooldown and its resume"


# ---------------------------------------------------------------------------------------------------
# 11. A flipped bit in a checkpoint's data is caught by its content hash.
# ---------------------------------------------------------------------------------------------------
@case("bit_flip_in_checkpoint_data", 11, smoke=True)
def _(ctx):
    d = copy_run(ctx, "flip")
    p = os.path.join(d, "checkpoint.safetensors")
    b = bytearray(open(p, "rb").read())
    b[-100] ^= 0x10
    open(p, "wb").write(bytes(b))
    return expect_error(ctx, "train", TINY + ["--out", d], ["content check", "damaged", "--no-resume"])


# ---------------------------------------------------------------------------------------------------
# Control: a correct run ends well.
# ---------------------------------------------------------------------------------------------------
@case("control_a_clean_run_resumes_and_finishes", 0, smoke=True)
def _(ctx):
    d = copy_run(ctx, "control")
    rc, out, err, _ = ctx.run("train", TINY + ["--out", d])
    if any(m in err for m in SAN_MARKERS):
        return False, "sanitizer report"
    return rc == 0 and "resumed" in out and "wrote" in out, f"exit {rc}"


# ---------------------------------------------------------------------------------------------------
# The other programs (skipped where not built).
# ---------------------------------------------------------------------------------------------------
for args, words in [(["--size", "1048576"], ["--size", "memory"]), (["--frames", "100000000"], ["--frames", "memory"]),
                    (["--clips", "0"], ["--clips"])]:
    @case("encode_clip_" + "_".join(a.strip("-") for a in args), 4, program="encode_clip")
    def _(ctx, args=args, words=words):
        return expect_error(ctx, "encode_clip", args + ["--png", ""], words, env={"JEPA_MEMORY_LIMIT": "4G"})


@case("extract_features_threads_negative", 7, program="extract_features")
def _(ctx):
    return expect_error(ctx, "extract_features", ["--threads", "-3"], ["--threads"])


def vit_tiny_weights(path, fill, nan_key=None):
    """A V-JEPA 2 vit_tiny encoder checkpoint (official key names) with every weight = fill, and a NaN
    at element 7 of tensor nan_key if given."""
    D, L, H = 192, 12, 768
    shapes = {"patch_embed.proj.weight": [D, 3, 2, 16, 16], "patch_embed.proj.bias": [D]}
    for i in range(L):
        for k, sh in (("norm1.weight", [D]), ("norm1.bias", [D]), ("attn.qkv.weight", [3 * D, D]),
                      ("attn.qkv.bias", [3 * D]), ("attn.proj.weight", [D, D]), ("attn.proj.bias", [D]),
                      ("norm2.weight", [D]), ("norm2.bias", [D]), ("mlp.fc1.weight", [H, D]), ("mlp.fc1.bias", [H]),
                      ("mlp.fc2.weight", [D, H]), ("mlp.fc2.bias", [D])):
            shapes[f"blocks.{i}.{k}"] = sh
    shapes.update({"norm.weight": [D], "norm.bias": [D]})
    header, off = {}, 0
    for k, sh in shapes.items():
        n = 1
        for x in sh:
            n *= x
        header["encoder." + k] = {"dtype": "F32", "shape": sh, "data_offsets": [off, off + 4 * n]}
        off += 4 * n
    data = bytearray(struct.pack("<f", fill) * (off // 4))
    if nan_key:
        at = header["encoder." + nan_key]["data_offsets"][0] + 4 * 7
        data[at:at + 4] = struct.pack("<f", float("nan"))
    write_st(path, header, bytes(data))


for label, fill, nan_key, words in [("nan", 0.01, "blocks.1.mlp.fc1.weight", ["non-finite", "blocks.1.mlp.fc1.weight"]),
                                    ("huge", 1e30, None, ["produce non-finite features"])]:
    @case(f"extract_features_{label}_weights", 7, program="extract_features")
    def _(ctx, label=label, fill=fill, nan_key=nan_key, words=words):
        p = ctx.path(f"{label}_weights.safetensors")
        vit_tiny_weights(p, fill, nan_key)
        out = ctx.path(f"{label}_feat.npy")
        ok, why = expect_error(ctx, "extract_features", ["--synthetic", "--weights", p, "--crop", "64", "--frames", "4",
                                                         "--out", out, "--png", ""], words)
        if ok and os.path.exists(out):
            return False, "features were written"
        return ok, why


def tiny_extract(ctx, path, out):
    """extract_features on one input with random vit_tiny weights (no checkpoint needed)."""
    return [path, "--random-weights", "0", "--model", "vit_tiny", "--crop", "64", "--out", ctx.path(out), "--png", ""]


for label, klass, name, content, words in [
        ("oversized_header", 4, "huge.y4m", b"YUV4MPEG2 W30000 H30000 F25:1 Ip A1:1 C420jpeg\nFRAME\n", ["30000x30000"]),
        ("not_an_image", 9, "fake.png", b"this is not a png at all", ["fake.png"])]:
    @case(f"extract_features_{label}", klass, program="extract_features")
    def _(ctx, name=name, content=content, words=words):
        p = ctx.path(name)
        open(p, "wb").write(content)
        return expect_error(ctx, "extract_features", tiny_extract(ctx, p, name + ".npy"), words)


@case("extract_features_garbage_video_one_message", 9, program="extract_features")
def _(ctx):
    p = ctx.path("garbage.mp4")
    open(p, "wb").write(os.urandom(50000))
    ok, why = expect_error(ctx, "extract_features", tiny_extract(ctx, p, "g.npy"), ["garbage.mp4"])
    rc, out, err, _ = ctx.run("extract_features", tiny_extract(ctx, p, "g.npy"))
    lines = [l for l in err.splitlines() if l.strip()]
    if ok and len(lines) > 3:
        return False, f"{len(lines)} lines on stderr (FFmpeg's own log leaking?): {lines[:4]}"
    return ok, why


@case("encode_clip_png_unwritable", 9, program="encode_clip")
def _(ctx):
    return expect_error(ctx, "encode_clip", ["--size", "32", "--frames", "2", "--clips", "1", "--png",
                                             ctx.path("no_dir", "map.png")], ["--png", "No such file"])


for args, words in [(["--lr", "nan"], ["--lr"]), (["--samples", "0"], ["--samples"]),
                    (["--out", "/dev/null"], ["--out", "not a directory"]), (["--horizons", "0"], ["--horizons"])]:
    @case("plan_" + "_".join(a.strip("-/") for a in args).replace("/", "_"), 7, program="plan")
    def _(ctx, args=args, words=words):
        return expect_error(ctx, "plan", args, words)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin")
    ap.add_argument("--make-vit-tiny", metavar="OUT", help="only write a vit_tiny checkpoint with every weight = --fill")
    ap.add_argument("--fill", type=float, default=1e30)
    ap.add_argument("--suffix", default="")
    ap.add_argument("--subset", choices=["smoke", "all"], default="all")
    ap.add_argument("--only", default="")
    ap.add_argument("--list", action="store_true")
    a = ap.parse_args()
    if a.make_vit_tiny:
        vit_tiny_weights(a.make_vit_tiny, a.fill)
        return 0
    if not a.bin:
        ap.error("--bin DIR is required")
    chosen = [c for c in CASES if (a.subset == "all" or c["smoke"]) and a.only in c["name"]]
    if a.list:
        for c in chosen:
            print(f"{c['klass']:>2}  {c['program']:<17} {c['name']}")
        return 0
    work = tempfile.mkdtemp(prefix="jepa_hostile_")
    ctx = Ctx(os.path.abspath(a.bin), a.suffix, work)
    passed = failed = skipped = 0
    missing = set()
    by_class = {}
    t_all = time.time()
    for c in chosen:
        if not os.path.exists(ctx.exe(c["program"])):
            missing.add(c["program"])
            skipped += 1
            continue
        t0 = time.time()
        try:
            ok, why = c["fn"](ctx)
        except subprocess.TimeoutExpired as e:
            ok, why = False, f"hung: no answer within {e.timeout} s"
        except Exception as e:  # a bug in the case itself is a failure too
            ok, why = False, f"{type(e).__name__}: {e}"
        secs = time.time() - t0
        passed += ok
        failed += not ok
        k = by_class.setdefault(c["klass"], [0, 0])
        k[0 if ok else 1] += 1
        print(f"{'PASS' if ok else 'FAIL'}  [{c['klass']:>2}] {c['name']:<52} {secs:6.1f}s  {why}", flush=True)
    for m in sorted(missing):
        print(f"SKIP  the cases of {m}: {ctx.exe(m)} is not built")
    print(f"\nhostile: {passed} passed, {failed} failed, {skipped} skipped in {time.time() - t_all:.0f} s; by class "
          + ", ".join(f"{k}: {v[0]}/{v[0] + v[1]}" for k, v in sorted(by_class.items())))
    shutil.rmtree(work, ignore_errors=True)
    if failed:
        return 1
    return 77 if passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
