"""Triangulation embedding and democratic aggregation, Jégou & Zisserman, CVPR 2014."""
from __future__ import annotations

import numpy as np
import torch
from scipy.linalg.blas import dsyrk
from sklearn.cluster import KMeans

from aggregators import functional as F
from aggregators import torch_ops as ops
from aggregators.base import Aggregator
from aggregators.postprocess import whitening_scale
from aggregators.sampling import check_enough, sample_descriptors
from benchmarks.constraints import Boolean, Integer, Real
from features import LocalFeatures

#: Whitening divides by whitening_scale(eigenvalue, largest, _EIG_EPS), as PCAWhitening does.
_EIG_EPS = 1e-9
#: Bytes of float64 embedded features held at once while accumulating the covariance.
_CHUNK_BYTES = 2 ** 28


def leading_eigenvectors(sym: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k largest eigenvalues (clipped at 0, decreasing) and their eigenvectors (columns) of a
    symmetric matrix, each oriented so that its largest-magnitude coefficient is positive (a
    deterministic sign). Reads the upper triangle only.

    Kept by hand rather than scikit-learn's PCA: the (k d)^2 scatter is accumulated chunk by
    chunk with dsyrk (exact, and without holding the whole embedded sample), then decomposed."""
    evals, evecs = np.linalg.eigh(sym, UPLO="U")
    order = np.argsort(evals)[::-1][:k]
    return np.clip(evals[order], 0, None), oriented(evecs[:, order])


def oriented(vectors: np.ndarray) -> np.ndarray:
    """Columns flipped so that each one's largest-magnitude coefficient is positive."""
    signs = np.sign(vectors[np.abs(vectors).argmax(axis=0), np.arange(vectors.shape[1])])
    return vectors * np.where(signs == 0, 1, signs)


class TriangulationEmbedding(ops.OnDevice, Aggregator):
    """Whitened triangulation embedding, aggregated democratically or by sum; (k d - drop,).

    Per local feature x with anchors c_1..c_k (k-means on the sampled fitting features):
        r_j(x) = (x - c_j) / ||x - c_j||,  phi0(x) = [r_1(x), .., r_k(x)]   (k d,)
        phi(x) = whitened phi0(x): centred by ``mean_``, projected on the eigenvectors of its
                 covariance (learned on the same sample, float64) minus the ``drop_components``
                 leading ones, each divided by sqrt(eigenvalue)      -> ``projection_`` (k d, D)
    Aggregation: psi = sum_i lambda_i phi(x_i), lambda from ``functional.democratic_weights`` on
    the kernel phi_i . phi_j (``democratic``) or lambda = 1; then the power law ``alpha`` and L2.

    ``drop_components=None`` drops d components when k > 1, Jégou & Zisserman's setting
    (D = (k - 1) d), and none when k = 1, where dropping d would leave nothing (D = d).
    Whitening needs more sampled features than k d.

    ``to(device)`` (``cpu``, ``cuda``, ``cuda:N``) says where it encodes: on a CUDA device the images of a
    batch are encoded together in torch (float32 products, float64 democratic weights); on the
    CPU NumPy encodes them one by one (``_encode``). Both call the same formulas (``functional``).
    """

    learns = True

    constraints = {"n_anchors": Integer(), "democratic": Boolean(),
                   "drop_components": Integer(0, optional=True), "alpha": Real(0, low_open=True),
                   "sinkhorn_iters": Integer(), "damping": Real(0, 1, low_open=True),
                   "max_features": Integer()}

    def __init__(self, n_anchors: int = 16, democratic: bool = True,
                 drop_components: int | None = None, alpha: float = 0.5,
                 sinkhorn_iters: int = 10, damping: float = 0.5, max_features: int = 100_000,
                 seed: int = 0):
        self.n_anchors = n_anchors
        self.democratic = democratic
        self.drop_components = drop_components
        self.alpha = alpha
        self.sinkhorn_iters = sinkhorn_iters
        self.damping = damping
        self.max_features = max_features
        self.seed = seed

    # ------------------------------------------------------------------ fitting
    def _fit(self, features: list[LocalFeatures]) -> None:
        x = sample_descriptors(features, self.max_features, self.seed)
        check_enough(self, "n_anchors", self.n_anchors, len(x))
        d = x.shape[1]
        dim, drop = self.n_anchors * d, self._n_dropped(d)
        if drop >= dim:
            raise self._error("drop_components", f"leaves nothing of the n_anchors * d = {dim}-D "
                              "embedding")
        if len(x) <= dim:
            raise self._error(
                "n_anchors", f"whitening the n_anchors * d = {dim}-D embedding needs more than "
                f"{dim} local features, but {len(x)} were sampled from the fitting set; raise "
                "max_features / fit on a larger set, or lower n_anchors")
        kmeans = KMeans(self.n_anchors, n_init=1, random_state=self.seed).fit(x)
        self.anchors_ = kmeans.cluster_centers_.astype(np.float32)
        mean, scatter = self._moments(x)
        scatter /= len(x) - 1                                           # covariance, in place
        evals, evecs = leading_eigenvectors(scatter, dim)
        scale = whitening_scale(evals[drop:], evals[0], _EIG_EPS)
        self.mean_ = mean.astype(np.float32)
        self.projection_ = (evecs[:, drop:] / scale).astype(np.float32)
        self.explained_variance_ = evals[drop:]

    def _n_dropped(self, d: int) -> int:
        if self.drop_components is None:
            return d if self.n_anchors > 1 else 0
        return int(self.drop_components)

    def _moments(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean (k d,) and scatter matrix (k d, k d; upper triangle) of phi0 over the sample,
        in float64, chunk by chunk (two passes, so the centring loses no precision)."""
        dim = self.n_anchors * x.shape[1]
        step = max(1, _CHUNK_BYTES // (8 * dim))
        chunks = range(0, len(x), step)
        mean = sum(self.triangulate(x[s:s + step]).sum(axis=0, dtype=np.float64) for s in chunks)
        mean /= len(x)
        scatter = np.zeros((dim, dim), order="F")
        for s in chunks:
            centred = self.triangulate(x[s:s + step]).astype(np.float64) - mean
            scatter = dsyrk(1.0, centred.T, beta=1.0, c=scatter, overwrite_c=True)
        return mean, scatter

    # ---------------------------------------------------------------- encoding
    def triangulate(self, descriptors: np.ndarray) -> np.ndarray:
        """(n, k d) float32 phi0: unit residuals to every anchor (a zero residual stays zero)."""
        return F.triangulate(np.asarray(descriptors, dtype=np.float32), self.anchors_)

    def embed(self, descriptors: np.ndarray) -> np.ndarray:
        """(n, D) float32 whitened embeddings phi of (n, d) local features."""
        return (self.triangulate(descriptors) - self.mean_) @ self.projection_

    def _encode(self, features: LocalFeatures) -> np.ndarray:
        if self.democratic:
            phi = self.embed(features.descriptors)
            psi = F.democratic_weights(phi @ phi.T, self.sinkhorn_iters, self.damping) @ phi
        else:  # whitening is affine: sum first, project once
            phi0 = self.triangulate(features.descriptors).sum(axis=0, dtype=np.float64)
            psi = (phi0 - features.n * self.mean_) @ self.projection_
        return F.l2_normalise(F.signed_power(psi.astype(np.float32), self.alpha))

    # ------------------------------------------------------------ batched torch path
    def _encode_batch(self, batch: list[LocalFeatures]) -> np.ndarray:
        if self.device == "cpu":
            # NumPy on the CPU: its float32 products beat torch's here (perf/RESULTS_aggregators.md)
            return super()._encode_batch(batch)
        return self._encode_torch(batch, torch.device(self.device))

    def _encode_torch(self, batch: list[LocalFeatures], device: torch.device) -> np.ndarray:
        """(B, D) float32 descriptors of a batch, computed in torch on ``device`` as ``_encode``
        does: phi in float32, democratic weights (one padded kernel stack per chunk) in float64."""
        anchors, mean, projection = self._learned_tensors(device)
        kd, dim = projection.shape
        n_max = max(f.n for f in batch)
        out = np.empty((len(batch), dim), np.float32)
        row_bytes = 12 * (kd + dim) + (24 * n_max if self.democratic else 0)
        for group in ops.chunks(batch, row_bytes, device):
            x, image = ops.stacked(batch, group, device)
            counts = torch.bincount(image, minlength=len(group))
            phi0 = F.triangulate(x, anchors)
            if self.democratic:
                phi = _padded_rows((phi0 - mean) @ projection, image, counts)      # (B, n, D)
                kernel = phi @ phi.transpose(1, 2)
                lam = F.democratic_weights(kernel, self.sinkhorn_iters, self.damping)
                psi = (lam[:, None, :] @ phi.double())[:, 0]
            else:  # whitening is affine: sum first, project once
                sums = torch.zeros(len(group), kd, dtype=torch.float64, device=device)
                sums.index_add_(0, image, phi0.double())
                psi = (sums - counts[:, None] * mean.double()).float() @ projection
            out[group] = F.l2_normalise(F.signed_power(psi.float(), self.alpha)).cpu().numpy()
        return out

    def _learned_tensors(self, device: torch.device) -> tuple[torch.Tensor, ...]:
        """float32 on ``device``: anchors (k, d), mean (k d,), projection (k d, D)."""
        return ops.learned(self, f"temb/{device}", (self.anchors_, self.mean_, self.projection_),
                           lambda *arrays: tuple(ops.as_tensor(a, device, torch.float32)
                                                 for a in arrays))

    def output_dim(self, input_dim: int) -> int:
        return int(self.n_anchors) * input_dim - self._n_dropped(input_dim)


def _padded_rows(rows: torch.Tensor, image: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """(B, n_max, D) of (N, D) rows stacked image after image (``image``: each row's image),
    zero after each image's ``counts`` rows (a view when all counts are equal)."""
    b, n_max = len(counts), int(counts.max())
    if bool((counts == n_max).all()):
        return rows.reshape(b, n_max, -1)
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.arange(len(rows), device=rows.device) - starts[image]
    out = rows.new_zeros(b, n_max, rows.shape[1])
    out[image, slot] = rows
    return out
