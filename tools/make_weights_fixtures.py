#!/usr/bin/env python3
"""Parity fixtures for loading released weights: tiny random models of every family, saved as
official-layout PyTorch checkpoints, converted by the real converter (tools/convert_checkpoint.py),
with float64 reference outputs of encode / predict / probe.

Each case is a directory under --out (default tests/fixtures):
  weights_vjepa2/       V-JEPA 2 file {"encoder", "predictor", "target_encoder", "opt", "epoch"} with
                        "module.backbone." prefixes and a leftover pos_embed; tiled RoPE, final norm,
                        10 mask tokens; F32.
  weights_hf/           the same encoder and predictor in Hugging Face VJEPA2Model naming (query/key/
                        value split, mask_tokens stacked [10,1,1,Dp]), written as safetensors directly
                        (HF ships safetensors); its reference is weights_vjepa2's.
  weights_vjepa21/      V-JEPA 2.1 ViT-g/G layout {"target_encoder", "predictor"}: image + video
                        tokenizers, modality embeddings, 4 norms_block taps, interleaved RoPE with
                        interpolate_rope, 4-level fusion predictor with a context projection; BF16.
  weights_vjepa21_dist/ the distilled ViT-B/L layout {"ema_encoder", "target_encoder", "predictor"}:
                        1-level predictor whose outputs are teacher-width (40 here, 1664 released); BF16.
  weights_ijepa/        I-JEPA {"encoder", "target_encoder", "predictor"}: Conv2d patches, 2-D sin-cos
                        pos_embed buffers, one mask_token, no RoPE; F16.
  weights_probe/        an attentive-probe file {"classifiers": [{module.pooler..., module.linear...}]}
                        with V-JEPA 1's unused xattn.proj; F32.
  weights_ac/           a V-JEPA 2-AC file {"encoder", "predictor"} with "module." prefixes (the AC
                        predictor keys of recipe_facts 8.3; tiny dims); F32.
Per case: model.safetensors (the converter's output), reference.safetensors (inputs, indices and
float64 outputs rounded to float32), config.json (the tiny dims, what the C++ test instantiates).

The references are independent float64 re-implementations from recipe_facts.md (sections 1, 2, 7,
8): the encoder and predictor reuse tools/make_encoder_fixtures.py and make_objective_fixtures.py and
are cross-checked against them; the V-JEPA 2 encoder is also loaded, strict, into the official-layout
module of benchmarks/torch_encoder.py, which checks both the key names and the math. Parameters are
drawn in float32 (BF16 / F16 for the cases stored so), and the reference runs on exactly the stored
values, so a float32 C++ run sees the same weights.

  /usr/bin/python3 tools/make_weights_fixtures.py --out tests/fixtures      # (re)write
  /usr/bin/python3 tools/make_weights_fixtures.py --check tests/fixtures    # regenerate in a temp
                                                                            # dir; compare bytes
"""

import argparse
import filecmp
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "benchmarks"))
import convert_checkpoint as conv  # noqa: E402
import make_encoder_fixtures as encref  # noqa: E402
import make_objective_fixtures as objref  # noqa: E402
import torch_encoder as te  # noqa: E402

DT = torch.float64
EPS = 1e-6


# --------------------------------------------------------------------------------------------------
# Parameters (official names, recipe_facts 8.3)
# --------------------------------------------------------------------------------------------------

def linear(name, out, inp):
    return [(name + ".weight", (out, inp)), (name + ".bias", (out,))]


def encoder_shapes(c):
    D, p, t = c["embed_dim"], c["patch"], c["tubelet"]
    s = [("patch_embed.proj.weight", (D, 3, p, p) if c["conv2d"] else (D, 3, t, p, p)), ("patch_embed.proj.bias", (D,))]
    s += objref.block_shapes("blocks.", c["depth"], D, c["mlp_hidden"])
    if c["final_norm"]:
        s += [("norm.weight", (D,)), ("norm.bias", (D,))]
    for j in range(c["taps"]):
        s += [("norms_block.%d.weight" % j, (D,)), ("norms_block.%d.bias" % j, (D,))]
    if c["multimodal"]:
        s += [("patch_embed_img.proj.weight", (D, 3, 1, p, p)), ("patch_embed_img.proj.bias", (D,)),
              ("img_mod_embed", (1, 1, D)), ("video_mod_embed", (1, 1, D))]
    return s


