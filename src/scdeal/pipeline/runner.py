"""Local runner: the pipeline's DAG without Nextflow, calling the same step code with the same flags.

validate                           once per sample, in the preflight (before any task)
bulk_prepare → bulk_pretrain       once per drug (bulk_pretrain only with --member_init pretrained, the one
                                   setting that reads its weights)
cluster                            once per sample
transfer → explain, evaluate       once per (sample, drug)
screen_prepare → screen_pretrain   once, if a row's drug is `all` (a screen; screen_pretrain as bulk_pretrain)
screen                             once per screened sample
multiqc                            once

Each task runs in its own process into a staging folder; its files move into place only when it
succeeds, and a stamp records the exact command and input file states, so a rerun skips what is
up to date (resume) and redoes only what changed or failed. Independent tasks run in parallel. Task processes
are forked from one server that has loaded the steps' libraries once (torch, scanpy: ~4 s per fresh process).

Failures by cause, as under Nextflow (conf/base.config): a sample's own bad data (exit 65) or a task killed
for memory or time stops that task's dependents only; any other failure (a code error) stops the run: running
tasks finish, nothing new starts.
"""
from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import multiprocessing.connection
import multiprocessing.forkserver
import multiprocessing.resource_tracker
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import scdeal

from ..data.readers import response_paths
from ..data.writers import write_json, write_text
from ..errors import EXIT_DATA_ERROR
from .preflight import SampleCheck, write_validation
from .provenance import versions_yaml
from .samplesheet import Row
from .settings import step_flags
from .steps import STEPS

__all__ = ["PROCESS", "Task", "build_tasks", "run_dag", "run_multiqc", "start_task_server", "stop_task_server",
           "task_fingerprint", "write_pipeline_info", "write_validations"]

log = logging.getLogger("scdeal.run")
PROCESS = {step: f"SCDEAL_{step.upper()}" for step in STEPS}  # Nextflow's process names
# exit statuses that stop the failed task's pairs only: the data's own fault, or memory/time (Nextflow retries
# these with more resources first; the local runner has no more to give)
PAIR_FAILURES = frozenset({EXIT_DATA_ERROR, *range(130, 146), 104, 175})
STOPPED = "not run (run stopped)"
TASK_PROCESSES = multiprocessing.get_context("forkserver")
PROCESS_STATUS_LOCK = threading.Lock()


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

    def task(name: str, folder: Path, args: list, *, reads: dict[str, Path] | None = None, inputs: list[Path] = (),
             deps: list[str] = ()) -> Task:
        # the files a task reads are its first flags and its inputs; then `args`, then the step's settings
        step, reads = name.split(":")[0], reads or {}
        first = [text for flag, path in reads.items() for text in (f"--{flag}", str(path))]
        return Task(name, step, folder, [*first, *map(str, args), *ext_args(step, params, flags)],
                    [*reads.values(), *inputs], list(deps), run_dir=outdir)

    checks = checks or {row.sample: SampleCheck(row.sample) for row in rows}
    tasks = [Task(f"validate:{sample}", "validate", outdir / "validation" / sample, [], [], run_dir=outdir,
                  status="done" if check.valid else "failed") for sample, check in checks.items()]
    rows = [row for row in rows if checks[row.sample].valid]
    responses = response_paths(params["bulk_response"])
    tables = ["--bulk_expression", params["bulk_expression"], "--bulk_response", *responses]
    table_files = [Path(params["bulk_expression"]), *map(Path, responses)]
    cosmic = ["--cosmic_map", params["cosmic_map"]] if params.get("cosmic_map") else []
    pretrained = params.get("member_init") == "pretrained"
    for key in dict.fromkeys(row.drug_key for row in rows if not row.screen):
        bdir = outdir / "bulk" / key
        tasks.append(task(f"bulk_prepare:{key}", bdir, [*tables, "--drug", key, *cosmic], inputs=table_files))
        if pretrained:
            tasks.append(task(f"bulk_pretrain:{key}", bdir, ["--drug", key], reads={"bulk": bdir / "bulk.h5ad"},
                              deps=[f"bulk_prepare:{key}"]))
    sdir = outdir / "screen" / "_bulk"  # no sample id starts with "_"
    if any(row.screen for row in rows):
        panel = ["--drugs", params["drugs"]] if params.get("drugs") else []
        tasks.append(task("screen_prepare", sdir, [*tables, *cosmic, *panel], inputs=[*table_files, *map(Path, panel[1:])]))
        if pretrained:
            tasks.append(task("screen_pretrain", sdir, [], reads={"bulk": sdir / "screen_bulk.h5ad"},
                              deps=["screen_prepare"]))
    for sample, row in {row.sample: row for row in rows}.items():  # a sample has one input and species
        tasks.append(task(f"cluster:{sample}", outdir / "cluster" / sample, ["--sample", sample, "--species", row.species],
                          reads={"input": row.input}, deps=[f"validate:{sample}"]))
    for row in rows:
        key, sample = row.drug_key, row.sample
        cells = outdir / "cluster" / sample / f"{sample}.clustered.h5ad"
        if row.screen:
            model = {"model": sdir / "screen_model.pt"} if pretrained else {}
            tasks.append(task(f"screen:{sample}", outdir / "screen" / sample, ["--sample", sample],
                              reads={"cells": cells, "bulk": sdir / "screen_bulk.h5ad", **model},
                              deps=[f"cluster:{sample}", "screen_pretrain" if pretrained else "screen_prepare"]))
            continue
        bdir, pdir = outdir / "bulk" / key, outdir / "predictions" / sample / key
        pair, annotated = ["--sample", sample, "--drug", key], {"adata": pdir / f"{sample}_{key}.h5ad"}
        model = {"model": bdir / "bulk_model.pt"} if pretrained else {}
        tasks.append(task(f"transfer:{sample}:{key}", pdir, pair, reads={"cells": cells, "bulk": bdir / "bulk.h5ad", **model},
                          deps=[f"cluster:{sample}", f"bulk_{'pretrain' if pretrained else 'prepare'}:{key}"]))
        if not params.get("skip_explain"):
            tasks.append(task(f"explain:{sample}:{key}", outdir / "explain" / sample / key, pair,
                              reads={**annotated, "cell_model": pdir / "cell_model.pt"}, deps=[f"transfer:{sample}:{key}"]))
        if row.label_key:
            tasks.append(task(f"evaluate:{sample}:{key}", outdir / "evaluation" / sample / key,
                              ["--label_key", row.label_key, *pair], reads=annotated, deps=[f"transfer:{sample}:{key}"]))
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


