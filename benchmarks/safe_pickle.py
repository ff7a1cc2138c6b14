"""Read pickled ground truth from strangers without letting the file run code.

A pickle names the callables that rebuild its objects; the standard unpickler imports and calls
whatever it names (``os.system`` included). This one accepts only what a ground-truth file needs:
plain containers, strings, numbers, None, booleans and numpy arrays, dtypes and scalars.
"""
from __future__ import annotations

import importlib
import pickle
from pathlib import Path
from typing import Any, Callable

from benchmarks.errors import DatasetError


class UnsafePickleError(DatasetError):
    """A pickle that asks for a global outside the allowed set; the message names file and global."""


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it for bytes, limited to that use."""
    if encoding.replace("-", "").lower() != "latin1":
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r} is not allowed")
    return text.encode("latin1")


def _numpy(module: str, name: str) -> Callable[[], Any]:
    """Resolve ``numpy.core.X`` and ``numpy._core.X`` alike (numpy 1 and 2 pickles)."""
    def get():
        for mod in dict.fromkeys([module.replace("numpy.core", "numpy._core"), module]):
            try:
                return getattr(importlib.import_module(mod), name)
            except (ImportError, AttributeError):
                continue
        raise pickle.UnpicklingError(f"numpy has no {module}.{name}")
    return get


_ALLOWED: dict[tuple[str, str], Callable[[], Any]] = {
    ("builtins", "set"): lambda: set,
    ("builtins", "frozenset"): lambda: frozenset,
    ("builtins", "bytes"): lambda: bytes,
    ("builtins", "bytearray"): lambda: bytearray,
    ("_codecs", "encode"): lambda: _latin1_encode,
    ("numpy", "ndarray"): _numpy("numpy", "ndarray"),
    ("numpy", "dtype"): _numpy("numpy", "dtype"),
}
for _mod in ("numpy.core", "numpy._core"):
    _ALLOWED[(f"{_mod}.multiarray", "_reconstruct")] = _numpy(f"{_mod}.multiarray", "_reconstruct")
    _ALLOWED[(f"{_mod}.multiarray", "scalar")] = _numpy(f"{_mod}.multiarray", "scalar")
    _ALLOWED[(f"{_mod}.numeric", "_frombuffer")] = _numpy(f"{_mod}.numeric", "_frombuffer")


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, source: Path):
        super().__init__(file)
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        module = "builtins" if module == "__builtin__" else module  # Python 2 / protocol < 3 name
        get = _ALLOWED.get((module, name))
        if get is None:
            raise UnsafePickleError(
                f"refusing to load {self.source}: it asks for the global {module}.{name}, which a "
                "ground-truth file never needs (only containers, strings, numbers and numpy arrays "
                "are accepted). The file may be malicious; if you trust its author, convert it to "
                "JSON (docs/datasets.md) and load that instead")
        return get()

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"refusing to load {self.source}: it holds persistent references")


def safe_load(path: Path | str) -> Any:
    """Unpickle ``path`` accepting only plain data; UnsafePickleError names any refused global."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return _RestrictedUnpickler(f, path).load()
    except FileNotFoundError:
        raise DatasetError(f"ground-truth file {path} does not exist") from None
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as e:
        raise DatasetError(f"cannot read the pickle {path} ({e}); the file is truncated or not a "
                           "ground-truth pickle: re-download it") from e
