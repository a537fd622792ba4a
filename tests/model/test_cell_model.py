"""The cell model: saved with a format tag, loaded from any path, and its network is the reported output."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import CPU
from scdeal.errors import InputError
from scdeal.model.cell_model import CellModel
from scdeal.model.transfer import TransferConfig, transfer


@pytest.fixture(scope="module")
def transferred(trained):
    bulk, model, cells = trained
    return transfer(model, bulk, cells, cfg=TransferConfig(epochs=3, n_ensemble=2), device=CPU).drug(0), cells


def reported_by_network(cell_model: CellModel, cells) -> np.ndarray:
    features = cell_model.features(cells)
    with torch.no_grad():
        return cell_model.network()(features.batch(np.arange(features.n), CPU)).numpy()


def test_the_network_computes_the_reported_probability(transferred):
    """Explanations attribute `prob_sensitive` itself: the calibrated mean over every member."""
    result, cells = transferred
    assert len(result.cell_model.members) == 2 and result.n_reset == 0
    np.testing.assert_allclose(reported_by_network(result.cell_model, cells), result.prob, atol=1e-5)


def test_saved_and_loaded_from_any_path(transferred, tmp_path):
    result, cells = transferred
    path = tmp_path / "elsewhere" / "cell_model.pt"
    result.cell_model.save(path, {"bulk_model": "bulk_model.pt"})
    loaded = CellModel.load(path)
    assert loaded.genes == result.cell_model.genes and loaded.latent_dim == result.cell_model.latent_dim
    np.testing.assert_array_equal(loaded.gene_mean, result.cell_model.gene_mean)
    np.testing.assert_array_equal(reported_by_network(loaded, cells), reported_by_network(result.cell_model, cells))


def test_a_bulk_checkpoint_is_not_a_cell_model(trained, tmp_path):
    from scdeal.model.training import save_checkpoint
    path = tmp_path / "bulk_model.pt"
    save_checkpoint(trained[1], path, {})
    with pytest.raises(InputError, match="not a scdeal cell model"):
        CellModel.load(path)


def test_cells_without_the_model_genes_are_a_clear_error(transferred):
    result, cells = transferred
    with pytest.raises(InputError, match="lack 10 genes of the cell model"):
        result.cell_model.features(cells[:, [g not in result.cell_model.genes[:10] for g in cells.var_names]].copy())


def test_a_member_reset_to_its_source_model_keeps_the_source_weights(trained, monkeypatch):
    """A reset member reports its source model's probabilities: its saved weights are that model's."""
    from scdeal.model import transfer as transfer_module
    bulk, model, cells = trained
    monkeypatch.setattr(transfer_module, "oriented_like", lambda *_: False)
    result = transfer(model, bulk, cells, cfg=TransferConfig(epochs=3, n_ensemble=1), device=CPU).drug(0)
    assert result.n_reset == 1
    np.testing.assert_array_equal(result.prob, result.direct_prob)
    np.testing.assert_allclose(reported_by_network(result.cell_model, cells), result.prob, atol=1e-5)
