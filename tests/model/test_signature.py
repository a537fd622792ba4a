"""Drug signatures from bulk lines and their scores on cells (the transfer's signature anchor)."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from scdeal.data.features import CellFeatures, model_features, row_standardise
from scdeal.model.signature import class_mean_signature, signature_scores


def bulk_lines(rng: np.random.Generator, n: int = 120, genes: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Expression with gene 3 up in the sensitive lines of drug 0, and drug 1's labels the reverse, half unmeasured."""
    y0 = (rng.random(n) < 0.3).astype(float)
    x = rng.normal(size=(n, genes)) + 5.0
    x[:, 3] += 2.0 * y0
    y1 = 1.0 - y0
    y1[: n // 2] = np.nan
    return x, np.column_stack([y0, y1])


def test_signature_points_at_the_planted_gene_and_skips_unmeasured_lines():
    x, y = bulk_lines(np.random.default_rng(0))
    features, (_, sd) = model_features(x)
    signature = class_mean_signature(features, y, sd)
    assert signature.shape == (2, x.shape[1])
    assert np.argmax(signature[0]) == 3 and np.argmin(signature[1]) == 3
    measured = ~np.isnan(y[:, 1])   # drug 1 from its measured lines only: the same as leaving the others out
    np.testing.assert_allclose(signature[1], class_mean_signature(features[measured], y[measured, 1], sd)[0])


def test_cell_scores_are_each_profile_projected_on_the_signature():
    rng = np.random.default_rng(1)
    x, y = bulk_lines(rng)
    features, (_, sd) = model_features(x)
    signature = class_mean_signature(features, y, sd)
    cells = sp.random(300, x.shape[1], density=0.4, random_state=2, format="lil", dtype=np.float32)
    cells[:150, 3] = 6.0     # half the cells carry the sensitive program of drug 0
    cells = cells.tocsr()
    scores = signature_scores(CellFeatures(cells, np.arange(x.shape[1])), signature)
    expected = row_standardise(cells) @ signature.T
    np.testing.assert_allclose(scores - scores.mean(0), expected - expected.mean(0), rtol=1e-3, atol=1e-3)
    assert scores[:150, 0].mean() > scores[150:, 0].mean() and scores[:150, 1].mean() < scores[150:, 1].mean()
