"""The Python API, in the scanpy style: functions that take an AnnData of one sample's cells and bulk lines
(`scdeal.data.BulkData`), write their results under the keys of `scdeal.data.keys` and return what they
computed. The pipeline's steps and the benchmarks call these.

    import anndata as ad, scdeal
    cells = scdeal.tl.cluster(ad.read_h5ad("sample.h5ad"))
    bulk = scdeal.data.BulkData.read("expression.csv.gz", ["responses.csv"], drugs="Erlotinib")
    scdeal.tl.predict(cells, bulk)              # obs['prob_sensitive'], obs['predicted_label'], …
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import anndata as ad
import numpy as np
import pandas as pd

from ..data import keys
from ..data.bulkdata import BulkData
from ..data.readers import normalise_name
from ..data.singlecell import ClusterConfig, preprocess_and_cluster
from ..errors import InputError
from ..model.cell_model import CellModel
from ..model.device import select_device
from ..model.training import BulkConfig, BulkModel, pretrain_bulk
from ..model.transfer import DrugResult, TransferConfig, TransferResult, transfer
from .baseline import BaselineKind, BaselineResult, baseline_predictions
from .explain import (
    ExplainConfig,
    attributions_of_genes,
    cluster_signatures,
    differential_genes,
    integrated_gradients,
    overlap_with_de,
    signature_genes,
    subsample_by_cluster,
)
from .predictions import annotate, compare_with_baseline, sensitive_fraction_interval, threshold_for
from .screen import (
    SCREEN_HEADS,
    Efficacy,
    ScreenConfig,
    annotate_screen,
    cluster_ranking,
    drug_trust,
    sample_efficacy,
    sample_ranking,
)
from .trust import trust_diagnostic

__all__ = ["Explanation", "Prediction", "Screen", "cluster", "explain", "predict", "pretrain", "screen"]


@dataclass
class Prediction:
    """What `predict` computed: the drug's view of the transfer (with its cell model), the threshold, the
    baseline, the trust diagnostic, and the run's summary (`transfer_summary.json` without provenance)."""

    result: DrugResult
    threshold: float
    baseline: BaselineResult | None
    trust: dict
    summary: dict


@dataclass
class Screen:
    """What `screen` computed: the transfer (cells × drugs), the efficacy model's predicted AUC, each drug's
    trust and the drug rankings."""

    result: TransferResult
    efficacy: Efficacy
    trust: pd.DataFrame
    ranking: pd.DataFrame
    cluster_ranking: pd.DataFrame


@dataclass
class Explanation:
    """What `explain` computed: signature genes, per-cluster signatures, the overlap with differential
    expression, the top genes' attributions (cells × genes) and the attribution's convergence."""

    signature: pd.DataFrame
    cluster_signatures: pd.DataFrame
    de_overlap: dict
    attributions: ad.AnnData
    mean_abs_delta: float
    max_abs_delta: float


def cluster(adata: ad.AnnData, config: ClusterConfig | None = None) -> ad.AnnData:
    """QC, normalisation, variable genes, embedding and Leiden clusters (`obs['cluster']`) of one sample's
    cells: a new AnnData, as the pipeline's cluster step writes it."""
    return preprocess_and_cluster(adata, config or ClusterConfig())


def pretrain(bulk: BulkData, config: BulkConfig | None = None, *, device: str = "auto") -> BulkModel:
    """The bulk model of every drug of `bulk` (autoencoder, then one response output per drug)."""
    return pretrain_bulk(bulk, config or BulkConfig(), select_device(device))


