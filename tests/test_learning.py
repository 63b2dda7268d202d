"""Slow learning checks (`make test-all`; excluded from `make test` and CI): real training runs on
SMAX 3m that must learn, not merely run. Budgets from the curves in the README: in the 400k sweep
dense QMIX first reached a 60% test win rate at 40k-60k env steps on seeds 0-2."""

from __future__ import annotations

import json

import pytest

from mast.experiment import Experiment

from .conftest import compose_cfg

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("method", ["dense", "mast"])
def test_qmix_learns_3m(tmp_path, method):
    cfg = compose_cfg([f"method={method}", "t_max=150000", "test_interval=10000", "final_window=3",
                       "wandb.mode=disabled", "progress=log"],
                      tiny=False, results_dir=str(tmp_path))
    exp = Experiment(cfg)
    assert exp.run()["status"] == "finished"
    rows = [json.loads(x) for x in (exp.store.dir / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["test_win_rate"] < 0.3  # it started from scratch
    assert max(r["test_win_rate"] for r in rows[-3:]) >= 0.6, [r["test_win_rate"] for r in rows]
