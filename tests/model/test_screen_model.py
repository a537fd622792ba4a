"""A panel of drugs through the one bulk model and transfer: every drug's call follows its own bulk evidence
on the same cells (the orientation trap), per-drug metrics and calibration, and the saved model."""
from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from conftest import CPU, TRAP
from scdeal.data import readers
from scdeal.data.bulk import BulkPrepareConfig
from scdeal.data.bulkdata import BulkData
from scdeal.data.screen import prepare_screen
from scdeal.data.simulate import TRAP_DRUGS, simulate_orientation_trap
from scdeal.data.singlecell import ClusterConfig, preprocess_and_cluster
from scdeal.errors import InputError
from scdeal.model.metrics import column_aurocs
from scdeal.model.networks import Head, masked_bce, response_terms
from scdeal.model.orientation import anchor_loss, rank_correlation
from scdeal.model.training import BulkConfig, class_weight, load_checkpoint, pretrain_bulk, save_checkpoint
from scdeal.model.transfer import TransferConfig, transfer, transfer_loss
from scdeal.tl.screen import SCREEN_HEADS, ScreenConfig, drug_trust


@pytest.fixture(scope="module")
def screened(tmp_path_factory):
    """The trap's two drugs screened at once: (cells, screen bulk, model, result)."""
    paths = simulate_orientation_trap(tmp_path_factory.mktemp("trap"), TRAP)
    response = readers.read_responses([paths["bulk_response"], paths["bulk_ic50"]])
    bulk = BulkData.from_anndata(prepare_screen(readers.read_bulk_expression(paths["bulk_expression"]), response,
                                                config=BulkPrepareConfig()))
    cells = preprocess_and_cluster(ad.read_h5ad(paths["sample1"]), ClusterConfig(n_top_genes=300))
    model = pretrain_bulk(bulk, BulkConfig(ae_epochs=20, predictor_epochs=30, predictor_hidden_dims=SCREEN_HEADS), CPU)
    result = transfer(model, bulk, cells, cfg=TransferConfig(epochs=15, n_ensemble=2), device=CPU)
    return cells, bulk, model, result


def test_each_drug_is_oriented_by_its_own_evidence_on_the_same_cells(screened):
    cells, _, _, result = screened
    assert sorted(result.drugs) == sorted(TRAP_DRUGS) and result.prob.shape == (cells.n_obs, 2)
    for d, drug in enumerate(result.drugs):
        truth = (cells.obs[f"response_{drug.lower()}"] == "sensitive").to_numpy()
        assert roc_auc_score(truth, result.prob[:, d]) > 0.8, drug
    assert np.corrcoef(result.prob[:, 0], result.prob[:, 1])[0, 1] < 0


def test_each_trap_drugs_call_follows_its_own_bulk_signature(screened):
    _, _, _, result = screened
    assert result.signature.shape == result.prob.shape
    for d in range(len(result.drugs)):
        assert rank_correlation(result.prob[:, d], result.signature[:, d]) > 0.5
    trust = drug_trust(result, ScreenConfig(), np.full(result.prob.shape, np.nan))  # the trap has no AUC
    assert trust["spearman_transfer_vs_linear"].isna().all() and "disputed" not in set(trust["verdict"])


def test_per_drug_bulk_metrics_and_calibrated_probabilities(screened):
    _, _, model, result = screened
    assert [m["drug"] for m in model.metrics] == result.drugs
    assert all(m["test"]["auroc"] > 0.8 and m["n_sensitive"] > 10 for m in model.metrics)
    assert (result.bulk_val_auroc > 0.8).all()
    assert result.member_probs.shape[0] == 2 and (result.prob_sd > 0).any()
    assert ((result.prob >= 0) & (result.prob <= 1)).all()


def test_saved_model_predicts_the_same(screened, tmp_path):
    _, _, model, _ = screened
    save_checkpoint(model, tmp_path / "screen_model.pt", {"step": "test"})
    loaded = load_checkpoint(tmp_path / "screen_model.pt")
    assert loaded.drugs == model.drugs and loaded.genes == model.genes
    # one linear read-out per drug on the bottleneck, whatever the single-drug heads' hidden layers are
    assert BulkConfig().predictor_hidden_dims and loaded.config.predictor_hidden_dims == ()
    assert not list(loaded.predictor.body.parameters()) and loaded.predictor.out.in_features == model.config.latent_dim
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(5, len(model.genes))).astype(np.float32))
    model.encoder.eval(), model.predictor.eval(), loaded.encoder.eval(), loaded.predictor.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded.predictor(loaded.encoder(x)), model.predictor(model.encoder(x)))
    with pytest.raises(InputError, match="not a scdeal bulk model"):
        load_checkpoint(_older_checkpoint(tmp_path))


