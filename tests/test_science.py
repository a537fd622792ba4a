"""The model learns: per-cell accuracy on simulated data with a known answer, what each part contributes,
and reproducibility."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from scdeal.model.transfer import TransferConfig, transfer_and_predict

CPU = torch.device("cpu")


def truth(cells) -> np.ndarray:
    return (cells.obs["response"] == "sensitive").to_numpy().astype(int)


def run(trained, **overrides):
    bulk, model, cells = trained
    cfg = TransferConfig(**{"epochs": 15, "n_ensemble": 1, **overrides})
    return transfer_and_predict(model, bulk, cells, cfg, CPU)


def test_bulk_model_learns_planted_response(trained):
    _, model, _ = trained
    assert model.metrics["test"]["auroc"] >= 0.9


def test_transfer_predicts_cells_accurately(trained):
    result = run(trained)
    assert roc_auc_score(truth(trained[2]), result.prob) >= 0.85


def test_transfer_beats_bulk_model_applied_directly_on_shifted_domain(trained_shifted):
    direct = run(trained_shifted, epochs=0)
    transferred = run(trained_shifted)
    y = truth(trained_shifted[2])
    assert roc_auc_score(y, transferred.prob) > roc_auc_score(y, direct.prob) + 0.02


@pytest.mark.parametrize("ablation", [{"w_mmd": 0.0}, {"w_cluster": 0.0}, {"w_bulk": 0.0}, {"w_anchor": 0.0},
                                      {"pretrained": False}, {"source_epochs": 0}, {"member_bulk": "all"}])
def test_every_part_changes_the_result(trained, ablation):
    default = run(trained)
    ablated = run(trained, **ablation)
    assert np.abs(default.prob - ablated.prob).max() > 1e-3


def test_pretraining_keeps_the_orientation(trained):
    """Without the bulk encoder's weights or a source refit, nothing ties which side means sensitive."""
    y = truth(trained[2])
    unanchored = run(trained, pretrained=False, source_epochs=0, w_anchor=0.0)
    assert roc_auc_score(y, run(trained).prob) > roc_auc_score(y, unanchored.prob) + 0.2


def test_same_seed_same_predictions_on_cpu(trained):
    a, b = run(trained, epochs=3, seed=7), run(trained, epochs=3, seed=7)
    np.testing.assert_array_equal(a.prob, b.prob)
    c = run(trained, epochs=3, seed=8)
    assert not np.array_equal(a.prob, c.prob)


def test_ensemble_reports_spread(trained):
    result = run(trained, epochs=3, n_ensemble=3)
    assert result.member_probs.shape == (3, trained[2].n_obs)
    assert (result.prob_sd > 0).any()
    np.testing.assert_allclose(result.prob, result.member_probs.mean(0), rtol=1e-6)
    assert [m["member"] for m in result.members] == [0, 1, 2] and result.bulk_val_auroc > 0.8


def test_no_transfer_is_the_source_model_refitted_on_the_sample_genes(trained):
    """epochs=0 gives the validated source model: its probabilities are the direct ones, and its held-out
    bulk AUROC is measured on the genes the sample has."""
    result = run(trained, epochs=0, n_ensemble=2)
    np.testing.assert_array_equal(result.prob, result.direct_prob)
    assert result.n_reset == 0 and result.bulk_val_auroc > 0.8
    assert roc_auc_score(truth(trained[2]), result.direct_prob) > 0.7


def test_predictions_need_no_labels(trained):
    bulk, model, cells = trained
    unlabelled = cells.copy()
    del unlabelled.obs["response"]
    result = transfer_and_predict(model, bulk, unlabelled, TransferConfig(epochs=2, n_ensemble=1), CPU)
    assert result.prob.shape == (cells.n_obs,)


def test_too_few_shared_genes_is_a_clear_error(trained):
    from scdeal.errors import InputError
    bulk, model, cells = trained
    with pytest.raises(InputError, match="shares only 50 genes"):
        transfer_and_predict(model, bulk, cells[:, :50].copy(), TransferConfig(epochs=1, n_ensemble=1), CPU)


def test_large_samples_get_a_neighbour_graph():
    """Above a few thousand cells scanpy switches kNN method; both paths must build the graph."""
    import anndata as ad
    import scanpy as sc

    from scdeal.data.singlecell import ApproximateKnn, knn_transformer
    adata = ad.AnnData(np.random.default_rng(0).random((9000, 10), dtype=np.float32))
    adata.obsm["X_pca"] = adata.X
    for transformer in (knn_transformer(adata.n_obs, 10, 0), ApproximateKnn(10, 0)):
        sc.pp.neighbors(adata, n_neighbors=10, use_rep="X_pca", transformer=transformer)
        assert adata.obsp["connectivities"].shape == (9000, 9000)


