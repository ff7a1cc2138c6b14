"""Score a search under a dataset's protocol.

``evaluate`` searches and scores in bounded memory: it tracks the exact rank of every image the
protocol looks at (positives, junk, the query's own image for UKBench) and keeps only the top-k.
``evaluate_rankings`` scores given full rankings; both give the same numbers, and so does
``evaluate_similarity`` of a given similarity matrix.

Protocols:
  oxford / holidays: positives = ok, junk ignored (Holidays puts the query itself in junk).
  ukbench: N-S score (the query counts) and mAP with the query itself as junk.
  revisited: Easy (easy positives, hard as junk), Medium (easy + hard), Hard (hard positives,
  easy as junk): mAP and mP@k of each, keys prefixed E/M/H; ``mAP`` and ``aps`` are Medium's.
  gldv2: positives = ok, no junk; ``mAP@100`` (GLDv2's metric) always added.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmarks.base import RetrievalDataset
from benchmarks.errors import DatasetError
from benchmarks.metrics import (mean_average_precision, mean_average_precision_from_ranks,
                                ns_score, ns_score_from_ranks, ranks_after_junk_removal)
from benchmarks.search import SearchResult, rank_scores, search

_EMPTY = np.zeros(0, dtype=np.int64)


@dataclass(frozen=True)
class Setup:
    """One scored setting of a protocol: key prefix ("" or "E/", "M/", "H/") and, per query, the
    positives and the junk (sorted unique database indices)."""

    prefix: str
    positives: list[np.ndarray]
    junk: list[np.ndarray]


def _get(rel: dict, *keys: str) -> np.ndarray:
    parts = [np.asarray(rel.get(k, _EMPTY), dtype=np.int64) for k in keys]
    return np.unique(np.concatenate(parts)) if parts else _EMPTY


def protocol_setups(dataset: RetrievalDataset) -> tuple[list[Setup], list[np.ndarray] | None]:
    """The settings scored under ``dataset.protocol`` and, for UKBench, each query's group (its ok
    images and itself) for the N-S score (else None)."""
    qs = dataset.queries
    if dataset.protocol in ("oxford", "holidays", "gldv2"):
        return [Setup("", [_get(q.relevant, "ok") for q in qs], [_get(q.relevant, "junk") for q in qs])], None
    if dataset.protocol == "ukbench":
        selves = [np.array([q.db_index] if q.db_index is not None else [], dtype=np.int64) for q in qs]
        ok = [_get(q.relevant, "ok") for q in qs]
        junk = [np.union1d(_get(q.relevant, "junk"), s) for q, s in zip(qs, selves)]
        return [Setup("", ok, junk)], [np.union1d(o, s) for o, s in zip(ok, selves)]
    if dataset.protocol == "revisited":
        kinds = {"E/": (("easy",), ("junk", "hard")),
                 "M/": (("easy", "hard"), ("junk",)),
                 "H/": (("hard",), ("junk", "easy"))}
        return [Setup(tag, [_get(q.relevant, *pos) for q in qs], [_get(q.relevant, *junk) for q in qs])
                for tag, (pos, junk) in kinds.items()], None
    raise ValueError(f"unknown protocol {dataset.protocol!r}")


def matching_groups(dataset: RetrievalDataset) -> np.ndarray:
    """(N,) int64 label of each database image: images that its ground truth says match share
    one (a query's image and its positives in the protocol's main setting, joined across
    queries), -1 for the images in no match. What supervised whitening learns from (its pairs);
    read from the fitting set only, never at query time."""
    setups, _ = protocol_setups(dataset)
    main = next((st for st in setups if st.prefix == "M/"), setups[0])
    parent = np.arange(len(dataset))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i
    matched = np.zeros(len(dataset), bool)
    for q, positives in zip(dataset.queries, main.positives):
        members = list(positives) + ([q.db_index] if q.db_index is not None else [])
        if len(members) < 2:
            continue
        matched[members] = True
        first = root(int(members[0]))
        for m in members[1:]:
            parent[root(int(m))] = first
    roots = np.array([root(i) for i in range(len(dataset))])
    _, labels = np.unique(roots, return_inverse=True)
    return np.where(matched, labels, -1).astype(np.int64)


def check_scorable(dataset: RetrievalDataset) -> None:
    """Stop before any work when ``dataset`` cannot be scored: no database image, no query, or no
    query with a positive in its protocol's main setting (Medium for the revisited protocol;
    Easy or Hard without any positive are scored NaN)."""
    where = dataset.meta.get("ground_truth", dataset.name) if isinstance(dataset.meta, dict) else dataset.name
    if len(dataset.images) == 0:
        raise DatasetError(f"dataset {dataset.name}: no database images (an empty imlist in {where}?)")
    if len(dataset.queries) == 0:
        raise DatasetError(f"dataset {dataset.name}: no queries (an empty qimlist / qidx in {where}?)")
    setups, _ = protocol_setups(dataset)
    main = next((st for st in setups if st.prefix == "M/"), setups[0])
    if not any(len(p) for p in main.positives):
        raise DatasetError(f"dataset {dataset.name}: no query has a positive image, so mAP is "
                           f"undefined; check the ground truth {where} (its "
                           f"{'easy/hard' if dataset.protocol == 'revisited' else 'ok'} lists)")


def _collect(dataset: RetrievalDataset, per_setup, n_s) -> dict:
    """The metrics dict from ``per_setup(setup) -> mean_average_precision dict`` and
    ``n_s(groups) -> N-S score``."""
    setups, groups = protocol_setups(dataset)
    out: dict = {}
    unscored = []
    for st in setups:
        if st.prefix in ("E/", "H/") and not any(len(p) for p in st.positives):
            unscored.append(st.prefix)   # no Easy (or Hard) positive anywhere: NaN, as revisitop
            continue
        for key, value in per_setup(st).items():
            out[f"{st.prefix}{key}"] = value
    for prefix in unscored:
        for key in [k for k in out if k.startswith("M/")]:
            value = out[key]
            out[prefix + key[2:]] = (np.full_like(value, np.nan, dtype=float) if isinstance(value, np.ndarray)
                                     else 0 if key.endswith("n_evaluated") else float("nan"))
    if groups is not None:
        out["N-S"] = n_s(groups)
    if dataset.protocol == "revisited":
        out["mAP"] = out["M/mAP"]
        out["aps"] = out["M/aps"]
    return out


#: the mAP@k a protocol always reports (its benchmark's own metric)
PROTOCOL_MAP_AT = {"gldv2": 100}


def _map_at(dataset: RetrievalDataset, map_at) -> tuple[int, ...]:
    """``map_at`` with the protocol's own k (PROTOCOL_MAP_AT) added."""
    own = PROTOCOL_MAP_AT.get(dataset.protocol)
    return tuple(sorted(set(map_at) | ({own} if own else set())))


