"""Bulk → single-cell transfer (DaNN-style, anchored to the bulk evidence) and per-cell prediction, for every
drug of the bulk model at once: a single drug is a panel of one, and `TransferResult.drug` is one drug's view.

Each ensemble member:
1. learns from a bootstrap of all folds but its own (the lines outside the test split, dealt into one fold
   per member within the classes they were split in) and validates on its own: members differ in their split,
   bootstrap and initialisation as runs with other seeds do, so their disagreement shows where another seed
   would call the cells otherwise, and the lines each member did not learn from give the out-of-fold bulk
   evidence, over every line and over the lines nearest the sample;
2. fits its own *direct model*: the bulk model fitted on exactly the genes the sample has, from its own
   random weights (or from a pretrained bulk model), early-stopped on held-out bulk lines. It is the
   validated "no transfer" model (`prob_sensitive_direct`; the flags `--source_epochs` and `--anchor_to
   source` name it the source). Members that share no weights disagree where the bulk evidence leaves the
   call open; members copied from one pretrained model share its errors;
3. transfers with
       loss = √D · w_bulk · [BCE(P(E_b(x_b)), y_b) + w_response · MSE(R(E_b(x_b)), r_b)]
              + √D · w_anchor · mean over drugs of (1 − corr(P_d(E_c(x_c)), A_d(x_c)))
              + w_mmd · MMD(E_b(x_b'), E_c(x_c)) + w_cluster · L_cluster(E_c(x_c))
   for D drugs, where the bulk terms are means over the measured (line, drug) pairs, each drug's classes
   weighted on their own. The √D keeps the drugs' pull on the shared encoder, against the shared MMD and
   cluster terms, the size of one drug's: D drugs pulling in unrelated directions add up to √D times one
   drug's pull, so a mean shrinks it by √D and a sum grows it by √D. As a mean, a 543-drug screen left PC9's
   erlotinib call at chance; as a sum, each call followed its anchor more and its single-drug run less
   (`transfer_loss`). x_b' are bulk lines drawn in the cells' estimated class mix (`--mmd_class_mix
   estimated`, one drug only) and A_d is the member's anchor for drug d: by default its bulk lines'
   signature (sensitive minus resistant mean profile, `signature.py`) scored on each cell's own profile,
   else its direct model. A deep model can rank bulk lines well and still point either way on cells; the
   signature has no weights to fit and compares each profile with itself, so it carries the bulk evidence's
   direction across the shift;
4. stops after `--epochs`, or (with `--settled` below 1) once its call has settled: when its ranking of the cells
   (a fixed draw of up to PROBE_CELLS) correlates with its ranking SETTLE_WINDOW epochs before at `--settled`;
5. keeps its direct model, drug by drug, wherever its cell ranking still ends up reversed against the anchor.

Probabilities are Platt-calibrated per drug on the member's own fold. Both encoders read
the same genes and the cell encoder E_c starts as a copy of E_b. No cell label is read anywhere here.
"""
from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Literal, get_args

import anndata as ad
import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from tqdm.auto import tqdm

from .._utils import batch_slices, gene_positions, setting
from ..data.bulkdata import BulkData
from ..data.features import CellFeatures, align_genes, model_features
from ..data.keys import CLUSTER
from ..errors import InputError
from .cell_model import CellModel
from .device import adam, autocast, seed_everything
from .metrics import column_aurocs
from .networks import Head, cluster_loss, encoder_on_genes, mmd, response_terms, weighted_response_loss
from .orientation import (
    anchor_loss,
    cluster_anchor_loss,
    estimate_target_prior,
    oriented_like,
    prior_matched_weights,
    rank_correlation,
)
from .parallel import map_jobs, worker_plan
from .signature import class_mean_signature, signature_scores
from .training import BulkConfig, BulkModel, build_networks, class_weight, train_predictor

__all__ = ["THRESHOLD_RULES", "AnchorLevel", "AnchorTo", "Calibration", "DrugResult", "MemberBulk", "MemberInit",
           "MmdClassMix", "ThresholdRule", "TransferConfig", "TransferResult", "calibrated", "check_transfer_config",
           "platt_scaling", "sigmoid", "transfer", "transfer_loss"]

log = logging.getLogger(__name__)
ThresholdRule = Literal["otsu", "fixed", "bulk_prevalence"]
Calibration = Literal["platt", "none"]
AnchorLevel = Literal["cells", "clusters"]
MmdClassMix = Literal["bulk", "estimated"]
MemberBulk = Literal["bootstrap", "all"]
MemberInit = Literal["independent", "pretrained"]
AnchorTo = Literal["signature", "source"]
THRESHOLD_RULES: tuple[str, ...] = get_args(ThresholdRule)
NEAREST_FRACTION = 0.5    # the sample's context: this fraction of the lines, those nearest it in expression
MIN_NEAREST = 100         # ... and at least this many
MIN_PER_CLASS = 5         # an AUROC on fewer lines of a class says nothing
PROBE_CELLS = 2000        # cells whose ranking, epoch to epoch, shows when a member's call has settled
SETTLE_WINDOW = 5         # ... compared with the ranking this many epochs before


