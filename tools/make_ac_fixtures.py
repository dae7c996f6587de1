#!/usr/bin/env python3
"""Generate float64 reference fixtures for the jepa C++ V-JEPA 2-AC predictor and its loss.

An independent, plain-PyTorch reference written from the recipe fact sheet (recipe_facts.md
sections 6.2, 6.4 and 1.5.4). It is not the official code, and it is deliberately written the
other way round from the C++ side: the action and state tokens get their own qkv projection call
and a rotation of the time block only (pos = t), the patch tokens are rotated from positions
arange(T*H*W), the two are re-interleaved per step, and attention uses an explicit boolean
block-causal mask and an explicit softmax. (The C++ side rotates all tokens with one table, giving
the conditioning tokens the grid position (t, 0, 0), and uses the fused masked attention.)

Case ac_tiny: depth 2, Dp 32, 2 heads (Dh 16: RoPE 4/4/4 + 4 unrotated, tiled pairing), D 16,
A = 4, Sd = 3 (the unused extrinsics encoder has A - 1 = 3 inputs), a 2x3 patch grid (6 tokens
per frame, non-square so h and w cannot be swapped), B = 2 trajectories of T = 4 frames,
auto_steps = 2.

Writes tests/fixtures/ac_tiny/:
  config.json
  <state-dict key>.npy     predictor parameters, float32
  features.npy             h (B, T*HW, D): normalised frame features, float32
  actions.npy              (B, T-1, A) float32
  states.npy               (B, T, Sd) float32
  tf_out.npy               float64 raw predictor output of the teacher-forcing pass (B, (T-1)*HW, D)
  rollout_z2.npy           float64 normalised rollout prediction of frame 2 (B, HW, D)
  loss.npy                 float64 [L, L_tf, L_roll]
  grad/<key>.npy           float32 dL/dtheta (computed in float64)

Before writing it checks: the block-causal property, the finite differences of a few gradients,
that the extrinsics encoder gets no gradient, and that the fixture is sensitive to the
conventions (RoPE pairing, the mask, rotating the conditioning tokens in time, the gradient through
z_1 into the rollout, the h/w position order). The order of the action and state tokens inside a
step is not observable (same position (t, 0, 0), same mask block), so it is not checked.

Regenerate (deterministic: a rerun gives byte-identical files):
  /usr/bin/python3 tools/make_ac_fixtures.py --out tests/fixtures
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
from make_encoder_fixtures import rope_block, rope_split, save  # noqa: E402

DT = torch.float64

CFG = dict(encoder_dim=16, pred_dim=32, depth=2, num_heads=2, mlp_hidden=64, action_dim=4, state_dim=3,
           grid_h=2, grid_w=3, batch=2, frames=4, auto_steps=2, eps=1e-6, ln_eps=1e-5, rope="tiled",
           extrinsics_encoder=True)
SEED = 20250601


def param_shapes(cfg):
    D, Dp, Hd, A, Sd = cfg["encoder_dim"], cfg["pred_dim"], cfg["mlp_hidden"], cfg["action_dim"], cfg["state_dim"]
    sh = [("predictor_embed.weight", (Dp, D)), ("predictor_embed.bias", (Dp,)),
          ("action_encoder.weight", (Dp, A)), ("action_encoder.bias", (Dp,)),
          ("state_encoder.weight", (Dp, Sd)), ("state_encoder.bias", (Dp,))]
    if cfg["extrinsics_encoder"]:
        sh += [("extrinsics_encoder.weight", (Dp, A - 1)), ("extrinsics_encoder.bias", (Dp,))]
    for i in range(cfg["depth"]):
        b = "predictor_blocks.%d." % i
        sh += [(b + "norm1.weight", (Dp,)), (b + "norm1.bias", (Dp,)),
               (b + "attn.qkv.weight", (3 * Dp, Dp)), (b + "attn.qkv.bias", (3 * Dp,)),
               (b + "attn.proj.weight", (Dp, Dp)), (b + "attn.proj.bias", (Dp,)),
               (b + "norm2.weight", (Dp,)), (b + "norm2.bias", (Dp,)),
               (b + "mlp.fc1.weight", (Hd, Dp)), (b + "mlp.fc1.bias", (Hd,)),
               (b + "mlp.fc2.weight", (Dp, Hd)), (b + "mlp.fc2.bias", (Dp,))]
    sh += [("predictor_norm.weight", (Dp,)), ("predictor_norm.bias", (Dp,)),
           ("predictor_proj.weight", (D, Dp)), ("predictor_proj.bias", (D,))]
    return sh


def init_params(cfg, gen):
    P = {}
    for key, shape in param_shapes(cfg):
        if "norm" in key:
            v = (1.0 if key.endswith("weight") else 0.0) + 0.1 * torch.randn(shape, generator=gen, dtype=DT)
        elif key.endswith("weight"):
            v = (0.15 if "qkv" in key else 0.1) * torch.randn(shape, generator=gen, dtype=DT)
        else:
            v = 0.05 * torch.randn(shape, generator=gen, dtype=DT)
        P[key] = v.to(torch.float32).contiguous()
    return P


def rot_blocks(x, pos_list, mode):
    """Rotate consecutive s-wide blocks of the last dim with the given positions; rest untouched.
    x: (B, heads, L, hd); pos_list: list of (L,) float64 position vectors, one per block."""
    s, _ = rope_split(x.shape[-1])
    parts = [rope_block(x[..., i * s:(i + 1) * s], p, mode) for i, p in enumerate(pos_list)]
    parts.append(x[..., len(pos_list) * s:])
    return torch.cat(parts, dim=-1)


def ac_predictor(cfg, P, z, a, s, variant=None):
    """z (B, T*HW, D), a (B, T, A), s (B, T, Sd) -> (B, T*HW, D) raw predictions."""
    variant = variant or {}
    Dp, nh = cfg["pred_dim"], cfg["num_heads"]
    hd = Dp // nh
    gh, gw = cfg["grid_h"], cfg["grid_w"]
    HW = gh * gw
    mode = variant.get("rope", cfg["rope"])
    x = F.linear(z, P["predictor_embed.weight"], P["predictor_embed.bias"])
    B, N, _ = x.shape
    T = N // HW
    xa = F.linear(a, P["action_encoder.weight"], P["action_encoder.bias"]).unsqueeze(2)
    xs = F.linear(s, P["state_encoder.weight"], P["state_encoder.bias"]).unsqueeze(2)
    x = torch.cat([xa, xs, x.view(B, T, HW, Dp)], dim=2).flatten(1, 2)  # (B, T*(2+HW), Dp)
    K = 2 + HW
    # Boolean block-causal mask (True = may attend), built step by step.
    L = T * K
    allowed = torch.zeros(L, L, dtype=torch.bool)
    for t1 in range(T):
        for t2 in range(t1 + 1):
            allowed[t1 * K:(t1 + 1) * K, t2 * K:(t2 + 1) * K] = True
    if variant.get("no_mask"):
        allowed[:] = True
    ids = torch.arange(T * HW)
    pd = (ids // HW).to(DT)
    ph = ((ids % HW) // gw).to(DT)
    pw = (ids % gw).to(DT)
    if variant.get("swap_hw"):
        ph, pw = pw, ph
    tpos = torch.arange(T, dtype=DT)
    for i in range(cfg["depth"]):
        b = "predictor_blocks.%d." % i
        h = F.layer_norm(x, (Dp,), P[b + "norm1.weight"], P[b + "norm1.bias"], cfg["eps"])
        h4 = h.view(B, T, K, Dp)
        # Conditioning tokens: their own projection; time block rotated with pos t, the rest as is.
        cq, ck, cv = [], [], []
        for j in range(2):
            qkv = F.linear(h4[:, :, j], P[b + "attn.qkv.weight"], P[b + "attn.qkv.bias"])
            qkv = qkv.view(B, T, 3, nh, hd).permute(2, 0, 3, 1, 4)  # (3, B, nh, T, hd)
            q, k, v = qkv[0], qkv[1], qkv[2]
            if not variant.get("cond_no_rope"):
                q = rot_blocks(q, [tpos], mode)
                k = rot_blocks(k, [tpos], mode)
            cq.append(q), ck.append(k), cv.append(v)
        # Patch tokens: positions from arange(T*H*W).
        qkv = F.linear(h4[:, :, 2:].flatten(1, 2), P[b + "attn.qkv.weight"], P[b + "attn.qkv.bias"])
        qkv = qkv.view(B, T * HW, 3, nh, hd).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        q = rot_blocks(q, [pd, ph, pw], mode)
        k = rot_blocks(k, [pd, ph, pw], mode)

        def merge(c, f):
            c = torch.stack(c, dim=3)  # (B, nh, T, 2, hd)
            return torch.cat([c, f.view(B, nh, T, HW, hd)], dim=3).flatten(2, 3)

        q, k, v = merge(cq, q), merge(ck, k), merge(cv, v)
        sc = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        sc = sc.masked_fill(~allowed, float("-inf"))
        o = (torch.softmax(sc, dim=-1) @ v).transpose(1, 2).reshape(B, L, Dp)
        x = x + F.linear(o, P[b + "attn.proj.weight"], P[b + "attn.proj.bias"])
        h = F.layer_norm(x, (Dp,), P[b + "norm2.weight"], P[b + "norm2.bias"], cfg["eps"])
        h = F.gelu(F.linear(h, P[b + "mlp.fc1.weight"], P[b + "mlp.fc1.bias"]))
        x = x + F.linear(h, P[b + "mlp.fc2.weight"], P[b + "mlp.fc2.bias"])
    x = x.view(B, T, K, Dp)[:, :, 2:].flatten(1, 2)
    x = F.layer_norm(x, (Dp,), P["predictor_norm.weight"], P["predictor_norm.bias"], cfg["eps"])
    return F.linear(x, P["predictor_proj.weight"], P["predictor_proj.bias"])


def ac_loss(cfg, P, h, a, s, variant=None):
    """Teacher forcing + rollout (recipe 6.4). h (B, T*HW, D) normalised; a (B, T-1, A); s (B, T, Sd)."""
    variant = variant or {}
    HW = cfg["grid_h"] * cfg["grid_w"]
    D = cfg["encoder_dim"]
    K = cfg["auto_steps"]

    def step(zz, aa, ss):
        return F.layer_norm(ac_predictor(cfg, P, zz, aa, ss, variant), (D,), eps=cfg["ln_eps"])

    z_tf = step(h[:, :-HW], a, s[:, :-1])
    z1 = z_tf[:, :HW]
    if variant.get("detach_z1"):
        z1 = z1.detach()
    zz = torch.cat([h[:, :HW], z1], dim=1)
    for n in range(1, K):
        nxt = step(zz, a[:, :n + 1], s[:, :n + 1])[:, -HW:]
        zz = torch.cat([zz, nxt], dim=1)
    z_ar = torch.cat([z_tf[:, :HW], zz[:, 2 * HW:]], dim=1)  # [z1 (with grad), z2 .. zK]

    def l1(z):
        return torch.mean(torch.abs(z - h[:, HW:HW + z.shape[1]]))

    l_tf, l_roll = l1(z_tf), l1(z_ar)
    return l_tf + l_roll, l_tf, l_roll, z_tf, zz[:, 2 * HW:]


def rel(a, b):
    return (torch.linalg.norm(a - b) / torch.linalg.norm(b)).item()


def make(out_root):
    cfg = dict(CFG)
    gen = torch.Generator().manual_seed(SEED)
    B, T, D = cfg["batch"], cfg["frames"], cfg["encoder_dim"]
    HW = cfg["grid_h"] * cfg["grid_w"]
    P32 = init_params(cfg, gen)
    h32 = F.layer_norm(torch.randn(B, T * HW, D, generator=gen, dtype=DT), (D,), eps=1e-5).float()
    a32 = (0.5 * torch.randn(B, T - 1, cfg["action_dim"], generator=gen, dtype=DT)).float()
    s32 = torch.randn(B, T, cfg["state_dim"], generator=gen, dtype=DT).float()
    P = {k: v.to(DT).requires_grad_(True) for k, v in P32.items()}
    h, a, s = h32.to(DT), a32.to(DT), s32.to(DT)

    loss, l_tf, l_roll, z_tf, z_rest = ac_loss(cfg, P, h, a, s)
    keys = list(P.keys())
    grads = dict(zip(keys, torch.autograd.grad(loss, [P[k] for k in keys], allow_unused=True)))
    tf_raw = ac_predictor(cfg, {k: v.detach() for k, v in P.items()}, h[:, :-HW], a, s[:, :-1]).detach()

    # ---- self-checks -------------------------------------------------------------------------
    P64 = {k: v.detach() for k, v in P.items()}
    # 1. Block causality: a later action / state / frame never moves an earlier output.
    base = ac_predictor(cfg, P64, h, torch.cat([a, a[:, :1]], 1), s)
    for t in range(1, T):
        a2 = torch.cat([a, a[:, :1]], 1).clone()
        a2[:, t] += 1.0
        o = ac_predictor(cfg, P64, h, a2, s)
        assert torch.equal(o[:, :t * HW], base[:, :t * HW]) and not torch.equal(o[:, t * HW:], base[:, t * HW:])
    # 2. Finite differences on a few parameters.
    worst = 0.0
    for key in ["action_encoder.weight", "state_encoder.bias", "predictor_blocks.0.attn.qkv.weight",
                "predictor_embed.weight", "predictor_blocks.1.mlp.fc2.weight"]:
        for fi in torch.randint(0, P64[key].numel(), (3,), generator=gen).tolist():
            def f(d):
                PP = dict(P64)
                w = PP[key].clone().reshape(-1)
                w[fi] += d
                PP[key] = w.reshape(P64[key].shape)
                return ac_loss(cfg, PP, h, a, s)[0].item()
            fd = (f(1e-6) - f(-1e-6)) / 2e-6
            an = grads[key].reshape(-1)[fi].item()
            worst = max(worst, abs(fd - an) / max(1e-3, abs(an)))
    assert worst < 1e-5, worst
    # 3. The extrinsics encoder is never used.
    assert grads["extrinsics_encoder.weight"] is None and grads["extrinsics_encoder.bias"] is None
    # 4. Sensitivity to each convention.
    sens = {}
    for name, var in [("interleaved RoPE", {"rope": "interleaved"}), ("no mask", {"no_mask": True}),
                      ("cond tokens unrotated", {"cond_no_rope": True}), ("z1 detached", {"detach_z1": True}),
                      ("h and w swapped", {"swap_hw": True})]:
        Pv = {k: v.detach().clone().requires_grad_(True) for k, v in P64.items()}
        lv = ac_loss(cfg, Pv, h, a, s, var)[0]
        gv = torch.autograd.grad(lv, [Pv[k] for k in keys], allow_unused=True)
        d = max(rel(g2, grads[k]) for k, g2 in zip(keys, gv) if g2 is not None and grads[k] is not None)
        sens[name] = (abs(lv.item() - loss.item()), d)
        assert d > 1e-4, (name, d)

    # ---- write -------------------------------------------------------------------------------
    outdir = os.path.join(out_root, "ac_tiny")
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, "config.json"), "w") as fh:
        json.dump(cfg, fh, indent=2)
        fh.write("\n")
    for k, v in P32.items():
        save(os.path.join(outdir, k + ".npy"), v.numpy())
    save(os.path.join(outdir, "features.npy"), h32.numpy())
    save(os.path.join(outdir, "actions.npy"), a32.numpy())
    save(os.path.join(outdir, "states.npy"), s32.numpy())
    save(os.path.join(outdir, "tf_out.npy"), tf_raw.numpy())
    save(os.path.join(outdir, "rollout_z2.npy"), z_rest[:, :HW].detach().numpy())
    save(os.path.join(outdir, "loss.npy"), np.array([loss.item(), l_tf.item(), l_roll.item()]))
    for k in keys:
        g = grads[k] if grads[k] is not None else torch.zeros_like(P[k])
        save(os.path.join(outdir, "grad", k + ".npy"), g.float().numpy())
    print("ac_tiny: L = %.10f (tf %.10f, rollout %.10f); FD worst %.2e" % (loss.item(), l_tf.item(), l_roll.item(), worst))
    for name, (dl, dg) in sens.items():
        print("  sensitivity %-22s |dL| = %.3e, max grad rel change = %.3e" % (name, dl, dg))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    make(args.out)


if __name__ == "__main__":
    main()
