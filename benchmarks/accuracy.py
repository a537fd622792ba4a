#!/usr/bin/env python3
"""Accuracy benchmark: the real labelled single-cell sets in ../shared/data (see its MANIFEST.md) and the
simulator's orientation trap, each over 10 seeds.

A *partition* is one set of cells with one split into groups; a *task* is that partition seen through
one drug's labels. The SCAD 66 cells are one partition seen from gefitinib and AR-42 (complementary
labels); the trap is one simulated partition seen from two drugs with opposite bulk evidence. Means
over partitions count each partition once (its tasks averaged).

Per task and seed: the default scdeal configuration (defaults of nextflow_schema.json) on all the bulk
evidence there is for the drug, and on the same genes and lines:
  direct    - the source models (bulk model refitted on the sample's genes) without transfer;
  logistic / gbt (profile) - the pipeline's `--baseline`, each profile z-scored across the genes;
  logistic (model)         - logistic regression on the deep model's features (genes also standardised
                             per domain), to tell the feature space's effect from the model's.
F1 is the sensitive class's, at the default threshold rule (uncertain calls count as not sensitive;
baselines at their own Otsu split). No cell label is used by any method except to score it.

Defaults were chosen on the simulator and on the SCAD partition only; PC9 was not looked at while
choosing them. Writes benchmarks/results/accuracy.md and accuracy_per_seed.tsv.

usage: python benchmarks/accuracy.py [--seeds 10] [--ablations] [--only PARTITION ...] [--data ../shared/data]
"""
from __future__ import annotations

import argparse
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("TQDM_DISABLE", "1")

from scdeal.data import readers  # noqa: E402 (after the path to src/)
from scdeal.data.bulk import BulkPrepareConfig, prepare_bulk  # noqa: E402
from scdeal.data.simulate import TRAP_DRUGS, SimParams, simulate_orientation_trap  # noqa: E402
from scdeal.data.singlecell import ClusterConfig, preprocess_and_cluster  # noqa: E402
from scdeal.model.metrics import binary_metrics  # noqa: E402
from scdeal.model.training import BulkConfig, pretrain_bulk  # noqa: E402
from scdeal.model.transfer import (  # noqa: E402
    TransferConfig,
    call_labels,
    otsu_threshold,
    threshold_for,
    transfer_and_predict,
)
from scdeal.tl.baseline import baseline_predictions  # noqa: E402
from scdeal.tl.trust import trust_diagnostic  # noqa: E402

BINARY, IC50 = ["bulk/gdsc_binary_labels_scdeal.csv"], ["bulk/gdsc1_ic50_long.csv.gz", "bulk/gdsc2_ic50_long.csv.gz"]
TRAP = SimParams(n_genes=600, n_lines=400, n_cells=300, sensitive_fraction=0.1, effect=0.6, clone_effect=2.5,
                 gene_bias_sd=1.5, n_samples=1)


@dataclass
class Task:
    """One drug's labels on a partition's cells, with the bulk response tables to use."""

    drug: str
    label_key: str
    responses: list[str]


@dataclass
class Partition:
    """One set of cells with one split into groups, seen through one or more drugs' labels."""

    name: str
    cells: str            # h5ad under the data folder, or "trap" for the simulator
    tasks: list[Task]
    simulated: bool = False


