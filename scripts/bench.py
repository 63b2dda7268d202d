"""`make bench`: the throughput figures quoted in the README, measured side by side in one process
(this machine is shared and noisy, so only same-process ratios are trusted).

  1. learner update, ms per update, for qmix / wqmix / res × dense / mast on the same sampled
     batches: the fast path, the step-by-step reference (`QLearner.fast_path = False`, the path
     before issue 12), on CUDA the fast path replayed from CUDA graphs (`cuda_graphs=true`,
     one capture per padded length in the warm-up) and, for QMIX, a PyMARL-style update
     (`scripts/pymarl_reference.py`), in
     alternating blocks (each MAST block holds one topology update); ATen ops per update (torch
     profiler), matmul GFLOP per update (torch's FlopCounterMode) and achieved GFLOP/s against a
     1024² sgemm in the same process;
  2. runner alone: env steps/s of ε-greedy rollouts on SMAX;
  3. full training runs (collect → update → evaluate), fast vs reference: env steps/s end to end.
On the CPU the update times are thread CPU time (robust to other jobs on the cores; wall time is
kept in the JSON); on CUDA, synchronised wall time. Writes `reports/bench.json`, prints Markdown.
Never asserted in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
os.environ.setdefault("WANDB_MODE", "disabled")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402

import mast.config  # noqa: E402, F401
from mast._quiet import fd_to_devnull  # noqa: E402
from mast.envs import make_env  # noqa: E402
from mast.learners import build_learner  # noqa: E402
from mast.learners.base import QLearner, Widths  # noqa: E402
from mast.modules import fused_gru  # noqa: E402
from mast.replay import collate  # noqa: E402
from mast.runner import EpisodeRunner  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pymarl_reference import PyMARLQMIX  # noqa: E402

CONF = str(Path(__file__).resolve().parents[1] / "conf")


def sync(dev: torch.device) -> None:
    """CUDA kernels run asynchronously: wait for them before reading the clock."""
    if dev.type == "cuda":
        torch.cuda.synchronize()


def config(*overrides: str):
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose("config", overrides=["wandb.mode=disabled", "progress=none", *overrides])


def sgemm_gflops(dev: torch.device, size: int = 1024, reps: int = 10) -> float:
    """Best of `reps` 1024² float32 matmuls: the machine's matmul roof in this process."""
    a, b = torch.randn(size, size, device=dev), torch.randn(size, size, device=dev)
    best = float("inf")
    for _ in range(reps):
        sync(dev)
        start = time.perf_counter()
        a @ b
        sync(dev)
        best = min(best, time.perf_counter() - start)
    return 2 * size ** 3 / best / 1e9


def sample_batches(cfg, dev: torch.device, n_batches: int = 8) -> list:
    """32-episode batches drawn from 64 random-policy episodes (the same for every learner)."""
    env = make_env(cfg, 32, 0)
    learner = build_learner(cfg, env.spec, dev, Widths.from_config(cfg), 0.0)
    runner = EpisodeRunner(env, learner, env.spec, dev, 0)
    episodes = runner.run(1.0)[0] + runner.run(1.0)[0]
    rng = np.random.default_rng(0)
    return [collate([episodes[i] for i in rng.choice(64, 32, replace=False)], dev)
            for _ in range(n_batches)], env.spec


def count_ops_and_flops(update, batch) -> tuple[int, float]:
    """(ATen ops, matmul GFLOP) of one update: every aten:: call the profiler records, nested
    ones included (as the issue counted), and FlopCounterMode's forward + backward matmuls."""
    from torch.profiler import ProfilerActivity, profile
    from torch.utils.flop_counter import FlopCounterMode

    with fd_to_devnull(2), profile(activities=[ProfilerActivity.CPU]) as prof:
        update(batch, 0)  # stderr off: the profiler's C++ side logs two "USDT:" lines per use
    ops = sum(1 for e in prof.events() if e.name.startswith("aten::"))
    with FlopCounterMode(display=False) as fc:
        update(batch, 0)
    return ops, fc.get_total_flops() / 1e9


def time_blocks(updates: dict, batches: list, rounds: int, block: int,
                dev: torch.device) -> dict:
    """Median ms per update of each callable over `rounds` alternating blocks of `block`."""
    cpu = {k: [] for k in updates}
    wall = {k: [] for k in updates}
    for _ in range(rounds):
        for name, update in updates.items():
            sync(dev)
            c0, w0 = time.thread_time(), time.perf_counter()
            for k in range(block):
                update(batches[k % len(batches)], 0)
            sync(dev)
            cpu[name].append((time.thread_time() - c0) / block * 1e3)
            wall[name].append((time.perf_counter() - w0) / block * 1e3)
    return {k: {"cpu_ms": statistics.median(cpu[k]), "wall_ms": statistics.median(wall[k])}
            for k in updates}


