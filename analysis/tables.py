"""Result tables: records -> one flat DataFrame -> CSV and Markdown; ablation tables (methods as
rows, dataset metrics as columns, the best of each column marked, the paper's numbers beside)
in Markdown, LaTeX (booktabs) and CSV."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from analysis.paper import PAPER_METRIC, paper_value

ID_COLUMNS = ["dataset", "extractor", "aggregator", "dim", "fit_on"]
TIME_COLUMNS = ["extract_s", "aggregate_s"]
#: columns that describe a run rather than measure it
DESCRIPTIVE = ["dataset", "feature_type", "extractor", "aggregator", "aggregator_class", "params",
               "dim", "fit_on", "whiten", "experiment", "config_hash", "job_dir", "timestamp"]
#: candidate row keys of an ablation table, in display order
METHOD_COLUMNS = ["feature_type", "extractor", "aggregator", "params", "dim", "fit_on", "whiten"]
PAPER_SUFFIX = " (paper)"


def records_frame(records: list[dict]) -> pd.DataFrame:
    """One row per record: identity columns, every metric, timings, config hash; aggregator
    hyper-parameters also as ``agg.NAME`` columns and as one ``params`` string ("p=3")."""
    rows = []
    for r in records:
        post = r.get("postprocess", {})
        params = r.get("aggregator_params", {}) or {}
        row = {"dataset": r["dataset"], "feature_type": r.get("feature_type", "deep"),
               "extractor": r.get("extractor"), "aggregator": r["aggregator"],
               "aggregator_class": r.get("aggregator_class"),
               "params": ", ".join(f"{k}={v}" for k, v in sorted(params.items())),
               "dim": r["dim"], "fit_on": post.get("fit_on"), "whiten": post.get("whiten"),
               "experiment": r.get("experiment")}
        row.update({f"agg.{k}": v for k, v in params.items()})
        row.update(r["metrics"])
        row.update(r.get("timings", {}))
        row["config_hash"] = r.get("config_hash")
        row["job_dir"] = r.get("job_dir")
        row["timestamp"] = r.get("timestamp")
        rows.append(row)
    return pd.DataFrame(rows)


def metric_columns(df: pd.DataFrame) -> list[str]:
    """The measured columns: everything but descriptions, ``agg.*``, timings and counts."""
    return [c for c in df.columns if c not in DESCRIPTIVE and not c.startswith("agg.")
            and not c.endswith("_s") and not c.endswith("n_evaluated")]


def paper_column(df: pd.DataFrame) -> pd.Series:
    """Per row, the paper's number for the same setting (aggregator, dataset, 256-D, deep
    features; mAP, or N-S for UKBench), else NaN."""
    def value(r):
        metric = PAPER_METRIC.get(r["dataset"])
        v = paper_value(r["aggregator"], r["dataset"], metric, r.get("dim"),
                        r.get("feature_type", "deep")) if metric else None
        return float("nan") if v is None else v
    return df.apply(value, axis=1) if len(df) else pd.Series(dtype=float)


def format_table(df: pd.DataFrame) -> str:
    """Markdown table: identity, metrics (3 decimals), the paper's number where the setting is
    the paper's (column ``paper``), extraction and aggregation seconds."""
    cols = [c for c in ID_COLUMNS if c in df.columns] + metric_columns(df)
    out = df[cols].copy()
    paper = paper_column(df)
    if paper.notna().any():
        out["paper"] = paper
    for c in TIME_COLUMNS:
        if c in df.columns:
            out[c] = df[c]
    return out.to_markdown(index=False, floatfmt=".3f")


def write_tables(df: pd.DataFrame, out_dir: Path) -> None:
    """``results.csv`` (every column) and ``table.md`` (format_table) in ``out_dir``."""
    out_dir = Path(out_dir)
    df.to_csv(out_dir / "results.csv", index=False)
    (out_dir / "table.md").write_text(format_table(df) + "\n")


# ----------------------------------------------------------------------------- ablation
def method_columns(df: pd.DataFrame) -> list[str]:
    """The method columns that vary across ``df``: always ``aggregator``; ``params`` only where
    one aggregator was run with several settings."""
    def varies(c: str) -> bool:
        if c == "params":
            return bool((df.astype({c: str}).groupby("aggregator")[c].nunique() > 1).any())
        return df[c].astype(str).nunique() > 1
    return [c for c in METHOD_COLUMNS if c in df.columns and (c == "aggregator" or varies(c))]


