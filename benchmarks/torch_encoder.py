#!/usr/bin/env python3
"""PyTorch 1.13 baseline for bench_encoder: the V-JEPA 2 ViT encoder as the official code runs it
on the CPU.

Run with Debian's PyTorch 1.13 (`/usr/bin/python3`, package python3-torch), which must use OpenBLAS
(package libopenblas0-pthread); with the reference BLAS it reaches ~2 GFLOP/s and every number
below is meaningless. The script measures a 1024^3 matmul first and reports it as
`torch_gemm_gflops` so the caller can tell.

The model follows the official facebookresearch/vjepa2 code (src/models/vision_transformer.py,
src/models/utils/modules.py, src/models/utils/patch_embed.py), written from
shared/reference/recipe_facts.md section 1:
  - PatchEmbed3D: Conv3d(3 -> D), kernel = stride = (2, 16, 16), flatten(2).transpose(1, 2);
  - pre-norm blocks, LayerNorm eps 1e-6, qkv packed Linear(D -> 3D, bias), proj Linear(D -> D);
  - 3-D RoPE on q and k per head, V-JEPA 2 "tiled" pairing (rotate_queries_or_keys), positions
    recomputed inside every attention layer from arange(N) exactly as the official code does;
  - attention by the official explicit path, attn = (q @ k^T) * scale; softmax; @ v. PyTorch 1.13
    has no F.scaled_dot_product_attention, so `use_sdpa=True` cannot run there;
  - MLP fc1 -> exact (erf) GELU -> fc2; final LayerNorm `norm`;
  - init trunc_normal(std 0.02) with absolute bounds +-2, zero biases, residual rescale 1/sqrt(2l).

Usage:
  /usr/bin/python3 benchmarks/torch_encoder.py --model vit_small --frames 16 --size 224 \
      --threads 2 --reps 3 [--backward]
--frames 1 is an image: V-JEPA 2 repeats it over the tubelet (2 frames), so 224^2 gives 196 tokens.

It sets the thread count (torch.set_num_threads, and OMP/OpenBLAS through the environment before
torch is imported), builds the model, runs one warm-up, times `reps` runs and prints ONE JSON line
on stdout:
  forward:           the encoder under torch.no_grad()
  --backward:        forward + backward of loss = out.sum() (parameter gradients reset to None
                     before each run, as optimizer.zero_grad(set_to_none=True) does; the clip
                     does not require grad)
Progress goes to stderr.
"""

import argparse
import json
import math
import os
import statistics
import sys
import time

SHAPES = {
    # name: (embed_dim, depth, heads, mlp_ratio)
    "vit_tiny": (192, 12, 3, 4.0),
    "vit_small": (384, 12, 6, 4.0),
    "vit_base": (768, 12, 12, 4.0),
    "vit_large": (1024, 24, 16, 4.0),
    "vit_huge": (1280, 32, 16, 4.0),
    "vit_giant": (1408, 40, 22, 48.0 / 11.0),  # V-JEPA 2 ViT-g/16 (vit_giant_xformers: mlp 6144)
}


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", choices=sorted(SHAPES), default="vit_small")
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--backward", action="store_true", help="time forward + backward instead of forward")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (GPU baselines, e.g. bench_cuda_step)")
    ap.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32",
                    help="bf16: torch.autocast(bfloat16) around the model, fp32 master weights (the recipe)")
    ap.add_argument("--sdpa", action="store_true",
                    help="F.scaled_dot_product_attention (the official use_sdpa=True path; torch >= 2.0)")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model (torch >= 2.0)")
    return ap.parse_args()


# Run as a script: parse the arguments first, because OpenBLAS and OpenMP read their thread counts
# when the libraries load, so they must be set before torch is imported. Imported as a module (the
# fixture scripts in tools/ reuse VisionTransformer), nothing is parsed or set.
ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(ARGS.threads)

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402


USE_SDPA = bool(ARGS.sdpa) if ARGS is not None else False


