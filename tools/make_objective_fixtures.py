#!/usr/bin/env python3
"""Generate float64 reference fixtures for the jepa JEPA training objective.

This is an independent, plain-PyTorch reference written from the recipe fact
sheet (recipe_facts.md sections 1, 2.3, 2.4, 3.4, 4 and 9.1 items 5-7 and
15-17). It is not the official V-JEPA code. The encoder conventions (Conv3d
tubelet, t-h-w token order, packed qkv, 3-D RoPE split/pairing,
interpolate_rope) come from tools/make_encoder_fixtures.py, whose RoPE helpers
are imported; the encoder forward below is cross-checked against that file's
encoder_forward.

One "loss evaluation":
  1. targets: target encoder (params theta_bar) on the full clip, no grad;
     V-JEPA 2: final-norm output (B,N,D); 2.1: the 4 normed taps concatenated
     (B,N,4D). Then a non-affine LayerNorm (eps 1e-5) over features, for 2.1
     separately for each D-wide chunk -> h.
  2. per mask generator j: context encoder (theta) on the tokens ctx_j.
  3. predictor (phi): embed (2.1: fusion MLP 4D->D->Dp), mask_tokens.0 at the
     target indices, sort by index, [2.1: + video_mod_embed], blocks with 3-D
     RoPE on the sorted indices, predictor_norm, unsort, predictor_proj on the
     target part [2.1: predictor_proj_context on the context part].
  4. V-JEPA 2: L = mean_j mean|pred_j - h[tgt_j]|.
     2.1: L = L_pred + lambda(it) * L_ctx with L_ctx = mean_j mean(|pred_ctx_j -
     h[ctx_j]| * w_c), w_c = 1/sqrt(dist_c), dist_c = Euclidean grid distance
     of context token c to the nearest target token of its sample.

Cases (each its own directory under --out):
  objective_vjepa2_tiny/   V-JEPA 2: tiled RoPE, final norm, L1 on targets.
  objective_vjepa21_tiny/  V-JEPA 2.1: MultiModal video path, interleaved RoPE +
                           interpolate_rope, 4 taps, 4-level predictor, context
                           loss with distance weights, it = 22500 (lambda 0.25).

Per case:
  config.json
  encoder/<key>.npy, target_encoder/<key>.npy, predictor/<key>.npy   float32
  input.npy (B,3,F,H,W) float32; ctx_{j}.npy, tgt_{j}.npy int64 (B,K)
  loss.npy          float64 [L, L_pred, L_ctx]   (V-JEPA 2: [L, L, 0])
  targets.npy       float64 (B,N,L*D) normalised targets h
  pred_{j}.npy      float64 (B,Kt_j,L*D) predictor target outputs
  pred_ctx_{j}.npy  float64 (B,Kc_j,4D)  predictor context outputs (2.1)
  dist_weights_{j}.npy float64 (B,Kc_j) w_c = 1/sqrt(dist_c)      (2.1)
  grad_encoder/<key>.npy, grad_predictor/<key>.npy  float32 dL/dtheta, dL/dphi
                    (computed in float64; every parameter, zeros included)

Everything is evaluated in float64 from the float32-rounded parameters and
input. Regenerate with:
  /usr/bin/python3 tools/make_objective_fixtures.py --out tests/fixtures
"""

import argparse
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_encoder_fixtures as encref  # noqa: E402
from make_encoder_fixtures import (DT, apply_rope, golden_rope_checks,  # noqa: E402
                                   save, token_positions)

LN_EPS = 1e-6
TARGET_LN_EPS = 1e-5


# --------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------

def block_shapes(prefix, depth, D, hidden):
    shapes = []
    for i in range(depth):
        b = "%s%d." % (prefix, i)
        shapes += [
            (b + "norm1.weight", (D,)), (b + "norm1.bias", (D,)),
            (b + "attn.qkv.weight", (3 * D, D)), (b + "attn.qkv.bias", (3 * D,)),
            (b + "attn.proj.weight", (D, D)), (b + "attn.proj.bias", (D,)),
            (b + "norm2.weight", (D,)), (b + "norm2.bias", (D,)),
            (b + "mlp.fc1.weight", (hidden, D)), (b + "mlp.fc1.bias", (hidden,)),
            (b + "mlp.fc2.weight", (D, hidden)), (b + "mlp.fc2.bias", (D,)),
        ]
    return shapes


