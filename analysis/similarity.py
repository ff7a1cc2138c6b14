"""Matching and non-matching pairs of local features, their similarities, and how well the two
separate: the array-level pieces of the deep-vs-SIFT analysis (paper section 6).

Conventions. Positions are LocalFeatures' normalised (x, y) in [0, 1], continuous (pixel column i
spans [i, i + 1)). Homographies act on OpenCV pixel coordinates (pixel centres at integers), as
``cv2.warpPerspective`` and ``cv2.findHomography`` use them: pixel = position * (w, h) - 0.5.
A feature pair is a row (image a, feature i, image b, feature j) of an (m, 4) int64 array.
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
from scipy.spatial import cKDTree

from aggregators import L2
from features.local_features import LocalFeatures, grid_positions

SIMILARITIES = ("cosine", "dot")


# ----------------------------------------------------------------------------- geometry
def to_pixels(positions: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(n, 2) normalised positions -> OpenCV pixel coordinates of a (w, h) image."""
    return np.asarray(positions, np.float64) * np.asarray(size, np.float64) - 0.5


def to_positions(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Inverse of ``to_pixels``."""
    return (np.asarray(pixels, np.float64) + 0.5) / np.asarray(size, np.float64)


def apply_homography(H: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(n, 2) points through a 3 x 3 homography; points sent to or behind infinity become NaN."""
    p = np.asarray(points, np.float64).reshape(-1, 2)
    q = np.column_stack([p, np.ones(len(p))]) @ np.asarray(H, np.float64).T
    w = q[:, 2:]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(w > 1e-12, q[:, :2] / w, np.nan)


def view_to_view(H_a: np.ndarray, H_b: np.ndarray) -> np.ndarray:
    """Pixels of view a -> pixels of view b, for views made from one source by H_a and H_b
    (each maps source pixels to its view's pixels): H_b @ inv(H_a)."""
    return np.asarray(H_b, np.float64) @ np.linalg.inv(np.asarray(H_a, np.float64))


def map_positions(positions: np.ndarray, H: np.ndarray, size_a: tuple[int, int],
                  size_b: tuple[int, int]) -> np.ndarray:
    """Normalised positions of image a -> normalised positions in image b (NaN where undefined)."""
    return to_positions(apply_homography(H, to_pixels(positions, size_a)), size_b)


def grid_correspondences(grid_a: tuple[int, int], grid_b: tuple[int, int], H: np.ndarray,
                         size_a: tuple[int, int], size_b: tuple[int, int]) -> np.ndarray:
    """(m, 2) cell pairs (cell of a, cell of b), row-major indices: each cell centre of a is mapped
    through H (pixels of a -> pixels of b) and paired with the cell of b it lands in; centres that
    land outside b are skipped."""
    hb, wb = grid_b
    p = map_positions(grid_positions(*grid_a), H, size_a, size_b)
    inside = np.isfinite(p).all(axis=1)
    inside[inside] = ((p[inside] >= 0) & (p[inside] < 1)).all(axis=1)
    cols = np.floor(p[inside, 0] * wb).astype(np.int64)
    rows = np.floor(p[inside, 1] * hb).astype(np.int64)
    return np.column_stack([np.flatnonzero(inside), rows * wb + cols]).astype(np.int64)


def isolated(points: np.ndarray, radius: float) -> np.ndarray:
    """(n,) True where no other point lies within ``radius``."""
    if len(points) < 2:
        return np.ones(len(points), bool)
    d, _ = cKDTree(points).query(points, k=2)
    return d[:, 1] > radius


def keypoint_correspondences(positions_a: np.ndarray, positions_b: np.ndarray, H: np.ndarray,
                             size_a: tuple[int, int], size_b: tuple[int, int], tolerance: float,
                             unambiguous: bool = True) -> np.ndarray:
    """(m, 2) keypoint pairs (index in a, index in b): keypoints of a mapped through H whose
    nearest keypoint of b lies within ``tolerance`` pixels (of b), one-to-one (mutual nearest
    neighbours). With ``unambiguous``, keypoints that have another keypoint of their own image
    within ``tolerance`` are left out: position alone cannot tell them apart (SIFT puts one
    keypoint per dominant orientation, and several scales, at one location)."""
    empty = np.zeros((0, 2), np.int64)
    if len(positions_a) == 0 or len(positions_b) == 0:
        return empty
    ia, ib = np.arange(len(positions_a)), np.arange(len(positions_b))
    pa = to_pixels(map_positions(positions_a, H, size_a, size_b), size_b)
    pb = to_pixels(positions_b, size_b)
    keep_a = np.isfinite(pa).all(axis=1)
    if unambiguous:
        keep_a &= isolated(to_pixels(positions_a, size_a), tolerance)
        ib = ib[isolated(pb, tolerance)]
    ia = ia[keep_a]
    if len(ia) == 0 or len(ib) == 0:
        return empty
    dist, nearest_b = cKDTree(pb[ib]).query(pa[ia], distance_upper_bound=tolerance)
    _, nearest_a = cKDTree(pa[ia]).query(pb[ib])
    hit = np.flatnonzero(np.isfinite(dist))
    mutual = hit[nearest_a[nearest_b[hit]] == hit]
    return np.column_stack([ia[mutual], ib[nearest_b[mutual]]]).astype(np.int64)


def ratio_matches(descriptors_a: np.ndarray, descriptors_b: np.ndarray, ratio: float = 0.8
                  ) -> np.ndarray:
    """(m, 2) matches (index in a, index in b) that pass Lowe's ratio test: the nearest
    descriptor of b (L2, ``cv2.BFMatcher.knnMatch`` with k = 2) is closer than ``ratio`` times
    the second nearest. Needs at least two descriptors in b (else no matches)."""
    if len(descriptors_a) == 0 or len(descriptors_b) < 2:
        return np.zeros((0, 2), np.int64)
    knn = cv2.BFMatcher(cv2.NORM_L2).knnMatch(np.asarray(descriptors_a, np.float32),
                                              np.asarray(descriptors_b, np.float32), k=2)
    return np.array([(m.queryIdx, m.trainIdx) for m, n in (p for p in knn if len(p) == 2)
                     if m.distance < ratio * n.distance], np.int64).reshape(-1, 2)


def estimate_homography(a: LocalFeatures, b: LocalFeatures, size_a: tuple[int, int],
                        size_b: tuple[int, int], ratio: float = 0.8,
                        reprojection_px: float = 4.0, min_inliers: int = 15
                        ) -> tuple[np.ndarray | None, int]:
    """(H, number of inliers): the homography from pixels of a to pixels of b, fitted by RANSAC
    (``cv2.findHomography``) to the descriptor matches that pass Lowe's ratio test
    (``ratio_matches``); (None, count) when fewer than ``min_inliers`` matches or inliers
    survive. Works on stored (Root)SIFT features."""
    if a.n < 2 or b.n < 2:
        return None, 0
    matches = ratio_matches(a.descriptors, b.descriptors, ratio)
    if len(matches) < max(4, min_inliers):
        return None, int(len(matches))
    src = to_pixels(a.positions[matches[:, 0]], size_a).astype(np.float32)
    dst = to_pixels(b.positions[matches[:, 1]], size_b).astype(np.float32)
    H, mask = cv2.findHomography(src, dst, cv2.RANSAC, reprojection_px)
    inliers = int(mask.sum()) if mask is not None else 0
    return (H if H is not None and inliers >= min_inliers else None), inliers


# ----------------------------------------------------------------------------- pairs
def feature_pairs(image_pairs: np.ndarray, correspondences: Sequence[np.ndarray]) -> np.ndarray:
    """(m, 4) feature pairs from image pairs (k, 2) and the (m_i, 2) correspondences of each."""
    parts = [np.column_stack([np.full(len(c), ia), c[:, 0], np.full(len(c), ib), c[:, 1]])
             for (ia, ib), c in zip(np.asarray(image_pairs), correspondences) if len(c)]
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros((0, 4), np.int64)


def random_feature_pairs(counts: np.ndarray, image_pairs: np.ndarray, n: int,
                         rng: np.random.Generator) -> np.ndarray:
    """(n, 4) feature pairs: an image pair drawn uniformly from ``image_pairs`` (k, 2) (those where
    both images have features), then one feature of each image uniformly (``counts``: features
    per image)."""
    counts = np.asarray(counts)
    pairs = np.asarray(image_pairs).reshape(-1, 2)
    pairs = pairs[(counts[pairs[:, 0]] > 0) & (counts[pairs[:, 1]] > 0)]
    if n and not len(pairs):
        raise ValueError("no image pair with local features in both images to sample from")
    pick = pairs[rng.integers(0, len(pairs), n)] if n else np.zeros((0, 2), np.int64)
    fa = np.floor(rng.random(n) * counts[pick[:, 0]]).astype(np.int64)
    fb = np.floor(rng.random(n) * counts[pick[:, 1]]).astype(np.int64)
    return np.column_stack([pick[:, 0], fa, pick[:, 1], fb]).astype(np.int64)


def gather_pairs(features: Sequence[LocalFeatures], pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two descriptors of every feature pair: (m, d) float32 arrays A and B."""
    pairs = np.asarray(pairs, np.int64).reshape(-1, 4)
    d = next((f.dim for f in features if f.n), 0)
    out = [np.zeros((len(pairs), d), np.float32) for _ in range(2)]
    for side in (0, 1):
        img, feat = pairs[:, 2 * side], pairs[:, 2 * side + 1]
        for i in np.unique(img):
            rows = np.flatnonzero(img == i)
            out[side][rows] = np.asarray(features[i].descriptors, np.float32)[feat[rows]]
    return out[0], out[1]


# ----------------------------------------------------------------------------- similarity
def pair_similarity(A: np.ndarray, B: np.ndarray, kind: str = "cosine") -> np.ndarray:
    """(m,) similarity of row pairs: ``cosine`` (of L2-normalised rows) or the raw ``dot``."""
    if kind == "cosine":
        A, B = L2().transform(A), L2().transform(B)
    elif kind != "dot":
        raise ValueError(f"similarity kind {kind!r}: expected one of {SIMILARITIES}")
    return np.einsum("ij,ij->i", np.asarray(A, np.float64), np.asarray(B, np.float64))


# ----------------------------------------------------------------------------- separation
def overlap_coefficient(a: np.ndarray, b: np.ndarray, bins: int = 100) -> float:
    """Overlap of two distributions, the integral of min(p_a, p_b), from histograms on common
    bins: 1 for identical samples, 0 for disjoint ones."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    lo, hi = min(a.min(), b.min()), max(a.max(), b.max())
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
    pa = np.histogram(a, edges)[0] / len(a)
    pb = np.histogram(b, edges)[0] / len(b)
    return float(np.minimum(pa, pb).sum())


def separation(matching: np.ndarray, non_matching: np.ndarray, bins: int = 100) -> dict:
    """Mean and std of both samples; ``mean_ratio`` = mean non-matching / mean matching (what an
    average unrelated pair adds to a sum-pooled match kernel, relative to a matching one); the
    overlap coefficient; the ROC AUC of telling a matching pair from a non-matching one by its
    similarity (0.5: chance, 1: perfect)."""
    from sklearn.metrics import roc_auc_score
    m, n = np.asarray(matching, np.float64), np.asarray(non_matching, np.float64)
    if not len(m) or not len(n):
        raise ValueError(f"separation needs both samples: {len(m)} matching, {len(n)} non-matching")
    labels = np.r_[np.ones(len(m)), np.zeros(len(n))]
    return {"n_matching": len(m), "n_non_matching": len(n),
            "mean_matching": float(m.mean()), "std_matching": float(m.std()),
            "mean_non_matching": float(n.mean()), "std_non_matching": float(n.std()),
            "mean_ratio": float(n.mean() / m.mean()) if m.mean() else float("nan"),
            "overlap": overlap_coefficient(m, n, bins),
            "auc": float(roc_auc_score(labels, np.r_[m, n]))}
