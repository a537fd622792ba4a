"""Bulk pretraining (autoencoder, then response heads with one output per drug) and the bulk model's checkpoint.

A single drug is a panel of one: labels and responses are lines × drugs (NaN where a line was not measured),
the losses skip unmeasured pairs and weight each drug's classes on its own. Every loss term is a named
number, logged per epoch, so training curves and ablations come for free.
"""
from __future__ import annotations

import copy
import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Literal, get_args

import numpy as np
import torch
from tqdm.auto import tqdm

from .._utils import batch_slices, setting
from ..data.bulkdata import BulkData
from ..data.features import model_features
from ..data.writers import atomic_path
from ..errors import InputError
from .device import adam, autocast, seed_everything
from .metrics import binary_metrics, column_spearman
from .networks import Decoder, Encoder, EncoderKind, Head, autoencoder_loss, response_terms, weighted_response_loss

__all__ = ["CHECKPOINT_FORMAT", "IMBALANCE", "SPLITS", "BulkConfig", "BulkModel", "EarlyStopping", "Imbalance",
           "build_networks", "class_weight", "drug_metrics", "head_outputs", "load_checkpoint", "load_tagged",
           "predict_proba", "pretrain_bulk", "resample_training_lines", "save_checkpoint", "shuffled_batches",
           "train_autoencoder", "train_predictor"]

log = logging.getLogger(__name__)
CHECKPOINT_FORMAT = "scdeal-bulk-model/4"
SPLITS = ("train", "val", "test")
Imbalance = Literal["weight", "upsample", "smote", "none"]
IMBALANCE: tuple[str, ...] = get_args(Imbalance)


@dataclass(frozen=True)
class BulkConfig:
    """Architecture and training of the bulk model (the bulk_pretrain step's flags)."""

    encoder: EncoderKind = setting("dae", "ae, dae (denoising) or vae")
    hidden_dims: tuple[int, ...] = setting((256, 128), "encoder hidden layer sizes, comma-separated")
    latent_dim: int = setting(64, "bottleneck size", minimum=2)
    predictor_hidden_dims: tuple[int, ...] = setting(
        (64,), "hidden layer sizes of the classifier and the regressor heads, comma-separated (a screen's heads "
               "have none: one linear output per drug on the shared bottleneck)")
    dropout: float = setting(0.2, "dropout in every hidden layer", minimum=0, maximum=0.9)
    noise: float = setting(0.2, "dae: fraction of input values zeroed in each training batch", minimum=0, maximum=0.9)
    kl_weight: float = setting(1e-3, "vae: weight of the KL term", minimum=0)
    lr: float = setting(1e-3, "Adam learning rate", minimum=0)
    weight_decay: float = setting(1e-4, "Adam weight decay", minimum=0)
    batch_size: int = setting(64, "bulk lines per step", minimum=2)
    ae_epochs: int = setting(60, "autoencoder epochs at most (early stopping on validation lines)", minimum=1)
    predictor_epochs: int = setting(60, "predictor epochs at most (early stopping on validation lines)", minimum=1)
    patience: int = setting(10, "early-stopping patience on validation loss (epochs)", minimum=1)
    imbalance: Imbalance = setting("weight", "class imbalance handling, fit on training lines only")
    w_response: float = setting(0.5, "weight of the auxiliary regression of the continuous response (0: off)", minimum=0)
    seed: int = setting(0, "random seed")


@dataclass
class BulkModel:
    """Everything needed to apply a trained bulk model to new data, from any path."""

    drugs: list[str]
    genes: list[str]
    gene_mean: np.ndarray
    gene_sd: np.ndarray
    config: BulkConfig
    encoder: Encoder
    decoder: Decoder
    predictor: Head                  # lines × drugs logits of sensitivity
    regressor: Head                  # lines × drugs continuous responses (auxiliary)
    metrics: list[dict] = field(default_factory=list)   # per drug: lines, held-out validation and test figures
    history: list[dict] = field(default_factory=list)


def build_networks(n_genes: int, cfg: BulkConfig, n_drugs: int = 1) -> tuple[Encoder, Decoder, Head, Head]:
    """Encoder, decoder, response classifier and the auxiliary continuous-response regressor (one output
    per drug)."""
    enc = Encoder(n_genes, cfg.hidden_dims, cfg.latent_dim, dropout=cfg.dropout, variational=cfg.encoder == "vae")
    dec = Decoder(n_genes, cfg.hidden_dims, cfg.latent_dim, dropout=cfg.dropout)
    pred = Head(cfg.latent_dim, cfg.predictor_hidden_dims, dropout=cfg.dropout, n_out=n_drugs)
    reg = Head(cfg.latent_dim, cfg.predictor_hidden_dims, dropout=cfg.dropout, n_out=n_drugs)
    return enc, dec, pred, reg


