"""The aggregator interface: a scikit-learn transformer over LocalFeatures.

``Aggregator`` is a ``BaseEstimator`` + ``TransformerMixin``: ``get_params`` / ``set_params``,
``clone`` and ``repr`` come from scikit-learn; constructor arguments are the hyper-parameters and
nothing else; learned state ends in ``_``. Poolings learn nothing and transform without ``fit``,
as scikit-learn's ``Normalizer`` does.
"""
from __future__ import annotations

from typing import ClassVar, Iterable, Sequence

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from benchmarks.constraints import check_constraints, check_device
from benchmarks.errors import ParameterError
from features import LocalFeatures


class Aggregator(TransformerMixin, BaseEstimator, auto_wrap_output_keys=None):
    """Turns the local features of one image into one global vector.

    Subclasses implement ``_encode`` (one image -> (D,) vector) and may override
    ``_encode_batch`` (a vectorised path), ``_validate_params`` (the one place their
    hyper-parameters are checked; raise ``ParameterError``), ``_fit`` with ``learns = True`` when
    they learn something (codebooks, GMMs, anchors), and ``output_dim``.
    """

    #: True for methods defined only on dense maps (R-MAC, CroW).
    requires_grid: ClassVar[bool] = False
    #: whether it reads a transformer's class token (LocalFeatures.cls_token)
    requires_cls_token: ClassVar[bool] = False
    #: True for methods that learn from a fitting set (so ``fit`` needs one, and must come first).
    learns: ClassVar[bool] = False

    #: hyper-parameter -> what it must be (``benchmarks.constraints``), read by ``_validate_params``
    constraints: ClassVar[dict] = {}

    # ------------------------------------------------------------------ parameters
    def to(self, device: str) -> "Aggregator":
        """Encode on ``device`` (``cpu``, ``cuda``, ``cuda:N``) from now on; returns self
        (ParameterError when it is not here). Not a hyper-parameter, so never in ``get_params``
        or a fit key. Methods without a torch path (the poolings) run in NumPy whatever the
        device: they check it and keep nothing."""
        check_device(device, type(self).__name__)
        return self

    def _validate_params(self) -> None:
        """Check the hyper-parameters against ``constraints`` (ParameterError naming the
        argument); a subclass extends it only for checks that involve several parameters."""
        check_constraints(self, self.constraints)

    def validate(self) -> "Aggregator":
        """Check the hyper-parameters now (the apps call this before any work)."""
        self._validate_params()
        return self

    def _error(self, param: str, reason: str) -> ParameterError:
        return ParameterError(param, getattr(self, param), reason, type(self).__name__)

    # ------------------------------------------------------------------ fitting
    def fit(self, features: Iterable[LocalFeatures], y=None) -> "Aggregator":
        """Learn whatever the method needs from the local features of a fitting set (poolings:
        only check the parameters and record the input dimension)."""
        self._validate_params()
        features = _checked(features, self)
        if not features:
            raise ValueError(f"{type(self).__name__}.fit got no local features to learn from "
                             "(is the fitting dataset, fit_on, empty?)")
        if self.learns:
            self._fit(features)
        self.n_features_in_ = features[0].dim   # set last: a failed fit leaves it unfitted
        return self

    def _fit(self, features: list[LocalFeatures]) -> None:
        """Learn state from checked features (only called when ``learns``)."""

    def __sklearn_is_fitted__(self) -> bool:
        return not self.learns or hasattr(self, "n_features_in_")

    # ---------------------------------------------------------------- encoding
    def transform(self, features: LocalFeatures | Sequence[LocalFeatures]) -> np.ndarray:
        """(N, D) float32, one row per image of a sequence; a single LocalFeatures is a sequence
        of one (a (1, D) result, as scikit-learn gives for one sample)."""
        self._validate_params()
        single = isinstance(features, LocalFeatures)
        batch = _checked([features] if single else features, self)
        if not self.__sklearn_is_fitted__():
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit() first")
        fitted_dim = getattr(self, "n_features_in_", None)
        if batch and fitted_dim is not None and batch[0].dim != fitted_dim:
            raise ValueError(f"{type(self).__name__} was fitted on {fitted_dim}-D local "
                             f"features but got {batch[0].dim}-D ones")
        if not batch:
            width = self.output_dim(fitted_dim) if fitted_dim is not None else 0
            return np.zeros((0, width), dtype=np.float32)
        out = np.asarray(self._encode_batch(batch), dtype=np.float32)
        bad = ~np.isfinite(out).all(axis=1)
        if bad.any():
            raise FloatingPointError(f"{type(self).__name__} produced a non-finite descriptor for "
                                     f"{int(bad.sum())} of {len(batch)} images")
        return out

    def _encode_batch(self, batch: list[LocalFeatures]) -> np.ndarray:
        return np.stack([self._encode(f) for f in batch])

    def _encode(self, features: LocalFeatures) -> np.ndarray:
        """One image's (D,) descriptor."""
        raise NotImplementedError

    # --------------------------------------------------------------- properties
    def output_dim(self, input_dim: int) -> int:
        """Descriptor dimension D for d-dimensional local features (default: D = d)."""
        return input_dim

    @property
    def dim(self) -> int:
        """Descriptor dimension D for the local features seen by ``fit``."""
        if not hasattr(self, "n_features_in_"):
            raise RuntimeError(f"{type(self).__name__}.dim is known only after fit(); "
                               "use output_dim(d) for d-dimensional local features")
        return self.output_dim(self.n_features_in_)


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
