"""Diffusion, k-reciprocal and SuperGlobal re-ranking and the whitening variants as a user runs
them: one sweep on the session's store, its records, tables and report, the database graph
cached in the store and read back, and an export scored again with the same re-ranking."""
import json
import shutil

import pytest

from analysis.records import gather as load_records
from analysis.report import build_report
from analysis.tables import records_frame, rerank_gains
from apps import FAST_STORE, deepagg

RERANKS = "none,diffusion_small,k_reciprocal,superglobal"


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, fast_store):
    tmp = tmp_path_factory.mktemp("rerank_runs")
    store = tmp / "store"
    shutil.copytree(fast_store, store)
    deepagg(["-m", *FAST_STORE, f"rerank={RERANKS}", "postprocess=pca_whiten,learned_whiten_shrunk",
             "hydra.sweep.dir=sweep"], tmp, store)
    return tmp, store


def test_every_method_runs_records_its_label_and_gains(sweep):
    tmp, _ = sweep
    records = load_records(tmp / "sweep")
    assert len(records) == 8 and all(r.get("status", "ok") == "ok" for r in records)
    labels = {r["rerank_label"] for r in records}
    assert {"none", "diffusion(k=5,query_k=5,gamma=3,alpha=0.99,truncation=1000)", "k-reciprocal(k1=20,k2=6,lambda_value=0.3)",
            "SuperGlobal(M=400,K=9,beta=0.15)"} == labels
    df = records_frame(records)
    assert set(df["whitening"]) == {"PCA-whitening", "learned whitening shrinkage 0.1"}
    gains = rerank_gains(df, "mAP")
    assert len(gains) == 6 and gains["gain"].notna().all()       # 3 methods x 2 whitenings
    md = build_report(tmp / "sweep").read_text()
    assert "k-reciprocal(k1=20" in md and "learned whitening" in md


def test_the_database_graph_is_cached_and_read_back(sweep):
    tmp, store = sweep
    graphs = sorted(p.name for p in (store / "_fitted").glob("graph-*.pkl"))
    assert len(graphs) == 4               # depth 5 and 20, for each whitening's descriptors
    p = deepagg([*FAST_STORE, "rerank=k_reciprocal", "hydra.run.dir=again"], tmp, store)
    assert "graph: fitted state read" in p.stdout + p.stderr
    again = json.loads((tmp / "again" / "results.jsonl").read_text().splitlines()[-1])
    (first,) = [r for r in load_records(tmp / "sweep") if r["rerank"] == "k_reciprocal"
                and r["postprocess"]["whitening"] == "pca"]
    assert again["metrics"] == first["metrics"]


def test_an_export_scored_with_diffusion_reproduces_the_run(sweep):
    tmp, store = sweep
    deepagg([*FAST_STORE, "rerank=diffusion_small", "hydra.run.dir=diffused"], tmp, store)
    deepagg(["diffused"], tmp, store, app="experiments.export_app")
    deepagg(["descriptors=diffused/descriptors", "rerank=diffusion_small", "hydra.run.dir=scored"],
            tmp, store, app="experiments.eval_app")
    run = json.loads((tmp / "diffused" / "results.jsonl").read_text().splitlines()[-1])
    scored = json.loads((tmp / "scored" / "results.jsonl").read_text().splitlines()[-1])
    assert scored["metrics"] == run["metrics"] and scored["rerank_label"] == run["rerank_label"]
