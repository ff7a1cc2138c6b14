"""``deepagg-report RESULTS_DIR``: one Markdown report of every result below a directory.

Writes ``RESULTS_DIR/report.md`` and, beside it, ``report_files/``: the ablation table
(Markdown, LaTeX, CSV), the comparison figures whose data exist (PNG; PDF too with ``--pdf``),
the gain of re-ranking where runs with and without it exist, and retrieval examples of the best
run per dataset. Every link is relative, and every run links to its ``.hydra/config.yaml``.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
from pathlib import Path
from typing import Callable
from urllib.parse import quote

import pandas as pd

from analysis import plots
from analysis.paper import NO_RERANK
from analysis.tables import (ablation_table, has_rerank, one_rerank, records_frame, rerank_gains,
                             to_markdown, write_ablation)
from analysis.records import completed, gather, newest_by_hash
from benchmarks.base import RetrievalDataset
from benchmarks.errors import RecordsError

log = logging.getLogger("deepagg")
ASSETS = "report_files"
#: a job folder -> the dataset its run evaluated (the report app rebuilds it from the job's config)
JobDataset = Callable[[Path], RetrievalDataset]


def job_dirs(results_dir: Path) -> dict[str, Path]:
    """config hash -> the job folder of the record that stands for it (``newest_by_hash``)."""
    return {h: path.parent for h, (_, path) in newest_by_hash(results_dir).items()
            if isinstance(h, str)}


def link(target: Path, base: Path) -> str:
    """A relative, URL-quoted Markdown link target."""
    return quote(Path(os.path.relpath(target, base)).as_posix(), safe="/=,.-_~+:@")


def available_figures(df: pd.DataFrame, metric: str) -> list[tuple[str, str, Callable]]:
    """(file stem, title, plot function) of each comparison figure the records support."""
    df = df[df[metric].notna()] if metric in df.columns else df.iloc[:0]
    if df.empty:
        return []
    methods = "aggregator, re-ranking" if has_rerank(df) else "aggregator"
    out = [("aggregators", f"{metric} per {methods} and dataset", plots.aggregator_bars)]
    if df.groupby(["aggregator", "dataset"])["dim"].nunique().max() > 1:
        out.append(("dimension", f"{metric} against descriptor dimension", plots.dim_plot))
    if not rerank_gains(df, metric).empty:
        out.append(("rerank_gain", f"{metric} gain from re-ranking", plots.rerank_gain_plot))
    base, _ = one_rerank(df)  # what the figures about aggregation itself draw
    if "agg.p" in base.columns and base["agg.p"].dropna().nunique() > 1:
        out.append(("gem_p", "GeM: the exponent p", plots.gem_plot))
    sums = base[base["aggregator_class"] == "SumPooling"]
    if "agg.center_prior" in sums.columns and (
            sums.groupby("dataset")["agg.center_prior"].nunique() > 1).any():
        out.append(("center_prior", "The centre prior: sum pooling vs SPoC", plots.center_prior_plot))
    if base["feature_type"].nunique() > 1:
        out.append(("deep_vs_sift", "Deep vs SIFT local features", plots.feature_type_plot))
    return out


def example_figures(df: pd.DataFrame, dirs: dict[str, Path], assets: Path, metric: str,
                    n_queries: int, k: int, pdf: bool, job_dataset: JobDataset
                    ) -> list[tuple[str, Path | None, str]]:
    """Retrieval examples of the best run per dataset: (dataset, figure or None, note)."""
    from analysis.examples import retrieval_examples
    out = []
    for ds, g in df[df[metric].notna()].groupby("dataset", sort=True):
        best = g.sort_values(metric, ascending=False).iloc[0]
        job = dirs.get(best["config_hash"])
        rerank = "" if best["rerank"] == NO_RERANK else f" + {best['rerank_label']}"
        what = f"{best['aggregator']}{rerank}, D = {best['dim']}, {metric} {best[metric]:.3f}"
        if job is None or not (job / "rankings.npz").exists():
            out.append((ds, None, f"{what}: no rankings.npz in its job folder"))
            continue
        path = assets / f"examples_{ds}.png"
        try:
            retrieval_examples(job, job_dataset(job), path, n_queries, k, pdf=pdf)
            out.append((ds, path, what))
        except Exception as e:  # a dataset that cannot be rebuilt here must not sink the report
            reason = (str(e).splitlines() or [type(e).__name__])[0][:160]
            log.warning("retrieval examples of %s skipped: %s", ds, e)
            out.append((ds, None, f"{what}: examples not drawn ({reason})"))
    return out


def runs_table(df: pd.DataFrame, dirs: dict[str, Path], base: Path, metric: str) -> str:
    """Markdown (pandas / tabulate): one row per record (``rerank`` where some run was
    re-ranked), linking its config and job folder."""
    def ref(h) -> str:
        job = dirs.get(h)
        cfg = job / ".hydra" / "config.yaml" if job is not None else None
        return (f"[config]({link(cfg, base)}) · [folder]({link(job, base)})"
                if cfg is not None and cfg.exists() else "not found")
    df = df.sort_values(["dataset", "aggregator", "dim"], kind="stable")
    columns = {"dataset": df["dataset"], "features": df["feature_type"],
               "extractor": df["extractor"], "aggregator": df["aggregator"],
               "params": df["params"]}
    if "scales" in df.columns and bool((df["scales"] != "1").any()):
        columns["scales"] = df["scales"]
    if has_rerank(df):
        columns["rerank"] = df["rerank_label"]
    columns |= {"D": df["dim"].astype(str),
                metric: df.get(metric, pd.Series(index=df.index, dtype=float)).map(
                    lambda v: "" if pd.isna(v) else f"{v:.3f}"),
                "config": df["config_hash"].map(ref)}
    table = pd.DataFrame(columns).fillna("").astype(str)
    align = ["left"] * len(columns)
    align[list(columns).index("D")] = align[list(columns).index(metric)] = "right"
    return table.to_markdown(index=False, disable_numparse=True, colalign=align)


def build_report(results_dir: Path, pdf: bool = False, metric: str = "mAP", n_queries: int = 4,
                 k: int = 5, job_dataset: JobDataset | None = None) -> Path:
    """Write ``report.md`` (and ``report_files/``) into ``results_dir``; returns its path.
    ``job_dataset(job folder)`` rebuilds the dataset a run evaluated, for its retrieval examples
    (none are drawn without it)."""
    results_dir = Path(results_dir)
    gathered = gather(results_dir)
    records = [r for r in gathered if completed(r)]
    failed = [r for r in gathered if not completed(r)]
    if not records:
        raise RecordsError(f"no results.jsonl with completed records under {results_dir}")
    df = records_frame(records)
    dirs = job_dirs(results_dir)
    assets = results_dir / ASSETS
    assets.mkdir(exist_ok=True)
    table = ablation_table(df)
    tables = write_ablation(table, assets)

    md = [f"# deepagg report: {results_dir.name}", "",
          f"{len(df)} runs on {', '.join(sorted(df['dataset'].unique()))}; generated "
          f"{dt.datetime.now().isoformat(timespec='seconds')} by `deepagg-report`.", "",
          "## Ablation table", "",
          "Methods as rows, dataset metrics as columns (revisited datasets: E/mAP, mAP = Medium, "
          "H/mAP); the best measured value of each column in bold, among deep and among SIFT "
          "rows separately. *(paper)* columns: Babenko & Lempitsky (2015), 256-D deep features, where the "
          "aggregator, dataset and dimension match and nothing was re-ranked (the paper's table "
          "has no query expansion; analysis/paper.py). A *rerank* column appears when some run "
          "was re-ranked (none: the first search's ranking).", "",
          to_markdown(table), "",
          f"Also as [LaTeX]({link(tables['tex'], results_dir)}) and "
          f"[CSV]({link(tables['csv'], results_dir)}).", ""]
    if failed:
        md += [f"{len(failed)} configuration(s) did not complete and are left out of the tables "
               "and figures:", ""]
        md += [f"- `{Path(r.get('job_dir', '?')).name}`: {r.get('status')}: "
               f"{str(r.get('error', '')).splitlines()[0] if r.get('error') else ''}" for r in failed]
        md += [""]
    md += ["## Figures", ""]
    for stem, title, plot in available_figures(df, metric):
        path = assets / f"{stem}.png"
        plot(df, path, metric, pdf=pdf)
        extra = f" ([PDF]({link(path.with_suffix('.pdf'), results_dir)}))" if pdf else ""
        md += [f"### {title}{extra}", "", f"![{title}]({link(path, results_dir)})", ""]
    if n_queries > 0 and job_dataset is None:
        md += ["## Retrieval examples", "", "Not drawn: this report was built without a way to "
               "rebuild the jobs' datasets (`build_report(..., job_dataset=...)`; `deepagg-report` "
               "passes one).", ""]
    elif n_queries > 0:
        md += ["## Retrieval examples", "",
               "Best run per dataset; frames: green correct, red incorrect, grey junk.", ""]
        for ds, path, note in example_figures(df, dirs, assets, metric, n_queries, k, pdf,
                                             job_dataset):
            md += [f"### {ds} ({note})", ""]
            md += [f"![retrieval examples, {ds}]({link(path, results_dir)})", ""] if path else []
    md += ["## Runs", "", runs_table(df, dirs, results_dir, metric), ""]
    out = results_dir / "report.md"
    out.write_text("\n".join(md))
    return out
