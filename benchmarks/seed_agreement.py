#!/usr/bin/env python3
"""Seed agreement benchmark, label-free: does one run's call hang on its seed, and does the run say so?

Per partition (SCAD, PC9, the simulator's orientation trap) and seed: the default single-drug run of each
labelled drug, and one default screen of a fixed draw of random drugs (numpy seed 7, drawn once from every
drug the response tables hold, labelled drugs excluded). Clustering is the same for every seed; the bulk
split, the members' folds, bootstraps and initialisation follow the seed, as in the pipeline, which
pretrains no bulk model by default (each member fits its own).

Per drug: the pairwise Spearman of the per-cell calls between seeds, the verdicts, and the pairs in which
both runs say `consistent` yet rank the cells with Spearman below 0.8. No cell label is read: defaults may
be chosen on this benchmark. Writes benchmarks/results/seed_agreement.md and seed_agreement_runs.tsv.

usage: python benchmarks/seed_agreement.py [--seeds 10] [--random 20] [--only PARTITION ...] [--data ../shared/data]
"""
from __future__ import annotations

import itertools
import platform
import tempfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from common import PARTITIONS, benchmark_parser, commit, load, ready_to_benchmark, verdict_counts

import scdeal.tl
from scdeal.data import readers
from scdeal.data.bulk import BulkPrepareConfig, prepare_bulk
from scdeal.data.bulkdata import BulkData
from scdeal.data.screen import prepare_screen
from scdeal.model.orientation import rank_correlation
from scdeal.model.training import BulkConfig
from scdeal.model.transfer import TransferConfig

AGREEMENT = 0.8        # two runs that both say `consistent` should rank the cells at least this alike
RANDOM_SEED = 7
RUN_FIELDS = ("verdict", "members_mean_spearman", "members_lowest_spearman", "bulk_val_auroc_genes_used")


def single_runs(name: str, drug: str, cells, *, expression, response, seed: int) -> dict:
    """One default single-drug run: the call and the run's trust figures."""
    bulk = BulkData.from_anndata(prepare_bulk(expression, response, drug, config=BulkPrepareConfig(seed=seed)))
    prediction = scdeal.tl.predict(cells.copy(), bulk, bulk_config=BulkConfig(seed=seed),
                                   config=TransferConfig(seed=seed), device="cpu", what=drug)
    trust = prediction.trust
    return {"partition": name, "path": "single drug", "drug": drug, "seed": seed,
            **{k: trust[k] for k in RUN_FIELDS}, "prob": prediction.result.prob}


def screen_runs(name: str, drugs: list[str], cells, *, expression, response, seed: int) -> list[dict]:
    """One default screen of `drugs`: each drug's call and trust figures."""
    bulk = BulkData.from_anndata(prepare_screen(expression, response, drugs=drugs, config=BulkPrepareConfig(seed=seed)))
    outcome = scdeal.tl.screen(cells.copy(), bulk, bulk_config=BulkConfig(seed=seed), config=TransferConfig(seed=seed),
                               device="cpu", what="screen")
    trust = outcome.trust.set_index("drug").rename(columns={"bulk_val_auroc": "bulk_val_auroc_genes_used"})
    return [{"partition": name, "path": "screen", "drug": drug, "seed": seed,
             **{k: trust.loc[drug, k] for k in RUN_FIELDS}, "prob": outcome.result.prob[:, d]}
            for d, drug in enumerate(outcome.result.drugs)]


def random_drugs(expression, response: pd.DataFrame, *, exclude: set[str], n: int) -> list[str]:
    """A fixed draw of `n` of the drugs a screen keeps (enough lines of each class), the labelled ones left out."""
    kept = BulkData.from_anndata(prepare_screen(expression, response, config=BulkPrepareConfig())).drugs
    names = sorted(d for d in kept if readers.normalise_name(d) not in exclude)
    return sorted(np.random.default_rng(RANDOM_SEED).choice(names, size=min(n, len(names)), replace=False).tolist())


def pair_rows(runs: pd.DataFrame) -> pd.DataFrame:
    """Every pair of seeds of each (partition, path, drug): the Spearman of their calls and their verdicts."""
    rows = []
    for key, group in runs.groupby(["partition", "path", "drug"], sort=False):
        for (_, a), (_, b) in itertools.combinations(group.iterrows(), 2):
            rows.append({"partition": key[0], "path": key[1], "drug": key[2], "seed_a": a.seed, "seed_b": b.seed,
                         "spearman": rank_correlation(a.prob, b.prob),
                         "both_consistent": a.verdict == b.verdict == "consistent"})
    return pd.DataFrame(rows, columns=["partition", "path", "drug", "seed_a", "seed_b", "spearman", "both_consistent"])


