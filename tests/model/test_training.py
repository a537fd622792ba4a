"""Bulk pretraining: the model learns the planted response and the continuous one; its checkpoint."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import CPU
from scdeal.errors import InputError
from scdeal.model.training import (
    BulkConfig,
    load_checkpoint,
    predict_proba,
    pretrain_bulk,
    save_checkpoint,
)


def test_bulk_model_learns_planted_response(trained):
    _, model, _ = trained
    assert model.drugs == ["simulatin"] and model.metrics[0]["test"]["auroc"] >= 0.9


def test_auxiliary_regression_learns_the_continuous_response(trained):
    from scipy.stats import spearmanr

    from scdeal.data.bulkdata import BulkData
    from scdeal.data.features import model_features
    bulk = trained[0].adata.copy()
    rng = np.random.default_rng(0)
    x = model_features(bulk.X)[0]
    bulk.obs["response_z"] = x[:, :20].sum(1) / np.sqrt(20) + 0.3 * rng.normal(size=bulk.n_obs)
    bulk.obs.loc[bulk.obs_names[::7], "response_z"] = np.nan  # lines without a continuous measure are skipped
    model = pretrain_bulk(BulkData.from_anndata(bulk), BulkConfig(ae_epochs=20, predictor_epochs=40, w_response=1.0), CPU)
    test = (bulk.obs["split"] == "test").to_numpy() & bulk.obs["response_z"].notna().to_numpy()
    stats = (model.gene_mean, model.gene_sd)
    with torch.no_grad():
        model.encoder.eval(), model.regressor.eval()
        predicted = model.regressor(model.encoder(torch.from_numpy(model_features(bulk.X[test], stats)[0]))).numpy()[:, 0]
    assert spearmanr(predicted, bulk.obs["response_z"].to_numpy()[test]).statistic > 0.5
    assert any("val_response_mse" in row for row in model.history)


def test_checkpoint_loads_from_any_path_and_predicts_the_same(trained, tmp_path):
    bulk, model, _ = trained
    path = tmp_path / "elsewhere" / "model.pt"
    save_checkpoint(model, path, {"step": "test"})
    loaded = load_checkpoint(path)
    assert loaded.genes == model.genes and loaded.config == model.config and loaded.drugs == model.drugs
    from scdeal.data.features import model_features
    x = model_features(bulk.expression(), (model.gene_mean, model.gene_sd))[0]
    np.testing.assert_allclose(predict_proba(loaded.encoder, loaded.predictor, x, device=CPU),
                               predict_proba(model.encoder, model.predictor, x, device=CPU), rtol=1e-6)


def test_not_a_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "x.pt"
    torch.save({"a": 1}, path)
    with pytest.raises(InputError, match="not a scdeal bulk model"):
        load_checkpoint(path)
