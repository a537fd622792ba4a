#!/usr/bin/env python3
"""Screen benchmark: the screen's efficacy model (a ridge of GDSC AUC, `scdeal.model.efficacy`) on held-out cell
lines (DrEval-style) against simple references, and the screen on each labelled real set, over seeds.

1. Bulk, leave-cell-line-out, on measured AUC (GDSC1 and GDSC2 averaged where both measure a pair). Each seed's
   screen split holds out 20 % of the lines (never trained on, never used for a choice). On the held-out lines:
   - per drug, the Spearman correlation across lines of the predicted with the measured AUC, for the efficacy model,
     a linear ridge on the same genes (unmeasured pairs at the drug's mean, its penalty the best median per-drug
     Spearman on the validation lines, refitted on training and validation lines as the efficacy model is), the
     drug's mean AUC on the training lines of the line's tissue (drevalpy's NaiveTissueDrugMeanPredictor; tissue
     from gdsc_cosmic_info), and the multi-task deep model's regression heads (context: they predict the pooled
     z-scored response);
   - per line, the Spearman correlation across drugs of the predicted with the measured AUC, and the precision of
     the 10 drugs predicted most effective (lowest AUC) among the line's 10 truly most effective, against the
     drug-mean ranking (each drug's mean AUC on the training lines).
2. Cells. For every labelled real set, the screen's transferred call for the set's drug is scored with the cell
   labels (AUROC), beside the references: the efficacy model's own cell ranking (lower predicted AUC, more
   sensitive: the screen's trust reference), the drug's bulk signature scored on the cells, the logistic baseline
   and the single-drug default of the same seed (`logistic (profile)` and `scdeal (default)` rows of
   benchmarks/results/accuracy_per_seed.tsv).

No cell label reaches training or any choice; labels only score. Writes benchmarks/results/screen.md,
screen_per_seed.tsv and screen_bulk_per_seed.tsv.

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
    AUC,
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
from scdeal.data import keys, readers
from scdeal.data.bulk import BulkPrepareConfig
from scdeal.data.bulkdata import BulkData
from scdeal.data.features import model_features
from scdeal.data.readers import normalise_name
from scdeal.data.screen import prepare_screen
from scdeal.model.efficacy import ALPHAS, fit_efficacy
from scdeal.model.metrics import binary_metrics, column_spearman
from scdeal.model.orientation import rank_correlation
from scdeal.model.training import BulkConfig, head_outputs
from scdeal.tl.screen import SCREEN_HEADS

MIN_TEST_LINES = 10      # a drug enters the per-drug table with at least this many measured held-out lines
MIN_TEST_DRUGS = 20      # a line enters the per-line figures with at least this many measured drugs
TOP = 10                 # the per-line precision of the drugs predicted most effective
COSMIC_INFO = "bulk/gdsc_cosmic_info.csv.gz"
TISSUE_COLUMN = "GDSC1"  # gdsctools' first GDSC tissue descriptor (19 tissues, e.g. aero_dig_tract)


def read_tissues(path: Path) -> pd.Series:
    """Normalised cell-line name → GDSC tissue."""
    table = pd.read_csv(path, dtype=str)
    return table.assign(key=table["SAMPLE_NAME"].map(normalise_name)).drop_duplicates("key").set_index("key")[
        TISSUE_COLUMN].fillna("unknown")


def tissue_drug_mean_baseline(y: np.ndarray, tissue: np.ndarray, *, train: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Each (test line, drug): the drug's mean response on the training lines of the line's tissue, else on
    all training lines (DrEval's NaiveTissueDrugMeanPredictor)."""
    with warnings.catch_warnings():  # a drug no training line of a tissue measured
        warnings.simplefilter("ignore", RuntimeWarning)
        overall = np.nanmean(y[train], 0)
        by_tissue = {t: np.nanmean(y[train & (tissue == t)], 0) for t in np.unique(tissue[train])}
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


