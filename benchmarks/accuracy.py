#!/usr/bin/env python3
"""Accuracy benchmark on the real labelled single-cell sets in ../shared/data (see its MANIFEST.md).

For every set and seed: the default scdeal configuration (bulk model + transfer, defaults of
nextflow_schema.json) on all the bulk evidence there is for the drug (binary calls where they exist,
GDSC1 and GDSC2 LN_IC50 for the auxiliary regression), and baselines on the same genes and lines:
  direct   - the bulk model applied to the cells without transfer;
  logreg   - the pipeline's `--baseline logistic` (each profile z-scored across the shared genes);
  gbt      - the pipeline's `--baseline gbt`, same features.
No cell label is used by any method except to score it. Writes benchmarks/results/accuracy.md.

usage: python benchmarks/accuracy.py [--seeds 5] [--ablations] [--data ../shared/data]
"""
from __future__ import annotations

import argparse
import logging
import os
import platform
import subprocess
import sys
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("TQDM_DISABLE", "1")

from scdeal import io  # noqa: E402
from scdeal.baseline import baseline_predictions  # noqa: E402
from scdeal.bulk import prepare_bulk  # noqa: E402
from scdeal.evaluate import binary_metrics  # noqa: E402
from scdeal.singlecell import ClusterParams, preprocess_and_cluster  # noqa: E402
from scdeal.training import BulkConfig, pretrain_bulk  # noqa: E402
from scdeal.transfer import TransferConfig, transfer_and_predict  # noqa: E402
from sklearn.metrics import adjusted_mutual_info_score  # noqa: E402

BINARY, IC50 = ["bulk/gdsc_binary_labels_scdeal.csv"], ["bulk/gdsc1_ic50_long.csv.gz", "bulk/gdsc2_ic50_long.csv.gz"]
SETS = [  # name, file, label column, drug, response tables
    ("PC9 / erlotinib", "sc/pc9_erlotinib_gse149383.h5ad", "response", "Erlotinib", BINARY + IC50),
    ("SCAD / gefitinib", "sc/scad_gefitinib_ar42.h5ad", "response_gefitinib", "Gefitinib", BINARY + IC50),
    ("SCAD / AR-42", "sc/scad_gefitinib_ar42.h5ad", "response_ar42", "AR-42", IC50),  # GDSC1 only has it
]
# name → (bulk model changes, transfer changes)
ABLATIONS = {"no MMD": ({}, {"w_mmd": 0.0}), "no cluster loss": ({}, {"w_cluster": 0.0}),
             "no bulk loss": ({}, {"w_bulk": 0.0}), "no pretraining": ({}, {"pretrained": False}),
             "no continuous response": ({"w_response": 0.0}, {}), "no calibration": ({}, {"calibration": "none"})}
BASELINE_NAMES = {"logistic": "logistic regression", "gbt": "gradient boosting"}
METRICS = ["precision", "recall", "f1", "auroc", "ap", "ami"]


def score(y, prob, clusters, threshold=0.5) -> dict[str, float]:
    m = binary_metrics(y, prob, threshold)
    m["ami"] = float(adjusted_mutual_info_score(y, clusters))
    return m


def run_set(name, path, key, drug, response_files, data: Path, seeds: int, ablations: bool, expression):
    response = io.read_responses([data / f for f in response_files])
    cells = preprocess_and_cluster(io.read_single_cell(data / path), ClusterParams())
    y = (cells.obs[key].astype(str) == "sensitive").to_numpy().astype(int)
    clusters = cells.obs["cluster"].astype(str).to_numpy()
    rows, seconds = [], []
    device = torch.device("cpu")
    for seed in range(seeds):
        bulk = prepare_bulk(expression, response, drug, seed=seed)
        start = time.time()
        model = pretrain_bulk(bulk, BulkConfig(seed=seed), device, drug)
        cfg = TransferConfig(seed=seed)
        result = transfer_and_predict(model, bulk, cells, cfg, device, what=name)
        seconds.append(time.time() - start)
        rows.append({"method": "scdeal (default)", "seed": seed, **score(y, result.prob, clusters)})
        direct = transfer_and_predict(model, bulk, cells, replace(cfg, epochs=0, n_ensemble=1), device, what=name)
        rows.append({"method": "bulk model, no transfer", "seed": seed, **score(y, direct.prob, clusters)})
        for kind, method in BASELINE_NAMES.items():
            prob = baseline_predictions(kind, bulk, cells, result.genes, seed).prob
            rows.append({"method": method, "seed": seed, **score(y, prob, clusters)})
        if ablations:
            for label, (bulk_change, transfer_change) in ABLATIONS.items():
                ablated_model = pretrain_bulk(bulk, BulkConfig(seed=seed, **bulk_change), device, drug) \
                    if bulk_change else model
                ablated = transfer_and_predict(ablated_model, bulk, cells, replace(cfg, **transfer_change), device,
                                               what=name)
                rows.append({"method": f"ablation: {label}", "seed": seed, **score(y, ablated.prob, clusters)})
        logging.info("%s seed %d: scdeal AUROC %.3f", name, seed, rows[-4 - (len(ABLATIONS) if ablations else 0)]["auroc"])
    frame = pd.DataFrame(rows).assign(dataset=name)
    return frame, float(np.median(seconds)), len(result.genes), cells.n_obs


