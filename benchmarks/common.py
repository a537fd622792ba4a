"""What the benchmarks share: the real partitions and their tasks, loading them, the single-drug default and
the screen run through the Python API, and the flags, logging and provenance of every report. The scripts
beside this file import it (a script's own folder is on Python's path)."""
from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import anndata as ad
import pandas as pd
import torch

import scdeal.tl
from scdeal.data import readers
from scdeal.data.bulk import BulkPrepareConfig, prepare_bulk
from scdeal.data.bulkdata import BulkData
from scdeal.data.readers import normalise_name
from scdeal.data.simulate import TRAP_DRUGS, SimParams, simulate_orientation_trap
from scdeal.data.singlecell import ClusterConfig
from scdeal.model.training import BulkConfig, BulkModel
from scdeal.model.transfer import TransferConfig, TransferResult
from scdeal.tl.api import Prediction
from scdeal.tl.screen import Efficacy

ROOT = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")
os.environ.setdefault("TQDM_DISABLE", "1")
BINARY, IC50 = ["bulk/gdsc_binary_labels_scdeal.csv"], ["bulk/gdsc1_ic50_long.csv.gz", "bulk/gdsc2_ic50_long.csv.gz"]
AUC = ["bulk/gdsc1_auc_long.csv.gz", "bulk/gdsc2_auc_long.csv.gz"]
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


def load(partition: Partition, data: Path, workdir: Path):
    """Clustered cells, the simulator's own bulk expression (None for real data) and each task's response tables."""
    if partition.simulated:
        paths = simulate_orientation_trap(workdir, TRAP)
        responses = readers.read_responses([paths["bulk_response"], paths["bulk_ic50"]])
        expression = readers.read_bulk_expression(paths["bulk_expression"], set(responses["line"]))
        cells = scdeal.tl.cluster(ad.read_h5ad(paths["sample1"]), ClusterConfig(n_top_genes=300))
        return cells, expression, {t.drug: responses for t in partition.tasks}
    cells = scdeal.tl.cluster(readers.read_single_cell(data / partition.cells))
    return cells, None, {t.drug: readers.read_responses([data / f for f in t.responses]) for t in partition.tasks}


def single_drug_default(drug: str, cells, *, expression, response: pd.DataFrame, seed: int, pretrain: bool = False
                        ) -> tuple[BulkData, BulkModel | BulkConfig, Prediction, float]:
    """The single-drug default on `cells` (CPU, written into their obs): its bulk lines, the bulk model (pretrained
    only with `pretrain`, for transfers that start from it; else its settings, which the default reads),
    prediction, and the seconds (pretraining and) prediction took."""
    bulk = BulkData.from_anndata(prepare_bulk(expression, response, drug, config=BulkPrepareConfig(seed=seed)))
    started = time.time()
    model = scdeal.tl.pretrain(bulk, BulkConfig(seed=seed), device="cpu") if pretrain else BulkConfig(seed=seed)
    prediction = scdeal.tl.predict(cells, bulk, model=model if pretrain else None, bulk_config=BulkConfig(seed=seed),
                                   config=TransferConfig(seed=seed), device="cpu", what=drug)
    return bulk, model, prediction, time.time() - started


@dataclass
class ScreenRun:
    """One screen transfer of a sample with the default settings, and every drug's trust verdict."""

    result: TransferResult
    efficacy: Efficacy           # the efficacy model's predicted AUC per cluster and cell
    trust: pd.DataFrame          # drug_trust, one row per drug in the result's order
    columns: dict[str, int]      # normalised drug name → column of the result and row of `trust`
    seconds: float               # the transfer and rankings

    def column(self, drug: str) -> int:
        """The column of `drug` (any spelling `normalise_name` folds together)."""
        return self.columns[normalise_name(drug)]


def run_screen(model: BulkModel | None, bulk: BulkData, cells, *, seed: int, what: str) -> ScreenRun:
    """Screen `cells` on the CPU with the default transfer settings of `seed` (`model`: a pretrained bulk model to
    start from; None: the pipeline's default, each member fitting its own)."""
    started = time.time()
    outcome = scdeal.tl.screen(cells, bulk, model=model, config=TransferConfig(seed=seed), device="cpu", what=what)
    return ScreenRun(outcome.result, outcome.efficacy, outcome.trust,
                     {normalise_name(d): i for i, d in enumerate(outcome.result.drugs)},
                     time.time() - started)


def verdict_counts(verdicts: pd.Series) -> str:
    """'consistent 9, disputed 1': how many seeds got each trust verdict (empty for a method without one)."""
    return ", ".join(f"{v} {n}" for v, n in verdicts.value_counts().items())


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
