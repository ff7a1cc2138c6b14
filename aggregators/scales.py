"""Combining the descriptors of one image at several scales (multi-scale extraction,
features/multiscale.py) into one, after each scale was aggregated on its own.

- ``mean``: (1/S sum_s l2(v_s)^p)^(1/p), the mean of the L2-normalised per-scale descriptors
  raised to ``p``: cirtorch's ``extract_ms`` (its p is GeM's p for GeM networks, else 1);
  ``p != 1`` needs non-negative descriptors (GeM's, max pooling's of post-ReLU maps).
- ``sum``: sum_s v_s, the raw per-scale descriptors added, not normalised first: a scale whose
  descriptor is larger (sum pooling over more cells) weighs more. (A mean or sum of normalised
  descriptors would only be ``mean`` with p = 1 again: the L2 that follows removes the factor.)
- ``max``: max_s l2(v_s) per dimension: SuperGlobal's Scale-GeM in its p -> inf form, the one
  its evaluation uses (``sgem`` with ``infinity=True``).

The result goes through the post-processing chain (power law, L2, PCA) like a single-scale
descriptor. One scale: ``mean`` and ``max`` give l2(v), ``sum`` v: after the chain's L2 all three
are the single-scale descriptor.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Sequence

import numpy as np

from aggregators.functional import l2_normalise
from benchmarks.constraints import OneOf, Real, check_constraints
from benchmarks.errors import ParameterError

COMBINATIONS = ("mean", "sum", "max")


@dataclass(frozen=True)
class ScaleCombination:
    """S per-scale descriptor matrices (N, D) -> (N, D) float32 (``combine``: mean | sum | max;
    ``p``: the power of ``mean``)."""

    combine: str = "mean"
    p: float = 1.0

    constraints: ClassVar[dict] = {"combine": OneOf(COMBINATIONS), "p": Real(0, low_open=True)}

    def __post_init__(self) -> None:
        check_constraints(self, self.constraints)

    def __call__(self, per_scale: Sequence[np.ndarray]) -> np.ndarray:
        if not len(per_scale):
            raise ValueError("ScaleCombination: no scale to combine")
        x = np.stack([np.asarray(v, dtype=np.float32) for v in per_scale])   # (S, N, D)
        if self.combine == "sum":
            return x.sum(axis=0)
        x = l2_normalise(x)
        if self.combine == "max":
            return x.max(axis=0)
        if self.p == 1:
            return x.mean(axis=0)
        if (x < 0).any():
            raise ParameterError("multiscale.p", self.p, "mean with a power needs non-negative "
                                 "descriptors, and these have negative entries (signed features, "
                                 "or an aggregator that signs them): use multiscale.p=1",
                                 "ScaleCombination")
        return np.power(np.power(x, self.p).mean(axis=0), 1.0 / self.p)

    @property
    def label(self) -> str:
        """"mean", "mean p=3", "sum", "max"."""
        return f"mean p={self.p:g}" if self.combine == "mean" and self.p != 1 else self.combine


#: aggregators whose p is a GeM exponent over non-negative (clamped) values: what ``p=None`` of a
#: mean takes, as cirtorch takes its GeM layer's p
GEM_POOLINGS = ("GeM", "SuperGlobalPooling")


def mean_power(p: float | None, agg) -> float:
    """The power of a ``mean`` combination: ``p``, or for None the aggregator's p when it is a
    GeM pooling (``GEM_POOLINGS``), else 1."""
    if p is not None:
        return float(p)
    return float(agg.p) if type(agg).__name__ in GEM_POOLINGS else 1.0


def combine_scales(agg, images: Sequence[Sequence], combination: ScaleCombination) -> np.ndarray:
    """(N, D): ``agg`` applied to each scale of N images (items of ``MultiScaleFeatures``: one
    LocalFeatures per scale), the S results combined by ``combination``."""
    scales = len(images[0]) if len(images) else 0
    return combination([agg.transform([im[s] for im in images]) for s in range(scales)])
