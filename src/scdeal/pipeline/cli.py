"""`scdeal` command line: `run` (the local pipeline runner), `simulate`, and each pipeline step."""
from __future__ import annotations

import importlib
import logging
import os
import sys
import traceback
from pathlib import Path

from .. import __version__
from ..errors import InputError
from .steps import STEPS

__all__ = ["main", "parse_run_args", "run_help"]

DEBUG_FLAGS = ("--debug", "-debug")

USAGE = f"""scdeal {__version__}: single-cell drug response from bulk cell-line screens

usage:
  scdeal run --input SHEET.csv --outdir DIR --bulk_expression F --bulk_response F [--PARAM VALUE ...]
             [-profile test] [-params-file params.yml] [--max_parallel N] [--debug]
  scdeal run --help         the parameters, grouped as in nextflow_schema.json
  scdeal simulate --outdir DIR [--n_samples N --n_cells N --seed S]
  scdeal sync-config [--check]  write (or check) the Nextflow files generated from the steps' settings
  scdeal STEP --help        STEP: {', '.join(STEPS)}

Parameters are those of nextflow_schema.json (`nextflow run . --help` lists them); values come from
the schema defaults, then -profile, then -params-file, then the command line.
"""


def parse_run_args(argv: list[str]) -> tuple[dict, list[str], str | None, dict]:
    """Nextflow-style arguments: -profile a,b, -params-file F, -resume, --param value / --flag.

    Returns:
        The parameter overrides, the profiles, the params file and the runner's own options (max_parallel).
    """
    overrides, profiles, params_file, options = {}, [], None, {"max_parallel": None}
    i = 0
    while i < len(argv):
        arg, nxt = argv[i], argv[i + 1] if i + 1 < len(argv) else None
        i += 1
        if arg in ("-profile", "-params-file") and nxt:
            i += 1
            if arg == "-profile":
                profiles += [p for p in nxt.split(",") if p]
            else:
                params_file = nxt
        elif arg == "-h":
            overrides["help"] = True
        elif arg.startswith("--"):
            key, value = arg[2:].replace("-", "_"), True
            if "=" in key:
                key, value = key.split("=", 1)
            elif nxt is not None and not nxt.startswith("-"):
                value, i = nxt, i + 1
            if key in options:
                options[key] = int(value)
            else:
                overrides[key] = value
        elif arg != "-resume":  # resuming is the default: up-to-date tasks are always skipped
            raise InputError(f"Unexpected argument '{arg}': parameters are written --name value.\n{USAGE}")
    return overrides, profiles, params_file, options


def cmd_run(argv: list[str]) -> int:
    """`scdeal run`: check the inputs, run every task of the DAG, write pipeline_info and the report."""
    from .config import project_dir, resolve_params
    from .preflight import preflight
    from .runner import (
        build_tasks,
        run_dag,
        run_multiqc,
        start_task_server,
        stop_task_server,
        write_pipeline_info,
        write_validations,
    )
    from .samplesheet import validate_samplesheet

    overrides, profiles, params_file, options = parse_run_args(argv)
    root = project_dir()
    if overrides.get("help") or overrides.get("help_full"):
        print(run_help(root, overrides))
        return 0
    start_task_server()  # loads the steps' libraries while the inputs are checked
    params = resolve_params(root, profiles, params_file=params_file, overrides=overrides)
    if not params.get("input") or not params.get("outdir"):
        raise InputError("--input (samplesheet) and --outdir are required (or use -profile test).")
    rows = validate_samplesheet(params["input"], input_dir=params.get("input_dir"))
    checks = preflight(rows, params)
    log = logging.getLogger("scdeal.run")
    for check in checks.values():
        for problem in check.problems:
            log.error("%s: its pairs will not run", problem)
    if params.get("drugs") and not any(row.screen for row in rows):
        log.warning("--drugs %s is read only by samplesheet rows whose drug is 'all' (a screen); %s has none",
                    params["drugs"], params["input"])
    outdir = Path(params["outdir"]).resolve()
    tasks = build_tasks(rows, params, outdir=outdir, checks=checks)
    write_validations(outdir, checks, params)
    cores = len(os.sched_getaffinity(0))
    parallel = options["max_parallel"] or min(2, cores)
    log.info("%d samples × drugs → %d tasks, up to %d in parallel; outputs in %s", len(rows), len(tasks), parallel, outdir)
    run_dag(tasks, outdir, max_parallel=parallel, total_threads=cores)
    stop_task_server()
    write_pipeline_info(outdir, root, params, tasks=tasks, rows=rows)
    failed = [t for t in tasks if t.status not in ("done", "cached")]
    if not run_multiqc(outdir, root, params):
        log.error("MultiQC failed: see %s", outdir / "pipeline_info" / "logs" / "multiqc.log")
        return 1
    log.info("report at %s", outdir / "multiqc" / "multiqc_report.html")
    # as under Nextflow: the report is written, and a run with any failed pair ends non-zero
    if failed:
        log.error("%d of %d tasks failed or did not run: %s. Status of every pair: %s", len(failed), len(tasks),
                  ", ".join(t.name for t in failed), outdir / "pipeline_info" / "scdeal_status.tsv")
        return 1
    return 0


