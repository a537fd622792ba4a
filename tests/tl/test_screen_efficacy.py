"""The screen's efficacy on the simulator: a planted drug that kills one cluster ranks first there and nowhere else,
a drug that kills nothing ranks last, and the figures carry their uncertainty. Labels are never read."""
from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import scdeal.tl
from conftest import CPU
from scdeal.data import keys
from scdeal.data.bulkdata import BulkData
from scdeal.data.simulate import PANEL_DRUGS, SimParams, simulate_cluster_screen
from scdeal.data.singlecell import ClusterConfig
from scdeal.errors import InputError
from scdeal.model.efficacy import fit_efficacy
from scdeal.model.training import BulkConfig
from scdeal.model.transfer import TransferConfig
from scdeal.tl.screen import ScreenConfig, likeness, pseudo_bulk

KILLER, BROAD, NOTHING = PANEL_DRUGS
FAST_TRANSFER = TransferConfig(epochs=2, n_ensemble=2, source_epochs=3)
FAST_BULK = BulkConfig(ae_epochs=3, predictor_epochs=3)


@pytest.fixture(scope="module")
def panel(tmp_path_factory):
    """The simulated panel screened end to end: (cells, bulk lines, screen outcome)."""
    paths = simulate_cluster_screen(tmp_path_factory.mktemp("panel"), SimParams(n_lines=300, n_cells=450, effect=1.5,
                                                                                n_samples=1))
    bulk = BulkData.read(paths["bulk_expression"], [paths["bulk_auc"]])
    cells = scdeal.tl.cluster(ad.read_h5ad(paths["sample1"]), ClusterConfig(n_top_genes=300))
    outcome = scdeal.tl.screen(cells, bulk, config=FAST_TRANSFER, bulk_config=FAST_BULK, device=str(CPU))
    return cells, bulk, outcome


def killed_population(cells: ad.AnnData) -> pd.Series:
    """Per cluster: whether most of its cells are of population 0, the one the killer drug hits."""
    return pd.crosstab(cells.obs[keys.CLUSTER].astype(str), cells.obs["population"]).idxmax(axis=1) == "0"


def test_the_drug_that_kills_one_cluster_ranks_first_there_and_nowhere_else(panel):
    cells, _, outcome = panel
    first = outcome.cluster_ranking[outcome.cluster_ranking["rank"] == 1].set_index(keys.CLUSTER)["drug"]
    killed = killed_population(cells)
    assert killed.any() and (~killed).any()
    assert (first[killed[killed].index] == KILLER).all()
    assert (first[killed[~killed].index] == BROAD).all()
    hit = outcome.cluster_ranking[(outcome.cluster_ranking["drug"] == KILLER)].set_index(keys.CLUSTER)
    assert (hit.loc[killed[killed].index, "contrast"] > 0.2).all()   # it stands out against the rest of the sample
    assert (hit.loc[killed[~killed].index, "contrast"] < 0).all()


def test_the_drug_that_kills_nothing_ranks_last_for_the_sample_and_every_cluster(panel):
    _, _, outcome = panel
    assert outcome.ranking["drug"].iloc[-1] == NOTHING and outcome.ranking["ranked"].all()
    last = outcome.cluster_ranking.loc[outcome.cluster_ranking.groupby(keys.CLUSTER)["rank"].idxmax(), "drug"]
    assert set(last) == {NOTHING}
    nothing = outcome.ranking.set_index("drug").loc[NOTHING]
    assert nothing["efficacy"] < 0.15 and nothing["responding_fraction"] == 0


def test_the_sample_figure_weights_clusters_by_their_cells_and_carries_its_spread(panel):
    cells, _, outcome = panel
    eff = outcome.efficacy
    assert eff.auc.shape == (1 + 10, len(eff.clusters), 3) and eff.sizes.sum() == cells.n_obs
    row = outcome.ranking.set_index("drug").loc[KILLER]
    clusters = outcome.cluster_ranking[outcome.cluster_ranking["drug"] == KILLER]
    assert row["efficacy"] == pytest.approx(np.average(clusters["efficacy"], weights=clusters["n_cells"]), abs=1e-6)
    responding = clusters["auc"] < ScreenConfig().auc_threshold
    assert row["responding_fraction"] == pytest.approx(clusters.loc[responding, "n_cells"].sum() / cells.n_obs)
    assert (outcome.ranking["efficacy_sd"] > 0).all()
    assert cells.obsm[keys.SCREEN_AUC].shape == (cells.n_obs, 3)


