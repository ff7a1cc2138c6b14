"""Rankings and similarities made elsewhere: read in each layout, and every mismatch with the
benchmark named with the file (and line)."""
import numpy as np
import pytest

from benchmarks.base import ImageRef, Query, RetrievalDataset
from benchmarks.errors import DatasetError
from benchmarks.ranking_files import check_length, read_rankings, read_similarity


@pytest.fixture
def bench():
    images = [ImageRef(f"db{i}") for i in range(5)]
    queries = [Query(image=ImageRef(f"q{j}"), relevant={"ok": np.array([j])}) for j in range(2)]
    return RetrievalDataset(name="tiny", images=images, queries=queries, protocol="gldv2")


def test_a_gldv2_submission_csv_becomes_index_rankings(tmp_path, bench):
    f = tmp_path / "submission.csv"
    f.write_text("id,images\nq1,db4 db1\nq0,db0 db2 db3\n")          # any query order, any length
    np.testing.assert_array_equal(read_rankings(f, bench), [[0, 2, 3], [4, 1, -1]])
    f.write_bytes("\ufeffid,images\nq1,db4\nq0,db0\n".encode())      # a spreadsheet's BOM
    np.testing.assert_array_equal(read_rankings(f, bench), [[0], [4]])
    f.write_bytes(b"id,images\nq0,db\xff\n")
    with pytest.raises(DatasetError, match="not a UTF-8 CSV file"):
        read_rankings(f, bench)


@pytest.mark.parametrize("text,named", [
    ("id,images\nq0,db0\nq9,db1\n", "submission.csv, line 3: 'q9' is not a query of tiny"),
    ("id,images\nq0,db0 dbX\nq1,db1\n", "line 2: 'dbX' is not an image of tiny's database"),
    ("id,images\nq0,db0\nq0,db1\n", "line 3: query 'q0' ranked twice"),
    ("id,images\nq0,db0 db0\nq1,db1\n", "line 2: an image is listed more than once"),
    ("id,images\nq0,db0\n", "1 of tiny's queries have no row (e.g. 'q1')"),
    ("query,ranked\nq0,db0\n", "the header must have columns id,images"),
    ("id,images\nq0,db0,db1\nq1,db1\n", "line 2: more fields than the header's; the images of a row are separated by spaces"),
    ("id,images\n\nq0,db0\nq7,db1\n", "line 4: 'q7'"),                       # lines, blank ones too
])
def test_a_csv_that_does_not_fit_is_named_with_its_line(tmp_path, bench, text, named):
    f = tmp_path / "submission.csv"
    f.write_text(text)
    with pytest.raises(DatasetError, match=named.replace("(", r"\(").replace(")", r"\)")):
        read_rankings(f, bench)


def test_npz_rankings_are_checked_for_range_repeats_rows_and_names(tmp_path, bench):
    f = tmp_path / "r.npz"
    np.savez(f, rankings=np.array([[1, 0], [2, 4]]), query_names=np.array(["q0", "q1"]))
    np.testing.assert_array_equal(read_rankings(f, bench), [[1, 0], [2, 4]])
    for arrays, named in (({"rankings": np.array([[1, 5], [0, 2]])}, "row 0, position 1 is 5"),
                          ({"rankings": np.array([[1, 1], [0, 2]])}, "row 0 lists image 1 more than once"),
                          ({"rankings": np.array([[1, 2]])}, "1 rows of 2, but tiny has 2 queries"),
                          ({"rankings": np.array([[0.5], [1.0]])}, "integer database indices"),
                          ({"ranks": np.array([[1], [0]])}, "no array 'rankings'"),
                          ({"rankings": np.array([[1], [0]]), "query_names": np.array(["q1", "q0"])},
                           "the first difference is at 0: 'q1' where tiny has 'q0'")):
        np.savez(f, **arrays)
        with pytest.raises(DatasetError, match=named):
            read_rankings(f, bench)
    with pytest.raises(DatasetError, match="top 8"):
        check_length(np.zeros((2, 3), np.int64), f, (1, 5, 10), 8)
    check_length(np.zeros((2, 5), np.int64), f, (1, 5, 10), 5)     # the whole database: enough
    f.write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match="r.npz: cannot read it"):
        read_rankings(f, bench)


def test_a_similarity_must_have_the_benchmarks_shape(tmp_path, bench):
    f = tmp_path / "s.npy"
    np.save(f, np.ones((2, 5), np.float32))
    assert read_similarity(f, bench).shape == (2, 5)
    np.save(f, np.ones((5, 2), np.float32))
    with pytest.raises(DatasetError, match=r"s.npy: a \(5, 2\) matrix of float32, but tiny needs \(2, 5\)"):
        read_similarity(f, bench)
    with pytest.raises(DatasetError, match="no such file"):
        read_similarity(tmp_path / "none.npy", bench)
    with pytest.raises(DatasetError, match="not a .npy or .npz"):
        read_similarity(tmp_path / "s.txt", bench) if (tmp_path / "s.txt").write_text("1") else None
