"""Bulk → single-cell transfer (DaNN-style) and per-cell prediction.

loss = w_bulk · [BCE(P(E_b(x_b)), y_b) + w_response · MSE(R(E_b(x_b)), r_b)]
       + w_mmd · MMD(E_b(x_b), E_c(x_c)) + w_cluster · L_cluster(E_c(x_c))

(r_b: the lines' z-scored continuous response where the bulk tables have one; R: its regressor.)

Both encoders read the same genes (the bulk model's genes present in the sample) and the cell
encoder E_c starts as a copy of the bulk encoder E_b, so "sensitive" keeps its side of the
embedding. All three networks are optimised; the bulk term keeps the bulk knowledge.
No cell label is read anywhere here.
"""
from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, field

import anndata as ad
import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from tqdm.auto import tqdm

from .device import autocast, seed_everything
from .errors import InputError
from .features import CellFeatures
from .models import cluster_loss, encoder_on_genes, mmd
from .preprocess import align_genes, model_features
from .training import BulkModel, build_networks, line_responses, response_terms, weighted_response_loss

log = logging.getLogger(__name__)
THRESHOLD_RULES = ("fixed", "bulk_prevalence", "otsu")
CALIBRATIONS = ("platt", "none")


@dataclass
class TransferConfig:
    epochs: int = 30
    batch_size: int = 256
    lr: float = 1e-4
    weight_decay: float = 1e-4
    w_bulk: float = 1.0
    w_mmd: float = 1.0
    w_cluster: float = 0.5
    pretrained: bool = True
    n_ensemble: int = 3
    calibration: str = "platt"
    threshold_rule: str = "fixed"
    threshold: float = 0.5
    min_gene_overlap: int = 200
    max_cells_per_epoch: int = 20_000
    seed: int = 0


@dataclass
class TransferResult:
    prob: np.ndarray                 # mean over ensemble members (calibrated on bulk validation lines)
    prob_sd: np.ndarray              # spread over members (uncertainty)
    member_probs: np.ndarray         # members × cells
    embedding: np.ndarray            # first member's cell embedding
    genes: list[str]
    history: list[dict] = field(default_factory=list)
    cell_model: dict = field(default_factory=dict)


