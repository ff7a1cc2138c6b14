"""Image files on disk: finding them by name and reading their size without decoding."""
from __future__ import annotations

import os
from pathlib import Path

from PIL import Image

from benchmarks.errors import DatasetError, ImageLoadError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".tif", ".tiff", ".webp")

#: how far (pixels) a query box may stick out of its image: boxes drawn with inclusive
#: 1-based corners end one pixel past a 0-based edge
BOX_TOLERANCE = 1.0


def strip_suffix(name: str) -> str:
    """``name`` without a trailing image suffix (``a/b.jpg`` -> ``a/b``)."""
    stem, ext = os.path.splitext(name)
    return stem if ext.lower() in IMAGE_SUFFIXES else name


def list_images(folder: Path) -> list[str]:
    """Paths of the image files under ``folder`` (recursively, hidden ones skipped), relative (POSIX)
    and sorted."""
    folder = Path(folder)
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        rel = Path(dirpath).relative_to(folder)
        found += [(rel / f).as_posix() for f in filenames
                  if os.path.splitext(f)[1].lower() in IMAGE_SUFFIXES and not f.startswith(".")]
    return sorted(found)


class ImageIndex:
    """The images under a folder (recursively), found by relative path or bare file name,
    with or without the suffix: ``paris/louvre/paris_louvre_000000.jpg``, ``paris_louvre_000000``."""

    def __init__(self, folder: Path, owner: str):
        self.folder = Path(folder)
        self.owner = owner
        self._paths: dict[str, str | None] = {}  # key -> relative path, None when ambiguous
        for rel in list_images(self.folder):
            for key in {strip_suffix(rel), strip_suffix(rel.rsplit("/", 1)[-1])}:
                self._paths[key] = None if key in self._paths else rel

    def stems(self) -> list[str]:
        """The bare file names without suffix, sorted (each must be unique)."""
        stems = sorted({strip_suffix(k.rsplit("/", 1)[-1]) for k in self._paths})
        for s in stems:
            self.path(s)  # raises on duplicates
        return stems

    def path(self, name: str, listed_in: Path | str | None = None) -> Path:
        """The file of image ``name``; DatasetError naming it when absent or ambiguous."""
        key = strip_suffix(name)
        if key not in self._paths:
            where = f" (listed in {listed_in})" if listed_in else ""
            raise DatasetError(f"{self.owner}: image {name!r}{where} is not in {self.folder}; the image "
                               "folder is incomplete: re-extract or re-download the dataset")
        rel = self._paths[key]
        if rel is None:
            raise DatasetError(f"{self.owner}: more than one file under {self.folder} is named {name!r} "
                               "(different folders or suffixes); keep one")
        return self.folder / rel


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file header, without decoding the pixels."""
    try:
        with Image.open(path) as im:
            return im.size
    except FileNotFoundError:
        raise ImageLoadError(f"image file {path} does not exist") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageLoadError(f"cannot read the header of image {path} ({e}); the file is corrupt: "
                             "replace it with a good copy (re-download the dataset)") from e


def check_box(owner: str, name: str, box, path: Path, rotate: int = 0) -> tuple[float, float, float, float]:
    """``box`` (x1, y1, x2, y2) as floats, checked against the image's actual size."""
    try:
        x1, y1, x2, y2 = (float(v) for v in box)
    except (TypeError, ValueError):
        raise DatasetError(f"{owner}: query {name!r} has a malformed box {box!r}; "
                           "expected four numbers x1 y1 x2 y2") from None
    w, h = image_size(path)
    if rotate % 180:
        w, h = h, w
    t = BOX_TOLERANCE
    if not (x2 > x1 and y2 > y1 and x1 >= -t and y1 >= -t and x2 <= w + t and y2 <= h + t):
        raise DatasetError(f"{owner}: the box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) of query {name!r} is empty "
                           f"or outside its image {path} ({w} x {h} pixels); boxes are x1 y1 x2 y2 in "
                           "pixels of the original image: check the ground truth belongs to these images")
    return x1, y1, x2, y2


def flat_benchmark_folder(root: Path, subdir: str, name: str, layout: str, download: str,
                          is_member, member_desc: str) -> tuple[Path, "ImageIndex", list[str]]:
    """Open a benchmark whose images sit in ``root/subdir`` (or directly in ``root``), every file
    named like its members (``is_member(stem)``): the folder, its index and the sorted stems.
    A missing root, an empty folder or a foreign file (another dataset's folder) is a DatasetError."""
    from benchmarks.errors import missing_root
    root = Path(root)
    if not root.is_dir():
        raise missing_root(name, root, layout, download)
    folder = root / subdir if (root / subdir).is_dir() else root
    index = ImageIndex(folder, name)
    names = index.stems()
    if not names:
        raise DatasetError(f"{name}: no images in {folder}; expected layout:\n{layout}")
    stray = next((n for n in names if not is_member(n)), None)
    if stray is not None:
        raise DatasetError(f"{name}: {folder} holds {stray!r}, not a {member_desc}: is this another "
                           "dataset's folder?")
    return folder, index, names
