"""Manual per-unit-type densities (Fig. 12b): validated against the map's unit types and the
overall sparsity; each agent's slice gets its density and keeps it through topology updates."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mast.config import ConfigError, validate
from mast.envs.smax import smax_env_spec
from mast.experiment import Experiment
from mast.learners.base import QLearner, Widths
from mast.learners.sparsity import SparsityController
from mast.sparse.unit_density import agent_densities, unit_types

PER_AGENT = ("agent.share_params=false", "env.map=2s3z")
PATTERN = "method.unit_density={stalker: 0.08, zealot: 0.12}"
STACKED = ("agent.fc1.weight", "agent.rnn.weight_ih", "agent.rnn.weight_hh", "agent.fc2.weight")


def test_unit_types_of_smax_maps():
    assert unit_types("smax", "2s3z") == ["stalker"] * 2 + ["zealot"] * 3
    assert unit_types("smax", "3m") == ["marine"] * 3


def test_pattern_is_rescaled_to_the_budget():
    dens = agent_densities({"stalker": 0.08, "zealot": 0.12}, unit_types("smax", "2s3z"), 0.9)
    assert np.mean(dens) == pytest.approx(0.1)
    assert dens[0] / dens[2] == pytest.approx(0.08 / 0.12)


@pytest.mark.parametrize("overrides, needle", [
    (("method.unit_density={stalker: 0.1, marine: 0.1}",), "allowed keys: stalker, zealot"),
    (("method.unit_density={stalker: 0.3, zealot: 0.3}",), "1 - sparsity = 0.1000"),
    (("method.unit_density={stalker: 0.1, zealot: 0}",), "unit_density.zealot=0"),
    ((PATTERN, "agent.share_params=true"), "agent.share_params=false"),
    ((PATTERN, "method=dense"), "sparse method"),
])
def test_bad_unit_density_is_refused(tiny_cfg, overrides, needle):
    cfg = tiny_cfg(*PER_AGENT, *overrides)
    with pytest.raises(ConfigError) as e:
        validate(cfg)
    assert needle in str(e.value) and "\n" not in str(e.value)


def _controller(cfg) -> tuple[torch.nn.ModuleDict, SparsityController]:
    nets = QLearner.build_nets(cfg, smax_env_spec("2s3z"), Widths.from_config(cfg))
    return nets, SparsityController(nets, cfg.method, cfg.sparsity, cfg.t_max, cfg.seed)


def test_per_agent_densities_follow_the_pattern_and_survive_rigl(tiny_cfg):
    cfg = tiny_cfg(*PER_AGENT, PATTERN, "method=mast")
    validate(cfg)
    nets, sp = _controller(cfg)
    want = agent_densities({"stalker": 0.08, "zealot": 0.12}, unit_types("smax", "2s3z"), 0.9)
    for name in STACKED:
        got = sp.masks.per_agent_densities(name)
        np.testing.assert_allclose(got, want, atol=2 / nets.get_parameter(name)[0].numel() + 1e-3)
    mixer = {k: v for k, v in sp.masks.layer_densities().items() if k.startswith("mixer.")}
    assert all(abs(d - 0.1) < 0.01 for d in mixer.values())
    before = {n: sp.masks.masks[n].flatten(1).sum(1).clone() for n in STACKED}
    for p in nets.parameters():  # a RigL update with some dense gradient
        p.grad = torch.randn_like(p)
    opt = torch.optim.RMSprop(nets.parameters())
    sp.before_step(nets, opt, n_updates=cfg.method.update_interval_episodes, t_env=0)
    assert sp.last_update_stats["total"] > 0
    for n in STACKED:  # swaps happened within each agent's slice: counts unchanged per agent
        assert torch.equal(sp.masks.masks[n].flatten(1).sum(1), before[n])


def test_adaptive_allocation_moves_density_between_agents(tiny_cfg):
    """Without a pattern the stacked tensor is one layer with one budget: a RigL update whose
    dense gradient is largest in agent 0's slice grows agent 0's connections at the others'
    expense (a per-agent budget would keep every agent's count), and the layer's total holds."""
    cfg = tiny_cfg(*PER_AGENT, "method=mast")
    nets, sp = _controller(cfg)
    name = "agent.fc1.weight"
    before = sp.masks.masks[name].flatten(1).sum(1).clone()
    for p in nets.parameters():
        p.grad = 1e-3 * torch.randn_like(p)
    nets.get_parameter(name).grad[0] *= 1e4  # agent 0's slice: by far the largest gradients
    opt = torch.optim.RMSprop(nets.parameters())
    sp.before_step(nets, opt, n_updates=cfg.method.update_interval_episodes, t_env=0)
    after = sp.masks.masks[name].flatten(1).sum(1)
    assert after.sum() == before.sum()
    assert after[0] > before[0] and (after[1:] <= before[1:]).all() and (after[1:] < before[1:]).any()
    assert np.mean(sp.masks.per_agent_densities(name)) == pytest.approx(0.1, abs=1e-3)


def test_training_run_keeps_the_manual_pattern(tiny_cfg):
    cfg = tiny_cfg(*PER_AGENT, PATTERN, "method=mast", "t_max=240", "test_interval=240")
    out = Experiment(cfg).run()
    assert out["status"] == "finished"
    from mast.sparse.tickets import FINAL_SNAPSHOT, load_npz

    final = load_npz(__import__("pathlib").Path(out["dir"]) / FINAL_SNAPSHOT)
    want = agent_densities({"stalker": 0.08, "zealot": 0.12}, unit_types("smax", "2s3z"), 0.9)
    for n in STACKED:
        np.testing.assert_allclose(final[n].reshape(5, -1).mean(1), want, atol=0.002)
