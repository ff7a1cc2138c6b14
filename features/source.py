"""Serving the stored local features of an image list: what the run app, the similarity study
and any script use. Extracts what the store lacks (building the extractor only then), shares the
extraction with other processes through the store's locks, and checks every image it decodes.
"""
from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from benchmarks.base import ImageRef
from benchmarks.errors import ImageLoadError, ParameterError, StoreError
from benchmarks.imagefiles import stored_orientation
from features.extractor import Extractor, extractor_identity, feature_kind
from features.store import FeatureStore, StoredFeatures

log = logging.getLogger(__name__)
JPEG_SUFFIXES = (".jpg", ".jpeg")


@dataclass(frozen=True)
class ImageItem:
    """One image to extract (picklable, for the loader's worker processes): the image, an
    optional crop box (pixels of the upright image) and the smallest side accepted."""

    ref: ImageRef
    box: tuple[float, float, float, float] | None = None
    min_side: int = 32

    def _check(self, w: int, h: int) -> None:
        if min(w, h) < self.min_side:
            where = self.ref.path if self.ref.path is not None else f"image {self.ref.name!r}"
            raise ImageLoadError(
                f"{where} is {w} x {h} pixels, smaller than min_image_side={self.min_side}: a CNN "
                "map or a SIFT detector would only see an upscaled blur. Remove the image from the "
                "dataset, or lower min_image_side if it is meant to be there")

    def load(self) -> Image.Image:
        """The upright RGB image, checked against ``min_side``, cropped to ``box`` if any."""
        img = self.ref.load()
        self._check(*img.size)
        if self.box is None:
            return img
        x1, y1, x2, y2 = self.box
        crop = img.crop((int(x1), int(y1), int(np.ceil(x2)), int(np.ceil(y2))))
        if min(crop.size) < self.min_side:
            where = self.ref.path if self.ref.path is not None else f"image {self.ref.name!r}"
            raise ImageLoadError(
                f"the query box {self.box} of {where} is {crop.size[0]} x {crop.size[1]} pixels, "
                f"smaller than min_image_side={self.min_side}: it would be upscaled into a blur. "
                "Check the ground truth's box, or lower min_image_side")
        return crop

    @property
    def plain_jpeg(self) -> Path | None:
        """The file, when the image is an unmodified, upright JPEG file (no crop, no rotation, no
        EXIF orientation: torchvision's CUDA decoder does not apply it)."""
        ref = self.ref
        if (ref.path is None or ref.render is not None or ref.rotate % 360 or self.box is not None
                or Path(ref.path).suffix.lower() not in JPEG_SUFFIXES
                or stored_orientation(ref.path) != 1):
            return None
        return Path(ref.path)

    def size(self) -> tuple[int, int]:
        """(width, height) of the upright image (``ImageRef.size``), checked against ``min_side``."""
        w, h = self.ref.size()
        self._check(w, h)
        return w, h


def adoptable(image: ImageRef, written_ns: int) -> bool:
    """Whether a chunk written by an earlier version at ``written_ns`` can be kept for ``image``:
    today's decoder reads it the same way and the file was not modified after the chunk."""
    return image.decoded_as_before() and image.modified_ns() <= written_ns


