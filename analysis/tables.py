"""Result tables: records -> one flat DataFrame -> CSV and Markdown; ablation tables (methods as
rows, dataset metrics as columns, the best of each column marked, the paper's numbers beside)
in Markdown, LaTeX (booktabs) and CSV, written by pandas (tabulate, Styler); the gain of
re-ranking over the same setting without it."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from analysis.paper import NO_RERANK, PAPER_METRIC, mark_reconstruction, paper_value
from benchmarks.errors import OutputError

ID_COLUMNS = ["dataset", "extractor", "scales", "aggregator", "rerank", "dim", "codes", "fit_on"]
#: the ``scales`` of a single-scale run (every record of versions without multi-scale runs)
SINGLE_SCALE = "1"
#: the ``codes`` of a run that searched its float32 descriptors
NO_CODES = "none"
TIME_COLUMNS = ["extract_s", "aggregate_s"]
#: columns that describe a run rather than measure it
DESCRIPTIVE = ["dataset", "feature_type", "extractor", "scales", "aggregator", "aggregator_class",
               "params", "codes", "bytes",
               "rerank", "rerank_label", "dim", "fit_on", "whiten", "whitening", "experiment", "config_hash",
               "job_dir", "timestamp", "status", "error"]
#: candidate row keys of an ablation table, in display order
METHOD_COLUMNS = ["feature_type", "extractor", "scales", "aggregator", "params", "rerank",
                  "rerank_label", "dim", "codes", "fit_on", "whitening"]
#: what makes two runs the same setting apart from their re-ranking
SETTING_COLUMNS = ["dataset", "feature_type", "extractor", "scales", "aggregator", "params", "dim",
                   "codes", "fit_on", "whitening"]
PAPER_SUFFIX = " (paper)"


def records_frame(records: list[dict]) -> pd.DataFrame:
    """One row per record: identity columns, every metric, timings, config hash; aggregator
    hyper-parameters also as ``agg.NAME`` columns and as one ``params`` string ("p=3");
    ``rerank`` (the rerank config, "none" for records without one) and ``rerank_label`` (the
    record's label, else the config name; reconstructions say so)."""
    rows = []
    for r in records:
        post = r.get("postprocess", {})
        params = r.get("aggregator_params", {}) or {}
        rerank = r.get("rerank") or NO_RERANK
        row = {"dataset": r.get("dataset", "?"), "feature_type": r.get("feature_type", "deep"),
               "extractor": r.get("extractor"), "scales": r.get("scales", SINGLE_SCALE),
               "aggregator": r.get("aggregator", "?"),
               "aggregator_class": r.get("aggregator_class"),
               "params": ", ".join(f"{k}={v}" for k, v in sorted(params.items())),
               "rerank": rerank,
               "rerank_label": mark_reconstruction(str(r.get("rerank_label") or rerank), rerank),
               "dim": r.get("dim"), "codes": r.get("codes") or NO_CODES,
               "bytes": r.get("bytes_per_image") or (4 * r["dim"] if r.get("dim") else None),
               "fit_on": post.get("fit_on"), "whiten": post.get("whiten"),
               "whitening": whitening_label(post, r.get("dataset")),
               "experiment": r.get("experiment"), "status": r.get("status", "ok"),
               "error": r.get("error", "")}
        row.update({f"agg.{k}": v for k, v in params.items()})
        row.update(r.get("metrics") or {})
        row.update(r.get("timings", {}))
        row["config_hash"] = r.get("config_hash")
        row["job_dir"] = r.get("job_dir")
        row["timestamp"] = r.get("timestamp")
        rows.append(row)
    df = pd.DataFrame(rows)
    if "dim" in df.columns:   # failed rows without PCA have no dim: keep the column integer
        df["dim"] = pd.array([None if d is None or d != d else int(d) for d in df["dim"]],
                             dtype="Int64")
    return df


def whitening_label(post: dict, dataset: str | None = None) -> str:
    """The learned projection of a record's postprocess settings as tables name it: "none",
    "PCA", "PCA-whitening", "PCA-whitening p=0.25", "... shrinkage 0.1", "learned whitening",
    which says "(test set's ground truth)" when it learned on the test ``dataset`` itself
    (records of versions without the variants: PCA or PCA-whitening by ``whiten``)."""
    if not post.get("pca", True):
        return "none"
    shrink = post.get("shrinkage") or 0
    suffix = f" shrinkage {shrink:g}" if shrink else ""
    if post.get("whitening", "pca") == "learned":
        on_test = dataset is not None and post.get("fit_on") == dataset
        return "learned whitening" + suffix + (" (test set's ground truth)" if on_test else "")
    if not post.get("whiten", True):
        return "PCA"
    power = post.get("whiten_power", 0.5)
    return "PCA-whitening" + (f" p={power:g}" if power != 0.5 else "") + suffix


def reranks(df: pd.DataFrame) -> pd.Series:
    """The rerank config of every row ("none" where the frame or the row has none)."""
    if "rerank" not in df.columns:
        return pd.Series(NO_RERANK, index=df.index, dtype=object)
    return df["rerank"].fillna(NO_RERANK)


def rerank_names(df: pd.DataFrame) -> pd.Series:
    """``reranks`` as tables print them: " (reconstruction)" after reconstructed ones."""
    return reranks(df).map(lambda r: mark_reconstruction(str(r), r))


def has_rerank(df: pd.DataFrame) -> bool:
    """Whether some row was re-ranked."""
    return bool((reranks(df) != NO_RERANK).any())


def one_rerank(df: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The rows of one re-ranking, for figures about something else (aggregation, features):
    those without re-ranking when there are any, else those of the most frequent rerank config
    (the first by name among equally frequent ones); and that config."""
    rr = reranks(df)
    if len(df) == 0 or (rr == NO_RERANK).any():
        return df[rr == NO_RERANK], NO_RERANK
    counts = rr.value_counts()
    pick = sorted(counts[counts == counts.max()].index)[0]
    return df[rr == pick], pick


def metric_columns(df: pd.DataFrame) -> list[str]:
    """The measured columns: everything but descriptions, ``agg.*``, timings and counts."""
    return [c for c in df.columns if c not in DESCRIPTIVE and not c.startswith("agg.")
            and not c.endswith("_s") and not c.endswith("n_evaluated")]


def paper_column(df: pd.DataFrame) -> pd.Series:
    """Per row, the paper's number for the same setting (aggregator, dataset, 256-D, deep
    features, one scale, no re-ranking; mAP, or N-S for UKBench), else NaN."""
    def value(r):
        metric = PAPER_METRIC.get(r["dataset"])
        v = row_paper_value(r, r["dataset"], metric) if metric else None
        return float("nan") if v is None else v
    return df.assign(rerank=reranks(df)).apply(value, axis=1) if len(df) else pd.Series(dtype=float)


def row_paper_value(r, dataset: str, metric: str) -> float | None:
    """The paper's number for a frame row's setting (its aggregator, dimension, feature type and
    re-ranking, at one scale and in float: the paper extracted at one and searched floats),
    else None."""
    if r.get("scales", SINGLE_SCALE) != SINGLE_SCALE or r.get("codes", NO_CODES) != NO_CODES:
        return None
    return paper_value(r["aggregator"], dataset, metric, r.get("dim"), r.get("feature_type", "deep"),
                       r["rerank"])


def format_table(df: pd.DataFrame) -> str:
    """Markdown table: identity (``rerank`` only when some row was re-ranked), metrics
    (3 decimals), the paper's number where the setting is the paper's (column ``paper``),
    extraction and aggregation seconds; ``status`` and ``error`` (its first line) when some
    configuration of a sweep failed."""
    ids = [c for c in ID_COLUMNS if c in df.columns and (c != "rerank" or has_rerank(df))
           and (c != "scales" or bool((df[c] != SINGLE_SCALE).any()))
           and (c != "codes" or bool((df[c] != NO_CODES).any()))]
    failed = "status" in df.columns and bool((df["status"] != "ok").any())
    out = df[ids + (["status"] if failed else []) + metric_columns(df)].copy()
    if "rerank" in ids:
        out["rerank"] = rerank_names(df)
    paper = paper_column(df)
    if paper.notna().any():
        out["paper"] = paper
    for c in TIME_COLUMNS:
        if c in df.columns:
            out[c] = df[c]
    if failed:
        out["error"] = df["error"].fillna("").astype(str).map(lambda e: e.splitlines()[0][:120] if e else "")
        out = out.astype(object).where(out.notna(), None)    # a failed row has no numbers: blank
    return out.to_markdown(index=False, floatfmt=".3f", missingval="")


def write_tables(df: pd.DataFrame, out_dir: Path) -> None:
    """``results.csv`` (every column) and ``table.md`` (format_table) in ``out_dir``, each
    written whole or not at all (a full disk leaves the previous file, and says so)."""
    out_dir = Path(out_dir)
    write_whole(out_dir / "results.csv", df.to_csv(index=False))
    write_whole(out_dir / "table.md", format_table(df) + "\n")


def write_whole(path: Path, text: str) -> None:
    """``text`` into ``path`` through a temporary file renamed into place; an OSError (a full
    disk, permissions) is an OutputError naming the file, with the previous file kept."""
    import os
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {path} ({e.strerror or e}); the results are in "
                          f"{path.parent / 'results.jsonl'} where that could be written: free space "
                          "and run deepagg-report or the sweep again") from e


# ----------------------------------------------------------------------------- ablation
def method_columns(df: pd.DataFrame) -> list[str]:
    """The method columns that vary across ``df``: always ``aggregator``; ``params`` only where
    one aggregator was run with several settings; ``rerank`` where some row was re-ranked;
    ``rerank_label`` only where one rerank config was run with several settings."""
    def varies(c: str) -> bool:
        if c == "params":
            return bool((df.astype({c: str}).groupby("aggregator")[c].nunique() > 1).any())
        if c == "rerank":
            return has_rerank(df)
        if c == "rerank_label":
            return bool((df[c].astype(str).groupby(reranks(df)).nunique() > 1).any())
        return df[c].astype(str).nunique() > 1
    return [c for c in METHOD_COLUMNS if c in df.columns and (c == "aggregator" or varies(c))]


#: the metrics of an ablation table: mAP (Medium on revisited data) with revisited Easy and Hard
#: beside it, UKBench's N-S, GLDv2's mAP@100 where a run computed it
ABLATION_METRICS = ("E/mAP", "mAP", "H/mAP", "N-S", "mAP@100")


def ablation_table(df: pd.DataFrame, metrics: Sequence[str] = ABLATION_METRICS,
                   index: Sequence[str] | None = None, paper: bool = True) -> pd.DataFrame:
    """Methods as rows (``index``, default ``method_columns``; runs without re-ranking first),
    one column ``"DATASET METRIC"`` per dataset and metric that has values, each followed by
    ``"DATASET METRIC (paper)"`` where the paper reports a number for some row (paper.paper_value:
    same aggregator and dataset, 256-D, deep features, no re-ranking). A ``rerank`` key reads as
    ``rerank_names``. A cell several records share holds the newest record's value."""
    index = list(index) if index is not None else method_columns(df)
    df = df.sort_values("timestamp", kind="stable") if "timestamp" in df.columns else df
    df = df.assign(rerank=rerank_names(df))  # "none" stays "none": paper_value still tells
    key_of = lambda r: tuple(r[c] for c in index)  # noqa: E731
    keys = sorted(dict.fromkeys(key_of(r) for _, r in df.iterrows()),
                  key=lambda k: _sort_key(k, index))
    columns: dict[str, list] = {}
    for dataset in sorted(df["dataset"].unique()):
        sub = df[df["dataset"] == dataset]
        for metric in metrics:
            if metric not in sub.columns or sub[metric].isna().all():
                continue
            values, refs = {}, {}
            for _, r in sub[sub[metric].notna()].iterrows():  # newest last: it wins
                values[key_of(r)] = r[metric]
                refs[key_of(r)] = row_paper_value(r, dataset, metric)
            columns[f"{dataset} {metric}"] = [values.get(k, np.nan) for k in keys]
            if paper and any(v is not None for v in refs.values()):
                columns[f"{dataset} {metric}{PAPER_SUFFIX}"] = [
                    np.nan if refs.get(k) is None else refs[k] for k in keys]
    table = pd.DataFrame(columns, index=pd.MultiIndex.from_tuples(keys, names=index), dtype=float)
    return table.dropna(how="all")


def _sort_key(key: tuple, names: Sequence[str]) -> tuple:
    """No re-ranking first, then numbers in numeric order, then strings; None last."""
    def rank(name, v):
        if name == "rerank" and v == NO_RERANK:
            return (-1, "")
        if v is None or v != v:
            return (2, "")
        return (0, v, "") if isinstance(v, (int, float)) else (1, str(v))
    return tuple(rank(n, v) for n, v in zip(names, key))


def best_mask(table: pd.DataFrame, decimals: int = 3) -> pd.DataFrame:
    """True at the best value (highest, at the displayed precision; ties all marked) of every
    measured column, within each feature type where the table has a ``feature_type`` key (deep
    and SIFT rows are compared among themselves); paper columns are never marked."""
    mask = pd.DataFrame(False, index=table.index, columns=table.columns)
    if "feature_type" in (table.index.names or []):
        blocks = table.index.get_level_values("feature_type").astype(str)
    else:
        blocks = pd.Index([""] * len(table))
    for c in table.columns:
        if c.endswith(PAPER_SUFFIX) or table[c].isna().all():
            continue
        v = table[c].round(decimals)
        best = v.groupby(np.asarray(blocks)).transform("max")
        mask[c] = (v == best) & v.notna()
    return mask


def _keys_frame(table: pd.DataFrame) -> pd.DataFrame:
    """The method keys of ``table`` as string columns ("" for missing)."""
    keys = table.index.to_frame(index=False)
    return keys.apply(lambda col: col.map(lambda k: "" if pd.isna(k) else str(k))).astype(object)


def to_markdown(table: pd.DataFrame, decimals: int = 3) -> str:
    """Markdown (pandas / tabulate) with the best value of each measured column in bold."""
    best = best_mask(table, decimals).reset_index(drop=True)
    values = table.reset_index(drop=True).apply(
        lambda col: col.map(lambda v: "" if pd.isna(v) else f"{v:.{decimals}f}"))
    values = values.mask(best, "**" + values + "**")
    cells = pd.concat([_keys_frame(table), values], axis=1)
    align = ("left",) * table.index.nlevels + ("right",) * table.shape[1]
    # the cells are already text: tabulate must not re-parse "0.800" as a number
    return cells.to_markdown(index=False, disable_numparse=True, colalign=align)


def to_latex(table: pd.DataFrame, decimals: int = 3) -> str:
    """A booktabs tabular (pandas Styler) with the best value of each measured column in
    \\textbf; text escaped for LaTeX."""
    best = best_mask(table, decimals).reset_index(drop=True)
    keys = _keys_frame(table)
    cells = pd.concat([keys, table.reset_index(drop=True)], axis=1)
    styler = (cells.style.hide(axis="index")
              .format(precision=decimals, na_rep="", escape="latex")
              .format_index(escape="latex", axis=1)
              .apply(lambda col: np.where(best[col.name], "textbf:--rwrap;", ""),
                     subset=list(table.columns), axis=0))
    return styler.to_latex(hrules=True,
                           column_format="l" * keys.shape[1] + "r" * table.shape[1])


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


# ----------------------------------------------------------------------------- re-ranking
def rerank_gains(df: pd.DataFrame, metric: str = "mAP") -> pd.DataFrame:
    """One row per re-ranked setting that also has a run without re-ranking (same
    SETTING_COLUMNS): those columns, ``rerank``, ``rerank_label``, ``reranked`` and ``plain``
    (``metric`` with and without re-ranking) and ``gain`` = reranked - plain. Where several
    records share a setting, the newest counts."""
    keys = [c for c in SETTING_COLUMNS if c in df.columns]
    out_columns = keys + ["rerank", "rerank_label", "reranked", "plain", "gain"]
    if metric not in df.columns:
        return pd.DataFrame(columns=out_columns)
    df = df[df[metric].notna()]
    df = df.sort_values("timestamp", kind="stable") if "timestamp" in df.columns else df
    df = df.assign(rerank=reranks(df))
    if "rerank_label" not in df.columns:
        df = df.assign(rerank_label=df["rerank"])
    none = df["rerank"] == NO_RERANK
    ranked_keys = keys + ["rerank", "rerank_label"]
    plain = df[none].drop_duplicates(keys, keep="last")[keys + [metric]]
    ranked = df[~none].drop_duplicates(ranked_keys, keep="last")[ranked_keys + [metric]]
    out = ranked.rename(columns={metric: "reranked"}).merge(
        plain.rename(columns={metric: "plain"}), on=keys, how="inner")
    out["gain"] = out["reranked"] - out["plain"]
    order = [c for c in ("dataset", "aggregator", "dim", "rerank", "rerank_label") if c in out]
    return out.sort_values(order, kind="stable").reset_index(drop=True)[out_columns]
