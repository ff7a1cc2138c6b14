"""Result and ablation tables: frames, best-value marks, paper column, Markdown/LaTeX/CSV."""
import numpy as np
import pandas as pd
import pytest

from analysis.paper import PAPER_RESULTS, paper_value
from analysis.tables import (ablation_table, best_mask, format_table, method_columns,
                             records_frame, to_latex, to_markdown, write_ablation, write_tables)


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


def test_markdown_and_latex_bold_exactly_the_best(frame):
    t = ablation_table(frame)
    md = to_markdown(t)
    lines = md.splitlines()
    assert lines[0].startswith("| aggregator | holidays mAP | holidays mAP (paper) |")
    row = {line.split(" | ")[0].strip("| "): line for line in lines[2:]}
    assert row["sum"] == ("| sum | **0.800** | 0.802 | 0.600 | 0.589 | **0.900** | **3.610** | 3.650 |")
    assert row["spoc"].count("**") == 2 and row["max"].count("**") == 2
    tex = to_latex(t)
    assert tex.startswith(r"\begin{tabular}{lrrrrrrr}") and r"\toprule" in tex
    assert r"\midrule" in tex and tex.rstrip().endswith(r"\end{tabular}")
    assert r"sum & \textbf{0.800} & 0.802 & 0.600 & 0.589 & \textbf{0.900} & \textbf{3.610} & 3.650 \\" in tex
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
