#!/usr/bin/env python3
"""Convert an official JEPA PyTorch checkpoint (.pt / .pth.tar / .bin) into one safetensors file.

Run once per released file, with any PyTorch (Debian's 1.13 at /usr/bin/python3 works):

  /usr/bin/python3 tools/convert_checkpoint.py vitl.pt vitl.safetensors
  /usr/bin/python3 tools/convert_checkpoint.py ssv2-vitl-16x2x3.pt probe.safetensors --check

The C++ library (include/jepa/models/checkpoint_keys.hpp) then maps the keys onto its modules; the
converter does not rename anything. What it does:

  * Loads the file on the CPU with torch.load(weights_only=True) (no code from the file runs); a
    file that needs full unpickling is refused unless --trust-pickle is given (only for files whose
    origin you trust).
  * Flattens the nested checkpoint dict, joining the levels with '.': the V-JEPA 2 file
    {"encoder": {"module.backbone.blocks.0.attn.qkv.weight": t, ...}, "predictor": {...},
    "target_encoder": {...}, "opt": {...}, "epoch": 10} becomes the tensors
    "encoder.module.backbone.blocks.0.attn.qkv.weight", ...; list entries are numbered
    ("classifiers.0.module.pooler.query_tokens" for a probe file). Prefixes are kept as they are.
  * Leaves out the optimizer and loss-scaler state ("opt", "optimizer", "scaler" at the top level)
    unless --keep-optimizer; stores int/float/str/bool values (epoch, lr, ...) as metadata
    "jepa.value.<path>"; skips None and other objects (listed on stderr).
  * Writes tensors bit-exactly in their own dtype (F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL;
    little-endian, C order), largest element size first (stable), the JSON header padded with spaces
    to a multiple of 8 bytes: the layout of the library's SafetensorsWriter and of the official
    writer, so every tensor is aligned for zero-copy views. The header is compact JSON with sorted
    metadata, byte-identical to what SafetensorsWriter writes for the same tensors.
  * Writes <out>.tmp.<pid> and renames it over <out> (atomic); --check re-reads the written file
    with an independent parser and compares every tensor's bytes with the source.

Options:
  --keep-optimizer      keep "opt" / "optimizer" / "scaler"
  --only a,b            keep only these top-level entries (e.g. --only encoder,target_encoder)
  --trust-pickle        allow full unpickling (arbitrary code) when weights_only loading fails
  --check               verify the written file
  --quiet               no summary on stderr

Exit status 0 on success; 1 with a message naming the file on any error.
"""

import argparse
import json
import numbers
import os
import struct
import sys

# dtype name -> (safetensors name, element size); filled lazily so --help works without torch.
SKIP_TOP = ("opt", "optimizer", "scaler")


def log(msg, quiet=False):
    if not quiet:
        print("[convert] " + msg, file=sys.stderr, flush=True)


def torch_dtypes():
    import torch
    return {
        torch.float32: ("F32", 4), torch.float16: ("F16", 2), torch.bfloat16: ("BF16", 2),
        torch.float64: ("F64", 8), torch.int64: ("I64", 8), torch.int32: ("I32", 4),
        torch.int16: ("I16", 2), torch.int8: ("I8", 1), torch.uint8: ("U8", 1), torch.bool: ("BOOL", 1),
    }


def tensor_bytes(t):
    """Little-endian C-order bytes of a CPU tensor (bf16 through an int16 view: numpy has no bf16)."""
    import torch
    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:
        arr = t.view(torch.int16).numpy()
    else:
        arr = t.numpy()
    if arr.dtype.byteorder == ">":
        arr = arr.byteswap().newbyteorder()
    return arr.tobytes(order="C")


