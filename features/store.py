"""The local-feature store: each (image list, extractor config) is extracted once, kept on disk,
and memory-mapped on read.

Layout: ``root/<dataset>/<key>/`` with ``manifest.json`` and chunk folders ``chunk_00000/``, each
holding ``descriptors.npy`` (sum of n_i, d), ``positions.npy`` (sum of n_i, 2), ``index.npy``
(images in chunk, 4: start, count, grid h, grid w; h = w = -1 without a grid) and ``names.json``.
A chunk is written into a ``.tmp`` folder and renamed into place, so a killed run leaves either a
whole chunk or none; leftover ``.tmp`` folders are removed and the extraction resumes at the first
missing chunk.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
from PIL import Image

from features.local_features import LocalFeatures

log = logging.getLogger(__name__)
DTYPES = ("float16", "float32")


def store_key(extractor_config: dict, identities: Sequence[str], dtype: str) -> str:
    """16 hex digits over the extractor config, the images (and crops) and the storage dtype."""
    h = hashlib.sha1(json.dumps(extractor_config, sort_keys=True).encode())
    h.update(dtype.encode())
    for s in identities:
        h.update(b"\0" + s.encode())
    return h.hexdigest()[:16]


class StoredFeatures(Sequence[LocalFeatures]):
    """Read-only, memory-mapped LocalFeatures of a list of images, indexable like a list.

    Only the small per-chunk indexes stay loaded; a chunk's arrays are mapped when one of its
    images is read and unmapped once two other chunks have been read since, so streaming over a
    large set keeps few of its pages resident.
    """

    def __init__(self, chunk_dirs: list[Path], mapped_chunks: int = 2):
        self._dirs = list(chunk_dirs)
        self._index = [np.load(d / "index.npy") for d in self._dirs]
        self._where = [(c, j) for c, index in enumerate(self._index) for j in range(len(index))]
        self._mapped: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._max_mapped = max(1, mapped_chunks)

    def _arrays(self, c: int) -> tuple[np.ndarray, np.ndarray]:
        if c not in self._mapped:
            if len(self._mapped) >= self._max_mapped:
                self._mapped.pop(next(iter(self._mapped)))
            d = self._dirs[c]
            self._mapped[c] = (np.load(d / "descriptors.npy", mmap_mode="r"),
                               np.load(d / "positions.npy", mmap_mode="r"))
        return self._mapped[c]

    def __len__(self) -> int:
        return len(self._where)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        c, j = self._where[i]
        desc, pos = self._arrays(c)
        start, count, gh, gw = (int(v) for v in self._index[c][j])
        grid = (gh, gw) if gh >= 0 else None
        return LocalFeatures(desc[start:start + count], pos[start:start + count], grid)

    def __iter__(self) -> Iterator[LocalFeatures]:
        return (self[i] for i in range(len(self)))


class FeatureStore:
    """On-disk local features under ``root``; ``dtype`` float16 (half the disk) or float32."""

    def __init__(self, root: str | Path, dtype: str = "float16", chunk_size: int = 64):
        if dtype not in DTYPES:
            raise ValueError(f"store.dtype={dtype!r}: expected one of {DTYPES}")
        if chunk_size < 1:
            raise ValueError(f"store.chunk_size={chunk_size}: must be >= 1")
        self.root = Path(root).expanduser()
        self.dtype = dtype
        self.chunk_size = chunk_size

    def entry(self, dataset: str, key: str) -> Path:
        return self.root / dataset / key

    def get(self, dataset: str, names: Sequence[str], identities: Sequence[str],
            extractor_config: dict, load: Callable[[int], Image.Image],
            extract: Callable[[], Callable[[Sequence[Image.Image]], list[LocalFeatures]]],
            batch_size: int = 16, num_workers: int = 2, progress: bool = True,
            what: str = "images") -> StoredFeatures:
        """The features of ``names``: read from the store, extracting the missing chunks first.

        load(i) gives image i (PIL); extract() builds the extractor (called only when something
        must be extracted). ``identities`` determine the key together with the extractor config.
        """
        key = store_key(extractor_config, identities, self.dtype)
        entry = self.entry(dataset, key)
        n = len(names)
        n_chunks = (n + self.chunk_size - 1) // self.chunk_size
        entry.mkdir(parents=True, exist_ok=True)
        for tmp in entry.glob("*.tmp"):
            shutil.rmtree(tmp, ignore_errors=True)
        manifest = entry / "manifest.json"
        if not manifest.exists():
            _atomic_write_text(manifest, json.dumps(
                {"dataset": dataset, "n_images": n, "chunk_size": self.chunk_size,
                 "dtype": self.dtype, "extractor": extractor_config}, indent=1))
        chunk_dirs = [entry / f"chunk_{c:05d}" for c in range(n_chunks)]
        missing = [c for c, d in enumerate(chunk_dirs) if not (d / "index.npy").exists()]
        if not missing:
            log.info("%s: %d %s read from the feature store (%s), no extraction", dataset, n, what, entry)
            return StoredFeatures(chunk_dirs)
        done = n_chunks - len(missing)
        log.info("%s: extracting %d %s into %s (%d of %d chunks already stored)", dataset,
                 n - done * self.chunk_size if done else n, what, entry, done, n_chunks)
        extractor = extract()
        bar = _progress(sum(min(self.chunk_size, n - c * self.chunk_size) for c in missing),
                        f"extract {dataset}", progress)
        with ThreadPoolExecutor(max(1, num_workers)) as pool:
            for c in missing:
                lo, hi = c * self.chunk_size, min(n, (c + 1) * self.chunk_size)
                feats: list[LocalFeatures] = []
                images = pool.map(load, range(lo, hi))  # decoded ahead, in order
                batch: list[Image.Image] = []
                for img in images:
                    batch.append(img)
                    if len(batch) == batch_size:
                        feats.extend(extractor(batch))
                        bar.update(len(batch))
                        batch = []
                if batch:
                    feats.extend(extractor(batch))
                    bar.update(len(batch))
                self._write_chunk(chunk_dirs[c], feats, list(names[lo:hi]))
        bar.close()
        return StoredFeatures(chunk_dirs)

    def _write_chunk(self, path: Path, feats: list[LocalFeatures], names: list[str]) -> None:
        tmp = path.with_name(path.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        counts = [f.n for f in feats]
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        grids = [f.grid if f.grid is not None else (-1, -1) for f in feats]
        index = np.column_stack([starts, counts, [g[0] for g in grids], [g[1] for g in grids]])
        d = feats[0].dim if feats else 0
        desc = np.concatenate([f.descriptors for f in feats]) if feats else np.zeros((0, d))
        pos = np.concatenate([f.positions for f in feats]) if feats else np.zeros((0, 2))
        np.save(tmp / "descriptors.npy", desc.astype(self.dtype))
        np.save(tmp / "positions.npy", pos.astype(np.float32))
        (tmp / "names.json").write_text(json.dumps(names))
        np.save(tmp / "index.npy", index.astype(np.int64))  # written last: marks completeness
        _fsync_dir(tmp)
        os.replace(tmp, path)


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(text)
    os.replace(tmp, path)


def _fsync_dir(path: Path) -> None:
    for f in path.iterdir():
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())


def _progress(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, unit="img", disable=not enabled, leave=False)
