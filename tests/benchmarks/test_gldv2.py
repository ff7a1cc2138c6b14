"""GLDv2 retrieval on small files written in its official layout: the split's queries, their
positives, the protocol's mAP@100, and ids the CSVs do not know refused with file and line."""
import numpy as np
import pytest
from PIL import Image

from benchmarks.availability import missing_requirements
from benchmarks.errors import DatasetError
from benchmarks.evaluation import evaluate
from benchmarks.gldv2 import image_path, load_gldv2

INDEX = ["a0000000000000aa", "b111111111111111", "c222222222222222", "d333333333333333"]
TEST = ["e444444444444444", "f555555555555555", "0666666666666666"]


def write_gldv2(root, solution_rows):
    for folder, ids in (("index", INDEX), ("test", TEST)):
        for i in ids:
            path = image_path(root / folder, i)
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (40, 30), (len(i), 0, 0)).save(path)
    (root / "index.csv").write_text("id\n" + "\n".join(INDEX) + "\n")
    (root / "test.csv").write_text("id\n" + "\n".join(TEST) + "\n")
    (root / "retrieval_solution_v2.1.csv").write_text(
        "id,images,Usage\n" + "\n".join(",".join(r) for r in solution_rows) + "\n")
    return root


SOLUTION = [(TEST[0], f"{INDEX[2]} {INDEX[0]}", "Private"), (TEST[1], INDEX[3], "Public"),
            (TEST[2], "None", "Ignored")]


def test_the_split_decides_the_queries_and_their_positives(tmp_path):
    root = write_gldv2(tmp_path, SOLUTION)
    ds = load_gldv2(root)
    assert [im.name for im in ds.images] == INDEX and ds.protocol == "gldv2"
    assert [q.image.name for q in ds.queries] == [TEST[0]]
    assert ds.queries[0].relevant["ok"].tolist() == [0, 2] and ds.queries[0].db_index is None
    assert ds.images[1].path == root / "index" / "b" / "1" / "1" / f"{INDEX[1]}.jpg"
    assert [q.image.name for q in load_gldv2(root, split="all").queries] == TEST[:2]
    assert [q.image.name for q in load_gldv2(root, split="public").queries] == [TEST[1]]
    with pytest.raises(DatasetError, match="split='val'"):
        load_gldv2(root, split="val")


def test_mAP_at_100_is_the_protocols_own_metric(tmp_path):
    ds = load_gldv2(write_gldv2(tmp_path, SOLUTION))
    X = np.eye(4, dtype=np.float32)
    Q = np.array([[0.0, 0.1, 1.0, 0.0]], np.float32)          # ranks image 2 first, image 0 third
    metrics, _ = evaluate(ds, Q, X)
    assert metrics["mAP@100"] == pytest.approx((1 + 2 / 3) / 2)   # min(2 positives, 100) = 2
    assert metrics["n_evaluated"] == 1


def test_unknown_ids_are_refused_with_file_and_line(tmp_path):
    root = write_gldv2(tmp_path, [SOLUTION[0], (TEST[1], "ffffffffffffffff", "Private")])
    with pytest.raises(DatasetError, match=r"retrieval_solution_v2.1.csv line 3: 'ffffffffffffffff' "
                                           r"is not an index image"):
        load_gldv2(root)
    root = write_gldv2(tmp_path, [("1777777777777777", INDEX[0], "Private")])
    with pytest.raises(DatasetError, match="line 2: '1777777777777777' is not a test image"):
        load_gldv2(root)


def test_availability_lists_what_is_missing(tmp_path):
    cfg = {"_target_": "benchmarks.gldv2.load_gldv2", "name": "gldv2", "root": str(tmp_path / "g")}
    lines = missing_requirements([cfg], {"gldv2": "test set"})
    text = "\n".join(lines)
    assert "gldv2" in text and "index" in text and "retrieval_solution_v2.1.csv" in text


def test_download_prints_the_manual_steps_and_the_layout(tmp_path, capsys):
    from benchmarks import registry
    from experiments.download_app import main as download_main
    assert download_main(["gldv2", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "cvdfoundation/google-landmark" in err and registry.ENTRIES["gldv2"].layout in err