RUN_OPTIONS = """Typical command:

  scdeal run --input samplesheet.csv --bulk_expression expr.csv.gz --bulk_response response.csv --outdir results

Local runner options
  -profile test[,...]             parameter sets of conf/<profile>.config (test, test_full)
  -params-file params.yml         parameters from a YAML or JSON file
  -resume                         accepted for Nextflow compatibility: up-to-date tasks are always reused
  --max_parallel N                tasks run side by side (default: 2, at most the cores)
  --debug, -debug                 show the traceback of an input error

Values come from the schema defaults, then -profile, then -params-file, then the command line.
"""


def run_help(root: Path, overrides: dict) -> str:
    """`scdeal run --help`: the parameters of nextflow_schema.json, as `nextflow run . --help` shows them.
    `--help NAME` describes one parameter; --show_hidden / --help_full add the hidden ones."""
    from .config import parameters_help
    if isinstance(overrides.get("help"), str):
        return parameters_help(root, only=overrides["help"])
    show_hidden = bool(overrides.get("show_hidden") or overrides.get("help_full"))
    return f"scdeal {__version__}\n\n{RUN_OPTIONS}\n{parameters_help(root, show_hidden)}"


def cmd_simulate(argv: list[str]) -> int:
    """`scdeal simulate`: write simulated bulk tables, samples and a samplesheet; print their paths."""
    import argparse

    from ..data.simulate import SimParams, simulate
    from .flags import add_config_flags, config_from_args
    parser = argparse.ArgumentParser(prog="scdeal simulate", description="Write simulated bulk data and samples "
                                     "with a known per-cell response", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--outdir", required=True, help="directory that receives the simulated files")
    add_config_flags(parser, SimParams)
    args = parser.parse_args(argv)
    for name, path in simulate(args.outdir, config_from_args(SimParams, args)).items():
        print(f"{name}\t{path}")
    return 0


def cmd_sync_config(argv: list[str]) -> int:
    """`scdeal sync-config [--check]`: regenerate the Nextflow layer's copies of the step settings (params,
    schema, conf/flags.config, the docs' tables); with --check, list the stale ones and exit 1 instead."""
    from .config import project_dir
    from .settings import sync_config
    check = "--check" in argv
    stale = sync_config(project_dir(), check=check)
    for path in stale:
        print(f"{'stale' if check else 'written'}: {path}")
    return 1 if check and stale else 0


def main(argv: list[str] | None = None) -> int:
    """The `scdeal` command: `run`, `simulate` or a pipeline step; the exit status (2 for input errors)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    if argv[0] in ("--version", "-version"):
        print(__version__)
        return 0
    command, rest = argv[0], argv[1:]
    if command in STEPS:
        return importlib.import_module(f"scdeal.pipeline.steps.{command}").main(rest)
    debug = any(flag in rest for flag in DEBUG_FLAGS)
    rest = [arg for arg in rest if arg not in DEBUG_FLAGS]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    commands = {"run": cmd_run, "simulate": cmd_simulate, "sync-config": cmd_sync_config}
    try:
        if command in commands:
            return commands[command](rest)
    except InputError as err:
        if debug:
            traceback.print_exc()
        print(f"ERROR: {err}", file=sys.stderr)
        return 2
    print(f"Unknown command '{command}'.\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
