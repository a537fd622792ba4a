"""Simulated bulk cell lines and single-cell samples with a known per-cell drug response. Response is driven by
planted gene programs: `SENS_xx` genes are higher in sensitive lines/cells, `RES_xx` genes in resistant ones. Cells
differ from bulk as real data do: counts with per-cell library size and extra dropout, a gene-specific bias (platform
shift), subclone programs absent from bulk, only part of the bulk genes measured, and a resistant subpopulation
enriched in one subclone."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._utils import batch_slices, gene_positions, setting
from .species import Species, one_to_one_orthologs
from .writers import atomic_path, write_h5ad, write_text

__all__ = ["DRUG", "PANEL_DRUGS", "SCREEN_DRUGS", "TRAP_DRUGS", "SimParams", "screen_auc", "screen_responses", "simulate",
           "simulate_cluster_screen", "simulate_orientation_trap"]

DRUG = "Simulatin"
CHUNK = 20_000


@dataclass(frozen=True)
class SimParams:
    """What the simulator makes (the flags of `scdeal simulate`)."""

    n_genes: int = setting(600, "genes of the bulk data")
    n_planted: int = setting(20, "genes of each planted response program (sensitive and resistant)")
    n_lines: int = setting(300, "bulk cell lines")
    sensitive_fraction: float = setting(0.3, "fraction of sensitive bulk lines")
    n_tissues: int = setting(4, "tissues of origin, each with its own expression program")
    n_samples: int = setting(2, "single-cell samples")
    n_cells: int = setting(400, "cells per sample")
    n_subclones: int = setting(3, "subclones per sample, each with a program absent from bulk")
    resistant_fraction: float = setting(0.4, "fraction of resistant cells")
    effect: float = setting(1.0, "log2 shift of a planted program")
    clone_effect: float = setting(1.2, "log2 shift of a subclone program (cells only)")
    gene_bias_sd: float = setting(0.8, "platform shift between bulk and cells, per gene (SD)")
    gene_coverage: float = setting(0.85, "fraction of bulk genes the cells measure")
    library_mean: float = setting(8000.0, "mean UMIs per cell")
    dropout: float = setting(0.1, "extra dropout: fraction of counts set to zero")
    species: Species = setting("human", "mouse: cells named by mouse orthologs of the human bulk genes")
    seed: int = setting(0, "random seed")


def gene_names(p: SimParams) -> list[str]:
    """Planted SENS_ and RES_ genes, three mitochondrial genes, then GENExxxx to `p.n_genes`."""
    planted = [f"SENS_{i:02d}" for i in range(p.n_planted)] + [f"RES_{i:02d}" for i in range(p.n_planted)]
    mito = [f"MT-CO{i}" for i in range(1, 4)]
    rest = [f"GENE{i:04d}" for i in range(p.n_genes - len(planted) - len(mito))]
    return planted + mito + rest


def ortholog_names(n: int, seed: int) -> tuple[list[str], list[str]]:
    """`n` human symbols with one-to-one mouse orthologs, and those orthologs (same order)."""
    pairs = sorted((human, mouse) for mouse, human in one_to_one_orthologs().items()
                   if not human.startswith("MT-"))
    pick = np.random.default_rng(seed).choice(len(pairs), n, replace=False)
    return [pairs[i][0] for i in pick], [pairs[i][1] for i in pick]


def program(rng: np.random.Generator, n_genes: int, n_active: int, *, size: float, first_free: int) -> np.ndarray:
    """A random program: `n_active` genes from `first_free` on (never planted or mito genes) shifted by ±size."""
    v = np.zeros(n_genes)
    idx = rng.choice(np.arange(first_free, n_genes), n_active, replace=False)
    v[idx] = rng.choice([-1, 1], n_active) * size
    return v


def response_shift(genes: list[str], sensitive: np.ndarray, effect: float, *, n_planted: int = 20) -> np.ndarray:
    """Planted programs: the first `n_planted` genes up in sensitive, the next `n_planted` up in resistant."""
    position, s = np.arange(len(genes))[None, :], sensitive.astype(float)[:, None]
    return effect * (s * (position < n_planted) + (1 - s) * ((position >= n_planted) & (position < 2 * n_planted)))


def simulate_bulk(p: SimParams, rng: np.random.Generator, base: np.ndarray, *,
                  genes: list[str]) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Bulk lines: expression (lines × genes), which lines are sensitive, and their LN_IC50."""
    sensitive = rng.random(p.n_lines) < p.sensitive_fraction
    tissue = rng.integers(0, p.n_tissues, p.n_lines)
    tissue_programs = np.stack([program(rng, len(genes), 60, size=1.0, first_free=2 * p.n_planted + 3)
                                for _ in range(p.n_tissues)])
    x = base + tissue_programs[tissue] + response_shift(genes, sensitive, p.effect, n_planted=p.n_planted) + \
        rng.normal(0, 0.5, (p.n_lines, len(genes)))
    lines = [f"LINE-{i:03d}" for i in range(p.n_lines)]
    expression = pd.DataFrame(x.astype(np.float32), index=lines, columns=genes)
    ln_ic50 = 3.0 - 2.0 * sensitive + rng.normal(0, 0.8, p.n_lines)
    return expression, sensitive, ln_ic50


