"""Training loops: bulk pretraining (autoencoder, then response predictor) and bulk → cell transfer.

Every loss term is a named number, logged per epoch, so training curves and ablations come for free.
"""
from __future__ import annotations

import copy
import logging
from dataclasses import asdict, dataclass, field

import anndata as ad
import numpy as np
import torch
from torch.nn import functional as F
from tqdm.auto import tqdm

from ..data.features import model_features
from ..errors import InputError
from ..tl.evaluate import binary_metrics
from .device import autocast, seed_everything
from .networks import Decoder, Encoder, Predictor, autoencoder_loss

log = logging.getLogger(__name__)
CHECKPOINT_FORMAT = "scdeal-bulk-model/2"


@dataclass
class BulkConfig:
    encoder: str = "dae"
    hidden: tuple[int, ...] = (256, 128)
    latent: int = 64
    predictor_hidden: tuple[int, ...] = (64,)
    dropout: float = 0.2
    noise: float = 0.2
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 64
    ae_epochs: int = 60
    predictor_epochs: int = 60
    patience: int = 10
    imbalance: str = "weight"
    w_response: float = 0.5
    seed: int = 0


@dataclass
class BulkModel:
    """Everything needed to apply a trained bulk model to new data, from any path."""
    drug: str
    genes: list[str]
    gene_mean: np.ndarray
    gene_sd: np.ndarray
    config: BulkConfig
    encoder: Encoder
    decoder: Decoder
    predictor: Predictor
    regressor: Predictor
    metrics: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    sensitive_fraction: float = 0.5


def build_networks(n_genes: int, cfg: BulkConfig) -> tuple[Encoder, Decoder, Predictor, Predictor]:
    """Encoder, decoder, response classifier and the auxiliary continuous-response regressor."""
    enc = Encoder(n_genes, cfg.hidden, cfg.latent, cfg.dropout, variational=cfg.encoder == "vae")
    dec = Decoder(n_genes, cfg.hidden, cfg.latent, cfg.dropout)
    pred = Predictor(cfg.latent, cfg.predictor_hidden, cfg.dropout)
    reg = Predictor(cfg.latent, cfg.predictor_hidden, cfg.dropout)
    return enc, dec, pred, reg


