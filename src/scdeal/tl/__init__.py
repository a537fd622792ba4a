"""Tools on cells and bulk lines: the Python API (`cluster`, `pretrain`, `predict`, `screen`, `explain`, with
the settings they take), and what it is built from: explanations, evaluation against labels, baselines, the
trust diagnostic, calls and screen rankings."""
from ..model.training import BulkConfig
from ..model.transfer import TransferConfig
from .api import cluster, explain, predict, pretrain, screen
from .explain import ExplainConfig
from .screen import ScreenConfig

__all__ = ["BulkConfig", "ExplainConfig", "ScreenConfig", "TransferConfig", "cluster", "explain", "predict", "pretrain",
           "screen"]
