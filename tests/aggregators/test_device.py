"""Where the learned aggregators encode (``to(device)``, not a hyper-parameter): validation, pickling, cached tensors,
chunking of a batch; on a CUDA machine, the GPU encoding against the CPU one."""
import inspect
import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone

from aggregators import VLAD, FisherVector, TriangulationEmbedding
from aggregators import torch_ops as ops
from benchmarks.errors import ParameterError
from features import LocalFeatures
from references import encode_one

CLASSES = [VLAD, FisherVector, TriangulationEmbedding]


def _small(cls, **kw):
    size = {VLAD: dict(n_clusters=3), FisherVector: dict(n_components=3),
            TriangulationEmbedding: dict(n_anchors=2)}[cls]
    return cls(**size, **kw)


def _variable_batch(sparse_sets):
    """Sparse images of different sizes, out of size order."""
    return [s for n in (25, 3, 40, 1, 12) for s in sparse_sets(1, n=n, seed=n)]


@pytest.mark.parametrize("cls", CLASSES)
def test_the_device_is_no_hyper_parameter_and_fit_keys_do_not_see_it(cls, sparse_sets):
    from experiments import fitted
    assert "device" not in inspect.signature(cls.__init__).parameters
    agg = _small(cls)
    assert "device" not in agg.get_params() and agg.device == "cpu"
    key = fitted.estimator_description(agg)
    assert agg.to("cpu") is agg and fitted.estimator_description(agg) == key
    agg.device = "cuda"                                  # as after to("cuda") on a GPU machine
    assert fitted.estimator_description(agg) == key
    assert clone(agg).device == "cpu" and pickle.loads(pickle.dumps(agg)).device == "cpu"
    assert agg.device == "cuda"                          # pickling left the live object alone


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("device", ["gpu", "cuda:", "cuda:x", "CPU", 0, None])
def test_bad_devices_are_named(cls, device):
    agg = _small(cls)
    with pytest.raises(ParameterError, match=r"device=.*expected cpu, cuda or cuda:N") as e:
        agg.to(device)
    assert e.value.param == "device" and e.value.owner == cls.__name__ and agg.device == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
@pytest.mark.parametrize("cls", CLASSES)
def test_cuda_without_a_gpu_says_so(cls):
    with pytest.raises(ParameterError, match=r"device='cuda:0': no CUDA device is available"):
        _small(cls).to("cuda:0")


@pytest.mark.parametrize("cls", CLASSES)
def test_pickles_hold_no_tensors_and_old_pickles_load_on_the_cpu(cls, sparse_sets):
    agg = _small(cls).fit(sparse_sets(3))
    before = pickle.dumps(agg)
    batch = _variable_batch(sparse_sets)
    expected = agg.transform(batch)
    if cls is not VLAD:                                  # fill the tensor cache on the CPU too
        agg._encode_torch(batch, torch.device("cpu"))
    assert pickle.dumps(agg) == before                   # cached tensors are not state
    assert not any(isinstance(v, torch.Tensor) for v in vars(agg).values())
    np.testing.assert_array_equal(pickle.loads(before).transform(batch), expected)
    old_state = dict(agg.__getstate__(), device="cuda")  # a pickle of the device hyper-parameter
    old = cls.__new__(cls)
    old.__setstate__(old_state)
    assert old.device == "cpu" and "device" not in vars(old)
    np.testing.assert_array_equal(old.transform(batch), expected)


def test_replaced_learned_state_is_used_at_once(sparse_sets):
    fit, batch = sparse_sets(3), _variable_batch(sparse_sets)
    agg = VLAD(n_clusters=3).fit(fit)
    first = agg.transform(batch)                         # caches tensors of the first codebook
    agg.cluster_centers_ = VLAD(n_clusters=3, seed=7).fit(fit).cluster_centers_
    second = agg.transform(batch)
    assert not np.allclose(first, second)
    np.testing.assert_allclose(second, np.stack([encode_one(agg, f) for f in batch]), atol=1e-6)


