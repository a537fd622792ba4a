"""Readers of the public formats, on small files made here."""
from __future__ import annotations

import gzip

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.io
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import GENES, bulk_frame
from scdeal.data import readers
from scdeal.errors import InputError


@pytest.mark.parametrize("transpose", [False, True])
@pytest.mark.parametrize("suffix", [".csv", ".tsv.gz"])
def test_bulk_expression_orientation_is_detected_from_the_response_lines(tmp_path, transpose, suffix):
    frame = bulk_frame()
    path = tmp_path / f"expr{suffix}"
    (frame.T if transpose else frame).to_csv(path, sep="\t" if ".tsv" in suffix else ",")
    adata = readers.read_bulk_expression(path, {readers.normalise_name(x) for x in frame.index})
    assert adata.shape == (40, 30)
    assert list(adata.var_names[:3]) == GENES[:3]


def test_wide_binary_and_long_continuous_responses(tmp_path):
    wide = tmp_path / "wide.csv"
    pd.DataFrame({"cell_line": ["A", "B", "C"], "I.BET.762": ["sensitive", "resistant", ""],
                  "ERLOTINIB": ["1", "0", "1"]}).to_csv(wide, index=False)
    long = readers.read_response(wide)
    assert set(long["kind"]) == {"binary"}
    assert len(long[long.drug == "I.BET.762"]) == 2  # the missing response drops that line for that drug only
    assert len(long[long.drug == "ERLOTINIB"]) == 3
    gdsc = tmp_path / "gdsc.csv.gz"
    pd.DataFrame({"CELL_LINE_NAME": ["A", "B"], "DRUG_NAME": ["I-BET-762"] * 2, "LN_IC50": [1.0, "NA"]}).to_csv(gdsc, index=False)
    long = readers.read_response(gdsc)
    assert list(long["kind"]) == ["LN_IC50"] and len(long) == 1


def counts(n_cells=20, n_genes=15, seed=0):
    return np.random.default_rng(seed).poisson(2.0, (n_cells, n_genes)).astype(np.float32)


def barcodes(n):
    rng = np.random.default_rng(1)
    return [''.join(rng.choice(list("ACGT"), 12)) + "-1" for _ in range(n)]


def test_geo_text_matrix_genes_by_cells(tmp_path):
    x = counts()
    genes, cells = [f"GENE{i}" for i in range(15)], barcodes(20)
    path = tmp_path / "geo.txt.gz"
    pd.DataFrame(x.T, index=pd.Index(genes, name="GENE"), columns=cells).to_csv(path, sep="\t")
    adata = readers.read_single_cell(path)
    assert adata.shape == (20, 15) and list(adata.obs_names) == cells
    np.testing.assert_array_equal(adata.X.toarray(), x)


def test_text_matrix_cells_by_genes(tmp_path):
    x = counts()
    path = tmp_path / "m.csv"
    pd.DataFrame(x, index=barcodes(20), columns=[f"GENE{i}" for i in range(15)]).to_csv(path)
    assert readers.read_single_cell(path).shape == (20, 15)


def test_10x_matrix_directory(tmp_path):
    x = counts()
    d = tmp_path / "filtered_feature_bc_matrix"
    d.mkdir()
    scipy.io.mmwrite(str(d / "matrix.mtx"), sp.csr_matrix(x.T).astype(np.int64))
    (d / "features.tsv").write_text("".join(f"ENSG{i:011d}\tGENE{i}\tGene Expression\n" for i in range(15)))
    (d / "barcodes.tsv").write_text("\n".join(barcodes(20)) + "\n")
    for f in ("matrix.mtx", "features.tsv", "barcodes.tsv"):
        with open(d / f, "rb") as src, gzip.open(d / f"{f}.gz", "wb") as dst:
            dst.write(src.read())
        (d / f).unlink()
    adata = readers.read_single_cell(d)
    assert adata.shape == (20, 15) and adata.var_names[0] == "GENE0"


def test_10x_h5(tmp_path):
    x = sp.csc_matrix(counts().T.astype(np.int32))  # genes × cells, as 10x stores it
    path = tmp_path / "filtered_feature_bc_matrix.h5"
    with h5py.File(path, "w") as fh:
        g = fh.create_group("matrix")
        g["data"], g["indices"], g["indptr"] = x.data, x.indices, x.indptr
        g["shape"] = np.array(x.shape, dtype=np.int32)
        g["barcodes"] = np.array(barcodes(20), dtype="S")
        f = g.create_group("features")
        f["id"] = np.array([f"ENSG{i:011d}" for i in range(15)], dtype="S")
        f["name"] = np.array([f"GENE{i}" for i in range(15)], dtype="S")
        f["feature_type"] = np.array(["Gene Expression"] * 15, dtype="S")
        f["genome"] = np.array(["GRCh38"] * 15, dtype="S")
        f["_all_tag_keys"] = np.array([b"genome"])
    adata = readers.read_single_cell(path)
    assert adata.shape == (20, 15)


def write_h5ad(tmp_path, x, genes, name="s.h5ad"):
    path = tmp_path / name
    ad.AnnData(sp.csr_matrix(x), obs=pd.DataFrame(index=barcodes(len(x))), var=pd.DataFrame(index=genes)).write_h5ad(path)
    return path


@pytest.mark.parametrize(("genes", "message"), [
    ([f"ENSG{i:011d}" for i in range(15)], "Ensembl ids"),
    ([str(1000 + i) for i in range(15)], "Entrez ids"),
])
def test_gene_id_types_are_named(tmp_path, genes, message):
    with pytest.raises(InputError, match=message):
        readers.read_single_cell(write_h5ad(tmp_path, counts(), genes))


def test_h5ad_with_symbol_column_is_reindexed(tmp_path):
    path = tmp_path / "ens.h5ad"
    var = pd.DataFrame({"gene_symbols": [f"GENE{i}" for i in range(15)]}, index=[f"ENSG{i:011d}" for i in range(15)])
    ad.AnnData(sp.csr_matrix(counts()), obs=pd.DataFrame(index=barcodes(20)), var=var).write_h5ad(path)
    assert readers.read_single_cell(path).var_names[0] == "GENE0"


def test_unknown_format_is_named(tmp_path):
    path = tmp_path / "cells.xlsx"
    path.write_text("x")
    with pytest.raises(InputError, match="unknown format"):
        readers.read_single_cell(path)


@settings(max_examples=40, deadline=None)
@given(st.text(min_size=1, max_size=20))
def test_normalised_names_are_idempotent_and_plain(name):
    key = readers.normalise_name(name)
    assert readers.normalise_name(key) == key
    assert all(c.isascii() and (c.isdigit() or c.isupper()) for c in key)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.sampled_from(["sensitive", "resistant", "1", "0", "", "Sensitive "]), min_size=3, max_size=12))
def test_wide_response_reader_accepts_any_mix_of_valid_values(tmp_path_factory, values):
    path = tmp_path_factory.mktemp("resp") / "r.csv"
    pd.DataFrame({"line": [f"L{i}" for i in range(len(values))], "D": values}).to_csv(path, index=False)
    long = readers.read_response(path)
    assert len(long) == sum(v.strip() != "" for v in values)
    assert set(long["value"]) <= {0.0, 1.0}
