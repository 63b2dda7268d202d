"""FACMAC accounting checked by hand (DESIGN §5 conventions): actor, critic and mixer, online and
target copies; train FLOPs B(4F_A + 6F_C + 6F_M); test FLOPs = F_Actor."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mast import accounting as A
from mast.accounting_facmac import facmac_train_flops
from mast.envs.mamujoco_maps import PAPER_SPECS
from mast.envs.smac_maps import smac_env_spec

from .conftest import ROOT


def test_3m_dense_by_hand():
    """SMAC 3m: obs 30, state 48, 9 actions, 3 agents. Actor input 30 + 9 + 3 = 42 → 64, GRU 64,
    → 9; critic [30 + 3 + 9] → 64 → 64 → 1; QMIX mixer embed 32, hypernet 64."""
    actor = (42 * 64 + 64) + (3 * 64 * 128 + 6 * 64) + (64 * 9 + 9)  # 28297
    critic = (42 * 64 + 64) + (64 * 64 + 64) + (64 + 1)  # 6977
    mixer = 3136 + 6240 + 3136 + 2080 + 1568 + 1568 + 33  # 17761
    f_actor = 3 * ((2 * 42 - 1) * 64 + 3 * 64 * (2 * 128 - 1) + (2 * 64 - 1) * 9)  # 166245
    f_critic = 3 * ((2 * 42 - 1) * 64 + (2 * 64 - 1) * 64 + (2 * 64 - 1))  # 40701
    f_mixer = (95 * 64 + 127 * 96 + 95 * 64 + 127 * 32 + 95 * 32 + 95 * 32 + 63
               + (2 * 3 - 1) * 32 + (2 * 32 - 1))  # 34782
    got = A.resource_usage("facmac", smac_env_spec("3m"), 0.0, batch_size=32)
    assert got["total_size"] == 2 * (actor + critic + mixer) == 106070
    assert got["flops_test"] == f_actor == 166245
    assert got["flops_train"] == 32 * (4 * f_actor + 6 * f_critic + 6 * f_mixer) == 35772096


def test_swimmer_sparse_by_hand():
    """ManySegmentSwimmer 10x2 (continuous): obs 4, 2 action dims, 10 agents, state 44. Actor
    [4 + 10] → 400 → 400 → 2, critic [4 + 10 + 2] → 400 → 400 → 1, mixer embed 64."""
    spec, s = PAPER_SPECS["ManySegmentSwimmer-10x2"], 0.9
    d = 1 - s
    m_actor = d * (14 * 400 + 400 * 400 + 400 * 2) + (400 + 400 + 2)
    m_critic = d * (16 * 400 + 400 * 400 + 400) + (400 + 400 + 1)
    f_actor = 10 * d * (27 * 400 + 799 * 400 + 799 * 2)
    f_critic = 10 * d * (31 * 400 + 799 * 400 + 799)
    e, h = 64, 64
    m_mix = (d * (44 * h + h * e * 10 + 44 * h + h * e + 44 * e + 44 * e + e)
             + (h + e * 10 + h + e + e + e + 1))
    f_mix = (d * (87 * h + (2 * h - 1) * e * 10 + 87 * h + (2 * h - 1) * e + 87 * e + 87 * e
                  + (2 * e - 1)) + (2 * 10 - 1) * e + (2 * e - 1))
    got = A.resource_usage("facmac", spec, s, batch_size=32)
    assert got["total_size"] == pytest.approx(2 * (m_actor + m_critic + m_mix))
    assert got["flops_test"] == pytest.approx(f_actor)
    assert got["flops_train"] == pytest.approx(32 * (4 * f_actor + 6 * f_critic + 6 * f_mix))


def test_soft_mellowmax_support_adds_target_critic_passes():
    f = {"actor": 1.0, "critic": 10.0, "mixer": 100.0}
    one = facmac_train_flops(f, smac_env_spec("3m"), 32)
    assert facmac_train_flops(f, smac_env_spec("3m"), 32, operator_support=9) - one == 32 * 8 * 10


def test_cli_prints_facmac_ratios():
    out = subprocess.run([sys.executable, "-m", "mast.accounting", "--algo", "facmac", "--env",
                          "smac", "--map", "3m", "--sparsity", "0.9"], capture_output=True,
                         text=True, cwd=ROOT, check=True).stdout
    rec = json.loads(out)
    assert (rec["total_size"], rec["flops_train"], rec["flops_test"]) == (0.1154, 0.1011, 0.1)