class FeatureSource:
    """Stored local features of image lists under one extractor config (``backbone``).

    store:        the FeatureStore.
    backbone:     the extractor config, a plain mapping (``_target_`` + constructor arguments):
                  what identifies the features in the store.
    make_extractor: () -> the Extractor of ``backbone``, called once, only when the store lacks
                  features (experiments.adapters builds one from a config); None: read only.
    precision, decode: how the extractor runs (they enter the store identity when not fp32 / pil).
    batch_size:   images per forward pass; num_workers: loader worker processes (0: in process).
    min_image_side: smaller images stop the extraction with their name.
    shard:        (index, count) of this process among processes sharing an extraction.
    ``seconds`` accumulates the time spent getting features; ``extracted`` counts extractions.
    """

    def __init__(self, store: FeatureStore, backbone, make_extractor: Callable[[], Extractor] | None = None,
                 precision: str = "fp32", decode: str = "pil", batch_size: int = 4, num_workers: int = 2,
                 min_image_side: int = 32, shard: tuple[int, int] = (0, 1), progress: bool = True):
        for key, value, low in (("batch_size", batch_size, 1), ("num_workers", num_workers, 0),
                                ("min_image_side", min_image_side, 1)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ParameterError(key, value, f"must be an integer >= {low}", "FeatureSource")
        self.store, self.backbone, self.make_extractor = store, backbone, make_extractor
        self.precision, self.decode = precision, decode
        self.batch_size, self.num_workers = int(batch_size), int(num_workers)
        self.min_image_side, self.shard, self.progress = int(min_image_side), shard, progress
        self.identity = extractor_identity(backbone, precision=precision, decode=decode)
        self.kind = feature_kind(backbone)
        self.seconds = 0.0
        self.extracted = 0
        self._extractor = None

    def extractor(self):
        """The extractor, built on first use."""
        if self._extractor is None:
            if self.make_extractor is None:
                raise StoreError(f"the store lacks features of {self.kind} extractor "
                                 f"{self.identity} and this FeatureSource cannot extract (it was "
                                 "given no make_extractor)")
            self._extractor = self.make_extractor()
            log.info("extractor: %s", getattr(self._extractor, "weights_provenance", self.kind))
        return self._extractor

    def features(self, dataset: str, images: Sequence[ImageRef],
                 boxes: Sequence[tuple | None] | None = None, what: str = "images") -> StoredFeatures:
        """Features of ``images``, each cropped to its box (pixels of the upright image) if any."""
        from features.input_pipeline import extract_chunks
        boxes = list(boxes) if boxes is not None else [None] * len(images)
        items = [ImageItem(im, b, self.min_image_side) for im, b in zip(images, boxes)]
        identities = [im.identity() + (f"|box={b}" if b is not None else "")
                      for im, b in zip(images, boxes)]
        t = time.perf_counter()
        stamps = [im.stamp() for im in images]

        def extract(claims, commit):
            claims = iter(claims)
            first = next(claims, None)   # chunks of earlier versions may all be kept: then no
            if first is None:            # extractor is built
                return
            self.extracted += 1
            extract_chunks(itertools.chain([first], claims), commit, items, self.extractor(),
                           self.batch_size, self.num_workers)

        out = self.store.get(dataset, [im.name for im in images], identities, stamps, self.identity,
                             extract, content_hash=lambda i: images[i].content_hash(),
                             adoptable=lambda i, written: adoptable(images[i], written),
                             shard=self.shard, progress=self.progress, what=what)
        self.seconds += time.perf_counter() - t
        return out

    def descriptors(self, dataset: str, images: Sequence[ImageRef], encode, encoder_key: str
                    ) -> StoredFeatures:
        """One global descriptor per image (a 1 x D LocalFeatures; 0 x D when the image has no
        local features), made by ``encode(list of LocalFeatures) -> list of LocalFeatures`` right
        after extraction: the local features are never stored. The descriptors are, in float32,
        under ``<dataset>_descriptors`` in the store, keyed by the extractor, the images and
        ``encoder_key`` (what fitted the aggregator and the chain)."""
        from features.input_pipeline import extract_chunks
        items = [ImageItem(im, None, self.min_image_side) for im in images]
        store = FeatureStore(self.store.root, "float32", self.store.chunk_size,
                             self.store.verify_checksums)
        identity = {"descriptors_of": self.identity, "encoder": encoder_key}

        def extract(claims, commit):
            claims = iter(claims)
            first = next(claims, None)
            if first is None:
                return
            self.extracted += 1
            extract_chunks(itertools.chain([first], claims),
                           lambda spec, feats: commit(spec, encode(feats)), items, self.extractor(),
                           self.batch_size, self.num_workers)

        t = time.perf_counter()
        out = store.get(f"{dataset}_descriptors", [im.name for im in images],
                        [im.identity() for im in images], [im.stamp() for im in images], identity,
                        extract, content_hash=lambda i: images[i].content_hash(),
                        adoptable=lambda i, written: False, shard=self.shard,
                        progress=self.progress, what="images (descriptors only)")
        self.seconds += time.perf_counter() - t
        return out
