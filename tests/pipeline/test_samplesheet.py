"""The Python validator and nf-schema's assets/schema_input.json give the same verdicts."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import ROOT
from scdeal.errors import InputErrors
from scdeal.pipeline.samplesheet import PATTERNS, SCREEN_DRUG_KEY, row_problems, validate_samplesheet

SCHEMA = json.loads((ROOT / "assets" / "schema_input.json").read_text())


def schema_accepts(row: dict[str, str]) -> bool:
    """nf-schema validates each row with empty cells left out."""
    present = {k: v for k, v in row.items() if v != ""}
    try:
        jsonschema.validate([present], SCHEMA)
        return True
    except jsonschema.ValidationError:
        return False


def python_accepts(row: dict[str, str]) -> bool:
    return not row_problems({k: v for k, v in row.items() if v != ""})


GOOD = {"sample": "s1", "input": "data/s1.h5ad", "drug": "Erlotinib", "species": "human", "label_key": "response"}
CASES = [
    ({}, True),
    ({"species": ""}, True),
    ({"label_key": ""}, True),
    ({"input": "data/filtered_feature_bc_matrix"}, True),
    ({"input": "counts.tsv.gz"}, True),
    ({"input": "sample.h5"}, True),
    ({"drug": "I-BET-762"}, True),
    ({"drug": "AR 42"}, True),
    ({"drug": "all", "label_key": ""}, True),  # a screen: every drug of the response tables
    ({"drug": "ALL", "label_key": ""}, True),
    ({"sample": "P1_T0.rep-2"}, True),
    ({"label_key": "response(erlotinib)"}, True),
    ({"sample": "has space"}, False),
    ({"sample": "a/b"}, False),  # names folders: no path separators
    ({"sample": "_inputs"}, False),  # a module's input folder
    ({"sample": "s1;rm"}, False),  # reaches shell commands
    ({"drug": "---"}, False),  # no letter or digit: no folder name
    ({"label_key": "it's"}, False),  # single-quoted in the evaluate command
    ({"sample": ""}, False),
    ({"input": ""}, False),
    ({"input": "cells.xlsx"}, False),
    ({"input": "my file.h5ad"}, False),
    ({"drug": ""}, False),
    ({"drug": " Erlotinib"}, False),
    ({"species": "rat"}, False),
    ({"species": "Human"}, False),
    ({"label_key": "my label"}, False),
    ({"extra": "x"}, False),
]


@pytest.mark.parametrize(("change", "valid"), CASES)
def test_schema_and_python_agree(change, valid):
    row = {**GOOD, **change}
    assert schema_accepts(row) is valid
    assert python_accepts(row) is valid


def test_patterns_are_the_schema_patterns():
    props = SCHEMA["items"]["properties"]
    for column, pattern in PATTERNS.items():
        assert props[column]["pattern"] == pattern
    assert SCHEMA["items"]["required"] == ["sample", "input", "drug"]
    assert all("errorMessage" in p for p in props.values())


@settings(max_examples=200, deadline=None)
@given(st.fixed_dictionaries({c: st.text(alphabet=st.sampled_from("ab /.-_ \tHumanmouse5h5ad';"), max_size=12)
                              for c in ("sample", "input", "drug", "species", "label_key")}))
def test_schema_and_python_agree_on_arbitrary_rows(row):
    assert schema_accepts(row) == python_accepts(row)


def write_sheet(path: Path, rows: list[dict], header=("sample", "input", "drug", "species", "label_key")):
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(header))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_all_problems_reported_at_once_with_line_and_column(tmp_path):
    (tmp_path / "a.h5ad").write_text("x")
    sheet = write_sheet(tmp_path / "s.csv", [
        {"sample": "a", "input": "a.h5ad", "drug": "X", "species": "", "label_key": ""},
        {"sample": "a", "input": "a.h5ad", "drug": "x", "species": "", "label_key": ""},
        {"sample": "b c", "input": "missing.h5ad", "drug": "X", "species": "dog", "label_key": ""},
        {"sample": "d", "input": "missing.h5ad", "drug": "X", "species": "", "label_key": ""},
    ])
    with pytest.raises(InputErrors) as err:
        validate_samplesheet(sheet)
    text = str(err.value)
    assert "line 3: sample 'a' with drug 'x' repeats line 2" in text
    assert "line 4, column 'sample'" in text and "line 4, column 'species'" in text
    assert "line 5, column 'input'" in text and "does not exist" in text


def test_missing_and_extra_columns_named(tmp_path):
    sheet = write_sheet(tmp_path / "s.csv", [{"sample": "a", "drug": "X", "batch": "1"}], header=("sample", "drug", "batch"))
    with pytest.raises(InputErrors, match=r"missing column\(s\) input") as err:
        validate_samplesheet(sheet)
    assert "unknown column(s) batch" in str(err.value)


def test_relative_inputs_are_read_from_the_samplesheet_folder(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.h5ad").write_text("x")
    sheet = write_sheet(tmp_path / "s.csv",
                        [{"sample": "a", "input": "data/a.h5ad", "drug": "X", "species": "", "label_key": ""}])
    rows = validate_samplesheet(sheet)
    assert rows[0].input == (tmp_path / "data" / "a.h5ad").resolve() and rows[0].species == "human"


def test_one_sample_one_input(tmp_path):
    for n in ("a.h5ad", "b.h5ad"):
        (tmp_path / n).write_text("x")
    sheet = write_sheet(tmp_path / "s.csv", [
        {"sample": "a", "input": "a.h5ad", "drug": "X", "species": "", "label_key": ""},
        {"sample": "a", "input": "b.h5ad", "drug": "Y", "species": "", "label_key": ""}])
    with pytest.raises(InputErrors, match=r"line 3: sample 'a' names input .* one sample id, one input"):
        validate_samplesheet(sheet)


def test_one_species_per_sample(tmp_path):
    (tmp_path / "a.h5ad").write_text("x")
    sheet = write_sheet(tmp_path / "s.csv", [
        {"sample": "a", "input": "a.h5ad", "drug": "X", "species": "", "label_key": ""},
        {"sample": "a", "input": "a.h5ad", "drug": "Y", "species": "mouse", "label_key": ""}])
    with pytest.raises(InputErrors, match="line 3: sample 'a' is species 'mouse' but 'human' on line 2: one species per sample"):
        validate_samplesheet(sheet)


@pytest.mark.parametrize(("first", "second"), [("Erlotinib", "erlotinib"), ("I-BET-762", "i.bet.762"), ("PLX4720", "PLX-4720")])
def test_drug_spellings_of_one_drug_are_one_key(tmp_path, first, second):
    """Two spellings of one drug would publish to one folder: the (sample, normalised drug) pair is the key."""
    (tmp_path / "a.h5ad").write_text("x")
    sheet = write_sheet(tmp_path / "s.csv", [
        {"sample": "a", "input": "a.h5ad", "drug": first, "species": "", "label_key": ""},
        {"sample": "a", "input": "a.h5ad", "drug": second, "species": "", "label_key": ""}])
    with pytest.raises(InputErrors, match=f"line 3: sample 'a' with drug '{second}' repeats line 2"):
        validate_samplesheet(sheet)


def test_relative_inputs_read_from_input_dir(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.h5ad").write_text("x")
    (tmp_path / "sheets").mkdir()
    sheet = write_sheet(tmp_path / "sheets" / "s.csv",
                        [{"sample": "a", "input": "a.h5ad", "drug": "X", "species": "", "label_key": ""}])
    rows = validate_samplesheet(sheet, input_dir=tmp_path / "data")
    assert rows[0].input == (tmp_path / "data" / "a.h5ad").resolve()


# ------------------------------------------------------------------ screens: drug `all`

def test_drug_all_screens_the_sample(tmp_path):
    (tmp_path / "a.h5ad").write_text("x")
    sheet = write_sheet(tmp_path / "s.csv", [
        {"sample": "a", "input": "a.h5ad", "drug": "All", "species": "", "label_key": ""},
        {"sample": "a", "input": "a.h5ad", "drug": "Erlotinib", "species": "", "label_key": "response"}])
    screen, single = validate_samplesheet(sheet)
    assert screen.screen and screen.drug_key == SCREEN_DRUG_KEY == "ALL"
    assert not single.screen and single.label_key == "response"


def test_a_label_key_on_a_screen_row_is_rejected_naming_the_row(tmp_path):
    (tmp_path / "a.h5ad").write_text("x")
    sheet = write_sheet(tmp_path / "s.csv", [
        {"sample": "a", "input": "a.h5ad", "drug": "Erlotinib", "species": "", "label_key": "response"},
        {"sample": "a", "input": "a.h5ad", "drug": "all", "species": "", "label_key": "response"}])
    with pytest.raises(InputErrors) as err:
        validate_samplesheet(sheet)
    assert (f"{sheet} line 3: sample 'a' with drug 'all' has label_key 'response': label_key needs a single drug; "
            "use a separate row per drug to evaluate") in str(err.value)
    assert "line 2" not in str(err.value)


def test_a_sample_is_screened_once(tmp_path):
    (tmp_path / "a.h5ad").write_text("x")
    sheet = write_sheet(tmp_path / "s.csv", [
        {"sample": "a", "input": "a.h5ad", "drug": "all", "species": "", "label_key": ""},
        {"sample": "a", "input": "a.h5ad", "drug": "ALL", "species": "", "label_key": ""}])
    with pytest.raises(InputErrors, match="line 3: sample 'a' with drug 'ALL' repeats line 2"):
        validate_samplesheet(sheet)
