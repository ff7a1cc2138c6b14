"""The feature store: extract once, memory-map, survive kills, check itself, share safely."""
import json
import logging
import multiprocessing as mp
import shutil
import time

import numpy as np
import pytest

from benchmarks.errors import ConfigError, ImageLoadError, ParameterError, StoreError
from features import LocalFeatures
from features.store import DescriptorRows, FeatureStore, file_crc32
from chunk_sources import ListedImages


class FakeExtract:
    """A chunk producer: image i -> a (3, 2, 2) map filled with values[i]; records chunk indices."""

    def __init__(self, values, fail_at=None, delay=0.0, log=None):
        self.values, self.fail_at, self.delay, self.log = values, fail_at, delay, log
        self.chunks = []

    def __call__(self, spec):
        feats = []
        for i in range(spec.lo, spec.hi):
            if i == self.fail_at:
                raise KeyboardInterrupt("simulated kill")
            feats.append(LocalFeatures.from_map(np.full((3, 2, 2), self.values[i], np.float32)))
        time.sleep(self.delay)
        self.chunks.append(spec.index)
        if self.log is not None:
            with open(self.log, "a") as f:
                f.write(f"{spec.index}\n")
        return feats


N = 5
NAMES = [f"im{i}" for i in range(N)]


def get(store, ex, stamps=None, names=NAMES, content=None, dataset="toy"):
    stamps = stamps or ["s"] * len(names)
    return store.get(dataset, ListedImages(names, ex, stamps, content), {"fake": 1}, progress=False)


def values(feats):
    return [float(np.asarray(f.descriptors)[0, 0]) for f in feats]


def entry_of(root):
    return next((root / "toy").iterdir())


def test_extract_once_then_read_memory_mapped(tmp_path):
    store = FeatureStore(tmp_path, "float32", chunk_size=2)
    ex = FakeExtract(range(N))
    feats = get(store, ex)
    assert ex.chunks == [0, 1, 2] and len(feats) == N and values(feats) == [0, 1, 2, 3, 4]
    ex2 = FakeExtract(range(N))
    again = get(store, ex2)
    assert ex2.chunks == []                                   # nothing extracted the second time
    assert isinstance(again[3].descriptors, np.memmap) and again[3].grid == (2, 2)
    assert values(again) == [0, 1, 2, 3, 4] and again[-1].n == 4


def test_a_kill_leaves_whole_chunks_and_the_next_run_resumes_bitwise(tmp_path):
    store = FeatureStore(tmp_path, "float16", chunk_size=2)
    with pytest.raises(KeyboardInterrupt):
        get(store, FakeExtract(range(N), fail_at=3))           # dies inside chunk 1
    entry = entry_of(tmp_path)
    assert sorted(p.name for p in entry.glob("chunk_*")) == ["chunk_00000"]   # no half chunk
    import os
    import socket
    import subprocess
    dead = subprocess.Popen(["true"])
    dead.wait()                                               # a pid that no longer runs
    here = socket.gethostname()
    (entry / f"chunk_00002.tmp-{here}-{dead.pid}-abc").mkdir()     # killed writer on this host
    (entry / "chunk_00001.tmp-otherhost-123-abc").mkdir()          # maybe alive on another node
    old = entry / "chunk_00001.tmp-otherhost-456-def"
    old.mkdir()
    os.utime(old, (time.time() - 3 * 86400,) * 2)                  # days old: its writer is gone
    ex = FakeExtract(range(N))
    feats = get(store, ex)
    assert ex.chunks == [1, 2]
    assert [p.name for p in entry.glob("*.tmp*")] == ["chunk_00001.tmp-otherhost-123-abc"]
    fresh = get(FeatureStore(tmp_path / "fresh", "float16", chunk_size=2), FakeExtract(range(N)))
    for a, b in zip(feats, fresh):
        np.testing.assert_array_equal(a.descriptors, b.descriptors)


def test_the_manifest_decides_the_chunk_size(tmp_path, caplog):
    get(FeatureStore(tmp_path, "float32", chunk_size=2), FakeExtract(range(N)))
    ex = FakeExtract(range(N))
    with caplog.at_level(logging.INFO):
        feats = get(FeatureStore(tmp_path, "float32", chunk_size=3), ex)
    assert ex.chunks == [] and len(feats) == N and values(feats) == [0, 1, 2, 3, 4]
    assert "uses chunks of 2 images (its manifest decides" in caplog.text


