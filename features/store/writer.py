"""Filling a store entry, shared with any number of other processes: the lock protocol.

A writer takes a chunk's lock (``filelock``'s flock locks, which the kernel releases when a
process dies; Linux emulates them with fcntl locks over NFS), checks again that the chunk is
still missing, produces and commits it; chunks locked by others are skipped and waited for at
the end, so N processes share one extraction and each chunk is produced once. A chunk is written
into a private temporary folder, its record last, then renamed into place: it is whole or absent,
whatever is killed when. Chunks that fail a check are set aside (moved, never deleted) with a
warning; only debris of writers that are gone is deleted (``is_stale_debris``).
"""
from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import socket
import time
import uuid
from pathlib import Path
from typing import Iterator, Protocol, Sequence

import numpy as np

from benchmarks.errors import ImageLoadError
from features.local_features import LocalFeatures
from features.store import layout
from features.store.files import fsync, fsync_dir, write_error, write_text
from features.store.layout import RECORD
from features.store.records import (LOCAL, ChunkInvalid, ChunkSpec, DescriptorRows, StaleStamps,
                                    check_chunk, write_record)

log = logging.getLogger(__name__)


class ChunkSource(Protocol):
    """What a store entry is filled from: its N images and a producer of chunks of them
    (features.source.ImageChunks extracts local features; an app may encode them on the way).

    names:      (N,) image names, kept in each chunk's record.
    identities: (N,) what determines each image's pixels (name, crop, rotation, render
                settings); with the extractor config, dtype and kind they make the entry's key.
    stamps:     (N,) what shows that an image file changed (size, mtime); a chunk whose stamps
                differ is produced again, unless its images' content digests are unchanged.
    """

    names: Sequence[str]
    identities: Sequence[str]
    stamps: Sequence[str]

    def content_hash(self, i: int) -> str:
        """A digest of image i's file, kept in the record ("" where there is no file)."""

    def produce(self, claims: Iterator[ChunkSpec]) -> Iterator[tuple[ChunkSpec, object]]:
        """(chunk, payload) for every chunk drawn from ``claims``, in any order, each once its
        payload is complete: list[LocalFeatures] (one per image) for a ``local`` entry,
        DescriptorRows for a ``descriptors`` one. Chunks are locked as they are drawn: draw
        lazily, and only what is worked on."""


