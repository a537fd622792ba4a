"""Samplesheet validation: the same rules as assets/schema_input.json (nf-schema), plus the checks a
schema cannot express (duplicates, files that exist and can be read). All problems are reported at once."""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import InputErrors

COLUMNS = ("sample", "input", "drug", "species", "label_key")
REQUIRED = ("sample", "input", "drug")
SPECIES = ("human", "mouse")
# Kept identical to the patterns in assets/schema_input.json (a test checks it).
PATTERNS = {
    "sample": r"^\S+$",
    "input": r"^(\S+\.(h5ad|h5|csv|tsv|txt)(\.gz)?|(\S*/)?[^/.\s]+/?)$",
    "drug": r"^\S(.*\S)?$",
    "label_key": r"^\S+$",
}
MESSAGES = {
    "sample": "sample id must be given and contain no spaces",
    "input": "input must be a .h5ad, 10x .h5, 10x matrix directory or .csv/.tsv/.txt[.gz] matrix, without spaces",
    "drug": "drug must be given, without leading or trailing spaces",
    "species": "species must be 'human' or 'mouse'",
    "label_key": "label_key must be an obs column name without spaces",
}


@dataclass(frozen=True)
class Row:
    sample: str
    input: Path
    drug: str
    species: str
    label_key: str | None

    @property
    def drug_key(self) -> str:
        from .io import normalise_name
        return normalise_name(self.drug)


def read_rows(path: str | Path) -> tuple[list[str], list[dict[str, str]]]:
    path = Path(path)
    if not path.is_file():
        raise InputErrors([f"Samplesheet '{path}' does not exist."])
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip() for h in (reader.fieldnames or [])]
        rows = [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader]
    return header, rows


def row_problems(row: dict[str, str]) -> list[tuple[str, str]]:
    """(column, message) for every schema rule a row breaks: the rules of schema_input.json."""
    problems = []
    for col in REQUIRED:
        if not row.get(col):
            problems.append((col, f"{col} is required"))
    for col, pattern in PATTERNS.items():
        value = row.get(col)
        if value and not re.match(pattern, value):
            problems.append((col, MESSAGES[col]))
    if row.get("species") and row["species"] not in SPECIES:
        problems.append(("species", MESSAGES["species"]))
    for col in row:
        if col not in COLUMNS:
            problems.append((col, f"unknown column '{col}' (allowed: {', '.join(COLUMNS)})"))
    return problems


def validate_samplesheet(path: str | Path, check_files: bool = True) -> list[Row]:
    """Rows of a valid samplesheet; otherwise InputErrors listing every problem with row and column."""
    path = Path(path)
    header, raw = read_rows(path)
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
    rows, seen, inputs = [], {}, {}
    for number, values in enumerate(raw, start=2):  # line 1 is the header
        where = f"{path} line {number}"
        values = {k: v for k, v in values.items() if v}
        problems += [f"{where}, column '{col}': {msg}" for col, msg in row_problems(values)]
        if any(col in REQUIRED for col, _ in row_problems(values)):
            continue
        row = Row(values["sample"], resolve_input(values["input"], path), values["drug"],
                  values.get("species", "human"), values.get("label_key"))
        key = (row.sample, row.drug_key)
        if key in seen:
            problems.append(f"{where}: sample '{row.sample}' with drug '{row.drug}' repeats line {seen[key]}")
        seen.setdefault(key, number)
        first = inputs.setdefault(row.sample, (row.input, row.species, number))
        if (first[0], first[1]) != (row.input, row.species):
            problems.append(f"{where}: sample '{row.sample}' has another input or species than on line {first[2]}: "
                            "one sample id, one input file")
        if check_files:
            problems += [f"{where}, column 'input': {p}" for p in input_problems(row.input)]
        rows.append(row)
    if problems:
        raise InputErrors(problems)
    return rows


def resolve_input(value: str, samplesheet: Path) -> Path:
    """Relative input paths are read from the samplesheet's folder (as the Nextflow pipeline does)."""
    p = Path(value)
    return p if p.is_absolute() else (samplesheet.parent / p).resolve()


def input_problems(path: Path) -> list[str]:
    if not path.exists():
        return [f"'{path}' does not exist"]
    if path.is_dir():
        if not any((path / f).exists() for f in ("matrix.mtx", "matrix.mtx.gz")):
            return [f"directory '{path}' is not a 10x matrix directory (no matrix.mtx[.gz])"]
        return []
    if path.stat().st_size == 0:
        return [f"'{path}' is empty"]
    try:
        with open(path, "rb") as fh:
            fh.read(1)
    except OSError as err:
        return [f"'{path}' cannot be read: {err.strerror}"]
    return []
