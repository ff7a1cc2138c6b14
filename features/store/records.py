"""What a chunk holds and its record: the two chunk kinds, ``record.json`` (written last, so a
chunk with a record is whole) and the checks a chunk passes against what its entry expects.

Chunk kinds (the entry's manifest names its kind):

- ``local``: local features, ``descriptors.npy`` (sum of n_i, d), ``positions.npy``
  (sum of n_i, 2) and ``index.npy`` (images, 4: start, count, grid h, grid w; h = w = -1
  without a grid), and for extractors that give one ``cls_token.npy`` (images, d), each
  image's class token;
- ``descriptors``: one global descriptor per image, ``descriptors.npy`` (images, D) and
  ``empty.npy`` (images,) bool (True: the image had no local features; its row is zero).

Store format 2 is the only one read: chunks of earlier versions (no record.json) are set aside
and extracted again.
"""
from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np

from features.store import layout
from features.store.files import file_crc32, npy_header, write_text
from features.store.layout import RECORD

FORMAT = 2
LOCAL, DESCRIPTORS = "local", "descriptors"
ARRAYS = {LOCAL: ("descriptors.npy", "positions.npy", "index.npy"),
          DESCRIPTORS: ("descriptors.npy", "empty.npy")}
#: arrays a chunk of the kind may hold (its record then describes them)
OPTIONAL = {LOCAL: ("cls_token.npy",), DESCRIPTORS: ()}


class DescriptorRows(NamedTuple):
    """What a ``descriptors`` chunk holds: (n, D) float rows and the (n,) mask of images
    without local features (zero rows)."""

    descriptors: np.ndarray
    empty: np.ndarray


@dataclass(frozen=True)
class ChunkSpec:
    """What chunk ``index`` of an entry must hold: images [lo, hi) with these names and stamps."""

    index: int
    lo: int
    hi: int
    names: tuple[str, ...]
    stamps: tuple[str, ...]


class ChunkInvalid(Exception):
    """A chunk that must not be used; ``str`` says why."""


class StaleStamps(ChunkInvalid):
    """A sound chunk whose images' stamps (size, mtime) differ from today's, at ``positions``:
    replaced files, or only copied ones (their content hashes tell)."""

    def __init__(self, message: str, positions: list[int], record: dict):
        super().__init__(message)
        self.positions, self.record = positions, record


EARLIER_FORMAT = ("no record.json: written by a version before store format 2, which is no "
                  "longer read")


def check_chunk(path: Path, spec: ChunkSpec, dtype: str, kind: str = LOCAL,
                checksums: bool = False) -> dict:
    """The chunk's record after checking it against ``spec``; ChunkInvalid says what is wrong.

    Always: the record parses, names and stamps match, every file of ``kind`` exists with the
    recorded size, shape and dtype. With ``checksums``: every file's CRC-32 too. Stamps are
    checked last, so that ``StaleStamps`` means "sound, but its images' stamps changed".
    """
    try:
        return _check_chunk(path, spec, dtype, kind, checksums)
    except ChunkInvalid:
        raise
    except FileNotFoundError as e:   # moved away meanwhile by another process
        raise ChunkInvalid(f"a file vanished while checking it ({e.filename})") from None
    except (KeyError, TypeError, AttributeError, ValueError, IndexError) as e:
        raise ChunkInvalid(f"{RECORD} is malformed ({type(e).__name__}: {e})") from None


