"""The call follows the bulk evidence: an orientation trap with opposite evidence for two drugs on the
same cells, and the pieces that hold the direction (anchor losses, prior estimate, guard)."""
from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from conftest import CPU, TRAP
from scdeal.data import readers
from scdeal.data.bulk import BulkPrepareConfig, prepare_bulk
from scdeal.data.bulkdata import BulkData
from scdeal.data.simulate import TRAP_DRUGS, simulate_orientation_trap
from scdeal.data.singlecell import ClusterConfig, preprocess_and_cluster
from scdeal.model.orientation import (
    anchor_loss,
    cluster_anchor_loss,
    estimate_target_prior,
    oriented_like,
    prior_matched_weights,
)
from scdeal.model.training import BulkConfig, pretrain_bulk
from scdeal.model.transfer import TransferConfig, transfer

SEEDS = range(10)



@pytest.fixture(scope="module")
def trap(tmp_path_factory):
    """Per drug: the truth on the trap's cells and the ensemble probability of every seed's run."""
    paths = simulate_orientation_trap(tmp_path_factory.mktemp("trap"), TRAP)
    response = readers.read_responses([paths["bulk_response"], paths["bulk_ic50"]])
    expression = readers.read_bulk_expression(paths["bulk_expression"])
    cells = preprocess_and_cluster(ad.read_h5ad(paths["sample1"]), ClusterConfig(n_top_genes=300))
    runs = {}
    for drug in TRAP_DRUGS:
        truth = (cells.obs[f"response_{drug.lower()}"] == "sensitive").to_numpy().astype(int)
        probs = []
        for seed in SEEDS:
            bulk = BulkData.from_anndata(prepare_bulk(expression, response, drug, config=BulkPrepareConfig(seed=seed)))
            model = pretrain_bulk(bulk, BulkConfig(ae_epochs=20, predictor_epochs=30, seed=seed), CPU)
            result = transfer(model, bulk, cells, cfg=TransferConfig(epochs=15, seed=seed), device=CPU)
            probs.append(result.prob[:, 0])
        runs[drug] = (truth, np.vstack(probs))
    return runs


@pytest.mark.slow
def test_trap_cells_are_two_populations_with_opposite_labels(trap):
    (truth_a, _), (truth_b, _) = trap.values()
    assert truth_a.mean() == pytest.approx(0.5, abs=0.05)
    np.testing.assert_array_equal(truth_a, 1 - truth_b)


@pytest.mark.slow
@pytest.mark.parametrize("drug", TRAP_DRUGS)
def test_every_seed_is_oriented_by_the_bulk_evidence(trap, drug):
    truth, probs = trap[drug]
    aurocs = np.array([roc_auc_score(truth, p) for p in probs])
    assert (aurocs > 0.5).all(), f"{drug}: inverted seeds {np.flatnonzero(aurocs <= 0.5).tolist()} ({aurocs.round(3)})"
    assert aurocs.mean() > 0.85


@pytest.mark.slow
def test_opposite_drug_evidence_gives_opposite_calls(trap):
    """Same cells, same seed, opposite bulk evidence: the two drugs rank the cells in opposite directions."""
    (_, probs_a), (_, probs_b) = trap.values()
    for a, b in zip(probs_a, probs_b, strict=True):
        assert np.corrcoef(a, b)[0, 1] < 0


def test_anchor_losses_punish_a_reversed_order_most():
    rng = np.random.default_rng(0)
    teacher = torch.from_numpy(rng.normal(size=200).astype(np.float32))
    assert anchor_loss(teacher * 3 + 1, teacher) == pytest.approx(0.0, abs=1e-5)
    assert anchor_loss(-teacher, teacher) == pytest.approx(2.0, abs=1e-5)
    clusters = torch.from_numpy(np.repeat([0, 1, 2, 3], 50))
    means = torch.tensor([-2.0, -1.0, 1.0, 2.0])[clusters]
    shuffled_within = means + torch.from_numpy(rng.normal(scale=0.1, size=200).astype(np.float32))
    assert cluster_anchor_loss(shuffled_within, means, clusters, n_clusters=4) < 0.01  # order inside clusters is free
    assert cluster_anchor_loss(-means, means, clusters, n_clusters=4) == pytest.approx(2.0, abs=1e-4)


def test_target_prior_is_recovered_under_label_shift():
    """Probabilities calibrated where 10 % are sensitive, applied where 40 % are: EM finds the 40 %."""
    rng = np.random.default_rng(0)
    y = rng.random(20_000) < 0.4
    score = rng.normal(np.where(y, 1.5, -1.5))
    log_lr = 3.0 * score  # the log likelihood ratio of this score under unit-variance classes
    prob = 1 / (1 + np.exp(-(log_lr + np.log(0.1 / 0.9))))
    assert estimate_target_prior(prob, 0.1) == pytest.approx(0.4, abs=0.02)
    weights = prior_matched_weights(np.array([1] * 10 + [0] * 90), 0.4)
    assert weights[:10].sum() == pytest.approx(0.4) and weights.sum() == pytest.approx(1.0)


def test_orientation_guard():
    x = np.arange(100.0)
    assert oriented_like(x + np.sin(x), x) and not oriented_like(-x, x) and oriented_like(np.zeros(100), x)
