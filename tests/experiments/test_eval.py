"""deepagg-export and deepagg-eval as a user launches them: an export scored again reproduces the
run's metrics exactly (folder and HDF5), an outside method's descriptors sit in the same tables,
and bad files stop before any search, naming the file."""
import json
import shutil

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
    p = deepagg(["run", "--out", "run/descriptors.h5"], tmp, store, app="experiments.export_app")
    assert "extracting" not in p.stdout + p.stderr                    # all from the store and caches
    deepagg(["run"], tmp, store, app="experiments.export_app")          # the default: run/descriptors
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
