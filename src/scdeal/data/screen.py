"""Bulk preparation of a drug screen: one AnnData of cell lines with a response column per drug. Each drug is labelled
exactly as a single-drug run labels it (`bulk.labels_from_rows`): binary calls where the tables have them, otherwise
the pooled GDSC1/GDSC2 continuous response binarised. A line without a measurement for a drug has NaN there, and the
model's losses skip it."""
from __future__ import annotations

import logging
import re
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from ..errors import InputError
from . import keys
from .bulk import BulkPrepareConfig, find_drug, labels_from_rows, log_if_linear, matched_lines, split_lines
from .readers import line_key, normalise_name, require_file

__all__ = ["prepare_screen", "read_drug_list", "screen_drugs"]

log = logging.getLogger(__name__)

MEASURED = {keys.AUC: "AUC", keys.LN_IC50: "LN_IC50"}   # obsm key → the GDSC measure it holds


def read_drug_list(path: str | Path) -> list[str]:
    """Drug names from a text file: one per line (the first field of a CSV/TSV line), `#` comments and blank lines
    ignored (InputError: the file is missing or names no drug)."""
    text = require_file(path, "Drug list").read_text(errors="replace")
    names = [name for line in text.splitlines() if (name := re.split(r"[,\t]", line.split("#", 1)[0])[0].strip())]
    if not names:
        raise InputError(f"Drug list '{path}' names no drug: write one drug name per line.")
    return names


def screen_drugs(response: pd.DataFrame, wanted: list[str] | None) -> dict[str, str]:
    """Normalised key → display name of every drug to screen: all drugs of the tables, or `wanted` (each
    matched as a single-drug run matches it; an unknown name is an error with suggestions)."""
    if wanted:
        return {normalise_name(name): find_drug(response, name) for name in wanted}
    spelling: dict[str, str] = {}
    for name in sorted(response["drug"].unique(), key=str.isupper):  # ERLOTINIB and Erlotinib: Erlotinib
        spelling.setdefault(normalise_name(name), name)
    return dict(sorted(spelling.items()))


def drug_columns(rows: pd.DataFrame, drugs: dict[str, str], config: BulkPrepareConfig
                 ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, pd.DataFrame], dict[str, str]]:
    """Lines × drugs labels, continuous responses, the measured GDSC AUC and LN_IC50 (`measured`: mean over the
    tables that measure a pair; NaN where unmeasured), and each drug's response kind."""
    labels, responses, kinds = {}, {}, {}
    for key, group in rows[rows["drug_key"].isin(drugs)].groupby("drug_key", sort=True):
        frame, kind = labels_from_rows(group, config)
        labels[key], kinds[key] = frame[keys.LABEL], kind
        if keys.RESPONSE in frame:
            responses[key] = frame[keys.RESPONSE]
    kept = [k for k in drugs if k in labels]
    label = pd.DataFrame(labels).reindex(columns=kept)
    response = pd.DataFrame(responses).reindex(index=label.index, columns=kept)
    measured = {name: measured_matrix(rows, kind, kept).reindex(index=label.index, columns=kept)
                for name, kind in MEASURED.items()}
    return label, response, measured, kinds


def measured_matrix(rows: pd.DataFrame, kind: str, drugs: list[str]) -> pd.DataFrame:
    """Lines × drugs of one GDSC measure (`AUC`, or `LN_IC50` with tables of IC50 in µM logged): the mean over the
    tables that measure a pair."""
    picked = rows[rows["drug_key"].isin(drugs)]
    if kind == "LN_IC50":
        linear = picked[(picked["kind"] == "IC50") & (picked["value"] > 0)]
        picked = pd.concat([picked[picked["kind"] == kind], linear.assign(value=np.log(linear["value"]))])
    else:
        picked = picked[picked["kind"] == kind]
    values = picked.groupby(["key", "drug_key"])["value"].mean()
    return values.unstack() if len(values) else pd.DataFrame()


def prepare_screen(expression: ad.AnnData, response: pd.DataFrame, *, drugs: list[str] | None = None,
                   config: BulkPrepareConfig | None = None, cosmic: dict[str, str] | None = None) -> ad.AnnData:
    """The lines × genes with a response for at least one kept drug (a new AnnData): expression joined with every
    drug's labels, one random train/validation/test split of the lines. Drugs with fewer than
    `config.min_lines_per_class` lines of a class among the matched lines are left out (listed in `uns`). Expression
    on a linear scale is log2(x + 1)-transformed. InputError when no line matches, or no drug keeps enough lines of
    both classes. Sets `obsm['label']` (lines × drugs: 1 sensitive, 0 resistant, NaN unmeasured),
    `obsm['response_z']` (pooled continuous response, NaN where none), `obsm['auc']` and `obsm['ln_ic50']` (GDSC
    AUC and LN_IC50 as measured, NaN where none: what the screen's efficacy model predicts), `obs['split']` and
    `uns['scdeal_screen']` (drugs, their keys, response kinds, line and class counts, and the drugs left out with
    the reason)."""
    config = config or BulkPrepareConfig()
    wanted = screen_drugs(response, drugs)
    rows = response.assign(key=response["line"].map({x: line_key(x, cosmic) for x in response["line"].unique()}),
                           drug_key=response["drug"].map({d: normalise_name(d) for d in response["drug"].unique()}))
    label, resp, measured, kinds = drug_columns(rows, wanted, config)
    bulk = matched_lines(expression, label.index, cosmic=cosmic, what="the response tables")
    label, resp = label.reindex(bulk.obs_names), resp.reindex(bulk.obs_names)
    measured = {name: frame.reindex(bulk.obs_names) for name, frame in measured.items()}
    n_pos, n_neg = (label == 1).sum(), (label == 0).sum()
    enough = (n_pos >= config.min_lines_per_class) & (n_neg >= config.min_lines_per_class)
    dropped = {wanted[k]: f"{int(n_pos[k])} sensitive / {int(n_neg[k])} resistant lines" for k in label.columns[~enough]}
    if not enough.any():
        raise InputError(f"No drug of the screen has {config.min_lines_per_class} sensitive and resistant cell lines "
                         "matched to the bulk expression: check the response tables, or lower --min_lines_per_class.")
    label, resp = label.loc[:, enough], resp.loc[:, enough]
    lines = label.notna().any(axis=1).to_numpy()
    bulk, label, resp = bulk[lines].copy(), label[lines], resp[lines]
    measured = {name: frame.loc[lines, enough] for name, frame in measured.items()}
    log_if_linear(bulk)
    kept = list(label.columns)
    bulk.obsm[keys.LABEL] = label.to_numpy(np.float32)
    bulk.obsm[keys.RESPONSE] = resp.to_numpy(np.float32)
    for name, frame in measured.items():
        bulk.obsm[name] = frame.to_numpy(np.float32)
    bulk.obs[keys.SPLIT] = split_lines(bulk.n_obs, stratify=None, val_fraction=config.val_fraction,
                                       test_fraction=config.test_fraction, seed=config.seed)
    bulk.uns[keys.SCREEN] = {"drugs": [wanted[k] for k in kept], "drug_keys": kept, "response_kind": [kinds[k] for k in kept],
                             "n_lines": [int(v) for v in label.notna().sum()],
                             "n_sensitive": [int(v) for v in (label == 1).sum()], "dropped": dropped,
                             "n_expression_lines": int(expression.n_obs), "n_matched": int(bulk.n_obs)}
    log.info("screen: %d drugs on %d lines (%d left out: too few lines of a class)", len(kept), bulk.n_obs, len(dropped))
    return bulk
