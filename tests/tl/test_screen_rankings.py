"""Drug rankings of a screen: per cluster and for the sample, with intervals, and unsupported drugs not ranked."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from scdeal.tl.screen import ScreenConfig, cluster_ranking, drug_trust, sample_ranking, wilson_interval

DRUGS = ["Alpha", "Beta", "Gamma"]
RATE = np.array([0.2, 0.2, 0.2])


def screen_probs():
    """Members × cells × drugs: cluster 0 (60 cells) responds to Alpha, cluster 1 (40 cells) to Beta; Gamma is
    high everywhere."""
    rng = np.random.default_rng(0)
    clusters = pd.Series(["0"] * 60 + ["1"] * 40)
    prob = np.column_stack([np.where(clusters == "0", 0.9, 0.1), np.where(clusters == "1", 0.8, 0.1),
                            np.full(100, 0.95)]) + rng.normal(0, 0.02, (100, 3))
    members = prob + rng.normal(0, 0.01, (3, 100, 3))
    return np.clip(members, 0.001, 0.999), clusters


def trust(gamma_auroc: float) -> pd.DataFrame:
    return pd.DataFrame({"drug": DRUGS, "bulk_val_auroc": [0.9, 0.8, gamma_auroc],
                         "verdict": ["consistent", "consistent", "weak_bulk_evidence"]})


def test_wilson_interval_matches_known_values():
    low, high = wilson_interval(np.array([0, 5, 10]), 10)
    np.testing.assert_allclose(low, [0.0, 0.2366, 0.7225], atol=1e-4)
    np.testing.assert_allclose(high, [0.2775, 0.7634, 1.0], atol=1e-4)


def test_sample_ranking_leaves_drugs_without_bulk_evidence_unranked_and_last():
    members, _ = screen_probs()
    ranking = sample_ranking(members, DRUGS, bulk_rate=RATE, trust=trust(0.55), config=ScreenConfig())
    assert ranking["drug"].tolist() == ["Alpha", "Beta", "Gamma"]      # Gamma has the highest mean but no evidence
    assert ranking["rank"].tolist()[:2] == [1, 2] and pd.isna(ranking["rank"].iloc[2])
    assert ranking["sensitive_fraction"].iloc[0] == pytest.approx(0.6)
    assert (ranking["sensitive_low"] <= ranking["sensitive_fraction"]).all()
    assert (ranking["sensitive_fraction"] <= ranking["sensitive_high"]).all()
    ranked_all = sample_ranking(members, DRUGS, bulk_rate=RATE, trust=trust(0.9), config=ScreenConfig())
    assert ranked_all["drug"].iloc[0] == "Gamma" and ranked_all["ranked"].all()


def test_drugs_are_ranked_by_lift_over_their_bulk_rate_not_by_raw_probability():
    """A drug that kills most lines has high probabilities everywhere; relative to its own rate it ranks low."""
    members, _ = screen_probs()
    ranking = sample_ranking(members, DRUGS, bulk_rate=np.array([0.2, 0.2, 0.9]), trust=trust(0.9),
                             config=ScreenConfig())
    assert ranking["drug"].tolist() == ["Alpha", "Beta", "Gamma"]
    assert ranking["lift"].iloc[0] == pytest.approx(ranking["mean_prob"].iloc[0] / 0.2)


def test_each_cluster_ranks_the_drug_that_hits_it_first():
    members, clusters = screen_probs()
    rankable = pd.Series([True, True, False], index=DRUGS)
    table = cluster_ranking(members, DRUGS, bulk_rate=RATE, clusters=clusters, rankable=rankable)
    first = table[table["rank"] == 1].set_index("cluster")["drug"]
    assert first.to_dict() == {"0": "Alpha", "1": "Beta"}
    beta_in_1 = table[(table["cluster"] == "1") & (table["drug"] == "Beta")].iloc[0]
    assert beta_in_1["n_cells"] == 40 and beta_in_1["sensitive_fraction"] == pytest.approx(1.0)


def screen_result(members: np.ndarray, signature: np.ndarray) -> SimpleNamespace:
    """What `drug_trust` reads of a screen's transfer result: DRUGS whose members agree, no member reset and
    strong bulk evidence for every drug."""
    n_members, _, n_drugs = members.shape
    return SimpleNamespace(drugs=DRUGS, member_probs=members, direct_prob=members.mean(0),
                           bulk_evidence=np.full(n_drugs, 0.9), reset=np.zeros((n_members, n_drugs), bool),
                           signature=signature)


def test_a_drug_whose_call_ranks_the_cells_against_its_bulk_signature_is_disputed():
    members, _ = screen_probs()
    signature = np.log(members.mean(0) / (1 - members.mean(0)))     # each drug's signature ranks the cells as its call
    signature[:, 1] *= -1                                             # Beta's bulk signature points the other way
    trust = drug_trust(screen_result(members, signature), ScreenConfig()).set_index("drug")
    # Gamma is high in every cell: its members order the cells by noise, which another seed would not repeat
    assert trust["verdict"].tolist() == ["consistent", "disputed", "unstable"]
    assert trust.loc["Alpha", "spearman_transfer_vs_signature"] > 0.9
    assert trust.loc["Beta", "spearman_transfer_vs_signature"] < -0.9
