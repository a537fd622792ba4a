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

from scdeal.data import readers as io
from scdeal.data.bulk import binarize, drug_labels, find_drug, prepare_bulk
from scdeal.errors import InputError

GENES = [f"G{i}" for i in range(30)]


def bulk_frame(n_lines=40, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(size=(n_lines, len(GENES))), index=[f"Line-{i}" for i in range(n_lines)],
                        columns=GENES)


@pytest.mark.parametrize("transpose", [False, True])
@pytest.mark.parametrize("suffix", [".csv", ".tsv.gz"])
def test_bulk_expression_orientation_is_detected_from_the_response_lines(tmp_path, transpose, suffix):
    frame = bulk_frame()
    path = tmp_path / f"expr{suffix}"
    (frame.T if transpose else frame).to_csv(path, sep="\t" if ".tsv" in suffix else ",")
    adata = io.read_bulk_expression(path, {io.normalise_name(x) for x in frame.index})
    assert adata.shape == (40, 30)
    assert list(adata.var_names[:3]) == GENES[:3]


def test_wide_binary_and_long_continuous_responses(tmp_path):
    wide = tmp_path / "wide.csv"
    pd.DataFrame({"cell_line": ["A", "B", "C"], "I.BET.762": ["sensitive", "resistant", ""],
                  "ERLOTINIB": ["1", "0", "1"]}).to_csv(wide, index=False)
    long = io.read_response(wide)
    assert set(long["kind"]) == {"binary"}
    assert len(long[long.drug == "I.BET.762"]) == 2  # the missing response drops that line for that drug only
    assert len(long[long.drug == "ERLOTINIB"]) == 3
    gdsc = tmp_path / "gdsc.csv.gz"
    pd.DataFrame({"CELL_LINE_NAME": ["A", "B"], "DRUG_NAME": ["I-BET-762"] * 2, "LN_IC50": [1.0, "NA"]}).to_csv(gdsc, index=False)
    long = io.read_response(gdsc)
    assert list(long["kind"]) == ["LN_IC50"] and len(long) == 1


@pytest.mark.parametrize("spelling", ["I-BET-762", "I.BET.762", "i-bet-762", "ibet762"])
def test_drug_names_match_however_written(spelling):
    table = pd.DataFrame({"line": ["A"], "drug": ["I.BET.762"], "value": [1.0], "kind": ["binary"]})
    assert find_drug(table, spelling) == "I.BET.762"


def test_unknown_drug_suggests_close_names():
    table = pd.DataFrame({"line": ["A"] * 2, "drug": ["ERLOTINIB", "GEFITINIB"], "value": [1.0] * 2, "kind": ["binary"] * 2})
    with pytest.raises(InputError, match="Did you mean ERLOTINIB"):
        find_drug(table, "erlotinb")


def test_binarize_rules_put_low_ic50_in_the_sensitive_class():
    values = pd.Series(np.arange(100, dtype=float))
    assert binarize(values, "quantile", 0.2).iloc[:20].all() and binarize(values, "quantile", 0.2).sum() == 20
    assert binarize(values, "median").sum() == 50
    assert binarize(values, "zscore", zscore_cutoff=-1.0).iloc[0] == 1 and binarize(values, "zscore").iloc[-1] == 0


def test_prepare_bulk_matches_cosmic_ids_and_splits_stratified():
    expression = ad.AnnData(bulk_frame(60).to_numpy(np.float32), obs=pd.DataFrame(index=[f"Line-{i}" for i in range(60)]),
                            var=pd.DataFrame(index=GENES))
    cosmic = {str(1000 + i): io.normalise_name(f"Line-{i}") for i in range(60)}
    labels = ["sensitive" if i % 3 == 0 else "resistant" for i in range(60)]
    response = pd.DataFrame({"line": [f"DATA.{1000 + i}" for i in range(60)], "drug": "X", "value":
                             [1.0 if lab == "sensitive" else 0.0 for lab in labels], "kind": "binary"})
    bulk = prepare_bulk(expression, response, "x", cosmic=cosmic, min_per_class=5)
    assert bulk.n_obs == 60
    for split in ("train", "val", "test"):
        part = bulk.obs[bulk.obs.split == split]
        assert 0.2 < part.label.mean() < 0.5


def test_prepare_bulk_rejects_a_class_too_small():
    expression = ad.AnnData(bulk_frame(30).to_numpy(np.float32), obs=pd.DataFrame(index=[f"L{i}" for i in range(30)]),
                            var=pd.DataFrame(index=GENES))
    response = pd.DataFrame({"line": [f"L{i}" for i in range(30)], "drug": "X", "value": [1.0] * 3 + [0.0] * 27,
                             "kind": "binary"})
    with pytest.raises(InputError, match="only 3 sensitive cell lines"):
        prepare_bulk(expression, response, "X")


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
    adata = io.read_single_cell(path)
    assert adata.shape == (20, 15) and list(adata.obs_names) == cells
    np.testing.assert_array_equal(adata.X.toarray(), x)


