"""The shared feature space and the helpers every layer uses."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from scdeal._utils import batch_slices, gene_positions
from scdeal.data.features import CellFeatures, data_scale, model_features


@pytest.mark.parametrize(("values", "scale"), [
    ([[0, 3, 120], [7, 0, 1]], "counts"),
    ([[0.5, 3.2, 880.1], [7.5, 0, 1]], "linear"),
    ([[0.5, 3.2, 12.1], [7.5, 0, 1]], "log"),
    ([[-0.5, 3.2, 12.1], [7.5, 0, 1]], "scaled"),
])
def test_one_scale_check_for_dense_bulk_and_sparse_cells(values, scale):
    x = np.array(values, dtype=np.float32)
    assert data_scale(x) == data_scale(sp.csr_matrix(x)) == scale


def test_cell_features_equal_the_bulk_standardisation_and_take_given_statistics():
    rng = np.random.default_rng(0)
    x = rng.poisson(3.0, (50, 12)).astype(np.float32)
    features = CellFeatures(sp.csr_matrix(x), np.arange(12))
    expected, _stats = model_features(x)
    np.testing.assert_allclose(features.numpy(slice(0, 50)), expected, atol=1e-5)
    subset = CellFeatures(x[:10], np.arange(12), stats=(features.mean, features.sd))
    np.testing.assert_allclose(subset.numpy(slice(0, 10)), features.numpy(slice(0, 10)), atol=1e-6)


def test_a_sample_standardised_once_gives_the_features_of_batch_by_batch_densifying(monkeypatch):
    from scdeal.data import features as module
    x = sp.random(300, 40, density=0.1, format="csr", dtype=np.float32, random_state=0)
    cached = CellFeatures(x, np.arange(5, 35))
    monkeypatch.setattr(module, "DENSE_CACHE_BYTES", 0)
    streamed = CellFeatures(x, np.arange(5, 35))
    assert cached.dense is not None and streamed.dense is None
    rows = np.array([299, 0, 17, 17])
    np.testing.assert_array_equal(cached.numpy(rows), streamed.numpy(rows))
    block = cached.numpy(slice(10, 20))
    block[:] = 0                                     # a caller's array, not a view of the cache
    np.testing.assert_array_equal(cached.numpy(slice(10, 20)), streamed.numpy(slice(10, 20)))


def test_batches_cover_every_item_once():
    assert [(s.start, s.stop) for s in batch_slices(10, 4)] == [(0, 4), (4, 8), (8, 10)]
    assert list(batch_slices(0, 4)) == []


def test_gene_positions_mark_absent_genes():
    assert gene_positions(["A", "B", "C"], ["C", "X", "A"]).tolist() == [2, -1, 0]
