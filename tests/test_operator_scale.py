"""`method.operator_scale=mixer_slope` on the value-based learner (QMIX): the bootstrap is the
target mixer over the operator applied in Q_tot units, the units being the target mixer's
∂Q_tot/∂Q_i at the greedy (double-Q) bootstrap; with `none` it is the paper's per-agent operator."""

from __future__ import annotations

import torch

from mast import targets as T
from mast.envs import make_env
from mast.learners import build_learner
from mast.learners.base import Widths
from mast.modules.mixers import mixer_slopes
from mast.replay import collate
from mast.runner import EpisodeRunner

from .conftest import compose_cfg


def test_qmix_bootstrap_in_mixer_units():
    cfg = compose_cfg(["method=mast", "method.operator_scale=mixer_slope"])
    env = make_env(cfg, cfg.env.n_envs, 0)
    torch.manual_seed(0)
    learner = build_learner(cfg, env.spec, torch.device("cpu"), Widths.from_config(cfg), 0.9)
    runner = EpisodeRunner(env, learner, env.spec, torch.device("cpu"), seed=0)
    batch = collate(runner.run(1.0)[0] + runner.run(1.0)[0])
    for t in range(2):
        learner.update(batch, t_env=t)
    with torch.no_grad():
        for p in learner.target["mixer"].hyper_w_final.parameters():
            p.mul_(30.0)  # slopes ≈ 900× larger: the units visibly matter
    inputs = learner.episode_inputs(batch)
    with torch.no_grad():
        q_online = learner.unroll(learner.agent, inputs)
        got = learner.next_values(batch, inputs, q_online)
        q_target = learner.unroll(learner.target["agent"], inputs)[:, 1:]
        avail = batch.avail[:, 1:]
        greedy = q_online[:, 1:].masked_fill(~avail, -1e9).argmax(-1, keepdim=True)
        at_greedy = q_target.gather(-1, greedy).squeeze(-1)  # double Q (PyMARL's default)
        k = mixer_slopes(learner.target["mixer"], at_greedy, batch.state[:, 1:])
        assert k[batch.mask.bool()].min() > 1.0
        v = T.operator_in_units("soft_mellowmax", q_target, avail, k, alpha=1.0, omega=10.0)
        want = learner.mix(learner.target["mixer"], v, batch.state[:, 1:], batch)
        torch.testing.assert_close(got, want)
        learner.cfg.method.operator_scale = "none"
        plain = learner.next_values(batch, inputs, q_online)
    assert not torch.allclose(got, plain, atol=1e-3)
    assert (got[batch.mask.bool()] >= plain[batch.mask.bool()] - 1e-4).float().mean() > 0.9
