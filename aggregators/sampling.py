"""Seeded sampling of a fitting set's local features, shared by the learned aggregators."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from benchmarks.errors import ParameterError
from features import LocalFeatures


def sample_rows(blocks: Sequence[np.ndarray], max_rows: int, seed: int) -> np.ndarray:
    """(m, d) float32 rows drawn uniformly without replacement from the stacked ``blocks``.

    m = min(total rows, max_rows); every row is kept when they fit. Rows come out in their
    stacking order, and the same blocks, cap and seed give the same sample. Only the picked
    rows are copied, so the blocks may be memory-mapped.
    """
    total = sum(len(b) for b in blocks)
    if total <= max_rows:
        return np.concatenate([np.asarray(b, dtype=np.float32) for b in blocks])
    return take_rows(blocks, np.sort(np.random.default_rng(seed).choice(total, size=max_rows,
                                                                         replace=False)))


def take_rows(blocks: Sequence[np.ndarray], picked: np.ndarray) -> np.ndarray:
    """(len(picked), d) float32: the rows at the sorted indices ``picked`` of the stacked
    ``blocks``, in that order; only those rows are copied (the blocks may be memory-mapped)."""
    ends = np.cumsum([len(b) for b in blocks], dtype=np.int64)
    per_block = np.split(picked, np.searchsorted(picked, ends[:-1]))
    return np.concatenate([np.asarray(b[rows - (end - len(b))], dtype=np.float32)
                           for b, rows, end in zip(blocks, per_block, ends) if len(rows)])


def sample_descriptors(features: Sequence[LocalFeatures], max_features: int,
                       seed: int) -> np.ndarray:
    """(m, d) float32 sample of at most ``max_features`` local features of a fitting set."""
    return sample_rows([f.descriptors for f in features], max_features, seed)


def check_enough(owner, setting: str, value: int, n_sampled: int) -> None:
    """ParameterError when ``value`` (clusters, components, anchors) exceeds the sampled
    feature count."""
    if value > n_sampled:
        raise ParameterError(setting, value, f"exceeds the {n_sampled} local features sampled from "
                             f"the fitting set; lower {setting} or raise max_features / fit on a "
                             "larger set", type(owner).__name__)