def start_task_server() -> None:
    """Start, in the background, the server that forks every task process, loading the steps' modules into it
    once (a fresh interpreter spends ~4 s importing them); the first task waits for it."""
    TASK_PROCESSES.set_forkserver_preload([f"scdeal.pipeline.steps.{step}" for step in STEPS])
    threading.Thread(target=multiprocessing.forkserver.ensure_running, daemon=True).start()


def stop_task_server() -> None:
    """Stop the task server and reap it, so that the run's resource usage counts every task's (`/usr/bin/time`,
    a scheduler's accounting: the server has reaped its tasks). Python has no public call for it. The server is
    killed rather than asked to exit: it holds no files, and unloading its libraries took ~1.3 s. The resource
    tracker it started is stopped too, so that no process of the run outlives it."""
    server = multiprocessing.forkserver._forkserver
    if server._forkserver_pid is not None:
        os.kill(server._forkserver_pid, signal.SIGKILL)
    server._stop()
    multiprocessing.resource_tracker._resource_tracker._stop()


def run_task_process(argv: list[str], logfile: str) -> None:
    """The body of a task's process: the step's output appended to its log, its exit status as the process's."""
    with open(logfile, "a") as fh:
        os.dup2(fh.fileno(), sys.stdout.fileno())
        os.dup2(fh.fileno(), sys.stderr.fileno())
    os.environ["TQDM_DISABLE"] = "1"
    from .cli import main
    sys.exit(main(argv))


def run_task_target(target, args: tuple, name: str | None = None) -> int:
    """Run `target(*args)` in a process forked by the task server; its exit status, as a shell's. The runner's
    threads call this side by side. Starting a process reads the exit status of every other finished one
    (multiprocessing's `_cleanup`) from the same pipe a join reads, and the loser of that race reads 255: so
    starts and reads hold one lock, and only the wait for the process to end runs outside it."""
    process = TASK_PROCESSES.Process(target=target, args=args, name=name)
    with PROCESS_STATUS_LOCK:
        process.start()
    multiprocessing.connection.wait([process.sentinel])
    with PROCESS_STATUS_LOCK:
        process.join()
    return process.exitcode if process.exitcode >= 0 else 128 - process.exitcode


