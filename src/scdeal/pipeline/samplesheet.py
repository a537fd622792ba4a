"""Samplesheet validation: the same rules as assets/schema_input.json (nf-schema), plus the checks a
schema cannot express (duplicates, files that exist and can be read). All problems are reported at once."""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

from ..data.readers import normalise_name
from ..data.species import Species
from ..errors import InputErrors

__all__ = ["COLUMNS", "PATTERNS", "REQUIRED", "SCREEN_DRUG_KEY", "Row", "row_problems", "validate_samplesheet"]

COLUMNS = ("sample", "input", "drug", "species", "label_key")
REQUIRED = ("sample", "input", "drug")
SPECIES: tuple[str, ...] = get_args(Species)
# A row whose drug is `all` (any case: its normalised name is ALL) screens every drug of the response tables
# (isScreen in subworkflows/local/utils_nfcore_scdeal_pipeline; a test checks they agree)
SCREEN_DRUG_KEY = "ALL"
# Kept identical to the patterns in assets/schema_input.json (a test checks it).
# A sample id names folders and files and reaches shell commands: letters, digits, '.', '_', '-', starting
# with a letter or digit (so it is never a module's input folder, `_inputs/`).
PATTERNS = {
    "sample": r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
    "input": r"^(\S+\.(h5ad|h5|csv|tsv|txt)(\.gz)?|(\S*/)?[^/.\s]+/?)$",
    "drug": r"^(?=.*[A-Za-z0-9])\S(.*\S)?$",
    "label_key": r"^[^\s']+$",
}
SCREEN_LABEL_KEY = "label_key needs a single drug; use a separate row per drug to evaluate"
MESSAGES = {
    "sample": "sample id must start with a letter or digit and hold only letters, digits, '.', '_' and '-'",
    "input": "input must be a .h5ad, 10x .h5, 10x matrix directory or .csv/.tsv/.txt[.gz] matrix, without spaces",
    "drug": "drug must be given, with a letter or digit and without leading or trailing spaces",
    "species": "species must be 'human' or 'mouse'",
    "label_key": "label_key must be an obs column name without spaces or single quotes",
}


@dataclass(frozen=True)
class Row:
    """One valid samplesheet row: a (sample, drug) pair, or a sample screened against every drug (drug `all`)."""

    sample: str
    input: Path
    drug: str
    species: Species
    label_key: str | None

    @property
    def drug_key(self) -> str:
        """The normalised drug name that names output folders (`I-BET-762` → `IBET762`)."""
        return normalise_name(self.drug)

    @property
    def screen(self) -> bool:
        """Whether the row screens every drug of the response tables (drug `all`) rather than one drug."""
        return self.drug_key == SCREEN_DRUG_KEY


def row_problems(row: dict[str, str]) -> list[tuple[str, str]]:
    """(column, message) for every schema rule a row breaks: the rules of schema_input.json."""
    problems = [(col, f"{col} is required") for col in REQUIRED if not row.get(col)]
    problems += [(col, MESSAGES[col]) for col, pattern in PATTERNS.items() if row.get(col) and not re.match(pattern, row[col])]
    if row.get("species") and row["species"] not in SPECIES:
        problems.append(("species", MESSAGES["species"]))
    return problems + [(col, f"unknown column '{col}' (allowed: {', '.join(COLUMNS)})") for col in row if col not in COLUMNS]


def validate_samplesheet(path: str | Path, check_files: bool = True, input_dir: str | Path | None = None) -> list[Row]:
    """Rows of a valid samplesheet; otherwise InputErrors listing every problem with row and column.
    Relative inputs are read from `input_dir`, by default the samplesheet's folder."""
    path = Path(path)
    base = Path(input_dir) if input_dir else path.parent
    if not path.is_file():
        raise InputErrors([f"Samplesheet '{path}' does not exist."])
    with open(path, newline="") as fh:  # the header and the rows, values stripped
        reader = csv.DictReader(fh)
        header = [h.strip() for h in (reader.fieldnames or [])]
        raw = [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader]
    problems = []
    missing = [c for c in REQUIRED if c not in header]
    extra = [c for c in header if c not in COLUMNS]
    if missing:
        problems.append(f"{path}: missing column(s) {', '.join(missing)} (required: {', '.join(REQUIRED)})")
    if extra:
        problems.append(f"{path}: unknown column(s) {', '.join(extra)} (allowed: {', '.join(COLUMNS)})")
    if not raw:
        problems.append(f"{path}: no rows below the header")
    if problems:
        raise InputErrors(problems)
    rows = []
    for number, values in enumerate(raw, start=2):  # line 1 is the header
        where = f"{path} line {number}"
        values = {k: v for k, v in values.items() if v}
        broken = row_problems(values)
        problems += [f"{where}, column '{col}': {msg}" for col, msg in broken]
        if any(col in REQUIRED for col, _ in broken):
            continue
        path_in = Path(values["input"])  # a relative input is read from `base`, as under Nextflow
        row = Row(values["sample"], path_in if path_in.is_absolute() else (base / path_in).resolve(), values["drug"],
                  values.get("species", "human"), values.get("label_key"))
        if check_files:
            problems += [f"{where}, column 'input': {p}" for p in input_problems(row.input)]
        rows.append((number, row))
    problems += [f"{path} line {number}: {problem}" for number, problem in key_problems(rows)]
    if problems:
        raise InputErrors(problems)
    return [row for _, row in rows]


def key_problems(rows: list[tuple[int, Row]]) -> list[tuple[int, str]]:
    """(line, problem) for the rules beyond the schema, the same as the Nextflow pipeline's (samplesheetProblems
    in subworkflows/local/utils_nfcore_scdeal_pipeline): a (sample, normalised drug) pair appears once (a
    screen, drug `all`, counts as one pair), a sample has one input and one species, and a screen row has
    no label_key (the evaluation needs a single drug)."""
    problems, pairs, samples = [], {}, {}
    for number, row in rows:
        if row.screen and row.label_key:
            problems.append((number, f"sample '{row.sample}' with drug '{row.drug}' has label_key '{row.label_key}': "
                                     f"{SCREEN_LABEL_KEY}"))
        pair = (row.sample, row.drug_key)
        if pair in pairs:
            problems.append((number, f"sample '{row.sample}' with drug '{row.drug}' repeats line {pairs[pair]} "
                                     f"(drug names are compared as {row.drug_key})"))
        pairs.setdefault(pair, number)
        first_number, first = samples.setdefault(row.sample, (number, row))
        if first.input != row.input:
            problems.append((number, f"sample '{row.sample}' names input '{row.input}' but '{first.input}' on line "
                                     f"{first_number}: one sample id, one input"))
        if first.species != row.species:
            problems.append((number, f"sample '{row.sample}' is species '{row.species}' but '{first.species}' on line "
                                     f"{first_number}: one species per sample"))
    return problems


def input_problems(path: Path) -> list[str]:
    """Problems of a row's input path: missing, empty, unreadable, or a folder that is not 10x."""
    if not path.exists():
        return [f"'{path}' does not exist"]
    if path.is_dir():
        is_10x = any((path / f).exists() for f in ("matrix.mtx", "matrix.mtx.gz"))
        return [] if is_10x else [f"directory '{path}' is not a 10x matrix directory (no matrix.mtx[.gz])"]
    if path.stat().st_size == 0:
        return [f"'{path}' is empty"]
    try:
        with open(path, "rb") as fh:
            fh.read(1)
    except OSError as err:
        return [f"'{path}' cannot be read: {err.strerror}"]
    return []
