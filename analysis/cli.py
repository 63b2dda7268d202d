"""Command line: ``python -m analysis {table1,table5,tables,figures,sparse,ledger,compare,all} [options]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import aggregate as agg
from .render import TableResult, to_markdown, write
from .store import Store, StoreError, load_store
from .wandb_source import TIMEOUT_S, WandbUnavailable
from .where import WhereError, parse_where, restrict

COMMANDS = {
    "table1": "paper Table 1: win rates normalized to dense + resource ratios",
    "table5": "paper Table 5: raw final win rates mean ± std, Dense included",
    "tables": "ablation tables (paper Tables 6-10), one per varied config key",
    "figures": "PNG figures in <out>/figures and <out>/index.md",
    "sparse": "sparse-model analyses (Fig. 8 critical sparsity, Fig. 10 tickets, Fig. 12 "
              "per-agent masks, FLOPs frontier, critical searches) in <out>/sparse.md",
    "ledger": "one line per finished run (score, share of dense, final policy, best eval, wall "
              "time, commit) for closing notes; --runs GLOB picks run ids",
    "compare": "paired per-seed comparison of two methods per Table 1 cell (--pair A:B; "
               "default MAST against every other method and dense)",
    "all": "table1, table5, tables and figures",
}


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--results", default="results", help="results store (default: results)")
    common.add_argument("--out", default="reports", help="output folder (default: reports)")
    common.add_argument("--stat", choices=agg.STATS, default="mean",
                        help="statistic over seeds: mean, or iqm with a bootstrap 95%% CI")
    common.add_argument("--n-boot", type=int, default=agg.N_BOOT, help="bootstrap resamples")
    common.add_argument("--source", choices=("store", "wandb"), default="store")
    common.add_argument("--project", default=None, help="W&B project (source and --log-wandb)")
    common.add_argument("--entity", default=None, help="W&B entity")
    common.add_argument("--timeout", type=int, default=TIMEOUT_S, help="W&B timeout in seconds")
    common.add_argument("--log-wandb", action="store_true",
                        help="upload the tables as wandb.Table in a run with job_type analysis")
    common.add_argument("--mask-methods", default="mast",
                        help="comma-separated methods whose masks are drawn (figures)")
    common.add_argument("--mask-layers", default="agent.*",
                        help="comma-separated fnmatch patterns of layers drawn as heat-maps "
                             "(default agent.*; '*' for every layer)")
    common.add_argument("--runs", default="*", help="ledger: fnmatch pattern of run ids; "
                        "figures: also draw each matching run's curves, one line per run")
    common.add_argument("--where", action="append", default=[], metavar="KEY=VALUE",
                        help="keep runs whose config has KEY=VALUE (repeatable; method.* keys "
                             "and sparsity skip dense runs), e.g. --where method.distribution=erk")
    common.add_argument("--dense-where", action="append", default=[], metavar="KEY=VALUE",
                        help="keep dense runs with KEY=VALUE (repeatable): the dense reference, "
                             "e.g. --dense-where method.multistep=td_lambda")
    common.add_argument("--pair", action="append", default=[], metavar="A:B",
                        help="compare: methods to difference per seed (repeatable), e.g. "
                             "--pair mast:rigl --pair mast:dense")
    p = argparse.ArgumentParser(prog="python -m analysis", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    for name, help_ in COMMANDS.items():
        sub.add_parser(name, parents=[common], help=help_, description=help_)
    return p


def _load(args) -> Store:
    if args.source == "wandb":
        from .wandb_source import load_wandb
        return load_wandb(args.project, args.entity, timeout=args.timeout)
    return load_store(args.results)


def _err(msg: str) -> int:
    print(f"analysis: {msg}", file=sys.stderr)
    return 1


def _emit(res: TableResult, out: Path, tex: bool, note: str | None) -> list[Path]:
    if note:
        res.footnotes.append(note)
    files = write(res, out, tex=tex)
    print(to_markdown(res))
    return files


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .tables import NoData, build_ablation_tables, build_table1, build_table5

    try:
        store = _load(args)
    except (StoreError, WandbUnavailable) as e:
        return _err(str(e))
    if store.empty:
        return _err(f"no runs found in {store.source} (expected <results>/<run_id>/ folders "
                    "with summary.json, manifest.json, config.yaml, metrics.jsonl).")
    try:
        store, slice_note = restrict(store, parse_where(args.where),
                                     parse_where(args.dense_where, "--dense-where"))
    except WhereError as e:
        return _err(str(e))
    if slice_note:
        print(slice_note, file=sys.stderr)
    out = Path(args.out)
    cmd = args.command
    built: list[TableResult] = []
    images: list[Path] = []
    written: list[Path] = []
    try:
        if cmd in ("table1", "all"):
            built.append(build_table1(store, args.stat, args.n_boot))
            written += _emit(built[-1], out, tex=True, note=slice_note)
        if cmd in ("table5", "all"):
            built.append(build_table5(store, args.stat, args.n_boot))
            written += _emit(built[-1], out, tex=True, note=slice_note)
    except NoData as e:
        return _err(str(e))
    if cmd == "compare":
        from .compare import CompareError, build_compare, parse_pairs
        try:
            built.append(build_compare(store, parse_pairs(args.pair), args.n_boot))
        except CompareError as e:
            return _err(str(e))
        written += _emit(built[-1], out, tex=False, note=slice_note)
    if cmd == "ledger":
        from .ledger import build_ledger
        built.append(build_ledger(store, args.runs))
        written += _emit(built[-1], out, tex=False, note=slice_note)
    if cmd in ("tables", "all"):
        try:
            ablations = build_ablation_tables(store, args.stat, args.n_boot)
        except NoData as e:
            if store.finished().empty:  # nothing counts at all
                return _err(str(e))
            print(f"analysis: {e}", file=sys.stderr)  # a store without sweeps is not an error
            ablations = []
        for res in ablations:
            written += _emit(res, out, tex=False, note=slice_note)
        built += ablations
    if cmd in ("figures", "all"):
        from .figures import build_figures
        methods = [m.strip() for m in args.mask_methods.split(",") if m.strip()]
        layers = tuple(p.strip() for p in args.mask_layers.split(",") if p.strip())
        idx = build_figures(store, out, methods, layers, args.runs)
        images = [p for p in idx.files if p.suffix == ".png"]
        written += idx.files
        print(f"{len(images)} figure(s) in {out / 'figures'}; index: {out / 'index.md'}")
        for note in idx.notes:
            print(f"  skipped: {note}")
    if cmd == "sparse":
        from .sparse_figures import build_sparse_report
        idx = build_sparse_report(store, Path(args.results), out)
        images = [p for p in idx.files if p.suffix == ".png"]
        written += idx.files
        for note in idx.notes:
            print(f"  skipped: {note}")
    print("wrote: " + ", ".join(str(p) for p in written if p.suffix != ".png")
          + (f" (+{len(images)} PNG)" if images else ""), file=sys.stderr)
    if args.log_wandb:
        from .wandb_source import log_tables
        try:
            url = log_tables(built, args.project, args.entity, images, name=f"analysis-{cmd}",
                             timeout=args.timeout)
        except WandbUnavailable as e:
            return _err(str(e))
        print(f"logged {len(built)} table(s) to W&B: {url}", file=sys.stderr)
    return 0
