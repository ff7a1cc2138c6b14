"""The aggregator interface: scikit-learn style fit / transform over LocalFeatures."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Iterable, Sequence

import numpy as np

from features import LocalFeatures


class Aggregator(ABC):
    """Turns the local features of one image into one global vector.

    Subclasses implement ``_encode`` (one image -> (D,) vector) and may override
    ``_encode_batch`` with a vectorised path, ``_fit`` when they learn something
    (codebooks, GMMs, anchors) and ``output_dim``. Constructor arguments are the
    hyper-parameters and nothing else; learned state ends in ``_``.
    """

    #: True for methods defined only on dense maps (R-MAC, CroW).
    requires_grid: bool = False

    # ------------------------------------------------------------------ fitting
    def fit(self, features: Iterable[LocalFeatures]) -> "Aggregator":
        """Learn whatever the method needs from the local features of a fitting set."""
        features = _checked(features, self)
        if not features:
            raise ValueError(f"{type(self).__name__}.fit got no local features to learn from "
                             "(is the fitting dataset, fit_on, empty?)")
        self.n_features_in_ = features[0].dim
        self._fit(features)
        return self

    def _fit(self, features: list[LocalFeatures]) -> None:
        """Learn state from checked features; pooling methods learn nothing."""

    @property
    def learns(self) -> bool:
        """Whether ``fit`` learns from the fitting set (so it needs one); False for poolings."""
        return type(self)._fit is not Aggregator._fit

    # ---------------------------------------------------------------- encoding
    def transform(self, features: LocalFeatures | Sequence[LocalFeatures]) -> np.ndarray:
        """(D,) float32 for one image, (N, D) for a sequence of images."""
        single = isinstance(features, LocalFeatures)
        batch = _checked([features] if single else features, self)
        if not hasattr(self, "n_features_in_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit() first")
        if batch and batch[0].dim != self.n_features_in_:
            raise ValueError(f"{type(self).__name__} was fitted on {self.n_features_in_}-D local "
                             f"features but got {batch[0].dim}-D ones")
        if not batch:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = np.asarray(self._encode_batch(batch), dtype=np.float32)
        bad = ~np.isfinite(out).all(axis=1)
        if bad.any():
            raise FloatingPointError(f"{type(self).__name__} produced a non-finite descriptor for "
                                     f"{int(bad.sum())} of {len(batch)} images")
        return out[0] if single else out

    def _encode_batch(self, batch: list[LocalFeatures]) -> np.ndarray:
        return np.stack([self._encode(f) for f in batch])

    @abstractmethod
    def _encode(self, features: LocalFeatures) -> np.ndarray:
        """One image's (D,) descriptor."""

    # --------------------------------------------------------------- properties
    def output_dim(self, input_dim: int) -> int:
        """Descriptor dimension D for d-dimensional local features (default: D = d)."""
        return input_dim

    @property
    def dim(self) -> int:
        """Descriptor dimension D (known once fitted)."""
        if not hasattr(self, "n_features_in_"):
            raise RuntimeError(f"{type(self).__name__}.dim is known only after fit()")
        return self.output_dim(self.n_features_in_)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.endswith("_"))
        return f"{type(self).__name__}({params})"


def _checked(features: Iterable[LocalFeatures], agg: Aggregator) -> list[LocalFeatures]:
    """Materialise and validate: non-empty, finite, one dimension, grids where required."""
    out = list(features)
    name = type(agg).__name__
    dims = set()
    for i, f in enumerate(out):
        if not isinstance(f, LocalFeatures):
            raise TypeError(f"{name} expects LocalFeatures, got {type(f).__name__} at position {i}")
        if f.n == 0:
            raise ValueError(f"{name}: image {i} of the batch has no local features "
                             "(a blank or tiny image?); it cannot be aggregated")
        if not np.isfinite(f.descriptors).all():
            raise ValueError(f"{name}: image {i} of the batch has NaN or infinite local features")
        if agg.requires_grid and f.grid is None:
            raise ValueError(f"{name} needs a dense feature map (grid); these features are sparse "
                             "keypoints (e.g. SIFT). Use a deep extractor, or another aggregator")
        dims.add(f.dim)
    if len(dims) > 1:
        raise ValueError(f"{name}: local features of different dimensions in one call: {sorted(dims)}")
    return out
