"""Plain NumPy expectations for encoders that run in torch only (VLAD), written from the papers'
definitions without the encoders' shortcuts (no score trick, no batching, float64 throughout)."""
from __future__ import annotations

import numpy as np

from features import LocalFeatures


def vlad(agg, features: LocalFeatures) -> np.ndarray:
    """(k d,) VLAD of one image with ``agg``'s codebook and normalisation settings: residuals to
    the nearest centre (squared Euclidean distance) summed per centre, then the signed square root
    (``power_norm='ssr'``), the L2 of each centre's block (``intra_norm``), the L2 of the whole."""
    x = np.asarray(features.descriptors, np.float64)
    c = np.asarray(agg.cluster_centers_, np.float64)
    nearest = ((x[:, None, :] - c[None]) ** 2).sum(axis=2).argmin(axis=1)
    v = np.zeros_like(c)
    for row, k in zip(x, nearest):
        v[k] += row - c[k]
    if agg.power_norm == "ssr":
        v = np.sign(v) * np.sqrt(np.abs(v))
    if agg.intra_norm:
        norms = np.sqrt((v * v).sum(axis=1, keepdims=True))
        v = np.where(norms > 0, v / np.where(norms > 0, norms, 1), 0)
    v = v.ravel()
    return v / max(np.sqrt(v @ v), 1e-12)


def encode_one(agg, features: LocalFeatures) -> np.ndarray:
    """One image the way the expectation of ``agg``'s class is computed: ``vlad`` for VLAD, the
    class's own NumPy encoder (its CPU path) for the others."""
    from aggregators import VLAD
    return vlad(agg, features) if isinstance(agg, VLAD) else agg._encode(features)
