"""Cross-dimensional weighting and pooling (CroW), Kalantidis et al. 2016."""
from __future__ import annotations

import numpy as np

from aggregators.base import Aggregator
from benchmarks.constraints import Real
from features import LocalFeatures


def crow_spatial_weights(x: np.ndarray, a: float = 2.0, b: float = 2.0) -> np.ndarray:
    """(n,) weights S = (S' / ||S'||_a)^(1/b), S' the per-location channel sum of (n, d) ``x``.

    An all-zero map gets all-zero weights.
    """
    s = x.sum(axis=1, dtype=np.float64)
    norm = np.sum(s ** a) ** (1.0 / a)
    return (s / norm) ** (1.0 / b) if norm > 0 else np.zeros_like(s)


def crow_channel_weights(x: np.ndarray) -> np.ndarray:
    """(d,) weights log(sum_j Q_j / Q_k), Q_k the fraction of locations where channel k is > 0.

    A channel that is never active gets weight 0 (it contributes nothing anyway).
    """
    q = (x > 0).mean(axis=0, dtype=np.float64)
    active = q > 0
    out = np.zeros_like(q)
    out[active] = np.log(q.sum() / q[active])
    return out


class CroW(Aggregator):
    """Weighted sum pooling: f_k = C_k sum_i S_i x_ik, (d,), on a dense non-negative map.

    S are the spatial weights (``crow_spatial_weights``, exponents ``a``, ``b``), C the channel
    weights (``crow_channel_weights``). The paper then applies L2, PCA-whitening, L2: that is the
    post-processing chain's job. Needs post-ReLU (non-negative) features.
    """

    requires_grid = True

    constraints = {"a": Real(0, low_open=True), "b": Real(0, low_open=True)}

    def __init__(self, a: float = 2.0, b: float = 2.0):
        self.a = a
        self.b = b

    def _encode(self, features: LocalFeatures) -> np.ndarray:
        x = features.descriptors.astype(np.float32)
        if (x < 0).any():
            raise ValueError("CroW needs non-negative (post-ReLU) local features, got negative "
                             "values (transformer tokens are signed); set backbone.relu=true for "
                             "a CNN, or use another aggregator")
        return crow_channel_weights(x) * (crow_spatial_weights(x, self.a, self.b) @ x)
