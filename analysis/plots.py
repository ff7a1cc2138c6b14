"""Comparison plots from result frames (analysis.tables.records_frame).

Every function takes the frame, an optional output ``path`` (PNG; ``pdf=True`` adds a PDF beside
it) and the ``metric`` to show, and returns the matplotlib Figure. Where several records share a
plotted point, the newest one is shown. Re-ranked runs appear as methods of their own
("sum + αQE(k=2,α=3)") in the comparison plots and as gains in ``rerank_gain_plot``; the figures
about aggregation itself (GeM, centre prior, deep vs SIFT) show one re-ranking
(tables.one_rerank: none where there are such runs).
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.patches  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from analysis.paper import NO_RERANK  # noqa: E402
from analysis.tables import has_rerank, one_rerank, rerank_gains, reranks  # noqa: E402

METRIC_LABELS = {"mAP": "mAP", "N-S": "N-S score (of 4)"}


def metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric)


def _newest(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values("timestamp", kind="stable") if "timestamp" in df.columns else df


def _usual_dim(df: pd.DataFrame) -> int | None:
    """The most frequent descriptor dimension (the largest among equally frequent ones); None
    when no row has one (rankings or similarities scored by deepagg-eval)."""
    counts = df["dim"].value_counts()
    return int(max(counts[counts == counts.max()].index)) if len(counts) else None


def _at_usual_dims(df: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """The records of each feature type at its most frequent dimension (all of them where none
    has a dimension), and those dimensions (feature types without one left out)."""
    usual = {ft: _usual_dim(g) for ft, g in df.groupby("feature_type", sort=True)}
    kept = df[[usual[f] is None or usual[f] == d for f, d in zip(df["feature_type"], df["dim"])]]
    return kept, {ft: d for ft, d in usual.items() if d is not None}


def _dims_text(dims: dict[str, int]) -> str:
    if not dims:
        return "no descriptors (rankings scored)"
    if len(set(dims.values())) == 1:
        return f"D = {next(iter(dims.values()))}"
    return "D = " + ", ".join(f"{d} ({ft})" for ft, d in dims.items())


def _method_labels(df: pd.DataFrame) -> list[str]:
    """Per row: the aggregator, its feature type where several are plotted, its scales where
    several were, and its re-ranking (``rerank_label``) where some row was re-ranked:
    "sum (deep) + AQE(k=2)", "gem @ 1,0.7071,0.5 mean p=3"."""
    several = df["feature_type"].nunique() > 1
    labels = [f"{a} ({f})" if several else a for a, f in zip(df["aggregator"], df["feature_type"])]
    if "scales" in df.columns and df["scales"].nunique() > 1:
        labels = [f"{label} @ {s}" for label, s in zip(labels, df["scales"])]
    if not has_rerank(df):
        return labels
    names = df["rerank_label"] if "rerank_label" in df.columns else reranks(df)
    return [f"{label} + {name}" if r != NO_RERANK else label
            for label, r, name in zip(labels, reranks(df), names)]


def _method_title(df: pd.DataFrame) -> str:
    return "aggregator + re-ranking" if has_rerank(df) else "aggregator"


def _rerank_note(df: pd.DataFrame, rerank: str) -> str:
    """", re-ranked: LABEL" for figures that show one re-ranking other than none."""
    if rerank == NO_RERANK:
        return ""
    names = df["rerank_label"] if "rerank_label" in df.columns else reranks(df)
    return f", re-ranked: {', '.join(sorted(set(names)))}"


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


VALUE_FONTSIZE = 8   # value labels on bars
LEGEND_FONTSIZE = 8


def _grouped_bars(ax, groups: list[str], series: dict[str, dict[str, float]], fmt: str = "%.3f",
                  colors: dict[str, str] | None = None) -> None:
    """Bars of ``series`` {label: {group: value}} side by side within each group, the bars a
    group has centred on its tick (a group without some series has no gap where its bar would
    be); ``colors``: {label: colour}, default the colour cycle. The y axis from 0 (or below,
    for negative values) with headroom for the value labels and a legend."""
    width = 0.8 / max(1, len(series))
    x = np.arange(len(groups))
    present = [[label for label, values in series.items() if name in values] for name in groups]
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for s, (label, values) in enumerate(series.items()):
        xs, hs = [], []
        for g, name in enumerate(groups):
            if name in values:
                here = present[g]
                xs.append(x[g] + (here.index(label) - (len(here) - 1) / 2) * width)
                hs.append(values[name])
        color = colors[label] if colors else cycle[s % len(cycle)]
        bars = ax.bar(xs, hs, width, label=label, color=color)
        ax.bar_label(bars, fmt=fmt, fontsize=VALUE_FONTSIZE, padding=1,
                     rotation=90 if len(series) > 3 else 0)
    values = [v for values in series.values() for v in values.values()]
    top, bottom = max(max(values, default=1.0), 0.0), min(min(values, default=0.0), 0.0)
    span = (top - bottom) or 1.0
    ax.set_ylim(bottom - 0.2 * span if bottom < 0 else 0, top + 0.3 * span)
    ax.set_xticks(x, groups, rotation=30 if len(groups) > 4 else 0, ha="right" if len(groups) > 4 else "center")


def _colours(names: list[str]) -> dict[str, str]:
    """One colour of the cycle per name, the same in every panel of a figure."""
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {name: cycle[i % len(cycle)] for i, name in enumerate(names)}


def _legend_below(fig, colours: dict[str, str], title: str) -> tuple:
    """One legend of coloured patches below every panel; returns the layout rect that keeps the
    panels above it."""
    handles = [matplotlib.patches.Patch(color=c, label=n) for n, c in colours.items()]
    ncol = min(4, len(colours))
    fig.legend(handles=handles, title=title, fontsize=LEGEND_FONTSIZE, title_fontsize=LEGEND_FONTSIZE,
               loc="lower center", ncol=ncol, frameon=False)
    rows = -(-len(colours) // ncol)
    return (0, (0.25 + 0.17 * rows) / fig.get_size_inches()[1], 1, 1)


def _panels_of_bars(df: pd.DataFrame, value: str, names: list[str], colours: dict[str, str],
                    fmt: str = "%.3f", height: float = 3.8, bar_width: float = 0.3):
    """One panel per dataset of ``df`` (columns dataset, group, series, ``value``): a group of
    bars per ``group``, a bar per ``series`` in the order of ``names``; returns (fig, axes by
    dataset)."""
    datasets = sorted(df["dataset"].unique())
    width = max(5.0, bar_width * df["group"].nunique() * len(names) + 1.5)
    fig, axes = _panels(len(datasets), width=width, height=height)
    for ax, ds in zip(axes, datasets):
        sub = df[df["dataset"] == ds]
        series = {n: dict(zip(g["group"], g[value])) for n, g in sub.groupby("series")}
        _grouped_bars(ax, sorted(sub["group"].unique()), {n: series[n] for n in names if n in series},
                      fmt=fmt, colors=colours)
    return fig, dict(zip(datasets, axes))


# ----------------------------------------------------------------------------- plots
def _log2_lines(df: pd.DataFrame, x: str, xlabel: str, metric: str, legend: str, path, pdf: bool):
    """``metric`` against column ``x`` (log2 axis, its values as ticks), one line per ``method``
    of ``df``, one panel per dataset."""
    datasets = sorted(df["dataset"].unique())
    fig, axes = _panels(len(datasets))
    for ax, ds in zip(axes, datasets):
        sub = df[df["dataset"] == ds]
        for method, g in sub.groupby("method", sort=True):
            g = g.groupby(x)[metric].last()
            ax.plot(g.index, g.values, marker="o", label=method)
        ticks = sorted(int(v) for v in sub[x].unique())
        ax.set_xscale("log", base=2)
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel(xlabel)
        ax.set_ylabel(metric_label(metric))
        ax.set_title(ds)
        ax.grid(alpha=0.3)
        ax.legend(title=legend, fontsize=LEGEND_FONTSIZE, title_fontsize=LEGEND_FONTSIZE)
    return save_figure(fig, path, pdf)


def dim_plot(df: pd.DataFrame, path: Path | None = None, metric: str = "mAP", pdf: bool = False):
    """``metric`` against descriptor dimension (log scale), one line per aggregator (and
    re-ranking), one panel per dataset."""
    df = _newest(df[df[metric].notna()])
    df = df.assign(method=_method_labels(df))
    return _log2_lines(df, "dim", "descriptor dimension D (log scale)", metric, _method_title(df),
                       path, pdf)


def bytes_plot(df: pd.DataFrame, path: Path | None = None, metric: str = "mAP", pdf: bool = False):
    """``metric`` against bytes per database image (log scale): one line per aggregator and kind
    of code (``pq``, ``opq``, ``binary``, each over its sizes), and the float32 descriptors of
    each PCA dimension (4 bytes a dimension) as a line of their own: the paper's trade-off of
    size against accuracy, one panel per dataset."""
    df = _newest(df[df[metric].notna()])
    kinds = [c.split(" ")[0] + (" sym" if "symmetric" in c else "") if c != "none" else "float32"
             for c in df["codes"]]
    several = df["aggregator"].nunique() > 1
    df = df.assign(method=[f"{a}, {k}" if several else k for a, k in zip(df["aggregator"], kinds)])
    return _log2_lines(df, "bytes", "bytes per database image (log scale)", metric,
                       "aggregator, code" if several else "code", path, pdf)


def aggregator_bars(df: pd.DataFrame, path: Path | None = None, metric: str = "mAP",
                    dim: int | None = None, pdf: bool = False):
    """``metric`` per aggregator (groups) and dataset (bars) at descriptor dimension ``dim``
    (default: each feature type's most frequent one). Where some run was re-ranked, one panel
    per dataset instead, the bars of each aggregator its re-rankings (``rerank_bars``)."""
    df = df[df[metric].notna()]
    if dim is None:
        df, dims = _at_usual_dims(df)
    else:
        df, dims = df[df["dim"] == dim], {ft: dim for ft in sorted(df["feature_type"].unique())}
    df = _newest(df)
    if has_rerank(df):
        return rerank_bars(df, path, metric, dims, pdf)
    labels = _method_labels(df)
    df = df.assign(method=labels)
    groups = sorted(set(labels))
    series = {ds: dict(zip(g["method"], g[metric])) for ds, g in df.groupby("dataset", sort=True)}
    fig, ax = plt.subplots(figsize=(max(5.0, 0.5 * len(groups) * (len(series) + 1) + 1.5), 3.6),
                           dpi=120)
    _grouped_bars(ax, groups, series)
    ax.set_xlabel(_method_title(df))
    ax.set_ylabel(metric_label(metric))
    ax.set_title(f"{metric} per aggregator and dataset ({_dims_text(dims)})")
    ax.legend(title="dataset", fontsize=LEGEND_FONTSIZE, title_fontsize=LEGEND_FONTSIZE,
              loc="upper left", ncol=len(series))
    ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, path, pdf)


def rerank_bars(df: pd.DataFrame, path: Path | None, metric: str, dims: dict[str, int],
                pdf: bool = False):
    """``metric`` per aggregator (groups; with the feature type where several) and re-ranking
    (bars, by ``rerank_label``, "none" first, one colour each in every panel, one legend below),
    one panel per dataset."""
    several = df["feature_type"].nunique() > 1
    df = df.assign(group=[f"{a} ({f})" if several else a
                          for a, f in zip(df["aggregator"], df["feature_type"])],
                   rerank_name=_rerank_names(df))
    plain = sorted(set(df.loc[reranks(df) == NO_RERANK, "rerank_name"]))
    names = plain + sorted(set(df["rerank_name"]) - set(plain))
    colors = _colours(names)
    fig, axes = _panels_of_bars(df.rename(columns={"rerank_name": "series"}), metric, names, colors)
    for ds, ax in axes.items():
        ax.set_xlabel("aggregator")
        ax.set_ylabel(metric_label(metric))
        ax.set_title(f"{ds}: {metric} per aggregator and re-ranking ({_dims_text(dims)})")
        ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, path, pdf, rect=_legend_below(fig, colors, "re-ranking"))


def _rerank_names(df: pd.DataFrame) -> pd.Series:
    """Per row, its re-ranking as plots name it: ``rerank_label`` where present, else the config."""
    names = df["rerank_label"] if "rerank_label" in df.columns else reranks(df)
    return names.where(reranks(df) != NO_RERANK, NO_RERANK).astype(str)


def gem_plot(df: pd.DataFrame, path: Path | None = None, metric: str = "mAP", pdf: bool = False):
    """``metric`` against GeM's exponent p (records with ``agg.p``), one line per dataset over the
    finite p; dashed lines mark sum pooling (p = 1) and dotted ones max pooling (p -> inf: the
    GeM p = inf record, else a max-pooling record), both at the same dimension; one re-ranking
    (tables.one_rerank)."""
    df, rerank = one_rerank(df)
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
    note = _rerank_note(df, rerank)
    ax.set_title(f"GeM between average (p = 1) and max pooling{chr(10) if note else ' '}"
                 f"(D = {dim}{note})", **({"fontsize": 9} if note else {}))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=LEGEND_FONTSIZE)
    return save_figure(fig, path, pdf)


def center_prior_plot(df: pd.DataFrame, path: Path | None = None, metric: str = "mAP",
                      pdf: bool = False):
    """Sum pooling without vs with SPoC's centre prior (SumPooling records by
    ``agg.center_prior``) per dataset (and feature type, when several), each pair annotated
    with the difference; each feature type at its most frequent dimension; one re-ranking
    (tables.one_rerank)."""
    df, rerank = one_rerank(df)
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
    ax.set_title(f"Effect of the centre prior\n({_dims_text(dims)}{_rerank_note(sub, rerank)})",
                 fontsize=10)
    ax.legend(fontsize=LEGEND_FONTSIZE, loc="upper center", ncol=2, bbox_to_anchor=(0.5, -0.22), frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, path, pdf)


def feature_type_plot(df: pd.DataFrame, path: Path | None = None, metric: str = "mAP",
                      pdf: bool = False):
    """Deep vs SIFT features per aggregator (groups) and feature type (bars), one panel per
    dataset; each feature type at its most frequent dimension (in the legend); one re-ranking
    (tables.one_rerank)."""
    df, rerank = one_rerank(df[df[metric].notna()])
    if df["feature_type"].nunique() < 2:
        raise ValueError("need records of at least two feature types (deep and sift)")
    df, dims = _at_usual_dims(df)
    df = _newest(df)
    datasets = sorted(df["dataset"].unique())
    fig, axes = _panels(len(datasets), width=4.6, height=3.6)
    for ax, ds in zip(axes, datasets):
        sub = df[df["dataset"] == ds]
        groups = sorted(sub["aggregator"].unique())
        series = {f"{ft} (D = {dims[ft]})" if ft in dims else ft: dict(zip(g["aggregator"], g[metric]))
                  for ft, g in sub.groupby("feature_type", sort=True)}
        _grouped_bars(ax, groups, series)
        ax.set_xlabel("aggregator")
        ax.set_ylabel(metric_label(metric))
        note = _rerank_note(sub, rerank)
        ax.set_title(f"{ds}: deep vs SIFT local features{chr(10) if note else ''}{note[2:]}",
                     **({"fontsize": 9} if note else {}))
        ax.legend(title="features", fontsize=LEGEND_FONTSIZE, title_fontsize=LEGEND_FONTSIZE, loc="upper left", ncol=2)
        ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, path, pdf)


def rerank_gain_plot(df: pd.DataFrame, path: Path | None = None, metric: str = "mAP",
                     pdf: bool = False):
    """The gain of re-ranking (tables.rerank_gains: ``metric`` with minus without, same setting
    otherwise) per aggregator (groups; with the feature type and D where those vary) and
    re-ranking (bars, by ``rerank_label``, one colour each in every panel, one legend below),
    one panel per dataset; a line at 0."""
    gains = rerank_gains(df, metric)
    if gains.empty:
        raise ValueError("need records of one setting (aggregator, dataset, D) both with and "
                         "without re-ranking")
    label = gains["aggregator"].astype(str)
    if gains["feature_type"].nunique() > 1:
        label += " (" + gains["feature_type"].astype(str) + ")"
    if gains["dim"].nunique() > 1:
        label += ", D = " + gains["dim"].astype(str)
    gains = gains.assign(group=label)
    names = sorted(gains["rerank_label"].unique())
    colors = _colours(names)
    fig, axes = _panels_of_bars(gains.assign(series=gains["rerank_label"]), "gain", names, colors,
                                fmt="%+.3f", height=3.4, bar_width=0.35)
    for ds, ax in axes.items():
        ax.axhline(0, color="0.3", linewidth=0.8)
        ax.set_xlabel("aggregator")
        ax.set_ylabel(f"\u0394 {metric_label(metric)} (re-ranked \u2212 none)")
        ax.set_title(f"{ds}: gain from re-ranking")
        ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, path, pdf, rect=_legend_below(fig, colors, "re-ranking"))


def comparison_plot(df: pd.DataFrame, path: Path | None = None, metric: str = "mAP", pdf: bool = False):
    """The overview of a run or sweep: ``bytes_plot`` when some run searched compact codes,
    ``dim_plot`` when some aggregator was run at several dimensions on one dataset, else
    ``aggregator_bars``."""
    if "codes" in df.columns and bool((df["codes"] != "none").any()):
        return bytes_plot(df, path, metric, pdf)
    if df.groupby(["aggregator", "dataset"])["dim"].nunique().max() > 1:
        return dim_plot(df, path, metric, pdf)
    return aggregator_bars(df, path, metric, pdf=pdf)
