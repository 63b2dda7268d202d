"""Table result container and Markdown / CSV / LaTeX writers (no optional pandas deps)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

MISSING = "—"


@dataclass
class TableResult:
    name: str  # file stem, e.g. "table1"
    title: str
    display: pd.DataFrame  # strings, as printed
    numeric: pd.DataFrame  # numbers, written to CSV
    footnotes: list[str] = field(default_factory=list)
    sections: list[tuple[str, pd.DataFrame]] = field(default_factory=list)  # extra md tables


def fmt(v: float, digits: int = 1, suffix: str = "") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return MISSING
    return f"{v:.{digits}f}{suffix}"


def fmt_ci(v: float, lo: float, hi: float, digits: int = 1) -> str:
    if v is None or math.isnan(v):
        return MISSING
    if lo is None or math.isnan(lo) or math.isnan(hi):
        return fmt(v, digits)
    return f"{v:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def markdown_table(df: pd.DataFrame) -> str:
    def cell(x) -> str:
        return str(x).replace("|", "\\|").replace("\n", " ")

    cols = [cell(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in df.itertuples(index=False, name=None):
        lines.append("| " + " | ".join(cell(x) for x in row) + " |")
    return "\n".join(lines)


def to_markdown(res: TableResult) -> str:
    parts = [f"## {res.title}", "", markdown_table(res.display)]
    for heading, df in res.sections:
        parts += ["", f"### {heading}", "", markdown_table(df)]
    if res.footnotes:
        parts += [""] + [f"{i}. {note}" for i, note in enumerate(res.footnotes, 1)]
    return "\n".join(parts) + "\n"


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
        "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
        "—": "--", "±": r"$\pm$", "≠": r"$\neq$", "×": r"$\times$", "λ": r"$\lambda$",
        "α": r"$\alpha$", "ω": r"$\omega$", "Δ": r"$\Delta$", "…": r"\ldots{}"}


def tex_escape(s: object) -> str:
    return "".join(_TEX.get(ch, ch) for ch in str(s))


def to_latex(res: TableResult) -> str:
    df = res.display
    spec = "ll" + "r" * (len(df.columns) - 2) if len(df.columns) >= 2 else "l" * len(df.columns)
    lines = [r"\begin{table}[t]", r"\centering", r"\small",
             rf"\caption{{{tex_escape(res.title)}}}", rf"\begin{{tabular}}{{{spec}}}",
             r"\toprule", " & ".join(tex_escape(c) for c in df.columns) + r" \\", r"\midrule"]
    prev_alg = None
    for row in df.itertuples(index=False, name=None):
        vals = [tex_escape(x) for x in row]
        if len(vals) and vals[0] == prev_alg:
            vals[0] = ""
        elif len(vals):
            if prev_alg is not None:
                lines.append(r"\midrule")
            prev_alg = vals[0]
        lines.append(" & ".join(vals) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if res.footnotes:
        lines.append(r"\par\footnotesize")
        lines += [rf"{i}. {tex_escape(n)}\\" for i, n in enumerate(res.footnotes, 1)]
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def write(res: TableResult, out_dir: Path, tex: bool = True) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    md = out_dir / f"{res.name}.md"
    md.write_text(to_markdown(res))
    written.append(md)
    csv = out_dir / f"{res.name}.csv"
    num = res.numeric.copy()
    for col in num.columns:  # counts stay integers even where Avg. rows leave them empty
        if (col == "n" or str(col).endswith(" n") or col == "dense_n") and \
                pd.api.types.is_numeric_dtype(num[col]):
            num[col] = num[col].astype("Int64")
    num.to_csv(csv, index=False, float_format="%.6g")
    written.append(csv)
    if tex:
        tx = out_dir / f"{res.name}.tex"
        tx.write_text(to_latex(res))
        written.append(tx)
    return written