def execute(task: Task, threads: int, logdir: Path) -> int:
    """Run one step into a staging folder, then move its files into place and stamp it. The exit status is a
    shell's: 128 + N for a process killed by signal N (137: killed, as for memory)."""
    staging = task.outdir.parent / f".staging.{task.outdir.name}.{task.step}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    argv = [task.step, *task.args, "--outdir", str(staging), "--threads", str(threads)]
    logfile = log_path(logdir, task)
    start = time.time()
    logfile.write_text("$ " + " ".join([sys.executable, "-m", "scdeal.pipeline.cli", *argv]) + "\n")
    code = run_task_target(run_task_process, (argv, str(logfile)), name=task.name)
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
                    stamp = stamp_path(task)  # finished before with the same step, flags and input states
                    if stamp.exists() and json.loads(stamp.read_text()).get("fingerprint") == task_fingerprint(task):
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
                if code != 0:  # the last lines of the task's log
                    logfile = log_path(logdir, task)
                    lines = logfile.read_text().splitlines() if logfile.exists() else []
                    print("\n".join("    " + line for line in lines[-5:]), file=sys.stderr)
                if code != 0 and code not in PAIR_FAILURES and not stopping:
                    stopping = True
                    log.error("%s failed with exit %d, not a data error: stopping the run after the running "
                              "tasks (fix the cause, then rerun: finished tasks are reused)", task.name, code)
    return tasks


def write_validations(outdir: Path, checks: dict[str, SampleCheck], params: dict) -> None:
    """validation/<sample>/<sample>.validation.json for each valid sample, as the validation step writes it."""
    for sample, check in checks.items():
        if check.valid:
            write_validation(outdir / "validation" / sample, check, params)


def write_pipeline_info(outdir: Path, root: Path, params: dict, *, tasks: list[Task], rows: list[Row]) -> None:
    """pipeline_info/: parameters, execution trace, versions, status per row, the validated samplesheet,
    the parameters section of the report and the methods description (from the template Nextflow renders)."""
    info = outdir / "pipeline_info"
    write_json(info / "params.json", params)
    trace = ["task\tstep\tstatus\tseconds\toutdir"] + [f"{t.name}\t{t.step}\t{t.status}\t{t.seconds:.2f}\t{t.outdir}"
                                                        for t in tasks]
    write_text(info / "execution_trace.tsv", "\n".join(trace) + "\n")
    # the versions of every process that ran, under Nextflow's process names, and of the workflow
    versions = [versions_yaml(process) for process in sorted({PROCESS[t.step] for t in tasks})]
    versions += [f'"MULTIQC":\n    multiqc: "{version("multiqc")}"\n',
                 f'Workflow:\n    scdeal/scdeal: "v{scdeal.__version__}"\n    scdeal run: "local runner"\n']
    write_text(info / "scdeal_software_mqc_versions.yml", "".join(versions))
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
    methods = (root / "assets" / "methods_description_template.yml").read_text()
    write_text(info / "methods_description_mqc.yaml",
               methods.replace("${workflow.manifest.version}", scdeal.__version__).replace("${doi_text}", ""))


def status_table(rows: list[Row], tasks: list[Task]) -> str:
    """One row per samplesheet row, as the Nextflow pipeline writes it: each step of the pair is done,
    failed (it, a step before it or the sample's validation failed), not run (a failure elsewhere stopped
    the run) or skipped (not asked for: --skip_explain, no label_key). A screen row (drug `all`) has
    predictions (its screen) only; its explanation and evaluation are skipped."""
    by_name = {t.name: t for t in tasks}

    def state(step: str, row: Row) -> str:
        if by_name[f"validate:{row.sample}"].status == "failed":
            return "failed"
        task = by_name.get(f"{step}:{row.sample}:{row.drug_key}" if not row.screen else
                           f"screen:{row.sample}" if step == "transfer" else "")
        if task is None:
            return "skipped"
        return {"done": "done", "cached": "done", STOPPED: "not run"}.get(task.status, "failed")

    lines = ["sample\tdrug\tpredictions\texplanation\tevaluation"]
    lines += ["\t".join([r.sample, r.drug_key, state("transfer", r), state("explain", r), state("evaluate", r)]) for r in rows]
    return "\n".join(lines) + "\n"


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
