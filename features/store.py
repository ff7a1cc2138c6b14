"""The local-feature store: each (image list, extractor config) is extracted once, kept on disk,
checked, and memory-mapped on read. Any number of processes (launcher jobs, machines on a shared
filesystem) may fill and read one entry at the same time.

Layout of an entry, ``root/<dataset>/<key>/``:

- ``manifest.json``: the entry's layout (``n_images``, ``chunk_size``, ``dtype``, the extractor
  config). The first writer creates it; afterwards it is the authority on the layout: a run asking
  for another ``store.chunk_size`` uses the manifest's.
- ``chunk_00000/`` ...: ``descriptors.npy`` (sum of n_i, d), ``positions.npy`` (sum of n_i, 2),
  ``index.npy`` (images, 4: start, count, grid h, grid w; h = w = -1 without a grid) and
  ``record.json``: the image names, each image's stamp (file size and modification time, so a
  replaced file is noticed) and content digest (so a merely copied one is not), and every
  array's size, shape, dtype and CRC-32. The record is written
  last into a private temporary folder that is then renamed into place, so a chunk is either whole
  or absent, whatever is killed when.
- ``locks/chunk_00000.lock``: one lock per chunk (``filelock``'s flock locks, which the kernel
  releases when a process dies; Linux emulates them with fcntl locks over NFS). A writer takes a
  chunk's lock, checks again that the chunk is still missing, extracts and commits it; chunks
  locked by others are skipped and waited for at the end, so N processes share one extraction and
  each chunk is extracted once.
- ``set_aside/``: chunks that failed a check (truncated, overwritten, foreign, stale), moved away
  with a warning naming them, then re-extracted. Nothing is deleted but debris of writers that are
  gone (``_is_stale_debris``): live work survives even where locks do not reach across nodes.

Checks: sizes, shapes, dtype, names and image stamps of every chunk when an entry is opened (cheap);
each chunk's CRC-32 the first time a process reads it (``verify_checksums``; about 2.8 GB/s here,
measured, against a disk read that is slower); everything with ``deepagg-store verify``. Chunks of
earlier versions (no ``record.json``) are checked, given a record and kept.
"""
from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import shutil
import socket
import time
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from benchmarks.errors import ConfigError, ImageLoadError, ParameterError, StoreError
from features import store_layout as layout
from features.local_features import LocalFeatures
from features.store_layout import RECORD

log = logging.getLogger(__name__)
DTYPES = ("float16", "float32")
FORMAT = 2
ARRAYS = ("descriptors.npy", "positions.npy", "index.npy")


def store_key(extractor_config: dict, identities: Sequence[str], dtype: str) -> str:
    """16 hex digits over the extractor config, the images (and crops) and the storage dtype."""
    h = hashlib.sha1(json.dumps(extractor_config, sort_keys=True).encode())
    h.update(dtype.encode())
    for s in identities:
        h.update(b"\0" + s.encode())
    return h.hexdigest()[:16]


def file_crc32(path: Path, block: int = 1 << 24) -> int:
    """CRC-32 of a file's bytes, read in 16 MiB blocks."""
    crc = 0
    with open(path, "rb") as f:
        while data := f.read(block):
            crc = zlib.crc32(data, crc)
    return crc


class ChunkInvalid(Exception):
    """A chunk that must not be used; ``str`` says why."""


class StaleStamps(ChunkInvalid):
    """A sound chunk whose images' stamps (size, mtime) differ from today's, at ``positions``:
    replaced files, or only copied ones (their content hashes tell)."""

    def __init__(self, message: str, positions: list[int], record: dict):
        super().__init__(message)
        self.positions, self.record = positions, record


@dataclass(frozen=True)
class ChunkSpec:
    """What chunk ``index`` of an entry must hold: images [lo, hi) with these names and stamps."""

    index: int
    lo: int
    hi: int
    names: tuple[str, ...]
    stamps: tuple[str, ...]


def _record_error(e: Exception) -> ChunkInvalid:
    return ChunkInvalid(f"{RECORD} is malformed ({type(e).__name__}: {e})")