def test_text_matrix_cells_by_genes(tmp_path):
    x = counts()
    path = tmp_path / "m.csv"
    pd.DataFrame(x, index=barcodes(20), columns=[f"GENE{i}" for i in range(15)]).to_csv(path)
    assert io.read_single_cell(path).shape == (20, 15)


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
    adata = io.read_single_cell(d)
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
    adata = io.read_single_cell(path)
    assert adata.shape == (20, 15)


def write_h5ad(tmp_path, x, genes, name="s.h5ad"):
    path = tmp_path / name
    ad.AnnData(sp.csr_matrix(x), obs=pd.DataFrame(index=barcodes(len(x))), var=pd.DataFrame(index=genes)).write_h5ad(path)
    return path


@pytest.mark.parametrize("genes, message", [
    ([f"ENSG{i:011d}" for i in range(15)], "Ensembl ids"),
    ([str(1000 + i) for i in range(15)], "Entrez ids"),
])
def test_gene_id_types_are_named(tmp_path, genes, message):
    with pytest.raises(InputError, match=message):
        io.read_single_cell(write_h5ad(tmp_path, counts(), genes))


def test_h5ad_with_symbol_column_is_reindexed(tmp_path):
    path = tmp_path / "ens.h5ad"
    var = pd.DataFrame({"gene_symbols": [f"GENE{i}" for i in range(15)]}, index=[f"ENSG{i:011d}" for i in range(15)])
    ad.AnnData(sp.csr_matrix(counts()), obs=pd.DataFrame(index=barcodes(20)), var=var).write_h5ad(path)
    assert io.read_single_cell(path).var_names[0] == "GENE0"


def test_unknown_format_is_named(tmp_path):
    path = tmp_path / "cells.xlsx"
    path.write_text("x")
    with pytest.raises(InputError, match="unknown format"):
        io.read_single_cell(path)


@settings(max_examples=40, deadline=None)
@given(st.text(min_size=1, max_size=20))
def test_normalised_names_are_idempotent_and_plain(name):
    key = io.normalise_name(name)
    assert io.normalise_name(key) == key
    assert all(c.isascii() and (c.isdigit() or c.isupper()) for c in key)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.sampled_from(["sensitive", "resistant", "1", "0", "", "Sensitive "]), min_size=3, max_size=12))
def test_wide_response_reader_accepts_any_mix_of_valid_values(tmp_path_factory, values):
    path = tmp_path_factory.mktemp("resp") / "r.csv"
    pd.DataFrame({"line": [f"L{i}" for i in range(len(values))], "D": values}).to_csv(path, index=False)
    long = io.read_response(path)
    assert len(long) == sum(v.strip() != "" for v in values)
    assert set(long["value"]) <= {0.0, 1.0}


def test_binary_calls_label_lines_and_continuous_releases_are_pooled_on_one_scale(tmp_path):
    wide, gdsc1, gdsc2 = tmp_path / "labels.csv", tmp_path / "gdsc1.csv", tmp_path / "gdsc2.csv"
    pd.DataFrame({"line": ["A", "B", "C"], "ERLOTINIB": ["sensitive", "resistant", "resistant"]}).to_csv(wide, index=False)
    # GDSC2 measures on another scale (x10 + 50); after z-scoring per file both rank A < B < C identically
    pd.DataFrame({"CELL_LINE_NAME": ["A", "B", "C", "D"], "DRUG_NAME": "Erlotinib",
                  "LN_IC50": [-1.0, 0.0, 1.0, 2.0]}).to_csv(gdsc1, index=False)
    pd.DataFrame({"CELL_LINE_NAME": ["A", "B", "C"], "DRUG_NAME": "Erlotinib",
                  "LN_IC50": [40.0, 50.0, 60.0]}).to_csv(gdsc2, index=False)
    response = io.read_responses(f"{wide},{gdsc1}, {gdsc2}")
    assert set(response["source"]) == {"labels.csv", "gdsc1.csv", "gdsc2.csv"}
    labels, kind = drug_labels(response, "erlotinib", "quantile", 0.2)
    assert kind == "binary+LN_IC50"
    assert list(labels.index) == ["A", "B", "C"]  # D has no binary call: not labelled
    assert labels["label"].tolist() == [1.0, 0.0, 0.0]
    z1 = (np.array([-1.0, 0.0, 1.0]) - 0.5) / np.std([-1.0, 0.0, 1.0, 2.0], ddof=1)
    z2 = np.array([-1.0, 0.0, 1.0])
    np.testing.assert_allclose(labels["response_z"], (z1 + z2) / 2, atol=1e-6)


def test_continuous_only_responses_are_binarised_from_the_pooled_score(tmp_path):
    rows = pd.DataFrame({"line": [f"L{i}" for i in range(10)], "drug": "AR-42", "value": np.arange(10.0),
                         "kind": "AUC", "source": "gdsc1_auc.csv"})
    labels, kind = drug_labels(rows, "AR-42", "quantile", 0.2)
    assert kind == "AUC" and labels.loc[["L0", "L1"], "label"].eq(1).all() and labels["label"].sum() == 2
