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
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
from PIL import Image

from benchmarks.base import ImageRef
from benchmarks.constraints import Integer, check_values
from benchmarks.errors import ImageLoadError, StoreError
from benchmarks.imagefiles import stored_orientation
from features.extractor import Extractor, extractor_identity, feature_kind
from features.local_features import LocalFeatures
from features.store import (DESCRIPTORS, ChunkSource, ChunkSpec, FeatureStore, StoredDescriptors,
                            StoredFeatures)

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


class ImageChunks:
    """The store's ChunkSource for the local features of ``images`` (each cropped to its box, if
    any): names, identities, stamps and digests of the images; ``produce`` extracts the claimed
    chunks with ``source``'s extractor."""

    def __init__(self, source: FeatureSource, images: Sequence[ImageRef],
                 boxes: Sequence[tuple | None] | None = None):
        self.source, self.images = source, list(images)
        self.boxes = list(boxes) if boxes is not None else [None] * len(self.images)
        self.items = [ImageItem(im, b, source.min_image_side) for im, b in zip(self.images, self.boxes)]
        self.names = [im.name for im in self.images]
        self.identities = [im.identity() + (f"|box={b}" if b is not None else "")
                           for im, b in zip(self.images, self.boxes)]
        self.stamps = [im.stamp() for im in self.images]

    def __len__(self) -> int:
        return len(self.images)

    def content_hash(self, i: int) -> str:
        return self.images[i].content_hash()

    def produce(self, claims: Iterator[ChunkSpec]) -> Iterator[tuple[ChunkSpec, list[LocalFeatures]]]:
        return self.source.stream(self.items, claims)


#: what FeatureSource's settings must be
SETTINGS = {"batch_size": Integer(), "num_workers": Integer(0), "min_image_side": Integer()}


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
        check_values({"batch_size": batch_size, "num_workers": num_workers,
                      "min_image_side": min_image_side}, SETTINGS, "FeatureSource")
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

    def at_scale(self, scale: float) -> "FeatureSource":
        """The source of this backbone's features at ``scale`` (its config's ``scale``; 1: this
        very entry), sharing this source's store, settings and extractor (``at_scale`` of it)."""
        backbone = {k: v for k, v in dict(self.backbone).items() if k != "scale"}
        if scale != 1:
            backbone["scale"] = float(scale)
        make = None if self.make_extractor is None else lambda: self.extractor().at_scale(scale)
        return FeatureSource(self.store, backbone, make, self.precision, self.decode,
                             self.batch_size, self.num_workers, self.min_image_side, self.shard,
                             self.progress)

    def stream(self, items: Sequence[ImageItem], chunks: Iterable[ChunkSpec] | None = None
               ) -> Iterator[tuple[ChunkSpec, list[LocalFeatures]]]:
        """The input pipeline's face: ``for chunk, feats in source.stream(items)`` extracts the
        images [chunk.lo, chunk.hi) of each chunk (default: chunks of ``store.chunk_size`` over
        all ``items``) and yields their features, never storing them. The extractor is built
        when the first chunk is drawn (not at all when ``chunks`` is empty)."""
        from features.input_pipeline import stream_chunks
        if chunks is None:
            size = self.store.chunk_size
            chunks = (ChunkSpec(c, lo, min(len(items), lo + size), (), ())
                      for c, lo in enumerate(range(0, len(items), size)))
        chunks = iter(chunks)
        first = next(chunks, None)   # every chunk may be stored already: then nothing is built
        if first is None:
            return
        self.extracted += 1
        yield from stream_chunks(itertools.chain([first], chunks), items, self.extractor(),
                                 self.batch_size, self.num_workers)

    def chunks(self, images: Sequence[ImageRef], boxes: Sequence[tuple | None] | None = None
               ) -> ImageChunks:
        """``images`` (each cropped to its box, pixels of the upright image) as a ChunkSource."""
        return ImageChunks(self, images, boxes)

    def features(self, dataset: str, images: Sequence[ImageRef],
                 boxes: Sequence[tuple | None] | None = None, what: str = "images") -> StoredFeatures:
        """Features of ``images``, each cropped to its box (pixels of the upright image) if any,
        from the store; what it lacks is extracted first."""
        t = time.perf_counter()
        out = self.store.get(dataset, self.chunks(images, boxes), self.identity, shard=self.shard,
                             progress=self.progress, what=what)
        self.seconds += time.perf_counter() - t
        return out

    def descriptors(self, dataset: str, chunks: ChunkSource, encoder_key: str) -> StoredDescriptors:
        """One global descriptor per image of ``chunks`` (a ChunkSource producing DescriptorRows:
        typically ``chunks(images)``'s local features encoded on the way, which are never
        stored), in float32 under ``<dataset>_descriptors`` in the store, keyed by the extractor,
        the images and ``encoder_key`` (what fitted the aggregator and the chain)."""
        store = FeatureStore(self.store.root, "float32", self.store.chunk_size,
                             self.store.verify_checksums, self.store.verify_images)
        identity = {"descriptors_of": self.identity, "encoder": encoder_key}
        t = time.perf_counter()
        out = store.get(f"{dataset}_descriptors", chunks, identity, kind=DESCRIPTORS,
                        shard=self.shard, progress=self.progress, what="images (descriptors only)")
        self.seconds += time.perf_counter() - t
        return out
