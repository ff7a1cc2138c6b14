"""Revisited Oxford/Paris loader and the E/M/H protocol on a hand-made ground truth."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from benchmarks.evaluation import evaluate_rankings
from benchmarks.errors import DatasetError
from benchmarks.revisited import load_roxford5k, load_rparis6k

from benchmark_layouts import jpeg_bytes, write_images

DB = ["all_souls_000000", "all_souls_000001", "oxford_000002", "oxford_000003", "oxford_000004"]


def _gnd(imlist=DB):
    return {"imlist": imlist, "qimlist": ["all_souls_000010", "oxford_000002"],
            "gnd": [{"bbx": [10.0, 5.0, 60.0, 40.0], "easy": np.array([0, 3]), "hard": np.array([1]),
                     "junk": np.array([4])},
                    {"bbx": np.array([0.0, 0.0, 8.0, 8.0]), "easy": np.array([], dtype=np.int64),
                     "hard": np.array([4]), "junk": np.array([], dtype=np.int64)}]}


def _layout(root, gnd=None, name="gnd_roxford5k.pkl"):
    gnd = gnd or _gnd()
    write_images(root / "jpg", gnd["imlist"])
    write_images(root / "jpg" / "queries", ["all_souls_000010"], jpeg_bytes(64, 48))
    (root / name).write_bytes(pickle.dumps(gnd, protocol=2))
    return root


def test_loads_the_revisitop_schema(tmp_path):
    ds = load_roxford5k(_layout(tmp_path))
    assert ds.protocol == "revisited" and ds.crop_queries  # the protocol crops queries
    assert [im.name for im in ds.images] == DB
    q0, q1 = ds.queries
    assert q0.image.name == "all_souls_000010" and q0.db_index is None  # not a database image
    assert q0.image.path == tmp_path / "jpg" / "queries" / "all_souls_000010.jpg"
    assert q0.box == (10.0, 5.0, 60.0, 40.0) and q1.db_index == 2
    assert q0.relevant["easy"].tolist() == [0, 3] and q0.relevant["hard"].tolist() == [1]
    assert q0.relevant["junk"].tolist() == [4] and q1.relevant["easy"].size == 0
    assert len(ds.extra_query_images()) == 2  # both cropped
    assert load_roxford5k(tmp_path, crop_queries=False).extra_query_images()[0][2] is None


def test_easy_medium_hard_by_hand(tmp_path):
    ds = load_roxford5k(_layout(tmp_path))
    rankings = np.array([[4, 2, 0, 1, 3],    # q0: junk 4, negative 2, easy 0, hard 1, easy 3
                         [0, 1, 2, 3, 4]])   # q1: no easy positive; its hard positive is last
    m = evaluate_rankings(ds, rankings)
    ap = lambda ranks, n: sum((j / r if r else 1.0) / 2 + (j + 1) / (r + 1) / 2
                              for j, r in enumerate(ranks)) / n
    # Easy: positives {0, 3}, junk {4, 1}: ranking without junk = [2, 0, 3] -> ranks 1, 2; q1 excluded
    assert m["E/mAP"] == pytest.approx(ap([1, 2], 2)) and m["E/n_evaluated"] == 1
    # Medium: positives {0, 1, 3}, junk {4}: [2, 0, 1, 3] -> ranks 1, 2, 3; q1: hard 4 at rank 4
    assert m["M/mAP"] == pytest.approx((ap([1, 2, 3], 3) + ap([4], 1)) / 2) and m["M/n_evaluated"] == 2
    # Hard: positives {1}, junk {4, 0, 3}: [2, 1] -> rank 1; q1: positive {4} at rank 4
    assert m["H/mAP"] == pytest.approx((ap([1], 1) + ap([4], 1)) / 2)
    assert m["mAP"] == m["M/mAP"]
    assert m["M/mP@1"] == pytest.approx(0.0) and m["H/mP@5"] == pytest.approx((1 / 2 + 1 / 5) / 2)


def test_distractors_r1m_list(tmp_path):
    r1m = tmp_path / "revisitop1m"
    write_images(r1m / "jpg" / "a" / "b", ["d1", "d2"])
    (r1m / "revisitop1m.txt").write_text("a/b/d2\na/b/d1\n")
    ds = load_roxford5k(_layout(tmp_path / "rox"), name="roxford5k_r1m", distractors_root=r1m / "jpg",
                        distractors_list=r1m / "revisitop1m.txt")
    assert [im.name for im in ds.images[5:]] == ["a/b/d2", "a/b/d1"] and ds.meta["distractors"] == 2


def test_errors(tmp_path):
    with pytest.raises(DatasetError, match="deepagg-download roxford5k"):
        load_roxford5k(tmp_path / "none")
    paris = _layout(tmp_path / "rpar", _gnd([f"paris_louvre_00000{i}" for i in range(5)]), "gnd_rparis6k.pkl")
    with pytest.raises(DatasetError, match="gnd_roxford5k.pkl.*rparis6k folder"):
        load_roxford5k(paris)
    (paris / "gnd_roxford5k.pkl").write_bytes((paris / "gnd_rparis6k.pkl").read_bytes())
    with pytest.raises(DatasetError, match="not the roxford5k ground truth"):
        load_roxford5k(paris)
    with pytest.raises(DatasetError, match="not the rparis6k ground truth"):
        load_rparis6k(_layout(tmp_path / "rox"), gnd_file="gnd_roxford5k.pkl")
    (tmp_path / "rox" / "jpg" / "oxford_000003.jpg").unlink()
    with pytest.raises(DatasetError, match="oxford_000003.*gnd_roxford5k.pkl"):
        load_roxford5k(tmp_path / "rox")


def test_box_outside_its_query_image(tmp_path):
    gnd = _gnd()
    gnd["gnd"][0]["bbx"] = [10.0, 5.0, 60.0, 49.5]  # the query image is 64 x 48
    with pytest.raises(DatasetError, match="all_souls_000010.*64 x 48"):
        load_roxford5k(_layout(tmp_path, gnd))
