"""Multi-scale local features: each image extracted at several scales, one store entry per scale.

Scale ``s`` is the image resized by the backbone's resize policy and then by ``s`` (the
extractors' ``scale``: one resampling of the original image), so each scale is an ordinary
single-scale entry whose identity has ``scale: s``, and scale 1 is the single-scale entry itself:
a sweep over scale sets extracts each scale once, a multi-scale run resumes like any other, and
nothing is held in memory beyond what one scale's memory-mapped entry costs (bounded at 1M
images, as for one scale). Combining the scales is an encoding choice
(``aggregators.scales.ScaleCombination``), made after each scale is aggregated.
"""
from __future__ import annotations

import hashlib
from typing import Iterator, Sequence

import numpy as np

from benchmarks.base import ImageRef
from benchmarks.errors import ParameterError
from features.local_features import LocalFeatures


class MultiScaleFeatures(Sequence):
    """The local features of N images at S scales: item i is the tuple of image i's S
    LocalFeatures, in the order of ``scales``.

    scales:    (S,) the scale factors.
    per_scale: S sequences of N LocalFeatures (stored entries or lists), aligned by image.
    """

    def __init__(self, scales: Sequence[float], per_scale: Sequence[Sequence[LocalFeatures]]):
        if len(scales) != len(per_scale) or not scales:
            raise ValueError(f"MultiScaleFeatures: {len(scales)} scales but {len(per_scale)} "
                             "feature sequences")
        if len({len(p) for p in per_scale}) > 1:
            raise ValueError("MultiScaleFeatures: the scales hold different numbers of images: "
                             f"{[len(p) for p in per_scale]}")
        self.scales, self.per_scale = [float(s) for s in scales], list(per_scale)

    def __len__(self) -> int:
        return len(self.per_scale[0])

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return tuple(p[i] for p in self.per_scale)

    def __iter__(self) -> Iterator[tuple[LocalFeatures, ...]]:
        return (self[i] for i in range(len(self)))

    def subset(self, indices: Sequence[int]) -> "MultiScaleFeatures":
        """The images ``indices``, in that order (their features read now)."""
        return MultiScaleFeatures(self.scales, [[p[int(i)] for i in indices] for p in self.per_scale])

    def counts(self) -> np.ndarray:
        """(N,) the fewest local features an image has at any scale (0: empty at some scale,
        which makes it an image without features)."""
        return np.min([_counts(p) for p in self.per_scale], axis=0)

    def flat(self) -> list[LocalFeatures]:
        """Every image's features at every scale, scale-major (what a learned aggregator is
        fitted on: the features it will encode)."""
        return [f for p in self.per_scale for f in p]

    def content_key(self) -> str:
        """What identifies these features: the scales and each scale's content key."""
        keys = [f"{s}:{p.content_key() if hasattr(p, 'content_key') else len(p)}"
                for s, p in zip(self.scales, self.per_scale)]
        return hashlib.sha1("|".join(keys).encode()).hexdigest()[:16]


def _counts(feats: Sequence[LocalFeatures]) -> np.ndarray:
    if hasattr(feats, "counts"):
        return feats.counts()
    return np.array([f.n for f in feats], dtype=np.int64)


def check_scales(scales: Sequence[float], owner: str = "multiscale") -> list[float]:
    """The scale factors as floats: a non-empty list of distinct numbers > 0, else
    ParameterError naming ``scales``."""
    import math
    try:
        values = [float(s) for s in scales]
        ok = (len(values) > 0 and all(math.isfinite(s) and s > 0 for s in values)
              and not any(isinstance(s, bool) for s in scales))
    except (TypeError, ValueError):
        ok, values = False, []
    if not ok:
        raise ParameterError("scales", list(scales) if isinstance(scales, Sequence) else scales,
                             "a non-empty list of numbers > 0, e.g. [1] (one scale), "
                             "[1, 0.7071, 0.5] (cirtorch) or [0.7071, 1, 1.4142] (DELG, "
                             "SuperGlobal)", owner)
    if len(set(values)) < len(values):
        raise ParameterError("scales", list(scales), "each scale once", owner)
    return values


class MultiScaleSource:
    """Stored local features at several scales: one ``features.source.FeatureSource`` per scale
    (``source.at_scale(s)``, all sharing one extractor), each filling its own store entry."""

    def __init__(self, source, scales: Sequence[float]):
        self.scales = check_scales(scales)
        self.base = source
        self.sources = [source.at_scale(s) for s in self.scales]
        self.kind, self.identity = source.kind, source.identity

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.sources)

    @property
    def extracted(self) -> int:
        return sum(s.extracted for s in self.sources)

    def features(self, dataset: str, images: Sequence[ImageRef],
                 boxes: Sequence[tuple | None] | None = None, what: str = "images"
                 ) -> MultiScaleFeatures:
        """The features of ``images`` at every scale (each scale's missing ones extracted)."""
        return MultiScaleFeatures(self.scales, [
            s.features(dataset, images, boxes, what=f"{what} at scale {scale:g}")
            for scale, s in zip(self.scales, self.sources)])