def predict(adata: ad.AnnData, bulk: BulkData, *, drug: str | None = None, model: BulkModel | None = None,
            config: TransferConfig | None = None, bulk_config: BulkConfig | None = None,
            baseline: BaselineKind = "logistic", device: str = "auto", what: str = "sample") -> Prediction:
    """Predict every cell's sensitivity to `drug`: transfer → threshold → calls → baseline → trust, written
    into `adata` in place. No cell label is read.

    Args:
        adata: Clustered cells (`obs['cluster']`, e.g. from `cluster`).
        bulk: Bulk lines; `drug` may be left out when they carry one drug.
        drug: The drug (any case or punctuation).
        model: A bulk model pretrained on `bulk`, read only with `config.member_init` pretrained (default:
            pretrained here with `bulk_config` where it is read; each member fits its own otherwise).
        config: Transfer and calling settings (default: the pipeline's defaults).
        bulk_config: Settings of the bulk model when `model` is None.
        baseline: The model predicted beside scdeal: logistic, gbt or none.
        device: auto, cpu, cuda or cuda:N.
        what: How errors name the sample.

    Sets the following fields:
        `obs['prob_sensitive']`, `obs['prob_sensitive_sd']`, `obs['prob_sensitive_direct']`,
        `obs['prob_sensitive_baseline']` (with a baseline), `obs['predicted_label']`, `obs['trust']`,
        `obsm['X_scdeal']` and `uns['scdeal_transfer']` (drug, threshold, transfer_config, n_genes_used,
        trust).

    Raises:
        InputError: `drug` is not among the bulk drugs, or the inputs do not fit together.
    """
    config, dev = config or TransferConfig(), select_device(device)
    column = drug_column(bulk, drug)
    start = model or bulk_start(bulk, bulk_config or BulkConfig(), config=config, device=dev)
    result = transfer(start, bulk, adata, cfg=config, device=dev, what=what).drug(column)
    threshold = threshold_for(config.threshold_rule, result, config.threshold)
    base = baseline_predictions(baseline, bulk, adata, genes=result.genes, seed=config.seed, drug=column)
    trust = trust_diagnostic(result.member_probs, result.direct_prob, base.prob if base else None,
                             bulk_val_auroc=result.bulk_evidence, n_reset=result.n_reset)
    trust |= {"bulk_oof_auroc": result.oof_auroc, "bulk_local_auroc": result.local_auroc}
    annotate(adata, result, threshold=threshold, verdict=trust["verdict"], baseline=base)
    name = drug or bulk.drugs[column]
    adata.uns[keys.TRANSFER] = {"drug": name, "threshold": threshold, "transfer_config": asdict(config),
                                "n_genes_used": len(result.genes), "trust": trust}
    summary = {"drug": name, "n_cells": int(adata.n_obs), "n_genes_used": len(result.genes),
               "calibration": config.calibration, "threshold_rule": config.threshold_rule, "threshold": threshold,
               "n_clusters": int(adata.obs[keys.CLUSTER].nunique()),
               **sensitive_fraction_interval(result.member_probs, threshold, adata.n_obs),
               "uncertain_fraction": float((adata.obs[keys.CALL] == "uncertain").mean()),
               "trust": trust, "members": result.members,
               "comparison": compare_with_baseline(result.test_auroc, result.prob, base)}
    return Prediction(result, threshold, base, trust, summary)


def bulk_start(bulk: BulkData, bulk_config: BulkConfig, *, config: TransferConfig, device) -> BulkModel | BulkConfig:
    """What the members start from when no bulk model is given: one pretrained here where they read its weights
    (`member_init` pretrained), else only its settings (each member fits its own)."""
    return pretrain_bulk(bulk, bulk_config, device) if config.member_init == "pretrained" else bulk_config


def drug_column(bulk: BulkData, drug: str | None) -> int:
    """The column of `drug` among the bulk drugs (None: the only one).

    Raises:
        InputError: `drug` is not among them, or is None with several.
    """
    names = [normalise_name(d) for d in bulk.drugs]
    if drug is None and len(names) == 1:
        return 0
    if drug is None or normalise_name(drug) not in names:
        raise InputError(f"Name a drug of the bulk lines ({', '.join(bulk.drugs[:10])}), not {drug!r}.")
    return names.index(normalise_name(drug))


