"""Tools on cells and bulk lines: the Python API (`cluster`, `pretrain`, `predict`, `screen`, `explain`),
and what it is built from: explanations, evaluation against labels, baselines, the trust diagnostic, calls
and screen rankings."""
from .api import cluster, explain, predict, pretrain, screen

__all__ = ["cluster", "explain", "predict", "pretrain", "screen"]
