"""deepagg-export and deepagg-eval as a user launches them: an export scored again reproduces the
run's metrics exactly (folder and HDF5), an outside method's descriptors sit in the same tables,
and bad files stop before any search, naming the file."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from apps import FAST_STORE, deepagg


def _record(folder):
    (results,) = folder.rglob("results.jsonl")
    return json.loads(results.read_text().splitlines()[-1])


@pytest.fixture(scope="module")
def exported(tmp_path_factory, fast_store):
    """A default run (with mAP@k and R@k) on the session's store, exported twice."""
    tmp = tmp_path_factory.mktemp("export")
    store = tmp / "store"
    shutil.copytree(fast_store, store)
    metrics = ["map_at=[50]", "recall_at=[1,5]"]
    deepagg([*FAST_STORE, *metrics, "rerank=aqe", "hydra.run.dir=run"], tmp, store)
    p = deepagg(["run", "--out", "run/descriptors.h5", "--local"], tmp, store, app="experiments.export_app")
    assert "extracting" not in p.stdout + p.stderr                    # all from the store and caches
    deepagg(["run", "--local"], tmp, store, app="experiments.export_app")  # the default: run/descriptors
    return tmp, store, metrics


@pytest.mark.parametrize("name", ["descriptors", "descriptors.h5"])
def test_eval_of_an_export_reproduces_the_runs_metrics_exactly(exported, name):
    tmp, store, metrics = exported
    deepagg([f"descriptors=run/{name}", *metrics, "rerank=aqe", f"hydra.run.dir=eval_{name}"],
            tmp, store, app="experiments.eval_app")
    run, again = _record(tmp / "run"), _record(tmp / f"eval_{name}")
    assert again["metrics"] == run["metrics"] and "mAP@50" in run["metrics"]
    assert again["dim"] == run["dim"] and again["feature_type"] == "external"
    assert again["descriptors_meta"]["metrics"] == run["metrics"]
    assert again["rerank_label"] == run["rerank_label"]
    with np.load(tmp / "run" / "rankings.npz") as a, np.load(tmp / f"eval_{name}" / "rankings.npz") as b:
        np.testing.assert_array_equal(a["topk"], b["topk"])


def test_an_outside_method_is_scored_and_a_mismatched_file_is_named(exported):
    tmp, store, _ = exported
    import torch
    folder = tmp / "run" / "descriptors"
    header = json.loads((folder / "descriptors.json").read_text())
    rng = np.random.default_rng(0)
    db = rng.normal(size=(header["n_database"], 8)).astype(np.float32)
    torch.save({"database": torch.from_numpy(db), "queries": torch.from_numpy(db[:header["n_queries"]]),
                "database_names": header["database_names"],
                "query_names": header["query_names"]}, tmp / "random.pt")
    deepagg(["descriptors=random.pt", "method=random8", "hydra.run.dir=outside"], tmp, store,
            app="experiments.eval_app")
    rec = _record(tmp / "outside")
    assert rec["aggregator"] == "random8" and rec["dim"] == 8 and rec["metrics"]["mAP"] < 0.5
    assert "random8" in (tmp / "outside" / "table.md").read_text()
    torch.save({"database": torch.from_numpy(db[:-1]), "queries": torch.from_numpy(db[:80]),
                "database_names": header["database_names"][:-1],
                "query_names": header["query_names"]}, tmp / "short.pt")
    p = deepagg(["descriptors=short.pt", "hydra.run.dir=short"], tmp, store, check=False,
                app="experiments.eval_app")
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert "short.pt: 79 database images, but demo has 80" in p.stderr
    assert not (tmp / "short" / "results.jsonl").exists()
    p = deepagg(["descriptors=run/descriptors", "dataset=demo_holdout", "hydra.run.dir=other"],
                tmp, store, check=False, app="experiments.eval_app")
    assert p.returncode == 2 and "demo_holdout has 288" in p.stderr
    p = deepagg(["nowhere"], tmp, store, check=False, app="experiments.export_app")
    assert p.returncode == 2 and "nowhere is no deepagg-run job folder" in p.stderr


def test_binary_codes_rank_as_hamming_distances_of_the_exported_descriptors(exported):
    """A run with symmetric binary codes scores exactly the Hamming ranking of the signs of the
    leading 64 dimensions of the same descriptors, computed here from the export."""
    from benchmarks import evaluate
    from benchmarks.descriptor_files import read_descriptors
    from experiments.adapters import job_dataset
    tmp, store, _ = exported
    deepagg([*FAST_STORE, "codes=binary", "codes.bytes=8", "codes.symmetric=true",
             "hydra.run.dir=binary"], tmp, store)
    rec = _record(tmp / "binary")
    assert rec["codes"] == "binary 8 B (symmetric)" and rec["bytes_per_image"] == 8
    d = read_descriptors(tmp / "run" / "descriptors")
    signs = lambda a: np.where(a[:, :64] >= 0, 1.0, -1.0).astype(np.float32)   # noqa: E731
    q, x = signs(d.queries), signs(d.database)
    assert np.array_equal(q @ x.T, 64 - 2 * (q[:, None, :] != x[None, :, :]).sum(-1))  # Hamming
    metrics, _ = evaluate(job_dataset(tmp / "run"), q, x)
    assert rec["metrics"]["mAP"] == metrics["mAP"] and rec["metrics"]["mP@5"] == metrics["mP@5"]
    assert "binary 8 B" in (tmp / "binary" / "table.md").read_text()


