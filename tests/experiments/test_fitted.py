"""The fit cache checks what it reads: a swapped, damaged or foreign file is refitted, never used;
a read-only cache is read without locks and not written."""
import logging
import shutil
import subprocess

import pytest
from sklearn.preprocessing import StandardScaler

from experiments import fitted


def fit_as(value):
    calls = []

    def fit():
        calls.append(value)
        return StandardScaler().fit([[value], [value + 2.0]])
    return fit, calls


def path_of(root, name, key):
    return root / "_fitted" / f"{name}-{key}.pkl"


def test_two_fits_swapped_by_a_copy_are_both_refitted(tmp_path, caplog):
    fit_a, _ = fit_as(0.0)
    fit_b, _ = fit_as(10.0)
    fitted.cached_fit(tmp_path, "chain", "aaaa", fit_a, StandardScaler)
    fitted.cached_fit(tmp_path, "chain", "bbbb", fit_b, StandardScaler)
    a, b = path_of(tmp_path, "chain", "aaaa"), path_of(tmp_path, "chain", "bbbb")
    a_bytes = a.read_bytes()
    shutil.copyfile(b, a)
    b.write_bytes(a_bytes)
    fit_a, calls_a = fit_as(0.0)
    fit_b, calls_b = fit_as(10.0)
    with caplog.at_level(logging.WARNING):
        assert fitted.cached_fit(tmp_path, "chain", "aaaa", fit_a, StandardScaler).mean_ == [1.0]
        assert fitted.cached_fit(tmp_path, "chain", "bbbb", fit_b, StandardScaler).mean_ == [11.0]
    assert calls_a == [0.0] and calls_b == [10.0]
    assert "copied over another" in caplog.text and str(a) in caplog.text
    fit_a, calls_a = fit_as(0.0)                     # the refit was stored: read back, no fit
    assert fitted.cached_fit(tmp_path, "chain", "aaaa", fit_a, StandardScaler).mean_ == [1.0]
    assert calls_a == []


@pytest.mark.parametrize("damage", ["byte", "truncated", "other_type", "bare_pickle"])
def test_a_damaged_or_foreign_file_is_a_warning_and_a_refit(tmp_path, caplog, damage):
    fit, _ = fit_as(0.0)
    fitted.cached_fit(tmp_path, "chain", "k", fit, StandardScaler)
    path = path_of(tmp_path, "chain", "k")
    data = bytearray(path.read_bytes())
    if damage == "byte":
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    elif damage == "truncated":
        path.write_bytes(bytes(data[:len(data) // 3]))
    elif damage == "other_type":                     # a well-formed fit of another class
        fitted._save(path, "chain", "k", {"not": "a scaler"})
    else:                                            # an old cache: the object without envelope
        import pickle
        path.write_bytes(pickle.dumps(StandardScaler().fit([[5.0], [5.0]])))
    fit, calls = fit_as(0.0)
    with caplog.at_level(logging.WARNING):
        assert fitted.cached_fit(tmp_path, "chain", "k", fit, StandardScaler).mean_ == [1.0]
    assert calls == [0.0] and str(path) in caplog.text and "fitting again" in caplog.text


def test_a_read_only_cache_is_read_without_locks_and_not_written(tmp_path, caplog):
    fit, _ = fit_as(0.0)
    source = tmp_path / "store"
    fitted.cached_fit(source, "chain", "k", fit, StandardScaler)
    for lock in (source / "_fitted").glob("*.lock"):
        lock.unlink()                                # as a group's shared copy would be
    mount = tmp_path / "ro"
    mount.mkdir()
    if subprocess.run(["mount", "--bind", "-o", "ro", str(source), str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot make a read-only bind mount here (needs root)")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(mount)], check=True, capture_output=True)
        fitted._said_read_only.clear()
        fit, calls = fit_as(0.0)
        with caplog.at_level(logging.WARNING):
            assert fitted.cached_fit(mount, "chain", "k", fit, StandardScaler).mean_ == [1.0]
            other, other_calls = fit_as(4.0)
            assert fitted.cached_fit(mount, "chain", "new", other, StandardScaler).mean_ == [5.0]
            fitted.cached_fit(mount, "chain", "new2", other, StandardScaler)
        assert calls == [] and other_calls == [4.0, 4.0]     # read; fitted, not cached
        assert caplog.text.count("is read-only") == 1        # said once
        assert not (mount / "_fitted" / "chain-new.pkl").exists()
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)
