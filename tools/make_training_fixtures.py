#!/usr/bin/env python3
"""Generate a float64 reference of a few JEPA TRAINING STEPS (V-JEPA 2 tiny).

This is a plain-PyTorch reference written from recipe_facts.md section 5.1
(AdamW, its parameter groups, scheduler order, EMA). It is not the official
V-JEPA code. The model and the loss are NOT re-implemented here: they come from
tools/make_objective_fixtures.py (imported), and the starting point is that
script's fixture objective_vjepa2_tiny/ (context encoder theta, target encoder
theta_bar, predictor phi, input clip, fixed masks ctx_j/tgt_j, config.json).

S = 3 steps, the SAME clip and the SAME masks at every step. For s = 1, 2, 3:
  1. lr_s, wd_s, m_s from the schedules at s (schedulers step before the
     forward, counter from 1): WarmupCosine(start 1e-4, ref 5.25e-4,
     final 5.25e-4, warmup W = 2, T_max = 10), i.e. lr = start + s/W (ref -
     start) for s < W and the constant ref for s >= W; weight decay constant
     0.04; EMA momentum constant 0.99925.
  2. L = objective(theta_bar, theta, phi) as in the objective fixture (float64,
     from the float32-rounded stored parameters), recorded before the update.
  3. backward; torch.optim.AdamW (betas (0.9, 0.999), eps 1e-8, decoupled
     decay) over the context encoder and the predictor with four groups:
     tensors of ndim >= 2 (weights, conv kernel, mask tokens) get wd_s, tensors
     of ndim 1 (biases, LayerNorm) get 0. lr/weight_decay are set on every group
     before optimizer.step(). The target encoder is not optimised.
  4. EMA after the optimizer step: theta_bar <- m theta_bar + (1 - m) theta.

Parameters that receive no gradient (mask_tokens.1..9: only mask_tokens.0 is
used) keep .grad = None, as in real PyTorch training, so AdamW SKIPS them: no
weight decay and no optimizer state. They are listed in config.json as
"no_grad_params" (their moments are written as zeros).

Output (--out/training_vjepa2_tiny/):
  config.json             schedules, the per-step lr/wd/ema values, AdamW
                          settings, groups, base fixture, no_grad_params
  losses.npy              float64 [S]: loss of each step, before its update
  final_encoder/<key>.npy, final_predictor/<key>.npy,
  final_target_encoder/<key>.npy          float64 parameters after S steps
  exp_avg_encoder/, exp_avg_sq_encoder/,
  exp_avg_predictor/, exp_avg_sq_predictor/   AdamW moments after S steps
                          (computed in float64, stored as float32 to keep the
                          fixture small; zeros for no_grad_params)

Before writing, the script checks that step 1 reproduces the base fixture's
loss and gradients, that torch.optim.AdamW agrees with an independent
transcription of the recipe's update, and that the fixture is sensitive to the
conventions (decoupled decay, the decay groups, the schedule counter, the EMA
order, skipping parameters without gradient). A rerun gives byte-identical
files. Regenerate with:
  /usr/bin/python3 tools/make_training_fixtures.py --out tests/fixtures
"""

import argparse
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_objective_fixtures as objref  # noqa: E402
from make_encoder_fixtures import DT, save  # noqa: E402

BASE = "objective_vjepa2_tiny"
NAME = "training_vjepa2_tiny"
STEPS = 3
LR_SCHEDULE = dict(start=1e-4, ref=5.25e-4, final=5.25e-4, warmup=2, t_max=10)
WD = 0.04
EMA = 0.99925
BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8


def warmup_cosine(s, start, ref, final, warmup, t_max):
    """recipe_facts 5.1 WarmupCosineSchedule at step s (counter from 1)."""
    if s < warmup:
        return start + s / warmup * (ref - start)
    q = (s - warmup) / max(1, t_max - warmup)
    return max(final, final + (ref - final) * 0.5 * (1.0 + math.cos(math.pi * q)))


def schedule(s):
    return warmup_cosine(s, **LR_SCHEDULE), WD, EMA


# --------------------------------------------------------------------------
# The base fixture
# --------------------------------------------------------------------------