def flatten(obj, prefix, out, meta, skipped, keep_optimizer, only, depth=0):
    import torch
    if isinstance(obj, torch.Tensor):
        if prefix in out:
            raise ValueError("two entries flatten to the same name '%s'" % prefix)
        out[prefix] = obj
        return
    if isinstance(obj, dict) or hasattr(obj, "items"):
        for k, v in obj.items():
            k = str(k)
            if depth == 0:
                if only is not None and k not in only:
                    skipped.append(k + " (not in --only)")
                    continue
                if not keep_optimizer and k in SKIP_TOP:
                    skipped.append(k + " (optimizer state; --keep-optimizer keeps it)")
                    continue
            flatten(v, prefix + "." + k if prefix else k, out, meta, skipped, keep_optimizer, only, depth + 1)
        return
    if isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            flatten(v, prefix + "." + str(i) if prefix else str(i), out, meta, skipped, keep_optimizer, only, depth + 1)
        return
    if isinstance(obj, (bool, numbers.Number, str)):
        meta["jepa.value." + prefix] = str(obj)
        return
    if obj is None:
        return
    skipped.append("%s (%s)" % (prefix, type(obj).__name__))


def build(tensors, metadata):
    """Header bytes and the ordered list of (name, bytes): the SafetensorsWriter layout."""
    dtypes = torch_dtypes()
    entries = []
    for name, t in tensors.items():
        if t.dtype not in dtypes:
            raise ValueError("tensor '%s' has dtype %s, which safetensors cannot store" % (name, t.dtype))
        st, size = dtypes[t.dtype]
        entries.append((name, st, size, list(t.shape), tensor_bytes(t)))
    order = sorted(range(len(entries)), key=lambda i: -entries[i][2])  # stable: insertion order within a size
    header = {}
    if metadata:
        header["__metadata__"] = {k: metadata[k] for k in sorted(metadata)}
    pos = 0
    data = []
    for i in order:
        name, st, size, shape, b = entries[i]
        header[name] = {"dtype": st, "shape": shape, "data_offsets": [pos, pos + len(b)]}
        pos += len(b)
        data.append((name, b))
    h = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    return h, data


