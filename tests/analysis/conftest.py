"""Hand-made result records and frames for the table, plot and report tests."""
from __future__ import annotations

import pytest


def record(dataset, aggregator, value, dim=256, feature_type="deep", params=None, cls=None,
           timestamp="2025-01-01T00:00:00", metric="mAP", extra=None, config_hash=None):
    """A result record as experiments.run.build_record writes it (the fields analysis reads)."""
    params = {} if params is None else params
    metrics = {metric: value, **(extra or {})}
    return {"dataset": dataset, "aggregator": aggregator, "aggregator_params": params,
            "aggregator_class": cls or {"sum": "SumPooling", "spoc": "SumPooling",
                                        "max": "MaxPooling", "gem": "GeM"}.get(aggregator, "X"),
            "extractor": "sift" if feature_type == "sift" else "vgg19_paper",
            "feature_type": feature_type, "dim": dim,
            "postprocess": {"fit_on": "paris6k", "whiten": True}, "metrics": metrics,
            "timings": {"extract_s": 1.0, "aggregate_s": 0.1}, "timestamp": timestamp,
            "config_hash": config_hash or f"{dataset}-{aggregator}-{dim}-{feature_type}-{params}",
            "job_dir": "/nowhere"}


@pytest.fixture
def make_record():
    return record
