#!/usr/bin/env python3
"""Screen benchmark: the multi-task bulk model on held-out cell lines (DrEval-style), and the screen's
call for each labelled real set's drug against a dedicated single-drug run, over seeds.

1. Bulk, leave-cell-line-out. Each seed's screen split holds out 20 % of the lines entirely (never
   trained on, never used for early stopping). On those lines:
   - per drug, the Spearman correlation across lines of the regressor's predicted response with the
     measured pooled response (z-scored LN_IC50/AUC, GDSC1 and GDSC2), against two naive baselines:
     DrEval's strongest for this setting, the drug's mean response on the training lines of the line's
     tissue (drevalpy's NaiveTissueDrugMeanPredictor; tissue from gdsc_cosmic_info), and each line's mean
     measured response over its other drugs (general sensitivity). The second reads the held-out line's own
     measured responses, which no leave-cell-line-out predictor has: drevalpy's cell-line mean falls back
     to the training mean for an unseen line;
   - per line, the Spearman correlation across drugs of the predicted LN_IC50 (the prediction put back
     on each drug's LN_IC50 scale with the training lines' mean and sd) with the measured LN_IC50,
     against the naive baseline that predicts each drug's mean LN_IC50 on the training lines.
2. Cells. For every labelled real set, the screen's probability for the set's drug is scored with the
   cell labels (AUROC) and compared with the single-drug default on the same seed, read from
   benchmarks/results/accuracy_per_seed.tsv (`benchmarks/accuracy.py`).

No cell label reaches training or any choice; labels only score. Writes benchmarks/results/screen.md
and screen_per_seed.tsv.

usage: python benchmarks/screen.py [--seeds 10] [--data ../shared/data]
"""
from __future__ import annotations

import logging
import os
import platform
import sys
import time
import warnings
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from common import (
    BINARY,
    CPU,
    IC50,
    PARTITIONS,
    ROOT,
    benchmark_parser,
    commit,
    load,
    ready_to_benchmark,
    run_screen,
    verdict_counts,
)
from sklearn.kernel_ridge import KernelRidge

import scdeal.tl
from scdeal.data import readers
from scdeal.data.bulk import BulkPrepareConfig
from scdeal.data.bulkdata import BulkData
from scdeal.data.features import model_features
from scdeal.data.readers import normalise_name
from scdeal.data.screen import prepare_screen
from scdeal.model.metrics import binary_metrics, column_spearman
from scdeal.model.training import BulkConfig, head_outputs
from scdeal.tl.screen import SCREEN_HEADS

MIN_TEST_LINES = 10      # a drug enters the per-drug table with at least this many measured held-out lines
MIN_TEST_DRUGS = 10      # a line enters the per-line table with at least this many measured drugs
RIDGE_ALPHAS = (1e2, 1e3, 1e4, 1e5)   # the linear reference's penalties, chosen on the validation lines
COSMIC_INFO = "bulk/gdsc_cosmic_info.csv.gz"
TISSUE_COLUMN = "GDSC1"  # gdsctools' first GDSC tissue descriptor (19 tissues, e.g. aero_dig_tract)


def ln_ic50_matrix(response: pd.DataFrame, lines: pd.Index, drug_keys: list[str]) -> pd.DataFrame:
    """Lines × drugs LN_IC50, averaged over GDSC1 and GDSC2 where both measure a pair (NaN where neither)."""
    rows = response[response["kind"] == "LN_IC50"]
    rows = rows.assign(key=rows["line"].map(normalise_name), drug_key=rows["drug"].map(normalise_name))
    table = rows.groupby(["key", "drug_key"])["value"].mean().unstack()
    return table.reindex(index=lines, columns=drug_keys)


def line_mean_baseline(z: np.ndarray) -> np.ndarray:
    """Each (line, drug): the line's mean measured response over its other drugs (NaN with none)."""
    total = np.nansum(z, 1, keepdims=True)
    count = (~np.isnan(z)).sum(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 1, (total - np.nan_to_num(z)) / (count - 1), np.nan)


def read_tissues(path: Path) -> pd.Series:
    """Normalised cell-line name → GDSC tissue."""
    table = pd.read_csv(path, dtype=str)
    return table.assign(key=table["SAMPLE_NAME"].map(normalise_name)).drop_duplicates("key").set_index("key")[
        TISSUE_COLUMN].fillna("unknown")


