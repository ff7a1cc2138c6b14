"""Reading a store entry: its chunks memory-mapped on demand, each checked (its CRC-32) the
first time this process reads it."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from benchmarks.errors import StoreError
from features.local_features import LocalFeatures
from features.store.layout import RECORD
from features.store.records import ARRAYS, DESCRIPTORS, LOCAL, OPTIONAL


class StoredChunks:
    """The chunks of one entry, read-only: ``chunk_dirs[c]`` holds images
    [c * chunk_size, (c + 1) * chunk_size) of ``n_images``. ``on_first_read(c)`` runs before chunk
    ``c`` is first read (the checksum check; it may replace the chunk: whatever is read afterwards
    is the replacement). At most ``mapped_chunks`` chunks stay mapped."""

    kind = LOCAL

    def __init__(self, chunk_dirs: list[Path], chunk_size: int, n_images: int,
                 on_first_read: Callable[[int], None] | None = None, mapped_chunks: int = 2,
                 entry: Path | None = None):
        self.entry = entry          # the store entry (its name is the key)
        self._dirs = list(chunk_dirs)
        self._chunk_size = chunk_size
        self._n = n_images
        self._on_first_read = on_first_read
        self._seen: set[int] = set()
        self._mapped: dict[int, dict[str, np.ndarray]] = {}
        self._max_mapped = max(1, mapped_chunks)

    def __len__(self) -> int:
        return self._n

    def _first_read(self, c: int) -> None:
        if c not in self._seen:
            if self._on_first_read is not None:
                self._on_first_read(c)
            self._seen.add(c)

    def _arrays(self, c: int) -> dict[str, np.ndarray]:
        """Chunk ``c``'s arrays by file name (small ones loaded, the descriptors mapped)."""
        if c not in self._mapped:
            self._first_read(c)
            if len(self._mapped) >= self._max_mapped:
                self._mapped.pop(next(iter(self._mapped)))
            d = self._dirs[c]
            names = ARRAYS[self.kind] + tuple(n for n in OPTIONAL[self.kind] if (d / n).exists())
            try:
                self._mapped[c] = {name: np.load(d / name, mmap_mode=None if name == "index.npy"
                                                 else "r") for name in names}
            except (OSError, ValueError) as e:
                raise StoreError(f"cannot read stored chunk {d} ({e}); run again: the store checks "
                                 "and re-extracts damaged chunks when it opens them") from e
        return self._mapped[c]

    def content_key(self) -> str:
        """16 hex digits over what the chunks hold now (each record's image names, stamps, file
        digests and array checksums): changes whenever a chunk is re-extracted or replaced, so
        fits cached on these features are never reused for other ones. Reads only the records.
        Independent of where the store lies (the entry's dataset and key, not its path), so a
        copied or moved store keeps its cached fits."""
        where = f"{self.entry.parent.name}/{self.entry.name}" if self.entry is not None else ""
        h = hashlib.sha1(where.encode())
        for d in self._dirs:
            try:
                record = json.loads((d / RECORD).read_text())
                h.update(json.dumps([record.get("names"), record.get("hashes") or record.get("stamps"),
                                     {k: v.get("crc32") for k, v in record.get("files", {}).items()}],
                                    sort_keys=True).encode())
            except (OSError, ValueError, AttributeError):
                h.update(b"?")
        return h.hexdigest()[:16]


class StoredFeatures(StoredChunks, Sequence[LocalFeatures]):
    """Read-only, memory-mapped LocalFeatures of a list of images, indexable like a list.
    Nothing per image stays loaded: a chunk's index and arrays are mapped when one of its images
    is read, and unmapped once ``mapped_chunks`` other chunks have been read since."""

    kind = LOCAL

    def counts(self) -> np.ndarray:
        """(N,) local features per image, from the chunks' indexes alone, each checked first
        like any read (a damaged count is never believed)."""
        out = np.zeros(self._n, np.int64)
        for c, d in enumerate(self._dirs):
            self._first_read(c)
            index = np.load(d / "index.npy")
            out[c * self._chunk_size:c * self._chunk_size + len(index)] = index[:, 1]
        return out

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(i)
        c, j = divmod(int(i), self._chunk_size)
        arrays = self._arrays(c)
        start, count, gh, gw = (int(v) for v in arrays["index.npy"][j])
        grid = (gh, gw) if gh >= 0 else None
        cls = arrays["cls_token.npy"][j] if "cls_token.npy" in arrays else None
        return LocalFeatures(arrays["descriptors.npy"][start:start + count],
                             arrays["positions.npy"][start:start + count], grid, cls)

    def __iter__(self) -> Iterator[LocalFeatures]:
        return (self[i] for i in range(len(self)))


class StoredDescriptors(StoredChunks):
    """One stored global descriptor per image, read whole by ``read()``."""

    kind = DESCRIPTORS

    def read(self) -> tuple[np.ndarray, np.ndarray]:
        """(N, D) float32 descriptors and the (N,) mask of images without local features (zero
        rows), every chunk checked first like any read."""
        X = empty = None
        for lo, rows, mask in self.row_chunks():
            if X is None:
                X = np.zeros((self._n, rows.shape[1]), np.float32)
                empty = np.zeros(self._n, bool)
            X[lo:lo + len(rows)], empty[lo:lo + len(rows)] = rows, mask
        if X is None:
            return np.zeros((0, 0), np.float32), np.zeros(0, bool)
        return X, empty

    def row_chunks(self) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """(first image, (n, D) float32 rows, (n,) empty mask) of each chunk in order, checked
        like any read and copied out at once (no file stays open: an entry may have more chunks
        than a process may open files)."""
        for c in range(len(self._dirs)):
            arrays = self._arrays(c)
            rows = np.array(arrays["descriptors.npy"], dtype=np.float32)
            mask = np.array(arrays["empty.npy"], dtype=bool)
            self._mapped.pop(c)
            yield c * self._chunk_size, rows, mask
