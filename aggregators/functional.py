"""The embeddings' maths, one formula per operation, for NumPy arrays and torch tensors alike
(cirtorch's ``functional.py`` is the model). The aggregators' NumPy encoders (the CPU path of the
Fisher vector and the triangulation embedding), their batched torch encoders and the
post-processing steps all call these same pieces, so a formula is written once.

Conventions: vectors lie along the last axis; leading axes are batch axes (a NumPy encoder passes
one image, a torch encoder a padded batch). Every function keeps its input's library and dtype
(but ``democratic_weights``: float64).
Importing this module does not import torch (the post-processing steps use it on NumPy arrays
alone): a tensor can only come from code that imported torch already.
"""
from __future__ import annotations

import sys

import numpy as np


def _is_torch(a) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(a, torch.Tensor)


def _torch():
    return sys.modules["torch"]


def _swap(a):
    """The last two axes swapped (a transpose of each matrix of a batch)."""
    return a.transpose(-1, -2) if _is_torch(a) else np.swapaxes(a, -1, -2)


def _norm(v):
    """Euclidean norm along the last axis, kept as an axis of length 1."""
    if _is_torch(v):
        return _torch().linalg.vector_norm(v, dim=-1, keepdim=True)
    return np.linalg.norm(v, axis=-1, keepdims=True)


def _matvec(a, v):
    """a v for each (n, n) matrix of ``a`` and (n,) vector of ``v`` (one matrix-vector product
    when both are single)."""
    if _is_torch(a) or v.ndim > 1:
        return (a @ v[..., None])[..., 0]
    return a @ v


def _at_least(a, floor: float):
    """max(a, floor) elementwise."""
    return a.clamp_min(floor) if _is_torch(a) else np.maximum(a, floor)


# ------------------------------------------------------------------------------- normalisation
def signed_power(v, alpha: float):
    """sign(v) |v|^alpha (the power law; alpha = 0.5 is the signed square root, computed as one)."""
    sign, magnitude = (v.sign(), v.abs()) if _is_torch(v) else (np.sign(v), np.abs(v))
    return sign * (magnitude.sqrt() if _is_torch(v) and alpha == 0.5 else magnitude ** alpha)


def l2_normalise(v, eps: float = 1e-12):
    """v scaled to unit Euclidean norm along the last axis (norms below ``eps``: divided by eps,
    so zero vectors stay zero)."""
    return v / _at_least(_norm(v), eps)


# ------------------------------------------------------------------------------- Fisher vector
def gmm_log_densities(x, weights, means, variances):
    """(..., n, k) log w_k N(x_i | mu_k, diag var_k) of (..., n, d) features for a diagonal GMM
    (weights (k,), means and variances (k, d)), through matrix products:
    x (mu / var)^T - x^2 (1 / 2 var)^T + log w - 1/2 sum(log 2 pi var + mu^2 / var)."""
    log, total = (_torch().log, _torch().sum) if _is_torch(x) else (np.log, np.sum)
    const = log(weights) - 0.5 * total(log(2 * np.pi * variances) + means * means / variances, -1)
    return x @ _swap(means / variances) - (x * x) @ _swap(0.5 / variances) + const


def softmax(scores):
    """exp(s) / sum exp(s) along the last axis (the GMM posteriors of ``gmm_log_densities``)."""
    if _is_torch(scores):
        return _torch().softmax(scores, dim=-1)
    e = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def fisher_statistics(posteriors, x):
    """Zeroth, first and second order statistics of (..., n, d) features under (..., n, k)
    posteriors gamma: s0 = sum_i gamma_ik (..., k, 1), s1 = sum_i gamma_ik x_i and
    s2 = sum_i gamma_ik x_i^2 (..., k, d)."""
    g = _swap(posteriors)
    return posteriors.sum(-2)[..., None], g @ x, g @ (x * x)


def fisher_gradients(s0, s1, s2, n, weights, means, variances):
    """(G_mu, G_sigma), each (..., k, d), of ``fisher_statistics`` over n features (a number, or
    (..., 1, 1) per image):
        G_mu_k    = (s1_k - mu_k s0_k) / sigma_k / (n sqrt(w_k))
        G_sigma_k = ((s2_k - 2 mu_k s1_k + mu_k^2 s0_k) / var_k - s0_k) / (n sqrt(2 w_k))."""
    sqrt = _torch().sqrt if _is_torch(s1) else np.sqrt
    g_mu = (s1 - means * s0) / sqrt(variances) / (n * sqrt(weights)[:, None])
    g_var = ((s2 - 2 * means * s1 + means * means * s0) / variances - s0) / (n * sqrt(2 * weights)[:, None])
    return g_mu, g_var


def fisher_layout(g_mu, g_var):
    """(..., 2 k d): [G_mu_1 .. G_mu_k, G_sigma_1 .. G_sigma_k] of (..., k, d) gradients."""
    lead = tuple(g_mu.shape[:-2])
    flat_mu, flat_var = g_mu.reshape(*lead, -1), g_var.reshape(*lead, -1)
    if _is_torch(g_mu):
        return _torch().cat([flat_mu, flat_var], dim=-1)
    return np.concatenate([flat_mu, flat_var], axis=-1)


# ------------------------------------------------------------------------------- triangulation
def triangulate(x, anchors):
    """(n, k d) unit residuals r_j(x) = (x - c_j) / ||x - c_j|| of (n, d) float32 features to
    (k, d) anchors (a zero residual stays zero)."""
    diff = x[:, None, :] - anchors[None]                              # (n, k, d)
    tiny = float(np.finfo(np.float32).tiny)
    return (diff / _at_least(_norm(diff), tiny)).reshape(len(x), -1)


def democratic_weights(kernel, n_iter: int = 10, damping: float = 0.5):
    """(..., n) weights lambda >= 0 that equalise lambda_i sum_j lambda_j max(K_ij, 0) over i,
    for (..., n, n) Gram matrices of embedded features, in float64.

    Jégou & Zisserman's damped Sinkhorn iteration: lambda <- lambda / (lambda * (K+ lambda))^damping
    from lambda = 1 (damping 1 is plain Sinkhorn; 0.5 converges without oscillating). Features
    whose embedding is zero (padding rows too) get weight 0 and leave the others unchanged.
    """
    if _is_torch(kernel):
        k = kernel.double().clamp_min(0.0)
        lam = (k.diagonal(dim1=-2, dim2=-1) > 0).double()
    else:
        k = np.maximum(np.asarray(kernel, dtype=np.float64), 0.0)
        lam = (np.diagonal(k, axis1=-2, axis2=-1) > 0).astype(np.float64)
    tiny = float(np.finfo(np.float64).tiny)
    for _ in range(n_iter):
        contribution = lam * _matvec(k, lam)
        lam = lam / _at_least(contribution, tiny) ** damping
    return lam