def tissue_drug_mean_baseline(z: np.ndarray, tissue: np.ndarray, *, train: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Each (test line, drug): the drug's mean response on the training lines of the line's tissue, else on
    all training lines (DrEval's NaiveTissueDrugMeanPredictor)."""
    with warnings.catch_warnings():  # a drug no training line of a tissue measured
        warnings.simplefilter("ignore", RuntimeWarning)
        overall = np.nanmean(z[train], 0)
        by_tissue = {t: np.nanmean(z[train & (tissue == t)], 0) for t in np.unique(tissue[train])}
    rows = [by_tissue.get(t, overall) for t in tissue[test]]
    return np.where(np.isnan(rows), overall, rows)


def per_drug_spearman(measured: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Spearman across held-out lines per drug, NaN for drugs with too few measured lines."""
    rho = column_spearman(measured, predicted)
    rho[(~np.isnan(measured)).sum(0) < MIN_TEST_LINES] = np.nan
    return rho


def per_line_spearman(measured: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Spearman across drugs per held-out line, NaN for lines with too few measured drugs."""
    rho = column_spearman(measured.T, predicted.T)
    rho[(~np.isnan(measured)).sum(1) < MIN_TEST_DRUGS] = np.nan
    return rho


def ridge_reference(bulk) -> np.ndarray:
    """Held-out lines × drugs responses predicted by a multi-output linear ridge on the expression (the
    model's features; unmeasured training responses at their mean, 0), its penalty the best median
    per-drug Spearman on the validation lines: how far expression alone carries, as a reference."""
    split = bulk.obs["split"].to_numpy()
    z = np.asarray(bulk.obsm["response_z"], np.float64)
    train, stats = model_features(bulk.X[split == "train"])
    val, test = (model_features(bulk.X[split == s], stats)[0] for s in ("val", "test"))
    target = np.nan_to_num(z[split == "train"])
    fits = [KernelRidge(alpha=alpha, kernel="linear").fit(train, target) for alpha in RIDGE_ALPHAS]
    best = max(fits, key=lambda fit: float(np.nanmedian(per_drug_spearman(z[split == "val"], fit.predict(val)))))
    return best.predict(test)


def bulk_evaluation(bulk, model, *, response: pd.DataFrame, tissues: pd.Series) -> dict:
    """The DrEval-style figures of one seed's model on its held-out lines."""
    split = bulk.obs["split"].to_numpy()
    test, train = split == "test", split == "train"
    tissue = bulk.obs_names.map(tissues).fillna("unknown").to_numpy()
    feats = model_features(bulk.X[test], (model.gene_mean, model.gene_sd))[0]
    predicted_z = head_outputs(model.encoder, model.regressor, feats, device=CPU)
    z = np.asarray(bulk.obsm["response_z"], np.float64)
    measured_z = z[test]
    drug_rho = per_drug_spearman(measured_z, predicted_z)
    drug_rho_base = per_drug_spearman(measured_z, line_mean_baseline(measured_z))
    drug_rho_tissue = per_drug_spearman(measured_z, tissue_drug_mean_baseline(z, tissue, train=train, test=test))
    drug_rho_ridge = per_drug_spearman(measured_z, ridge_reference(bulk))
    ic50 = ln_ic50_matrix(response, bulk.obs_names, list(bulk.uns["scdeal_screen"]["drug_keys"])).to_numpy()
    with np.errstate(invalid="ignore"), warnings.catch_warnings():  # drugs with binary calls only have no LN_IC50
        warnings.simplefilter("ignore", RuntimeWarning)
        mean, sd = np.nanmean(ic50[train], 0), np.nanstd(ic50[train], 0)
    # the regressor predicts the pooled z (lower = more sensitive); put it back on each drug's LN_IC50 scale
    predicted_ic50 = mean + sd * predicted_z
    line_rho = per_line_spearman(ic50[test], predicted_ic50)
    line_rho_base = per_line_spearman(ic50[test], np.broadcast_to(mean, ic50[test].shape).copy())
    paired_drugs = ~np.isnan(drug_rho) & ~np.isnan(drug_rho_base) & ~np.isnan(drug_rho_tissue)
    paired_lines = ~np.isnan(line_rho) & ~np.isnan(line_rho_base)
    return {"drugs_scored": int(paired_drugs.sum()), "per_drug_model": float(np.median(drug_rho[paired_drugs])),
            "per_drug_line_mean": float(np.median(drug_rho_base[paired_drugs])),
            "per_drug_tissue_mean": float(np.median(drug_rho_tissue[paired_drugs])),
            "drugs_model_better_tissue": float(np.mean(drug_rho[paired_drugs] > drug_rho_tissue[paired_drugs])),
            "drugs_model_better": float(np.mean(drug_rho[paired_drugs] > drug_rho_base[paired_drugs])),
            "per_drug_ridge": float(np.median(drug_rho_ridge[paired_drugs])),
            "drugs_ridge_better": float(np.mean(drug_rho_ridge[paired_drugs] > drug_rho_base[paired_drugs])),
            "lines_scored": int(paired_lines.sum()), "per_line_model": float(np.median(line_rho[paired_lines])),
            "per_line_drug_mean": float(np.median(line_rho_base[paired_lines])),
            "lines_model_better": float(np.mean(line_rho[paired_lines] > line_rho_base[paired_lines])),
            "median_test_auroc": float(np.nanmedian([m["test"].get("auroc", np.nan) for m in model.metrics]))}


def cell_evaluation(model, bulk, partitions: dict, *, seed: int) -> list[dict]:
    """The screen's AUROC for each labelled task, one transfer per partition."""
    rows = []
    for name, (cells, tasks) in partitions.items():
        run = run_screen(model, bulk, cells, seed=seed, what=name)
        for task in tasks:
            y = (cells.obs[task.label_key].astype(str) == "sensitive").to_numpy().astype(int)
            d = run.column(task.drug)
            rows.append({"seed": seed, "partition": name, "drug": task.drug,
                         "auroc": binary_metrics(y, run.result.prob[:, d])["auroc"],
                         "bulk_val_auroc": float(run.result.bulk_val_auroc[d]),
                         "verdict": run.trust["verdict"].iloc[d],
                         "spearman_vs_signature": float(run.trust["spearman_transfer_vs_signature"].iloc[d]),
                         "transfer_seconds": run.seconds})
    return rows


def single_drug_aurocs(path: Path) -> pd.DataFrame:
    """The single-drug default's AUROC per (partition, drug, seed) from the accuracy benchmark."""
    table = pd.read_csv(path, sep="\t")
    table = table[table["method"] == "scdeal (default)"]
    return table[["partition", "drug", "seed", "auroc"]].rename(columns={"auroc": "single_auroc"})


def report(bulk_rows: pd.DataFrame, cell_rows: pd.DataFrame, *, seeds: int, n_drugs: int, code: str,
           single_from: str) -> str:
    """The markdown report."""
    mean = bulk_rows.mean(numeric_only=True)
    sd = bulk_rows.std(numeric_only=True)
    lines = ["# Screen benchmark", "",
             f"date {date.today()}, machine {platform.node()} ({len(os.sched_getaffinity(0))} CPU threads, torch "
             f"{torch.__version__}, CPU), commit {code}, {seeds} seeds (mean ± sd over seeds), GDSC expression "
             f"(975 lines) with every drug of the binary calls and GDSC1/GDSC2 LN_IC50 tables: {n_drugs} drugs.", "",
             "No default was chosen on these figures; the screen uses the single-drug defaults. "
             "No cell label reaches training or any choice.", "",
             "## 1. Bulk, leave-cell-line-out (DrEval-style)", "",
             "Held-out lines: 20 % of the lines per seed, never trained on or used for early stopping.", "",
             "| figure | multi-task model | naive baseline | model better on |", "|---|---|---|---|",
             f"| per-drug Spearman across held-out lines (median over {mean.drugs_scored:.0f} drugs) | "
             f"{mean.per_drug_model:.3f} ± {sd.per_drug_model:.3f} | drug mean on the training lines of the line's "
             f"tissue (DrEval's strongest baseline for unseen lines): {mean.per_drug_tissue_mean:.3f} ± "
             f"{sd.per_drug_tissue_mean:.3f} | {mean.drugs_model_better_tissue:.0%} of drugs |",
             f"| the same | | the line's own mean measured response over its other drugs: "
             f"{mean.per_drug_line_mean:.3f} ± {sd.per_drug_line_mean:.3f} | {mean.drugs_model_better:.0%} of drugs |",
             f"| per-line Spearman across drugs, LN_IC50 (median over {mean.lines_scored:.0f} lines) | "
             f"{mean.per_line_model:.3f} ± {sd.per_line_model:.3f} | drug mean on training lines: "
             f"{mean.per_line_drug_mean:.3f} ± {sd.per_line_drug_mean:.3f} | {mean.lines_model_better:.0%} of lines |",
             "", "Reference, how far expression alone carries: a multi-output linear ridge on the same genes and "
                 "lines (penalty chosen on the validation lines) reaches a per-drug Spearman of "
                 f"{mean.per_drug_ridge:.3f} ± {sd.per_drug_ridge:.3f} and beats the line mean on "
                 f"{mean.drugs_ridge_better:.0%} of drugs. The line-mean baseline reads each held-out line's own "
                 "measured responses to its other drugs, which a leave-cell-line-out predictor never has (DrEval's "
                 "cell-line mean falls back to the training mean for an unseen line); a model sees only the "
                 "line's expression. Tissue: the first GDSC tissue descriptor of gdsc_cosmic_info (19 tissues).",
             "", f"Median held-out test AUROC of the drugs' classifier heads: {mean.median_test_auroc:.3f} ± "
                 f"{sd.median_test_auroc:.3f}.", "",
             "## 2. Cells: the screen's call for each labelled set's drug vs a single-drug run", "",
             f"Single-drug figures: `scdeal (default)` rows of {single_from}, same seeds.", "",
             "| partition | drug | screen AUROC | single-drug AUROC | difference (screen − single) | seeds < 0.5 "
             "(screen) | screen bulk val AUROC | Spearman call vs signature | verdicts |",
             "|---|---|---|---|---|---|---|---|---|"]
    for (partition, drug), g in cell_rows.groupby(["partition", "drug"], sort=False):
        diff = g["auroc"] - g["single_auroc"]
        lines.append(f"| {partition} | {drug} | {g.auroc.mean():.3f} ± {g.auroc.std():.3f} | "
                     f"{g.single_auroc.mean():.3f} ± {g.single_auroc.std():.3f} | {diff.mean():+.3f} | "
                     f"{int((g.auroc < 0.5).sum())}/{len(g)} | {g.bulk_val_auroc.mean():.3f} | "
                     f"{g.spearman_vs_signature.mean():.2f} | {verdict_counts(g.verdict)} |")
    timing = cell_rows.groupby("partition")["transfer_seconds"].median()
    lines += ["", "Transfer time per partition (median over seeds, one transfer for all drugs): " +
              ", ".join(f"{p} {s:.0f} s" for p, s in timing.items()) +
              f"; screen pretraining {bulk_rows['pretrain_seconds'].median():.0f} s per seed.", ""]
    return "\n".join(lines)


def main() -> int:
    """Run the benchmark and write its report."""
    parser = benchmark_parser(__doc__, "screen.md")
    parser.add_argument("--single", type=Path, default=ROOT / "benchmarks" / "results" / "accuracy_per_seed.tsv",
                        help="per-seed results of benchmarks/accuracy.py (the single-drug figures)")
    args = parser.parse_args()
    if not ready_to_benchmark(args.data):
        return 1
    code = commit()
    response = readers.read_responses([args.data / f for f in BINARY + IC50])
    expression = readers.read_bulk_expression(args.data / "bulk" / "gdsc_expression_rowz.csv.gz")
    tissues = read_tissues(args.data / COSMIC_INFO)
    real = [p for p in PARTITIONS if not p.simulated]
    partitions = {p.name: (load(p, args.data, Path("."))[0], p.tasks) for p in real}
    bulk_rows, cell_rows = [], []
    for seed in range(args.seeds):
        bulk = prepare_screen(expression, response, config=BulkPrepareConfig(seed=seed))
        lines = BulkData.from_anndata(bulk)
        started = time.time()
        model = scdeal.tl.pretrain(lines, BulkConfig(seed=seed, predictor_hidden_dims=SCREEN_HEADS), device="cpu")
        bulk_rows.append({"seed": seed, "pretrain_seconds": time.time() - started,
                          **bulk_evaluation(bulk, model, response=response, tissues=tissues)})
        cell_rows += cell_evaluation(model, lines, partitions, seed=seed)
        logging.info("seed %d: %s", seed, {r["drug"]: round(r["auroc"], 3) for r in cell_rows[-3:]})
    bulk_frame = pd.DataFrame(bulk_rows)
    cells = pd.DataFrame(cell_rows).merge(single_drug_aurocs(args.single), on=["partition", "drug", "seed"], how="left")
    cells.to_csv(args.out.with_name("screen_per_seed.tsv"), sep="\t", index=False, float_format="%.4f")
    bulk_frame.to_csv(args.out.with_name("screen_bulk_per_seed.tsv"), sep="\t", index=False, float_format="%.4f")
    text = report(bulk_frame, cells, seeds=args.seeds, n_drugs=len(bulk.uns["scdeal_screen"]["drugs"]), code=code,
                  single_from=args.single.relative_to(ROOT).as_posix() if args.single.is_relative_to(ROOT) else str(args.single))
    print(text)
    args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