def _older_checkpoint(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"format": "scdeal-screen-model/1"}, path)
    return path


def test_settings_that_need_one_drugs_classes_are_refused(screened):
    cells, bulk, model, _ = screened
    with pytest.raises(InputError, match="mmd_class_mix estimated"):
        transfer(model, bulk, cells, cfg=TransferConfig(mmd_class_mix="estimated"), device=CPU)


def test_one_drug_of_a_panel_has_the_single_drug_view(screened):
    cells, _, _, result = screened
    view = result.drug(1)
    np.testing.assert_array_equal(view.prob, result.prob[:, 1])
    assert view.member_probs.shape == (2, cells.n_obs) and view.drug == result.drugs[1]
    features = view.cell_model.features(cells)
    with torch.no_grad():
        reported = view.cell_model.network()(features.batch(np.arange(features.n), CPU)).numpy()
    np.testing.assert_allclose(reported, view.prob, atol=1e-5)


def test_column_aurocs_skip_unmeasured_lines():
    rng = np.random.default_rng(0)
    y = (rng.random((80, 3)) < 0.3).astype(float)
    y[:20, 1] = np.nan
    y[:, 2] = 0.0
    scores = rng.normal(size=(80, 3)) + y * 1.5
    got = column_aurocs(y, scores)
    assert got[0] == pytest.approx(roc_auc_score(y[:, 0], scores[:, 0]))
    assert got[1] == pytest.approx(roc_auc_score(y[20:, 1], scores[20:, 1]))
    assert np.isnan(got[2])


def test_masked_loss_and_class_weights_ignore_unmeasured_pairs():
    label = torch.tensor([[1.0, float("nan")], [0.0, 1.0], [0.0, 0.0]])
    logits = torch.tensor([[2.0, 50.0], [-1.0, 0.5], [0.3, -0.2]])
    full = masked_bce(logits[:, :1], label[:, :1], torch.ones(1))
    assert full == pytest.approx(float(torch.nn.functional.binary_cross_entropy_with_logits(logits[:, 0], label[:, 0])))
    changed = logits.clone()
    changed[0, 1] = -50.0                       # the unmeasured pair does not count
    assert masked_bce(logits, label, torch.ones(2)) == masked_bce(changed, label, torch.ones(2))
    np.testing.assert_allclose(class_weight(label.numpy(), "weight"), [2.0, 1.0])


def unrelated_heads(n_drugs: int, width: int) -> Head:
    """A linear head whose drugs read orthogonal directions of the embedding (no bias): drugs unrelated to each
    other."""
    head = Head(width, (), dropout=0.0, n_out=n_drugs)
    torch.nn.init.orthogonal_(head.out.weight)
    torch.nn.init.zeros_(head.out.bias)
    return head


def drug_pull(n_drugs: int, seed: int, width: int = 512) -> float:
    """The norm of the transfer loss's gradient on the shared bulk and cell embeddings from `n_drugs` unrelated
    drugs with random labels, responses and anchors (the MMD and cluster terms held fixed)."""
    torch.manual_seed(seed)
    classifier, regressor = unrelated_heads(n_drugs, width), unrelated_heads(n_drugs, width)
    zb, zc = torch.randn(32, width, requires_grad=True), torch.randn(40, width, requires_grad=True)
    label, response = (torch.rand(32, n_drugs) > 0.5).float(), torch.randn(32, n_drugs)
    bulk_terms = response_terms(classifier, regressor, zb, label=label, response=response,
                                pos_weight=torch.ones(n_drugs), w_response=1.0)
    terms = {"mmd": torch.tensor(0.7), "cluster": torch.tensor(0.2),
             "anchor": anchor_loss(classifier(zc), torch.randn(40, n_drugs))}
    loss = transfer_loss(bulk_terms, terms, cfg=TransferConfig(), n_drugs=n_drugs, w_response=1.0)
    return float(torch.cat([g.flatten() for g in torch.autograd.grad(loss, [zb, zc])]).norm())


def test_the_drugs_pull_on_the_shared_encoder_keeps_its_size_as_the_panel_grows():
    """However many unrelated drugs a screen has, their pull on the shared embeddings stays the size of one
    drug's against the shared MMD and cluster terms. As a mean over drugs it would fall 16-fold at 256 drugs
    (the shared terms took over and PC9's erlotinib call went to chance); as a sum it would grow 16-fold."""
    one = np.mean([drug_pull(1, seed) for seed in range(4)])
    for n_drugs in (16, 256):
        ratio = np.mean([drug_pull(n_drugs, seed) for seed in range(4)]) / one
        assert 0.67 < ratio < 1.5, (n_drugs, ratio)
