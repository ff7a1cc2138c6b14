"""The deep-vs-SIFT similarity figure: matching vs non-matching similarity histograms, one column
per feature type, one row per (level, similarity kind)."""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from analysis.similarity import separation  # noqa: E402

LEVELS = {"local": "local-feature pairs", "image": "sum-pooled image descriptors"}
KINDS = {"cosine": "cosine similarity", "dot": "dot product",
         "cosine_whitened": "cosine similarity after PCA-whitening"}
COLOURS = {"matching": "#1b7837", "non-matching": "#b2182b"}
RECONSTRUCTION = ("Reconstruction of Babenko & Lempitsky (2015): similarities of matching vs "
                  "non-matching pairs,\ndeep vs SIFT features (not the original figure)")


def similarity_figure(samples: dict, rows: Sequence[tuple[str, str]], path: Path | None = None,
                      columns: dict[str, str] | None = None, bins: int = 60, note: str = "",
                      formats: Sequence[str] = ("png",)):
    """Histograms (densities) of matching vs non-matching similarities, on common bins per row
    (so that the feature types compare at one scale).

    samples: {(level, feature type, kind): (matching (m,), non-matching (n,))}.
    rows:    the (level, kind) of each row of panels.
    columns: {feature type: column title}, in column order (default: the types in ``samples``).
    Each panel states the ROC AUC, the overlap coefficient and the sample sizes. Saved as ``path`` with each suffix
    of ``formats``; returns the Figure.
    """
    if columns is None:
        columns = {t: t for t in dict.fromkeys(k[1] for k in samples)}
    fig, axes = plt.subplots(len(rows), len(columns), figsize=(3.6 * len(columns), 2.6 * len(rows) + 0.9),
                             dpi=110, squeeze=False)
    for r, (level, kind) in enumerate(rows):
        row = [np.concatenate(samples[k]) for k in ((level, t, kind) for t in columns) if k in samples]
        edges = np.histogram_bin_edges(np.concatenate(row), bins) if row else None
        for c, (ftype, title) in enumerate(columns.items()):
            ax = axes[r, c]
            key = (level, ftype, kind)
            if key not in samples:
                ax.set_axis_off()
                continue
            m, n = samples[key]
            stats = separation(m, n)
            heights = []
            for label, values in (("matching", m), ("non-matching", n)):
                heights.append(np.histogram(values, edges, density=True)[0])
                ax.hist(values, edges, density=True, histtype="stepfilled", alpha=0.35,
                        color=COLOURS[label], edgecolor=COLOURS[label], linewidth=1.2,
                        label=f"{label} pairs")
            third = max(1, len(edges) // 3)  # the box goes in the emptier upper corner
            top = np.maximum(*heights)
            right = top[-third:].max() <= top[:third].max()
            ax.set_ylim(0, 1.3 * top.max())  # headroom for the box
            ax.text(0.98 if right else 0.02, 0.96, f"AUC {stats['auc']:.3f}\noverlap {stats['overlap']:.2f}\n"
                    f"n = {len(m):,} + {len(n):,}", transform=ax.transAxes, ha="right" if right else "left", va="top",
                    fontsize=7, bbox={"boxstyle": "round", "fc": "white", "ec": "0.7", "alpha": 0.85})
            ax.set_title(f"{title}\n{LEVELS.get(level, level)}", fontsize=9)
            ax.set_xlabel(KINDS.get(kind, kind), fontsize=8)
            ax.set_ylabel("density", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.25)
    handles, labels = next((ax.get_legend_handles_labels() for ax in axes.flat if ax.axison),
                           ([], []))
    _lay_out_margins(fig, note, handles, labels)
    if path is not None:
        for fmt in formats:
            fig.savefig(Path(path).with_suffix(f".{fmt}"))
    plt.close(fig)
    return fig


def _wrap_to_width(text, width_px: float, renderer) -> None:
    """Re-wrap a Text artist, paragraph by paragraph (its own line breaks kept), so that no line
    is wider than ``width_px``. ``textwrap`` breaks the lines; the characters per line come from
    the renderer's measure of the text (a proportional font), narrowed until it fits."""
    paragraphs = text.get_text().split("\n")
    for i, paragraph in enumerate(paragraphs):
        text.set_text(paragraph)
        full = text.get_window_extent(renderer).width
        chars = int(len(paragraph) * width_px / full) if full > width_px else 0
        while chars:
            paragraphs[i] = textwrap.fill(paragraph, max(chars, 8))
            text.set_text(paragraphs[i])
            if chars <= 8 or text.get_window_extent(renderer).width <= width_px:
                break
            chars = int(chars * 0.9)
    text.set_text("\n".join(paragraphs))


def _lay_out_margins(fig, note: str, handles, labels, pad_in: float = 0.05) -> None:
    """The title on top, then at the bottom the note (both wrapped to the figure width; the
    figure grown by the note's height so that the panels keep their size), the legend above it,
    the panels above both (tight_layout inside what is left)."""
    renderer = fig.canvas.get_renderer()
    width_px = fig.bbox.width * 0.98
    title = fig.suptitle(RECONSTRUCTION, fontsize=9)
    _wrap_to_width(title, width_px, renderer)
    note_in = 0.0
    if note:
        text = fig.text(0.5, 0.0, note, ha="center", va="bottom", fontsize=7, color="0.3")
        _wrap_to_width(text, width_px, renderer)
        note_in = text.get_window_extent(renderer).height / fig.dpi + pad_in
        w, h = fig.get_size_inches()
        fig.set_size_inches(w, h + note_in)
        text.set_y(pad_in / (h + note_in))
    height_in = fig.get_size_inches()[1]
    legend = fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=8, frameon=False,
                        bbox_to_anchor=(0.5, (note_in + pad_in) / height_in))
    legend_in = legend.get_window_extent(renderer).height / fig.dpi if labels else 0.0
    # tight_layout keeps the panels below the suptitle itself, not above figure texts
    fig.tight_layout(rect=(0, (note_in + legend_in + 2 * pad_in) / height_in, 1, 1))