def predictor_shapes(c):
    D, Dp, L = c["embed_dim"], c["pred_dim"], c["levels"]
    out = L * c["out_dim"]
    s = linear("predictor_embed", Dp, D) if L == 1 else linear("predictor_embed.0", D, L * D) + linear("predictor_embed.2", Dp, D)
    if c["ijepa"]:
        s += [("mask_token", (1, 1, Dp))]
    else:
        s += [("mask_tokens.%d" % i, (1, 1, Dp)) for i in range(c["mask_tokens"])]
    if c["mod_embed"]:
        s += [("video_mod_embed", (1, 1, Dp)), ("img_mod_embed", (1, 1, Dp))]
    s += objref.block_shapes("predictor_blocks.", c["pred_depth"], Dp, c["pred_mlp"])
    s += [("predictor_norm.weight", (Dp,)), ("predictor_norm.bias", (Dp,))]
    s += linear("predictor_proj", out, Dp)
    if c["context_proj"]:
        s += linear("predictor_proj_context", out, Dp)
    return s


def probe_shapes(c):
    D, H = c["embed_dim"], c["probe_mlp"]
    s = [("pooler.query_tokens", (1, 1, D))]
    s += objref.block_shapes("pooler.blocks.", c["probe_depth"] - 1, D, H)
    x = "pooler.cross_attention_block."
    s += [(x + "norm1.weight", (D,)), (x + "norm1.bias", (D,))] + linear(x + "xattn.q", D, D) + linear(x + "xattn.kv", 2 * D, D)
    s += linear(x + "xattn.proj", D, D)  # V-JEPA 1 defines it and never applies it
    s += [(x + "norm2.weight", (D,)), (x + "norm2.bias", (D,))] + linear(x + "mlp.fc1", H, D) + linear(x + "mlp.fc2", D, H)
    s += linear("linear", c["classes"], D)
    return s


def ac_predictor_shapes(c):
    D, Dp = c["embed_dim"], c["pred_dim"]
    s = linear("predictor_embed", Dp, D) + linear("action_encoder", Dp, 7) + linear("state_encoder", Dp, 7)
    s += linear("extrinsics_encoder", Dp, 6)
    s += objref.block_shapes("predictor_blocks.", c["pred_depth"], Dp, c["pred_mlp"])
    s += [("predictor_norm.weight", (Dp,)), ("predictor_norm.bias", (Dp,))] + linear("predictor_proj", D, Dp)
    return s


def kind(key):
    last = key.split(".")[-1]
    owner = key.split(".")[-2] if "." in key else ""
    if last in ("query_tokens", "mask_token") or key.startswith("mask_tokens.") or key.endswith("mod_embed"):
        return "embed"
    if "norm" in owner or key.startswith("norm"):
        return "ln_weight" if last == "weight" else "ln_bias"
    if last == "weight":
        return "qkv" if owner in ("qkv", "kv") else "weight"
    return "bias"


STD = {"weight": 0.08, "qkv": 0.2, "bias": 0.03, "embed": 0.3}


def random_params(shapes, gen, dtype):
    """Seeded, non-trivial values, rounded to the storage dtype."""
    P = {}
    for key, shape in shapes:
        k = kind(key)
        r = torch.randn(shape, generator=gen, dtype=DT)
        v = 1.0 + 0.1 * r if k == "ln_weight" else (0.1 * r if k == "ln_bias" else STD[k] * r)
        P[key] = v.to(dtype).contiguous()
    return P