def simulate_sample(p: SimParams, rng: np.random.Generator, base: np.ndarray, *, genes: list[str],
                    k: int) -> ad.AnnData:
    """Sample `k`: UMI counts of cells with subclones and a resistant subpopulation (`obs['response']`)."""
    n_g = len(genes)
    bias = rng.normal(0, p.gene_bias_sd, n_g)
    subclone = rng.integers(0, p.n_subclones, p.n_cells)
    clone_programs = np.stack([program(rng, n_g, 40, size=p.clone_effect, first_free=2 * p.n_planted + 3)
                               for _ in range(p.n_subclones)])
    # the resistant subpopulation sits mostly in subclone 0, partly elsewhere
    p_res = np.where(subclone == 0, 0.85, max(0.0, (p.resistant_fraction - 0.85 / p.n_subclones) /
                                                 (1 - 1 / p.n_subclones)))
    resistant = rng.random(p.n_cells) < p_res
    blocks = []
    for rows in batch_slices(p.n_cells, CHUNK):  # bounded memory for samples of a million cells
        response = response_shift(genes, ~resistant[rows], p.effect, n_planted=p.n_planted)
        log_expr = base + bias + clone_programs[subclone[rows]] + response + \
            rng.normal(0, 0.3, (len(subclone[rows]), n_g))
        blocks.append(counts_from_log_expression(log_expr, p, rng))
    counts = sp.vstack(blocks).tocsr()
    always = np.arange(n_g) < 2 * p.n_planted + 3  # planted programs and mitochondrial genes
    measured = always | (rng.random(n_g) < p.gene_coverage)
    cells = [f"S{k}_{''.join(rng.choice(list('ACGT'), 12))}-1" for _ in range(p.n_cells)]
    obs = pd.DataFrame({"response": np.where(resistant, "resistant", "sensitive"),
                        "subclone": pd.Categorical(subclone.astype(str))}, index=cells)
    sample = ad.AnnData(counts[:, measured], obs=obs, var=pd.DataFrame(index=np.array(genes)[measured]))
    sample.obs_names_make_unique()  # random barcodes collide in very large samples
    return sample


def counts_from_log_expression(log_expr: np.ndarray, p: SimParams, rng: np.random.Generator) -> sp.csr_matrix:
    """UMI counts: Poisson draws at each cell's own library size, plus extra dropout."""
    rate = np.exp2(log_expr)
    rate /= rate.sum(1, keepdims=True)
    library = rng.lognormal(np.log(p.library_mean), 0.4, len(rate))
    counts = rng.poisson(rate * library[:, None]).astype(np.float32)
    counts[rng.random(counts.shape) < p.dropout] = 0
    return sp.csr_matrix(counts)


def simulate(outdir: str | Path, p: SimParams | None = None) -> dict[str, Path]:
    """Write bulk tables, samples (h5ad) and a samplesheet under `outdir`; return their paths."""
    p = p or SimParams()
    rng = np.random.default_rng(p.seed)
    outdir = Path(outdir)
    genes = gene_names(p)
    cell_names = genes
    if p.species == "mouse":  # planted programs keep their positions; names become real orthologs
        genes, cell_names = ortholog_names(len(genes), p.seed)
    base = rng.normal(6, 1.5, len(genes))
    expression, sensitive, ln_ic50 = simulate_bulk(p, rng, base, genes=genes)
    paths = write_bulk_tables(outdir, expression, sensitive={DRUG: sensitive}, ln_ic50={DRUG: ln_ic50})
    paths["samplesheet"] = outdir / "samplesheet.csv"
    paths["bulk_screen_ic50"] = outdir / "bulk_screen_ic50_long.csv"
    paths["bulk_screen_auc"] = outdir / "bulk_screen_auc_long.csv"
    screen_ic50 = screen_responses(expression, seed=p.seed)
    for key, frame in (("bulk_screen_ic50", screen_ic50), ("bulk_screen_auc", screen_auc(screen_ic50, seed=p.seed))):
        with atomic_path(paths[key]) as tmp:
            frame.to_csv(tmp, index=False)
    rows = ["sample,input,drug,species,label_key"]
    for k in range(p.n_samples):
        sample = simulate_sample(p, rng, base, genes=genes, k=k)
        sample.var_names = np.array(cell_names)[gene_positions(genes, sample.var_names)]
        path = outdir / f"sample{k + 1}.h5ad"
        write_h5ad(path, sample)
        paths[f"sample{k + 1}"] = path
        rows.append(f"sample{k + 1},{path.name},{DRUG},{p.species},response")
    write_text(paths["samplesheet"], "\n".join(rows) + "\n")
    return paths


