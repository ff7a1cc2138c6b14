"""The error dataset loaders raise for missing, incomplete or malformed benchmark files."""
from __future__ import annotations

from pathlib import Path


class DatasetError(ValueError):
    """A dataset that cannot be loaded as configured; the message names the file and the fix."""


def missing_root(dataset: str, root: Path, layout: str, download: str | None) -> DatasetError:
    """The error for a dataset root that does not exist: where, which layout, how to get it."""
    how = (f"get it with `deepagg-download {download} --root {root}`" if download
           else "see docs/datasets.md for where to get it")
    return DatasetError(f"{dataset}: dataset root {root} does not exist; {how}, or point `data_root` "
                        f"(or `dataset.root`) at your copy. Expected layout:\n{layout}")
