"""The database's k-nearest-neighbour graph: the offline part of diffusion and k-reciprocal
re-ranking, built once per database (the apps cache it in the store, keyed by the descriptors).

Each database row's k nearest *other* rows by dot product (cosine similarity for L2-normalised
descriptors), ties by database order (the ranking convention of ``benchmarks.search``), and its
smallest similarity to any row (the farthest neighbour, which k-reciprocal's distances are
normalised by). Zero rows (images without local features) are nobody's neighbour and have none.
Built from one pass of blocked products: at most ``max_scores_bytes`` of scores at once, memory
O(N k) for the graph, never N x N.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmarks.search import DEFAULT_MAX_SCORES_BYTES, exact_topk


@dataclass(frozen=True)
class NeighbourGraph:
    """indices (N, k) int32: each row's k nearest other rows, best first, -1 where it has fewer
    (zero rows: all -1); similarities (N, k) float32 of those (0 where -1); farthest (N,)
    float32: each row's smallest similarity to a non-zero row (itself included; 0 for zero
    rows)."""

    indices: np.ndarray
    similarities: np.ndarray
    farthest: np.ndarray

    @property
    def depth(self) -> int:
        return self.indices.shape[1]

    def truncated(self, k: int) -> "NeighbourGraph":
        """The graph of the first ``k`` neighbours (k <= depth)."""
        if k > self.depth:
            raise ValueError(f"a graph of depth {self.depth} has no {k} neighbours per row")
        return NeighbourGraph(self.indices[:, :k], self.similarities[:, :k], self.farthest)


def neighbour_graph(database: np.ndarray, k: int,
                    max_scores_bytes: int = DEFAULT_MAX_SCORES_BYTES) -> NeighbourGraph:
    """The k-NN graph of ``database`` (N, D) (module docstring); k <= N - 1."""
    import torch

    x = np.ascontiguousarray(database, dtype=np.float32)
    n = len(x)
    if not 0 <= k <= max(n - 1, 0):
        raise ValueError(f"k={k}: a database of {n} rows has at most {max(n - 1, 0)} other rows")
    live = np.any(x != 0, axis=1)
    indices = np.full((n, k), -1, np.int32)
    sims = np.zeros((n, k), np.float32)
    farthest = np.zeros(n, np.float32)
    rows = max(1, int(max_scores_bytes) // max(1, 8 * n))
    for s in range(0, n, rows):
        e = min(s + rows, n)
        block = np.matmul(x[s:e], x.T) if e - s > 1 else np.matmul(x[[s, s]], x.T)[:1]
        block[:, ~live] = np.inf
        farthest[s:e] = np.where(live[s:e], block.min(axis=1), 0.0) if live.any() else 0.0
        block[:, ~live] = -np.inf
        block[np.arange(e - s), np.arange(s, e)] = -np.inf          # not its own neighbour
        idx, val = exact_topk(torch.from_numpy(block), k)
        idx, val = idx.numpy(), val.numpy()
        ok = np.isfinite(val) & live[s:e, None]
        indices[s:e] = np.where(ok, idx, -1)
        sims[s:e] = np.where(ok, val, 0.0)
    return NeighbourGraph(indices, sims, farthest)
