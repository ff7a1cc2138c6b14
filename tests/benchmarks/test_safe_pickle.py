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
