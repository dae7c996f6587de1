#!/usr/bin/env python3
"""PyTorch baseline for bench_cuda_step: one V-JEPA 2.1 training step of the ViT-L/16 recipe model.

The same work as jepa's train::CudaStep on models::presets::vjepa2_1<vit_large>:
  - encoder: the ViT of benchmarks/torch_encoder.py (the official block: pre-norm, packed qkv, 3-D
    RoPE, exact GELU, SDPA) with the 2.1 outputs: four hierarchical taps (blocks 5, 11, 17, 23), each
    through its own LayerNorm (norms_block), concatenated along channels -> (B, K, 4D), plus the video
    modality embedding. (The RoPE code is torch_encoder.py's V-JEPA 2 pairing; the 2.1 interleaved
    pairing costs the same.)
  - target encoder: the same network (an EMA copy) on all N tokens under no_grad, then the non-affine
    LayerNorm per D-wide level chunk;
  - context encoder on each generator's Kc context tokens; predictor (12 blocks, width 384, 12 heads,
    fusion MLP 4D -> D -> 384, mask token, modality embedding, tokens sorted by grid index, then
    predictor_proj and predictor_proj_context to 4D);
  - loss: L1 on the targets + lambda * distance-weighted L1 on the context tokens, averaged over the
    generators; backward; AdamW (fused); EMA of the target encoder (torch._foreach_lerp_).
Precision: fp32 master weights under torch.autocast(bfloat16) with F.scaled_dot_product_attention,
as the official trainer runs. Masks: for timing, each generator's rows are a random disjoint split
of the grid with the lengths given (the step's cost depends on the lengths only); they are drawn
once, so the step has static shapes (torch.compile compiles it once).

Usage:
  python3 benchmarks/torch_train_step.py --batch 8 --context 600,120 --targets 1400,1920 --reps 10 [--compile]
Prints ONE JSON line on stdout (median_s, ...); progress on stderr.
"""

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--context", default="600,120", help="Kc per mask generator, comma-separated")
    ap.add_argument("--targets", default="1400,1920", help="Kt per mask generator, comma-separated")
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--model", default="vit_large", help="encoder shape (torch_encoder.SHAPES)")
    ap.add_argument("--pred-depth", type=int, default=12)
    ap.add_argument("--pred-dim", type=int, default=384)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", choices=["fp32", "bf16"], default="bf16")
    ap.add_argument("--no-sdpa", action="store_true")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--threads", type=int, default=4)
    return ap.parse_args()


ARGS = parse_args()
os.environ.setdefault("OMP_NUM_THREADS", str(ARGS.threads))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import torch_encoder as te  # noqa: E402

te.USE_SDPA = not ARGS.no_sdpa


def log(msg):
    print("[torch step] " + msg, file=sys.stderr, flush=True)


def default_taps(depth):
    if depth == 48:
        return [11, 23, 37, 47]
    return [depth // 4 - 1, depth // 2 - 1, 3 * depth // 4 - 1, depth - 1]


class Encoder21(nn.Module):
    def __init__(self, D, depth, heads, ratio):
        super().__init__()
        self.vit = te.VisionTransformer(D, depth, heads, ratio)
        self.taps = default_taps(depth)
        self.norms_block = nn.ModuleList([nn.LayerNorm(D, eps=1e-6) for _ in self.taps])
        self.video_mod_embed = nn.Parameter(torch.zeros(1, 1, D))

    def forward(self, clip, keep=None):
        v = self.vit
        T, Hp, Wp = clip.size(2) // v.tubelet_size, clip.size(3) // v.patch_size, clip.size(4) // v.patch_size
        x = v.patch_embed(clip)
        if keep is not None:
            x = torch.gather(x, 1, keep.unsqueeze(-1).expand(-1, -1, x.size(-1)))
        x = x + self.video_mod_embed
        outs = []
        for i, blk in enumerate(v.blocks):
            x = blk(x, T=T, H_patches=Hp, W_patches=Wp, ids=keep)
            if i in self.taps:
                outs.append(self.norms_block[self.taps.index(i)](x))
        return torch.cat(outs, dim=-1), (T, Hp, Wp)


class Predictor21(nn.Module):
    def __init__(self, D, Dp, depth, heads, levels=4):
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(levels * D, D), nn.GELU(), nn.Linear(D, Dp))
        self.mask_token = nn.Parameter(torch.zeros(1, 1, Dp))
        self.video_mod_embed = nn.Parameter(torch.zeros(1, 1, Dp))
        self.blocks = nn.ModuleList([te.Block(Dp, heads, 4.0) for _ in range(depth)])
        self.norm = nn.LayerNorm(Dp, eps=1e-6)
        self.proj = nn.Linear(Dp, levels * D)
        self.proj_context = nn.Linear(Dp, levels * D)

    def forward(self, z, ctx, tgt, grid):
        T, Hp, Wp = grid
        B, Kc = ctx.shape
        Kt = tgt.size(1)
        xc = self.embed(z)
        xt = self.mask_token.expand(B, Kt, -1).to(xc.dtype)
        x = torch.cat([xc, xt], dim=1)
        ids = torch.cat([ctx, tgt], dim=1)
        order = torch.argsort(ids, dim=1)
        x = torch.gather(x, 1, order.unsqueeze(-1).expand(-1, -1, x.size(-1)))
        ids = torch.gather(ids, 1, order)
        x = x + self.video_mod_embed
        for blk in self.blocks:
            x = blk(x, T=T, H_patches=Hp, W_patches=Wp, ids=ids)
        x = self.norm(x)
        inv = torch.argsort(order, dim=1)
        x = torch.gather(x, 1, inv.unsqueeze(-1).expand(-1, -1, x.size(-1)))
        return self.proj(x[:, Kc:]), self.proj_context(x[:, :Kc])


