#!/usr/bin/env python3
"""Write the safetensors interop fixture read by tests/unit/test_safetensors.cpp.

The file is written by the official `safetensors` package (its Rust serializer),
so the C++ reader is checked against what the ecosystem actually produces: every
dtype the library converts (F32, F64, BF16, F16, I64, I32) plus I16, I8, U8 and
BOOL, a rank-0 tensor, an empty tensor, dotted state-dict style names and
metadata. The values are exact literals repeated in the C++ test; BF16 is
stored from hand-computed bit patterns (numpy has no bfloat16), passed to the
serializer with dtype "bfloat16".

Needs numpy and safetensors (any Python 3.8+):
    python3 -m pip install safetensors numpy
    python3 tools/make_safetensors_fixture.py --out tests/fixtures/safetensors/small.safetensors

`--check FILE` instead loads FILE with the official reader and prints every
tensor (used to check that files written by jepa::io::SafetensorsWriter load in
Python). The output is deterministic: a rerun gives a byte-identical file.
"""
import argparse
import os
import sys

import numpy as np
import safetensors


def bf16_bits(values):
    """float32 -> bfloat16 bit patterns, rounding to nearest even (as jepa::bf16 does)."""
    u = np.asarray(values, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype(np.uint16)


def tensors():
    t = {}
    t["f32"] = np.array([[-1.5, 0.0, 0.25], [3.0, 1e-3, -65504.0]], dtype=np.float32)
    t["f64"] = np.array([0.1, -2.5, 1e300], dtype=np.float64)
    # 1/3 rounds to 0.333251953125 in binary16; 2**-24 is the smallest subnormal, 2**-14 the
    # smallest normal.
    t["f16"] = np.array([1.0, -2.0, 1.0 / 3.0, 65504.0, 2.0**-24, -np.inf, 2.0**-14, -0.0], dtype=np.float16)
    t["i64"] = np.array([[-(2**40), 7], [0, 2**62]], dtype=np.int64)
    t["i32"] = np.array([-(2**31), 0, 2**31 - 1], dtype=np.int32)
    t["i16"] = np.array([-32768, 32767], dtype=np.int16)
    t["i8"] = np.array([-128, 127], dtype=np.int8)
    t["u8"] = np.array([0, 1, 128, 255], dtype=np.uint8)
    t["mask"] = np.array([True, False, True], dtype=np.bool_)
    t["blocks.0.attn.qkv.weight"] = np.arange(8, dtype=np.float32).reshape(2, 2, 2) * 0.5
    t["scalar"] = np.array(42.0, dtype=np.float32)
    t["empty"] = np.zeros((0, 4), dtype=np.float32)
    return t


METADATA = {"format": "np", "producer": "tools/make_safetensors_fixture.py"}
# 3.140625 is pi rounded to bfloat16; 1e-3 rounds to 0.00099945068359375.
BF16_VALUES = [1.0, -0.5, 3.14159265, 1e-3, np.inf]


def spec(dtype, shape, array):
    """One serializer entry; safetensors >= 0.7 takes TensorSpec, older versions a dict."""
    if hasattr(safetensors, "TensorSpec"):
        return safetensors.TensorSpec(dtype=dtype, shape=list(shape), data_ptr=array.ctypes.data, data_len=array.nbytes)
    return {"dtype": dtype, "shape": list(shape), "data": array.tobytes()}


def write(path):
    arrays = {k: np.array(v, order="C", copy=True) for k, v in tensors().items()}  # keeps rank 0
    arrays["bf16"] = bf16_bits(BF16_VALUES)
    entries = {}
    for k, a in arrays.items():
        dtype = "bfloat16" if k == "bf16" else a.dtype.name
        entries[k] = spec(dtype, a.shape, a)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    safetensors.serialize_file(entries, path, metadata=METADATA)  # arrays stay alive until here
    check(path, quiet=True)
    print(f"wrote {path} ({os.path.getsize(path)} bytes, safetensors {safetensors.__version__})")


def check(path, quiet=False):
    """Loads `path` with the official reader; prints dtype, shape and values of every tensor."""
    with safetensors.safe_open(path, framework="numpy") as f:
        meta = f.metadata()
        keys = list(f.keys())
    with open(path, "rb") as fh:
        raw = safetensors.deserialize(fh.read())  # [(name, {dtype, shape, data})], any dtype
    if not quiet:
        print(f"{path}: {len(keys)} tensors, metadata {meta}")
        for name, info in raw:
            dt, shape, data = info["dtype"], info["shape"], info["data"]
            np_dt = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "I64": np.int64, "I32": np.int32,
                     "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}
            long_names = {"float32": "F32", "float64": "F64", "float16": "F16", "bfloat16": "BF16", "int64": "I64",
                          "int32": "I32", "int16": "I16", "int8": "I8", "uint8": "U8", "bool": "BOOL"}
            dt = long_names.get(str(dt), str(dt))  # older versions report numpy-style names
            if dt in np_dt:
                vals = np.frombuffer(bytes(data), dtype=np_dt[dt]).reshape(shape)
            elif dt == "BF16":
                bits = np.frombuffer(bytes(data), dtype=np.uint16).astype(np.uint32) << 16
                vals = bits.view(np.float32).reshape(shape)
            else:
                vals = f"<{len(data)} bytes>"
            flat = np.asarray(vals).ravel() if not isinstance(vals, str) else vals
            print(f"  {name}: {dt} {list(shape)} {flat[:6] if not isinstance(flat, str) else flat}")
    return keys, meta


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="tests/fixtures/safetensors/small.safetensors")
    ap.add_argument("--check", metavar="FILE", help="load FILE with the official reader and print it")
    args = ap.parse_args()
    if args.check:
        check(args.check)
    else:
        write(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