class BulkSide:
    """Bulk lines on the shared genes, standardised with training-line statistics."""

    def __init__(self, bulk: ad.AnnData, genes: list[str], device: torch.device):
        bulk = bulk[:, genes]
        split = bulk.obs["split"].to_numpy()
        train, stats = model_features(bulk.X[split == "train"])
        val = model_features(bulk.X[split == "val"], stats)[0]
        y = bulk.obs["label"].to_numpy().astype(np.float32)
        r = line_responses(bulk)
        self.x = torch.from_numpy(train).to(device)
        self.y = torch.from_numpy(y[split == "train"]).to(device)
        self.r = torch.from_numpy(r[split == "train"]).to(device)
        self.x_val = torch.from_numpy(val).to(device)
        self.y_val = y[split == "val"]
        n_pos = float(self.y.sum())
        self.pos_weight = torch.tensor((len(self.y) - n_pos) / max(n_pos, 1.0), device=device)

    def sample(self, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        idx = torch.randint(len(self.x), (n,), generator=gen).to(self.x.device)
        return self.x[idx], self.y[idx], self.r[idx]


def transfer_and_predict(model: BulkModel, bulk: ad.AnnData, cells: ad.AnnData, cfg: TransferConfig,
                         device: torch.device, what: str = "sample") -> TransferResult:
    """Train `cfg.n_ensemble` transfer models (seeds seed, seed+1, …) and predict every cell."""
    cell_index = align_genes(list(cells.var_names), model.genes, cfg.min_gene_overlap, what)
    genes = [str(cells.var_names[i]) for i in cell_index]
    model_pos = {g: i for i, g in enumerate(model.genes)}
    gene_pos_model = torch.tensor([model_pos[g] for g in genes])
    features = CellFeatures(cells.X, cell_index)
    side = BulkSide(bulk, genes, device)
    codes = cells.obs["cluster"].astype("category").cat.codes.to_numpy().astype(np.int64)
    clusters = torch.from_numpy(codes).to(device)  # on the device once; batches index it there
    members, history, first = [], [], None
    calibrations = []
    for k in range(cfg.n_ensemble):
        enc_b, enc_c, pred, curve = train_member(model, gene_pos_model, side, features, clusters, cfg, device,
                                                 cfg.seed + k)
        history += [{**row, "member": k} for row in curve]
        slope, intercept = (platt_scaling(bulk_logits(enc_b, pred, side.x_val), side.y_val)
                            if cfg.calibration == "platt" else (1.0, 0.0))
        calibrations.append({"slope": slope, "intercept": intercept})
        logit, emb = predict_cells(enc_c, pred, features, device)
        members.append(sigmoid(slope * logit + intercept))
        if first is None:
            first = (enc_c, pred, emb)
    member_probs = np.vstack(members)
    enc_c, pred, emb = first
    cell_model = {"genes": genes, "encoder": enc_c.cpu().state_dict(), "predictor": pred.cpu().state_dict(),
                  "hidden": list(model.config.hidden), "predictor_hidden": list(model.config.predictor_hidden),
                  "latent": model.config.latent, "variational": model.config.encoder == "vae",
                  "gene_mean": torch.from_numpy(features.mean), "gene_sd": torch.from_numpy(features.sd),
                  "calibration": calibrations}
    return TransferResult(prob=member_probs.mean(0), prob_sd=member_probs.std(0), member_probs=member_probs,
                          embedding=emb, genes=genes, history=history, cell_model=cell_model)


def initial_networks(model: BulkModel, gene_pos: torch.Tensor, cfg: TransferConfig):
    """Bulk encoder on the shared genes, a copy of it for cells, the bulk predictor and regressor."""
    if cfg.pretrained:
        enc_b, pred, reg = model.encoder, model.predictor, model.regressor
    else:  # ablation: same architecture, random weights
        enc_b, _, pred, reg = build_networks(len(model.genes), model.config)
    enc_b = encoder_on_genes(enc_b, gene_pos)
    return enc_b, copy.deepcopy(enc_b), copy.deepcopy(pred), copy.deepcopy(reg)


def train_member(model: BulkModel, gene_pos, side: BulkSide, features: CellFeatures, clusters: torch.Tensor,
                 cfg: TransferConfig, device: torch.device, seed: int):
    seed_everything(seed)
    enc_b, enc_c, pred, reg = (m.to(device) for m in initial_networks(model, gene_pos, cfg))
    w_response = model.config.w_response
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
        for idx in epoch_batches(features.n, len(side.x), batch, gen, cfg.max_cells_per_epoch):
            xc = features.batch(idx.numpy(), device)
            xb, yb, rb = side.sample(batch, gen)
            with autocast(device):
                zb, zc = enc_b(xb), enc_c(xc)
                bulk_terms = response_terms(pred, reg, zb, yb, rb, side.pos_weight, w_response)
                terms = {"bulk": bulk_terms["bce"], "bulk_response": bulk_terms.get("response_mse", zb.new_zeros(())),
                         "mmd": mmd(zb, zc),
                         "cluster": cluster_loss(zc, clusters[idx.to(device, non_blocking=True)], n_clusters)}
            loss = (cfg.w_bulk * weighted_response_loss(bulk_terms, w_response) + cfg.w_mmd * terms["mmd"]
                    + cfg.w_cluster * terms["cluster"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            for name, value in terms.items():
                sums[name] = sums.get(name, 0.0) + value.detach().float()
            steps += 1
        row = {"epoch": epoch, **{k: float(v) / max(steps, 1) for k, v in sums.items()}}
        row["bulk_val_auroc"] = bulk_val_auroc(enc_b, pred, side)
        row["seconds"] = time.perf_counter() - started
        curve.append(row)
        bar.set_postfix({k: f"{v:.3f}" for k, v in row.items() if k != "epoch"})
    if curve:
        log.info("transfer seed %d: last epoch %s", seed, {k: round(v, 4) for k, v in curve[-1].items()})
    return enc_b, enc_c, pred, curve


def epoch_batches(n_cells: int, n_bulk: int, batch: int, gen: torch.Generator, max_cells: int):
    """Cell batches of one epoch: enough steps to see every cell (at most `max_cells`, drawn at random,
    so training cost stops growing with sample size) and as many samples as there are bulk training
    lines (small samples cycle through their cells more than once)."""
    steps = max(1, -(-max(min(n_cells, max_cells), n_bulk) // batch))
    order = torch.cat([torch.randperm(n_cells, generator=gen) for _ in range(-(-steps * batch // n_cells))])
    for step in range(steps):
        yield order[step * batch:(step + 1) * batch]


@torch.no_grad()
def bulk_logits(enc_b, pred, x: torch.Tensor) -> np.ndarray:
    enc_b.eval(), pred.eval()
    return pred(enc_b(x)).float().cpu().numpy()


def bulk_val_auroc(enc_b, pred, side: BulkSide) -> float:
    if len(np.unique(side.y_val)) < 2:
        return float("nan")
    return float(roc_auc_score(side.y_val, bulk_logits(enc_b, pred, side.x_val)))


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
        log.warning("calibration skipped: the transferred model does not rank bulk validation lines above chance")
        return 1.0, 0.0
    return slope, intercept


def sigmoid(x: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))).astype(np.float32)


@torch.no_grad()
def predict_cells(enc_c, pred, features: CellFeatures, device) -> tuple[np.ndarray, np.ndarray]:
    """Logit of sensitivity and embedding of every cell, block by block."""
    enc_c.eval(), pred.eval()
    logits, embs = [], []
    for idx in features.blocks():
        with autocast(device):
            z = enc_c(features.batch(idx, device))
            logits.append(pred(z).float().cpu().numpy())
        embs.append(z.float().cpu().numpy())
    return np.concatenate(logits), np.concatenate(embs)


def threshold_for(rule: str, prob: np.ndarray, fixed: float, bulk_sensitive_fraction: float) -> float:
    """Label threshold: a fixed probability; the quantile that makes the predicted sensitive fraction
    equal to the fraction of sensitive lines in the bulk training data; or Otsu's split of the
    probabilities into two groups (data-driven, for samples expected to hold two populations)."""
    if rule == "fixed":
        return fixed
    if rule == "bulk_prevalence":
        return float(np.quantile(prob, 1 - bulk_sensitive_fraction))
    if rule == "otsu":
        return otsu_threshold(prob)
    raise InputError(f"Unknown threshold rule '{rule}': choose one of {', '.join(THRESHOLD_RULES)}.")


def otsu_threshold(prob: np.ndarray, bins: int = 256) -> float:
    """The probability that maximises the between-group variance of the two groups it makes."""
    hist, edges = np.histogram(prob, bins=bins, range=(float(np.min(prob)), float(np.max(prob)) + 1e-9))
    centres = (edges[:-1] + edges[1:]) / 2
    weight = np.cumsum(hist) / max(hist.sum(), 1)
    mean_low = np.cumsum(hist * centres) / np.maximum(np.cumsum(hist), 1)
    total_mean = (hist * centres).sum() / max(hist.sum(), 1)
    mean_high = (total_mean - weight * mean_low) / np.maximum(1 - weight, 1e-12)
    between = weight * (1 - weight) * (mean_low - mean_high) ** 2
    return float(edges[int(np.argmax(between[:-1])) + 1])
