#!/usr/bin/env python3
"""Seed corpus for the safetensors fuzz target (tests/fuzz/fuzz_safetensors.cpp).

Writes small files (< 1 KB each) into tests/fuzz/corpus/safetensors/: valid files of every dtype, with
official checkpoint sections, Hugging Face names, zero-size and scalar tensors, an unaligned tensor,
padding; and one file per kind of corruption the parser must reject (truncation, a lying length field,
overlap, a hole, trailing bytes, duplicate names, bad JSON, bad UTF-8, deep nesting, negative or huge
extents, unknown dtypes). Plain Python (no numpy, no torch); deterministic.

  python3 tools/make_fuzz_corpus.py [--out tests/fuzz/corpus/safetensors]
"""

import argparse
import json
import os
import struct

SIZES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
         "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def valid(tensors, metadata=None, pad=True):
    """tensors: list of (name, dtype, shape); data = a byte pattern. Largest element size first."""
    order = sorted(tensors, key=lambda t: -SIZES[t[1]])
    header, data, pos = {}, b"", 0
    if metadata:
        header["__metadata__"] = metadata
    for i, (name, dt, shape) in enumerate(order):
        n = numel(shape) * SIZES[dt]
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [pos, pos + n]}
        data += bytes(((i * 37 + k * 11) & 0x3F) for k in range(n))  # small values: finite floats
        pos += n
    h = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data


def raw(header, data=b""):
    h = header.encode() if isinstance(header, str) else header
    return struct.pack("<Q", len(h)) + h + data


def corpus():
    c = {}
    c["valid_f32_metadata"] = valid([("w", "F32", [2, 3])], {"format": "pt", "note": "seed"})
    c["valid_every_dtype"] = valid([(d.lower(), d, [3]) for d in SIZES])
    c["valid_zero_and_scalar"] = valid([("s", "F32", []), ("z", "F32", [0, 5]), ("y", "I64", [3, 0]), ("b", "BF16", [2])])
    c["valid_official_sections"] = valid([
        ("encoder.module.backbone.patch_embed.proj.weight", "F32", [4, 3, 2, 2, 2]),
        ("encoder.module.backbone.blocks.0.norm1.weight", "F32", [4]),
        ("encoder.module.backbone.blocks.0.attn.qkv.weight", "BF16", [12, 4]),
        ("encoder.module.backbone.norm.weight", "F16", [4]),
        ("encoder.module.backbone.pos_embed", "F32", [1, 2, 4]),
        ("predictor.module.backbone.mask_tokens.1", "F32", [1, 1, 4]),
        ("predictor.module.backbone.predictor_embed.weight", "F32", [2, 4]),
        ("classifiers.0.module.pooler.query_tokens", "F32", [1, 1, 4]),
        ("classifiers.0.module.linear.weight", "F32", [3, 4]),
        ("opt.state.0.exp_avg", "F32", [2])], {"jepa.value.epoch": "3"})
    c["valid_hf_sections"] = valid([
        ("encoder.embeddings.patch_embeddings.proj.weight", "F32", [4, 3, 2, 2, 2]),
        ("encoder.layer.0.attention.query.weight", "F32", [4, 4]),
        ("encoder.layer.0.attention.key.weight", "F32", [4, 4]),
        ("encoder.layer.0.attention.value.weight", "F32", [4, 4]),
        ("encoder.layer.0.norm1.weight", "F32", [4]),
        ("encoder.layernorm.weight", "F32", [4]),
        ("predictor.embeddings.predictor_embeddings.weight", "F32", [2, 4]),
        ("predictor.embeddings.mask_tokens", "F32", [3, 1, 1, 4]),
        ("predictor.proj.weight", "F32", [4, 2])])
    c["valid_unaligned"] = raw('{"b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
                               '"f":{"dtype":"F32","shape":[1],"data_offsets":[1,5]}}', b"\x07\x00\x00\x20\x40")
    c["valid_empty_object"] = raw("{}")
    c["valid_leading_space_extra_field"] = raw(' {"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2],"x":1}}   ', b"ab")
    ok = valid([("a", "F32", [2, 2]), ("b", "I64", [2])])
    c["bad_truncated_data"] = ok[:-3]
    c["bad_truncated_header"] = ok[:20]
    c["bad_length_field"] = struct.pack("<Q", len(ok)) + ok[8:]
    c["bad_short"] = b"\x05\x00\x00"
    c["bad_overlap"] = raw('{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},'
                           '"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}', bytes(16))
    c["bad_hole"] = raw('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
                        '"b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}}', bytes(20))
    c["bad_trailing"] = raw('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', bytes(11))
    c["bad_duplicate"] = raw('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
                             '"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}', bytes(16))
    c["bad_json"] = raw('{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}', bytes(24))
    c["bad_utf8"] = raw(b'{"a\xff":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"x")
    c["bad_nesting"] = raw('{"a":' + "[" * 40 + "]" * 40 + "}")
    c["bad_negative"] = raw('{"a":{"dtype":"F32","shape":[2,-3],"data_offsets":[0,24]}}', bytes(24))
    c["bad_huge_shape"] = raw('{"a":{"dtype":"F32","shape":[4294967296,4294967296,4],"data_offsets":[0,8]}}', bytes(8))
    c["zero_extent_huge"] = raw('{"a":{"dtype":"F32","shape":[4611686018427387903,0],"data_offsets":[0,0]},'
                                '"encoder.embeddings.mask_tokens":{"dtype":"F32","shape":[3074457345618258602,0],'
                                '"data_offsets":[0,0]}}')
    c["bad_dtype"] = raw('{"a":{"dtype":"Q7","shape":[1],"data_offsets":[0,4]}}', bytes(4))
    c["bad_metadata"] = raw('{"__metadata__":{"k":1}}')
    c["bad_not_object"] = raw("[1,2,3]")
    return c


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(here), "tests", "fuzz", "corpus", "safetensors"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    for name, data in sorted(corpus().items()):
        with open(os.path.join(a.out, name + ".safetensors"), "wb") as f:
            f.write(data)
    print("wrote %d seeds to %s" % (len(corpus()), a.out))


if __name__ == "__main__":
    main()
