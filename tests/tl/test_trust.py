"""The trust diagnostic's verdicts."""
from __future__ import annotations

import numpy as np
import pytest

from scdeal.tl.trust import trust_diagnostic


def _members(rng, flip_one=False, noise=0.05):
    base = rng.random(300)
    members = np.vstack([base + rng.normal(scale=noise, size=300) for _ in range(3)])
    if flip_one:
        members[1] = 1 - members[1]
    return members


@pytest.mark.parametrize(("case", "expected"), [
    ({}, "consistent"),
    ({"bulk_val_auroc": 0.55}, "weak_bulk_evidence"),
    ({"flip_one": True}, "unstable"),
    ({"noise": 0.3}, "unstable"),   # same direction, but ranked too differently to hold across seeds
    ({"n_reset": 2}, "unstable"),
    ({"baseline_reversed": True}, "disputed"),
])
def test_trust_verdicts(case, expected):
    rng = np.random.default_rng(1)
    members = _members(rng, case.get("flip_one", False), case.get("noise", 0.05))
    direct = members[0] + rng.normal(scale=0.05, size=300)
    baseline = -direct if case.get("baseline_reversed") else direct
    diagnostic = trust_diagnostic(members, direct, baseline, bulk_val_auroc=case.get("bulk_val_auroc", 0.85),
                                  n_reset=case.get("n_reset", 0))
    assert diagnostic["verdict"] == expected
    assert diagnostic["advice"] and diagnostic["n_members"] == 3


def test_members_mean_agreement_is_reported_beside_the_lowest():
    rng = np.random.default_rng(2)
    members = _members(rng, noise=0.3)
    diagnostic = trust_diagnostic(members, members.mean(0), None, bulk_val_auroc=0.85, n_reset=0)
    assert 0 < diagnostic["members_lowest_spearman"] <= diagnostic["members_mean_spearman"] < 0.8
    assert diagnostic["members_sign_agreement"] == 1.0 and diagnostic["verdict"] == "unstable"
