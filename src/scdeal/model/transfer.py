"""Bulk → single-cell transfer (DaNN-style, anchored to the bulk evidence) and per-cell prediction.

Each ensemble member:
1. draws a stratified bootstrap of the bulk training lines (members differ in their bulk evidence, so
   their disagreement measures how well the evidence fixes the call, not only optimiser noise);
2. fits its own bulk model on exactly the genes the sample has, from its own random weights (or from the
   pretrained bulk model), early-stopped on held-out bulk lines: this *source model* is the validated
   "no transfer" model, and its view of the cells is the anchor. Members that share no weights disagree
   where the bulk evidence leaves the call open; members copied from one pretrained model share its errors;
3. transfers with
       loss = w_bulk · [BCE(P(E_b(x_b)), y_b) + w_response · MSE(R(E_b(x_b)), r_b)]
              + w_mmd · MMD(E_b(x_b'), E_c(x_c)) + w_cluster · L_cluster(E_c(x_c))
              + w_anchor · (1 − corr(P(E_c(x_c)), A(x_c)))
   where x_b' are bulk lines drawn in the cells' estimated class mix (alignment that allows label
   shift) and A is the member's anchor: by default its bulk lines' signature (sensitive minus resistant
   mean profile, `signature.py`) scored on each cell's own profile, else its source model. A deep source
   model can rank bulk lines well and still point either way on cells; the signature has no weights to
   fit and compares each profile with itself, so it carries the bulk evidence's direction across the shift;
4. is reset to its source model if its cell ranking still ends up reversed against the anchor.

Both encoders read the same genes and the cell encoder E_c starts as a copy of E_b. No cell label is
read anywhere here.
"""
from __future__ import annotations

import copy
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Literal, get_args

import anndata as ad
import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from tqdm.auto import tqdm

from .._utils import batch_slices, gene_positions, setting
from ..data.features import CellFeatures, align_genes, model_features
from ..errors import InputError
from .cell_model import CellModel
from .device import autocast, seed_everything
from .metrics import ranking_metric
from .networks import (
    cluster_loss,
    encoder_on_genes,
    mmd,
    response_terms,
    weighted_response_loss,
)
from .orientation import (
    anchor_loss,
    cluster_anchor_loss,
    estimate_target_prior,
    oriented_like,
    prior_matched_weights,
    rank_correlation,
)
from .signature import class_mean_signature, signature_scores
from .training import BulkModel, build_networks, line_responses, train_predictor

__all__ = ["THRESHOLD_RULES",
           "AnchorLevel", "AnchorTo", "Calibration", "MemberBulk", "MemberInit", "MmdClassMix", "ThresholdRule",
           "TransferConfig", "TransferResult", "call_labels", "check_transfer_config", "log_odds", "otsu_threshold",
           "platt_scaling", "threshold_for", "transfer_and_predict"]

log = logging.getLogger(__name__)
ThresholdRule = Literal["otsu", "fixed", "bulk_prevalence"]
Calibration = Literal["platt", "none"]
AnchorLevel = Literal["cells", "clusters"]
MmdClassMix = Literal["bulk", "estimated"]
MemberBulk = Literal["bootstrap", "all"]
MemberInit = Literal["independent", "pretrained"]
AnchorTo = Literal["signature", "source"]
THRESHOLD_RULES: tuple[str, ...] = get_args(ThresholdRule)
PROB_FLOOR = 1e-7  # float32 probabilities resolve log-odds to about ±16


