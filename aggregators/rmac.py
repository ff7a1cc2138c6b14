"""Regional maximum activations of convolutions (R-MAC), Tolias et al. ICLR 2016."""
from __future__ import annotations

import math

import numpy as np

from aggregators.base import Aggregator
from aggregators.postprocess import L2, PCAWhitening
from aggregators.sampling import sample_rows
from benchmarks.constraints import Boolean, Integer, Real
from features import LocalFeatures

#: Candidate numbers of level-1 squares along the long side of a map (reference R-MAC code).
_LONG_SIDE_STEPS = np.arange(2, 8)


def rmac_regions(h: int, w: int, levels: int = 3,
                 overlap: float = 0.4) -> list[tuple[int, int, int]]:
    """The R-MAC square regions of an (h, w) map, as 0-based (y0, x0, size), level by level.

    The reference algorithm (Tolias et al.'s ``rmac_regions``): with s = min(h, w), level l has
    squares of side floor(2 s / (l + 1)); along the short side there are l of them, along the long
    side l + e, where e >= 1 (e = 0 for square maps) is picked among 1..6 so that two neighbouring
    level-1 squares overlap by the fraction closest to ``overlap``. Squares are spread evenly,
    the first flush with the top/left border and the last with the bottom/right one (start offsets
    floor(i (L - side) / (count - 1))). The whole map is a region only when it is one of these
    squares (level 1 of a square map); unlike cnnimageretrieval-pytorch's ``rmac``, no extra
    global MAC term is added. Levels whose side would be 0 (tiny maps) are skipped.
    """
    side = min(h, w)
    extra = 0
    if h != w:
        gap = (max(h, w) - side) / (_LONG_SIDE_STEPS - 1)
        extra = int(np.argmin(np.abs((side - gap) / side - overlap))) + 1
    extra_h, extra_w = (extra, 0) if h > w else (0, extra)
    regions = []
    for level in range(1, levels + 1):
        size = (2 * side) // (level + 1)
        if size == 0:
            continue
        ys = _starts(h, size, level + extra_h)
        xs = _starts(w, size, level + extra_w)
        regions += [(y, x, size) for y in ys for x in xs]
    return regions


def _starts(length: int, size: int, count: int) -> list[int]:
    step = (length - size) / (count - 1) if count > 1 else 0.0
    return [math.floor(i * step) for i in range(count)]


class RMAC(Aggregator):
    """sum over regions of L2(max-pooled region), then L2; (D,) with D = d, or the whitened dim.

    Regions: ``rmac_regions`` of the map. With ``region_whitening`` every L2-normalised region
    vector is PCA-whitened to ``region_whitening_dim`` (None: d) and L2-normalised again before the
    sum; the whitening is learned in ``fit`` on at most ``max_regions`` region vectors of the
    fitting set (seeded sample). Needs a dense map.
    """

    requires_grid = True

    constraints = {"levels": Integer(), "overlap": Real(0, 1, high_open=True),
                   "region_whitening": Boolean(), "max_regions": Integer(),
                   "region_whitening_dim": Integer(optional=True)}

    def __init__(self, levels: int = 3, overlap: float = 0.4, region_whitening: bool = False,
                 region_whitening_dim: int | None = None, max_regions: int = 100_000,
                 seed: int = 0):
        self.levels = levels
        self.overlap = overlap
        self.region_whitening = region_whitening
        self.region_whitening_dim = region_whitening_dim
        self.max_regions = max_regions
        self.seed = seed

    @property
    def learns(self) -> bool:  # type: ignore[override]
        """Only with region whitening (learned on the fitting set)."""
        return bool(self.region_whitening)

    def _fit(self, features: list[LocalFeatures]) -> None:
        d = features[0].dim
        dim = d if self.region_whitening_dim is None else self.region_whitening_dim
        regions = sample_rows([self._region_vectors(f) for f in features], self.max_regions,
                              self.seed)
        if dim > min(len(regions) - 1, d):
            raise ValueError(
                f"RMAC region_whitening_dim={dim} needs more than {dim} region vectors of "
                f"dimension >= {dim}; the fitting set gave {len(regions)} of dimension {d}. Lower "
                "aggregator.region_whitening_dim, raise aggregator.max_regions or fit on a "
                "larger set")
        self.whitening_ = PCAWhitening(dim=dim, whiten=True).fit(regions)

    def _region_vectors(self, features: LocalFeatures) -> np.ndarray:
        """(R, d) L2-normalised max-pooled regions."""
        fmap = features.as_map()
        h, w = features.grid
        pooled = np.stack([fmap[y:y + s, x:x + s].max(axis=(0, 1))
                           for y, x, s in rmac_regions(h, w, self.levels, self.overlap)])
        return L2().transform(pooled)

    def _encode(self, features: LocalFeatures) -> np.ndarray:
        regions = self._region_vectors(features)
        whitening = getattr(self, "whitening_", None) if self.region_whitening else None
        if whitening is not None:
            regions = L2().transform(whitening.transform(regions))
        return L2().transform(regions.sum(axis=0, keepdims=True))[0]

    def output_dim(self, input_dim: int) -> int:
        if not self.region_whitening:
            return input_dim
        return input_dim if self.region_whitening_dim is None else int(self.region_whitening_dim)
