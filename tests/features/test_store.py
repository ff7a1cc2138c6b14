"""The feature store: extract once, memory-map, resume after a kill, keep chunks on bad images."""
import numpy as np
import pytest
from PIL import Image

from benchmarks.base import ImageLoadError, ImageRef
from features import LocalFeatures
from features.store import FeatureStore


class CountingExtractor:
    """Deterministic fake CNN: one 2 x 2 x 3 map per image from its mean colour."""

    def __init__(self, fail_at=None):
        self.calls, self.seen, self.fail_at = 0, 0, fail_at

    def __call__(self, images):
        out = []
        for im in images:
            if self.fail_at is not None and self.seen == self.fail_at:
                raise KeyboardInterrupt("simulated kill")
            self.seen += 1
            m = np.asarray(im, dtype=np.float32).mean()
            out.append(LocalFeatures.from_map(np.full((3, 2, 2), m, np.float32)))
        self.calls += 1
        return out


def _images(tmp_path, n):
    refs = []
    for i in range(n):
        p = tmp_path / f"im{i}.png"
        Image.new("RGB", (8, 8), (i * 10, 0, 0)).save(p)
        refs.append(ImageRef(name=p.stem, path=p))
    return refs


def _get(store, refs, ex):
    return store.get("toy", [r.name for r in refs], [r.identity() for r in refs], {"fake": 1},
                     lambda i: refs[i].load(), lambda: ex, batch_size=2, num_workers=1, progress=False)


def test_extract_once_then_read_memory_mapped(tmp_path):
    refs = _images(tmp_path, 5)
    store = FeatureStore(tmp_path / "store", "float32", chunk_size=2)
    ex = CountingExtractor()
    feats = _get(store, refs, ex)
    assert ex.seen == 5 and len(feats) == 5
    ex2 = CountingExtractor()
    again = _get(store, refs, ex2)
    assert ex2.seen == 0                              # nothing extracted the second time
    assert isinstance(again[0].descriptors, np.memmap)
    np.testing.assert_allclose(again[3].descriptors, np.full((4, 3), 30 / 3))
    assert again[3].grid == (2, 2)


def test_resume_after_a_kill_recomputes_only_missing_chunks(tmp_path):
    refs = _images(tmp_path, 5)
    store = FeatureStore(tmp_path / "store", "float16", chunk_size=2)
    with pytest.raises(KeyboardInterrupt):
        _get(store, refs, CountingExtractor(fail_at=3))   # dies inside chunk 1
    entry = next((tmp_path / "store" / "toy").iterdir())
    assert sorted(p.name for p in entry.glob("chunk_*")) == ["chunk_00000"]  # no half chunk
    (entry / "chunk_00002.tmp").mkdir()               # debris of a kill mid-write
    ex = CountingExtractor()
    feats = _get(store, refs, ex)
    assert ex.seen == 3                               # images 2, 3, 4 only
    assert not list(entry.glob("*.tmp"))
    assert feats[4].descriptors.dtype == np.float16
    np.testing.assert_allclose(np.asarray(feats[4].descriptors, np.float32), 40 / 3, rtol=1e-3)


def test_corrupt_image_names_the_file_and_keeps_stored_chunks(tmp_path):
    refs = _images(tmp_path, 5)
    (tmp_path / "im3.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    store = FeatureStore(tmp_path / "store", "float32", chunk_size=2)
    with pytest.raises(ImageLoadError, match="im3.png"):
        _get(store, refs, CountingExtractor())
    Image.new("RGB", (8, 8), (30, 0, 0)).save(tmp_path / "im3.png")   # the user fixes it
    ex = CountingExtractor()
    _get(store, refs, ex)
    assert ex.seen == 3                               # chunk 0 was kept


def test_store_settings_are_validated(tmp_path):
    with pytest.raises(ValueError, match="store.dtype"):
        FeatureStore(tmp_path, "int8")
