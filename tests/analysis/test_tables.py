"""Result and ablation tables: frames, best-value marks, paper column, Markdown/LaTeX/CSV."""
import numpy as np
import pandas as pd
import pytest

from analysis.paper import PAPER_RESULTS, paper_value
from analysis.tables import (ablation_table, best_mask, format_table, method_columns, metric_columns,
                             one_rerank, records_frame, rerank_gains, to_latex, to_markdown,
                             write_ablation, write_tables)


@pytest.fixture
def frame(make_record):
    r = make_record
    return records_frame([
        r("holidays", "sum", 0.80), r("holidays", "spoc", 0.78), r("holidays", "max", 0.70),
        r("oxford5k", "sum", 0.60), r("oxford5k", "spoc", 0.65), r("oxford5k", "max", 0.65),
        r("ukbench", "sum", 0.90, extra={"N-S": 3.61}), r("ukbench", "max", 0.85, extra={"N-S": 3.50}),
    ])


def test_records_frame_flattens_params_metrics_and_timings(make_record):
    df = records_frame([make_record("demo", "gem", 0.5, params={"p": 3.0}),
                        make_record("demo", "sum", 0.4, params={"center_prior": False})])
    assert df.loc[0, "agg.p"] == 3.0 and np.isnan(df.loc[1, "agg.p"])
    assert df["params"].tolist() == ["p=3.0", "center_prior=False"]
    assert df.loc[0, "mAP"] == 0.5 and df.loc[0, "extract_s"] == 1.0
    assert df["aggregator_class"].tolist() == ["GeM", "SumPooling"]


def test_ablation_rows_columns_and_paper_column(frame):
    t = ablation_table(frame)
    assert t.index.names == ["aggregator"]                     # nothing else varies
    assert [k[0] for k in t.index] == ["max", "spoc", "sum"]
    assert list(t.columns) == ["holidays mAP", "holidays mAP (paper)", "oxford5k mAP",
                               "oxford5k mAP (paper)", "ukbench mAP", "ukbench N-S",
                               "ukbench N-S (paper)"]
    assert t.loc[("sum",), "holidays mAP (paper)"] == 0.802
    assert t.loc[("spoc",), "oxford5k mAP (paper)"] == 0.657
    assert t.loc[("max",), "ukbench N-S (paper)"] == 3.57
    assert np.isnan(t.loc[("spoc",), "ukbench mAP"])           # never run


def test_best_values_are_marked_ties_included_paper_never(frame):
    t = ablation_table(frame)
    best = best_mask(t)
    marked = {(k[0], c) for k in t.index for c in t.columns if best.loc[k, c]}
    assert marked == {("sum", "holidays mAP"), ("spoc", "oxford5k mAP"), ("max", "oxford5k mAP"),
                      ("sum", "ukbench mAP"), ("sum", "ukbench N-S")}


def markdown_cells(md: str) -> list[list[str]]:
    """The cells of a pipe table, header first, alignment row dropped."""
    lines = [line for line in md.splitlines() if line.startswith("|")]
    return [[c.strip() for c in line.strip().strip("|").split("|")] for i, line in enumerate(lines) if i != 1]


def latex_cells(tex: str) -> list[list[str]]:
    """The cells of a tabular's rows (header first), rules dropped."""
    return [[c.strip() for c in line.removesuffix(r"\\").split(" & ")] for line in tex.splitlines()
            if line.endswith(r"\\")]


def test_markdown_and_latex_bold_exactly_the_best(frame):
    t = ablation_table(frame)
    header = ["aggregator", "holidays mAP", "holidays mAP (paper)", "oxford5k mAP", "oxford5k mAP (paper)",
              "ukbench mAP", "ukbench N-S", "ukbench N-S (paper)"]
    # by hand: frame's values at 3 decimals, best measured value per column bold, paper never
    rows = [["max", "0.700", "0.711", "**0.650**", "0.524", "0.850", "3.500", "3.570"],
            ["spoc", "0.780", "0.784", "**0.650**", "0.657", "", "", ""],
            ["sum", "**0.800**", "0.802", "0.600", "0.589", "**0.900**", "**3.610**", "3.650"]]
    md = to_markdown(t)
    assert markdown_cells(md) == [header] + rows
    assert md.splitlines()[1].count(":|") == 7              # measured columns right-aligned
    tex = to_latex(t)
    assert tex.startswith(r"\begin{tabular}{lrrrrrrr}") and r"\toprule" in tex
    assert r"\midrule" in tex and tex.rstrip().endswith(r"\end{tabular}")
    bold = lambda c: "\\textbf{" + c[2:-2] + "}" if c.startswith("**") else c  # noqa: E731
    assert latex_cells(tex) == [header] + [[bold(c) for c in r] for r in rows]
    assert tex.count(r"\textbf") == 5


