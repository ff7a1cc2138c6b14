"""Compact codes: NumPy's encoding and decoding equal faiss's own on the same codebooks, the
scored matrices give ADC's and Hamming's scores exactly (hand-worked), and bad sizes are named."""
import numpy as np
import pytest

from aggregators.codes import CompactCodes
from benchmarks.errors import ParameterError


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    mix = rng.normal(size=(16, 16))
    return (rng.normal(size=(600, 16)) @ mix).astype(np.float32)   # correlated dimensions


def test_pq_codes_are_faiss_codes(data):
    import faiss
    codes = CompactCodes("pq", bytes=4).fit(data)
    pq = faiss.ProductQuantizer(16, 4, 8)
    pq.cp.seed = 0
    pq.train(data)
    np.testing.assert_array_equal(codes.centroids_.reshape(-1), faiss.vector_to_array(pq.centroids))
    np.testing.assert_array_equal(codes.encode(data[:50]), pq.compute_codes(data[:50]))
    np.testing.assert_allclose(codes.database(data[:50]), pq.decode(pq.compute_codes(data[:50])),
                               rtol=1e-6, atol=1e-6)


def test_asymmetric_scores_are_the_query_against_the_decoded_database(data):
    codes = CompactCodes("pq", bytes=8).fit(data)
    q, x = data[:3], data[100:140]
    decoded = codes.decode(codes.encode(x))
    np.testing.assert_allclose(codes.queries(q) @ codes.database(x).T, q @ decoded.T, rtol=1e-5)
    sym = CompactCodes("pq", bytes=8, symmetric=True).fit(data)
    np.testing.assert_array_equal(sym.queries(q), sym.database(q))


def test_opq_rotates_orthogonally_and_reconstructs_no_worse_than_pq(data):
    pq = CompactCodes("pq", bytes=2).fit(data)
    opq = CompactCodes("opq", bytes=2).fit(data)
    np.testing.assert_allclose(opq.rotation_ @ opq.rotation_.T, np.eye(16), atol=1e-4)
    err = lambda c: float(((c.database(data) - data) ** 2).sum())   # noqa: E731
    assert err(opq) <= err(pq) * 1.001


def test_binary_codes_rank_by_hamming_distance_by_hand():
    x = np.array([[0.5, -1.0, 0.0, 2.0, -0.1, 3.0, 1.0, -2.0, 9.0]], np.float32)  # 9 dims, 8 used
    codes = CompactCodes("binary", bytes=1).fit(x)
    assert codes.encode(x).tolist() == [[0b10110110]]                  # sign bits, 0 counts as +
    np.testing.assert_array_equal(codes.database(x), [[1, -1, 1, 1, -1, 1, 1, -1]])
    q = np.array([[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 5.0]], np.float32)
    assert (codes.queries(q) @ codes.database(x).T).item() == 8 - 2 * 3   # asymmetric: q . signs
    sym = CompactCodes("binary", bytes=1, symmetric=True).fit(x)
    assert (sym.queries(q) @ sym.database(x).T).item() == 8 - 2 * 3       # bits - 2 Hamming(=3)


def test_sizes_that_cannot_work_are_named():
    with pytest.raises(ParameterError, match="binary codes of 4 bytes need 32 dimensions, the "
                                             "descriptors have 16: at most 2"):
        CompactCodes("binary", bytes=4).fit(np.ones((3, 16), np.float32))
    with pytest.raises(ParameterError, match="bytes must divide 16"):
        CompactCodes("pq", bytes=3).fit(np.ones((300, 16), np.float32))
    with pytest.raises(ParameterError, match="needs at least 256 fitting descriptors; the fitting set has 10"):
        CompactCodes("pq", bytes=4).fit(np.ones((10, 16), np.float32))
    with pytest.raises(ParameterError, match="kind='lsh'"):
        CompactCodes("lsh")
