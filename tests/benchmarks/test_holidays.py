"""Holidays loader against the real ground truth (stand-in images) and the real sample photos."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from benchmarks.evaluation import evaluate_rankings
from benchmarks.base import ImageRef
from benchmarks.errors import DatasetError
from benchmarks.holidays import load_holidays, read_rotation_file

from benchmark_layouts import load_mat, write_images


def test_matches_the_official_ground_truth(tmp_path):
    mat = load_mat("holidays")
    write_images(tmp_path / "jpg", mat["imlist"])
    ds = load_holidays(tmp_path)
    names = [im.name for im in ds.images]
    assert names == mat["imlist"] and len(ds) == 1491 and ds.protocol == "holidays"
    assert [q.db_index for q in ds.queries] == mat["qidx"] and len(ds.queries) == 500
    for q, g in zip(ds.queries, mat["gnd"]):
        assert q.relevant["ok"].tolist() == sorted(g["ok"])
        assert q.relevant["junk"].tolist() == g["junk"] == [q.db_index]  # the query leaves its own list
        assert q.box is None


def test_real_samples_load_end_to_end(samples, tmp_path):
    shutil.copytree(samples / "holidays", tmp_path / "jpg")
    ds = load_holidays(tmp_path, rotate={"100001": 90})
    assert [im.name for im in ds.images] == ["100000", "100001", "100002"]
    (q,) = ds.queries
    assert q.db_index == 0 and q.relevant["ok"].tolist() == [1, 2]
    upright, turned = ds.images[0].load(), ds.images[1].load()
    assert upright.size == (2448, 3264) and turned.size == (3264, 2448)
    assert ds.meta["rotations"] == {"100001": 90}


def test_rotation_file_and_list(tmp_path):
    write_images(tmp_path / "jpg", ["100000", "100001", "100100"])
    (tmp_path / "rotations.txt").write_text("# sideways photos\n100001.jpg 270\n\n100100 -90  # same turn\n")
    assert read_rotation_file(tmp_path / "rotations.txt") == {"100001": 270, "100100": 270}
    ds = load_holidays(tmp_path, rotate=["100000"], rotation_file="rotations.txt")
    assert [im.rotate for im in ds.images] == [90, 270, 270]
    assert len(ds.queries) == 2 and ds.queries[1].relevant["ok"].size == 0


def test_rotation_turns_counter_clockwise(tmp_path):
    from PIL import Image

    im = Image.new("RGB", (4, 2), (0, 0, 0))
    im.putpixel((3, 0), (255, 0, 0))  # top-right corner
    im.save(tmp_path / "a.png")
    turned = ImageRef("a", tmp_path / "a.png", rotate=90).load()
    assert turned.size == (2, 4) and turned.getpixel((0, 0)) == (255, 0, 0)  # now top-left
    with pytest.raises(ValueError, match="multiple of 90"):
        ImageRef("a", tmp_path / "a.png", rotate=45)


@pytest.mark.parametrize("content,match", [("100000 45\n", "line 1"), ("100000\n", "NAME DEGREES")])
def test_bad_rotation_file(tmp_path, content, match):
    write_images(tmp_path / "jpg", ["100000"])
    (tmp_path / "rot.txt").write_text(content)
    with pytest.raises(DatasetError, match=match):
        load_holidays(tmp_path, rotation_file="rot.txt")


def test_errors(tmp_path):
    with pytest.raises(DatasetError, match="deepagg-download holidays"):
        load_holidays(tmp_path / "none")
    write_images(tmp_path / "jpg", ["100000"])
    with pytest.raises(DatasetError, match="rotation file .*missing.txt"):
        load_holidays(tmp_path, rotation_file="missing.txt")
    with pytest.raises(DatasetError, match="123456"):
        load_holidays(tmp_path, rotate=["123456"])
    write_images(tmp_path / "jpg", ["ukbench00000"])
    with pytest.raises(DatasetError, match="ukbench00000.*another dataset"):
        load_holidays(tmp_path)


def test_query_is_left_out_of_its_own_ranking(tmp_path):
    write_images(tmp_path / "jpg", ["100000", "100001", "100002", "100100", "100101"])
    ds = load_holidays(tmp_path)
    # query 0 ranks itself first (ignored), then 3 (negative), 1, 4, 2; query 3 finds 4 at once
    rankings = np.array([[0, 3, 1, 4, 2], [3, 4, 0, 1, 2]])
    m = evaluate_rankings(ds, rankings)
    ap0 = ((0 / 1 + 1 / 2) / 2 + (1 / 3 + 2 / 4) / 2) / 2  # positives at ranks 1 and 3 once 0 is out
    assert m["aps"].tolist() == pytest.approx([ap0, 1.0])
    assert m["mAP"] == pytest.approx((ap0 + 1.0) / 2)


def test_single_image_group_is_left_out_of_the_mean(tmp_path):
    write_images(tmp_path / "jpg", ["100000", "100001", "100100"])
    ds = load_holidays(tmp_path)
    m = evaluate_rankings(ds, np.array([[0, 2, 1], [2, 0, 1]]))  # query 100100 has no other group member
    assert m["n_evaluated"] == 1 and np.isnan(m["aps"][1])
    assert m["mAP"] == pytest.approx((0 / 1 + 1 / 2) / 2)  # positive at rank 1 once the query leaves


def test_real_ground_truth_perfect_ranking_scores_one(tmp_path):
    mat = load_mat("holidays")
    write_images(tmp_path / "jpg", mat["imlist"])
    ds = load_holidays(tmp_path)
    n = len(ds)
    rankings = []
    for q in ds.queries:  # the query itself first (junk), its group next, then everything else
        head = [q.db_index, *q.relevant["ok"].tolist()]
        rankings.append(head + [i for i in range(n) if i not in set(head)])
    m = evaluate_rankings(ds, np.array(rankings))
    assert m["mAP"] == pytest.approx(1.0) and m["n_evaluated"] == 500
