"""deepagg-report on a small synthetic results folder."""
import json
import re
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
from omegaconf import OmegaConf

from analysis.report import build_report
from experiments.adapters import job_dataset
from experiments.report_app import main

DEMO = {"_target_": "benchmarks.demo.demo_dataset", "name": "demo", "split": "test",
        "views_per_photo": 2, "view_width": 96, "view_height": 72}


def write_job(job: Path, record: dict, dataset: dict) -> None:
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "config.yaml").write_text(OmegaConf.to_yaml({"dataset": dataset}))
    (job / "results.jsonl").write_text(json.dumps(record | {"job_dir": str(job)}) + "\n")


@pytest.fixture
def results(tmp_path, make_record):
    root = tmp_path / "multirun"
    holidays = {"_target_": "benchmarks.holidays.load_holidays", "root": "/absent", "name": "holidays"}
    for i, (agg, v) in enumerate((("sum", 0.80), ("spoc", 0.78), ("max", 0.70))):
        rec = make_record("holidays", agg, v, params={"center_prior": agg == "spoc"} if agg != "max" else {})
        write_job(root / f"{i}_aggregator={agg}", rec, holidays)
    np.savez(root / "0_aggregator=sum" / "rankings.npz", topk=np.zeros((1, 5), int), aps=np.ones(1),
             query_names=np.array(["q"]), db_names=np.array(["q"]))  # its images are not here
    demo_job = root / "3_dataset=demo"
    write_job(demo_job, make_record("demo", "sum", 0.9, params={"center_prior": False}), DEMO)
    names = [f"test_{p}_{v:02d}" for p in ("astronaut", "coffee", "chelsea", "rocket", "china", "flower",
                                          "grace_hopper", "camera", "brick", "grass") for v in range(2)]
    np.savez(demo_job / "rankings.npz", topk=np.array([[(q + j) % 20 for j in range(5)] for q in range(20)]),
             aps=np.linspace(1, 0, 20), query_names=np.array(names), db_names=np.array(names))
    return root


def links(markdown: str) -> list[str]:
    return re.findall(r"\]\(([^)]+)\)", markdown)


def table_rows(markdown: str, header_start: str) -> list[list[str]]:
    """The cells of the pipe table whose header starts with ``header_start`` (header first)."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return [[c.strip() for c in line.strip().strip("|").split("|")]
            for i, line in enumerate(lines[start:end]) if i != 1]


def test_report_embeds_tables_existing_figures_examples_and_configs(results):
    md = build_report(results, pdf=True, n_queries=2, k=3, job_dataset=job_dataset).read_text()
    assert "## Ablation table" in md
    ablation = table_rows(md, "| aggregator")
    assert ablation[0] == ["aggregator", "demo mAP", "holidays mAP", "holidays mAP (paper)"]
    assert ["sum", "**0.900**", "**0.800**", "0.802"] in ablation   # best bold, paper beside it
    assert ["spoc", "", "0.780", "0.784"] in ablation
    assert table_rows(md, "| dataset")[0] == ["dataset", "features", "extractor", "aggregator", "params",
                                             "D", "mAP", "config"]                 # no rerank column
    for target in links(md):                                   # every link resolves
        assert (results / unquote(target)).exists(), target
    figures = [t for t in links(md) if t.endswith(".png")]
    assert "report_files/aggregators.png" in figures and "report_files/center_prior.png" in figures
    assert "report_files/examples_demo.png" in figures
    assert not any(("gem" in f or "dimension" in f or "deep_vs_sift" in f or "rerank" in f) for f in figures)
    assert sum(t.endswith(".hydra/config.yaml") for t in links(md)) == 4   # one per run
    assert "3_dataset%3Ddemo" not in md and "3_dataset=demo/.hydra/config.yaml" in md
    assert "report_files/ablation.tex" in links(md) and "report_files/ablation.csv" in links(md)
    assert (results / "report_files" / "center_prior.pdf").exists()
    assert "### holidays (sum, D = 256, mAP 0.800: examples not drawn (holidays: dataset root" in md


def test_report_follows_a_moved_results_folder(results, tmp_path):
    moved = tmp_path / "moved"
    results.rename(moved)
    md = build_report(moved, n_queries=0).read_text()
    assert "## Retrieval examples" not in md
    assert md.count("[config](") == 4 and "not found" not in md


def test_cli_writes_the_report_and_fails_clearly_without_results(results, tmp_path, capsys):
    assert main([str(results), "--examples", "0"]) == 0
    assert capsys.readouterr().out.strip() == str(results / "report.md")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main([str(empty)]) == 2
    assert "deepagg-report: error: no results.jsonl" in capsys.readouterr().err
    assert main([str(tmp_path / "nowhere")]) == 2
    assert "nowhere is not a directory" in capsys.readouterr().err


def test_report_carries_reranking_through_table_figures_and_runs(tmp_path, make_record):
    root = tmp_path / "multirun"
    holidays = {"_target_": "benchmarks.holidays.load_holidays", "root": "/absent", "name": "holidays"}
    runs = {("sum", "none"): 0.80, ("sum", "alpha_qe"): 0.86, ("max", "none"): 0.70,
            ("max", "alpha_qe"): 0.68, ("spoc", "spoc_qe"): 0.83}
    alpha = "\u03b1QE(k=2,\u03b1=3)"
    labels = {"alpha_qe": alpha, "spoc_qe": "SPoC-QE (reconstruction)"}
    for i, ((agg, rr), v) in enumerate(runs.items()):
        rec = make_record("holidays", agg, v) | {"rerank": rr, "config_hash": f"h{i}"}
        rec |= {"rerank_label": labels[rr]} if rr != "none" else {}
        write_job(root / f"{i}_aggregator={agg},rerank={rr}", rec, holidays)
    md = build_report(root, n_queries=0).read_text()
    ablation = table_rows(md, "| aggregator")
    assert ablation[0] == ["aggregator", "rerank", "holidays mAP", "holidays mAP (paper)"]
    assert ablation[1:] == [["max", "none", "0.700", "0.711"], ["max", "alpha_qe", "0.680", ""],
                            ["spoc", "spoc_qe (reconstruction)", "0.830", ""],
                            ["sum", "none", "0.800", "0.802"], ["sum", "alpha_qe", "**0.860**", ""]]
    figures = [t for t in links(md) if t.endswith(".png")]
    assert figures == ["report_files/aggregators.png", "report_files/rerank_gain.png"]
    assert "### mAP gain from re-ranking" in md and "### mAP per aggregator, re-ranking and dataset" in md
    runs_list = table_rows(md, "| dataset")
    assert runs_list[0][:6] == ["dataset", "features", "extractor", "aggregator", "params", "rerank"]
    assert {(r[3], r[5]) for r in runs_list[1:]} == {
        ("sum", "none"), ("sum", alpha), ("max", "none"), ("max", alpha), ("spoc", "SPoC-QE (reconstruction)")}
    assert r"spoc\_qe (reconstruction)" in (root / "report_files" / "ablation.tex").read_text()