@dataclass(frozen=True)
class TransferConfig:
    """The transfer and the per-cell calls (the transfer step's flags)."""

    epochs: int = setting(30, "transfer epochs (fixed; no cell labels are used)")
    batch_size: int = setting(256, "cells (and bulk lines) per step")
    lr: float = setting(1e-4, "Adam learning rate of the transfer")
    weight_decay: float = setting(1e-4, "Adam weight decay of the transfer")
    w_bulk: float = setting(1.0, "weight of the bulk response loss")
    w_mmd: float = setting(1.0, "weight of the MMD alignment loss")
    w_cluster: float = setting(0.5, "weight of the cluster regularisation")
    w_anchor: float = setting(
        0.3, "weight of the consistency with each member's anchor (--anchor_to; keeps the direction of the call)")
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
        20, "epochs (early-stopped on bulk validation lines) refitting the bulk model on the sample's genes")
    member_init: MemberInit = setting(
        "independent", "independent: each member's networks start from their own random weights and are fitted to "
                       "its bulk lines (a deep ensemble: members disagree where the bulk evidence leaves the call "
                       "open); pretrained: every member starts from the pretrained bulk model and shares its errors")
    n_ensemble: int = setting(3, "members with consecutive seeds; their spread is the uncertainty")
    calibration: Calibration = setting(
        "platt", "platt: probabilities calibrated on held-out bulk lines; none: the network's raw output")
    threshold_rule: ThresholdRule = setting(
        "otsu", "otsu: the split of the cells' log-odds into two groups; fixed: prob ≥ --threshold; "
                "bulk_prevalence: the top fraction equal to the bulk sensitive rate. Cells whose members' "
                "spread (in log-odds) reaches across the threshold are called uncertain")
    threshold: float = setting(0.5, "probability threshold of the fixed rule")
    min_gene_overlap: int = setting(200, "fewest bulk-model genes the sample must have")
    max_cells_per_epoch: int = setting(
        20_000, "cells drawn per epoch at most (training cost stops growing with sample size)")
    seed: int = setting(0, "random seed of the first member (the others take the next seeds)")


@dataclass
class Member:
    """One trained ensemble member: its cell model, calibrated cell probabilities, and its source
    model's probabilities for the same cells."""
    encoder: torch.nn.Module
    predictor: torch.nn.Module
    prob: np.ndarray
    source_prob: np.ndarray
    embedding: np.ndarray
    calibration: dict
    source_val_auroc: float
    prior: float
    spearman_to_anchor: float
    reset_to_source: bool
    curve: list[dict]


@dataclass
class TransferResult:
    """Per-cell predictions of the ensemble, its training history and the cell model."""

    prob: np.ndarray                 # mean over ensemble members (calibrated on bulk validation lines)
    prob_sd: np.ndarray              # spread over members (uncertainty)
    member_probs: np.ndarray         # members × cells
    direct_prob: np.ndarray          # mean over members' source models: the bulk model without transfer
    embedding: np.ndarray            # first member's cell embedding
    genes: list[str]
    history: list[dict] = field(default_factory=list)
    cell_model: CellModel | None = None
    members: list[dict] = field(default_factory=list)   # per member: source AUROC, prior, orientation check
    source_prior: float = 0.5        # fraction of sensitive lines the calibration is relative to

    @property
    def bulk_val_auroc(self) -> float:
        """Held-out bulk AUROC of the source models on the genes used (mean over members)."""
        return float(np.nanmean([m["source_val_auroc"] for m in self.members]))

    @property
    def n_reset(self) -> int:
        """Members reset to their source model by the orientation guard."""
        return sum(m["reset_to_source"] for m in self.members)


class BulkSide:
    """Bulk lines on the shared genes, standardised with training-line statistics."""

    def __init__(self, bulk: ad.AnnData, genes: list[str], device: torch.device):
        bulk = bulk[:, genes]
        split = bulk.obs["split"].to_numpy()
        train, stats = model_features(bulk.X[split == "train"])
        self.gene_sd = stats[1]
        y, r = self.line_labels(bulk), self.line_responses(bulk)
        self.train_x, self.train_y, self.train_r = train, y[split == "train"], r[split == "train"]
        self.val_x = model_features(bulk.X[split == "val"], stats)[0]
        self.y_val, self.r_val = y[split == "val"], r[split == "val"]
        self.x = torch.from_numpy(train).to(device)
        self.y = torch.from_numpy(self.train_y).to(device)
        self.r = torch.from_numpy(self.train_r).to(device)
        self.x_val = torch.from_numpy(self.val_x).to(device)

    terms = staticmethod(response_terms)  # the bulk response loss of one drug
    line_responses = staticmethod(line_responses)

    @staticmethod
    def line_labels(bulk: ad.AnnData) -> np.ndarray:
        """1 sensitive / 0 resistant per line."""
        return bulk.obs["label"].to_numpy().astype(np.float32)

    def train_labels(self, pool: np.ndarray) -> np.ndarray:
        """The labels of the training lines of `pool`, as the bulk predictor's training takes them."""
        return self.train_y[pool].astype(np.int64)

    def pos_weight(self, pool: np.ndarray) -> float:
        """BCE weight of the sensitive class among the lines of `pool`."""
        n_pos = float(self.train_y[pool].sum())
        return (len(pool) - n_pos) / max(n_pos, 1.0)

    def val_auroc(self, enc_b, pred) -> float:
        """AUROC of the validation lines under the bulk encoder and head."""
        return bulk_val_auroc(enc_b, pred, self)

    def bootstrap(self, rng: np.random.Generator) -> np.ndarray:
        """Training-line indices drawn with replacement within each class (both classes kept)."""
        parts = [rng.choice(np.flatnonzero(self.train_y == c), int((self.train_y == c).sum()), replace=True)
                 for c in (0, 1)]
        return np.sort(np.concatenate(parts))


