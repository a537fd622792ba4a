"""The transfer learns: per-cell accuracy on simulated data with a known answer, what each part
contributes, calibration, calls and reproducibility."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from conftest import CPU, truth
from scdeal.errors import InputError
from scdeal.model.parallel import map_jobs, worker_plan
from scdeal.model.transfer import TransferConfig, platt_scaling, transfer
from scdeal.tl.predictions import call_labels, log_odds, otsu_threshold


def run(trained, **overrides):
    bulk, model, cells = trained
    cfg = TransferConfig(**{"epochs": 15, "n_ensemble": 1, **overrides})
    return transfer(model, bulk, cells, cfg=cfg, device=CPU).drug(0)


def test_transfer_predicts_cells_accurately(trained):
    result = run(trained)
    assert roc_auc_score(truth(trained[2]), result.prob) >= 0.85


def test_transfer_beats_bulk_model_applied_directly_on_shifted_domain(trained_shifted):
    direct = run(trained_shifted, epochs=0)
    transferred = run(trained_shifted)
    y = truth(trained_shifted[2])
    assert roc_auc_score(y, transferred.prob) > roc_auc_score(y, direct.prob) + 0.02


@pytest.mark.parametrize("ablation", [{"w_mmd": 0.0}, {"w_cluster": 0.0}, {"w_bulk": 0.0}, {"w_anchor": 0.0},
                                      {"member_init": "pretrained"}, {"source_epochs": 0, "member_init": "pretrained"},
                                      {"member_bulk": "all"}, {"anchor_to": "source"}])
def test_every_part_changes_the_result(trained, ablation):
    default = run(trained)
    ablated = run(trained, **ablation)
    # in log-odds: calibrated probabilities crowd near 0 and 1, where their differences vanish
    assert np.abs(log_odds(default.prob) - log_odds(ablated.prob)).max() > 1e-3


def test_members_with_their_own_weights_need_a_source_fit(trained):
    with pytest.raises(InputError, match="--source_epochs of at least 1"):
        run(trained, source_epochs=0)


def test_same_seed_same_predictions_on_cpu(trained):
    a, b = run(trained, epochs=3, seed=7), run(trained, epochs=3, seed=7)
    np.testing.assert_array_equal(a.prob, b.prob)
    c = run(trained, epochs=3, seed=8)
    assert not np.array_equal(a.prob, c.prob)


def test_members_in_worker_processes_give_what_they_give_in_order(trained):
    """Two threads put each member in a forked process of its own; one thread trains them here, in order."""
    parallel = run(trained, epochs=3, n_ensemble=2)
    torch.set_num_threads(1)
    try:
        in_order = run(trained, epochs=3, n_ensemble=2)
    finally:
        torch.set_num_threads(2)
    assert worker_plan(CPU, 2) == (2, 1) and worker_plan(torch.device("cuda"), 2) == (1, 2)
    np.testing.assert_array_equal(parallel.member_probs, in_order.member_probs)


def test_a_job_that_fails_in_a_worker_fails_the_call():
    def job(index: int) -> int:
        if index == 1:
            raise InputError(f"job {index} failed")
        return index

    assert map_jobs(lambda i: i * i, 3, workers=2, threads=1) == [0, 1, 4]
    with pytest.raises(InputError, match="job 1 failed"):
        map_jobs(job, 3, workers=2, threads=1)


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
    result = transfer(model, bulk, unlabelled, cfg=TransferConfig(epochs=2, n_ensemble=1), device=CPU).drug(0)
    assert result.prob.shape == (cells.n_obs,)


def test_too_few_shared_genes_is_a_clear_error(trained):
    bulk, model, cells = trained
    with pytest.raises(InputError, match="shares only 50 genes"):
        transfer(model, bulk, cells[:, :50].copy(), cfg=TransferConfig(epochs=1, n_ensemble=1), device=CPU)


def test_platt_scaling_recovers_the_true_calibration():
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
    prevalence = bulk.labels.mean()
    assert abs(calibrated.prob.mean() - prevalence) < abs(raw.prob.mean() - prevalence) + 0.02


def test_otsu_threshold_splits_two_populations():
    rng = np.random.default_rng(0)
    prob = np.concatenate([rng.normal(0.2, 0.05, 700), rng.normal(0.8, 0.05, 300)]).clip(0, 1)
    threshold = otsu_threshold(prob)
    assert 0.35 < threshold < 0.65 and (prob >= threshold).sum() == 300


def test_otsu_threshold_splits_populations_that_lie_apart_in_log_odds():
    """Calibrated to a bulk prior of ~10 % sensitive lines, a sensitive population sits at probabilities of
    0.0003–0.12 and the resistant one near 1e-5: the split belongs between them, not inside the first."""
    rng = np.random.default_rng(0)
    logits = np.concatenate([rng.normal(-5, 1.5, 300), rng.normal(-11.5, 0.5, 300)])
    prob = 1 / (1 + np.exp(-logits))
    threshold = otsu_threshold(prob)
    assert (prob >= threshold)[:300].mean() > 0.97 and (prob >= threshold)[300:].mean() < 0.03


def test_uncertain_where_the_members_spread_reaches_across_the_threshold():
    members = np.array([[0.9, 0.1, 0.60, 0.45, 0.020],
                        [0.9, 0.1, 0.40, 0.44, 0.030],
                        [0.9, 0.1, 0.56, 0.46, 0.025]])
    labels = call_labels(members, 0.5)
    assert labels.tolist() == ["sensitive", "resistant", "uncertain", "resistant", "resistant"]
    # near a low threshold the same spread in log-odds is a small spread in probability
    assert call_labels(members, 0.025).tolist()[-1] == "uncertain"


def test_a_member_stops_once_its_call_has_settled(trained):
    """--settled below 1: a member stops as soon as its cells' ranking matches the one SETTLE_WINDOW epochs before
    (at 0, at once); at 1 (the default) every epoch runs."""
    from scdeal.model.transfer import SETTLE_WINDOW
    settled = run(trained, epochs=12, settled=0.0)
    epochs = [row for row in settled.history if row["stage"] == "transfer"]
    assert len(epochs) == SETTLE_WINDOW + 1 and np.isfinite(epochs[-1]["cells_settled"])
    full = [row for row in run(trained, epochs=12).history if row["stage"] == "transfer"]
    assert len(full) == 12 and "cells_settled" not in full[-1]
