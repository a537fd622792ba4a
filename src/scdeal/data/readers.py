"""Readers for the public formats: bulk expression and drug-response tables, single-cell matrices. Every reader turns
a format problem into an InputError that names the file and says what to do."""
from __future__ import annotations

import gzip
import logging
import re
from pathlib import Path
from typing import Literal

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import InputError

__all__ = ["Orientation", "bulk_axis_names", "check_single_cell", "gene_symbols", "line_key", "name_problems", "normalise_name",
           "read_bulk_expression", "read_cosmic_map", "read_h5ad_input", "read_response", "read_responses", "read_single_cell",
           "read_table", "read_text_matrix", "require_file", "response_paths", "text_separator"]

log = logging.getLogger(__name__)

Orientation = Literal["auto", "genes_x_cells", "cells_x_genes"]
TEXT_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".txt.gz")
GENE_HEADER_NAMES = {"gene", "genes", "gene_symbol", "symbol", "gene_name", "gene_id", "geneid", "id", ""}
BARCODE = re.compile(r"^([A-Za-z0-9]+[_:.-])?[ACGTN]{8,}([_.-]\d+)?$")
ENSEMBL = re.compile(r"^ENS[A-Z]*G\d{6,}(\.\d+)?$")


def normalise_name(name: object) -> str:
    """Cell-line or drug key: upper case, letters and digits only (`I-BET-762` == `i.bet.762`)."""
    return re.sub(r"[^A-Z0-9]", "", str(name).upper())


