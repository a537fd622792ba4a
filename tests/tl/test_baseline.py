"""The baselines beside the deep model."""
from __future__ import annotations

from sklearn.metrics import roc_auc_score

from conftest import truth
from scdeal.tl.baseline import baseline_predictions


def test_baseline_is_scored_on_bulk_test_lines_and_predicts_cells(trained):
    bulk, model, cells = trained
    genes = [g for g in model.genes if g in set(cells.var_names)]
    for kind in ("logistic", "gbt"):
        result = baseline_predictions(kind, bulk, cells, genes=genes, seed=0)
        assert result.prob.shape == (cells.n_obs,) and result.bulk_test_auroc > 0.7
        assert roc_auc_score(truth(cells), result.prob) > 0.6
    assert baseline_predictions("none", bulk, cells, genes=genes) is None