def masked_mse(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the lines that have a continuous response (NaN elsewhere); 0 if none.
    Masked arithmetic rather than boolean indexing: no host synchronisation on a GPU."""
    valid = ~torch.isnan(target)
    diff = torch.where(valid, output.float() - torch.nan_to_num(target), torch.zeros_like(target))
    return diff.pow(2).sum() / valid.sum().clamp(min=1)


def line_responses(bulk: ad.AnnData) -> np.ndarray:
    """Each line's z-scored continuous response (NaN where it has none, or the tables have none)."""
    if "response_z" not in bulk.obs:
        return np.full(bulk.n_obs, np.nan, np.float32)
    return bulk.obs["response_z"].to_numpy(np.float32)


def response_targets(bulk: ad.AnnData, split: np.ndarray) -> dict[str, np.ndarray]:
    z = line_responses(bulk)
    return {s: z[split == s] for s in ("train", "val", "test")}


def _batches(n: int, size: int, generator: torch.Generator):
    order = torch.randperm(n, generator=generator)
    for start in range(0, n, size):
        yield order[start:start + size]


def resample_training_lines(x: np.ndarray, y: np.ndarray, r: np.ndarray, how: str,
                            seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Class-imbalance resampling of training lines (features, label, continuous response).
    Copies keep their line's response; SMOTE's synthetic lines have none (NaN)."""
    if how == "upsample":
        from imblearn.over_sampling import RandomOverSampler
        sampler = RandomOverSampler(random_state=seed)
        xs, ys = sampler.fit_resample(x, y)
        return xs, ys, r[sampler.sample_indices_]
    if how == "smote":
        from imblearn.over_sampling import SMOTE
        k = max(1, min(5, int(np.bincount(y).min()) - 1))
        xs, ys = SMOTE(random_state=seed, k_neighbors=k).fit_resample(x, y)  # originals first, then synthetic
        return xs, ys, np.concatenate([r, np.full(len(ys) - len(r), np.nan, np.float32)])
    return x, y, r


class EarlyStopping:
    """Keeps the best state of `modules` by a monitored value (lower is better)."""

    def __init__(self, patience: int, modules: list[torch.nn.Module]):
        self.patience, self.modules = patience, modules
        self.best, self.bad, self.state = float("inf"), 0, None

    def step(self, value: float) -> bool:
        if value < self.best - 1e-6:
            self.best, self.bad = value, 0
            self.state = [copy.deepcopy(m.state_dict()) for m in self.modules]
        else:
            self.bad += 1
        return self.bad >= self.patience

    def restore(self) -> None:
        if self.state is not None:
            for m, s in zip(self.modules, self.state):
                m.load_state_dict(s)


def pretrain_bulk(bulk: ad.AnnData, cfg: BulkConfig, device: torch.device, drug: str) -> BulkModel:
    """Autoencoder on bulk lines, then the predictor (encoder fine-tuned), early-stopped on validation."""
    seed_everything(cfg.seed)
    split = bulk.obs["split"].to_numpy()
    y = bulk.obs["label"].to_numpy().astype(np.int64)
    train_x, stats = model_features(bulk.X[split == "train"])  # gene statistics from training lines only
    feats = {s: model_features(bulk.X[split == s], stats)[0] for s in ("val", "test")}
    feats["train"] = train_x
    labels = {s: y[split == s] for s in ("train", "val", "test")}
    enc, dec, pred, reg = (m.to(device) for m in build_networks(bulk.n_vars, cfg))
    history = train_autoencoder(enc, dec, feats, cfg, device)
    history += train_predictor(enc, pred, reg, feats, labels, response_targets(bulk, split), cfg, device)
    metrics = {s: binary_metrics(labels[s], predict_proba(enc, pred, feats[s], device)) for s in ("val", "test")}
    log.info("bulk %s held-out test: AUROC %.3f AP %.3f F1 %.3f", drug, metrics["test"]["auroc"],
             metrics["test"]["ap"], metrics["test"]["f1"])
    return BulkModel(drug=drug, genes=list(map(str, bulk.var_names)), gene_mean=stats[0], gene_sd=stats[1],
                     config=cfg, encoder=enc.cpu(), decoder=dec.cpu(), predictor=pred.cpu(), regressor=reg.cpu(),
                     metrics=metrics,
                     history=history, sensitive_fraction=float(labels["train"].mean()))


def train_autoencoder(enc: Encoder, dec: Decoder, feats: dict, cfg: BulkConfig, device) -> list[dict]:
    params = list(enc.parameters()) + list(dec.parameters())
    opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)
    xt, xv = (torch.from_numpy(feats[s]).to(device) for s in ("train", "val"))
    stopper, history = EarlyStopping(cfg.patience, [enc, dec]), []
    for epoch in (bar := tqdm(range(cfg.ae_epochs), desc="bulk autoencoder", leave=False, disable=None)):
        enc.train(), dec.train()
        for idx in _batches(len(xt), cfg.batch_size, gen):
            loss = sum(autoencoder_loss(enc, dec, xt[idx.to(device)], cfg.encoder, cfg.noise).values())
            opt.zero_grad()
            loss.backward()
            opt.step()
        enc.eval(), dec.eval()
        with torch.no_grad():
            val = float(sum(autoencoder_loss(enc, dec, xv, "ae", 0.0).values()))
        history.append({"stage": "autoencoder", "epoch": epoch, "val_recon": val})
        bar.set_postfix(val_recon=f"{val:.4f}")
        if stopper.step(val):
            break
    stopper.restore()
    return history


def response_terms(pred: Predictor, reg: Predictor, z: torch.Tensor, y: torch.Tensor, r: torch.Tensor,
                   pos_weight: torch.Tensor, w_response: float) -> dict[str, torch.Tensor]:
    """On bulk embeddings `z`: weighted BCE of the binary label and, when weighted, the auxiliary
    regression of the continuous response. Shared by pretraining and the transfer's bulk term."""
    terms = {"bce": F.binary_cross_entropy_with_logits(pred(z).float(), y, pos_weight=pos_weight)}
    if w_response > 0:
        terms["response_mse"] = masked_mse(reg(z), r)
    return terms


def weighted_response_loss(terms: dict[str, torch.Tensor], w_response: float) -> torch.Tensor:
    return terms["bce"] + w_response * terms.get("response_mse", 0.0)


def train_predictor(enc: Encoder, pred: Predictor, reg: Predictor, feats: dict, labels: dict, responses: dict,
                    cfg: BulkConfig, device) -> list[dict]:
    x, y, r = resample_training_lines(feats["train"], labels["train"], responses["train"], cfg.imbalance, cfg.seed)
    pos_weight = torch.tensor(float((y == 0).sum()) / max((y == 1).sum(), 1) if cfg.imbalance == "weight" else 1.0,
                              device=device)
    tensor = lambda a: torch.from_numpy(np.asarray(a, np.float32)).to(device)  # noqa: E731
    xt, yt, rt = tensor(x), tensor(y), tensor(r)
    xv, yv, rv = tensor(feats["val"]), tensor(labels["val"]), tensor(responses["val"])
    params = list(enc.parameters()) + list(pred.parameters()) + list(reg.parameters())
    opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    stopper, history = EarlyStopping(cfg.patience, [enc, pred, reg]), []
    for epoch in (bar := tqdm(range(cfg.predictor_epochs), desc="bulk predictor", leave=False, disable=None)):
        enc.train(), pred.train(), reg.train()
        for idx in _batches(len(xt), cfg.batch_size, gen):
            idx = idx.to(device)
            terms = response_terms(pred, reg, enc(xt[idx]), yt[idx], rt[idx], pos_weight, cfg.w_response)
            loss = weighted_response_loss(terms, cfg.w_response)
            opt.zero_grad()
            loss.backward()
            opt.step()
        enc.eval(), pred.eval(), reg.eval()
        with torch.no_grad():
            terms = response_terms(pred, reg, enc(xv), yv, rv, pos_weight, cfg.w_response)
        val = float(weighted_response_loss(terms, cfg.w_response))
        history.append({"stage": "predictor", "epoch": epoch, "val_loss": val,
                        **{f"val_{k}": float(v) for k, v in terms.items()}})
        bar.set_postfix(val_loss=f"{val:.4f}")
        if stopper.step(val):
            break
    stopper.restore()
    return history


@torch.no_grad()
def predict_proba(enc: Encoder, pred: Predictor, x: np.ndarray, device, batch: int = 4096) -> np.ndarray:
    enc.eval(), pred.eval()
    out = []
    for start in range(0, len(x), batch):
        xb = torch.from_numpy(np.ascontiguousarray(x[start:start + batch])).to(device)
        with autocast(device):
            out.append(torch.sigmoid(pred(enc(xb)).float()).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, np.float32)


# ---------------------------------------------------------------- checkpoint

def save_checkpoint(model: BulkModel, path, provenance: dict) -> None:
    from ..data.writers import atomic_path
    payload = {"format": CHECKPOINT_FORMAT, "drug": model.drug, "genes": model.genes,
               "gene_mean": torch.from_numpy(model.gene_mean), "gene_sd": torch.from_numpy(model.gene_sd),
               "config": asdict(model.config), "encoder": model.encoder.state_dict(),
               "decoder": model.decoder.state_dict(), "predictor": model.predictor.state_dict(),
               "regressor": model.regressor.state_dict(),
               "metrics": model.metrics, "history": model.history,
               "sensitive_fraction": model.sensitive_fraction, "provenance": provenance}
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path) -> BulkModel:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError) as err:
        raise InputError(f"Bulk model '{path}' could not be loaded: {err}") from err
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"'{path}' is not a scdeal bulk model (expected format {CHECKPOINT_FORMAT}).")
    cfg_dict = payload["config"]
    cfg = BulkConfig(**{**cfg_dict, "hidden": tuple(cfg_dict["hidden"]),
                        "predictor_hidden": tuple(cfg_dict["predictor_hidden"])})
    enc, dec, pred, reg = build_networks(len(payload["genes"]), cfg)
    enc.load_state_dict(payload["encoder"])
    dec.load_state_dict(payload["decoder"])
    pred.load_state_dict(payload["predictor"])
    reg.load_state_dict(payload["regressor"])
    return BulkModel(drug=payload["drug"], genes=payload["genes"], gene_mean=payload["gene_mean"].numpy(),
                     gene_sd=payload["gene_sd"].numpy(), config=cfg, encoder=enc, decoder=dec, predictor=pred, regressor=reg,
                     metrics=payload["metrics"], history=payload["history"],
                     sensitive_fraction=payload["sensitive_fraction"])