def test_paper_column_only_where_the_setting_matches(make_record):
    df = records_frame([make_record("holidays", "sum", 0.7, dim=128),
                        make_record("holidays", "sum", 0.5, dim=256, feature_type="sift"),
                        make_record("holidays", "gem", 0.8, dim=256, params={"p": 3})])
    t = ablation_table(df)
    assert "holidays mAP (paper)" not in t.columns             # no row matches the paper
    df2 = records_frame([make_record("holidays", "sum", 0.7, dim=256),
                         make_record("holidays", "sum", 0.6, dim=128)])
    t2 = ablation_table(df2)
    assert t2.index.names == ["aggregator", "dim"]
    assert t2.loc[("sum", 256), "holidays mAP (paper)"] == 0.802
    assert np.isnan(t2.loc[("sum", 128), "holidays mAP (paper)"])


def test_newest_record_wins_a_shared_cell(make_record):
    df = records_frame([make_record("demo", "sum", 0.9, timestamp="2025-01-02", config_hash="a"),
                        make_record("demo", "sum", 0.1, timestamp="2025-01-01", config_hash="b")])
    assert ablation_table(df).loc[("sum",), "demo mAP"] == 0.9


def test_method_columns_show_params_only_when_one_aggregator_has_several(make_record):
    r = make_record
    two = records_frame([r("d", "sum", .5, params={"center_prior": False}), r("d", "gem", .6, params={"p": 3})])
    assert method_columns(two) == ["aggregator"]
    sweep = records_frame([r("d", "gem", .5, params={"p": 2}), r("d", "gem", .6, params={"p": 3})])
    assert method_columns(sweep) == ["aggregator", "params"]


def test_write_ablation_and_write_tables(frame, tmp_path):
    t = ablation_table(frame)
    paths = write_ablation(t, tmp_path / "tables")
    assert "**0.800**" in paths["md"].read_text() and r"\bottomrule" in paths["tex"].read_text()
    back = pd.read_csv(paths["csv"], index_col=0)
    assert back.loc["sum", "holidays mAP"] == 0.8
    write_tables(frame, tmp_path)
    assert len(pd.read_csv(tmp_path / "results.csv")) == 8
    md = (tmp_path / "table.md").read_text()
    assert md == format_table(frame) + "\n" and "| holidays  |" in md and "extract_s" in md
    assert "agg." not in md and "config_hash" not in md


def test_paper_numbers_are_transcribed():
    assert len(PAPER_RESULTS) == 20
    assert paper_value("spoc", "oxford105k", "mAP", 256) == 0.642
    assert paper_value("temb1", "holidays", "mAP", 256) == 0.775
    assert paper_value("fv256", "oxford5k", "mAP", 256) == 0.466
    assert paper_value("sum", "ukbench", "N-S", 256) == 3.65
    assert paper_value("sum", "ukbench", "mAP", 256) is None       # the paper gives N-S there
    assert paper_value("fv16", "oxford105k", "mAP", 256) is None   # blank in the paper
    assert paper_value("max", "holidays", "mAP", 512) is None
    assert paper_value("max", "holidays", "mAP", 256, "sift") is None


def test_printed_table_puts_the_paper_number_beside_matching_settings():
    from analysis.tables import format_table, records_frame
    rec = lambda agg, ds, dim, ft="deep": {  # noqa: E731
        "dataset": ds, "aggregator": agg, "dim": dim, "feature_type": ft, "extractor": "x",
        "postprocess": {"fit_on": "y"}, "metrics": {"mAP": 0.5}, "timings": {}}
    table = format_table(records_frame([rec("sum", "holidays", 256), rec("sum", "holidays", 128),
                                        rec("spoc", "oxford5k", 256, "sift")]))
    lines = table.splitlines()
    assert "paper" in lines[0]
    assert "0.802" in lines[2]                      # sum, Holidays, 256-D deep: the paper's 0.802
    assert "0.802" not in lines[3] and "nan" in lines[3]   # 128-D: not the paper's setting
    assert "0.657" not in lines[4]                  # SIFT features: not the paper's setting
    demo_only = format_table(records_frame([rec("sum", "demo", 256)]))
    assert "paper" not in demo_only


