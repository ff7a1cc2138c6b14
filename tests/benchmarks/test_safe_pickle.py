"""The restricted unpickler: real-schema ground truth loads, anything that could run code is refused."""
from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from benchmarks.errors import DatasetError
from benchmarks.safe_pickle import UnsafePickleError, safe_load


def _schema():
    return {"imlist": ["all_souls_000000", "oxford_000001"], "qimlist": ["all_souls_000002"],
            "gnd": [{"bbx": [1.5, 2.0, 30.0, 40.0], "easy": np.array([0]),
                     "hard": np.array([], dtype=np.int64), "junk": np.array([1], dtype=np.int32)}],
            "extra": (np.float64(0.5), np.int64(3), {1, 2}, frozenset({3}), None, True, b"raw")}


@pytest.mark.parametrize("protocol", range(0, pickle.HIGHEST_PROTOCOL + 1))
def test_real_schema_with_numpy_arrays_loads(tmp_path, protocol):
    path = tmp_path / "gnd.pkl"
    path.write_bytes(pickle.dumps(_schema(), protocol=protocol))
    got = safe_load(path)
    want = _schema()
    assert got["imlist"] == want["imlist"] and got["qimlist"] == want["qimlist"]
    for k in ("easy", "hard", "junk"):
        np.testing.assert_array_equal(got["gnd"][0][k], want["gnd"][0][k])
        assert got["gnd"][0][k].dtype == want["gnd"][0][k].dtype
    assert got["gnd"][0]["bbx"] == want["gnd"][0]["bbx"] and got["extra"] == want["extra"]


def test_numpy_1_module_names_load(tmp_path):
    # numpy 1 pickles name numpy.core.multiarray; protocol 2 spells globals out as text
    data = pickle.dumps({"easy": np.arange(3)}, protocol=2)
    assert b"numpy._core" in data
    (tmp_path / "old.pkl").write_bytes(data.replace(b"numpy._core", b"numpy.core"))
    np.testing.assert_array_equal(safe_load(tmp_path / "old.pkl")["easy"], np.arange(3))


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo owned > /dev/null",))


def test_malicious_pickle_is_refused_with_file_and_global_named(tmp_path):
    path = tmp_path / "gnd_evil.pkl"
    path.write_bytes(pickle.dumps({"imlist": [], "gnd": [_Exploit()]}))  # built, never executed
    with pytest.raises(UnsafePickleError) as e:
        safe_load(path)
    msg = str(e.value)
    assert str(path) in msg and f"{os.system.__module__}.system" in msg
    assert isinstance(e.value, DatasetError)


@pytest.mark.parametrize("module,name", [
    ("builtins", "eval"), ("numpy", "load"), ("subprocess", "Popen"),
    ("numpy.core.multiarray", "frombuffer"), ("copyreg", "_reconstructor"),
])
def test_other_globals_are_refused(tmp_path, module, name):
    path = tmp_path / "x.pkl"
    path.write_bytes(b"c" + f"{module}\n{name}\n".encode() + b").")
    with pytest.raises(UnsafePickleError, match=f"{module}.{name}"):
        safe_load(path)


def test_codecs_encode_only_for_latin1(tmp_path):
    path = tmp_path / "x.pkl"
    path.write_bytes(b"c_codecs\nencode\n(Vabc\nVrot13\ntR.")
    with pytest.raises(DatasetError, match="rot13"):
        safe_load(path)


def test_truncated_and_missing_files(tmp_path):
    (tmp_path / "t.pkl").write_bytes(pickle.dumps(_schema())[:40])
    with pytest.raises(DatasetError, match="t.pkl"):
        safe_load(tmp_path / "t.pkl")
    with pytest.raises(DatasetError, match="nope.pkl"):
        safe_load(tmp_path / "nope.pkl")


# ----------------------------------------------------------------------------- allocation bounds
def _reconstruct_global():
    from numpy._core.multiarray import _reconstruct
    return _reconstruct


class _Reduce:
    """Pickles as ``func(*args)`` (then ``BUILD state`` when given): any call a hostile file can ask for."""

    def __init__(self, func, args, state=None):
        self.reduce = (func, args) if state is None else (func, args, state)

    def __reduce__(self):
        return self.reduce


def _refused_without_allocating(path, match):
    import tracemalloc

    tracemalloc.start()
    try:
        with pytest.raises(UnsafePickleError) as e:
            safe_load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(path) in str(e.value)
    assert e.match(match)
    assert peak < 2**20, f"{peak} bytes allocated before refusing"