def shuffled_batches(n: int, size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """The indices 0..n-1 in an order drawn from `generator`, `size` at a time."""
    order = torch.randperm(n, generator=generator)
    return (order[s] for s in batch_slices(n, size))


def resample_training_lines(x: np.ndarray, y: np.ndarray, r: np.ndarray, *, strata: np.ndarray | None = None,
                            how: Imbalance, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Class-imbalance resampling of training lines (features, labels and responses, lines × drugs) within the
    classes of `strata` (one drug's labels; a screen's lines, or None, are one stratum and are left as they are).

    Copies keep their line's labels and responses; SMOTE's synthetic lines take their stratum as label and
    have no response (NaN). `weight` and `none` leave the lines as they are (`weight` acts on the loss).

    Raises:
        ValueError: `how` is not one of IMBALANCE.
    """
    if how not in IMBALANCE:
        raise ValueError(f"unknown imbalance handling '{how}': choose one of {', '.join(IMBALANCE)}")
    if how in ("weight", "none"):
        return x, y, r
    if strata is None or len(np.unique(strata)) < 2:
        log.warning("--imbalance %s resamples the classes the lines were split in; a screen's lines carry every drug, "
                    "so its classes are weighted per drug instead", how)
        return x, y, r
    if how == "upsample":
        from imblearn.over_sampling import RandomOverSampler
        sampler = RandomOverSampler(random_state=seed)
        xs, _ = sampler.fit_resample(x, strata)
        return xs, y[sampler.sample_indices_], r[sampler.sample_indices_]
    from imblearn.over_sampling import SMOTE
    k = max(1, min(5, int(np.bincount(strata).min()) - 1))
    xs, ys = SMOTE(random_state=seed, k_neighbors=k).fit_resample(x, strata)  # originals first, then synthetic
    synthetic = np.repeat(ys[len(y):, None].astype(np.float32), y.shape[1], axis=1)
    return xs, np.vstack([y, synthetic]), np.vstack([r, np.full_like(synthetic, np.nan)])


def class_weight(y: np.ndarray, imbalance: Imbalance) -> np.ndarray:
    """BCE weight of the sensitive class per drug (lines × drugs labels, NaN unmeasured): resistant /
    sensitive lines with `weight`, else 1."""
    if imbalance != "weight":
        return np.ones(y.shape[1], np.float32)
    return ((y == 0).sum(0) / np.maximum((y == 1).sum(0), 1)).astype(np.float32)


class EarlyStopping:
    """Keeps the best state of `modules` by a monitored value (lower is better)."""

    def __init__(self, patience: int, modules: list[torch.nn.Module]):
        self.patience, self.modules = patience, modules
        self.best, self.bad, self.state = float("inf"), 0, None

    def step(self, value: float) -> bool:
        """Record one epoch's monitored value; True once `patience` epochs passed without improvement."""
        if value < self.best - 1e-6:
            self.best, self.bad = value, 0
            self.state = [copy.deepcopy(m.state_dict()) for m in self.modules]
        else:
            self.bad += 1
        return self.bad >= self.patience

    def restore(self) -> None:
        """Load the best state seen back into the modules."""
        if self.state is not None:
            for m, s in zip(self.modules, self.state, strict=True):
                m.load_state_dict(s)


def pretrain_bulk(bulk: BulkData, cfg: BulkConfig, device: torch.device) -> BulkModel:
    """Autoencoder on the bulk lines, then every drug's heads with the encoder fine-tuned, early-stopped on
    the validation lines; per-drug metrics on validation and held-out test lines."""
    seed_everything(cfg.seed)
    split = bulk.split
    train_x, stats = model_features(bulk.expression()[split == "train"])  # gene statistics from training lines only
    feats = {s: model_features(bulk.expression()[split == s], stats)[0] for s in ("val", "test")} | {"train": train_x}
    labels = {s: bulk.labels[split == s] for s in SPLITS}
    responses = {s: bulk.responses[split == s] for s in SPLITS}
    enc, dec, pred, reg = (m.to(device) for m in build_networks(len(bulk.genes), cfg, n_drugs=len(bulk.drugs)))
    history = train_autoencoder(enc, dec, feats, cfg=cfg, device=device)
    history += train_predictor(enc, pred, reg, feats=feats, labels=labels, responses=responses,
                               strata=bulk.strata[split == "train"], cfg=cfg, device=device)
    metrics = drug_metrics(enc, pred, reg, feats=feats, labels=labels, responses=responses, drugs=bulk.drugs,
                           device=device)
    log.info("bulk model: %d drugs, median held-out test AUROC %.3f", len(bulk.drugs),
             float(np.nanmedian([m["test"].get("auroc", np.nan) for m in metrics])))
    return BulkModel(drugs=list(bulk.drugs), genes=bulk.genes, gene_mean=stats[0], gene_sd=stats[1], config=cfg,
                     encoder=enc.cpu(), decoder=dec.cpu(), predictor=pred.cpu(), regressor=reg.cpu(), metrics=metrics,
                     history=history)


def drug_metrics(enc: Encoder, pred: Head, reg: Head, *, feats: dict, labels: dict, responses: dict,
                 drugs: list[str], device: torch.device) -> list[dict]:
    """Per drug: measured lines, the classifier's metrics on its measured validation and test lines
    (`val`, `test`: see `binary_metrics`; empty where none is measured) and the test Spearman of the
    regressor with the measured continuous response."""
    prob = {s: predict_proba(enc, pred, feats[s], device=device) for s in ("val", "test")}
    test_rho = column_spearman(responses["test"], head_outputs(enc, reg, feats["test"], device=device))
    every = np.vstack([labels[s] for s in SPLITS])

    def measured(s: str, d: int) -> dict:
        rows = ~np.isnan(labels[s][:, d])
        return binary_metrics(labels[s][rows, d], prob[s][rows, d]) if rows.any() else {}

    return [{"drug": drug, "n_lines": int((~np.isnan(every[:, d])).sum()), "n_sensitive": int((every[:, d] == 1).sum()),
             "train_prevalence": float(np.nanmean(labels["train"][:, d].astype(np.float64))),
             "val": measured("val", d), "test": measured("test", d), "test_spearman": float(test_rho[d])}
            for d, drug in enumerate(drugs)]


def train_autoencoder(enc: Encoder, dec: Decoder, feats: dict, *, cfg: BulkConfig, device: torch.device) -> list[dict]:
    """Train the autoencoder on `feats['train']`, early-stopped on the reconstruction of `feats['val']`.

    Returns:
        One history row per epoch (`stage`, `epoch`, `val_recon`).
    """
    params = list(enc.parameters()) + list(dec.parameters())
    opt = adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)
    xt, xv = (torch.from_numpy(feats[s]).to(device) for s in ("train", "val"))
    stopper, history = EarlyStopping(cfg.patience, [enc, dec]), []
    for epoch in (bar := tqdm(range(cfg.ae_epochs), desc="bulk autoencoder", leave=False, disable=None)):
        enc.train(), dec.train()
        for idx in shuffled_batches(len(xt), cfg.batch_size, gen):
            loss = sum(autoencoder_loss(enc, dec, xt[idx.to(device)], kind=cfg.encoder, noise=cfg.noise,
                                        kl_weight=cfg.kl_weight).values())
            opt.zero_grad()
            loss.backward()
            opt.step()
        enc.eval(), dec.eval()
        with torch.no_grad():
            val = float(sum(autoencoder_loss(enc, dec, xv, kind="ae", noise=0.0, kl_weight=cfg.kl_weight).values()))
        history.append({"stage": "autoencoder", "epoch": epoch, "val_recon": val})
        bar.set_postfix(val_recon=f"{val:.4f}")
        if stopper.step(val):
            break
    stopper.restore()
    return history


def train_predictor(enc: Encoder, pred: Head, reg: Head, *, feats: dict, labels: dict, responses: dict,
                    strata: np.ndarray, cfg: BulkConfig, device: torch.device) -> list[dict]:
    """Train the classifier and regressor heads with the encoder fine-tuned, early-stopped on validation loss.

    Args:
        enc: The encoder (trained further).
        pred: The sensitivity classifier head.
        reg: The continuous-response regressor head.
        feats: Model features of the `train` and `val` lines.
        labels: Lines × drugs, 1 sensitive / 0 resistant / NaN unmeasured, of the `train` and `val` lines.
        responses: Lines × drugs continuous responses (NaN where none) of the `train` and `val` lines.
        strata: The classes the training lines were split in (what `--imbalance` resampling balances).
        cfg: `imbalance`, `lr`, `weight_decay`, `batch_size`, `predictor_epochs`, `patience`, `w_response`, `seed`.
        device: Where to train.

    Returns:
        One history row per epoch (`stage`, `epoch`, `val_loss` and each validation loss term).
    """
    x, y, r = resample_training_lines(feats["train"], labels["train"], responses["train"], strata=strata, how=cfg.imbalance,
                                      seed=cfg.seed)
    pos_weight = torch.as_tensor(class_weight(y, cfg.imbalance), dtype=torch.float32, device=device)

    def tensor(values) -> torch.Tensor:
        return torch.from_numpy(np.asarray(values, np.float32)).to(device)

    xt, yt, rt = tensor(x), tensor(y), tensor(r)
    xv, yv, rv = tensor(feats["val"]), tensor(labels["val"]), tensor(responses["val"])
    params = list(enc.parameters()) + list(pred.parameters()) + list(reg.parameters())
    opt = adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    stopper, history = EarlyStopping(cfg.patience, [enc, pred, reg]), []
    for epoch in (bar := tqdm(range(cfg.predictor_epochs), desc="bulk predictor", leave=False, disable=None)):
        enc.train(), pred.train(), reg.train()
        for idx in shuffled_batches(len(xt), cfg.batch_size, gen):
            idx = idx.to(device)
            terms = response_terms(pred, reg, enc(xt[idx]), label=yt[idx], response=rt[idx], pos_weight=pos_weight,
                             w_response=cfg.w_response)
            loss = weighted_response_loss(terms, cfg.w_response)
            opt.zero_grad()
            loss.backward()
            opt.step()
        enc.eval(), pred.eval(), reg.eval()
        with torch.no_grad():
            terms = response_terms(pred, reg, enc(xv), label=yv, response=rv, pos_weight=pos_weight,
                             w_response=cfg.w_response)
        val = float(weighted_response_loss(terms, cfg.w_response))
        history.append({"stage": "predictor", "epoch": epoch, "val_loss": val,
                        **{f"val_{k}": float(v) for k, v in terms.items()}})
        bar.set_postfix(val_loss=f"{val:.4f}")
        if stopper.step(val):
            break
    stopper.restore()
    return history


@torch.no_grad()
def head_outputs(enc: Encoder, head: Head, x: np.ndarray, *, device: torch.device, batch: int = 4096) -> np.ndarray:
    """Rows × drugs outputs of `head` on the model features `x`, `batch` rows at a time."""
    enc.eval(), head.eval()
    out = []
    for rows in batch_slices(len(x), batch):
        xb = torch.from_numpy(np.ascontiguousarray(x[rows])).to(device)
        with autocast(device):
            out.append(head(enc(xb)).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, head.out.out_features), np.float32)