def summarise(frame: pd.DataFrame) -> pd.DataFrame:
    grouped = frame.groupby(["dataset", "method"], sort=False)[METRICS]
    mean, sd = grouped.mean(), grouped.std().fillna(0)
    return pd.DataFrame({m: [f"{a:.3f} ± {b:.3f}" for a, b in zip(mean[m], sd[m])] for m in METRICS},
                        index=mean.index)


def markdown(table: pd.DataFrame) -> str:
    header = ["dataset", "method", *table.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for (dataset, method), row in table.iterrows():
        lines.append("| " + " | ".join([dataset, method, *map(str, row)]) + " |")
    return "\n".join(lines)


def verdicts(frame: pd.DataFrame) -> list[str]:
    lines = []
    mean = frame.groupby(["dataset", "method"], sort=False)[["auroc", "ap"]].mean()
    gains = []
    for dataset in frame["dataset"].unique():
        ours = mean.loc[(dataset, "scdeal (default)")]
        best = {m: mean.loc[(dataset, m)] for m in ("logistic regression", "gradient boosting", "bulk model, no transfer")}
        beaten = [m for m, v in best.items() if ours["auroc"] > v["auroc"] and ours["ap"] > v["ap"]]
        missed = sorted(set(best) - set(beaten))
        gain = ours["auroc"] - max(v["auroc"] for m, v in best.items() if m != "bulk model, no transfer")
        gains.append(gain)
        lines.append(f"- {dataset}: scdeal AUROC {ours['auroc']:.3f}, AP {ours['ap']:.3f}; "
                     + (f"beats all baselines in AUROC and AP (AUROC +{gain:.3f} over the best of logistic/gbt)" if not missed
                        else f"does NOT beat {', '.join(missed)} in both AUROC and AP (AUROC {gain:+.3f} vs best of logistic/gbt)"))
    lines.append(f"- mean AUROC gain over the better of logistic regression / gradient boosting: {np.mean(gains):+.3f} "
                 f"(target +0.10)")
    return lines


def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    except OSError:
        return "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--ablations", action="store_true", help="also run each ablation per seed")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "accuracy.md")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", force=True)
    logging.getLogger("scdeal").setLevel(logging.WARNING)
    if not args.data.is_dir():
        print(f"real data not found at {args.data}: nothing to benchmark", file=sys.stderr)
        return 1
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    code_commit = commit()  # the code this process imported, whatever HEAD is when it finishes
    expression = io.read_bulk_expression(args.data / "bulk" / "gdsc_expression_rowz.csv.gz")
    frames, notes = [], []
    for spec in SETS:
        frame, secs, n_genes, n_cells = run_set(*spec, args.data, args.seeds, args.ablations, expression)
        frames.append(frame)
        notes.append(f"- {spec[0]}: {n_cells} cells after QC, {n_genes} genes shared with the bulk model, "
                     f"bulk pretraining + transfer {secs:.0f} s per seed (median)")
    frame = pd.concat(frames)
    frame.to_csv(args.out.with_name("accuracy_per_seed.tsv"), sep="\t", index=False, float_format="%.4f")
    table = summarise(frame)
    report = ["# Accuracy benchmark", "",
              f"date {date.today()}, machine {platform.node()} ({platform.processor() or platform.machine()}, "
              f"{len(os.sched_getaffinity(0))} CPU threads, torch {torch.__version__}, CPU), commit {code_commit}, "
              f"{args.seeds} seeds (mean ± sd).", "",
              "All methods use the same genes and no cell label; defaults of nextflow_schema.json.", "",
              markdown(table), "", "## Verdict", "", *verdicts(frame), "", "## Data", "", *notes, ""]
    text = "\n".join(report)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
