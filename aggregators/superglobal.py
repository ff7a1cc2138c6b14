"""SuperGlobal's training-free pooling (Shao et al., "Global features are all you need for image
retrieval and reranking", ICCV 2023): ReLU+, Regional-GeM and GeM+ on a dense map."""
from __future__ import annotations

import numpy as np

from aggregators.base import Aggregator
from aggregators.gem import GeM
from benchmarks.constraints import Boolean, Integer, Real
from features import LocalFeatures


def regional_gem(fmap: np.ndarray, p: float, window: int) -> np.ndarray:
    """(h, w, d) Regional-GeM of an (h, w, d) non-negative map, float64: every cell replaced by
    the average of itself and the generalised mean with exponent ``p`` of the ``window`` x
    ``window`` cells around it (stride 1, the map reflection-padded by (window - 1) / 2 so the
    output keeps its size):  y = x / 2 + (mean_window x^p)^(1/p) / 2."""
    pad = (window - 1) // 2
    x = np.asarray(fmap, np.float64)
    z = np.pad(x, ((pad, pad), (pad, pad), (0, 0)), mode="reflect") ** p
    h, w = x.shape[:2]
    # window sums by cumulative sums along each axis (separable box filter)
    c = np.cumsum(np.pad(z, ((1, 0), (0, 0), (0, 0))), axis=0)
    rows = c[window:window + h] - c[:h]
    c = np.cumsum(np.pad(rows, ((0, 0), (1, 0), (0, 0))), axis=1)
    box = (c[:, window:window + w] - c[:, :w]) / window ** 2
    return 0.5 * x + 0.5 * np.maximum(box, 0.0) ** (1.0 / p)


class SuperGlobalPooling(Aggregator):
    """ReLU+ -> Regional-GeM -> GeM+, (d,), on a dense map (SuperGlobal's global descriptor of one
    scale; its Scale-GeM over scales needs multi-scale extraction, not built yet).

    ReLU+:        x <- max(x, ``relu_floor``) (0.014 in the paper: no cell is exactly zero).
    Regional-GeM: ``regional_gem`` with exponent ``regional_p`` (2.5) over ``window`` x ``window``
                  (5) neighbourhoods, reflection-padded, averaged with the map (``regional``:
                  off gives GeM+ after ReLU+ alone).
    GeM+:         GeM with exponent ``p`` (4.6) over the cells.
    The clamp makes it well defined on signed (transformer) features as well.
    """

    requires_grid = True

    constraints = {"p": Real(0, low_open=True), "relu_floor": Real(0), "regional": Boolean(),
                   "regional_p": Real(0, low_open=True), "window": Integer()}

    def __init__(self, p: float = 4.6, relu_floor: float = 0.014, regional: bool = True,
                 regional_p: float = 2.5, window: int = 5):
        self.p = p
        self.relu_floor = relu_floor
        self.regional = regional
        self.regional_p = regional_p
        self.window = window

    def _validate_params(self) -> None:
        super()._validate_params()
        if self.window % 2 == 0:
            raise self._error("window", "must be odd (a window centred on each cell)")

    def _encode(self, features: LocalFeatures) -> np.ndarray:
        fmap = np.maximum(features.as_map().astype(np.float32), self.relu_floor)
        h, w, _ = fmap.shape
        if self.regional:
            pad = (self.window - 1) // 2
            if pad >= min(h, w):
                raise ValueError(f"SuperGlobalPooling: window={self.window} needs a map larger "
                                 f"than {pad} cells on each side, got {h} x {w}; lower window "
                                 "or set regional=false")
            fmap = regional_gem(fmap, self.regional_p, self.window).astype(np.float32)
        cells = LocalFeatures(fmap.reshape(h * w, -1), features.positions, features.grid)
        return GeM(self.p)._encode(cells)