def load_base(root):
    d = os.path.join(root, BASE)
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)

    def load_set(sub, shapes):
        files = sorted(n[:-4] for n in os.listdir(os.path.join(d, sub)) if n.endswith(".npy"))
        assert files == sorted(k for k, _ in shapes), (sub, files)
        out = {}
        for k, shape in shapes:  # key order of the model (state-dict order)
            a = np.load(os.path.join(d, sub, k + ".npy"))
            assert a.dtype == np.float32 and a.shape == tuple(shape), (sub, k, a.dtype, a.shape)
            out[k] = torch.from_numpy(a)
        return out

    P32 = load_set("encoder", objref.encoder_shapes(cfg))
    Pbar32 = load_set("target_encoder", objref.encoder_shapes(cfg))
    Q32 = load_set("predictor", objref.predictor_shapes(cfg))
    x32 = torch.from_numpy(np.load(os.path.join(d, "input.npy")))
    assert x32.dtype == torch.float32
    masks = [(torch.from_numpy(np.load(os.path.join(d, "ctx_%d.npy" % j))),
              torch.from_numpy(np.load(os.path.join(d, "tgt_%d.npy" % j))))
             for j in range(cfg["num_generators"])]
    ref = dict(loss=float(np.load(os.path.join(d, "loss.npy"))[0]),
               grad_encoder={k: np.load(os.path.join(d, "grad_encoder", k + ".npy")) for k in P32},
               grad_predictor={k: np.load(os.path.join(d, "grad_predictor", k + ".npy")) for k in Q32})
    return cfg, P32, Pbar32, Q32, x32, masks, ref


# --------------------------------------------------------------------------
# Training steps
# --------------------------------------------------------------------------

def train(cfg, P32, Pbar32, Q32, x, masks, variant=None, manual_adamw=False):
    """S training steps from the float32 parameters, all in float64.

    Returns dict(losses, P, Q, Pbar (float64 tensors), moments {net: {key: (m, v)}},
    no_grad (set of "net/key"), first_grads {net: {key: grad}})."""
    variant = variant or {}
    P = {k: torch.nn.Parameter(v.to(DT).clone()) for k, v in P32.items()}
    Q = {k: torch.nn.Parameter(v.to(DT).clone()) for k, v in Q32.items()}
    Pbar = {k: v.to(DT).clone() for k, v in Pbar32.items()}
    nets = (("encoder", P), ("predictor", Q))

    def decayed(p):
        return p.ndim >= 2 or variant.get("decay_rank1", False)

    groups = []
    for _, net in nets:
        groups.append(dict(params=[p for p in net.values() if decayed(p)], decay=True))
        groups.append(dict(params=[p for p in net.values() if not decayed(p)], decay=False))
    if variant.get("coupled_l2"):
        opt = torch.optim.Adam(groups, lr=0.0, betas=BETAS, eps=ADAM_EPS, weight_decay=0.0,
                               amsgrad=False, foreach=False, maximize=False)
    else:
        opt = torch.optim.AdamW(groups, lr=0.0, betas=BETAS, eps=ADAM_EPS, weight_decay=0.0,
                                amsgrad=False, foreach=False, maximize=False)
    manual = {}  # independent AdamW state: id(p) -> [t, m, v]

    losses, no_grad, first_grads = [], set(), {}
    for s in range(1, STEPS + 1):
        lr, wd, m = schedule(s - 1 if variant.get("counter_from_0") else s)
        if variant.get("no_wd"):
            wd = 0.0
        for g in opt.param_groups:
            g["lr"] = lr
            g["weight_decay"] = wd if g["decay"] else 0.0
        opt.zero_grad(set_to_none=True)
        loss = objref.objective(cfg, Pbar, P, Q, x, masks)[0]
        losses.append(loss.item())
        loss.backward()
        step_no_grad = {"%s/%s" % (n, k) for n, net in nets for k, p in net.items() if p.grad is None}
        assert s == 1 or step_no_grad == no_grad
        no_grad = step_no_grad
        if s == 1:
            first_grads = {n: {k: (p.grad.detach().clone() if p.grad is not None else None)
                               for k, p in net.items()} for n, net in nets}
        if variant.get("zero_grad_unused"):
            for _, net in nets:
                for p in net.values():
                    if p.grad is None:
                        p.grad = torch.zeros_like(p)
        if variant.get("ema_before_step"):
            ema(Pbar, P, m)
        if manual_adamw:
            adamw_manual(opt.param_groups, manual)
        else:
            opt.step()
        if not variant.get("ema_before_step"):
            ema(Pbar, P, m)

    moments = {}
    for n, net in nets:
        moments[n] = {}
        for k, p in net.items():
            if manual_adamw:
                st = manual.get(id(p))
                mv = (st[1], st[2]) if st else None
            else:
                st = opt.state.get(p, {})
                mv = (st["exp_avg"], st["exp_avg_sq"]) if st else None
            if mv is None:
                mv = (torch.zeros_like(p), torch.zeros_like(p))
            moments[n][k] = tuple(t.detach().clone() for t in mv)
    return dict(losses=losses, P={k: v.detach() for k, v in P.items()},
                Q={k: v.detach() for k, v in Q.items()}, Pbar=Pbar, moments=moments,
                no_grad=no_grad, first_grads=first_grads)