def log(msg):
    print("[torch] " + msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------
# The official modules (V-JEPA 2, use_rope=True), CPU path of torch 1.13.
# ---------------------------------------------------------------------------------------------------
def rotate_queries_or_keys(x, pos):
    """V-JEPA 2 rotate_queries_or_keys: the m angles are TILED over the s channels (not a rotation;
    kept because the released weights depend on it)."""
    B, num_heads, N, D = x.size()
    omega = torch.arange(D // 2, dtype=x.dtype, device=x.device)
    omega /= D / 2.0
    omega = 1.0 / 10000**omega  # (D/2,)
    freq = torch.einsum("..., f -> ... f", pos, omega)  # (N, D/2)
    emb_sin = freq.sin()
    emb_cos = freq.cos()
    emb_sin = emb_sin.squeeze(-1).repeat(1, 1, 1, 2)  # (1, 1, N, D): tiled
    emb_cos = emb_cos.squeeze(-1).repeat(1, 1, 1, 2)
    y = x.unflatten(-1, (-1, 2))
    y1, y2 = y.unbind(dim=-1)
    y = torch.stack((-y2, y1), dim=-1)
    y = y.flatten(-2)
    return (x * emb_cos) + (y * emb_sin)


class RoPEAttention(nn.Module):
    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = head_dim = dim // num_heads
        self.scale = head_dim**-0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)
        self.d_dim = int(2 * ((head_dim // 3) // 2))
        self.h_dim = int(2 * ((head_dim // 3) // 2))
        self.w_dim = int(2 * ((head_dim // 3) // 2))

    def separate_positions(self, ids, H_patches, W_patches):
        tokens_per_frame = int(H_patches * W_patches)
        tokens_per_row = W_patches
        frame_ids = ids // tokens_per_frame
        height_ids = (ids - tokens_per_frame * frame_ids) // tokens_per_row
        width_ids = (ids - tokens_per_frame * frame_ids) - tokens_per_row * height_ids
        return 1.0 * frame_ids, 1.0 * height_ids, 1.0 * width_ids

    def forward(self, x, T, H_patches, W_patches, ids=None):
        B, N, C = x.size()
        qkv = self.qkv(x).unflatten(-1, (3, self.num_heads, -1)).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # (B, heads, N, Dh)
        if ids is None:  # every token, in grid order
            ids = torch.arange(int(T * H_patches * W_patches), device=x.device)
        else:  # (B, K) grid indices of a token subset (masks): positions broadcast over the heads
            ids = ids.unsqueeze(1)
        d_mask, h_mask, w_mask = self.separate_positions(ids, H_patches, W_patches)
        s = 0
        qd = rotate_queries_or_keys(q[..., s:s + self.d_dim], pos=d_mask)
        kd = rotate_queries_or_keys(k[..., s:s + self.d_dim], pos=d_mask)
        s += self.d_dim
        qh = rotate_queries_or_keys(q[..., s:s + self.h_dim], pos=h_mask)
        kh = rotate_queries_or_keys(k[..., s:s + self.h_dim], pos=h_mask)
        s += self.h_dim
        qw = rotate_queries_or_keys(q[..., s:s + self.w_dim], pos=w_mask)
        kw = rotate_queries_or_keys(k[..., s:s + self.w_dim], pos=w_mask)
        s += self.w_dim
        if s < self.head_dim:
            q = torch.cat([qd, qh, qw, q[..., s:]], dim=-1)
            k = torch.cat([kd, kh, kw, k[..., s:]], dim=-1)
        else:
            q = torch.cat([qd, qh, qw], dim=-1)
            k = torch.cat([kd, kh, kw], dim=-1)
        if USE_SDPA:  # the official use_sdpa=True path (flash / memory-efficient kernels on a GPU)
            x = F.scaled_dot_product_attention(q, k, v)
        else:
            # The official explicit path (use_sdpa=False); torch 1.13 has no scaled_dot_product_attention.
            attn = (q @ k.transpose(-2, -1)) * self.scale  # (B, heads, N, N)
            attn = attn.softmax(dim=-1)
            x = attn @ v
        x = x.transpose(1, 2).reshape(B, N, C)
        return self.proj(x)


class MLP(nn.Module):
    def __init__(self, in_features, hidden_features):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU()  # exact (erf) GELU
        self.fc2 = nn.Linear(hidden_features, in_features)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = RoPEAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = MLP(dim, int(dim * mlp_ratio))

    def forward(self, x, T, H_patches, W_patches, ids=None):
        x = x + self.attn(self.norm1(x), T=T, H_patches=H_patches, W_patches=W_patches, ids=ids)
        x = x + self.mlp(self.norm2(x))
        return x


class PatchEmbed3D(nn.Module):
    def __init__(self, patch_size=16, tubelet_size=2, in_chans=3, embed_dim=768):
        super().__init__()
        self.proj = nn.Conv3d(in_chans, embed_dim, kernel_size=(tubelet_size, patch_size, patch_size),
                              stride=(tubelet_size, patch_size, patch_size))

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)  # (B, N, D), n = t'·H'W' + h'·W' + w'


class VisionTransformer(nn.Module):
    def __init__(self, embed_dim, depth, num_heads, mlp_ratio, patch_size=16, tubelet_size=2):
        super().__init__()
        self.patch_size, self.tubelet_size = patch_size, tubelet_size
        self.patch_embed = PatchEmbed3D(patch_size, tubelet_size, 3, embed_dim)
        self.blocks = nn.ModuleList([Block(embed_dim, num_heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.apply(self._init_weights)
        for layer_id, layer in enumerate(self.blocks):  # residual rescale
            layer.attn.proj.weight.data.div_(math.sqrt(2.0 * (layer_id + 1)))
            layer.mlp.fc2.weight.data.div_(math.sqrt(2.0 * (layer_id + 1)))

    @staticmethod
    def _init_weights(m):
        if isinstance(m, (nn.Linear, nn.Conv3d)):
            nn.init.trunc_normal_(m.weight, std=0.02)  # absolute bounds a=-2, b=2 (torch default)
            if m.bias is not None:
                nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.LayerNorm):
            nn.init.constant_(m.bias, 0)
            nn.init.constant_(m.weight, 1.0)

    def forward(self, x):
        # A single image, (B, 3, H, W) or a one-frame clip (B, 3, 1, H, W), is V-JEPA 2's image case:
        # the frame is repeated over the tubelet, so it gives one temporal slot of H/16 * W/16 tokens.
        if x.dim() == 4:
            x = x.unsqueeze(2)
        if x.size(2) == 1 and self.tubelet_size > 1:
            x = x.repeat(1, 1, self.tubelet_size, 1, 1)
        T = x.size(2) // self.tubelet_size
        H_patches = x.size(3) // self.patch_size
        W_patches = x.size(4) // self.patch_size
        x = self.patch_embed(x)
        for blk in self.blocks:
            x = blk(x, T=T, H_patches=H_patches, W_patches=W_patches)
        return self.norm(x)


# ---------------------------------------------------------------------------------------------------
def gemm_gflops(n=1024, reps=5, rounds=3):
    """Best of `rounds` timings of `reps` n^3 matmuls (the best filters out other load on the machine)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(2):
        a @ b
    best = 0.0
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(reps):
            a @ b
        best = max(best, 2.0 * n**3 * reps / (time.perf_counter() - t0) / 1e9)
    return best


def loaded_blas():
    """Paths of the BLAS libraries mapped into this process (Debian's torch loads libblas.so.3, which the
    alternatives system points at OpenBLAS or at the reference BLAS)."""
    libs = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1] if len(line.split()) >= 6 else ""
                name = os.path.basename(path)
                if "blas" in name.lower():
                    libs.add(os.path.realpath(path))
    except OSError:
        pass
    return sorted(libs)


def main():
    a = ARGS
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    gflops = gemm_gflops()
    blas = loaded_blas()
    log("torch %s, %d threads, BLAS %s, 1024^3 matmul %.1f GFLOP/s"
        % (torch.__version__, torch.get_num_threads(), ", ".join(blas) or "?", gflops))
    if gflops < 20:
        log("WARNING: %.1f GFLOP/s looks like the reference BLAS; install libopenblas0-pthread" % gflops)

    D, depth, heads, ratio = SHAPES[a.model]
    dev = torch.device(a.device)
    model = VisionTransformer(D, depth, heads, ratio).to(dev)
    clip = torch.randn(a.batch, 3, a.frames, a.size, a.size, device=dev)
    tokens = max(1, a.frames // 2) * (a.size // 16) ** 2  # --frames 1: an image (repeated over the tubelet)
    what = "fwd+bwd" if a.backward else "fwd"
    fn = torch.compile(model) if a.compile else model
    gpu = dev.type == "cuda"

    def sync():
        if gpu:
            torch.cuda.synchronize()

    def run():
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=a.dtype == "bf16"):
            if a.backward:
                for p in model.parameters():
                    p.grad = None
                fn(clip).float().sum().backward()
            else:
                with torch.no_grad():
                    fn(clip)
        sync()

    if a.backward:
        model.train()
    else:
        model.eval()
    times = []
    t_start = time.perf_counter()
    sync()
    for r in range(a.reps + 1 + (2 if a.compile else 0)):
        warm = 1 + (2 if a.compile else 0)  # torch.compile traces / autotunes in its first calls
        label = "warm-up" if r < warm else "rep %d/%d" % (r - warm + 1, a.reps)
        log("%s %s %s ... (elapsed %.0f s)" % (a.model, what, label, time.perf_counter() - t_start))
        t0 = time.perf_counter()
        run()
        dt = time.perf_counter() - t0
        if r >= 1 + (2 if a.compile else 0):
            times.append(dt)
    out = {
        "model": a.model, "frames": a.frames, "size": a.size, "batch": a.batch, "tokens": tokens,
        "threads": torch.get_num_threads(), "backward": bool(a.backward), "reps": a.reps,
        "median_s": statistics.median(times), "min_s": min(times), "times_s": times,
        "torch_version": torch.__version__, "torch_gemm_gflops": gflops, "torch_blas": blas,
        "device": a.device, "dtype": a.dtype, "sdpa": bool(a.sdpa), "compile": bool(a.compile),
    }
    if gpu:
        out["peak_mem_gib"] = torch.cuda.max_memory_allocated() / 2**30
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