def test_auxiliary_regression_learns_the_continuous_response(trained):
    from scipy.stats import spearmanr

    from scdeal.data.features import model_features
    from scdeal.model.training import BulkConfig, pretrain_bulk
    bulk, _, _ = trained
    bulk = bulk.copy()
    rng = np.random.default_rng(0)
    x = model_features(bulk.X)[0]
    bulk.obs["response_z"] = x[:, :20].sum(1) / np.sqrt(20) + 0.3 * rng.normal(size=bulk.n_obs)
    bulk.obs.loc[bulk.obs_names[::7], "response_z"] = np.nan  # lines without a continuous measure are skipped
    model = pretrain_bulk(bulk, BulkConfig(ae_epochs=20, predictor_epochs=40, w_response=1.0), CPU, "X")
    test = (bulk.obs["split"] == "test").to_numpy() & bulk.obs["response_z"].notna().to_numpy()
    stats = (model.gene_mean, model.gene_sd)
    with torch.no_grad():
        model.encoder.eval(), model.regressor.eval()
        predicted = model.regressor(model.encoder(torch.from_numpy(model_features(bulk.X[test], stats)[0]))).numpy()
    assert spearmanr(predicted, bulk.obs["response_z"].to_numpy()[test]).statistic > 0.5
    assert any("val_response_mse" in row for row in model.history)


def test_platt_scaling_recovers_the_true_calibration():
    from scdeal.model.transfer import platt_scaling
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=2, size=20_000)
    y = rng.random(20_000) < 1 / (1 + np.exp(-(0.5 * logits - 1.0)))
    slope, intercept = platt_scaling(logits, y.astype(int))
    assert abs(slope - 0.5) < 0.05 and abs(intercept + 1.0) < 0.1
    assert platt_scaling(-logits, y.astype(int)) == (1.0, 0.0)  # worse than chance: left uncalibrated


def test_calibrated_probabilities_follow_the_bulk_prevalence(trained):
    bulk, _, _ = trained
    raw, calibrated = run(trained, calibration="none"), run(trained, calibration="platt")
    assert roc_auc_score(truth(trained[2]), calibrated.prob) > 0.85
    prevalence = bulk.obs["label"].mean()
    assert abs(calibrated.prob.mean() - prevalence) < abs(raw.prob.mean() - prevalence) + 0.02


def test_otsu_threshold_splits_two_populations():
    from scdeal.model.transfer import otsu_threshold
    rng = np.random.default_rng(0)
    prob = np.concatenate([rng.normal(0.2, 0.05, 700), rng.normal(0.8, 0.05, 300)]).clip(0, 1)
    threshold = otsu_threshold(prob)
    assert 0.35 < threshold < 0.65 and (prob >= threshold).sum() == 300


def test_baseline_is_scored_on_bulk_test_lines_and_predicts_cells(trained):
    from scdeal.tl.baseline import baseline_predictions
    bulk, model, cells = trained
    genes = [g for g in model.genes if g in set(cells.var_names)]
    for kind in ("logistic", "gbt"):
        result = baseline_predictions(kind, bulk, cells, genes, seed=0)
        assert result.prob.shape == (cells.n_obs,) and result.bulk_test_auroc > 0.7
        assert roc_auc_score(truth(cells), result.prob) > 0.6
    assert baseline_predictions("none", bulk, cells, genes) is None


def test_very_large_samples_take_the_scalable_clustering_path(sim_paths, monkeypatch):
    """Above the exact-kNN limit: approximate neighbours and a UMAP started from the PCs, not spectral."""
    import anndata as ad

    from scdeal.data import singlecell
    monkeypatch.setattr(singlecell, "EXACT_KNN_MAX_CELLS", 100)
    cells = singlecell.preprocess_and_cluster(ad.read_h5ad(sim_paths["sample1"]), singlecell.ClusterParams(n_top_genes=300))
    assert isinstance(singlecell.knn_transformer(cells.n_obs, 15, 0), singlecell.ApproximateKnn)
    start = singlecell.umap_init(cells.obsm["X_pca"])
    assert start.shape == (cells.n_obs, 2) and np.isclose(np.abs(start).max(), 10.0)
    assert np.isfinite(cells.obsm["X_umap"]).all() and cells.obs["cluster"].nunique() >= 2
