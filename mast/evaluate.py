"""Greedy evaluation of a run's last checkpoint: `python -m mast.evaluate RUN_DIR [RUN_DIR ...]`.

Why: `final_win_rate` averages the last `final_window` evaluations of `test_nepisode` episodes,
which on a short budget spans a large part of training and is noisy; evaluating the final
policy on many episodes (default 640) gives a low-variance figure for the policy itself.
Prints one JSON object per run and writes it to `RUN_DIR/eval_final.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import torch  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from mast import checkpoint  # noqa: E402
from mast.config import effective_sparsity  # noqa: E402
from mast.envs import make_env  # noqa: E402
from mast.learners import build_learner  # noqa: E402
from mast.learners.base import Widths  # noqa: E402
from mast.runner import EpisodeRunner  # noqa: E402
from mast.tracking.store import atomic_write_text  # noqa: E402

EVAL_SEED_OFFSET = 900_001  # environments unseen in training and in the periodic evaluations


def evaluate(run_dir: Path, episodes: int = 640, n_envs: int = 32) -> dict:
    cfg = OmegaConf.load(run_dir / "config.yaml")
    ckpt = run_dir / "checkpoints" / "last.pt"
    found = checkpoint.load_latest(ckpt, required=("learner", "counters"))  # prev.pt fallback
    if found is None:
        raise FileNotFoundError(f"{ckpt} not found (run not started or checkpoints removed)")
    env = make_env(cfg, n_envs, cfg.seed + EVAL_SEED_OFFSET)
    device = torch.device("cpu")
    learner = build_learner(cfg, env.spec, device, Widths.from_config(cfg), effective_sparsity(cfg))
    state, _ = found
    learner.load_state_dict(state["learner"])
    runner = EpisodeRunner(env, learner, env.spec, device, cfg.seed)
    n = wins = ret = 0.0
    while n < episodes:
        _, st = runner.run(0.0, cfg.train.gamma)
        n, wins, ret = n + st.episodes, wins + st.win_rate * st.episodes, ret + st.return_mean * st.episodes
    return {"run_id": run_dir.name, "t_env": int(state["counters"]["t_env"]), "episodes": int(n),
            "win_rate": wins / n, "return_mean": ret / n}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mast.evaluate", description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="results/<run_id> folders")
    ap.add_argument("--episodes", type=int, default=640)
    ap.add_argument("--gif", type=Path, default=None,
                    help="instead of evaluating: render greedy SMAX episodes of one run to this GIF")
    ap.add_argument("--gif-episodes", type=int, default=1, help="episodes in the GIF")
    ap.add_argument("--gif-max-steps", type=int, default=None, help="cut each episode (steps)")
    args = ap.parse_args(argv)
    if args.gif is not None:
        return _gif_main(args)
    if args.episodes <= 0:
        print(f"--episodes={args.episodes} must be a positive integer", file=sys.stderr)
        return 2
    for run_dir in args.runs:
        try:
            out = evaluate(run_dir, args.episodes)
        except FileNotFoundError as e:
            print(f"mast.evaluate: {e}", file=sys.stderr)
            return 1
        atomic_write_text(run_dir / "eval_final.json", json.dumps(out, indent=2))
        print(json.dumps(out))
    return 0


def _gif_main(args) -> int:
    from mast.gif import render_gif

    if len(args.runs) != 1 or args.gif_episodes <= 0:
        print("--gif takes exactly one run folder and --gif-episodes >= 1", file=sys.stderr)
        return 2
    try:
        out = render_gif(args.runs[0], args.gif, args.gif_episodes, args.gif_max_steps)
    except (FileNotFoundError, ValueError) as e:
        print(f"mast.evaluate: {e}", file=sys.stderr)
        return 1
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
