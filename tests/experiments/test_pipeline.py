"""Pipeline stages that need no CNN: aggregation policies, the post-processing chain, fit sets."""
import numpy as np
import pytest
from omegaconf import OmegaConf

from aggregators import SumPooling
from experiments.pipeline import (ConfigError, aggregate, dataset_config, non_empty,
                                  postprocess_chain, sample_indices)
from features import LocalFeatures


def _feats(*counts):
    return [LocalFeatures(np.full((n, 2), i + 1, np.float32), np.zeros((n, 2), np.float32))
            for i, n in enumerate(counts)]


def test_images_without_features_stop_the_run_by_name():
    feats = _feats(2, 0, 3)
    agg = SumPooling().fit(feats[:1])
    with pytest.raises(ConfigError, match=r"1 image\(s\).*img_b.*empty_images=zero"):
        aggregate(agg, feats, ["img_a", "img_b", "img_c"])


def test_zero_policy_gives_a_zero_row_and_a_mask():
    feats = _feats(2, 0, 3)
    agg = SumPooling().fit(feats[:1])
    X, empty = aggregate(agg, feats, empty_images="zero", batch=2)
    np.testing.assert_array_equal(empty, [False, True, False])
    np.testing.assert_allclose(X, [[2, 2], [0, 0], [9, 9]])
    with pytest.raises(ConfigError, match="empty_images='skip'"):
        aggregate(agg, feats, empty_images="skip")


def test_fitting_sets_skip_empty_images():
    feats = _feats(2, 0, 3)
    assert [f.n for f in non_empty(feats, "toy")] == [2, 3]


def test_postprocess_chain_follows_the_config():
    cfg = OmegaConf.create({"alpha": 0.5, "pca": True, "dim": 2, "whiten": True, "fit_on": "x"})
    assert [n for n, _ in postprocess_chain(cfg).steps] == ["power", "l2", "pca", "l2_final"]
    cfg = OmegaConf.create({"alpha": None, "pca": False, "dim": None, "whiten": False, "fit_on": "x"})
    chain = postprocess_chain(cfg).fit(np.ones((1, 2)))
    np.testing.assert_allclose(chain.transform(np.array([[3.0, 4.0]])), [[0.6, 0.8]])


def test_unknown_fit_on_lists_known_datasets():
    with pytest.raises(ConfigError, match=r"fit_on='nope'.*demo_holdout"):
        dataset_config("nope", OmegaConf.create({"data_root": "data"}))


def test_sample_indices_is_seeded_and_capped():
    a, b = sample_indices(100, 10, seed=3), sample_indices(100, 10, seed=3)
    np.testing.assert_array_equal(a, b)
    assert len(np.unique(a)) == 10 and (np.diff(a) > 0).all()
    np.testing.assert_array_equal(sample_indices(5, None, 0), np.arange(5))