PARTITIONS = [
    Partition("PC9 (2,115 cells)", "sc/pc9_erlotinib_gse149383.h5ad", [Task("Erlotinib", "response", BINARY + IC50)]),
    Partition("SCAD (66 cells)", "sc/scad_gefitinib_ar42.h5ad",
              [Task("Gefitinib", "response_gefitinib", BINARY + IC50), Task("AR-42", "response_ar42", IC50)]),
    Partition("simulator: orientation trap", "trap",
              [Task(d, f"response_{d.lower()}", []) for d in TRAP_DRUGS], simulated=True),
]
ABLATIONS = {  # transfer changes; each isolates one safeguard of the default
    "no anchor": {"w_anchor": 0.0},
    "anchor on the source model": {"anchor_to": "source"},
    "members on all lines": {"member_bulk": "all"},
    "members from the pretrained model": {"member_init": "pretrained"},
    "no source refit": {"member_init": "pretrained", "source_epochs": 0},
    "unanchored (previous transfer)": {"w_anchor": 0.0, "mmd_class_mix": "bulk", "member_bulk": "all",
                                       "member_init": "pretrained", "source_epochs": 0},
}
DEFAULT, DIRECT = "scdeal (default)", "direct (no transfer)"
TRUST_FIELDS = ("members_lowest_spearman", "members_reset_to_source", "spearman_transfer_vs_direct",
                "spearman_transfer_vs_baseline", "spearman_direct_vs_baseline")
# gradient boosting on the model's features is left out: one fit costs ~1.5 min on PC9's 4,580 genes
BASELINES = {("logistic", "profile"): "logistic (profile)", ("gbt", "profile"): "gbt (profile)",
             ("logistic", "model"): "logistic (model)"}


def load(partition: Partition, data: Path, workdir: Path):
    """Clustered cells and the response tables of each task."""
    if partition.simulated:
        paths = simulate_orientation_trap(workdir, TRAP)
        raw = ad.read_h5ad(paths["sample1"])
        responses = readers.read_responses([paths["bulk_response"], paths["bulk_ic50"]])
        expression = readers.read_bulk_expression(paths["bulk_expression"], set(responses["line"]))
        cells = preprocess_and_cluster(raw, ClusterConfig(n_top_genes=300))
        return cells, expression, {t.drug: responses for t in partition.tasks}
    cells = preprocess_and_cluster(readers.read_single_cell(data / partition.cells), ClusterConfig())
    return cells, None, {t.drug: readers.read_responses([data / f for f in t.responses]) for t in partition.tasks}


def scored(method: str, seed: int, y: np.ndarray, *, prob: np.ndarray, predicted: np.ndarray, **extra) -> dict:
    """One result row: the method's AUROC, AP and F1 on one seed."""
    m = binary_metrics(y, prob, predicted=predicted)
    return {"method": method, "seed": seed, **{k: m[k] for k in ("auroc", "ap", "f1")}, **extra}


def single_drug_default(drug: str, cells, *, expression, response: pd.DataFrame, seed: int):
    """The single-drug default on `cells` (CPU): its bulk set, bulk model, transfer result, and the seconds
    pretraining and transfer took."""
    device = torch.device("cpu")
    bulk = prepare_bulk(expression, response, drug, config=BulkPrepareConfig(seed=seed))
    started = time.time()
    model = pretrain_bulk(bulk, BulkConfig(seed=seed), device, drug=drug)
    result = transfer_and_predict(model, bulk, cells, cfg=TransferConfig(seed=seed), device=device, what=drug)
    return bulk, model, result, time.time() - started


