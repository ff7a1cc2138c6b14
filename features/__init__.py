"""Shared local-feature extractors and the on-disk local-feature store."""
from features.local_features import LocalFeatures, grid_positions

__all__ = ["LocalFeatures", "grid_positions"]
