"""The local runner end to end on the test profile: outputs, report, resume, failures, kill-and-resume."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import anndata as ad
import pandas as pd
import pytest

import scdeal
from conftest import ROOT
from scdeal.pipeline.config import schema_defaults
from scdeal.pipeline.runner import build_tasks, run_task_target, task_fingerprint
from scdeal.pipeline.samplesheet import Row
from test_nextflow_static import glob_regex

SCDEAL = [sys.executable, "-m", "scdeal.pipeline.cli"]
FAST = ["--bulk_epochs", "15", "--epochs", "8", "--ig_steps", "8"]


def scdeal_run(*args, timeout=600):
    env = {**os.environ, "TQDM_DISABLE": "1"}
    return subprocess.run([*SCDEAL, "run", *args], capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def test_profile_run(tmp_path_factory):
    outdir = tmp_path_factory.mktemp("run") / "results"
    proc = scdeal_run("-profile", "test", "--outdir", str(outdir), *FAST)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return outdir, proc


@pytest.mark.slow
def test_predictions_and_annotated_h5ad(test_profile_run):
    outdir, _ = test_profile_run
    for sample in ("sample1", "sample2"):
        pred = pd.read_csv(outdir / "predictions" / sample / "SIMULATIN" / "predictions.tsv", sep="\t")
        assert list(pred.columns[:4]) == ["cell_id", "prob_sensitive", "predicted_label", "cluster"]
        assert pred["prob_sensitive"].between(0, 1).all()
        assert set(pred["predicted_label"]) <= {"sensitive", "resistant", "uncertain"}
        adata = ad.read_h5ad(outdir / "predictions" / sample / "SIMULATIN" / f"{sample}_SIMULATIN.h5ad")
        assert {"prob_sensitive", "prob_sensitive_sd", "predicted_label", "cluster"} <= set(adata.obs)
        assert pred["prob_sensitive_baseline"].between(0, 1).all()  # --baseline logistic, beside scdeal
        assert "X_scdeal" in adata.obsm and "X_umap" in adata.obsm
        assert list(adata.obs_names) == list(pred["cell_id"])


@pytest.mark.slow
def test_bulk_model_uses_binary_labels_and_the_continuous_response(test_profile_run):
    outdir, _ = test_profile_run
    summary = json.loads((outdir / "bulk" / "SIMULATIN" / "bulk_summary.json").read_text())
    assert summary["response_kind"] == "binary+LN_IC50" and summary["n_with_continuous_response"] == summary["n_matched"]
    # each member's direct model (stage `source` of the transfer's history) learns the simulated LN_IC50 too
    history = pd.read_csv(outdir / "predictions" / "sample1" / "SIMULATIN" / "transfer_history.tsv", sep="\t")
    assert history.loc[history["stage"] == "source", "val_response_mse"].dropna().min() < 1.0


@pytest.mark.slow
def test_evaluation_shows_the_model_learned(test_profile_run):
    outdir, _ = test_profile_run
    metrics = pd.read_csv(outdir / "evaluation" / "sample1" / "SIMULATIN" / "metrics.tsv", sep="\t").iloc[0]
    assert metrics["auroc"] >= 0.85
    assert {"precision", "recall", "f1", "ap", "ami", "baseline_auroc", "baseline_ap"} <= set(metrics.index)
    summary = json.loads((outdir / "predictions" / "sample1" / "SIMULATIN" / "transfer_summary.json").read_text())
    assert summary["comparison"]["baseline"] == "logistic"
    assert summary["comparison"]["baseline_bulk_test_auroc"] > 0.7 and summary["comparison"]["scdeal_bulk_test_auroc"] > 0.7


@pytest.mark.slow
def test_every_output_records_its_provenance(test_profile_run):
    outdir, _ = test_profile_run
    summary = json.loads((outdir / "predictions" / "sample1" / "SIMULATIN" / "transfer_summary.json").read_text())
    prov = summary["provenance"]
    assert prov["parameters"]["seed"] == 0 and prov["versions"]["torch"]
    assert all(len(v["sha256"]) == 64 for v in prov["inputs"].values())
    params = json.loads((outdir / "pipeline_info" / "params.json").read_text())
    assert params["epochs"] == 8 and params["n_ensemble"] == 2  # command line over test profile over defaults


@pytest.mark.slow
def test_report_has_every_section(test_profile_run):
    outdir, _ = test_profile_run
    html = outdir / "multiqc" / "multiqc_report.html"
    assert html.stat().st_size > 10_000
    data = json.loads((outdir / "multiqc" / "multiqc_report_data" / "multiqc_data.json").read_text())
    sections = json.dumps(data) + html.read_text()  # html-only sections (summary, methods) live in the page
    for section in ("scdeal_bulk_lines", "scdeal_samples", "scdeal_transfer_curve_sample1_SIMULATIN",
                    "scdeal_signature_sample1_SIMULATIN", "scdeal_evaluation", "scdeal_comparison", "workflow_summary",
                    "methods_description", "software_versions"):
        assert section in sections, section
    general = pd.read_csv(outdir / "multiqc" / "multiqc_report_data" / "multiqc_general_stats.txt", sep="\t")
    assert len(general) == 2
    columns = " ".join(general.columns)
    for key in ("cells_in", "cells_after_qc", "genes_shared", "clusters", "frac_sensitive", "auroc", "ap", "f1"):
        assert key in columns, key
    assert (outdir / "predictions" / "sample1" / "SIMULATIN" / "sample1_SIMULATIN_umap.png").stat().st_size > 5000
    for section in ("scdeal_umap_sample1_SIMULATIN", "scdeal_signature_heatmap_sample1_SIMULATIN"):
        assert section in sections, section


def mqc_table_columns(path: Path) -> tuple[set[str], set[str] | None]:
    """Data columns of a MultiQC custom-content TSV, and the columns its `headers` block names (None: no block)."""
    import yaml
    lines = path.read_text().splitlines()
    config = yaml.safe_load("\n".join(line[2:] for line in lines if line.startswith("# ")))
    header = next(line for line in lines if not line.startswith("#")).split("\t")
    named = set(config["headers"]) if "headers" in config else None
    return set(header[1:]), named


@pytest.mark.slow
def test_report_tables_show_every_column(test_profile_run):
    """MultiQC hides a column left out of a `headers` block (the signature tables once hid their genes)."""
    outdir, _ = test_profile_run
    tables = list(outdir.rglob("*_mqc.tsv"))
    assert any(t.name.endswith("_signature_mqc.tsv") for t in tables)
    for table in tables:
        columns, named = mqc_table_columns(table)
        assert named is None or columns <= named, f"{table.name}: {sorted(columns - named)} hidden in the report"
    html = (outdir / "multiqc" / "multiqc_report.html").read_text()
    gene = pd.read_csv(outdir / "explain" / "sample1" / "SIMULATIN" / "signature_genes.tsv", sep="\t")["gene"].iloc[0]
    assert f'<span class="val">{gene}</span>' in html


@pytest.mark.slow
def test_rerun_resumes_everything(test_profile_run, tmp_path):
    outdir, _ = test_profile_run
    before = (outdir / "predictions" / "sample1" / "SIMULATIN" / "predictions.tsv").read_bytes()
    proc = scdeal_run("-profile", "test", "--outdir", str(outdir), *FAST)
    assert proc.returncode == 0
    assert proc.stderr.count("up to date, skipped") == 11  # every task: no bulk model is pretrained by default
    assert (outdir / "predictions" / "sample1" / "SIMULATIN" / "predictions.tsv").read_bytes() == before


@pytest.mark.slow
def test_changed_parameter_reruns_only_what_depends_on_it(test_profile_run, tmp_path):
    outdir = tmp_path / "results"
    shutil.copytree(test_profile_run[0], outdir)
    proc = scdeal_run("-profile", "test", "--outdir", str(outdir), *FAST, "--top_genes", "20")
    assert proc.returncode == 0
    assert "explain:sample1:SIMULATIN: started" in proc.stderr
    assert "transfer:sample1:SIMULATIN: started" not in proc.stderr


def fingerprints(rows: list[Row], tmp_path: Path) -> dict[str, str]:
    params = schema_defaults(ROOT) | {"bulk_expression": "e", "bulk_response": "r"}
    return {t.name: task_fingerprint(t) for t in build_tasks(rows, params, outdir=tmp_path)}


def test_resume_keys_hold_only_what_each_task_reads(tmp_path):
    """As under Nextflow (metaFor in workflows/scdeal.nf): a new label_key reruns the evaluation alone,
    and another spelling of the drug reruns nothing."""
    before = fingerprints([Row("s1", tmp_path / "s1.h5ad", "Erlotinib", "human", "response")], tmp_path)
    relabelled = fingerprints([Row("s1", tmp_path / "s1.h5ad", "Erlotinib", "human", "truth")], tmp_path)
    respelled = fingerprints([Row("s1", tmp_path / "s1.h5ad", "ERLOTINIB", "human", "response")], tmp_path)
    assert {name for name in before if before[name] != relabelled[name]} == {"evaluate:s1:ERLOTINIB"}
    assert respelled == before


def test_another_scdeal_release_reruns_every_task(tmp_path, monkeypatch):
    """Nextflow's task hash holds the container image; the local runner's holds the scdeal version."""
    rows = [Row("s1", tmp_path / "s1.h5ad", "Erlotinib", "human", "response")]
    before = fingerprints(rows, tmp_path)
    monkeypatch.setattr(scdeal, "__version__", "99.0.0")
    after = fingerprints(rows, tmp_path)
    assert before.keys() == after.keys() and all(before[name] != after[name] for name in before)


@pytest.mark.slow
def test_local_tree_is_the_pipeline_tree(test_profile_run):
    """Every file a step writes is an output of its module (so Nextflow publishes it too), and the tree is
    the one the nf-test snapshot expects from Nextflow."""
    from scdeal.pipeline.runner import PROCESS
    outdir, _ = test_profile_run
    folders = {"bulk": ["bulk_prepare", "bulk_pretrain"], "cluster": ["cluster"], "predictions": ["transfer"],
               "explain": ["explain"], "evaluation": ["evaluate"],
               "screen": ["screen_prepare", "screen_pretrain", "screen"]}  # screen/: only with a drug `all` row
    written = set()
    for folder, steps in folders.items():
        patterns = []
        for step in steps:
            text = (ROOT / "modules" / "local" / "scdeal" / step / "main.nf").read_text()
            outputs = text.split("output:")[1].split("when:")[0]
            patterns += [glob_regex(p) for p in re.findall(r'path\("\$\{prefix\}/([^"]+)"\)', outputs)]
        for path in (outdir / folder).rglob("*"):
            rel = path.relative_to(outdir).as_posix()
            written.add(rel)
            if path.is_file() and not path.name.startswith(".scdeal_"):
                assert any(re.fullmatch(p, path.name) for p in patterns), f"{rel} is not an output of {PROCESS[steps[0]]}"
    written = {w for w in written if not w.rsplit("/", 1)[-1].startswith(".scdeal_")}
    written |= {folder for folder in folders if (outdir / folder).exists()}
    snapshot = json.loads((ROOT / "tests" / "default.nf.test.snap").read_text())["-profile test"]["content"][2]
    assert written == {entry for entry in snapshot if entry.split("/")[0] in folders}


def test_steps_use_only_the_cores_they_are_given():
    """--threads (task.cpus under Nextflow) caps torch, BLAS/OpenMP and numba, whatever the node has."""
    code = ("import importlib, numba, threadpoolctl, torch\n"
            "for step in ('cluster', 'transfer', 'explain', 'bulk_prepare'):\n"
            "    importlib.import_module(f'scdeal.pipeline.steps.{step}')\n"
            "from scdeal.pipeline.steps.common import limit_threads\n"
            "limit_threads(1)\n"
            "pools = {p['internal_api']: p['num_threads'] for p in threadpoolctl.threadpool_info()}\n"
            "print(pools, numba.get_num_threads(), torch.get_num_threads())\n"
            "assert set(pools.values()) == {1} and {'openblas', 'openmp'} <= set(pools), pools\n"
            "assert numba.get_num_threads() == 1 and torch.get_num_threads() == 1\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")})
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_dag_shape_for_many_samples_and_drugs(tmp_path):
    rows = [Row(f"s{i}", tmp_path / f"s{i}.h5ad", drug, "human", None)
            for i in range(10) for drug in ("Erlotinib", "Gefitinib", "I-BET-762")]
    params = schema_defaults(ROOT) | {"bulk_expression": "e", "bulk_response": "r"}
    tasks = {t.name: t for t in build_tasks(rows, params, outdir=tmp_path)}
    steps = pd.Series([t.step for t in tasks.values()]).value_counts()
    # bulk work once per drug; by default no bulk model is pretrained (the members fit their own)
    assert steps["bulk_prepare"] == 3 and steps["cluster"] == 10 and steps["transfer"] == 30
    assert "evaluate" not in steps and "bulk_pretrain" not in steps
    transfer = tasks["transfer:s3:ERLOTINIB"]
    assert transfer.deps == ["cluster:s3", "bulk_prepare:ERLOTINIB"] and "--model" not in transfer.args
    assert args_of(transfer)["bulk_lr"] == "0.001" and args_of(transfer)["lr"] == "0.0001"
    params["member_init"] = "pretrained"
    tasks = {t.name: t for t in build_tasks(rows, params, outdir=tmp_path)}
    assert sum(t.step == "bulk_pretrain" for t in tasks.values()) == 3
    transfer = tasks["transfer:s3:ERLOTINIB"]
    assert transfer.deps == ["cluster:s3", "bulk_pretrain:ERLOTINIB"]
    assert args_of(transfer)["model"] == str(tmp_path / "bulk" / "ERLOTINIB" / "bulk_model.pt")


@pytest.mark.slow
def test_failure_in_one_sample_keeps_the_others(tmp_path):
    """A sample whose data fails its validation stops its own pairs alone; the run reports and ends non-zero."""
    data = tmp_path / "data"
    shutil.copytree(ROOT / "assets" / "test_data", data)
    broken = ad.read_h5ad(data / "sample2.h5ad")
    frame = pd.DataFrame(broken.X.toarray(), index=broken.obs_names,
                         columns=[f"OTHER{i}" for i in range(broken.n_vars)])  # no gene shared with the bulk model
    frame.to_csv(data / "sample2.csv")
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("sample,input,drug\nsample1,data/sample1.h5ad,Simulatin\nsample2,data/sample2.csv,Simulatin\n")
    outdir = tmp_path / "results"
    proc = scdeal_run("--input", str(sheet), "--outdir", str(outdir), "--bulk_expression", str(data / "bulk_expression.csv.gz"),
                      "--bulk_response", str(data / "bulk_response.csv"), *FAST, "--skip_explain")
    # as under Nextflow: the other pairs finish, the report is written, and the run ends non-zero
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "validate:sample2" in proc.stderr and "sample 'sample2'" in proc.stderr and "shares only 0 genes" in proc.stderr
    assert not (outdir / "cluster" / "sample2").exists(), "nothing runs for a sample that failed its validation"
    summary = json.loads((outdir / "validation" / "sample1" / "sample1.validation.json").read_text())
    assert summary["n_cells"] > 0 and summary["genes_shared_with_bulk"] >= 200
    assert (outdir / "predictions" / "sample1" / "SIMULATIN" / "predictions.tsv").exists()
    assert not list((outdir / "predictions").glob("sample2/**/predictions.tsv"))
    assert (outdir / "multiqc" / "multiqc_report.html").exists()
    status = pd.read_csv(outdir / "pipeline_info" / "scdeal_status.tsv", sep="\t", index_col="sample")
    assert status.loc["sample1", ["predictions", "explanation", "evaluation"]].tolist() == ["done", "skipped", "skipped"]
    assert status.loc["sample2", "predictions"] == "failed"
    assert "scdeal_status.tsv" in proc.stderr


@pytest.mark.slow
def test_killed_run_leaves_nothing_that_looks_finished_and_resumes(tmp_path, test_profile_run):
    outdir = tmp_path / "results"
    proc = subprocess.Popen([*SCDEAL, "run", "-profile", "test", "--outdir", str(outdir), *FAST],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and not list(outdir.glob("cluster/*/.scdeal_cluster.done.json")):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    # whatever was running is staged only: no predictions or stamps without their files
    for stamp in outdir.rglob(".scdeal_*.done.json"):
        assert any(stamp.parent.iterdir())
    assert not list(outdir.rglob("predictions.tsv")) or all(
        (p.parent / ".scdeal_transfer.done.json").exists() for p in outdir.rglob("predictions.tsv"))
    resumed = scdeal_run("-profile", "test", "--outdir", str(outdir), *FAST)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "up to date, skipped" in resumed.stderr
    assert not list(outdir.rglob(".staging.*"))
    fresh, _ = test_profile_run  # the same run, uninterrupted
    for sample in ("sample1", "sample2"):
        rel = Path("predictions") / sample / "SIMULATIN" / "predictions.tsv"
        assert (outdir / rel).read_bytes() == (fresh / rel).read_bytes()


# ------------------------------------------------------------------ screens (drug `all`)

def screen_tasks(tmp_path: Path, rows: list[Row], **params) -> dict[str, object]:
    defaults = schema_defaults(ROOT) | {"bulk_expression": "e.csv", "bulk_response": "r1.csv,r2.csv"}
    return {t.name: t for t in build_tasks(rows, defaults | params, outdir=tmp_path)}


def args_of(task) -> dict[str, str]:
    """A task's flags and their (first) values."""
    return {a[2:]: task.args[i + 1] for i, a in enumerate(task.args) if a.startswith("--")}


