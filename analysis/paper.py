"""The numbers Babenko & Lempitsky (2015) report (docs paper.md section 5, marked [R] there:
recollections to check, not ground truth): 256-D descriptors of deep conv5_4 features.

Keys are (aggregator config name, dataset name); Holidays and Oxford are mAP, UKBench the N-S
score (out of 4). Blank cells of the paper's table are absent. The table has no query expansion:
re-ranked runs never get a paper number. The ICCV version's query-expansion scheme is rebuilt from
its description (rerank config ``spoc_qe``), so it is always labelled a reconstruction.
"""
from __future__ import annotations

PAPER_DIM = 256
PAPER_FEATURE_TYPE = "deep"
PAPER_METRIC = {"holidays": "mAP", "oxford5k": "mAP", "oxford105k": "mAP", "ukbench": "N-S"}
#: the rerank config of runs without re-ranking (also what a record without ``rerank`` means)
NO_RERANK = "none"
#: rerank configs rebuilt from the paper's description, not from its code
RECONSTRUCTED_RERANKS = ("spoc_qe",)
RECONSTRUCTION = " (reconstruction)"

PAPER_RESULTS: dict[tuple[str, str], float] = {
    ("fv16", "holidays"): 0.704, ("fv16", "oxford5k"): 0.490,
    ("fv256", "holidays"): 0.672, ("fv256", "oxford5k"): 0.466,
    ("temb1", "holidays"): 0.775, ("temb1", "oxford5k"): 0.539,
    ("temb16", "holidays"): 0.732, ("temb16", "oxford5k"): 0.486,
    ("max", "holidays"): 0.711, ("max", "oxford5k"): 0.524,
    ("max", "oxford105k"): 0.522, ("max", "ukbench"): 3.57,
    ("sum", "holidays"): 0.802, ("sum", "oxford5k"): 0.589,
    ("sum", "oxford105k"): 0.578, ("sum", "ukbench"): 3.65,
    ("spoc", "holidays"): 0.784, ("spoc", "oxford5k"): 0.657,
    ("spoc", "oxford105k"): 0.642, ("spoc", "ukbench"): 3.66,
}


def paper_value(aggregator: str, dataset: str, metric: str, dim: int | None,
                feature_type: str | None = PAPER_FEATURE_TYPE,
                rerank: str | None = NO_RERANK) -> float | None:
    """The paper's number for this setting, or None where the setting differs (another metric,
    dimension or feature type, any re-ranking) or the paper has none."""
    if dim != PAPER_DIM or PAPER_METRIC.get(dataset) != metric:
        return None
    if rerank not in (None, NO_RERANK):
        return None
    if feature_type is not None and feature_type != PAPER_FEATURE_TYPE:
        return None
    return PAPER_RESULTS.get((aggregator, dataset))


def is_reconstruction(rerank: str) -> bool:
    """Whether a rerank config (``spoc_qe``, or ``spoc_qe(k=5)`` with swept parameters) is one
    of RECONSTRUCTED_RERANKS."""
    return str(rerank).split("(", 1)[0].strip() in RECONSTRUCTED_RERANKS


def mark_reconstruction(text: str, rerank: str) -> str:
    """``text`` with " (reconstruction)" appended where ``rerank`` is a reconstruction and the
    text does not already say so."""
    if is_reconstruction(rerank) and RECONSTRUCTION.strip() not in text:
        return text + RECONSTRUCTION
    return text
