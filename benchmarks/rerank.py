"""Re-ranking by query expansion (QE) and database-side augmentation (DBA) of global descriptors.

Each method is a small scikit-learn style estimator whose constructor arguments are its
hyper-parameters (the keys of its ``conf/rerank/NAME.yaml``), stored as given and checked in one
place against its ``constraints`` table (``validate()``, which the apps call before any work), and
whose ``rerank(queries, database, query_db_index)`` returns new (queries, database) descriptors; searching those gives the new ranking. Re-ranking never reads
the ground truth: it sees descriptors and, per query, the database index of the query's own image
(identity, not relevance). Conventions (docs/rerank.md has the references):

- Descriptors are expected L2-normalised (the post-processing chain ends with L2); outputs are
  L2-normalised float32 rows. A vector is replaced by the normalised weighted sum of itself
  (weight 1 = its similarity to itself) and its k nearest database neighbours, weight
  ``max(s, 0) ** alpha`` for a neighbour of similarity s (alpha = 0: plain average, every
  neighbour weight 1).
- QE: a query never takes the database image given as its own (``query_db_index``) as a
  neighbour: that image's descriptor is the query's (it would only double the query's weight),
  and Holidays-style protocols drop it from the query's ranked list, so the k neighbours are the
  top k of the evaluated list. ``query_db_indices(dataset)`` gives it where the query descriptor
  is its database image's; a cropped query's full image is an ordinary neighbour (as in cirtorch-
  and dirtorch-based published numbers on Oxford/Paris).
- DBA: every database vector is combined with itself and its k nearest *other* database vectors
  (found on the original database, then all replaced at once); QE after DBA searches the
  augmented database.
- Zero rows (images without local features) stay zero and are never anyone's neighbour; if
  fewer than k usable neighbours exist, the available ones are used.
- Neighbours come from ``benchmarks.search`` (exact, ties by database order) in query chunks of
  at most ``max_scores_bytes`` of scores (256 MiB by default): no N x N matrix is built.
"""
from __future__ import annotations

from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator

from benchmarks.constraints import Integer, Real, check_constraints
from benchmarks.errors import ParameterError
from benchmarks.search import search

#: what the neighbour counts and the weight powers must be
NEIGHBOURS = Integer(0, note="a number of neighbours; 0 = off")
POWER = Real(0, note="0 = plain average; 3 in Radenović et al.")
#: bytes of neighbour vectors gathered at once when summing them (rows x (k + 1) x D float32)
_COMBINE_BYTES = 32 * 2**20


class Reranker(BaseEstimator):
    """Base class: ``rerank`` returns (queries, database) descriptors to search instead.
    ``get_params``, ``clone`` and ``repr`` come from scikit-learn."""

    #: hyper-parameter -> what it must be (``benchmarks.constraints``), checked by ``validate``
    constraints: ClassVar[dict] = {}
    #: the neighbour counts of database-side augmentation (at most N - 1 other images)
    database_side: tuple[str, ...] = ("dba_k",)

    def validate(self) -> "Reranker":
        """ParameterError naming the first hyper-parameter that breaks its constraint."""
        check_constraints(self, self.constraints)
        return self

    @property
    def label(self) -> str:
        raise NotImplementedError

    def rerank(self, queries: np.ndarray, database: np.ndarray, query_db_index: np.ndarray | None = None,
               **search_options) -> tuple[np.ndarray, np.ndarray]:
        """queries (n_q, D), database (N, D), query_db_index (n_q,) int: the database index of each
        query's own image, -1 where it has none (None: no query has one). Returns float32
        (n_q, D), (N, D). ``search_options`` (``device``, ``max_scores_bytes``, ``backend``) go to the neighbour search."""
        raise NotImplementedError

    #: True for the methods that rank instead of changing descriptors (``rank``)
    ranks: ClassVar[bool] = False

    @property
    def graph_depth(self) -> int:
        """Neighbours per database row of the offline k-NN graph ``rank`` reads
        (``benchmarks.neighbours``; built and cached by the apps); 0: none."""
        return 0

    def rank(self, queries: np.ndarray, database: np.ndarray, query_db_index: np.ndarray | None,
             k: int, track=None, graph=None, **search_options):
        """The re-ranked search: a ``benchmarks.search.SearchResult`` of the top ``k`` and the
        exact ranks of ``track`` in the whole new ranking. ``graph``: the database's
        ``NeighbourGraph`` of depth ``graph_depth`` (None: built here). The methods that change
        descriptors search what ``rerank`` returns."""
        q, x = self.rerank(queries, database, query_db_index, **search_options)
        return search(q, x, k, track=track, **search_options)

    def check_database_size(self, n: int) -> None:
        """ParameterError when a neighbour count cannot be met by a database of ``n`` images: the
        app's check, before any work (called directly, QE uses the neighbours there are)."""
        for param in ("k", "dba_k"):
            k = getattr(self, param, 0)
            limit = n - 1 if param in self.database_side else n   # DBA: the others only
            if k > limit:
                raise ParameterError(param, k, f"larger than the database allows ({n} images); use "
                                     f"{param} <= {limit}", owner=type(self).__name__)



