"""The deep-vs-SIFT similarity study over one dataset: which image pairs match (and how their
pixels correspond), the similarity samples of local-feature pairs and of sum-pooled image
descriptors, and the table of how well matching and non-matching pairs separate.

Reads features, never extracts them: callers pass stored LocalFeatures (experiments.pipeline.
FeatureSource). Samples are keyed by (level, feature type, similarity kind), level being
``local`` (pairs of local features) or ``image`` (pairs of sum-pooled image descriptors).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from sklearn.pipeline import make_pipeline

from aggregators import L2, PCAWhitening, SumPooling
from analysis.similarity import (estimate_homography, feature_pairs, gather_pairs,
                                 grid_correspondences, keypoint_correspondences,
                                 pair_similarity, random_feature_pairs, separation, view_to_view)
from benchmarks.base import RetrievalDataset
from features import LocalFeatures

POSITIVE_KEYS = ("ok", "easy", "hard")
Samples = dict[tuple[str, str, str], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class ImagePairs:
    """Image pairs of one dataset.

    sizes:        (N, 2) pixel (w, h) of every database image.
    matching:     (k, 2) pairs of images of one scene (a < b).
    homographies: (k, 3, 3) pixels of a -> pixels of b for each matching pair (NaN: unknown).
    unrelated:    (u, 2) pairs of images known not to match (a query and an image outside its
                  positive and junk lists), drawn at random with replacement.
    """

    sizes: np.ndarray
    matching: np.ndarray
    homographies: np.ndarray
    unrelated: np.ndarray

    def subset(self, keep: np.ndarray) -> "ImagePairs":
        """Only the matching pairs in ``keep`` (indices or mask)."""
        return replace(self, matching=self.matching[keep], homographies=self.homographies[keep])


def matching_pairs(dataset: RetrievalDataset) -> np.ndarray:
    """(k, 2) unordered pairs (query image, positive), a < b, each once, sorted."""
    pairs = {(min(q.db_index, int(r)), max(q.db_index, int(r)))
             for q in dataset.queries if q.db_index is not None
             for key in POSITIVE_KEYS for r in q.relevant.get(key, ()) if int(r) != q.db_index}
    return np.array(sorted(pairs), np.int64).reshape(-1, 2)


def unrelated_pairs(dataset: RetrievalDataset, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 2) random (query image, database image) pairs, the image outside the query's
    positive and junk lists (for the demo set: two images of different photos)."""
    N = len(dataset.images)
    queries = [q for q in dataset.queries if q.db_index is not None]
    if not queries or N < 2:
        raise ValueError(f"{dataset.name}: no query with a database image to pair")
    related = []
    for q in queries:
        others = np.concatenate([np.asarray(v, np.int64).ravel() for v in q.relevant.values()]
                                + [np.array([q.db_index])])
        related += [q.db_index * N + others, others * N + q.db_index]
    related = np.unique(np.concatenate(related))
    qidx = np.array([q.db_index for q in queries], np.int64)
    out = np.zeros((0, 2), np.int64)
    for _ in range(100):
        a = qidx[rng.integers(0, len(qidx), 2 * n)]
        b = rng.integers(0, N, 2 * n)
        ok = ~np.isin(a * N + b, related)
        out = np.concatenate([out, np.column_stack([a, b])[ok]])
        if len(out) >= n:
            return out[:n]
    raise ValueError(f"{dataset.name}: could not draw {n} unrelated image pairs "
                     "(does every image match every other?)")


def known_homographies(dataset: RetrievalDataset, pairs: np.ndarray) -> np.ndarray:
    """(k, 3, 3) view-to-view homographies from ``meta["homographies"]`` (source -> view pixels,
    the demo set's convention); NaN everywhere when the dataset has none."""
    H = dataset.meta.get("homographies")
    if H is None:
        return np.full((len(pairs), 3, 3), np.nan)
    return np.stack([view_to_view(H[a], H[b]) for a, b in pairs]) if len(pairs) else np.zeros((0, 3, 3))


def dataset_pairs(dataset: RetrievalDataset, sizes: np.ndarray, rng: np.random.Generator,
                  max_matching: int | None = None, n_unrelated: int = 10000) -> ImagePairs:
    """The matching pairs (at most ``max_matching``, drawn at random), their known homographies,
    and ``n_unrelated`` unrelated pairs."""
    pairs = matching_pairs(dataset)
    if max_matching is not None and len(pairs) > max_matching:
        pairs = pairs[np.sort(rng.choice(len(pairs), max_matching, replace=False))]
    return ImagePairs(np.asarray(sizes), pairs, known_homographies(dataset, pairs),
                      unrelated_pairs(dataset, n_unrelated, rng))


def estimate_missing(pairs: ImagePairs, sift: Sequence[LocalFeatures], ratio: float = 0.8,
                     reprojection_px: float = 4.0, min_inliers: int = 15) -> ImagePairs:
    """Fill unknown homographies by RANSAC on (Root)SIFT matches; pairs where it fails are
    dropped (they are not verified matches)."""
    H = pairs.homographies.copy()
    keep = np.ones(len(H), bool)
    for k, (a, b) in enumerate(pairs.matching):
        if np.isnan(H[k]).any():
            est, _ = estimate_homography(sift[a], sift[b], tuple(pairs.sizes[a]), tuple(pairs.sizes[b]),
                                         ratio, reprojection_px, min_inliers)
            keep[k] = est is not None
            H[k] = est if est is not None else np.nan
    return replace(pairs, homographies=H).subset(keep)