def write_bulk_tables(outdir: Path, expression: pd.DataFrame, *, sensitive: dict[str, np.ndarray],
                      ln_ic50: dict[str, np.ndarray]) -> dict[str, Path]:
    """The bulk expression, the binary calls (one column per drug) and the LN_IC50 long table; their paths."""
    paths = {"bulk_expression": outdir / "bulk_expression.csv.gz", "bulk_response": outdir / "bulk_response.csv",
             "bulk_ic50": outdir / "bulk_ic50_long.csv"}
    labels = pd.DataFrame({d: np.where(s, "sensitive", "resistant") for d, s in sensitive.items()}, index=expression.index)
    long = pd.concat([pd.DataFrame({"CELL_LINE_NAME": expression.index, "DRUG_NAME": d, "LN_IC50": v.round(4)})
                      for d, v in ln_ic50.items()])
    for key, frame, options in (("bulk_expression", expression, {"float_format": "%.4f", "compression": "gzip"}),
                                ("bulk_response", labels, {"index_label": "cell_line"}), ("bulk_ic50", long, {"index": False})):
        with atomic_path(paths[key]) as tmp:
            frame.to_csv(tmp, **options)
    return paths


SCREEN_DRUGS = ("Simulatin-2", "Clonastat", "Placebin")


def screen_responses(expression: pd.DataFrame, *, seed: int) -> pd.DataFrame:
    """LN_IC50 of three more drugs on the simulated lines, so a screen has a panel: Simulatin-2 follows the
    planted response programs (lower where SENS genes are high), Clonastat a random block of genes, and
    Placebin nothing (its heads should not beat chance, so it is reported but not ranked). Drawn from
    its own random stream, so adding it changes nothing else the simulator writes."""
    rng = np.random.default_rng(seed + 1)
    genes = expression.columns
    sens, res = genes.str.startswith("SENS_"), genes.str.startswith("RES_")
    program = expression.loc[:, sens].mean(1) - expression.loc[:, res].mean(1) if sens.any() and res.any() \
        else expression.iloc[:, :20].mean(1)
    block = expression.iloc[:, rng.choice(np.arange(43, len(genes)), 20, replace=False)].mean(1)
    drivers = {"Simulatin-2": program, "Clonastat": block, "Placebin": pd.Series(0.0, index=expression.index)}
    frames = []
    for drug, driver in drivers.items():
        z = (driver - driver.mean()) / (driver.std() + 1e-12)
        frames.append(pd.DataFrame({"CELL_LINE_NAME": expression.index, "DRUG_NAME": drug,
                                    "LN_IC50": (3.0 - 1.5 * z + rng.normal(0, 0.6, len(z))).round(4)}))
    return pd.concat(frames, ignore_index=True)


def screen_auc(ln_ic50: pd.DataFrame, *, seed: int) -> pd.DataFrame:
    """GDSC-style AUC of the screen's drugs (a long table like `screen_responses`'): a logistic of LN_IC50 for the
    drugs that follow a program, and near 1 on every line for Placebin, which kills nothing. Drawn from its own
    random stream."""
    rng = np.random.default_rng(seed + 2)
    auc = 1 / (1 + np.exp(-(ln_ic50["LN_IC50"].to_numpy() - 2.0)))
    auc = np.where(ln_ic50["DRUG_NAME"] == "Placebin", 0.97, auc) + rng.normal(0, 0.02, len(auc))
    return pd.DataFrame({"CELL_LINE_NAME": ln_ic50["CELL_LINE_NAME"], "DRUG_NAME": ln_ic50["DRUG_NAME"],
                         "AUC": np.clip(auc, 0.01, 1.0).round(4)})


