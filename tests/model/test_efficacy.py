"""The efficacy model on data with a known answer: quantile matching, and AUC and LN_IC50 predicted from expression."""
from __future__ import annotations

import numpy as np

from scdeal.model.efficacy import fit_efficacy, match_quantiles
from scdeal.model.metrics import column_spearman


def test_a_profile_takes_the_reference_values_at_its_ranks_and_ties_share_their_mean():
    reference = np.array([-2.0, -1.0, 0.0, 1.0, 5.0])
    profile = np.array([[30.0, 0.0, 7.0, 0.0, 2.0]])   # ranks: 5th, tied 1st–2nd, 4th, tied, 3rd
    np.testing.assert_allclose(match_quantiles(profile, reference), [[5.0, -1.5, 1.0, -1.5, 0.0]])
    # any monotone rescaling of the profile gives the same
    np.testing.assert_allclose(match_quantiles(np.log1p(profile) * 3, reference), match_quantiles(profile, reference))


def test_auc_and_ln_ic50_are_predicted_on_held_out_lines():
    rng = np.random.default_rng(0)
    n_lines, n_genes, n_drugs = 300, 200, 4
    x = rng.normal(size=(n_lines, n_genes))
    weights = rng.normal(size=(n_genes, n_drugs)) * (rng.random((n_genes, n_drugs)) < 0.05)
    signal = x @ weights
    auc = 0.7 + 0.05 * signal + rng.normal(0, 0.02, signal.shape)
    ln_ic50 = 2.0 + 0.8 * signal + rng.normal(0, 0.3, signal.shape)
    ln_ic50[rng.random(ln_ic50.shape) < 0.2] = np.nan   # unmeasured pairs
    split = np.array(["train"] * 200 + ["val"] * 50 + ["test"] * 50)
    model = fit_efficacy(x, auc, split, drugs=list("ABCD"), genes=[f"g{i}" for i in range(n_genes)], members=2,
                         seed=0, ln_ic50=ln_ic50)
    test = split == "test"
    assert set(model.fits) == {"auc", "ln_ic50"}
    assert (column_spearman(auc[test], model.predict(x[test])) > 0.7).all()
    assert (column_spearman(ln_ic50[test], model.predict(x[test], response="ln_ic50")) > 0.7).all()
    assert model.predict(x[test], members=True, response="ln_ic50").shape == (3, 50, n_drugs)
    no_ic50 = fit_efficacy(x, auc, split, drugs=list("ABCD"), genes=[f"g{i}" for i in range(n_genes)], members=0,
                           seed=0)
    assert set(no_ic50.fits) == {"auc"}
