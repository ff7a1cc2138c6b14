"""The vision-transformer token extractor on randomly initialised timm models (no ViT weights
can be had offline): patch tokens against timm's own forward pass, the grid convention, prefix
tokens, bad settings named before any work, the store round trip of class tokens."""
import numpy as np
import pytest
import torch
from PIL import Image

from benchmarks.errors import ParameterError
from features import LocalFeatures
from features.vit import TokenExtractor


@pytest.fixture(scope="module")
def vit_s():
    torch.manual_seed(0)
    return TokenExtractor("vit_small_patch14_dinov2", image_size=98)


def _photo(w, h, seed=0):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))


def test_patch_tokens_are_timms_last_block_after_the_norm_on_the_patch_grid(vit_s):
    image = _photo(140, 100)                              # max_side 98: 98 x 70 = 7 x 5 patches
    (f,) = vit_s([image])
    assert f.grid == (5, 7) and f.n == 35 and f.dim == 384
    np.testing.assert_allclose(f.positions[:2], [[0.5 / 7, 0.5 / 5], [1.5 / 7, 0.5 / 5]])
    x = torch.from_numpy(np.array(image.resize((98, 70), Image.BICUBIC))).permute(2, 0, 1)[None] / 255.0
    x = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor(
        [0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.inference_mode():
        tokens = vit_s.net.forward_features(x.float())[0].numpy()    # (1 + 35, d), normed
    np.testing.assert_allclose(f.cls_token, tokens[0], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(f.descriptors, tokens[1:], rtol=1e-4, atol=1e-4)   # row-major


def test_register_tokens_never_become_patches_and_siglip_has_no_class_token():
    reg = TokenExtractor("vit_small_patch14_reg4_dinov2", image_size=56)
    (f,) = reg([_photo(56, 56)])
    assert reg.net.num_prefix_tokens == 5 and f.n == 16 and f.cls_token is not None
    siglip = TokenExtractor("vit_base_patch16_siglip_224", image_size=64, layer=2)
    (g,) = siglip([_photo(64, 32)])
    assert g.grid == (2, 4) and g.cls_token is None


def test_random_weights_are_the_same_in_every_process(vit_s):
    torch.manual_seed(123)                               # the global generator does not matter
    again = TokenExtractor("vit_small_patch14_dinov2", image_size=98)
    image = _photo(98, 98, seed=3)
    np.testing.assert_array_equal(again([image])[0].descriptors, vit_s([image])[0].descriptors)


def test_a_block_is_named_by_index_from_either_end_or_as_blocks_n(vit_s):
    a = TokenExtractor("vit_small_patch14_dinov2", layer=3, image_size=56)
    b = TokenExtractor("vit_small_patch14_dinov2", layer="blocks.3", image_size=56)
    c = TokenExtractor("vit_small_patch14_dinov2", layer=-9, image_size=56)
    assert a.block == b.block == c.block == 3 and vit_s.block == 11


@pytest.mark.parametrize("kwargs,named", [
    ({"layer": 12}, "layer=12: a block index 0..11"),
    ({"layer": "bn2"}, "CNN layer names are for features.deep.DeepExtractor"),
    ({"resize": "none"}, "resize='none': a transformer needs image sides that are multiples"),
    ({"image_size": 500}, "image_size=500: must be a multiple of the patch size 14 (e.g. 490 or 504)"),
    ({"name": "resnet50"}, "name='resnet50': not a vision transformer"),
    ({"name": "vit_nonexistent"}, "name='vit_nonexistent': not a timm model"),
])
def test_bad_settings_are_named(kwargs, named):
    with pytest.raises(ParameterError) as e:
        TokenExtractor(**{"image_size": 56, **kwargs})
    assert named in str(e.value)


def test_class_tokens_round_trip_through_the_store(tmp_path):
    from chunk_sources import ListedImages
    from features.store import FeatureStore
    rng = np.random.default_rng(0)
    feats = [LocalFeatures.from_map(rng.normal(size=(4, 2, 3)).astype(np.float32),
                                    rng.normal(size=4).astype(np.float32)) for _ in range(5)]
    source = ListedImages([f"im{i}" for i in range(5)], lambda spec: feats[spec.lo:spec.hi])
    stored = FeatureStore(tmp_path, "float32", chunk_size=2).get("toy", source, {"k": 1},
                                                                  progress=False)
    for s, f in zip(stored, feats):
        np.testing.assert_array_equal(s.cls_token, f.cls_token)
        np.testing.assert_array_equal(s.descriptors, f.descriptors)
    assert (stored.entry / "chunk_00002" / "cls_token.npy").exists()