def _check_chunk(path: Path, spec: ChunkSpec, dtype: str, kind: str, checksums: bool) -> dict:
    try:
        record = json.loads((path / RECORD).read_text())
    except FileNotFoundError:
        raise ChunkInvalid(EARLIER_FORMAT) from None
    except (OSError, ValueError) as e:
        raise ChunkInvalid(f"{RECORD} is unreadable ({e})") from None
    if record.get("format") != FORMAT:
        raise ChunkInvalid(f"{RECORD} has format {record.get('format')!r}, expected {FORMAT}")
    if tuple(record.get("names", ())) != spec.names:
        raise ChunkInvalid("it holds other images than this entry lists at its position "
                           "(copied from another chunk or entry?)")
    files = record.get("files", {})
    for name in ARRAYS[kind] + tuple(n for n in OPTIONAL[kind] if n in files):
        meta = files.get(name)
        if meta is None:
            raise ChunkInvalid(f"{RECORD} does not describe {name}")
        f = path / name
        try:
            size = f.stat().st_size
        except FileNotFoundError:
            raise ChunkInvalid(f"{name} is missing") from None
        if size != meta["bytes"]:
            raise ChunkInvalid(f"{name} has {size} bytes, {meta['bytes']} were written")
        shape, dt = _header(f)
        if list(shape) != meta["shape"] or dt != meta["dtype"]:
            raise ChunkInvalid(f"{name} is {dt} {shape}, {meta['dtype']} {meta['shape']} were written")
        if checksums and file_crc32(f) != meta["crc32"]:
            raise ChunkInvalid(f"{name} does not match its checksum (overwritten or damaged)")
    if files["descriptors.npy"]["dtype"] != dtype:
        raise ChunkInvalid(f"descriptors are {files['descriptors.npy']['dtype']}, the entry is {dtype}")
    _check_shapes(files, spec.hi - spec.lo, kind)
    stamps = tuple(record.get("stamps", ()))
    if len(stamps) != len(spec.stamps):
        raise ChunkInvalid(f"{RECORD} has {len(stamps)} stamps for {len(spec.stamps)} images")
    changed = [i for i, (a, b) in enumerate(zip(stamps, spec.stamps)) if a != b]
    if changed:
        raise StaleStamps("image file(s) changed since extraction: "
                          + ", ".join(spec.names[i] for i in changed[:5]), changed, record)
    return record


def _check_shapes(files: dict, n: int, kind: str) -> None:
    """The arrays of a chunk of ``n`` images agree with each other."""
    rows = files["descriptors.npy"]["shape"][0]
    if kind == LOCAL:
        index_shape = files["index.npy"]["shape"]
        if index_shape != [n, 4]:
            raise ChunkInvalid(f"index.npy describes {index_shape[0]} images, the chunk has {n}")
        if rows != files["positions.npy"]["shape"][0]:
            raise ChunkInvalid("descriptors.npy and positions.npy have different row counts")
        if "cls_token.npy" in files and files["cls_token.npy"]["shape"][0] != n:
            raise ChunkInvalid(f"cls_token.npy has {files['cls_token.npy']['shape'][0]} rows, the "
                               f"chunk has {n} images")
    else:
        if rows != n or files["empty.npy"]["shape"] != [n]:
            raise ChunkInvalid(f"descriptors.npy has {rows} rows and empty.npy "
                               f"{files['empty.npy']['shape']}, the chunk has {n} images")


def _header(path: Path) -> tuple[tuple, str]:
    try:
        return npy_header(path)
    except (OSError, ValueError) as e:
        raise ChunkInvalid(f"{path.name} is not a readable .npy file ({e})") from None


def write_record(path: Path, spec: ChunkSpec, kind: str, hashes: Sequence[str] = ()) -> dict:
    """Describe the arrays of ``kind`` in ``path`` (sizes, shapes, dtypes, CRC-32) and the images
    (names, stamps, content ``hashes``) in its record.json."""
    files = {}
    for name in ARRAYS[kind] + tuple(n for n in OPTIONAL[kind] if (path / n).exists()):
        shape, dt = _header(path / name)
        files[name] = {"bytes": (path / name).stat().st_size, "shape": list(shape), "dtype": dt,
                       "crc32": file_crc32(path / name)}
    record = {"format": FORMAT, "names": list(spec.names), "stamps": list(spec.stamps),
              "hashes": list(hashes), "files": files, "written": time.strftime("%Y-%m-%dT%H:%M:%S"),
              "host": socket.gethostname(), "pid": os.getpid()}
    write_text(path / RECORD, json.dumps(record))
    return record


def chunk_size_of_records(entry: Path, n: int) -> int | None:
    """The chunk size the stored chunks were written with, from their records (image counts),
    or None when no chunk has a readable record. A chunk c holding m images that is not the
    last one gives m; the last one (c * size + m = n) gives (n - m) / c; a lone first chunk
    holding every image lays the entry out as any size >= n does."""
    for chunk in layout.chunk_dirs(entry):
        try:
            c = layout.chunk_index(chunk)
            m = len(json.loads((chunk / RECORD).read_text())["names"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if m < 1:
            continue
        if (c + 1) * m < n:
            return m
        if c > 0 and (n - m) % c == 0 and (n - m) // c >= m:
            return (n - m) // c
        if c == 0 and m == n:
            return n
    return None
