"""Step: bulk expression + drug response → one labelled, split AnnData for one drug."""
from __future__ import annotations

import argparse
from pathlib import Path

import anndata as ad
import pandas as pd

from ...data import keys
from ...data.bulk import BulkPrepareConfig, prepare_bulk
from ...data.readers import line_key, read_bulk_expression, read_cosmic_map, read_responses, response_paths
from ...data.writers import write_h5ad, write_json
from ..flags import config_from_args
from ..provenance import provenance
from ..report import bulk_lines_report_files
from .common import step_main, step_parser

__all__ = ["NAME", "add_bulk_table_flags", "body", "build_parser", "main", "read_bulk_tables"]

NAME = "bulk_prepare"


def build_parser() -> argparse.ArgumentParser:
    """The step's flags: its inputs, then one per field of BulkPrepareConfig."""
    p = step_parser("scdeal_bulk_prepare.py", __doc__, BulkPrepareConfig)
    add_bulk_table_flags(p)
    p.add_argument("--drug", required=True, help="drug name, however spelled (I-BET-762 = I.BET.762)")
    return p


def add_bulk_table_flags(p: argparse.ArgumentParser) -> None:
    """The bulk expression, response tables and COSMIC map flags (shared with the screen's preparation)."""
    p.add_argument("--bulk_expression", required=True, help="cell lines × genes (or transposed) CSV/TSV[.gz] or h5ad")
    p.add_argument("--bulk_response", required=True, nargs="+",
                   help="one or more response tables (space- or comma-separated): wide binary (one column per drug) "
                        "and/or GDSC long tables (CELL_LINE_NAME, DRUG_NAME, LN_IC50 or AUC; GDSC1 and GDSC2 "
                        "are pooled); a continuous measure also trains the auxiliary regression")
    p.add_argument("--cosmic_map", default=None, help="table with COSMIC_ID and SAMPLE_NAME to match COSMIC ids")


def read_bulk_tables(args: argparse.Namespace) -> tuple[pd.DataFrame, ad.AnnData, dict[str, str] | None]:
    """The response tables, the expression of the lines they name, and the COSMIC map (None without one)."""
    cosmic = read_cosmic_map(args.cosmic_map) if args.cosmic_map else None
    response = read_responses(args.bulk_response)
    expression = read_bulk_expression(args.bulk_expression, {line_key(x, cosmic) for x in response["line"].unique()})
    return response, expression, cosmic


def body(args: argparse.Namespace) -> None:
    """Read the tables, label and split the drug's lines, write bulk.h5ad and bulk_summary.json."""
    response, expression, cosmic = read_bulk_tables(args)
    bulk = prepare_bulk(expression, response, args.drug, config=config_from_args(BulkPrepareConfig, args),
                        cosmic=cosmic)
    out = Path(args.outdir)
    meta = provenance(NAME, vars(args), {"bulk_expression": args.bulk_expression,
                                       **{f"bulk_response_{i}": p for i, p in enumerate(response_paths(args.bulk_response))}})
    bulk.uns["provenance"] = {"created": meta["created"], "step": NAME}
    write_h5ad(out / "bulk.h5ad", bulk)
    counts = {f"{split}_{'sensitive' if label else 'resistant'}": int(n)
              for (split, label), n in bulk.obs.groupby([keys.SPLIT, keys.LABEL], observed=True).size().items()}
    write_json(out / "bulk_summary.json", {**bulk.uns[keys.BULK], "split_counts": counts, "provenance": meta})
    bulk_lines_report_files(out, args.drug, bulk=bulk)


main = step_main(NAME, build_parser, body)  # main(argv=None) → the exit status (bin/, `scdeal STEP`)