def require_file(path: str | Path, what: str) -> Path:
    """`path` as a Path, once it exists and is not an empty file (InputError: naming `what` and the path)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{what} '{path}' does not exist: check the path (relative paths are resolved "
                         f"from the directory you run in, or from the samplesheet's folder).")
    if path.is_file() and path.stat().st_size == 0:
        raise InputError(f"{what} '{path}' is empty.")
    return path


def text_separator(path: Path) -> str:
    """Tab for .tsv/.txt, comma for .csv; otherwise sniffed from the first line."""
    name = path.name.lower().removesuffix(".gz")
    if name.endswith(".csv"):
        return ","
    if name.endswith((".tsv", ".txt")):
        return "\t"
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt") as fh:
        first = fh.readline()
    return "\t" if first.count("\t") >= first.count(",") else ","


def read_table(path: str | Path, what: str, **kwargs) -> pd.DataFrame:
    """Read a CSV/TSV (optionally gzipped) table with a clear error on failure."""
    path = require_file(path, what)
    try:
        return pd.read_csv(path, sep=text_separator(path), **kwargs)
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError) as err:
        raise InputError(f"{what} '{path}' could not be read as a CSV/TSV table: {err}") from err


# ---------------------------------------------------------------- bulk expression

def read_bulk_expression(path: str | Path, line_ids: set[str] | None = None) -> ad.AnnData:
    """Bulk expression as AnnData (cell lines × genes), whatever the orientation of the file. The orientation is
    confirmed from content: the axis whose labels match the response table's cell lines (`line_ids`, normalised) is
    the cell-line axis; without them, the longer axis is genes."""
    path = require_file(path, "Bulk expression file")
    frame = read_h5ad_input(path, "Bulk expression file").to_df() if path.name.endswith(".h5ad") else \
        read_table(path, "Bulk expression file", index_col=0)
    for i, dtype in enumerate(frame.dtypes):  # only columns not read as numbers (all of them: ~1 s on GDSC)
        if not pd.api.types.is_numeric_dtype(dtype):
            frame.isetitem(i, pd.to_numeric(frame.iloc[:, i], errors="coerce"))
    if frame.size == 0:
        raise InputError(f"Bulk expression file '{path}' holds no values.")
    if _lines_are_columns(frame, line_ids):
        frame = frame.T
    frame.index = frame.index.map(str)
    frame.columns = frame.columns.map(str)
    frame = frame.loc[:, np.isfinite(frame.to_numpy()).any(axis=0)]  # drop genes without a value
    if frame.shape[1] == 0:
        raise InputError(f"Bulk expression file '{path}' holds no numeric expression values: expected cell lines × "
                         "genes (or genes × cell lines) with names in the first row and column and numbers inside.")
    n = int(np.isnan(frame.to_numpy()).sum())
    if n:
        log.warning("bulk expression: %d missing/non-numeric values set to the gene's median", n)
        frame = frame.fillna(frame.median())
    dup = frame.columns[frame.columns.duplicated()].unique()
    if len(dup):
        log.warning("bulk expression: %d duplicated gene names averaged (e.g. %s)", len(dup), list(dup[:3]))
        frame = frame.T.groupby(level=0).mean().T
    adata = ad.AnnData(frame.to_numpy(np.float32), obs=pd.DataFrame(index=frame.index),
                       var=pd.DataFrame(index=frame.columns))
    adata.uns["source"] = str(path)
    return adata


def bulk_axis_names(path: str | Path) -> set[str]:
    """The labels of both axes of a bulk expression table (genes and cell lines, in either orientation),
    read without its values: enough to count the genes a sample shares with it."""
    path = require_file(path, "Bulk expression file")
    if path.name.endswith(".h5ad"):
        adata = read_h5ad_input(path, "Bulk expression file", backed="r")
        return set(map(str, adata.obs_names)) | set(map(str, adata.var_names))
    frame = read_table(path, "Bulk expression file", usecols=[0], dtype=str)
    header = read_table(path, "Bulk expression file", nrows=0)
    return set(frame.iloc[:, 0].dropna()) | set(map(str, header.columns[1:]))


def read_h5ad_input(path: Path, what: str, **kwargs) -> ad.AnnData:
    """An .h5ad file; an InputError naming `what` when it cannot be read."""
    try:
        return ad.read_h5ad(path, **kwargs)
    except (OSError, KeyError, ValueError, TypeError) as err:
        raise InputError(f"{what} '{path}' could not be read as an .h5ad file: {err}") from err


def _lines_are_columns(frame: pd.DataFrame, line_ids: set[str] | None) -> bool:
    if line_ids:
        rows = sum(normalise_name(i) in line_ids for i in frame.index)
        cols = sum(normalise_name(c) in line_ids for c in frame.columns)
        if rows or cols:
            return cols > rows
    return frame.shape[0] > frame.shape[1]


# ---------------------------------------------------------------- drug response

LONG_LINE_COLUMNS = ("CELL_LINE_NAME", "CELL_LINE", "SAMPLE_NAME", "COSMIC_ID")
LONG_VALUE_COLUMNS = ("LN_IC50", "AUC", "IC50")


def response_paths(value: str | Path | list) -> list[str]:
    """The response files of a parameter: one path, a comma-separated list, or a list."""
    items = value if isinstance(value, (list, tuple)) else [value]
    return [part.strip() for item in items for part in str(item).split(",") if part.strip()]


def read_responses(paths: str | Path | list) -> pd.DataFrame:
    """Several response tables (e.g. scDEAL's binary labels, GDSC1 and GDSC2 LN_IC50) as one long
    table; `source` names the file each row came from, so releases can be put on one scale."""
    frames = [read_response(p).assign(source=Path(p).name) for p in response_paths(paths)]
    if not frames:
        raise InputError("No drug response file given (--bulk_response).")
    return pd.concat(frames, ignore_index=True)


def read_response(path: str | Path) -> pd.DataFrame:
    """Drug response as a long table with columns `line`, `drug`, `value`, `kind`. `kind` is `binary` (value 1 =
    sensitive, 0 = resistant) for the wide scDEAL layout (`ALL_label_binary_wf.csv`: one row per line, one column per
    drug) or the name of the continuous measure (`LN_IC50`, `AUC`) for GDSC long tables."""
    table = read_table(path, "Drug response file", dtype=str)
    upper = {c.upper(): c for c in table.columns}
    drug_col = upper.get("DRUG_NAME") or upper.get("DRUG")
    value_col = next((upper[c] for c in LONG_VALUE_COLUMNS if c in upper), None)
    line_col = next((upper[c] for c in LONG_LINE_COLUMNS if c in upper), None)
    if drug_col and value_col and line_col:
        long = pd.DataFrame({"line": table[line_col].astype(str), "drug": table[drug_col].astype(str),
                             "value": pd.to_numeric(table[value_col], errors="coerce"), "kind": value_col.upper()})
        return long.dropna(subset=["value"])
    return _wide_binary_to_long(table, Path(path))


def _wide_binary_to_long(table: pd.DataFrame, path: Path) -> pd.DataFrame:
    if table.shape[1] < 2:
        raise InputError(f"Drug response file '{path}' has {table.shape[1]} column(s): expected either a wide "
                         "table (first column cell lines, one column per drug with sensitive/resistant or 1/0) "
                         "or a GDSC long table with CELL_LINE_NAME, DRUG_NAME and LN_IC50 or AUC.")
    table = table.set_index(table.columns[0])
    long = table.stack().rename("raw").reset_index()
    long.columns = ["line", "drug", "raw"]
    mapping = {"sensitive": 1.0, "resistant": 0.0, "1": 1.0, "0": 0.0, "1.0": 1.0, "0.0": 0.0}
    raw = long["raw"].astype(str).str.strip().str.lower()
    missing = raw.isin({"", "nan", "na", "none", "null"})
    unknown = ~raw.isin(set(mapping)) & ~missing
    if unknown.any():
        row = long[unknown].iloc[0]
        raise InputError(f"Drug response file '{path}': value '{row['raw']}' for line '{row['line']}', drug "
                         f"'{row['drug']}' is not sensitive/resistant or 1/0 (missing values may be left empty).")
    long = long[~missing].assign(value=raw[~missing].map(mapping), kind="binary")
    return long[["line", "drug", "value", "kind"]]


def read_cosmic_map(path: str | Path) -> dict[str, str]:
    """COSMIC id → normalised cell-line name, from a table with COSMIC_ID and a name column."""
    table = read_table(path, "COSMIC map", dtype=str)
    upper = {c.upper(): c for c in table.columns}
    name_col = upper.get("SAMPLE_NAME") or upper.get("CELL_LINE_NAME")
    if "COSMIC_ID" not in upper or name_col is None:
        raise InputError(f"COSMIC map '{path}' needs columns COSMIC_ID and SAMPLE_NAME (or CELL_LINE_NAME).")
    ids = table[upper["COSMIC_ID"]].str.replace(r"\.0$", "", regex=True)
    return dict(zip(ids, table[name_col].map(normalise_name), strict=True))


def line_key(name: str, cosmic: dict[str, str] | None = None) -> str:
    """Normalised cell-line key; `DATA.<COSMIC id>` and bare COSMIC ids map through `cosmic`."""
    text = str(name)
    if cosmic:
        digits = re.sub(r"^(DATA\.|COSMIC[_:.]?)", "", text, flags=re.I)
        if digits.isdigit() and digits in cosmic:
            return cosmic[digits]
    return normalise_name(text)


# ---------------------------------------------------------------- single cell

def read_single_cell(path: str | Path, orientation: Orientation = "auto") -> ad.AnnData:
    """Read a single-cell sample: .h5ad, 10x .h5, 10x matrix directory, or a dense text matrix."""
    path = require_file(path, "Single-cell input")
    name = path.name.lower()
    try:
        if path.is_dir():
            if not any((path / f).exists() for f in ("matrix.mtx", "matrix.mtx.gz")):
                raise InputError(f"Directory '{path}' is not a 10x matrix directory: it lacks matrix.mtx[.gz] "
                                 "(with features.tsv[.gz] or genes.tsv and barcodes.tsv[.gz]).")
            import scanpy as sc
            adata = sc.read_10x_mtx(path, var_names="gene_symbols", make_unique=False)
        elif name.endswith(".h5ad"):
            adata = ad.read_h5ad(path)
            adata.var_names = gene_symbols(adata).to_numpy()
        elif name.endswith(".h5"):
            import scanpy as sc
            adata = sc.read_10x_h5(path)
        elif name.endswith(TEXT_SUFFIXES):
            adata = read_text_matrix(path, orientation)
        else:
            raise InputError(f"Single-cell input '{path}' has an unknown format: use .h5ad, a 10x .h5 file, a 10x "
                             "matrix directory (matrix.mtx[.gz], features.tsv[.gz], barcodes.tsv[.gz]) or a "
                             ".csv/.tsv/.txt[.gz] matrix.")
    except (OSError, KeyError, ValueError) as err:  # an InputError passes as it is
        raise InputError(f"Single-cell input '{path}' could not be read: {err}") from err
    adata.obs_names = adata.obs_names.map(str)
    adata.var_names = adata.var_names.map(str)
    adata.X = sp.csr_matrix(adata.X if sp.issparse(adata.X) else np.asarray(adata.X), dtype=np.float32)
    check_single_cell(adata, path)
    return adata


def gene_symbols(adata: ad.AnnData) -> pd.Index:
    """Gene names to use: var_names, or a symbol column of var when var_names are Ensembl ids."""
    if _fraction_ensembl(adata.var_names) < 0.5:
        return adata.var_names
    for col in ("gene_symbols", "gene_symbol", "feature_name", "gene_name", "symbol"):
        if col in adata.var and _fraction_ensembl(adata.var[col].astype(str)) < 0.5:
            return pd.Index(adata.var[col].astype(str))
    return adata.var_names


def _fraction_ensembl(names) -> float:
    names = list(names)[:2000]
    return sum(bool(ENSEMBL.match(str(n))) for n in names) / max(len(names), 1)


def read_text_matrix(path: Path, orientation: Orientation = "auto", chunk_rows: int = 2000) -> ad.AnnData:
    """Dense text matrix (GEO style) read in chunks into a sparse matrix."""
    sep = text_separator(path)
    header = pd.read_csv(path, sep=sep, nrows=0)
    first = str(header.columns[0]).strip().lower()
    chunks, index = [], []
    for chunk in pd.read_csv(path, sep=sep, index_col=0, chunksize=chunk_rows):
        values = chunk.apply(pd.to_numeric, errors="coerce")
        text = (values.isna() & chunk.notna()).to_numpy()
        if text.any():  # name the first entry that is not a number
            row, col = np.argwhere(text)[0]
            raise InputError(f"Single-cell matrix '{path}' holds text where numbers belong: '{chunk.iat[row, col]}' at row "
                             f"'{chunk.index[row]}', column '{chunk.columns[col]}' ({int(text.sum())} such entries "
                             "in that block): a matrix holds counts or expression values only.")
        chunks.append(sp.csr_matrix(values.to_numpy(np.float32)))
        index.extend(map(str, chunk.index))
    if not chunks:
        raise InputError(f"Single-cell matrix '{path}' has a header but no data rows.")
    matrix = sp.vstack(chunks).tocsr()
    columns = [str(c) for c in header.columns[1:]]
    genes_are_rows = _genes_are_rows(index, columns, first_header=first, orientation=orientation)
    if genes_are_rows:
        matrix, index, columns = matrix.T.tocsr(), columns, index
    log.info("%s: read as %s (%d cells × %d genes)", path.name,
             "genes × cells" if genes_are_rows else "cells × genes", len(index), len(columns))
    return ad.AnnData(matrix, obs=pd.DataFrame(index=index), var=pd.DataFrame(index=columns))


def _genes_are_rows(rows: list[str], cols: list[str], *, first_header: str, orientation: Orientation) -> bool:
    if orientation != "auto":
        return orientation == "genes_x_cells"
    if first_header in GENE_HEADER_NAMES - {"", "id"}:
        return True
    row_barcodes = np.mean([bool(BARCODE.match(r)) for r in rows[:500]])
    col_barcodes = np.mean([bool(BARCODE.match(c)) for c in cols[:500]])
    if abs(row_barcodes - col_barcodes) > 0.5:
        return col_barcodes > row_barcodes
    return len(rows) > len(cols)


def check_single_cell(adata: ad.AnnData, path: Path) -> None:
    """Content checks every sample must pass before any heavy step."""
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise InputError(f"Single-cell input '{path}' is empty ({adata.n_obs} cells × {adata.n_vars} genes).")
    data = adata.X.data if sp.issparse(adata.X) else np.asarray(adata.X)
    if not np.isfinite(data).all():
        raise InputError(f"Single-cell input '{path}' contains NaN or infinite values: fill or remove them.")
    if data.size and data.min() < 0 and np.allclose(data, np.round(data)):
        raise InputError(f"Single-cell input '{path}' holds integer counts with negative values: counts cannot be "
                         "negative; check the matrix (scaled data should not be rounded).")
    problems = name_problems(adata.var_names, adata.obs_names, f"Single-cell input '{path}'")
    if problems:
        raise InputError(problems[0])


def name_problems(var_names, obs_names, where: str) -> list[str]:
    """Problems with gene and cell names, readable without loading the matrix."""
    var_names, obs_names = pd.Index(var_names), pd.Index(obs_names)
    problems = []
    for names, what, advice in ((var_names, "gene", ": sum or drop duplicates, or index genes by unique symbols."),
                                (obs_names, "cell", ".")):
        dup = names[names.duplicated()].unique()
        if len(dup):
            problems.append(f"{where} has {len(dup)} duplicated {what} names (e.g. {list(dup[:3])}){advice}")
    if _fraction_ensembl(var_names) > 0.5:
        problems.append(f"{where} names genes by Ensembl ids (e.g. {var_names[0]}); the bulk model uses HGNC "
                        "symbols: add a symbol column to var (gene_symbols) or convert ids.")
    elif len(var_names) and np.mean([str(g).isdigit() for g in var_names[:2000]]) > 0.5:
        problems.append(f"{where} names genes by Entrez ids (e.g. {var_names[0]}); convert them to HGNC symbols first.")
    return problems
