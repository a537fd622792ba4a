"""The screen's report files: the bulk validation table, each sample's drug ranking and its clusters × drugs
heatmap, as MultiQC custom content."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import ROOT
from scdeal.pipeline.report import screen_bulk_report_files, screen_report_files
from scdeal.tl.screen import Efficacy, Likeness, cluster_ranking, sample_ranking

DRUGS = ["Erlotinib", "Gefitinib", "Cisplatin", "I-BET-762", "Nutlin-3a (-)"]
WEAK = "Cisplatin"  # no measured AUC, so no efficacy: reported, not ranked

LIKE = Likeness(best=0.62, lines_low=0.35, nearest=[("HCC827", 0.62), ("PC14", 0.6), ("H1975", 0.55)])


def mqc_table(path: Path) -> tuple[dict, pd.DataFrame]:
    """The YAML header and the rows of a MultiQC custom-content TSV."""
    lines = path.read_text().splitlines()
    config = yaml.safe_load("\n".join(line[2:] for line in lines if line.startswith("# ")))
    rows = [line.split("\t") for line in lines if not line.startswith("#")]
    return config, pd.DataFrame(rows[1:], columns=rows[0])


@pytest.fixture(scope="module")
def rankings():
    """A sample of 3 clusters × 5 drugs made with scdeal.tl.screen, as the screen step makes them."""
    rng = np.random.default_rng(0)
    clusters = pd.Series(np.repeat(["0", "1", "2"], 40))
    effect = np.array([[0.9, 0.2, 0.5, 0.3, 0.6], [0.2, 0.8, 0.5, 0.3, 0.6], [0.1, 0.1, 0.5, 0.3, 0.6]])
    prob = effect[np.repeat([0, 1, 2], 40)] + rng.normal(0, 0.05, (120, len(DRUGS)))
    members = np.clip(prob + rng.normal(0, 0.02, (3, *prob.shape)), 0.001, 0.999)
    trust = pd.DataFrame({"drug": DRUGS, "bulk_val_auroc": [0.9, 0.8, 0.5, 0.7, 0.75],
                          "members_sign_agreement": [1.0, 1.0, 0.4, 1.0, 0.67],
                          "verdict": ["consistent", "consistent", "weak_bulk_evidence", "consistent", "unstable"]})
    rate = np.array([0.1, 0.2, 0.2, 0.2, 0.3])
    auc = 1 - effect + rng.normal(0, 0.02, (4, *effect.shape))   # the full fit and 3 members × clusters × drugs
    auc[..., 2] = np.nan
    efficacy = Efficacy(drugs=DRUGS, clusters=["0", "1", "2"], sizes=np.array([40, 40, 40]), auc=auc,
                        ln_ic50=np.log(auc * 10), cell_auc=np.zeros((120, len(DRUGS))),
                        cell_ln_ic50=np.zeros((120, len(DRUGS))), val_spearman=np.full(len(DRUGS), 0.4),
                        typical_auc=np.full(len(DRUGS), 0.85), threshold=0.8, alpha=1.0, likeness=LIKE)
    sample = sample_ranking(members, efficacy, bulk_rate=rate, trust=trust)
    return cluster_ranking(members, efficacy, bulk_rate=rate, clusters=clusters), sample


def test_bulk_validation_table_lists_every_drug_best_first(tmp_path):
    metrics = pd.DataFrame({"drug": ["A", "B", "C"], "response_kind": ["binary", "binary+LN_IC50", "LN_IC50"],
                            "n_lines": [400, 380, 350], "n_sensitive": [40, 80, 70], "val_auroc": [0.55, 0.81, 0.7],
                            "test_auroc": [0.52, 0.85, 0.74], "test_spearman": [np.nan, 0.4, 0.3]})
    screen_bulk_report_files(tmp_path, metrics)
    config, table = mqc_table(tmp_path / "screen_bulk_validation_mqc.tsv")
    assert config["id"] == "scdeal_screen_bulk_validation" and config["plot_type"] == "table"
    assert config["section_name"] == "Screen: bulk validation per drug"
    assert "not better than chance" in config["description"] and "weak_bulk_evidence" in config["description"]
    assert table["Drug"].tolist() == ["B", "C", "A"]  # test AUROC, descending
    assert table.loc[table["Drug"] == "A", "test_spearman"].item() == ""  # no continuous measure: empty, not 'nan'
    assert set(table.columns[1:]) <= set(config["headers"]), "MultiQC hides columns left out of `headers`"
    assert config["pconfig"]["sort_rows"] is False and config["pconfig"]["col1_header"] == "Drug"


def test_ranking_lists_ranked_drugs_then_the_unranked_ones(tmp_path, rankings):
    clusters, sample = rankings
    screen_report_files(tmp_path, "pc9", cluster_ranking=clusters, sample_ranking=sample, top_drugs=20, likeness=LIKE)
    config, table = mqc_table(tmp_path / "pc9_screen_ranking_mqc.tsv")
    assert config["id"] == "scdeal_screen_ranking_pc9" and "pc9" in config["section_name"]
    assert set(table["Drug"]) == set(DRUGS)
    assert table["Drug"].iloc[-1] == WEAK and table["rank"].iloc[-1] == "not ranked"
    assert table["rank"].iloc[:-1].tolist() == ["1", "2", "3", "4"]
    assert table["efficacy"].iloc[:-1].astype(float).is_monotonic_decreasing
    assert table["efficacy_sd"].iloc[:-1].astype(float).gt(0).all()
    for text in table["sensitive"]:
        assert re.fullmatch(r"\d+ % \(\d+–\d+\)", text), text
    for text in table["responding"].iloc[:-1]:
        assert re.fullmatch(r"\d+ % \(± \d+\)", text), text
    assert table.loc[table["Drug"] == WEAK, "responding"].item() == ""
    assert "1 of 5 drugs have no measured GDSC AUC" in config["description"]
    assert set(table.columns[1:]) <= set(config["headers"]), "MultiQC hides columns left out of `headers`"
    assert config["pconfig"]["sort_rows"] is False


def test_heatmap_shows_clusters_by_the_top_ranked_drugs(tmp_path, rankings):
    clusters, sample = rankings
    screen_report_files(tmp_path, "pc9", cluster_ranking=clusters, sample_ranking=sample, top_drugs=3, likeness=LIKE)
    heatmap = json.loads((tmp_path / "pc9_screen_heatmap_mqc.json").read_text())
    assert heatmap["plot_type"] == "heatmap" and heatmap["id"] == "scdeal_screen_heatmap_pc9"
    top = sample.loc[sample["ranked"]].sort_values("efficacy", ascending=False)["drug"].head(3).tolist()
    assert heatmap["xcats"] == top and WEAK not in heatmap["xcats"]
    assert heatmap["ycats"] == ["cluster 0", "cluster 1", "cluster 2"]
    expected = clusters.pivot_table(index="cluster", columns="drug", values="efficacy").loc[["0", "1", "2"], top]
    assert np.allclose(heatmap["data"], expected.to_numpy(), atol=1e-4)
    pconfig = heatmap["pconfig"]
    assert (pconfig["min"], pconfig["max"]) == (0, 1) and len(pconfig["colstops"]) >= 2
    assert pconfig["xcats_samples"] is False and pconfig["ycats_samples"] is False  # drugs and clusters are not samples


def test_files_and_sections_are_unique_per_sample(tmp_path, rankings):
    clusters, sample = rankings
    for name in ("s1", "s2"):
        screen_report_files(tmp_path, name, cluster_ranking=clusters, sample_ranking=sample, top_drugs=20,
                            likeness=LIKE)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["s1_screen_heatmap_mqc.json", "s1_screen_ranking_mqc.tsv", "s2_screen_heatmap_mqc.json",
                     "s2_screen_ranking_mqc.tsv"]
    ids = {json.loads((tmp_path / f).read_text())["id"] if f.endswith(".json") else mqc_table(tmp_path / f)[0]["id"]
           for f in files}
    assert len(ids) == 4


def test_no_heatmap_without_a_ranked_drug(tmp_path, rankings):
    clusters, sample = rankings
    unranked = sample.assign(ranked=False, rank=pd.array([pd.NA] * len(sample), dtype="Int64"))
    screen_report_files(tmp_path, "s1", cluster_ranking=clusters.assign(ranked=False), sample_ranking=unranked,
                        top_drugs=20, likeness=LIKE)
    assert not (tmp_path / "s1_screen_heatmap_mqc.json").exists()
    _, table = mqc_table(tmp_path / "s1_screen_ranking_mqc.tsv")
    assert set(table["rank"]) == {"not ranked"} and len(table) == len(DRUGS)


@pytest.mark.slow
def test_multiqc_renders_the_screen_sections(tmp_path, rankings):
    clusters, sample = rankings
    data = tmp_path / "data"
    data.mkdir()
    screen_report_files(data, "pc9", cluster_ranking=clusters, sample_ranking=sample, top_drugs=20, likeness=LIKE)
    screen_bulk_report_files(data, pd.DataFrame({
        "drug": DRUGS, "response_kind": "binary", "n_lines": 300, "n_sensitive": 40,
        "val_auroc": [0.9, 0.8, 0.5, 0.7, 0.75], "test_auroc": [0.88, 0.79, 0.52, 0.71, 0.7],
        "test_spearman": np.nan}))
    config = ROOT / "assets" / "multiqc_config.yml"
    proc = subprocess.run([sys.executable, "-m", "multiqc", str(data), "--config", str(config), "--outdir",
                           str(tmp_path / "mqc"), "--filename", "multiqc_report.html", "--force", "--no-ansi"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    html = (tmp_path / "mqc" / "multiqc_report.html").read_text()
    for section in ("scdeal_screen_bulk_validation", "scdeal_screen_ranking_pc9", "scdeal_screen_heatmap_pc9"):
        assert section in html, section
    assert "Nutlin-3a (-)" in html and "not ranked" in html
    plots = json.loads((tmp_path / "mqc" / "multiqc_report_data" / "multiqc_data.json").read_text())["report_plot_data"]
    assert plots["scdeal_screen_heatmap_pc9_plot"]["datasets"][0]["dconfig"]["subtitle"] == "3 clusters"
    assert "WARNING" not in proc.stderr, proc.stderr[-2000:]


def test_a_long_ranking_shows_the_best_ranked_drugs_and_points_to_the_full_table(tmp_path, rankings):
    """MultiQC draws a table of more than a few hundred rows as a violin plot: the report keeps the top 100."""
    clusters, sample = rankings
    many = pd.concat([sample.assign(drug=sample["drug"] + f" #{k}", rank=sample["rank"] + 5 * k) for k in range(130)],
                     ignore_index=True)
    screen_report_files(tmp_path, "big", cluster_ranking=clusters, sample_ranking=many, top_drugs=20, likeness=LIKE)
    config, table = mqc_table(tmp_path / "big_screen_ranking_mqc.tsv")
    assert len(table) == 100 and (table["rank"] != "not ranked").all()
    assert table["rank"].astype(int).is_monotonic_increasing
    assert "screen_ranking.tsv lists every drug (130 not ranked: no measured GDSC AUC" in config["description"]


def test_a_sample_unlike_every_bulk_line_is_told_its_absolute_efficacy_is_an_extrapolation(tmp_path, rankings):
    clusters, sample = rankings
    screen_report_files(tmp_path, "like", cluster_ranking=clusters, sample_ranking=sample, top_drugs=20, likeness=LIKE)
    like = mqc_table(tmp_path / "like_screen_ranking_mqc.tsv")[0]["description"]
    assert "as like a bulk line as the lines are to one another" in like and "HCC827" in like
    unlike = Likeness(best=0.30, lines_low=0.35, nearest=[("SUDHL16", 0.30), ("PL21", 0.30)])
    screen_report_files(tmp_path, "unlike", cluster_ranking=clusters, sample_ranking=sample, top_drugs=20,
                        likeness=unlike)
    text = mqc_table(tmp_path / "unlike_screen_ranking_mqc.tsv")[0]["description"]
    assert "unlike every bulk line" in text and "0.30" in text and "extrapolation" in text
    assert unlike.summary()["like_a_bulk_line"] is False and LIKE.summary()["like_a_bulk_line"] is True
