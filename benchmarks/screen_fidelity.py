#!/usr/bin/env python3
"""Screen fidelity: how closely the screen's call for a drug follows a dedicated single-drug run of that
drug on the same cells and seed. Label-free: it reads no cell label, so it covers drugs no real set has
labels for.

Per seed: one screen per real partition as the pipeline runs it by default (no pretrained model, each
member fitting its own); then, for each drug scored on that partition, the single-drug default (as
`benchmarks/accuracy.py` runs it) and its trust verdict against the logistic baseline. The drugs are each
partition's labelled drugs plus `--random` drugs drawn once (numpy seed 7) from the screen's drugs, on SCAD
only (a single-drug run on PC9's 2,115 cells costs about a minute).

Figures per drug, over seeds:
- fidelity: the Spearman correlation across cells of the screen's per-cell probability with the
  single-drug run's;
- reversals: seeds where fidelity < 0 (the two calls point opposite ways), and whether the screen's
  verdict flagged them (anything but `consistent`);
- both paths' trust verdicts (the screen's against the efficacy model's cell ranking, the single-drug run's
  against the logistic baseline) and how often they agree.

Writes benchmarks/results/screen_fidelity.md and screen_fidelity_per_seed.tsv.

usage: python benchmarks/screen_fidelity.py [--seeds 10] [--random 4] [--data ../shared/data]
"""
from __future__ import annotations

import logging
import os
import platform
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from common import (
    AUC,
    BINARY,
    IC50,
    PARTITIONS,
    benchmark_parser,
    commit,
    load,
    ready_to_benchmark,
    run_screen,
    single_drug_default,
    verdict_counts,
)

from scdeal.data import readers
from scdeal.data.bulk import BulkPrepareConfig
from scdeal.data.bulkdata import BulkData
from scdeal.data.readers import normalise_name
from scdeal.data.screen import prepare_screen
from scdeal.model.orientation import rank_correlation

DRAW_SEED = 7
RANDOM_DRUGS_ON = "SCAD"   # partition name prefix that also gets the random drugs


def random_drugs(drugs: list[str], n: int, *, exclude: set[str]) -> list[str]:
    """`n` drugs drawn once with numpy seed DRAW_SEED, none of them in `exclude` (normalised names)."""
    pool = [d for d in drugs if normalise_name(d) not in exclude]
    return [str(d) for d in np.random.default_rng(DRAW_SEED).choice(pool, n, replace=False)]


def single_drug_call(drug: str, cells, *, expression, response: pd.DataFrame, seed: int) -> tuple[np.ndarray, str]:
    """The single-drug default's per-cell probability and its trust verdict (against the logistic baseline)."""
    _, _, prediction, _ = single_drug_default(drug, cells, expression=expression, response=response, seed=seed)
    return prediction.result.prob, prediction.trust["verdict"]


def partition_rows(bulk, cells, *, drugs: dict[str, pd.DataFrame], expression, seed: int, what: str) -> list[dict]:
    """One screen transfer on `cells`, then each drug's fidelity to its dedicated run and both verdicts.
    `drugs` maps a drug to the response table its single-drug run reads."""
    run = run_screen(None, bulk, cells, seed=seed, what=what)
    rows = []
    for drug, response in drugs.items():
        d = run.column(drug)
        single_prob, single_verdict = single_drug_call(drug, cells, expression=expression, response=response, seed=seed)
        rows.append({"seed": seed, "drug": drug, "fidelity": rank_correlation(run.result.prob[:, d], single_prob),
                     "screen_verdict": run.trust["verdict"].iloc[d], "single_verdict": single_verdict,
                     "screen_vs_linear": float(run.trust["spearman_transfer_vs_linear"].iloc[d])})
    return rows


def drug_table(frame: pd.DataFrame) -> list[str]:
    """Per (partition, drug): fidelity over seeds, reversals and both paths' verdicts."""
    lines = ["| partition | drug | labelled | fidelity | lowest | seeds < 0 (flagged by the screen) | seeds < 0.5 | "
             "screen verdicts | single-drug verdicts | verdicts agree |", "|" + "---|" * 10]
    for (partition, drug), g in frame.groupby(["partition", "drug"], sort=False):
        reversed_ = g[g.fidelity < 0]
        flagged = int((reversed_.screen_verdict != "consistent").sum())
        lines.append(f"| {partition} | {drug} | {'yes' if g.labelled.iloc[0] else 'no'} | "
                     f"{g.fidelity.mean():.3f} ± {g.fidelity.std():.3f} | {g.fidelity.min():.3f} | "
                     f"{len(reversed_)}/{len(g)} ({flagged}) | {int((g.fidelity < 0.5).sum())}/{len(g)} | "
                     f"{verdict_counts(g.screen_verdict)} | {verdict_counts(g.single_verdict)} | "
                     f"{int((g.screen_verdict == g.single_verdict).sum())}/{len(g)} |")
    return lines


