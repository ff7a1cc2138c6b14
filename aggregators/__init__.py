"""Aggregators (local features -> one global vector) and post-processing steps."""
from aggregators.base import Aggregator
from aggregators.pooling import MaxPooling, SumPooling
from aggregators.postprocess import L2, PCAWhitening, PowerNorm
from aggregators.crow import CroW
from aggregators.fisher_vector import FisherVector
from aggregators.gem import GeM
from aggregators.rmac import RMAC
from aggregators.triangulation import TriangulationEmbedding
from aggregators.vlad import VLAD

__all__ = ["Aggregator", "SumPooling", "MaxPooling", "L2", "PowerNorm", "PCAWhitening",
           "GeM", "RMAC", "CroW", "VLAD", "FisherVector", "TriangulationEmbedding"]
