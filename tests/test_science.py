"""The model learns: per-cell accuracy on simulated data with a known answer, what each part contributes,
and reproducibility."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from scdeal.transfer import TransferConfig, transfer_and_predict

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


@pytest.mark.parametrize("ablation", [{"w_mmd": 0.0}, {"w_cluster": 0.0}, {"w_bulk": 0.0}, {"pretrained": False}])
def test_every_part_changes_the_result(trained, ablation):
    default = run(trained)
    ablated = run(trained, **ablation)
    assert np.abs(default.prob - ablated.prob).max() > 1e-3


def test_pretraining_keeps_the_orientation(trained):
    """Without starting from the bulk encoder, nothing ties which side means sensitive."""
    y = truth(trained[2])
    assert roc_auc_score(y, run(trained).prob) > roc_auc_score(y, run(trained, pretrained=False).prob) + 0.2


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

    from scdeal.singlecell import ApproximateKnn, knn_transformer
    adata = ad.AnnData(np.random.default_rng(0).random((9000, 10), dtype=np.float32))
    adata.obsm["X_pca"] = adata.X
    for transformer in (knn_transformer(adata.n_obs, 10, 0), ApproximateKnn(10, 0)):
        sc.pp.neighbors(adata, n_neighbors=10, use_rep="X_pca", transformer=transformer)
        assert adata.obsp["connectivities"].shape == (9000, 9000)