def summary(frame: pd.DataFrame) -> list[str]:
    """The pooled figures over every (drug, seed)."""
    reversed_ = frame[frame.fidelity < 0]
    low = frame[frame.fidelity < 0.5]
    per_drug = frame.groupby(["partition", "drug"])["fidelity"].mean()
    return [f"- Median fidelity over {len(per_drug)} (partition, drug) pairs: {per_drug.median():.3f} "
            f"(each the mean over seeds); over all {len(frame)} runs: median {frame.fidelity.median():.3f}.",
            f"- Runs where the two calls point opposite ways (fidelity < 0): {len(reversed_)} of {len(frame)}; the "
            f"screen flagged {int((reversed_.screen_verdict != 'consistent').sum())} of them, the single-drug run "
            f"{int((reversed_.single_verdict != 'consistent').sum())}.",
            f"- Runs with fidelity < 0.5: {len(low)}; flagged by the screen "
            f"{int((low.screen_verdict != 'consistent').sum())}.",
            f"- The two paths' verdicts agree on {(frame.screen_verdict == frame.single_verdict).mean():.0%} of runs."]


def report(frame: pd.DataFrame, *, seeds: int, code: str, seconds: float) -> str:
    """The markdown report."""
    lines = ["# Screen fidelity", "",
             f"date {date.today()}, machine {platform.node()} ({len(os.sched_getaffinity(0))} CPU threads, torch "
             f"{torch.__version__}, CPU), commit {code}, {seeds} seeds, {seconds / 60:.0f} min.", "",
             "Fidelity: the Spearman correlation across cells of the screen's per-cell probability for a drug with "
             "a dedicated single-drug run's, same cells and seed. No cell label is read; the labelled drugs are "
             "those of benchmarks/results/screen.md, the others drawn at random (numpy seed "
             f"{DRAW_SEED}) from the screen's drugs. A verdict other than `consistent` is a flag. The screen's "
             "verdict compares its call with the efficacy model's cell ranking; the single-drug run's compares it with "
             "the logistic baseline.", "",
             *drug_table(frame), "", *summary(frame), ""]
    return "\n".join(lines)


def scored_drugs(partition, model_drugs: list[str], n_random: int) -> dict[str, tuple[list[str], bool]]:
    """Drug → (the response tables of its single-drug run, whether the partition has its labels)."""
    drugs = {t.drug: (t.responses, True) for t in partition.tasks}
    if partition.name.startswith(RANDOM_DRUGS_ON):
        labelled = {normalise_name(d) for d in drugs}
        drugs |= dict.fromkeys(random_drugs(model_drugs, n_random, exclude=labelled), (BINARY + IC50, False))
    return drugs


def main() -> int:
    """Run the benchmark and write its report."""
    parser = benchmark_parser(__doc__, "screen_fidelity.md")
    parser.add_argument("--random", type=int, default=4, help="random drugs scored on SCAD besides its labelled ones")
    args = parser.parse_args()
    if not ready_to_benchmark(args.data):
        return 1
    code, started = commit(), time.time()
    real = [p for p in PARTITIONS if not p.simulated]
    tables = {files: readers.read_responses([args.data / f for f in files])
              for files in {tuple(BINARY + IC50), *(tuple(t.responses) for p in real for t in p.tasks)}}
    response = readers.read_responses([args.data / f for f in BINARY + IC50 + AUC])  # the screen's: efficacy is AUC
    expression = readers.read_bulk_expression(args.data / "bulk" / "gdsc_expression_rowz.csv.gz")
    cells = {p.name: load(p, args.data, Path("."))[0] for p in real}
    rows = []
    for seed in range(args.seeds):
        bulk = BulkData.from_anndata(prepare_screen(expression, response, config=BulkPrepareConfig(seed=seed)))
        for partition in real:
            drugs = scored_drugs(partition, bulk.drugs, args.random)
            responses = {d: tables[tuple(files)] for d, (files, _) in drugs.items()}
            found = partition_rows(bulk, cells[partition.name], drugs=responses, expression=expression,
                                   seed=seed, what=partition.name)
            rows += [{**r, "partition": partition.name, "labelled": drugs[r["drug"]][1]} for r in found]
        logging.info("seed %d: %s", seed, {r["drug"]: round(r["fidelity"], 3) for r in rows if r["seed"] == seed})
        frame = pd.DataFrame(rows)  # written every seed: a long run shows its progress and keeps what it did
        frame.to_csv(args.out.with_name("screen_fidelity_per_seed.tsv"), sep="\t", index=False, float_format="%.4f")
    text = report(frame, seeds=args.seeds, code=code, seconds=time.time() - started)
    print(text)
    args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
