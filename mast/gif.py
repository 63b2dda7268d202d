"""Replays: render greedy SMAX episodes of a run's last checkpoint as a GIF
(`python -m mast.evaluate results/<run_id> --gif out.gif`).

Episodes run through the same jitted SMAX env and the learner's own greedy policy as the
evaluations (`SmaxVecEnv` with one environment), so what is drawn is what is scored. Frames are
drawn with matplotlib from NumPy copies of the unit state, one per environment step. Why not
JaxMARL's `SMAXVisualizer`: it evaluates JAX ops eagerly per frame (≈2.6 s a frame here, 15 min
for one 3m episode); this renderer draws the same picture (allies blue, enemies red, circle
radius = unit radius, white wedge = health lost, unit type letter).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import numpy as np  # noqa: E402

FRAME_MS = 250


@dataclass
class Frame:
    """Unit state after one step: positions [U, 2], alive/health/types [U], targets [U] (−1)."""

    pos: np.ndarray
    alive: np.ndarray
    health: np.ndarray
    types: np.ndarray
    episode: int
    step: int
    outcome: str = ""


def _frame(state, episode: int, step: int, jax_env) -> Frame:
    s = state.state  # HeuristicEnemySMAX wraps the SMAX state; batch of one env
    types = np.asarray(s.unit_types[0]).astype(int)
    health = np.asarray(s.unit_health[0]) / np.asarray(jax_env.unit_type_health)[types]
    return Frame(np.asarray(s.unit_positions[0]), np.asarray(s.unit_alive[0]).astype(bool),
                 np.clip(health, 0.0, 1.0), types, episode, step)


def load_run_learner(run_dir: Path, cfg, spec):
    """The learner of a run's last checkpoint, on the CPU."""
    import torch

    from mast import checkpoint
    from mast.config import effective_sparsity
    from mast.learners import build_learner
    from mast.learners.base import Widths

    ckpt = run_dir / "checkpoints" / "last.pt"
    if not ckpt.exists():
        raise FileNotFoundError(f"{ckpt} not found (run not started or checkpoints removed)")
    learner = build_learner(cfg, spec, torch.device("cpu"), Widths.from_config(cfg),
                            effective_sparsity(cfg))
    learner.load_state_dict(checkpoint.load(ckpt)["learner"])
    return learner


def record(run_dir: Path, episodes: int, max_steps: int | None, seed_offset: int = 700_001
           ) -> tuple[list[Frame], object]:
    """Frames of `episodes` greedy episodes (each cut at `max_steps`) and the JaxMARL env."""
    import torch
    from omegaconf import OmegaConf

    from mast.envs.smax import SmaxVecEnv

    if not (run_dir / "checkpoints" / "last.pt").exists():
        raise FileNotFoundError(f"{run_dir / 'checkpoints' / 'last.pt'} not found "
                                "(run not started or checkpoints removed)")
    cfg = OmegaConf.load(run_dir / "config.yaml")
    if cfg.env.name != "smax":
        raise ValueError(f"--gif renders SMAX episodes; this run has env={cfg.env.name}")
    env = SmaxVecEnv(cfg.env.map, 1, int(cfg.seed) + seed_offset, cfg.env.episode_limit,
                     cfg.env.reward_scale)
    jax_env = env.jax_env()
    learner = load_run_learner(run_dir, cfg, env.spec)
    gen = torch.Generator().manual_seed(0)
    frames: list[Frame] = []
    for ep in range(episodes):
        out = env.reset()
        pstate = learner.initial_policy_state(1)
        frames.append(_frame(env.jax_state, ep, 0, jax_env))
        for t in range(min(env.spec.episode_limit, max_steps or env.spec.episode_limit)):
            a, pstate = learner.act(torch.from_numpy(out.obs), torch.from_numpy(out.avail),
                                    pstate, 0.0, gen)
            out = env.step(a.numpy())
            frames.append(_frame(env.jax_state, ep, t + 1, jax_env))
            if out.terminated[0] or out.truncated[0]:
                frames[-1].outcome = "won" if out.won[0] else "lost" if out.terminated[0] else \
                    "time-out"
                break
    return frames, jax_env


def write_gif(frames: list[Frame], jax_env, out: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation, PillowWriter
    from matplotlib.patches import Circle, Wedge

    n_allies = jax_env.num_allies
    radius = np.asarray(jax_env.unit_type_radiuses)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    seen = np.concatenate([f.pos[f.alive] for f in frames])  # zoom on where the fight is
    centre, half = (seen.min(0) + seen.max(0)) / 2, (seen.max(0) - seen.min(0)).max() / 2 + 2.0

    def draw(i: int):
        f = frames[i]
        ax.clear()
        ax.set(xlim=(centre[0] - half, centre[0] + half), ylim=(centre[1] - half, centre[1] + half),
               xticks=[], yticks=[])
        ax.set_aspect("equal")
        for u in np.flatnonzero(f.alive):
            xy, r = f.pos[u], float(radius[f.types[u]])
            ax.add_patch(Circle(xy, r, color="tab:blue" if u < n_allies else "tab:red"))
            if f.health[u] < 1.0:
                ax.add_patch(Wedge(xy, r, 90, 90 + 360 * (1 - f.health[u]), color="white"))
            ax.text(*xy, jax_env.unit_type_shorthands[f.types[u]], ha="center", va="center",
                    fontsize=6, color="black")
        ax.set_title(f"{title}\nepisode {f.episode + 1}, step {f.step} {f.outcome}", fontsize=8)

    anim = FuncAnimation(fig, draw, frames=len(frames))
    out.parent.mkdir(parents=True, exist_ok=True)
    anim.save(str(out), writer=PillowWriter(fps=1000 / FRAME_MS))
    plt.close(fig)


def render_gif(run_dir: Path, out: Path, episodes: int = 1, max_steps: int | None = None) -> dict:
    """Write greedy episodes of the run's last checkpoint to one GIF."""
    frames, jax_env = record(run_dir, episodes, max_steps)
    write_gif(frames, jax_env, out, run_dir.name)
    return {"gif": str(out), "episodes": episodes, "frames": len(frames),
            "outcomes": [f.outcome for f in frames if f.outcome]}