def test_overwritten_bytes_are_caught_at_first_read_set_aside_and_re_extracted(tmp_path, caplog):
    store = FeatureStore(tmp_path, "float32", chunk_size=2)
    get(store, FakeExtract(range(N)))
    desc = entry_of(tmp_path) / "chunk_00001" / "descriptors.npy"
    raw = bytearray(desc.read_bytes())
    raw[-8:] = np.full(2, 99.0, np.float32).tobytes()        # same size, other values
    desc.write_bytes(bytes(raw))
    ex = FakeExtract(range(N))
    with caplog.at_level(logging.WARNING):
        feats = get(store, ex)                                # cheap checks pass: sizes, names
        assert ex.chunks == []
        assert np.asarray(feats[3].descriptors).max() == 3.0   # first read: checksum -> re-extracted
    assert ex.chunks == [1] and "chunk_00001 is not usable" in caplog.text
    assert "checksum" in caplog.text
    assert len(list((entry_of(tmp_path) / "set_aside").iterdir())) == 1


@pytest.mark.parametrize("damage", ["copy_over", "truncate", "lose_index", "lose_record", "garble_record",
                                    "null_record", "record_without_sizes"])
def test_damaged_chunks_are_set_aside_at_open_and_never_wedge_the_store(tmp_path, damage, caplog):
    store = FeatureStore(tmp_path, "float32", chunk_size=2)
    get(store, FakeExtract(range(N)))
    chunk = entry_of(tmp_path) / "chunk_00001"
    if damage == "copy_over":
        shutil.rmtree(chunk)
        shutil.copytree(chunk.with_name("chunk_00000"), chunk)
    elif damage == "truncate":
        desc = chunk / "descriptors.npy"
        desc.write_bytes(desc.read_bytes()[:-20])
    elif damage == "lose_index":
        (chunk / "index.npy").unlink()
    elif damage == "lose_record":
        (chunk / "record.json").unlink()                       # looks like an earlier version's chunk
    elif damage == "garble_record":
        (chunk / "record.json").write_text("{not json")
    elif damage == "null_record":
        (chunk / "record.json").write_text("null")
    else:
        record = json.loads((chunk / "record.json").read_text())
        del record["files"]["index.npy"]["bytes"]
        (chunk / "record.json").write_text(json.dumps(record))
    for _ in range(2):                                        # and the next run is clean
        ex = FakeExtract(range(N))
        with caplog.at_level(logging.WARNING):
            feats = get(store, ex)
        assert values(feats) == [0, 1, 2, 3, 4]
        caplog.clear()
    assert len(list((entry_of(tmp_path) / "set_aside").iterdir())) == 1


def test_a_replaced_image_file_re_extracts_only_its_chunk(tmp_path):
    store = FeatureStore(tmp_path, "float32", chunk_size=2)
    get(store, FakeExtract(range(N)), stamps=["a"] * N)
    ex = FakeExtract([0, 1, 2, 30, 4])
    feats = get(store, ex, stamps=["a", "a", "a", "b", "a"])    # im3 changed on disk
    assert ex.chunks == [1] and values(feats) == [0, 1, 2, 30, 4]


def test_copied_files_with_new_stamps_but_the_same_content_are_kept(tmp_path):
    """A dataset copied or re-downloaded (new mtimes, same bytes) keeps its features; a file whose
    bytes changed is re-extracted."""
    store = FeatureStore(tmp_path, "float32", chunk_size=2)
    content = [f"h{i}" for i in range(N)]
    get(store, FakeExtract(range(N)), ["a"] * N, content=lambda i: content[i])
    content[4] = "changed"
    ex = FakeExtract([0, 1, 2, 3, 40])
    feats = get(store, ex, ["b"] * N, content=lambda i: content[i])
    assert ex.chunks == [2] and values(feats) == [0, 1, 2, 3, 40]
    ex = FakeExtract(range(N))                                # the refreshed stamps now match
    get(store, ex, ["b"] * N, content=lambda i: content[i])
    assert ex.chunks == []


