"""Multi-Agent MuJoCo backend on the real environments: shapes, padding, lock-step stepping,
truncation vs termination (and the targets built on them against a plain loop), config errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from mast.config import ConfigError, validate
from mast.envs.mamujoco import MaMuJoCoVecEnv
from mast.envs.mamujoco_maps import PAPER_SPECS
from mast.learners import build_learner
from mast.learners.base import Widths
from mast.replay import collate
from mast.runner import EpisodeRunner

from .conftest import ROOT, compose_cfg

COMIX_TINY = ["algo=comix", "env=mamujoco", "env.episode_limit=10", "algo.hidden_dim=32",
              "algo.cem_samples=8", "algo.cem_elites=3"]


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny matmuls on a shared 2-core machine: more threads only contend."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize("map_name", sorted(PAPER_SPECS))
def test_live_spec_matches_the_static_table(map_name):
    scenario, _, conf = map_name.partition("-")
    env = MaMuJoCoVecEnv(scenario, conf, n_envs=2, seed=0)
    assert env.spec == PAPER_SPECS[map_name]
    out = env.reset()
    spec = env.spec
    assert out.obs.shape == (2, spec.n_agents, spec.obs_dim) and out.obs.dtype == np.float32
    assert out.state.shape == (2, spec.state_dim)
    assert (out.avail == spec.continuous.dim_mask()).all()  # avail = each agent's real dims


def test_humanoid_padding_and_lockstep_freeze():
    env = MaMuJoCoVecEnv("Humanoid", "9|8", n_envs=3, seed=1)
    out = env.reset()
    assert (out.obs[:, 1, 167:] == 0).all()  # agent 1 observes 167 features, padded to 236
    assert out.avail[0, 1].tolist() == [True] * 8 + [False]
    low, high = env.spec.continuous.bounds()
    rng = np.random.default_rng(0)
    ended_at = np.full(3, -1)
    for t in range(200):
        before = env.done.copy()
        out = env.step(rng.uniform(low, high, (3, *low.shape)).astype(np.float32))
        assert (out.reward[before] == 0).all() and not out.terminated[before].any()
        ended_at[(out.terminated | out.truncated) & ~before] = t
        if env.done.all():
            break
    assert env.done.all() and (ended_at >= 0).all()  # random Humanoids fall within 200 steps


def test_same_seed_same_episodes():
    def rollout():
        env = MaMuJoCoVecEnv("ManySegmentSwimmer", "10x2", n_envs=2, seed=5, episode_limit=5)
        obs = [env.reset().obs]
        obs += [env.step(np.full((2, 10, 2), 0.3, np.float32)).obs for _ in range(5)]
        return np.stack(obs), env.get_rng_state()

    (a, ra), (b, rb) = rollout(), rollout()
    assert np.array_equal(a, b) and np.array_equal(ra, rb)


def test_each_agent_drives_its_own_joints():
    """Our vec env keeps one agent order for observations and actions: a torque on agent j
    changes agent j's own observation (its joints) more than any other agent's, through the
    real wrapper, from the same initial state."""
    def after(j: int | None) -> np.ndarray:
        env = MaMuJoCoVecEnv("ManySegmentSwimmer", "10x2", n_envs=1, seed=0)
        env.reset()
        a = np.zeros((1, 10, 2), np.float32)
        if j is not None:
            a[0, j] = 1.0
        for _ in range(3):
            out = env.step(a)
        return out.obs[0]

    base = after(None)
    for j in (0, 3, 7, 9):
        change = np.abs(after(j) - base).sum(-1)  # per agent
        assert change.argmax() == j, (j, change)


def _plain_targets(batch, next_v, gamma, lam):
    """Plain loop: G_t = r_t + γ(1 − term_t)((1 − λ)V_{t+1} + λG_{t+1}), λ-term dropped at the
    last real step; λ = 0 gives one-step targets."""
    out = torch.zeros_like(batch.reward)
    for b in range(batch.reward.shape[0]):
        length = int(batch.mask[b].sum())
        g = 0.0
        for t in reversed(range(length)):
            r, term, v = float(batch.reward[b, t]), float(batch.terminated[b, t]), float(next_v[b, t])
            cont = v if t == length - 1 else (1 - lam) * v + lam * g
            g = r + gamma * (1 - term) * cont
            out[b, t] = g
    return out


def test_truncation_bootstraps_termination_does_not():
    """Humanoid with a 25-step limit: some episodes fall (terminated), some reach the limit
    (truncated). Targets from the learner equal the plain loop on these real episodes."""
    cfg = compose_cfg([*COMIX_TINY, "env.scenario=Humanoid", "env.agent_conf=9|8",
                       "env.episode_limit=25", "env.n_envs=8"])
    env = MaMuJoCoVecEnv("Humanoid", "9|8", n_envs=8, seed=3, episode_limit=25)
    torch.manual_seed(0)  # the network's init decides the actions: independent of test order
    learner = build_learner(cfg, env.spec, torch.device("cpu"), Widths.from_config(cfg), 0.0)
    episodes, _ = EpisodeRunner(env, learner, env.spec, torch.device("cpu"), 0).run(1.0)
    lengths = [ep.length for ep in episodes]
    fell = [ep for ep in episodes if ep.terminated[-1]]
    truncated = [ep for ep in episodes if not ep.terminated.any()]
    assert fell and truncated, lengths
    assert all(ep.length == 25 for ep in truncated) and all(ep.length < 25 for ep in fell)
    assert all(not ep.terminated[:-1].any() for ep in episodes)
    batch = collate(episodes)
    next_v = torch.randn(batch.reward.shape, generator=torch.Generator().manual_seed(0))
    for t_env, lam in ((0, 0.0), (10**9, cfg.algo.td_lambda)):  # before / after T0
        y = learner.td_targets(batch, next_v, t_env)
        assert torch.allclose(y, _plain_targets(batch, next_v, cfg.train.gamma, lam), atol=1e-5)
    for b, ep in enumerate(episodes):  # the last step: bootstrap iff truncated
        last = ep.length - 1
        boot = float(learner.td_targets(batch, next_v, 0)[b, last]) - float(ep.reward[last])
        expected = 0.0 if ep.terminated[-1] else cfg.train.gamma * float(next_v[b, last])
        assert boot == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("over,key,allowed", [
    (["env.scenario=Humanoid", "env.agent_conf=10x2"], "env.agent_conf", "9|8"),
    (["env.scenario=ManyAgentSwimmer"], "env.scenario", "ManySegmentSwimmer"),
    (["env.agent_conf=ten"], "env.agent_conf", "<agents>x<segments per agent>"),
    (["env.map=Humanoid-9|8"], "env.map", "ManySegmentSwimmer-10x2"),
])
def test_bad_scenario_or_agent_conf_is_one_line(over, key, allowed):
    with pytest.raises(ConfigError) as e:
        validate(compose_cfg(["algo=comix", "env=mamujoco", *over]))
    msg = str(e.value)
    assert key in msg and allowed in msg and "allowed values" in msg and "\n" not in msg


def test_cli_bad_agent_conf_fails_before_work(tmp_path):
    out = subprocess.run([sys.executable, "run.py", "algo=comix", "env=mamujoco",
                          "env.scenario=Humanoid", "env.agent_conf=3x3", f"results_dir={tmp_path}"],
                         cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert out.returncode != 0
    assert "env.agent_conf='3x3' is not valid for env.scenario=Humanoid; allowed values: 9|8" in (
        out.stdout + out.stderr)
    assert not any(tmp_path.iterdir())


def test_algo_and_env_action_kinds_must_match():
    for over, algo in ((["env=mamujoco"], "qmix"), (["algo=comix"], "comix")):
        with pytest.raises(ConfigError) as e:
            validate(compose_cfg(over))
        assert f"algo={algo}" in str(e.value) and "allowed algo values" in str(e.value)


def test_missing_package_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "gymnasium_robotics", None)  # import fails as if absent
    with pytest.raises(RuntimeError, match="pip install gymnasium-robotics"):
        MaMuJoCoVecEnv("ManySegmentSwimmer", "10x2", n_envs=1, seed=0)


def test_import_notice_is_silenced_but_errors_are_not():
    """gymnasium-robotics' Adroit notice (stderr, on import) stays off a run's console; stderr
    works again right after the import."""
    code = ("import sys, mast; from gymnasium_robotics import mamujoco_v1; "
            "print('after the import', file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    assert "Adroit" not in out.stderr and "after the import" in out.stderr


@pytest.mark.parametrize("over,msg", [("algo.target_noise=-0.1", "algo.target_noise=-0.1 must be >= 0"),
                                      ("algo.target_noise_clip=0", "algo.target_noise_clip=0.0 must be > 0")])
def test_bad_target_smoothing_is_one_line(over, msg):
    with pytest.raises(ConfigError) as e:
        validate(compose_cfg(["algo=comix", "env=mamujoco", over]))
    assert str(e.value) == msg
