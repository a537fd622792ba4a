"""Bad input: one clear message naming the file, row or column, exit status 2 (`scdeal run`) or 65 (a step:
the data error that stops only its pairs), no traceback, no output."""
from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from conftest import ROOT, TEST_DATA
from scdeal.errors import EXIT_DATA_ERROR
from scdeal.pipeline import cli


def cells(tmp_path, name="cells.h5ad", x=None, genes=None, obs=None):
    rng = np.random.default_rng(0)
    x = rng.poisson(1.0, (40, 30)).astype(np.float32) if x is None else x
    genes = genes or [f"GENE{i}" for i in range(x.shape[1])]
    obs = obs if obs is not None else pd.DataFrame(index=[f"c{i}" for i in range(x.shape[0])])
    path = tmp_path / name
    ad.AnnData(sp.csr_matrix(x) if x.size else x, obs=obs, var=pd.DataFrame(index=genes)).write_h5ad(path)
    return path


def sheet(tmp_path, text):
    path = tmp_path / "samplesheet.csv"
    path.write_text(text)
    return path


def run_args(tmp_path, sheet_path, extra=()):
    return ["run", "--input", str(sheet_path), "--outdir", str(tmp_path / "out"),
            "--bulk_expression", str(TEST_DATA / "bulk_expression.csv.gz"),
            "--bulk_response", str(TEST_DATA / "bulk_response.csv"), *extra]


RUN_CASES = {
    "missing column": ("sample,drug\ns1,Simulatin\n", "missing column(s) input"),
    "extra column": ("sample,input,drug,batch\ns1,{h5ad},Simulatin,1\n", "unknown column(s) batch"),
    "duplicate rows": ("sample,input,drug\ns1,{h5ad},Simulatin\ns1,{h5ad},SIMULATIN\n",
                       "line 3: sample 's1' with drug 'SIMULATIN' repeats line 2"),
    "space in id": ("sample,input,drug\ns 1,{h5ad},Simulatin\n", "line 2, column 'sample'"),
    "path missing": ("sample,input,drug\ns1,nowhere.h5ad,Simulatin\n", "nowhere.h5ad' does not exist"),
    "unknown format": ("sample,input,drug\ns1,cells.xlsx,Simulatin\n", "line 2, column 'input'"),
    "drug absent": ("sample,input,drug\ns1,{h5ad},Simulatine\n", "Did you mean Simulatin"),
    "label key absent": ("sample,input,drug,species,label_key\ns1,{h5ad},Simulatin,human,truth\n",
                         "label_key 'truth' is not an obs column"),
    "bad species": ("sample,input,drug,species\ns1,{h5ad},Simulatin,rat\n", "species must be 'human' or 'mouse'"),
    "label key on a screen": ("sample,input,drug,species,label_key\ns1,{h5ad},Simulatin,human,\ns1,{h5ad},all,human,truth\n",
                              "line 3: sample 's1' with drug 'all' has label_key 'truth': label_key needs a single drug"),
}


@pytest.mark.parametrize("case", RUN_CASES, ids=list(RUN_CASES))
def test_run_rejects_bad_samplesheets_before_any_work(tmp_path, capsys, case):
    text, message = RUN_CASES[case]
    h5ad = cells(tmp_path)
    (tmp_path / "cells.xlsx").write_text("x")
    code = cli.main(run_args(tmp_path, sheet(tmp_path, text.format(h5ad=h5ad))))
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_problems_are_reported_together(tmp_path, capsys):
    h5ad = cells(tmp_path)
    text = f"sample,input,drug,species\ns 1,{h5ad},Simulatin,rat\ns2,missing.h5ad,Simulatin,human\n"
    assert cli.main(run_args(tmp_path, sheet(tmp_path, text))) == 2
    err = capsys.readouterr().err
    assert "3 problems found" in err


def test_parameter_outside_its_range_is_named(tmp_path, capsys):
    h5ad = cells(tmp_path)
    code = cli.main(run_args(tmp_path, sheet(tmp_path, f"sample,input,drug\ns1,{h5ad},Simulatin\n"),
                             ["--sensitive_fraction", "1.5"]))
    assert code == 2 and "--sensitive_fraction: 1.5 is outside its range [0.01, 0.99]" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_unknown_parameter_suggests_the_right_one(tmp_path, capsys):
    h5ad = cells(tmp_path)
    code = cli.main(run_args(tmp_path, sheet(tmp_path, f"sample,input,drug\ns1,{h5ad},Simulatin\n"), ["--max_pct_mt", "5"]))
    assert code == 2 and "did you mean 'max_pct_mito'" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--debug", "-debug"])
