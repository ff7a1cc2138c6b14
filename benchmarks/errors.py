"""The project's error types: bad input that a user can fix, each message naming the file or the
setting and what to do. Apps catch ``DeepaggError`` and print one line (exit code 2); any other
exception is a bug and keeps its traceback (exit code 1).

They live here, on the ground floor, so that every layer can raise them: ``features`` and
``aggregators`` import ``benchmarks.errors``, never the other way round.
"""
from __future__ import annotations

from pathlib import Path


class DeepaggError(Exception):
    """Base of every error caused by input (a setting, a file, a dataset) rather than by a bug."""


class ParameterError(DeepaggError, ValueError):
    """A constructor argument (hyper-parameter, extractor or store setting) that cannot work.

    ``param`` is the argument's name, which is also its config key inside its group; the apps
    prefix the group (``aggregator.p``, ``rerank.k``, ``backbone.image_size``).
    """

    def __init__(self, param: str, value, reason: str, owner: str = ""):
        self.param, self.value, self.reason, self.owner = param, value, reason, owner
        super().__init__(f"{param}={value!r}: {reason}" + (f" ({owner})" if owner else ""))

    def with_prefix(self, prefix: str) -> "ParameterError":
        """The same error with the config path ``prefix.param`` (e.g. ``aggregator``)."""
        out = ParameterError(f"{prefix}.{self.param}" if prefix else self.param, self.value,
                             self.reason, self.owner)
        out.__cause__ = self.__cause__
        return out


class ConfigError(DeepaggError, ValueError):
    """A setting that cannot work (a name that is no config, a combination that contradicts
    itself); the message names the key and what to do."""


class DatasetError(DeepaggError, ValueError):
    """A dataset that cannot be loaded as configured; the message names the file and the fix."""


class ImageLoadError(DeepaggError, RuntimeError):
    """An image that cannot be read or is unusable; the message names the file and what to do."""


class WeightsError(DeepaggError, RuntimeError):
    """Backbone weights that fail to load: a download that failed, a file of another model."""


class StoreError(DeepaggError, RuntimeError):
    """The feature store cannot be read or written (full disk, foreign layout, permissions)."""


class RecordsError(DeepaggError, FileNotFoundError):
    """A results folder without the records a command needs (``deepagg-report``)."""


class OutputError(DeepaggError, RuntimeError):
    """A run's outputs (tables, figures, records) cannot be written: full disk, permissions."""


def missing_root(dataset: str, root: Path, layout: str, download: str | None) -> DatasetError:
    """The error for a dataset root that does not exist: where, which layout, how to get it."""
    how = (f"get it with `deepagg-download {download} --root {root}`" if download
           else "see docs/datasets.md for where to get it")
    return DatasetError(f"{dataset}: dataset root {root} does not exist; {how}, or point `data_root` "
                        f"(or `dataset.root`) at your copy. Expected layout:\n{layout}")
