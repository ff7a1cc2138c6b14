"""The feature store: each (image list, extractor config) is extracted once, kept on disk,
checked, and memory-mapped on read. Any number of processes (launcher jobs, machines on a shared
filesystem) may fill and read one entry at the same time.

Layout of an entry, ``root/<dataset>/<key>/`` (names: ``layout``):

- ``manifest.json``: the entry's layout (``kind``, ``n_images``, ``chunk_size``, ``dtype``, the
  extractor config). The first writer creates it; afterwards it is the authority on the layout:
  a run asking for another ``store.chunk_size`` uses the manifest's.
- ``chunk_00000/`` ...: the arrays of the entry's kind (``records``: local features, or one
  descriptor per image) and ``record.json``: the image names, each image's stamp (file size and
  modification time, so a replaced file is noticed) and content digest (so a merely copied one
  is not), and every array's size, shape, dtype and CRC-32. The record is written last into a
  private temporary folder that is then renamed into place, so a chunk is either whole or
  absent, whatever is killed when (``writer``).
- ``locks/chunk_00000.lock``: one lock per chunk (the lock protocol: ``writer``).
- ``set_aside/``: chunks that failed a check (truncated, overwritten, foreign, stale, of an
  earlier store format), moved away with a warning naming them, then produced again.

Checks: sizes, shapes, dtype, names and image stamps of every chunk when an entry is opened (cheap);
each chunk's CRC-32 the first time a process reads it (``verify_checksums``; about 2.8 GB/s here,
measured, against a disk read that is slower; ``reader``); everything with ``deepagg-store verify``.

Modules: ``layout`` (on-disk names, entries), ``files`` (atomic writes, CRC-32), ``records``
(chunk kinds, record.json, the checks), ``writer`` (the lock protocol, the ChunkSource protocol
a filler implements), ``reader`` (memory-mapped reads), ``feature_store`` (keys, manifests,
``FeatureStore.get``).
"""
from features.store.feature_store import DTYPES, KINDS, FeatureStore, check_dataset_name, store_key
from features.store.files import file_crc32
from features.store.reader import StoredDescriptors, StoredFeatures
from features.store.records import (DESCRIPTORS, FORMAT, LOCAL, ChunkInvalid, ChunkSpec,
                                    DescriptorRows, check_chunk)
from features.store.writer import ChunkSource

__all__ = ["DESCRIPTORS", "DTYPES", "FORMAT", "KINDS", "LOCAL", "ChunkInvalid", "ChunkSource",
           "ChunkSpec", "DescriptorRows", "FeatureStore", "StoredDescriptors", "StoredFeatures",
           "check_chunk", "check_dataset_name", "file_crc32", "store_key"]
