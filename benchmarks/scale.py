#!/usr/bin/env python3
"""Scale benchmark: wall time and peak memory of each step on simulated samples of growing size.

Simulates one bulk dataset and samples of N cells × 5,000 genes, then runs the pipeline steps as the
runner does (one process per step) and reads each process's own peak resident memory (wait4).
usage: python benchmarks/scale.py [--cells 10000 100000] [--device auto] [--epochs 30]
                                  [--measure_epochs 2 --from_cells 1000000] [--workdir DIR]
For the largest samples the transfer may run fewer epochs (--measure_epochs for samples of at least
--from_cells cells): its time is then extrapolated to --epochs from the per-epoch seconds it logs
(transfer_history.tsv), since an epoch's cost does not depend on the sample size (at most
max_cells_per_epoch cells are drawn per epoch). Simulated data are kept in --workdir and reused.
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
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]



def simulate(outdir: Path, **params) -> dict[str, Path]:
    """Simulate in a child process, so this process stays small (a child inherits its parent's peak RSS).
    A folder simulated before with the same parameters is reused."""
    flags = [f"--{k}={v}" for k, v in params.items()]
    stamp, header = outdir / "simulated_with.txt", " ".join(flags) + "\n"
    if stamp.is_file() and stamp.read_text().startswith(header):
        out = stamp.read_text()[len(header):]
    else:
        out = subprocess.run([sys.executable, "-m", "scdeal.pipeline.cli", "simulate", "--outdir", str(outdir), *flags],
                             capture_output=True, text=True, check=True).stdout
        stamp.write_text(header + out)
    return {name: Path(path) for name, path in (line.split("\t") for line in out.splitlines())}


def run_step(step: str, args: list[str]) -> tuple[float, float]:
    """Seconds and peak RSS (GB) of one step run in its own process."""
    cmd = [sys.executable, "-m", f"scdeal.pipeline.steps.{step}", *args, "--log_level", "WARNING"]
    start = time.time()
    proc = subprocess.Popen(cmd, env={**os.environ, "TQDM_DISABLE": "1"})
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.time() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{step} failed: {' '.join(cmd)}")
    return seconds, usage.ru_maxrss / 1024 ** 2  # ru_maxrss is in kB on Linux


def extrapolated(seconds: float, history: Path, epochs: int) -> float:
    """Measured wall time plus the missing epochs of every ensemble member at their mean logged cost."""
    import pandas as pd
    log = pd.read_csv(history, sep="\t")
    missing = epochs * log["member"].nunique() - len(log)
    return seconds + missing * float(log["seconds"].mean())


def commit() -> str:
    """The short hash of the checkout's HEAD."""
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()


def gpu_name() -> str:
    """The first CUDA GPU's name, or none."""
    import torch
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"


def main() -> int:
    """Run every step on samples of each size and append the table to the report."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--genes", type=int, default=5000)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--measure_epochs", type=int, default=None, help="epochs actually run for large samples")
    parser.add_argument("--from_cells", type=int, default=1_000_000, help="samples this large use --measure_epochs")
    parser.add_argument("--library_mean", type=float, default=1000.0, help="UMIs per cell (1,000: ~10 %% non-zero)")
    parser.add_argument("--skip_explain", action="store_true")
    parser.add_argument("--workdir", type=Path, default=None, help="keep and reuse simulated data here")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "speed.md")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="scdeal_scale_"))
    rows = []
    bulk_paths = simulate(work / "bulk", n_genes=args.genes, n_lines=400, n_samples=0)
    bdir = work / "out" / "bulk"
    prep = run_step("bulk_prepare", ["--bulk_expression", str(bulk_paths["bulk_expression"]), "--bulk_response",
                                     str(bulk_paths["bulk_response"]), "--drug", "Simulatin", "--outdir", str(bdir)])
    pre = run_step("bulk_pretrain", ["--bulk", str(bdir / "bulk.h5ad"), "--drug", "S", "--outdir", str(bdir),
                                     "--device", args.device])
    rows.append(("bulk (400 lines)", "prepare + pretrain", prep[0] + pre[0], max(prep[1], pre[1])))
    for n in args.cells:
        paths = simulate(work / f"cells{n}", n_genes=args.genes, n_lines=50, n_cells=n, n_samples=1,
                         library_mean=args.library_mean)
        cdir, pdir, edir = (work / "out" / d / str(n) for d in ("cluster", "pred", "explain"))
        epochs = args.measure_epochs if args.measure_epochs and n >= args.from_cells else args.epochs
        steps = [("cluster", ["--input", str(paths["sample1"]), "--sample", "s", "--outdir", str(cdir)]),
                 ("transfer", ["--cells", str(cdir / "s.clustered.h5ad"), "--bulk", str(bdir / "bulk.h5ad"),
                               "--model", str(bdir / "bulk_model.pt"), "--sample", "s", "--drug", "S",
                               "--epochs", str(epochs), "--outdir", str(pdir), "--device", args.device])]
        if not args.skip_explain:
            steps.append(("explain", ["--adata", str(pdir / "s_S.h5ad"), "--cell_model", str(pdir / "cell_model.pt"),
                                      "--sample", "s", "--drug", "S", "--outdir", str(edir), "--device", args.device]))
        total = 0.0
        for step, step_args in steps:
            seconds, peak = run_step(step, step_args)
            if step == "transfer" and epochs < args.epochs:
                seconds, step = extrapolated(seconds, pdir / "transfer_history.tsv", args.epochs), \
                    f"transfer ({epochs} epochs run, extrapolated to {args.epochs})"
            total += seconds
            rows.append((f"{n:,} cells", step, seconds, peak))
            print(f"{n:>9,} cells  {step:<9} {seconds:8.1f} s  peak {peak:5.2f} GB", flush=True)
        rows.append((f"{n:,} cells", "total per sample", total, max(r[3] for r in rows if r[0] == f"{n:,} cells")))
    header = (f"\n## Scale: {date.today()}, {platform.node()}, {os.cpu_count()} CPUs, GPU {gpu_name()}, "
              f"device {args.device}, commit {commit()}\n\n{args.genes} genes, {args.epochs} transfer epochs, "
              f"{args.library_mean:.0f} UMIs per cell on average, defaults otherwise (3 ensemble members). "
              "One process per step; peak = that process's max RSS.\n\n"
              "| sample | step | wall time (s) | peak memory (GB) |\n|---|---|---|---|\n")
    table = header + "".join(f"| {a} | {b} | {c:.1f} | {d:.2f} |\n" for a, b, c, d in rows)
    print(table)
    with open(args.out, "a") as fh:
        fh.write(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