class RankingReranker(Reranker):
    """Base of the methods that re-order rankings (diffusion, k-reciprocal, SuperGlobal): they
    implement ``rank``; they have no descriptors to return."""

    ranks = True

    def rerank(self, queries, database, query_db_index=None, **search_options):
        raise TypeError(f"{type(self).__name__} re-orders rankings, it does not change "
                        "descriptors: use rank()")


class NoRerank(Reranker):
    """No re-ranking: the inputs are returned unchanged (config ``rerank=none``)."""

    label = "none"

    def rerank(self, queries, database, query_db_index=None, **search_options):
        return queries, database


class QueryExpansion(Reranker):
    """Query expansion: each query becomes the L2-normalised weighted sum of itself and its k
    nearest database vectors (its own database image excluded).

    alpha = 0: average query expansion, AQE (Chum et al., ICCV 2007, in its global-descriptor form);
    alpha > 0: alpha-weighted QE, αQE (Radenović et al., TPAMI 2018), weights similarity^alpha.
    k = 0 leaves the queries unchanged.
    """

    constraints = {"k": NEIGHBOURS, "alpha": POWER}

    def __init__(self, k: int = 5, alpha: float = 0.0):
        self.k = k
        self.alpha = alpha

    @property
    def label(self) -> str:
        return f"AQE(k={self.k})" if self.alpha == 0 else f"αQE(k={self.k},α={self.alpha:g})"

    def rerank(self, queries, database, query_db_index=None, **search_options):
        self.validate()
        q, x = _pair(queries, database)
        own = _own_index(query_db_index, len(q), len(x))
        new_q = expand(q, x, int(self.k), float(self.alpha), own, **search_options)
        return new_q, x


class DatabaseAugmentation(Reranker):
    """Database-side augmentation: each database vector becomes the L2-normalised weighted sum of
    itself and its k nearest other database vectors (Arandjelović & Zisserman, CVPR 2012, alpha = 0;
    the similarity-weighted form of Gordo et al., IJCV 2017, alpha > 0). Queries are unchanged.
    k = 0 leaves the database unchanged.
    """

    database_side = ("k",)
    constraints = {"k": NEIGHBOURS, "alpha": POWER}

    def __init__(self, k: int = 5, alpha: float = 0.0):
        self.k = k
        self.alpha = alpha

    @property
    def label(self) -> str:
        return f"DBA(k={self.k})" if self.alpha == 0 else f"αDBA(k={self.k},α={self.alpha:g})"

    def rerank(self, queries, database, query_db_index=None, **search_options):
        self.validate()
        q, x = _pair(queries, database)
        _own_index(query_db_index, len(q), len(x))
        return q, augment(x, int(self.k), float(self.alpha), "k", type(self).__name__, **search_options)


class QueryExpansionWithDBA(Reranker):
    """DBA of the database (``dba_k``, ``dba_alpha``), then QE of the queries (``k``, ``alpha``) over
    the augmented database, as in the literature's "DBA + QE" rows."""

    constraints = {"k": NEIGHBOURS, "alpha": POWER, "dba_k": NEIGHBOURS, "dba_alpha": POWER}

    def __init__(self, k: int = 5, alpha: float = 0.0, dba_k: int = 5, dba_alpha: float = 0.0):
        self.k = k
        self.alpha = alpha
        self.dba_k = dba_k
        self.dba_alpha = dba_alpha

    @property
    def label(self) -> str:
        dba = DatabaseAugmentation(self.dba_k, self.dba_alpha).label
        return f"{dba}+{QueryExpansion(self.k, self.alpha).label}"

    def rerank(self, queries, database, query_db_index=None, **search_options):
        self.validate()
        q, x = _pair(queries, database)
        own = _own_index(query_db_index, len(q), len(x))
        x = augment(x, int(self.dba_k), float(self.dba_alpha), "dba_k", type(self).__name__,
                    **search_options)
        return expand(q, x, int(self.k), float(self.alpha), own, **search_options), x


class SpocQueryExpansion(QueryExpansion):
    """RECONSTRUCTION of the query expansion of the SPoC paper's ICCV 2015 version, whose exact form
    is not recorded here: the expanded query is the L2-normalised sum of the query's descriptor and
    those of its k top-ranked database images, all with equal weight, i.e. the sum pooling of the
    query's and its neighbours' global descriptors, once (computationally AQE with the same k).
    docs/rerank.md lists what to check against the ICCV text.
    """

    alpha = 0.0   # equal weights: not a hyper-parameter of this method

    def __init__(self, k: int = 5):
        self.k = k

    @property
    def label(self) -> str:
        return f"SPoC-QE(k={self.k}) (reconstruction)"


# ----------------------------------------------------------------------------- the two operations
def expand(queries: np.ndarray, database: np.ndarray, k: int, alpha: float, own: np.ndarray, **search_options) -> np.ndarray:
    """QE: (n_q, D) float32 rows normalise(q + sum_j w_j x_j) over the k nearest non-zero rows of
    ``database`` other than ``own[i]`` (-1: none); zero queries stay zero; k = 0: unchanged."""
    if k == 0:
        return queries
    idx, sims = _neighbours(queries, database, k, own, search_options)
    return _combine(queries, database, idx, sims, alpha)