def test_a_rescored_short_list_ranks_its_head_by_the_float_descriptors(exported):
    """codes.rescore=20 over PQ codes (their codebooks from the cache of a run without it)
    scores the ranking built here from two exports: the coded ranking, its first 20 re-sorted
    by the float descriptors' scores."""
    from benchmarks import evaluate_rankings
    from benchmarks.descriptor_files import read_descriptors
    from benchmarks.search import rank, similarity
    from experiments.adapters import job_dataset
    tmp, store, _ = exported
    pq = [*FAST_STORE, "codes=pq", "codes.bytes=8"]
    deepagg([*pq, "hydra.run.dir=pq"], tmp, store)
    deepagg(["pq"], tmp, store, app="experiments.export_app")            # the decoded codes
    deepagg([*pq, "codes.rescore=20", "hydra.run.dir=rescored"], tmp, store)
    rec = _record(tmp / "rescored")
    assert rec["codes"] == "pq 8 B, top 20 re-scored" and rec["bytes_per_image"] == 8
    coded, floats = (read_descriptors(tmp / run / "descriptors") for run in ("pq", "run"))
    ranking = rank(similarity(coded.queries, coded.database))
    exact = similarity(floats.queries, floats.database)
    for i, row in enumerate(ranking):
        head = np.sort(row[:20])
        row[:20] = head[np.argsort(-exact[i, head], kind="stable")]
    metrics = evaluate_rankings(job_dataset(tmp / "run"), ranking)
    assert rec["metrics"]["mAP"] == metrics["mAP"] and rec["metrics"]["mP@10"] == metrics["mP@10"]
    assert rec["metrics"]["mAP"] != _record(tmp / "pq")["metrics"]["mAP"]


def test_an_outside_similarity_or_ranking_file_scores_as_its_descriptors_would(exported):
    """The export's similarity (.npy) and its full rankings as a GLDv2 submission CSV score what
    deepagg's search of the descriptors scores; re-ranking either, or giving two inputs, is refused."""
    from benchmarks import evaluate
    from benchmarks.descriptor_files import read_descriptors
    from benchmarks.search import rank, similarity
    from experiments.adapters import job_dataset
    tmp, store, _ = exported
    d = read_descriptors(tmp / "run" / "descriptors")
    expected, _ = evaluate(job_dataset(tmp / "run"), d.queries, d.database)
    np.save(tmp / "scores.npy", similarity(d.queries, d.database))
    full = rank(similarity(d.queries, d.database))
    (tmp / "ranked.csv").write_text("id,images\n" + "".join(
        f"{q},{' '.join(d.database_names[i] for i in row)}\n" for q, row in zip(d.query_names, full)))
    for arg, folder in (("similarity=scores.npy", "sim"), ("rankings=ranked.csv", "ranked")):
        deepagg([arg, f"hydra.run.dir={folder}"], tmp, store, app="experiments.eval_app")
        rec = _record(tmp / folder)
        assert rec["metrics"]["mAP"] == expected["mAP"] and rec["metrics"]["mP@5"] == expected["mP@5"]
        assert rec["dim"] is None
    assert "ranked" in (tmp / "ranked" / "table.md").read_text()


def test_one_input_is_scored_and_rankings_are_never_re_ranked():
    from omegaconf import OmegaConf

    from benchmarks.errors import ConfigError
    from benchmarks.rerank import NoRerank, QueryExpansion
    from experiments.eval_app import scored_input
    given = lambda **kw: OmegaConf.create({"descriptors": None, "rankings": None,  # noqa: E731
                                           "similarity": None} | kw)
    assert scored_input(given(rankings="r.csv"), NoRerank()) == ("rankings", Path("r.csv"))
    for cfg, reranker, named in ((given(rankings="r.csv"), QueryExpansion(k=2), "rankings= has none"),
                                 (given(rankings="r.csv", similarity="s.npy"), NoRerank(), "rankings, similarity"),
                                 (given(), NoRerank(), "given: none")):
        with pytest.raises(ConfigError, match=named):
            scored_input(cfg, reranker)


def test_local_features_are_exported_ragged_beside_the_descriptors(exported):
    """--local writes every image's local features from the store (folder and HDF5 alike); a
    run that discarded them is refused before any work."""
    import h5py

    from experiments.adapters import feature_source, job_dataset
    from experiments.export_app import job_config
    tmp, store, _ = exported
    dataset = job_dataset(tmp / "run")
    stored = feature_source(job_config(tmp / "run", str(store))).features(dataset.name, dataset.images)
    local = tmp / "run" / "descriptors" / "local"
    offsets = np.load(local / "database_offsets.npy")
    assert len(offsets) == len(dataset) + 1
    with h5py.File(tmp / "run" / "descriptors.h5", "r") as f:
        for part in ("database", "queries"):
            for key in ("descriptors", "positions", "offsets", "grids"):
                np.testing.assert_array_equal(f[f"local/{part}/{key}"][()], np.load(local / f"{part}_{key}.npy"))
    descriptors, grids = np.load(local / "database_descriptors.npy"), np.load(local / "database_grids.npy")
    for i in (0, 7, len(dataset) - 1):
        np.testing.assert_array_equal(descriptors[offsets[i]:offsets[i + 1]], stored[i].descriptors)
        assert tuple(grids[i]) == (stored[i].grid or (0, 0))
    q_offsets = np.load(local / "queries_offsets.npy")
    first = dataset.queries[0].db_index                     # demo queries are database images
    np.testing.assert_array_equal(np.load(local / "queries_descriptors.npy")[q_offsets[0]:q_offsets[1]],
                                  stored[first].descriptors)
    shutil.copytree(tmp / "run", tmp / "discarded")
    config = tmp / "discarded" / ".hydra" / "config.yaml"
    config.write_text(config.read_text().replace("local_features: keep", "local_features: discard"))
    p = deepagg(["discarded", "--local"], tmp, store, check=False, app="experiments.export_app")
    assert p.returncode == 2 and "the run discarded its local features" in p.stderr
