"""SuperGlobal's training-free re-ranking (Shao, Chen, Zhang & Cao, "Global features are all you
need for image retrieval and reranking", ICCV 2023; code ShihaoShao-GH/SuperGlobal, modules
``MDescAug`` and ``RerankwMDA``), for any L2-normalised global descriptors.

Per query, on its first ``M`` results ``x_1..x_M`` of the plain search:

- MDescAug: each x_j becomes ``x'_j = (x_j + sum_t beta s_jt x_t) / (1 + sum_t beta s_jt)`` over
  its ``K`` nearest others among the M (similarities ``s_jt``; the code's K + 1 "including oneself",
  with the image itself put first whatever its similarity to a duplicate), not renormalised;
  ``s'_j = q . x'_j``;
- RerankwMDA: ``m`` = the element-wise maximum of the x' of the K + 1 best by s', and the final
  score ``(s'_j + m . x'_j) / 2`` orders the M (equal scores in their first order); below them the
  plain ranking is kept. As in the code, the query itself is not in the maximum (the paper's
  formula differs) and the top-(K + 1) weights it computes go unused.

Never reads the ground truth; the query's own database image is an ordinary candidate, as in
the code. Memory per query O(M^2 + M D).
"""
from __future__ import annotations

import numpy as np

from benchmarks.constraints import Integer, Real
from benchmarks.errors import ParameterError
from benchmarks.rerank import RankingReranker, _own_index, _pair
from benchmarks.search import reorder_short_lists, search


class SuperGlobalRerank(RankingReranker):
    """MDescAug + RerankwMDA (module docstring) with the code's names and defaults: ``M`` = 400
    results re-ranked (at most the database), ``K`` = 9 neighbours, ``beta`` = 0.15."""

    constraints = {"M": Integer(1), "K": Integer(1), "beta": Real(0)}

    def __init__(self, M: int = 400, K: int = 9, beta: float = 0.15):
        self.M = M
        self.K = K
        self.beta = beta

    @property
    def label(self) -> str:
        return f"SuperGlobal(M={self.M},K={self.K},beta={self.beta:g})"

    def validate(self) -> "SuperGlobalRerank":
        super().validate()
        if self.K >= self.M:
            raise ParameterError("K", self.K, f"needs K < M = {self.M} (K neighbours among the M "
                                 "results)", type(self).__name__)
        return self

    def check_database_size(self, n: int) -> None:
        """M is a length (the top min(M, n) are re-ranked); the K neighbours must exist among them."""
        if self.K > min(self.M, n) - 1:
            raise ParameterError("K", self.K, f"more neighbours than the {min(self.M, n)} re-ranked "
                                 f"results have (M={self.M}, database {n} images); use K <= "
                                 f"{min(self.M, n) - 1}", type(self).__name__)

    def rank(self, queries, database, query_db_index, k, track=None, graph=None, **search_options):
        self.validate()
        q, x = _pair(queries, database)
        _own_index(query_db_index, len(q), len(x))
        self.check_database_size(len(x))
        length = min(int(self.M), len(x))
        first = search(q, x, max(int(k), length), track=track, **search_options)
        return reorder_short_lists(first, k, length,
                                   lambda i, short: superglobal_scores(q[i], x[short], self.K, self.beta),
                                   ties="first")


def superglobal_scores(query: np.ndarray, candidates: np.ndarray, K: int, beta: float) -> np.ndarray:
    """(M,) float64 final scores of ``candidates`` (M, D) for ``query`` (D,) (module docstring);
    a zero query (an image without local features) keeps its plain scores (all 0: first order)."""
    c = candidates.astype(np.float64)
    if not np.any(query):
        return c @ query.astype(np.float64)
    m = len(c)
    sims = c @ c.T
    np.fill_diagonal(sims, -np.inf)
    kk = min(K, m - 1)
    near = np.argsort(-sims, axis=1, kind="stable")[:, :kk]                # K nearest others
    w = beta * np.take_along_axis(sims, near, axis=1)                       # (M, K)
    augmented = (c + np.einsum("mk,mkd->md", w, c[near])) / (1.0 + w.sum(axis=1))[:, None]
    first = augmented @ query.astype(np.float64)
    best = np.argsort(-first, kind="stable")[:K + 1]
    mda = augmented[best].max(axis=0)
    return (first + augmented @ mda) / 2.0
