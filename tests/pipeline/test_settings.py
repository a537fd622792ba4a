"""Every step setting has one source, the step's configuration: the local runner reads it from there and the
Nextflow layer's copies (params, schema, per-process flags, docs tables) are generated from it."""
from __future__ import annotations

import json
import shutil
from dataclasses import make_dataclass

import pytest

from conftest import ROOT
from scdeal._utils import setting
from scdeal.pipeline import settings
from scdeal.pipeline.config import config_params, schema_parameters
from scdeal.pipeline.steps import cluster


def test_generated_files_are_current():
    """`scdeal sync-config` was run after the last change to a step's settings."""
    stale = settings.sync_config(ROOT, check=True)
    assert not stale, f"run `make sync-config` (or `scdeal sync-config`): stale {[str(p) for p in stale]}"


def test_the_check_fails_on_a_hand_edited_copy(tmp_path):
    for rel in ("nextflow_schema.json", "nextflow.config", "conf/flags.config", "docs/usage.md"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, tmp_path / rel)
    config = tmp_path / "nextflow.config"
    config.write_text(config.read_text().replace("n_pcs                       = 30", "n_pcs                       = 50"))
    assert settings.sync_config(tmp_path, check=True) == [config]
    assert settings.sync_config(tmp_path) == [config]
    assert config_params(config.read_text(), tmp_path)["n_pcs"] == 30


def test_a_new_field_is_the_only_edit_that_exposes_a_setting(tmp_path, monkeypatch):
    """Add a field to the cluster step's configuration: the runner's flags, the params block, the schema (with
    its type, limits and help), the process's flags and the docs table all carry it after a sync."""
    base = cluster.ClusterConfig
    grown = make_dataclass("ClusterConfig", [("min_counts", int, setting(500, "QC: drop cells with fewer counts",
                                                                          minimum=0))], bases=(base,), frozen=True)
    monkeypatch.setattr(cluster, "ClusterConfig", grown)
    settings.settings_of.cache_clear()
    try:
        for rel in ("nextflow_schema.json", "nextflow.config", "conf/flags.config", "docs/usage.md"):
            (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / rel, tmp_path / rel)
        assert ("min_counts", "min_counts") in settings.step_flags()["SCDEAL_CLUSTER"]
        settings.sync_config(tmp_path)
        spec = schema_parameters(tmp_path)["min_counts"]
        assert spec == {"type": "integer", "description": "QC: drop cells with fewer counts.", "default": 500,
                        "minimum": 0}
        schema = json.loads((tmp_path / "nextflow_schema.json").read_text())
        assert "min_counts" in schema["$defs"]["single_cell_options"]["properties"]
        assert config_params((tmp_path / "nextflow.config").read_text(), tmp_path)["min_counts"] == 500
        assert '"--min_counts ${params.min_counts}"' in (tmp_path / "conf/flags.config").read_text()
        assert "| `--min_counts` | `500` | QC: drop cells with fewer counts. |" in (tmp_path / "docs/usage.md").read_text()
    finally:
        settings.settings_of.cache_clear()


def test_renamed_parameters_feed_every_field_they_name():
    """The bulk model's learning rate and epochs are --bulk_lr and --bulk_epochs (--lr is the transfer's)."""
    flags = dict(settings.step_flags()["SCDEAL_BULK_PRETRAIN"])
    assert (flags["lr"], flags["ae_epochs"], flags["predictor_epochs"]) == ("bulk_lr", "bulk_epochs", "bulk_epochs")
    assert dict(settings.step_flags()["SCDEAL_TRANSFER"])["lr"] == "lr"


@pytest.mark.parametrize(("param", "limits"), [("sensitive_fraction", (0.01, 0.99)), ("threshold", (0, 1)),
                                               ("bulk_epochs", (1, None)), ("min_gene_overlap", (1, None))])
def test_the_schema_keeps_each_settings_range(param, limits):
    spec = schema_parameters(ROOT)[param]
    assert (spec.get("minimum"), spec.get("maximum")) == limits
