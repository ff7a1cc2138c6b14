"""INSTRE on a tiny gnd_instre.mat written in the official structure (1 x N cells of paths with
suffix, a 1 x Q struct array gnd with ok and bbx, 1-based): names, boxes, crops, positives, the
Oxford-style mAP, and what is missing named."""
import numpy as np
import pytest
import scipy.io
from PIL import Image

from benchmarks.availability import missing_requirements
from benchmarks.errors import DatasetError
from benchmarks.evaluation import evaluate_rankings
from benchmarks.instre import LAYOUT, load_instre

IMLIST = ["INSTRE-S1/01a_book/001.jpg", "INSTRE-S1/01a_book/002.jpg",
          "INSTRE-S2/01_toy/001.jpg", "INSTRE-M/01_book_toy/001.jpg"]
QIMLIST = ["INSTRE-S1/01a_book/003.jpg", "INSTRE-S2/01_toy/002.jpg"]
BOXES = [[2.0, 3.0, 50.0, 40.0], [0.0, 0.0, 64.0, 48.0]]
OK = [[1.0, 2.0, 4.0], [3.0]]        # 1-based, as MATLAB writes them; one query with a single positive


def write_instre(root, imlist=IMLIST, ok=OK, files=IMLIST + QIMLIST):
    for rel in files:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (64, 48), (len(rel), 0, 0)).save(path)
        path.with_suffix(".txt").write_text("1 2 30 20\n")   # INSTRE's own box files: not read
    gnd = np.zeros((1, len(ok)), dtype=[("ok", "O"), ("bbx", "O")])
    for i, (o, b) in enumerate(zip(ok, BOXES)):
        gnd[0, i] = (np.array([o]), np.array([b]))
    cells = [np.array([imlist], dtype=object), np.array([QIMLIST], dtype=object)]
    scipy.io.savemat(root / "gnd_instre.mat", {"imlist": cells[0], "qimlist": cells[1], "gnd": gnd})
    return root


def test_split_names_boxes_and_positives(tmp_path):
    ds = load_instre(write_instre(tmp_path))
    assert len(ds) == 4 and len(ds.queries) == 2 and ds.protocol == "oxford" and ds.crop_queries
    assert [im.name for im in ds.images] == [n.removesuffix(".jpg") for n in IMLIST]
    assert ds.images[2].path == tmp_path / IMLIST[2]
    q0, q1 = ds.queries
    assert q0.image.name == "INSTRE-S1/01a_book/003" and q0.image.path == tmp_path / QIMLIST[0]
    assert q0.box == (2.0, 3.0, 50.0, 40.0) and q1.box == (0.0, 0.0, 64.0, 48.0)
    assert q0.relevant["ok"].tolist() == [0, 1, 3] and q1.relevant["ok"].tolist() == [2]
    assert q0.relevant["junk"].tolist() == [] and q0.db_index is None
    assert [(i, box) for i, _, box in ds.extra_query_images()] == [(0, q0.box), (1, q1.box)]
    assert ds.meta == {"crop_queries": True, "ground_truth": "gnd_instre.mat"}
    uncropped = load_instre(tmp_path, crop_queries=False, fit_on="demo_holdout")
    assert [box for _, _, box in uncropped.extra_query_images()] == [None, None]
    assert uncropped.fit_on == "demo_holdout"


def test_scored_as_oxford_ok_positives_and_no_junk(tmp_path):
    ds = load_instre(write_instre(tmp_path))
    rankings = np.array([[0, 2, 1, 3],       # positives 0, 1, 3 at ranks 0, 2, 3
                         [2, 0, 1, 3]])
    metrics = evaluate_rankings(ds, rankings)
    ap0 = (1 + (0.5 + 2 / 3) / 2 + (2 / 3 + 3 / 4) / 2) / 3   # Oxford's trapezoidal AP
    assert metrics["aps"].tolist() == pytest.approx([ap0, 1.0])


def test_missing_files_and_unknown_images_are_named(tmp_path):
    with pytest.raises(DatasetError) as e:
        load_instre(tmp_path / "nowhere")
    assert LAYOUT in str(e.value) and f"deepagg-download instre --root {tmp_path / 'nowhere'}" in str(e.value)
    with pytest.raises(DatasetError, match=r"ground-truth file .*gnd_instre.mat does not exist"):
        load_instre(tmp_path)
    root = write_instre(tmp_path / "a", files=IMLIST[1:] + QIMLIST)
    with pytest.raises(DatasetError, match=r"image 'INSTRE-S1/01a_book/001' \(listed in "
                                           r".*gnd_instre.mat\) is not in"):
        load_instre(root)
    root = write_instre(tmp_path / "b", ok=[[1.0, 9.0], [3.0]])
    with pytest.raises(DatasetError, match=r"ok of query 'INSTRE-S1/01a_book/003' holds index 9"):
        load_instre(root)


def test_a_folder_extracted_one_level_down_is_pointed_at(tmp_path):
    write_instre(tmp_path / "INSTRE_release")
    (tmp_path / "INSTRE_release" / "gnd_instre.mat").rename(tmp_path / "gnd_instre.mat")
    with pytest.raises(DatasetError, match=r"image folder .*INSTRE-M .*INSTRE_release holds it"):
        load_instre(tmp_path)


def test_availability_lists_the_folders_and_the_download(tmp_path):
    cfg = {"_target_": "benchmarks.instre.load_instre", "name": "instre", "root": str(tmp_path / "i")}
    text = "\n".join(missing_requirements([cfg]))
    assert "INSTRE-S1" in text and "INSTRE-M" in text and "gnd_instre.mat" in text
    assert f"deepagg-download instre --root {tmp_path / 'i'}" in text
    assert missing_requirements([{**cfg, "root": str(write_instre(tmp_path))}]) == []