def predict_proba(enc: Encoder, pred: Head, x: np.ndarray, *, device: torch.device) -> np.ndarray:
    """Rows × drugs probability of sensitivity (uncalibrated) of the model features `x`."""
    return torch.sigmoid(torch.from_numpy(head_outputs(enc, pred, x, device=device))).numpy()


# ---------------------------------------------------------------- checkpoint

def save_checkpoint(model: BulkModel, path, provenance: dict) -> None:
    """Write `model` as a self-describing checkpoint (format CHECKPOINT_FORMAT), atomically.

    The drugs, weights, genes and gene statistics, the `bulk_config`, metrics, history and `provenance`
    are stored; `load_checkpoint` restores the model from any path.
    """
    payload = {"format": CHECKPOINT_FORMAT, "drugs": model.drugs, "genes": model.genes,
               "gene_mean": torch.from_numpy(model.gene_mean), "gene_sd": torch.from_numpy(model.gene_sd),
               "bulk_config": asdict(model.config), "encoder": model.encoder.state_dict(),
               "decoder": model.decoder.state_dict(), "predictor": model.predictor.state_dict(),
               "regressor": model.regressor.state_dict(), "metrics": model.metrics, "history": model.history,
               "provenance": provenance}
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(payload, tmp)


def load_tagged(path, tag: str, what: str) -> dict:
    """The payload of a saved model whose `format` is `tag`, loaded on the CPU (tensors and plain types only).

    Raises:
        InputError: the file cannot be read, or is not a `what` of this format.
    """
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError) as err:
        raise InputError(f"{what.capitalize()} '{path}' could not be loaded: {err}") from err
    if not isinstance(payload, dict) or payload.get("format") != tag:
        raise InputError(f"'{path}' is not a scdeal {what} (expected format {tag}).")
    return payload


def load_checkpoint(path) -> BulkModel:
    """The bulk model saved by `save_checkpoint`.

    Raises:
        InputError: the file cannot be read, or is not a bulk model of this format.
    """
    payload = load_tagged(path, CHECKPOINT_FORMAT, "bulk model")
    saved = payload["bulk_config"]
    cfg = BulkConfig(**{**saved, "hidden_dims": tuple(saved["hidden_dims"]),
                        "predictor_hidden_dims": tuple(saved["predictor_hidden_dims"])})
    networks = build_networks(len(payload["genes"]), cfg, n_drugs=len(payload["drugs"]))
    for module, key in zip(networks, ("encoder", "decoder", "predictor", "regressor"), strict=True):
        module.load_state_dict(payload[key])
    return BulkModel(list(payload["drugs"]), list(payload["genes"]), payload["gene_mean"].numpy(),
                     payload["gene_sd"].numpy(), cfg, *networks, metrics=payload["metrics"], history=payload["history"])