@dataclass(frozen=True)
class TransferConfig:
    """The transfer and the per-cell calls (the transfer step's flags)."""

    epochs: int = setting(30, "transfer epochs (at most, with --settled below 1; no cell labels are used)", minimum=0)
    settled: float = setting(
        1.0, f"below 1: a member's transfer stops once its ranking of the cells has a Spearman correlation of at least "
             f"this with its ranking {SETTLE_WINDOW} epochs before (label-free). Off by default: on PC9 the ranking "
             f"moves slowly but steadily, 0.995 stopped every member at epoch 6 and lowered the AUROC from 0.54 to 0.50",
        minimum=0, maximum=1)
    batch_size: int = setting(256, "cells (and bulk lines) per step", minimum=2)
    lr: float = setting(1e-4, "Adam learning rate of the transfer", minimum=0)
    weight_decay: float = setting(1e-4, "Adam weight decay of the transfer", minimum=0)
    w_bulk: float = setting(1.0, "weight of the bulk response loss", minimum=0)
    w_mmd: float = setting(1.0, "weight of the MMD alignment loss", minimum=0)
    w_cluster: float = setting(0.5, "weight of the cluster regularisation", minimum=0)
    w_anchor: float = setting(
        0.3, "weight of the consistency with each member's anchor (--anchor_to; keeps the direction of the call)", minimum=0)
    anchor_to: AnchorTo = setting(
        "signature", "what the anchor keeps each member's cell ranking correlated with: signature: its bulk lines' "
                     "sensitive-minus-resistant mean profile, scored on each cell's own profile (robust to the bulk → "
                     "cell shift); source: its source model's view of the cells")
    anchor_level: AnchorLevel = setting(
        "cells", "cells: the anchor fixes every cell's rank, which the transfer may refine; clusters: it "
                 "fixes which clusters are sensitive and leaves the order within a cluster free")
    mmd_class_mix: MmdClassMix = setting(
        "bulk", "bulk: bulk lines enter the MMD as they come; estimated: in the cells' sensitive/resistant mix "
                "estimated by EM from the source model (alignment under label shift)")
    member_bulk: MemberBulk = setting(
        "bootstrap", "bootstrap: each member learns from its own bootstrap sample of the bulk training lines, so "
                     "the spread shows how firmly the bulk evidence fixes the call; all: every member sees all lines")
    source_epochs: int = setting(
        20, "epochs (early-stopped on bulk validation lines) refitting the bulk model on the sample's genes", minimum=0)
    member_init: MemberInit = setting(
        "independent", "independent: each member's networks start from their own random weights and are fitted to "
                       "its bulk lines (a deep ensemble: members disagree where the bulk evidence leaves the call "
                       "open); pretrained: every member starts from the pretrained bulk model and shares its errors")
    n_ensemble: int = setting(3, "members with consecutive seeds; their spread is the uncertainty", minimum=1)
    calibration: Calibration = setting(
        "platt", "platt: probabilities calibrated on held-out bulk lines; none: the network's raw output")
    threshold_rule: ThresholdRule = setting(
        "otsu", "otsu: the split of the cells' log-odds into two groups; fixed: prob ≥ --threshold; "
                "bulk_prevalence: the top fraction equal to the bulk sensitive rate. Cells whose members' "
                "spread (in log-odds) reaches across the threshold are called uncertain")
    threshold: float = setting(0.5, "probability threshold of the fixed rule", minimum=0, maximum=1)
    min_gene_overlap: int = setting(200, "fewest bulk-model genes the sample must have", minimum=1)
    max_cells_per_epoch: int = setting(
        20_000, "cells drawn per epoch at most (training cost stops growing with sample size)", minimum=256)
    seed: int = setting(0, "random seed of the first member (the others take the next seeds)")


@dataclass
class Start:
    """What every member starts from: the bulk model's genes, drugs and settings, and its pretrained networks
    (None: each member fits its own from random weights, `--member_init independent`, so nothing is pretrained)."""

    genes: list[str]
    drugs: list[str]
    config: BulkConfig
    pretrained: BulkModel | None

    @classmethod
    def of(cls, model: BulkModel | BulkConfig, bulk: BulkData) -> Start:
        """The start given a pretrained bulk model, or only the settings of the one each member fits."""
        if isinstance(model, BulkModel):
            return cls(list(model.genes), list(model.drugs), model.config, model)
        return cls(list(bulk.genes), list(bulk.drugs), model, None)


@dataclass
class Networks:
    """A bulk-side encoder and classifier head (cells are read through `encoder`) and their Platt calibration."""

    encoder: torch.nn.Module
    predictor: torch.nn.Module
    calibration: dict            # slope, intercept: one per drug


