"""Is CEM's search budget what limits a COMIX policy? Greedy (and σ-noisy) test returns of one
checkpoint with the run's CEM settings and with others, on the same evaluation seeds:

    python scripts/comix_cem_budget.py results/<comix run> --cem 16,4,2 64,6,2 --episodes 8

If a larger budget (FACMAC's 64 samples / 6 elites) scores no better, the critic, not the
argmax search, is what the policy lacks. `--draws 0 1 2 3` repeats each setting with other seeds
for the runner's generator (CEM's samples and the noise) on the same environments: the spread is
what CEM's randomness alone moves the return. `--acting target` also acts greedily on the
target (Polyak-averaged) critic.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from omegaconf import OmegaConf, open_dict

from mast import checkpoint
from mast.config import effective_sparsity
from mast.envs import make_env
from mast.evaluate import EVAL_SEED_OFFSET
from mast.learners import build_learner
from mast.learners.base import Widths
from mast.runner import EpisodeRunner


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--cem", nargs="+", default=["16,4,2", "64,6,2"],
                    help="samples,elites,iterations per setting")
    ap.add_argument("--episodes", type=int, default=8, help="environments, one episode each")
    ap.add_argument("--sigma", type=float, nargs="+", default=[0.0, 0.1])
    ap.add_argument("--draws", type=int, nargs="+", default=[0],
                    help="offsets of the runner's seed (CEM samples and noise)")
    ap.add_argument("--acting", nargs="+", choices=("online", "target"), default=["online"])
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = OmegaConf.load(args.run / "config.yaml")
    state, _ = checkpoint.load_latest(args.run / "checkpoints" / "last.pt",
                                      required=("learner", "counters"))
    print(f"{args.run.name} at t_env {state['counters']['t_env']}")
    for setting in args.cem:
        c = cfg.copy()
        with open_dict(c):
            c.algo.cem_samples, c.algo.cem_elites, c.algo.cem_iterations = map(int, setting.split(","))
        for acting in args.acting:
            for draw in args.draws:
                env = make_env(c, args.episodes, c.seed + EVAL_SEED_OFFSET)  # same initial states
                learner = build_learner(c, env.spec, torch.device("cpu"), Widths.from_config(c),
                                        effective_sparsity(c))
                learner.load_state_dict(state["learner"])
                if acting == "target":
                    learner.nets.load_state_dict(learner.target.state_dict())
                runner = EpisodeRunner(env, learner, env.spec, torch.device("cpu"), c.seed + draw)
                for sigma in args.sigma:
                    _, st = runner.run(sigma, c.train.gamma)
                    print(f"CEM {setting} {acting} draw {draw} σ={sigma}: mean return "
                          f"{st.return_mean:.1f} over {st.episodes} episodes", flush=True)


if __name__ == "__main__":
    main()
