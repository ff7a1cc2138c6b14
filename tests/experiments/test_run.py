"""``deepagg-run`` as a user launches it (subprocesses, fresh stores): outputs, sweeps and resuming,
parallel launchers sharing one store, kills, bad settings and bad files, exit codes."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

FAST = ["backbone.image_size=160"]   # same pipeline, smaller images: keeps the suite quick
REPO = Path(__file__).resolve().parents[2]


def deepagg(args, cwd: Path, store: Path, check=True, app="experiments.run", timeout=900):
    env = dict(os.environ, DEEPAGG_STORE=str(store), HYDRA_FULL_ERROR="0",
               PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.run([sys.executable, "-m", app, *args], cwd=cwd, env=env,
                       capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"{app} {' '.join(args)} failed:\n{p.stdout}\n{p.stderr}")
    return p


deepagg_run = deepagg


def custom_dataset(root: Path, n_groups: int = 3, views: int = 3) -> Path:
    """Views (crops) of bundled photos with a JSON ground truth: a small real-image benchmark."""
    import skimage.data
    photos = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea()][:n_groups]
    root.mkdir(parents=True, exist_ok=True)
    names, groups = [], []
    for g, photo in enumerate(photos):
        for v in range(views):
            name = f"g{g}_v{v}"
            Image.fromarray(photo[10 * v:200 + 10 * v, 15 * v:240 + 15 * v]).save(root / f"{name}.png")
            names.append(name)
            groups.append(g)
    groups = np.array(groups)
    gnd = [{"ok": [int(j) for j in np.flatnonzero(groups == groups[i]) if j != i], "junk": [i]}
           for i in range(len(names))]
    (root / "gnd.json").write_text(json.dumps({"imlist": names, "qimlist": names, "gnd": gnd}))
    return root


SIFT_CUSTOM = ["dataset=custom", "backbone=sift", "backbone.image_size=160", "aggregator=sum",
               "postprocess.pca=false", "postprocess.whiten=false", "postprocess.fit_on=demo"]


@pytest.mark.slow
def test_default_run_writes_every_output(tmp_path):
    p = deepagg_run([], tmp_path, tmp_path / "store")
    (job,) = (tmp_path / "outputs" / "default").iterdir()
    for name in ("results.jsonl", "results.csv", "table.md", "comparison.png", "rankings.npz",
                 ".hydra/config.yaml"):
        assert (job / name).exists(), name
    (rec,) = [json.loads(line) for line in (job / "results.jsonl").read_text().splitlines()]
    assert rec["aggregator"] == "spoc" and rec["dataset"] == "demo" and rec["dim"] == 256
    assert rec["rerank"] == "none" and rec["feature_type"] == "deep"
    assert rec["metrics"]["mAP"] == pytest.approx(0.8545007229086033, abs=1e-12)   # the README's figure
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
    assert (sweep / "table.md").read_text().count("| demo ") == 2
    assert (sweep / "comparison.png").stat().st_size > 0
    again = deepagg_run(args, tmp_path, store)
    assert (again.stdout + again.stderr).count("skipping: configuration") == 2


def test_config_errors_exit_2_before_any_work(tmp_path):
    for args, named in ((["postprocess.dimm=3"], "dimm"), (["dataset=nope"], "dataset/nope"),
                        (["batch_size=0"], "batch_size=0"), (["aggregator=gem", "aggregator.p=0"], "aggregator.p=0")):
        p = deepagg_run(args, tmp_path, tmp_path / "s", check=False)
        assert p.returncode == 2 and named in p.stderr, (args, p.stderr)
        assert "extracting" not in p.stdout + p.stderr and not (tmp_path / "s").exists()


def test_pca_dim_too_large_is_a_clear_error_and_keeps_features(tmp_path):
    store = tmp_path / "store"
    p = deepagg_run(["postprocess.dim=5000", *FAST], tmp_path, store, check=False)
    assert p.returncode == 2
    assert "postprocess.dim" in p.stderr and "at most 287" in p.stderr
    p = deepagg_run(["postprocess.dim=16", *FAST], tmp_path, store)
    assert "extracting" not in p.stdout + p.stderr          # the stored features were kept


def test_a_corrupt_image_exits_2_naming_it_and_a_fixed_one_is_read_again(tmp_path):
    root = custom_dataset(tmp_path / "data" / "custom")
    good = (root / "g1_v2.png").read_bytes()
    (root / "g1_v2.png").write_bytes(good[:200])               # truncated
    args = SIFT_CUSTOM + [f"data_root={tmp_path / 'data'}", "store.chunk_size=2"]
    p = deepagg_run(args, tmp_path, tmp_path / "store", check=False)
    assert p.returncode == 2 and "g1_v2.png" in p.stderr and "Traceback" not in p.stderr
    (root / "g1_v2.png").write_bytes(good)                     # the user fixes it
    p = deepagg_run(args, tmp_path, tmp_path / "store")
    rec = json.loads(next((tmp_path / "outputs").rglob("results.jsonl")).read_text().splitlines()[-1])
    assert rec["metrics"]["mAP"] > 0.5


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["joblib", "submitit_local"])
def test_parallel_launchers_share_one_extraction_and_gather_every_job(tmp_path, launcher):
    extra = (["hydra.launcher.n_jobs=2"] if launcher == "joblib" else
             ["hydra.launcher.timeout_min=15", "hydra.launcher.cpus_per_task=1"])
    store = tmp_path / "store"
    p = deepagg_run(["-m", "aggregator=sum,max,spoc,gem", "postprocess.dim=32", *FAST,
                     f"hydra/launcher={launcher}", *extra], tmp_path, store)
    df = pd.read_csv(tmp_path / "multirun" / "default" / "results.csv")
    assert sorted(df["aggregator"]) == ["gem", "max", "spoc", "sum"], p.stdout + p.stderr
    records = [json.loads(r.read_text()) for r in store.rglob("record.json")]
    assert len(records) == 2 + 5                                 # demo 80 / 64 + holdout 288 / 64
    assert not list(store.rglob("set_aside"))                   # nothing was written twice or broken
    same = deepagg_run(["postprocess.dim=32", *FAST, "aggregator=sum"], tmp_path, store)
    assert "extracting" not in same.stdout + same.stderr


@pytest.mark.slow
def test_two_runs_started_together_on_one_store_both_succeed(tmp_path):
    env = dict(os.environ, DEEPAGG_STORE=str(tmp_path / "store"), PYTHONPATH=str(REPO))
    procs = [subprocess.Popen([sys.executable, "-m", "experiments.run", *FAST, f"aggregator={a}",
                               f"hydra.run.dir={tmp_path / a}"], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for a in ("sum", "max")]
    outs = [p.communicate(timeout=900)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert len(list((tmp_path / "store").rglob("record.json"))) == 7
    assert not list((tmp_path / "store").rglob("*.tmp*"))


@pytest.mark.slow
def test_sigkill_during_extraction_then_resume_is_bitwise_identical(tmp_path):
    env = dict(os.environ, DEEPAGG_STORE=str(tmp_path / "killed"), PYTHONPATH=str(REPO))
    args = [sys.executable, "-m", "experiments.run", *FAST, "store.chunk_size=16"]
    p = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and len(list((tmp_path / "killed").rglob("record.json"))) < 2:
        time.sleep(0.2)
    os.killpg(p.pid, signal.SIGKILL)                           # the app and its loader workers
    p.wait()
    assert 2 <= len(list((tmp_path / "killed").rglob("record.json"))) < 5 + 18
    deepagg_run([*FAST, "store.chunk_size=16"], tmp_path, tmp_path / "killed")
    (tmp_path / "fresh").mkdir()
    deepagg_run([*FAST, "store.chunk_size=16"], tmp_path / "fresh", tmp_path / "fresh_store")
    for a in sorted((tmp_path / "killed").rglob("descriptors.npy")):
        rel = a.relative_to(tmp_path / "killed")
        np.testing.assert_array_equal(np.load(a), np.load(tmp_path / "fresh_store" / rel))


@pytest.mark.slow
def test_sharded_extraction_equals_sequential_and_runs_read_it(tmp_path):
    shard_store, seq_store = tmp_path / "sharded", tmp_path / "sequential"
    # bitwise identity needs one torch thread count on both sides: oneDNN's float32 rounding
    # depends on how many threads split a convolution (README, "Reproducibility")
    same = [*FAST, "store.chunk_size=32", "fit_on=[demo_holdout]", "threads=1"]
    deepagg(["-m", "shard=0,1,2", "num_shards=3", *same, "hydra/launcher=joblib", "hydra.launcher.n_jobs=3"],
            tmp_path, shard_store, app="experiments.extract")
    deepagg(same, tmp_path, seq_store, app="experiments.extract")
    pids = {json.loads(r.read_text())["pid"] for r in shard_store.rglob("record.json")}
    assert len(pids) >= 2                                        # the work really was shared
    files = sorted(p.relative_to(seq_store) for p in seq_store.rglob("*.npy"))
    assert files == sorted(p.relative_to(shard_store) for p in shard_store.rglob("*.npy"))
    for rel in files:
        assert (seq_store / rel).read_bytes() == (shard_store / rel).read_bytes(), rel
    p = deepagg_run([*FAST, "store.chunk_size=32"], tmp_path, shard_store)
    assert "extracting" not in p.stdout + p.stderr
