"""k-reciprocal re-ranking (Zhong, Zheng, Cao & Li, "Re-ranking person re-identification with
k-reciprocal encoding", CVPR 2017), for retrieval with L2-normalised global descriptors.

Distances are squared Euclidean, ``d(i, j) = 2 - 2 s_ij`` for unit rows, each row divided by its
largest (``d~(i, j) = d(i, j) / max_l d(i, l)``, as the reference code does). With ``N_m(i)`` the
m nearest other images of i and ``h = round(k1 / 2)`` (numpy's rounding, as the reference):

- ``R(i, m) = {i} + {j in N_m(i) : i in N_m(j)}``, the k-reciprocal neighbours;
- ``R*(i) = R(i, k1) + every R(c, h), c in R(i, k1), that shares more than 2/3 of its members
  with R(i, k1)`` (the expansion);
- ``V_i = exp(-d~(i, .)) / sum`` over R*(i), 0 elsewhere; local query expansion replaces each V_i
  by the mean of V over i and its k2 - 1 nearest images;
- ``J(q, j) = 1 - m / (2 - m)``, ``m = sum_c min(V_q[c], V_j[c])`` (the Jaccard distance), and the
  final distance ``(1 - lambda_value) J + lambda_value d~(q, j)``: the database is ranked by it
  (ties by database order), the whole ranking, exactly.

The reference computes all of this on the query + gallery set with N x N matrices. Here the
database part is computed once on the database alone (its k1-NN graph, ``benchmarks.neighbours``,
cached by the apps; V as a sparse matrix, O(N k1) entries). A query whose descriptor is its
database image's (``query_db_index``: Holidays, UKBench, the demo) is that image's row: exactly the
reference on the database. Any other query joins as one more node: its own row is computed on
database + query (it is in N_m(j) when it is nearer to j than j's m-th neighbour), while the
database rows stay as computed without it (one node among N barely changes them; the queries
never see each other). Never reads the ground truth. Memory: O(N k1) for the database, O(N) per
query row of distances; no N x N matrix.
"""
from __future__ import annotations

import numpy as np
from scipy import sparse

from benchmarks.constraints import Integer, Real
from benchmarks.errors import ParameterError
from benchmarks.neighbours import NeighbourGraph, neighbour_graph
from benchmarks.rerank import RankingReranker, _own_index, _pair
from benchmarks.search import DEFAULT_MAX_SCORES_BYTES, exact_topk, rank_score_blocks

_ROWS = 2048   # database rows whose reciprocal sets are compared at once (memory ~ rows k1^2 h)


