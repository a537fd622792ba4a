"""Drug rankings of a screen: by efficacy (predicted AUC) per cluster and for the sample, with the spread over the
efficacy model's members, the transferred call beside it, and drugs without AUC not ranked."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from scdeal.tl.screen import Efficacy, Likeness, ScreenConfig, cluster_ranking, drug_trust, sample_ranking, wilson_interval

DRUGS = ["Alpha", "Beta", "Gamma"]
RATE = np.array([0.2, 0.2, 0.2])


def screen_probs():
    """Members × cells × drugs: cluster 0 (60 cells) is called sensitive to Alpha, cluster 1 (40 cells) to Beta;
    Gamma is high everywhere."""
    rng = np.random.default_rng(0)
    clusters = pd.Series(["0"] * 60 + ["1"] * 40)
    prob = np.column_stack([np.where(clusters == "0", 0.9, 0.1), np.where(clusters == "1", 0.8, 0.1),
                            np.full(100, 0.95)]) + rng.normal(0, 0.02, (100, 3))
    members = prob + rng.normal(0, 0.01, (3, 100, 3))
    return np.clip(members, 0.001, 0.999), clusters


def efficacy(auc: list[list[float]], *, members: int = 4, spread: float = 0.01) -> Efficacy:
    """Clusters 0 (60 cells) and 1 (40 cells) with the given predicted AUC (clusters × drugs) and `members`
    bootstrap members around it."""
    rng = np.random.default_rng(1)
    full = np.array(auc, float)
    stacked = np.concatenate([full[None], full + rng.normal(0, spread, (members, *full.shape))])
    return Efficacy(drugs=DRUGS, clusters=["0", "1"], sizes=np.array([60, 40]), auc=stacked,
                    ln_ic50=np.full_like(stacked, np.nan), cell_auc=np.zeros((100, 3)),
                    cell_ln_ic50=np.full((100, 3), np.nan), val_spearman=np.array([0.5, 0.4, 0.3]),
                    typical_auc=np.array([0.8, 0.8, 0.9]), threshold=0.8, alpha=1.0,
                    likeness=Likeness(best=0.6, lines_low=0.35, nearest=[("L1", 0.6)]))


def trust() -> pd.DataFrame:
    return pd.DataFrame({"drug": DRUGS, "bulk_val_auroc": [0.9, 0.8, 0.55],
                         "verdict": ["consistent", "consistent", "weak_bulk_evidence"]})


def test_wilson_interval_matches_known_values():
    low, high = wilson_interval(np.array([0, 5, 10]), 10)
    np.testing.assert_allclose(low, [0.0, 0.2366, 0.7225], atol=1e-4)
    np.testing.assert_allclose(high, [0.2775, 0.7634, 1.0], atol=1e-4)


def test_the_sample_ranks_by_efficacy_weighted_by_cluster_size_not_by_probability():
    """Gamma has the highest probability everywhere but kills little: efficacy puts it last."""
    members, _ = screen_probs()
    ranking = sample_ranking(members, efficacy([[0.3, 0.9, 0.85], [0.9, 0.4, 0.85]]), bulk_rate=RATE, trust=trust())
    assert ranking["drug"].tolist() == ["Alpha", "Beta", "Gamma"] and ranking["rank"].tolist() == [1, 2, 3]
    alpha = ranking.iloc[0]
    assert alpha["auc"] == pytest.approx(0.6 * 0.3 + 0.4 * 0.9) and alpha["efficacy"] == pytest.approx(1 - alpha["auc"])
    assert alpha["responding_fraction"] == pytest.approx(0.6)        # cluster 0's cells: AUC 0.3 < 0.8
    assert ranking.set_index("drug").loc["Gamma", "responding_fraction"] == 0
    assert (ranking["efficacy_sd"] > 0).all() and (ranking["efficacy_sd"] < 0.05).all()
    assert alpha["sensitive_fraction"] == pytest.approx(0.6) and alpha["verdict"] == "consistent"
    assert (ranking["sensitive_low"] <= ranking["sensitive_fraction"]).all()
    assert ranking.set_index("drug").loc["Gamma", "mean_prob"] > 0.9     # the call stays beside the efficacy


def test_a_drug_without_measured_auc_is_listed_last_and_not_ranked():
    members, _ = screen_probs()
    ranking = sample_ranking(members, efficacy([[0.3, np.nan, 0.85], [0.9, np.nan, 0.85]]), bulk_rate=RATE,
                             trust=trust())
    assert ranking["drug"].tolist() == ["Alpha", "Gamma", "Beta"]
    assert ranking["ranked"].tolist() == [True, True, False] and pd.isna(ranking["rank"].iloc[2])
    assert pd.isna(ranking["responding_fraction"].iloc[2])


def test_each_cluster_ranks_the_drug_that_hits_it_first_with_its_contrast_to_the_rest():
    members, clusters = screen_probs()
    table = cluster_ranking(members, efficacy([[0.3, 0.9, 0.85], [0.9, 0.4, 0.85]]), bulk_rate=RATE,
                            clusters=clusters)
    first = table[table["rank"] == 1].set_index("cluster")["drug"]
    assert first.to_dict() == {"0": "Alpha", "1": "Beta"}
    beta_in_1 = table[(table["cluster"] == "1") & (table["drug"] == "Beta")].iloc[0]
    assert beta_in_1["n_cells"] == 40 and beta_in_1["efficacy"] == pytest.approx(0.6)
    assert beta_in_1["contrast"] == pytest.approx(0.5)                # 0.6 here against 0.1 in cluster 0
    assert beta_in_1["responding_members"] == 1 and beta_in_1["sensitive_fraction"] == pytest.approx(1.0)
    gamma = table[table["drug"] == "Gamma"]
    assert (gamma["contrast"].abs() < 0.05).all() and (gamma["responding_members"] == 0).all()


def test_a_single_member_has_no_spread():
    members, clusters = screen_probs()
    one = efficacy([[0.3, 0.9, 0.85], [0.9, 0.4, 0.85]], members=0)
    assert (sample_ranking(members, one, bulk_rate=RATE, trust=trust())["efficacy_sd"] == 0).all()
    assert (cluster_ranking(members, one, bulk_rate=RATE, clusters=clusters)["contrast_sd"] == 0).all()


def screen_result(members: np.ndarray) -> SimpleNamespace:
    """What `drug_trust` reads of a screen's transfer result: DRUGS whose members agree, no member reset and
    strong bulk evidence for every drug."""
    n_members, _, n_drugs = members.shape
    return SimpleNamespace(drugs=DRUGS, member_probs=members, direct_prob=members.mean(0),
                           bulk_evidence=np.full(n_drugs, 0.9), reset=np.zeros((n_members, n_drugs), bool))


def test_a_drug_whose_call_ranks_the_cells_against_the_efficacy_model_is_disputed():
    members, _ = screen_probs()
    cell_auc = 1 - members.mean(0)           # the efficacy model ranks the cells as each call does …
    cell_auc[:, 1] = members.mean(0)[:, 1]   # … except Beta's: lower AUC where the call says resistant
    table = drug_trust(screen_result(members), ScreenConfig(), cell_auc).set_index("drug")
    # Gamma is high in every cell: its members order the cells by noise, which another seed would not repeat
    assert table["verdict"].tolist() == ["consistent", "disputed", "unstable"]
    assert table.loc["Alpha", "spearman_transfer_vs_linear"] > 0.9
    assert table.loc["Beta", "spearman_transfer_vs_linear"] < -0.9


def test_a_drug_without_auc_has_no_linear_reference_and_is_not_disputed():
    members, _ = screen_probs()
    cell_auc = members.mean(0).copy()        # every drug's reference points against its call …
    cell_auc[:, 0] = np.nan                  # … but Alpha has no AUC
    table = drug_trust(screen_result(members), ScreenConfig(), cell_auc).set_index("drug")
    assert np.isnan(table.loc["Alpha", "spearman_transfer_vs_linear"]) and table.loc["Alpha", "verdict"] == "consistent"
    assert table.loc["Beta", "verdict"] == "disputed"