def write_atomic(path, header, data):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(header)))
            f.write(header)
            for _, b in data:
                f.write(b)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_back(path):
    """An independent minimal safetensors parser (for --check): name -> (dtype, shape, bytes)."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError("%s: shorter than 8 bytes" % path)
    (n,) = struct.unpack("<Q", raw[:8])
    if 8 + n > len(raw):
        raise ValueError("%s: header length %d exceeds the file" % (path, n))
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    base = 8 + n
    out, covered = {}, []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        covered.append((a, b))
        out[name] = (info["dtype"], info["shape"], raw[base + a:base + b])
    covered.sort()
    pos = 0
    for a, b in covered:
        if a != pos:
            raise ValueError("%s: data section has a hole or overlap at byte %d" % (path, a))
        pos = b
    if base + pos != len(raw):
        raise ValueError("%s: %d trailing bytes" % (path, len(raw) - base - pos))
    return out, header.get("__metadata__", {})


class _RestrictedUnpickler:
    """A pickle module for torch.load whose Unpickler resolves only the names a checkpoint of tensors,
    dicts, lists and plain numbers needs. torch 1.13's own weights_only unpickler rejects float
    opcodes (every official checkpoint stores "lr" and "loss" as floats), so this is the fallback
    that still runs no code from the file."""

    import pickle as _pickle
    ALLOWED = {
        ("collections", "OrderedDict"),
        ("torch._utils", "_rebuild_tensor"), ("torch._utils", "_rebuild_tensor_v2"),
        ("torch._utils", "_rebuild_parameter"), ("torch", "Size"), ("torch", "device"),
        ("torch", "FloatStorage"), ("torch", "DoubleStorage"), ("torch", "HalfStorage"),
        ("torch", "BFloat16Storage"), ("torch", "LongStorage"), ("torch", "IntStorage"),
        ("torch", "ShortStorage"), ("torch", "CharStorage"), ("torch", "ByteStorage"), ("torch", "BoolStorage"),
        ("torch.storage", "_load_from_bytes"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"), ("numpy", "dtype"),
        ("_codecs", "encode"),
        ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "slice"), ("builtins", "complex"),
    }
    load = _pickle.load  # unused by torch.load's zip path, present for completeness
    __name__ = "jepa_restricted_pickle"

    class Unpickler(_pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) not in _RestrictedUnpickler.ALLOWED:
                raise _RestrictedUnpickler._pickle.UnpicklingError(
                    "the checkpoint refers to %s.%s, which a file of tensors does not need" % (module, name))
            return super().find_class(module, name)


def _restricted_load(path):
    """torch.load's zip-format path with _RestrictedUnpickler. It goes through torch.serialization's
    internals because torch 1.13's torch.load replaces any pickle_module by the standard pickle when
    weights_only is False (the argument is silently ignored there)."""
    import torch.serialization as ts
    with ts._open_file_like(path, "rb") as f:
        if not ts._is_zipfile(f):
            raise RuntimeError("the file uses PyTorch's legacy (pre-1.6) format, which only full unpickling reads")
        with ts._open_zipfile_reader(f) as z:
            return ts._load(z, "cpu", _RestrictedUnpickler, encoding="utf-8")


def load_checkpoint(path, trust_pickle, quiet):
    import torch
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e1:  # noqa: BLE001 - fall back below
        first = "%s: %s" % (type(e1).__name__, str(e1).splitlines()[0] if str(e1) else "")
    try:
        return _restricted_load(path)
    except Exception as e2:  # noqa: BLE001 - report whatever torch says
        second = "%s: %s" % (type(e2).__name__, str(e2).splitlines()[0] if str(e2) else "")
    if not trust_pickle:
        raise RuntimeError("cannot load '%s' without running code from it (weights_only: %s; restricted unpickler: "
                           "%s); if you trust the file's origin, rerun with --trust-pickle" % (path, first, second))
    log("restricted loading failed (%s); unpickling fully (--trust-pickle)" % second, quiet)
    return torch.load(path, map_location="cpu", weights_only=False)


def convert(src, dst, keep_optimizer=False, only=None, trust_pickle=False, check=False, quiet=False):
    if not os.path.isfile(src):
        raise FileNotFoundError("input checkpoint '%s' does not exist or is not a file" % src)
    ckpt = load_checkpoint(src, trust_pickle, quiet)
    tensors, meta, skipped = {}, {}, []
    flatten(ckpt, "", tensors, meta, skipped, keep_optimizer, set(only) if only else None)
    if not tensors:
        raise ValueError("'%s' holds no tensors to convert (skipped: %s)" % (src, ", ".join(skipped) or "nothing"))
    meta["format"] = "pt"
    meta["jepa.converter"] = "tools/convert_checkpoint.py"
    meta["jepa.source"] = os.path.basename(src)
    header, data = build(tensors, meta)
    write_atomic(dst, header, data)
    total = sum(len(b) for _, b in data)
    tops = sorted({k.split(".")[0] for k in tensors})
    log("%s -> %s: %d tensors, %.1f MB, top-level entries: %s" % (src, dst, len(tensors), total / 1e6, ", ".join(tops)), quiet)
    for s in skipped:
        log("  skipped " + s, quiet)
    if check:
        back, back_meta = read_back(dst)
        if set(back) != set(tensors):
            raise ValueError("check failed: the written file has other tensor names than the source")
        st = torch_dtypes()
        for name, t in tensors.items():
            dt, shape, b = back[name]
            if dt != st[t.dtype][0] or shape != list(t.shape) or b != tensor_bytes(t):
                raise ValueError("check failed: tensor '%s' differs after writing" % name)
        if back_meta != {k: meta[k] for k in sorted(meta)}:
            raise ValueError("check failed: metadata differs after writing")
        log("check: all %d tensors read back bit-identical" % len(tensors), quiet)
    return tensors, meta


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("input", help="official checkpoint (.pt, .pth.tar, .bin)")
    ap.add_argument("output", help="safetensors file to write")
    ap.add_argument("--keep-optimizer", action="store_true")
    ap.add_argument("--only", default="", help="comma-separated top-level entries to keep")
    ap.add_argument("--trust-pickle", action="store_true")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    try:
        convert(a.input, a.output, a.keep_optimizer, [s for s in a.only.split(",") if s] or None, a.trust_pickle,
                a.check, a.quiet)
    except Exception as e:  # noqa: BLE001 - one clear line, no traceback
        print("convert_checkpoint: error: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
