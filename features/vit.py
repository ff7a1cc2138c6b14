"""Patch tokens of a vision transformer as local features: any timm ViT-family model (ViT, DeiT,
DINOv2 with and without registers, EVA, CLIP and SigLIP image towers), at any block.

Conventions, the same as a CNN map's: the patch tokens of an (H, W) input form an
(H / patch, W / patch) grid, row-major, each at its cell centre, so SPoC's centre prior, R-MAC
regions and CroW apply unchanged. Prefix tokens are never taken for patches: the class token (when
the model has one) is kept as ``LocalFeatures.cls_token``; register tokens are dropped.

Inputs follow the ``resize`` policy (``square`` or ``max_side``) with every side rounded to a
multiple of the patch size; the position embeddings are interpolated for any size other than the
pre-training one (timm's ``dynamic_img_size``). Token features are signed: see README, "Signed
features", for what each aggregator does with them.
"""
from __future__ import annotations

from typing import ClassVar, Sequence

from benchmarks.errors import ParameterError
from features.deep import DeviceExtractor
from features.local_features import LocalFeatures

OWNER = "TokenExtractor"


def build_transformer(name: str):
    """A random-weights timm vision transformer accepting any input size, or ParameterError. The
    random weights are drawn with seed 0 (torch's global generator untouched), so a
    random-weights extractor gives the same features in every process."""
    import timm
    import torch
    if not timm.is_model(name):
        raise ParameterError("name", name, "not a timm model; see timm.list_models('vit_*')", OWNER)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = timm.create_model(name, pretrained=False, num_classes=0, dynamic_img_size=True)
    except TypeError:   # models without the argument are no ViT family members
        model = None
    if model is None or not hasattr(model, "forward_intermediates") or not hasattr(model, "blocks"):
        raise ParameterError("name", name, "not a vision transformer with patch tokens (ViT, DeiT, "
                             "DINOv2, EVA, CLIP, SigLIP); CNNs use features.deep.DeepExtractor",
                             OWNER)
    return model.eval()


def block_index(layer, depth: int) -> int:
    """The block ``layer`` names, 0 .. depth - 1: an index (negative counts from the end) or
    ``blocks.N``; ParameterError listing the valid values otherwise (a CNN layer name too)."""
    text = str(layer)
    index = None
    if isinstance(layer, int) and not isinstance(layer, bool):
        index = layer
    elif text.startswith("blocks.") and text[7:].lstrip("-").isdigit():
        index = int(text[7:])
    elif text.lstrip("-").isdigit():
        index = int(text)
    if index is None or not -depth <= index < depth:
        raise ParameterError("layer", layer, f"a block index 0..{depth - 1} (negative: from the "
                             f"end, -1 the last) or 'blocks.N'; this model has {depth} blocks "
                             "(CNN layer names are for features.deep.DeepExtractor)", OWNER)
    return index % depth


class TokenExtractor(DeviceExtractor):
    """PIL images -> LocalFeatures of a vision transformer's patch tokens after block ``layer``.

    name:    a timm model name (``vit_small_patch14_dinov2``, ``vit_base_patch14_reg4_dinov2``,
             ``vit_base_patch16_clip_224``, ``vit_base_patch16_siglip_224``, ...).
    layer:   block index (-1: the last) or ``blocks.N``.
    norm:    apply the model's final norm layer to the tokens (what DINOv2's
             ``x_norm_patchtokens`` are).
    weights: None (random), a state-dict file, or ``timm`` (timm's pretrained weights of
             ``name``: downloaded once from the Hugging Face hub and cached; a run checks the
             cache before any work).
    mean, std: input normalisation; None takes the model's own (its pretrained config).
    resize, image_size, interpolation: as for every extractor; ``resize=none`` is refused (a
             transformer needs sides that are multiples of its patch size) and ``image_size``
             must be such a multiple.
    scale:   image sides times it after the resize policy, then rounded to the patch size (one
             scale of a multi-scale run, ``multiscale.scales``).
    """

    kind: ClassVar[str] = "tokens"

    def __init__(self, name: str = "vit_small_patch14_dinov2", layer: int | str = -1,
                 norm: bool = True, weights: str | None = None, resize: str = "max_side",
                 image_size: int = 518, interpolation: str = "bicubic",
                 mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                 scale: float = 1.0, device: str = "cpu", precision: str = "fp32",
                 decode: str = "pil"):
        from features.weights import load_weights
        model = build_transformer(name)
        patch = model.patch_embed.patch_size
        self.multiple = int(patch[0] if isinstance(patch, (tuple, list)) else patch)
        if resize == "none":
            raise ParameterError("resize", resize, "a transformer needs image sides that are "
                                 f"multiples of its patch size ({self.multiple}): use max_side or "
                                 "square", OWNER)
        if isinstance(image_size, int) and image_size % self.multiple:
            low = max(self.multiple, image_size // self.multiple * self.multiple)
            raise ParameterError("image_size", image_size, f"must be a multiple of the patch size "
                                 f"{self.multiple} (e.g. {low} or {low + self.multiple})", OWNER)
        config = model.pretrained_cfg
        self._set_common(OWNER, resize, image_size, interpolation,
                         config.get("mean", (0.5,) * 3) if mean is None else mean,
                         config.get("std", (0.5,) * 3) if std is None else std,
                         device, precision, decode, scale)
        self.name, self.norm, self.weights = name, norm, weights
        self.block = block_index(layer, len(model.blocks))
        self.layer = layer
        self.weights_provenance = load_weights(model, "timm", name, weights)
        self.has_cls = getattr(model, "cls_token", None) is not None
        self.net = model.to(self.device)

    def features_of(self, x) -> list[LocalFeatures]:
        def forward(x):
            return self.net.forward_intermediates(
                x, indices=[self.block], norm=self.norm, return_prefix_tokens=True,
                output_fmt="NCHW", intermediates_only=True)[0]
        out = self._forward(forward, x)
        patches, prefix = out if isinstance(out, tuple) else (out, None)
        maps = patches.float().cpu().numpy()
        cls = prefix[:, 0].float().cpu().numpy() if self.has_cls and prefix is not None else None
        return [LocalFeatures.from_map(m, None if cls is None else cls[i]) for i, m in enumerate(maps)]
