"""A benchmark as one HDF5 file: names, boxes with NaN for none, CSR relevance of both protocols,
the same dataset as its CSV form, and every malformed dataset refused with the file and its path."""
import sys

import h5py
import numpy as np
import pytest
from PIL import Image

from benchmarks.availability import missing_requirements
from benchmarks.custom import H5_LAYOUT, load_custom_csv, load_custom_h5
from benchmarks.errors import DatasetError

NAN = float("nan")
# database a, b, c; queries q0 (a file of its own, boxed) and b.jpg (database image 1, no box)
BASE = {"database/images": ["a", "b", "c"], "queries/images": ["q0", "b.jpg"],
        "queries/boxes": np.array([[2, 3, 30, 20], [NAN] * 4]),
        "relevance/ok/offsets": np.array([0, 1, 2]), "relevance/ok/indices": np.array([2, 0]),
        "relevance/junk/offsets": np.array([0, 1, 1]), "relevance/junk/indices": np.array([0])}
REVISITED = {k: v for k, v in BASE.items() if not k.startswith("relevance/ok")} | {
    "relevance/easy/offsets": np.array([0, 1, 1]), "relevance/easy/indices": np.array([2]),
    "relevance/hard/offsets": np.array([0, 1, 1]), "relevance/hard/indices": np.array([1])}


def images(root):
    (root / "sub").mkdir(parents=True, exist_ok=True)
    for name in ("a", "b", "c", "q0"):
        Image.new("RGB", (40, 30)).save(root / "sub" / f"{name}.png")
    return root


def write(root, content=BASE, **changes):
    """``content`` with ``changes`` (a path with ``/`` as ``__``; None drops it) as ROOT/benchmark.h5."""
    content = {**content, **{k.replace("__", "/"): v for k, v in changes.items()}}
    with h5py.File(images(root) / "benchmark.h5", "w") as f:
        for key, value in content.items():
            if value is None:
                continue
            if isinstance(value, list):
                f.create_dataset(key, data=value, dtype=h5py.string_dtype())
            else:
                f.create_dataset(key, data=value)
    return root


def as_tuple(ds):
    """Everything a loaded benchmark says, comparable across encodings."""
    return (ds.protocol, [(im.name, im.path) for im in ds.images],
            [(q.image.name, q.image.path, q.db_index, q.box,
              {k: v.tolist() for k, v in sorted(q.relevant.items())}) for q in ds.queries])


def test_oxford_relevance_boxes_and_database_queries(tmp_path):
    ds = load_custom_h5(write(tmp_path))
    assert [im.name for im in ds.images] == ["a", "b", "c"] and ds.protocol == "oxford"
    q0, qb = ds.queries
    assert q0.db_index is None and q0.box == (2.0, 3.0, 30.0, 20.0)
    assert q0.image.path == tmp_path / "sub" / "q0.png"
    assert q0.relevant["ok"].tolist() == [2] and q0.relevant["junk"].tolist() == [0]
    assert qb.db_index == 1 and qb.box is None and qb.relevant["ok"].tolist() == [0]
    assert ds.crop_queries and [e[0] for e in ds.extra_query_images()] == [0]
    assert ds.meta == {"crop_queries": True, "ground_truth": "benchmark.h5"}
    no_boxes = load_custom_h5(write(tmp_path / "n", queries__boxes=None))
    assert [q.box for q in no_boxes.queries] == [None, None]


def test_easy_and_hard_select_the_revisited_protocol(tmp_path):
    ds = load_custom_h5(write(tmp_path, REVISITED))
    assert ds.protocol == "revisited"
    assert [{k: v.tolist() for k, v in q.relevant.items()} for q in ds.queries] == [
        {"easy": [2], "hard": [1], "junk": [0]}, {"easy": [], "hard": [], "junk": []}]


@pytest.mark.parametrize("content,relevance", [
    (BASE, "q0,c,ok\nq0,a,junk\nb,a,ok\n"),
    (REVISITED, "q0,c,easy\nq0,b,hard\nq0,a,junk\n")])
def test_the_same_benchmark_as_csv_and_as_hdf5_is_the_same_dataset(tmp_path, content, relevance):
    root = write(tmp_path, content)
    (root / "database.csv").write_text("image\na\nb\nc\n")
    (root / "queries.csv").write_text("image,x1,y1,x2,y2\nq0,2,3,30,20\nb.jpg,,,,\n")
    (root / "relevance.csv").write_text("query,image,relevance\n" + relevance)
    assert as_tuple(load_custom_h5(root)) == as_tuple(load_custom_csv(root))