# ----------------------------------------------------------------------------- re-ranking
def reranked(record: dict, rerank: str, label: str | None = None) -> dict:
    """``record`` as a run with ``rerank=...`` writes it (a new config hash)."""
    out = record | {"rerank": rerank, "config_hash": f"{record['config_hash']}-{rerank}-{label}"}
    return out | ({"rerank_label": label} if label is not None else {})


#: deepagg-run -m aggregator=sum,spoc,max rerank=none,aqe,alpha_qe,dba_aqe on Holidays, by hand
SWEEP = {("sum", "none"): 0.80, ("sum", "aqe"): 0.84, ("sum", "alpha_qe"): 0.86, ("sum", "dba_aqe"): 0.88,
         ("spoc", "none"): 0.78, ("spoc", "aqe"): 0.80, ("spoc", "alpha_qe"): 0.83, ("spoc", "dba_aqe"): 0.85,
         ("max", "none"): 0.70, ("max", "aqe"): 0.69, ("max", "alpha_qe"): 0.73, ("max", "dba_aqe"): 0.75}
LABELS = {"aqe": "AQE(k=5)", "alpha_qe": "\u03b1QE(k=2,\u03b1=3)", "dba_aqe": "DBA+AQE(k=5)"}


@pytest.fixture
def sweep(make_record):
    recs = []
    for (agg, rr), v in SWEEP.items():
        rec = make_record("holidays", agg, v)
        recs.append(rec if rr == "none" else reranked(rec, rr, LABELS[rr]))
    return recs


def test_records_frame_carries_the_reranking_old_records_mean_none(make_record):
    df = records_frame([make_record("demo", "sum", 0.5),                                   # before issue 10
                        reranked(make_record("demo", "sum", 0.6), "alpha_qe", "\u03b1QE(k=2,\u03b1=3)"),
                        reranked(make_record("demo", "spoc", 0.7), "spoc_qe"),              # no label
                        reranked(make_record("demo", "max", 0.7), "spoc_qe", "SPoC-QE (reconstruction)"),
                        make_record("demo", "gem", 0.5) | {"rerank": None}])
    assert df["rerank"].tolist() == ["none", "alpha_qe", "spoc_qe", "spoc_qe", "none"]
    assert df["rerank_label"].tolist() == ["none", "\u03b1QE(k=2,\u03b1=3)", "spoc_qe (reconstruction)",
                                           "SPoC-QE (reconstruction)", "none"]
    assert "rerank" not in metric_columns(df) and "rerank_label" not in metric_columns(df)


def test_paper_value_only_without_reranking():
    assert paper_value("sum", "holidays", "mAP", 256, "deep", "none") == 0.802
    assert paper_value("sum", "holidays", "mAP", 256, "deep", None) == 0.802
    for rerank in ("aqe", "alpha_qe", "dba_aqe", "spoc_qe"):
        assert paper_value("spoc", "holidays", "mAP", 256, "deep", rerank) is None


def test_printed_table_shows_rerank_only_when_some_run_was_reranked(make_record):
    plain = [make_record("holidays", "sum", 0.8), make_record("holidays", "spoc", 0.78)]
    header = markdown_cells(format_table(records_frame(plain)))[0]
    assert header == ["dataset", "extractor", "aggregator", "dim", "fit_on", "mAP", "paper",
                      "extract_s", "aggregate_s"]                               # as before issue 10
    cells = markdown_cells(format_table(records_frame(plain + [
        reranked(make_record("holidays", "sum", 0.85), "aqe", "AQE(k=5)"),
        reranked(make_record("holidays", "spoc", 0.81), "spoc_qe")])))
    assert cells[0][:4] == ["dataset", "extractor", "aggregator", "rerank"]
    rows = {(r[2], r[3]): dict(zip(cells[0], r)) for r in cells[1:]}
    assert set(rows) == {("sum", "none"), ("spoc", "none"), ("sum", "aqe"),
                         ("spoc", "spoc_qe (reconstruction)")}
    assert rows["sum", "none"]["paper"] == "0.802" and rows["spoc", "none"]["paper"] == "0.784"
    assert rows["sum", "aqe"]["paper"] == "nan" and rows["spoc", "spoc_qe (reconstruction)"]["paper"] == "nan"
    assert rows["sum", "aqe"]["mAP"] == "0.850"