def sincos_1d(n, pos):
    k = torch.arange(n // 2, dtype=DT)
    om = 1.0 / 10000 ** (k / (n / 2.0))
    a = pos[:, None] * om[None]
    return torch.cat([torch.sin(a), torch.cos(a)], dim=1)


def ijepa_sincos_2d(D, Hp, Wp):
    """I-JEPA: first half from the column (w) index, second half from the row (h) index (1.5.3)."""
    h = torch.arange(Hp, dtype=DT).repeat_interleave(Wp)
    w = torch.arange(Wp, dtype=DT).repeat(Hp)
    return torch.cat([sincos_1d(D // 2, w), sincos_1d(D // 2, h)], dim=1)  # (Hp*Wp, D)


# --------------------------------------------------------------------------------------------------
# Reference forward passes (float64)
# --------------------------------------------------------------------------------------------------

def blocks_forward(z, P, prefix, depth, heads, pos, rope, eps, on_block=None):
    """Pre-norm blocks; pos = (d, h, w) RoPE positions or None (no RoPE)."""
    B, L, D = z.shape
    hd = D // heads
    for i in range(depth):
        b = "%s%d." % (prefix, i)
        h = F.layer_norm(z, (D,), P[b + "norm1.weight"], P[b + "norm1.bias"], eps)
        qkv = F.linear(h, P[b + "attn.qkv.weight"], P[b + "attn.qkv.bias"]).reshape(B, L, 3, heads, hd).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        if pos is not None:
            q = encref.apply_rope(q, pos[0], pos[1], pos[2], rope)
            k = encref.apply_rope(k, pos[0], pos[1], pos[2], rope)
        a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd), dim=-1)
        z = z + F.linear((a @ v).transpose(1, 2).reshape(B, L, D), P[b + "attn.proj.weight"], P[b + "attn.proj.bias"])
        h = F.layer_norm(z, (D,), P[b + "norm2.weight"], P[b + "norm2.bias"], eps)
        z = z + F.linear(F.gelu(F.linear(h, P[b + "mlp.fc1.weight"], P[b + "mlp.fc1.bias"])), P[b + "mlp.fc2.weight"],
                         P[b + "mlp.fc2.bias"])
        if on_block:
            on_block(i, z)
    return z


def encode(c, P, x, keep=None, image=False, layers=()):
    """x (B,3,F,H,W). Returns dict: out (B,K,D), taps [..], layers [..] (norm(x_{l+1}) with a final
    norm, raw otherwise), grid (T', H', W')."""
    D, p, t = c["embed_dim"], c["patch"], c["tubelet"]
    if c["conv2d"]:
        z = F.conv2d(x[:, :, 0], P["patch_embed.proj.weight"], P["patch_embed.proj.bias"], stride=p).unsqueeze(2)
    elif image:
        z = F.conv3d(x, P["patch_embed_img.proj.weight"], P["patch_embed_img.proj.bias"], stride=(1, p, p))
    else:
        z = F.conv3d(x, P["patch_embed.proj.weight"], P["patch_embed.proj.bias"], stride=(t, p, p))
    B, _, Tp, Hp, Wp = z.shape
    z = z.flatten(2).transpose(1, 2)
    if c["multimodal"]:
        z = z + P["img_mod_embed" if image else "video_mod_embed"]
    if c["sincos"]:
        z = z + ijepa_sincos_2d(D, Hp, Wp)[None]
    N = Tp * Hp * Wp
    idx = torch.arange(N).unsqueeze(0).expand(B, N) if keep is None else keep
    if keep is not None:
        z = torch.gather(z, 1, keep.unsqueeze(-1).expand(-1, -1, D))
    pos = None if c["sincos"] else encref.token_positions(idx, Hp, Wp, c["rope_interp_grid"])
    taps, outs = [], {}
    tap_ids = c["tap_ids"]

    def on_block(i, zz):
        if i in tap_ids:
            j = tap_ids.index(i)
            taps.append(F.layer_norm(zz, (D,), P["norms_block.%d.weight" % j], P["norms_block.%d.bias" % j], EPS))
        if i in layers:
            outs[i] = F.layer_norm(zz, (D,), P["norm.weight"], P["norm.bias"], EPS) if c["final_norm"] else zz

    z = blocks_forward(z, P, "blocks.", c["depth"], c["heads"], pos, c["rope"], EPS, on_block)
    out = F.layer_norm(z, (D,), P["norm.weight"], P["norm.bias"], EPS) if c["final_norm"] else taps[-1]
    return {"out": out, "taps": taps, "layers": [outs[l] for l in layers], "grid": (Tp, Hp, Wp)}


def objref_cfg(c, grid):
    """The cfg dict objref.predictor_forward reads (grid from frames/height/width)."""
    Tp, Hp, Wp = grid
    return dict(pred_dim=c["pred_dim"], levels=c["levels"], frames=Tp * c["tubelet"], tubelet=c["tubelet"],
                height=Hp * c["patch"], width=Wp * c["patch"], patch=c["patch"], mask_index=0,
                modality_embedding=c["mod_embed"], pred_rope_interp_grid=c["rope_interp_grid"],
                pred_depth=c["pred_depth"], pred_heads=c["pred_heads"], pred_rope=c["rope"], context_loss=c["context_proj"])


def ijepa_predict(c, Q, z, ctx, tgt, grid):
    """I-JEPA predictor (2.1): embed + table rows at ctx; mask_token + rows at tgt; [ctx ; tgt]
    unsorted, full attention, norm, last Kt positions, proj."""
    Dp = c["pred_dim"]
    _, Hp, Wp = grid
    table = ijepa_sincos_2d(Dp, Hp, Wp)
    xc = F.linear(z, Q["predictor_embed.weight"], Q["predictor_embed.bias"]) + table[ctx]
    xt = Q["mask_token"].expand(tgt.shape[0], tgt.shape[1], Dp) + table[tgt]
    y = blocks_forward(torch.cat([xc, xt], 1), Q, "predictor_blocks.", c["pred_depth"], c["pred_heads"], None, None, EPS)
    y = F.layer_norm(y, (Dp,), Q["predictor_norm.weight"], Q["predictor_norm.bias"], EPS)
    return F.linear(y[:, ctx.shape[1]:], Q["predictor_proj.weight"], Q["predictor_proj.bias"])


def probe_forward(c, R, x):
    """V-JEPA 2 attentive classifier (7.1): self-attention blocks on the tokens (LN eps 1e-5), then
    cross-attention of the learned query (no output projection), MLP, linear head."""
    D, H = c["embed_dim"], c["probe_heads"]
    hd = D // H
    x = blocks_forward(x, R, "pooler.blocks.", c["probe_depth"] - 1, H, None, None, 1e-5)
    cx = "pooler.cross_attention_block."
    B, N, _ = x.shape
    q = R["pooler.query_tokens"].expand(B, -1, -1)
    y = F.layer_norm(x, (D,), R[cx + "norm1.weight"], R[cx + "norm1.bias"], 1e-5)
    qq = F.linear(q, R[cx + "xattn.q.weight"], R[cx + "xattn.q.bias"]).reshape(B, -1, H, hd).transpose(1, 2)
    kv = F.linear(y, R[cx + "xattn.kv.weight"], R[cx + "xattn.kv.bias"]).reshape(B, N, 2, H, hd).permute(2, 0, 3, 1, 4)
    a = torch.softmax(qq @ kv[0].transpose(-1, -2) / math.sqrt(hd), dim=-1)
    q = q + (a @ kv[1]).transpose(1, 2).reshape(B, -1, D)
    h = F.layer_norm(q, (D,), R[cx + "norm2.weight"], R[cx + "norm2.bias"], 1e-5)
    q = q + F.linear(F.gelu(F.linear(h, R[cx + "mlp.fc1.weight"], R[cx + "mlp.fc1.bias"])), R[cx + "mlp.fc2.weight"],
                     R[cx + "mlp.fc2.bias"])
    return F.linear(q.reshape(B, -1), R["linear.weight"], R["linear.bias"])


# --------------------------------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------------------------------

BASE = dict(conv2d=False, tubelet=2, patch=4, final_norm=True, taps=0, tap_ids=[], multimodal=False, sincos=False,
            rope="tiled", rope_interp_grid=0, ijepa=False, mod_embed=False, context_proj=False, levels=1,
            pred_depth=2, pred_heads=2, pred_mlp=32, mask_tokens=10)
CASES = {
    "weights_vjepa2": dict(BASE, embed_dim=32, depth=2, heads=2, mlp_hidden=64, pred_dim=16, out_dim=32, seed=2026001,
                           dtype="float32"),
    "weights_vjepa21": dict(BASE, embed_dim=24, depth=4, heads=2, mlp_hidden=48, final_norm=False, taps=4,
                            tap_ids=[0, 1, 2, 3], multimodal=True, rope="interleaved", rope_interp_grid=16, pred_dim=16,
                            out_dim=24, levels=4, mod_embed=True, context_proj=True, mask_tokens=8, seed=2026002,
                            dtype="bfloat16"),
    "weights_vjepa21_dist": dict(BASE, embed_dim=24, depth=4, heads=2, mlp_hidden=48, final_norm=False, taps=4,
                                 tap_ids=[0, 1, 2, 3], multimodal=True, rope="interleaved", rope_interp_grid=16,
                                 pred_dim=16, out_dim=40, levels=1, mod_embed=True, context_proj=True, mask_tokens=8,
                                 seed=2026003, dtype="bfloat16"),
    "weights_ijepa": dict(BASE, embed_dim=32, depth=2, heads=2, mlp_hidden=64, conv2d=True, tubelet=1, sincos=True,
                          rope=None, ijepa=True, pred_dim=16, pred_heads=2, out_dim=32, mask_tokens=1, seed=2026004,
                          dtype="float16"),
    "weights_probe": dict(BASE, embed_dim=32, heads=2, probe_depth=2, probe_heads=2, probe_mlp=64, classes=5,
                          seed=2026005, dtype="float32"),
    "weights_ac": dict(BASE, embed_dim=32, depth=2, heads=2, mlp_hidden=64, pred_dim=16, pred_depth=2, pred_mlp=32,
                       seed=2026006, dtype="float32"),
}
TORCH_DTYPE = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def to64(P):
    return {k: v.to(DT) for k, v in P.items()}


def wrap(P, prefix):
    return {prefix + k: v for k, v in P.items()}


def masks(gen, B, N, Kc, Kt):
    """Disjoint, sorted, per-sample different context / target index rows."""
    ctx, tgt = [], []
    for _ in range(B):
        perm = torch.randperm(N, generator=gen)
        ctx.append(torch.sort(perm[:Kc]).values)
        tgt.append(torch.sort(perm[Kc:Kc + Kt]).values)
    ctx, tgt = torch.stack(ctx).to(torch.int64), torch.stack(tgt).to(torch.int64)
    assert not torch.equal(ctx[0], ctx[1])
    return ctx, tgt


def rel(a, b):
    return ((a - b).norm() / b.norm()).item()


def write_reference(path, ref):
    tensors = {}
    for k, v in ref.items():
        tensors[k] = v.to(torch.float32).contiguous() if v.is_floating_point() else v.contiguous()
    header, data = conv.build(tensors, {"producer": "tools/make_weights_fixtures.py"})
    conv.write_atomic(path, header, data)


def convert(pt_dict, tmp, outdir, name):
    """torch.save the official-layout dict, then convert it with --check: through the converter's
    command line for weights_vjepa2, through the same code in-process for the others (one PyTorch
    start-up per case would double the time of the --check CTest)."""
    pt = os.path.join(tmp, name + ".pt")
    torch.save(pt_dict, pt)
    out = os.path.join(outdir, "model.safetensors")
    if name == "weights_vjepa2":
        subprocess.run([sys.executable, os.path.join(HERE, "convert_checkpoint.py"), pt, out, "--check", "--quiet"],
                       check=True)
    else:
        conv.convert(pt, out, check=True, quiet=True)


def make_case(name, c, out_root, tmp):
    outdir = os.path.join(out_root, name)
    os.makedirs(outdir, exist_ok=True)
    gen = torch.Generator().manual_seed(c["seed"])
    dt = TORCH_DTYPE[c["dtype"]]
    ref = {}
    cfg = {k: v for k, v in c.items() if k not in ("seed",)}

    if name == "weights_probe":
        R = random_params(probe_shapes(c), gen, dt)
        feats = torch.randn(2, 12, c["embed_dim"], generator=gen, dtype=DT).to(torch.float32)
        ref["features"] = feats
        ref["logits"] = probe_forward(c, to64(R), feats.to(DT))
        assert ref["logits"].std() > 0.05
        convert({"classifiers": [wrap(R, "module.")], "opt": {"lr": 1e-3}, "epoch": 20}, tmp, outdir, name)
        return finish(outdir, cfg, ref)

    E = random_params(encoder_shapes(c), gen, dt)
    E2 = random_params(encoder_shapes(c), gen, dt)  # the other encoder section (EMA / online)
    B = 2
    if c["conv2d"]:
        x = torch.randn(B, 3, 1, 12, 12, generator=gen, dtype=DT).to(torch.float32)
        ref["image"] = x[:, :, 0]
    else:
        x = torch.randn(B, 3, 4, 8, 12, generator=gen, dtype=DT).to(torch.float32)
        ref["clip"] = x
    e64, e2_64 = to64(E), to64(E2)
    r = encode(c, e64, x.to(DT), layers=(0,) if c["final_norm"] else ())
    Tp, Hp, Wp = r["grid"]
    N = Tp * Hp * Wp
    ref["tokens"] = r["out"]
    ref["pooled"] = r["out"].mean(1)
    for j, t in enumerate(r["taps"]):
        ref["taps.%d" % j] = t
    for j, t in enumerate(r["layers"]):
        ref["layers.%d" % j] = t
    ref["tokens_other"] = encode(c, e2_64, x.to(DT))["out"]
    assert rel(ref["tokens_other"], ref["tokens"]) > 0.1

    # Cross-checks with the other references.
    if not c["conv2d"]:
        ecfg = dict(embed_dim=c["embed_dim"], num_heads=c["heads"], eps=EPS, tubelet=c["tubelet"], patch=c["patch"],
                    depth=c["depth"], rope=c["rope"], rope_interp_grid=c["rope_interp_grid"], taps=c["tap_ids"],
                    final_norm=c["final_norm"], multimodal=c["multimodal"])
        if c["multimodal"]:
            alt = objref.encoder_forward(ecfg, e64, x.to(DT))  # the 4 taps, concatenated
            assert rel(torch.cat(r["taps"], -1), alt) < 1e-12
        else:
            assert rel(r["out"], encref.encoder_forward(ecfg, e64, x.to(DT))[-1]) < 1e-12
    if name in ("weights_vjepa2", "weights_ac"):
        # The official-layout module (benchmarks/torch_encoder.py) loads the stripped keys strictly.
        m = te.VisionTransformer(c["embed_dim"], c["depth"], c["heads"], c["mlp_hidden"] / c["embed_dim"],
                                 patch_size=c["patch"], tubelet_size=c["tubelet"]).double().eval()
        m.load_state_dict(e64, strict=True)
        with torch.no_grad():
            assert rel(m(x.to(DT)), r["out"]) < 1e-12

    # A second geometry: other frame count and resolution (RoPE takes any).
    if c["conv2d"]:
        pass  # I-JEPA's sin-cos table is fixed to the pretraining grid; parity uses that grid only
    else:
        x2 = torch.randn(1, 3, 2, 12, 8, generator=gen, dtype=DT).to(torch.float32)
        ref["clip2"] = x2
        ref["tokens2"] = encode(c, e64, x2.to(DT))["out"]
        img = torch.randn(B, 3, 8, 12, generator=gen, dtype=DT).to(torch.float32)
        ref["image"] = img
        if c["multimodal"]:  # 2.1: a 1-frame clip through patch_embed_img + img_mod_embed
            ri = encode(c, e64, img.to(DT).unsqueeze(2), image=True)
            for j, t in enumerate(ri["taps"]):
                ref["image_taps.%d" % j] = t
            ref["image_tokens"] = ri["out"]
        else:  # V-JEPA 2: the image repeated to one tubelet
            ref["image_tokens"] = encode(c, e64, img.to(DT).unsqueeze(2).repeat(1, 1, c["tubelet"], 1, 1))["out"]

    if name == "weights_ac":
        del ref["tokens_other"]  # the AC file has one encoder
        Q = random_params(ac_predictor_shapes(c), gen, dt)
        convert({"encoder": wrap(E, "module."), "predictor": wrap(Q, "module."), "opt": {"step": 3}, "epoch": 315},
                tmp, outdir, name)
        return finish(outdir, cfg, ref)

    # Predictor: context encoded alone (masked encoding), then masked prediction.
    Q = random_params(predictor_shapes(c), gen, dt)
    q64 = to64(Q)
    Kc, Kt = (4, 3) if c["conv2d"] else (5, 4)
    ctx, tgt = masks(gen, B, N, Kc, Kt)
    ref["ctx_idx"], ref["tgt_idx"] = ctx, tgt
    rc = encode(c, e64, x.to(DT), keep=ctx)
    z = torch.cat(rc["taps"], -1) if c["levels"] > 1 else rc["out"]
    ref["context_features"] = z
    if c["ijepa"]:
        ref["prediction"] = ijepa_predict(c, q64, z, ctx, tgt, r["grid"])
    else:
        pred, pred_ctx = objref.predictor_forward(objref_cfg(c, r["grid"]), q64, z, ctx, tgt)
        ref["prediction"] = pred
        if pred_ctx is not None:
            ref["prediction_context"] = pred_ctx
        # Sorting, the mask token and the modality embedding matter (guards against degenerate data).
        alt, _ = objref.predictor_forward(objref_cfg(c, r["grid"]), q64, z, ctx, tgt, sort=False)
        assert rel(alt, pred) < 1e-12  # full attention: sorting changes nothing
    assert ref["prediction"].std() > 0.01

    if name == "weights_vjepa2":
        E_pos = dict(E, pos_embed=torch.zeros(1, N, c["embed_dim"], dtype=dt))  # leftover buffer (8.2)
        sections = {"encoder": wrap(E_pos, "module.backbone."), "predictor": wrap(Q, "module.backbone."),
                    "target_encoder": wrap(E2, "module.backbone."),
                    "opt": {"state": {0: {"exp_avg": torch.zeros(3)}}}, "scaler": {"scale": 65536.0},
                    "epoch": 10, "loss": 0.5, "batch_size": 24, "world_size": 1, "lr": 5.25e-4}
        convert(sections, tmp, outdir, name)
        make_hf(out_root, c, E, Q)
    elif name == "weights_vjepa21":
        convert({"target_encoder": wrap(E, "module.backbone."), "encoder": wrap(E2, "module.backbone."),
                 "predictor": wrap(Q, "module.backbone."), "epoch": 5}, tmp, outdir, name)
    elif name == "weights_vjepa21_dist":
        convert({"ema_encoder": wrap(E, "module.backbone."), "target_encoder": wrap(E2, "module.backbone."),
                 "predictor": wrap(Q, "module.backbone.")}, tmp, outdir, name)
    elif name == "weights_ijepa":
        table = ijepa_sincos_2d(c["embed_dim"], Hp, Wp)[None].to(dt)
        ptable = ijepa_sincos_2d(c["pred_dim"], Hp, Wp)[None].to(dt)
        convert({"target_encoder": wrap(dict(E, pos_embed=table), "module."),
                 "encoder": wrap(dict(E2, pos_embed=table), "module."),
                 "predictor": wrap(dict(Q, predictor_pos_embed=ptable), "module."), "epoch": 300}, tmp, outdir, name)
    return finish(outdir, cfg, ref)


def make_hf(out_root, c, E, Q):
    """The V-JEPA 2 encoder and predictor in transformers' VJEPA2Model naming, as HF ships them."""
    hf = {}
    for k, v in E.items():
        k2 = k
        if k.startswith("patch_embed."):
            k2 = "embeddings.patch_embeddings." + k[len("patch_embed."):]
        elif k.startswith("norm."):
            k2 = "layernorm." + k[len("norm."):]
        elif k.startswith("blocks."):
            k2 = "layer." + k[len("blocks."):]
        if ".attn.qkv." in k2:
            D = v.shape[0] // 3
            for part, sl in zip(("query", "key", "value"), (slice(0, D), slice(D, 2 * D), slice(2 * D, 3 * D))):
                hf["encoder." + k2.replace("attn.qkv", "attention." + part)] = v[sl].clone()
            continue
        hf["encoder." + k2.replace(".attn.", ".attention.")] = v
    masks_ = []
    for k, v in Q.items():
        if k.startswith("mask_tokens."):
            masks_.append((int(k.split(".")[1]), v))
            continue
        k2 = k.replace("predictor_embed.", "embeddings.predictor_embeddings.").replace("predictor_norm.", "layernorm.")
        k2 = k2.replace("predictor_proj.", "proj.").replace("predictor_blocks.", "layer.")
        if ".attn.qkv." in k2:
            D = v.shape[0] // 3
            for part, sl in zip(("query", "key", "value"), (slice(0, D), slice(D, 2 * D), slice(2 * D, 3 * D))):
                hf["predictor." + k2.replace("attn.qkv", "attention." + part)] = v[sl].clone()
            continue
        hf["predictor." + k2.replace(".attn.", ".attention.")] = v
    masks_.sort()
    hf["predictor.embeddings.mask_tokens"] = torch.stack([v for _, v in masks_])  # [M, 1, 1, Dp]
    outdir = os.path.join(out_root, "weights_hf")
    os.makedirs(outdir, exist_ok=True)
    header, data = conv.build(hf, {"format": "pt"})
    conv.write_atomic(os.path.join(outdir, "model.safetensors"), header, data)
    with open(os.path.join(outdir, "config.json"), "w") as f:
        json.dump({"reference": "weights_vjepa2", "naming": "hf"}, f, indent=2)
        f.write("\n")


def finish(outdir, cfg, ref):
    write_reference(os.path.join(outdir, "reference.safetensors"), ref)
    with open(os.path.join(outdir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    size = sum(os.path.getsize(os.path.join(outdir, n)) for n in os.listdir(outdir))
    print("[%s] %d reference tensors, %.0f KB" % (os.path.basename(outdir), len(ref), size / 1024))


def converter_cli_checks(tmp):
    """The converter's command line on bad input: exit 1 with one line naming the file; a pickle that
    needs code is refused unless --trust-pickle."""
    import argparse as _argparse
    script = os.path.join(HERE, "convert_checkpoint.py")
    out = os.path.join(tmp, "x.safetensors")
    r = subprocess.run([sys.executable, script, os.path.join(tmp, "missing.pt"), out], capture_output=True, text=True)
    assert r.returncode == 1 and "missing.pt" in r.stderr and "does not exist" in r.stderr, r.stderr
    odd = os.path.join(tmp, "odd.pt")
    torch.save({"encoder": {"w": torch.ones(2)}, "args": _argparse.Namespace(lr=1.0)}, odd)
    r = subprocess.run([sys.executable, script, odd, out], capture_output=True, text=True)
    assert r.returncode == 1 and "--trust-pickle" in r.stderr and "odd.pt" in r.stderr, r.stderr
    r = subprocess.run([sys.executable, script, odd, out, "--trust-pickle", "--check", "--quiet"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    back, meta = conv.read_back(out)
    assert list(back) == ["encoder.w"] and meta["format"] == "pt", (list(back), meta)
    print("converter command line: missing file, code-needing pickle and --trust-pickle behave")


def generate(out_root):
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    encref.golden_rope_checks()
    tmp = tempfile.mkdtemp(prefix="jepa_weights_pt_")
    try:
        for name in CASES:
            make_case(name, CASES[name], out_root, tmp)
        converter_cli_checks(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=None, help="write the fixtures under this root (tests/fixtures)")
    ap.add_argument("--check", default=None, metavar="ROOT",
                    help="regenerate into a temporary directory and compare byte for byte with ROOT's")
    a = ap.parse_args(argv)
    if a.check:
        tmp = tempfile.mkdtemp(prefix="jepa_weights_check_")
        try:
            generate(tmp)
            bad = []
            for case in sorted(os.listdir(tmp)):
                for f in sorted(os.listdir(os.path.join(tmp, case))):
                    p1, p2 = os.path.join(tmp, case, f), os.path.join(a.check, case, f)
                    if not os.path.exists(p2) or not filecmp.cmp(p1, p2, shallow=False):
                        bad.append(os.path.join(case, f))
            if bad:
                print("make_weights_fixtures: regenerated files differ from the committed ones: " + ", ".join(bad),
                      file=sys.stderr)
                return 1
            print("make_weights_fixtures: every regenerated file equals the committed one")
            return 0
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    generate(a.out or os.path.join(os.path.dirname(HERE), "tests", "fixtures"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
