"""Bulk preprocessing: one labelled AnnData of cell lines per drug, split into train/validation/test."""
from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass
from typing import Literal, get_args

import anndata as ad
import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from .._utils import setting
from ..errors import InputError
from . import keys
from .features import data_scale
from .readers import line_key, normalise_name

__all__ = ["BINARIZE_RULES", "BinarizeRule", "BulkPrepareConfig", "binarize", "drug_labels", "find_drug",
           "labels_from_rows", "log_if_linear", "matched_lines", "prepare_bulk", "split_lines"]

log = logging.getLogger(__name__)

BinarizeRule = Literal["quantile", "zscore", "median"]
BINARIZE_RULES: tuple[str, ...] = get_args(BinarizeRule)


@dataclass(frozen=True)
class BulkPrepareConfig:
    """How one drug's cell lines are labelled and split (the bulk_prepare step's flags)."""

    binarize_rule: BinarizeRule = setting(
        "quantile", "how a continuous response becomes sensitive/resistant (lower LN_IC50/AUC = sensitive)")
    sensitive_fraction: float = setting(
        0.2, "quantile rule: the fraction of lines, those with the lowest response, called sensitive", minimum=0.01, maximum=0.99)
    zscore_cutoff: float = setting(-0.5, "zscore rule: lines with a response z-score below it are sensitive")
    val_fraction: float = setting(0.2, "fraction of lines held out for early stopping and calibration", minimum=0.05, maximum=0.5)
    test_fraction: float = setting(0.2, "fraction of lines held out for the bulk model's test metrics", minimum=0.05, maximum=0.5)
    min_lines_per_class: int = setting(10, "fewest lines of each class accepted", minimum=2)
    seed: int = setting(0, "random seed of the stratified split")


def find_drug(response: pd.DataFrame, drug: str) -> str:
    """The response table's own spelling of `drug`, matched case- and punctuation-insensitively."""
    spellings = {normalise_name(d): d for d in response["drug"].unique()}
    key = normalise_name(drug)
    if key in spellings:
        return spellings[key]
    close = difflib.get_close_matches(key, list(spellings), n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(spellings[c] for c in close)}?" if close else ""
    raise InputError(f"Drug '{drug}' is not in the bulk response table ({len(spellings)} drugs).{hint}")


def binarize(values: pd.Series, rule: BinarizeRule = "quantile", *, sensitive_fraction: float = 0.2,
             zscore_cutoff: float = -0.5) -> pd.Series:
    """Continuous response (LN_IC50 or AUC: lower = more sensitive) → 1 sensitive / 0 resistant, by `rule`. quantile:
    the `sensitive_fraction` lowest values are sensitive (default 20 %, close to the prevalence of GDSC's own binary
    calls); zscore: z < `zscore_cutoff` across lines; median: below the median."""
    if rule == "quantile":
        return (values <= values.quantile(sensitive_fraction)).astype(float)
    if rule == "zscore":
        z = (values - values.mean()) / (values.std() + 1e-12)
        return (z < zscore_cutoff).astype(float)
    if rule == "median":
        return (values < values.median()).astype(float)
    raise InputError(f"Unknown binarisation rule '{rule}': choose one of {', '.join(BINARIZE_RULES)}.")


def drug_labels(response: pd.DataFrame, drug: str, config: BulkPrepareConfig, *,
                cosmic: dict[str, str] | None = None) -> tuple[pd.DataFrame, str]:
    """Per-line `label` and, where a continuous measure exists, `response_z` (lower = more sensitive). Binary calls,
    where the tables have them for this drug, are the labels. Continuous measures (LN_IC50, AUC; GDSC1 and GDSC2
    alike) are z-scored within each file and measure, then averaged per line, so releases and measures share one
    scale; without binary calls they are binarised."""
    find_drug(response, drug)
    rows = response[response["drug"].map(normalise_name) == normalise_name(drug)].copy()
    rows["key"] = [line_key(x, cosmic) for x in rows["line"]]
    return labels_from_rows(rows, config)


def labels_from_rows(rows: pd.DataFrame, config: BulkPrepareConfig) -> tuple[pd.DataFrame, str]:
    """`drug_labels` of one drug's response rows, whose `key` column holds the normalised line names."""
    if "source" not in rows:
        rows["source"] = "response"
    binary = rows[rows["kind"] == "binary"]
    continuous = rows[rows["kind"] != "binary"]
    labels = pd.DataFrame(index=pd.Index(sorted(set(rows["key"])), name="key"))
    if len(continuous):  # the mean over (file, measure) of each line's z-scored response
        per_group = [group.groupby("key")["value"].mean() for _, group in continuous.groupby(["source", "kind"])]
        labels[keys.RESPONSE] = pd.concat([(v - v.mean()) / (v.std() + 1e-12) for v in per_group], axis=1).mean(axis=1)
    if len(binary):
        calls = binary.groupby("key")["value"].mean().round()  # repeated screens of one line are averaged
        labels = labels.loc[calls.index].assign(**{keys.LABEL: calls})
    else:
        labels[keys.LABEL] = binarize(labels[keys.RESPONSE], config.binarize_rule,
                                      sensitive_fraction=config.sensitive_fraction, zscore_cutoff=config.zscore_cutoff)
    kinds = (["binary"] if len(binary) else []) + sorted(set(continuous["kind"]))
    return labels, "+".join(kinds)


