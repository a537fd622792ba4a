"""Helpers every layer shares: settings declared with their help, batches, and gene positions."""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import field
from typing import Any

import numpy as np

__all__ = ["batch_slices", "gene_positions", "setting"]


def setting(default: Any, help_text: str, *, minimum: float | None = None, maximum: float | None = None,
            details: str | None = None) -> Any:
    """A configuration field with its command-line help: the step's flag and the pipeline parameter's
    definition (nextflow_schema.json) are generated from it. `default` is immutable (numbers, strings, tuples);
    `minimum` and `maximum` bound it (checked before anything runs); `details` extend the parameter's help page."""
    limits = {k: v for k, v in (("minimum", minimum), ("maximum", maximum), ("details", details)) if v is not None}
    return field(default=default, metadata={"help": help_text, **limits})


def batch_slices(n: int, size: int) -> Iterator[slice]:
    """Consecutive slices of at most `size` items covering `range(n)`: every batching loop uses these. Index an order
    with them (`order[s]`) for shuffled batches, or the data itself for blocks."""
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def gene_positions(names: Iterable, genes: Iterable) -> np.ndarray:
    """Position in `names` of each of `genes`, -1 where a gene is absent (one dictionary lookup each)."""
    position = {str(name): i for i, name in enumerate(names)}
    return np.array([position.get(str(gene), -1) for gene in genes], dtype=np.int64)