def gather_rows(h, idx):
    return torch.gather(h, 1, idx.unsqueeze(-1).expand(-1, -1, h.size(-1)))


def main():
    a = ARGS
    dev = torch.device(a.device)
    torch.manual_seed(0)
    D, depth, heads, ratio = te.SHAPES[a.model]
    kcs = [int(v) for v in a.context.split(",")]
    kts = [int(v) for v in a.targets.split(",")]
    if len(kcs) != len(kts):
        raise SystemExit("--context and --targets need one length per generator")
    T, Hp, Wp = a.frames // 2, a.size // 16, a.size // 16
    N = T * Hp * Wp
    B = a.batch
    enc = Encoder21(D, depth, heads, ratio).to(dev)
    tgt_enc = Encoder21(D, depth, heads, ratio).to(dev)
    tgt_enc.load_state_dict(enc.state_dict())
    for p in tgt_enc.parameters():
        p.requires_grad_(False)
    pred = Predictor21(D, a.pred_dim, a.pred_depth, a.pred_dim // 32).to(dev)
    params = list(enc.parameters()) + list(pred.parameters())
    fused = dev.type == "cuda"
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.04, **({"fused": True} if fused else {}))
    clip = torch.randn(B, 3, a.frames, a.size, a.size, device=dev)
    masks = []
    for kc, kt in zip(kcs, kts):
        if kc + kt > N:
            raise SystemExit("Kc + Kt = %d exceeds the %d tokens of the grid" % (kc + kt, N))
        perm = torch.stack([torch.randperm(N, device=dev) for _ in range(B)])
        ctx, tgt = perm[:, :kc].sort(dim=1).values, perm[:, kc:kc + kt].sort(dim=1).values
        omega = torch.rand(B, kc, device=dev) + 0.5  # 1/sqrt(dist) weights: values irrelevant to the cost
        masks.append((ctx, tgt, omega))
    enc_f = torch.compile(enc) if a.compile else enc
    tgt_f = torch.compile(tgt_enc) if a.compile else tgt_enc
    pred_f = torch.compile(pred) if a.compile else pred
    enc_params = list(enc.parameters())
    tgt_params = list(tgt_enc.parameters())
    lam, m = 0.5, 0.99925
    gpu = dev.type == "cuda"

    def step():
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=a.dtype == "bf16"):
            with torch.no_grad():
                h, _ = tgt_f(clip)
                h = F.layer_norm(h.float().unflatten(-1, (4, D)), (D,)).flatten(-2)
            loss = 0.0
            for ctx, tgt, omega in masks:
                z, grid = enc_f(clip, ctx)
                pt, pc = pred_f(z, ctx, tgt, grid)
                lt = (pt.float() - gather_rows(h, tgt)).abs().mean()
                lc = ((pc.float() - gather_rows(h, ctx)).abs().mean(-1) * omega).mean()
                loss = loss + (lt + lam * lc) / len(masks)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        with torch.no_grad():
            if hasattr(torch, "_foreach_lerp_"):
                torch._foreach_lerp_(tgt_params, enc_params, 1.0 - m)
            else:  # torch < 2.0
                for t, o in zip(tgt_params, enc_params):
                    t.lerp_(o, 1.0 - m)
        if gpu:
            torch.cuda.synchronize()
        return float(loss)

    warm = 2 + (2 if a.compile else 0)
    times = []
    t_start = time.perf_counter()
    for r in range(warm + a.reps):
        log("%s (elapsed %.0f s)" % ("warm-up" if r < warm else "rep %d/%d" % (r - warm + 1, a.reps),
                                     time.perf_counter() - t_start))
        t0 = time.perf_counter()
        loss = step()
        if r >= warm:
            times.append(time.perf_counter() - t0)
    out = {"batch": B, "context": kcs, "targets": kts, "tokens": N, "model": a.model, "reps": a.reps,
           "median_s": statistics.median(times), "min_s": min(times), "loss": loss,
           "torch_version": torch.__version__, "torch_gemm_gflops": 0, "device": a.device, "dtype": a.dtype,
           "sdpa": not a.no_sdpa, "compile": bool(a.compile)}
    if gpu:
        out["peak_mem_gib"] = torch.cuda.max_memory_allocated() / 2**30
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
