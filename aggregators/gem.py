"""Generalised-mean (GeM) pooling, Radenović et al. 2018."""
from __future__ import annotations

import math
import numpy as np
import torch

from aggregators.base import Aggregator
from benchmarks.constraints import Real
from features import LocalFeatures


class GeM(Aggregator):
    """Per-channel generalised mean: f_k = (mean_i max(x_ik, eps)^p)^(1/p), (d,).

    p = 1 is average pooling, p -> inf tends to max pooling; ``p=inf`` is accepted and computes
    that limit exactly (max pooling of the clamped features). Features are clamped at ``eps``
    first, so GeM is meant for non-negative (post-ReLU, RootSIFT) features. Computed as
    m * (mean (x / m)^p)^(1/p) with m the channel maximum, which cannot overflow for large p.
    """

    constraints = {"p": Real(0, low_open=True, allow_inf=True),   # 1: average, inf: max
                   "eps": Real(0, low_open=True)}

    def __init__(self, p: float = 3.0, eps: float = 1e-6):
        self.p = p
        self.eps = eps

    def _encode(self, features: LocalFeatures) -> np.ndarray:
        x = torch.tensor(features.descriptors, dtype=torch.float32).clamp(min=self.eps)
        peak = x.amax(dim=0)
        if math.isinf(self.p):
            return peak.numpy()
        mean = (x / peak).pow(self.p).mean(dim=0, dtype=torch.float64)
        return peak.double().mul(mean.pow(1.0 / self.p)).numpy()
