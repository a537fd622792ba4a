"""Shared paths and fixtures: small simulated data with a known per-cell response, and the real data when present.

Tests mirror the package's layers (tests/data, tests/model, tests/tl, tests/pipeline). End-to-end runs
are marked `slow`: `pytest -m "not slow"` is the quick loop.
"""
from __future__ import annotations

import os
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import torch

from scdeal.data import readers
from scdeal.data.bulk import prepare_bulk
from scdeal.data.bulkdata import BulkData
from scdeal.data.simulate import SimParams, simulate
from scdeal.data.singlecell import ClusterConfig, preprocess_and_cluster
from scdeal.model.training import BulkConfig, pretrain_bulk

ROOT = Path(__file__).resolve().parents[1]
TEST_DATA = ROOT / "assets" / "test_data"
SHARED_DATA = ROOT.parent / "shared" / "data"
CPU = torch.device("cpu")
os.environ.setdefault("TQDM_DISABLE", "1")
torch.set_num_threads(2)

SMALL = {"n_genes": 400, "n_lines": 200, "n_cells": 300}
# the orientation trap of the tests: two drugs with opposite bulk evidence on the same cells
TRAP = SimParams(n_genes=400, n_lines=400, n_cells=240, sensitive_fraction=0.1, effect=0.6, clone_effect=2.5,
                 gene_bias_sd=1.5, n_samples=1)
GENES = [f"G{i}" for i in range(30)]


def requires_shared_data():
    """Skip a test when the real public data are not beside the checkout."""
    return pytest.mark.skipif(not SHARED_DATA.is_dir(),
                              reason=f"real public data not found at {SHARED_DATA} (see README: Data)")


def bulk_frame(n_lines: int = 40, seed: int = 0) -> pd.DataFrame:
    """Random bulk expression: lines `Line-0`… × GENES."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(size=(n_lines, len(GENES))), index=[f"Line-{i}" for i in range(n_lines)],
                        columns=GENES)


def truth(cells: ad.AnnData) -> np.ndarray:
    """The simulated per-cell truth: 1 sensitive, 0 resistant."""
    return (cells.obs["response"] == "sensitive").to_numpy().astype(int)


@pytest.fixture(scope="session")
def sim_paths(tmp_path_factory) -> dict[str, Path]:
    return simulate(tmp_path_factory.mktemp("sim"), SimParams(n_samples=1, **SMALL))


@pytest.fixture(scope="session")
def shifted_paths(tmp_path_factory) -> dict[str, Path]:
    """A harder domain shift: weaker response programs and a strong platform bias per gene."""
    return simulate(tmp_path_factory.mktemp("shifted"), SimParams(n_samples=1, effect=0.4, gene_bias_sd=1.5, **SMALL))


def _prepared(paths):
    response = readers.read_response(paths["bulk_response"])
    expression = readers.read_bulk_expression(paths["bulk_expression"])
    bulk = BulkData.from_anndata(prepare_bulk(expression, response, "simulatin"))
    model = pretrain_bulk(bulk, BulkConfig(ae_epochs=30, predictor_epochs=30), CPU)
    cells = preprocess_and_cluster(ad.read_h5ad(paths["sample1"]), ClusterConfig(n_top_genes=300))
    return bulk, model, cells


@pytest.fixture(scope="session")
def trained(sim_paths):
    """(bulk lines, bulk model, clustered cells) of the default simulation."""
    return _prepared(sim_paths)


@pytest.fixture(scope="session")
def trained_shifted(shifted_paths):
    return _prepared(shifted_paths)