@pytest.mark.parametrize("changes,named", [
    ({"queries__images": None}, "has no dataset queries/images"),
    ({"relevance__ok__indices": None}, "has no dataset relevance/ok/indices"),
    ({"database__images": np.arange(3)}, "database/images holds int64 of shape"),
    ({"relevance__ok__offsets": np.array([0, 2])}, "relevance/ok/offsets has 2 entries; expected 3"),
    ({"relevance__ok__offsets": np.array([0, 2, 1]), "relevance__ok__indices": np.array([2])},
     r"relevance/ok/offsets is not monotone: entry 2 \(1\) is below entry 1 \(2\), at query 'b.jpg'"),
    ({"relevance__ok__offsets": np.array([0, 2, 2]), "relevance__ok__indices": np.array([2, 0, 1])},
     "relevance/ok/offsets runs from 0 to 2; expected 0 to 3"),
    ({"relevance__ok__offsets": np.array([1, 1, 2]), "relevance__ok__indices": np.array([2, 0])},
     "relevance/ok/offsets runs from 1 to 2"),
    ({"relevance__ok__indices": np.array([2, 7])},
     r"relevance/ok/indices\[1\] is 7 \(query 'b.jpg'\), outside the 3 images of database/images"),
    ({"relevance__junk__indices": np.array([-1])}, r"relevance/junk/indices\[0\] is -1 \(query 'q0'\)"),
    ({"relevance__ok__indices": np.array([2.0, 0.0])}, "relevance/ok/indices holds float64"),
    ({"queries__boxes": np.zeros((2, 3))},
     r"queries/boxes holds float64 of shape \(2, 3\); expected \(2, 4\)"),
    ({"queries__boxes": np.array([[2, 3, NAN, 20], [NAN] * 4])}, "queries/boxes row 0 is"),
    ({"relevance__maybe__offsets": np.array([0, 0, 0])}, "relevance/maybe is no relevance kind"),
    ({"relevance__easy__offsets": np.array([0, 0, 0]), "relevance__easy__indices": np.zeros(0, int)},
     "holds relevance/ok beside relevance/easy"),
    ({"relevance__ok__offsets": None, "relevance__ok__indices": None}, "has no dataset relevance/ok"),
])
def test_malformed_datasets_are_named_with_the_file(tmp_path, changes, named):
    with pytest.raises(DatasetError, match=named) as e:
        load_custom_h5(write(tmp_path, **changes))
    assert "benchmark.h5" in str(e.value)


def test_a_group_where_a_dataset_belongs_and_files_that_are_no_hdf5(tmp_path):
    root = write(tmp_path, database__images=None)
    with h5py.File(root / "benchmark.h5", "a") as f:
        f.create_group("database/images")
    with pytest.raises(DatasetError, match="database/images is a group, not a dataset"):
        load_custom_h5(root)
    good = (write(tmp_path / "t") / "benchmark.h5").read_bytes()
    for name, data in (("text.h5", b"image\na\n"), ("cut.h5", good[:len(good) // 2])):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(DatasetError, match=f"cannot read the HDF5 file .*{name}"):
            load_custom_h5(tmp_path, ground_truth=name)


def test_missing_root_file_image_and_h5py_are_named(tmp_path, monkeypatch):
    with pytest.raises(DatasetError) as e:
        load_custom_h5(tmp_path / "nowhere")
    assert H5_LAYOUT in str(e.value) and "docs/datasets.md" in str(e.value)
    with pytest.raises(DatasetError, match=r"ground-truth file .*other.h5 does not exist"):
        load_custom_h5(write(tmp_path), ground_truth="other.h5")
    with pytest.raises(DatasetError, match=r"image 'zzz' \(listed in .*benchmark.h5\) is not in"):
        load_custom_h5(write(tmp_path / "z", database__images=["a", "b", "zzz"]))
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(DatasetError, match=r"HDF5 needs h5py: pip install h5py"):
        load_custom_h5(tmp_path)


def test_availability_lists_what_is_missing(tmp_path):
    cfg = {"_target_": "benchmarks.custom.load_custom_h5", "name": "mine", "root": str(tmp_path)}
    assert missing_requirements([cfg]) == [
        f"dataset mine: missing ground truth at {tmp_path / 'benchmark.h5'}; see docs/datasets.md "
        "(your own data) for the HDF5 layout"]
    assert missing_requirements([{**cfg, "root": str(write(tmp_path))}]) == []
