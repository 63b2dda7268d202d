"""Accounting (paper B.4) against the resource columns of the paper's Table 1 and hand counts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mast.accounting import (
    ALGOS,
    NetworkSizes,
    accounting_name,
    budget_densities,
    config_sizes,
    gru_flops,
    gru_size,
    layer_names,
    linear_flops,
    linear_size,
    mask_densities,
    networks,
    resource_ratios,
    resource_usage,
    train_flops_per_update,
)
from mast.envs.smac_maps import SMAC_MAPS

REPO = Path(__file__).resolve().parents[1]

# Paper Table 1: (algo, map, sparsity) -> (total size, train FLOPs, test FLOPs), ratios to dense.
TABLE1 = {
    ("qmix", "3m", 0.95): (0.066, 0.051, 0.050),
    ("qmix", "2s3z", 0.95): (0.062, 0.051, 0.050),
    ("qmix", "3s5z", 0.90): (0.109, 0.101, 0.100),
    ("qmix", "2c_vs_64zg", 0.90): (0.106, 0.100, 0.100),
    ("wqmix", "3m", 0.90): (0.108, 0.100, 0.100),
    ("wqmix", "2s3z", 0.90): (0.106, 0.100, 0.100),
    ("wqmix", "3s5z", 0.90): (0.105, 0.100, 0.100),
    ("wqmix", "2c_vs_64zg", 0.90): (0.104, 0.100, 0.100),
    ("res", "3m", 0.95): (0.066, 0.055, 0.050),
    ("res", "2s3z", 0.90): (0.111, 0.104, 0.100),
    ("res", "3s5z", 0.85): (0.158, 0.154, 0.150),
    ("res", "2c_vs_64zg", 0.85): (0.155, 0.151, 0.150),
}


@pytest.mark.parametrize(
    ("algo", "map_name", "sparsity"), list(TABLE1), ids=[f"{a}-{m}-{s:g}" for a, m, s in TABLE1]
)
def test_table1_resource_cell(algo, map_name, sparsity):
    ratios = resource_ratios(algo, SMAC_MAPS[map_name], sparsity)
    size, train, test = TABLE1[(algo, map_name, sparsity)]
    assert ratios["total_size"] == pytest.approx(size, abs=0.001)
    assert ratios["flops_train"] == pytest.approx(train, abs=0.002)
    assert ratios["flops_test"] == pytest.approx(test, abs=0.001)


def test_smac_specs_match_design():
    dims = {
        k: (s.obs_dim, s.state_dim, s.n_actions, s.n_agents, s.episode_limit)
        for k, s in SMAC_MAPS.items()
    }
    assert dims == {
        "3m": (30, 48, 9, 3, 60),
        "2s3z": (80, 120, 11, 5, 120),
        "3s5z": (128, 216, 14, 8, 150),
        "2c_vs_64zg": (332, 342, 70, 2, 400),
    }


def test_layer_formulas_by_hand():
    # one output of a dense 3-input linear: 3 multiplies + 2 adds
    assert linear_flops(3, 1) == 5
    assert linear_flops(3, 2, density=0.5) == 5
    assert linear_size(3, 2, density=0.5) == 3 + 2  # weights halved, biases dense
    assert gru_flops(2, 4) == 3 * 4 * (2 * 6 - 1)
    assert gru_size(2, 4, density=0.0) == 6 * 4  # only biases (bias_ih, bias_hh) remain


def test_qmix_3m_dense_counts_by_hand():
    spec = SMAC_MAPS["3m"]  # agent input 30 + 9 + 3 = 42, state 48
    agent_size = (42 * 64 + 64) + (3 * 64 * 128 + 6 * 64) + (64 * 9 + 9)
    mixer_size = 2 * (48 * 64 + 64) + (64 * 96 + 96) + (64 * 32 + 32) + 2 * (48 * 32 + 32) + 33
    agent_flops = 3 * (83 * 64 + 3 * 64 * 255 + 127 * 9)
    hyper_flops = 2 * 95 * 64 + 127 * 96 + 127 * 32 + 2 * 95 * 32 + 63
    mixer_flops = hyper_flops + 5 * 32 + 63
    usage = resource_usage("qmix", spec, 0.0, batch_size=32)
    assert usage["total_size"] == 2 * (agent_size + mixer_size)
    assert usage["flops_test"] == agent_flops
    assert usage["flops_train"] == 4 * 32 * (agent_flops + mixer_flops)


def test_dense_sizes_match_torch_modules():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    spec = SMAC_MAPS["2s3z"]
    n, s, h, e = spec.n_agents, spec.state_dim, 64, 32
    agent = nn.ModuleList(
        [nn.Linear(spec.agent_input_dim, h), nn.GRUCell(h, h), nn.Linear(h, spec.n_actions)]
    )
    hyper = nn.ModuleList(
        [nn.Sequential(nn.Linear(s, 64), nn.ReLU(), nn.Linear(64, e * n)),
         nn.Sequential(nn.Linear(s, 64), nn.ReLU(), nn.Linear(64, e)),
         nn.Linear(s, e),
         nn.Sequential(nn.Linear(s, e), nn.ReLU(), nn.Linear(e, 1))]
    )  # fmt: skip
    central = nn.ModuleList(
        [nn.Linear(s + n, 256), nn.Linear(256, 256), nn.Linear(256, 256), nn.Linear(256, 1),
         nn.Linear(s, 256), nn.Linear(256, 1)]
    )  # fmt: skip
    count = {name: sum(p.numel() for p in mod.parameters()) for name, mod in
             {"agent": agent, "mixer": hyper, "central_agent": agent, "central_mixer": central}.items()}  # fmt: skip
    ours = {net.name: net.size(0.0) for net in networks("wqmix", spec)}
    assert ours == count


def test_vdn_mixer_is_parameter_free_and_train_formulas():
    spec = SMAC_MAPS["3s5z"]
    vdn_mixer = networks("vdn", spec)[1]
    assert vdn_mixer.size(0.9) == 0 and vdn_mixer.flops(0.9) == spec.n_agents - 1
    f = {net.name: net.flops(0.5) for net in networks("wqmix", spec)}
    wq = train_flops_per_update("wqmix", spec, 0.5, batch_size=4)
    assert wq == pytest.approx(
        4 * (3 * f["agent"] + 3 * f["mixer"] + 4 * f["central_agent"] + 4 * f["central_mixer"])
    )
    res = train_flops_per_update("res", spec, 0.5, batch_size=4)
    assert res == pytest.approx(4 * (4 * f["agent"] + (3 + 2 * 8 * 14) * f["mixer"]))


def test_ratios_dense_is_one_and_batch_scales_linearly():
    spec = SMAC_MAPS["2c_vs_64zg"]
    for algo in ("qmix", "wqmix", "res", "vdn"):
        assert resource_ratios(algo, spec, 0.0) == pytest.approx(
            {"total_size": 1, "flops_train": 1, "flops_test": 1}
        )
        one = train_flops_per_update(algo, spec, 0.8, batch_size=1)
        assert train_flops_per_update(algo, spec, 0.8, batch_size=32) == pytest.approx(32 * one)


def test_per_layer_densities():
    spec = SMAC_MAPS["3m"]
    names = layer_names("wqmix", spec)
    assert "agent.rnn" in names and "central_mixer.V.1" in names
    uniform = resource_ratios("wqmix", spec, 0.9)
    assert resource_ratios("wqmix", spec, 0.0, densities={k: 0.1 for k in names}) == pytest.approx(
        uniform
    )
    # a dense fc2 costs more than the uniform 90% model
    mixed = resource_ratios("wqmix", spec, 0.9, densities={"agent.fc2": 1.0})
    assert mixed["total_size"] > uniform["total_size"]
    with pytest.raises(ValueError, match="allowed"):
        resource_ratios("qmix", spec, 0.9, densities={"agent.fc3": 0.5})


def test_mask_densities_name_layers_by_hand():
    """Sequential indices renumbered among weight layers, a GRU's two matrices one layer, an
    exempt (fully active) matrix dense."""
    counts = {"agent.fc1.weight": (10, 100), "agent.rnn.weight_ih": (30, 100),
              "agent.rnn.weight_hh": (10, 100), "agent.fc2.weight": (5, 5),
              "mixer.hyper_w1.0.weight": (1, 10), "mixer.hyper_w1.2.weight": (4, 10)}
    assert mask_densities("qmix", SMAC_MAPS["3m"], counts) == pytest.approx(
        {"agent.fc1": 0.1, "agent.rnn": 0.2, "agent.fc2": 1.0,
         "mixer.hyper_w1.0": 0.1, "mixer.hyper_w1.1": 0.4})
    with pytest.raises(ValueError, match="allowed"):
        mask_densities("qmix", SMAC_MAPS["3m"], {"agent.fc3.weight": (1, 2)})


# A run of every accounted network family: (overrides, env, accounting map name).
REAL_NETS = [
    (["algo=qmix", "env=smac"], "smac", "3m"),
    (["algo=wqmix", "env=smac"], "smac", "3m"),
    (["algo=res", "env=smac"], "smac", "2s3z"),
    (["algo=facmac", "env=smac"], "smac", "3m"),
    (["algo=comix", "env=mamujoco", "algo.twin_critics=true"], "mamujoco",
     "ManySegmentSwimmer-10x2"),
    (["+experiment=facmac_mamujoco"], "mamujoco", "Humanoid-9|8"),
]


def _real_learner(overrides, env, map_name, sparsity):
    """(cfg, spec, learner) of a run of `overrides` on `map_name`, its real networks built."""
    import torch

    from mast.accounting import env_spec
    from mast.learners.base import Widths, build_learner

    from .conftest import compose_cfg

    scenario, _, conf = map_name.partition("-")
    where = ([f"env.map={map_name}"] if env == "smac"
             else [f"env.scenario={scenario}", f"env.agent_conf='{conf}'"])
    cfg = compose_cfg([*overrides, *where], tiny=False)
    spec = env_spec(env, map_name)
    return cfg, spec, build_learner(cfg, spec, torch.device("cpu"), Widths.from_config(cfg),
                                    sparsity)


@pytest.mark.parametrize(("overrides", "env", "map_name"), REAL_NETS)
def test_budget_densities_are_a_runs_masks(overrides, env, map_name):
    """ERK from the accounting's weight shapes alone equals the per-layer densities of the masks
    a run draws over its real networks (so the shapes match the modules, GRU and stacks included)."""
    cfg, spec, learner = _real_learner(
        [*overrides, "method=static", "method.distribution=erk", "sparsity=0.9"], env, map_name,
        0.9)
    algo = accounting_name(cfg.algo)
    counts = {n: (int(m.sum()), m.numel()) for n, m in learner.sparse.masks.masks.items()}
    erk = budget_densities(algo, spec, 0.9, "erk")
    assert erk == mask_densities(algo, spec, counts)
    assert min(erk.values()) < 0.1 < max(erk.values())  # not the uniform budget
    assert budget_densities(algo, spec, 0.9, "uniform") is None


@pytest.mark.parametrize(("overrides", "env", "map_name"), REAL_NETS)
def test_a_runs_own_widths_are_counted(overrides, env, map_name):
    """`config_sizes` of a default config is the algorithm's default accounting; with every width
    overridden, the accounting's parameter count is that of the run's real networks (before the
    widths were read from the config, FACMAC's critic was counted at the actor's width)."""
    cfg, spec, learner = _real_learner(overrides, env, map_name, 0.0)
    algo = accounting_name(cfg.algo)
    assert config_sizes(cfg) == ALGOS[algo].default_sizes(spec)
    widths = ["agent.rnn_hidden_dim=24", "algo.mixing_embed_dim=12",
              "algo.hypernet_hidden_dim=20", "algo.central_hidden_dim=40"]
    if "hidden_dim" in cfg.algo:
        widths.append("algo.hidden_dim=36")
    cfg, spec, learner = _real_learner([*overrides, *widths], env, map_name, 0.0)
    real = sum(p.numel() for p in learner.nets.parameters())
    counted = sum(net.size(0.0) for net in networks(algo, spec, config_sizes(cfg)))
    assert counted == real
    assert counted < sum(net.size(0.0) for net in networks(algo, spec))


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"algo": "iql"}, "algo="),
        ({"sparsity": 1.0}, "sparsity="),
        ({"sparsity": -0.1}, "sparsity="),
    ],
)
def test_bad_arguments_name_key(kwargs, key):
    args = {"algo": "qmix", "spec": SMAC_MAPS["3m"], "sparsity": 0.5} | kwargs
    with pytest.raises(ValueError, match=f"{key}.*allowed"):
        resource_ratios(**args)


def test_network_sizes_change_counts():
    spec = SMAC_MAPS["3m"]
    small = resource_usage("qmix", spec, 0.0, sizes=NetworkSizes(rnn_hidden=32))
    assert small["total_size"] < resource_usage("qmix", spec, 0.0)["total_size"]


def _cli(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "mast.accounting", *args]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)


def test_cli_prints_one_json_object():
    proc = _cli("--algo", "qmix", "--env", "smac", "--map", "3m", "--sparsity", "0.95")
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert record["algo"] == "qmix" and record["map"] == "3m" and record["sparsity"] == 0.95
    assert (record["total_size"], record["flops_train"], record["flops_test"]) == pytest.approx(
        (0.066, 0.051, 0.050), abs=0.001
    )


@pytest.mark.parametrize(
    ("args", "key"),
    [
        (["--algo", "qmix", "--env", "smac", "--map", "5m_vs_6m", "--sparsity", "0.9"], "env.map="),
        (["--algo", "res", "--env", "smac", "--map", "3m", "--sparsity", "1.0"], "sparsity="),
        (["--algo", "iql", "--env", "smac", "--map", "3m", "--sparsity", "0.9"], "--algo"),
        (["--algo", "qmix", "--env", "smac", "--map", "3m", "--sparsity", "0.9",
          "--distribution", "er"], "distribution="),
    ],
)
def test_cli_bad_input(args, key):
    proc = _cli(*args)
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and key in lines[0] and "Traceback" not in proc.stderr
    assert "allowed" in lines[0] or "choose from" in lines[0]