def evaluate_rankings(dataset: RetrievalDataset, rankings: np.ndarray, ks=(1, 5, 10), map_at=(),
                      recall_at=()) -> dict:
    """Metrics for full (n_queries, n_db) rankings. Returns scalars plus ``aps`` (per query);
    ``map_at`` / ``recall_at``: the k of mAP@k (GLDv2's) and Recall@k to add (none by default)."""
    if rankings.shape[0] != len(dataset.queries):
        raise ValueError(f"{rankings.shape[0]} rankings for {len(dataset.queries)} queries of {dataset.name}")
    map_at = _map_at(dataset, map_at)
    return _collect(dataset, lambda st: mean_average_precision(rankings, st.positives, st.junk, ks,
                                                               map_at, recall_at),
                    lambda groups: ns_score(rankings, groups))


def evaluate(dataset: RetrievalDataset, queries: np.ndarray, database: np.ndarray,
             top_k: int = 10, ks=(1, 5, 10), map_at=(), recall_at=(), **search_options
             ) -> tuple[dict, SearchResult]:
    """Search ``database`` (N = len(dataset) rows, in the dataset's image order) with ``queries``
    (one row per dataset query) and score it: (metrics, SearchResult with the top ``top_k``);
    ``map_at`` / ``recall_at``: the k of mAP@k (GLDv2's) and Recall@k to add (none by default).

    The metrics are exactly ``evaluate_rankings`` of the full rankings (same keys and values, per
    query ``aps`` included), computed from the exact ranks of the images each query's protocol
    looks at. ``search_options``: ``max_scores_bytes``, ``device`` (see ``search``).
    """
    if len(queries) != len(dataset.queries):
        raise ValueError(f"{len(queries)} query descriptors for {len(dataset.queries)} queries of {dataset.name}")
    if len(database) != len(dataset):
        raise ValueError(f"{len(database)} database descriptors for {len(dataset)} images of {dataset.name}")
    return evaluate_search(dataset, lambda k, track: search(queries, database, k, track=track,
                                                            **search_options),
                           top_k, ks, map_at, recall_at)