def test_a_screen_builds_its_bulk_model_once_and_one_screen_per_sample(tmp_path):
    rows = [Row("s1", tmp_path / "s1.h5ad", "all", "human", None), Row("s2", tmp_path / "s2.h5ad", "ALL", "human", None),
            Row("s1", tmp_path / "s1.h5ad", "Erlotinib", "human", "response"),
            Row("s3", tmp_path / "s3.h5ad", "Erlotinib", "human", None)]
    tasks = screen_tasks(tmp_path, rows)
    steps = pd.Series([t.step for t in tasks.values()]).value_counts().to_dict()
    assert steps == {"validate": 3, "screen_prepare": 1, "screen": 2, "cluster": 3, "bulk_prepare": 1, "transfer": 2,
                     "explain": 2, "evaluate": 1}
    assert not [name for name in tasks if name.endswith(":ALL")], "no single-drug step for a screen row"
    bulk = tmp_path / "screen" / "_bulk"
    prepare, screen = tasks["screen_prepare"], tasks["screen:s1"]
    assert prepare.outdir == bulk and screen.outdir == tmp_path / "screen" / "s1"
    assert prepare.deps == []
    assert screen.deps == ["cluster:s1", "screen_prepare"] and tasks["screen:s2"].deps == ["cluster:s2", "screen_prepare"]
    assert prepare.args[:5] == ["--bulk_expression", "e.csv", "--bulk_response", "r1.csv", "r2.csv"]
    assert args_of(prepare)["seed"] == "0"
    assert "drug" not in args_of(prepare) and "drugs" not in args_of(prepare) and "cosmic_map" not in args_of(prepare)
    flags = args_of(screen)
    assert flags["cells"] == str(tmp_path / "cluster" / "s1" / "s1.clustered.h5ad")
    assert flags["bulk"] == str(bulk / "screen_bulk.h5ad") and "model" not in flags and flags["bulk_lr"] == "0.001"
    pretrained = screen_tasks(tmp_path, rows, member_init="pretrained")  # the one setting that reads its weights
    pretrain = pretrained["screen_pretrain"]
    assert pretrain.outdir == bulk and pretrain.deps == ["screen_prepare"] and args_of(pretrain)["lr"] == "0.001"
    assert pretrained["screen:s1"].deps == ["cluster:s1", "screen_pretrain"]
    assert args_of(pretrained["screen:s1"])["model"] == str(bulk / "screen_model.pt")
    assert flags["sample"] == "s1" and flags["min_bulk_auroc"] == "0.65" and flags["top_drugs"] == "20"
    assert "baseline" not in flags and "drug" not in flags
    assert screen.inputs == [tmp_path / "cluster" / "s1" / "s1.clustered.h5ad", bulk / "screen_bulk.h5ad"]


