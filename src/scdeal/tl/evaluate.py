"""Metrics of the paper: precision, recall, F1, AUROC, AP (per cell) and AMI/ARI (clusters vs labels)."""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from ..data import keys
from ..errors import InputError
from ..model.metrics import binary_metrics

__all__ = ["CALLS", "LABELS", "confusion", "evaluate_cells", "truth_from_labels"]

LABELS = ("sensitive", "resistant")
CALLS = (*LABELS, "uncertain")  # a prediction may also be uncertain (ensemble spread across the threshold)


def truth_from_labels(values: pd.Series, key: str) -> np.ndarray:
    """1 = sensitive, 0 = resistant; anything else is an error naming the values found."""
    text = values.astype(str).str.strip().str.lower()
    unknown = sorted(set(text) - set(LABELS))
    if unknown:
        raise InputError(f"Label column '{key}' holds values other than sensitive/resistant: {unknown[:5]}.")
    if text.nunique() < 2:
        raise InputError(f"Label column '{key}' has only one class ('{text.iloc[0]}'): AUROC and AP need both.")
    return (text == "sensitive").to_numpy().astype(int)


def evaluate_cells(obs: pd.DataFrame, label_key: str) -> dict[str, float]:
    """All metrics for one (sample, drug) from an annotated obs table."""
    if label_key not in obs:
        raise InputError(f"Label column '{label_key}' is not in the sample's obs (columns: {list(obs.columns)[:10]}).")
    y = truth_from_labels(obs[label_key], label_key)
    result = binary_metrics(y, obs[keys.PROB], predicted=(obs[keys.CALL] == "sensitive"))
    if keys.PROB_BASELINE in obs:
        baseline = binary_metrics(y, obs[keys.PROB_BASELINE])
        result |= {"baseline_auroc": baseline["auroc"], "baseline_ap": baseline["ap"]}
    result["ami"] = float(skm.adjusted_mutual_info_score(y, obs[keys.CLUSTER].astype(str)))
    result["ari"] = float(skm.adjusted_rand_score(y, obs[keys.CLUSTER].astype(str)))
    return result


def confusion(obs: pd.DataFrame, label_key: str) -> pd.DataFrame:
    """Counts of true label (rows: sensitive, resistant) × call (sensitive, resistant, uncertain)."""
    truth = obs[label_key].astype(str).str.lower()
    return pd.crosstab(truth.rename("true"), obs[keys.CALL].rename("predicted")).reindex(
        index=list(LABELS), columns=list(CALLS), fill_value=0)
