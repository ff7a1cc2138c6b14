"""The seeded sampler shared by the learned aggregators."""
import numpy as np

from aggregators.sampling import sample_rows, take_rows


def _blocks():
    # row r of the stack holds the value r in every column: a sampled row tells where it came from
    sizes = [3, 0, 5, 2, 7]
    starts = np.cumsum([0] + sizes[:-1])
    return [np.repeat(np.arange(s, s + n, dtype=np.float32)[:, None], 2, axis=1)
            for s, n in zip(starts, sizes)]


def test_keeps_everything_in_order_under_the_cap():
    out = sample_rows(_blocks(), 100, seed=0)
    np.testing.assert_array_equal(out[:, 0], np.arange(17))
    assert out.dtype == np.float32


def test_caps_without_replacement_and_is_seeded():
    out = sample_rows(_blocks(), 6, seed=3)
    ids = out[:, 0]
    assert len(ids) == 6 and len(set(ids)) == 6 and set(ids) <= set(range(17))
    assert np.all(np.diff(ids) > 0)                        # stacking order kept
    np.testing.assert_array_equal(out[:, 0], out[:, 1])    # whole rows, not mixed
    np.testing.assert_array_equal(out, sample_rows(_blocks(), 6, seed=3))
    assert any(not np.array_equal(out, sample_rows(_blocks(), 6, seed=s)) for s in range(4, 8))


def test_take_rows_equals_indexing_the_stacked_blocks():
    blocks = [np.arange(6, dtype=np.float16).reshape(3, 2), np.zeros((0, 2)),
              np.arange(6, 14, dtype=np.float16).reshape(4, 2)]
    picked = np.array([0, 2, 3, 6])
    out = take_rows(blocks, picked)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.concatenate(blocks).astype(np.float32)[picked])
