"""Exact search by dot product (cosine similarity for L2-normalised descriptors)."""
from __future__ import annotations

import numpy as np


def similarity(queries: np.ndarray, database: np.ndarray) -> np.ndarray:
    """(n_q, n_db) scores Q @ X^T, computed in float32."""
    return np.asarray(queries, dtype=np.float32) @ np.asarray(database, dtype=np.float32).T


def rank(scores: np.ndarray, k: int | None = None) -> np.ndarray:
    """Database indices by decreasing score, ties broken by database order: (n_q, k or n_db)."""
    order = np.argsort(-scores, axis=1, kind="stable")
    return order if k is None else order[:, :k]


def search(queries: np.ndarray, database: np.ndarray, k: int | None = None,
           chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Top-k (indices, scores) for each query (k=None: the whole ranking), processed ``chunk``
    queries at a time so that only chunk x n_db scores exist at once; indices are int32."""
    idx, val = [], []
    for s in range(0, len(queries), chunk):
        sc = similarity(queries[s:s + chunk], database)
        r = rank(sc, k)
        idx.append(r.astype(np.int32))
        val.append(np.take_along_axis(sc, r, axis=1))
    if not idx:
        kk = database.shape[0] if k is None else k
        return np.zeros((0, kk), np.int32), np.zeros((0, kk), np.float32)
    return np.concatenate(idx), np.concatenate(val)
