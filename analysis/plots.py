"""Comparison plots from result frames (analysis.tables.records_frame).

Every function takes the frame, an optional output ``path`` (PNG; ``pdf=True`` adds a PDF beside
it) and the ``metric`` to show, and returns the matplotlib Figure. Where several records share a
plotted point, the newest one is shown.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

METRIC_LABELS = {"mAP": "mAP", "N-S": "N-S score (of 4)"}


def metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric)


def _newest(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values("timestamp", kind="stable") if "timestamp" in df.columns else df


def _usual_dim(df: pd.DataFrame) -> int:
    """The most frequent descriptor dimension (the largest among equally frequent ones)."""
    counts = df["dim"].value_counts()
    return int(max(counts[counts == counts.max()].index))


def _at_usual_dims(df: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """The records of each feature type at its most frequent dimension, and those dimensions."""
    dims = {ft: _usual_dim(g) for ft, g in df.groupby("feature_type", sort=True)}
    return df[[dims[f] == d for f, d in zip(df["feature_type"], df["dim"])]], dims


def _dims_text(dims: dict[str, int]) -> str:
    if len(set(dims.values())) == 1:
        return f"D = {next(iter(dims.values()))}"
    return "D = " + ", ".join(f"{d} ({ft})" for ft, d in dims.items())


def _series_label(df: pd.DataFrame, aggregator: str, feature_type: str) -> str:
    return f"{aggregator} ({feature_type})" if df["feature_type"].nunique() > 1 else aggregator


def save_figure(fig, path: Path | None, pdf: bool, rect=(0, 0, 1, 1)):
    """Lay out, save as PNG (and PDF), close; returns the figure for inspection."""
    fig.tight_layout(rect=rect)
    if path is not None:
        fig.savefig(path)
        if pdf:
            fig.savefig(Path(path).with_suffix(".pdf"))
    plt.close(fig)
    return fig


def _panels(n: int, width: float = 4.2, height: float = 3.3):
    fig, axes = plt.subplots(1, n, figsize=(width * n, height), dpi=120, squeeze=False)
    return fig, axes[0]


def _grouped_bars(ax, groups: list[str], series: dict[str, dict[str, float]], fmt: str = "%.3f") -> None:
    """Bars of ``series`` {label: {group: value}} side by side within each group."""
    width = 0.8 / max(1, len(series))
    x = np.arange(len(groups))
    for s, (label, values) in enumerate(series.items()):
        xs = [x[g] + (s - (len(series) - 1) / 2) * width for g, name in enumerate(groups) if name in values]
        hs = [values[name] for name in groups if name in values]
        bars = ax.bar(xs, hs, width, label=label)
        ax.bar_label(bars, fmt=fmt, fontsize=6, padding=1)
    top = max((v for values in series.values() for v in values.values()), default=1.0)
    ax.set_ylim(0, 1.3 * top)  # headroom for the value labels and the legend
    ax.set_xticks(x, groups, rotation=30 if len(groups) > 4 else 0, ha="right" if len(groups) > 4 else "center")


# ----------------------------------------------------------------------------- plots
def dim_plot(df: pd.DataFrame, path: Path | None = None, metric: str = "mAP", pdf: bool = False):
    """``metric`` against descriptor dimension (log scale), one line per aggregator, one panel
    per dataset."""
    df = _newest(df[df[metric].notna()])
    datasets = sorted(df["dataset"].unique())
    fig, axes = _panels(len(datasets))
    for ax, ds in zip(axes, datasets):
        sub = df[df["dataset"] == ds]
        for (agg, ft), g in sub.groupby(["aggregator", "feature_type"], sort=True):
            g = g.groupby("dim")[metric].last()
            ax.plot(g.index, g.values, marker="o", label=_series_label(df, agg, ft))
        dims = sorted(sub["dim"].unique())
        ax.set_xscale("log", base=2)
        ax.set_xticks(dims, [str(d) for d in dims])
        ax.minorticks_off()
        ax.set_xlabel("descriptor dimension D (log scale)")
        ax.set_ylabel(metric_label(metric))
        ax.set_title(ds)
        ax.grid(alpha=0.3)
        ax.legend(title="aggregator", fontsize=7, title_fontsize=7)
    return save_figure(fig, path, pdf)


def aggregator_bars(df: pd.DataFrame, path: Path | None = None, metric: str = "mAP",
                    dim: int | None = None, pdf: bool = False):
    """``metric`` per aggregator (groups) and dataset (bars), at descriptor dimension ``dim``
    (default: each feature type's most frequent one)."""
    df = df[df[metric].notna()]
    if dim is None:
        df, dims = _at_usual_dims(df)
    else:
        df, dims = df[df["dim"] == dim], {ft: dim for ft in sorted(df["feature_type"].unique())}
    df = _newest(df)
    labels = [_series_label(df, a, f) for a, f in zip(df["aggregator"], df["feature_type"])]
    df = df.assign(method=labels)
    groups = sorted(set(labels))
    series = {ds: dict(zip(g["method"], g[metric])) for ds, g in df.groupby("dataset", sort=True)}
    fig, ax = plt.subplots(figsize=(max(5.0, 0.5 * len(groups) * (len(series) + 1) + 1.5), 3.6),
                           dpi=120)
    _grouped_bars(ax, groups, series)
    ax.set_xlabel("aggregator")
    ax.set_ylabel(metric_label(metric))
    ax.set_title(f"{metric} per aggregator and dataset ({_dims_text(dims)})")
    ax.legend(title="dataset", fontsize=7, title_fontsize=7, loc="upper left", ncol=len(series))
    ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, path, pdf)


