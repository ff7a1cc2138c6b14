"""SIFT local features (OpenCV), optionally as RootSIFT, in the same LocalFeatures as deep ones.

Positions are keypoint centres in continuous normalised coordinates: pixel (column) i spans
[i, i + 1), so an OpenCV keypoint at x (pixel centres at integers) sits at (x + 0.5) / width.
That is the convention of ``grid_positions`` and it survives resizing: the position is the same
fraction of the original image.
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
from PIL import Image

from features.deep import _INTERP, RESIZE_POLICIES, resized_size
from features.local_features import LocalFeatures

SIFT_DIM = 128


def root_sift(descriptors: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """RootSIFT (Arandjelovic & Zisserman 2012): L1-normalise each row, then element-wise sqrt.
    Rows come out non-negative with unit L2 norm (all-zero rows stay zero)."""
    d = np.asarray(descriptors, dtype=np.float32)
    return np.sqrt(d / np.maximum(np.abs(d).sum(axis=1, keepdims=True), eps))


class SiftExtractor:
    """PIL images -> sparse LocalFeatures: the ``max_keypoints`` strongest SIFT keypoints
    (by detector response) of the grayscale image after the resize policy of the deep extractors.

    ``contrast_threshold`` is OpenCV's detector threshold (its default 0.04); lower values find
    keypoints on smooth, low-contrast images. An image without keypoints gives an empty
    LocalFeatures (0, 128), which aggregators reject.
    """

    def __init__(self, max_keypoints: int = 1000, root_sift: bool = True, resize: str = "max_side",
                 image_size: int = 384, interpolation: str = "bilinear",
                 contrast_threshold: float = 0.04):
        if max_keypoints < 1:
            raise ValueError(f"backbone.max_keypoints={max_keypoints}: must be >= 1")
        if resize not in RESIZE_POLICIES:
            raise ValueError(f"backbone.resize={resize!r}: expected one of {RESIZE_POLICIES}")
        if interpolation not in _INTERP:
            raise ValueError(f"backbone.interpolation={interpolation!r}: expected one of {list(_INTERP)}")
        self.max_keypoints, self.root_sift = int(max_keypoints), bool(root_sift)
        if not contrast_threshold >= 0:
            raise ValueError(f"backbone.contrast_threshold={contrast_threshold}: must be >= 0")
        self.resize, self.image_size, self.interpolation = resize, int(image_size), interpolation
        self.contrast_threshold = float(contrast_threshold)
        self._sift = cv2.SIFT_create(contrastThreshold=self.contrast_threshold)

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """(H, W) uint8 grayscale after the resize policy."""
        size = resized_size(image.width, image.height, self.resize, self.image_size)
        if size != image.size:
            image = image.resize(size, _INTERP[self.interpolation])
        return np.asarray(image.convert("L"), dtype=np.uint8)

    def extract(self, gray: np.ndarray) -> LocalFeatures:
        """LocalFeatures of one (H, W) uint8 image: descriptors (n, 128) float32, n <= max_keypoints."""
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

    def __call__(self, images: Sequence[Image.Image]) -> list[LocalFeatures]:
        """LocalFeatures of each image, in order."""
        return [self.extract(self.preprocess(im)) for im in images]
