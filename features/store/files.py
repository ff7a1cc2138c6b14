"""File operations of the store: atomic writes, fsync, CRC-32 and .npy headers, and the error
that names a full disk."""
from __future__ import annotations

import errno
import os
import shutil
import uuid
import zlib
from pathlib import Path

import numpy as np

from benchmarks.errors import StoreError


def file_crc32(path: Path, block: int = 1 << 24) -> int:
    """CRC-32 of a file's bytes, read in 16 MiB blocks."""
    crc = 0
    with open(path, "rb") as f:
        while data := f.read(block):
            crc = zlib.crc32(data, crc)
    return crc


def npy_header(path: Path) -> tuple[tuple, str]:
    """(shape, dtype name) of a .npy file from its header alone; ValueError or OSError when it
    is no readable .npy file."""
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        read = {(1, 0): np.lib.format.read_array_header_1_0,
                (2, 0): np.lib.format.read_array_header_2_0}.get(version)
        if read is None:
            raise ValueError(f"unsupported .npy version {version}")
        shape, _, dt = read(f)
    return tuple(shape), np.dtype(dt).name


def write_error(e: OSError, what: Path, entry: Path) -> StoreError:
    """A StoreError that says "no space left" (numpy reports a full disk as a short write)."""
    full = e.errno in (errno.ENOSPC, errno.EDQUOT) or "requested and" in str(e)
    if full:
        try:
            free = shutil.disk_usage(entry).free / 2 ** 20
        except OSError:
            free = float("nan")
        return StoreError(f"no space left on the device while writing {what} ({free:.0f} MiB free "
                          f"under {entry}); the chunks already stored are kept: free some space or set "
                          "store.root to a larger disk, then run again to resume")
    return StoreError(f"cannot write {what} ({e}); the chunks already stored are kept")


def write_text(path: Path, text: str, exclusive: bool = False) -> None:
    """Write ``text`` to ``path`` atomically (a private temporary file renamed into place).
    ``exclusive``: keep an existing file (first writer wins)."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.part")
    try:
        tmp.write_text(text)
        if exclusive:
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
            except OSError:  # filesystems without hard links: a rename is still atomic
                if not path.exists():
                    os.replace(tmp, path)
        else:
            os.replace(tmp, path)
    except OSError as e:
        raise write_error(e, path, path.parent) from e
    finally:
        if tmp.exists():
            tmp.unlink()


def fsync_dir(path: Path) -> None:
    """fsync every file of a folder, then the folder itself."""
    for f in path.iterdir():
        fsync(f)
    fsync(path)


def fsync(path: Path) -> None:
    """fsync a file or folder (silently where the filesystem refuses)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:   # some filesystems refuse fsync on directories
        pass
    finally:
        os.close(fd)
