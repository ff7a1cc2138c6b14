"""Factories of small local-feature sets: dense ReLU'd maps and sparse SIFT-like keypoints."""
from __future__ import annotations

import numpy as np
import pytest

from features import LocalFeatures


def dense(h: int, w: int, d: int, seed: int = 0) -> LocalFeatures:
    """(h, w) map of d channels, ReLU'd Gaussian (non-negative, about half zeros)."""
    rng = np.random.default_rng(seed)
    return LocalFeatures.from_map(np.maximum(rng.standard_normal((d, h, w)), 0).astype(np.float32))


def sparse(n: int, d: int, seed: int = 0) -> LocalFeatures:
    """n RootSIFT-like keypoints (non-negative, unit L2), random positions, no grid."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, d)) ** 3
    x = np.sqrt(x / x.sum(axis=1, keepdims=True))
    return LocalFeatures(x.astype(np.float32), rng.random((n, 2)).astype(np.float32))


@pytest.fixture
def dense_maps():
    return lambda count, h=5, w=6, d=8, seed=0: [dense(h, w, d, seed + i) for i in range(count)]


@pytest.fixture
def sparse_sets():
    return lambda count, n=40, d=8, seed=0: [sparse(n, d, seed + i) for i in range(count)]
