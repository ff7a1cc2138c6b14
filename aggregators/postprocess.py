"""Post-processing of global descriptors: L2, power-law, PCA-whitening.

Each step is a scikit-learn transformer over (N, D) arrays, so a chain is a
``sklearn.pipeline.Pipeline``; the paper's chain is L2 -> PCA-whitening -> L2.
"""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from benchmarks.errors import ParameterError


class L2(TransformerMixin, BaseEstimator):
    """Scale each row to unit Euclidean norm (all-zero rows stay zero)."""

    def __init__(self, eps: float = 1e-12):
        self.eps = eps

    def fit(self, X, y=None):
        return self

    def __sklearn_is_fitted__(self) -> bool:  # stateless
        return True

    def transform(self, X):
        X = np.asarray(X, dtype=np.float32)
        return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), self.eps)


class PowerNorm(TransformerMixin, BaseEstimator):
    """Signed power law, sign(x) |x|^alpha (alpha = 0.5 is the signed square root)."""

    def __init__(self, alpha: float = 0.5):
        self.alpha = alpha

    def fit(self, X, y=None):
        if not self.alpha > 0:
            raise ValueError(f"PowerNorm alpha must be > 0, got {self.alpha}")
        return self

    def __sklearn_is_fitted__(self) -> bool:  # stateless
        return True

    def transform(self, X):
        X = np.asarray(X, dtype=np.float32)
        return np.sign(X) * np.abs(X) ** self.alpha


def whitening_scale(evals: np.ndarray, largest: float, eps: float) -> np.ndarray:
    """sqrt(eigenvalue + eps * largest eigenvalue): the divisor of a whitened component."""
    return np.sqrt(evals + eps * largest + 1e-30)


class PCAWhitening(TransformerMixin, BaseEstimator):
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

    def __init__(self, dim: int | None = 256, whiten: bool = True, eps: float = 1e-9):
        self.dim = dim
        self.whiten = whiten
        self.eps = eps

    def fit(self, X, y=None):
        from sklearn.decomposition import PCA
        X = np.asarray(X, dtype=np.float64)
        n, d = X.shape
        max_dim = min(n - 1, d)
        dim = max_dim if self.dim is None else int(self.dim)
        if dim < 1 or dim > max_dim:
            raise ParameterError(
                "dim", self.dim, f"more than the fitting set allows: {n} descriptors of dimension "
                f"{d} give at most {max_dim} principal components. Lower dim to <= {max_dim} or "
                "fit on a larger set (fit_on)", "PCAWhitening")
        pca = PCA(n_components=dim, svd_solver="full").fit(X)
        self.mean_ = pca.mean_
        self.components_ = pca.components_
        self.explained_variance_ = pca.explained_variance_
        return self

    def transform(self, X):
        Y = (np.asarray(X, dtype=np.float64) - self.mean_) @ self.components_.T
        if self.whiten:
            ev = self.explained_variance_
            Y /= whitening_scale(ev, ev[0], self.eps)
        return Y.astype(np.float32)
