"""Labels and splits of bulk cell lines for one drug."""
from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from conftest import GENES, bulk_frame
from scdeal.data import readers
from scdeal.data.bulk import BulkPrepareConfig, binarize, drug_labels, find_drug, prepare_bulk
from scdeal.errors import InputError


@pytest.mark.parametrize("spelling", ["I-BET-762", "I.BET.762", "i-bet-762", "ibet762"])
def test_drug_names_match_however_written(spelling):
    table = pd.DataFrame({"line": ["A"], "drug": ["I.BET.762"], "value": [1.0], "kind": ["binary"]})
    assert find_drug(table, spelling) == "I.BET.762"


def test_unknown_drug_suggests_close_names():
    table = pd.DataFrame({"line": ["A"] * 2, "drug": ["ERLOTINIB", "GEFITINIB"], "value": [1.0] * 2, "kind": ["binary"] * 2})
    with pytest.raises(InputError, match="Did you mean ERLOTINIB"):
        find_drug(table, "erlotinb")


def test_binarize_rules_put_low_ic50_in_the_sensitive_class():
    values = pd.Series(np.arange(100, dtype=float))
    assert binarize(values, "quantile", sensitive_fraction=0.2).iloc[:20].all()
    assert binarize(values, "quantile", sensitive_fraction=0.2).sum() == 20
    assert binarize(values, "median").sum() == 50
    assert binarize(values, "zscore", zscore_cutoff=-1.0).iloc[0] == 1 and binarize(values, "zscore").iloc[-1] == 0


def test_prepare_bulk_matches_cosmic_ids_and_splits_stratified():
    expression = ad.AnnData(bulk_frame(60).to_numpy(np.float32), obs=pd.DataFrame(index=[f"Line-{i}" for i in range(60)]),
                            var=pd.DataFrame(index=GENES))
    cosmic = {str(1000 + i): readers.normalise_name(f"Line-{i}") for i in range(60)}
    labels = ["sensitive" if i % 3 == 0 else "resistant" for i in range(60)]
    response = pd.DataFrame({"line": [f"DATA.{1000 + i}" for i in range(60)], "drug": "X", "value":
                             [1.0 if lab == "sensitive" else 0.0 for lab in labels], "kind": "binary"})
    bulk = prepare_bulk(expression, response, "x", config=BulkPrepareConfig(min_lines_per_class=5), cosmic=cosmic)
    assert bulk.n_obs == 60
    for split in ("train", "val", "test"):
        part = bulk.obs[bulk.obs.split == split]
        assert 0.2 < part.label.mean() < 0.5


def test_prepare_bulk_rejects_a_class_too_small():
    expression = ad.AnnData(bulk_frame(30).to_numpy(np.float32), obs=pd.DataFrame(index=[f"L{i}" for i in range(30)]),
                            var=pd.DataFrame(index=GENES))
    response = pd.DataFrame({"line": [f"L{i}" for i in range(30)], "drug": "X", "value": [1.0] * 3 + [0.0] * 27,
                             "kind": "binary"})
    with pytest.raises(InputError, match="only 3 sensitive cell lines"):
        prepare_bulk(expression, response, "X")


def test_binary_calls_label_lines_and_continuous_releases_are_pooled_on_one_scale(tmp_path):
    wide, gdsc1, gdsc2 = tmp_path / "labels.csv", tmp_path / "gdsc1.csv", tmp_path / "gdsc2.csv"
    pd.DataFrame({"line": ["A", "B", "C"], "ERLOTINIB": ["sensitive", "resistant", "resistant"]}).to_csv(wide, index=False)
    # GDSC2 measures on another scale (x10 + 50); after z-scoring per file both rank A < B < C identically
    pd.DataFrame({"CELL_LINE_NAME": ["A", "B", "C", "D"], "DRUG_NAME": "Erlotinib",
                  "LN_IC50": [-1.0, 0.0, 1.0, 2.0]}).to_csv(gdsc1, index=False)
    pd.DataFrame({"CELL_LINE_NAME": ["A", "B", "C"], "DRUG_NAME": "Erlotinib",
                  "LN_IC50": [40.0, 50.0, 60.0]}).to_csv(gdsc2, index=False)
    response = readers.read_responses(f"{wide},{gdsc1}, {gdsc2}")
    assert set(response["source"]) == {"labels.csv", "gdsc1.csv", "gdsc2.csv"}
    labels, kind = drug_labels(response, "erlotinib", BulkPrepareConfig())
    assert kind == "binary+LN_IC50"
    assert list(labels.index) == ["A", "B", "C"]  # D has no binary call: not labelled
    assert labels["label"].tolist() == [1.0, 0.0, 0.0]
    z1 = (np.array([-1.0, 0.0, 1.0]) - 0.5) / np.std([-1.0, 0.0, 1.0, 2.0], ddof=1)
    z2 = np.array([-1.0, 0.0, 1.0])
    np.testing.assert_allclose(labels["response_z"], (z1 + z2) / 2, atol=1e-6)


def test_continuous_only_responses_are_binarised_from_the_pooled_score(tmp_path):
    rows = pd.DataFrame({"line": [f"L{i}" for i in range(10)], "drug": "AR-42", "value": np.arange(10.0),
                         "kind": "AUC", "source": "gdsc1_auc.csv"})
    labels, kind = drug_labels(rows, "AR-42", BulkPrepareConfig())
    assert kind == "AUC" and labels.loc[["L0", "L1"], "label"].eq(1).all() and labels["label"].sum() == 2
