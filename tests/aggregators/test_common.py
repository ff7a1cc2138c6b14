"""Every new aggregator through the shared contract: features kinds, seeds, bad input."""
import numpy as np
import pytest
from sklearn.base import clone

from aggregators import (RMAC, VLAD, CroW, FisherVector, GeM, MaxPooling, SumPooling,
                         TriangulationEmbedding)
from benchmarks.errors import ParameterError
from features import LocalFeatures

SMALL = dict(max_features=100)   # fewer than the 4 x 30 features fitted on: a real sample


def _all():
    return [GeM(), CroW(), RMAC(),
            RMAC(region_whitening=True, region_whitening_dim=4, max_regions=50),
            VLAD(n_clusters=3, **SMALL), FisherVector(n_components=3, **SMALL),
            TriangulationEmbedding(n_anchors=1, **SMALL),
            TriangulationEmbedding(n_anchors=2, **SMALL)]


def _learned():
    return [agg for agg in _all() if hasattr(agg, "seed")]


@pytest.mark.parametrize("agg", _all(), ids=repr)
def test_dense_maps(agg, dense_maps):
    out = agg.fit(dense_maps(4)).transform(dense_maps(3, seed=10))
    assert out.shape == (3, agg.dim) and out.dtype == np.float32 and np.isfinite(out).all()


@pytest.mark.parametrize("agg", _all(), ids=repr)
def test_sparse_features(agg, sparse_sets):
    if agg.requires_grid:
        with pytest.raises(ValueError, match="dense feature map"):
            agg.fit(sparse_sets(4))
        return
    out = agg.fit(sparse_sets(4)).transform(sparse_sets(2, n=25, seed=10))
    assert out.shape == (2, agg.dim) and np.isfinite(out).all()


@pytest.mark.parametrize("agg", _learned(), ids=repr)
def test_same_seed_same_descriptors(agg, dense_maps):
    fit, test = dense_maps(4), dense_maps(2, seed=10)
    a = agg.fit(fit).transform(test)
    twin = type(agg)(**{k: v for k, v in vars(agg).items() if not k.endswith("_")})
    np.testing.assert_array_equal(a, twin.fit(fit).transform(test))


@pytest.mark.parametrize("agg", _all(), ids=repr)
def test_bad_input(agg, dense_maps):
    with pytest.raises(ValueError, match="no local features to learn from"):
        agg.fit([])
    if agg.learns:
        with pytest.raises(RuntimeError, match="not fitted"):
            agg.transform(dense_maps(1)[0])
    nan = dense_maps(1)[0]
    nan.descriptors[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        agg.fit(dense_maps(3) + [nan])
    agg.fit(dense_maps(4))
    with pytest.raises(ValueError, match="NaN"):
        agg.transform(nan)
    with pytest.raises(ValueError, match="fitted on 8-D"):
        agg.transform(dense_maps(1, d=5)[0])


@pytest.mark.parametrize("agg", [a for a in _all() if not a.requires_grid], ids=repr)
def test_degenerate_images_give_finite_descriptors(agg, dense_maps):
    # one feature; all-zero features (on an anchor / at a codeword is the worst case)
    agg.fit(dense_maps(4))
    one = LocalFeatures(np.ones((1, 8), np.float32), np.zeros((1, 2), np.float32))
    zeros = LocalFeatures(np.zeros((3, 8), np.float32), np.zeros((3, 2), np.float32))
    assert np.isfinite(agg.transform([one, zeros])).all()


STATELESS = [SumPooling(), SumPooling(center_prior=True), MaxPooling(), GeM(p=2.5), CroW(), RMAC()]


@pytest.mark.parametrize("agg", STATELESS, ids=repr)
def test_poolings_transform_without_fit_as_after_fit(agg, dense_maps):
    """scikit-learn's stateless-transformer contract (as Normalizer): no fit needed, and a fit
    changes nothing."""
    assert not agg.learns
    maps = dense_maps(3)
    before = agg.transform(maps)
    np.testing.assert_array_equal(before, clone(agg).fit(dense_maps(2, seed=7)).transform(maps))
    np.testing.assert_array_equal(before[1:2], agg.transform(maps[1]))   # one image: (1, D)


def test_estimator_contract_comes_from_scikit_learn(dense_maps):
    agg = FisherVector(n_components=3, max_features=100, seed=4)
    assert agg.get_params()["n_components"] == 3 and repr(agg) == \
        "FisherVector(max_features=100, n_components=3, seed=4)"
    twin = clone(agg.fit(dense_maps(4)))
    assert not hasattr(twin, "means_") and twin.get_params() == agg.get_params()
    assert agg.set_params(n_components=5).n_components == 5
    assert RMAC(region_whitening=True).learns and not RMAC().learns


@pytest.mark.parametrize("agg,param", [
    (GeM(p=0), "p"), (GeM(p=-1), "p"), (GeM(eps=0), "eps"), (CroW(a=0), "a"),
    (RMAC(levels=0), "levels"), (RMAC(overlap=1.0), "overlap"), (SumPooling(center_prior="yes"), "center_prior"),
    (VLAD(n_clusters=0), "n_clusters"), (VLAD(power_norm="l1"), "power_norm"),
    (FisherVector(n_components=2.5), "n_components"), (FisherVector(var_floor=-1), "var_floor"),
    (TriangulationEmbedding(damping=0), "damping"), (TriangulationEmbedding(drop_components=-1), "drop_components"),
])
def test_parameters_are_checked_before_any_work_and_named(agg, param, dense_maps):
    with pytest.raises(ParameterError) as e:
        agg.validate()
    assert e.value.param == param and f"{param}=" in str(e.value)
    assert e.value.with_prefix("aggregator").param == f"aggregator.{param}"
    with pytest.raises(ParameterError):      # and again wherever the aggregator is used
        agg.fit(dense_maps(3)) if agg.learns else agg.transform(dense_maps(1))
