"""Read pickled ground truth from strangers without letting the file run code or exhaust memory.

A pickle names the callables that rebuild its objects; the standard unpickler imports and calls
whatever it names (``os.system`` included). This one accepts only what a ground-truth file needs:
plain containers, strings, numbers, None, booleans and numpy arrays, dtypes and scalars. The
constructors it allows are wrapped so that none allocates more than the file holds: ``bytes(N)``
is refused, and an array's declared size must match the data present before numpy sees it.
"""
from __future__ import annotations

import importlib
import io
import math
import pickle
import struct
from pathlib import Path
from typing import Any, Callable

import numpy as np

from benchmarks.errors import DatasetError


class UnsafePickleError(DatasetError):
    """A pickle that asks for a global outside the allowed set, or for an allocation its data does
    not back; the message names the file and what was refused."""


class _Refused(pickle.UnpicklingError):
    """Raised inside the unpickler; ``safe_load`` turns it into an UnsafePickleError naming the file."""


def _numpy(name: str) -> Any:
    """``numpy._core.multiarray.X`` / ``numpy._core.numeric.X`` (numpy 2), else ``numpy.core...`` (1)."""
    module, _, attr = name.rpartition(".")
    for prefix in ("numpy._core", "numpy.core"):
        try:
            return getattr(importlib.import_module(f"{prefix}.{module}"), attr)
        except (ImportError, AttributeError):
            continue
    raise ImportError(f"numpy has no {name}")


class _NdarrayName:
    """Stands for ``numpy.ndarray`` in a pickle: it may be handed to ``_reconstruct`` (as numpy's
    pickles do), never called, since ``ndarray(shape)`` allocates ``shape`` before any data."""

    def __call__(self, *args, **kwargs):
        raise _Refused("it calls numpy.ndarray directly, which allocates an array its data do not fill")


_NDARRAY = _NdarrayName()
_DTYPE_KINDS = "biufcSUO"  # bool, integers, floats, complex, bytes, str, object; no structured/void


def _shape(shape) -> tuple[int, ...]:
    if not (isinstance(shape, tuple) and all(isinstance(n, (int, np.integer)) and not isinstance(n, bool)
                                             and n >= 0 for n in shape)):
        raise _Refused(f"an array has the malformed shape {shape!r}")
    return tuple(int(n) for n in shape)


def _check_array_data(shape, dtype, data) -> None:
    """Refuse an array whose declared size differs from the data present (checked in Python
    integers, before numpy allocates anything)."""
    shape = _shape(shape)
    if not isinstance(dtype, np.dtype):
        raise _Refused(f"an array has the dtype {dtype!r}, not a numpy dtype")
    size = math.prod(shape)
    if dtype.hasobject:
        if dtype.kind != "O" or not isinstance(data, list) or len(data) != size:
            held = len(data) if isinstance(data, list) else type(data).__name__
            raise _Refused(f"an object array of shape {shape} holds {held} items")
        return
    if not isinstance(data, (bytes, bytearray, str)) or len(data) != size * dtype.itemsize:
        held = f"{len(data)} bytes" if isinstance(data, (bytes, bytearray, str)) else type(data).__name__
        raise _Refused(f"an array of shape {shape} and dtype {dtype} ({size * dtype.itemsize} bytes) "
                       f"holds {held}")


def _reconstruct(subtype, shape, code):
    """``_reconstruct(ndarray, (0,), b'b')``, the empty array numpy's pickles fill with BUILD."""
    if subtype is not _NDARRAY or math.prod(_shape(shape)) != 0:
        raise _Refused(f"it asks _reconstruct for a {shape!r} array before any data")
    return _numpy("multiarray._reconstruct")(np.ndarray, shape, code)


def _scalar(dtype, data=None):
    """``scalar(dtype, data)``: a numpy scalar from exactly ``itemsize`` bytes (or the object itself)."""
    if not isinstance(dtype, np.dtype):
        raise _Refused(f"a numpy scalar has the dtype {dtype!r}")
    if not dtype.hasobject:
        _check_array_data((), dtype, data)
    return _numpy("multiarray.scalar")(dtype, data)


def _frombuffer(buffer, dtype, shape, order):
    """``_frombuffer`` of protocol-5 pickles, with the buffer in the file."""
    if not isinstance(dtype, np.dtype) or dtype.hasobject or order not in ("C", "F"):
        raise _Refused(f"an array has the dtype {dtype!r} or the order {order!r}")
    _check_array_data(shape, dtype, buffer)
    return _numpy("numeric._frombuffer")(buffer, dtype, shape, order)


