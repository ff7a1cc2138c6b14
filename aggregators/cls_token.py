"""A transformer's class token as the global descriptor (DINO's retrieval evaluation), alone or
joined with a pooling of the patch tokens (dino#39: [CLS, pooled patches])."""
from __future__ import annotations

import numpy as np

from aggregators import functional as F
from aggregators.base import Aggregator
from aggregators.gem import GeM
from aggregators.pooling import SumPooling
from benchmarks.constraints import OneOf, Real
from features import LocalFeatures

JOINS = ("none", "mean", "gem")


class ClsToken(Aggregator):
    """The class token c, (d,); with ``join`` the L2-normalised class token and the
    L2-normalised pooling of the patch tokens side by side, [c / |c|, g / |g|], (2 d,):
    ``mean`` (average of the patch tokens, DINO's ``avgpool_patchtokens``) or ``gem`` (GeM with
    exponent ``p`` over the patch tokens clamped at 1e-6, as DINO's copy-detection evaluation
    does with p = 4).

    Needs features with a class token (features.vit.TokenExtractor on a model that has one);
    others are refused naming the image.
    """

    requires_cls_token = True

    constraints = {"join": OneOf(JOINS), "p": Real(0, low_open=True)}

    def __init__(self, join: str = "none", p: float = 4.0):
        self.join = join
        self.p = p

    def _encode(self, features: LocalFeatures) -> np.ndarray:
        if features.cls_token is None:
            raise ValueError("ClsToken needs a transformer's class token: these features have none "
                             "(a CNN, SIFT, or a model without one such as SigLIP); use "
                             "backbone=vit_* with a class-token model, or another aggregator")
        cls = np.asarray(features.cls_token, np.float32)
        if self.join == "none":
            return cls
        pooled = (SumPooling() if self.join == "mean" else GeM(self.p))._encode(features)
        return np.concatenate([F.l2_normalise(cls), F.l2_normalise(np.asarray(pooled, np.float32))])

    def output_dim(self, input_dim: int) -> int:
        return input_dim if self.join == "none" else 2 * input_dim
