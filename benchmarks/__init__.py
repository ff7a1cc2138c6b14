"""Datasets in their official formats, their protocols, exact search, metrics and re-ranking."""
from benchmarks.base import ImageLoadError, ImageRef, Query, RetrievalDataset
from benchmarks.errors import DatasetError
from benchmarks.evaluation import evaluate, evaluate_rankings, evaluate_similarity
from benchmarks.search import SearchResult, rank, search, similarity

__all__ = ["DatasetError", "ImageRef", "ImageLoadError", "Query", "RetrievalDataset", "SearchResult",
           "evaluate", "evaluate_rankings", "evaluate_similarity", "rank", "search", "similarity"]
