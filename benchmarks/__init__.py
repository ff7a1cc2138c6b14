"""Datasets in their official formats, their protocols, exact search and metrics."""
from benchmarks.base import ImageLoadError, ImageRef, Query, RetrievalDataset
from benchmarks.errors import DatasetError
from benchmarks.evaluation import evaluate
from benchmarks.search import rank, search, similarity

__all__ = ["DatasetError", "ImageRef", "ImageLoadError", "Query", "RetrievalDataset", "evaluate", "rank",
           "search", "similarity"]