def prepare_bulk(expression: ad.AnnData, response: pd.DataFrame, drug: str, *, config: BulkPrepareConfig | None = None,
                 cosmic: dict[str, str] | None = None) -> ad.AnnData:
    """The drug's lines × genes (a new AnnData): expression joined with labels, a stratified train/val/test split of
    the lines, expression on a linear scale (counts, TPM) log2(x + 1)-transformed. InputError when no line matches, or
    a class has fewer than `config.min_lines_per_class` lines. Sets `obs['label']` (1 sensitive, 0 resistant),
    `obs['split']` (train / val / test), `obs['response_z']` (pooled continuous response, where the tables have one)
    and `uns['scdeal_bulk']` (drug, response kind, rule and counts)."""
    config = config or BulkPrepareConfig()
    labels, kind = drug_labels(response, drug, config, cosmic=cosmic)
    bulk = matched_lines(expression, labels.index, cosmic=cosmic, what=f"the response table for '{drug}'")
    log.info("%s: %d of %d expression lines matched %d lines with a response (%s)", drug, bulk.n_obs,
             expression.n_obs, len(labels), kind)
    bulk.obs = bulk.obs.join(labels)
    counts = bulk.obs[keys.LABEL].value_counts()
    for cls, name in ((1.0, "sensitive"), (0.0, "resistant")):
        if counts.get(cls, 0) < config.min_lines_per_class:
            raise InputError(f"Drug '{drug}': only {counts.get(cls, 0)} {name} cell lines after matching "
                             f"(at least {config.min_lines_per_class} needed): use another binarisation rule or more lines.")
    bulk.obs[keys.LABEL] = bulk.obs[keys.LABEL].astype(int)
    bulk.obs[keys.SPLIT] = split_lines(bulk.n_obs, stratify=bulk.obs[keys.LABEL].to_numpy(),
                                       val_fraction=config.val_fraction, test_fraction=config.test_fraction, seed=config.seed)
    log_if_linear(bulk)
    bulk.uns[keys.BULK] = {"drug": drug, "drug_in_table": find_drug(response, drug), "response_kind": kind,
                               "binarize_rule": "given" if kind.startswith("binary") else config.binarize_rule,
                               "n_with_continuous_response": int(bulk.obs[keys.RESPONSE].notna().sum())
                               if keys.RESPONSE in bulk.obs else 0,
                               "n_expression_lines": int(expression.n_obs), "n_matched": int(bulk.n_obs),
                               "n_sensitive": int(counts.get(1.0, 0)), "n_resistant": int(counts.get(0.0, 0))}
    return bulk


def matched_lines(expression: ad.AnnData, keys: pd.Index, *, cosmic: dict[str, str] | None, what: str) -> ad.AnnData:
    """The expression lines whose normalised name is in `keys`, renamed to it (first of duplicates kept) (InputError:
    no line matches)."""
    names = pd.Index([line_key(x, cosmic) for x in expression.obs_names])
    matched = names.isin(keys)
    if matched.sum() == 0:
        raise InputError(f"No cell line of the bulk expression table '{expression.uns.get('source', '?')}' matches "
                         f"{what} (e.g. expression '{expression.obs_names[0]}', response '{keys[0]}'): check "
                         "that both name lines the same way, or pass --cosmic_map for COSMIC ids.")
    bulk = expression[matched].copy()
    bulk.obs_names = names[matched]
    return bulk[~bulk.obs_names.duplicated()].copy()


def log_if_linear(bulk: ad.AnnData) -> None:
    """log2(x + 1) of expression on a linear scale (counts, TPM), in place; log-scale data are left as they are."""
    if data_scale(bulk.X) in ("counts", "linear"):
        log.info("bulk expression looks linear-scale: applying log2(x + 1)")
        bulk.X = np.log2(np.clip(bulk.X, 0, None) + 1).astype(np.float32)


def split_lines(n: int, *, stratify: np.ndarray | None, val_fraction: float, test_fraction: float,
                seed: int) -> np.ndarray:
    """`train`/`val`/`test` for `n` lines, stratified by `stratify` (one drug's labels) or drawn at random
    (None: a screen's lines carry a label per drug)."""
    idx = np.arange(n)
    rest, test = train_test_split(idx, test_size=test_fraction, stratify=stratify, random_state=seed)
    train, val = train_test_split(rest, test_size=val_fraction / (1 - test_fraction),
                                  stratify=None if stratify is None else stratify[rest], random_state=seed)
    split = np.empty(n, dtype=object)
    split[train], split[val], split[test] = "train", "val", "test"
    return split