def ablation_table(df: pd.DataFrame, metrics: Sequence[str] = ("mAP", "N-S"),
                   index: Sequence[str] | None = None, paper: bool = True) -> pd.DataFrame:
    """Methods as rows (``index``, default ``method_columns``), one column ``"DATASET METRIC"``
    per dataset and metric that has values, each followed by ``"DATASET METRIC (paper)"`` where
    the paper reports a number for some row (paper.paper_value: same aggregator and dataset,
    256-D, deep features). A cell several records share holds the newest record's value."""
    index = list(index) if index is not None else method_columns(df)
    df = df.sort_values("timestamp", kind="stable") if "timestamp" in df.columns else df
    key_of = lambda r: tuple(r[c] for c in index)  # noqa: E731
    keys = sorted(dict.fromkeys(key_of(r) for _, r in df.iterrows()), key=_sort_key)
    columns: dict[str, list] = {}
    for dataset in sorted(df["dataset"].unique()):
        sub = df[df["dataset"] == dataset]
        for metric in metrics:
            if metric not in sub.columns or sub[metric].isna().all():
                continue
            values, refs = {}, {}
            for _, r in sub[sub[metric].notna()].iterrows():  # newest last: it wins
                values[key_of(r)] = r[metric]
                refs[key_of(r)] = paper_value(r["aggregator"], dataset, metric, r["dim"],
                                              r.get("feature_type"))
            columns[f"{dataset} {metric}"] = [values.get(k, np.nan) for k in keys]
            if paper and any(v is not None for v in refs.values()):
                columns[f"{dataset} {metric}{PAPER_SUFFIX}"] = [
                    np.nan if refs.get(k) is None else refs[k] for k in keys]
    table = pd.DataFrame(columns, index=pd.MultiIndex.from_tuples(keys, names=index), dtype=float)
    return table.dropna(how="all")


def _sort_key(key: tuple) -> tuple:
    """Numbers in numeric order, then strings; None last."""
    return tuple((2, "") if v is None or v != v else (0, v, "") if isinstance(v, (int, float))
                 else (1, str(v)) for v in key)


def best_mask(table: pd.DataFrame, decimals: int = 3) -> pd.DataFrame:
    """True at the best value (highest, at the displayed precision; ties all marked) of every
    measured column; paper columns are never marked."""
    mask = pd.DataFrame(False, index=table.index, columns=table.columns)
    for c in table.columns:
        if c.endswith(PAPER_SUFFIX) or table[c].isna().all():
            continue
        v = table[c].round(decimals)
        mask[c] = v == v.max()
    return mask


def _cells(table: pd.DataFrame, decimals: int, bold) -> list[list[str]]:
    """Row-major cell strings: the method keys, then the values (``bold`` applied to the best)."""
    best = best_mask(table, decimals)
    rows = []
    for i, key in enumerate(table.index):
        cells = ["" if pd.isna(k) else str(k) for k in (key if isinstance(key, tuple) else (key,))]
        for v, b in zip(table.iloc[i], best.iloc[i]):
            s = "" if pd.isna(v) else f"{v:.{decimals}f}"
            cells.append(bold(s) if s and b else s)
        rows.append(cells)
    return rows


def to_markdown(table: pd.DataFrame, decimals: int = 3) -> str:
    """Markdown with the best value of each measured column in bold."""
    header = list(table.index.names) + list(table.columns)
    rows = _cells(table, decimals, lambda s: f"**{s}**")
    align = ["---"] * table.index.nlevels + ["---:"] * table.shape[1]
    lines = [header, align] + rows
    return "\n".join("| " + " | ".join(r) + " |" for r in lines)


def _tex(s: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"),
                 ("#", r"\#"), ("$", r"\$"), ("{", r"\{"), ("}", r"\}")):
        s = s.replace(a, b)
    return s


def to_latex(table: pd.DataFrame, decimals: int = 3) -> str:
    """A booktabs tabular with the best value of each measured column in \\textbf."""
    n_key = table.index.nlevels
    header = [_tex(str(c)) for c in list(table.index.names) + list(table.columns)]
    rows = [[_tex(c) if i < n_key else c for i, c in enumerate(r)]
            for r in _cells(table, decimals, lambda s: rf"\textbf{{{s}}}")]
    lines = [rf"\begin{{tabular}}{{{'l' * n_key}{'r' * table.shape[1]}}}", r"\toprule",
             " & ".join(header) + r" \\", r"\midrule"]
    lines += [" & ".join(r) + r" \\" for r in rows]
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def write_ablation(table: pd.DataFrame, out_dir: Path, stem: str = "ablation",
                   decimals: int = 3) -> dict[str, Path]:
    """``stem.md``, ``stem.tex`` and ``stem.csv`` in ``out_dir``; returns their paths by format."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {fmt: out_dir / f"{stem}.{fmt}" for fmt in ("md", "tex", "csv")}
    paths["md"].write_text(to_markdown(table, decimals) + "\n")
    paths["tex"].write_text(to_latex(table, decimals))
    table.to_csv(paths["csv"])
    return paths