def test_the_cells_predicted_auc_ranks_the_killed_population_first(panel):
    cells, _, _ = panel
    auc = cells.obsm[keys.SCREEN_AUC][KILLER].to_numpy()
    hit = (cells.obs["population"] == "0").to_numpy()
    assert auc[hit].mean() < auc[~hit].mean() - 0.1


def test_a_screen_without_any_measured_auc_is_refused_with_the_fix(panel):
    cells, bulk, _ = panel
    no_auc = BulkData(bulk.adata.copy(), bulk.drugs, bulk.labels, bulk.responses, bulk.strata)
    del no_auc.adata.obsm[keys.AUC]
    with pytest.raises(InputError, match=r"no AUC for any drug.*--bulk_response"):
        scdeal.tl.screen(cells.copy(), no_auc, config=FAST_TRANSFER, bulk_config=FAST_BULK, device=str(CPU))


PLANTED_AUC = {KILLER: (0.35, 0.95), BROAD: (0.6, 0.6), NOTHING: (0.97, 0.97)}   # (killed population, the others)


def test_the_clusters_predicted_auc_lies_near_the_planted_one(panel):
    """The absolute level: each cluster's pseudo-bulk (its counts summed, given the bulk lines' distribution) reads
    the AUC the simulation planted. The model's ridge shrinks a spared cluster towards the drug's mean over the lines
    (Clonicide 0.95 reads ~0.8)."""
    cells, _, outcome = panel
    killed = killed_population(cells)
    table = outcome.cluster_ranking.set_index([keys.CLUSTER, "drug"])["auc"]
    for cluster, hit in killed.items():
        for drug, (on_killed, on_others) in PLANTED_AUC.items():
            tolerance = 0.2 if (drug == KILLER and not hit) else 0.1
            assert table[(cluster, drug)] == pytest.approx(on_killed if hit else on_others, abs=tolerance)


def test_the_ranking_carries_the_drugs_typical_auc_and_the_predicted_ln_ic50(panel):
    _, bulk, outcome = panel
    row = outcome.ranking.set_index("drug")
    typical = np.nanmean(bulk.auc[bulk.split != "test"], 0)
    np.testing.assert_allclose(row.loc[bulk.drugs, "typical_auc"], typical, atol=1e-6)
    np.testing.assert_allclose(row["vs_typical"], row["typical_auc"] - row["auc"], atol=1e-9)
    assert row["ln_ic50"].isna().all()   # the panel measures AUC only


def test_a_pseudo_bulk_of_log_normalised_cells_sums_what_their_counts_sum():
    counts = sp.csr_matrix(np.random.default_rng(0).poisson(2.0, (30, 8)).astype(np.float32))
    codes = np.repeat(["a", "b", "c"], 10)
    with_counts = ad.AnnData(sp.csr_matrix(np.log1p(counts.toarray())), layers={"counts": counts})
    log_only = ad.AnnData(sp.csr_matrix(np.log1p(counts.toarray())))
    positions = np.arange(8)
    expected = np.vstack([counts.toarray()[codes == c].sum(0) for c in "abc"])
    np.testing.assert_allclose(pseudo_bulk(with_counts, positions, codes=codes, clusters=list("abc")), expected)
    np.testing.assert_allclose(pseudo_bulk(log_only, positions, codes=codes, clusters=list("abc")), expected, rtol=1e-5)


def test_a_bulk_line_is_like_a_bulk_line_and_a_shuffled_profile_is_not(panel):
    _, bulk, outcome = panel
    genes = bulk.genes
    model = fit_efficacy(bulk.expression(genes), bulk.auc, bulk.split, drugs=bulk.drugs, genes=genes, members=0,
                         seed=0, line_names=list(bulk.adata.obs_names))
    held_out = bulk.expression(genes)[bulk.split == "test"][:1]
    assert likeness(model, held_out).like_a_line
    shuffled = np.random.default_rng(0).permutation(held_out.ravel())[None, :]
    unlike = likeness(model, shuffled)
    assert not unlike.like_a_line and unlike.best < unlike.lines_low
    assert len(unlike.nearest) == 5 and all(name in set(bulk.adata.obs_names) for name, _ in unlike.nearest)
    assert outcome.efficacy.likeness.summary()["nearest_lines"]   # the screen records its sample's check
