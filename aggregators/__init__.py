"""Aggregators (local features -> one global vector) and post-processing steps.

``from aggregators import SumPooling`` imports only the module that defines it (PEP 562), so that
the apps answer a wrong setting before scikit-learn's and torch's heavier parts are loaded.
"""
from importlib import import_module

_WHERE = {
    "Aggregator": "base", "SumPooling": "pooling", "MaxPooling": "pooling",
    "L2": "postprocess", "PowerNorm": "postprocess", "PCAWhitening": "postprocess",
    "LearnedWhitening": "postprocess",
    "ClsToken": "cls_token", "CroW": "crow", "FisherVector": "fisher_vector", "GeM": "gem", "RMAC": "rmac",
    "SuperGlobalPooling": "superglobal", "TriangulationEmbedding": "triangulation",
    "VLAD": "vlad",
}

__all__ = list(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'aggregators' has no attribute {name!r}")
    value = getattr(import_module(f"aggregators.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
