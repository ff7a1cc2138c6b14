"""Your-own-data loader: the revisitop schema as JSON, pickle and .mat (0- vs 1-based indices)."""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import scipy.io

from benchmarks.custom import load_custom
from benchmarks.errors import DatasetError
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
