"""Local runner: the pipeline's DAG without Nextflow, calling the same step code with the same flags.

validate                           once per sample, in the preflight (before any task)
bulk_prepare → bulk_pretrain       once per drug
cluster                            once per sample
transfer → explain, evaluate       once per (sample, drug)
screen_prepare → screen_pretrain   once, if a row's drug is `all` (a screen)
screen                             once per screened sample
multiqc                            once

Each task runs as a subprocess into a staging folder; its files move into place only when it
succeeds, and a stamp records the exact command and input file states, so a rerun skips what is
up to date (resume) and redoes only what changed or failed. Independent tasks run in parallel.

Failures by cause, as under Nextflow (conf/base.config): a sample's own bad data (exit 65) or a task killed
for memory or time stops that task's dependents only; any other failure (a code error) stops the run: running
tasks finish, nothing new starts.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import scdeal

from ..data.readers import response_paths
from ..data.writers import write_json, write_text
from ..errors import EXIT_DATA_ERROR
from .preflight import SampleCheck
from .provenance import versions_yaml
from .samplesheet import Row
from .settings import step_flags

__all__ = ["PROCESS", "Task", "build_tasks", "run_dag", "run_multiqc", "task_fingerprint", "write_pipeline_info",
           "write_validations"]

log = logging.getLogger("scdeal.run")
PROCESS = {"validate": "SCDEAL_VALIDATE", "bulk_prepare": "SCDEAL_BULK_PREPARE",
           "bulk_pretrain": "SCDEAL_BULK_PRETRAIN", "cluster": "SCDEAL_CLUSTER",
           "transfer": "SCDEAL_TRANSFER", "explain": "SCDEAL_EXPLAIN", "evaluate": "SCDEAL_EVALUATE",
           "screen_prepare": "SCDEAL_SCREEN_PREPARE", "screen_pretrain": "SCDEAL_SCREEN_PRETRAIN",
           "screen": "SCDEAL_SCREEN"}
# exit statuses that stop the failed task's pairs only: the data's own fault, or memory/time (Nextflow retries
# these with more resources first; the local runner has no more to give)
PAIR_FAILURES = frozenset({EXIT_DATA_ERROR, *range(130, 146), 104, 175})
STOPPED = "not run (run stopped)"


@dataclass
class Task:
    """One step run for one drug, sample or (sample, drug), or once for the run: its flags, inputs,
    dependencies and status."""

    name: str                      # e.g. transfer:pc9:ERLOTINIB, screen:pc9, screen_prepare
    step: str
    outdir: Path
    args: list[str]                # step flags, without --outdir/--threads
    inputs: list[Path]
    deps: list[str] = field(default_factory=list)
    run_dir: Path | None = None    # the run's outdir: fingerprints are relative to it, so results can move
    status: str = "pending"
    seconds: float = 0.0


def ext_args(step: str, params: dict[str, Any], flags: dict) -> list[str]:
    """The step's settings as flags, with this run's parameter values (as conf/flags.config passes them)."""
    out: list[str] = []
    for flag, param in flags.get(PROCESS[step], []):
        value = params.get(param)
        if value is not None:
            out += [f"--{flag}", str(value)]
    return out


def build_tasks(rows: list[Row], params: dict[str, Any], *, outdir: Path,
                checks: dict[str, SampleCheck] | None = None) -> list[Task]:
    """Every task of the run, in an order that respects dependencies: each sample's validation (done in the
    preflight: `checks`), then, for the valid samples' rows, one bulk preparation and pretraining per drug, the
    screen's (once, where a row's drug is `all`), one clustering per sample, then transfer, explanation (unless
    skipped) and evaluation (where the row has a label_key) per (sample, drug), and the screen of each
    screened sample. Without `checks`, every sample is valid."""
    flags = step_flags()
    checks = checks or {row.sample: SampleCheck(row.sample) for row in rows}
    tasks = [Task(f"validate:{sample}", "validate", outdir / "validation" / sample, [], [],
                  status="done" if check.valid else "failed") for sample, check in checks.items()]
    rows = [row for row in rows if checks[row.sample].valid]
    drugs = {}
    for row in rows:
        if not row.screen:
            drugs.setdefault(row.drug_key, row.drug)
    responses = response_paths(params["bulk_response"])
    cosmic = ["--cosmic_map", str(params["cosmic_map"])] if params.get("cosmic_map") else []
    for key in drugs:
        bdir = outdir / "bulk" / key
        prep = ["--bulk_expression", str(params["bulk_expression"]), "--bulk_response", *responses, "--drug", key,
                *cosmic]
        tasks.append(Task(f"bulk_prepare:{key}", "bulk_prepare", bdir, prep + ext_args("bulk_prepare", params, flags),
                          [Path(params["bulk_expression"]), *map(Path, responses)]))
        tasks.append(Task(f"bulk_pretrain:{key}", "bulk_pretrain", bdir,
                          ["--bulk", str(bdir / "bulk.h5ad"), "--drug", key, *ext_args("bulk_pretrain", params, flags)],
                          [bdir / "bulk.h5ad"], deps=[f"bulk_prepare:{key}"]))
    sdir = outdir / "screen" / "_bulk"  # no sample id starts with "_"
    if any(row.screen for row in rows):
        panel = ["--drugs", str(params["drugs"])] if params.get("drugs") else []
        prep = ["--bulk_expression", str(params["bulk_expression"]), "--bulk_response", *responses, *cosmic, *panel]
        tasks.append(Task("screen_prepare", "screen_prepare", sdir, prep + ext_args("screen_prepare", params, flags),
                          [Path(params["bulk_expression"]), *map(Path, responses), *map(Path, panel[1:])]))
        tasks.append(Task("screen_pretrain", "screen_pretrain", sdir,
                          ["--bulk", str(sdir / "screen_bulk.h5ad"), *ext_args("screen_pretrain", params, flags)],
                          [sdir / "screen_bulk.h5ad"], deps=["screen_prepare"]))
    samples = {}
    for row in rows:
        samples.setdefault(row.sample, row)
    for sample, row in samples.items():
        cdir = outdir / "cluster" / sample
        tasks.append(Task(f"cluster:{sample}", "cluster", cdir,
                          ["--input", str(row.input), "--sample", sample, "--species", row.species,
                           *ext_args("cluster", params, flags)], [row.input], deps=[f"validate:{sample}"]))
    for row in rows:
        key, sample = row.drug_key, row.sample
        if row.screen:
            cells = outdir / "cluster" / sample / f"{sample}.clustered.h5ad"
            tasks.append(Task(f"screen:{sample}", "screen", outdir / "screen" / sample,
                              ["--cells", str(cells), "--bulk", str(sdir / "screen_bulk.h5ad"),
                               "--model", str(sdir / "screen_model.pt"), "--sample", sample,
                               *ext_args("screen", params, flags)],
                              [cells, sdir / "screen_bulk.h5ad", sdir / "screen_model.pt"],
                              deps=[f"cluster:{sample}", "screen_pretrain"]))
            continue
        bdir, cdir = outdir / "bulk" / key, outdir / "cluster" / sample
        pdir = outdir / "predictions" / sample / key
        annotated = pdir / f"{sample}_{key}.h5ad"
        tasks.append(Task(f"transfer:{sample}:{key}", "transfer", pdir,
                          ["--cells", str(cdir / f"{sample}.clustered.h5ad"), "--bulk", str(bdir / "bulk.h5ad"),
                           "--model", str(bdir / "bulk_model.pt"), "--sample", sample, "--drug", key,
                           *ext_args("transfer", params, flags)],
                          [cdir / f"{sample}.clustered.h5ad", bdir / "bulk.h5ad", bdir / "bulk_model.pt"],
                          deps=[f"cluster:{sample}", f"bulk_pretrain:{key}"]))
        if not params.get("skip_explain"):
            tasks.append(Task(f"explain:{sample}:{key}", "explain", outdir / "explain" / sample / key,
                              ["--adata", str(annotated), "--cell_model", str(pdir / "cell_model.pt"), "--sample", sample,
                               "--drug", key, *ext_args("explain", params, flags)],
                              [annotated, pdir / "cell_model.pt"], deps=[f"transfer:{sample}:{key}"]))
        if row.label_key:
            tasks.append(Task(f"evaluate:{sample}:{key}", "evaluate", outdir / "evaluation" / sample / key,
                              ["--adata", str(annotated), "--label_key", row.label_key, "--sample", sample,
                               "--drug", key, *ext_args("evaluate", params, flags)],
                              [annotated], deps=[f"transfer:{sample}:{key}"]))
    for task in tasks:
        task.run_dir = outdir
    return tasks


def file_state(path: Path) -> list:
    """A path with the size and modification time of its file (or of every file below a folder)."""
    if not path.exists():
        return [str(path), None]
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return [str(path), [(f.stat().st_size, f.stat().st_mtime_ns) for f in files]]


def task_fingerprint(task: Task) -> str:
    """A hash of the scdeal version, the step, its flags and its inputs' states, relative to the run's outdir
    (as Nextflow's task hash holds the container image: another release reruns every step)."""
    payload = json.dumps({"version": scdeal.__version__, "step": task.step, "args": task.args,
                          "inputs": [file_state(p) for p in task.inputs]})
    if task.run_dir is not None:
        payload = payload.replace(str(task.run_dir), "$OUTDIR")
    return hashlib.sha256(payload.encode()).hexdigest()


def log_path(logdir: Path, task: Task) -> Path:
    """The log file of a task in pipeline_info/logs."""
    return logdir / f"{task.name.replace(':', '_')}.log"


def stamp_path(task: Task) -> Path:
    """The file that records a finished task's fingerprint."""
    return task.outdir / f".scdeal_{task.step}.done.json"


def up_to_date(task: Task) -> bool:
    """Whether the task finished before with the same step, flags and input states."""
    stamp = stamp_path(task)
    return stamp.exists() and json.loads(stamp.read_text()).get("fingerprint") == task_fingerprint(task)


def execute(task: Task, threads: int, logdir: Path) -> int:
    """Run one step into a staging folder, then move its files into place and stamp it."""
    staging = task.outdir.parent / f".staging.{task.outdir.name}.{task.step}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    cmd = [sys.executable, "-m", f"scdeal.pipeline.steps.{task.step}", *task.args, "--outdir", str(staging),
           "--threads", str(threads)]
    logfile = log_path(logdir, task)
    start = time.time()
    with open(logfile, "w") as fh:
        fh.write("$ " + " ".join(cmd) + "\n")
        fh.flush()
        code = subprocess.call(cmd, stdout=fh, stderr=subprocess.STDOUT, env={**os.environ, "TQDM_DISABLE": "1"})
    task.seconds = time.time() - start
    if code == 0:
        task.outdir.mkdir(parents=True, exist_ok=True)
        for item in staging.iterdir():
            os.replace(item, task.outdir / item.name)
        write_json(stamp_path(task), {"task": task.name, "fingerprint": task_fingerprint(task),
                                         "seconds": round(task.seconds, 2)})
    shutil.rmtree(staging, ignore_errors=True)
    return code


