"""Comparison plots and retrieval examples: the artists each figure must contain."""
import numpy as np
import pytest
from matplotlib.colors import to_hex
from omegaconf import OmegaConf

from analysis import plots
from analysis.examples import FRAME, judge, pick_queries, retrieval_examples
from analysis.tables import records_frame
from benchmarks.demo import demo_dataset


def legend_texts(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


@pytest.fixture
def dims_frame(make_record):
    return records_frame([make_record(ds, agg, v + 0.1 * i, dim=d)
                          for ds, v in (("holidays", 0.5), ("oxford5k", 0.3))
                          for agg in ("sum", "max") for i, d in enumerate((64, 128, 256))])


def test_dim_plot_has_a_line_per_aggregator_on_a_log_axis(dims_frame, tmp_path):
    fig = plots.dim_plot(dims_frame, tmp_path / "dim.png", pdf=True)
    assert [ax.get_title() for ax in fig.axes] == ["holidays", "oxford5k"]
    for ax in fig.axes:
        assert len(ax.get_lines()) == 2 and ax.get_xscale() == "log"
        assert ax.get_xlabel() == "descriptor dimension D (log scale)" and ax.get_ylabel() == "mAP"
        assert legend_texts(ax) == ["max", "sum"]
        np.testing.assert_array_equal(ax.get_lines()[0].get_xdata(), [64, 128, 256])
    np.testing.assert_allclose(fig.axes[0].get_lines()[1].get_ydata(), [0.5, 0.6, 0.7])
    assert (tmp_path / "dim.png").stat().st_size > 0 and (tmp_path / "dim.pdf").exists()


def test_aggregator_bars_group_by_aggregator_and_colour_by_dataset(make_record):
    df = records_frame([make_record(ds, agg, 0.1 * k) for k, (ds, agg) in enumerate(
        [(d, a) for d in ("holidays", "oxford5k") for a in ("max", "spoc", "sum")], 1)])
    fig = plots.aggregator_bars(df)
    (ax,) = fig.axes
    assert len(ax.patches) == 6
    assert [t.get_text() for t in ax.get_xticklabels()] == ["max", "spoc", "sum"]
    assert legend_texts(ax) == ["holidays", "oxford5k"]
    heights = sorted(round(p.get_height(), 3) for p in ax.patches)
    assert heights == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    assert ax.get_ylabel() == "mAP" and ax.get_xlabel() == "aggregator" and "D = 256" in ax.get_title()


def test_gem_plot_draws_p_curve_and_sum_max_references(make_record):
    r = make_record
    df = records_frame([r("holidays", "gem", v, params={"p": p}) for p, v in ((1, .70), (2, .74), (3, .76), (5, .73))]
                       + [r("holidays", "sum", .70, params={"center_prior": False}),
                          r("holidays", "spoc", .69, params={"center_prior": True}),
                          r("holidays", "max", .66)])
    fig = plots.gem_plot(df)
    (ax,) = fig.axes
    lines = ax.get_lines()
    assert len(lines) == 3
    np.testing.assert_array_equal(lines[0].get_xdata(), [1, 2, 3, 5])
    assert [ln.get_ydata()[0] for ln in lines[1:]] == [0.70, 0.66]   # sum (not spoc), max
    assert legend_texts(ax) == ["GeM, holidays", "sum pooling (p = 1), holidays",
                                "max pooling (p \u2192 \u221e), holidays"]
    assert ax.get_xlabel() == "GeM exponent p"
    with pytest.raises(ValueError, match="GeM"):
        plots.gem_plot(records_frame([r("holidays", "sum", .7)]))


def test_gem_plot_takes_p_inf_as_the_max_pooling_line(make_record):
    # experiment=gem_p sweeps p = 1..8 and inf; records carry p = inf (JSON Infinity)
    df = records_frame([make_record(ds, "gem", v, params={"p": p}) for ds in ("holidays", "oxford5k")
                        for p, v in ((1.0, .60), (3.0, .70), (float("inf"), .65))])
    ax = plots.gem_plot(df).axes[0]
    assert len(ax.get_lines()) == 4                            # 2 curves + 2 p = inf lines
    np.testing.assert_array_equal(ax.get_lines()[0].get_xdata(), [1.0, 3.0])
    assert legend_texts(ax)[:2] == ["GeM, holidays", "max pooling (p \u2192 \u221e), holidays"]
    assert ax.get_lines()[1].get_ydata()[0] == 0.65


def test_center_prior_plot_pairs_sum_and_spoc_with_differences(make_record):
    r = make_record
    df = records_frame([r(ds, agg, v, params={"center_prior": agg == "spoc"})
                        for ds, agg, v in (("holidays", "sum", .80), ("holidays", "spoc", .78),
                                           ("oxford5k", "sum", .59), ("oxford5k", "spoc", .66))])
    fig = plots.center_prior_plot(df)
    (ax,) = fig.axes
    assert len(ax.patches) == 4
    assert [t.get_text() for t in ax.texts if t.get_text().startswith("\u0394")] == ["\u0394 -0.020", "\u0394 +0.070"]
    assert legend_texts(ax) == ["sum pooling (no prior)", "SPoC (centre prior)"]
    with pytest.raises(ValueError, match="centre prior"):
        plots.center_prior_plot(df[df["aggregator"] == "sum"])


def test_feature_type_plot_compares_deep_and_sift_per_aggregator(make_record):
    r = make_record
    df = records_frame([r("demo", "sum", .9), r("demo", "max", .95),
                        r("demo", "sum", .6, dim=128, feature_type="sift"),
                        r("demo", "max", .45, dim=128, feature_type="sift")])
    fig = plots.feature_type_plot(df)
    (ax,) = fig.axes
    assert len(ax.patches) == 4
    assert legend_texts(ax) == ["deep (D = 256)", "sift (D = 128)"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["max", "sum"]
    with pytest.raises(ValueError, match="feature types"):
        plots.feature_type_plot(df[df["feature_type"] == "deep"])


def test_comparison_plot_picks_lines_for_dimension_sweeps(dims_frame, make_record, tmp_path):
    assert plots.comparison_plot(dims_frame, tmp_path / "c.png").axes[0].get_xscale() == "log"
    single = records_frame([make_record("demo", "sum", .5)])
    assert len(plots.comparison_plot(single, tmp_path / "c.png").axes[0].patches) == 1


# ----------------------------------------------------------------------------- examples
@pytest.fixture
def demo_job(tmp_path):
    """A job folder as deepagg-run leaves it (.hydra/config.yaml and rankings.npz) and its
    dataset."""
    job = tmp_path / "job"
    (job / ".hydra").mkdir(parents=True)
    dataset = {"_target_": "benchmarks.demo.demo_dataset", "name": "demo", "split": "test",
               "views_per_photo": 2, "view_width": 96, "view_height": 72}
    (job / ".hydra" / "config.yaml").write_text(OmegaConf.to_yaml({"dataset": dataset}))
    ds = demo_dataset(**{k: v for k, v in dataset.items() if k != "_target_"})
    topk = np.array([[(q + j) % 20 for j in range(5)] for q in range(20)])  # self, next, ...
    np.savez(job / "rankings.npz", topk=topk, aps=np.linspace(1, 0, 20),
             query_names=np.array([q.image.name for q in ds.queries]),
             db_names=np.array([im.name for im in ds.images]))
    return job, ds


def test_retrieval_examples_frame_results_by_correctness(demo_job, tmp_path):
    fig = retrieval_examples(*demo_job, tmp_path / "ex.png", queries=[0, 1], k=3)
    axes = np.array(fig.axes).reshape(2, 4)
    # query 0 = view 0 of photo 0: itself (junk), view 1 (correct), photo 1 view 0 (incorrect)
    expected = [["junk", "correct", "incorrect"], ["junk", "incorrect", "incorrect"]]
    for row, verdicts in zip(axes, expected):
        colours = [to_hex(ax.spines["top"].get_edgecolor()) for ax in row[1:]]
        assert colours == [FRAME[v] for v in verdicts]
    assert axes[0, 0].get_title().startswith("query test_astronaut_00")
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["correct", "incorrect", "junk"]
    assert (tmp_path / "ex.png").stat().st_size > 0


def test_retrieval_examples_refuse_rankings_of_another_dataset(demo_job):
    job, ds = demo_job
    with np.load(job / "rankings.npz") as z:
        data = {k: z[k] for k in z.files}
    data["db_names"] = data["db_names"][::-1]
    np.savez(job / "rankings.npz", **data)
    with pytest.raises(ValueError, match="does not list the images"):
        retrieval_examples(job, ds)


def test_query_choice_spans_successes_and_failures():
    aps = np.array([0.2, 0.9, np.nan, 0.5, 1.0])
    assert pick_queries(aps, 3).tolist() == [4, 3, 2]           # best, middle, worst (NaN last)


def test_judge_puts_junk_before_positives():
    from benchmarks.base import ImageRef, Query
    q = Query(ImageRef("q"), {"easy": np.array([1]), "hard": np.array([2]), "junk": np.array([2, 3])})
    assert judge(q, [1, 2, 3, 4]) == ["correct", "junk", "junk", "incorrect"]


# ----------------------------------------------------------------------------- re-ranking
def reranked(record, rerank, label=None):
    out = record | {"rerank": rerank, "config_hash": f"{record['config_hash']}-{rerank}-{label}"}
    return out | ({"rerank_label": label} if label else {})


@pytest.fixture
def rerank_frame(make_record):
    """sum and max with and without AQE on two datasets, SPoC with the paper's QE (by hand)."""
    r = make_record
    return records_frame([r("holidays", "sum", .80), reranked(r("holidays", "sum", .85), "aqe", "AQE(k=5)"),
                          r("holidays", "max", .70), reranked(r("holidays", "max", .67), "aqe", "AQE(k=5)"),
                          r("oxford5k", "sum", .60), reranked(r("oxford5k", "sum", .66), "aqe", "AQE(k=5)"),
                          r("holidays", "spoc", .78), reranked(r("holidays", "spoc", .82), "spoc_qe")])


def bar_groups(ax) -> dict[str, list[float]]:
    """{tick label: heights of the bars whose centre lies on that tick}; a bar whose centre lies
    off every tick fails (0.8 / series wide bars, so a centred group is within 0.4 of its tick)."""
    ticks = {round(t.get_position()[0], 6): t.get_text() for t in ax.get_xticklabels()}
    out: dict[str, list[float]] = {}
    for p in ax.patches:
        centre = p.get_x() + p.get_width() / 2
        (tick,) = [t for t in ticks if abs(t - centre) < 0.4]
        out.setdefault(ticks[tick], []).append(round(p.get_height(), 3))
    return out


def test_comparison_with_reranking_is_one_panel_per_dataset_and_a_bar_per_reranking(rerank_frame):
    fig = plots.comparison_plot(rerank_frame)
    hol, oxf = fig.axes
    assert [ax.get_title().split(":")[0] for ax in fig.axes] == ["holidays", "oxford5k"]
    assert [t.get_text() for t in hol.get_xticklabels()] == ["max", "spoc", "sum"]
    assert hol.get_xlabel() == "aggregator"
    # none first in the one legend, every re-ranking one colour in every panel
    names = [t.get_text() for t in fig.legends[0].get_texts()]
    assert names == ["none", "AQE(k=5)", "spoc_qe (reconstruction)"]
    assert bar_groups(hol) == {"max": [0.70, 0.67], "spoc": [0.78, 0.82], "sum": [0.80, 0.85]}
    assert bar_groups(oxf) == {"sum": [0.60, 0.66]}
    colour = {round(p.get_height(), 3): p.get_facecolor() for ax in fig.axes for p in ax.patches}
    assert colour[0.85] == colour[0.66] == colour[0.67] != colour[0.80] == colour[0.60]


def test_bars_of_a_group_missing_some_series_stay_centred_on_its_tick(make_record):
    # spoc ran on holidays only: its one bar sits on its tick, not where holidays' bar would be
    df = records_frame([make_record("holidays", "sum", .8), make_record("oxford5k", "sum", .6),
                        make_record("holidays", "spoc", .7)])
    (ax,) = plots.aggregator_bars(df).axes
    assert bar_groups(ax) == {"spoc": [0.7], "sum": [0.8, 0.6]}
    (spoc,) = [p for p in ax.patches if round(p.get_height(), 3) == 0.7]
    assert abs(spoc.get_x() + spoc.get_width() / 2 - 0) < 1e-9          # exactly on the tick
    assert all(t.get_fontsize() >= 8 for t in ax.texts)                  # value labels readable


def test_rerank_gain_plot_draws_reranked_minus_plain_per_dataset(rerank_frame, tmp_path):
    fig = plots.rerank_gain_plot(rerank_frame, tmp_path / "gain.png", pdf=True)
    assert [ax.get_title() for ax in fig.axes] == ["holidays: gain from re-ranking",
                                                   "oxford5k: gain from re-ranking"]
    hol, oxf = fig.axes
    assert [t.get_text() for t in hol.get_xticklabels()] == ["max", "spoc", "sum"]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["AQE(k=5)", "spoc_qe (reconstruction)"]
    assert [p.get_facecolor() for p in oxf.patches] == [hol.patches[0].get_facecolor()]  # AQE: one colour
    heights = sorted(round(p.get_height(), 3) for p in hol.patches)
    assert heights == [-0.03, 0.04, 0.05]                       # max -0.03, spoc +0.04, sum +0.05
    assert sorted(t.get_text() for t in hol.texts) == ["+0.040", "+0.050", "-0.030"]   # bar labels
    assert hol.get_ylim()[0] < -0.03 and hol.get_ylim()[1] > 0.05   # the loss is visible too
    assert [round(p.get_height(), 3) for p in oxf.patches] == [0.06]
    assert hol.get_ylabel() == "\u0394 mAP (re-ranked \u2212 none)"
    assert (tmp_path / "gain.png").stat().st_size > 0 and (tmp_path / "gain.pdf").exists()
    with pytest.raises(ValueError, match="with and without re-ranking"):
        plots.rerank_gain_plot(rerank_frame[rerank_frame["rerank"] == "none"])


def test_aggregation_figures_keep_to_runs_without_reranking(make_record):
    r = make_record
    df = records_frame([r(ds, agg, v, params={"center_prior": agg == "spoc"})
                        for ds, agg, v in (("holidays", "sum", .80), ("holidays", "spoc", .78))]
                       + [reranked(r("holidays", agg, v, params={"center_prior": agg == "spoc"}),
                                   "aqe", "AQE") for agg, v in (("sum", .90), ("spoc", .95))])
    ax = plots.center_prior_plot(df).axes[0]
    assert sorted(round(p.get_height(), 3) for p in ax.patches) == [0.78, 0.80]
    assert "re-ranked" not in ax.get_title()
    only_qe = df[df["rerank"] == "aqe"]
    ax = plots.center_prior_plot(only_qe).axes[0]
    assert sorted(round(p.get_height(), 3) for p in ax.patches) == [0.90, 0.95]
    assert "re-ranked: AQE" in ax.get_title()


def test_dim_plot_draws_a_line_per_aggregator_and_reranking(make_record):
    df = records_frame([rec for d, v in ((128, .5), (256, .6)) for rec in
                        (make_record("holidays", "sum", v, dim=d),
                         reranked(make_record("holidays", "sum", v + .1, dim=d), "aqe", "AQE"))])
    ax = plots.comparison_plot(df).axes[0]
    assert legend_texts(ax) == ["sum", "sum + AQE"]
    assert ax.get_legend().get_title().get_text() == "aggregator + re-ranking"
    np.testing.assert_allclose(ax.get_lines()[1].get_ydata(), [.6, .7])


def test_bars_of_several_scale_sets_keep_each_set_apart(make_record):
    from analysis.plots import _method_labels
    from analysis.tables import records_frame
    df = records_frame([make_record("demo", "gem", 0.8),
                        make_record("demo", "gem", 0.9, config_hash="ms") | {"scales": "1,0.5 max"}])
    assert _method_labels(df) == ["gem @ 1", "gem @ 1,0.5 max"]
    assert _method_labels(df.iloc[:1]) == ["gem"]


def test_coded_runs_plot_map_against_bytes_per_image(make_record, tmp_path):
    from analysis.plots import comparison_plot
    recs = [make_record("demo", "spoc", v, dim=256, config_hash=f"c{i}") | {"codes": c, "bytes_per_image": b}
            for i, (c, b, v) in enumerate([("pq 8 B", 8, 0.6), ("pq 16 B", 16, 0.7), ("none", 1024, 0.85)])]
    ax = comparison_plot(records_frame(recs), tmp_path / "c.png").axes[0]
    assert (tmp_path / "c.png").exists()
    assert ax.get_xlabel().startswith("bytes per database image")
    assert sorted(line.get_label() for line in ax.get_lines()) == ["float32", "pq"]
    assert [list(line.get_xdata()) for line in ax.get_lines()] == [[1024], [8, 16]]
