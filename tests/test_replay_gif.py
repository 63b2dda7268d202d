"""Replays: `python -m mast.evaluate RUN --gif out.gif` writes an animated GIF of greedy SMAX
episodes of the run's checkpoint (frames drawn with matplotlib from the SMAX unit state, Pillow
writer)."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from mast.evaluate import main as evaluate_main
from mast.experiment import Experiment


def test_gif_is_written(tiny_cfg, tmp_path, capfd):
    out = Experiment(tiny_cfg("method=static", "sparsity=0.8", "t_max=120",
                              "test_interval=120")).run()
    gif = tmp_path / "replay.gif"
    rc = evaluate_main([out["dir"], "--gif", str(gif), "--gif-episodes", "2",
                        "--gif-max-steps", "3"])
    assert rc == 0
    info = json.loads(capfd.readouterr().out.strip().splitlines()[-1])
    assert 4 <= info["frames"] <= 8  # 2 episodes x (start + at most 3 steps)
    with Image.open(gif) as im:
        assert im.format == "GIF" and im.n_frames == info["frames"]


def test_gif_needs_one_run_with_a_checkpoint(tmp_path, capfd):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("seed: 0\nenv: {name: smax, map: 3m, episode_limit: null}\n")
    assert evaluate_main([str(run), "--gif", str(tmp_path / "x.gif")]) == 1
    assert "last.pt not found" in capfd.readouterr().err
    assert evaluate_main([str(run), str(run), "--gif", str(tmp_path / "x.gif")]) == 2
    assert not Path(tmp_path / "x.gif").exists()
