"""Vector of locally aggregated descriptors (VLAD), Jégou et al. 2010; normalisations of
Jégou et al. 2012 (power law) and Arandjelović & Zisserman 2013 (intra-normalisation)."""
from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans

from aggregators.base import Aggregator, check_positive_int
from aggregators.postprocess import L2, PowerNorm
from aggregators.sampling import check_enough, sample_descriptors
from features import LocalFeatures

POWER_NORMS = ("ssr", "none")


class VLAD(Aggregator):
    """v_k = sum over features assigned to centre c_k of (x_i - c_k); (k * d,), centre-major.

    Hard assignment to the nearest centre of a k-means codebook (``cluster_centers_``, k-means++,
    one run, seeded) learned on at most ``max_features`` sampled local features. Normalisation,
    in this order: the power law on every component (``'ssr'``: signed square root; ``'none'``),
    then intra-normalisation (L2 of every centre's block; empty blocks stay zero), then L2 of the
    whole vector. Intra-normalising last keeps its guarantee: every visited centre contributes a
    block of the same norm (the power law applied after it would undo that).
    ``power_norm='ssr', intra_norm=False`` is Jégou et al.'s 2012 VLAD,
    ``power_norm='none', intra_norm=True`` Arandjelović & Zisserman's.
    """

    learns = True

    def __init__(self, n_clusters: int = 64, power_norm: str = "ssr", intra_norm: bool = True,
                 max_features: int = 100_000, seed: int = 0):
        self.n_clusters = n_clusters
        self.power_norm = power_norm
        self.intra_norm = intra_norm
        self.max_features = max_features
        self.seed = seed

    def _validate_params(self) -> None:
        check_positive_int(self, "n_clusters")
        check_positive_int(self, "max_features")
        if self.power_norm not in POWER_NORMS:
            raise self._error("power_norm", f"expected one of {POWER_NORMS}")
        if not isinstance(self.intra_norm, (bool, np.bool_)):
            raise self._error("intra_norm", "must be true or false")

    def _fit(self, features: list[LocalFeatures]) -> None:
        x = sample_descriptors(features, self.max_features, self.seed)
        check_enough(self, "n_clusters", self.n_clusters, len(x))
        kmeans = KMeans(self.n_clusters, n_init=1, random_state=self.seed).fit(x)
        self.cluster_centers_ = kmeans.cluster_centers_.astype(np.float64)

    def residual_sums(self, descriptors: np.ndarray) -> np.ndarray:
        """(k, d) unnormalised VLAD of (n, d) descriptors: per-centre sums of residuals."""
        x = np.asarray(descriptors, dtype=np.float64)
        c = self.cluster_centers_
        nearest = np.argmax(x @ c.T - 0.5 * np.einsum("kd,kd->k", c, c), axis=1)
        onehot = np.zeros((len(x), len(c)))
        onehot[np.arange(len(x)), nearest] = 1.0
        return onehot.T @ x - onehot.sum(axis=0)[:, None] * c

    def _encode(self, features: LocalFeatures) -> np.ndarray:
        v = self.residual_sums(features.descriptors)
        if self.power_norm == "ssr":
            v = PowerNorm(0.5).transform(v)
        if self.intra_norm:
            v = L2().transform(v)
        return L2().transform(v.reshape(1, -1))[0]

    def output_dim(self, input_dim: int) -> int:
        return int(self.n_clusters) * input_dim
