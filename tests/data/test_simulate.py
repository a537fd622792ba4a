"""The simulator makes the shipped test data."""
from __future__ import annotations

import anndata as ad
import pandas as pd

from conftest import ROOT
from scdeal.data.simulate import SimParams, simulate


def test_shipped_test_data_is_what_the_simulator_makes(tmp_path):
    paths = simulate(tmp_path, SimParams(n_genes=400, n_lines=200, n_cells=300, n_samples=2))
    shipped = ROOT / "assets" / "test_data"
    pd.testing.assert_frame_equal(pd.read_csv(paths["bulk_expression"], index_col=0),
                                  pd.read_csv(shipped / "bulk_expression.csv.gz", index_col=0))
    for key in ("bulk_screen_ic50", "bulk_screen_auc"):
        pd.testing.assert_frame_equal(pd.read_csv(paths[key]), pd.read_csv(shipped / paths[key].name))
    for k in (1, 2):
        made, ours = ad.read_h5ad(paths[f"sample{k}"]), ad.read_h5ad(shipped / f"sample{k}.h5ad")
        assert (made.X != ours.X).nnz == 0 and list(made.obs_names) == list(ours.obs_names)