# ---------------------------------------------------------------- a screen with a cluster-specific drug

PANEL_DRUGS = ("Clonicide", "Broadcide", "Placebin")


def simulate_cluster_screen(outdir: str | Path, p: SimParams | None = None) -> dict[str, Path]:
    """Bulk lines with measured GDSC-style AUC for three drugs, and one sample of three equal populations, each with a
    program of its own. Program C is high in `sensitive_fraction` of the lines and in population 0 only.
    Clonicide kills the C-high lines (AUC 0.35, else 0.95), Broadcide kills every line moderately (AUC 0.6) and
    Placebin nothing (0.97). A screen should rank Clonicide first for the cluster of population 0 only, Broadcide
    first elsewhere, and Placebin last. `obs['population']` holds the populations."""
    p = p or SimParams(n_lines=300, n_cells=450, n_samples=1)
    rng = np.random.default_rng(p.seed)
    outdir = Path(outdir)
    genes = [f"PROGC_{i:02d}" for i in range(p.n_planted)] + gene_names(p)[p.n_planted:]
    base = rng.normal(6, 1.5, len(genes))
    c_high = rng.random(p.n_lines) < p.sensitive_fraction
    programme = trap_program(genes, "PROGC_", p.effect)
    tissue = rng.integers(0, p.n_tissues, p.n_lines)
    tissue_programs = np.stack([program(rng, len(genes), 60, size=1.0, first_free=2 * p.n_planted + 3)
                                for _ in range(p.n_tissues)])
    x = base + tissue_programs[tissue] + c_high[:, None] * programme + rng.normal(0, 0.5, (p.n_lines, len(genes)))
    lines = [f"LINE-{i:03d}" for i in range(p.n_lines)]
    expression = pd.DataFrame(x.astype(np.float32), index=lines, columns=genes)
    auc = {"Clonicide": np.where(c_high, 0.35, 0.95), "Broadcide": np.full(p.n_lines, 0.6),
           "Placebin": np.full(p.n_lines, 0.97)}
    long = pd.concat([pd.DataFrame({"CELL_LINE_NAME": lines, "DRUG_NAME": d,
                                    "AUC": np.clip(v + rng.normal(0, 0.04, p.n_lines), 0.01, 1.0).round(4)})
                      for d, v in auc.items()], ignore_index=True)
    paths = {"bulk_expression": outdir / "bulk_expression.csv.gz", "bulk_auc": outdir / "bulk_auc_long.csv",
             "sample1": outdir / "panel.h5ad"}
    for key, frame, options in (("bulk_expression", expression, {"float_format": "%.4f", "compression": "gzip"}),
                                ("bulk_auc", long, {"index": False})):
        with atomic_path(paths[key]) as tmp:
            frame.to_csv(tmp, **options)
    write_h5ad(paths["sample1"], panel_sample(p, rng, base, genes=genes, programme=programme))
    return paths


def panel_sample(p: SimParams, rng: np.random.Generator, base: np.ndarray, *, genes: list[str],
                 programme: np.ndarray) -> ad.AnnData:
    """Three equal populations, each with a program of its own; population 0 also has `programme` high."""
    n_g = len(genes)
    population = rng.permutation(np.arange(p.n_cells) % 3)
    own = np.stack([program(rng, n_g, 40, size=p.clone_effect, first_free=2 * p.n_planted + 3) for _ in range(3)])
    log_expr = base + rng.normal(0, p.gene_bias_sd, n_g) + own[population] + (population == 0)[:, None] * programme + \
        rng.normal(0, 0.3, (p.n_cells, n_g))
    measured = (np.arange(n_g) < 2 * p.n_planted + 3) | (rng.random(n_g) < p.gene_coverage)
    obs = pd.DataFrame({"population": pd.Categorical(population.astype(str))},
                       index=[f"P_{i:05d}" for i in range(p.n_cells)])
    return ad.AnnData(counts_from_log_expression(log_expr, p, rng)[:, measured], obs=obs,
                      var=pd.DataFrame(index=np.array(genes)[measured]))


# ---------------------------------------------------------------- orientation trap

TRAP_DRUGS = ("Trapinib", "Mirrorinib")