def encoder_shapes(cfg):
    D, p = cfg["embed_dim"], cfg["patch"]
    shapes = list(encref.param_shapes(cfg))
    assert shapes[2:2 + 12 * cfg["depth"]] == block_shapes(
        "blocks.", cfg["depth"], D, cfg["mlp_hidden"])
    if cfg["multimodal"]:
        shapes += [("patch_embed_img.proj.weight", (D, 3, 1, p, p)),
                   ("patch_embed_img.proj.bias", (D,)),
                   ("video_mod_embed", (1, 1, D)),
                   ("img_mod_embed", (1, 1, D))]
    return shapes


def predictor_shapes(cfg):
    D, Dp, L = cfg["embed_dim"], cfg["pred_dim"], cfg["levels"]
    if L == 1:
        shapes = [("predictor_embed.weight", (Dp, D)), ("predictor_embed.bias", (Dp,))]
    else:
        shapes = [("predictor_embed.0.weight", (D, L * D)), ("predictor_embed.0.bias", (D,)),
                  ("predictor_embed.2.weight", (Dp, D)), ("predictor_embed.2.bias", (Dp,))]
    shapes += [("mask_tokens.%d" % i, (1, 1, Dp)) for i in range(cfg["num_mask_tokens"])]
    shapes += block_shapes("predictor_blocks.", cfg["pred_depth"], Dp, cfg["pred_mlp_hidden"])
    shapes += [("predictor_norm.weight", (Dp,)), ("predictor_norm.bias", (Dp,)),
               ("predictor_proj.weight", (L * D, Dp)), ("predictor_proj.bias", (L * D,))]
    if cfg["context_loss"]:
        shapes += [("predictor_proj_context.weight", (L * D, Dp)),
                   ("predictor_proj_context.bias", (L * D,))]
    if cfg["modality_embedding"]:
        shapes += [("video_mod_embed", (1, 1, Dp)), ("img_mod_embed", (1, 1, Dp))]
    return shapes


def param_kind(key):
    parts = key.split(".")
    if parts[0] == "mask_tokens" or key.endswith("mod_embed"):
        return "embed"
    owner = parts[-2]
    if "norm" in owner or parts[0].startswith("norm"):  # norm, norm1/2, norms_block.j, predictor_norm
        return "ln_weight" if parts[-1] == "weight" else "ln_bias"
    if parts[-1] == "weight":
        return "qkv" if owner == "qkv" else "weight"
    assert parts[-1] == "bias", key
    return "bias"


STD = {"weight": 0.05, "qkv": 0.15, "bias": 0.02, "embed": 0.02}


def init_params(shapes, gen):
    """Random, non-trivial float32 parameters (seeded, in key order)."""
    P = {}
    for key, shape in shapes:
        kind = param_kind(key)
        r = torch.randn(shape, generator=gen, dtype=DT)
        if kind == "ln_weight":
            v = 1.0 + 0.1 * r
        elif kind == "ln_bias":
            v = 0.1 * r
        else:
            v = STD[kind] * r
        P[key] = v.to(torch.float32).contiguous()
    return P


# --------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------

def blocks_forward(z, P, prefix, depth, heads, pos, rope_mode, taps=()):
    """Pre-norm ViT blocks with 3-D RoPE on q, k. pos = (d, h, w), each (B,L).

    Returns (final z, list of z after each block index in taps)."""
    B, L, D = z.shape
    hd = D // heads
    tapped = []
    for i in range(depth):
        b = "%s%d." % (prefix, i)
        h = F.layer_norm(z, (D,), P[b + "norm1.weight"], P[b + "norm1.bias"], LN_EPS)
        qkv = F.linear(h, P[b + "attn.qkv.weight"], P[b + "attn.qkv.bias"])
        qkv = qkv.reshape(B, L, 3, heads, hd).permute(2, 0, 3, 1, 4)  # [q|k|v], heads contiguous
        q = apply_rope(qkv[0], pos[0], pos[1], pos[2], rope_mode)
        k = apply_rope(qkv[1], pos[0], pos[1], pos[2], rope_mode)
        a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd), dim=-1)
        o = (a @ qkv[2]).transpose(1, 2).reshape(B, L, D)
        z = z + F.linear(o, P[b + "attn.proj.weight"], P[b + "attn.proj.bias"])
        h = F.layer_norm(z, (D,), P[b + "norm2.weight"], P[b + "norm2.bias"], LN_EPS)
        h = F.gelu(F.linear(h, P[b + "mlp.fc1.weight"], P[b + "mlp.fc1.bias"]))
        z = z + F.linear(h, P[b + "mlp.fc2.weight"], P[b + "mlp.fc2.bias"])
        if i in taps:
            tapped.append(z)
    return z, tapped


