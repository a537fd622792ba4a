"""Integrated gradients on the cell model: planted genes come out on top, attributions are complete."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import CPU
from scdeal.model.transfer import TransferConfig, transfer
from scdeal.tl.explain import integrated_gradients, overlap_with_de, signature_genes


def explained(trained):
    bulk, model, cells = trained
    result = transfer(model, bulk, cells, cfg=TransferConfig(epochs=10, n_ensemble=1), device=CPU).drug(0)
    cell_model = result.cell_model
    return cell_model.network(), cell_model.features(cells), cell_model.genes


def test_planted_genes_lead_each_direction(trained):
    net, features, genes = explained(trained)
    attr, _delta, effect = integrated_gradients(net, features, CPU, n_steps=32, batch_size=128)
    sig = signature_genes(attr, effect, genes, top=20)
    top_sens = sig[sig.direction == "sensitive"].head(10)["gene"]
    top_res = sig[sig.direction == "resistant"].head(10)["gene"]
    assert top_sens.str.startswith("SENS_").mean() >= 0.8
    assert top_res.str.startswith("RES_").mean() >= 0.8


@pytest.mark.slow
def test_attributions_are_complete(trained):
    """Sum of attributions = f(x) − f(baseline), within the reported convergence delta."""
    net, features, _genes = explained(trained)
    attr, delta, _ = integrated_gradients(net, features, CPU, n_steps=64, batch_size=64)
    x = features.batch(np.arange(features.n), CPU)
    with torch.no_grad():
        gap = (net(x) - net(torch.zeros_like(x))).numpy()
    np.testing.assert_allclose(attr.sum(1), gap, atol=0.02)
    assert np.abs(delta).mean() < 0.02


def test_overlap_with_de_counts_and_tests():
    import pandas as pd
    sig = pd.DataFrame({"gene": list("abcdefghij"), "mean_abs_attribution": np.arange(10, 0, -1)})
    out = overlap_with_de(sig, list("abcxyz"), universe=1000, top=5)
    assert out["overlap"] == 3 and out["hypergeom_p"] < 1e-4
