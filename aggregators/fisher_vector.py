"""Improved Fisher vector, Perronnin, Sánchez & Mensink, ECCV 2010."""
from __future__ import annotations

import numpy as np
import torch
from sklearn.mixture import GaussianMixture

from aggregators import functional as F
from aggregators import torch_ops as ops
from aggregators.base import Aggregator
from aggregators.postprocess import PCAWhitening
from aggregators.sampling import check_enough, sample_descriptors
from benchmarks.constraints import Integer, Real
from features import LocalFeatures


class FisherVector(ops.OnDevice, Aggregator):
    """Gradients of a diagonal GMM's log-likelihood w.r.t. its means and variances; (2 k d',).

    With posteriors gamma_ik, n features and sigma_k = sqrt(covariances_k):
        G_mu_k    = 1 / (n sqrt(w_k))  sum_i gamma_ik (x_i - mu_k) / sigma_k
        G_sigma_k = 1 / (n sqrt(2 w_k)) sum_i gamma_ik [((x_i - mu_k) / sigma_k)^2 - 1]
    laid out [G_mu_1 .. G_mu_k, G_sigma_1 .. G_sigma_k], then signed square root and L2.

    Fit: optional PCA of the local features to ``pca_dim`` (decorrelation, no whitening), then EM
    (scikit-learn, k-means init, float64, seeded) on at most ``max_features`` sampled features.
    Every variance is raised by ``var_floor`` times the sample's largest per-dimension variance
    (a VLFeat-style floor: dead ReLU channels would otherwise give near-zero variances).
    Learned state: ``weights_`` (k,), ``means_`` (k, d'), ``covariances_`` (k, d') diagonal
    variances, ``pca_`` (a fitted PCAWhitening or None). Encoding is float64 matrix products.

    ``to(device)`` (``cpu``, ``cuda``, ``cuda:N``) says where it encodes: on a CUDA device the images of a
    batch are encoded together in torch, still in float64 (the expanded quadratic forms cancel
    in float32); on the CPU NumPy encodes them one by one (``_encode``). Both call the same
    formulas (``functional``).
    """

    learns = True

    constraints = {"n_components": Integer(), "pca_dim": Integer(optional=True),
                   "max_features": Integer(), "max_iter": Integer(), "tol": Real(0, low_open=True),
                   "var_floor": Real(0)}

    def __init__(self, n_components: int = 16, pca_dim: int | None = None,
                 max_features: int = 100_000, seed: int = 0, max_iter: int = 100,
                 tol: float = 1e-3, var_floor: float = 1e-4):
        self.n_components = n_components
        self.pca_dim = pca_dim
        self.max_features = max_features
        self.seed = seed
        self.max_iter = max_iter
        self.tol = tol
        self.var_floor = var_floor

    def _fit(self, features: list[LocalFeatures]) -> None:
        x = sample_descriptors(features, self.max_features, self.seed)
        check_enough(self, "n_components", self.n_components, len(x))
        self.pca_ = None
        if self.pca_dim is not None:
            if self.pca_dim > min(len(x) - 1, x.shape[1]):
                raise self._error("pca_dim", f"exceeds what {len(x)} sampled {x.shape[1]}-D local "
                                  f"features allow ({min(len(x) - 1, x.shape[1])}); lower pca_dim "
                                  "or raise max_features / fit on a larger set")
            self.pca_ = PCAWhitening(dim=self.pca_dim, whiten=False).fit(x)
        x = self._project(x)
        floor = self.var_floor * float(x.var(axis=0).max()) + 1e-12  # + 1e-12: constant data
        gmm = GaussianMixture(self.n_components, covariance_type="diag", tol=self.tol,
                              reg_covar=floor, max_iter=self.max_iter, random_state=self.seed)
        gmm.fit(x)
        self.weights_ = gmm.weights_
        self.means_ = gmm.means_
        self.covariances_ = gmm.covariances_

    def _project(self, descriptors: np.ndarray) -> np.ndarray:
        x = descriptors if self.pca_ is None else self.pca_.transform(descriptors)
        return np.asarray(x, dtype=np.float64)

    def posteriors(self, x: np.ndarray) -> np.ndarray:
        """(n, k) soft assignments gamma_ik of (n, d') (projected) features to the components."""
        return F.softmax(F.gmm_log_densities(x, self.weights_, self.means_, self.covariances_))

    def _encode(self, features: LocalFeatures) -> np.ndarray:
        """One image in NumPy float64 (the CPU path), normalised in float32."""
        x = self._project(features.descriptors)
        s0, s1, s2 = F.fisher_statistics(self.posteriors(x), x)
        fv = F.fisher_layout(*F.fisher_gradients(s0, s1, s2, len(x), self.weights_, self.means_,
                                                 self.covariances_))
        return F.l2_normalise(F.signed_power(fv.astype(np.float32), 0.5))

    # ------------------------------------------------------------ batched torch path
    def _encode_batch(self, batch: list[LocalFeatures]) -> np.ndarray:
        if self.device == "cpu":
            # NumPy on the CPU: its float64 products beat torch's here (perf/RESULTS_aggregators.md)
            return super()._encode_batch(batch)
        return self._encode_torch(batch, torch.device(self.device))

    def _encode_torch(self, batch: list[LocalFeatures], device: torch.device) -> np.ndarray:
        """(B, 2 k d') float32 Fisher vectors of a batch, the formulas of ``_encode`` on padded
        float64 tensors on ``device`` (padding rows get zero posteriors)."""
        k, dp = self.means_.shape
        w, mu, var = self._gmm_tensors(device)
        out = np.empty((len(batch), 2 * k * dp), np.float32)
        row_bytes = 8 * (batch[0].dim + 6 * dp + 3 * k)
        for group in ops.chunks(batch, row_bytes, device):
            x, counts = ops.padded(batch, group, device, torch.float64)
            x = self._project_torch(x, device)                                  # (B, n, d')
            gamma = F.softmax(F.gmm_log_densities(x, w, mu, var))               # (B, n, k)
            gamma = gamma * ops.row_mask(counts, x.shape[1])[..., None]
            s0, s1, s2 = F.fisher_statistics(gamma, x)
            n = counts.to(torch.float64)[:, None, None]
            fv = F.fisher_layout(*F.fisher_gradients(s0, s1, s2, n, w, mu, var))
            out[group] = F.l2_normalise(F.signed_power(fv.float(), 0.5)).cpu().numpy()
        return out

    def _gmm_tensors(self, device: torch.device) -> tuple[torch.Tensor, ...]:
        """weights (k,), means and variances (k, d'), float64 on ``device``."""
        return ops.learned(self, f"gmm/{device}", (self.weights_, self.means_, self.covariances_),
                           lambda *arrays: tuple(ops.as_tensor(a, device, torch.float64)
                                                 for a in arrays))

    def _project_torch(self, x: torch.Tensor, device: torch.device) -> torch.Tensor:
        """``_project`` in torch: PCA in float64, rounded through float32 as PCAWhitening does."""
        if self.pca_ is None:
            return x
        mean, components = ops.learned(
            self, f"pca/{device}", (self.pca_.mean_, self.pca_.components_),
            lambda m, c: (ops.as_tensor(m, device, torch.float64),
                          ops.as_tensor(c.T, device, torch.float64)))
        return ((x - mean) @ components).float().double()

    def output_dim(self, input_dim: int) -> int:
        d = input_dim if self.pca_dim is None else int(self.pca_dim)
        return 2 * int(self.n_components) * d