def test_ablation_of_a_rerank_sweep_has_each_method_with_and_without(sweep):
    t = ablation_table(records_frame(sweep))
    assert t.index.names == ["aggregator", "rerank"]      # one label per rerank: no rerank_label column
    order = ["none", "alpha_qe", "aqe", "dba_aqe"]        # no re-ranking first, then by name
    assert list(t.index) == [(a, r) for a in ("max", "spoc", "sum") for r in order]
    assert list(t.columns) == ["holidays mAP", "holidays mAP (paper)"]
    for (agg, rr), v in SWEEP.items():
        assert t.loc[(agg, rr), "holidays mAP"] == v
        paper = t.loc[(agg, rr), "holidays mAP (paper)"]
        assert paper == {"sum": 0.802, "spoc": 0.784, "max": 0.711}[agg] if rr == "none" else np.isnan(paper)
    best = best_mask(t)
    assert [k for k in t.index if best.loc[k, "holidays mAP"]] == [("sum", "dba_aqe")]
    md = markdown_cells(to_markdown(t))
    assert md[0][:2] == ["aggregator", "rerank"] and md[1][:2] == ["max", "none"]


def test_ablation_rerank_column_only_with_reranking_and_reconstructions_say_so(make_record, sweep):
    plain = records_frame([make_record("holidays", "sum", 0.8), make_record("holidays", "max", 0.7)])
    assert method_columns(plain) == ["aggregator"]
    all_qe = records_frame([reranked(make_record("holidays", a, 0.8), "aqe") for a in ("sum", "max")])
    assert method_columns(all_qe) == ["aggregator", "rerank"]       # constant, but not "none": shown
    t = ablation_table(records_frame(sweep + [reranked(make_record("holidays", "spoc", 0.9), "spoc_qe")]))
    assert t.loc[("spoc", "spoc_qe (reconstruction)"), "holidays mAP"] == 0.9
    assert np.isnan(t.loc[("spoc", "spoc_qe (reconstruction)"), "holidays mAP (paper)"])
    assert [c[:2] for c in markdown_cells(to_markdown(t))[1:] if c[0] == "spoc"][-1] == [
        "spoc", "spoc_qe (reconstruction)"]
    assert r"spoc & spoc\_qe (reconstruction) & \textbf{0.900} &  \\" in to_latex(t)


def test_ablation_shows_rerank_labels_where_one_rerank_ran_with_several_settings(make_record):
    df = records_frame([make_record("holidays", "sum", 0.8),
                        reranked(make_record("holidays", "sum", 0.84), "alpha_qe", "\u03b1QE(k=2,\u03b1=3)"),
                        reranked(make_record("holidays", "sum", 0.86), "alpha_qe", "\u03b1QE(k=5,\u03b1=3)")])
    assert method_columns(df) == ["aggregator", "rerank", "rerank_label"]
    t = ablation_table(df)
    assert t.loc[("sum", "alpha_qe", "\u03b1QE(k=5,\u03b1=3)"), "holidays mAP"] == 0.86
    assert t.loc[("sum", "none", "none"), "holidays mAP (paper)"] == 0.802


def test_rerank_gains_pair_each_reranked_run_with_its_plain_setting(make_record, sweep):
    extra = [reranked(make_record("holidays", "sum", 0.70, dim=128), "aqe", LABELS["aqe"]),  # no plain 128-D
             reranked(make_record("oxford5k", "sum", 0.62), "aqe", LABELS["aqe"]),
             make_record("oxford5k", "sum", 0.60, timestamp="2025-01-02", config_hash="new"),
             make_record("oxford5k", "sum", 0.10, timestamp="2024-12-31", config_hash="old")]   # older: loses
    g = rerank_gains(records_frame(sweep + extra))
    got = {(r.dataset, r.aggregator, r.rerank): (r.reranked, r.plain, r.gain) for r in g.itertuples()}
    expected = {("holidays", a, rr): (v, SWEEP[a, "none"], v - SWEEP[a, "none"])
                for (a, rr), v in SWEEP.items() if rr != "none"}
    expected["oxford5k", "sum", "aqe"] = (0.62, 0.60, 0.62 - 0.60)
    assert got.keys() == expected.keys()
    for k, v in expected.items():
        np.testing.assert_allclose(got[k], v)
    assert set(g["rerank_label"]) == set(LABELS.values())
    assert rerank_gains(records_frame(sweep[:1])).empty and rerank_gains(records_frame(sweep), "N-S").empty


