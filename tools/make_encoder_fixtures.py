#!/usr/bin/env python3
"""Generate float64 reference fixtures for the jepa C++ ViT encoder.

This is an independent, plain-PyTorch reference written from the recipe fact
sheet (recipe_facts.md sections 1.1-1.7, 1.5.4 and 10.7-10.8). It is not the
official V-JEPA code.

Two cases are written, each into its own directory under --out:

  vjepa2_tiny/   V-JEPA 2 style: "tiled" RoPE, final LayerNorm `norm`.
  vjepa21_tiny/  V-JEPA 2.1 style: "interleaved" RoPE with interpolate_rope,
                 no final norm, hierarchical taps each through norms_block.j.

Per case:
  config.json
  <state-dict key>.npy             parameters, float32
  input.npy                        clip (B,3,F,H,W), float32
  context_idx.npy                  kept token indices (B,K), int64, sorted rows
  full_tokens.npy, full_block0.npy float64 intermediates of the full run
  {full,masked}_out.npy            (V-JEPA 2)   float64 outputs
  {full,masked}_tap{j}.npy         (V-JEPA 2.1) float64 outputs
  {full,masked}_gout[_tap{j}].npy  float64 cotangents G (loss = sum(out*G))
  {full,masked}_grad_input.npy     float32 d loss / d input (computed in float64)
  {full,masked}_grad/<key>.npy     float32 d loss / d parameter (masked: V-JEPA 2 case only)

The reference is evaluated in float64 from the float32-rounded parameters and
input, so a float32 C++ run sees exactly the same weights.

Regenerate with:
  /usr/bin/python3 tools/make_encoder_fixtures.py --out tests/fixtures
"""

import argparse
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

DT = torch.float64


# --------------------------------------------------------------------------
# 3-D RoPE
# --------------------------------------------------------------------------