def test_debug_shows_the_traceback(tmp_path, capsys, flag):
    code = cli.main(run_args(tmp_path, sheet(tmp_path, "sample,drug\ns1,X\n"), [flag]))
    assert code == 2 and "Traceback" in capsys.readouterr().err


def mouse_genes(n):
    return [f"Gm{i}a" if i % 2 else f"Actb{i}" for i in range(n)]


STEP_CASES = {
    "empty matrix": (lambda p: cells(p, x=np.zeros((0, 30), np.float32)), "is empty"),
    "nan values": (lambda p: cells(p, x=np.where(np.eye(40, 30) > 0, np.nan, 1.0).astype(np.float32)), "NaN or infinite"),
    "duplicated genes": (lambda p: cells(p, genes=["A", "A"] + [f"G{i}" for i in range(28)]), "duplicated gene names"),
    "ensembl ids": (lambda p: cells(p, genes=[f"ENSG{i:011d}" for i in range(30)]), "Ensembl ids"),
    "mouse genes declared human": (lambda p: cells(p, genes=mouse_genes(30)), "look mouse"),
}


@pytest.mark.parametrize("case", STEP_CASES, ids=list(STEP_CASES))
def test_cluster_step_rejects_bad_matrices(tmp_path, capsys, case):
    make, message = STEP_CASES[case]
    path = make(tmp_path)
    out = tmp_path / "out"
    code = cli.main(["cluster", "--input", str(path), "--sample", "s1", "--outdir", str(out)])
    err = capsys.readouterr().err
    assert code == EXIT_DATA_ERROR and message in err and "Traceback" not in err
    assert not out.exists() or not any(out.iterdir())


def test_human_genes_declared_mouse(tmp_path, capsys):
    path = cells(tmp_path, genes=[f"GENE{i}" for i in range(30)])
    code = cli.main(["cluster", "--input", str(path), "--sample", "s1", "--species", "mouse", "--outdir", str(tmp_path / "o")])
    assert code == EXIT_DATA_ERROR and "look human" in capsys.readouterr().err


@pytest.mark.parametrize(("labels", "message"), [
    (["sensitive", "resistant", "maybe"] * 10, "values other than sensitive/resistant"),
    (["sensitive"] * 30, "only one class"),
])
def test_evaluate_rejects_bad_labels(tmp_path, capsys, labels, message):
    obs = pd.DataFrame({"truth": labels, "prob_sensitive": np.linspace(0, 1, 30), "cluster": ["0"] * 30,
                        "predicted_label": ["sensitive"] * 30}, index=[f"c{i}" for i in range(30)])
    path = cells(tmp_path, x=np.ones((30, 5), np.float32), obs=obs)
    out = tmp_path / "out"
    code = cli.main(["evaluate", "--adata", str(path), "--label_key", "truth", "--sample", "s", "--drug", "D",
                     "--outdir", str(out)])
    assert code == EXIT_DATA_ERROR and message in capsys.readouterr().err
    assert not out.exists()


