"""The one type every extractor produces and every aggregator consumes."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LocalFeatures:
    """Local descriptors of one image.

    descriptors: (n, d) array, one row per local feature (float16 or float32).
    positions:   (n, 2) array of (x, y) in [0, 1] of the image (x to the right, y down).
    grid:        (h, w) when the features are the cells of a dense map, row-major
                 (row i, column j is descriptor i * w + j); ``None`` for sparse features (SIFT).
    cls_token:   (d,) a transformer's class token, a global descriptor of the image that is no
                 local feature (features.vit.TokenExtractor); ``None`` for every other extractor.
    """

    descriptors: np.ndarray
    positions: np.ndarray
    grid: tuple[int, int] | None = None
    cls_token: np.ndarray | None = None

    def __post_init__(self) -> None:
        d, p = self.descriptors, self.positions
        if d.ndim != 2:
            raise ValueError(f"LocalFeatures.descriptors must be (n, d), got shape {d.shape}")
        if p.shape != (d.shape[0], 2):
            raise ValueError(
                f"LocalFeatures.positions must be (n, 2) = ({d.shape[0]}, 2), got {p.shape}")
        if self.grid is not None:
            h, w = self.grid
            if h * w != d.shape[0]:
                raise ValueError(f"LocalFeatures.grid {self.grid} holds {h * w} cells, "
                                 f"but there are {d.shape[0]} descriptors")
            object.__setattr__(self, "grid", (int(h), int(w)))
        if self.cls_token is not None and self.cls_token.shape != (d.shape[1],):
            raise ValueError(f"LocalFeatures.cls_token must be (d,) = ({d.shape[1]},), got "
                             f"{self.cls_token.shape}")

    @property
    def n(self) -> int:
        """Number of local features."""
        return int(self.descriptors.shape[0])

    @property
    def dim(self) -> int:
        """Descriptor dimension d."""
        return int(self.descriptors.shape[1])

    def as_map(self) -> np.ndarray:
        """The dense map as (h, w, d); raises for sparse features."""
        if self.grid is None:
            raise ValueError("these local features have no grid (sparse keypoints); "
                             "a dense (h, w) map is needed here")
        return self.descriptors.reshape(self.grid[0], self.grid[1], self.dim)

    @classmethod
    def from_map(cls, fmap: np.ndarray, cls_token: np.ndarray | None = None) -> "LocalFeatures":
        """Build from a dense (d, h, w) activation map (channels first, as torch gives it)."""
        if fmap.ndim != 3:
            raise ValueError(f"expected a (d, h, w) map, got shape {fmap.shape}")
        d, h, w = fmap.shape
        descriptors = np.ascontiguousarray(fmap.reshape(d, h * w).T)
        return cls(descriptors, grid_positions(h, w), (h, w), cls_token)


def grid_positions(h: int, w: int) -> np.ndarray:
    """(h * w, 2) float32 cell centres (x, y) in [0, 1], row-major."""
    ys = (np.arange(h, dtype=np.float32) + 0.5) / h
    xs = (np.arange(w, dtype=np.float32) + 0.5) / w
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    return np.stack([xx.ravel(), yy.ravel()], axis=1)
