"""Oxford5k / Paris6k / 105k loaders against the real ground truth written in the official layout."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from benchmarks.errors import DatasetError
from benchmarks.oxford import load_oxford5k, load_paris6k

from benchmark_layouts import jpeg_bytes, write_images

CONF = Path(__file__).resolve().parents[2] / "conf" / "dataset"


def _names(imlist, idx):
    return sorted(imlist[i] for i in idx)


def _check_against_mat(ds, mat):
    imlist = mat["imlist"]
    assert [im.name for im in ds.images] == sorted(imlist)
    assert len(ds.queries) == len(mat["qidx"]) == 55
    names = [im.name for im in ds.images]
    for q, qi, g in zip(ds.queries, mat["qidx"], mat["gnd"]):
        assert q.image.name == imlist[qi]
        assert names[q.db_index] == imlist[qi]
        assert q.box == pytest.approx(tuple(g["bbx"]))
        assert sorted(names[i] for i in q.relevant["ok"]) == _names(imlist, g["ok"])
        assert sorted(names[i] for i in q.relevant["junk"]) == _names(imlist, g["junk"])


def test_oxford5k_matches_the_official_ground_truth(oxford_root):
    root, mat = oxford_root
    ds = load_oxford5k(root)
    assert len(ds) == 5063 and ds.protocol == "oxford" and not ds.crop_queries
    _check_against_mat(ds, mat)
    assert ds.queries[0].image.name == "all_souls_000013"  # the 'oxc1_' prefix is stripped


def test_crop_queries_switch(oxford_root):
    root, _ = oxford_root
    full, cropped = load_oxford5k(root), load_oxford5k(root, crop_queries=True)
    assert full.extra_query_images() == []  # the paper's main table: queries are database images
    extra = cropped.extra_query_images()
    assert len(extra) == 55 and extra[0][2] == cropped.queries[0].box
    assert cropped.meta["crop_queries"] is True


def test_paris6k_nested_layout_and_the_configured_exclusions(paris_root, tmp_path):
    root, mat = paris_root
    excluded = list(OmegaConf.load(CONF / "paris6k.yaml").exclude)
    assert len(excluded) == 20 and not set(excluded) & set(mat["imlist"])
    write_images(root / "jpg" / "paris" / "extra", excluded)
    try:
        ds = load_paris6k(root, exclude=excluded)
        assert len(ds) == 6392  # the official list: 6,412 files minus the 20 corrupt ones
        _check_against_mat(ds, mat)
        assert ds.meta["excluded"] == sorted(excluded)
        assert len(load_paris6k(root)) == 6412
    finally:
        shutil.rmtree(root / "jpg" / "paris" / "extra")


def test_distractors_are_appended(oxford_root, tmp_path):
    root, _ = oxford_root
    flickr = tmp_path / "flickr100k"
    write_images(flickr / "oxc1_100k" / "b_tag", ["z1", "a2"])
    write_images(flickr / "oxc1_100k" / "a_tag", ["y3"])
    base, ds = load_oxford5k(root), load_oxford5k(root, name="oxford105k", distractors_root=flickr)
    assert len(ds) == 5063 + 3 and ds.meta["distractors"] == 3 and ds.name == "oxford105k"
    assert [im.name for im in ds.images[5063:]] == ["oxc1_100k/a_tag/y3", "oxc1_100k/b_tag/a2",
                                                    "oxc1_100k/b_tag/z1"]
    for a, b in zip(base.queries, ds.queries):
        assert a.db_index == b.db_index and np.array_equal(a.relevant["ok"], b.relevant["ok"])
    listed = tmp_path / "list.txt"
    listed.write_text("oxc1_100k/b_tag/z1.jpg\noxc1_100k/a_tag/y3\n")
    ds = load_oxford5k(root, distractors_root=flickr, distractors_list=listed)
    assert [im.name for im in ds.images[5063:]] == ["oxc1_100k/b_tag/z1", "oxc1_100k/a_tag/y3"]
    listed.write_text("oxc1_100k/missing.jpg\n")
    with pytest.raises(DatasetError, match="missing.jpg"):
        load_oxford5k(root, distractors_root=flickr, distractors_list=listed)


def test_a_root_holding_the_other_city_is_refused(oxford_root, paris_root):
    with pytest.raises(DatasetError, match="Paris"):
        load_oxford5k(paris_root[0])
    with pytest.raises(DatasetError, match="not Paris6k"):
        load_paris6k(oxford_root[0])


# ---------------------------------------------------------------- bad inputs on a small layout
def _small(root: Path, prefix: str = "oxc1_") -> Path:
    write_images(root / "jpg", ["all_souls_000001", "all_souls_000002", "oxford_000003"])
    (root / "jpg" / "all_souls_000001.jpg").write_bytes(jpeg_bytes(100, 80))
    gt = root / "gt_files"
    gt.mkdir()
    (gt / "all_souls_1_query.txt").write_text(f"{prefix}all_souls_000001 10 5 90.5 70\n")
    (gt / "all_souls_1_good.txt").write_text("all_souls_000001\nall_souls_000002\n")
    (gt / "all_souls_1_ok.txt").write_text("")
    (gt / "all_souls_1_junk.txt").write_text("oxford_000003\n")
    return root


def test_small_layout_loads(tmp_path):
    ds = load_oxford5k(_small(tmp_path))
    q = ds.queries[0]
    assert q.db_index == 0 and q.box == (10.0, 5.0, 90.5, 70.0)
    assert q.relevant["ok"].tolist() == [0, 1] and q.relevant["junk"].tolist() == [2]


def test_missing_root_names_path_layout_and_download(tmp_path):
    with pytest.raises(DatasetError) as e:
        load_oxford5k(tmp_path / "nowhere")
    msg = str(e.value)
    assert str(tmp_path / "nowhere") in msg and "gt_files" in msg and "deepagg-download oxford5k" in msg


def test_missing_ground_truth_file_is_named(tmp_path):
    (_small(tmp_path) / "gt_files" / "all_souls_1_ok.txt").unlink()
    with pytest.raises(DatasetError, match="all_souls_1_ok.txt"):
        load_oxford5k(tmp_path)


def test_listed_but_absent_image_is_named(tmp_path):
    (_small(tmp_path) / "jpg" / "oxford_000003.jpg").unlink()
    with pytest.raises(DatasetError, match="oxford_000003.*all_souls_1_junk.txt"):
        load_oxford5k(tmp_path)


def test_box_outside_the_image_is_named(tmp_path):
    _small(tmp_path)
    (tmp_path / "gt_files" / "all_souls_1_query.txt").write_text("oxc1_all_souls_000001 10 5 190 70\n")
    with pytest.raises(DatasetError, match="all_souls_000001.*100 x 80"):
        load_oxford5k(tmp_path)


def test_foreign_ground_truth_file_is_refused(tmp_path):
    _small(tmp_path)
    (tmp_path / "gt_files" / "louvre_1_query.txt").write_text("paris_louvre_000000 1 1 2 2\n")
    with pytest.raises(DatasetError, match="paris6k"):
        load_oxford5k(tmp_path)


def test_real_ground_truth_junk_before_positives_still_scores_one(oxford_root):
    from benchmarks.evaluation import evaluate_rankings

    ds = load_oxford5k(oxford_root[0])
    n = len(ds)
    rankings = []
    for q in ds.queries:  # every junk image first, then every positive, then the rest
        head = [*q.relevant["junk"].tolist(), *q.relevant["ok"].tolist()]
        rankings.append(head + sorted(set(range(n)) - set(head)))
    m = evaluate_rankings(ds, np.array(rankings))
    assert m["mAP"] == pytest.approx(1.0) and m["n_evaluated"] == 55
