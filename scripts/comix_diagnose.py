"""Where a COMIX critic's value error comes from, on a run's last checkpoint.

    python scripts/comix_diagnose.py results/<comix run> [--episodes 4] [--stride 25]

Rolls out `--episodes` episodes with the run's exploration noise at the checkpoint (not the
uniform warm-up of `algo.start_steps`) and prints: Q_tot of the taken actions against the Monte
Carlo discounted return at a few steps and over all steps; per agent, the CEM maximum's value
against the taken action's (the operator's overestimation); Q_tot at the CEM greedy actions; the
mixer's slopes ∂Q_tot/∂Q_i; and, for operators other than max, how far the target operator sits
below the CEM greedy value in Q_tot units (its per-step bias). Used for the README's
COMIX-on-a-CPU-budget diagnosis.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from omegaconf import OmegaConf

from mast import checkpoint
from mast import targets as T
from mast.config import effective_sparsity
from mast.envs import make_env
from mast.learners import build_learner
from mast.learners.base import Widths
from mast.modules.mixers import mixer_slopes
from mast.replay import collate
from mast.runner import EpisodeRunner


@torch.no_grad()
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--episodes", type=int, default=4)
    ap.add_argument("--stride", type=int, default=25, help="every k-th step gets the CEM check")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = OmegaConf.load(args.run / "config.yaml")
    state, _ = checkpoint.load_latest(args.run / "checkpoints" / "last.pt", required=("learner",))
    env = make_env(cfg, args.episodes, cfg.seed + 12_345)
    learner = build_learner(cfg, env.spec, torch.device("cpu"), Widths.from_config(cfg),
                            effective_sparsity(cfg))
    learner.load_state_dict(state["learner"])
    t_env = state["counters"]["t_env"]  # the policy's own noise (at 0, a warm-up acts uniformly)
    episodes, stats = EpisodeRunner(env, learner, env.spec, torch.device("cpu"), 0).run(
        learner.exploration(t_env), cfg.train.gamma)
    b = collate(episodes)
    returns = T.discounted_returns(b.reward, b.mask, cfg.train.gamma)
    q = learner.agent(b.obs[:, :-1], learner.box.normalise(b.actions))  # [B, T, n]
    q_tot = learner.nets["mixer"](q, b.state[:, :-1])
    print(f"checkpoint t_env {t_env}, {len(episodes)} episodes (σ {learner.exploration(t_env)}), "
          f"return {stats.return_mean:.1f}, reward per step {float(b.reward.mean()):.3f}")
    for t in sorted({0, 100, b.reward.shape[1] // 2} & set(range(b.reward.shape[1]))):
        print(f"t={t}: Q_tot(taken) {float(q_tot[:, t].mean()):.2f}   "
              f"Monte Carlo return {float(returns[:, t].mean()):.2f}")
    # every real step weighs the same here: t = 0 alone misleads where the reward front-loads
    # (the Swimmer's first ≈50 steps) and a training window holds step t only (t + 1)/(L − w + 1)
    # of the time
    real = b.mask.bool()
    q_all, mc_all = float(q_tot[real].mean()), float(returns[real].mean())
    print(f"all steps: Q_tot(taken) {q_all:.2f}   Monte Carlo return {mc_all:.2f}   "
          f"error {q_all - mc_all:+.2f}")
    rows = torch.arange(0, b.mask.numel(), args.stride)
    obs = b.obs[:, :-1].reshape(-1, *b.obs.shape[2:])[rows]
    states = b.state[:, :-1].reshape(-1, b.state.shape[-1])[rows]
    taken = q.reshape(-1, q.shape[-1])[rows]
    cem = learner.greedy(learner.agent, obs)
    print(f"per agent: taken {float(taken.mean()):.4f}, CEM max {float(cem.best_value.mean()):.4f}, "
          f"gap {float((cem.best_value - taken).mean()):.4f}")
    print(f"Q_tot at CEM greedy {float(learner.nets['mixer'](cem.best_value, states).mean()):.3f}"
          f" vs taken {float(learner.nets['mixer'](taken, states).mean()):.3f}")
    k = mixer_slopes(learner.nets["mixer"], taken, states)
    print(f"mixer slope per agent {float(k.mean()):.2f} (sum over agents {float(k.sum(-1).mean()):.1f})")
    if cfg.method.operator != "max":
        _operator_gap(learner, obs, states, cfg.train.gamma)


def _operator_gap(learner, obs: torch.Tensor, states: torch.Tensor, gamma: float) -> None:
    """How far the target operator sits below the CEM greedy value, per bootstrap, in Q_tot
    units of the target mixer: a per-step bias the TD recursion compounds by up to 1/(1 − γ)."""
    res = learner._bootstrap_candidates(obs)
    mixer = learner.target["mixer"]
    op = learner._per_agent_bootstrap(res, mixer, states)
    greedy, under = mixer(res.best_value, states), mixer(op, states)
    gap = float((greedy - under).mean())
    print(f"target operator {learner.cfg.method.operator}: per agent {float(op.mean()):.4f} vs "
          f"CEM greedy {float(res.best_value.mean()):.4f}; Q_tot {float(under.mean()):.3f} vs "
          f"{float(greedy.mean()):.3f}, gap {gap:.3g} per step (× 1/(1 − γ) = {gap / (1 - gamma):.1f})")


if __name__ == "__main__":
    main()
