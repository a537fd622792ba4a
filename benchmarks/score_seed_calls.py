#!/usr/bin/env python3
"""Score the labelled single-drug calls saved by seed_agreement.py (`--calls`), after every call was made.

seed_agreement.py reads no label. This reads the labels of the labelled drugs (SCAD, PC9, the simulator's
trap) and prints each drug's AUROC over seeds (mean ± sd, seeds below 0.5) as a markdown table, to put
beside the training-free references.

usage: python benchmarks/score_seed_calls.py CALLS.npz [CALLS.npz ...] [--data ../shared/data]
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from common import PARTITIONS, ROOT, load
from sklearn.metrics import roc_auc_score


def scored(calls: dict[str, np.ndarray], data: Path, workdir: Path) -> pd.DataFrame:
    """One row per labelled single-drug run: partition, drug, seed and the call's AUROC."""
    rows = []
    for partition in PARTITIONS:
        runs = {key: prob for key, prob in calls.items() if key.startswith(f"{partition.name}|single drug|")}
        if not runs:
            continue
        cells, _, _ = load(partition, data, workdir)  # the clustering is the seeds' shared one
        for task in partition.tasks:
            truth = (cells.obs[task.label_key].astype(str) == "sensitive").to_numpy()
            for key, prob in runs.items():
                _, _, drug, seed = key.split("|")
                if drug == task.drug:
                    rows.append({"partition": partition.name, "drug": drug, "seed": int(seed),
                                 "auroc": roc_auc_score(truth, prob)})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("calls", nargs="+", type=Path)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    calls = {key: value for path in args.calls for key, value in np.load(path).items()}
    with tempfile.TemporaryDirectory() as workdir:
        frame = scored(calls, args.data, Path(workdir))
    print("| partition | drug | scdeal (default) | seeds < 0.5 |\n|---|---|---|---|")
    for (partition, drug), g in frame.groupby(["partition", "drug"], sort=False):
        print(f"| {partition} | {drug} | {g.auroc.mean():.3f} ± {g.auroc.std():.3f} | {int((g.auroc < 0.5).sum())}/{len(g)} |")


if __name__ == "__main__":
    main()
