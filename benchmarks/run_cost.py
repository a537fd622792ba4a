#!/usr/bin/env python3
"""Run cost: many samples × drugs in one `scdeal run` against the same pairs run one by one.

A facility runs a samplesheet of many samples and drugs. One run prepares each drug's bulk lines once,
clusters each sample once, loads the libraries once and writes one report; a run per pair repeats all of
it. Here: `--samples` samples of `--cells` cells drawn from PC9 (distinct seeds) × `--drugs`, defaults
otherwise, one run of every pair against one run per pair, on the GDSC binary calls. Wall and CPU time
(the run's own accounting, every task included) are summed over the single runs.

usage: python benchmarks/run_cost.py [--samples 10] [--cells 400] [--drugs Erlotinib Gefitinib Afatinib]
                                    [--data ../shared/data] [--workdir DIR]
Prints a table and appends it to benchmarks/results/speed.md.
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import anndata as ad
import numpy as np
from common import commit

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Cost:
    """What one or more runs took: wall seconds, CPU seconds and the largest process's peak memory."""

    wall: float = 0.0
    cpu: float = 0.0
    peak_mib: float = 0.0

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.wall + other.wall, self.cpu + other.cpu, max(self.peak_mib, other.peak_mib))


def timed_run(sheet: Path, outdir: Path, data: Path) -> Cost:
    """One `scdeal run` of `sheet` from scratch, measured by the operating system (the run reaps every task)."""
    cmd = [str(Path(sys.executable).with_name("scdeal")), "run", "--input", str(sheet), "--outdir", str(outdir),
           "--bulk_expression", str(data / "bulk" / "gdsc_expression_rowz.csv.gz"),
           "--bulk_response", str(data / "bulk" / "gdsc_binary_labels_scdeal.csv")]
    started = time.time()
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{process.stderr.read().decode()[-3000:]}")
    return Cost(time.time() - started, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def write_samples(data: Path, workdir: Path, *, n_samples: int, n_cells: int) -> list[Path]:
    """`n_samples` samples of `n_cells` PC9 cells each, drawn with seeds 0, 1, …"""
    pc9 = ad.read_h5ad(data / "sc" / "pc9_erlotinib_gse149383.h5ad")
    paths = []
    for i in range(n_samples):
        path = workdir / f"pc9_part{i}.h5ad"
        pick = np.sort(np.random.default_rng(i).choice(pc9.n_obs, size=min(n_cells, pc9.n_obs), replace=False))
        pc9[pick].copy().write_h5ad(path)
        paths.append(path)
    return paths


def sheet_of(path: Path, pairs: list[tuple[Path, str]]) -> Path:
    """A samplesheet of (sample file, drug) rows; the sample id is the file's name."""
    path.write_text("sample,input,drug\n" + "".join(f"{p.stem},{p},{drug}\n" for p, drug in pairs))
    return path


def report(batch: Cost, singles: Cost, *, args: argparse.Namespace, n_pairs: int) -> str:
    """The markdown section of speed.md."""
    rows = [("one run of every pair", batch), (f"{n_pairs} single runs, summed", singles)]
    lines = [f"## Run cost: {args.samples} samples × {len(args.drugs)} drugs in one run vs one run per pair, "
             f"{date.today()}", "",
             f"{platform.node()}, {os.cpu_count()} CPUs, commit {commit()}: `python benchmarks/run_cost.py --samples "
             f"{args.samples} --cells {args.cells} --drugs {' '.join(args.drugs)}` (samples of {args.cells} PC9 cells, "
             "GDSC binary calls, defaults, from scratch).", "",
             "| | wall s | CPU s | largest process MiB |", "|---|---|---|---|"]
    lines += [f"| {name} | {c.wall:.1f} | {c.cpu:.1f} | {c.peak_mib:.0f} |" for name, c in rows]
    lines += [f"| ratio (one run / single runs) | {batch.wall / singles.wall:.2f} | {batch.cpu / singles.cpu:.2f} | |"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--cells", type=int, default=400)
    parser.add_argument("--drugs", nargs="+", default=["Erlotinib", "Gefitinib", "Afatinib"])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    if not args.data.is_dir():
        print(f"real data not found at {args.data}: nothing to benchmark", file=sys.stderr)
        return
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="scdeal_run_cost_"))
    workdir.mkdir(parents=True, exist_ok=True)
    samples = write_samples(args.data, workdir, n_samples=args.samples, n_cells=args.cells)
    pairs = [(path, drug) for path in samples for drug in args.drugs]
    batch = timed_run(sheet_of(workdir / "all.csv", pairs), workdir / "all", args.data)
    print(f"one run of {len(pairs)} pairs: {batch.wall:.1f} s wall", flush=True)
    singles = Cost()
    for i, pair in enumerate(pairs):
        singles = singles + timed_run(sheet_of(workdir / f"pair{i}.csv", [pair]), workdir / f"pair{i}", args.data)
        print(f"single run {i + 1}/{len(pairs)}: {singles.wall:.1f} s wall so far", flush=True)
    section = report(batch, singles, args=args, n_pairs=len(pairs))
    print(section)
    with open(ROOT / "benchmarks" / "results" / "speed.md", "a") as fh:
        fh.write("\n" + section)


if __name__ == "__main__":
    main()
