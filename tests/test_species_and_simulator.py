"""Cross-species prediction on simulated mouse cells, the shipped test data, checkpoints."""
from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score

from scdeal.data import bulk as bulk_mod
from scdeal.data import readers as io
from scdeal.data.simulate import SimParams, simulate
from scdeal.data.singlecell import ClusterParams, preprocess_and_cluster
from scdeal.data.species import guess_species, mouse_to_human
from scdeal.errors import InputError
from scdeal.model.training import (
    BulkConfig,
    load_checkpoint,
    predict_proba,
    pretrain_bulk,
    save_checkpoint,
)
from scdeal.model.transfer import TransferConfig, transfer_and_predict

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def mouse_paths(tmp_path_factory):
    return simulate(tmp_path_factory.mktemp("mouse"), SimParams(species="mouse", n_samples=1, n_genes=400,
                                                                n_lines=200, n_cells=300))


def test_mouse_cells_are_predicted_through_orthologs(mouse_paths):
    cells = ad.read_h5ad(mouse_paths["sample1"])
    assert guess_species(cells.var_names) == "mouse"
    mapped, report = mouse_to_human(cells)
    assert report["mapping_rate"] > 0.95
    response = io.read_response(mouse_paths["bulk_response"])
    bulk = bulk_mod.prepare_bulk(io.read_bulk_expression(mouse_paths["bulk_expression"]), response, "Simulatin")
    assert guess_species(bulk.var_names) == "human"
    model = pretrain_bulk(bulk, BulkConfig(ae_epochs=30, predictor_epochs=30), torch.device("cpu"), "S")
    clustered = preprocess_and_cluster(mapped, ClusterParams(n_top_genes=300))
    result = transfer_and_predict(model, bulk, clustered, TransferConfig(epochs=15, n_ensemble=1), torch.device("cpu"))
    y = (clustered.obs["response"] == "sensitive").to_numpy()
    assert roc_auc_score(y, result.prob) >= 0.85


def test_low_ortholog_mapping_rate_is_an_error_with_advice():
    human = ad.AnnData(np.ones((5, 50), np.float32), var=pd.DataFrame(index=[f"GENE{i}" for i in range(50)]))
    with pytest.raises(InputError, match="one-to-one human ortholog"):
        mouse_to_human(human)


def test_shipped_test_data_is_what_the_simulator_makes(tmp_path):
    paths = simulate(tmp_path, SimParams(n_genes=400, n_lines=200, n_cells=300, n_samples=2))
    shipped = ROOT / "assets" / "test_data"
    pd.testing.assert_frame_equal(pd.read_csv(paths["bulk_expression"], index_col=0),
                                  pd.read_csv(shipped / "bulk_expression.csv.gz", index_col=0))
    for k in (1, 2):
        made, ours = ad.read_h5ad(paths[f"sample{k}"]), ad.read_h5ad(shipped / f"sample{k}.h5ad")
        assert (made.X != ours.X).nnz == 0 and list(made.obs_names) == list(ours.obs_names)


def test_checkpoint_loads_from_any_path_and_predicts_the_same(trained, tmp_path):
    bulk, model, _ = trained
    path = tmp_path / "elsewhere" / "model.pt"
    save_checkpoint(model, path, {"step": "test"})
    loaded = load_checkpoint(path)
    assert loaded.genes == model.genes and loaded.config == model.config
    from scdeal.data.features import model_features
    x = model_features(bulk.X, (model.gene_mean, model.gene_sd))[0]
    np.testing.assert_allclose(predict_proba(loaded.encoder, loaded.predictor, x, torch.device("cpu")),
                               predict_proba(model.encoder, model.predictor, x, torch.device("cpu")), rtol=1e-6)


def test_not_a_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "x.pt"
    torch.save({"a": 1}, path)
    with pytest.raises(InputError, match="not a scdeal bulk model"):
        load_checkpoint(path)
