"""Your-own-data loader: the revisitop schema as JSON, pickle and .mat (0- vs 1-based indices)."""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import scipy.io

from benchmarks.custom import load_custom
from benchmarks.errors import DatasetError
from benchmarks.ground_truth import read_ground_truth
from benchmarks.oxford import load_oxford5k

from benchmark_layouts import jpeg_bytes, write_images

# the worked example of docs/datasets.md
EXAMPLE = {
    "imlist": ["beach_1", "beach_2", "tower_1", "tower_2", "street_1"],
    "qimlist": ["beach_q", "tower_q"],
    "gnd": [
        {"bbx": [10, 20, 200, 150], "easy": [0], "hard": [1], "junk": []},
        {"easy": [2, 3], "hard": [], "junk": [4]},
    ],
}


def _images(root):
    write_images(root / "jpg", EXAMPLE["imlist"])
    write_images(root / "jpg" / "queries", EXAMPLE["qimlist"], jpeg_bytes(320, 240))


def _relevant(ds):
    return [{k: v.tolist() for k, v in q.relevant.items()} for q in ds.queries]


def test_worked_json_example(tmp_path):
    _images(tmp_path)
    (tmp_path / "gnd.json").write_text(json.dumps(EXAMPLE))
    ds = load_custom(tmp_path, "gnd.json", name="holiday_snaps")
    assert ds.name == "holiday_snaps" and ds.protocol == "revisited" and ds.crop_queries
    assert [im.name for im in ds.images] == EXAMPLE["imlist"]
    assert [q.image.name for q in ds.queries] == ["beach_q", "tower_q"]
    assert ds.queries[0].box == (10.0, 20.0, 200.0, 150.0) and ds.queries[1].box is None
    assert _relevant(ds) == [{"easy": [0], "hard": [1], "junk": []},
                             {"easy": [2, 3], "hard": [], "junk": [4]}]


def test_pickle_json_and_one_based_mat_agree(tmp_path):
    _images(tmp_path)
    (tmp_path / "gnd.json").write_text(json.dumps(EXAMPLE))
    (tmp_path / "gnd.pkl").write_bytes(pickle.dumps(
        {**EXAMPLE, "gnd": [{k: np.asarray(v) for k, v in g.items()} for g in EXAMPLE["gnd"]]}))
    one_based = [{"bbx": np.array([10.0, 20, 200, 150]), "easy": np.array([1.0]), "hard": np.array([2.0]),
                  "junk": np.zeros((0, 0))},
                 {"bbx": np.zeros((0, 0)), "easy": np.array([3.0, 4.0]), "hard": np.zeros((0, 0)),
                  "junk": np.array([5.0])}]
    gnd = np.empty(2, dtype=object)
    gnd[:] = one_based
    scipy.io.savemat(tmp_path / "gnd.mat", {"imlist": np.array(EXAMPLE["imlist"], dtype=object),
                                            "qimlist": np.array(EXAMPLE["qimlist"], dtype=object),
                                            "gnd": gnd})
    results = [load_custom(tmp_path, f) for f in ("gnd.json", "gnd.pkl", "gnd.mat")]
    for ds in results[1:]:
        assert _relevant(ds) == _relevant(results[0])
        assert [q.box for q in ds.queries] == [q.box for q in results[0].queries]


def test_ok_schema_with_qidx_is_the_oxford_protocol(tmp_path):
    _images(tmp_path)
    gt = {"imlist": EXAMPLE["imlist"], "qidx": [0, 2],
          "gnd": [{"ok": [0, 1], "junk": []}, {"ok": [3], "junk": [2, 4]}]}
    (tmp_path / "gnd.json").write_text(json.dumps(gt))
    ds = load_custom(tmp_path, "gnd.json")
    assert ds.protocol == "oxford" and [q.db_index for q in ds.queries] == [0, 2]
    assert _relevant(ds) == [{"ok": [0, 1], "junk": []}, {"ok": [3], "junk": [2, 4]}]


