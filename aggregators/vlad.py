"""Vector of locally aggregated descriptors (VLAD), Jégou et al. 2010; normalisations of
Jégou et al. 2012 (power law) and Arandjelović & Zisserman 2013 (intra-normalisation)."""
from __future__ import annotations

import numpy as np
import torch
from sklearn.cluster import KMeans

from aggregators import functional as F
from aggregators import torch_ops as ops
from aggregators.base import Aggregator
from aggregators.sampling import check_enough, sample_descriptors
from benchmarks.constraints import Boolean, Integer, OneOf
from features import LocalFeatures

POWER_NORMS = ("ssr", "none")


class VLAD(ops.OnDevice, Aggregator):
    """v_k = sum over features assigned to centre c_k of (x_i - c_k); (k * d,), centre-major.

    Hard assignment to the nearest centre of a k-means codebook (``cluster_centers_``, k-means++,
    one run, seeded) learned on at most ``max_features`` sampled local features. Normalisation,
    in this order: the power law on every component (``'ssr'``: signed square root; ``'none'``),
    then intra-normalisation (L2 of every centre's block; empty blocks stay zero), then L2 of the
    whole vector. Intra-normalising last keeps its guarantee: every visited centre contributes a
    block of the same norm (the power law applied after it would undo that).
    ``power_norm='ssr', intra_norm=False`` is Jégou et al.'s 2012 VLAD,
    ``power_norm='none', intra_norm=True`` Arandjelović & Zisserman's.

    Encoding runs in torch on the ``device`` set by ``to()`` (``cpu``, ``cuda``, ``cuda:N``; not a
    hyper-parameter), the images of a batch together: nearest centres by a float32 product, with
    every assignment that float32 rounding could have changed recomputed in float64, float64
    residual sums, float32 normalisation (``functional``, as PowerNorm and L2). The NumPy
    expectation it is tested against is ``tests/aggregators/references.py``.
    """

    learns = True

    constraints = {"n_clusters": Integer(), "power_norm": OneOf(POWER_NORMS),
                   "intra_norm": Boolean(), "max_features": Integer()}

    def __init__(self, n_clusters: int = 64, power_norm: str = "ssr", intra_norm: bool = True,
                 max_features: int = 100_000, seed: int = 0):
        self.n_clusters = n_clusters
        self.power_norm = power_norm
        self.intra_norm = intra_norm
        self.max_features = max_features
        self.seed = seed

    def _fit(self, features: list[LocalFeatures]) -> None:
        x = sample_descriptors(features, self.max_features, self.seed)
        check_enough(self, "n_clusters", self.n_clusters, len(x))
        kmeans = KMeans(self.n_clusters, n_init=1, random_state=self.seed).fit(x)
        self.cluster_centers_ = kmeans.cluster_centers_.astype(np.float64)

    # ------------------------------------------------------------ encoding (torch)
    def _encode_batch(self, batch: list[LocalFeatures]) -> np.ndarray:
        device = torch.device(self.device)
        k, d = self.cluster_centers_.shape
        out = np.empty((len(batch), k * d), np.float32)
        for group in ops.chunks(batch, 12 * (d + k), device):
            x, image = ops.stacked(batch, group, device)
            cell = image * k + self._nearest(x, device)        # (image, centre) of every row
            sums = torch.zeros(len(group) * k, d, dtype=torch.float64, device=device)
            sums.index_add_(0, cell, x.double())
            counts = torch.bincount(cell, minlength=len(group) * k).reshape(len(group), k, 1)
            v = (sums.reshape(len(group), k, d) - counts * self._centres(device)).float()
            if self.power_norm == "ssr":
                v = F.signed_power(v, 0.5)
            if self.intra_norm:
                v = F.l2_normalise(v)                         # each centre's block
            out[group] = F.l2_normalise(v.reshape(len(group), -1)).cpu().numpy()
        return out

    def _centres(self, device: torch.device, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        return ops.learned(self, f"centres/{device}/{dtype}", (self.cluster_centers_,),
                           lambda c: ops.as_tensor(c, device, dtype))

    def _half_sq_norms(self, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """0.5 ||c_k||^2 (float64 from the float64 centres, then cast to ``dtype``)."""
        return ops.learned(
            self, f"half_sq/{device}/{dtype}", (self.cluster_centers_,),
            lambda c: ops.as_tensor(0.5 * np.einsum("kd,kd->k", c, c), device, dtype))

    def _nearest(self, x: torch.Tensor, device: torch.device) -> torch.Tensor:
        """(N,) index of the nearest centre of every (N, d) float32 row, equal to the float64
        argmax of x . c_k - ||c_k||^2 / 2.

        Scores are float32 products; a row is recomputed in float64 unless its best score beats
        the second by more than twice the float32 error bound (d + 8) u (|x| max|c| + max|c|^2/2),
        u = 2^-24 (a bound on any summation order; everything is recomputed when TF32 or bf16
        products are switched on)."""
        k, d = self.cluster_centers_.shape
        if k == 1:
            return torch.zeros(len(x), dtype=torch.long, device=device)
        if ops.exact_float32_matmul(device):
            scores = (x @ self._centres(device, torch.float32).T
                      - self._half_sq_norms(device, torch.float32))
            best, nearest = scores.max(dim=1)
            second = scores.scatter(1, nearest[:, None], float("-inf")).amax(dim=1)
            c_max = float(np.sqrt(np.einsum("kd,kd->k", *[self.cluster_centers_] * 2).max()))
            bound = (d + 8) * 2.0 ** -24 * (torch.linalg.vector_norm(x, dim=1) * c_max
                                            + c_max ** 2 / 2)
            unsure = ~(best - second > 2 * bound)                 # NaN / inf: unsure as well
        else:
            nearest = torch.zeros(len(x), dtype=torch.long, device=device)
            unsure = torch.ones(len(x), dtype=torch.bool, device=device)
        rows = unsure.nonzero()[:, 0]
        if len(rows):
            scores64 = x[rows].double() @ self._centres(device).T
            nearest[rows] = (scores64 - self._half_sq_norms(device, torch.float64)).argmax(dim=1)
        return nearest

    def output_dim(self, input_dim: int) -> int:
        return int(self.n_clusters) * input_dim