def build(cfg, spec, dev: torch.device, sparsity: float, fast: bool,
          graphs: bool = False) -> QLearner:
    torch.manual_seed(0)
    learner = build_learner(cfg, spec, dev, Widths.from_config(cfg), sparsity)
    learner.fast_path = fast
    if graphs:  # CUDA-graph replay per padded length (what `cuda_graphs=true` trains with)
        learner.enable_graphs()
    return learner


def python_recurrence(update):
    """The fast path with the Python GRU recurrence instead of the C++ one (what the GPU runs)."""
    def run(batch, t_env):
        with fused_gru.disabled():
            return update(batch, t_env)
    return run


def bench_algo(algo: str, args, batches, spec, dev: torch.device) -> dict:
    """Fast vs reference (and PyMARL-style for QMIX), dense and MAST, on the same batches."""
    updates = {}
    for method in ("dense", "mast"):
        cfg = config(f"algo={algo}", f"method={method}", f"env.map={args.map}",
                     f"sparsity={args.sparsity}", f"method.update_interval_episodes={args.block}")
        s = args.sparsity if method == "mast" else 0.0
        for fast in (True, False):
            updates[f"{method}/{'fast' if fast else 'reference'}"] = build(cfg, spec, dev, s, fast).update
        if dev.type == "cuda":
            updates[f"{method}/graphs"] = build(cfg, spec, dev, s, True, graphs=True).update
        if method == "dense":
            updates["dense/python-gru"] = python_recurrence(build(cfg, spec, dev, 0.0, True).update)
        if algo == "qmix" and method == "dense":
            updates["dense/pymarl"] = PyMARLQMIX(build(cfg, spec, dev, 0.0, True)).update
    for name, update in updates.items():  # warm-up (graphs: one capture per padded length)
        for batch in batches if name.endswith("/graphs") else batches[:1]:
            update(batch, 0)
    out = time_blocks(updates, batches, args.rounds, args.block, dev)
    for name, update in updates.items():
        out[name]["aten_ops"], out[name]["gflop"] = count_ops_and_flops(update, batches[1])
        if name.endswith("/graphs"):  # a replay is one launch: count the recorded matmuls
            out[name]["gflop"] = out[name.replace("graphs", "fast")]["gflop"]
        out[name]["gflop_per_s"] = out[name]["gflop"] / (out[name]["cpu_ms"
                                                         if dev.type == "cpu" else "wall_ms"] / 1e3)
    return out


def bench_runner(cfg, n_envs_list: list[int], calls: int, dev: torch.device) -> dict:
    """Env steps/s of rollouts with a dense agent at ε = 0.5 (compile excluded)."""
    out = {}
    for n_envs in n_envs_list:
        env = make_env(cfg, n_envs, 0)
        learner = build_learner(cfg, env.spec, dev, Widths.from_config(cfg), 0.0)
        runner = EpisodeRunner(env, learner, env.spec, dev, 0)
        runner.run(0.5)  # compile
        steps, start = 0, time.perf_counter()
        for _ in range(calls):
            steps += runner.run(0.5)[1].env_steps
        out[n_envs] = steps / (time.perf_counter() - start)
    return out


def bench_training(algo: str, t_max: int, dev: torch.device, fast: bool,
                   graphs: bool = False) -> dict:
    """One dense training run (paper semantics: one update per episode, batch 32), incl. JAX
    compile; `fast` False trains on the reference path, `graphs` with `cuda_graphs=true`."""
    from mast.experiment import Experiment

    QLearner.fast_path = fast
    try:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = config(f"algo={algo}", "method=dense", f"device={dev.type}", f"t_max={t_max}",
                         f"test_interval={t_max // 4}", f"results_dir={tmp}",
                         f"checkpoint_interval={t_max}", f"cuda_graphs={str(graphs).lower()}")
            start = time.perf_counter()
            result = Experiment(cfg).run()
            wall = time.perf_counter() - start
            rows = [json.loads(line) for line in
                    (Path(tmp) / result["run_id"] / "metrics.jsonl").read_text().splitlines()]
    finally:
        QLearner.fast_path = True
    timed = [r for r in rows if "timing/wall_s" in r]
    first, last = timed[0], timed[-1]  # after the first evaluation: JAX compile and set-up done
    steady = (last["t_env"] - first["t_env"]) / max(last["timing/wall_s"] - first["timing/wall_s"],
                                                    1e-9)
    return {"t_max": t_max, "wall_s": wall, "env_steps_per_s": t_max / wall,
            "steady_env_steps_per_s": steady, "final_win_rate": result["final_win_rate"]}


