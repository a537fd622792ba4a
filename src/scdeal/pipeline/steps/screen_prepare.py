"""Step: bulk expression + every drug's response → one multi-drug AnnData of cell lines for a screen."""
from __future__ import annotations

import argparse
from pathlib import Path

from ...data import keys
from ...data.bulk import BulkPrepareConfig
from ...data.readers import response_paths
from ...data.screen import prepare_screen, read_drug_list
from ...data.writers import write_h5ad, write_json
from ..flags import config_from_args
from ..provenance import provenance
from .bulk_prepare import add_bulk_table_flags, read_bulk_tables
from .common import step_main, step_parser

__all__ = ["NAME", "body", "build_parser", "main"]

NAME = "screen_prepare"


def build_parser() -> argparse.ArgumentParser:
    """The step's flags: its inputs, then one per field of BulkPrepareConfig (each drug is labelled as a
    single-drug run labels it)."""
    p = step_parser("scdeal_screen_prepare.py", __doc__, BulkPrepareConfig)
    add_bulk_table_flags(p)
    p.add_argument("--drugs", default=None,
                   help="text file, one drug name per line: screen only these (default: every drug of the tables)")
    return p


def body(args: argparse.Namespace) -> None:
    """Read the tables, label every drug, split the lines; write screen_bulk.h5ad and screen_bulk_summary.json."""
    response, expression, cosmic = read_bulk_tables(args)
    bulk = prepare_screen(expression, response, drugs=read_drug_list(args.drugs) if args.drugs else None,
                          config=config_from_args(BulkPrepareConfig, args), cosmic=cosmic)
    inputs = {"bulk_expression": args.bulk_expression,
              **{f"bulk_response_{i}": p for i, p in enumerate(response_paths(args.bulk_response))},
              **({"drugs": args.drugs} if args.drugs else {})}
    meta = provenance(NAME, vars(args), inputs)
    bulk.uns["provenance"] = {"created": meta["created"], "step": NAME}
    out = Path(args.outdir)
    write_h5ad(out / "screen_bulk.h5ad", bulk)
    write_json(out / "screen_bulk_summary.json", {**bulk.uns[keys.SCREEN], "n_drugs": len(bulk.uns[keys.SCREEN]["drugs"]),
                                                  "provenance": meta})


main = step_main(NAME, build_parser, body)  # main(argv=None) → the exit status (bin/, `scdeal STEP`)