class Writer:
    """Fills the missing chunks of one entry of ``kind`` from ``source``; the chunks are stored
    in ``dtype``; ``verify_images``: re-hash the images of every stored chunk (FeatureStore)."""

    def __init__(self, dataset: str, entry: Path, specs: list[ChunkSpec], source: ChunkSource,
                 kind: str, dtype: str, verify_images: bool, progress: bool, what: str):
        self.dataset, self.entry, self.specs, self.source = dataset, entry, specs, source
        self.kind, self.dtype, self.verify_images = kind, dtype, verify_images
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
        try:
            check_chunk(path, spec, self.dtype, self.kind, checksums)
        except ChunkInvalid:
            return False
        if self.verify_images and self._changed_images(spec):
            return False
        if checksums:
            self.verified.add(spec.index)
        return True

    def _changed_images(self, spec: ChunkSpec) -> list[str]:
        """The chunk's images whose file content differs from the digest in its record (for
        ``verify_images``); rendered images and records without digests compare nothing."""
        try:
            recorded = json.loads((self.path(spec) / RECORD).read_text()).get("hashes") or []
        except (OSError, ValueError):
            return []
        if len(recorded) != len(spec.names):
            return []
        return [spec.names[p] for p in range(len(spec.names))
                if recorded[p] and self.source.content_hash(spec.lo + p) != recorded[p]]

    def ensure_intact(self, spec: ChunkSpec) -> None:
        """Check the chunk's checksums; a damaged chunk is set aside and produced again."""
        if self.usable(spec, checksums=True):
            return
        self.fill([spec], (0, 1), checksums=True)

    # ------------------------------------------------------------------ filling
    def fill(self, missing: list[ChunkSpec], shard: tuple[int, int], checksums: bool = False) -> None:
        """Make every chunk of ``missing`` whole, producing those that no other process is
        writing; then wait for the others (and take over any whose writer died). Each pass ends
        the source's stream before waiting, so no process waits while holding an unfinished
        chunk that another waits for."""
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
                self._produce(self._claims(pending, held, bar, block=False, checksums=checksums),
                              held, bar)
                if pending:  # every remaining chunk is being written by someone else: wait
                    first = pending[0]
                    log.info("%s: waiting for another process writing %s", self.dataset,
                             self.path(first))
                    self._produce(self._claims(pending, held, bar, block=True, first_only=True,
                                               checksums=checksums), held, bar)
                    if first in pending:
                        raise RuntimeError(f"{type(self.source).__name__}.produce did not draw "
                                           f"chunk {first.index} from its claims")
        finally:
            for lock in held.values():
                lock.release()
            bar.close()
        if self.extracted < n_todo:
            log.info("%s: %d %s extracted, the other %d kept", self.dataset, self.extracted,
                     self.what, n_todo - self.extracted)

    def _produce(self, claims: Iterator[ChunkSpec], held: dict, bar) -> None:
        """Commit every chunk the source produces; a chunk it drew but never gave back is an
        error of the source (its lock is released by ``fill``)."""
        for spec, payload in self.source.produce(claims):
            if spec.index not in held:
                raise RuntimeError(f"{type(self.source).__name__}.produce gave chunk {spec.index}, "
                                   "which it did not draw from its claims (or gave it twice)")
            self._commit(spec, payload, held, bar)
        if held:
            raise RuntimeError(f"{type(self.source).__name__}.produce drew chunk(s) "
                               f"{sorted(held)} from its claims but never gave them back")

    def _claims(self, pending: list[ChunkSpec], held: dict, bar, block: bool,
                first_only: bool = False, checksums: bool = False) -> Iterator[ChunkSpec]:
        """Lock the chunks of ``pending`` one by one (lazily: as the source asks for more),
        yielding those that need producing; chunks locked by another process are skipped
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

    def _commit(self, spec: ChunkSpec, payload, held: dict, bar) -> None:
        arrays = self._arrays(spec, payload)
        self._write(spec, arrays)
        self.extracted += spec.hi - spec.lo
        self.verified.add(spec.index)
        bar.update(spec.hi - spec.lo)
        held.pop(spec.index).release()

    def _arrays(self, spec: ChunkSpec, payload) -> dict[str, np.ndarray]:
        """The files of a chunk from what the source produced (list[LocalFeatures] for ``local``,
        DescriptorRows for ``descriptors``), in the storage dtype; non-finite values, as stored
        (float16 overflows past 65504), are refused naming the images."""
        n = spec.hi - spec.lo
        if self.kind == LOCAL:
            if not (isinstance(payload, list) and all(isinstance(f, LocalFeatures) for f in payload)):
                raise TypeError(f"a local-features entry stores a list of LocalFeatures per chunk, "
                                f"got {type(payload).__name__}")
            return self._local_arrays(spec, payload, n)
        if not (isinstance(payload, tuple) and len(payload) == 2):
            raise TypeError("a descriptors entry stores DescriptorRows(descriptors (n, D), empty "
                            f"(n,) bool) per chunk, got {type(payload).__name__}")
        rows = DescriptorRows(np.asarray(payload[0]), np.asarray(payload[1]))
        if rows.descriptors.ndim != 2 or len(rows.descriptors) != n or rows.empty.shape != (n,):
            raise TypeError(f"DescriptorRows of a chunk of {n} images must be ({n}, D) and ({n},); "
                            f"got {rows.descriptors.shape} and {rows.empty.shape}")
        with np.errstate(over="ignore"):
            desc = np.asarray(rows.descriptors).astype(self.dtype)
        self._refuse_non_finite(spec, [name for name, ok in zip(spec.names, np.isfinite(desc).all(axis=1))
                                       if not ok], "descriptors")
        return {"descriptors.npy": desc, "empty.npy": np.asarray(rows.empty, bool)}

    def _local_arrays(self, spec: ChunkSpec, feats: list[LocalFeatures], n: int) -> dict[str, np.ndarray]:
        if len(feats) != n:
            raise RuntimeError(f"{len(feats)} features for the {n} images of a chunk")
        with np.errstate(over="ignore"):
            bad = [name for name, f in zip(spec.names, feats)
                   if (f.n and not np.isfinite(np.asarray(f.descriptors).astype(self.dtype)).all())
                   or (f.cls_token is not None
                       and not np.isfinite(np.asarray(f.cls_token).astype(self.dtype)).all())]
        self._refuse_non_finite(spec, bad, "local features")
        counts = [f.n for f in feats]
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        grids = [f.grid if f.grid is not None else (-1, -1) for f in feats]
        index = np.column_stack([starts, counts, [g[0] for g in grids], [g[1] for g in grids]])
        d = feats[0].dim if feats else 0
        desc = np.concatenate([f.descriptors for f in feats]) if feats else np.zeros((0, d))
        pos = np.concatenate([f.positions for f in feats]) if feats else np.zeros((0, 2))
        arrays = {"descriptors.npy": desc.astype(self.dtype), "positions.npy": pos.astype(np.float32),
                  "index.npy": index.astype(np.int64).reshape(-1, 4)}
        tokens = [f.cls_token for f in feats]
        if any(t is not None for t in tokens):
            if any(t is None for t in tokens):
                raise RuntimeError("an extractor gave class tokens for some images of a chunk only")
            arrays["cls_token.npy"] = np.stack(tokens).astype(self.dtype)
        return arrays

    def _refuse_non_finite(self, spec: ChunkSpec, bad: list[str], what: str) -> None:
        if bad:
            raise ImageLoadError(
                f"{self.dataset}: the extractor gave non-finite (NaN or Inf) {what} for {len(bad)} "
                f"image(s) of {self.path(spec).name}: {', '.join(bad[:10])}; nothing of that chunk "
                "was stored (the chunks before it are kept). Check those images and the extractor "
                "(precision=fp16 can overflow; random weights can diverge)")

    def _keep_or_clear(self, spec: ChunkSpec, checksums: bool = False) -> bool:
        """Under the chunk's lock: True when it is whole (checked, possibly with refreshed
        stamps); otherwise the folder is cleared (set aside) for producing. Checksums only with
        ``checksums`` (else left to the first read)."""
        path = self.path(spec)
        for debris in layout.temporary_dirs(self.entry, spec.index):
            if is_stale_debris(debris):
                shutil.rmtree(debris, ignore_errors=True)
        if not path.is_dir():
            return False
        try:
            try:
                check_chunk(path, spec, self.dtype, self.kind, checksums)
                changed = self._changed_images(spec) if self.verify_images else []
                if changed:
                    raise ChunkInvalid(f"image file(s) {', '.join(changed[:5])} changed content "
                                       "with the same size and modification time")
                log.info("%s: %s was completed by another process", self.dataset, path)
            except StaleStamps as e:
                self._refresh_stamps(path, spec, e)
            if checksums:
                self.verified.add(spec.index)
            return True
        except ChunkInvalid as e:
            target = layout.set_aside(self.entry, path)
            log.warning("%s: stored chunk %s is not usable (%s); moved to %s and extracted again",
                        self.dataset, path, e, target)
            return False

    def _refresh_stamps(self, path: Path, spec: ChunkSpec, stale: StaleStamps) -> None:
        """Keep a chunk whose images only look changed (same content digests: a copied,
        re-downloaded or touched dataset) by writing today's stamps into its record."""
        recorded = stale.record.get("hashes") or []
        if len(recorded) != len(spec.names):
            raise stale
        for p in stale.positions:
            if not recorded[p] or self.source.content_hash(spec.lo + p) != recorded[p]:
                raise stale
        record = dict(stale.record, stamps=list(spec.stamps))
        write_text(path / RECORD, json.dumps(record))
        log.info("%s: %s: %d image file(s) have new stamps but the same content; kept", self.dataset,
                 path, len(stale.positions))

    def _write(self, spec: ChunkSpec, arrays: dict[str, np.ndarray]) -> None:
        """Write into a private temporary folder, then rename it into place (atomic)."""
        final = self.path(spec)
        tmp = final.with_name(f"{final.name}{layout.TMP_MARK}-{socket.gethostname()}-{os.getpid()}-"
                              f"{uuid.uuid4().hex[:8]}")
        try:
            tmp.mkdir()
            hashes = [self.source.content_hash(i) for i in range(spec.lo, spec.hi)]
            for name, array in arrays.items():
                np.save(tmp / name, array)
            write_record(tmp, spec, self.kind, hashes)  # written last: marks the chunk complete
            fsync_dir(tmp)
        except OSError as e:
            shutil.rmtree(tmp, ignore_errors=True)
            raise write_error(e, final, self.entry) from e
        except BaseException:                # StoreError from the record, a kill: nothing left
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        try:
            os.rename(tmp, final)
            fsync(self.entry)
        except OSError as e:
            shutil.rmtree(tmp, ignore_errors=True)
            if e.errno in (errno.EEXIST, errno.ENOTEMPTY) and final.is_dir():
                log.info("%s: %s was completed by another process; keeping theirs", self.dataset, final)
                return
            raise write_error(e, final, self.entry) from e


#: a writer on another host whose temporary chunk is older than this is taken as dead
FOREIGN_DEBRIS_SECONDS = 24 * 3600


def is_stale_debris(tmp: Path) -> bool:
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
