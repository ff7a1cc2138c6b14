"""Score a ranking under a dataset's protocol."""
from __future__ import annotations

import numpy as np

from benchmarks.base import RetrievalDataset
from benchmarks.metrics import mean_average_precision, ns_score

_EMPTY = np.zeros(0, dtype=np.int64)


def _get(rel: dict, *keys: str) -> np.ndarray:
    parts = [np.asarray(rel.get(k, _EMPTY), dtype=np.int64) for k in keys]
    return np.unique(np.concatenate(parts)) if parts else _EMPTY


def evaluate(dataset: RetrievalDataset, rankings: np.ndarray, ks=(1, 5, 10)) -> dict:
    """Metrics for (n_queries, n_db) rankings. Returns scalars plus ``aps`` (per query).

    oxford / holidays: positives = ok, junk ignored (Holidays puts the query itself in junk).
    ukbench: N-S score (the query counts) and mAP with the query itself as junk.
    revisited: Easy (easy positives, hard as junk), Medium (easy + hard), Hard (hard positives,
    easy as junk): mAP and mP@k of each, keys prefixed E/M/H.
    """
    qs = dataset.queries
    if rankings.shape[0] != len(qs):
        raise ValueError(f"{rankings.shape[0]} rankings for {len(qs)} queries of {dataset.name}")
    if dataset.protocol in ("oxford", "holidays"):
        return mean_average_precision(rankings, [_get(q.relevant, "ok") for q in qs],
                                      [_get(q.relevant, "junk") for q in qs], ks)
    if dataset.protocol == "ukbench":
        selves = [np.array([q.db_index] if q.db_index is not None else [], dtype=np.int64) for q in qs]
        groups = [np.union1d(_get(q.relevant, "ok"), s) for q, s in zip(qs, selves)]
        out = mean_average_precision(rankings, [_get(q.relevant, "ok") for q in qs],
                                     [np.union1d(_get(q.relevant, "junk"), s) for q, s in zip(qs, selves)], ks)
        out["N-S"] = ns_score(rankings, groups)
        return out
    if dataset.protocol == "revisited":
        out: dict = {}
        setups = {"E": (("easy",), ("junk", "hard")),
                  "M": (("easy", "hard"), ("junk",)),
                  "H": (("hard",), ("junk", "easy"))}
        for tag, (pos_keys, junk_keys) in setups.items():
            r = mean_average_precision(rankings, [_get(q.relevant, *pos_keys) for q in qs],
                                       [_get(q.relevant, *junk_keys) for q in qs], ks)
            for k, v in r.items():
                out[f"{tag}/{k}"] = v
        out["mAP"] = out["M/mAP"]
        out["aps"] = out["M/aps"]
        return out
    raise ValueError(f"unknown protocol {dataset.protocol!r}")
