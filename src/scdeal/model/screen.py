"""A drug screen: one multi-task bulk model for every drug, then one anchored transfer per sample.

The bulk model is the single-drug model's encoder, shared, with one linear classifier and one linear
regressor output per drug on its bottleneck (no head layer shared between drugs); its losses skip the
(line, drug) pairs the tables do not measure, and each drug's classes are weighted on its own. The
transfer is the single-drug transfer (`transfer.py`) with every drug at once: each member refits on its
bootstrap of lines and the sample's genes (its source model), aligns the cells to the lines, keeps every
drug's cell ranking correlated with that drug's anchor (`--anchor_to`: the signature of its bulk lines, or
the source model; averaged over drugs), and is reset to its source model drug by drug wherever its ranking
ended up reversed against the anchor. Probabilities are Platt-calibrated per drug on the validation lines
measured for that drug. No cell label is read.
"""
from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field, replace

import anndata as ad
import numpy as np
import torch
from scipy.stats import rankdata

from ..data.features import CellFeatures, model_features
from ..data.screen import SCREEN_KEY
from ..errors import InputError
from .device import seed_everything
from .networks import screen_terms
from .orientation import oriented_like, rank_correlation
from .signature import class_mean_signature, signature_scores
from .training import (
    BulkConfig,
    build_networks,
    class_weight,
    load_tagged,
    restored_networks,
    save_tagged,
    train_autoencoder,
    train_predictor,
)
from .transfer import (
    BulkSide,
    LineSampler,
    TransferConfig,
    anchor_scores,
    bulk_logits,
    calibrated,
    calibration_for,
    cell_inputs,
    check_transfer_config,
    fit_source,
    predict_cells,
    transfer_epochs,
)

__all__ = ["SCREEN_MODEL_FORMAT", "ScreenModel", "ScreenResult", "ScreenSide", "column_aurocs", "column_spearman",
           "head_outputs", "load_screen_model", "pretrain_screen", "save_screen_model", "screen_transfer"]

log = logging.getLogger(__name__)
SCREEN_MODEL_FORMAT = "scdeal-screen-model/1"
# Each drug reads the shared bottleneck directly: a hidden head layer shared by every drug is a second
# bottleneck, and it pulls the drugs toward their common axis (general sensitivity) and away from their own.
SCREEN_HEAD_HIDDEN: tuple[int, ...] = ()


@dataclass
class ScreenModel:
    """The multi-task bulk model: a shared encoder and one response output per drug."""

    drugs: list[str]
    genes: list[str]
    gene_mean: np.ndarray
    gene_sd: np.ndarray
    config: BulkConfig
    encoder: torch.nn.Module
    decoder: torch.nn.Module
    predictor: torch.nn.Module       # lines × drugs logits of sensitivity
    regressor: torch.nn.Module       # lines × drugs continuous response (auxiliary)
    metrics: list[dict] = field(default_factory=list)   # per drug: held-out validation and test figures
    history: list[dict] = field(default_factory=list)


