"""Diffusion on the database's k-NN graph (Iscen, Tolias, Avrithis, Furon & Chum, "Efficient
diffusion on region manifolds", CVPR 2017), for global descriptors.

Offline (the database alone, ``benchmarks.neighbours``, cached by the apps): each image's k
nearest other images; an edge joins two images that are in each other's k nearest (mutual
neighbours), weighted ``a_ij = max(s_ij, 0) ** gamma``; ``S = D^-1/2 A D^-1/2`` with D the degrees
(A symmetrised as (A + A^T) / 2, so the two rows' roundings of s_ij agree).

Online, per query: its first ``truncation`` results of the plain search are the truncated graph
(as in the reference code fyang93/diffusion: rows and columns of ``L = I - alpha S`` of the whole
graph, not renormalised); the seeds are its first ``query_k`` results, ``y_j = max(s_qj, 0) **
gamma`` (a query that is a database image, ``query_db_index``, seeds it with weight 1: it is the
query's place in the graph); ``L_R f = y`` is solved by conjugate gradient (``tol`` on the
relative residual, at most ``max_iter`` iterations, from f = 0, as the paper's 20 iterations) and
the truncated list is re-ordered by f, equal f (images the diffusion does not reach) in their
first order; below it the plain ranking is kept. ``truncation=null`` diffuses over the whole
database (the first search then keeps every query's full ranking: O(n_q N) memory). Never reads
the ground truth. The regional variant of the paper (several descriptors per image) is not
offered: deepagg's descriptors are global.

Memory: the graph O(N k); per query the truncated system O(truncation k); no N x N matrix.
"""
from __future__ import annotations

import numpy as np
from scipy import sparse

from benchmarks.constraints import Integer, Real
from benchmarks.errors import ParameterError
from benchmarks.neighbours import NeighbourGraph, neighbour_graph
from benchmarks.rerank import RankingReranker, _own_index, _pair
from benchmarks.search import reorder_short_lists, search


class Diffusion(RankingReranker):
    """Diffusion re-ranking (module docstring). ``k``: neighbours of the database graph (50);
    ``query_k``: seeds per query (10); ``gamma``: similarity power (3); ``alpha``: the random
    walk's continuation, in (0, 1) (0.99); ``truncation``: results per query diffused over (1000, at
    most the database; null: all); ``tol``, ``max_iter``: conjugate gradient's stopping rule (1e-6, 20).
    The defaults are the paper's and fyang93/diffusion's (kq, truncation_size; its kd = 50 counts
    the image itself, k = 50 here is 50 other images)."""

    database_side = ("k",)
    constraints = {"k": Integer(1), "query_k": Integer(1), "gamma": Real(0, low_open=True),
                   "alpha": Real(0, 1, low_open=True, high_open=True),
                   "truncation": Integer(1, optional=True), "tol": Real(0, low_open=True),
                   "max_iter": Integer(1)}

    def __init__(self, k: int = 50, query_k: int = 10, gamma: float = 3.0, alpha: float = 0.99,
                 truncation: int | None = 1000, tol: float = 1e-6, max_iter: int = 20):
        self.k = k
        self.query_k = query_k
        self.gamma = gamma
        self.alpha = alpha
        self.truncation = truncation
        self.tol = tol
        self.max_iter = max_iter

    @property
    def label(self) -> str:
        trunc = "all" if self.truncation is None else self.truncation
        return (f"diffusion(k={self.k},query_k={self.query_k},gamma={self.gamma:g},"
                f"alpha={self.alpha:g},truncation={trunc})")

    @property
    def graph_depth(self) -> int:
        return int(self.k)

    def validate(self) -> "Diffusion":
        super().validate()
        if self.truncation is not None and self.query_k > self.truncation:
            raise ParameterError("query_k", self.query_k, f"more seeds than the {self.truncation} "
                                 "results diffused over (truncation); use query_k <= truncation",
                                 type(self).__name__)
        return self

    def check_database_size(self, n: int) -> None:
        super().check_database_size(n)
        seeds = self.query_k if self.truncation is None else min(self.query_k, self.truncation)
        if seeds > n:
            raise ParameterError("query_k", self.query_k, f"larger than the database ({n} images); "
                                 f"use query_k <= {n}", type(self).__name__)

    def rank(self, queries, database, query_db_index, k, track=None, graph=None, **search_options):
        self.validate()
        q, x = _pair(queries, database)
        _own_index(query_db_index, len(q), len(x))
        self.check_database_size(len(x))
        if graph is None:
            graph = neighbour_graph(x, self.graph_depth, **_bytes(search_options))
        laplacian = diffusion_laplacian(graph.truncated(self.graph_depth), self.gamma, self.alpha)
        length = len(x) if self.truncation is None else min(int(self.truncation), len(x))
        first = search(q, x, max(int(k), length), track=track, **search_options)
        gamma = float(self.gamma)

        def diffused(i: int, short_list: np.ndarray) -> np.ndarray:
            y = np.zeros(len(short_list))
            at = np.arange(min(self.query_k, len(short_list)))    # the first query_k: the seeds
            y[at] = np.maximum(first.scores[i, at].astype(np.float64), 0.0) ** gamma
            sub = laplacian[short_list][:, short_list]
            return conjugate_gradient(sub, y, self.tol, self.max_iter)
        return reorder_short_lists(first, k, length, diffused, ties="first")


def diffusion_laplacian(graph: NeighbourGraph, gamma: float, alpha: float) -> sparse.csr_matrix:
    """(N, N) sparse float64 ``I - alpha D^-1/2 A D^-1/2`` of the mutual-neighbour affinity A of
    ``graph`` (module docstring); isolated rows get the identity row."""
    n, k = graph.indices.shape
    rows = np.repeat(np.arange(n), k)
    cols = graph.indices.ravel().astype(np.int64)
    vals = np.maximum(graph.similarities.ravel().astype(np.float64), 0.0) ** gamma
    ok = cols >= 0
    rows, cols, vals = rows[ok], cols[ok], vals[ok]
    knn = sparse.csr_matrix((vals, (rows, cols)), shape=(n, n))
    linked = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    mutual = linked.multiply(linked.T)                           # 1 where both ways
    affinity = knn.multiply(mutual)
    affinity = ((affinity + affinity.T) / 2).tocsr()
    degrees = np.asarray(affinity.sum(axis=1)).ravel()
    scale = np.divide(1.0, np.sqrt(degrees), out=np.zeros(n), where=degrees > 0)
    walk = affinity.tocoo()
    walk.data = walk.data * (scale[walk.row] * scale[walk.col])     # symmetric to the last bit
    return (sparse.identity(n, format="csr") - alpha * walk).tocsr()


def conjugate_gradient(a, b: np.ndarray, tol: float, max_iter: int) -> np.ndarray:
    """x with ``a x = b`` (a symmetric positive definite, dense or sparse) by conjugate gradient
    from x = 0, stopped when ||b - a x|| <= tol ||b|| or after ``max_iter`` iterations."""
    x = np.zeros_like(b, dtype=np.float64)
    r = b.astype(np.float64, copy=True)
    p = r.copy()
    rr = float(r @ r)
    stop = (tol * np.linalg.norm(b)) ** 2
    for _ in range(int(max_iter)):
        if rr <= stop:
            break
        ap = a @ p
        step = rr / float(p @ ap)
        x += step * p
        r -= step * ap
        rr_next = float(r @ r)
        p = r + (rr_next / rr) * p
        rr = rr_next
    return x


def _bytes(search_options: dict) -> dict:
    return {k: v for k, v in search_options.items() if k == "max_scores_bytes"}
