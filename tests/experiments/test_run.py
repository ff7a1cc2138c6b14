"""End-to-end runs of ``deepagg-run`` as a user launches it (subprocess, fresh store)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

FAST = ["backbone.image_size=160"]   # same pipeline, smaller images: keeps the suite quick


def deepagg_run(args, cwd: Path, store: Path, check=True):
    env = dict(os.environ, DEEPAGG_STORE=str(store), HYDRA_FULL_ERROR="0")
    p = subprocess.run([sys.executable, "-m", "experiments.run", *args], cwd=cwd, env=env,
                       capture_output=True, text=True, timeout=900)
    if check and p.returncode != 0:
        raise AssertionError(f"deepagg-run {' '.join(args)} failed:\n{p.stdout}\n{p.stderr}")
    return p


@pytest.mark.slow
def test_default_run_writes_every_output(tmp_path):
    p = deepagg_run([], tmp_path, tmp_path / "store")
    (job,) = (tmp_path / "outputs" / "default").iterdir()
    for name in ("results.jsonl", "results.csv", "table.md", "comparison.png", "rankings.npz",
                 ".hydra/config.yaml"):
        assert (job / name).exists(), name
    (rec,) = [json.loads(line) for line in (job / "results.jsonl").read_text().splitlines()]
    assert rec["aggregator"] == "spoc" and rec["dataset"] == "demo" and rec["dim"] == 256
    assert 0.3 < rec["metrics"]["mAP"] < 1.0          # a real, not saturated, benchmark
    assert rec["timings"]["extract_s"] > 0 and rec["versions"]["torch"]
    assert "| spoc" in p.stdout and "mAP" in p.stdout


def test_sweep_extracts_once_gathers_and_resumes(tmp_path):
    store = tmp_path / "store"
    args = ["-m", "aggregator=sum,max", "postprocess.dim=32", *FAST]
    p = deepagg_run(args, tmp_path, store)
    log = p.stdout + p.stderr
    assert log.count("demo: extracting") == 1 and log.count("demo_holdout: extracting") == 1
    assert log.count("demo: 80 images read from the feature store") == 1      # the second job
    sweep = tmp_path / "multirun" / "default"
    df = pd.read_csv(sweep / "results.csv")
    assert sorted(df["aggregator"]) == ["max", "sum"] and set(df["dim"]) == {32}
    assert (sweep / "table.md").read_text().count("| demo      |") == 2
    assert (sweep / "comparison.png").stat().st_size > 0
    again = deepagg_run(args, tmp_path, store)
    assert (again.stdout + again.stderr).count("skipping: configuration") == 2


def test_unknown_config_key_is_named(tmp_path):
    p = deepagg_run(["postprocess.dimm=3"], tmp_path, tmp_path / "s", check=False)
    assert p.returncode != 0 and "dimm" in p.stderr


def test_pca_dim_too_large_is_a_clear_error_and_keeps_features(tmp_path):
    store = tmp_path / "store"
    p = deepagg_run(["postprocess.dim=5000", *FAST], tmp_path, store, check=False)
    assert p.returncode == 2
    assert "postprocess.dim" in p.stderr and "at most 287" in p.stderr
    p = deepagg_run(["postprocess.dim=16", *FAST], tmp_path, store)
    assert "extracting" not in p.stdout + p.stderr          # the stored features were kept