def test_chunks_cover_the_batch_within_the_budget(sparse_sets, monkeypatch):
    batch = _variable_batch(sparse_sets)
    monkeypatch.setattr(ops, "_CPU_CHUNK_BYTES", 30 * 8)
    groups = list(ops.chunks(batch, 8, torch.device("cpu")))
    assert sorted(i for g in groups for i in g) == list(range(len(batch)))
    for g in groups:
        assert len(g) == 1 or sum(batch[i].n for i in g) <= 30
    assert [batch[g[0]].n for g in groups] == sorted(batch[g[0]].n for g in groups)
    assert [len(g) for g in groups] == [3, 1, 1]         # 1 + 3 + 12 rows, then 25, then 40


@pytest.mark.parametrize("cls", CLASSES)
def test_results_do_not_depend_on_the_chunking(cls, sparse_sets, monkeypatch):
    agg = _small(cls).fit(sparse_sets(3))
    batch = _variable_batch(sparse_sets)
    encode = agg.transform if cls is VLAD else lambda b: agg._encode_torch(b, torch.device("cpu"))
    together = encode(batch)
    monkeypatch.setattr(ops, "_CPU_CHUNK_BYTES", 1)      # every image alone
    alone = encode(batch)
    np.testing.assert_allclose(together, alone, atol=1e-6)
    np.testing.assert_allclose(alone, np.stack([encode_one(agg, f) for f in batch]), atol=1e-5)


def test_padded_and_stacked_layouts():
    batch = [LocalFeatures(np.full((n, 2), n, np.float32), np.zeros((n, 2), np.float32))
             for n in (2, 3)]
    x, counts = ops.padded(batch, [1, 0], torch.device("cpu"))
    assert counts.tolist() == [3, 2] and x.shape == (2, 3, 2)
    assert (x[0] == 3).all() and (x[1, :2] == 2).all() and not x[1, 2].any()
    assert ops.row_mask(counts, 3).tolist() == [[True] * 3, [True, True, False]]
    rows, image = ops.stacked(batch, [1, 0], torch.device("cpu"))
    assert image.tolist() == [0, 0, 0, 1, 1] and rows[:, 0].tolist() == [3, 3, 3, 2, 2]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("cls", CLASSES)
def test_cuda_encoding_equals_the_cpu_one(cls, dense_maps, sparse_sets):
    for fit, test in ((dense_maps(4), dense_maps(5, seed=10)),
                      (sparse_sets(4), _variable_batch(sparse_sets))):
        agg = _small(cls).fit(fit)
        cpu = agg.transform(test)
        gpu = agg.to("cuda").transform(test)
        agg.to("cpu")
        gap = 1 - np.einsum("ij,ij->i", cpu, gpu) / (np.linalg.norm(cpu, axis=1)
                                                    * np.linalg.norm(gpu, axis=1))
        assert gap.max() <= 1e-5


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_read_only_stored_features(cls, dtype, sparse_sets, tmp_path, monkeypatch):
    # the feature store hands out read-only memory-mapped float16 / float32 descriptors
    monkeypatch.setattr(ops, "_CPU_CHUNK_BYTES", 1)      # every image alone: no copy made
    agg = _small(cls).fit(sparse_sets(3))
    batch = []
    for i, f in enumerate(_variable_batch(sparse_sets)):
        np.save(tmp_path / f"{i}.npy", f.descriptors.astype(dtype))
        batch.append(LocalFeatures(np.load(tmp_path / f"{i}.npy", mmap_mode="r"), f.positions))
    encode = agg.transform if cls is VLAD else lambda b: agg._encode_torch(b, torch.device("cpu"))
    np.testing.assert_allclose(encode(batch), np.stack([encode_one(agg, f) for f in batch]),
                               atol=1e-5)


def test_poolings_check_the_device_and_run_in_numpy():
    from aggregators import SumPooling
    assert SumPooling().to("cpu").get_params() == {"center_prior": False}
    with pytest.raises(ParameterError, match="device='gpu'"):
        SumPooling().to("gpu")
