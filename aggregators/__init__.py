"""Aggregators (local features -> one global vector) and post-processing steps."""
from aggregators.base import Aggregator
from aggregators.pooling import MaxPooling, SumPooling
from aggregators.postprocess import L2, PCAWhitening, PowerNorm

__all__ = ["Aggregator", "SumPooling", "MaxPooling", "L2", "PowerNorm", "PCAWhitening"]