class KReciprocal(RankingReranker):
    """k-reciprocal re-ranking (module docstring) with the reference's parameter names and
    defaults: ``k1`` = 20 (reciprocal neighbours), ``k2`` = 6 (local query expansion; 1 = off),
    ``lambda_value`` = 0.3 (weight of the original distance)."""

    database_side = ("k1",)
    constraints = {"k1": Integer(1), "k2": Integer(1), "lambda_value": Real(0, 1)}

    def __init__(self, k1: int = 20, k2: int = 6, lambda_value: float = 0.3):
        self.k1 = k1
        self.k2 = k2
        self.lambda_value = lambda_value

    @property
    def label(self) -> str:
        return f"k-reciprocal(k1={self.k1},k2={self.k2},lambda_value={self.lambda_value:g})"

    @property
    def graph_depth(self) -> int:
        return int(max(self.k1, self.k2 - 1))

    def check_database_size(self, n: int) -> None:
        for param, value, limit in (("k1", self.k1, n - 1), ("k2", self.k2, n)):
            if value > limit:
                raise ParameterError(param, value, f"larger than the database allows ({n} images); "
                                     f"use {param} <= {limit}", type(self).__name__)

    def rank(self, queries, database, query_db_index, k, track=None, graph=None, **search_options):
        self.validate()
        q, x = _pair(queries, database)
        own = _own_index(query_db_index, len(q), len(x))
        self.check_database_size(len(x))
        budget = int(search_options.get("max_scores_bytes", DEFAULT_MAX_SCORES_BYTES))
        if graph is None:
            graph = neighbour_graph(x, self.graph_depth, budget)
        encoding = ReciprocalEncoding(x, graph.truncated(self.graph_depth), int(self.k1), int(self.k2))
        lam = float(self.lambda_value)
        rows = max(1, budget // max(1, 16 * len(x)))

        def blocks():
            for s in range(0, len(q), rows):
                sims = np.matmul(q[s:s + rows], x.T)
                out = np.empty(sims.shape, np.float64)
                for r in range(len(sims)):
                    out[r] = -encoding.final_distance(sims[r], int(own[s + r]), lam)
                yield s, out
        return rank_score_blocks(blocks(), len(q), len(x), k, track=track)


def _normalised_distances(sims: np.ndarray, farthest: float) -> np.ndarray:
    """d~ = (2 - 2 s) / (2 - 2 s_min), clipped at 0 (unit rows)."""
    d = np.maximum(2.0 - 2.0 * sims.astype(np.float64), 0.0)
    top = max(2.0 - 2.0 * float(farthest), 1e-12)
    return d / top


class ReciprocalEncoding:
    """The database part of k-reciprocal re-ranking: the padded reciprocal sets R(i, k1) and
    R(i, h) ((N, k1 + 1), (N, h + 1) int64, self first, -1 for none), V (N, N) sparse CSR and
    its local query expansion ``v_qe`` (CSC, for the columns a query touches)."""

    def __init__(self, database: np.ndarray, graph: NeighbourGraph, k1: int, k2: int):
        self.x, self.graph, self.k1, self.k2 = database, graph, k1, k2
        self.h = int(np.around(k1 / 2))
        n = len(database)
        self.live = np.any(database != 0, axis=1)
        self.reciprocal_k1 = reciprocal_sets(graph.indices[:, :k1])
        self.reciprocal_h = reciprocal_sets(graph.indices[:, :self.h])
        rows, cols = [], []
        for s in range(0, n, _ROWS):
            r, c = _expanded(np.arange(s, min(s + _ROWS, n)), self.reciprocal_k1[s:s + _ROWS],
                             self.reciprocal_h, n)
            rows.append(r)
            cols.append(c)
        rows, cols = np.concatenate(rows), np.concatenate(cols)
        live_pair = self.live[rows]
        rows, cols = rows[live_pair], cols[live_pair]
        sims = _pair_similarities(database, rows, cols)
        top = np.maximum(2.0 - 2.0 * graph.farthest.astype(np.float64), 1e-12)
        d = np.where(rows == cols, 0.0, np.maximum(2.0 - 2.0 * sims, 0.0)) / top[rows]
        w = np.exp(-d)
        w /= np.bincount(rows, weights=w, minlength=n)[rows]
        self.v = sparse.csr_matrix((w, (rows, cols)), shape=(n, n))
        self.v_qe_rows = (self._expansion_rows() @ self.v).tocsr() if k2 > 1 else self.v
        self.v_qe = self.v_qe_rows.tocsc()

    def _expansion_rows(self) -> sparse.csr_matrix:
        """(N, N) rows averaging each row with its k2 - 1 nearest others (those it has)."""
        n = len(self.x)
        members = np.concatenate([np.arange(n)[:, None], self.graph.indices[:, :self.k2 - 1]], axis=1)
        rows = np.repeat(np.arange(n), members.shape[1])
        cols = members.ravel().astype(np.int64)
        ok = cols >= 0
        rows, cols = rows[ok], cols[ok]
        return sparse.csr_matrix((np.full(len(rows), 1.0 / self.k2), (rows, cols)), shape=(n, n))

    def final_distance(self, sims: np.ndarray, own: int, lam: float) -> np.ndarray:
        """(N,) float64 final distances of one query, ``sims`` its (N,) similarities to the
        database; ``own``: its database image when it is that image (-1: a new node)."""
        if not self.live.any() or not np.any(sims):     # nothing to encode: the plain order
            return -sims.astype(np.float64)
        usable = np.where(self.live, sims, -np.inf)
        d = _normalised_distances(sims, usable[self.live].min())
        if own >= 0:
            lo, hi = self.v_qe_rows.indptr[own], self.v_qe_rows.indptr[own + 1]
            cols, vals = self.v_qe_rows.indices[lo:hi], self.v_qe_rows.data[lo:hi]
        else:
            cols, vals = self._query_row(usable, d)
        m = self._overlap(cols, vals)
        jaccard = 1.0 - m / (2.0 - m)
        return (1.0 - lam) * jaccard + lam * d

    def _overlap(self, cols: np.ndarray, vals: np.ndarray) -> np.ndarray:
        """(N,) sum over database columns c of min(query's V[c], V_j[c])."""
        n = len(self.x)
        if len(cols) == 0:
            return np.zeros(n)
        sub = self.v_qe[:, cols].tocoo()
        return np.bincount(sub.row, weights=np.minimum(sub.data, vals[sub.col]), minlength=n)

    def _query_row(self, usable: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The database columns and values of a new query node's V row after local query
        expansion (its own column, which no database row has, adds nothing to an overlap and
        is left out; its weight exp(0) = 1 still enters the normalisation)."""
        import torch
        g = self.graph
        depth = max(self.k1, self.k2 - 1)
        top = exact_topk(torch.from_numpy(usable[None].astype(np.float32)), depth)[0][0].numpy()
        top = top[np.isfinite(usable[top])]
        near = top[:self.k1]
        # the query is among j's k1 nearest (database + query) when it beats j's k1-th neighbour;
        # a tie goes to the database image (the query comes after every database index)
        enters = (g.indices[near, self.k1 - 1] < 0) | (usable[near] > g.similarities[near, self.k1 - 1])
        r_k1 = near[enters]
        # R(q, h) lies inside R(q, k1): expanding by it adds nothing; the database's R(c, h)
        # are theirs on the database alone
        members = [r_k1]
        for c in r_k1:
            cand = self.reciprocal_h[c]
            cand = cand[cand >= 0]
            if np.isin(cand, r_k1).sum() > 2 / 3 * len(cand):
                members.append(cand)
        cols = np.unique(np.concatenate(members).astype(np.int64))
        w = np.exp(-d[cols])
        parts_c, parts_v = [cols], [w / (w.sum() + 1.0)]
        for j in top[:self.k2 - 1]:                           # local query expansion
            lo, hi = self.v.indptr[j], self.v.indptr[j + 1]
            parts_c.append(self.v.indices[lo:hi])
            parts_v.append(self.v.data[lo:hi])
        uniq, inv = np.unique(np.concatenate(parts_c), return_inverse=True)
        return uniq, np.bincount(inv, weights=np.concatenate(parts_v)) / self.k2


def reciprocal_sets(neighbours: np.ndarray) -> np.ndarray:
    """(N, m + 1) int64: each row i, then its m nearest others j that have i among their m
    nearest (in neighbour order), -1 for the others; ``neighbours`` (N, m), -1 for none."""
    n, m = neighbours.shape
    out = np.full((n, m + 1), -1, np.int64)
    out[:, 0] = np.arange(n)
    for s in range(0, n, _ROWS):
        nb = neighbours[s:s + _ROWS].astype(np.int64)
        back = neighbours[np.maximum(nb, 0)]                                  # (b, m, m)
        mutual = (nb >= 0) & (back == np.arange(s, s + len(nb))[:, None, None]).any(axis=2)
        out[s:s + len(nb), 1:] = np.where(mutual, nb, -1)
    return out


def _expanded(rows: np.ndarray, r_k1: np.ndarray, r_h: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) pairs of R*(i) for the database rows ``rows`` (sorted by row, then column)."""
    cand = r_h[np.maximum(r_k1, 0)]                                           # (b, k1+1, h+1)
    valid = (cand >= 0) & (r_k1 >= 0)[:, :, None]
    inside = (cand[..., None] == r_k1[:, None, None, :]).any(axis=3) & valid
    accept = inside.sum(axis=2) > 2 / 3 * valid.sum(axis=2)
    extra = np.where(accept[:, :, None] & valid, cand, -1).reshape(len(rows), -1)
    members = np.concatenate([r_k1, extra], axis=1)
    r = np.repeat(rows, members.shape[1])
    c = members.ravel()
    ok = c >= 0
    key = np.unique(r[ok] * n + c[ok])
    return key // n, key % n


def _pair_similarities(x: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """(P,) float64 x[rows] . x[cols], in blocks."""
    out = np.empty(len(rows), np.float64)
    step = max(1, (32 * 2**20) // max(1, 8 * x.shape[1]))
    for s in range(0, len(rows), step):
        e = s + step
        out[s:e] = np.einsum("pd,pd->p", x[rows[s:e]].astype(np.float64), x[cols[s:e]].astype(np.float64))
    return out
