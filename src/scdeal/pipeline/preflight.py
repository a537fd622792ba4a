"""Checks run before any training, reporting every problem at once. The run's own inputs (bulk tables, drugs, the
screen's panel) stop the whole run when wrong. Each sample's matrix is read whole and checked (readable, finite, cells
and genes present, species, genes shared with the bulk table, label columns): a sample that fails stops only its own
(sample, drug) pairs, as the pipeline's validation step does under Nextflow (steps/validate.py calls the same
checks)."""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

import pandas as pd

from ..data.bulk import BulkPrepareConfig, prepare_bulk
from ..data.readers import (
    line_key,
    read_bulk_expression,
    read_cosmic_map,
    read_responses,
    read_single_cell,
    require_file,
    response_paths,
)
from ..data.species import Species, one_to_one_orthologs, species_mismatch
from ..data.writers import write_json
from ..errors import InputError, InputErrors
from ..tl.evaluate import truth_from_labels
from .provenance import provenance
from .samplesheet import Row

__all__ = ["SampleCheck", "bulk_problems", "check_sample", "drug_problems", "preflight", "write_validation"]


@dataclass
class SampleCheck:
    """What the content check of one sample found: its problems (none: valid) and a summary of the matrix."""

    sample: str
    problems: list[str] = field(default_factory=list)
    summary: dict = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        """Whether the sample passed: its pairs run."""
        return not self.problems


def preflight(rows: list[Row], params: dict) -> dict[str, SampleCheck]:
    """Every sample's content check, by sample. Raises the run's own problems, together with the samples'
    problems, when the run cannot go on: a bulk table or drug is wrong, or no sample is valid."""
    bulk_expression, bulk_response = params.get("bulk_expression"), params.get("bulk_response")
    problems, response = bulk_problems(bulk_expression, bulk_response)
    if params.get("drugs"):
        try:
            require_file(params["drugs"], "--drugs")
        except InputError as err:
            problems.append(str(err))
    bulk_genes = None
    if response is not None:
        cosmic = read_cosmic_map(params["cosmic_map"]) if params.get("cosmic_map") else None
        expression = read_bulk_expression(bulk_expression, {line_key(x, cosmic) for x in response["line"].unique()})
        bulk_genes = set(expression.var_names)
        problems += drug_problems(rows, expression, response, cosmic=cosmic, params=params)
    checks = {row.sample: check_sample(row.input, sample=row.sample, species=row.species,
                                       label_keys=sorted({r.label_key for r in rows if r.sample == row.sample and r.label_key}),
                                       bulk_genes=bulk_genes, min_overlap=params["min_gene_overlap"],
                                       bulk_expression=bulk_expression)
              for row in {r.sample: r for r in rows}.values()}
    if problems or not any(check.valid for check in checks.values()):
        raise InputErrors(problems + [p for check in checks.values() for p in check.problems])
    return checks


def bulk_problems(bulk_expression: str | None, bulk_response: str | None) -> tuple[list[str], pd.DataFrame | None]:
    """Problems with the bulk files, and the response table when both files are usable."""
    problems = []
    for name, value, what in (("bulk_expression", bulk_expression, "an expression table"),
                              ("bulk_response", bulk_response, "one or more drug-response tables")):
        if not value:
            problems.append(f"--{name} is required ({what})")
            continue
        for path in response_paths(value):
            try:
                require_file(path, f"--{name}")
            except InputError as err:
                problems.append(str(err))
    if problems:
        return problems, None
    try:
        return [], read_responses(bulk_response)
    except InputError as err:
        return [str(err)], None


def drug_problems(rows: list[Row], expression, response, *, cosmic, params: dict) -> list[str]:
    """Per drug: it is in the response table, the two tables' cell lines match, each class has enough lines.
    A screen (drug `all`) is checked by its own step, which reads every drug."""
    config = BulkPrepareConfig(**{f.name: params[f.name] for f in fields(BulkPrepareConfig)})
    problems = []
    for drug in sorted({r.drug_key: r.drug for r in rows if not r.screen}.values()):
        try:
            prepare_bulk(expression, response, drug, config=config, cosmic=cosmic)
        except InputError as err:
            problems.append(str(err))
    return problems


def check_sample(path: Path, *, sample: str, species: Species, label_keys: list[str], bulk_genes: set[str] | None,
                 min_overlap: int, bulk_expression: str | None) -> SampleCheck:
    """Read one sample whole and check it: readable, finite, cells and genes present, gene names (symbols,
    unique, of the declared species), at least `min_overlap` genes shared with the bulk table, and each label
    column present with sensitive/resistant values of both classes."""
    where = f"sample '{sample}' ({path})"
    try:
        adata = read_single_cell(path)
    except InputError as err:
        return SampleCheck(sample, [f"sample '{sample}': {err}"])
    mismatch = species_mismatch(adata.var_names, species, where)
    if mismatch:
        return SampleCheck(sample, [mismatch])
    named = [one_to_one_orthologs().get(g) for g in adata.var_names] if species == "mouse" else list(adata.var_names)
    shared = len(bulk_genes & {g for g in named if g}) if bulk_genes is not None else None
    problems = []
    if shared is not None and shared < min_overlap:
        problems.append(f"{where} shares only {shared} genes with the bulk expression table '{bulk_expression}' "
                        f"(minimum {min_overlap}): check that genes are HGNC symbols and the species is right")
    for key in label_keys:  # each label column present, sensitive/resistant with both classes
        if key not in adata.obs:
            problems.append(f"{where}: label_key '{key}' is not an obs column (columns: "
                            f"{', '.join(map(str, adata.obs.columns[:10])) or 'none'})")
            continue
        try:
            truth_from_labels(adata.obs[key], key)
        except InputError as err:
            problems.append(f"{where}: {err}")
    summary = {"sample": sample, "input": str(path), "species": species, "n_cells": int(adata.n_obs),
               "n_genes": int(adata.n_vars), "genes_shared_with_bulk": shared, "label_keys": label_keys}
    return SampleCheck(sample, problems, summary)


def write_validation(folder: Path, check: SampleCheck, params: dict) -> None:
    """<sample>.validation.json of a valid sample: the check's summary and what made it (the validation step's
    output, written the same way by the local runner's preflight)."""
    meta = provenance("validate", params, {"input": check.summary["input"]})
    write_json(folder / f"{check.sample}.validation.json", {**check.summary, "provenance": meta})
