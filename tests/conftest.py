"""Shared fixtures: small simulated data with a known per-cell response, and the real data when present."""
from __future__ import annotations

import os
from pathlib import Path

import anndata as ad
import pytest
import torch

from scdeal.data import bulk as bulk_mod
from scdeal.data import readers as io
from scdeal.data.simulate import SimParams, simulate
from scdeal.data.singlecell import ClusterParams, preprocess_and_cluster
from scdeal.model.training import BulkConfig, pretrain_bulk

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
os.environ.setdefault("TQDM_DISABLE", "1")
torch.set_num_threads(2)

SMALL = dict(n_genes=400, n_lines=200, n_cells=300)


def requires_shared_data():
    return pytest.mark.skipif(not SHARED_DATA.is_dir(),
                              reason=f"real public data not found at {SHARED_DATA} (see README: Data)")


@pytest.fixture(scope="session")
def sim_paths(tmp_path_factory) -> dict[str, Path]:
    return simulate(tmp_path_factory.mktemp("sim"), SimParams(n_samples=1, **SMALL))


@pytest.fixture(scope="session")
def shifted_paths(tmp_path_factory) -> dict[str, Path]:
    """A harder domain shift: weaker response programs and a strong platform bias per gene."""
    return simulate(tmp_path_factory.mktemp("shifted"), SimParams(n_samples=1, effect=0.4, gene_bias_sd=1.5, **SMALL))


def _prepared(paths):
    response = io.read_response(paths["bulk_response"])
    expression = io.read_bulk_expression(paths["bulk_expression"])
    bulk = bulk_mod.prepare_bulk(expression, response, "simulatin")
    model = pretrain_bulk(bulk, BulkConfig(ae_epochs=30, predictor_epochs=30), torch.device("cpu"), "SIMULATIN")
    cells = preprocess_and_cluster(ad.read_h5ad(paths["sample1"]), ClusterParams(n_top_genes=300))
    return bulk, model, cells


@pytest.fixture(scope="session")
def trained(sim_paths):
    """(bulk AnnData, bulk model, clustered cells) of the default simulation."""
    return _prepared(sim_paths)


@pytest.fixture(scope="session")
def trained_shifted(shifted_paths):
    return _prepared(shifted_paths)
