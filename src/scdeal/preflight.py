"""Checks run before any heavy step: bulk tables, drugs, and what can be read cheaply from each sample."""
from __future__ import annotations

from pathlib import Path

import h5py

from .bulk import find_drug
from .errors import InputError, InputErrors
from .io import read_response, require_file
from .samplesheet import Row


def preflight(rows: list[Row], bulk_expression: str | None, bulk_response: str | None) -> None:
    """Collect every problem found, then raise them together."""
    problems = []
    for name, value in (("bulk_expression", bulk_expression), ("bulk_response", bulk_response)):
        if not value:
            problems.append(f"--{name} is required (a bulk {'expression table' if 'expr' in name else 'drug-response table'})")
        else:
            try:
                require_file(value, f"--{name}")
            except InputError as err:
                problems.append(str(err))
    if bulk_response and not problems:
        try:
            response = read_response(bulk_response)
            for drug in sorted({r.drug for r in rows}):
                try:
                    find_drug(response, drug)
                except InputError as err:
                    problems.append(str(err))
        except InputError as err:
            problems.append(str(err))
    for row in rows:
        if row.label_key and row.input.name.endswith(".h5ad"):
            columns = h5ad_obs_columns(row.input)
            if columns is not None and row.label_key not in columns:
                problems.append(f"sample '{row.sample}': label_key '{row.label_key}' is not an obs column of "
                                f"{row.input.name} (columns: {', '.join(columns[:10])})")
    if problems:
        raise InputErrors(problems)


def h5ad_obs_columns(path: Path) -> list[str] | None:
    """obs column names of an .h5ad without loading it (None if the file is not readable HDF5)."""
    try:
        with h5py.File(path, "r") as fh:
            obs = fh["obs"]
            order = obs.attrs.get("column-order")
            return [str(c) for c in order] if order is not None else [k for k in obs.keys() if k != "_index"]
    except (OSError, KeyError):
        return None
