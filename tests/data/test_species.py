"""Mouse → human ortholog mapping, and cross-species prediction on simulated mouse cells."""
from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from scdeal.data import readers
from scdeal.data.bulk import prepare_bulk
from scdeal.data.bulkdata import BulkData
from scdeal.data.simulate import SimParams, simulate
from scdeal.data.singlecell import ClusterConfig, preprocess_and_cluster
from scdeal.data.species import guess_species, mouse_to_human
from scdeal.errors import InputError
from scdeal.model.training import BulkConfig
from scdeal.model.transfer import TransferConfig
from scdeal.tl import predict


@pytest.fixture(scope="module")
def mouse_paths(tmp_path_factory):
    return simulate(tmp_path_factory.mktemp("mouse"), SimParams(species="mouse", n_samples=1, n_genes=400,
                                                                n_lines=200, n_cells=300))


@pytest.mark.slow
def test_mouse_cells_are_predicted_through_orthologs(mouse_paths):
    cells = ad.read_h5ad(mouse_paths["sample1"])
    assert guess_species(cells.var_names) == "mouse"
    mapped, report = mouse_to_human(cells)
    assert report["mapping_rate"] > 0.95
    response = readers.read_response(mouse_paths["bulk_response"])
    bulk = prepare_bulk(readers.read_bulk_expression(mouse_paths["bulk_expression"]), response, "Simulatin")
    assert guess_species(bulk.var_names) == "human"
    clustered = preprocess_and_cluster(mapped, ClusterConfig(n_top_genes=300))
    predict(clustered, BulkData.from_anndata(bulk), bulk_config=BulkConfig(ae_epochs=30, predictor_epochs=30),
            config=TransferConfig(epochs=15, n_ensemble=1), device="cpu")
    y = (clustered.obs["response"] == "sensitive").to_numpy()
    assert roc_auc_score(y, clustered.obs["prob_sensitive"]) >= 0.85


def test_low_ortholog_mapping_rate_is_an_error_with_advice():
    human = ad.AnnData(np.ones((5, 50), np.float32), var=pd.DataFrame(index=[f"GENE{i}" for i in range(50)]))
    with pytest.raises(InputError, match="one-to-one human ortholog"):
        mouse_to_human(human)