def screen(adata: ad.AnnData, bulk: BulkData, *, model: BulkModel | None = None, config: TransferConfig | None = None,
           bulk_config: BulkConfig | None = None, screen_config: ScreenConfig | None = None, device: str = "auto",
           what: str = "sample") -> Screen:
    """Predict every drug's efficacy for every cluster of the sample and rank the drugs by it, for the sample and per
    cluster, beside every cell's transferred call from one transfer. No cell label is read.

    Args:
        adata: Clustered cells (`obs['cluster']`).
        bulk: Bulk lines of a panel of drugs, with their GDSC AUC (`obsm['auc']`) for the efficacy.
        model: A bulk model pretrained on `bulk`, read only with `config.member_init` pretrained (default: as in
            `predict`, with one linear output per drug).
        config: Transfer settings. bulk_config: Pretraining settings when `model` is None.
        screen_config: How drugs are ranked. device: auto, cpu, cuda or cuda:N. what: How errors name the sample.

    Sets the following fields:
        `obsm['prob_sensitive_screen']`, `obsm['prob_sensitive_screen_sd']`, `obsm['prob_sensitive_screen_direct']`,
        `obsm['auc_screen']` (cells × drugs data frames) and `uns['scdeal_screen']` (drugs, n_genes_used,
        efficacy_alpha, transfer_config, screen_config).

    Raises:
        InputError: no drug of `bulk` has a measured AUC (efficacy is predicted AUC), or what `transfer` raises.
    """
    config, screen_config, dev = config or TransferConfig(), screen_config or ScreenConfig(), select_device(device)
    if not np.isfinite(bulk.auc).any():
        raise InputError("A screen ranks drugs by their predicted GDSC AUC, and the response tables give no AUC for any "
                         "drug of the screen: add GDSC AUC tables (CELL_LINE_NAME, DRUG_NAME, AUC; e.g. "
                         "gdsc1_auc_long.csv.gz) to --bulk_response.")
    start = model or bulk_start(bulk, replace(bulk_config or BulkConfig(), predictor_hidden_dims=SCREEN_HEADS),
                                config=config, device=dev)
    result = transfer(start, bulk, adata, cfg=config, device=dev, what=what)
    efficacy = sample_efficacy(adata, bulk, result.genes, config=screen_config, seed=config.seed)
    trust = drug_trust(result, screen_config, efficacy.cell_auc)
    member_probs = result.member_probs
    ranking = sample_ranking(member_probs, efficacy, bulk_rate=result.rate, trust=trust)
    by_cluster = cluster_ranking(member_probs, efficacy, bulk_rate=result.rate, clusters=adata.obs[keys.CLUSTER])
    annotate_screen(adata, result, efficacy)
    adata.uns[keys.SCREEN] = {"drugs": result.drugs, "n_genes_used": len(result.genes),
                              "efficacy_alpha": efficacy.alpha, "transfer_config": asdict(config),
                              "screen_config": asdict(screen_config)}
    return Screen(result, efficacy, trust, ranking, by_cluster)


def explain(adata: ad.AnnData, cell_model: CellModel, *, config: ExplainConfig | None = None,
            device: str = "auto") -> Explanation:
    """Integrated-gradient signature genes of the reported probability (`Prediction.result.cell_model`, or a
    saved `cell_model.pt` loaded with `CellModel.load`), compared with differential expression between the
    predicted groups.

    Sets the following fields:
        `uns['scdeal_explain']` (`signature_genes`: the signature table).
    """
    config = config or ExplainConfig()
    cells = subsample_by_cluster(adata, config.ig_max_cells, config.seed)
    genes = cell_model.genes
    attr, delta, effect = integrated_gradients(cell_model.network(), cell_model.features(cells), select_device(device),
                                               n_steps=config.ig_steps, batch_size=config.ig_batch_size)
    signature = signature_genes(attr, effect, genes, top=config.top_genes)
    per_cluster = cluster_signatures(attr, genes, cells.obs[keys.CLUSTER].astype(str))
    overlap = overlap_with_de(signature, differential_genes(cells, genes), universe=len(genes), top=config.top_genes)
    attributions = attributions_of_genes(attr, delta, genes, wanted=signature["gene"].tolist(), obs=cells.obs)
    adata.uns[keys.EXPLAIN] = {"signature_genes": signature}
    return Explanation(signature, per_cluster, overlap, attributions, float(np.abs(delta).mean()),
                       float(np.abs(delta).max()))