class LineSampler:
    """Draws bulk batches from one member's pool of training lines: uniformly for the response loss,
    and in the cells' estimated class mix for the MMD."""

    def __init__(self, side, pool: np.ndarray, target_prior: float | None):
        device = side.x.device
        self.side = side
        self.pool = torch.from_numpy(pool).to(device)
        self.pos_weight = torch.as_tensor(side.pos_weight(pool), dtype=torch.float32, device=device)
        self.mmd_weights = None if target_prior is None else \
            torch.from_numpy(prior_matched_weights(side.train_y[pool], target_prior)).to(device)

    def uniform(self, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`n` lines of the pool drawn uniformly: features, labels and continuous responses."""
        idx = self.pool[torch.randint(len(self.pool), (n,), generator=gen).to(self.pool.device)]
        return self.side.x[idx], self.side.y[idx], self.side.r[idx]

    def for_alignment(self, n: int, gen: torch.Generator, uniform_batch: torch.Tensor) -> torch.Tensor:
        """Features of the lines for the MMD: `uniform_batch`, or `n` lines drawn in the estimated class mix."""
        if self.mmd_weights is None:
            return uniform_batch
        draw = torch.multinomial(self.mmd_weights.cpu(), n, replacement=True, generator=gen).to(self.pool.device)
        return self.side.x[self.pool[draw]]


def check_transfer_config(cfg: TransferConfig) -> None:
    """Settings that cannot work together.

    Raises:
        InputError: members with their own random weights and no source fit (they would know nothing).
    """
    if cfg.member_init == "independent" and cfg.source_epochs < 1:
        raise InputError("--member_init independent fits each member's bulk model from random weights, so it needs "
                         "--source_epochs of at least 1; use --member_init pretrained to transfer the pretrained bulk "
                         "model without refitting it.")


def transfer_and_predict(model: BulkModel, bulk: ad.AnnData, cells: ad.AnnData, *, cfg: TransferConfig,
                         device: torch.device, what: str = "sample") -> TransferResult:
    """Train `cfg.n_ensemble` anchored transfer members (seeds seed, seed+1, …) and predict every cell."""
    check_transfer_config(cfg)
    genes, gene_pos_model, features, clusters = cell_inputs(model.genes, cells, cfg=cfg, device=device, what=what)
    side = BulkSide(bulk, genes, device)
    members = [train_member(model, gene_pos_model, side, features=features, clusters=clusters, cfg=cfg, device=device,
                            seed=cfg.seed + k)
               for k in range(cfg.n_ensemble)]
    member_probs = np.vstack([m.prob for m in members])
    first = members[0]
    cell_model = CellModel.from_ensemble(genes=genes, features=features, config=model.config,
                                         encoders=[m.encoder for m in members],
                                         predictors=[m.predictor for m in members],
                                         calibrations=[m.calibration for m in members])
    history = [{**row, "member": k} for k, m in enumerate(members) for row in m.curve]
    summaries = [{"member": k, "source_val_auroc": m.source_val_auroc, "prior": m.prior,
                  "spearman_to_anchor": m.spearman_to_anchor, "reset_to_source": m.reset_to_source}
                 for k, m in enumerate(members)]
    return TransferResult(prob=member_probs.mean(0), prob_sd=member_probs.std(0), member_probs=member_probs,
                          direct_prob=np.vstack([m.source_prob for m in members]).mean(0),
                          embedding=first.embedding, genes=genes, history=history, cell_model=cell_model,
                          members=summaries, source_prior=float(side.y_val.mean()))


def cell_inputs(model_genes: list[str], cells: ad.AnnData, *, cfg: TransferConfig, device: torch.device,
                what: str) -> tuple[list[str], torch.Tensor, CellFeatures, torch.Tensor]:
    """The genes the cells share with the model, their positions in the model, the cells' model features
    and their cluster codes (on the device once; batches index them there).

    Raises:
        InputError: fewer than `cfg.min_gene_overlap` shared genes.
    """
    cell_index = align_genes(list(cells.var_names), model_genes, min_overlap=cfg.min_gene_overlap, what=what)
    genes = [str(cells.var_names[i]) for i in cell_index]
    codes = cells.obs["cluster"].astype("category").cat.codes.to_numpy().astype(np.int64)
    return (genes, torch.from_numpy(gene_positions(model_genes, genes)), CellFeatures(cells.X, cell_index),
            torch.from_numpy(codes).to(device))


def initial_networks(model: BulkModel, gene_pos: torch.Tensor, cfg: TransferConfig):
    """The member's starting bulk encoder on the shared genes, predictor and regressor: copies of the
    pretrained bulk model's, or networks of the same architecture with their own random weights (drawn from
    the member's seed)."""
    if cfg.member_init == "pretrained":
        enc_b, pred, reg = model.encoder, model.predictor, model.regressor
    else:
        enc_b, _, pred, reg = build_networks(len(model.genes), model.config, n_drugs=model.predictor.out.out_features)
    return encoder_on_genes(enc_b, gene_pos), copy.deepcopy(pred), copy.deepcopy(reg)


def fit_source(model: BulkModel, gene_pos: torch.Tensor, side: BulkSide, *, pool: np.ndarray, cfg: TransferConfig,
               device: torch.device, seed: int):
    """The bulk model refitted on the sample's genes and the member's bootstrap of training lines,
    early-stopped on the held-out validation lines (the same procedure as pretraining's predictor stage)."""
    enc_b, pred, reg = (m.to(device) for m in initial_networks(model, gene_pos, cfg))
    if cfg.source_epochs > 0:
        bulk_cfg = replace(model.config, predictor_epochs=cfg.source_epochs, seed=seed)
        feats = {"train": side.train_x[pool], "val": side.val_x}
        labels = {"train": side.train_labels(pool), "val": side.y_val}
        responses = {"train": side.train_r[pool], "val": side.r_val}
        curve = train_predictor(enc_b, pred, reg, feats=feats, labels=labels, responses=responses, cfg=bulk_cfg,
                                device=device)
    else:
        curve = []
    return enc_b, pred, reg, [{**row, "stage": "source"} for row in curve]


def train_member(model: BulkModel, gene_pos, side: BulkSide, *, features: CellFeatures, clusters: torch.Tensor,
                 cfg: TransferConfig, device: torch.device, seed: int) -> Member:
    """Source refit, anchored transfer and the orientation guard of one ensemble member."""
    seed_everything(seed)
    rng = np.random.default_rng(seed)
    pool = side.bootstrap(rng) if cfg.member_bulk == "bootstrap" else np.arange(len(side.train_y))
    enc_b, pred, reg, curve = fit_source(model, gene_pos, side, pool=pool, cfg=cfg, device=device, seed=seed)
    source_cal = calibration_for(cfg, enc_b, pred, side=side)
    source_logit, source_emb = predict_cells(enc_b, pred, features, device=device)
    source_prob = calibrated(source_logit, source_cal)
    prior = estimate_target_prior(source_prob, float(side.y_val.mean()))
    source_auroc = bulk_val_auroc(enc_b, pred, side)
    if cfg.epochs == 0:
        return Member(enc_b, pred, source_prob, source_prob, source_emb, source_cal, source_auroc, prior, 1.0,
                      False, curve)
    sampler = LineSampler(side, pool, prior if cfg.mmd_class_mix == "estimated" else None)
    source = copy.deepcopy(enc_b), copy.deepcopy(pred)  # the transfer trains both; a reset needs them as they were
    enc_c = copy.deepcopy(enc_b)
    anchor = anchor_scores(cfg, source_logit, side=side, pool=pool, features=features)
    curve += transfer_epochs(enc_b, enc_c, pred, reg=reg, sampler=sampler, features=features, clusters=clusters,
                             teacher=torch.from_numpy(anchor).to(device), cfg=cfg, device=device, seed=seed,
                             w_response=model.config.w_response)
    logit, emb = predict_cells(enc_c, pred, features, device=device)
    rho = rank_correlation(logit, anchor)
    if not oriented_like(logit, anchor):
        log.warning("transfer seed %d ranked the cells against its anchor (Spearman %.2f): member reset to "
                    "the source model", seed, rho)
        return Member(*source, source_prob, source_prob, source_emb, source_cal, source_auroc, prior, rho, True, curve)
    cal = calibration_for(cfg, enc_b, pred, side=side)
    return Member(enc_c, pred, calibrated(logit, cal), source_prob, emb, cal, source_auroc, prior, rho, False, curve)


def anchor_scores(cfg: TransferConfig, source_logit: np.ndarray, *, side: BulkSide, pool: np.ndarray,
                  features: CellFeatures) -> np.ndarray:
    """The cell scores (shaped like `source_logit`: cells, or cells × drugs) whose ranking the anchor keeps:
    the member's source model's logits, or the signature of its pool of bulk lines."""
    if cfg.anchor_to == "source":
        return source_logit
    signature = class_mean_signature(side.train_x[pool], side.train_y[pool], side.gene_sd)
    return signature_scores(features, signature).reshape(source_logit.shape)


def transfer_epochs(enc_b, enc_c, pred, *, reg, sampler: LineSampler, features: CellFeatures, clusters: torch.Tensor,
                    teacher: torch.Tensor, cfg: TransferConfig, device: torch.device, seed: int,
                    w_response: float) -> list[dict]:
    """The anchored transfer loop; one history row per epoch."""
    params = [p for m in (enc_b, enc_c, pred, reg) for p in m.parameters()]
    opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(seed)
    batch = min(cfg.batch_size, features.n)
    n_clusters = int(clusters.max()) + 1
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
                bulk_terms = sampler.side.terms(pred, reg, zb, label=yb, response=rb, pos_weight=sampler.pos_weight,
                                                w_response=w_response)
                terms = {"bulk": bulk_terms["bce"], "bulk_response": bulk_terms.get("response_mse", zb.new_zeros(())),
                         "mmd": mmd(zm, zc), "cluster": cluster_loss(zc, clusters[on_device], n_clusters),
                         "anchor": anchor_term(pred(zc), teacher[on_device], clusters[on_device], n_clusters=n_clusters,
                                               level=cfg.anchor_level)}
            loss = (cfg.w_bulk * weighted_response_loss(bulk_terms, w_response) + cfg.w_mmd * terms["mmd"]
                    + cfg.w_cluster * terms["cluster"] + cfg.w_anchor * terms["anchor"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            for name, value in terms.items():
                sums[name] = sums.get(name, 0.0) + value.detach().float()
            steps += 1
        row = {"stage": "transfer", "epoch": epoch, **{k: float(v) / max(steps, 1) for k, v in sums.items()}}
        row["bulk_val_auroc"] = sampler.side.val_auroc(enc_b, pred)
        row["seconds"] = time.perf_counter() - started
        curve.append(row)
        bar.set_postfix({k: f"{v:.3f}" for k, v in row.items() if k not in ("epoch", "stage")})
    if curve:
        log.info("transfer seed %d: last epoch %s", seed,
                 {k: round(v, 4) for k, v in curve[-1].items() if k != "stage"})
    return curve


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
    """Logits of sensitivity of bulk lines `x` (the networks in eval mode)."""
    enc_b.eval(), pred.eval()
    return pred(enc_b(x)).float().cpu().numpy()


def bulk_val_auroc(enc_b, pred, side: BulkSide) -> float:
    """AUROC of the bulk validation lines (NaN with one class)."""
    return ranking_metric(roc_auc_score, side.y_val, bulk_logits(enc_b, pred, side.x_val))


def platt_scaling(logits: np.ndarray, y: np.ndarray, *, warn: bool = True) -> tuple[float, float]:
    """Slope and intercept that turn the model's logits into calibrated log-odds, fitted on held-out
    bulk lines (cell labels are never used). The class-weighted loss inflates the minority class's
    probability; this undoes it. A model that ranks validation lines no better than chance keeps its
    raw output (slope 1, intercept 0), since inverting it would trust noise."""
    if len(np.unique(y)) < 2:
        return 1.0, 0.0
    fit = LogisticRegression(C=1e4).fit(logits.reshape(-1, 1), y)
    slope, intercept = float(fit.coef_[0, 0]), float(fit.intercept_[0])
    if slope <= 0:
        if warn:
            log.warning("calibration skipped: the transferred model does not rank bulk validation lines above chance")
        return 1.0, 0.0
    return slope, intercept


def calibration_for(cfg: TransferConfig, enc_b, pred, *, side: BulkSide) -> dict:
    """Platt slope and intercept on the bulk validation lines (identity when `cfg.calibration` is none);
    for a screen, one of each per drug, fitted on the lines measured for it."""
    if cfg.calibration != "platt":
        return {"slope": 1.0, "intercept": 0.0}
    logits = bulk_logits(enc_b, pred, side.x_val)
    if logits.ndim == 1:
        slope, intercept = platt_scaling(logits, side.y_val)
        return {"slope": slope, "intercept": intercept}
    fits = [platt_scaling(logits[~np.isnan(y), d], y[~np.isnan(y)], warn=False)
            for d, y in enumerate(side.y_val.T)]
    return {"slope": np.array([f[0] for f in fits], np.float32), "intercept": np.array([f[1] for f in fits], np.float32)}


def calibrated(logit: np.ndarray, calibration: dict) -> np.ndarray:
    """Calibrated probabilities: sigmoid(slope · logit + intercept)."""
    return sigmoid(calibration["slope"] * logit + calibration["intercept"])


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function as float32 (clipped: no overflow)."""
    return (1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))).astype(np.float32)


@torch.no_grad()
def predict_cells(enc_c, pred, features: CellFeatures, *, device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """Logit of sensitivity and embedding of every cell, block by block."""
    enc_c.eval(), pred.eval()
    logits, embs = [], []
    for idx in features.blocks():
        with autocast(device):
            z = enc_c(features.batch(idx, device))
            logits.append(pred(z).float().cpu().numpy())
        embs.append(z.float().cpu().numpy())
    return np.concatenate(logits), np.concatenate(embs)


def threshold_for(rule: ThresholdRule, result: TransferResult, fixed: float) -> float:
    """Label threshold (a probability), from the probabilities and bulk evidence only (never cell labels):
    otsu: the split of the cells' log-odds into two groups (the default: a sample's sensitive and
    resistant cells separate wherever the ranking does, whatever prior the calibration carries);
    fixed: a probability; bulk_prevalence: the top fraction equal to
    the fraction of sensitive bulk validation lines."""
    if rule == "otsu":
        return otsu_threshold(result.prob)
    if rule == "fixed":
        return fixed
    if rule == "bulk_prevalence":
        return float(np.quantile(result.prob, 1 - result.source_prior))
    raise InputError(f"Unknown threshold rule '{rule}': choose one of {', '.join(THRESHOLD_RULES)}.")


def log_odds(prob: np.ndarray | float) -> np.ndarray:
    """log(p / (1 − p)), with p kept PROB_FLOOR away from 0 and 1."""
    p = np.clip(np.asarray(prob, np.float64), PROB_FLOOR, 1 - PROB_FLOOR)
    return np.log(p) - np.log1p(-p)


def call_labels(member_probs: np.ndarray, threshold: float) -> np.ndarray:
    """sensitive / resistant by the threshold on the members' mean probability; uncertain where the members'
    spread reaches across it. The spread is measured in log-odds: calibrated probabilities crowd near 0 and
    1, where a probability spread would call every cell close to a low threshold uncertain."""
    prob = member_probs.mean(0)
    labels = np.where(prob >= threshold, "sensitive", "resistant").astype(object)
    distance = np.abs(log_odds(prob) - log_odds(threshold))
    labels[distance < log_odds(member_probs).std(0)] = "uncertain"
    return labels


def otsu_threshold(prob: np.ndarray, bins: int = 256) -> float:
    """The probability that splits the cells into the two groups of most between-group variance of their
    log-odds. Calibrated to a bulk prior of ~10–20 % sensitive lines, a whole sensitive population can lie
    below 0.05 in probability, yet apart from the resistant cells in log-odds."""
    return float(sigmoid(np.float64(otsu_split(log_odds(prob), bins))))


def otsu_split(values: np.ndarray, bins: int) -> float:
    """The value that maximises the between-group variance of the two groups it makes."""
    hist, edges = np.histogram(values, bins=bins, range=(float(np.min(values)), float(np.max(values)) + 1e-9))
    centres = (edges[:-1] + edges[1:]) / 2
    weight = np.cumsum(hist) / max(hist.sum(), 1)
    mean_low = np.cumsum(hist * centres) / np.maximum(np.cumsum(hist), 1)
    total_mean = (hist * centres).sum() / max(hist.sum(), 1)
    mean_high = (total_mean - weight * mean_low) / np.maximum(1 - weight, 1e-12)
    between = weight * (1 - weight) * (mean_low - mean_high) ** 2
    return float(edges[int(np.argmax(between[:-1])) + 1])