def test_drugs_reaches_the_screen_preparation(tmp_path):
    panel = tmp_path / "panel.txt"
    rows = [Row("s1", tmp_path / "s1.h5ad", "all", "human", None)]
    prepare = screen_tasks(tmp_path, rows, drugs=str(panel), cosmic_map="c.csv")["screen_prepare"]
    assert args_of(prepare)["drugs"] == str(panel) and args_of(prepare)["cosmic_map"] == "c.csv"
    assert panel in prepare.inputs  # an edited panel reruns the screen
    before = task_fingerprint(prepare)
    panel.write_text("Erlotinib\n")
    assert task_fingerprint(prepare) != before


def test_a_screen_leaves_the_single_drug_tasks_as_they_were(tmp_path):
    single = [Row("s1", tmp_path / "s1.h5ad", "Erlotinib", "human", "response"),
              Row("s2", tmp_path / "s2.h5ad", "I-BET-762", "human", None)]
    alone = screen_tasks(tmp_path, single)
    mixed = screen_tasks(tmp_path, [single[0], Row("s1", tmp_path / "s1.h5ad", "all", "human", None), single[1]],
                         drugs="panel.txt")
    assert not [name for name in alone if name.startswith("screen")]
    assert {name: t for name, t in mixed.items() if not name.startswith("screen")}.keys() == alone.keys()
    for name, task in alone.items():
        assert (mixed[name].args, mixed[name].outdir, mixed[name].inputs, mixed[name].deps) == \
               (task.args, task.outdir, task.inputs, task.deps), name