# ----------------------------------------------------------------------------- samples
def correspondences(features: Sequence[LocalFeatures], pairs: ImagePairs,
                    pixel_tolerance: float, unambiguous: bool = True) -> np.ndarray:
    """(m, 4) matching feature pairs: grid cells through the homography (dense maps), or
    keypoints whose mapped positions agree within ``pixel_tolerance`` (sparse features; see
    ``keypoint_correspondences`` for ``unambiguous``)."""
    out = []
    for (a, b), H in zip(pairs.matching, pairs.homographies):
        fa, fb = features[a], features[b]
        sa, sb = tuple(pairs.sizes[a]), tuple(pairs.sizes[b])
        if fa.grid is not None and fb.grid is not None:
            out.append(grid_correspondences(fa.grid, fb.grid, H, sa, sb))
        else:
            out.append(keypoint_correspondences(fa.positions, fb.positions, H, sa, sb,
                                                pixel_tolerance, unambiguous))
    return feature_pairs(pairs.matching, out)


def local_samples(features: Sequence[LocalFeatures], pairs: ImagePairs, pixel_tolerance: float,
                  rng: np.random.Generator, whiten: Callable[[np.ndarray], np.ndarray] | None = None,
                  max_pairs: int | None = None, unambiguous: bool = True
                  ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Similarities of matching and as many non-matching local-feature pairs, per kind:
    ``cosine``, ``dot`` and, given ``whiten`` (descriptors -> whitened descriptors),
    ``cosine_whitened``."""
    match = correspondences(features, pairs, pixel_tolerance, unambiguous)
    if max_pairs is not None and len(match) > max_pairs:
        match = match[np.sort(rng.choice(len(match), max_pairs, replace=False))]
    if not len(match):
        raise ValueError("no matching local-feature pairs: do the views overlap, is "
                         "pixel_tolerance large enough?")
    counts = np.array([f.n for f in features])
    non = random_feature_pairs(counts, pairs.unrelated, len(match), rng)
    (ma, mb), (na, nb) = gather_pairs(features, match), gather_pairs(features, non)
    out = {kind: (pair_similarity(ma, mb, kind), pair_similarity(na, nb, kind))
           for kind in ("cosine", "dot")}
    if whiten is not None:
        out["cosine_whitened"] = (pair_similarity(whiten(ma), whiten(mb)),
                                  pair_similarity(whiten(na), whiten(nb)))
    return out


def sum_pooled(features: Sequence[LocalFeatures]) -> np.ndarray:
    """(N, d) sum-pooled descriptors (SumPooling); NaN rows for images without features."""
    d = next(f.dim for f in features if f.n)
    pool = SumPooling().fit([next(f for f in features if f.n)])
    return np.stack([pool.transform([f])[0] if f.n else np.full(d, np.nan, np.float32) for f in features])


def image_samples(descriptors: np.ndarray, pairs: ImagePairs,
                  whiten: Callable[[np.ndarray], np.ndarray] | None = None
                  ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Cosine similarities of sum-pooled descriptors (N, d) of the matching image pairs and of
    as many unrelated ones (the normalised match kernel); ``cosine_whitened`` after ``whiten``.
    Images without features are left out."""
    valid = ~np.isnan(descriptors).any(axis=1)
    match = pairs.matching[valid[pairs.matching].all(axis=1)]
    non = pairs.unrelated[valid[pairs.unrelated].all(axis=1)][:len(match)]
    X = np.where(valid[:, None], descriptors, 0)
    out = {"cosine": (pair_similarity(X[match[:, 0]], X[match[:, 1]]),
                      pair_similarity(X[non[:, 0]], X[non[:, 1]]))}
    if whiten is not None:
        W = whiten(X)
        out["cosine_whitened"] = (pair_similarity(W[match[:, 0]], W[match[:, 1]]),
                                  pair_similarity(W[non[:, 0]], W[non[:, 1]]))
    return out


def fit_whitening(X: np.ndarray, dim: int | None) -> Callable[[np.ndarray], np.ndarray]:
    """L2 -> PCA-whitening -> L2 (the retrieval runs' chain), fitted on the rows of X."""
    X = X[~np.isnan(X).any(axis=1)]
    dim = None if dim is None else min(dim, X.shape[1], len(X) - 1)
    return make_pipeline(L2(), PCAWhitening(dim=dim, whiten=True), L2()).fit(X).transform


def separation_table(samples: Samples, bins: int = 100) -> pd.DataFrame:
    """One row per (level, feature type, kind): the ``separation`` statistics."""
    rows = [{"level": level, "features": ftype, "similarity": kind, **separation(m, n, bins)}
            for (level, ftype, kind), (m, n) in samples.items()]
    return pd.DataFrame(rows)