def _dtype(spec, align=False, copy=True):
    """``numpy.dtype('i8', False, True)``: plain dtypes named by a string; no structured ones."""
    if not isinstance(spec, str):
        raise _Refused(f"it asks for the dtype {spec!r}; only dtypes named by a string are accepted")
    dtype = np.dtype(spec, align=bool(align), copy=bool(copy))
    if dtype.kind not in _DTYPE_KINDS:
        raise _Refused(f"it asks for the dtype {dtype} (kind {dtype.kind!r}), which ground truth never needs")
    return dtype


def _sized_from_data(cls: type) -> Callable:
    """``bytes`` / ``bytearray`` as pickles call them: empty, or from a str or bytes they hold;
    ``bytes(N)`` would allocate N bytes the file does not hold."""
    def build(*args):
        if args and not isinstance(args[0], (str, bytes, bytearray)):
            raise _Refused(f"it calls {cls.__name__}({type(args[0]).__name__}), which allocates what "
                           "the file does not hold")
        return cls(*args)
    return build


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it for bytes, limited to that use."""
    if not isinstance(text, str) or encoding.replace("-", "").lower() != "latin1":
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r} is not allowed")
    return text.encode("latin1")


_ALLOWED: dict[tuple[str, str], Any] = {
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "bytes"): _sized_from_data(bytes),
    ("builtins", "bytearray"): _sized_from_data(bytearray),
    ("_codecs", "encode"): _latin1_encode,
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _dtype,
}
for _core in ("numpy.core", "numpy._core"):  # numpy 1 and 2 pickles
    _ALLOWED[(f"{_core}.multiarray", "_reconstruct")] = _reconstruct
    _ALLOWED[(f"{_core}.multiarray", "scalar")] = _scalar
    _ALLOWED[(f"{_core}.numeric", "_frombuffer")] = _frombuffer


def _build(self) -> None:
    """BUILD (``obj.__setstate__(state)``), allowed on numpy arrays and dtypes only, with the
    array's declared size checked against its data first."""
    state, inst = self.stack[-1], self.stack[-2]
    if type(inst) is np.ndarray:
        if not (isinstance(state, tuple) and len(state) in (4, 5)):
            raise _Refused("an array has a malformed state")
        _check_array_data(state[-4], state[-3], state[-1])
    elif isinstance(inst, np.dtype):
        if not (isinstance(state, tuple) and len(state) >= 5 and state[2:5] == (None, None, None)):
            raise _Refused("a dtype state declares fields or a sub-array, which ground truth never needs")
    else:
        raise _Refused(f"it sets the state of a {type(inst).__name__}")
    pickle._Unpickler.load_build(self)


# The pure-Python unpickler: the C one offers no hook on BUILD, where numpy sizes an array (and,
# for object arrays, trusts the declared size: a short list leaves NULL items that crash Python).
# Measured: 18 ms for a 250 kB revisitop-sized pickle (the C unpickler: 2 ms), once per run.
class _RestrictedUnpickler(pickle._Unpickler):
    dispatch = {**pickle._Unpickler.dispatch, pickle.BUILD[0]: _build}

    def __init__(self, file, source: Path):
        super().__init__(file)
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        module = "builtins" if module == "__builtin__" else module  # Python 2 / protocol < 3 name
        if (module, name) not in _ALLOWED:
            raise UnsafePickleError(
                f"refusing to load {self.source}: it asks for the global {module}.{name}, which a "
                "ground-truth file never needs (only containers, strings, numbers and numpy arrays "
                "are accepted). The file may be malicious; if you trust its author, convert it to "
                "JSON (docs/datasets.md) and load that instead")
        return _ALLOWED[(module, name)]

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"refusing to load {self.source}: it holds persistent references")


def safe_load(path: Path | str) -> Any:
    """Unpickle ``path`` accepting only plain data; UnsafePickleError names any refused global or
    allocation, DatasetError (naming the file) any other defect."""
    path = Path(path)
    try:
        data = path.read_bytes()  # every read below is then bounded by the file's size
    except FileNotFoundError:
        raise DatasetError(f"ground-truth file {path} does not exist") from None
    except OSError as e:
        raise DatasetError(f"cannot read the ground-truth file {path} ({e})") from e
    try:
        return _RestrictedUnpickler(io.BytesIO(data), path).load()
    except UnsafePickleError:
        raise
    except _Refused as e:
        raise UnsafePickleError(f"refusing to load {path}: {e}. The file may be malicious; if you "
                                "trust its author, convert it to JSON (docs/datasets.md)") from e
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, struct.error, OverflowError, MemoryError, RecursionError, ImportError) as e:
        raise DatasetError(f"cannot read the pickle {path} ({type(e).__name__}: {e}); the file is "
                           "truncated or not a ground-truth pickle: re-download it") from e