def check_chunk(path: Path, spec: ChunkSpec, dtype: str, checksums: bool = False) -> dict:
    """The chunk's record after checking it against ``spec``; ChunkInvalid says what is wrong.

    Always: the record parses, names and stamps match, every file exists with the recorded size,
    shape and dtype. With ``checksums``: every file's CRC-32 too. Stamps are checked last, so
    that ``StaleStamps`` means "sound, but its images' stamps changed".
    """
    try:
        return _check_chunk(path, spec, dtype, checksums)
    except ChunkInvalid:
        raise
    except FileNotFoundError as e:   # moved away meanwhile by another process
        raise ChunkInvalid(f"a file vanished while checking it ({e.filename})") from None
    except (KeyError, TypeError, AttributeError, ValueError, IndexError) as e:
        raise _record_error(e) from None


def _check_chunk(path: Path, spec: ChunkSpec, dtype: str, checksums: bool) -> dict:
    rec_path = path / RECORD
    try:
        record = json.loads(rec_path.read_text())
    except FileNotFoundError:
        raise ChunkInvalid(f"{RECORD} is missing") from None
    except (OSError, ValueError) as e:
        raise ChunkInvalid(f"{RECORD} is unreadable ({e})") from None
    if record.get("format") != FORMAT:
        raise ChunkInvalid(f"{RECORD} has format {record.get('format')!r}, expected {FORMAT}")
    if tuple(record.get("names", ())) != spec.names:
        raise ChunkInvalid("it holds other images than this entry lists at its position "
                           "(copied from another chunk or entry?)")
    files = record.get("files", {})
    for name in ARRAYS:
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
        shape, dt = _npy_header(f)
        if list(shape) != meta["shape"] or dt != meta["dtype"]:
            raise ChunkInvalid(f"{name} is {dt} {shape}, {meta['dtype']} {meta['shape']} were written")
        if checksums and file_crc32(f) != meta["crc32"]:
            raise ChunkInvalid(f"{name} does not match its checksum (overwritten or damaged)")
    if files["descriptors.npy"]["dtype"] != dtype:
        raise ChunkInvalid(f"descriptors are {files['descriptors.npy']['dtype']}, the entry is {dtype}")
    n = spec.hi - spec.lo
    index_shape = files["index.npy"]["shape"]
    if index_shape != [n, 4]:
        raise ChunkInvalid(f"index.npy describes {index_shape[0]} images, the chunk has {n}")
    if files["descriptors.npy"]["shape"][0] != files["positions.npy"]["shape"][0]:
        raise ChunkInvalid("descriptors.npy and positions.npy have different row counts")
    stamps = tuple(record.get("stamps", ()))
    if len(stamps) != len(spec.stamps):
        raise ChunkInvalid(f"{RECORD} has {len(stamps)} stamps for {len(spec.stamps)} images")
    changed = [i for i, (a, b) in enumerate(zip(stamps, spec.stamps)) if a != b]
    if changed:
        raise StaleStamps("image file(s) changed since extraction: "
                          + ", ".join(spec.names[i] for i in changed[:5]), changed, record)
    return record


def _npy_header(path: Path) -> tuple[tuple, str]:
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read = {(1, 0): np.lib.format.read_array_header_1_0,
                    (2, 0): np.lib.format.read_array_header_2_0}.get(version)
            if read is None:
                raise ValueError(f"unsupported .npy version {version}")
            shape, _, dt = read(f)
    except (OSError, ValueError) as e:
        raise ChunkInvalid(f"{path.name} is not a readable .npy file ({e})") from None
    return tuple(shape), np.dtype(dt).name


