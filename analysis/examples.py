"""Retrieval examples of one run: queries and their top-k results, each result framed green
(correct), red (incorrect) or grey (junk).

Reads the job's ``rankings.npz`` (topk, aps, query_names, db_names); the caller hands in the
dataset the job evaluated (the report app rebuilds it from the job's ``.hydra/config.yaml``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from benchmarks.base import Query, RetrievalDataset  # noqa: E402
from analysis.plots import save_figure  # noqa: E402

FRAME = {"correct": "#1a9850", "incorrect": "#d73027", "junk": "#999999"}


def load_rankings(job_dir: Path, dataset: RetrievalDataset) -> dict:
    """The rankings of a job; checks that they list the images of ``dataset``."""
    job_dir = Path(job_dir)
    with np.load(job_dir / "rankings.npz") as z:
        rankings = {k: z[k] for k in z.files}
    names = [im.name for im in dataset.images]
    if list(rankings["db_names"]) != names:
        raise ValueError(f"{job_dir}: rankings.npz does not list the images of dataset "
                         f"{dataset.name} as rebuilt from .hydra/config.yaml")
    return rankings


def judge(query: Query, results: Sequence[int]) -> list[str]:
    """``correct`` / ``junk`` / ``incorrect`` for each result index (junk wins over positive)."""
    junk = set(np.asarray(query.relevant.get("junk", ()), np.int64).tolist())
    positive = set()
    for k, v in query.relevant.items():
        if k != "junk":
            positive |= set(np.asarray(v, np.int64).tolist())
    return ["junk" if r in junk else "correct" if r in positive else "incorrect" for r in results]


def pick_queries(aps: np.ndarray, n: int) -> np.ndarray:
    """``n`` query indices spread over the AP range, best first (successes and failures)."""
    order = np.argsort(-np.nan_to_num(aps, nan=-1.0), kind="stable")
    return order[np.unique(np.linspace(0, len(order) - 1, min(n, len(order))).round().astype(int))]


def _thumbnail(image, size: int = 256) -> np.ndarray:
    image = image.copy()
    image.thumbnail((size, size))
    return np.asarray(image)


def retrieval_examples(job_dir: Path, dataset: RetrievalDataset, path: Path | None = None,
                       n_queries: int = 4, k: int = 5, queries: Sequence[int] | None = None,
                       pdf: bool = False):
    """A row per query of the job's ``dataset``: the query (with its box, if any) and its top-k
    results framed by correctness. ``queries`` (indices) default to ``pick_queries``. Returns the
    Figure."""
    rankings = load_rankings(job_dir, dataset)
    topk, aps = rankings["topk"], rankings["aps"]
    k = min(k, topk.shape[1])
    chosen = np.asarray(queries if queries is not None else pick_queries(aps, n_queries))
    fig, axes = plt.subplots(len(chosen), k + 1, figsize=(1.9 * (k + 1), 2.0 * len(chosen) + 0.6),
                             dpi=110, squeeze=False)
    for row, qi in zip(axes, chosen):
        q = dataset.queries[qi]
        img = q.image.load()
        row[0].imshow(_thumbnail(img))
        if q.box is not None:
            s = min(256 / img.width, 256 / img.height, 1.0)
            x1, y1, x2, y2 = (v * s for v in q.box)
            row[0].add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec="yellow", lw=1.5))
        row[0].set_title(f"query {q.image.name}\nAP {aps[qi]:.2f}", fontsize=7)
        listed = topk[qi, :k][topk[qi, :k] >= 0]       # -1: past the end of a short ranking
        for rank, (ax, r, verdict) in enumerate(zip(row[1:], listed, judge(q, listed)), 1):
            ax.imshow(_thumbnail(dataset.images[r].load()))
            ax.set_title(f"{rank}. {dataset.images[r].name}", fontsize=6, color=FRAME[verdict])
            for spine in ax.spines.values():
                spine.set(edgecolor=FRAME[verdict], linewidth=4, visible=True)
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
    handles = [Rectangle((0, 0), 1, 1, fc="white", ec=c, lw=3, label=v) for v, c in FRAME.items()]
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.suptitle(f"{dataset.name}: top-{k} results of {len(chosen)} queries "
                 f"({Path(job_dir).name})", fontsize=9)
    return save_figure(fig, path, pdf, rect=(0, 0.05, 1, 0.97))
