"""Multi-Agent MuJoCo measurements for the README: random-policy return (mean/std over
episodes), env throughput with random actions, COMIX rollout throughput (CEM in the loop) and
COMIX update time on windowed batches, per scenario. One torch thread.

    python scripts/mamujoco_bench.py --random-episodes 48 --out reports/mamujoco_bench.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_dir

import mast.config  # noqa: F401  (registers the schemas)
from mast.envs.mamujoco import MaMuJoCoVecEnv
from mast.learners import build_learner
from mast.learners.base import Widths
from mast.runner import EpisodeRunner

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = (("ManySegmentSwimmer", "10x2"), ("Humanoid", "9|8"), ("HumanoidStandup", "9|8"))


def random_returns(scenario: str, conf: str, episodes: int, n_envs: int, seed: int) -> dict:
    """Uniform random actions within the bounds; full 1000-step episodes (or until falling)."""
    env = MaMuJoCoVecEnv(scenario, conf, n_envs, seed)
    low, high = env.spec.continuous.bounds()
    rng = np.random.default_rng(seed)
    returns, steps, start = [], 0, time.perf_counter()
    while len(returns) < episodes:
        env.reset()
        ret = np.zeros(n_envs)
        while not env.done.all():
            alive = ~env.done
            out = env.step(rng.uniform(low, high, (n_envs, *low.shape)).astype(np.float32))
            ret += out.reward
            steps += int(alive.sum())
        returns += ret.tolist()
    wall = time.perf_counter() - start
    r = np.array(returns[:episodes])
    return {"episodes": len(r), "return_mean": float(r.mean()), "return_std": float(r.std()),
            "env_steps_per_s": steps / wall}


def comix(scenario: str, conf: str, n_envs: int, window: int, updates: int) -> dict:
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["algo=comix", "env=mamujoco", f"env.scenario={scenario}",
                                           f"env.agent_conf={conf}", "method=dense",
                                           f"algo.seq_window_steps={window}"])
    env = MaMuJoCoVecEnv(scenario, conf, n_envs, 0, episode_limit=100)
    dev = torch.device("cpu")
    learner = build_learner(cfg, env.spec, dev, Widths.from_config(cfg), 0.0)
    runner = EpisodeRunner(env, learner, env.spec, dev, 0)
    start = time.perf_counter()
    episodes, stats = runner.run(0.1)
    rollout = stats.env_steps / (time.perf_counter() - start)
    while len(episodes) < 32:
        episodes += runner.run(0.1)[0]
    learner.update(learner.make_batch(episodes[:32]), 0)
    start = time.perf_counter()
    for _ in range(updates):  # a fresh window per update, as in training
        learner.update(learner.make_batch(episodes[:32]), 0)
    return {"comix_rollout_env_steps_per_s": rollout,
            f"comix_update_s_batch32_window{window}": (time.perf_counter() - start) / updates}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--random-episodes", type=int, default=48)
    p.add_argument("--n-envs", type=int, default=8)
    p.add_argument("--window", type=int, default=10)
    p.add_argument("--updates", type=int, default=3)
    p.add_argument("--out", default="reports/mamujoco_bench.json")
    a = p.parse_args()
    torch.set_num_threads(1)
    result = {}
    for scenario, conf in SCENARIOS:
        name = f"{scenario}-{conf}"
        episodes = a.random_episodes if scenario == "ManySegmentSwimmer" else a.n_envs
        result[name] = random_returns(scenario, conf, episodes, a.n_envs, 0)
        result[name] |= comix(scenario, conf, a.n_envs, a.window, a.updates)
        print(name, json.dumps(result[name]), flush=True)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
