"""UKBench loader on the real sample images; N-S score on a hand-made ranking."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from benchmarks.evaluation import evaluate_rankings
from benchmarks.errors import DatasetError
from benchmarks.ukbench import load_ukbench

from benchmark_layouts import write_images


@pytest.mark.parametrize("sub", ["full", ""])
def test_real_samples_load_end_to_end(samples, tmp_path, sub):
    shutil.copytree(samples / "ukbench", tmp_path / sub, dirs_exist_ok=True)
    ds = load_ukbench(tmp_path)
    assert len(ds) == len(ds.queries) == 10 and ds.protocol == "ukbench"
    assert [q.db_index for q in ds.queries] == list(range(10))
    assert ds.queries[5].relevant["ok"].tolist() == [4, 6, 7]
    assert ds.queries[9].relevant["ok"].tolist() == [8]  # group 2 is half present
    assert ds.meta["incomplete_groups"] == 1
    assert ds.images[0].load().size == (640, 480)


def test_ns_score_by_hand(tmp_path):
    write_images(tmp_path / "full", [f"ukbench{i:05d}" for i in range(8)])
    ds = load_ukbench(tmp_path)
    rankings = np.array([list(range(8))] * 8)  # everyone ranks 0..7 in database order
    # queries 0-3 find their 4 group members in the top 4; queries 4-7 none
    assert evaluate_rankings(ds, rankings)["N-S"] == pytest.approx((4 * 4 + 4 * 0) / 8)
    rankings[4] = [4, 5, 0, 6, 7, 1, 2, 3]  # query 4: itself, 5, (0), 6 -> 3 of 4
    assert evaluate_rankings(ds, rankings)["N-S"] == pytest.approx((16 + 3) / 8)


def test_errors(tmp_path):
    with pytest.raises(DatasetError, match="deepagg-download ukbench"):
        load_ukbench(tmp_path / "none")
    (tmp_path / "full").mkdir()
    with pytest.raises(DatasetError, match="no images"):
        load_ukbench(tmp_path)
    write_images(tmp_path / "full", ["100000"])
    with pytest.raises(DatasetError, match="100000.*another dataset"):
        load_ukbench(tmp_path)
