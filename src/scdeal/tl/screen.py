"""Rankings of a drug screen: which drugs would hit which clusters of a sample, and the sample as a whole.

Per drug and group of cells: the mean probability of sensitivity, the fraction of cells called
sensitive with a Wilson 95 % interval, and the mean ensemble spread (uncertainty). A drug whose
source heads rank held-out bulk lines no better than `min_bulk_auroc` is reported but not ranked:
its calls are not supported by bulk evidence. Nothing here reads a cell label.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._utils import setting
from ..model.transfer import call_labels, otsu_threshold

__all__ = ["ScreenConfig", "cluster_ranking", "drug_calls", "sample_ranking", "wilson_interval"]

Z95 = 1.959964


@dataclass(frozen=True)
class ScreenConfig:
    """How a screen's drugs are ranked and shown (the screen step's own flags)."""

    min_bulk_auroc: float = setting(
        0.65, "drugs whose heads rank held-out bulk lines below this AUROC (on the sample's genes) are reported, "
              "not ranked")
    top_drugs: int = setting(20, "ranked drugs shown in the report's clusters × drugs heatmap")


def wilson_interval(k: np.ndarray, n: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score 95 % interval of the proportion k / n (elementwise)."""
    k, n = np.asarray(k, float), np.maximum(np.asarray(n, float), 1.0)
    p = k / n
    centre = (p + Z95 ** 2 / (2 * n)) / (1 + Z95 ** 2 / n)
    half = Z95 * np.sqrt(p * (1 - p) / n + Z95 ** 2 / (4 * n ** 2)) / (1 + Z95 ** 2 / n)
    return np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)


def drug_calls(prob: np.ndarray, prob_sd: np.ndarray) -> np.ndarray:
    """cells × drugs calls (sensitive / resistant / uncertain), each drug at its own Otsu split
    (the single-drug default rule, from the probabilities only)."""
    return np.column_stack([call_labels(prob[:, d], prob_sd[:, d], otsu_threshold(prob[:, d]))
                            for d in range(prob.shape[1])])


def group_summary(prob: np.ndarray, prob_sd: np.ndarray, sensitive: np.ndarray, drugs: list[str]) -> pd.DataFrame:
    """One row per drug over one group of cells: mean probability, sensitive fraction with interval, spread."""
    n = len(prob)
    k = sensitive.sum(0)
    low, high = wilson_interval(k, n)
    return pd.DataFrame({"drug": drugs, "n_cells": n, "mean_prob": prob.mean(0), "sensitive_fraction": k / max(n, 1),
                         "sensitive_low": low, "sensitive_high": high, "mean_sd": prob_sd.mean(0)})


def ranked(frame: pd.DataFrame, rankable: pd.Series) -> pd.DataFrame:
    """`frame` sorted by mean probability with a `rank` among rankable drugs (unrankable ones last, no rank)."""
    frame = frame.assign(ranked=frame["drug"].map(rankable).fillna(False).astype(bool))
    frame = frame.sort_values(["ranked", "mean_prob"], ascending=[False, False], kind="stable")
    frame.insert(0, "rank", np.where(frame["ranked"], np.arange(1, len(frame) + 1), np.nan))
    frame["rank"] = frame["rank"].astype("Int64")
    return frame.reset_index(drop=True)


def sample_ranking(prob: np.ndarray, prob_sd: np.ndarray, drugs: list[str], *, trust: pd.DataFrame,
                   config: ScreenConfig) -> pd.DataFrame:
    """The sample-level drug ranking, joined with each drug's trust diagnostic (`trust`: one row per drug
    with `drug`, `bulk_val_auroc` and `verdict`)."""
    calls = drug_calls(prob, prob_sd)
    frame = group_summary(prob, prob_sd, calls == "sensitive", drugs)
    frame["uncertain_fraction"] = (calls == "uncertain").mean(0)
    frame = frame.merge(trust, on="drug", how="left")
    rankable = pd.Series(frame["bulk_val_auroc"].to_numpy() >= config.min_bulk_auroc, index=frame["drug"])
    return ranked(frame, rankable)


def cluster_ranking(prob: np.ndarray, prob_sd: np.ndarray, drugs: list[str], clusters: pd.Series, *,
                    rankable: pd.Series) -> pd.DataFrame:
    """Per cluster, the drugs ranked by mean probability (`rankable`: drug → whether it may be ranked)."""
    calls = drug_calls(prob, prob_sd) == "sensitive"
    codes = clusters.astype(str).to_numpy()
    frames = []
    for cluster in sorted(set(codes), key=lambda c: (len(c), c)):
        rows = codes == cluster
        frame = ranked(group_summary(prob[rows], prob_sd[rows], calls[rows], drugs), rankable)
        frames.append(frame.assign(cluster=cluster))
    out = pd.concat(frames, ignore_index=True)
    return out[["cluster", *[c for c in out.columns if c != "cluster"]]]
