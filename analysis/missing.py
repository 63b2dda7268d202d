"""Which runs Table 1 still lacks, and the exact commands that launch them.

For every (algo, map) in the store: the seeds and sparsities already used, the dense baseline
seeds present, and the Table 1 methods missing at each sparsity. The commands reuse the
overrides recorded in the manifests of the dense baseline Table 1 normalises by (budget, any
knob, an experiment preset; all the group's runs where there is no dense run), and the cells
counted as missing are those at that baseline's budget, so a filled cell is comparable with its
denominator even when the store also holds shorter diagnostics of the same map; finished runs are
skipped when a command is relaunched.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pandas as pd

from .select import DENSE, METHODS, sparse_cells
from .store import Store

# Overrides the fill-in command sets itself (or that name where results go, not what is run).
OWN_KEYS = ("algo", "env", "env.map", "env.scenario", "env.agent_conf", "method", "sparsity",
            "seed", "results_dir")
SWEEP_PRESETS = ("table1",)  # presets that sweep the methods themselves: the command lists them


def _own(override: str) -> bool:
    key, _, value = override.partition("=")
    key = key.lstrip("+~")
    return (key in OWN_KEYS or key.startswith("hydra")
            or (key == "experiment" and value in SWEEP_PRESETS))


def _recorded_overrides(paths: list[str], t_max: float | None) -> list[str]:
    """Overrides shared by the runs' manifests, minus the ones the command sets; a store from
    before manifests recorded overrides falls back to the budget (t_max)."""
    seen = []
    for p in paths:
        try:
            ov = json.loads((Path(p) / "manifest.json").read_text()).get("overrides")
        except (OSError, ValueError):
            ov = None
        if ov is not None:
            seen.append([o for o in ov if not _own(o)])
    if seen:
        common = [o for o in seen[0] if all(o in s for s in seen[1:])]
        return common
    return [f"t_max={int(t_max)}"] if t_max and not pd.isna(t_max) else []


def _join(values) -> str:
    def one(v):
        f = float(v)
        return str(int(f)) if f.is_integer() else f"{f:g}"
    return ",".join(one(v) for v in sorted(set(values), key=float))


def _task(env: str, mp: str) -> list[str]:
    """The overrides naming the task: MA-MuJoCo's map name is derived from its scenario and
    agent_conf (`Humanoid-9|8`), which are what a run sets."""
    if env == "mamujoco":
        scenario, conf = mp.rsplit("-", 1)
        return [f"env.scenario={scenario}", shlex.quote(f"env.agent_conf={conf}")]
    return [shlex.quote(f"env.map={mp}")]


def _sparse_overrides(paths: list[str], dense_extra: list[str]) -> list[str]:
    """What the sparse methods' command repeats: the overrides all the group's Table 1 sparse
    runs share (a slice such as `method.distribution=erk`), or, without any, the dense
    baseline's minus its `method.*` knobs (a dense reference trained with TD(λ) does not make
    RigL a TD(λ) method)."""
    shared = _recorded_overrides(paths, None) if paths else []
    return shared or [o for o in dense_extra if not o.lstrip("+~").startswith("method.")]


def fill_in_commands(store: Store) -> list[str]:
    """One or two commands per (algo, map) with a missing dense seed or Table 1 cell."""
    fin = store.finished()
    cells = sparse_cells(store)
    baselines = cells["dense"]  # the dense runs Table 1 divides by
    commands = []
    for (algo, mp), group in fin.groupby(["algo", "map"]):
        seeds = set(group["seed"].dropna().astype(int))
        baseline = group[group["run_id"].isin(baselines.get((algo, mp), []))]
        budget = baseline["t_max"].max()  # NaN without a dense baseline
        source = group if baseline.empty else baseline
        extra = _recorded_overrides(source["path"].tolist(), source["t_max"].max())
        sparse = group[group["method"] != DENSE]
        if not pd.isna(budget):  # shorter diagnostics of the map are not Table 1 cells
            sparse = sparse[sparse["t_max"] == budget]
        sparsities = set(sparse["sparsity"].dropna())
        env = group["env"].dropna().iloc[0] if group["env"].notna().any() else "smax"
        head = ["python run.py -m", f"algo={algo}", f"env={env}", *_task(env, mp)]
        dense_seeds = set(group[group["method"] == DENSE]["seed"].dropna().astype(int))
        if seeds - dense_seeds:
            commands.append(" ".join(head + ["method=dense", f"seed={_join(seeds)}", *extra]))
        missing = sorted({m for m in METHODS for sp in sparsities
                          if set(sparse[(sparse["method"] == m) & (sparse["sparsity"] == sp)]
                                 ["seed"].dropna().astype(int)) != seeds},
                         key=METHODS.index)
        if missing and sparsities:
            chosen = {r for (a, m, _, _), ids in cells["cells"].items() if (a, m) == (algo, mp)
                      for r in ids}
            paths = sparse[sparse["run_id"].isin(chosen)]["path"].tolist()
            commands.append(" ".join(head + [f"method={','.join(missing)}",
                                             f"sparsity={_join(sparsities)}",
                                             f"seed={_join(seeds)}",
                                             *_sparse_overrides(paths, extra)]))
    return commands


def fill_in_note(store: Store) -> str | None:
    commands = fill_in_commands(store)
    if not commands:
        return None
    return ("To launch the missing runs (dense baselines and Table 1 methods over the seeds and "
            "sparsities already in the store; finished runs are skipped, add "
            "hydra.launcher.dry_run=true to list them first):\n"
            + "\n".join(f"    {c}" for c in commands))
