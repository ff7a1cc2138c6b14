"""The dataset interface: images, queries with their relevance sets, and the protocol to score them."""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from benchmarks.errors import ImageLoadError
from benchmarks.imagefiles import decode_image, file_digest, file_stamp, image_size

#: protocols understood by ``benchmarks.evaluation.evaluate``
PROTOCOLS = ("oxford", "holidays", "ukbench", "revisited", "gldv2")

#: PIL transposes for counter-clockwise turns
_TURNS = {0: None, 90: Image.Transpose.ROTATE_90, 180: Image.Transpose.ROTATE_180,
          270: Image.Transpose.ROTATE_270}


@dataclass(frozen=True)
class ImageRef:
    """One image of a dataset: a stable ``name`` (used in stores and reports) and how to load it.

    ``path`` for files on disk; ``render`` for images made in memory (the demo set).
    ``rotate``: counter-clockwise degrees (a multiple of 90, as PIL ``Image.rotate``) applied on
    loading, e.g. to set a sideways Holidays photo upright.
    """

    name: str
    path: Path | None = None
    render: Callable[[], Image.Image] | None = field(default=None, compare=False, repr=False)
    signature: str = ""  # what else determines the pixels (render parameters), for store keys

    def identity(self) -> str:
        """A string that changes whenever the pixels can change (the path and the renderer
        excluded: a moved dataset root keeps its stored features)."""
        return "|".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self)
                        if f.name not in ("path", "render"))
    rotate: int = 0

    def __post_init__(self) -> None:
        if self.rotate % 90:
            raise ValueError(f"image {self.name!r}: rotation {self.rotate} is not a multiple of 90 degrees")

    def load(self) -> Image.Image:
        """The image as 8-bit RGB PIL: upright by its EXIF orientation, then turned by ``rotate``;
        ImageLoadError names the file when it cannot be decoded."""
        im = self._load_unrotated()
        turn = _TURNS[self.rotate % 360]
        return im if turn is None else im.transpose(turn)

    def size(self) -> tuple[int, int]:
        """(width, height) of the image as ``load()`` gives it (EXIF orientation applied, then
        ``rotate``): read from the file header without decoding; a rendered image is rendered."""
        if self.render is not None or self.path is None:
            w, h = self._load_unrotated().size
        else:
            w, h = image_size(self.path)
        return (h, w) if self.rotate % 180 else (w, h)

    def stamp(self) -> str:
        """What shows that the image's file was replaced (its size and mtime); "" for rendered
        images, whose ``signature`` already determines them."""
        return "" if self.path is None or self.render is not None else file_stamp(self.path)

    def content_hash(self) -> str:
        """A digest of the image file's bytes ("" for rendered images)."""
        return "" if self.path is None or self.render is not None else file_digest(self.path)

    def _load_unrotated(self) -> Image.Image:
        if self.render is not None:
            return self.render().convert("RGB")
        if self.path is None:
            raise ImageLoadError(f"image {self.name!r} has neither a path nor a renderer")
        return decode_image(self.path)


@dataclass(frozen=True)
class Query:
    """One query.

    image:     the query image.
    db_index:  index of the same (uncropped) image in the database, or None.
    box:       (x1, y1, x2, y2) in pixels of the original image, or None.
    relevant:  index arrays into the database, by kind: {"ok", "junk"} for the classic
               protocols, {"easy", "hard", "junk"} for the revisited one.
    """

    image: ImageRef
    relevant: dict[str, np.ndarray]
    db_index: int | None = None
    box: tuple[float, float, float, float] | None = None


@dataclass
class RetrievalDataset:
    """A retrieval benchmark: database images, queries and the evaluation protocol.

    ``crop_queries``: whether queries with a box are cropped to it before extraction.
    ``fit_on``: the dataset config its literature learns PCA-whitening and codebooks on (Oxford:
    paris6k, and the other way round), None when it has no convention; presets read it as
    ``${dataset.fit_on}``.
    ``meta``: protocol knobs worth recording with each result (rotation list, ...), and extras
    such as the demo set's homographies and groups.
    """

    name: str
    images: list[ImageRef]
    queries: list[Query]
    protocol: str = "oxford"
    crop_queries: bool = False
    meta: dict = field(default_factory=dict)
    fit_on: str | None = None

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"dataset {self.name}: unknown protocol {self.protocol!r}; "
                             f"expected one of {PROTOCOLS}")

    def __len__(self) -> int:
        return len(self.images)

    def query_uses_db_features(self, q: Query) -> bool:
        """True when the query's features are exactly its database image's (no crop needed)."""
        return q.db_index is not None and (q.box is None or not self.crop_queries)

    def extra_query_images(self) -> list[tuple[int, ImageRef, tuple | None]]:
        """Queries that need their own extraction: (query index, image, crop box or None)."""
        return [(i, q.image, q.box if self.crop_queries else None)
                for i, q in enumerate(self.queries) if not self.query_uses_db_features(q)]

    def fit_images(self) -> Sequence[ImageRef]:
        """Images used when this dataset trains whitening or codebooks (all database images)."""
        return self.images
