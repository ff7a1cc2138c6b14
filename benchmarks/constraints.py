"""What a hyper-parameter must be, as data: each estimator (aggregators, post-processing steps,
re-rankers) lists ``constraints = {"param": Integer(1), ...}`` and one ``check_constraints`` reads
the table, raising ``ParameterError`` with the parameter's name, its value and what it must be.
Booleans are never numbers here (``True`` is no count of clusters)."""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from benchmarks.errors import ParameterError


@dataclass(frozen=True)
class Integer:
    """A whole number >= ``low`` (None allowed when ``optional``)."""
    low: int = 1
    optional: bool = False
    note: str = ""

    def problem(self, value) -> str | None:
        if value is None and self.optional:
            return None
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < self.low:
            what = "a positive integer" if self.low == 1 else f"an integer >= {self.low}"
            return _with_note(f"must be {'null or ' if self.optional else ''}{what}", self.note)
        return None


@dataclass(frozen=True)
class Real:
    """A number in the interval from ``low`` to ``high`` (None: unbounded), ends open or closed;
    finite unless ``allow_inf``."""
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    allow_inf: bool = False
    optional: bool = False
    note: str = ""

    def problem(self, value) -> str | None:
        if value is None and self.optional:
            return None
        ok = (not isinstance(value, bool) and isinstance(value, numbers.Real)
              and not math.isnan(value) and (self.allow_inf or math.isfinite(value))
              and (self.low is None or (value > self.low if self.low_open else value >= self.low))
              and (self.high is None or (value < self.high if self.high_open else value <= self.high)))
        return None if ok else _with_note(self.describe(), self.note)

    def describe(self) -> str:
        if self.high is None:
            bound = "" if self.low is None else f" {'>' if self.low_open else '>='} {self.low:g}"
            text = (f"must be {'null or ' if self.optional else ''}a "
                    f"{'finite ' if not self.allow_inf and self.low is None else ''}number{bound}")
            return text + (" (inf allowed)" if self.allow_inf else "")
        return (f"must be in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}"
                f"{')' if self.high_open else ']'}")


@dataclass(frozen=True)
class Boolean:
    """true or false."""

    def problem(self, value) -> str | None:
        return None if isinstance(value, (bool, np.bool_)) else "must be true or false"


@dataclass(frozen=True)
class OneOf:
    """One of ``options``."""
    options: tuple

    def problem(self, value) -> str | None:
        return None if value in self.options else f"expected one of {self.options}"


@dataclass(frozen=True)
class Device:
    """``cpu``, ``cuda`` or ``cuda:N`` present on this machine (torch's CUDA runtime is asked
    only for a CUDA device)."""

    def problem(self, value) -> str | None:
        if value == "cpu":
            return None
        if not (isinstance(value, str)
                and (value == "cuda" or (value.startswith("cuda:") and value[5:].isdigit()))):
            return "expected cpu, cuda or cuda:N"
        import torch
        if not torch.cuda.is_available():
            return "no CUDA device is available here; use device=cpu"
        if (int(value[5:]) if ":" in value else 0) >= torch.cuda.device_count():
            return f"this machine has {torch.cuda.device_count()} CUDA device(s)"
        return None


def check_constraints(owner, constraints: Mapping[str, object]) -> None:
    """ParameterError for the first attribute of ``owner`` that breaks its constraint."""
    check_values({param: getattr(owner, param) for param in constraints}, constraints,
                 type(owner).__name__)


def check_values(values: Mapping[str, object], constraints: Mapping[str, object],
                 owner: str = "", prefix: str = "") -> None:
    """ParameterError for the first of ``values`` (settings by name: a config node, a
    constructor's arguments) that breaks its constraint, named ``prefix.param`` (a config
    group) or ``param``; ``owner`` is named in it."""
    for param, constraint in constraints.items():
        value = values[param]
        reason = constraint.problem(value)
        if reason is not None:
            raise ParameterError(f"{prefix}.{param}" if prefix else param, value, reason, owner)


def check_device(device, owner: str = "") -> None:
    """ParameterError unless ``device`` is a device of this machine (``Device``)."""
    check_values({"device": device}, {"device": Device()}, owner)


def _with_note(text: str, note: str) -> str:
    return f"{text} ({note})" if note else text
