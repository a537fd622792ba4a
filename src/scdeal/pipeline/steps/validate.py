"""Step: read one sample whole and check it before any training (readable, finite values, cells and genes,
species, genes shared with the bulk table, label columns). A sample that fails exits with the data-error
status, which stops only that sample's pairs."""
from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path
from typing import get_args

from ...data.readers import bulk_axis_names
from ...data.species import Species
from ...errors import InputErrors
from ...model.transfer import TransferConfig
from ..preflight import check_sample, write_validation
from .common import step_main, step_parser

__all__ = ["NAME", "body", "build_parser", "main"]

NAME = "validate"
MIN_GENE_OVERLAP = next(f for f in fields(TransferConfig) if f.name == "min_gene_overlap")


def build_parser() -> argparse.ArgumentParser:
    """The step's flags: the sample, its label columns, the bulk table and the transfer's gene minimum."""
    p = step_parser("scdeal_validate.py", __doc__)
    p.add_argument("--input", required=True, help=".h5ad, 10x .h5, 10x matrix directory or .csv/.tsv[.gz] matrix")
    p.add_argument("--sample", required=True, help="sample id (names the output)")
    p.add_argument("--species", default="human", choices=get_args(Species), help="species the samplesheet declares")
    p.add_argument("--label_keys", default="", help="comma-separated obs columns the evaluation will read")
    p.add_argument("--bulk_expression", required=True, help="the bulk expression table the genes must share")
    p.add_argument("--min_gene_overlap", type=int, default=MIN_GENE_OVERLAP.default,
                   help=MIN_GENE_OVERLAP.metadata["help"])
    return p


def body(args: argparse.Namespace) -> None:
    """Check the sample; write <sample>.validation.json only when it passes."""
    check = check_sample(Path(args.input), sample=args.sample, species=args.species,
                         label_keys=[k for k in args.label_keys.split(",") if k],
                         bulk_genes=bulk_axis_names(args.bulk_expression), min_overlap=args.min_gene_overlap,
                         bulk_expression=args.bulk_expression)
    if not check.valid:
        raise InputErrors(check.problems)
    write_validation(Path(args.outdir), check, vars(args))


main = step_main(NAME, build_parser, body)  # main(argv=None) → the exit status (bin/, `scdeal STEP`)