def augment(database: np.ndarray, k: int, alpha: float, param: str, owner: str, **search_options) -> np.ndarray:
    """DBA: (N, D) float32 rows normalise(x_i + sum_j w_j x_j) over the k nearest other non-zero
    rows; zero rows stay zero; k = 0: unchanged. ``param``/``owner`` name k in errors."""
    if k == 0:
        return database
    if k > len(database) - 1:
        raise ParameterError(param, k, f"each database image has only {len(database) - 1} other images "
                             f"to be augmented with; use {param} <= {len(database) - 1}", owner=owner)
    idx, sims = _neighbours(database, database, k, np.arange(len(database)), search_options)
    return _combine(database, database, idx, sims, alpha)


def _neighbours(queries, database, k, own, search_options):
    """(n, k + 1) int64 database indices (-1: none) and their similarities: each row's k nearest
    non-zero database rows other than ``own``; rows of zero queries get none."""
    n = len(queries)
    idx = np.full((n, k + 1), -1, np.int64)
    sims = np.zeros((n, k + 1), np.float32)
    live_q = np.flatnonzero(np.any(queries != 0, axis=1))
    usable = np.flatnonzero(np.any(database != 0, axis=1))
    if len(live_q) == 0 or len(usable) == 0:
        return idx, sims
    cand = database if len(usable) == len(database) else database[usable]
    qs = queries if len(live_q) == n else queries[live_q]
    res = search(qs, cand, k + 1, **search_options)
    found = usable[res.indices]                                   # (n_live, <= k + 1)
    found_sims = res.scores
    is_own = found == own[live_q][:, None]
    drop = is_own.copy()
    if found.shape[1] == k + 1:                                   # no own image: keep the first k
        drop[~is_own.any(axis=1), k] = True
    found = np.where(drop, -1, found)
    found_sims = np.where(drop, 0.0, found_sims)
    idx[live_q, :found.shape[1]] = found
    sims[live_q, :found.shape[1]] = found_sims
    return idx, sims


def _combine(vectors, source, idx, sims, alpha) -> np.ndarray:
    """normalise(v_i + sum_j w_ij source[idx_ij]) with w = max(s, 0)^alpha (1 when alpha = 0), over
    valid idx (>= 0); rows without neighbours keep their direction (zero rows stay zero)."""
    out = np.empty(vectors.shape, np.float32)
    weights = np.ones_like(sims) if alpha == 0 else np.maximum(sims, 0.0) ** np.float32(alpha)
    weights = np.where(idx >= 0, weights, 0.0).astype(np.float32)
    rows = max(1, _COMBINE_BYTES // (4 * idx.shape[1] * max(1, vectors.shape[1])))
    for s in range(0, len(vectors), rows):
        e = min(s + rows, len(vectors))
        acc = vectors[s:e].astype(np.float32, copy=True)
        acc += np.einsum("nk,nkd->nd", weights[s:e], source[np.maximum(idx[s:e], 0)])
        norms = np.linalg.norm(acc, axis=1, keepdims=True)
        out[s:e] = np.divide(acc, norms, out=np.zeros_like(acc), where=norms > 0)
    return out


# ----------------------------------------------------------------------------- checks
def _pair(queries, database) -> tuple[np.ndarray, np.ndarray]:
    q = np.ascontiguousarray(queries, dtype=np.float32)
    x = np.ascontiguousarray(database, dtype=np.float32)
    if q.ndim != 2 or x.ndim != 2 or q.shape[1] != x.shape[1]:
        raise ValueError(f"queries {q.shape} and database {x.shape} must be 2-D with the same dimension")
    return q, x


def _own_index(query_db_index, n_q: int, n: int) -> np.ndarray:
    if query_db_index is None:
        return np.full(n_q, -1, np.int64)
    own = np.asarray(query_db_index)
    if own.shape != (n_q,) or (own.size and not np.issubdtype(own.dtype, np.integer)):
        raise ValueError(f"query_db_index must be ({n_q},) integers (-1: not in the database), "
                         f"got shape {own.shape} dtype {own.dtype}")
    own = own.astype(np.int64)
    if own.size and (own.min() < -1 or own.max() >= n):
        raise ValueError(f"query_db_index holds {int(own.min() if own.min() < -1 else own.max())}, "
                         f"outside -1 .. {n - 1}")
    return own


def query_db_indices(dataset) -> np.ndarray:
    """(n_q,) int64 for ``rerank``: the database index of each query's own image where the query's
    descriptor is that image's (``dataset.query_uses_db_features``: Holidays, UKBench, the demo,
    uncropped Oxford/Paris), else -1 (a cropped query: its full image is an ordinary database item
    for QE). Reads identity only (``Query.db_index``, ``crop_queries``), never relevance."""
    return np.array([q.db_index if dataset.query_uses_db_features(q) else -1 for q in dataset.queries],
                    dtype=np.int64)
