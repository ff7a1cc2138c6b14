"""Post-processing of global descriptors: L2, power-law, PCA-whitening, learned whitening.

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

    Variants of the whitening (with ``whiten``): ``whiten_power`` p divides each component by
    (eigenvalue + floor)^p instead of its square root (p = 0.5: full whitening; p = 0: plain PCA;
    dirtorch's ``whitenp``, 0.25 in its evaluations); ``shrinkage`` b first shrinks the kept
    eigenvalues towards their mean, (1 - b) lambda + b mean(lambda) (b = 1: no whitening, a
    uniform scale), which damps the noisy low-variance components a small fitting set gives.
    Learned state: ``mean_`` (D,), ``components_`` (dim, D), ``explained_variance_`` (dim,).
    """

    constraints = {"dim": Integer(optional=True), "whiten": Boolean(), "eps": Real(0),
                   "whiten_power": Real(0), "shrinkage": Real(0, 1)}

    def __init__(self, dim: int | None = 256, whiten: bool = True, eps: float = 1e-9,
                 whiten_power: float = 0.5, shrinkage: float = 0.0):
        self.dim = dim
        self.whiten = whiten
        self.eps = eps
        self.whiten_power = whiten_power
        self.shrinkage = shrinkage

    def __setstate__(self, state):
        # fits pickled before the variants existed (cached R-MAC / FV aggregators hold one)
        super().__setstate__({"whiten_power": 0.5, "shrinkage": 0.0, **state})

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
            if self.shrinkage:
                ev = (1.0 - self.shrinkage) * ev + self.shrinkage * ev.mean()
            if self.whiten_power == 0.5:
                Y /= whitening_scale(ev, ev[0], self.eps)
            else:
                Y /= whitening_scale(ev, ev[0], self.eps) ** (2.0 * self.whiten_power)
        return Y.astype(np.float32)


class LearnedWhitening(_Step):
    """Supervised whitening learned from matching pairs (Radenović, Tolias & Chum, ECCV 2016 /
    TPAMI 2018, cirtorch's ``whitenlearn``): ``fit(X, y)`` with ``y`` (N,) integer labels, images
    of one label matching each other (-1: unlabelled, used for the mean and the second step only).

    1. Intra-class covariance from every pair (i, j) of one label, ``C_S = sum (x_i - x_j)(x_i -
       x_j)^T / #pairs``, optionally shrunk towards its scaled identity, ``(1 - shrinkage) C_S +
       shrinkage tr(C_S) / D I``; ``P = L^-1`` with ``C_S = L L^T`` (Cholesky) whitens it.
    2. PCA of every fitting descriptor after P (the inter-class covariance), ``W = V^T P`` with V
       its eigenvectors by decreasing eigenvalue (each one's largest-magnitude coefficient
       positive); ``transform(x) = W[:dim] (x - m)``, m the mean of all fitting descriptors (cirtorch
       takes the mean of its pairs' query side), float32 out.

    Without shrinkage C_S must be invertible: the pairs span at most sum over labels of (n_c - 1)
    dimensions, which must reach D (ParameterError naming ``shrinkage`` otherwise).
    Learned state: ``mean_`` (D,), ``components_`` (dim, D), ``n_pairs_``.
    """

    constraints = {"dim": Integer(optional=True), "shrinkage": Real(0, 1)}
    #: ``fit`` reads ``y`` (the chain's fit hands it the fitting set's matching groups)
    needs_labels = True

    def __init__(self, dim: int | None = 256, shrinkage: float = 0.0):
        self.dim = dim
        self.shrinkage = shrinkage

    def fit(self, X, y=None):
        check_constraints(self, self.constraints)
        X = validate_data(self, X, dtype=np.float64)
        n, d = X.shape
        labels = _labels(y, n)
        dim = d if self.dim is None else int(self.dim)
        if dim > d:
            raise ParameterError("dim", self.dim, f"more than the {d} dimensions of the descriptors "
                                 "learned on; lower dim", "LearnedWhitening")
        intra, n_pairs, span = intra_class_covariance(X, labels)
        if n_pairs == 0:
            raise ParameterError("y", "labels", "no two fitting images share a label: supervised "
                                 "whitening needs matching pairs (fit on a set with ground truth)",
                                 "LearnedWhitening")
        if self.shrinkage == 0 and span < d:
            raise ParameterError("shrinkage", self.shrinkage, f"the {n_pairs} matching pairs span at "
                                 f"most {span} of the {d} dimensions, so their covariance cannot be "
                                 "inverted; set shrinkage > 0 (e.g. 0.1), reduce the dimension first, "
                                 "or fit on a set with more matching images", "LearnedWhitening")
        if self.shrinkage:
            intra = (1 - self.shrinkage) * intra + self.shrinkage * np.trace(intra) / d * np.eye(d)
        whitener = np.linalg.inv(np.linalg.cholesky(intra))
        self.mean_ = X.mean(axis=0)
        z = (X - self.mean_) @ whitener.T
        evals, evecs = np.linalg.eigh(z.T @ z)
        evecs = evecs[:, np.argsort(-evals, kind="stable")]
        signs = np.sign(evecs[np.abs(evecs).argmax(axis=0), np.arange(d)])
        self.components_ = ((evecs * signs).T @ whitener)[:dim]
        self.n_pairs_ = n_pairs
        return self

    def transform(self, X):
        check_is_fitted(self)
        Y = validate_data(self, X, dtype=np.float64, reset=False, ensure_min_samples=0) - self.mean_
        return (Y @ self.components_.T).astype(np.float32)


def intra_class_covariance(X: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, int, int]:
    """(D, D) mean of (x_i - x_j)(x_i - x_j)^T over the pairs i < j of one label, the number of
    pairs and the dimensions they span at most (sum of n_c - 1). A label of n_c images gives
    n_c (n_c - 1) / 2 pairs whose outer products sum to n_c times its scatter about its mean."""
    d = X.shape[1]
    total = np.zeros((d, d))
    for label in np.unique(labels[labels >= 0]):
        members = X[labels == label]
        if len(members) < 2:
            continue
        centred = members - members.mean(axis=0)
        total += len(members) * (centred.T @ centred)
    n_pairs, span = matching_pair_counts(labels)
    return (total / max(n_pairs, 1)), n_pairs, span


def matching_pair_counts(labels: np.ndarray) -> tuple[int, int]:
    """(pairs, span) of (N,) labels (-1: none): the pairs i < j of one label, and the most
    dimensions their differences span, the sum over labels of (n_c - 1)."""
    labels = np.asarray(labels)
    sizes = np.bincount(labels[labels >= 0]) if (labels >= 0).any() else np.zeros(0, np.int64)
    return int((sizes * (sizes - 1) // 2).sum()), int(np.maximum(sizes - 1, 0).sum())


def _labels(y, n: int) -> np.ndarray:
    if y is None:
        raise ParameterError("y", None, "supervised whitening learns from labels: fit(X, y) with y "
                             "(N,) integer labels, -1 for unlabelled", "LearnedWhitening")
    labels = np.asarray(y)
    if labels.shape != (n,) or (labels.size and not np.issubdtype(labels.dtype, np.integer)):
        raise ValueError(f"y must be ({n},) integer labels, got shape {labels.shape} dtype {labels.dtype}")
    return labels