def test_status_table_lists_screen_rows(tmp_path):
    from scdeal.pipeline.runner import status_table
    rows = [Row("s1", tmp_path / "s1.h5ad", "all", "human", None), Row("s2", tmp_path / "s2.h5ad", "all", "human", None),
            Row("s1", tmp_path / "s1.h5ad", "Erlotinib", "human", None)]
    tasks = screen_tasks(tmp_path, rows)
    for task in tasks.values():
        task.status = "done"
    tasks["screen:s2"].status = "skipped (upstream failed)"
    lines = status_table(rows, list(tasks.values())).splitlines()
    assert lines[0] == "sample\tdrug\tpredictions\texplanation\tevaluation"
    assert lines[1:] == ["s1\tALL\tdone\tskipped\tskipped", "s2\tALL\tfailed\tskipped\tskipped",
                         "s1\tERLOTINIB\tdone\tdone\tskipped"]


def fake_run(monkeypatch, codes: dict[str, int]):
    """run_dag with each task's exit status given by `codes` instead of running its step."""
    from scdeal.pipeline import runner
    monkeypatch.setattr(runner, "execute", lambda task, threads, logdir: codes.get(task.name, 0))
    return runner.run_dag


@pytest.mark.parametrize(("code", "stops"), [(65, False), (137, False), (1, True)])
def test_failures_by_cause(tmp_path, monkeypatch, code, stops):
    """As conf/base.config: a data error (65) or a kill for memory/time stops the failed task's dependents
    only; any other exit (a code error) stops the run: nothing new starts."""
    from scdeal.pipeline.runner import Task
    tasks = [Task("a", "cluster", tmp_path / "a", [], []), Task("a2", "transfer", tmp_path / "a2", [], [], deps=["a"]),
             Task("b", "cluster", tmp_path / "b", [], []), Task("b2", "transfer", tmp_path / "b2", [], [], deps=["b"])]
    fake_run(monkeypatch, {"a": code})(tasks, tmp_path, max_parallel=1, total_threads=1)
    status = {t.name: t.status for t in tasks}
    assert status["a"] == "failed" and status["a2"] in ("skipped (upstream failed)", "not run (run stopped)")
    assert (status["b"], status["b2"]) == (("not run (run stopped)",) * 2 if stops else ("done", "done"))


def test_tasks_side_by_side_read_their_own_exit_status():
    """Processes started and joined from several threads at once: starting one polls the others' exit statuses
    (multiprocessing's `_cleanup`), which raced a join reading the same pipe and read 255 for a task that had
    exited 0. Every one of them must report 0."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        codes = list(pool.map(lambda _: run_task_target(os.getpid, ()), range(200)))
    assert codes == [0] * 200