@dataclass
class Member:
    """One trained ensemble member: its direct and transferred networks, and what each says of the cells
    (cells × drugs; `prob` already holds the direct model's where the member was reset)."""

    direct: Networks
    transferred: Networks
    prob: np.ndarray
    direct_prob: np.ndarray
    embedding: np.ndarray
    direct_embedding: np.ndarray
    val_auroc: np.ndarray          # per drug: held-out bulk AUROC of the direct model on the genes used
    prior: np.ndarray              # per drug: estimated fraction of sensitive cells
    spearman_to_anchor: np.ndarray  # per drug
    reset: np.ndarray              # per drug: kept the direct model (reversed against the anchor)
    curve: list[dict]
    val_lines: np.ndarray          # the lines of its fold, which it did not learn from
    val_prob: np.ndarray           # its direct model's calibrated probabilities there (lines × drugs)


@dataclass
class DrugResult:
    """One drug's view of a transfer: per-cell predictions of the ensemble, its members and cell model."""

    drug: str
    prob: np.ndarray                 # mean over ensemble members (calibrated on bulk validation lines)
    prob_sd: np.ndarray              # spread over members (uncertainty)
    member_probs: np.ndarray         # members × cells
    direct_prob: np.ndarray          # mean over members' direct models: the bulk model without transfer
    embedding: np.ndarray            # first member's cell embedding
    genes: list[str]
    history: list[dict]
    cell_model: CellModel
    members: list[dict]              # per member: direct model's AUROC, prior, orientation check
    source_prior: float              # fraction of sensitive lines the calibration is relative to
    oof_auroc: float                 # out-of-fold bulk AUROC over every line
    local_auroc: float               # out-of-fold bulk AUROC over the lines nearest the sample (NaN: too few)
    test_auroc: float                # the direct models' AUROC on the held-out test lines

    @property
    def bulk_evidence(self) -> float:
        """How well the bulk evidence decides this sample: the out-of-fold AUROC of the lines nearest it,
        or of every line where the nearest lines hold too few of a class."""
        return self.local_auroc if np.isfinite(self.local_auroc) else self.oof_auroc

    @property
    def bulk_val_auroc(self) -> float:
        """Held-out bulk AUROC of the direct models on the genes used (mean over members)."""
        return float(np.nanmean([m["source_val_auroc"] for m in self.members]))

    @property
    def n_reset(self) -> int:
        """Members that kept their direct model by the orientation guard."""
        return sum(m["reset_to_source"] for m in self.members)


@dataclass
class TransferResult:
    """Per-cell, per-drug predictions of the ensemble (cells × drugs) and what each member did."""

    drugs: list[str]
    genes: list[str]
    members: list[Member]
    rate: np.ndarray                 # per drug, the rate of sensitive lines (the calibration's prior)
    signature: np.ndarray            # cells × drugs: each drug's signature of all lines, scored on the cells
    features: CellFeatures
    config: BulkConfig
    oof_auroc: np.ndarray            # per drug: out-of-fold bulk AUROC over every line
    local_auroc: np.ndarray          # per drug: the same over the lines nearest the sample (NaN: too few)
    test_auroc: np.ndarray           # per drug: the direct models' (mean probability) on the held-out test lines
    history: list[dict] = field(default_factory=list)

    @property
    def bulk_evidence(self) -> np.ndarray:
        """Per drug, how well the bulk evidence decides this sample (see `DrugResult.bulk_evidence`)."""
        return np.where(np.isfinite(self.local_auroc), self.local_auroc, self.oof_auroc)

    @property
    def member_probs(self) -> np.ndarray:
        """Members × cells × drugs."""
        return np.stack([m.prob for m in self.members])

    @property
    def prob(self) -> np.ndarray:
        """Cells × drugs, mean over members."""
        return self.member_probs.mean(0)

    @property
    def prob_sd(self) -> np.ndarray:
        """Cells × drugs, spread over members."""
        return self.member_probs.std(0)

    @property
    def direct_prob(self) -> np.ndarray:
        """Cells × drugs, mean over members' direct models (no transfer)."""
        return np.stack([m.direct_prob for m in self.members]).mean(0)

    @property
    def reset(self) -> np.ndarray:
        """Members × drugs: kept the direct model."""
        return np.stack([m.reset for m in self.members])

    @property
    def bulk_val_auroc(self) -> np.ndarray:
        """Per drug, the direct models' held-out bulk AUROC on the genes used (mean over members)."""
        return np.nanmean(np.stack([m.val_auroc for m in self.members]), axis=0)

    def drug(self, drug: str | int) -> DrugResult:
        """The view of one drug (its name or column)."""
        d = drug if isinstance(drug, int) else self.drugs.index(drug)
        member_probs = np.stack([m.prob[:, d] for m in self.members])
        chosen = [m.direct if m.reset[d] else m.transferred for m in self.members]
        first = self.members[0]
        cell_model = CellModel.from_ensemble(
            genes=self.genes, features=self.features, config=self.config, encoders=[n.encoder for n in chosen],
            predictors=[drug_head(n.predictor, d) for n in chosen],
            calibrations=[{k: float(v[d]) for k, v in n.calibration.items()} for n in chosen])
        members = [{"member": k, "source_val_auroc": float(m.val_auroc[d]), "prior": float(m.prior[d]),
                    "spearman_to_anchor": float(m.spearman_to_anchor[d]), "reset_to_source": bool(m.reset[d])}
                   for k, m in enumerate(self.members)]
        return DrugResult(drug=self.drugs[d], prob=member_probs.mean(0), prob_sd=member_probs.std(0),
                          member_probs=member_probs,
                          direct_prob=np.vstack([m.direct_prob[:, d] for m in self.members]).mean(0),
                          embedding=first.direct_embedding if first.reset[d] else first.embedding, genes=self.genes,
                          history=self.history, cell_model=cell_model, members=members,
                          source_prior=float(self.rate[d]), oof_auroc=float(self.oof_auroc[d]),
                          local_auroc=float(self.local_auroc[d]), test_auroc=float(self.test_auroc[d]))