def test_the_30_byte_bytearray_bomb_is_refused_before_allocating(tmp_path):
    path = tmp_path / "bomb.pkl"
    path.write_bytes(b"cbuiltins\nbytearray\n" + b"\x8a\x05" + (2**31).to_bytes(5, "little") + b"\x85R.")
    assert len(path.read_bytes()) == 30
    _refused_without_allocating(path, r"bytearray\(int\)")


@pytest.mark.parametrize("func", [bytes, bytearray])
def test_bytes_from_a_size_is_refused_at_any_protocol(tmp_path, func):
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        path = tmp_path / f"p{protocol}.pkl"
        path.write_bytes(pickle.dumps(_Reduce(func, (2**31,)), protocol=protocol))
        _refused_without_allocating(path, f"{func.__name__}\\(int\\)")


@pytest.mark.parametrize("payload,match", [
    (_Reduce(np.ndarray, ((2**31,), "u1")), "calls numpy.ndarray directly"),
    (_Reduce(_reconstruct_global(), (np.ndarray, (2**31,), b"b")),
     "_reconstruct for a \\(2147483648,\\) array"),
    (_Reduce(_reconstruct_global(), (np.ndarray, (0,), b"b"), (1, (2**40,), np.dtype("u1"), False, b"x")),
     r"shape \(1099511627776,\) and dtype uint8 \(1099511627776 bytes\) holds 1 bytes"),
    (_Reduce(_reconstruct_global(), (np.ndarray, (0,), b"b"), (1, (2**28,), np.dtype("O"), False, [1])),
     r"object array of shape \(268435456,\) holds 1 items"),
])
def test_arrays_larger_than_their_data_are_refused_before_allocating(tmp_path, payload, match):
    path = tmp_path / "array.pkl"
    path.write_bytes(pickle.dumps(payload, protocol=2))
    _refused_without_allocating(path, match)


@pytest.mark.parametrize("items", [[1], [1, 2, 3, 4]])
def test_object_array_with_the_wrong_item_count_is_refused(tmp_path, items):
    # numpy itself fills a 3-item object array from a 1-item list and leaves NULLs that crash Python
    path = tmp_path / "objects.pkl"
    path.write_bytes(pickle.dumps(_Reduce(_reconstruct_global(), (np.ndarray, (0,), b"b"),
                                          (1, (3,), np.dtype("O"), False, items))))
    with pytest.raises(UnsafePickleError, match=f"shape \\(3,\\) holds {len(items)} items"):
        safe_load(path)


def test_object_arrays_with_their_items_load(tmp_path):
    want = np.array(["a", 1, None], dtype=object)
    path = tmp_path / "objects.pkl"
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        path.write_bytes(pickle.dumps(want, protocol=protocol))
        got = safe_load(path)
        assert got.dtype == object and got.tolist() == ["a", 1, None]


def test_protocol_5_buffer_of_the_wrong_size_is_refused(tmp_path):
    from numpy._core.numeric import _frombuffer

    path = tmp_path / "p5.pkl"
    payload = _Reduce(_frombuffer, (bytearray(8), np.dtype("i8"), (2**20,), "C"))
    path.write_bytes(pickle.dumps(payload, protocol=5))
    with pytest.raises(UnsafePickleError, match=r"8388608 bytes\) holds 8 bytes"):
        safe_load(path)


@pytest.mark.parametrize("payload,match", [
    (np.zeros(2, dtype=[("a", "i4")]), "kind 'V'"),                  # structured arrays
    (_Reduce(np.dtype, (("u1", (4,)),)), "only dtypes named by a string"),
    (_Reduce(set, ([],), {"a": 1}), "sets the state of a set"),      # BUILD on anything but numpy
])
def test_numpy_and_state_forms_ground_truth_never_needs_are_refused(tmp_path, payload, match):
    path = tmp_path / "x.pkl"
    path.write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(UnsafePickleError, match=match):
        safe_load(path)


def test_every_damaged_pickle_is_an_error_naming_the_file(tmp_path):
    """Truncated at every byte, or with bytes flipped: the file loads, or a DatasetError names it;
    never another exception (and never a crash)."""
    data = pickle.dumps(_schema(), protocol=2) + b""
    path = tmp_path / "gnd.pkl"
    outcomes = {"loaded": 0, "refused": 0}
    rng = np.random.default_rng(0)
    damaged = [data[:cut] for cut in range(len(data))]
    for _ in range(300):
        flipped = bytearray(data)
        for i in rng.integers(0, len(data), 3):
            flipped[i] = int(rng.integers(0, 256))
        damaged.append(bytes(flipped))
    for blob in damaged:
        path.write_bytes(blob)
        try:
            safe_load(path)
            outcomes["loaded"] += 1
        except DatasetError as e:
            assert str(path) in str(e)
            outcomes["refused"] += 1
    assert outcomes["refused"] >= len(data)  # every truncation at least