def _legacy_chunk(path, vals, names):
    """A chunk as versions before record.json wrote it."""
    path.mkdir(parents=True)
    feats = [LocalFeatures.from_map(np.full((3, 2, 2), v, np.float32)) for v in vals]
    np.save(path / "descriptors.npy", np.concatenate([f.descriptors for f in feats]).astype(np.float32))
    np.save(path / "positions.npy", np.concatenate([f.positions for f in feats]))
    np.save(path / "index.npy", np.array([[4 * i, 4, 2, 2] for i in range(len(vals))], np.int64))
    (path / "names.json").write_text(json.dumps(names))


def test_chunks_of_an_earlier_store_format_are_set_aside_and_extracted_again(tmp_path, caplog):
    """Store format 2 is the only one read: a chunk without record.json (format 1) is never
    adopted, whatever its arrays hold; it is moved away, named, and extracted again."""
    store = FeatureStore(tmp_path, "float32", chunk_size=2)
    get(store, FakeExtract(range(N)))
    entry = entry_of(tmp_path)
    shutil.rmtree(entry / "chunk_00001")                      # rewrite chunk 1 the old way
    _legacy_chunk(entry / "chunk_00001", [12, 13], NAMES[2:4])
    ex = FakeExtract(range(N))
    with caplog.at_level(logging.WARNING):
        feats = get(store, ex)
    assert ex.chunks == [1] and values(feats) == [0, 1, 2, 3, 4]
    assert "chunk_00001 is not usable (no record.json: written by a version before store format 2" in caplog.text
    aside, = (entry / "set_aside").iterdir()
    assert (aside / "names.json").exists()                    # moved, not deleted


def test_a_full_disk_says_so_and_keeps_what_is_stored(tmp_path, monkeypatch):
    store = FeatureStore(tmp_path, "float32", chunk_size=2)
    real_save, calls = np.save, []

    def save(path, arr, *a, **k):
        calls.append(path)
        if len(calls) == 4:   # chunk 1's first array
            raise OSError("1105920 requested and 438208 written")
        return real_save(path, arr, *a, **k)

    monkeypatch.setattr(np, "save", save)
    with pytest.raises(StoreError, match=r"no space left on the device while writing .*chunk_00001.*"
                                         r"chunks already stored are kept"):
        get(store, FakeExtract(range(N)))
    monkeypatch.setattr(np, "save", real_save)
    entry = entry_of(tmp_path)
    assert sorted(p.name for p in entry.glob("chunk_*")) == ["chunk_00000"]
    ex = FakeExtract(range(N))
    get(store, ex)
    assert ex.chunks == [1, 2]


def _worker(root, log, out, delay):
    store = FeatureStore(root, "float32", chunk_size=2)
    feats = get(store, FakeExtract(range(12), delay=delay, log=log), names=[f"im{i}" for i in range(12)])
    np.save(out, np.stack([np.asarray(f.descriptors) for f in feats]))


