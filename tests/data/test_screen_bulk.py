"""Bulk preparation of a drug screen: every drug labelled as a single-drug run labels it."""
from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from conftest import GENES, bulk_frame
from scdeal.data.bulk import BulkPrepareConfig, prepare_bulk
from scdeal.data.keys import SCREEN
from scdeal.data.screen import prepare_screen, read_drug_list, screen_drugs
from scdeal.errors import InputError

N = 60


def expression() -> ad.AnnData:
    return ad.AnnData(bulk_frame(N).to_numpy(np.float32), obs=pd.DataFrame(index=[f"Line-{i}" for i in range(N)]),
                      var=pd.DataFrame(index=GENES))


def responses() -> pd.DataFrame:
    """Binary calls for DRUGA on all lines, LN_IC50 for Drugb on the first 50, and Rarinib on only 8 lines."""
    rng = np.random.default_rng(1)
    binary = pd.DataFrame({"line": [f"Line-{i}" for i in range(N)], "drug": "DRUGA",
                           "value": (np.arange(N) % 3 == 0).astype(float), "kind": "binary", "source": "labels.csv"})
    ic50 = pd.DataFrame({"line": [f"Line-{i}" for i in range(50)], "drug": "Drugb", "value": rng.normal(size=50),
                         "kind": "LN_IC50", "source": "gdsc2.csv"})
    rare = pd.DataFrame({"line": [f"Line-{i}" for i in range(8)], "drug": "Rarinib", "value": rng.normal(size=8),
                         "kind": "LN_IC50", "source": "gdsc2.csv"})
    return pd.concat([binary, ic50, rare], ignore_index=True)


def test_every_drug_is_labelled_as_a_single_drug_run_labels_it():
    screen = prepare_screen(expression(), responses(), config=BulkPrepareConfig(min_lines_per_class=5))
    drugs = screen.uns[SCREEN]["drugs"]
    assert drugs == ["DRUGA", "Drugb"]
    for d, drug in enumerate(drugs):
        single = prepare_bulk(expression(), responses(), drug, config=BulkPrepareConfig(min_lines_per_class=5))
        column = pd.Series(screen.obsm["label"][:, d], index=screen.obs_names).dropna()
        pd.testing.assert_series_equal(column.sort_index(), single.obs["label"].astype(np.float32).sort_index(),
                                       check_names=False)


def test_unmeasured_pairs_are_missing_and_rare_drugs_are_left_out_with_the_reason():
    screen = prepare_screen(expression(), responses(), config=BulkPrepareConfig(min_lines_per_class=5))
    info = screen.uns[SCREEN]
    assert "Rarinib" in info["dropped"] and "sensitive" in info["dropped"]["Rarinib"]
    assert np.isnan(screen.obsm["label"][:, 1]).sum() == 10          # Drugb is measured on 50 of 60 lines
    assert np.isnan(screen.obsm["response_z"][:, 0]).all()           # DRUGA has binary calls only
    assert info["n_lines"] == [60, 50] and info["response_kind"] == ["binary", "LN_IC50"]
    assert set(screen.obs["split"]) == {"train", "val", "test"}


def test_measured_auc_is_kept_as_measured_averaged_over_the_tables():
    """The efficacy model learns AUC on its own scale: not z-scored, two releases averaged, NaN where unmeasured."""
    auc = pd.DataFrame({"line": ["Line-0", "Line-0", "Line-1"], "drug": "Drugb", "value": [0.4, 0.6, 0.9],
                        "kind": "AUC", "source": ["gdsc1.csv", "gdsc2.csv", "gdsc1.csv"]})
    screen = prepare_screen(expression(), pd.concat([responses(), auc], ignore_index=True),
                            config=BulkPrepareConfig(min_lines_per_class=5))
    measured = pd.DataFrame(screen.obsm["auc"], index=screen.obs_names, columns=screen.uns[SCREEN]["drugs"])
    assert measured.loc["LINE0", "Drugb"] == pytest.approx(0.5) and measured.loc["LINE1", "Drugb"] == pytest.approx(0.9)
    assert measured["Drugb"].notna().sum() == 2 and measured["DRUGA"].isna().all()
    assert np.isnan(prepare_screen(expression(), responses(), config=BulkPrepareConfig(min_lines_per_class=5))
                    .obsm["auc"]).all()


def test_a_drug_list_restricts_the_screen_and_unknown_names_are_errors(tmp_path):
    listing = tmp_path / "drugs.txt"
    listing.write_text("# my panel\n\ndrug-b\n")
    assert read_drug_list(listing) == ["drug-b"]
    screen = prepare_screen(expression(), responses(), drugs=read_drug_list(listing),
                            config=BulkPrepareConfig(min_lines_per_class=5))
    assert screen.uns[SCREEN]["drugs"] == ["Drugb"]
    with pytest.raises(InputError, match="Did you mean DRUGA"):
        prepare_screen(expression(), responses(), drugs=["druga1"])
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(InputError, match="names no drug"):
        read_drug_list(tmp_path / "empty.txt")


def test_spellings_of_one_drug_become_one_column_named_the_readable_way():
    table = pd.DataFrame({"line": ["A", "B"], "drug": ["ERLOTINIB", "Erlotinib"], "value": [1.0, 2.0],
                          "kind": ["binary", "LN_IC50"]})
    assert screen_drugs(table, None) == {"ERLOTINIB": "Erlotinib"}


def test_no_drug_with_both_classes_is_an_error():
    with pytest.raises(InputError, match="No drug of the screen"):
        prepare_screen(expression(), responses(), config=BulkPrepareConfig(min_lines_per_class=40))
