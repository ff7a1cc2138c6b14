"""A benchmark as three CSV files: the database in order, queries with boxes, relevance rows;
both protocols, and every unknown name refused with its file and line."""
import numpy as np
import pytest
from PIL import Image

from benchmarks.custom import load_custom_csv
from benchmarks.errors import DatasetError


def write(root, relevance, queries="image,x1,y1,x2,y2\nq0,2,3,30,20\nb.jpg,,,,\n"):
    (root / "sub").mkdir(parents=True, exist_ok=True)
    for name in ("a", "b", "c", "q0"):
        Image.new("RGB", (40, 30)).save(root / "sub" / f"{name}.png")
    (root / "database.csv").write_text("image\na\nb\nc\n")
    (root / "queries.csv").write_text(queries)
    (root / "relevance.csv").write_text("query,image,relevance\n" + relevance)
    return root


def test_oxford_relevance_boxes_and_database_queries(tmp_path):
    ds = load_custom_csv(write(tmp_path, "q0,c,ok\nq0,a,junk\nb,a,ok\n"))
    assert [im.name for im in ds.images] == ["a", "b", "c"] and ds.protocol == "oxford"
    q0, qb = ds.queries
    assert q0.db_index is None and q0.box == (2.0, 3.0, 30.0, 20.0)
    assert q0.relevant["ok"].tolist() == [2] and q0.relevant["junk"].tolist() == [0]
    assert qb.db_index == 1 and qb.box is None and qb.relevant["ok"].tolist() == [0]
    assert ds.crop_queries and [e[0] for e in ds.extra_query_images()] == [0]


def test_easy_and_hard_select_the_revisited_protocol(tmp_path):
    ds = load_custom_csv(write(tmp_path, "q0,c,easy\nq0,b,hard\nb,a,junk\n"))
    assert ds.protocol == "revisited"
    assert ds.queries[0].relevant["easy"].tolist() == [2] and ds.queries[0].relevant["hard"].tolist() == [1]
    assert ds.queries[1].relevant["easy"].tolist() == [] and ds.queries[1].relevant["junk"].tolist() == [0]


@pytest.mark.parametrize("relevance,named", [
    ("q0,zzz,ok\n", "relevance.csv line 2: image 'zzz' is not in"),
    ("q0,a,ok\nnobody,a,ok\n", "relevance.csv line 3: query 'nobody' is not in"),
    ("q0,a,maybe\n", "relevance.csv line 2: relevance 'maybe'"),
    ("q0,a,ok\nb,c,easy\n", "mixes ok with easy / hard"),
])
def test_unknown_names_and_kinds_are_refused_with_file_and_line(tmp_path, relevance, named):
    with pytest.raises(DatasetError, match=named):
        load_custom_csv(write(tmp_path, relevance))


def test_a_box_with_missing_corners_and_a_missing_column_are_named(tmp_path):
    with pytest.raises(DatasetError, match="queries.csv line 2: the box needs four numbers"):
        load_custom_csv(write(tmp_path, "q0,a,ok\n", queries="image,x1,y1,x2,y2\nq0,1,2,,\n"))
    root = write(tmp_path, "q0,a,ok\n")
    (root / "relevance.csv").write_text("query,image\nq0,a\n")
    with pytest.raises(DatasetError, match="relevance.csv has no column relevance"):
        load_custom_csv(root)
