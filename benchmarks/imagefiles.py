"""Image files on disk: finding them by name, decoding them right (EXIF orientation, 16-bit and
float modes, decompression bombs named), their size and their stamp."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

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


#: EXIF orientations (tag 0x0112) that swap width and height
_SWAPPING_ORIENTATIONS = (5, 6, 7, 8)
#: modes Pillow's convert("RGB") gets wrong (16/32-bit integers clip to white, floats too)
_WIDE_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


def _open_error(path: Path, e: BaseException) -> ImageLoadError:
    if isinstance(e, FileNotFoundError):
        return ImageLoadError(f"image file {path} does not exist; check the dataset root and that "
                              "every listed image is present")
    if isinstance(e, Image.DecompressionBombError):
        return ImageLoadError(f"image {path} is larger than Pillow's decompression-bomb limit "
                              f"({Image.MAX_IMAGE_PIXELS:,} pixels), so it was not decoded ({e}); "
                              "if the file is genuine, downscale it")
    return ImageLoadError(f"cannot read image {path} ({e}); the file is corrupt or truncated: "
                          "replace it with a good copy (re-download the dataset)")


def exif_orientation(im: Image.Image) -> int:
    """The EXIF orientation tag (1..8) of an opened image; 1 when absent or invalid."""
    try:
        value = im.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001 - a malformed EXIF block must not stop decoding
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def to_rgb(im: Image.Image) -> Image.Image:
    """8-bit RGB of any Pillow mode. 16-bit integer images are scaled by 255 / 65535 (Pillow's own
    conversion clips them to white); 32-bit integer images by 255 / 65535 when their values fit
    16 bits, else by their maximum; float images are taken as [0, 1] when their maximum is <= 1,
    else clipped to [0, 255]. Alpha is dropped, as before."""
    if im.mode not in _WIDE_MODES:
        return im.convert("RGB")
    a = np.asarray(im, dtype=np.float64)
    if im.mode == "F":
        a = a * 255.0 if np.nanmax(a, initial=0.0) <= 1.0 else a
    else:
        peak = float(a.max(initial=0.0))
        a = a * (255.0 / (65535.0 if peak <= 65535 else peak))
    gray = np.clip(np.nan_to_num(a), 0, 255).round().astype(np.uint8)
    return Image.fromarray(gray).convert("RGB")


def decode_image(path: Path) -> Image.Image:
    """The file as 8-bit RGB, upright by its EXIF orientation; ImageLoadError names the file."""
    try:
        with Image.open(path) as im:
            im.load()
            upright = ImageOps.exif_transpose(im) if exif_orientation(im) != 1 else im
            return to_rgb(upright)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise _open_error(path, e) from e


def file_stamp(path: Path) -> str:
    """``size-mtime_ns`` of a file: what shows that it was replaced."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise _open_error(Path(path), FileNotFoundError()) from None
    except OSError as e:
        raise ImageLoadError(f"cannot read image file {path} ({e})") from e
    return f"{st.st_size}-{st.st_mtime_ns}"


def file_digest(path: Path) -> str:
    """CRC-32 (hex) of a file's bytes: what tells a copied file from a replaced one."""
    import zlib
    crc = 0
    try:
        with open(path, "rb") as f:
            while data := f.read(1 << 24):
                crc = zlib.crc32(data, crc)
    except FileNotFoundError:
        raise _open_error(Path(path), FileNotFoundError()) from None
    return f"{crc:08x}"


def stored_orientation(path: Path) -> int:
    """The EXIF orientation tag of a file (1 when absent), from its header."""
    try:
        with Image.open(path) as im:
            return exif_orientation(im)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise _open_error(Path(path), e) from e


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of the upright image (EXIF orientation applied), from the file header."""
    try:
        with Image.open(path) as im:
            w, h = im.size
            return (h, w) if exif_orientation(im) in _SWAPPING_ORIENTATIONS else (w, h)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        if isinstance(e, (FileNotFoundError, Image.DecompressionBombError)):
            raise _open_error(Path(path), e) from None
        raise ImageLoadError(f"cannot read the header of image {path} ({e}); the file is corrupt: "
                             "replace it with a good copy (re-download the dataset)") from e


def check_box(owner: str, name: str, box, size: tuple[int, int], where
              ) -> tuple[float, float, float, float]:
    """``box`` (x1, y1, x2, y2) as floats, checked against ``size``, the (width, height) of the
    upright image (``ImageRef.size()``); ``where`` (its file) is named in errors."""
    try:
        x1, y1, x2, y2 = (float(v) for v in box)
    except (TypeError, ValueError):
        raise DatasetError(f"{owner}: query {name!r} has a malformed box {box!r}; "
                           "expected four numbers x1 y1 x2 y2") from None
    w, h = size
    t = BOX_TOLERANCE
    if not (x2 > x1 and y2 > y1 and x1 >= -t and y1 >= -t and x2 <= w + t and y2 <= h + t):
        raise DatasetError(f"{owner}: the box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) of query {name!r} is empty "
                           f"or outside its image {where} ({w} x {h} pixels); boxes are x1 y1 x2 y2 in "
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
