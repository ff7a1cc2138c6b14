"""The store's front: entries keyed by what identifies their content, opened (checked, missing
chunks produced first) by ``FeatureStore.get``."""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Sequence

from benchmarks.constraints import Integer, OneOf, check_values
from benchmarks.errors import ConfigError, StoreError
from features.store import layout
from features.store.files import write_text
from features.store.reader import StoredDescriptors, StoredFeatures
from features.store.records import DESCRIPTORS, FORMAT, LOCAL, ChunkSpec, chunk_size_of_records
from features.store.writer import ChunkSource, Writer

log = logging.getLogger(__name__)
DTYPES = ("float16", "float32")
KINDS = (LOCAL, DESCRIPTORS)


def store_key(identity: dict, identities: Sequence[str], dtype: str, kind: str = LOCAL) -> str:
    """16 hex digits over what identifies the content (an extractor config), the images (and
    crops), the storage dtype and the chunk kind (``local`` entries keep the keys they had
    before kinds existed)."""
    h = hashlib.sha1(json.dumps(identity, sort_keys=True).encode())
    h.update(dtype.encode())
    if kind != LOCAL:
        h.update(b"\0kind=" + kind.encode())
    for s in identities:
        h.update(b"\0" + s.encode())
    return h.hexdigest()[:16]


def check_dataset_name(dataset: str) -> None:
    """A dataset name must be a plain folder name, so that no entry lies outside the store or
    below another one (where ``deepagg-store`` would never see it), nor in ``_fitted``."""
    if (not dataset or dataset in (".", "..") or "/" in dataset or "\\" in dataset
            or "\0" in dataset or dataset.startswith("_")):
        raise ConfigError(f"dataset.name={dataset!r}: a dataset name must be a plain folder name "
                          "(no '/', no '..', not starting with '_'), as it names the dataset's "
                          "folder in the feature store")


class FeatureStore:
    """Features on disk under ``root``.

    dtype:            float16 (half the disk) or float32, for new entries.
    chunk_size:       images per atomically written chunk, for new entries (an existing entry's
                      manifest decides its own).
    verify_checksums: check each chunk's CRC-32 the first time this process reads it.
    verify_images:    at opening, re-hash every image file against the content digests its chunk's
                      record holds (reads every image: catches an image edited with its size and
                      modification time kept); a chunk with a changed image is produced again.
    """

    def __init__(self, root: str | Path, dtype: str = "float16", chunk_size: int = 64,
                 verify_checksums: bool = True, verify_images: bool = False):
        check_values({"dtype": dtype, "chunk_size": chunk_size},
                     {"dtype": OneOf(DTYPES), "chunk_size": Integer()}, "FeatureStore")
        self.root = Path(root).expanduser()
        self.dtype = dtype
        self.chunk_size = chunk_size
        self.verify_checksums = verify_checksums
        self.verify_images = verify_images

    def entry(self, dataset: str, key: str) -> Path:
        """``root/dataset/key`` (``dataset``: see ``check_dataset_name``)."""
        check_dataset_name(dataset)
        return self.root / dataset / key

    def get(self, dataset: str, source: ChunkSource, identity: dict, *, kind: str = LOCAL,
            shard: tuple[int, int] = (0, 1), progress: bool = True, what: str = "images"
            ) -> StoredFeatures | StoredDescriptors:
        """The entry of ``source``'s images under ``identity``: checked, read from the store,
        missing chunks produced by ``source`` first (StoredFeatures for ``kind=local``,
        StoredDescriptors for ``descriptors``).

        shard: (index, count) of this process among processes sharing the extraction: where it
               starts in the list of chunks (every process still completes every chunk).
        """
        if kind not in KINDS:
            raise ValueError(f"kind={kind!r}: expected one of {KINDS}")
        names, stamps = list(source.names), list(source.stamps)
        n = len(names)
        if not (len(source.identities) == len(stamps) == n):
            raise ValueError("names, identities and stamps must have one entry per image")
        entry = self.entry(dataset, store_key(identity, source.identities, self.dtype, kind))
        try:
            entry.mkdir(parents=True, exist_ok=True)
            (entry / layout.LOCKS).mkdir(exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create the store entry {entry} ({e}); set store.root to a "
                             "writable folder") from e
        chunk_size = self._manifest(entry, dataset, n, identity, kind)
        specs = [ChunkSpec(c, lo, min(n, lo + chunk_size), tuple(names[lo:lo + chunk_size]),
                           tuple(stamps[lo:lo + chunk_size]))
                 for c, lo in enumerate(range(0, n, chunk_size))]
        writer = Writer(dataset, entry, specs, source, kind, self.dtype, self.verify_images,
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

        reader = StoredFeatures if kind == LOCAL else StoredDescriptors
        return reader([entry / layout.chunk_name(s.index) for s in specs], chunk_size, n,
                      check_checksums if self.verify_checksums else None, entry=entry)

    def _manifest(self, entry: Path, dataset: str, n: int, identity: dict, kind: str) -> int:
        """The entry's chunk size, from its manifest. An absent manifest is written now; an
        unreadable one is set aside with a warning and written again. Either way the chunk size
        comes from the chunks already stored (their records list their images), so no sound
        chunk is lost to a deleted or damaged manifest."""
        path = entry / layout.MANIFEST
        for _ in range(2):
            if not path.exists():
                chunk_size = chunk_size_of_records(entry, n) or self.chunk_size
                write_text(path, json.dumps(
                    {"format": FORMAT, "kind": kind, "dataset": dataset, "n_images": n,
                     "chunk_size": chunk_size, "dtype": self.dtype, "extractor": identity},
                    indent=1), exclusive=True)
            try:
                manifest = json.loads(path.read_text())
                chunk_size, n_images, dtype = (manifest["chunk_size"], manifest["n_images"],
                                               manifest["dtype"])
                stored_kind = manifest.get("kind", LOCAL)
                break
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
                try:
                    target = layout.set_aside(entry, path)
                    log.warning("%s: the store manifest %s is unreadable (%s); moved to %s and "
                                "written again from the stored chunks", dataset, path, e, target)
                except FileNotFoundError:
                    pass        # another process set it aside first
        else:
            raise StoreError(f"the store manifest {path} cannot be written and read back; move the "
                             f"entry {entry} away (or delete it) and run again")
        if (n_images != n or dtype != self.dtype or stored_kind != kind
                or not isinstance(chunk_size, int) or chunk_size < 1):
            raise StoreError(f"the store manifest {path} describes {n_images} {dtype} images "
                             f"({stored_kind}) in chunks of {chunk_size}, but this entry's key is for "
                             f"{n} {self.dtype} images ({kind}): the entry is damaged or was copied; "
                             "move it away and run again")
        if chunk_size != self.chunk_size:
            log.info("%s: the stored entry %s uses chunks of %d images (its manifest decides; "
                     "store.chunk_size=%d applies to new entries)", dataset, entry, chunk_size,
                     self.chunk_size)
        return chunk_size
