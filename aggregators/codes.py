"""Compact codes of final descriptors, and the descriptors a search with them scores.

- ``pq``: product quantisation (Jegou et al. 2011), ``bytes`` sub-quantisers of 256 centroids
  (8 bits each) over equal slices of the D dimensions; the centroids are trained by faiss's
  k-means (``faiss.ProductQuantizer``), encoding and decoding are NumPy's.
- ``opq``: PQ after the rotation faiss's ``OPQMatrix`` learns (Ge et al. 2013).
- ``binary``: the sign of the first 8 * ``bytes`` dimensions (PCA-whitened descriptors: the
  leading components), 1 bit each; a search ranks by Hamming distance.

A search over codes scores q . x_hat: asymmetric (``symmetric=False``, the default) with the
float query against the decoded database code (PQ's ADC; for binary codes the query's leading
dimensions against the signs), symmetric with the query coded too (for binary codes q_hat . x_hat
= bits - 2 Hamming, so the ranking is the Hamming ranking). So ``database(X)`` and ``queries(Q)``
give matrices whose dot products are exactly those scores, and the exact search and metrics
apply unchanged. Bytes per image: ``bytes`` (PQ, OPQ: one byte per sub-quantiser; binary: 8 bits
per byte).

``rescore`` (0 = off) > 0: the first ``rescore`` results of each query's coded search are scored
again with the float descriptors and re-ordered (``benchmarks.search.ShortList``), as an index
that keeps the full vectors on disk does; the bytes per image stay the code's.
"""
from __future__ import annotations

from typing import ClassVar

import numpy as np

from benchmarks.constraints import Boolean, Integer, OneOf, check_constraints
from benchmarks.errors import ParameterError

KINDS = ("pq", "opq", "binary")
CENTROIDS = 256      # 8-bit sub-quantisers


class CompactCodes:
    """Codes of (N, D) float32 descriptors; ``fit`` learns PQ / OPQ codebooks (binary codes learn
    nothing), ``database`` / ``queries`` give the matrices a search scores (module docstring)."""

    constraints: ClassVar[dict] = {"kind": OneOf(KINDS), "bytes": Integer(),
                                   "symmetric": Boolean(), "seed": Integer(0),
                                   "rescore": Integer(0, note="a short-list length; 0 = off")}

    def __init__(self, kind: str = "pq", bytes: int = 16, symmetric: bool = False, seed: int = 0,
                 rescore: int = 0):
        self.kind, self.bytes, self.symmetric, self.seed = kind, bytes, symmetric, seed
        self.rescore = rescore
        check_constraints(self, self.constraints)

    def get_params(self, deep: bool = False) -> dict:
        """The hyper-parameters that shape the codes (what a fit key records; ``rescore`` is the
        search's, not the codebooks')."""
        return {"kind": self.kind, "bytes": self.bytes, "symmetric": self.symmetric, "seed": self.seed}

    def check_dim(self, dim: int) -> None:
        """ParameterError unless ``dim``-D descriptors can take ``bytes`` of this code."""
        if self.kind == "binary" and 8 * self.bytes > dim:
            raise ParameterError("bytes", self.bytes, f"binary codes of {self.bytes} bytes need "
                                 f"{8 * self.bytes} dimensions, the descriptors have {dim}: at most "
                                 f"{dim // 8}", "CompactCodes")
        if self.kind != "binary" and dim % self.bytes:
            divisors = [m for m in range(1, dim + 1) if dim % m == 0 and m <= 256]
            raise ParameterError("bytes", self.bytes, f"{self.kind} splits the {dim} dimensions into "
                                 f"{self.bytes} equal slices: bytes must divide {dim} (e.g. "
                                 f"{', '.join(map(str, divisors[-6:]))})", "CompactCodes")

    # ------------------------------------------------------------------ fit
    def fit(self, X: np.ndarray) -> "CompactCodes":
        """Learn the codebooks on (n, D) descriptors (PQ, OPQ: at least 256 rows)."""
        X = np.ascontiguousarray(X, dtype=np.float32)
        self.check_dim(X.shape[1])
        self.dim_ = X.shape[1]
        if self.kind == "binary":
            return self
        if len(X) < CENTROIDS:
            raise ParameterError("kind", self.kind, f"{self.kind} trains {CENTROIDS} centroids per "
                                 f"sub-quantiser and needs at least {CENTROIDS} fitting descriptors; "
                                 f"the fitting set has {len(X)}", "CompactCodes")
        import faiss
        self.rotation_ = None
        if self.kind == "opq":
            opq = faiss.OPQMatrix(self.dim_, self.bytes)
            opq.verbose = False
            opq.train(X)
            self.rotation_ = faiss.vector_to_array(opq.A).reshape(self.dim_, self.dim_).astype(np.float32)
            X = X @ self.rotation_.T
        pq = faiss.ProductQuantizer(self.dim_, self.bytes, 8)
        pq.cp.seed = self.seed
        pq.train(X)
        self.centroids_ = faiss.vector_to_array(pq.centroids).reshape(
            self.bytes, CENTROIDS, self.dim_ // self.bytes).astype(np.float32)
        return self

    # ------------------------------------------------------------------ codes
    def encode(self, X: np.ndarray) -> np.ndarray:
        """(N, bytes) uint8 codes (PQ, OPQ: centroid indices; binary: packed sign bits)."""
        X = np.asarray(X, dtype=np.float32)
        if self.kind == "binary":
            return np.packbits(X[:, :8 * self.bytes] >= 0, axis=1)
        if self.rotation_ is not None:
            X = X @ self.rotation_.T
        m, _, sub = self.centroids_.shape
        codes = np.empty((len(X), m), np.uint8)
        for j in range(m):
            part, c = X[:, j * sub:(j + 1) * sub], self.centroids_[j]
            # argmin ||x - c||^2 = argmin (||c||^2 - 2 x . c)
            codes[:, j] = np.argmin((c * c).sum(1)[None, :] - 2.0 * part @ c.T, axis=1)
        return codes

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """(N, D') the descriptors the codes stand for (binary: +-1 of 8 * bytes dimensions)."""
        if self.kind == "binary":
            return np.unpackbits(codes, axis=1)[:, :8 * self.bytes].astype(np.float32) * 2.0 - 1.0
        m = self.centroids_.shape[0]
        X = np.concatenate([self.centroids_[j][codes[:, j]] for j in range(m)], axis=1)
        return X @ self.rotation_ if self.rotation_ is not None else X

    def database(self, X: np.ndarray) -> np.ndarray:
        """The database a search scores: its codes decoded."""
        return self.decode(self.encode(X))

    def queries(self, Q: np.ndarray) -> np.ndarray:
        """The queries a search scores: as they are (asymmetric; binary: their leading 8 * bytes
        dimensions), or coded and decoded like the database (symmetric)."""
        Q = np.asarray(Q, dtype=np.float32)
        if self.symmetric:
            return self.database(Q)
        return Q[:, :8 * self.bytes] if self.kind == "binary" else Q

    @property
    def label(self) -> str:
        """"pq 16 B", "binary 32 B (symmetric)", "pq 16 B, top 100 re-scored": the ``codes``
        column of tables."""
        return (f"{self.kind} {self.bytes} B" + (" (symmetric)" if self.symmetric else "")
                + (f", top {self.rescore} re-scored" if self.rescore else ""))