def test_processes_sharing_one_entry_extract_each_chunk_once(tmp_path):
    ctx = mp.get_context("fork")
    log = tmp_path / "extracted.txt"
    procs = [ctx.Process(target=_worker, args=(tmp_path / "store", log, tmp_path / f"out{k}.npy", 0.2))
             for k in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    extracted = sorted(int(x) for x in log.read_text().split())
    assert extracted == list(range(6))                        # every chunk once, by someone
    outs = [np.load(tmp_path / f"out{k}.npy") for k in range(3)]
    for o in outs[1:]:
        np.testing.assert_array_equal(outs[0], o)
    assert not list((tmp_path / "store").rglob("*.tmp*"))


def test_a_process_waits_for_a_chunk_another_is_writing_and_takes_over_if_it_dies(tmp_path):
    from filelock import FileLock
    store = FeatureStore(tmp_path, "float32", chunk_size=2)
    entry = tmp_path / "toy"
    # another process holds chunk 0's lock for a while, then dies without writing it
    ctx = mp.get_context("fork")
    ready = ctx.Event()

    def hold():
        from features.store import store_key
        key = store_key({"fake": 1}, NAMES, "float32")
        (entry / key / "locks").mkdir(parents=True, exist_ok=True)
        lock = FileLock(entry / key / "locks" / "chunk_00000.lock")
        lock.acquire()
        ready.set()
        time.sleep(1.0)
        import os
        os._exit(1)                                           # dies holding it: the kernel frees it

    p = ctx.Process(target=hold)
    p.start()
    assert ready.wait(30)
    ex = FakeExtract(range(N))
    t = time.perf_counter()
    feats = get(store, ex)
    p.join()
    assert ex.chunks == [1, 2, 0] and values(feats) == [0, 1, 2, 3, 4]
    assert time.perf_counter() - t > 0.5                      # it waited for the holder


def test_settings_and_a_foreign_manifest_are_named(tmp_path):
    with pytest.raises(ParameterError, match="dtype='int8'"):
        FeatureStore(tmp_path, "int8")
    with pytest.raises(ParameterError, match="chunk_size=0"):
        FeatureStore(tmp_path, chunk_size=0)
    store = FeatureStore(tmp_path, "float32", chunk_size=2)
    get(store, FakeExtract(range(N)))
    manifest = entry_of(tmp_path) / "manifest.json"
    manifest.write_text(json.dumps(json.loads(manifest.read_text()) | {"n_images": 99}))
    with pytest.raises(StoreError, match="describes 99 float32 images"):   # a copied entry
        get(store, FakeExtract(range(N)))


def test_file_crc32_matches_zlib(tmp_path):
    import zlib
    data = np.random.default_rng(0).bytes(3_000_000)
    (tmp_path / "f").write_bytes(data)
    assert file_crc32(tmp_path / "f", block=1 << 20) == zlib.crc32(data)


def test_a_damaged_count_is_never_believed(tmp_path, caplog):
    """index.npy with one count set to 0, same size: the counts the store hands out (the
    empty-image mask) pass the chunk's checksum first, so the damage is found, the chunk
    re-extracted and the true counts come back."""
    store = FeatureStore(tmp_path, "float32", chunk_size=2)
    get(store, FakeExtract(range(N)))
    index_file = entry_of(tmp_path) / "chunk_00001" / "index.npy"
    index = np.load(index_file)
    size = index_file.stat().st_size
    index[0, 1] = 0
    np.save(index_file, index)
    assert index_file.stat().st_size == size                     # only the checksum can tell
    ex = FakeExtract(range(N))
    with caplog.at_level(logging.WARNING):
        feats = get(store, ex)
        counts = feats.counts()
    assert counts.tolist() == [4] * N                            # a 2 x 2 grid per image
    assert ex.chunks == [1] and "set_aside" in caplog.text
    assert values(feats) == [0, 1, 2, 3, 4]


def test_non_finite_features_are_refused_at_commit_naming_the_images(tmp_path):
    store = FeatureStore(tmp_path, "float32", chunk_size=2)
    with pytest.raises(ImageLoadError, match=r"non-finite .* chunk_00001: im3"):
        get(store, FakeExtract([0, 1, 2, float("nan"), 4]))
    chunks = sorted(p.name for p in entry_of(tmp_path).glob("chunk_*"))
    assert chunks == ["chunk_00000"]                             # what came before is kept
    feats = get(store, FakeExtract(range(N)))                    # fixed: only the rest extracted
    assert values(feats) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("name", ["../x", "a/b", "..", "_fitted", ""])
def test_a_dataset_name_that_is_no_plain_folder_is_refused(tmp_path, name):
    with pytest.raises(ConfigError, match="dataset.name"):
        get(FeatureStore(tmp_path / "store"), FakeExtract(range(N)), dataset=name)
    assert not (tmp_path / "x").exists() and not (tmp_path / "store").exists()


@pytest.mark.parametrize("damage", ["deleted", "garbage"])
def test_a_lost_or_garbage_manifest_keeps_every_sound_chunk(tmp_path, damage, caplog):
    store = FeatureStore(tmp_path, "float32", chunk_size=2)
    get(store, FakeExtract(range(N)))
    manifest = entry_of(tmp_path) / "manifest.json"
    if damage == "deleted":
        manifest.unlink()
    else:
        manifest.write_text("{not json")
    ex = FakeExtract(range(N))
    with caplog.at_level(logging.WARNING):
        feats = get(FeatureStore(tmp_path, "float32", chunk_size=4), ex)   # another chunk size now
    assert ex.chunks == [] and values(feats) == [0, 1, 2, 3, 4]            # nothing re-extracted
    assert json.loads(manifest.read_text())["chunk_size"] == 2             # the chunks' own size
    assert (damage == "garbage") == ("unreadable" in caplog.text)


def test_a_lost_manifest_takes_the_chunk_size_from_any_stored_chunk(tmp_path):
    store = FeatureStore(tmp_path, "float32", chunk_size=2)
    get(store, FakeExtract(range(N)))
    entry = entry_of(tmp_path)
    (entry / "manifest.json").unlink()
    shutil.rmtree(entry / "chunk_00000")                          # set aside, say
    ex = FakeExtract(range(N))
    feats = get(FeatureStore(tmp_path, "float32", chunk_size=3), ex)
    assert ex.chunks == [0] and values(feats) == [0, 1, 2, 3, 4]   # only the missing one


def test_features_that_overflow_the_storage_dtype_are_refused(tmp_path):
    with pytest.raises(ImageLoadError, match="non-finite .* im1"):
        get(FeatureStore(tmp_path, "float16", chunk_size=2), FakeExtract([0, 1e6, 2, 3, 4]))


def test_verify_images_finds_an_image_edited_with_its_stamp_kept(tmp_path, caplog):
    digests = {i: f"crc{i}" for i in range(N)}

    def open_store(verify_images):
        return FeatureStore(tmp_path, "float32", chunk_size=2, verify_images=verify_images)

    def get_hashed(store, ex):
        return get(store, ex, content=lambda i: digests[i])

    get_hashed(open_store(False), FakeExtract(range(N)))
    digests[3] = "edited"                               # same size and mtime: the stamp says nothing
    ex = FakeExtract(range(N))
    get_hashed(open_store(False), ex)
    assert ex.chunks == []                              # by default only stamps are compared
    ex = FakeExtract([0, 1, 2, 30, 4])
    with caplog.at_level(logging.WARNING):
        feats = get_hashed(open_store(True), ex)
    assert ex.chunks == [1] and values(feats) == [0, 1, 2, 30, 4]
    assert "im3 changed content" in caplog.text
    ex = FakeExtract(range(N))
    get_hashed(open_store(True), ex)
    assert ex.chunks == []                              # the new digest is recorded


def test_the_layout_names_what_the_store_writes(tmp_path):
    """features/store/layout.py is the one place that spells the on-disk names: what the store
    writes is found through it (deepagg-store reads nothing else)."""
    from features.store import layout
    get(FeatureStore(tmp_path, "float32", chunk_size=2), FakeExtract(range(5)))
    (dataset, entry, manifest), = layout.entries(tmp_path)
    assert dataset == "toy" and manifest["n_images"] == 5
    chunks = layout.chunk_dirs(entry)
    assert [layout.chunk_index(c) for c in chunks] == [0, 1, 2]
    assert all((c / layout.RECORD).is_file() for c in chunks)
    assert layout.lock_path(entry, 1).exists()
    (entry / (layout.chunk_name(1) + ".tmp-host-1-abc")).mkdir()      # a writer's temporary folder
    assert layout.chunk_dirs(entry) == chunks and layout.chunk_index(entry / "chunk_00001.tmp-x") is None
    moved = layout.set_aside(entry, chunks[2])
    assert moved.parent == entry / layout.SET_ASIDE and layout.set_aside_dirs(tmp_path) == [moved.parent]


def _rows(values, empty=()):
    """A chunk producer of descriptor rows: image i -> (values[i], 2 * values[i]), zero if empty."""
    made = []

    def chunk(spec):
        made.append(spec.index)
        idx = range(spec.lo, spec.hi)
        rows = np.array([[values[i], 2 * values[i]] if i not in empty else [0, 0] for i in idx], np.float32)
        return DescriptorRows(rows, np.array([i in empty for i in idx]))
    chunk.made = made
    return chunk


def test_descriptor_entries_hold_one_row_per_image_and_resume(tmp_path):
    from features.store import DESCRIPTORS
    store = FeatureStore(tmp_path, "float32", chunk_size=2)
    chunk = _rows(range(N), empty={2})
    stored = store.get("toy", ListedImages(NAMES, chunk), {"fake": 1}, kind=DESCRIPTORS, progress=False)
    X, empty = stored.read()
    np.testing.assert_array_equal(X, [[0, 0], [1, 2], [0, 0], [3, 6], [4, 8]])
    np.testing.assert_array_equal(empty, [False, False, True, False, False])
    entry = stored.entry
    assert np.load(entry / "chunk_00001" / "descriptors.npy").shape == (2, 2)   # rows, as they are
    assert json.loads((entry / "manifest.json").read_text())["kind"] == "descriptors"
    local = get(store, FakeExtract(range(N)))                    # same identity, local kind
    assert local.entry != entry                                   # another entry, never mixed
    shutil.rmtree(entry / "chunk_00002")
    again = _rows(range(N), empty={2})
    X2, _ = store.get("toy", ListedImages(NAMES, again), {"fake": 1}, kind=DESCRIPTORS,
                      progress=False).read()
    assert again.made == [2] and X2.tolist() == X.tolist()


def test_descriptor_rows_are_checked_when_stored(tmp_path):
    from features.store import DESCRIPTORS
    store = FeatureStore(tmp_path, "float32", chunk_size=2)
    with pytest.raises(ImageLoadError, match=r"non-finite \(NaN or Inf\) descriptors .* chunk_00001: im3"):
        store.get("toy", ListedImages(NAMES, _rows([0, 1, 2, np.inf, 4])), {"fake": 1},
                  kind=DESCRIPTORS, progress=False)
    entry = next((tmp_path / "toy").iterdir())
    (entry / "chunk_00000" / "empty.npy").write_bytes(b"garbage")
    with pytest.raises(ImageLoadError):                           # chunk 0 is set aside, redone
        store.get("toy", ListedImages(NAMES, _rows([0, 1, 2, np.inf, 4])), {"fake": 1},
                  kind=DESCRIPTORS, progress=False)
    assert len(list((entry / "set_aside").iterdir())) == 1


def test_a_source_that_breaks_the_protocol_is_named_and_leaves_no_lock(tmp_path):
    """produce() must give back every chunk it draws: one that draws nothing, or keeps a chunk,
    stops with a RuntimeError (never a hang, never an entry with a hole) and frees its locks."""
    store = FeatureStore(tmp_path, "float32", chunk_size=2)
    lazy = ListedImages(NAMES, None, ["s"] * N)
    lazy.produce = lambda claims: iter(())                       # never draws
    with pytest.raises(RuntimeError, match="did not draw chunk 0"):
        store.get("toy", lazy, {"fake": 1}, progress=False)
    keeper = ListedImages(NAMES, None, ["s"] * N)

    def keep_one(claims):
        for spec in claims:
            if spec.index != 1:
                yield spec, FakeExtract(range(N))(spec)
    keeper.produce = keep_one
    with pytest.raises(RuntimeError, match=r"drew chunk\(s\) \[1\] .* never gave them back"):
        store.get("toy", keeper, {"fake": 1}, progress=False)
    ex = FakeExtract(range(N))
    assert values(get(store, ex)) == [0, 1, 2, 3, 4] and ex.chunks == [1]   # lock was freed


def test_a_payload_of_the_wrong_kind_is_named(tmp_path):
    from features.store import DESCRIPTORS
    store = FeatureStore(tmp_path, "float32", chunk_size=2)
    with pytest.raises(TypeError, match=r"descriptors entry stores DescriptorRows"):
        store.get("toy", ListedImages(NAMES, FakeExtract(range(N))), {"fake": 1}, kind=DESCRIPTORS,
                  progress=False)
    with pytest.raises(TypeError, match=r"must be \(2, D\) and \(2,\); got \(2,\)"):
        store.get("toy", ListedImages(NAMES, lambda s: (np.zeros(2), np.zeros(2, bool))),
                  {"fake": 1}, kind=DESCRIPTORS, progress=False)


def test_reading_descriptors_keeps_no_chunk_open(tmp_path):
    """Chunks are copied out one by one, so an entry of more chunks than a process may open
    files reads (the old way kept every chunk mapped until the end)."""
    from features.store import DESCRIPTORS
    names = [f"im{i}" for i in range(7)]
    stored = FeatureStore(tmp_path, "float32", chunk_size=1).get(
        "toy", ListedImages(names, _rows(range(7))), {"fake": 1}, kind=DESCRIPTORS, progress=False)
    X, empty = stored.read()
    assert X[:, 0].tolist() == list(range(7)) and not empty.any() and stored._mapped == {}
