"""Checks run before any heavy step, reporting every problem at once: bulk tables, drugs, and what
can be read cheaply from each sample (names, species, genes shared with the bulk data, labels).
h5ad samples are checked here from their obs/var alone; other formats are checked when first read."""
from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import anndata as ad
import pandas as pd

from ..data.bulk import BulkPrepareConfig, prepare_bulk
from ..data.readers import (
    gene_symbols,
    line_key,
    name_problems,
    read_bulk_expression,
    read_cosmic_map,
    read_responses,
    require_file,
    response_paths,
)
from ..data.species import one_to_one_orthologs, species_mismatch
from ..errors import InputError, InputErrors
from ..tl.evaluate import truth_from_labels
from .samplesheet import Row

__all__ = ["bulk_problems", "drug_problems", "label_problems", "preflight", "sample_problems"]


def preflight(rows: list[Row], params: dict) -> None:
    """Every problem of the samplesheet's samples and the bulk tables, raised together."""
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
    min_gene_overlap = params["min_gene_overlap"]
    for row in {r.sample: r for r in rows}.values():
        if row.input.name.endswith(".h5ad"):
            problems += sample_problems(row, bulk_genes, min_overlap=min_gene_overlap, bulk_expression=bulk_expression)
    for row in rows:
        if row.label_key and row.input.name.endswith(".h5ad"):
            problems += label_problems(row)
    if problems:
        raise InputErrors(problems)


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


def backed(path: Path) -> ad.AnnData | None:
    """An .h5ad opened backed (obs and var only in memory), or None when it cannot be read."""
    try:
        return ad.read_h5ad(path, backed="r")
    except (OSError, KeyError, ValueError):
        return None


def sample_problems(row: Row, bulk_genes: set[str] | None, *, min_overlap: int, bulk_expression: str) -> list[str]:
    """Problems of one .h5ad sample read from its obs and var: names, species, genes shared with the bulk data."""
    where = f"sample '{row.sample}' ({row.input.name})"
    adata = backed(row.input)
    if adata is None:
        return [f"{where}: not a readable .h5ad file"]
    if adata.n_obs == 0 or adata.n_vars == 0:
        return [f"{where} is empty ({adata.n_obs} cells × {adata.n_vars} genes)"]
    genes = gene_symbols(adata)
    problems = name_problems(genes, adata.obs_names, where)
    mismatch = species_mismatch(genes, row.species, where)
    if mismatch:
        problems.append(mismatch)
    elif bulk_genes is not None and not problems:
        named = [one_to_one_orthologs().get(g) for g in genes] if row.species == "mouse" else list(genes)
        shared = len(bulk_genes & {g for g in named if g})
        if shared < min_overlap:
            problems.append(f"{where} shares only {shared} genes with the bulk expression table '{bulk_expression}' (minimum "
                            f"{min_overlap}): check that genes are HGNC symbols and the species is right")
    return problems


def label_problems(row: Row) -> list[str]:
    """Problems of a row's label column: absent, or not sensitive/resistant with both classes."""
    adata = backed(row.input)
    if adata is None:
        return []
    if row.label_key not in adata.obs:
        return [f"sample '{row.sample}': label_key '{row.label_key}' is not an obs column of {row.input.name} "
                f"(columns: {', '.join(map(str, adata.obs.columns[:10]))})"]
    try:
        truth_from_labels(adata.obs[row.label_key], row.label_key)
    except InputError as err:
        return [f"sample '{row.sample}', drug '{row.drug}': {err}"]
    return []