def top_precision(measured: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Per line, the share of its TOP truly most effective drugs (lowest measured AUC) among the TOP predicted most
    effective, both among the drugs it was measured on (NaN for lines with too few)."""
    out = np.full(len(measured), np.nan)
    for i, (m, p) in enumerate(zip(measured, predicted, strict=True)):
        seen = np.flatnonzero(~np.isnan(m) & ~np.isnan(p))
        if len(seen) >= MIN_TEST_DRUGS:
            truth, guess = seen[np.argsort(m[seen])[:TOP]], seen[np.argsort(p[seen])[:TOP]]
            out[i] = len(np.intersect1d(truth, guess)) / TOP
    return out


def ridge_reference(bulk: BulkData) -> np.ndarray:
    """Held-out lines × drugs AUC predicted by a multi-output linear ridge on the expression (the model's features;
    unmeasured training pairs at the drug's mean), its penalty the best median per-drug Spearman on the validation
    lines, refitted on the training and validation lines."""
    split, auc = bulk.split, bulk.auc
    fit = split != "test"

    def ridge(rows: np.ndarray, alpha: float):
        x, stats = model_features(bulk.expression()[rows])
        mean = np.nanmean(auc[rows], 0)
        fitted = KernelRidge(alpha=alpha, kernel="linear").fit(x / np.sqrt(x.shape[1]), np.nan_to_num(auc[rows] - mean))
        return fitted, stats, mean

    def predict(model, rows: np.ndarray) -> np.ndarray:
        fitted, stats, mean = model
        x = model_features(bulk.expression()[rows], stats)[0]
        return fitted.predict(x / np.sqrt(x.shape[1])) + mean

    val = {a: np.nanmedian(per_drug_spearman(auc[split == "val"], predict(ridge(split == "train", a), split == "val")))
           for a in ALPHAS}
    return predict(ridge(fit, max(val, key=val.get)), split == "test")


def bulk_evaluation(bulk: BulkData, model, *, tissues: pd.Series, seed: int) -> dict:
    """The DrEval-style figures of one seed's efficacy model and references on its held-out lines (with the deep
    model's as context where it was pretrained)."""
    split, auc = bulk.split, bulk.auc
    test, fit = split == "test", split != "test"
    tissue = bulk.adata.obs_names.map(tissues).fillna("unknown").to_numpy()
    efficacy = fit_efficacy(bulk.expression(), auc, split, drugs=bulk.drugs, genes=bulk.genes, members=0, seed=seed)
    measured = auc[test]
    predicted = {"efficacy": efficacy.predict(bulk.expression()[test]), "ridge": ridge_reference(bulk),
                 "tissue": tissue_drug_mean_baseline(auc, tissue, train=fit, test=test)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        drug_mean, drug_sd = np.nanmean(auc[fit], 0), np.nanstd(auc[fit], 0)
    drug_mean_rows = np.broadcast_to(drug_mean, measured.shape).copy()
    rho = {k: per_drug_spearman(measured, v) for k, v in predicted.items()}
    paired = np.all([np.isfinite(r) for r in rho.values()], axis=0)
    line = {k: per_line_spearman(measured, v) for k, v in {**predicted, "drug_mean": drug_mean_rows}.items()}
    deep = deep_figures(bulk, model, drug_mean=drug_mean, drug_sd=drug_sd, paired=paired) if model else {}
    top = {k: top_precision(measured, v) for k, v in (("efficacy", predicted["efficacy"]), ("drug_mean", drug_mean_rows))}
    lines = np.isfinite(line["efficacy"]) & np.isfinite(line["drug_mean"])
    return {"drugs_scored": int(paired.sum()), "alpha": efficacy.alpha,
            **{f"per_drug_{k}": float(np.median(r[paired])) for k, r in rho.items()},
            "drugs_better_than_ridge": float(np.mean(rho["efficacy"][paired] > rho["ridge"][paired])),
            "drugs_better_than_tissue": float(np.mean(rho["efficacy"][paired] > rho["tissue"][paired])),
            "lines_scored": int(lines.sum()), **{f"per_line_{k}": float(np.median(r[lines])) for k, r in line.items()},
            "lines_better_than_drug_mean": float(np.mean(line["efficacy"][lines] > line["drug_mean"][lines])),
            **{f"top{TOP}_{k}": float(np.mean(v[lines])) for k, v in top.items()}, **deep}


def deep_figures(bulk: BulkData, model, *, drug_mean: np.ndarray, drug_sd: np.ndarray, paired: np.ndarray) -> dict:
    """Context: the multi-task deep model's regression heads on the held-out lines (their pooled z, lower more
    sensitive, put on each drug's AUC scale) and its classifier heads' median test AUROC."""
    test = bulk.split == "test"
    z = head_outputs(model.encoder, model.regressor, model_features(bulk.expression()[test],
                                                                    (model.gene_mean, model.gene_sd))[0], device=CPU)
    measured = bulk.auc[test]
    lines = np.isfinite(per_line_spearman(measured, np.broadcast_to(drug_mean, measured.shape).copy()))
    return {"per_drug_deep": float(np.nanmedian(per_drug_spearman(measured, drug_mean + drug_sd * z)[paired])),
            "per_line_deep": float(np.nanmedian(per_line_spearman(measured, drug_mean + drug_sd * z)[lines])),
            "median_test_auroc": float(np.nanmedian([m["test"].get("auroc", np.nan) for m in model.metrics]))}


def auroc(y: np.ndarray, score: np.ndarray) -> float:
    """AUROC of `score` (higher: sensitive) against the labels; NaN where the score is missing."""
    return binary_metrics(y, score)["auroc"] if np.isfinite(score).all() else float("nan")


def clusters_vs_labels(efficacy, cells, y: np.ndarray, *, d: int) -> float:
    """Spearman across clusters of the clusters' efficacy for drug `d` with their labelled sensitive fraction."""
    codes = cells.obs[keys.CLUSTER].astype(str).to_numpy()
    sensitive = [y[codes == c].mean() for c in efficacy.clusters]
    return rank_correlation(1 - efficacy.auc[0, :, d], np.array(sensitive))


def cell_evaluation(bulk: BulkData, partitions: dict, *, seed: int) -> list[dict]:
    """The screen's AUROC and its references' for each labelled task, one screen per partition (the pipeline's
    default: no pretrained model)."""
    rows, code = [], commit()
    for name, (cells, tasks) in partitions.items():
        run = run_screen(None, bulk, cells, seed=seed, what=name)
        for task in tasks:
            y = (cells.obs[task.label_key].astype(str) == "sensitive").to_numpy().astype(int)
            d = run.column(task.drug)
            rows.append({"seed": seed, "commit": code, "partition": name, "drug": task.drug,
                         "auroc": auroc(y, run.result.prob[:, d]),
                         "linear_auroc": auroc(y, -run.efficacy.cell_auc[:, d]),
                         "signature_auroc": auroc(y, run.result.signature[:, d]),
                         "efficacy": float(1 - run.efficacy.weights @ run.efficacy.auc[0, :, d]),
                         "clusters_vs_labels": clusters_vs_labels(run.efficacy, cells, y, d=d),
                         "bulk_val_auroc": float(run.result.bulk_evidence[d]),
                         "verdict": run.trust["verdict"].iloc[d],
                         "spearman_vs_linear": float(run.trust["spearman_transfer_vs_linear"].iloc[d]),
                         "transfer_seconds": run.seconds})
    return rows


def accuracy_rows(path: Path) -> pd.DataFrame:
    """The single-drug default's and the logistic baseline's AUROC per (partition, drug, seed), from the accuracy
    benchmark."""
    table = pd.read_csv(path, sep="\t")
    wide = table[table["method"].isin(["scdeal (default)", "logistic (profile)"])].pivot_table(
        index=["partition", "drug", "seed"], columns="method", values="auroc").reset_index()
    return wide.rename(columns={"scdeal (default)": "single_auroc", "logistic (profile)": "logistic_auroc"})


def mean_sd(values: pd.Series, digits: int = 3) -> str:
    """'0.412 ± 0.013' over seeds."""
    return f"{values.mean():.{digits}f} ± {values.std():.{digits}f}"


def report(bulk_rows: pd.DataFrame, cell_rows: pd.DataFrame, *, single_from: str) -> str:
    """The markdown report."""
    b = bulk_rows
    seeds, n_drugs, code = len(b), int(b.n_drugs.iloc[0]), b["commit"].iloc[0]
    cell_seeds = cell_rows["seed"].nunique() if len(cell_rows) else 0
    cell_commits = ", ".join(cell_rows["commit"].unique()) if len(cell_rows) else "-"
    lines = ["# Screen benchmark", "",
             f"date {date.today()}, machine {platform.node()} ({len(os.sched_getaffinity(0))} CPU threads, torch "
             f"{torch.__version__}, CPU), commit {code}, {seeds} seeds for the bulk and {cell_seeds} for the cells "
             "(mean ± sd over seeds), GDSC expression "
             f"(975 lines) with every drug of the binary calls and the GDSC1/GDSC2 LN_IC50 and AUC tables: {n_drugs} "
             "drugs.", "",
             "No cell label reaches training or any choice. The efficacy model's design (linear kernel ridge of AUC, "
             "unmeasured pairs filled by EM, one penalty chosen by validation-line error; tried and not taken: an RBF "
             "kernel, a penalty per drug, low-rank targets) was chosen on validation lines of four splits of the "
             "lines with AUC; PC9 and SCAD were not used to choose.", "",
             "## 1. Bulk, leave-cell-line-out (DrEval-style), measured AUC", "",
             "Held-out lines: 20 % of the lines per seed, never trained on or used for a choice. "
             f"Medians over the {b.drugs_scored.mean():.0f} drugs with at least {MIN_TEST_LINES} measured held-out "
             f"lines and every predictor defined, and over the {b.lines_scored.mean():.0f} held-out lines with at "
             f"least {MIN_TEST_DRUGS} measured drugs.", "",
             "| figure | efficacy model (the screen's) | reference | efficacy model better on |", "|---|---|---|---|",
             f"| per-drug Spearman across held-out lines | {mean_sd(b.per_drug_efficacy)} | linear ridge, same genes, "
             f"penalty tuned on validation lines: {mean_sd(b.per_drug_ridge)} | {b.drugs_better_than_ridge.mean():.0%} "
             "of drugs |",
             f"| the same | | tissue × drug mean (DrEval's strongest naive baseline for unseen lines): "
             f"{mean_sd(b.per_drug_tissue)} | {b.drugs_better_than_tissue.mean():.0%} of drugs |",
             f"| the same | | multi-task deep heads (context; they learn the pooled z of LN_IC50 and AUC): "
             f"{mean_sd(b.per_drug_deep)} ({b.per_drug_deep.notna().sum()} seeds) | |",
             f"| per-line Spearman across drugs | {mean_sd(b.per_line_efficacy)} | drug mean on training lines: "
             f"{mean_sd(b.per_line_drug_mean)} | {b.lines_better_than_drug_mean.mean():.0%} of lines |",
             f"| top-{TOP} precision per line (of its {TOP} truly most effective drugs, lowest AUC) | "
             f"{mean_sd(b[f'top{TOP}_efficacy'])} | drug-mean ranking: {mean_sd(b[f'top{TOP}_drug_mean'])} | |", "",
             f"Deep heads per line: {mean_sd(b.per_line_deep)} ({b.per_line_deep.notna().sum()} seeds). Ridge penalty "
             "chosen: "
             + ", ".join(f"{a:g} ({n})" for a, n in b.alpha.value_counts().sort_index().items())
             + f" (seeds). Median held-out test AUROC of the deep classifier heads: {mean_sd(b.median_test_auroc)}.", "",
             "## 2. Cells: each labelled set's drug", "",
             f"Commit {cell_commits}. AUROC against the cell labels of: the screen's transferred call (`screen`), "
             "the efficacy model's own cell "
             "ranking (lower predicted AUC, more sensitive: the screen's trust reference, `linear`), the drug's bulk "
             "signature scored on each cell, the logistic baseline and the single-drug default of the same seed "
             f"(from {single_from}). Efficacy: 1 − the sample's predicted AUC. Clusters' efficacy vs labels: the "
             "Spearman correlation across the sample's Leiden clusters of their efficacy with their labelled "
             "sensitive fraction (the within-sample contrast).", "",
             "| partition | drug | screen | seeds < 0.5 | linear | signature | logistic | single-drug | efficacy | "
             "clusters' efficacy vs labels | Spearman screen vs linear | verdicts |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    if not len(cell_rows):
        return "\n".join([*lines[:-5], "Not run.", ""])
    for (partition, drug), g in cell_rows.groupby(["partition", "drug"], sort=False):
        lines.append(f"| {partition} | {drug} | {mean_sd(g.auroc)} | {int((g.auroc < 0.5).sum())}/{len(g)} | "
                     f"{mean_sd(g.linear_auroc)} | {mean_sd(g.signature_auroc)} | {mean_sd(g.logistic_auroc)} | "
                     f"{mean_sd(g.single_auroc)} | {mean_sd(g.efficacy)} | {mean_sd(g.clusters_vs_labels, 2)} | "
                     f"{g.spearman_vs_linear.mean():.2f} | "
                     f"{verdict_counts(g.verdict)} |")
    timing = cell_rows.groupby("partition")["transfer_seconds"].median()
    lines += ["", "Screen time per partition (median over seeds: one transfer for all drugs, the efficacy model and "
                  "the rankings): " + ", ".join(f"{p} {s:.0f} s" for p, s in timing.items()) +
              f"; deep pretraining {b['pretrain_seconds'].median():.0f} s per seed.", ""]
    return "\n".join(lines)


def saved(path: Path) -> pd.DataFrame:
    """A per-seed table written by an earlier run (empty where none); commits stay text (a hash can be all
    digits)."""
    return pd.read_csv(path, sep="\t", dtype={"commit": str}) if path.exists() else pd.DataFrame({"seed": []})


def main() -> int:
    """Run the benchmark and write its report. The per-seed tables are rewritten after each seed, and a rerun resumes
    from them: seeds already there are skipped (`--fresh` starts over). The deep model is pretrained for the first
    `--deep-seeds` (the bulk figures of the others lack its context column); the cells are screened as the pipeline
    does by default, each member fitting its own bulk model."""
    parser = benchmark_parser(__doc__, "screen.md")
    parser.add_argument("--single", type=Path, default=ROOT / "benchmarks" / "results" / "accuracy_per_seed.tsv",
                        help="per-seed results of benchmarks/accuracy.py (the single-drug and logistic figures)")
    parser.add_argument("--cell-seeds", type=int, default=None, help="screen the cells on the first N seeds only")
    parser.add_argument("--deep-seeds", type=int, default=None, help="pretrain the deep model on the first N seeds only")
    parser.add_argument("--fresh", action="store_true", help="ignore the per-seed tables of an earlier run")
    parser.add_argument("--from-saved", action="store_true", help="only render the report from the per-seed tables")
    args = parser.parse_args()
    bulk_path, cell_path = args.out.with_name("screen_bulk_per_seed.tsv"), args.out.with_name("screen_per_seed.tsv")
    single_from = args.single.relative_to(ROOT).as_posix() if args.single.is_relative_to(ROOT) else str(args.single)
    if args.from_saved:
        return write_report(args.out, saved(bulk_path), saved(cell_path), single_from=single_from)
    if not ready_to_benchmark(args.data):
        return 1
    bulk_rows, cell_rows = ([], []) if args.fresh else (saved(bulk_path).to_dict("records"),
                                                         saved(cell_path).to_dict("records"))
    done_bulk, done_cells = {r["seed"] for r in bulk_rows}, {r["seed"] for r in cell_rows}
    cell_seeds = [s for s in range(min(args.seeds, args.cell_seeds or args.seeds)) if s not in done_cells]
    deep_seeds = set(range(args.seeds if args.deep_seeds is None else args.deep_seeds))
    response = readers.read_responses([args.data / f for f in BINARY + IC50 + AUC])
    expression = readers.read_bulk_expression(args.data / "bulk" / "gdsc_expression_rowz.csv.gz")
    tissues = read_tissues(args.data / COSMIC_INFO)
    real = [p for p in PARTITIONS if not p.simulated]
    partitions = {p.name: (load(p, args.data, Path("."))[0], p.tasks) for p in real} if cell_seeds else {}
    accuracy = accuracy_rows(args.single)
    for seed in sorted(range(args.seeds), key=lambda s: s in cell_seeds):  # the bulk part first, never cut
        if seed in done_bulk and seed not in cell_seeds:
            continue
        bulk = BulkData.from_anndata(prepare_screen(expression, response, config=BulkPrepareConfig(seed=seed)))
        started = time.time()
        model = scdeal.tl.pretrain(bulk, BulkConfig(seed=seed, predictor_hidden_dims=SCREEN_HEADS), device="cpu") \
            if seed in deep_seeds and seed not in done_bulk else None
        if seed not in done_bulk:
            bulk_rows.append({"seed": seed, "commit": commit(), "n_drugs": len(bulk.drugs),
                              "pretrain_seconds": time.time() - started if model else np.nan,
                              **bulk_evaluation(bulk, model, tissues=tissues, seed=seed)})
            pd.DataFrame(bulk_rows).sort_values("seed").to_csv(bulk_path, sep="\t", index=False, float_format="%.4f")
            logging.info("seed %d bulk: %s", seed, {k: v for k, v in bulk_rows[-1].items() if "per_" in k})
        if seed in cell_seeds:
            found = cell_evaluation(bulk, partitions, seed=seed)
            cell_rows += pd.DataFrame(found).merge(accuracy, on=["partition", "drug", "seed"], how="left").to_dict("records")
            pd.DataFrame(cell_rows).to_csv(cell_path, sep="\t", index=False, float_format="%.4f")
            logging.info("seed %d cells: %s", seed, {r["drug"]: round(r["auroc"], 3) for r in found})
    return write_report(args.out, saved(bulk_path), saved(cell_path), single_from=single_from)


def write_report(path: Path, bulk_rows: pd.DataFrame, cell_rows: pd.DataFrame, *, single_from: str) -> int:
    """Write and print the report of the saved per-seed tables."""
    text = report(bulk_rows, cell_rows, single_from=single_from)
    print(text)
    path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