def drug_table(runs: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """Per drug: seed agreement, verdicts, and the consistent pairs that disagree."""
    rows = []
    for key, own in runs.groupby(["partition", "path", "drug"], sort=False):
        group = pairs[(pairs.partition == key[0]) & (pairs.path == key[1]) & (pairs.drug == key[2])]
        both = group[group.both_consistent.astype(bool)]
        rows.append({"partition": key[0], "path": key[1], "drug": key[2], "seeds": len(own),
                     "spearman_mean": group.spearman.mean(), "spearman_min": group.spearman.min(),
                     "members_mean_spearman": own.members_mean_spearman.mean(),
                     "bulk_evidence": own.bulk_val_auroc_genes_used.mean(),
                     "verdicts": verdict_counts(own.verdict), "consistent_pairs": len(both),
                     "consistent_pairs_below": int((both.spearman < AGREEMENT).sum()),
                     "lowest_consistent_pair": both.spearman.min() if len(both) else np.nan})
    return pd.DataFrame(rows)


def report(runs: pd.DataFrame, pairs: pd.DataFrame, args) -> str:
    """The markdown report."""
    table = drug_table(runs, pairs)
    flagged = runs.verdict != "consistent"
    disagreeing = int((pairs.both_consistent.astype(bool) & (pairs.spearman < AGREEMENT)).sum())
    lines = [f"# Seed agreement (label-free), {date.today()}, commit {commit()}", "",
             f"{args.seeds} seeds; {platform.machine()}, torch {torch.__version__}, CPU. No cell label was read. "
             f"Random drugs: {args.random} per real partition, numpy seed {RANDOM_SEED}.", "",
             f"- Pairs of seeds in which both runs say `consistent`: {int(pairs.both_consistent.sum())}; of those "
             f"ranking the cells with Spearman < {AGREEMENT}: **{disagreeing}**.",
             f"- Runs flagged (not `consistent`): {int(flagged.sum())} of {len(runs)}.", "",
             "| partition | path | drug | seeds | seed Spearman mean | lowest | members' mean Spearman | bulk evidence "
             "| verdicts | consistent pairs | of those < 0.8 | lowest consistent pair |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in table.itertuples():
        lines.append(f"| {r.partition} | {r.path} | {r.drug} | {r.seeds} | {r.spearman_mean:.3f} | {r.spearman_min:.3f} | "
                     f"{r.members_mean_spearman:.3f} | {r.bulk_evidence:.3f} | {r.verdicts} | {r.consistent_pairs} | "
                     f"{r.consistent_pairs_below} | {r.lowest_consistent_pair:.3f} |")
    return "\n".join(lines) + "\n"


def partition_runs(partition, args, workdir: Path) -> Iterator[list[dict]]:
    """Every run of one partition, seed by seed."""
    cells, expression, responses = load(partition, args.data, workdir)
    drugs = [task.drug for task in partition.tasks]
    if not partition.simulated:
        response = readers.read_responses([args.data / f for f in partition.tasks[0].responses])
        expression = readers.read_bulk_expression(args.data / "bulk/gdsc_expression_rowz.csv.gz", set(response["line"]))
        panel = random_drugs(expression, response, exclude={readers.normalise_name(d) for d in drugs}, n=args.random)
        print(f"{partition.name}: random drugs {', '.join(panel)}", flush=True)
    for seed in range(args.seeds):
        rows = [single_runs(partition.name, task.drug, cells, expression=expression, response=responses[task.drug],
                            seed=seed) for task in partition.tasks]
        if not partition.simulated and args.random:
            rows += screen_runs(partition.name, panel, cells, expression=expression, response=response, seed=seed)
        print(f"{partition.name}: seed {seed} done", flush=True)
        yield rows


def main() -> int:
    parser = benchmark_parser(__doc__, "seed_agreement.md")
    parser.add_argument("--random", type=int, default=20, help="random drugs screened per real partition")
    parser.add_argument("--only", nargs="*", help="partition names starting with these")
    parser.add_argument("--calls", type=Path, help="also save every run's per-cell call here (.npz), to score later")
    args = parser.parse_args()
    if not ready_to_benchmark(args.data):
        return 1
    torch.set_num_threads(1)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as workdir:
        for partition in PARTITIONS:
            if args.only and not any(partition.name.startswith(o) for o in args.only):
                continue
            for seed_rows in partition_runs(partition, args, Path(workdir)):
                rows += seed_rows
                write_results(rows, args)
    return 0


def write_results(rows: list[dict], args) -> None:
    """The report and the per-run table so far (and the calls, on request)."""
    runs = pd.DataFrame(rows)
    runs.drop(columns="prob").to_csv(args.out.with_name(args.out.stem + "_runs.tsv"), sep="\t", index=False)
    args.out.write_text(report(runs, pair_rows(runs), args))
    if args.calls:
        np.savez_compressed(args.calls, **{"|".join(map(str, (r["partition"], r["path"], r["drug"], r["seed"]))): r["prob"]
                                           for r in rows})


if __name__ == "__main__":
    raise SystemExit(main())
