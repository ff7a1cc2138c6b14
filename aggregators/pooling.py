"""Sum pooling (SPoC, with or without the centre prior) and max pooling (MAC)."""
from __future__ import annotations

import numpy as np

from aggregators.base import Aggregator
from benchmarks.constraints import Boolean
from features import LocalFeatures


def center_prior_weights(features: LocalFeatures) -> np.ndarray:
    """SPoC's Gaussian centre prior, (n,) weights.

    alpha(x, y) = exp(-((y - H/2)^2 + (x - W/2)^2) / (2 sigma^2)), sigma = one third of the
    distance from the centre to the closest border. For a grid the coordinates are the cell centres
    in cell units (cell (i, j) sits at (j + 0.5, i + 0.5)), so sigma = min(H, W) / 6. For sparse
    features (no grid) the same is done in normalised image coordinates (H = W = 1).
    """
    h, w = features.grid if features.grid is not None else (1, 1)
    x = features.positions[:, 0].astype(np.float64) * w
    y = features.positions[:, 1].astype(np.float64) * h
    sigma = min(h, w) / 2.0 / 3.0
    return np.exp(-((y - h / 2.0) ** 2 + (x - w / 2.0) ** 2) / (2.0 * sigma ** 2))


class SumPooling(Aggregator):
    """psi(I) = sum_i alpha_i f_i; alpha = 1 (sum pooling) or the centre prior (SPoC).

    Mean pooling equals sum pooling after the L2 normalisation that follows.
    """

    constraints = {"center_prior": Boolean()}

    def __init__(self, center_prior: bool = False):
        self.center_prior = center_prior

    def _encode(self, features: LocalFeatures) -> np.ndarray:
        x = features.descriptors.astype(np.float32, copy=False)
        if not self.center_prior:
            return x.sum(axis=0, dtype=np.float64)
        return center_prior_weights(features) @ x.astype(np.float64)


class MaxPooling(Aggregator):
    """Per-channel maximum over all local features (MAC)."""

    def _encode(self, features: LocalFeatures) -> np.ndarray:
        return features.descriptors.max(axis=0).astype(np.float32)