def test_bulk_tables_that_do_not_match(tmp_path, capsys):
    response = tmp_path / "resp.csv"
    pd.DataFrame({"line": ["X1", "X2"], "Simulatin": ["sensitive", "resistant"]}).to_csv(response, index=False)
    code = cli.main(["bulk_prepare", "--bulk_expression", str(TEST_DATA / "bulk_expression.csv.gz"),
                     "--bulk_response", str(response), "--drug", "Simulatin", "--outdir", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == EXIT_DATA_ERROR
    assert f"No cell line of the bulk expression table '{TEST_DATA / 'bulk_expression.csv.gz'}' matches" in err


GARBAGE_BULK = {
    "random bytes": ("expr.csv", lambda p: p.write_bytes(np.random.default_rng(0).bytes(3000))),
    "random bytes h5ad": ("expr.h5ad", lambda p: p.write_bytes(np.random.default_rng(0).bytes(3000))),
    "not gzip": ("expr.csv.gz", lambda p: p.write_bytes(np.random.default_rng(0).bytes(500))),
    "words only": ("expr.csv", lambda p: p.write_text("line,A,B\nX,a,b\nY,c,d\n")),
}


@pytest.mark.parametrize("case", GARBAGE_BULK, ids=list(GARBAGE_BULK))
def test_garbage_bulk_expression_is_named(tmp_path, capsys, case):
    name, write = GARBAGE_BULK[case]
    garbage = tmp_path / name
    write(garbage)
    args = run_args(tmp_path, sheet(tmp_path, f"sample,input,drug\ns1,{cells(tmp_path)},Simulatin\n"))
    args[args.index("--bulk_expression") + 1] = str(garbage)
    code = cli.main(args)
    err = capsys.readouterr().err
    assert code == 2 and f"'{garbage}'" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def response_with_three_sensitive_lines(tmp_path) -> Path:
    labels = pd.read_csv(TEST_DATA / "bulk_response.csv", index_col=0)
    labels.iloc[:, 0] = ["sensitive"] * 3 + ["resistant"] * (len(labels) - 3)
    response = tmp_path / "resp.csv"
    labels.to_csv(response)
    return response


def test_bulk_with_too_few_lines_of_one_class(tmp_path, capsys):
    response = response_with_three_sensitive_lines(tmp_path)
    code = cli.main(["bulk_prepare", "--bulk_expression", str(TEST_DATA / "bulk_expression.csv.gz"),
                     "--bulk_response", str(response), "--drug", "Simulatin", "--outdir", str(tmp_path / "o")])
    assert code == EXIT_DATA_ERROR and "only 3 sensitive cell lines" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def bulk_genes() -> list[str]:
    return list(pd.read_csv(TEST_DATA / "bulk_expression.csv.gz", index_col=0, nrows=1).columns)


SAMPLE_CASES = {
    "ensembl ids": ({"genes": [f"ENSG{i:011d}" for i in range(30)]}, "", "Ensembl ids"),
    "mouse genes declared human": ({"genes": mouse_genes(30)}, "", "gene names look mouse"),
    "too few genes shared": ({}, "", "shares only 0 genes with the bulk expression table"),
    "label values": ({"genes": "bulk", "labels": ["sensitive", "unknown"] * 20}, "truth",
                     "values other than sensitive/resistant"),
    "one-class labels": ({"genes": "bulk", "labels": ["resistant"] * 40}, "truth", "only one class"),
}


@pytest.mark.parametrize("case", SAMPLE_CASES, ids=list(SAMPLE_CASES))
def test_run_checks_samples_before_any_work(tmp_path, capsys, case):
    spec, label_key, message = SAMPLE_CASES[case]
    genes = bulk_genes()[:300] if spec.get("genes") == "bulk" else spec.get("genes")
    x = np.random.default_rng(0).poisson(1.0, (40, len(genes) if genes else 30)).astype(np.float32)
    obs = pd.DataFrame({"truth": spec["labels"]}, index=[f"c{i}" for i in range(40)]) if "labels" in spec else None
    h5ad = cells(tmp_path, x=x, genes=genes, obs=obs)
    text = f"sample,input,drug,species,label_key\ns1,{h5ad},Simulatin,human,{label_key}\n"
    code = cli.main(run_args(tmp_path, sheet(tmp_path, text)))
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def nan_matrix(tmp_path) -> Path:
    x = np.random.default_rng(0).poisson(1.0, (40, 300)).astype(np.float32)
    x[3, 7] = np.nan
    return cells(tmp_path, "nan.h5ad", x=x, genes=bulk_genes()[:300])


def garbage_csv(tmp_path) -> Path:
    path = tmp_path / "garbage.csv"
    path.write_text("gene,c1,c2\n" + "".join(f"{g},high,low\n" for g in bulk_genes()[:300]))
    return path


@pytest.mark.parametrize(("make", "message"), [(nan_matrix, "NaN or infinite values"), (garbage_csv, "'high' at row")],
                         ids=["nan values", "garbage csv"])
def test_run_reads_every_matrix_before_any_work(tmp_path, capsys, make, message):
    """Content is checked up front, whatever the format: a sample whose values cannot be used stops the run
    before any bulk work when no other sample remains."""
    path = make(tmp_path)
    code = cli.main(run_args(tmp_path, sheet(tmp_path, f"sample,input,drug\ns1,{path},Simulatin\n")))
    err = capsys.readouterr().err
    assert code == 2 and message in err and "sample 's1'" in err and str(path) in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_validate_step_writes_a_summary_or_exits_with_the_data_error(tmp_path, capsys):
    good = cells(tmp_path, x=np.random.default_rng(1).poisson(1.0, (40, 300)).astype(np.float32), genes=bulk_genes()[:300],
                 obs=pd.DataFrame({"truth": ["sensitive", "resistant"] * 20}, index=[f"c{i}" for i in range(40)]))
    common = ["--bulk_expression", str(TEST_DATA / "bulk_expression.csv.gz"), "--outdir", str(tmp_path / "v")]
    assert cli.main(["validate", "--input", str(good), "--sample", "s1", "--label_keys", "truth", *common]) == 0
    summary = pd.read_json(tmp_path / "v" / "s1.validation.json", typ="series")
    assert (summary["n_cells"], summary["n_genes"], summary["genes_shared_with_bulk"]) == (40, 300, 300)
    code = cli.main(["validate", "--input", str(nan_matrix(tmp_path)), "--sample", "s2", *common])
    assert code == EXIT_DATA_ERROR and "NaN or infinite values" in capsys.readouterr().err
    assert not (tmp_path / "v" / "s2.validation.json").exists()
    code = cli.main(["validate", "--input", str(good), "--sample", "s1", "--label_keys", "response", *common])
    assert code == EXIT_DATA_ERROR and "label_key 'response' is not an obs column" in capsys.readouterr().err


def test_negative_counts_are_rejected(tmp_path, capsys):
    x = np.random.default_rng(0).poisson(1.0, (40, 30)).astype(np.float32)
    x[0, 0] = -3
    code = cli.main(["cluster", "--input", str(cells(tmp_path, x=x)), "--sample", "s", "--outdir", str(tmp_path / "o")])
    assert code == EXIT_DATA_ERROR and "negative values" in capsys.readouterr().err


def test_run_checks_bulk_class_balance_before_any_work(tmp_path, capsys):
    response = response_with_three_sensitive_lines(tmp_path)
    genes = bulk_genes()[:300]
    h5ad = cells(tmp_path, x=np.ones((40, 300), np.float32), genes=genes)
    args = run_args(tmp_path, sheet(tmp_path, f"sample,input,drug\ns1,{h5ad},Simulatin\n"))
    args[args.index("--bulk_response") + 1] = str(response)
    assert cli.main(args) == 2
    assert "only 3 sensitive cell lines" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_run_help_lists_the_schema_parameters_by_group(capsys):
    """`scdeal run --help` prints what `nextflow run . --help` prints: every visible parameter of
    nextflow_schema.json with its description and default, grouped and ordered as in the schema."""
    from scdeal.pipeline.config import schema_groups
    assert cli.main(["run", "--help"]) == 0
    out = capsys.readouterr().out
    position = -1
    for group in schema_groups(ROOT):
        visible = {n: s for n, s in group["properties"].items() if not s.get("hidden")}
        if not visible:
            assert group["title"] not in out
            continue
        assert out.index(group["title"]) > position, f"group '{group['title']}' out of the schema's order"
        position = out.index(group["title"])
        for name, spec in visible.items():
            line = next(line for line in out.splitlines() if line.strip().startswith(f"--{name} "))
            assert spec["description"] in line
            if spec.get("default") is not None:
                assert f"[default: {spec['default']}]" in line
    assert "--publish_dir_mode" not in out and "--show_hidden" in out


def test_run_help_shows_hidden_parameters_and_one_parameter(capsys):
    assert cli.main(["run", "--help", "--show_hidden"]) == 0
    assert "--publish_dir_mode" in capsys.readouterr().out
    assert cli.main(["run", "--help", "threshold_rule"]) == 0
    assert "bulk_prevalence" in capsys.readouterr().out
    assert cli.main(["run", "--help", "threshol"]) == 2
    assert "did you mean 'threshold'" in capsys.readouterr().err


def test_a_screen_row_passes_the_checks_that_a_single_drug_row_gets(tmp_path, capsys):
    """`all` is not a drug of the response table: the screen's own step reads every drug, preflight does not."""
    from scdeal.pipeline.config import schema_defaults
    from scdeal.pipeline.preflight import preflight
    from scdeal.pipeline.samplesheet import validate_samplesheet
    genes = bulk_genes()[:300]
    h5ad = cells(tmp_path, x=np.ones((40, 300), np.float32), genes=genes)
    rows = validate_samplesheet(sheet(tmp_path, f"sample,input,drug\ns1,{h5ad},all\ns1,{h5ad},Simulatin\n"))
    params = schema_defaults(ROOT) | {"bulk_expression": str(TEST_DATA / "bulk_expression.csv.gz"),
                                      "bulk_response": str(TEST_DATA / "bulk_response.csv")}
    preflight(rows, params)
    code = cli.main(run_args(tmp_path, sheet(tmp_path, f"sample,input,drug\ns1,{h5ad},all\n"),
                             ["--drugs", str(tmp_path / "nowhere.txt")]))
    err = capsys.readouterr().err
    assert code == 2 and f"--drugs '{tmp_path / 'nowhere.txt'}' does not exist" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
