"""The resize policies every extractor applies before it sees an image (deep and SIFT alike), so
that ``resize`` / ``image_size`` / ``interpolation`` mean the same in every backbone config."""
from __future__ import annotations

import numpy as np
from PIL import Image

from benchmarks.errors import ParameterError

INTERPOLATIONS = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "nearest": Image.NEAREST,
                  "lanczos": Image.LANCZOS}
RESIZE_POLICIES = ("square", "max_side", "none")


def resized_size(w: int, h: int, resize: str, image_size: int, multiple: int = 1,
                 scale: float = 1.0) -> tuple[int, int]:
    """(width, height) after the resize policy: ``square`` (aspect ratio not kept, as the paper's
    586 x 586), ``max_side`` (longest side = image_size, aspect kept), ``none``; then, with
    ``scale`` != 1 (one scale of a multi-scale extraction), each side times ``scale``, rounded
    down as cirtorch's and SuperGlobal's resizing does (at least 1); with ``multiple`` > 1 (a vision transformer's patch size) each side is finally
    rounded to the nearest multiple of it (at least one)."""
    if resize == "square":
        size = image_size, image_size
    elif resize == "max_side":
        s = image_size / max(w, h)
        size = max(1, round(w * s)), max(1, round(h * s))
    elif resize == "none":
        size = w, h
    else:
        raise ParameterError("resize", resize, f"expected one of {RESIZE_POLICIES}")
    if scale != 1:
        size = tuple(max(1, int(side * scale)) for side in size)
    if multiple == 1:
        return size
    return tuple(max(multiple, round(side / multiple) * multiple) for side in size)


def check_resize_settings(owner: str, resize: str, image_size, interpolation: str) -> None:
    """ParameterError for a resize policy, size or interpolation that cannot work."""
    if resize not in RESIZE_POLICIES:
        raise ParameterError("resize", resize, f"expected one of {RESIZE_POLICIES}", owner)
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or image_size < 1:
        raise ParameterError("image_size", image_size, "must be a positive integer (pixels)", owner)
    if interpolation not in INTERPOLATIONS:
        raise ParameterError("interpolation", interpolation,
                             f"expected one of {list(INTERPOLATIONS)}", owner)


def resize_image(image: Image.Image, resize: str, image_size: int, interpolation: str,
                 multiple: int = 1, scale: float = 1.0) -> Image.Image:
    """The PIL image after the resize policy and ``scale`` (one resampling of the original; the
    same object when the size does not change)."""
    size = resized_size(image.width, image.height, resize, image_size, multiple, scale)
    return image if size == image.size else image.resize(size, INTERPOLATIONS[interpolation])