def run_task(task: Task, cells, expression, *, response, seeds: int, ablations: bool) -> list[dict]:
    """Every method (and ablation, on request) on one task, one row per method and seed."""
    y = (cells.obs[task.label_key].astype(str) == "sensitive").to_numpy().astype(int)
    rows, device = [], torch.device("cpu")
    for seed in range(seeds):
        bulk, model, result, seconds = single_drug_default(task.drug, cells, expression=expression,
                                                           response=response, seed=seed)
        cfg = TransferConfig(seed=seed)
        labels = call_labels(result.member_probs, threshold_for(cfg.threshold_rule, result, cfg.threshold))
        baselines = {name: baseline_predictions(kind, bulk, cells, genes=result.genes, seed=seed, features=space).prob
                     for (kind, space), name in BASELINES.items()}
        trust = trust_diagnostic(result.member_probs, result.direct_prob, baselines["logistic (profile)"],
                                 bulk_val_auroc=result.bulk_val_auroc, n_reset=result.n_reset)
        rows.append(scored(DEFAULT, seed, y, prob=result.prob, predicted=labels == "sensitive", verdict=trust["verdict"],
                           uncertain=float((labels == "uncertain").mean()), seconds=seconds,
                           bulk_val_auroc=result.bulk_val_auroc,
                           **{k: trust[k] for k in TRUST_FIELDS if k in trust}))
        for method, prob in {DIRECT: result.direct_prob, **baselines}.items():
            rows.append(scored(method, seed, y, prob=prob, predicted=prob >= otsu_threshold(prob)))
        if ablations:
            for name, change in ABLATIONS.items():
                ablated = transfer_and_predict(model, bulk, cells, cfg=replace(cfg, **change), device=device,
                                               what=task.drug)
                threshold = threshold_for(cfg.threshold_rule, ablated, cfg.threshold)
                rows.append(scored(f"ablation: {name}", seed, y, prob=ablated.prob,
                                   predicted=call_labels(ablated.member_probs, threshold) == "sensitive"))
        logging.info("%s seed %d: scdeal AUROC %.3f (%s), direct %.3f, logistic %.3f", task.drug, seed,
                     rows[-1 - len(BASELINES) - 1 - (len(ABLATIONS) if ablations else 0)]["auroc"], trust["verdict"],
                     binary_metrics(y, result.direct_prob)["auroc"], binary_metrics(y, baselines["logistic (profile)"])["auroc"])
    return rows


def task_table(frame: pd.DataFrame) -> list[str]:
    """The per-task table: mean ± sd over seeds of each method's AUROC, AP and F1."""
    lines = ["| partition | drug | method | AUROC | AP | F1 | seeds AUROC < 0.5 | verdicts |", "|" + "---|" * 8]
    for (partition, drug, method), g in frame.groupby(["partition", "drug", "method"], sort=False):
        lines.append(f"| {partition} | {drug} | {method} | {g.auroc.mean():.3f} ± {g.auroc.std():.3f} | "
                     f"{g.ap.mean():.3f} ± {g.ap.std():.3f} | {g.f1.mean():.3f} ± {g.f1.std():.3f} | "
                     f"{int((g.auroc < 0.5).sum())}/{len(g)} | {verdict_counts(g['verdict'])} |")
    return lines


def verdict_counts(verdicts: pd.Series) -> str:
    """'consistent 9, disputed 1': how many seeds got each trust verdict (empty for a method without one)."""
    return ", ".join(f"{v} {n}" for v, n in verdicts.value_counts().items())