def drug_head(head: Head, column: int) -> Head:
    """A copy of `head` with the output of the drug in `column` only."""
    one = copy.deepcopy(head)
    one.out.weight = torch.nn.Parameter(head.out.weight[column:column + 1].detach().clone())
    one.out.bias = torch.nn.Parameter(head.out.bias[column:column + 1].detach().clone())
    one.out.out_features = 1
    return one


class BulkEvidence:
    """Every bulk line but the test split, on the sample's genes and standardised with their statistics:
    lines × drugs labels (NaN unmeasured) and responses, the strata the split kept, and the cross-fitting
    folds: member k validates on fold k and learns from the others, so every line trains some members and
    validates one, and the members differ in their split as runs with other seeds do."""

    def __init__(self, bulk: BulkData, genes: list[str], device: torch.device, *, n_folds: int, seed: int):
        keep, expression = bulk.split != "test", bulk.expression(genes)
        self.x_np, stats = model_features(expression[keep])
        self.gene_mean, self.gene_sd = stats
        self.labels, self.responses, self.strata = bulk.labels[keep], bulk.responses[keep], bulk.strata[keep]
        self.test_x = torch.from_numpy(model_features(expression[~keep], stats)[0]).to(device)
        self.test_labels = bulk.labels[~keep]
        self.folds = stratified_folds(self.strata, n_folds, np.random.default_rng(seed))
        self.x, self.y, self.r = (torch.from_numpy(np.asarray(a, np.float32)).to(device)
                                  for a in (self.x_np, self.labels, self.responses))

    @property
    def rate(self) -> np.ndarray:
        """Per drug, the fraction of sensitive lines among its measured lines."""
        return np.array([y[~np.isnan(y)].mean() if (~np.isnan(y)).any() else np.nan for y in self.labels.T])

    def fold(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The lines member k learns from and the lines it validates on (fold k)."""
        return np.flatnonzero(self.folds != k), np.flatnonzero(self.folds == k)

    def pos_weight(self, pool: np.ndarray) -> np.ndarray:
        """One BCE weight of the sensitive class per drug, among the lines of `pool`."""
        return class_weight(self.labels[pool], "weight")

    def aurocs(self, enc_b, pred, lines: np.ndarray) -> np.ndarray:
        """Each drug's AUROC on its measured lines among `lines`."""
        return column_aurocs(self.labels[lines], bulk_logits(enc_b, pred, self.x[lines]))

    def bootstrap(self, lines: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Indices of `lines` drawn with replacement within each stratum (every stratum kept)."""
        parts = [rng.choice(lines[self.strata[lines] == c], int((self.strata[lines] == c).sum()), replace=True)
                 for c in np.unique(self.strata[lines])]
        return np.sort(np.concatenate(parts))

    def nearest(self, features: CellFeatures, fraction: float = NEAREST_FRACTION) -> np.ndarray:
        """The lines whose profiles correlate best with the sample's mean cell profile (both z-scored across
        the genes used): the bulk evidence that matters for this sample, not only across lineages."""
        profiles = self.x_np * self.gene_sd + self.gene_mean
        sample = (features.mean - features.mean.mean()) / max(float(features.mean.std()), 1e-6)
        similarity = profiles @ sample / profiles.shape[1]
        n = max(MIN_NEAREST, round(fraction * len(profiles)))
        return np.sort(np.argsort(-similarity)[:n])


def stratified_folds(strata: np.ndarray, n_folds: int, rng: np.random.Generator) -> np.ndarray:
    """A fold number per line, each stratum dealt round the folds in a random order."""
    folds = np.empty(len(strata), np.int64)
    for c in np.unique(strata):
        members = rng.permutation(np.flatnonzero(strata == c))
        folds[members] = (np.arange(len(members)) + rng.integers(n_folds)) % n_folds
    return folds


class LineSampler:
    """Draws bulk batches from one member's pool of training lines: uniformly for the response loss,
    and in the cells' estimated class mix (of the one drug) for the MMD."""

    def __init__(self, evidence: BulkEvidence, pool: np.ndarray, *, val_lines: np.ndarray, target_prior: float | None):
        device = evidence.x.device
        self.evidence, self.val_lines = evidence, val_lines
        self.pool = torch.from_numpy(pool).to(device)
        self.pos_weight = torch.as_tensor(evidence.pos_weight(pool), dtype=torch.float32, device=device)
        self.mmd_weights = None if target_prior is None else \
            torch.from_numpy(prior_matched_weights(evidence.labels[pool, 0], target_prior)).to(device)

    def uniform(self, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`n` lines of the pool drawn uniformly: features, labels and continuous responses."""
        idx = self.pool[torch.randint(len(self.pool), (n,), generator=gen).to(self.pool.device)]
        return self.evidence.x[idx], self.evidence.y[idx], self.evidence.r[idx]

    def for_alignment(self, n: int, gen: torch.Generator, uniform_batch: torch.Tensor) -> torch.Tensor:
        """Features of the lines for the MMD: `uniform_batch`, or `n` lines drawn in the estimated class mix."""
        if self.mmd_weights is None:
            return uniform_batch
        draw = torch.multinomial(self.mmd_weights.cpu(), n, replacement=True, generator=gen).to(self.pool.device)
        return self.evidence.x[self.pool[draw]]


def check_transfer_config(cfg: TransferConfig, n_drugs: int = 1, *, pretrained: bool = True) -> None:
    """Settings that cannot work together (`pretrained`: a pretrained bulk model is given).

    Raises:
        InputError: members with their own random weights and no direct-model fit (they would know nothing),
            members to start from a pretrained model that is not given, or bulk lines drawn in one drug's
            estimated class mix for several drugs.
    """
    if cfg.member_init == "pretrained" and not pretrained:
        raise InputError("--member_init pretrained starts every member from the pretrained bulk model: give it "
                         "(--model, the bulk_pretrain step's bulk_model.pt; the pipeline pretrains it only with "
                         "this setting), or use --member_init independent.")
    if cfg.member_init == "independent" and cfg.source_epochs < 1:
        raise InputError("--member_init independent fits each member's bulk model from random weights, so it needs "
                         "--source_epochs of at least 1; use --member_init pretrained to transfer the pretrained bulk "
                         "model without refitting it.")
    if cfg.mmd_class_mix == "estimated" and n_drugs > 1:
        raise InputError("--mmd_class_mix estimated draws the bulk lines in one drug's estimated class mix; a screen's "
                         "lines carry every drug: use --mmd_class_mix bulk, or run the drug on its own.")


def transfer(model: BulkModel | BulkConfig, bulk: BulkData, cells: ad.AnnData, *, cfg: TransferConfig,
             device: torch.device, what: str = "sample") -> TransferResult:
    """Train `cfg.n_ensemble` anchored transfer members (seeds seed, seed+1, …) and predict every cell and drug.
    `model`: a bulk model pretrained on `bulk`, or the settings of the bulk model each member fits itself (enough
    for `--member_init independent`, the default).

    Raises:
        InputError: settings that cannot work together, a bulk set of other drugs than the model's, or too
            few shared genes.
    """
    start = Start.of(model, bulk)
    check_transfer_config(cfg, len(start.drugs), pretrained=start.pretrained is not None)
    if list(bulk.drugs) != start.drugs:
        raise InputError(f"The bulk lines carry drugs {bulk.drugs[:5]}, the bulk model {start.drugs[:5]}: use the bulk "
                         "set the model was pretrained on.")
    genes, gene_pos, features, clusters = cell_inputs(start.genes, cells, cfg=cfg, device=device, what=what)
    evidence = BulkEvidence(bulk, genes, device, n_folds=max(2, cfg.n_ensemble), seed=cfg.seed)
    workers, threads = worker_plan(device, cfg.n_ensemble)
    members = map_jobs(lambda k: train_member(start, gene_pos, evidence, fold=k, features=features, clusters=clusters,
                                              cfg=cfg, device=device, seed=cfg.seed + k),
                       cfg.n_ensemble, workers=workers, threads=threads)
    signature = class_mean_signature(evidence.x_np, evidence.labels, evidence.gene_sd)
    oof_lines = np.concatenate([m.val_lines for m in members])
    oof_prob = np.concatenate([m.val_prob for m in members])
    nearest = np.isin(oof_lines, evidence.nearest(features))
    test_prob = np.mean([calibrated(bulk_logits(m.direct.encoder, m.direct.predictor, evidence.test_x),
                                    m.direct.calibration) for m in members], axis=0)
    return TransferResult(drugs=start.drugs, genes=genes, members=members, rate=evidence.rate,
                          signature=signature_scores(features, signature), features=features, config=start.config,
                          oof_auroc=column_aurocs(evidence.labels[oof_lines], oof_prob),
                          local_auroc=column_aurocs(evidence.labels[oof_lines][nearest], oof_prob[nearest],
                                                    min_per_class=MIN_PER_CLASS),
                          test_auroc=column_aurocs(evidence.test_labels, test_prob),
                          history=[{**row, "member": k} for k, m in enumerate(members) for row in m.curve])


def cell_inputs(model_genes: list[str], cells: ad.AnnData, *, cfg: TransferConfig, device: torch.device,
                what: str) -> tuple[list[str], torch.Tensor, CellFeatures, torch.Tensor]:
    """The genes the cells share with the model, their positions in the model, the cells' model features
    and their cluster codes (on the device once; batches index them there).

    Raises:
        InputError: fewer than `cfg.min_gene_overlap` shared genes.
    """
    cell_index = align_genes(list(cells.var_names), model_genes, min_overlap=cfg.min_gene_overlap, what=what)
    genes = [str(cells.var_names[i]) for i in cell_index]
    codes = cells.obs[CLUSTER].astype("category").cat.codes.to_numpy().astype(np.int64)
    return (genes, torch.from_numpy(gene_positions(model_genes, genes)), CellFeatures(cells.X, cell_index),
            torch.from_numpy(codes).to(device))


def initial_networks(start: Start, gene_pos: torch.Tensor, cfg: TransferConfig):
    """The member's starting bulk encoder on the shared genes, predictor and regressor: copies of the
    pretrained bulk model's, or networks of the same architecture with their own random weights (drawn from
    the member's seed)."""
    if cfg.member_init == "pretrained":
        model = start.pretrained
        enc_b, pred, reg = model.encoder, model.predictor, model.regressor
    else:
        enc_b, _, pred, reg = build_networks(len(start.genes), start.config, n_drugs=len(start.drugs))
    return encoder_on_genes(enc_b, gene_pos), copy.deepcopy(pred), copy.deepcopy(reg)


def fit_direct(start: Start, gene_pos: torch.Tensor, evidence: BulkEvidence, *, pool: np.ndarray,
               val_lines: np.ndarray, cfg: TransferConfig, device: torch.device, seed: int):
    """The direct model: the bulk model fitted on the sample's genes and the member's bootstrap of its
    training folds, early-stopped on its own fold (pretraining's predictor stage)."""
    enc_b, pred, reg = (m.to(device) for m in initial_networks(start, gene_pos, cfg))
    curve = []
    if cfg.source_epochs > 0:
        curve = train_predictor(enc_b, pred, reg, feats={"train": evidence.x_np[pool], "val": evidence.x_np[val_lines]},
                                labels={"train": evidence.labels[pool], "val": evidence.labels[val_lines]},
                                responses={"train": evidence.responses[pool], "val": evidence.responses[val_lines]},
                                strata=evidence.strata[pool], device=device,
                                cfg=replace(start.config, predictor_epochs=cfg.source_epochs, seed=seed))
    return enc_b, pred, reg, [{**row, "stage": "source"} for row in curve]


def train_member(start: Start, gene_pos: torch.Tensor, evidence: BulkEvidence, *, fold: int,
                 features: CellFeatures, clusters: torch.Tensor, cfg: TransferConfig, device: torch.device,
                 seed: int) -> Member:
    """Direct-model fit on the lines outside `fold`, anchored transfer and the per-drug orientation guard of
    one ensemble member."""
    seed_everything(seed)
    rng = np.random.default_rng(seed)
    lines, val_lines = evidence.fold(fold)
    pool = evidence.bootstrap(lines, rng) if cfg.member_bulk == "bootstrap" else lines
    enc_b, pred, reg, curve = fit_direct(start, gene_pos, evidence, pool=pool, val_lines=val_lines, cfg=cfg,
                                         device=device, seed=seed)
    val_logit, val_y = bulk_logits(enc_b, pred, evidence.x[val_lines]), evidence.labels[val_lines]
    direct = Networks(enc_b, pred, calibration_for(cfg, val_logit, val_y))
    val_prob = calibrated(val_logit, direct.calibration)
    direct_logit, direct_emb = predict_cells(enc_b, pred, features, device=device)
    direct_prob = calibrated(direct_logit, direct.calibration)
    prior = np.array([estimate_target_prior(direct_prob[:, d], float(r)) for d, r in enumerate(evidence.rate)])
    val_auroc = column_aurocs(val_y, val_logit)
    if cfg.epochs == 0:
        n = len(start.drugs)
        return Member(direct, direct, direct_prob, direct_prob, direct_emb, direct_emb, val_auroc, prior, np.ones(n),
                      np.zeros(n, bool), curve, val_lines, val_prob)
    sampler = LineSampler(evidence, pool, val_lines=val_lines,
                          target_prior=float(prior[0]) if cfg.mmd_class_mix == "estimated" else None)
    direct = Networks(copy.deepcopy(enc_b), copy.deepcopy(pred), direct.calibration)  # the transfer trains both
    enc_c = copy.deepcopy(enc_b)
    anchor = anchor_scores(cfg, direct_logit, evidence=evidence, pool=pool, features=features)
    curve += transfer_epochs(enc_b, enc_c, pred, reg=reg, sampler=sampler, features=features, clusters=clusters,
                             teacher=torch.from_numpy(anchor).to(device), cfg=cfg, device=device, seed=seed,
                             w_response=start.config.w_response)
    logit, emb = predict_cells(enc_c, pred, features, device=device)
    rho = np.array([rank_correlation(logit[:, d], anchor[:, d]) for d in range(logit.shape[1])])
    reset = np.array([not oriented_like(logit[:, d], anchor[:, d]) for d in range(logit.shape[1])])
    if reset.any():
        log.warning("transfer seed %d ranked the cells against its anchor for %d of %d drugs (Spearman %s): those "
                    "drugs keep the direct model", seed, int(reset.sum()), len(reset), np.round(rho[reset], 2))
    transferred = Networks(enc_c, pred, calibration_for(cfg, bulk_logits(enc_b, pred, evidence.x[val_lines]), val_y))
    prob = calibrated(logit, transferred.calibration)
    prob[:, reset] = direct_prob[:, reset]
    return Member(direct, transferred, prob, direct_prob, emb, direct_emb, val_auroc, prior, rho, reset, curve,
                  val_lines, val_prob)


def anchor_scores(cfg: TransferConfig, direct_logit: np.ndarray, *, evidence: BulkEvidence, pool: np.ndarray,
                  features: CellFeatures) -> np.ndarray:
    """The cells × drugs scores whose ranking the anchor keeps: the member's direct model's logits, or the
    signature of its pool of bulk lines."""
    if cfg.anchor_to == "source":
        return direct_logit
    return signature_scores(features, class_mean_signature(evidence.x_np[pool], evidence.labels[pool],
                                                           evidence.gene_sd))


def transfer_epochs(enc_b, enc_c, pred, *, reg, sampler: LineSampler, features: CellFeatures, clusters: torch.Tensor,
                    teacher: torch.Tensor, cfg: TransferConfig, device: torch.device, seed: int,
                    w_response: float) -> list[dict]:
    """The anchored transfer loop; one history row per epoch."""
    params = [p for m in (enc_b, enc_c, pred, reg) for p in m.parameters()]
    opt = adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(seed)
    batch = min(cfg.batch_size, features.n)
    n_clusters = int(clusters.max()) + 1
    n_drugs = teacher.shape[1]
    settling = cfg.settled < 1
    probe = features.batch(np.sort(np.random.default_rng(seed).permutation(features.n)[:PROBE_CELLS]), device) \
        if settling else None
    recent: list[torch.Tensor] = []  # the cells' ranks after each of the last SETTLE_WINDOW epochs
    curve = []
    for epoch in (bar := tqdm(range(cfg.epochs), desc=f"transfer (seed {seed})", leave=False, disable=None)):
        started = time.perf_counter()
        enc_b.train(), enc_c.train(), pred.train(), reg.train()
        sums: dict[str, torch.Tensor] = {}  # summed on the device, read once per epoch
        steps = 0
        for idx in epoch_batches(features.n, len(sampler.pool), batch, gen=gen, max_cells=cfg.max_cells_per_epoch):
            xc = features.batch(idx.numpy(), device)
            on_device = idx.to(device, non_blocking=True)
            xb, yb, rb = sampler.uniform(batch, gen)
            xm = sampler.for_alignment(batch, gen, xb)
            with autocast(device):
                zb, zc = enc_b(xb), enc_c(xc)
                zm = zb if xm is xb else enc_b(xm)
                bulk_terms = response_terms(pred, reg, zb, label=yb, response=rb, pos_weight=sampler.pos_weight,
                                                w_response=w_response)
                terms = {"bulk": bulk_terms["bce"], "bulk_response": bulk_terms.get("response_mse", zb.new_zeros(())),
                         "mmd": mmd(zm, zc), "cluster": cluster_loss(zc, clusters[on_device], n_clusters),
                         "anchor": anchor_term(pred(zc), teacher[on_device], clusters[on_device], n_clusters=n_clusters,
                                               level=cfg.anchor_level)}
            loss = transfer_loss(bulk_terms, terms, cfg=cfg, n_drugs=n_drugs, w_response=w_response)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            for name, value in terms.items():
                sums[name] = sums.get(name, 0.0) + value.detach().float()
            steps += 1
        row = {"stage": "transfer", "epoch": epoch, **{k: float(v) / max(steps, 1) for k, v in sums.items()}}
        row["bulk_val_auroc"] = float(np.nanmedian(sampler.evidence.aurocs(enc_b, pred, sampler.val_lines)))
        if settling:  # one forward pass over the probe cells per epoch
            recent = [*recent, cell_ranks(enc_c, pred, probe)][-SETTLE_WINDOW - 1:]
            row["cells_settled"] = mean_rank_correlation(recent[-1], recent[0]) if len(recent) > SETTLE_WINDOW \
                else float("nan")
        row["seconds"] = time.perf_counter() - started
        curve.append(row)
        bar.set_postfix({k: f"{v:.3f}" for k, v in row.items() if k not in ("epoch", "stage")})
        if settling and row["cells_settled"] >= cfg.settled:  # the last epochs no longer change the call
            break
    if curve:
        log.info("transfer seed %d: %d of %d epochs; last %s", seed, len(curve), cfg.epochs,
                 {k: round(v, 4) for k, v in curve[-1].items() if k != "stage"})
    return curve


def transfer_loss(bulk_terms: dict[str, torch.Tensor], terms: dict[str, torch.Tensor], *, cfg: TransferConfig,
                  n_drugs: int, w_response: float) -> torch.Tensor:
    """The transfer's loss (step 3 above). The bulk and anchor terms are means over drugs, scaled by √n_drugs
    so that the drugs' pull on the shared encoder keeps a single drug's size against the MMD and cluster terms
    (chosen by the rule in docs/usage.md, "When to screen and when to run single drugs"). One drug: the plain
    sum of the terms."""
    scale = math.sqrt(n_drugs)
    return (scale * cfg.w_bulk * weighted_response_loss(bulk_terms, w_response) + cfg.w_mmd * terms["mmd"]
            + cfg.w_cluster * terms["cluster"] + scale * cfg.w_anchor * terms["anchor"])


@torch.no_grad()
def cell_ranks(enc_c, pred, x: torch.Tensor) -> torch.Tensor:
    """Each drug's ranks of the cells `x` by the member's logits (cells × drugs, the networks in eval mode)."""
    enc_c.eval(), pred.eval()
    return pred(enc_c(x)).float().argsort(0).argsort(0).float()


def mean_rank_correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman correlation of two rankings of the cells (cells × drugs ranks, no ties), averaged over drugs."""
    a, b = a - a.mean(0), b - b.mean(0)
    return float(((a * b).sum(0) / (a.norm(dim=0) * b.norm(dim=0)).clamp_min(1e-12)).mean())


def anchor_term(student: torch.Tensor, teacher: torch.Tensor, clusters: torch.Tensor, *, n_clusters: int,
                level: AnchorLevel) -> torch.Tensor:
    """The anchor loss at the chosen level: per cell, or per cluster."""
    if level == "clusters":
        return cluster_anchor_loss(student, teacher, clusters, n_clusters=n_clusters)
    return anchor_loss(student, teacher)


def epoch_batches(n_cells: int, n_bulk: int, batch: int, *, gen: torch.Generator, max_cells: int) -> Iterator[torch.Tensor]:
    """Cell batches of one epoch: enough steps to see every cell (at most `max_cells`, drawn at random,
    so training cost stops growing with sample size) and as many samples as there are bulk training
    lines (small samples cycle through their cells more than once)."""
    steps = max(1, -(-max(min(n_cells, max_cells), n_bulk) // batch))
    order = torch.cat([torch.randperm(n_cells, generator=gen) for _ in range(-(-steps * batch // n_cells))])
    return (order[s] for s in batch_slices(steps * batch, batch))


@torch.no_grad()
def bulk_logits(enc_b, pred, x: torch.Tensor) -> np.ndarray:
    """Lines × drugs logits of sensitivity of bulk lines `x` (the networks in eval mode)."""
    enc_b.eval(), pred.eval()
    return pred(enc_b(x)).float().cpu().numpy()


def platt_scaling(logits: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Slope and intercept that turn the model's logits into calibrated log-odds, fitted on held-out
    bulk lines (cell labels are never used). The class-weighted loss inflates the minority class's
    probability; this undoes it. A model that ranks validation lines no better than chance keeps its
    raw output (slope 1, intercept 0), since inverting it would trust noise."""
    if len(np.unique(y)) < 2:
        return 1.0, 0.0
    fit = LogisticRegression(C=1e4).fit(logits.reshape(-1, 1), y)
    slope, intercept = float(fit.coef_[0, 0]), float(fit.intercept_[0])
    if slope <= 0:
        log.warning("calibration skipped: the model does not rank a drug's bulk validation lines above chance")
        return 1.0, 0.0
    return slope, intercept


def calibration_for(cfg: TransferConfig, logits: np.ndarray, labels: np.ndarray) -> dict:
    """Platt slope and intercept per drug, fitted on the measured lines of the member's held-out fold (its
    `logits` and `labels`, lines × drugs; identity when `cfg.calibration` is none)."""
    n = labels.shape[1]
    if cfg.calibration != "platt":
        return {"slope": np.ones(n, np.float32), "intercept": np.zeros(n, np.float32)}
    fits = [platt_scaling(logits[~np.isnan(y), d], y[~np.isnan(y)]) for d, y in enumerate(labels.T)]
    return {"slope": np.array([f[0] for f in fits], np.float32), "intercept": np.array([f[1] for f in fits], np.float32)}


def calibrated(logit: np.ndarray, calibration: dict) -> np.ndarray:
    """Calibrated probabilities: sigmoid(slope · logit + intercept), per drug column."""
    return sigmoid(calibration["slope"] * logit + calibration["intercept"])


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function as float32 (clipped: no overflow)."""
    return (1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))).astype(np.float32)


@torch.no_grad()
def predict_cells(enc_c, pred, features: CellFeatures, *, device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """Cells × drugs logits of sensitivity and the cells' embedding, block by block."""
    enc_c.eval(), pred.eval()
    logits, embs = [], []
    for idx in features.blocks():
        with autocast(device):
            z = enc_c(features.batch(idx, device))
            logits.append(pred(z).float().cpu().numpy())
        embs.append(z.float().cpu().numpy())
    return np.concatenate(logits), np.concatenate(embs)