def simulate_orientation_trap(outdir: str | Path, p: SimParams | None = None) -> dict[str, Path]:
    """Two drugs with opposite evidence, one sample of two equal populations. Bulk: a minority of lines
    (`sensitive_fraction` each) has program A high, another minority program B high, the rest neither. Trapinib kills
    the A-high lines, Mirrorinib the B-high lines. Cells: half are A-high, half B-high, each population with an extra
    program of its own (clusters follow the populations). The same cells must therefore get opposite calls for the two
    drugs, and the bulk prevalence is far below the cells' 50 %: the label shift that lets marginal alignment and
    cluster separation choose the "sensitive" side by chance. `obs` holds `response_trapinib`, `response_mirrorinib`
    and `population`."""
    p = p or SimParams(sensitive_fraction=0.12, n_cells=300, n_samples=1)
    rng = np.random.default_rng(p.seed)
    outdir = Path(outdir)
    # program A genes, program B genes, then the mitochondrial genes and the rest, as gene_names
    genes = [f"PROG{ab}_{i:02d}" for ab in "AB" for i in range(p.n_planted)] + gene_names(p)[2 * p.n_planted:]
    base = rng.normal(6, 1.5, len(genes))
    state = rng.choice(3, p.n_lines, p=[p.sensitive_fraction, p.sensitive_fraction, 1 - 2 * p.sensitive_fraction])
    expression = trap_bulk_expression(p, rng, base, genes=genes, state=state)
    sensitive = {TRAP_DRUGS[0]: state == 0, TRAP_DRUGS[1]: state == 1}
    paths = write_bulk_tables(outdir, expression, sensitive=sensitive,
                              ln_ic50={d: 3.0 - 2.0 * s + rng.normal(0, 0.8, p.n_lines) for d, s in sensitive.items()})
    paths["sample1"] = outdir / "trap.h5ad"
    write_h5ad(paths["sample1"], trap_sample(p, rng, base, genes=genes))
    return paths


def trap_program(genes: list[str], prefix: str, effect: float) -> np.ndarray:
    """A program shifting every gene whose name starts with `prefix` by `effect`."""
    return effect * np.array([g.startswith(prefix) for g in genes], dtype=float)


def trap_bulk_expression(p: SimParams, rng: np.random.Generator, base: np.ndarray, *, genes: list[str],
                         state: np.ndarray) -> pd.DataFrame:
    """Trap bulk lines: program A high (state 0), program B high (state 1) or neither (state 2)."""
    tissue = rng.integers(0, p.n_tissues, p.n_lines)
    tissue_programs = np.stack([program(rng, len(genes), 60, size=1.0, first_free=2 * p.n_planted + 3)
                                for _ in range(p.n_tissues)])
    programs = np.stack([trap_program(genes, "PROGA_", p.effect), trap_program(genes, "PROGB_", p.effect),
                         np.zeros(len(genes))])
    x = base + tissue_programs[tissue] + programs[state] + rng.normal(0, 0.5, (p.n_lines, len(genes)))
    return pd.DataFrame(x.astype(np.float32), index=[f"LINE-{i:03d}" for i in range(p.n_lines)], columns=genes)


def trap_sample(p: SimParams, rng: np.random.Generator, base: np.ndarray, *, genes: list[str]) -> ad.AnnData:
    """The trap sample: two equal populations, A-high and B-high, each with a program of its own."""
    n_g = len(genes)
    population = rng.permutation(np.arange(p.n_cells) % 2)  # 0: A-high, 1: B-high, equal sizes
    own = np.stack([program(rng, n_g, 40, size=p.clone_effect, first_free=2 * p.n_planted + 3) for _ in range(2)])
    programs = np.stack([trap_program(genes, "PROGA_", p.effect), trap_program(genes, "PROGB_", p.effect)])
    log_expr = base + rng.normal(0, p.gene_bias_sd, n_g) + own[population] + programs[population] + \
        rng.normal(0, 0.3, (p.n_cells, n_g))
    counts = counts_from_log_expression(log_expr, p, rng)
    measured = (np.arange(n_g) < 2 * p.n_planted + 3) | (rng.random(n_g) < p.gene_coverage)
    calls = {d: np.where(population == k, "sensitive", "resistant") for k, d in enumerate(TRAP_DRUGS)}
    obs = pd.DataFrame({**{f"response_{d.lower()}": c for d, c in calls.items()},
                        "population": pd.Categorical(np.where(population == 0, "A", "B"))},
                       index=[f"T_{i:05d}" for i in range(p.n_cells)])
    return ad.AnnData(counts[:, measured], obs=obs, var=pd.DataFrame(index=np.array(genes)[measured]))
