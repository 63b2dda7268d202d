"""The SMAX backend: shapes, SMAC-scale rewards, wins, episode limits, frozen finished envs."""

from __future__ import annotations

import numpy as np
import pytest

from mast.envs.smax import SMAC_EPISODE_LIMITS, SmaxVecEnv, smax_env_spec


def random_actions(avail: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return (rng.random(avail.shape) * avail).argmax(-1)


def test_spec_matches_arrays():
    env = SmaxVecEnv("3m", n_envs=4, seed=0)
    spec = env.spec
    assert spec == smax_env_spec("3m")
    assert (spec.n_agents, spec.n_actions, spec.episode_limit) == (3, 8, SMAC_EPISODE_LIMITS["3m"])
    out = env.reset()
    assert out.obs.shape == (4, 3, spec.obs_dim) and out.state.shape == (4, spec.state_dim)
    assert out.avail.shape == (4, 3, spec.n_actions) and out.avail.dtype == bool
    assert out.avail.any(-1).all()
    assert 0.0 <= out.state.min() and out.state.max() <= 1.0  # positions scaled to [0, 1]


def test_episodes_end_and_stay_frozen():
    env = SmaxVecEnv("3m", n_envs=4, seed=1)
    rng = np.random.default_rng(0)
    out = env.reset()
    done = np.zeros(4, bool)
    returns = np.zeros(4)
    for _ in range(env.spec.episode_limit):
        out = env.step(random_actions(out.avail, rng))
        assert not (out.reward[done] != 0).any(), "finished envs must not pay reward"
        assert not (out.terminated & out.truncated).any()
        # SMAX's raw cooldown keeps falling below 0 between shots; the state must stay in [0, 1]
        assert 0.0 <= out.state.min() and out.state.max() <= 1.0
        returns += out.reward
        done |= out.terminated | out.truncated
    assert done.all(), "every episode ends by the episode limit"
    assert (returns >= 0).all() and (returns <= 20.0 + 1e-4).all()  # SMAC's 0..20 scale


def test_win_pays_bonus_on_scale():
    """A greedy 'attack the first available enemy' policy wins 3m sometimes; the win flag and
    the ×10 bonus arrive on the terminating step."""
    env = SmaxVecEnv("3m", n_envs=32, seed=2)
    out = env.reset()
    won_any = np.zeros(32, bool)
    rew = np.zeros(32)
    done = np.zeros(32, bool)
    for _ in range(env.spec.episode_limit):
        attack = out.avail[..., 5:]  # actions 5.. attack enemy k
        act = np.where(attack.any(-1), 5 + attack.argmax(-1), 4)  # else: move (east)
        out = env.step(act)
        rew += out.reward
        won_any |= out.won
        assert not (out.won & ~out.terminated).any()
        done |= out.terminated | out.truncated
        if done.all():
            break
    assert won_any.any()
    assert rew[won_any].min() > 10.0  # win bonus (10) + damage


def test_bad_map_names_allowed_values():
    with pytest.raises(ValueError, match="env.map='nope'.*allowed"):
        SmaxVecEnv("nope", n_envs=2, seed=0)


def test_reset_and_step_compile_once():
    """A reset's state has the step's types, so jit compiles the step once per environment shape
    (a weak-typed reset state once made every process compile it twice, 9–15 s each)."""
    env = SmaxVecEnv("3m", 2, 0)
    for _ in range(2):
        env.reset()
        for _ in range(3):
            env.step(np.zeros((2, env.spec.n_agents), np.int64))
    assert env._step._cache_size() == 1 and env._reset._cache_size() == 1
