#!/usr/bin/env python3
"""PyTorch baseline for bench_cuda_attention: F.scaled_dot_product_attention in bf16 on the GPU.

For each N in --sizes it builds q, k, v of shape (B, H, N, Dh) with B = max(1, round(tokens / N))
(PyTorch's preferred layout; the jepa kernels read the packed (B, N, 3·H·Dh) buffer instead), no mask,
default scale 1/sqrt(Dh), and times
  forward:   F.scaled_dot_product_attention(q, k, v) under torch.no_grad()
  backward:  torch.autograd.grad(o, (q, k, v), dout, retain_graph=True) on a saved forward
with CUDA events: `warmup` untimed runs, then the median of `reps` timed runs. SDPA picks its own
kernel (FlashAttention-2 on sm_80/sm_90 for these shapes); the one it may use is reported.

Prints ONE JSON line on stdout:
  {"torch": "2.x", "device": "...", "backend": "...", "fwd_ms_2048": ..., "bwd_ms_2048": ..., "batch_2048": ...}
or {"error": "..."} (exit status 2) when torch, CUDA or SDPA is missing. Progress goes to stderr.

Usage:
  python3 benchmarks/torch_attention.py --sizes 2048,8192,18432 --heads 16 --head-dim 64 --tokens 32768 --reps 20
"""

import argparse
import json
import statistics
import sys


def median_ms(torch, fn, warmup, reps):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="2048,8192,18432")
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--head-dim", type=int, default=64)
    ap.add_argument("--tokens", type=int, default=32768)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    args = ap.parse_args()

    try:
        import torch
        import torch.nn.functional as F
    except Exception as e:  # noqa: BLE001 - any import failure means "no baseline"
        print(json.dumps({"error": f"torch not importable: {e}"}))
        return 2
    if not torch.cuda.is_available():
        print(json.dumps({"error": f"torch {torch.__version__} sees no CUDA device"}))
        return 2
    if not hasattr(F, "scaled_dot_product_attention"):
        print(json.dumps({"error": f"torch {torch.__version__} has no scaled_dot_product_attention"}))
        return 2

    # Prefer the flash kernel when this torch can name it; otherwise SDPA's own choice.
    backend = "default dispatch"
    ctx = None
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel

        ctx = lambda: sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION])  # noqa: E731
        backend = "flash (or mem-efficient)"
    except Exception:  # noqa: BLE001
        import contextlib

        ctx = contextlib.nullcontext

    out = {"torch": torch.__version__, "device": torch.cuda.get_device_name(0), "backend": backend}
    h, d = args.heads, args.head_dim
    for n in [int(x) for x in args.sizes.split(",") if x]:
        b = max(1, round(args.tokens / n))
        gen = torch.Generator(device="cuda").manual_seed(n)
        q, k, v = (
            torch.randn(b, h, n, d, device="cuda", dtype=torch.bfloat16, generator=gen).requires_grad_(True)
            for _ in range(3)
        )
        dout = torch.randn(b, h, n, d, device="cuda", dtype=torch.bfloat16, generator=gen)
        with ctx():

            def fwd():
                with torch.no_grad():
                    return F.scaled_dot_product_attention(q, k, v)

            fwd_ms = median_ms(torch, fwd, args.warmup, args.reps)
            o = F.scaled_dot_product_attention(q, k, v)
            bwd_ms = median_ms(
                torch, lambda: torch.autograd.grad(o, (q, k, v), dout, retain_graph=True), args.warmup, args.reps
            )
        out[f"fwd_ms_{n}"] = fwd_ms
        out[f"bwd_ms_{n}"] = bwd_ms
        out[f"batch_{n}"] = b
        print(f"torch_attention: N={n} B={b} fwd {fwd_ms:.3f} ms bwd {bwd_ms:.3f} ms", file=sys.stderr)
        del q, k, v, dout, o
        torch.cuda.empty_cache()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
