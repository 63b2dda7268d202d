"""`make bench`: the throughput and sparse-overhead figures quoted in the README.

Measured in one process, side by side, because this machine is shared and noisy:
  1. runner alone: env steps/s of ε-greedy rollouts on SMAX for several `env.n_envs`;
  2. learner update: ms per update of `method=dense` vs `method=rigl` at the same shapes and the
     same sampled batches, in alternating blocks of Δm updates so every rigl block contains one
     topology update (drop fraction ζ0, the most expensive) — the ratio is the amortised overhead;
  3. a full training run (collect → update → evaluate) of dense QMIX: env steps/s end to end.
Writes `reports/bench.json` and prints a Markdown table. Never asserted in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
os.environ.setdefault("WANDB_MODE", "disabled")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402

import mast.config  # noqa: E402, F401
from mast.envs import make_env  # noqa: E402
from mast.learners import build_learner  # noqa: E402
from mast.learners.base import Widths  # noqa: E402
from mast.replay import collate  # noqa: E402
from mast.runner import EpisodeRunner  # noqa: E402

CONF = str(Path(__file__).resolve().parents[1] / "conf")


def sync(dev: torch.device) -> None:
    """CUDA kernels run asynchronously: wait for them before reading the clock."""
    if dev.type == "cuda":
        torch.cuda.synchronize()


def config(*overrides: str):
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose("config", overrides=["wandb.mode=disabled", "progress=none", *overrides])


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


def bench_updates(map_name: str, sparsity: float, rounds: int, block: int,
                  dev: torch.device) -> dict:
    """ms per update, dense vs rigl, alternating blocks of `block` (= Δm) updates."""
    common = [f"env.map={map_name}", f"sparsity={sparsity}", f"method.update_interval_episodes={block}"]
    cfgs = {m: config(f"method={m}", *common) for m in ("dense", "rigl")}
    env = make_env(cfgs["dense"], 32, 0)
    learners = {m: build_learner(c, env.spec, dev, Widths.from_config(c), sparsity if m == "rigl" else 0.0)
                for m, c in cfgs.items()}
    runner = EpisodeRunner(env, learners["dense"], env.spec, dev, 0)
    episodes = runner.run(1.0)[0] + runner.run(1.0)[0]  # 64 random episodes, shared by both
    rng = np.random.default_rng(0)
    batches = [collate([episodes[i] for i in rng.choice(64, 32, replace=False)], dev)
               for _ in range(8)]
    times: dict[str, list[float]] = {m: [] for m in learners}
    for learner in learners.values():  # warm-up
        learner.update(batches[0], 0)
    for _ in range(rounds):
        for m, learner in learners.items():
            sync(dev)
            start = time.perf_counter()
            for k in range(block):
                learner.update(batches[k % len(batches)], 0)
            sync(dev)
            times[m].append((time.perf_counter() - start) / block * 1e3)
    ms = {m: statistics.median(v) for m, v in times.items()}
    topo = learners["rigl"].sparse.last_update_stats.get("total", 0)
    return {"ms_per_update": ms, "ratio_rigl_over_dense": ms["rigl"] / ms["dense"],
            "topology_updates": learners["rigl"].n_updates // block,
            "connections_swapped_last": topo, "block_updates": block, "rounds": rounds}


def bench_training(t_max: int, results_dir: str, dev: torch.device) -> dict:
    from mast.experiment import Experiment

    cfg = config("method=dense", f"device={dev.type}", f"t_max={t_max}", f"test_interval={t_max // 4}",
                 f"results_dir={results_dir}", f"checkpoint_interval={t_max}")
    start = time.perf_counter()
    result = Experiment(cfg).run()
    wall = time.perf_counter() - start
    return {"t_max": t_max, "wall_s": wall, "env_steps_per_s": t_max / wall,
            "final_win_rate": result["final_win_rate"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--map", default="3m")
    ap.add_argument("--sparsity", type=float, default=0.9)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--block", type=int, default=200, help="updates per block (= Δm)")
    ap.add_argument("--runner-calls", type=int, default=20)
    ap.add_argument("--train-t-max", type=int, default=20000, help="0 skips the training run")
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="where torch runs")
    ap.add_argument("--out", default="reports/bench.json")
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))

    dev = torch.device(args.device)
    base = config(f"env.map={args.map}")
    report = {"map": args.map, "device": args.device, "torch_threads": torch.get_num_threads(),
              "runner_env_steps_per_s": bench_runner(base, [8, 32], args.runner_calls, dev),
              "updates": bench_updates(args.map, args.sparsity, args.rounds, args.block, dev)}
    if args.train_t_max:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            report["training"] = bench_training(args.train_t_max, tmp, dev)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))

    u = report["updates"]
    print(f"| measure ({args.map}, torch on {args.device}, {report['torch_threads']} thread(s)) | value |"
          "\n|---|---|")
    for n, v in report["runner_env_steps_per_s"].items():
        print(f"| runner alone, env.n_envs={n} | {v:,.0f} env steps/s |")
    print(f"| learner update, dense | {u['ms_per_update']['dense']:.1f} ms |")
    print(f"| learner update, rigl sp={args.sparsity} (1 topology update per {args.block}) | "
          f"{u['ms_per_update']['rigl']:.1f} ms |")
    print(f"| ratio rigl / dense | {u['ratio_rigl_over_dense']:.3f} |")
    if "training" in report:
        tr = report["training"]
        print(f"| full training run, dense, t_max={tr['t_max']} | "
              f"{tr['env_steps_per_s']:,.0f} env steps/s ({tr['wall_s']:.0f} s) |")


if __name__ == "__main__":
    main()
