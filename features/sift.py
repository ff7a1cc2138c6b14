"""SIFT local features (OpenCV), optionally as RootSIFT, in the same LocalFeatures as deep ones.

Positions are keypoint centres in continuous normalised coordinates: pixel (column) i spans
[i, i + 1), so an OpenCV keypoint at x (pixel centres at integers) sits at (x + 0.5) / width.
That is the convention of ``grid_positions`` and it survives resizing: the position is the same
fraction of the original image.

The whole extraction is the picklable ``preparer()``, so the input pipeline runs it in its worker
processes (SIFT is CPU work that parallelises over images); ``run`` only passes results on.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence

import numpy as np
from PIL import Image

from benchmarks.errors import ParameterError
from features.local_features import LocalFeatures
from features.resize import check_resize_settings, resize_image

SIFT_DIM = 128


def root_sift(descriptors: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """RootSIFT (Arandjelovic & Zisserman 2012): L1-normalise each row, then element-wise sqrt.
    Rows come out non-negative with unit L2 norm (all-zero rows stay zero)."""
    d = np.asarray(descriptors, dtype=np.float32)
    return np.sqrt(d / np.maximum(np.abs(d).sum(axis=1, keepdims=True), eps))


@dataclass
class SiftFeatures:
    """Picklable: image -> LocalFeatures of its strongest SIFT keypoints (the whole extraction)."""

    max_keypoints: int
    root_sift: bool
    resize: str
    image_size: int
    interpolation: str
    contrast_threshold: float
    _sift: Any = field(default=None, init=False, repr=False, compare=False)

    def __getstate__(self):  # the OpenCV object is made anew in each process
        return {k: v for k, v in self.__dict__.items() if k != "_sift"} | {"_sift": None}

    def gray(self, image: Image.Image) -> np.ndarray:
        """(H, W) uint8 grayscale after the resize policy."""
        image = resize_image(image, self.resize, self.image_size, self.interpolation)
        return np.asarray(image.convert("L"), dtype=np.uint8)

    def extract(self, gray: np.ndarray) -> LocalFeatures:
        """LocalFeatures of one (H, W) uint8 image: descriptors (n, 128) float32, n <= max_keypoints."""
        import cv2
        if self._sift is None:
            self._sift = cv2.SIFT_create(contrastThreshold=self.contrast_threshold)
        empty = LocalFeatures(np.zeros((0, SIFT_DIM), np.float32), np.zeros((0, 2), np.float32))
        keypoints = self._sift.detect(gray, None)
        if not keypoints:
            return empty
        # strongest first; ties keep OpenCV's order (stable sort), so the cut is deterministic
        order = np.argsort([-kp.response for kp in keypoints], kind="stable")[:self.max_keypoints]
        keypoints, desc = self._sift.compute(gray, [keypoints[i] for i in order])
        if desc is None or len(keypoints) == 0:
            return empty
        h, w = gray.shape
        pts = np.array([kp.pt for kp in keypoints], dtype=np.float32)
        positions = np.clip((pts + 0.5) / np.array([w, h], np.float32), 0.0, 1.0)
        desc = root_sift(desc) if self.root_sift else desc.astype(np.float32)
        return LocalFeatures(desc, positions)

    def __call__(self, image) -> LocalFeatures:
        """``image``: a PIL image, or an item with ``load()`` (the input pipeline's)."""
        if not isinstance(image, Image.Image):
            image = image.load()
        return self.extract(self.gray(image))


class SiftExtractor:
    """PIL images -> sparse LocalFeatures: the ``max_keypoints`` strongest SIFT keypoints
    (by detector response) of the grayscale image after the resize policy of the deep extractors.

    ``contrast_threshold`` is OpenCV's detector threshold (its default 0.04); lower values find
    keypoints on smooth, low-contrast images. An image without keypoints gives an empty
    LocalFeatures (0, 128), which aggregators reject.
    """

    kind: ClassVar[str] = "sift"

    def __init__(self, max_keypoints: int = 1000, root_sift: bool = True, resize: str = "max_side",
                 image_size: int = 384, interpolation: str = "bilinear",
                 contrast_threshold: float = 0.04, device: str = "cpu", precision: str = "fp32",
                 decode: str = "pil"):
        if isinstance(max_keypoints, bool) or not isinstance(max_keypoints, int) or max_keypoints < 1:
            raise ParameterError("max_keypoints", max_keypoints, "must be an integer >= 1", "SiftExtractor")
        check_resize_settings("SiftExtractor", resize, image_size, interpolation)
        if not contrast_threshold >= 0:
            raise ParameterError("contrast_threshold", contrast_threshold, "must be >= 0", "SiftExtractor")
        if precision != "fp32" or decode != "pil":
            raise ParameterError("precision" if precision != "fp32" else "decode",
                                 precision if precision != "fp32" else decode,
                                 "SIFT runs in OpenCV on the CPU: only fp32 / pil apply", "SiftExtractor")
        self.max_keypoints, self.root_sift = int(max_keypoints), bool(root_sift)
        self.resize, self.image_size, self.interpolation = resize, int(image_size), interpolation
        self.contrast_threshold = float(contrast_threshold)
        self._features = self.preparer()

    def preparer(self) -> SiftFeatures:
        return SiftFeatures(self.max_keypoints, self.root_sift, self.resize, self.image_size,
                            self.interpolation, self.contrast_threshold)

    @staticmethod
    def batch_key(prepared) -> Any:
        return None

    @staticmethod
    def run(batch: Sequence[LocalFeatures]) -> list[LocalFeatures]:
        return list(batch)

    def __call__(self, images: Sequence[Image.Image]) -> list[LocalFeatures]:
        """LocalFeatures of each image, in order."""
        return [self._features(im) for im in images]