def test_real_oxford_mat_through_the_custom_loader_agrees_with_the_official_files(oxford_root):
    root, mat = oxford_root
    official, custom = load_oxford5k(root), load_custom(root, mat["path"])
    assert sorted(im.name for im in custom.images) == [im.name for im in official.images]
    name_of = lambda ds, idx: sorted(ds.images[i].name for i in idx)
    for a, b in zip(official.queries, custom.queries):
        assert a.image.name == b.image.name and a.box == pytest.approx(b.box)
        assert name_of(official, a.relevant["ok"]) == name_of(custom, b.relevant["ok"])
        assert name_of(official, a.relevant["junk"]) == name_of(custom, b.relevant["junk"])


@pytest.mark.parametrize("change,match", [
    (lambda g: g["gnd"][0].update(easy=[5]), "index 5, outside the 5 images.*0-based"),
    (lambda g: g["gnd"].__setitem__(1, {"ok": [1], "junk": []}), "mixes"),
    (lambda g: g["gnd"].pop(), "1 gnd entries for 2 queries"),
    (lambda g: g.pop("imlist"), "lacks imlist"),
    (lambda g: g["gnd"][0].update(bbx=[10, 20, 400, 150]), "beach_q.*320 x 240"),
    (lambda g: g["qimlist"].append("nowhere") or g["gnd"].append({"easy": []}), "nowhere.*gnd.json"),
])
def test_bad_ground_truth_is_named(tmp_path, change, match):
    _images(tmp_path)
    gt = json.loads(json.dumps(EXAMPLE))
    change(gt)
    (tmp_path / "gnd.json").write_text(json.dumps(gt))
    with pytest.raises(DatasetError, match=match):
        load_custom(tmp_path, "gnd.json")