def run_dag(tasks: list[Task], outdir: Path, *, max_parallel: int, total_threads: int) -> list[Task]:
    """Run tasks as their dependencies finish. A task failing on its data skips its dependents, not the
    others; any other failure stops the run once the running tasks finish."""
    logdir = outdir / "pipeline_info" / "logs"
    logdir.mkdir(parents=True, exist_ok=True)
    by_name = {t.name: t for t in tasks}
    running: dict[Future, Task] = {}
    stopping = False
    with ThreadPoolExecutor(max_workers=max_parallel) as pool:
        while True:
            ready = []
            for task in tasks:
                if task.status != "pending":
                    continue
                if stopping:
                    task.status = STOPPED
                    continue
                dep_status = [by_name[d].status for d in task.deps]
                if any(s in ("failed", "skipped (upstream failed)") for s in dep_status):
                    task.status = "skipped (upstream failed)"
                    log.error("%s: skipped because an upstream task failed", task.name)
                elif all(s in ("done", "cached") for s in dep_status):
                    if up_to_date(task):
                        task.status = "cached"
                        log.info("%s: up to date, skipped", task.name)
                    else:
                        ready.append(task)
            launch = ready[:max_parallel - len(running)]
            # cores are shared among the tasks that will run side by side; a task alone gets them all
            threads = max(1, total_threads // max(1, len(running) + len(launch)))
            for task in launch:
                task.status = "running"
                log.info("%s: started", task.name)
                running[pool.submit(execute, task, threads, logdir)] = task
            if not running:
                if all(t.status != "pending" for t in tasks):
                    break
                continue
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                task = running.pop(future)
                code = future.result()
                task.status = "done" if code == 0 else "failed"
                log.log(logging.INFO if code == 0 else logging.ERROR, "%s: %s in %.1f s%s", task.name, task.status,
                        task.seconds, "" if code == 0 else f" (exit {code}; log: {log_path(logdir, task)})")
                if code != 0:
                    print(tail_of_log(log_path(logdir, task)), file=sys.stderr)
                if code != 0 and code not in PAIR_FAILURES and not stopping:
                    stopping = True
                    log.error("%s failed with exit %d, not a data error: stopping the run after the running "
                              "tasks (fix the cause, then rerun: finished tasks are reused)", task.name, code)
    return tasks


def tail_of_log(path: Path, lines: int = 5) -> str:
    """The last `lines` lines of a task's log, indented."""
    text = path.read_text().splitlines() if path.exists() else []
    return "\n".join("    " + line for line in text[-lines:])


def write_validations(outdir: Path, checks: dict[str, SampleCheck]) -> None:
    """validation/<sample>/<sample>.validation.json for each valid sample, as the validation step writes it."""
    for sample, check in checks.items():
        if check.valid:
            write_json(outdir / "validation" / sample / f"{sample}.validation.json", check.summary)


def write_pipeline_info(outdir: Path, root: Path, params: dict, *, tasks: list[Task], rows: list[Row]) -> None:
    """pipeline_info/: parameters, execution trace, versions, status per row, the validated samplesheet,
    the parameters section of the report and the methods description."""
    info = outdir / "pipeline_info"
    write_json(info / "params.json", params)
    trace = ["task\tstep\tstatus\tseconds\toutdir"] + [f"{t.name}\t{t.step}\t{t.status}\t{t.seconds:.2f}\t{t.outdir}"
                                                        for t in tasks]
    write_text(info / "execution_trace.tsv", "\n".join(trace) + "\n")
    write_text(info / "scdeal_software_mqc_versions.yml", versions_file(tasks))
    write_text(info / "scdeal_status.tsv", status_table(rows, tasks))
    sheet = ["sample,input,drug,species,label_key"] + [f"{r.sample},{r.input},{r.drug},{r.species},{r.label_key or ''}"
                                                       for r in rows]
    write_text(info / "samplesheet.valid.csv", "\n".join(sheet) + "\n")
    summary = {"id": "workflow_summary", "section_name": "Parameters used", "plot_type": "html",
               "description": "Every parameter of this run (defaults, profile, params file and command line).",
               "data": "<dl class='dl-horizontal'>" + "".join(f"<dt>{k}</dt><dd><samp>{v}</samp></dd>"
                                                              for k, v in sorted(params.items())
                                                              if v not in (None, "")) + "</dl>"}
    write_json(info / "workflow_summary_mqc.json", summary)
    write_methods_description(info, root)


def versions_file(tasks: list[Task]) -> str:
    """The versions of every process that ran, under Nextflow's process names, and of the workflow."""
    from importlib.metadata import version

    processes = sorted({PROCESS[t.step] for t in tasks})
    workflow = f'Workflow:\n    scdeal/scdeal: "v{scdeal.__version__}"\n    scdeal run: "local runner"\n'
    multiqc = f'"MULTIQC":\n    multiqc: "{version("multiqc")}"\n'
    return "".join(versions_yaml(process) for process in processes) + multiqc + workflow


def status_table(rows: list[Row], tasks: list[Task]) -> str:
    """One row per samplesheet row, as the Nextflow pipeline writes it: each step of the pair is done,
    failed (it, a step before it or the sample's validation failed), not run (a failure elsewhere stopped
    the run) or skipped (not asked for: --skip_explain, no label_key). A screen row (drug `all`) has
    predictions (its screen) only; its explanation and evaluation are skipped."""
    by_name = {t.name: t for t in tasks}

    def state(step: str, row: Row) -> str:
        if by_name[f"validate:{row.sample}"].status == "failed":
            return "failed"
        if row.screen:
            task = by_name.get(f"screen:{row.sample}") if step == "transfer" else None
        else:
            task = by_name.get(f"{step}:{row.sample}:{row.drug_key}")
        if task is None:
            return "skipped"
        return {"done": "done", "cached": "done", STOPPED: "not run"}.get(task.status, "failed")

    lines = ["sample\tdrug\tpredictions\texplanation\tevaluation"]
    lines += ["\t".join([r.sample, r.drug_key, state("transfer", r), state("explain", r), state("evaluate", r)]) for r in rows]
    return "\n".join(lines) + "\n"


def write_methods_description(info: Path, root: Path) -> None:
    """The methods section of the report, from the template the Nextflow pipeline also renders."""
    from .. import __version__
    text = (root / "assets" / "methods_description_template.yml").read_text()
    text = text.replace("${workflow.manifest.version}", __version__).replace("${doi_text}", "")
    write_text(info / "methods_description_mqc.yaml", text)


def run_multiqc(outdir: Path, root: Path, params: dict) -> bool:
    """Build multiqc/multiqc_report.html from the custom content the steps wrote."""
    target = outdir / "multiqc"
    staging = outdir / ".staging.multiqc"
    shutil.rmtree(staging, ignore_errors=True)
    config = params.get("multiqc_config") or str(root / "assets" / "multiqc_config.yml")
    cmd = [sys.executable, "-m", "multiqc", str(outdir), "--config", config, "--outdir", str(staging),
           "--filename", "multiqc_report.html", "--force", "--no-ansi", "--ignore", str(target),
           "--ignore", str(staging)]
    if params.get("multiqc_title"):
        cmd += ["--title", params["multiqc_title"]]
    with open(outdir / "pipeline_info" / "logs" / "multiqc.log", "w") as fh:
        code = subprocess.call(cmd, stdout=fh, stderr=subprocess.STDOUT)
    if code == 0:
        shutil.rmtree(target, ignore_errors=True)
        os.replace(staging, target)
    shutil.rmtree(staging, ignore_errors=True)
    return code == 0