def partition_means(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean AUROC per (partition, method): tasks averaged, so a partition counts once."""
    per_task = frame.groupby(["partition", "drug", "method"], sort=False)["auroc"].mean()
    return per_task.groupby(level=["partition", "method"], sort=False).mean().unstack("method")


def verdicts(frame: pd.DataFrame, simulated: set[str]) -> list[str]:
    """The per-partition table and the notes that compare scdeal with the baselines."""
    means = partition_means(frame)
    lines = ["| partition | scdeal | direct | best of logistic/gbt (profile) | logistic (model features) | gain |",
             "|---|---|---|---|---|---|"]
    gains = {}
    for partition, row in means.iterrows():
        best = max(row["logistic (profile)"], row["gbt (profile)"])
        best_model = row["logistic (model)"]
        gains[partition] = row[DEFAULT] - best
        lines.append(f"| {partition} | {row[DEFAULT]:.3f} | {row[DIRECT]:.3f} | {best:.3f} | {best_model:.3f} | "
                     f"{gains[partition]:+.3f} |")
    real = [p for p in gains if p not in simulated]
    lines += ["", f"- Mean AUROC gain over the better of logistic regression and gradient boosting, over the "
                  f"{len(real)} distinct real partitions: {np.mean([gains[p] for p in real]):+.3f} (target ≥ +0.05)."]
    ours = frame[frame.method == DEFAULT]
    for (partition, drug), g in ours.groupby(["partition", "drug"], sort=False):
        logistic = frame[(frame.partition == partition) & (frame.drug == drug) & (frame.method == "logistic (profile)")]
        f1_note = (f"F1 {g.f1.mean():.3f} at AUROC {g.auroc.mean():.3f}"
                   + (" (target ≥ 0.6 where AUROC ≥ 0.8)" if g.auroc.mean() >= 0.8 else ""))
        lines.append(f"- {partition} / {drug}: {int((g.auroc < 0.5).sum())} of {len(g)} seeds inverted, seed sd "
                     f"{g.auroc.std():.3f}; vs logistic regression {g.auroc.mean() - logistic.auroc.mean():+.3f}; {f1_note}.")
    return lines


def commit() -> str:
    """The short hash of the checkout's HEAD."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    except OSError:
        return "unknown"


def benchmark_parser(doc: str, report: str) -> argparse.ArgumentParser:
    """The flags every benchmark takes: seeds, the shared data folder and the report's path."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / report)
    return parser


def ready_to_benchmark(data: Path) -> bool:
    """Progress logging and every CPU thread; False (with a message) where the real data is absent."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", force=True)
    logging.getLogger("scdeal").setLevel(logging.ERROR)
    if not data.is_dir():
        print(f"real data not found at {data}: nothing to benchmark", file=sys.stderr)
        return False
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    return True


def main() -> int:
    """Run the benchmark and write its report."""
    parser = benchmark_parser(__doc__, "accuracy.md")
    parser.add_argument("--ablations", action="store_true", help="also run each ablation per seed")
    parser.add_argument("--only", nargs="*", help="partition names starting with these words (default: all)")
    args = parser.parse_args()
    if not ready_to_benchmark(args.data):
        return 1
    code_commit = commit()  # the code this process imported, whatever HEAD is when it finishes
    expression = readers.read_bulk_expression(args.data / "bulk" / "gdsc_expression_rowz.csv.gz")
    chosen = [p for p in PARTITIONS if not args.only or any(p.name.lower().startswith(o.lower()) for o in args.only)]
    frames, notes = [], []
    with tempfile.TemporaryDirectory() as workdir:
        for partition in chosen:
            cells, own_expression, responses = load(partition, args.data, Path(workdir))
            for task in partition.tasks:
                rows = run_task(task, cells, expression if own_expression is None else own_expression,
                                response=responses[task.drug], seeds=args.seeds, ablations=args.ablations)
                frames.append(pd.DataFrame(rows).assign(partition=partition.name, drug=task.drug))
            seconds = frames[-1].query("method == @DEFAULT")["seconds"].median()
            notes.append(f"- {partition.name}: {cells.n_obs} cells after QC; bulk pretraining + transfer "
                         f"{seconds:.0f} s per seed (median, last task)")
    frame = pd.concat(frames)
    frame.to_csv(args.out.with_name("accuracy_per_seed.tsv"), sep="\t", index=False, float_format="%.4f")
    report = ["# Accuracy benchmark", "",
              f"date {date.today()}, machine {platform.node()} ({platform.processor() or platform.machine()}, "
              f"{len(os.sched_getaffinity(0))} CPU threads, torch {torch.__version__}, CPU), commit {code_commit}, "
              f"{args.seeds} seeds (mean ± sd over seeds).", "",
              "Defaults were chosen on the simulator and the SCAD partition; **PC9 was untouched** while choosing them. "
              "No method uses a cell label except to be scored.", "",
              "## Per task", "", *task_table(frame), "",
              "## Per partition (each partition counted once)", "",
              *verdicts(frame, {p.name for p in chosen if p.simulated}), "", "## Data", "", *notes, ""]
    text = "\n".join(report)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