def write_record(path: Path, spec: ChunkSpec, hashes: Sequence[str] = ()) -> dict:
    """Describe the arrays in ``path`` (sizes, shapes, dtypes, CRC-32) and the images (names,
    stamps, content ``hashes``) in its record.json."""
    files = {}
    for name in ARRAYS:
        shape, dt = _npy_header(path / name)
        files[name] = {"bytes": (path / name).stat().st_size, "shape": list(shape), "dtype": dt,
                       "crc32": file_crc32(path / name)}
    record = {"format": FORMAT, "names": list(spec.names), "stamps": list(spec.stamps),
              "hashes": list(hashes), "files": files, "written": time.strftime("%Y-%m-%dT%H:%M:%S"),
              "host": socket.gethostname(), "pid": os.getpid()}
    _write_text(path / RECORD, json.dumps(record))
    return record


class StoredFeatures(Sequence[LocalFeatures]):
    """Read-only, memory-mapped LocalFeatures of a list of images, indexable like a list.

    Nothing per image stays loaded: a chunk's index and arrays are mapped when one of its images is
    read, and unmapped once ``mapped_chunks`` other chunks have been read since. ``on_first_read(c)``
    runs before chunk ``c`` is first mapped (the checksum check; it may replace the chunk).
    """

    def __init__(self, chunk_dirs: list[Path], chunk_size: int, n_images: int,
                 on_first_read: Callable[[int], None] | None = None, mapped_chunks: int = 2,
                 entry: Path | None = None):
        self.entry = entry          # the store entry (its name is the key)
        self._dirs = list(chunk_dirs)
        self._chunk_size = chunk_size
        self._n = n_images
        self._on_first_read = on_first_read
        self._seen: set[int] = set()
        self._mapped: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._max_mapped = max(1, mapped_chunks)

    def _first_read(self, c: int) -> None:
        """The check every byte of chunk ``c`` passes before anything is read from it (which may
        replace the chunk: whatever is read afterwards is the replacement)."""
        if c not in self._seen:
            if self._on_first_read is not None:
                self._on_first_read(c)
            self._seen.add(c)

    def _arrays(self, c: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if c not in self._mapped:
            self._first_read(c)
            if len(self._mapped) >= self._max_mapped:
                self._mapped.pop(next(iter(self._mapped)))
            d = self._dirs[c]
            try:
                self._mapped[c] = (np.load(d / "index.npy"),
                                   np.load(d / "descriptors.npy", mmap_mode="r"),
                                   np.load(d / "positions.npy", mmap_mode="r"))
            except (OSError, ValueError) as e:
                raise StoreError(f"cannot read stored chunk {d} ({e}); run again: the store checks "
                                 "and re-extracts damaged chunks when it opens them") from e
        return self._mapped[c]

    def __len__(self) -> int:
        return self._n

    def counts(self) -> np.ndarray:
        """(N,) local features per image, from the chunks' indexes alone, each checked first
        like any read (a damaged count is never believed)."""
        out = np.zeros(self._n, np.int64)
        for c, d in enumerate(self._dirs):
            self._first_read(c)
            index = np.load(d / "index.npy")
            out[c * self._chunk_size:c * self._chunk_size + len(index)] = index[:, 1]
        return out

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

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(i)
        c, j = divmod(int(i), self._chunk_size)
        index, desc, pos = self._arrays(c)
        start, count, gh, gw = (int(v) for v in index[j])
        grid = (gh, gw) if gh >= 0 else None
        return LocalFeatures(desc[start:start + count], pos[start:start + count], grid)

    def __iter__(self) -> Iterator[LocalFeatures]:
        return (self[i] for i in range(len(self)))


#: extract_chunks(claims, commit): extract the images [spec.lo, spec.hi) of every chunk spec that
#: ``claims`` yields (lazily: each is locked when drawn) and call ``commit(spec, features)`` once a
#: chunk's features are complete (features/input_pipeline.py does this with worker processes)
ExtractChunks = Callable[[Iterator[ChunkSpec], Callable[[ChunkSpec, list[LocalFeatures]], None]], None]


class FeatureStore:
    """On-disk local features under ``root``.

    dtype:            float16 (half the disk) or float32, for new entries.
    chunk_size:       images per atomically written chunk, for new entries (an existing entry's
                      manifest decides its own).
    verify_checksums: check each chunk's CRC-32 the first time this process reads it.
    verify_images:    at opening, re-hash every image file against the content digests its chunk's
                      record holds (reads every image: catches an image edited with its size and
                      modification time kept); a chunk with a changed image is extracted again.
    """

    def __init__(self, root: str | Path, dtype: str = "float16", chunk_size: int = 64,
                 verify_checksums: bool = True, verify_images: bool = False):
        if dtype not in DTYPES:
            raise ParameterError("dtype", dtype, f"expected one of {DTYPES}", "FeatureStore")
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise ParameterError("chunk_size", chunk_size, "must be an integer >= 1", "FeatureStore")
        self.root = Path(root).expanduser()
        self.dtype = dtype
        self.chunk_size = chunk_size
        self.verify_checksums = verify_checksums
        self.verify_images = verify_images

    def entry(self, dataset: str, key: str) -> Path:
        """``root/dataset/key`` (``dataset``: see ``check_dataset_name``)."""
        check_dataset_name(dataset)
        return self.root / dataset / key

    # ------------------------------------------------------------------ opening
    def get(self, dataset: str, names: Sequence[str], identities: Sequence[str],
            stamps: Sequence[str], extractor_config: dict, extract_chunks: ExtractChunks, *,
            content_hash: Callable[[int], str] | None = None,
            adoptable: Callable[[int, int], bool] | None = None, shard: tuple[int, int] = (0, 1),
            progress: bool = True, what: str = "images") -> StoredFeatures:
        """The features of ``names``: checked, read from the store, missing chunks extracted first.

        identities: what determines each image's pixels (name, crop, rotation, render
                    parameters); with the extractor config and dtype they make the entry's key.
        stamps:     what shows that an image file changed (size, mtime); a chunk whose stamps
                    differ is re-extracted.
        extract_chunks(claims, commit): extracts the chunks it draws from ``claims`` (see
                    ``ExtractChunks``); called only when something must be extracted.
        content_hash(i): a digest of image i's file, recorded at extraction: a chunk whose stamps
                    changed but whose images' digests did not (a copied or re-downloaded dataset)
                    is kept and its stamps refreshed.
        adoptable(i, written_ns): whether a chunk written by an earlier version at ``written_ns``
                    may be kept for image i (False when today's decoder gives other pixels, or
                    the file was modified after the chunk was written).
        shard:      (index, count) of this process among processes sharing the extraction: where
                    it starts in the list of chunks (every process still completes every chunk).
        """
        n = len(names)
        if not (len(identities) == len(stamps) == n):
            raise ValueError("names, identities and stamps must have one entry per image")
        key = store_key(extractor_config, identities, self.dtype)
        entry = self.entry(dataset, key)
        try:
            entry.mkdir(parents=True, exist_ok=True)
            (entry / layout.LOCKS).mkdir(exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create the store entry {entry} ({e}); set store.root to a "
                             "writable folder") from e
        chunk_size = self._manifest(entry, dataset, n, extractor_config)
        specs = [ChunkSpec(c, lo, min(n, lo + chunk_size), tuple(names[lo:lo + chunk_size]),
                           tuple(stamps[lo:lo + chunk_size]))
                 for c, lo in enumerate(range(0, n, chunk_size))]
        writer = _Writer(self, dataset, entry, specs, extract_chunks, content_hash, adoptable,
                         progress, what)
        missing = [s for s in specs if not writer.usable(s)]
        if missing:
            writer.fill(missing, shard)
        else:
            log.info("%s: %d %s read from the feature store (%s), none missing", dataset, n, what,
                     entry)
        def check_checksums(c: int) -> None:
            if specs[c].index not in writer.verified:
                writer.ensure_intact(specs[c])

        return StoredFeatures([entry / layout.chunk_name(s.index) for s in specs], chunk_size, n,
                              check_checksums if self.verify_checksums else None, entry=entry)

    def _manifest(self, entry: Path, dataset: str, n: int, extractor_config: dict) -> int:
        """The entry's chunk size, from its manifest. An absent manifest is written now; an
        unreadable one is set aside with a warning and written again. Either way the chunk size
        comes from the chunks already stored (their records list their images), so no sound
        chunk is lost to a deleted or damaged manifest."""
        path = entry / layout.MANIFEST
        for _ in range(2):
            if not path.exists():
                chunk_size = _chunk_size_of_records(entry, n) or self.chunk_size
                _write_text(path, json.dumps(
                    {"format": FORMAT, "dataset": dataset, "n_images": n, "chunk_size": chunk_size,
                     "dtype": self.dtype, "extractor": extractor_config}, indent=1), exclusive=True)
            try:
                manifest = json.loads(path.read_text())
                chunk_size, n_images, dtype = (manifest["chunk_size"], manifest["n_images"],
                                               manifest["dtype"])
                break
            except (OSError, ValueError, KeyError, TypeError) as e:
                try:
                    target = layout.set_aside(entry, path)
                    log.warning("%s: the store manifest %s is unreadable (%s); moved to %s and "
                                "written again from the stored chunks", dataset, path, e, target)
                except FileNotFoundError:
                    pass        # another process set it aside first
        else:
            raise StoreError(f"the store manifest {path} cannot be written and read back; move the "
                             f"entry {entry} away (or delete it) and run again")
        if n_images != n or dtype != self.dtype or not isinstance(chunk_size, int) or chunk_size < 1:
            raise StoreError(f"the store manifest {path} describes {n_images} {dtype} images in "
                             f"chunks of {chunk_size}, but this entry's key is for {n} {self.dtype} "
                             f"images: the entry is damaged or was copied; move it away and run again")
        if chunk_size != self.chunk_size:
            log.info("%s: the stored entry %s uses chunks of %d images (its manifest decides; "
                     "store.chunk_size=%d applies to new entries)", dataset, entry, chunk_size,
                     self.chunk_size)
        return chunk_size


class _Writer:
    """Fills the missing chunks of one entry, sharing the work with other processes."""

    def __init__(self, store: FeatureStore, dataset: str, entry: Path, specs: list[ChunkSpec],
                 extract_chunks: ExtractChunks, content_hash, adoptable, progress: bool, what: str):
        self.store, self.dataset, self.entry, self.specs = store, dataset, entry, specs
        self.extract_chunks, self.content_hash, self.adoptable = extract_chunks, content_hash, adoptable
        self.progress, self.what = progress, what
        self.verified: set[int] = set()   # chunks whose checksums this process has checked
        self.extracted = 0                 # images this process extracted
        self.announced = False             # whether "extracting" was logged

    def path(self, spec: ChunkSpec) -> Path:
        return self.entry / layout.chunk_name(spec.index)

    def lock(self, spec: ChunkSpec):
        from filelock import FileLock
        return FileLock(layout.lock_path(self.entry, spec.index))

    # ------------------------------------------------------------------ checks
    def usable(self, spec: ChunkSpec, checksums: bool = False) -> bool:
        """Whether the chunk is present and passes the checks (without taking its lock)."""
        path = self.path(spec)
        if not path.is_dir():
            return False
        if not (path / RECORD).exists():
            return False  # an earlier version's chunk: adopted (or replaced) under its lock
        try:
            check_chunk(path, spec, self.store.dtype, checksums)
        except ChunkInvalid:
            return False
        if self.store.verify_images and self._changed_images(spec):
            return False
        if checksums:
            self.verified.add(spec.index)
        return True

    def _changed_images(self, spec: ChunkSpec) -> list[str]:
        """The chunk's images whose file content differs from the digest in its record (for
        ``verify_images``); rendered images and records without digests compare nothing."""
        if self.content_hash is None:
            return []
        try:
            recorded = json.loads((self.path(spec) / RECORD).read_text()).get("hashes") or []
        except (OSError, ValueError):
            return []
        if len(recorded) != len(spec.names):
            return []
        return [spec.names[p] for p in range(len(spec.names))
                if recorded[p] and self.content_hash(spec.lo + p) != recorded[p]]

    def ensure_intact(self, spec: ChunkSpec) -> None:
        """Check the chunk's checksums; a damaged chunk is set aside and re-extracted."""
        if self.usable(spec, checksums=True):
            return
        self.fill([spec], (0, 1), checksums=True)

    # ------------------------------------------------------------------ filling
    def fill(self, missing: list[ChunkSpec], shard: tuple[int, int], checksums: bool = False) -> None:
        """Make every chunk of ``missing`` whole, extracting those that no other process is
        writing; then wait for the others (and take over any whose writer died)."""
        index, count = shard
        start = (index * len(missing)) // max(count, 1)
        pending = missing[start:] + missing[:start]
        n_todo = sum(s.hi - s.lo for s in pending)
        log.info("%s: checking %d of %d chunks (missing or changed) in %s", self.dataset,
                 len(pending), len(self.specs), self.entry)
        bar = _progress(n_todo, f"extract {self.dataset}", self.progress)
        held: dict[int, object] = {}
        try:
            while pending:
                claims = self._claims(pending, held, bar, block=False, checksums=checksums)
                self.extract_chunks(claims, lambda spec, feats: self._commit(spec, feats, held, bar))
                if pending:  # every remaining chunk is being written by someone else: wait
                    log.info("%s: waiting for another process writing %s", self.dataset,
                             self.path(pending[0]))
                    claims = self._claims(pending, held, bar, block=True, first_only=True,
                                          checksums=checksums)
                    self.extract_chunks(claims, lambda spec, feats: self._commit(spec, feats, held, bar))
        finally:
            for lock in held.values():
                lock.release()
            bar.close()
        if self.extracted < n_todo:
            log.info("%s: %d %s extracted, the other %d kept", self.dataset, self.extracted,
                     self.what, n_todo - self.extracted)

    def _claims(self, pending: list[ChunkSpec], held: dict, bar, block: bool,
                first_only: bool = False, checksums: bool = False) -> Iterator[ChunkSpec]:
        """Lock the chunks of ``pending`` one by one (lazily: as the extraction asks for more),
        yielding those that need extraction; chunks locked by another process are skipped
        (``block=False``) or waited for. Claimed and finished chunks leave ``pending``."""
        from filelock import Timeout
        for spec in list(pending)[:1] if first_only else list(pending):
            lock = self.lock(spec)
            try:
                lock.acquire(timeout=-1 if block else 0)
            except Timeout:
                continue  # another process is writing it; come back later
            pending.remove(spec)
            held[spec.index] = lock
            if self._keep_or_clear(spec, checksums):
                bar.update(spec.hi - spec.lo)
                held.pop(spec.index).release()
                continue
            if not self.announced:
                self.announced = True
                log.info("%s: extracting up to %d %s into %s", self.dataset,
                         sum(s.hi - s.lo for s in pending) + spec.hi - spec.lo, self.what, self.entry)
            yield spec

    def _commit(self, spec: ChunkSpec, feats: list[LocalFeatures], held: dict, bar) -> None:
        if len(feats) != spec.hi - spec.lo:
            raise RuntimeError(f"{len(feats)} features for the {spec.hi - spec.lo} images of a chunk")
        with np.errstate(over="ignore"):   # as stored: float16 overflows past 65504, refused here
            bad = [name for name, f in zip(spec.names, feats)
                   if f.n and not np.isfinite(np.asarray(f.descriptors).astype(self.store.dtype)).all()]
        if bad:
            raise ImageLoadError(
                f"{self.dataset}: the extractor gave non-finite (NaN or Inf) local features for "
                f"{len(bad)} image(s) of {self.path(spec).name}: {', '.join(bad[:10])}; nothing of "
                "that chunk was stored (the chunks before it are kept). Check those images and the "
                "extractor (precision=fp16 can overflow; random weights can diverge)")
        self._write(spec, feats)
        self.extracted += spec.hi - spec.lo
        self.verified.add(spec.index)
        bar.update(spec.hi - spec.lo)
        held.pop(spec.index).release()

    def _keep_or_clear(self, spec: ChunkSpec, checksums: bool = False) -> bool:
        """Under the chunk's lock: True when it is whole (checked, possibly with refreshed stamps,
        or adopted from an earlier version); otherwise the folder is cleared (set aside) for
        extraction. Checksums only with ``checksums`` (else left to the first read)."""
        path = self.path(spec)
        for debris in layout.temporary_dirs(self.entry, spec.index):
            if _is_stale_debris(debris):
                shutil.rmtree(debris, ignore_errors=True)
        if not path.is_dir():
            return False
        try:
            if (path / RECORD).exists():
                try:
                    check_chunk(path, spec, self.store.dtype, checksums)
                    changed = self._changed_images(spec) if self.store.verify_images else []
                    if changed:
                        raise ChunkInvalid(f"image file(s) {', '.join(changed[:5])} changed content "
                                           "with the same size and modification time")
                    log.info("%s: %s was completed by another process", self.dataset, path)
                except StaleStamps as e:
                    self._refresh_stamps(path, spec, e)
                if checksums:
                    self.verified.add(spec.index)
            else:
                self._adopt(path, spec)
                self.verified.add(spec.index)
            return True
        except ChunkInvalid as e:
            self._set_aside(path, str(e))
            return False

    def _refresh_stamps(self, path: Path, spec: ChunkSpec, stale: StaleStamps) -> None:
        """Keep a chunk whose images only look changed (same content digests: a copied,
        re-downloaded or touched dataset) by writing today's stamps into its record."""
        recorded = stale.record.get("hashes") or []
        if self.content_hash is None or len(recorded) != len(spec.names):
            raise stale
        for p in stale.positions:
            if not recorded[p] or self.content_hash(spec.lo + p) != recorded[p]:
                raise stale
        record = dict(stale.record, stamps=list(spec.stamps))
        _write_text(path / RECORD, json.dumps(record))
        log.info("%s: %s: %d image file(s) have new stamps but the same content; kept", self.dataset,
                 path, len(stale.positions))

    def _adopt(self, path: Path, spec: ChunkSpec) -> None:
        """Keep a chunk written by an earlier version after checking it; give it a record."""
        try:
            names = json.loads((path / "names.json").read_text())
            index = np.load(path / "index.npy")
            desc = np.load(path / "descriptors.npy", mmap_mode="r")
            pos = np.load(path / "positions.npy", mmap_mode="r")
        except (OSError, ValueError) as e:
            raise ChunkInvalid(f"an earlier version's chunk that cannot be read ({e})") from None
        n = spec.hi - spec.lo
        if tuple(names) != spec.names:
            raise ChunkInvalid("an earlier version's chunk holding other images")
        if index.shape != (n, 4) or desc.dtype != np.dtype(self.store.dtype):
            raise ChunkInvalid("an earlier version's chunk with another layout")
        total = int(index[:, 1].sum()) if n else 0
        if len(desc) != total or len(pos) != total or (n and int(index[-1, 0] + index[-1, 1]) != total):
            raise ChunkInvalid("an earlier version's chunk whose arrays and index disagree")
        if self.adoptable is not None:
            written_ns = (path / "descriptors.npy").stat().st_mtime_ns
            changed = [spec.names[i - spec.lo] for i in range(spec.lo, spec.hi)
                       if not self.adoptable(i, written_ns)]
            if changed:
                raise ChunkInvalid("an earlier version's chunk of images that were modified since, "
                                   "or that today's decoder reads differently (EXIF orientation, "
                                   f"16-bit): {', '.join(changed[:5])}")
        write_record(path, spec, self._hashes(spec))
        log.info("%s: kept %s, written by an earlier version, after checking it", self.dataset, path)

    def _hashes(self, spec: ChunkSpec) -> list[str]:
        if self.content_hash is None:
            return []
        return [self.content_hash(i) for i in range(spec.lo, spec.hi)]

    def _set_aside(self, path: Path, reason: str) -> None:
        target = layout.set_aside(self.entry, path)
        log.warning("%s: stored chunk %s is not usable (%s); moved to %s and extracted again",
                    self.dataset, path, reason, target)

    def _write(self, spec: ChunkSpec, feats: list[LocalFeatures]) -> None:
        """Write into a private temporary folder, then rename it into place (atomic)."""
        final = self.path(spec)
        tmp = final.with_name(f"{final.name}{layout.TMP_MARK}-{socket.gethostname()}-{os.getpid()}-"
                              f"{uuid.uuid4().hex[:8]}")
        try:
            tmp.mkdir()
            hashes = self._hashes(spec)
            counts = [f.n for f in feats]
            starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
            grids = [f.grid if f.grid is not None else (-1, -1) for f in feats]
            index = np.column_stack([starts, counts, [g[0] for g in grids], [g[1] for g in grids]])
            d = feats[0].dim if feats else 0
            desc = np.concatenate([f.descriptors for f in feats]) if feats else np.zeros((0, d))
            pos = np.concatenate([f.positions for f in feats]) if feats else np.zeros((0, 2))
            np.save(tmp / "descriptors.npy", desc.astype(self.store.dtype))
            np.save(tmp / "positions.npy", pos.astype(np.float32))
            np.save(tmp / "index.npy", index.astype(np.int64).reshape(-1, 4))
            write_record(tmp, spec, hashes)  # written last: marks the chunk complete
            _fsync_dir(tmp)
        except OSError as e:
            shutil.rmtree(tmp, ignore_errors=True)
            raise _write_error(e, final, self.entry) from e
        except BaseException:                # StoreError from the record, a kill: nothing left
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        try:
            os.rename(tmp, final)
            _fsync(self.entry)
        except OSError as e:
            shutil.rmtree(tmp, ignore_errors=True)
            if e.errno in (errno.EEXIST, errno.ENOTEMPTY) and final.is_dir():
                log.info("%s: %s was completed by another process; keeping theirs", self.dataset, final)
                return
            raise _write_error(e, final, self.entry) from e


def _chunk_size_of_records(entry: Path, n: int) -> int | None:
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


def check_dataset_name(dataset: str) -> None:
    """A dataset name must be a plain folder name, so that no entry lies outside the store or
    below another one (where ``deepagg-store`` would never see it), nor in ``_fitted``."""
    if (not dataset or dataset in (".", "..") or "/" in dataset or "\\" in dataset
            or "\0" in dataset or dataset.startswith("_")):
        raise ConfigError(f"dataset.name={dataset!r}: a dataset name must be a plain folder name "
                          "(no '/', no '..', not starting with '_'), as it names the dataset's "
                          "folder in the feature store")


def _write_error(e: OSError, what: Path, entry: Path) -> StoreError:
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


def _write_text(path: Path, text: str, exclusive: bool = False) -> None:
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
        raise _write_error(e, path, path.parent) from e
    finally:
        if tmp.exists():
            tmp.unlink()


def _fsync_dir(path: Path) -> None:
    """fsync every file of a folder, then the folder itself."""
    for f in path.iterdir():
        _fsync(f)
    _fsync(path)


def _fsync(path: Path) -> None:
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


#: a writer on another host whose temporary chunk is older than this is taken as dead
FOREIGN_DEBRIS_SECONDS = 24 * 3600


def _is_stale_debris(tmp: Path) -> bool:
    """Whether a temporary chunk folder (``chunk_N.tmp-HOST-PID-RAND``) was left by a writer that
    is gone: on this host, its process no longer exists; on another host (shared filesystems,
    where a lock may be local to a node), it is older than FOREIGN_DEBRIS_SECONDS. Live work is
    never deleted even where locks do not reach across machines."""
    parts = tmp.name.split(f"{layout.TMP_MARK}-", 1)[-1].rsplit("-", 2)
    if len(parts) == 3 and parts[0] == socket.gethostname() and parts[1].isdigit():
        pid = int(parts[1])
        if pid == os.getpid():
            return True
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False
    try:
        return time.time() - tmp.stat().st_mtime > FOREIGN_DEBRIS_SECONDS
    except FileNotFoundError:
        return False


def _progress(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, unit="img", disable=not enabled, leave=False)