def ema(Pbar, P, m):
    with torch.no_grad():
        for k in Pbar:
            Pbar[k].mul_(m).add_(P[k].detach(), alpha=1.0 - m)


def adamw_manual(param_groups, state):
    """The recipe's AdamW written out (PyTorch order), for the cross-check:
    p <- p(1 - lr wd); m <- b1 m + (1-b1) g; v <- b2 v + (1-b2) g^2;
    p <- p - lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps). No gradient -> skipped."""
    b1, b2 = BETAS
    with torch.no_grad():
        for g in param_groups:
            lr, wd = g["lr"], g["weight_decay"]
            for p in g["params"]:
                if p.grad is None:
                    continue
                st = state.setdefault(id(p), [0, torch.zeros_like(p), torch.zeros_like(p)])
                st[0] += 1
                t, mm, vv = st
                grad = p.grad
                p.copy_(p * (1.0 - lr * wd))
                mm.copy_(b1 * mm + (1.0 - b1) * grad)
                vv.copy_(b2 * vv + (1.0 - b2) * grad * grad)
                denom = vv.sqrt() / math.sqrt(1.0 - b2 ** t) + ADAM_EPS
                p.copy_(p - lr / (1.0 - b1 ** t) * (mm / denom))


# --------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------

def nrel(a, b):
    """Norm-wise relative error ||a - b|| / ||b|| (what the C++ test measures)."""
    return (torch.linalg.norm((a - b).reshape(-1)) / max(torch.linalg.norm(b.reshape(-1)).item(), 1e-300)).item()


def worst_change(r, ref):
    """Largest per-tensor norm-wise difference of r's final parameters from ref's."""
    out = {}
    for net in ("P", "Q", "Pbar"):
        out[net] = max(nrel(r[net][k], ref[net][k]) for k in ref[net])
    out["loss"] = max(abs(a - b) / abs(b) for a, b in zip(r["losses"], ref["losses"]))
    return out


