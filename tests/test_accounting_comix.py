"""COMIX accounting checked by hand (DESIGN §5 conventions, FACMAC's CEM: 64 samples × 2
iterations of Q_i forward passes per agent per step)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import pytest

from mast import accounting as A
from mast.config import COMIXConfig
from mast.envs.mamujoco_maps import PAPER_SPECS

from .conftest import ROOT


def test_default_sizes_are_the_config_defaults():
    c, sizes = COMIXConfig(name="comix"), A.COMIX_SIZES
    assert (sizes.cem_samples, sizes.cem_iterations) == (c.cem_samples, c.cem_iterations)
    assert (sizes.mlp_hidden, sizes.mixing_embed) == (c.hidden_dim, c.mixing_embed_dim)


def test_cem_budget_scales_the_agent_passes():
    """A run's own CEM budget (the Swimmer preset's 16 samples): K·I agent passes per greedy step
    and per target, so the test-FLOPs ratio stays the density while the train-FLOPs ratio moves."""
    spec = PAPER_SPECS["ManySegmentSwimmer-10x2"]
    small = replace(A.COMIX_SIZES, cem_samples=16, cem_iterations=3)
    f_agent = A.networks("comix", spec)[0].flops(0.9)
    f_mix = A.networks("comix", spec)[1].flops(0.9)
    got = A.resource_usage("comix", spec, 0.9, batch_size=10, sizes=small)
    assert got["flops_test"] == pytest.approx(48 * f_agent)
    assert got["flops_train"] == pytest.approx(10 * ((3 + 48) * f_agent + 4 * f_mix))
    ratios = A.resource_ratios("comix", spec, 0.9, sizes=small)
    assert ratios["flops_test"] == pytest.approx(0.1)
    assert ratios["flops_train"] != pytest.approx(A.resource_ratios("comix", spec, 0.9)["flops_train"])


def test_swimmer_by_hand():
    """ManySegmentSwimmer 10x2: n 10, obs 4, actions 2, state 44; agent input 4 + 10 + 2 = 16."""
    spec, s = PAPER_SPECS["ManySegmentSwimmer-10x2"], 0.9
    d = 1 - s
    m_agent = d * (16 * 400 + 400 * 400 + 400 * 1) + (400 + 400 + 1)
    f_agent = 10 * d * ((2 * 16 - 1) * 400 + (2 * 400 - 1) * 400 + (2 * 400 - 1) * 1)
    e, h = 64, 64  # FACMAC mixer: embed 64, hypernet 64
    m_mix = (d * (44 * h + h * e * 10 + 44 * h + h * e + 44 * e + 44 * e + e * 1)
             + (h + e * 10 + h + e + e + e + 1))
    f_mix = (d * ((2 * 44 - 1) * h + (2 * h - 1) * e * 10 + (2 * 44 - 1) * h + (2 * h - 1) * e
                  + (2 * 44 - 1) * e + (2 * 44 - 1) * e + (2 * e - 1) * 1)
             + (2 * 10 - 1) * e + (2 * e - 1))
    got = A.resource_usage("comix", spec, s, batch_size=32)
    assert got["total_size"] == pytest.approx(2 * (m_agent + m_mix))
    assert got["flops_train"] == pytest.approx(32 * ((3 + 64 * 2) * f_agent + 4 * f_mix))
    assert got["flops_test"] == pytest.approx(64 * 2 * f_agent)
    ratios = A.resource_ratios("comix", spec, s)
    assert ratios["flops_test"] == pytest.approx(0.1)  # CEM passes cancel in the ratio


def test_humanoid_pads_inputs_to_the_largest_agent():
    spec = PAPER_SPECS["Humanoid-9|8"]
    fc1 = A.networks("comix", spec)[0].layers[0]
    assert (fc1.in_dim, fc1.out_dim) == (236 + 2 + 9, 400)


def test_cli_prints_one_json_object():
    out = subprocess.run([sys.executable, "-m", "mast.accounting", "--algo", "comix", "--env",
                          "mamujoco", "--map", "Humanoid-9|8", "--sparsity", "0.9"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    rec = json.loads(out.stdout)
    assert rec["map"] == "Humanoid-9|8" and 0.1 < rec["total_size"] < 0.11
    bad = subprocess.run([sys.executable, "-m", "mast.accounting", "--algo", "comix", "--env",
                          "mamujoco", "--map", "Humanoid-2x3", "--sparsity", "0.9"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "allowed values: 9|8" in bad.stderr


def test_twin_critics_count_the_second_critic():
    """`comix-twin` (algo.twin_critics): size 2(M_A + M_M) per critic, training FLOPs COMIX's
    plus B(4F_A2 + 4F_M2) (online forward + backward, target at the CEM action), test FLOPs the
    acting critic's CEM only; a run's config picks the entry."""
    from omegaconf import OmegaConf

    spec, s, b = PAPER_SPECS["ManySegmentSwimmer-10x2"], 0.9, 32
    one = A.resource_usage("comix", spec, s, batch_size=b)
    nets = {n.name: n for n in A.networks("comix-twin", spec)}
    f_a, f_m = nets["agent2"].flops(s), nets["mixer2"].flops(s)
    twin = A.resource_usage("comix-twin", spec, s, batch_size=b)
    assert twin["total_size"] == pytest.approx(2 * one["total_size"])
    assert twin["flops_train"] == pytest.approx(one["flops_train"] + b * 4 * (f_a + f_m))
    assert twin["flops_test"] == one["flops_test"]
    assert f_a == nets["agent"].flops(s) and "agent2.fc1" in A.layer_names("comix-twin", spec)
    cfg = OmegaConf.create({"name": "comix", "twin_critics": True})
    assert A.accounting_name(cfg) == "comix-twin"
    assert A.accounting_name(OmegaConf.create({"name": "comix"})) == "comix"
