"""The settings of the store and of extraction as typed config nodes, shared by every app that
reads features (``deepagg-run``, ``deepagg-extract``, ``deepagg-similarity``)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from omegaconf import MISSING


@dataclass
class StoreConfig:
    """The on-disk feature store (features/store/)."""
    root: str = MISSING
    dtype: str = "float16"                    # float16 | float32 (new entries)
    chunk_size: int = 64                      # images per atomically written chunk (new entries)
    verify_checksums: bool = True             # check each chunk's CRC-32 when first read in a run
    verify_images: bool = False               # re-hash every image against its chunk's record at
    #   opening (reads every image file): an image edited with its size and mtime kept is found
    local_features: str = "keep"              # keep | discard: store only the test database's final
    #   descriptors (one extraction pass per aggregator + post-processing; see README, "Scale")


@dataclass
class ExecutionSettings:
    """Where and how the extractor runs (top-level keys of the apps); none of it changes what is
    computed except ``precision`` and ``decode``, which enter the store identity when not at their
    defaults."""
    device: str = "cpu"                       # cpu | cuda | cuda:N
    precision: str = "fp32"                   # fp32 | fp16 | bf16 (torch.autocast)
    decode: str = "pil"                       # pil (loader workers) | torchvision (JPEGs on the device)
    batch_size: Optional[int] = None          # images per forward pass; null = auto (1 on the CPU,
    #   fastest here for EfficientNet-Lite0; 32 on a GPU)
    num_workers: Optional[int] = None         # loader worker processes; null = auto (0 for a CNN on the
    #   CPU, cores - 1 on a GPU, cores for SIFT; at most 8)
    threads: Optional[int] = None             # torch threads; null = the cores this job may use
    min_image_side: int = 32                  # smaller images stop the extraction, named
