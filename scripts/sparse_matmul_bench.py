"""Does a sparse kernel pay for COMIX's widest layer on this CPU? Times, in one process and one
torch thread, the 400 × 400 `fc2` applied to the rows one target CEM call scores (16 samples ×
100 transitions × 10 agents on the Swimmer preset) as a masked dense `linear` (what training
runs) against torch's CSR sparse matmul at the densities MAST gives that layer (uniform 10%,
ERK 4.4%). Masks save FLOPs in the accounting; this says whether they save time here.

    python scripts/sparse_matmul_bench.py [--rows 16000] [--reps 10]
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch


def thread_ms(fn, reps: int) -> float:
    """Median thread CPU time of fn() over reps calls, after one warm-up call (ms)."""
    fn()
    times = []
    for _ in range(reps):
        t = time.thread_time()
        fn()
        times.append(time.thread_time() - t)
    return sorted(times)[len(times) // 2] * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=16 * 100 * 10)
    ap.add_argument("--width", type=int, default=400)
    ap.add_argument("--densities", type=float, nargs="+", default=[1.0, 0.10, 0.044])
    ap.add_argument("--reps", type=int, default=10)
    args = ap.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(args.rows, args.width, generator=gen)
    xt = x.t().contiguous()
    print("| density | masked dense linear, ms | CSR @ xᵀ, ms | CSR / dense | max abs diff |")
    print("|---|---|---|---|---|")
    for density in args.densities:
        keep = torch.rand(args.width, args.width, generator=gen) < density
        w = torch.randn(args.width, args.width, generator=gen) * keep
        w_csr = w.to_sparse_csr()
        dense = thread_ms(lambda w=w: torch.nn.functional.linear(x, w), args.reps)
        sparse = thread_ms(lambda w_csr=w_csr: torch.sparse.mm(w_csr, xt), args.reps)
        diff = (torch.sparse.mm(w_csr, xt).t() - torch.nn.functional.linear(x, w)).abs().max()
        print(f"| {density:g} | {dense:.1f} | {sparse:.1f} | {sparse / dense:.2f}x | "
              f"{diff.item():.1e} |")


if __name__ == "__main__":
    main()