def make(root):
    cfg, P32, Pbar32, Q32, x32, masks, base = load_base(root)
    x = x32.to(DT)
    res = train(cfg, P32, Pbar32, Q32, x, masks)

    # Step 1 is the base fixture's loss evaluation.
    assert abs(res["losses"][0] - base["loss"]) <= 1e-14 * abs(base["loss"]), (res["losses"][0], base["loss"])
    g_err = 0.0
    for n, sub in (("encoder", "grad_encoder"), ("predictor", "grad_predictor")):
        for k, g in res["first_grads"][n].items():
            refg = torch.from_numpy(base[sub][k]).to(DT)
            if g is None:
                assert refg.abs().max().item() == 0.0, k
                continue
            g_err = max(g_err, nrel(g, refg))
    assert g_err < 1e-7, g_err  # the base stores float32 gradients
    no_grad = sorted(res["no_grad"])
    assert no_grad == ["predictor/mask_tokens.%d" % i for i in range(1, cfg["num_mask_tokens"])], no_grad

    # torch.optim.AdamW == the recipe's update written out. Not bit-identical: the
    # key-bias entries of the channels RoPE leaves unrotated have a gradient that is
    # zero in exact arithmetic (rounding noise, ~1e-19), and Adam's normalisation
    # turns last-bit differences of that noise into ~1e-15 parameter differences.
    man = train(cfg, P32, Pbar32, Q32, x, masks, manual_adamw=True)
    man_err = worst_change(man, res)
    for net in ("P", "Q", "Pbar"):
        for k in res[net]:
            assert nrel(man[net][k], res[net][k]) < 1e-12, (net, k)
    for n in res["moments"]:
        for k, (m, v) in res["moments"][n].items():
            assert nrel(man["moments"][n][k][0], m) < 1e-12 or m.abs().max() == 0
            assert nrel(man["moments"][n][k][1], v) < 1e-12 or v.abs().max() == 0
    assert man_err["loss"] < 1e-14

    # How far the parameters move, and what each convention changes.
    init = dict(P={k: v.to(DT) for k, v in P32.items()}, Q={k: v.to(DT) for k, v in Q32.items()},
                Pbar={k: v.to(DT) for k, v in Pbar32.items()}, losses=res["losses"])
    owner = {"P": "encoder", "Q": "predictor", "Pbar": "target_encoder"}
    moved = {net: min(nrel(res[net][k], init[net][k]) for k in init[net]
                      if "%s/%s" % (owner[net], k) not in res["no_grad"])
             for net in ("P", "Q", "Pbar")}
    variants = {
        "no weight decay": dict(no_wd=True),
        "weight decay on rank-1 tensors too": dict(decay_rank1=True),
        "Adam with coupled L2 (not AdamW)": dict(coupled_l2=True),
        "schedule counter from 0": dict(counter_from_0=True),
        "EMA before the optimizer step": dict(ema_before_step=True),
        "unused params decayed (zero grad, not None)": dict(zero_grad_unused=True),
    }
    sens = {}
    for label, v in variants.items():
        sens[label] = worst_change(train(cfg, P32, Pbar32, Q32, x, masks, variant=v), res)
    for label, c in sens.items():
        assert max(c["P"], c["Q"], c["Pbar"]) > 1e-6, (label, c)

    # ---- write ----------------------------------------------------------------
    outdir = os.path.join(root, NAME)
    os.makedirs(outdir, exist_ok=True)
    lrs, wds, emas = zip(*[schedule(s) for s in range(1, STEPS + 1)])
    out_cfg = dict(
        base_fixture=BASE, steps=STEPS,
        lr_schedule=dict(kind="WarmupCosine", **LR_SCHEDULE),
        weight_decay=WD, ema_momentum=EMA,
        lr=list(lrs), wd=list(wds), ema=list(emas),
        adamw=dict(betas=list(BETAS), eps=ADAM_EPS, decoupled=True),
        groups="per network: ndim >= 2 -> weight_decay = wd_s; ndim == 1 -> 0",
        order="s = 1..steps: lr/wd/ema at s; loss (before update); backward; AdamW step; "
              "EMA target <- m target + (1 - m) encoder",
        same_clip_and_masks_every_step=True,
        no_grad_params=no_grad,
        no_grad_semantics="grad stays None, so torch.optim.AdamW skips the tensor "
                          "(no weight decay, no moments)",
        dtypes=dict(losses="float64", final="float64", moments="float32 (computed in float64)"),
        losses=res["losses"],
    )
    with open(os.path.join(outdir, "config.json"), "w") as f:
        json.dump(out_cfg, f, indent=2)
        f.write("\n")
    save(os.path.join(outdir, "losses.npy"), np.array(res["losses"], dtype=np.float64))
    for sub, d in (("final_encoder", res["P"]), ("final_predictor", res["Q"]),
                   ("final_target_encoder", res["Pbar"])):
        for k, v in d.items():
            save(os.path.join(outdir, sub, k + ".npy"), v.numpy())
    for n, mom in res["moments"].items():
        for k, (m, v) in mom.items():
            save(os.path.join(outdir, "exp_avg_" + n, k + ".npy"), m.float().numpy())
            save(os.path.join(outdir, "exp_avg_sq_" + n, k + ".npy"), v.float().numpy())

    # ---- report -----------------------------------------------------------------
    print("[%s] from %s, %d steps, lr %s, wd %g, ema %g" % (NAME, BASE, STEPS, list(lrs), WD, EMA))
    print("  losses %s" % ", ".join("%.15g" % v for v in res["losses"]))
    print("  step 1 vs base: loss rel %.2e, gradients (float32-stored) worst rel %.2e"
          % (abs(res["losses"][0] - base["loss"]) / base["loss"], g_err))
    print("  torch.optim.AdamW vs written-out update: params %.2e" % max(man_err["P"], man_err["Q"], man_err["Pbar"]))
    print("  smallest per-tensor change after %d steps: encoder %.3g, predictor %.3g, target %.3g"
          % (STEPS, moved["P"], moved["Q"], moved["Pbar"]))
    print("  no gradient (skipped by AdamW): %s" % no_grad)
    for label, c in sens.items():
        print("  sensitivity %-46s worst tensor: encoder %.3g predictor %.3g target %.3g; loss %.3g"
              % (label, c["P"], c["Q"], c["Pbar"], c["loss"]))
    return outdir


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Write a float64 PyTorch reference of %d JEPA training steps "
                    "(AdamW + schedules + EMA) starting from the %s fixture." % (STEPS, BASE))
    ap.add_argument("--out", default="tests/fixtures",
                    help="fixture root: reads %s/ from it and writes %s/ (default: tests/fixtures)"
                         % (BASE, NAME))
    args = ap.parse_args(argv)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    make(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
