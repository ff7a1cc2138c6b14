"""Post-processing of global descriptors: L2, power-law, PCA-whitening.

Each step is a scikit-learn transformer over (N, D) arrays, so a chain is a
``sklearn.pipeline.Pipeline``; the paper's chain is L2 -> PCA-whitening -> L2. Inputs are checked
as scikit-learn's own transformers check them (``validate_data``: 2-D, finite, dense, the fitted
width); outputs are float32 whatever the input (descriptors are stored and searched in float32).
L2 and PowerNorm are stateless, like scikit-learn's ``Normalizer``: ``fit`` only records the width.
"""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from aggregators import functional as F
from benchmarks.constraints import Boolean, Integer, Real, check_constraints
from benchmarks.errors import ParameterError


class _Step(TransformerMixin, BaseEstimator):
    """What the steps share: float32 out (the only dtype they preserve), a constraints table."""

    #: hyper-parameter -> what it must be (``benchmarks.constraints``), checked by ``fit``
    constraints: dict = {}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


class _Stateless(_Step):
    """A step that learns nothing: usable without ``fit``, which only checks and records the
    input width (``n_features_in_``), as scikit-learn's ``Normalizer``."""

    def fit(self, X, y=None):
        check_constraints(self, self.constraints)
        validate_data(self, X, dtype=np.float32)
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        return tags

    def _input(self, X) -> np.ndarray:
        return validate_data(self, X, dtype=np.float32, reset=False, ensure_min_samples=0)


class L2(_Stateless):
    """Scale each row to unit Euclidean norm (all-zero rows stay zero)."""

    def __init__(self, eps: float = 1e-12):
        self.eps = eps

    def transform(self, X):
        return F.l2_normalise(self._input(X), self.eps)


class PowerNorm(_Stateless):
    """Signed power law, sign(x) |x|^alpha (alpha = 0.5 is the signed square root)."""

    constraints = {"alpha": Real(0, low_open=True)}

    def __init__(self, alpha: float = 0.5):
        self.alpha = alpha

    def transform(self, X):
        return F.signed_power(self._input(X), self.alpha)


def whitening_scale(evals: np.ndarray, largest: float, eps: float) -> np.ndarray:
    """sqrt(eigenvalue + eps * largest eigenvalue): the divisor of a whitened component."""
    return np.sqrt(evals + eps * largest + 1e-30)


class PCAWhitening(_Step):
    """Project on the leading ``dim`` principal components and, with ``whiten``, divide by the
    square root of their eigenvalues (the singular values up to a constant).

    The principal components are scikit-learn's ``PCA`` (exact SVD, in float64; its sign rule:
    each component's largest-magnitude coefficient is positive). This class is the thin layer
    on top: the whitening divides by sqrt(eigenvalue + ``eps`` x the largest eigenvalue), which
    stays stable when a small fitting set gives near-zero eigenvalues (scikit-learn's own
    ``whiten=True`` has no such floor), and ``dim`` is capped at what centring leaves (n - 1).
    ``dim=None`` keeps every component the fitting set supports.
    Learned state: ``mean_`` (D,), ``components_`` (dim, D), ``explained_variance_`` (dim,).
    """

    constraints = {"dim": Integer(optional=True), "whiten": Boolean(), "eps": Real(0)}

    def __init__(self, dim: int | None = 256, whiten: bool = True, eps: float = 1e-9):
        self.dim = dim
        self.whiten = whiten
        self.eps = eps

    def fit(self, X, y=None):
        from sklearn.decomposition import PCA
        check_constraints(self, self.constraints)
        X = validate_data(self, X, dtype=np.float64)
        n, d = X.shape
        max_dim = min(n - 1, d)
        dim = max_dim if self.dim is None else int(self.dim)
        if dim < 1 or dim > max_dim:
            raise ParameterError(
                "dim", self.dim, f"more than the fitting set allows: {n} descriptors (n_samples = "
                f"{n}) of dimension {d} (n_features = {d}) give at most {max_dim} principal "
                f"components. Lower dim to <= {max_dim} or fit on a larger set (fit_on)",
                "PCAWhitening")
        pca = PCA(n_components=dim, svd_solver="full").fit(X)
        self.mean_ = pca.mean_
        self.components_ = pca.components_
        self.explained_variance_ = pca.explained_variance_
        return self

    def transform(self, X):
        check_is_fitted(self)
        Y = (validate_data(self, X, dtype=np.float64, reset=False, ensure_min_samples=0)
             - self.mean_) @ self.components_.T
        if self.whiten:
            ev = self.explained_variance_
            Y /= whitening_scale(ev, ev[0], self.eps)
        return Y.astype(np.float32)