def column_aurocs(y: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """AUROC of each column of `scores` against the same column of `y` (1/0, NaN skipped), by the rank-sum
    statistic; NaN where a column lacks one class."""
    out = np.full(y.shape[1], np.nan)
    for d in range(y.shape[1]):
        valid = ~np.isnan(y[:, d])
        labels = y[valid, d]
        n_pos = int(labels.sum())
        n_neg = len(labels) - n_pos
        if n_pos and n_neg:
            ranks = rankdata(scores[valid, d])
            out[d] = (ranks[labels == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return out


def column_spearman(target: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Spearman correlation of each column over its measured rows (NaN where fewer than three)."""
    out = np.full(target.shape[1], np.nan)
    for d in range(target.shape[1]):
        valid = ~np.isnan(target[:, d])
        if valid.sum() >= 3:
            out[d] = rank_correlation(target[valid, d], predicted[valid, d])
    return out


class ScreenSide(BulkSide):
    """The bulk lines of a screen on the sample's genes: lines × drugs labels and responses."""

    terms = staticmethod(screen_terms)

    @staticmethod
    def line_labels(bulk: ad.AnnData) -> np.ndarray:
        """Lines × drugs: 1 sensitive, 0 resistant, NaN unmeasured."""
        return np.asarray(bulk.obsm["label"], np.float32)

    @staticmethod
    def line_responses(bulk: ad.AnnData) -> np.ndarray:
        """Lines × drugs continuous responses (NaN unmeasured)."""
        return np.asarray(bulk.obsm["response_z"], np.float32)

    def train_labels(self, pool: np.ndarray) -> np.ndarray:
        """The labels of the training lines of `pool` (NaN kept: the loss skips them)."""
        return self.train_y[pool]

    def pos_weight(self, pool: np.ndarray) -> np.ndarray:
        """One BCE weight of the sensitive class per drug, among the lines of `pool`."""
        return class_weight(self.train_y[pool], "weight")

    def val_auroc(self, enc_b, pred) -> float:
        """Median over drugs of the validation lines' AUROC."""
        return float(np.nanmedian(self.val_aurocs(enc_b, pred)))

    def val_aurocs(self, enc_b, pred) -> np.ndarray:
        """Each drug's AUROC on its measured validation lines."""
        return column_aurocs(self.y_val, bulk_logits(enc_b, pred, self.x_val))

    def bootstrap(self, rng: np.random.Generator) -> np.ndarray:
        """Training-line indices drawn with replacement (a line carries every drug, so no strata)."""
        n = len(self.train_y)
        return np.sort(rng.choice(n, n, replace=True))


# ---------------------------------------------------------------- bulk model

def pretrain_screen(bulk: ad.AnnData, cfg: BulkConfig, device: torch.device) -> ScreenModel:
    """Autoencoder on all screen lines, then every drug's heads with the encoder fine-tuned, early-stopped
    on the validation lines; per-drug metrics on validation and held-out test lines. The heads are
    `SCREEN_HEAD_HIDDEN` whatever `cfg.predictor_hidden_dims` says (the saved config records it)."""
    cfg = replace(cfg, predictor_hidden_dims=SCREEN_HEAD_HIDDEN)
    seed_everything(cfg.seed)
    drugs = list(bulk.uns[SCREEN_KEY]["drugs"])
    split = bulk.obs["split"].to_numpy()
    y, r = ScreenSide.line_labels(bulk), ScreenSide.line_responses(bulk)
    train_x, stats = model_features(bulk.X[split == "train"])
    feats = {"train": train_x, **{s: model_features(bulk.X[split == s], stats)[0] for s in ("val", "test")}}
    labels = {s: y[split == s] for s in ("train", "val", "test")}
    responses = {s: r[split == s] for s in ("train", "val", "test")}
    enc, dec, pred, reg = (m.to(device) for m in build_networks(bulk.n_vars, cfg, n_drugs=len(drugs)))
    history = train_autoencoder(enc, dec, feats, cfg=cfg, device=device)
    history += train_predictor(enc, pred, reg, feats=feats, labels=labels, responses=responses, cfg=cfg, device=device)
    metrics = drug_metrics(enc, pred, reg, feats=feats, labels=labels, responses=responses, drugs=drugs, device=device)
    log.info("screen bulk model: %d drugs, median held-out test AUROC %.3f", len(drugs),
             float(np.nanmedian([m["test_auroc"] for m in metrics])))
    return ScreenModel(drugs=drugs, genes=list(map(str, bulk.var_names)), gene_mean=stats[0], gene_sd=stats[1],
                       config=cfg, encoder=enc.cpu(), decoder=dec.cpu(), predictor=pred.cpu(), regressor=reg.cpu(),
                       metrics=metrics, history=history)


@torch.no_grad()
def head_outputs(enc, head, x: np.ndarray, *, device: torch.device) -> np.ndarray:
    """Lines × drugs outputs of `head` on model features `x`."""
    enc.eval(), head.eval()
    return head(enc(torch.from_numpy(x).to(device))).float().cpu().numpy()


def drug_metrics(enc, pred, reg, *, feats: dict, labels: dict, responses: dict, drugs: list[str],
                 device: torch.device) -> list[dict]:
    """Per drug: measured lines, validation and test AUROC of the classifier, and the test Spearman of the
    regressor with the measured continuous response."""
    val_auroc = column_aurocs(labels["val"], head_outputs(enc, pred, feats["val"], device=device))
    test_auroc = column_aurocs(labels["test"], head_outputs(enc, pred, feats["test"], device=device))
    test_rho = column_spearman(responses["test"], head_outputs(enc, reg, feats["test"], device=device))
    every = np.vstack([labels[s] for s in ("train", "val", "test")])
    return [{"drug": drug, "n_lines": int((~np.isnan(every[:, d])).sum()), "n_sensitive": int((every[:, d] == 1).sum()),
             "val_auroc": float(val_auroc[d]), "test_auroc": float(test_auroc[d]), "test_spearman": float(test_rho[d])}
            for d, drug in enumerate(drugs)]


def save_screen_model(model: ScreenModel, path, provenance: dict) -> None:
    """Write `model` (format SCREEN_MODEL_FORMAT) with `provenance`, atomically."""
    save_tagged(model, path, tag=SCREEN_MODEL_FORMAT, provenance=provenance, drugs=model.drugs)


def load_screen_model(path) -> ScreenModel:
    """The screen model saved by `save_screen_model`.

    Raises:
        InputError: the file cannot be read, or is not a screen model of this format.
    """
    payload = load_tagged(path, SCREEN_MODEL_FORMAT, "screen model")
    cfg, enc, dec, pred, reg = restored_networks(payload, n_drugs=len(payload["drugs"]))
    return ScreenModel(drugs=list(payload["drugs"]), genes=list(payload["genes"]),
                       gene_mean=payload["gene_mean"].numpy(), gene_sd=payload["gene_sd"].numpy(), config=cfg,
                       encoder=enc, decoder=dec, predictor=pred, regressor=reg, metrics=payload["metrics"],
                       history=payload["history"])


# ---------------------------------------------------------------- transfer

@dataclass
class ScreenResult:
    """Per-cell, per-drug predictions of the ensemble and what each member did."""

    drugs: list[str]
    prob: np.ndarray                 # cells × drugs, mean over members (calibrated per drug)
    prob_sd: np.ndarray              # cells × drugs, spread over members
    member_probs: np.ndarray         # members × cells × drugs
    direct_prob: np.ndarray          # cells × drugs, mean over members' source models (no transfer)
    source_val_auroc: np.ndarray     # members × drugs: held-out bulk AUROC of each member's source model
    reset: np.ndarray                # members × drugs: drug reset to the source model by the orientation guard
    signature: np.ndarray            # cells × drugs: each drug's signature of all training lines, scored on the cells
    genes: list[str]
    bulk_rate: np.ndarray            # per drug, the rate of sensitive validation lines (the calibration's prior)
    history: list[dict] = field(default_factory=list)

    @property
    def bulk_val_auroc(self) -> np.ndarray:
        """Per drug, the source models' held-out bulk AUROC on the genes used (mean over members)."""
        return np.nanmean(self.source_val_auroc, axis=0)


def check_screen_config(cfg: TransferConfig) -> None:
    """The transfer settings a screen supports.

    Raises:
        InputError: a setting that needs one drug's classes, or settings that cannot work together.
    """
    check_transfer_config(cfg)
    if cfg.anchor_level != "cells" or cfg.mmd_class_mix != "bulk":
        raise InputError("A screen anchors each cell (--anchor_level cells) and aligns to the bulk lines as they come "
                         "(--mmd_class_mix bulk): the cluster anchor and the estimated class mix need one drug's "
                         "classes. Run single drugs for those settings.")


def screen_transfer(model: ScreenModel, bulk: ad.AnnData, cells: ad.AnnData, *, cfg: TransferConfig,
                    device: torch.device, what: str = "sample") -> ScreenResult:
    """Train `cfg.n_ensemble` anchored transfer members for every drug at once and predict every cell."""
    check_screen_config(cfg)
    genes, gene_pos, features, clusters = cell_inputs(model.genes, cells, cfg=cfg, device=device, what=what)
    side = ScreenSide(bulk, genes, device)
    members = [screen_member(model, gene_pos, side, features=features, clusters=clusters, cfg=cfg, device=device,
                             seed=cfg.seed + k) for k in range(cfg.n_ensemble)]
    member_probs = np.stack([m["prob"] for m in members])
    return ScreenResult(drugs=model.drugs, prob=member_probs.mean(0), prob_sd=member_probs.std(0),
                        member_probs=member_probs, direct_prob=np.stack([m["source_prob"] for m in members]).mean(0),
                        source_val_auroc=np.stack([m["source_val_auroc"] for m in members]),
                        reset=np.stack([m["reset"] for m in members]),
                        signature=signature_scores(features, class_mean_signature(side.train_x, side.train_y,
                                                                                  side.gene_sd)),
                        genes=genes,
                        bulk_rate=np.nanmean(side.y_val, axis=0),
                        history=[{**row, "member": k} for k, m in enumerate(members) for row in m["curve"]])


def screen_member(model: ScreenModel, gene_pos: torch.Tensor, side: ScreenSide, *, features: CellFeatures,
                  clusters: torch.Tensor, cfg: TransferConfig, device: torch.device, seed: int) -> dict:
    """Source refit, anchored transfer and the per-drug orientation guard of one member."""
    seed_everything(seed)
    pool = side.bootstrap(np.random.default_rng(seed)) if cfg.member_bulk == "bootstrap" else np.arange(len(side.train_y))
    enc_b, pred, reg, curve = fit_source(model, gene_pos, side, pool=pool, cfg=cfg, device=device, seed=seed)
    source_logit, _ = predict_cells(enc_b, pred, features, device=device)
    source_prob = calibrated(source_logit, calibration_for(cfg, enc_b, pred, side=side))
    source_auroc = side.val_aurocs(enc_b, pred)
    if cfg.epochs == 0:
        return {"prob": source_prob, "source_prob": source_prob, "source_val_auroc": source_auroc,
                "reset": np.zeros(len(model.drugs), bool), "curve": curve}
    enc_c = copy.deepcopy(enc_b)
    anchor = anchor_scores(cfg, source_logit, side=side, pool=pool, features=features)
    curve += transfer_epochs(enc_b, enc_c, pred, reg=reg, sampler=LineSampler(side, pool, None), features=features,
                             clusters=clusters, teacher=torch.from_numpy(anchor).to(device), cfg=cfg, device=device,
                             seed=seed, w_response=model.config.w_response)
    logit, _ = predict_cells(enc_c, pred, features, device=device)
    prob = calibrated(logit, calibration_for(cfg, enc_b, pred, side=side))
    reset = np.array([not oriented_like(logit[:, d], anchor[:, d]) for d in range(logit.shape[1])])
    if reset.any():
        log.warning("transfer seed %d ranked the cells against its anchor for %d of %d drugs: those drugs "
                    "keep the source model's calls", seed, int(reset.sum()), len(reset))
    prob[:, reset] = source_prob[:, reset]
    return {"prob": prob, "source_prob": source_prob, "source_val_auroc": source_auroc, "reset": reset, "curve": curve}
