"""The numbers Babenko & Lempitsky (2015) report (docs paper.md section 5, marked [R] there:
recollections to check, not ground truth): 256-D descriptors of deep conv5_4 features.

Keys are (aggregator config name, dataset name); Holidays and Oxford are mAP, UKBench the N-S
score (out of 4). Blank cells of the paper's table are absent.
"""
from __future__ import annotations

PAPER_DIM = 256
PAPER_FEATURE_TYPE = "deep"
PAPER_METRIC = {"holidays": "mAP", "oxford5k": "mAP", "oxford105k": "mAP", "ukbench": "N-S"}

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
                feature_type: str | None = PAPER_FEATURE_TYPE) -> float | None:
    """The paper's number for this setting, or None where the setting differs (another metric,
    dimension or feature type) or the paper has none."""
    if dim != PAPER_DIM or PAPER_METRIC.get(dataset) != metric:
        return None
    if feature_type is not None and feature_type != PAPER_FEATURE_TYPE:
        return None
    return PAPER_RESULTS.get((aggregator, dataset))