def evaluate_search(dataset: RetrievalDataset, run, top_k: int = 10, ks=(1, 5, 10), map_at=(),
                    recall_at=()) -> tuple[dict, SearchResult]:
    """``evaluate`` of any search: ``run(k, track) -> SearchResult`` (the top k and the exact
    ranks of the tracked items in its whole ranking; a re-ranker's ``rank``)."""
    tracked = tracked_items(dataset)
    result = run(top_k, tracked)
    return _score_result(dataset, result, tracked, ks, map_at, recall_at), result


def evaluate_similarity(dataset: RetrievalDataset, scores: np.ndarray, top_k: int = 10, ks=(1, 5, 10),
                        map_at=(), recall_at=(), **options) -> tuple[dict, SearchResult]:
    """``evaluate`` of a given (n_queries, N) similarity matrix (rows the dataset's queries,
    columns its images, in order; memory-mapped arrays are read in blocks): the same metrics as
    ``evaluate_rankings`` of its rankings by the ranking convention. ``options``:
    ``max_scores_bytes``."""
    if scores.shape != (len(dataset.queries), len(dataset)):
        raise ValueError(f"a {scores.shape} similarity for the {len(dataset.queries)} queries x "
                         f"{len(dataset)} images of {dataset.name}")
    tracked = tracked_items(dataset)
    result = rank_scores(scores, top_k, track=tracked, **options)
    return _score_result(dataset, result, tracked, ks, map_at, recall_at), result


def tracked_items(dataset: RetrievalDataset) -> list[np.ndarray]:
    """Per query, the sorted database indices its protocol looks at (positives, junk, group)."""
    setups, groups = protocol_setups(dataset)
    return [np.unique(np.concatenate([a for st in setups for a in (st.positives[i], st.junk[i])]
                                     + ([groups[i]] if groups is not None else []) + [_EMPTY]))
            for i in range(len(dataset.queries))]


def _score_result(dataset: RetrievalDataset, result: SearchResult, tracked: list[np.ndarray], ks,
                  map_at, recall_at) -> dict:
    """The metrics of a search that tracked ``tracked`` (``tracked_items``)."""
    map_at = _map_at(dataset, map_at)

    def ranks_of(i: int, items: np.ndarray) -> np.ndarray:
        return result.ranks[i][np.searchsorted(tracked[i], items)]

    def per_setup(st: Setup) -> dict:
        ranks = [ranks_after_junk_removal(ranks_of(i, pos), ranks_of(i, np.setdiff1d(st.junk[i], pos)))
                 for i, pos in enumerate(st.positives)]
        return mean_average_precision_from_ranks(ranks, [len(p) for p in st.positives], ks, map_at,
                                                 recall_at)

    return _collect(dataset, per_setup,
                    lambda gs: ns_score_from_ranks([ranks_of(i, g) for i, g in enumerate(gs)]))
