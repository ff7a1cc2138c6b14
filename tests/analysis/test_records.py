"""Result records: a torn tail never swallows the next record; reading skips what is not whole."""
import json
import logging

from analysis.records import append_record, config_hash, gather, read_records


def test_a_torn_tail_is_moved_aside_once_and_the_next_record_survives(tmp_path, caplog):
    path = tmp_path / "results.jsonl"
    append_record(path, {"config_hash": "a", "metrics": {"mAP": 0.5}})
    with open(path, "a") as f:                       # a writer killed halfway through a line
        f.write('{"config_hash": "b", "metr')
    with caplog.at_level(logging.WARNING):
        assert [r["config_hash"] for r in read_records(path)] == ["a"]   # before: skipped, said
        assert "line 2: not a whole record" in caplog.text
        append_record(path, {"config_hash": "c", "metrics": {"mAP": 0.7}})
        assert "torn record" in caplog.text
        caplog.clear()
        records = read_records(path)
    assert [r["config_hash"] for r in records] == ["a", "c"] and caplog.text == ""   # said once
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[1])["metrics"]["mAP"] == 0.7
    assert (tmp_path / "results.jsonl.torn").read_text() == '{"config_hash": "b", "metr\n'   # kept


def test_gather_keeps_the_newest_record_per_configuration(tmp_path):
    for sub, ts, value in (("x", "2026-01-01T00:00:00", 0.1), ("y", "2026-02-01T00:00:00", 0.2)):
        (tmp_path / sub).mkdir()
        append_record(tmp_path / sub / "results.jsonl", {"config_hash": "h", "timestamp": ts,
                                                         "dataset": "d", "metrics": {"mAP": value}})
    (only,) = gather(tmp_path)
    assert only["metrics"]["mAP"] == 0.2


def test_config_hash_ignores_how_fast_a_run_goes():
    base = {"aggregator": {"p": 3}, "device": "cpu", "batch_size": 4, "threads": None}
    assert config_hash(base) == config_hash(base | {"device": "cuda", "batch_size": 64, "threads": 8})
    assert config_hash(base) != config_hash(base | {"aggregator": {"p": 4}})
    stored = base | {"store": {"root": "/a", "dtype": "float16", "chunk_size": 64}}
    assert config_hash(stored) == config_hash(stored | {"store": {"root": "/b", "dtype": "float16",
                                                                  "chunk_size": 8}})
    assert config_hash(stored) != config_hash(stored | {"store": {"root": "/a", "dtype": "float32",
                                                                  "chunk_size": 64}})


def test_one_scale_hashes_as_before_multiscale_existed():
    """A sweep recorded before ``multiscale`` was a config node resumes: at the one scale 1 (whose
    combination is never used) the hash is as it was; other scales change it."""
    base = {"aggregator": {"p": 3}, "device": "cpu"}
    single = {"scales": [1.0], "combine": "mean", "p": 1.0}
    assert config_hash(base | {"multiscale": single}) == config_hash(base)
    assert config_hash(base | {"multiscale": single | {"combine": "max", "p": None}}) == config_hash(base)
    assert config_hash(base | {"multiscale": single | {"scales": [1.0, 0.5]}}) != config_hash(base)
    two = single | {"scales": [1.0, 0.5]}
    assert config_hash(base | {"multiscale": two}) != config_hash(base | {"multiscale": two | {"combine": "max"}})


def test_gather_orders_each_setting_with_no_reranking_first(tmp_path):
    for rerank in ("dba", "aqe", "none", "alpha_qe"):
        append_record(tmp_path / "results.jsonl", {"config_hash": rerank, "dataset": "d",
                                                   "aggregator": "sum", "dim": 8, "rerank": rerank,
                                                   "metrics": {"mAP": 0.5}})
    assert [r["rerank"] for r in gather(tmp_path)] == ["none", "alpha_qe", "aqe", "dba"]


def test_malformed_records_are_skipped_with_a_warning_failed_ones_kept(tmp_path, caplog):
    path = tmp_path / "results.jsonl"
    path.write_text('[1, 2]\n{"dataset": "d"}\n{"status": "failed", "error": "x", "config_hash": "f"}\n'
                    '{"config_hash": "ok", "metrics": {"mAP": 0.5}}\n')
    with caplog.at_level(logging.WARNING):
        records = read_records(path)
    assert [r["config_hash"] for r in records] == ["f", "ok"]
    assert "line 1: not a result record" in caplog.text and "line 2: not a result record" in caplog.text


def test_the_report_links_the_job_whose_record_the_tables_show(tmp_path):
    """A failure newer than a completed record of the same configuration (a rerun that crashed
    while writing figures) hides neither its result from the tables nor its folder from the report."""
    from analysis.report import job_dirs
    for sub, ts, rec in (("done", "2026-01-01T00:00:00", {"metrics": {"mAP": 0.4}}),
                         ("later", "2026-02-01T00:00:00", {"status": "failed", "error": "disk full"})):
        (tmp_path / sub).mkdir()
        append_record(tmp_path / sub / "results.jsonl", {"config_hash": "h", "timestamp": ts,
                                                         "dataset": "d", **rec})
    (only,) = gather(tmp_path)
    assert only["metrics"]["mAP"] == 0.4
    assert job_dirs(tmp_path) == {"h": tmp_path / "done"}


def test_metrics_at_k_left_at_none_hash_as_before():
    base = {"aggregator": {"p": 3}}
    assert config_hash(base | {"map_at": [], "recall_at": []}) == config_hash(base)
    assert config_hash(base | {"map_at": [100]}) != config_hash(base)


def test_codes_of_kind_none_hash_as_before():
    base = {"aggregator": {"p": 3}}
    none = {"kind": "none", "bytes": 16, "symmetric": False}
    assert config_hash(base | {"codes": none}) == config_hash(base)
    assert config_hash(base | {"codes": none | {"kind": "pq"}}) != config_hash(base)
    pq = none | {"kind": "pq"}
    assert config_hash(base | {"codes": pq | {"rescore": 0}}) == config_hash(base | {"codes": pq})
    assert config_hash(base | {"codes": pq | {"rescore": 50}}) != config_hash(base | {"codes": pq})


def test_whitening_variants_at_their_defaults_hash_as_before():
    post = {"fit_on": "demo_holdout", "alpha": None, "pca": True, "dim": 128, "whiten": True}
    base = {"aggregator": {"p": 3}, "postprocess": post}
    neutral = post | {"whitening": "pca", "whiten_power": 0.5, "shrinkage": 0.0}
    assert config_hash(base | {"postprocess": neutral}) == config_hash(base)
    for change in ({"whitening": "learned"}, {"whiten_power": 0.25}, {"shrinkage": 0.1}):
        assert config_hash(base | {"postprocess": neutral | change}) != config_hash(base)