def gem_plot(df: pd.DataFrame, path: Path | None = None, metric: str = "mAP", pdf: bool = False):
    """``metric`` against GeM's exponent p (records with ``agg.p``), one line per dataset over the
    finite p; dashed lines mark sum pooling (p = 1) and dotted ones max pooling (p -> inf: the
    GeM p = inf record, else a max-pooling record), both at the same dimension."""
    if "agg.p" not in df.columns or df["agg.p"].notna().sum() == 0:
        raise ValueError("no records with an aggregator parameter p (GeM) to plot")
    df = _newest(df[df[metric].notna()])
    gem = df[df["agg.p"].notna()].astype({"agg.p": float})
    dim = _usual_dim(gem)
    fig, ax = plt.subplots(figsize=(5.6, 3.8), dpi=120)
    for ds, g in gem[gem["dim"] == dim].groupby("dataset", sort=True):
        curve = g[np.isfinite(g["agg.p"])].groupby("agg.p")[metric].last()
        (line,) = ax.plot(curve.index, curve.values, marker="o", label=f"GeM, {ds}")
        others = df[(df["dataset"] == ds) & (df["dim"] == dim) & df["agg.p"].isna()]
        sums = others[others["aggregator_class"] == "SumPooling"]
        if "agg.center_prior" in sums.columns:
            sums = sums[~sums["agg.center_prior"].fillna(False).astype(bool)]
        maxes = g[np.isinf(g["agg.p"])]
        maxes = maxes if len(maxes) else others[others["aggregator_class"] == "MaxPooling"]
        for ref, style, name in ((sums, "--", "sum pooling (p = 1)"),
                                 (maxes, ":", "max pooling (p \u2192 \u221e)")):
            if len(ref):
                ax.axhline(ref[metric].iloc[-1], color=line.get_color(), linestyle=style,
                           linewidth=1, label=f"{name}, {ds}")
    ax.set_xlabel("GeM exponent p")
    ax.set_ylabel(metric_label(metric))
    ax.set_title(f"GeM between average (p = 1) and max pooling (D = {dim})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return save_figure(fig, path, pdf)


def center_prior_plot(df: pd.DataFrame, path: Path | None = None, metric: str = "mAP",
                      pdf: bool = False):
    """Sum pooling without vs with SPoC's centre prior (SumPooling records by
    ``agg.center_prior``) per dataset (and feature type, when several), each pair annotated
    with the difference; each feature type at its most frequent dimension."""
    sub = df[(df["aggregator_class"] == "SumPooling") & df[metric].notna()]
    if "agg.center_prior" not in sub.columns or sub["agg.center_prior"].nunique() < 2:
        raise ValueError("need sum-pooling records both without and with the centre prior")
    sub, dims = _at_usual_dims(sub)
    sub = _newest(sub)
    several = sub["feature_type"].nunique() > 1
    sub = sub.assign(group=[f"{d} ({f})" if several else d
                            for d, f in zip(sub["dataset"], sub["feature_type"])])
    names = {False: "sum pooling (no prior)", True: "SPoC (centre prior)"}
    series = {names[p]: dict(zip(g["group"], g[metric]))
              for p, g in sub.groupby(sub["agg.center_prior"].astype(bool))}
    groups = sorted(set.intersection(*(set(v) for v in series.values())))
    series = {k: {g: v[g] for g in groups} for k, v in series.items()}
    fig, ax = plt.subplots(figsize=(max(4.5, 1.6 * len(groups) + 1.5), 3.6), dpi=120)
    _grouped_bars(ax, groups, series)
    top = max(max(v.values()) for v in series.values())
    for i, g in enumerate(groups):
        pair = [series[names[p]][g] for p in (False, True)]
        ax.annotate(f"\u0394 {pair[1] - pair[0]:+.3f}", (i, max(pair) + 0.09 * top), ha="center",
                    fontsize=7)
    ax.set_xlabel("dataset")
    ax.set_ylabel(metric_label(metric))
    ax.set_title(f"Effect of the centre prior\n({_dims_text(dims)})", fontsize=10)
    ax.legend(fontsize=7, loc="upper center", ncol=2, bbox_to_anchor=(0.5, -0.22), frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, path, pdf)


def feature_type_plot(df: pd.DataFrame, path: Path | None = None, metric: str = "mAP",
                      pdf: bool = False):
    """Deep vs SIFT features per aggregator (groups) and feature type (bars), one panel per
    dataset; each feature type at its most frequent dimension (in the legend)."""
    df = df[df[metric].notna()]
    if df["feature_type"].nunique() < 2:
        raise ValueError("need records of at least two feature types (deep and sift)")
    df, dims = _at_usual_dims(df)
    df = _newest(df)
    datasets = sorted(df["dataset"].unique())
    fig, axes = _panels(len(datasets), width=4.6, height=3.6)
    for ax, ds in zip(axes, datasets):
        sub = df[df["dataset"] == ds]
        groups = sorted(sub["aggregator"].unique())
        series = {f"{ft} (D = {dims[ft]})": dict(zip(g["aggregator"], g[metric]))
                  for ft, g in sub.groupby("feature_type", sort=True)}
        _grouped_bars(ax, groups, series)
        ax.set_xlabel("aggregator")
        ax.set_ylabel(metric_label(metric))
        ax.set_title(f"{ds}: deep vs SIFT local features")
        ax.legend(title="features", fontsize=7, title_fontsize=7, loc="upper left", ncol=2)
        ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, path, pdf)


def comparison_plot(df: pd.DataFrame, path: Path | None = None, metric: str = "mAP", pdf: bool = False):
    """The overview of a run or sweep: ``dim_plot`` when some aggregator was run at several
    dimensions on one dataset, else ``aggregator_bars``."""
    if df.groupby(["aggregator", "dataset"])["dim"].nunique().max() > 1:
        return dim_plot(df, path, metric, pdf)
    return aggregator_bars(df, path, metric, pdf=pdf)
