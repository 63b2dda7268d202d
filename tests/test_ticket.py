"""Tickets (Fig. 10): the ticket run trains on exactly the source's final masks; sources of another
algo/map/shape are refused with one line before anything starts."""

from __future__ import annotations

import numpy as np
import pytest

from mast.config import ConfigError, validate
from mast.experiment import Experiment
from mast.sparse.tickets import FINAL_SNAPSHOT, load_npz


@pytest.fixture(scope="module")
def source_run(tmp_path_factory):
    """A finished tiny RigL run on 3m (its topology moved during training)."""
    from tests.conftest import compose_cfg

    results = tmp_path_factory.mktemp("tickets") / "results"
    cfg = compose_cfg(["method=rigl", "sparsity=0.8"], results_dir=str(results))
    out = Experiment(cfg).run()
    assert out["status"] == "finished"
    return results / out["run_id"]


def _masks(run_dir, pct):
    return load_npz(run_dir / "masks" / f"mask_t{pct:03d}.npz")


def test_ticket_trains_on_the_source_final_masks(source_run, tiny_cfg):
    cfg = tiny_cfg("method=ticket", f"method.mask_from={source_run}", "sparsity=0.8")
    validate(cfg)
    out = Experiment(cfg).run()
    assert out["status"] == "finished"
    src = load_npz(source_run / FINAL_SNAPSHOT)
    assert any(not np.array_equal(src[k], v) for k, v in _masks(source_run, 0).items()), \
        "the source's topology should have evolved (else the test proves nothing)"
    from pathlib import Path

    ticket_dir = Path(out["dir"])
    for pct in (0, 100):  # held fixed from the first to the last step
        got = _masks(ticket_dir, pct)
        assert got.keys() == src.keys()
        for k in src:
            np.testing.assert_array_equal(got[k], src[k], err_msg=k)


def test_ticket_from_a_mask_npz(source_run, tiny_cfg):
    from mast.learners.sparsity import initial_masks

    cfg = tiny_cfg("method=ticket", f"method.mask_from={source_run / FINAL_SNAPSHOT}",
                   "sparsity=0.8")
    validate(cfg)
    from mast.envs.smax import smax_env_spec
    from mast.learners.base import QLearner, Widths

    nets = QLearner.build_nets(cfg, smax_env_spec("3m"), Widths.from_config(cfg))
    import torch

    masks, _ = initial_masks(nets, cfg.method, 0.8, torch.Generator().manual_seed(0))
    src = load_npz(source_run / FINAL_SNAPSHOT)
    for k, v in masks.to_numpy().items():
        np.testing.assert_array_equal(v, src[k], err_msg=k)


@pytest.mark.parametrize("override, key", [
    ("algo=vdn", "algo.name"), ("env.map=2s3z", "env.map"),
    ("agent.rnn_hidden_dim=32", "agent.rnn_hidden_dim"), ("sparsity=0.9", "sparsity"),
])
def test_ticket_of_another_algo_map_or_shape_is_refused(source_run, tiny_cfg, override, key):
    cfg = tiny_cfg("method=ticket", f"method.mask_from={source_run}", "sparsity=0.8", override)
    with pytest.raises(ConfigError) as e:
        validate(cfg)
    msg = str(e.value)
    assert "\n" not in msg and "method.mask_from" in msg and key in msg


def test_ticket_npz_with_another_shape_is_refused(source_run, tiny_cfg, tmp_path):
    from mast.envs.smax import smax_env_spec
    from mast.learners.base import QLearner, Widths
    from mast.learners.sparsity import initial_masks
    from mast.sparse.tickets import TicketError

    src = load_npz(source_run / FINAL_SNAPSHOT)
    bad = tmp_path / "bad.npz"
    np.savez_compressed(bad, **{k: v[..., :-1] if k == "agent.fc1.weight" else v
                                for k, v in src.items()})
    cfg = tiny_cfg("method=ticket", f"method.mask_from={bad}", "sparsity=0.8")
    validate(cfg)  # a bare .npz is checked when the network exists
    nets = QLearner.build_nets(cfg, smax_env_spec("3m"), Widths.from_config(cfg))
    import torch

    with pytest.raises(TicketError, match=r"agent\.fc1\.weight has shape"):
        initial_masks(nets, cfg.method, 0.8, torch.Generator())
    cfg = tiny_cfg("method=ticket", f"method.mask_from={source_run / FINAL_SNAPSHOT}",
                   "sparsity=0.9")
    with pytest.raises(TicketError, match=r"has sparsity 0\.8000, this run sparsity=0\.9"):
        initial_masks(nets, cfg.method, 0.9, torch.Generator())


@pytest.mark.parametrize("override, needle", [
    ("method.mask_from=/nonexistent/run", "does not exist"),
    ("method.topology=rigl", "topology=static"),
])
def test_ticket_bad_source_or_recipe_is_refused(source_run, tiny_cfg, override, needle):
    cfg = tiny_cfg("method=ticket", f"method.mask_from={source_run}", "sparsity=0.8", override)
    with pytest.raises(ConfigError, match=needle):
        validate(cfg)


def test_ticket_defaults_to_the_random_ticket(tiny_cfg):
    cfg = tiny_cfg("method=ticket")
    assert cfg.method.mask_from == "random" and cfg.method.topology == "static"
    validate(cfg)
    with pytest.raises(ConfigError, match="method.mask_from is empty"):
        validate(tiny_cfg("method=ticket", "method.mask_from="))


def test_ticket_run_id_follows_the_mask_not_its_path(source_run, tiny_cfg, tmp_path):
    """A ticket relaunched from the source's archived copy (or another machine's results folder)
    is the same run; another mask is another run; 'random' keeps its own id."""
    import shutil

    from mast.config import run_id

    copy = tmp_path / "archive" / source_run.name
    shutil.copytree(source_run, copy)
    ids = {name: run_id(tiny_cfg("method=ticket", f"method.mask_from={src}", "sparsity=0.8"))
           for name, src in [("run", source_run), ("copy", copy),
                             ("npz", source_run / FINAL_SNAPSHOT),
                             ("earlier", source_run / "masks" / "mask_t000.npz"),
                             ("random", "random")]}
    assert ids["run"] == ids["copy"] == ids["npz"]
    assert len({ids["run"], ids["earlier"], ids["random"]}) == 3


def test_only_the_run_id_hashes_the_ticket(source_run, tiny_cfg):
    """W&B's config and the stored one keep the path: the analysis reads the source's method
    (MAST or RigL ticket) from it."""
    from mast.config import semantic_dict

    cfg = tiny_cfg("method=ticket", f"method.mask_from={source_run}", "sparsity=0.8")
    assert semantic_dict(cfg)["method"]["mask_from"] == str(source_run)