def print_report(r: dict, args) -> None:
    key = "cpu_ms" if args.device == "cpu" else "wall_ms"
    print(f"\n| update, {args.map}, batch 32, torch on {args.device} ({r['torch_threads']} thread) "
          f"| ms fast | ms reference | reference / fast | ATen ops fast / ref | GFLOP fast "
          f"| GFLOP/s fast |\n|---|---|---|---|---|---|---|")
    for algo, res in r["updates"].items():
        for method in ("dense", "mast"):
            f, ref = res[f"{method}/fast"], res[f"{method}/reference"]
            print(f"| {algo} {method} | {f[key]:.1f} | {ref[key]:.1f} | {ref[key] / f[key]:.2f}x | "
                  f"{f['aten_ops']:,} / {ref['aten_ops']:,} | {f['gflop']:.2f} "
                  f"| {f['gflop_per_s']:.0f} |")
        for method in ("dense", "mast"):
            if f"{method}/graphs" in res:
                g, f = res[f"{method}/graphs"], res[f"{method}/fast"]
                print(f"| {algo} {method}, fast path replayed from CUDA graphs | {g[key]:.1f} | | "
                      f"**fast / graphs {f[key] / g[key]:.2f}x** | {g['aten_ops']:,} | "
                      f"{g['gflop']:.2f} | {g['gflop'] / (g[key] / 1e3):.0f} |")
        if "dense/python-gru" in res:
            p, f = res["dense/python-gru"], res["dense/fast"]
            print(f"| {algo} dense, fast path with the Python GRU loop (GPU's) | {p[key]:.1f} | | "
                  f"Python loop / C++ {p[key] / f[key]:.2f}x | {p['aten_ops']:,} | "
                  f"{p['gflop']:.2f} | {p['gflop_per_s']:.0f} |")
        if "dense/pymarl" in res:
            p, f = res["dense/pymarl"], res["dense/fast"]
            print(f"| {algo} dense, PyMARL-style | {p[key]:.1f} | | **PyMARL / fast "
                  f"{p[key] / f[key]:.2f}x** | {p['aten_ops']:,} | {p['gflop']:.2f} "
                  f"| {p['gflop_per_s']:.0f} |")
    print(f"\nsgemm 1024² in this process: {r['sgemm_gflops']:.0f} GFLOP/s")
    for n, v in r["runner_env_steps_per_s"].items():
        print(f"runner alone, env.n_envs={n}: {v:,.0f} env steps/s")
    for name, tr in r.get("training", {}).items():
        print(f"training {name}, t_max={tr['t_max']}: {tr['env_steps_per_s']:,.0f} env steps/s "
              f"({tr['wall_s']:.0f} s incl. JAX compile), "
              f"{tr['steady_env_steps_per_s']:,.0f} after the first evaluation")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--map", default="3m")
    ap.add_argument("--algos", default="qmix,wqmix,res")
    ap.add_argument("--sparsity", type=float, default=0.9)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--block", type=int, default=30, help="updates per block (= Δm of MAST)")
    ap.add_argument("--runner-calls", type=int, default=10)
    ap.add_argument("--train-t-max", type=int, default=10000, help="0 skips the training runs")
    ap.add_argument("--train-algos", default="qmix,wqmix,res")
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="where torch runs")
    ap.add_argument("--out", default="reports/bench.json")
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    dev = torch.device(args.device)
    base = config(f"env.map={args.map}")
    batches, spec = sample_batches(base, dev)
    report = {"map": args.map, "device": args.device, "torch_threads": torch.get_num_threads(),
              "sgemm_gflops": sgemm_gflops(dev),
              "batch_max_t": [b.max_t for b in batches],
              "updates": {a: bench_algo(a, args, batches, spec, dev) for a in args.algos.split(",") if a},
              "runner_env_steps_per_s": bench_runner(base, [8, 32], args.runner_calls, dev)}
    if args.train_t_max:
        report["training"] = {f"{a} dense {'fast' if fast else 'reference'}":
                              bench_training(a, args.train_t_max, dev, fast)
                              for a in args.train_algos.split(",") if a for fast in (True, False)}
        if dev.type == "cuda":
            report["training"] |= {f"{a} dense fast + CUDA graphs":
                                   bench_training(a, args.train_t_max, dev, True, graphs=True)
                                   for a in args.train_algos.split(",") if a}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print_report(report, args)


if __name__ == "__main__":
    main()
