"""Post-processing of global descriptors: L2, power-law, PCA-whitening.

Each step is a scikit-learn transformer over (N, D) arrays, so a chain is a
``sklearn.pipeline.Pipeline``; the paper's chain is L2 -> PCA-whitening -> L2.
"""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin


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


def leading_eigenvectors(sym: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k largest eigenvalues (clipped at 0, decreasing) and their eigenvectors (columns) of a
    symmetric matrix, each oriented so that its largest-magnitude coefficient is positive (a
    deterministic sign). Reads the upper triangle only."""
    evals, evecs = np.linalg.eigh(sym, UPLO="U")
    order = np.argsort(evals)[::-1][:k]
    return np.clip(evals[order], 0, None), oriented(evecs[:, order])


def oriented(vectors: np.ndarray) -> np.ndarray:
    """Columns flipped so that each one's largest-magnitude coefficient is positive."""
    signs = np.sign(vectors[np.abs(vectors).argmax(axis=0), np.arange(vectors.shape[1])])
    return vectors * np.where(signs == 0, 1, signs)


def whitening_scale(evals: np.ndarray, largest: float, eps: float) -> np.ndarray:
    """sqrt(eigenvalue + eps * largest eigenvalue): the divisor of a whitened component."""
    return np.sqrt(evals + eps * largest + 1e-30)


class PCAWhitening(TransformerMixin, BaseEstimator):
    """Project on the leading ``dim`` principal components and, with ``whiten``, divide by the
    square root of their eigenvalues (the singular values up to a constant).

    Fitted in float64. ``dim=None`` keeps every component the fitting set supports.
    Learned state: ``mean_`` (D,), ``components_`` (dim, D), ``explained_variance_`` (dim,).
    """

    def __init__(self, dim: int | None = 256, whiten: bool = True, eps: float = 1e-9):
        self.dim = dim
        self.whiten = whiten
        self.eps = eps

    def fit(self, X, y=None):
        X = np.asarray(X, dtype=np.float64)
        n, d = X.shape
        max_dim = min(n - 1, d)
        dim = max_dim if self.dim is None else int(self.dim)
        if dim < 1 or dim > max_dim:
            raise ValueError(
                f"postprocess dim={self.dim} is more than the fitting set allows: {n} descriptors "
                f"of dimension {d} give at most {max_dim} principal components. Lower "
                f"postprocess.dim to <= {max_dim} or fit on a larger set (postprocess.fit_on)")
        self.mean_ = X.mean(axis=0)
        Xc = X - self.mean_
        if n < d:  # Gram trick: eigen-decompose the smaller (n x n) matrix
            evals, evecs = leading_eigenvectors(Xc @ Xc.T, dim)
            comps = oriented((Xc.T @ evecs) / np.sqrt(np.maximum(evals, 1e-300)))
        else:
            evals, comps = leading_eigenvectors(Xc.T @ Xc, dim)
        self.components_ = comps.T
        self.explained_variance_ = evals / max(n - 1, 1)
        return self

    def transform(self, X):
        Y = (np.asarray(X, dtype=np.float64) - self.mean_) @ self.components_.T
        if self.whiten:
            ev = self.explained_variance_
            Y /= whitening_scale(ev, ev[0], self.eps)
        return Y.astype(np.float32)