def rope_split(head_dim):
    """Channels per axis: s = 2*floor(floor(h_d/3)/2); remainder h_d - 3s."""
    s = 2 * ((head_dim // 3) // 2)
    return s, head_dim - 3 * s


def rope_omega(s):
    m = s // 2
    k = torch.arange(m, dtype=DT)
    return 10000.0 ** (-k / m)


def rope_block(x, pos, mode):
    """Rotate an s-wide channel block.

    x:   (..., L, s)
    pos: broadcastable to (..., L) float positions on this axis
    mode "tiled": channel j uses theta_{j mod m}   (V-JEPA 2)
         "interleaved": channel j uses theta_{j//2} (V-JEPA 2.1)
    """
    s = x.shape[-1]
    m = s // 2
    theta = pos.unsqueeze(-1) * rope_omega(s)  # (..., L, m)
    if mode == "tiled":
        ang = torch.cat([theta, theta], dim=-1)
    elif mode == "interleaved":
        ang = torch.repeat_interleave(theta, 2, dim=-1)
    else:
        raise ValueError(mode)
    pairs = x.unflatten(-1, (m, 2))
    y = torch.stack([-pairs[..., 1], pairs[..., 0]], dim=-1).flatten(-2)
    return x * torch.cos(ang) + y * torch.sin(ang)


def apply_rope(x, pos_d, pos_h, pos_w, mode):
    """x: (B, heads, L, h_d); pos_*: (B, L) float64."""
    s, _ = rope_split(x.shape[-1])
    pd, ph, pw = (p.unsqueeze(1) for p in (pos_d, pos_h, pos_w))  # (B,1,L)
    out = [
        rope_block(x[..., 0:s], pd, mode),
        rope_block(x[..., s:2 * s], ph, mode),
        rope_block(x[..., 2 * s:3 * s], pw, mode),
        x[..., 3 * s:],
    ]
    return torch.cat(out, dim=-1)


def token_positions(idx, Hp, Wp, interp_grid):
    """Grid coordinates (float64) of flat token indices idx (B, L)."""
    hw = Hp * Wp
    d = (idx // hw).to(DT)
    h = ((idx % hw) // Wp).to(DT)
    w = (idx % Wp).to(DT)
    if interp_grid:
        # V-JEPA 2.1 interpolate_rope: spatial coords rescaled to the
        # pretraining grid G0; time never rescaled.
        h = h * (interp_grid - 1) / (Hp - 1)
        w = w * (interp_grid - 1) / (Wp - 1)
    return d, h, w


def golden_rope_checks():
    """Recipe section 10 items 7-8; raises on mismatch."""
    checks = []

    def close(a, b, tol=5e-7):
        assert abs(a - b) <= tol, (a, b)

    assert rope_split(64) == (20, 4)
    assert rope_split(80) == (26, 2)
    assert rope_split(32) == (10, 2)
    assert rope_split(48) == (16, 0)
    checks.append("split h_d 64->20+4, 80->26+2, 32->10+2, 48->16+0")

    om = rope_omega(20)
    exp = [1.0, 0.398107, 0.158489, 0.063096]
    for a, b in zip(om[:4].tolist(), exp):
        close(a, b, 1e-6)
    close(om[9].item(), 0.000251, 1e-6)
    checks.append("omega(20) = [1, 0.398107, 0.158489, 0.063096, ..., 0.000251]")

    pos = torch.ones(1, dtype=DT)
    e0 = torch.zeros(1, 20, dtype=DT)
    e0[0, 0] = 1
    e1 = torch.zeros(1, 20, dtype=DT)
    e1[0, 1] = 1
    expect = {
        ("tiled", 0): (0.540302, 0.387674),
        ("interleaved", 0): (0.540302, 0.841471),
        ("tiled", 1): (-0.841471, 0.921796),
        ("interleaved", 1): (-0.841471, 0.540302),
    }
    for (mode, which), (c0, c1) in expect.items():
        v = rope_block(e0 if which == 0 else e1, pos, mode)[0]
        close(v[0].item(), c0)
        close(v[1].item(), c1)
        checks.append("20-wide, pos=1, e%d, %s -> (%.6f, %.6f)"
                      % (which, mode, v[0].item(), v[1].item()))

    # Norm: interleaved is a rotation, tiled is not.
    g = torch.Generator().manual_seed(123)
    v = torch.randn(1, 20, generator=g, dtype=DT)
    p = torch.full((1,), 3.7, dtype=DT)
    n0 = v.norm().item()
    ni = rope_block(v, p, "interleaved").norm().item()
    nt = rope_block(v, p, "tiled").norm().item()
    close(n0, ni, 1e-12)
    assert abs(n0 - nt) > 1e-6
    checks.append("interleaved preserves norm (%.6f -> %.6f); tiled does not (-> %.6f)"
                  % (n0, ni, nt))

    # Interleaved == GPT-J style complex rotation, written independently.
    x = torch.randn(5, 20, generator=g, dtype=DT)
    pp = torch.arange(5, dtype=DT) * 1.3
    xc = torch.view_as_complex(x.unflatten(-1, (10, 2)).contiguous())
    rot = torch.polar(torch.ones(5, 10, dtype=DT), pp[:, None] * rope_omega(20))
    ref = torch.view_as_real(xc * rot).flatten(-2)
    assert torch.allclose(rope_block(x, pp, "interleaved"), ref, atol=1e-12)
    checks.append("interleaved == complex rotation of (2i, 2i+1) pairs")
    return checks


# --------------------------------------------------------------------------
# Encoder
# --------------------------------------------------------------------------

def param_shapes(cfg):
    D, Hd = cfg["embed_dim"], cfg["mlp_hidden"]
    t, p = cfg["tubelet"], cfg["patch"]
    shapes = [("patch_embed.proj.weight", (D, 3, t, p, p)),
              ("patch_embed.proj.bias", (D,))]
    for i in range(cfg["depth"]):
        b = "blocks.%d." % i
        shapes += [
            (b + "norm1.weight", (D,)), (b + "norm1.bias", (D,)),
            (b + "attn.qkv.weight", (3 * D, D)), (b + "attn.qkv.bias", (3 * D,)),
            (b + "attn.proj.weight", (D, D)), (b + "attn.proj.bias", (D,)),
            (b + "norm2.weight", (D,)), (b + "norm2.bias", (D,)),
            (b + "mlp.fc1.weight", (Hd, D)), (b + "mlp.fc1.bias", (Hd,)),
            (b + "mlp.fc2.weight", (D, Hd)), (b + "mlp.fc2.bias", (D,)),
        ]
    if cfg["final_norm"]:
        shapes += [("norm.weight", (D,)), ("norm.bias", (D,))]
    for j in range(len(cfg["taps"])):
        shapes += [("norms_block.%d.weight" % j, (D,)),
                   ("norms_block.%d.bias" % j, (D,))]
    return shapes


def init_params(cfg, gen, w_std=0.05, qkv_std=0.15, b_std=0.02):
    """Random, non-trivial float32 parameters (seeded)."""
    params = {}
    for key, shape in param_shapes(cfg):
        is_ln = ("norm" in key.split(".")[-2]) or key.startswith("norm")
        if is_ln:
            if key.endswith("weight"):
                v = 1.0 + 0.1 * torch.randn(shape, generator=gen, dtype=DT)
            else:
                v = 0.1 * torch.randn(shape, generator=gen, dtype=DT)
        elif key.endswith("weight"):
            std = qkv_std if "qkv" in key else w_std
            v = std * torch.randn(shape, generator=gen, dtype=DT)
        else:
            v = b_std * torch.randn(shape, generator=gen, dtype=DT)
        params[key] = v.to(torch.float32).contiguous()
    return params


def encoder_forward(cfg, P, x, keep_idx=None, record=None):
    """Plain float64 forward.

    P: dict key -> float64 tensor. x: (B,3,F,H,W) float64.
    keep_idx: None or (B,K) int64 indices of tokens to keep.
    Returns a list of outputs: [norm(x_last)] or [norms_block.j(tap_j)].
    """
    D, nh, eps = cfg["embed_dim"], cfg["num_heads"], cfg["eps"]
    hd = D // nh
    t, p = cfg["tubelet"], cfg["patch"]
    B = x.shape[0]

    z = F.conv3d(x, P["patch_embed.proj.weight"], P["patch_embed.proj.bias"],
                 stride=(t, p, p))
    _, _, Tp, Hp, Wp = z.shape
    N = Tp * Hp * Wp
    z = z.flatten(2).transpose(1, 2)  # (B, N, D), n = t'*H'W' + h'*W' + w'
    if record is not None:
        record["tokens"] = z.detach().clone()

    if keep_idx is None:
        idx = torch.arange(N, dtype=torch.int64).unsqueeze(0).expand(B, N)
    else:
        idx = keep_idx
        z = torch.gather(z, 1, idx.unsqueeze(-1).expand(-1, -1, D))
    L = z.shape[1]
    pos_d, pos_h, pos_w = token_positions(idx, Hp, Wp, cfg["rope_interp_grid"])

    outs = []
    taps = cfg["taps"]
    for i in range(cfg["depth"]):
        b = "blocks.%d." % i
        h = F.layer_norm(z, (D,), P[b + "norm1.weight"], P[b + "norm1.bias"], eps)
        qkv = F.linear(h, P[b + "attn.qkv.weight"], P[b + "attn.qkv.bias"])
        qkv = qkv.reshape(B, L, 3, nh, hd).permute(2, 0, 3, 1, 4)  # (3,B,nh,L,hd)
        q, k, v = qkv[0], qkv[1], qkv[2]
        q = apply_rope(q, pos_d, pos_h, pos_w, cfg["rope"])
        k = apply_rope(k, pos_d, pos_h, pos_w, cfg["rope"])
        a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd), dim=-1)
        o = (a @ v).transpose(1, 2).reshape(B, L, D)
        z = z + F.linear(o, P[b + "attn.proj.weight"], P[b + "attn.proj.bias"])
        h = F.layer_norm(z, (D,), P[b + "norm2.weight"], P[b + "norm2.bias"], eps)
        h = F.gelu(F.linear(h, P[b + "mlp.fc1.weight"], P[b + "mlp.fc1.bias"]))
        z = z + F.linear(h, P[b + "mlp.fc2.weight"], P[b + "mlp.fc2.bias"])
        if record is not None and i == 0:
            record["block0"] = z.detach().clone()
            record["attn0"] = a.detach().clone()
        if i in taps:
            j = taps.index(i)
            outs.append(F.layer_norm(z, (D,), P["norms_block.%d.weight" % j],
                                     P["norms_block.%d.bias" % j], eps))
    if cfg["final_norm"]:
        outs.append(F.layer_norm(z, (D,), P["norm.weight"], P["norm.bias"], eps))
    return outs


def crosscheck_patch_embed(cfg, P, x):
    """Conv3d + row-major flatten == explicit tubelet matmul."""
    t, p = cfg["tubelet"], cfg["patch"]
    B, C, Fr, H, W = x.shape
    Tp, Hp, Wp = Fr // t, H // p, W // p
    tub = x.reshape(B, C, Tp, t, Hp, p, Wp, p).permute(0, 2, 4, 6, 1, 3, 5, 7)
    tub = tub.reshape(B, Tp * Hp * Wp, C * t * p * p)  # (c, frame, row, col)
    ref = tub @ P["patch_embed.proj.weight"].reshape(cfg["embed_dim"], -1).T
    ref = ref + P["patch_embed.proj.bias"]
    rec = {}
    encoder_forward(cfg, P, x, record=rec)
    assert torch.allclose(rec["tokens"], ref, atol=1e-12), "patch embed mismatch"


# --------------------------------------------------------------------------
# Fixture writing
# --------------------------------------------------------------------------

def save(path, arr):
    arr = np.ascontiguousarray(arr)
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.save(path, arr, allow_pickle=False)


def run_and_save(cfg, P32, x32, keep_idx, tag, gen, outdir):
    P = {k: v.to(DT).requires_grad_(True) for k, v in P32.items()}
    x = x32.to(DT).requires_grad_(True)
    rec = {}
    outs = encoder_forward(cfg, P, x, keep_idx=keep_idx,
                           record=rec if tag == "full" else None)
    # Cotangents are rounded to float32 so the C++ float run sees exactly the same G.
    gouts = [torch.randn(o.shape, generator=gen, dtype=DT).float().to(DT) for o in outs]
    loss = sum((o * g).sum() for o, g in zip(outs, gouts))
    keys = list(P.keys())
    grads = torch.autograd.grad(loss, [x] + [P[k] for k in keys])

    if cfg["final_norm"]:
        names = [("%s_out" % tag, "%s_gout" % tag)]
    else:
        names = [("%s_tap%d" % (tag, j), "%s_gout_tap%d" % (tag, j))
                 for j in range(len(cfg["taps"]))]
    assert len(names) == len(outs)
    for (on, gn), o, g in zip(names, outs, gouts):
        save(os.path.join(outdir, on + ".npy"), o.detach().numpy())
        save(os.path.join(outdir, gn + ".npy"), g.numpy())
    # Gradients are stored as float32 (computed in float64): the C++ tolerance on gradients is 1e-4,
    # far above float32 rounding, and this keeps the committed fixtures small.
    save(os.path.join(outdir, "%s_grad_input.npy" % tag), grads[0].float().numpy())
    if tag == "full" or not cfg["taps"]:
        for k, gr in zip(keys, grads[1:]):
            save(os.path.join(outdir, "%s_grad" % tag, k + ".npy"), gr.float().numpy())
    if tag == "full":
        save(os.path.join(outdir, "full_tokens.npy"), rec["tokens"].numpy())
        save(os.path.join(outdir, "full_block0.npy"), rec["block0"].numpy())
    return outs, grads, rec


def finite_difference_check(cfg, P32, x32, keep_idx, gen):
    """Spot-check autograd against central differences (float64)."""
    P = {k: v.to(DT) for k, v in P32.items()}
    x = x32.to(DT)
    outs = encoder_forward(cfg, P, x, keep_idx=keep_idx)
    # Cotangents are rounded to float32 so the C++ float run sees exactly the same G.
    gouts = [torch.randn(o.shape, generator=gen, dtype=DT).float().to(DT) for o in outs]

    def loss_fn(PP, xx):
        oo = encoder_forward(cfg, PP, xx, keep_idx=keep_idx)
        return sum((o * g).sum() for o, g in zip(oo, gouts))

    Pg = {k: v.clone().requires_grad_(True) for k, v in P.items()}
    xg = x.clone().requires_grad_(True)
    keys = ["patch_embed.proj.weight", "blocks.0.attn.qkv.weight",
            "blocks.%d.mlp.fc1.bias" % (cfg["depth"] - 1)]
    keys += [k for k in P if k.startswith("norm")][:1]
    gr = torch.autograd.grad(loss_fn(Pg, xg), [xg] + [Pg[k] for k in keys])
    eps = 1e-6
    worst = 0.0
    for target, g in zip([None] + keys, gr):
        base = x if target is None else P[target]
        flat_n = base.numel()
        picks = torch.randint(0, flat_n, (3,), generator=gen).tolist()
        for fi in picks:
            def perturbed(delta):
                b2 = base.clone().reshape(-1)
                b2[fi] += delta
                b2 = b2.reshape(base.shape)
                if target is None:
                    return loss_fn(P, b2)
                PP = dict(P)
                PP[target] = b2
                return loss_fn(PP, x)
            fd = (perturbed(eps) - perturbed(-eps)).item() / (2 * eps)
            an = g.reshape(-1)[fi].item()
            err = abs(fd - an) / max(1.0, abs(an))
            worst = max(worst, err)
    assert worst < 1e-6, "finite difference mismatch %g" % worst
    return worst


CASES = {
    "vjepa2_tiny": dict(
        embed_dim=64, depth=2, num_heads=2, mlp_hidden=256, tubelet=2, patch=8,
        batch=2, frames=4, height=32, width=32, rope="tiled",
        rope_interp_grid=0, taps=[], final_norm=True, eps=1e-6),
    "vjepa21_tiny": dict(
        embed_dim=96, depth=4, num_heads=3, mlp_hidden=384, tubelet=2, patch=8,
        batch=2, frames=4, height=32, width=48, rope="interleaved",
        rope_interp_grid=32, taps=[0, 1, 2, 3], final_norm=False, eps=1e-6),
}
SEEDS = {"vjepa2_tiny": 20250001, "vjepa21_tiny": 20250002}


def make_case(name, cfg, out_root, verbose=True):
    cfg = dict(cfg)
    N = ((cfg["frames"] // cfg["tubelet"]) * (cfg["height"] // cfg["patch"])
         * (cfg["width"] // cfg["patch"]))
    K = N // 2
    cfg["num_keep"] = K
    outdir = os.path.join(out_root, name)
    os.makedirs(outdir, exist_ok=True)

    torch.manual_seed(SEEDS[name])
    gen = torch.Generator().manual_seed(SEEDS[name])
    P32 = init_params(cfg, gen)
    B = cfg["batch"]
    x32 = torch.randn(B, 3, cfg["frames"], cfg["height"], cfg["width"],
                      generator=gen, dtype=DT).to(torch.float32)
    keep = torch.stack([torch.sort(torch.randperm(N, generator=gen)[:K]).values
                        for _ in range(B)]).to(torch.int64)
    assert not torch.equal(keep[0], keep[1])

    with open(os.path.join(outdir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    for k, v in P32.items():
        save(os.path.join(outdir, k + ".npy"), v.numpy())
    save(os.path.join(outdir, "input.npy"), x32.numpy())
    save(os.path.join(outdir, "context_idx.npy"), keep.numpy())

    full_outs, _, rec = run_and_save(cfg, P32, x32, None, "full", gen, outdir)
    masked_outs, _, _ = run_and_save(cfg, P32, x32, keep, "masked", gen, outdir)

    # Self-checks (separate generator so fixture RNG stream is unaffected).
    chk = torch.Generator().manual_seed(SEEDS[name] + 7)
    P64 = {k: v.to(DT) for k, v in P32.items()}
    crosscheck_patch_embed(cfg, P64, x32.to(DT))
    # Masking changes outputs (context is smaller) but not shapes.
    for fo, mo in zip(full_outs, masked_outs):
        assert fo.shape == (B, N, cfg["embed_dim"])
        assert mo.shape == (B, K, cfg["embed_dim"])
    # Keeping every token in the masked path reproduces the full run.
    allidx = torch.arange(N).unsqueeze(0).expand(B, N).contiguous()
    for fo, ao in zip(full_outs, encoder_forward(cfg, P64, x32.to(DT), allidx)):
        assert torch.allclose(fo.detach(), ao, atol=1e-12)
    # The fixture must be sensitive to the RoPE variant, to interpolation
    # and to the positions of kept tokens (guards against degenerate data).
    def rel_change(**over):
        c2 = dict(cfg, **over)
        alt = encoder_forward(c2, P64, x32.to(DT), keep)
        return max(((a - m.detach()).abs().max() / m.detach().abs().max()).item()
                   for a, m in zip(alt, masked_outs))
    other = "interleaved" if cfg["rope"] == "tiled" else "tiled"
    assert rel_change(rope=other) > 1e-2
    if cfg["rope_interp_grid"]:
        assert rel_change(rope_interp_grid=0) > 1e-2
    gathered = torch.gather(full_outs[-1].detach(), 1,
                            keep.unsqueeze(-1).expand(-1, -1, cfg["embed_dim"]))
    assert (gathered - masked_outs[-1].detach()).abs().max() > 1e-2
    fd = finite_difference_check(cfg, P32, x32, keep, chk)

    if verbose:
        a = rec["attn0"]
        ent = -(a * a.clamp_min(1e-300).log()).sum(-1).mean().item()
        print("[%s] N=%d K=%d  tokens std %.3f  block0 std %.3f  "
              "attn0 entropy %.3f (uniform %.3f) max %.3f  out std %.3f  "
              "fd rel err %.1e"
              % (name, N, K, rec["tokens"].std().item(), rec["block0"].std().item(),
                 ent, math.log(N), a.max().item(),
                 full_outs[-1].detach().std().item(), fd))
    return outdir


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Write float64 PyTorch reference fixtures for the jepa "
                    "ViT encoder (V-JEPA 2 tiled RoPE + final norm; V-JEPA 2.1 "
                    "interleaved/interpolated RoPE + norms_block taps).")
    ap.add_argument("--out", default="tests/fixtures",
                    help="output root directory (default: tests/fixtures)")
    ap.add_argument("--case", choices=sorted(CASES), action="append",
                    help="only write this case (repeatable; default: all)")
    args = ap.parse_args(argv)

    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    for c in golden_rope_checks():
        print("golden RoPE ok:", c)
    for name in (args.case or sorted(CASES)):
        make_case(name, CASES[name], args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