def test_one_rerank_prefers_runs_without_reranking(make_record, sweep):
    df, rr = one_rerank(records_frame(sweep))
    assert rr == "none" and len(df) == 3 and set(df["rerank"]) == {"none"}
    only = records_frame([reranked(make_record("d", a, .5), r) for a, r in
                          (("sum", "aqe"), ("max", "aqe"), ("sum", "dba_aqe"))])
    df, rr = one_rerank(only)
    assert rr == "aqe" and df["aggregator"].tolist() == ["sum", "max"]


def test_best_values_are_marked_within_each_feature_type(make_record):
    # SIFT's best (0.60) is marked although deep rows beat it: they are not rivals
    r = make_record
    t = ablation_table(records_frame([r("demo", "sum", .90), r("demo", "max", .95),
                                      r("demo", "sum", .60, feature_type="sift"),
                                      r("demo", "max", .30, feature_type="sift")]))
    best = best_mask(t)
    marked = {k for k in t.index if best.loc[k, "demo mAP"]}
    assert marked == {("deep", "vgg19_paper", "max"), ("sift", "sift", "sum")}


def test_revisited_datasets_show_easy_medium_and_hard(make_record):
    t = ablation_table(records_frame([make_record("roxford5k", "sum", .50, extra={"E/mAP": .70, "H/mAP": .25})]))
    assert list(t.columns) == ["roxford5k E/mAP", "roxford5k mAP", "roxford5k H/mAP"]
    assert t.iloc[0].tolist() == [.70, .50, .25]


def test_a_full_disk_is_an_error_naming_the_file_and_keeps_the_previous_tables(make_record, tmp_path):
    import subprocess
    from analysis.records import append_record
    from benchmarks.errors import OutputError
    disk = tmp_path / "small"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        small = records_frame([make_record("demo", "sum", 0.5)])
        write_tables(small, disk)
        before = (disk / "results.csv").read_text()
        (disk / "filler").write_bytes(b"\0" * (64 * 1024 - len(before) - 8192))   # nearly full
        big = records_frame([make_record("demo", f"agg{i}", 0.5) for i in range(400)])
        with pytest.raises(OutputError, match=r"cannot write .*results.csv"):
            write_tables(big, disk)
        assert (disk / "results.csv").read_text() == before       # whole or not at all
        assert not list(disk.glob(".*.part"))
        with pytest.raises(OutputError, match=r"results.jsonl .*free space"):
            append_record(disk / "results.jsonl", {"metrics": {"mAP": 0.5}, "pad": "x" * 100_000})
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


def test_scales_are_a_method_column_only_when_some_run_was_multi_scale(make_record):
    r = make_record
    single = [r("holidays", "sum", 0.7), r("holidays", "gem", 0.8, params={"p": 3})]
    df = records_frame(single)
    assert (df["scales"] == "1").all() and "scales" not in metric_columns(df)
    assert "scales" not in format_table(df) and method_columns(df) == ["aggregator"]
    multi = r("holidays", "sum", 0.75, config_hash="ms") | {"scales": "1,0.7071,0.5 mean"}
    df = records_frame([*single, multi])
    assert "scales" in format_table(df) and method_columns(df) == ["scales", "aggregator"]
    t = ablation_table(df)
    assert t.loc[("1,0.7071,0.5 mean", "sum"), "holidays mAP"] == 0.75
    assert t.loc[("1", "sum"), "holidays mAP"] == 0.7
    assert t.loc[("1", "sum"), "holidays mAP (paper)"] == 0.802       # the paper's: one scale
    assert np.isnan(t.loc[("1,0.7071,0.5 mean", "sum"), "holidays mAP (paper)"])


def test_codes_and_bytes_per_image_in_tables_only_where_some_run_coded(make_record):
    r = make_record
    plain = records_frame([r("holidays", "sum", 0.7)])
    assert plain["codes"].tolist() == ["none"] and plain["bytes"].tolist() == [1024]   # 4 x 256
    assert "codes" not in format_table(plain) and "codes" not in metric_columns(plain)
    coded = r("holidays", "sum", 0.6, config_hash="pq") | {"codes": "pq 16 B", "bytes_per_image": 16}
    df = records_frame([r("holidays", "sum", 0.7), coded])
    assert df["bytes"].tolist() == [1024, 16] and "pq 16 B" in format_table(df)
    assert method_columns(df) == ["aggregator", "codes"]
    assert np.isnan(paper_value_of(df, "pq 16 B"))


def paper_value_of(df, codes):
    from analysis.tables import paper_column
    return paper_column(df)[df["codes"] == codes].iloc[0]
