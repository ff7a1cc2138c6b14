"""The input pipeline: worker processes, full batches across shapes and chunks, order kept."""
from dataclasses import dataclass

import numpy as np
import pytest

from benchmarks.errors import ImageLoadError
from features import LocalFeatures
from features.input_pipeline import stream_chunks


@dataclass(frozen=True)
class Spec:
    index: int
    lo: int
    hi: int


@dataclass(frozen=True)
class Item:
    """An 'image': its value and shape; ``bad`` items fail to load."""
    value: float
    shape: tuple
    bad: bool = False


def prepare(item):
    if item.bad:
        raise ImageLoadError(f"cannot read image /data/bad_{item.value:g}.jpg (truncated)")
    return np.full(item.shape, item.value, np.float32)


class FakeExtractor:
    """run() records each batch's size and shape; the feature of an item is its value."""

    def __init__(self):
        self.batches = []

    def preparer(self):
        return prepare

    @staticmethod
    def batch_key(prepared):
        return prepared.shape

    def run(self, batch):
        shapes = {b.shape for b in batch}
        assert len(shapes) == 1, "a batch mixed shapes"
        self.batches.append((len(batch), shapes.pop()))
        return [LocalFeatures(np.full((1, 2), b.flat[0], np.float32), np.zeros((1, 2), np.float32))
                for b in batch]


def chunks(n, size):
    return [Spec(c, lo, min(n, lo + size)) for c, lo in enumerate(range(0, n, size))]


def run(items, size, batch, workers, lookahead=None):
    ex = FakeExtractor()
    done = list(stream_chunks(iter(chunks(len(items), size)), items, ex, batch, num_workers=workers,
                              lookahead=lookahead))
    return ex, done


# portrait and landscape images interleaved, as in Oxford with resize=max_side
ITEMS = [Item(float(i), (3, 4) if i % 3 else (4, 3)) for i in range(40)]


@pytest.mark.parametrize("workers", [0, 2])
def test_every_chunk_yielded_once_in_order_of_its_images(workers):
    ex, committed = run(ITEMS, size=8, batch=4, workers=workers)
    assert sorted(s.index for s, _ in committed) == list(range(5))
    for spec, feats in committed:
        assert [f.descriptors[0, 0] for f in feats] == list(range(spec.lo, spec.hi))


def test_buckets_span_chunks_so_batches_stay_full():
    ex, _ = run(ITEMS, size=8, batch=4, workers=0)
    sizes = [n for n, _ in ex.batches]
    # 40 images of two shapes (13 + 27): at most one partial batch per shape
    assert sum(sizes) == 40 and sum(n < 4 for n in sizes) <= 2
    # without lookahead every chunk boundary flushes partial buckets
    ex0, _ = run(ITEMS, size=8, batch=4, workers=0, lookahead=0)
    assert sum(n < 4 for n, _ in ex0.batches) > sum(n < 4 for n in sizes)


def test_workers_and_batch_size_do_not_change_results():
    outs = []
    for workers, batch in ((0, 1), (2, 4), (1, 16)):
        _, committed = run(ITEMS, size=8, batch=batch, workers=workers)
        outs.append({s.index: [f.descriptors[0, 0] for f in fs] for s, fs in committed})
    assert outs[0] == outs[1] == outs[2]


@pytest.mark.parametrize("workers", [0, 2])
def test_a_bad_image_in_a_worker_is_reported_by_name_after_earlier_chunks_yielded(workers):
    items = list(ITEMS)
    items[21] = Item(21.0, (3, 4), bad=True)
    committed = []
    with pytest.raises(ImageLoadError, match="bad_21.jpg"):
        for spec, _ in stream_chunks(iter(chunks(40, 8)), items, FakeExtractor(), 4,
                                     num_workers=workers, lookahead=0):
            committed.append(spec.index)
    assert 0 in committed and 1 in committed and 2 not in committed
