"""Integrated gradients on the cell model: the hidden-space quadrature equals brute-force integrated gradients in
gene space, planted genes come out on top, attributions are complete."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from conftest import CPU
from scdeal.data.features import CellFeatures
from scdeal.model.cell_model import EnsembleProbability
from scdeal.model.networks import Encoder, Head
from scdeal.model.transfer import TransferConfig, transfer
from scdeal.tl.explain import gauss_legendre, integrated_gradients, overlap_with_de, signature_genes


def random_ensemble(n_genes: int, predictor_hidden: tuple[int, ...], seed: int = 0) -> EnsembleProbability:
    """Three random members with non-trivial calibrations; weights scaled up so the path crosses many ReLU kinks."""
    torch.manual_seed(seed)
    encoders = [Encoder(n_genes, (16, 8), 6, dropout=0.0, variational=kind == "vae") for kind in ("ae", "vae", "ae")]
    predictors = [Head(6, predictor_hidden, dropout=0.0) for _ in encoders]
    with torch.no_grad():
        for module in [*encoders, *predictors]:
            for param in module.parameters():
                param.mul_(3.0)
    calibrations = [{"slope": 1.7, "intercept": -0.4}, {"slope": 0.6, "intercept": 0.9}, {"slope": 2.5, "intercept": 0.1}]
    return EnsembleProbability(encoders, predictors, calibrations).eval()


def brute_force_ig(net: EnsembleProbability, x: np.ndarray, n_steps: int) -> np.ndarray:
    """Textbook integrated gradients from the zero baseline, in float64: the gradient with respect to the genes at
    α·x for each Gauss–Legendre point α on [0, 1], averaged with the quadrature weights, times x."""
    net = copy.deepcopy(net).double()
    nodes, weights = np.polynomial.legendre.leggauss(n_steps)
    xt = torch.from_numpy(x).double()
    total = torch.zeros_like(xt)
    for alpha, weight in zip((nodes + 1) / 2, weights / 2, strict=True):
        point = (alpha * xt).requires_grad_()
        total += weight * torch.autograd.grad(net(point).sum(), point)[0]
    return (total * xt).numpy()


def test_gauss_legendre_on_unit_interval():
    alphas, weights = gauss_legendre(5)
    assert np.all((alphas > 0) & (alphas < 1)) and np.isclose(weights.sum(), 1.0)
    assert np.isclose((weights * alphas ** 4).sum(), 1 / 5)      # exact for polynomials of degree < 2 · 5


@pytest.mark.parametrize("predictor_hidden", [(8,), ()])
def test_matches_brute_force_integrated_gradients(predictor_hidden):
    """Same attributions as gradients taken in gene space along the path, at the same quadrature points; deltas are
    the completeness gaps; batching changes nothing."""
    n_genes, n_steps = 40, 16
    net = random_ensemble(n_genes, predictor_hidden)
    rng = np.random.default_rng(1)
    features = CellFeatures(rng.normal(size=(23, n_genes)) * rng.uniform(0.5, 3, size=(23, 1)), np.arange(n_genes),
                            stats=(np.zeros(n_genes, np.float32), np.ones(n_genes, np.float32)))
    x = features.numpy(slice(None))
    attr, delta, effect = integrated_gradients(net, features, CPU, n_steps=n_steps, batch_size=7)
    expected = brute_force_ig(net, x.astype(np.float64), n_steps)
    assert attr.dtype == np.float32 and attr.shape == x.shape and delta.shape == (len(x),)
    assert np.abs(expected).max() > 0.01                          # attributions are far from vanishing
    np.testing.assert_allclose(attr, expected, rtol=0, atol=1e-5)
    with torch.no_grad():
        gap = (net(torch.from_numpy(x)) - net(torch.zeros(1, n_genes))).numpy()
    np.testing.assert_allclose(delta, expected.sum(1) - gap, rtol=0, atol=1e-5)
    np.testing.assert_allclose(effect, (attr * np.sign(x)).mean(0), rtol=1e-5, atol=1e-7)
    # completeness: with enough points (the path crosses many ReLU kinks) attributions add up to F(x) − F(0)
    attr, delta, _ = integrated_gradients(net, features, CPU, n_steps=128, batch_size=64)
    np.testing.assert_allclose(delta, attr.sum(1) - gap, rtol=0, atol=1e-5)
    assert np.abs(delta).max() < 0.01 < np.abs(gap).max()


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