def test_missing_files(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_custom(tmp_path / "none", "gnd.json")
    with pytest.raises(DatasetError, match="gnd.json"):
        load_custom(tmp_path, "gnd.json")
    (tmp_path / "gnd.txt").write_text("")
    with pytest.raises(DatasetError, match="unknown format"):
        load_custom(tmp_path, "gnd.txt")


# ----------------------------------------------------------------------------- hardened reading
def _write_json(path, change):
    gt = json.loads(json.dumps(EXAMPLE))
    change(gt)
    path.write_text(json.dumps(gt))
    return path


@pytest.mark.parametrize("change,match", [
    (lambda g: g["gnd"][0].update(easy="0"),
     r"easy of query 'beach_q' holds '0' \(str\); it must hold integers"),
    (lambda g: g["gnd"][0].update(easy=["0", 1]), r"easy of query 'beach_q' holds '0' \(str\)"),
    (lambda g: g["gnd"][1].update(junk=[True]), r"junk of query 'tower_q' holds True \(bool\)"),
    (lambda g: g["gnd"][1].update(hard=False), r"hard of query 'tower_q' holds False \(bool\)"),
    (lambda g: g["gnd"][0].update(hard=[1.0]),
     r"hard of query 'beach_q' holds 1.0 \(float\); it must hold integers"),
    (lambda g: g["gnd"][0].update(easy=[10**30]),
     f"easy of query 'beach_q' holds index {10**30}, outside the 5"),
    (lambda g: g["gnd"][0].update(easy={"0": 1}), r"easy of query 'beach_q' holds \{'0': 1\} \(dict\)"),
    (lambda g: g["gnd"][0].update(bbx=["10", 20, 200, 150]),
     r"bbx of query 'beach_q' holds '10' \(str\); it must hold numbers"),
    (lambda g: g["gnd"][0].update(bbx=[10, 20, 200]),
     r"bbx of query 'beach_q' is \[10, 20, 200\]; expected four"),
    (lambda g: g["gnd"][0].update(bbx=[True, 20, 200, 150]), r"bbx of query 'beach_q' holds True \(bool\)"),
    (lambda g: g.update(imlist=5), r"imlist is 5 \(int\), not a list"),
    (lambda g: g.update(imlist=[1, 2, 3, 4, 5]), r"imlist holds 1 \(int\), not an image name"),
    (lambda g: g.update(gnd={"easy": [0]}), r"gnd is \{'easy': \[0\]\} \(dict\), not a list"),
    (lambda g: g.pop("qimlist") and g.update(qidx=["0", "2"]), r"qidx holds '0' \(str\)"),
])
def test_malformed_json_fields_are_refused_naming_file_and_field(tmp_path, change, match):
    path = _write_json(tmp_path / "gnd.json", change)
    with pytest.raises(DatasetError, match=f"ground-truth file {path}: {match}"):
        read_ground_truth(path)


def test_pickled_indices_must_be_integers(tmp_path):
    base = {**EXAMPLE, "gnd": [{k: np.asarray(v) for k, v in g.items()} for g in EXAMPLE["gnd"]]}
    path = tmp_path / "gnd.pkl"
    path.write_bytes(pickle.dumps(base))
    assert read_ground_truth(path).relevant[1]["easy"].tolist() == [2, 3]  # int arrays load
    for bad, match in [(np.array([2.0, 3.0]), r"holds 2.0 \(float\)"),
                       (np.array([True]), r"holds True \(bool\)"),
                       (np.array(["2"]), r"holds '2' \(str\)"), (np.uint8(2), None)]:
        gt = {**base, "gnd": [base["gnd"][0], {**base["gnd"][1], "easy": bad}]}
        path.write_bytes(pickle.dumps(gt))
        if match is None:  # a numpy integer scalar is an integer
            assert read_ground_truth(path).relevant[1]["easy"].tolist() == [2]
            continue
        with pytest.raises(DatasetError, match=f"{path}: easy of query 'tower_q' {match}"):
            read_ground_truth(path)


def test_mat_indices_may_be_integral_doubles_only(tmp_path):
    gnd = np.empty(1, dtype=object)
    for easy, match in [(np.array([1.0, 2.0]), None), (np.array([1.5]), "the non-integer index 1.5"),
                        (np.array([np.inf]), "the non-integer index inf"),
                        (np.array([0.0]), "index 0, outside")]:
        gnd[0] = {"easy": easy, "hard": np.zeros((0, 0)), "junk": np.zeros((0, 0))}
        path = tmp_path / "gnd.mat"
        scipy.io.savemat(path, {"imlist": np.array(["a", "b"], dtype=object), "qidx": np.array([1.0]),
                                "gnd": gnd})
        if match is None:
            assert read_ground_truth(path).relevant[0]["easy"].tolist() == [0, 1]
        else:
            with pytest.raises(DatasetError, match=f"{path}: easy of query 'a' holds {match}"):
                read_ground_truth(path)


@pytest.mark.parametrize("content", [b"", b"MATLAB 5.0 MAT-file" + bytes(100), b"not a mat file at all" * 10])
def test_unreadable_mat_names_the_file(tmp_path, content):
    path = tmp_path / "gnd.mat"
    path.write_bytes(content)
    with pytest.raises(DatasetError, match=f"cannot read the MATLAB file {path}"):
        read_ground_truth(path)


def test_truncated_mat_names_the_file(tmp_path):
    path = tmp_path / "gnd.mat"
    scipy.io.savemat(path, {"imlist": np.array(EXAMPLE["imlist"], dtype=object), "qidx": np.arange(1.0, 3.0)})
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(DatasetError, match=f"cannot read the MATLAB file {path}"):
        read_ground_truth(path)


def test_absurd_array_shape_in_a_pickle_names_the_file(tmp_path):
    from numpy._core.multiarray import _reconstruct

    class Absurd:
        def __reduce__(self):
            return _reconstruct, (np.ndarray, (0,), b"b"), (1, (2**62, 2**62), np.dtype("i8"), False, b"")

    path = tmp_path / "gnd.pkl"
    path.write_bytes(pickle.dumps({**EXAMPLE, "gnd": [{"easy": Absurd()}, {"easy": []}]}))
    with pytest.raises(DatasetError, match=f"refusing to load {path}: an array of shape"):
        read_ground_truth(path)
