"""Descriptor files in and out: the folder, HDF5 and torch layouts round-trip exactly, and every
mismatch with the benchmark or damaged file is refused naming the file, the expected and the
found; a failed write leaves nothing behind."""
import json

import numpy as np
import pytest

from benchmarks.base import ImageRef, Query, RetrievalDataset
from benchmarks.descriptor_files import (FORMAT, check_against, descriptor_set, read_descriptors,
                                         write_descriptors)
from benchmarks.errors import DatasetError, OutputError


def toy(n=5, n_q=2):
    images = [ImageRef(f"im{i}") for i in range(n)]
    queries = [Query(image=images[i], relevant={"ok": np.array([i + 1])}, db_index=i) for i in range(n_q)]
    return RetrievalDataset(name="toy", images=images, queries=queries, protocol="oxford")


def descriptors(ds, d=3, seed=0):
    rng = np.random.default_rng(seed)
    return descriptor_set(ds, rng.normal(size=(len(ds.images), d)), rng.normal(size=(len(ds.queries), d)),
                          {"note": "made by hand"})


@pytest.mark.parametrize("name", ["out", "out.h5"])
def test_folder_and_hdf5_round_trip_exactly(tmp_path, name):
    ds = toy()
    written = descriptors(ds)
    path = write_descriptors(written, tmp_path / name)
    back = read_descriptors(path)
    np.testing.assert_array_equal(back.database, written.database)
    np.testing.assert_array_equal(back.queries, written.queries)
    assert back.database.dtype == np.float32 and back.dataset == "toy"
    assert back.database_names == [f"im{i}" for i in range(5)] and back.query_names == ["im0", "im1"]
    assert back.meta == {"note": "made by hand"}
    check_against(back, ds, path)
    assert not list(tmp_path.glob(".*part"))                        # no temporary left
    if name == "out":
        assert json.loads((path / "descriptors.json").read_text())["format"] == FORMAT


def test_a_torch_file_of_tensors_and_names_is_read(tmp_path):
    import torch
    ds = toy()
    d = descriptors(ds)
    torch.save({"database": torch.from_numpy(d.database), "queries": torch.from_numpy(d.queries),
                "database_names": d.database_names, "query_names": d.query_names}, tmp_path / "m.pt")
    back = read_descriptors(tmp_path / "m.pt")
    np.testing.assert_array_equal(back.queries, d.queries)
    check_against(back, ds, tmp_path / "m.pt")


def test_mismatches_with_the_benchmark_are_named(tmp_path):
    ds = toy()
    d = descriptors(ds)
    d.database_names = d.database_names[::-1]
    with pytest.raises(DatasetError, match=r"database images row 0 is 'im4' but toy's database "
                                           r"images 0 is 'im0'; the same names in another order"):
        check_against(d, ds, tmp_path / "x")
    d = descriptors(toy(n=6))
    with pytest.raises(DatasetError, match="6 database images, but toy has 5"):
        check_against(d, ds, tmp_path / "x")
    d = descriptors(ds)
    d.query_names = ["im0", "elsewhere"]
    with pytest.raises(DatasetError, match="1 name.s. are not queries of toy .e.g. 'elsewhere'"):
        check_against(d, ds, tmp_path / "x")


def test_damaged_files_are_refused_naming_them(tmp_path):
    ds = toy()
    d = descriptors(ds)
    d.database[2, 1] = np.nan
    write_descriptors(d, tmp_path / "nan")
    with pytest.raises(DatasetError, match=r"nan: 1 database row\(s\) hold NaN .*row 2, 'im2'"):
        read_descriptors(tmp_path / "nan")
    h5 = write_descriptors(descriptors(ds), tmp_path / "whole.h5")
    (tmp_path / "cut.h5").write_bytes(h5.read_bytes()[:700])        # a truncated copy
    with pytest.raises(DatasetError, match="cut.h5: cannot read it .*Write it again"):
        read_descriptors(tmp_path / "cut.h5")
    folder = write_descriptors(descriptors(ds), tmp_path / "folder")
    (folder / "queries.npy").unlink()
    with pytest.raises(DatasetError, match="missing queries.npy"):
        read_descriptors(folder)
    with pytest.raises(DatasetError, match="no such file"):
        read_descriptors(tmp_path / "absent.h5")
    bad = descriptors(ds)
    bad.queries = bad.queries[:, :2]
    write_descriptors(bad, tmp_path / "narrow")
    with pytest.raises(DatasetError, match="database rows are 3-D but query rows 2-D"):
        read_descriptors(tmp_path / "narrow")


def test_a_failed_write_leaves_the_previous_file_and_no_temporary(tmp_path, monkeypatch):
    ds = toy()
    path = write_descriptors(descriptors(ds, seed=1), tmp_path / "d")
    before = np.load(path / "database.npy")

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(np, "save", full_disk)
    with pytest.raises(OutputError, match="cannot write .*No space left"):
        write_descriptors(descriptors(ds, seed=2), tmp_path / "d")
    monkeypatch.undo()
    np.testing.assert_array_equal(np.load(path / "database.npy"), before)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]
