"""The two DESIGN §2.1 seams: action selection belongs to the learner (the runner only calls
its policy), and one typed config schema per algorithm (a key of another algorithm fails)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from mast.config import validate
from mast.envs import make_env
from mast.learners import build_learner
from mast.learners.base import Widths
from mast.runner import EpisodeRunner, agent_inputs, epsilon_greedy

from .conftest import compose_cfg


def _old_runner_actions(env, agent, spec, epsilon, gen) -> list[np.ndarray]:
    """The runner's loop before the seam (ε-greedy inside the runner), as a reference."""
    out = env.reset()
    h = agent.initial_hidden(env.n_envs)
    last = torch.full((env.n_envs, spec.n_agents), -1, dtype=torch.long)
    done, acts = np.zeros(env.n_envs, bool), []
    for _ in range(spec.episode_limit):
        q, h = agent(agent_inputs(torch.from_numpy(out.obs), last, spec.n_actions), h)
        a = epsilon_greedy(q, torch.from_numpy(out.avail), epsilon, gen)
        out = env.step(a.numpy())
        acts.append(a.numpy())
        done |= out.terminated | out.truncated
        last = a
        if done.all():
            break
    return acts


@pytest.mark.parametrize("algo", ["qmix", "wqmix"])
def test_discrete_policy_keeps_the_epsilon_greedy_stream(algo):
    cfg = compose_cfg([f"algo={algo}"])
    env_a, env_b = make_env(cfg, 4, 11), make_env(cfg, 4, 11)
    learner = build_learner(cfg, env_a.spec, torch.device("cpu"), Widths.from_config(cfg), 0.0)
    episodes, _ = EpisodeRunner(env_a, learner, env_a.spec, torch.device("cpu"), 3).run(0.4)
    ref = _old_runner_actions(env_b, learner.agent, env_b.spec, 0.4,
                              torch.Generator().manual_seed(3))
    ref = np.stack(ref, 1)
    for i, ep in enumerate(episodes):
        assert ep.actions.dtype == np.int64
        assert np.array_equal(ep.actions, ref[i, : ep.length])


def test_exploration_schedule_is_the_learners():
    cfg = compose_cfg(["algo=wqmix"])
    spec = make_env(cfg, 1, 0).spec
    learner = build_learner(cfg, spec, torch.device("cpu"), Widths.from_config(cfg), 0.0)
    assert learner.exploration(0) == cfg.train.epsilon_start
    assert learner.exploration(50_000) == pytest.approx(0.525)  # WQMIX anneals over 100k
    assert learner.exploration(10**7) == pytest.approx(cfg.train.epsilon_finish)


@pytest.mark.parametrize("overrides", [
    ["algo=wqmix", "algo.weighting=cw"], ["algo=res", "algo.res_beta=2.0"],
    ["algo=qmix", "algo.td_lambda=0.5"], ["algo=vdn", "algo.epsilon_anneal_env_steps=10"],
    ["algo=comix", "env=mamujoco", "algo.cem_samples=32", "algo.act_noise=0.2"],
])
def test_existing_and_new_key_paths_compose(overrides):
    cfg = compose_cfg(overrides)
    validate(cfg)
    key, value = overrides[-1].split("=")
    assert str(cfg[key.split(".")[0]][key.split(".")[1]]) == value


@pytest.mark.parametrize("overrides,key", [
    (["algo=qmix", "algo.weighting=cw"], "weighting"),
    (["algo=wqmix", "algo.res_beta=1"], "res_beta"),
    (["algo=res", "algo.cem_samples=8"], "cem_samples"),
    (["algo=comix", "env=mamujoco", "algo.epsilon_anneal_env_steps=5"], "epsilon_anneal_env_steps"),
    (["env=smax", "env.scenario=Humanoid"], "scenario"),
])
def test_a_key_of_another_algorithm_fails(overrides, key):
    with pytest.raises((HydraException, OmegaConfBaseException)) as e:
        compose_cfg(overrides)
    assert key in str(e.value)