def grid_shape(cfg):
    return (cfg["frames"] // cfg["tubelet"], cfg["height"] // cfg["patch"],
            cfg["width"] // cfg["patch"])


def encoder_forward(cfg, P, x, keep=None):
    """Training-mode encoder output: V-JEPA 2 norm(x_L) (B,K,D); 2.1 the
    concatenation of norms_block.j(tap_j), shallow->deep (B,K,4D)."""
    D, t, p = cfg["embed_dim"], cfg["tubelet"], cfg["patch"]
    z = F.conv3d(x, P["patch_embed.proj.weight"], P["patch_embed.proj.bias"], stride=(t, p, p))
    B, _, Tp, Hp, Wp = z.shape
    z = z.flatten(2).transpose(1, 2)  # (B,N,D), n = d*Hp*Wp + h*Wp + w
    if cfg["multimodal"]:
        z = z + P["video_mod_embed"]  # 2.1: after patch embedding, before masking
    N = Tp * Hp * Wp
    idx = torch.arange(N).unsqueeze(0).expand(B, N) if keep is None else keep
    if keep is not None:
        z = torch.gather(z, 1, keep.unsqueeze(-1).expand(-1, -1, D))
    pos = token_positions(idx, Hp, Wp, cfg["rope_interp_grid"])
    z, tapped = blocks_forward(z, P, "blocks.", cfg["depth"], cfg["num_heads"], pos,
                               cfg["rope"], taps=cfg["taps"])
    if cfg["final_norm"]:
        return F.layer_norm(z, (D,), P["norm.weight"], P["norm.bias"], LN_EPS)
    return torch.cat([F.layer_norm(zj, (D,), P["norms_block.%d.weight" % j],
                                   P["norms_block.%d.bias" % j], LN_EPS)
                      for j, zj in enumerate(tapped)], dim=-1)


def normalise_targets(cfg, out):
    """Non-affine LN (eps 1e-5); 2.1: separately per D-wide level chunk."""
    D = cfg["embed_dim"]
    return torch.cat([F.layer_norm(c, (D,), eps=TARGET_LN_EPS) for c in out.split(D, dim=-1)],
                     dim=-1)


def gather_tokens(h, idx):
    return torch.gather(h, 1, idx.unsqueeze(-1).expand(-1, -1, h.shape[-1]))


def predictor_forward(cfg, Q, z, ctx, tgt, sort=True, variant=None):
    """Returns (target predictions (B,Kt,L*D), context predictions or None)."""
    variant = variant or {}
    Dp, L = cfg["pred_dim"], cfg["levels"]
    _, Hp, Wp = grid_shape(cfg)
    if L == 1:
        xc = F.linear(z, Q["predictor_embed.weight"], Q["predictor_embed.bias"])
    else:
        xc = F.gelu(F.linear(z, Q["predictor_embed.0.weight"], Q["predictor_embed.0.bias"]))
        xc = F.linear(xc, Q["predictor_embed.2.weight"], Q["predictor_embed.2.bias"])
    B, Kc, _ = xc.shape
    Kt = tgt.shape[1]
    mask = Q["mask_tokens.%d" % cfg["mask_index"]].expand(B, Kt, Dp)
    seq = torch.cat([xc, mask], dim=1)
    idx = torch.cat([ctx, tgt], dim=1)
    if sort:
        order = torch.argsort(idx, dim=1)
        seq = gather_tokens(seq, order)
        idx = torch.gather(idx, 1, order)
        assert bool((idx[:, 1:] > idx[:, :-1]).all())
    if cfg["modality_embedding"] and not variant.get("no_pred_mod"):
        seq = seq + Q["video_mod_embed"]  # after sorting, every token
    pos = token_positions(idx, Hp, Wp, variant.get("pred_interp", cfg["pred_rope_interp_grid"]))
    y, _ = blocks_forward(seq, Q, "predictor_blocks.", cfg["pred_depth"], cfg["pred_heads"], pos,
                          variant.get("pred_rope", cfg["pred_rope"]))
    y = F.layer_norm(y, (Dp,), Q["predictor_norm.weight"], Q["predictor_norm.bias"], LN_EPS)
    if sort:
        y = gather_tokens(y, torch.argsort(order, dim=1))  # un-sort
    pred = F.linear(y[:, Kc:], Q["predictor_proj.weight"], Q["predictor_proj.bias"])
    pred_ctx = None
    if cfg["context_loss"]:
        pred_ctx = F.linear(y[:, :Kc], Q["predictor_proj_context.weight"],
                            Q["predictor_proj_context.bias"])
    return pred, pred_ctx


# --------------------------------------------------------------------------
# Distance weights and lambda schedule (section 3.4)
# --------------------------------------------------------------------------

def grid_coords(idx, Hp, Wp):
    """Integer (d,h,w) token-grid coordinates, float64, (B,K,3); d in tubelets."""
    return torch.stack([idx // (Hp * Wp), (idx % (Hp * Wp)) // Wp, idx % Wp], dim=-1).to(DT)


def distance_weights(ctx, tgt, Hp, Wp):
    """w_c = 1/sqrt(dist_c), dist_c = min Euclidean distance to a target token."""
    c = grid_coords(ctx, Hp, Wp)  # (B,Kc,3)
    t = grid_coords(tgt, Hp, Wp)  # (B,Kt,3)
    d2 = ((c.unsqueeze(2) - t.unsqueeze(1)) ** 2).sum(-1)  # (B,Kc,Kt)
    dist = d2.min(dim=2).values.sqrt()
    assert bool((dist >= 1).all())
    return 1.0 / dist.sqrt(), dist


def lambda_schedule(it, value=0.5, start=15000, end=30000):
    if it < start:
        return 0.0
    if it < end:
        return value * (it - start) / (end - start)
    return value


def golden_objective_checks():
    out = []
    # Distance weights on a 2x4x4 grid: ctx token 0 = (0,0,0).
    ctx = torch.tensor([[0]])
    for tgt_flat, dist, w in [(1, 1.0, 1.0), (16, 1.0, 1.0), (5, math.sqrt(2), 0.841),
                              (2, 2.0, 0.7071), (3, 3.0, 0.577)]:
        wt, dd = distance_weights(ctx, torch.tensor([[tgt_flat]]), 4, 4)
        assert abs(dd.item() - dist) < 1e-12, (tgt_flat, dd.item())
        assert abs(wt.item() - w) < 5e-4, (dist, wt.item())
        out.append("distance %.4f -> weight %.4f" % (dd.item(), wt.item()))
    # The nearest target wins.
    wt, dd = distance_weights(ctx, torch.tensor([[3, 5, 31]]), 4, 4)
    assert abs(dd.item() - math.sqrt(2)) < 1e-12
    for it, lam in [(0, 0.0), (14999, 0.0), (15000, 0.0), (22500, 0.25), (29999, 0.5 * 14999 / 15000),
                    (30000, 0.5), (100000, 0.5)]:
        assert abs(lambda_schedule(it) - lam) < 1e-15, (it, lambda_schedule(it))
    out.append("lambda(0, 15000, 22500, 30000) = 0, 0, 0.25, 0.5")
    return out


# --------------------------------------------------------------------------
# Masks
# --------------------------------------------------------------------------

def block_tokens(Tp, Hp, Wp, times, top, left, bh, bw):
    return sorted(d * Hp * Wp + h * Wp + w for d in times
                  for h in range(top, top + bh) for w in range(left, left + bw))


def make_masks(cfg, gen):
    """Fixed per-sample masks. Targets are spatio-temporal blocks (as a
    multi-block generator would give); context is a random subset of the rest
    (so some tokens are in neither set, as after truncation)."""
    Tp, Hp, Wp = grid_shape(cfg)
    N = Tp * Hp * Wp
    B = cfg["batch"]
    # per generator: per-sample (times, bh, bw) and context size
    specs = [
        dict(kc=N // 4, blocks=[(range(Tp), 2, 3)] * B),                # ~25% context
        dict(kc=round(0.4 * N), blocks=[(range(Tp), 2, 2), ([Tp - 1], 2, 4)]),  # ~40% context
    ]
    assert len(specs) == cfg["num_generators"]
    masks = []
    for sp in specs:
        ctx_rows, tgt_rows = [], []
        for b in range(B):
            times, bh, bw = sp["blocks"][b]
            top = int(torch.randint(0, Hp - bh + 1, (1,), generator=gen))
            left = int(torch.randint(0, Wp - bw + 1, (1,), generator=gen))
            tgt = block_tokens(Tp, Hp, Wp, times, top, left, bh, bw)
            rest = torch.tensor([n for n in range(N) if n not in set(tgt)])
            ctx = rest[torch.randperm(len(rest), generator=gen)[:sp["kc"]]]
            ctx_rows.append(torch.sort(ctx).values)
            tgt_rows.append(torch.tensor(tgt))
        ctx = torch.stack(ctx_rows).to(torch.int64)
        tgt = torch.stack(tgt_rows).to(torch.int64)
        for b in range(B):
            assert not set(ctx[b].tolist()) & set(tgt[b].tolist())
            assert len(set(ctx[b].tolist()) | set(tgt[b].tolist())) < N
        assert not torch.equal(ctx[0], ctx[1]) and not torch.equal(tgt[0], tgt[1])
        masks.append((ctx, tgt))
    return masks


# --------------------------------------------------------------------------
# Objective
# --------------------------------------------------------------------------

def objective(cfg, Pbar, P, Q, x, masks, variant=None, record=None):
    """Returns (L, L_pred, L_ctx). Pbar target encoder, P context encoder,
    Q predictor (all dicts of float64 tensors)."""
    variant = variant or {}
    _, Hp, Wp = grid_shape(cfg)
    with torch.no_grad():
        raw = encoder_forward(cfg, Pbar, x)
        if variant.get("joint_target_ln"):
            h = F.layer_norm(raw, (raw.shape[-1],), eps=TARGET_LN_EPS)
        else:
            h = normalise_targets(cfg, raw)
    G = len(masks)
    L_pred = 0.0
    L_ctx = 0.0
    for j, (ctx, tgt) in enumerate(masks):
        z = encoder_forward(cfg, P, x, keep=ctx)
        pred, pred_ctx = predictor_forward(cfg, Q, z, ctx, tgt, sort=not variant.get("no_sort"),
                                           variant=variant)
        L_pred = L_pred + (pred - gather_tokens(h, tgt)).abs().mean() / G
        if cfg["context_loss"]:
            w, _ = distance_weights(ctx, tgt, Hp, Wp)
            if not cfg["weight_distance"] or variant.get("no_dist_weight"):
                w = torch.ones_like(w)
            err = (pred_ctx - gather_tokens(h, ctx)).abs() * w.unsqueeze(-1)
            L_ctx = L_ctx + err.mean() / G
        if record is not None:
            record["pred_%d" % j] = pred.detach().clone()
            if pred_ctx is not None:
                record["pred_ctx_%d" % j] = pred_ctx.detach().clone()
                record["dist_weights_%d" % j] = w.detach().clone()
    if record is not None:
        record["targets"] = h.detach().clone()
    lam = lambda_schedule(cfg["step"], cfg["lambda_value"]) if cfg["context_loss"] else 0.0
    if not torch.is_tensor(L_ctx):
        L_ctx = torch.zeros((), dtype=DT)
    return L_pred + lam * L_ctx, L_pred, L_ctx


def to64(d, grad=False):
    return {k: v.to(DT).requires_grad_(grad) for k, v in d.items()}


def finite_difference_check(cfg, Pbar, P32, Q32, x, masks, gen, grads_P, grads_Q):
    """Central differences (float64, step 1e-6) on a few coordinates."""
    P = to64(P32)
    Q = to64(Q32)
    picks = [("enc", "patch_embed.proj.weight"), ("enc", "blocks.0.attn.qkv.weight"),
             ("enc", "blocks.%d.mlp.fc2.bias" % (cfg["depth"] - 1)),
             ("pred", "mask_tokens.0"), ("pred", "predictor_blocks.0.attn.qkv.weight"),
             ("pred", "predictor_proj.weight"), ("pred", "predictor_norm.bias")]
    picks.append(("pred", "predictor_embed.0.weight" if cfg["levels"] > 1 else "predictor_embed.weight"))
    if cfg["final_norm"]:
        picks.append(("enc", "norm.weight"))
    else:
        picks += [("enc", "norms_block.0.weight"), ("enc", "norms_block.3.bias")]
    if cfg["multimodal"]:
        picks.append(("enc", "video_mod_embed"))
    if cfg["context_loss"]:
        picks.append(("pred", "predictor_proj_context.weight"))
    if cfg["modality_embedding"]:
        picks.append(("pred", "video_mod_embed"))
    eps = 1e-6
    worst_abs, worst_rel = 0.0, 0.0
    for which, key in picks:
        base = (P if which == "enc" else Q)[key]
        g = (grads_P if which == "enc" else grads_Q)[key]
        for fi in torch.randint(0, base.numel(), (2,), generator=gen).tolist():
            vals = []
            for delta in (eps, -eps):
                b2 = base.clone().reshape(-1)
                b2[fi] += delta
                PP, QQ = dict(P), dict(Q)
                (PP if which == "enc" else QQ)[key] = b2.reshape(base.shape)
                vals.append(objective(cfg, Pbar, PP, QQ, x, masks)[0].item())
            fd = (vals[0] - vals[1]) / (2 * eps)
            an = g.reshape(-1)[fi].item()
            worst_abs = max(worst_abs, abs(fd - an))
            worst_rel = max(worst_rel, abs(fd - an) / max(abs(an), 1e-3))
    assert worst_abs < 1e-7, "finite difference mismatch %g" % worst_abs
    return worst_abs, worst_rel, len(picks) * 2


# --------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------

CASES = {
    "objective_vjepa2_tiny": dict(
        embed_dim=64, depth=2, num_heads=2, mlp_hidden=256, tubelet=2, patch=8,
        rope="tiled", rope_interp_grid=0, taps=[], final_norm=True, multimodal=False,
        pred_dim=32, pred_depth=2, pred_heads=2, pred_mlp_hidden=128, num_mask_tokens=10,
        levels=1, mask_index=0, pred_rope="tiled", pred_rope_interp_grid=0,
        modality_embedding=False,
        batch=2, frames=4, height=32, width=32, num_generators=2, step=22500,
        lambda_value=0.5, context_loss=False, weight_distance=False),
    "objective_vjepa21_tiny": dict(
        embed_dim=48, depth=4, num_heads=3, mlp_hidden=192, tubelet=2, patch=8,
        rope="interleaved", rope_interp_grid=32, taps=[0, 1, 2, 3], final_norm=False,
        multimodal=True,
        pred_dim=32, pred_depth=2, pred_heads=2, pred_mlp_hidden=128, num_mask_tokens=8,
        levels=4, mask_index=0, pred_rope="interleaved", pred_rope_interp_grid=32,
        modality_embedding=True,
        batch=2, frames=4, height=32, width=32, num_generators=2, step=22500,
        lambda_value=0.5, context_loss=True, weight_distance=True),
}
SEEDS = {"objective_vjepa2_tiny": 20250101, "objective_vjepa21_tiny": 20250102}


def expected_zero_grads(cfg):
    enc = set()
    if cfg["multimodal"]:
        enc = {"patch_embed_img.proj.weight", "patch_embed_img.proj.bias", "img_mod_embed"}
    pred = {"mask_tokens.%d" % i for i in range(cfg["num_mask_tokens"]) if i != cfg["mask_index"]}
    if cfg["modality_embedding"]:
        pred.add("img_mod_embed")
    return enc, pred


def rel(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


def make_case(name, cfg, out_root):
    cfg = dict(cfg)
    Tp, Hp, Wp = grid_shape(cfg)
    N = Tp * Hp * Wp
    D, L = cfg["embed_dim"], cfg["levels"]
    cfg["eps"] = LN_EPS
    cfg["target_ln_eps"] = TARGET_LN_EPS
    cfg["lambda"] = lambda_schedule(cfg["step"], cfg["lambda_value"]) if cfg["context_loss"] else 0.0
    cfg["lambda_schedule"] = dict(start=15000, end=30000, value=cfg["lambda_value"])
    cfg["grid"] = [Tp, Hp, Wp]
    outdir = os.path.join(out_root, name)
    os.makedirs(outdir, exist_ok=True)

    gen = torch.Generator().manual_seed(SEEDS[name])
    P32 = init_params(encoder_shapes(cfg), gen)      # context encoder theta
    Pbar32 = init_params(encoder_shapes(cfg), gen)   # target encoder theta_bar (different)
    Q32 = init_params(predictor_shapes(cfg), gen)    # predictor phi
    B = cfg["batch"]
    x32 = torch.randn(B, 3, cfg["frames"], cfg["height"], cfg["width"],
                      generator=gen, dtype=DT).to(torch.float32)
    masks = make_masks(cfg, gen)
    cfg["ctx_sizes"] = [int(c.shape[1]) for c, _ in masks]
    cfg["tgt_sizes"] = [int(t.shape[1]) for _, t in masks]

    x = x32.to(DT)
    Pbar = to64(Pbar32)
    P = to64(P32, grad=True)
    Q = to64(Q32, grad=True)
    rec = {}
    loss, l_pred, l_ctx = objective(cfg, Pbar, P, Q, x, masks, record=rec)
    pk, qk = list(P), list(Q)
    grads = torch.autograd.grad(loss, [P[k] for k in pk] + [Q[k] for k in qk], allow_unused=True)
    gP = {k: (g if g is not None else torch.zeros_like(P[k])) for k, g in zip(pk, grads[:len(pk)])}
    gQ = {k: (g if g is not None else torch.zeros_like(Q[k])) for k, g in zip(qk, grads[len(pk):])}

    # ---- self-checks --------------------------------------------------------
    chk = torch.Generator().manual_seed(SEEDS[name] + 7)
    # Zero gradients exactly where expected, non-zero everywhere else.
    zero_enc, zero_pred = expected_zero_grads(cfg)
    for gd, zero in ((gP, zero_enc), (gQ, zero_pred)):
        for k, g in gd.items():
            assert (g.abs().max().item() == 0.0) == (k in zero), (k, g.abs().max().item())
    # My encoder == make_encoder_fixtures.encoder_forward (video_mod_embed is
    # a per-channel constant added before masking, i.e. a conv-bias shift).
    P64 = to64(P32)
    Palt = dict(P64)
    if cfg["multimodal"]:
        Palt["patch_embed.proj.bias"] = P64["patch_embed.proj.bias"] + P64["video_mod_embed"].reshape(-1)
    for keep in (None, masks[0][0]):
        mine = encoder_forward(cfg, P64, x, keep=keep)
        theirs = torch.cat(encref.encoder_forward(cfg, Palt, x, keep_idx=keep), dim=-1)
        assert torch.allclose(mine, theirs, atol=1e-12, rtol=0)
    # Shapes.
    h = rec["targets"]
    assert h.shape == (B, N, L * D)
    for j, (ctx, tgt) in enumerate(masks):
        assert rec["pred_%d" % j].shape == (B, tgt.shape[1], L * D)
    # Each target chunk is normalised (mean 0, var ~1 up to eps).
    for c in h.split(D, dim=-1):
        assert c.mean(-1).abs().max().item() < 1e-12
    # Sorting does not change the result under full attention.
    Q64 = to64(Q32)
    for ctx, tgt in masks:
        z = encoder_forward(cfg, P64, x, keep=ctx)
        a = predictor_forward(cfg, Q64, z, ctx, tgt, sort=True)
        b = predictor_forward(cfg, Q64, z, ctx, tgt, sort=False)
        for u, v in zip(a, b):
            if u is not None:
                assert torch.allclose(u, v, atol=1e-12, rtol=0)
    # The fixture must discriminate the conventions that matter.
    sens = {}
    ref_pred = rec["pred_0"]

    def pred_change(**variant):
        r2 = {}
        objective(cfg, to64(Pbar32), P64, Q64, x, masks, variant=variant, record=r2)
        return rel(r2["pred_0"], ref_pred), r2

    other = "interleaved" if cfg["pred_rope"] == "tiled" else "tiled"
    sens["predictor rope %s" % other] = pred_change(pred_rope=other)[0]
    if cfg["pred_rope_interp_grid"]:
        sens["predictor without interpolate_rope"] = pred_change(pred_interp=0)[0]
    if cfg["modality_embedding"]:
        sens["predictor without video_mod_embed"] = pred_change(no_pred_mod=True)[0]
    if L > 1:
        r2 = {}
        objective(cfg, to64(Pbar32), P64, Q64, x, masks, variant=dict(joint_target_ln=True), record=r2)
        sens["targets with joint (not per-level) LN"] = rel(r2["targets"], h)
    if cfg["context_loss"]:
        lu = objective(cfg, to64(Pbar32), P64, Q64, x, masks, variant=dict(no_dist_weight=True))[2]
        sens["L_ctx without distance weights"] = abs(lu.item() - l_ctx.item()) / l_ctx.item()
    for k, v in sens.items():
        assert v > 1e-2, (k, v)
    fd_abs, fd_rel, fd_n = finite_difference_check(cfg, to64(Pbar32), P32, Q32, x, masks, chk, gP, gQ)

    # ---- write ----------------------------------------------------------------
    with open(os.path.join(outdir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    for sub, d in (("encoder", P32), ("target_encoder", Pbar32), ("predictor", Q32)):
        for k, v in d.items():
            save(os.path.join(outdir, sub, k + ".npy"), v.numpy())
    save(os.path.join(outdir, "input.npy"), x32.numpy())
    for j, (ctx, tgt) in enumerate(masks):
        save(os.path.join(outdir, "ctx_%d.npy" % j), ctx.numpy())
        save(os.path.join(outdir, "tgt_%d.npy" % j), tgt.numpy())
        save(os.path.join(outdir, "pred_%d.npy" % j), rec["pred_%d" % j].numpy())
        if cfg["context_loss"]:
            save(os.path.join(outdir, "pred_ctx_%d.npy" % j), rec["pred_ctx_%d" % j].numpy())
            save(os.path.join(outdir, "dist_weights_%d.npy" % j), rec["dist_weights_%d" % j].numpy())
    save(os.path.join(outdir, "targets.npy"), h.numpy())
    save(os.path.join(outdir, "loss.npy"),
         np.array([loss.item(), l_pred.item(), l_ctx.item()], dtype=np.float64))
    for sub, d in (("grad_encoder", gP), ("grad_predictor", gQ)):
        for k, g in d.items():
            save(os.path.join(outdir, sub, k + ".npy"), g.float().numpy())

    # ---- report -----------------------------------------------------------------
    print("[%s] grid %dx%dx%d N=%d  Kc=%s Kt=%s  lambda=%g" % (
        name, Tp, Hp, Wp, N, cfg["ctx_sizes"], cfg["tgt_sizes"], cfg["lambda"]))
    print("  loss L=%.15g  L_pred=%.15g  L_ctx=%.15g" % (loss.item(), l_pred.item(), l_ctx.item()))
    if cfg["context_loss"]:
        for j in range(len(masks)):
            w = rec["dist_weights_%d" % j]
            vals = sorted({round(v, 4) for v in w.reshape(-1).tolist()})
            print("  generator %d distance weights: %s" % (j, vals))
    for k, v in sens.items():
        print("  sensitivity (rel. change) %-40s %.3g" % (k, v))
    print("  zero-gradient params: encoder %s, predictor %s" % (sorted(zero_enc), sorted(zero_pred)))
    print("  finite differences: %d coordinates, max abs err %.2e, max rel err %.2e"
          % (fd_n, fd_abs, fd_rel))
    return outdir


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Write float64 PyTorch reference fixtures for the JEPA "
                    "training objective (V-JEPA 2 and V-JEPA 2.1).")
    ap.add_argument("--out", default="tests/fixtures",
                    help="output root directory (default: tests/fixtures)")
    ap.add_argument("--case", choices=sorted(CASES), action="append",
                    help="only write this case (repeatable; default: all)")
    args = ap.parse_args(argv)

    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    for c in golden_rope_checks():
        print("golden RoPE ok:", c)
    for c in golden_objective_checks():
        print("golden objective ok:", c)
    for name in (args.case or sorted(CASES)):
        make_case(name, CASES[name], args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
