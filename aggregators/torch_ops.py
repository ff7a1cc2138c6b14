"""Torch helpers shared by the learned aggregators' batched encoders (VLAD, Fisher vector,
triangulation embedding): the ``device`` setting, learned arrays as cached device tensors, images
grouped into row-bounded chunks (stacked or zero-padded). The formulas themselves are in
``aggregators/functional.py``, shared with the NumPy encoders.

Conventions: a batch is a list of ``LocalFeatures``; rows of a stacked chunk are the images'
local features one image after the other; a padded chunk is (B, n_max, d) with zero rows after
each image's n rows. Learned state stays NumPy (pickled, device-independent); tensors are derived
from it on demand and cached per estimator outside its ``__dict__`` (never pickled or cloned).
"""
from __future__ import annotations

import warnings
import weakref
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from benchmarks.constraints import check_device

from features import LocalFeatures

#: Bytes of the widest per-chunk intermediate on the CPU / on a CUDA device.
_CPU_CHUNK_BYTES = 2 ** 23
_CUDA_CHUNK_BYTES = 2 ** 30

_CACHE: "weakref.WeakKeyDictionary[object, dict]" = weakref.WeakKeyDictionary()


# ------------------------------------------------------------------------------- device setting
class OnDevice:
    """Mixin of the aggregators that encode in torch. Where they run is not a hyper-parameter:
    ``to(device)`` sets ``device`` (``cpu``, ``cuda``, ``cuda:N``; default ``cpu``), which is
    absent from ``get_params`` and from every copy (``clone``, pickles, ``copy.deepcopy``), so a
    fit is keyed, cached and loaded without it (a copy runs on the CPU until its ``to``). (The cached tensors live in this
    module, not in the estimator.)"""

    device: str = "cpu"

    def to(self, device: str):
        """Encode on ``device`` from now on (ParameterError when it is not here); returns self."""
        check_device(device, type(self).__name__)
        self.device = device
        return self

    def __getstate__(self) -> dict:
        state = dict(super().__getstate__())   # a copy: object's is the live __dict__
        state.pop("device", None)
        return state

    def __setstate__(self, state: dict) -> None:
        state = dict(state)
        state.pop("device", None)   # pickles of versions with a device hyper-parameter
        super().__setstate__(state)


def learned(owner, key: str, sources: Sequence[np.ndarray],
            build: Callable[..., torch.Tensor]) -> torch.Tensor:
    """``build(*sources)``, cached for ``owner`` under ``key`` while every source is the same
    object (learned state is replaced on refit, never modified in place)."""
    slot = _CACHE.setdefault(owner, {})
    hit = slot.get(key)
    if hit is None or any(a is not b for a, b in zip(hit[0], sources, strict=True)):
        hit = (tuple(sources), build(*sources))
        slot[key] = hit
    return hit[1]


def as_tensor(array: np.ndarray, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """A NumPy array as a contiguous tensor of ``dtype`` on ``device`` (no copy when it already
    is one on the CPU). Read-only arrays (the memory-mapped store) are shared as they are: the
    encoders only read their inputs."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.as_tensor(np.ascontiguousarray(array), device=device).to(dtype)


def exact_float32_matmul(device: torch.device) -> bool:
    """True when float32 matrix products on ``device`` round as IEEE float32 (no TF32 or bf16
    shortcut was switched on), so float32 error bounds hold."""
    if torch.get_float32_matmul_precision() != "highest":
        return False
    if device.type == "cuda":
        matmul = torch.backends.cuda.matmul
        if matmul.allow_tf32:
            return False
    else:
        matmul = getattr(torch.backends.mkldnn, "matmul", None)
    return getattr(matmul, "fp32_precision", "none") in ("none", "ieee")


# ------------------------------------------------------------------------------- chunks
def chunks(batch: Sequence[LocalFeatures], row_bytes: int,
           device: torch.device) -> Iterator[list[int]]:
    """Indices of ``batch`` in groups whose rows (local features) times ``row_bytes`` fit the
    device's chunk budget (an image larger than the budget is a group alone). Images are taken in
    order of their feature counts, so that a padded group wastes little."""
    budget = _CUDA_CHUNK_BYTES if device.type == "cuda" else _CPU_CHUNK_BYTES
    group: list[int] = []
    rows = 0
    for i in sorted(range(len(batch)), key=lambda i: batch[i].n):
        n = batch[i].n
        if group and (rows + n) * row_bytes > budget:
            yield group
            group, rows = [], 0
        group.append(i)
        rows += n
    if group:
        yield group


def stacked(batch: Sequence[LocalFeatures], group: list[int], device: torch.device,
            dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, d) rows of the group's images one after the other, and (N,) the position of each
    row's image within the group."""
    parts = [batch[i].descriptors for i in group]
    x = parts[0] if len(parts) == 1 else np.concatenate(parts)
    counts = torch.tensor([batch[i].n for i in group], device=device)
    image = torch.repeat_interleave(torch.arange(len(group), device=device), counts)
    return as_tensor(x, device, dtype), image


def padded(batch: Sequence[LocalFeatures], group: list[int], device: torch.device,
           dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, n_max, d) features, zero after each image's n rows, and the (B,) counts n."""
    counts = [batch[i].n for i in group]
    if len(set(counts)) == 1:
        x = np.stack([batch[i].descriptors for i in group])
    else:
        x = np.zeros((len(group), max(counts), batch[group[0]].dim), np.float32)
        for row, i in enumerate(group):
            x[row, :counts[row]] = batch[i].descriptors
    return as_tensor(x, device, dtype), torch.tensor(counts, device=device)


def row_mask(counts: torch.Tensor, n_max: int) -> torch.Tensor:
    """(B, n_max) True on real rows of a padded chunk."""
    return torch.arange(n_max, device=counts.device)[None] < counts[:, None]
