"""MultiQC custom content written by each step (`*_mqc.tsv`, `*_mqc.json`, `*_mqc.png`). Every (sample, drug) appears
under the name `<sample>_<drug>` so MultiQC's general statistics merge the rows that several steps contribute; a
sample's screen (drug `all`) under `<sample>_screen`."""
from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import NamedTuple

import matplotlib as mpl

mpl.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..data import keys
from ..data.writers import atomic_path, write_text, write_tsv
from ..tl.screen import LIKE_A_LINE_PERCENTILE, Likeness

__all__ = ["Section", "bulk_report_files", "cluster_report_files", "evaluation_report_files", "explain_report_files",
           "screen_bulk_report_files", "screen_report_files", "transfer_report_files"]


class Section(NamedTuple):
    """A MultiQC report section: its id, title and description."""

    id: str
    name: str
    description: str

    def payload(self, plot_type: str, **content) -> dict:
        """The section as MultiQC custom content: id, name, description, plot type, then `content`."""
        return {"id": self.id, "section_name": self.name, "description": self.description, "plot_type": plot_type,
                **content}


def quoted(text: object) -> str:
    """`text` as a YAML single-quoted string ('' is a literal ')."""
    return "'" + str(text).replace("'", "''") + "'"


def mqc_header(section: Section, plot_type: str, extra: str = "") -> str:
    """The commented YAML header of a MultiQC custom-content table."""
    lines = [f"{key}: {quoted(value)}" for key, value in section.payload(plot_type).items()] + ([extra] if extra else [])
    return "".join(f"# {line}\n" for block in lines for line in block.splitlines())


def headers_block(columns: dict[str, dict]) -> str:
    """The `headers` block of a MultiQC table: each column's options, strings quoted (MultiQC shows only the
    columns named here)."""
    return "headers:\n" + "\n".join(
        f"  {key}: {{{', '.join(f'{k}: {quoted(v) if isinstance(v, str) else v}' for k, v in options.items())}}}"
        for key, options in columns.items())


def write_mqc_table(path: Path, section: Section, frame: pd.DataFrame, *, plot_type: str = "table",
                    extra: str = "") -> None:
    """`frame` as a MultiQC custom-content table (`extra`: more header lines, e.g. column `headers`)."""
    write_tsv(path, frame, header=mqc_header(section, plot_type, extra))


def write_mqc_linegraph(path: Path, section: Section, series: dict[str, list], *, xlab: str, ylab: str) -> None:
    """A MultiQC line graph: one line per key of `series`, each a list of [x, y] pairs."""
    payload = section.payload("linegraph", pconfig={"id": f"{section.id}_plot", "title": section.name, "xlab": xlab,
                                                    "ylab": ylab}, data=series)
    write_text(path, json.dumps(payload, indent=1, default=float))


def epoch_pairs(epochs: pd.Series, values: pd.Series) -> list[list[float]]:
    """[[epoch, value], ...]: numeric x values (dict keys would become strings and sort as text)."""
    return [[int(e), float(v)] for e, v in zip(epochs, values, strict=True)]


def save_figure(fig, path: Path, section: Section) -> None:
    """Save `fig` as PNG and as a MultiQC section (the image embedded in `<stem>_mqc.json`)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=90, bbox_inches="tight", format="png")
    plt.close(fig)
    with atomic_path(path, suffix=".png") as tmp:
        tmp.write_bytes(buffer.getvalue())
    image = base64.b64encode(buffer.getvalue()).decode()
    payload = section.payload("html", data=f'<img src="data:image/png;base64,{image}" style="max-width:100%">')
    write_text(path.with_name(path.stem + "_mqc.json"), json.dumps(payload))


def run_name(sample: str, drug: str) -> str:
    """The name a (sample, drug) has in every report table, so MultiQC merges its rows."""
    return f"{sample}_{drug}"


# ---------------------------------------------------------------- per step

def bulk_lines_report_files(out: Path, drug: str, *, bulk) -> None:
    """The bulk lines table row of one drug: matched cell lines, class balance and kind of response."""
    info = bulk.uns[keys.BULK]
    row = pd.DataFrame([{"Drug": drug, "Lines": info["n_matched"], "Sensitive": info["n_sensitive"],
                         "Resistant": info["n_resistant"], "Response": info["response_kind"]}])
    write_mqc_table(out / f"bulk_{drug}_lines_mqc.tsv", Section(
        "scdeal_bulk_lines", "Bulk lines",
        "The cell lines each drug's bulk model learns from: lines matched to the expression table and their "
        "classes. How well the models rank held-out lines is in the trust and baseline tables."), row)


def bulk_report_files(out: Path, drug: str, *, model) -> None:
    """The pretrained bulk models table row and the bulk training curves of one drug (--member_init pretrained)."""
    test, val = model.metrics[0]["test"], model.metrics[0]["val"]
    row = pd.DataFrame([{"Drug": drug, "Val AUROC": val["auroc"], "Test AUROC": test["auroc"], "Test AP": test["ap"],
                         "Test F1": test["f1"]}])
    write_mqc_table(out / f"bulk_{drug}_mqc.tsv", Section(
        "scdeal_bulk_models", "Pretrained bulk models",
        "The bulk model every ensemble member starts from (--member_init pretrained): held-out test performance "
        "(lines never seen in training or early stopping)."), row)
    history = pd.DataFrame(model.history)
    series = {f"{drug} {stage} ({column})": epoch_pairs(history.loc[history["stage"] == stage, "epoch"],
                                                        history.loc[history["stage"] == stage, column])
              for stage, column in (("autoencoder", "val_recon"), ("predictor", "val_loss"))}
    write_mqc_linegraph(out / f"bulk_{drug}_curve_mqc.json", Section(
        f"scdeal_bulk_curve_{drug}", f"Bulk pretraining: {drug}",
        "Validation loss per epoch of the autoencoder and the response predictor "
        "(training stops when it no longer improves)."), series, xlab="epoch", ylab="validation loss")


def cluster_report_files(out: Path, sample: str, adata) -> None:
    """The samples table row (QC and clustering) of one sample."""
    info = adata.uns[keys.CLUSTER_INFO]
    row = pd.DataFrame([{"Sample": sample, "Cells in": info["qc"]["cells_in"], "Cells after QC": info["qc"]["cells_after_qc"],
                         "Genes after QC": info["qc"]["genes_after_qc"], "Input scale": info["input_scale"],
                         "Clusters": info["n_clusters"]}])
    write_mqc_table(out / f"{sample}_cluster_mqc.tsv", Section(
        "scdeal_samples", "Samples: QC and clustering",
        "Cells before and after QC, the detected input scale and the number of Leiden clusters."), row)


def transfer_report_files(out: Path, sample: str, drug: str, *, cells, history: pd.DataFrame, summary: dict) -> None:
    """General statistics, transfer curves, UMAP, baseline comparison and trust tables of one (sample, drug)."""
    name = run_name(sample, drug)
    qc = cells.uns[keys.CLUSTER_INFO]["qc"]
    general = pd.DataFrame([{"Sample": name, "cells_in": qc["cells_in"], "cells_after_qc": qc["cells_after_qc"],
                             "genes_shared": summary["n_genes_used"], "clusters": summary["n_clusters"],
                             "frac_sensitive": summary["sensitive_fraction_labelled"]}])
    count = "{:,.0f}"
    headers = headers_block({
        "cells_in": {"title": "Cells in", "format": count}, "cells_after_qc": {"title": "Cells QC", "format": count},
        "genes_shared": {"title": "Genes shared", "description": "genes shared with the bulk model", "format": count},
        "clusters": {"title": "Clusters", "format": count},
        "frac_sensitive": {"title": "Sensitive", "description": "fraction of cells predicted sensitive", "max": 1, "min": 0,
                           "format": "{:,.2f}"}})
    write_mqc_table(out / f"{name}_general_mqc.tsv", Section("scdeal_general", "scdeal", "Per (sample, drug) summary."),
                    general, plot_type="generalstats", extra=headers)
    member0 = history[history["member"] == 0] if "member" in history else history
    if "stage" in member0:
        member0 = member0[member0["stage"] == "transfer"]
    series = {f"{name} {term}": epoch_pairs(member0["epoch"], member0[term]) for term in
              ("bulk", "bulk_response", "mmd", "cluster", "anchor")  # bulk_response is 0 without a continuous measure
              if term in member0 and member0[term].abs().sum() > 0}
    write_mqc_linegraph(out / f"{name}_transfer_curve_mqc.json", Section(
        f"scdeal_transfer_curve_{name}", f"Transfer training: {name}",
        "Each loss term per epoch (first ensemble member): bulk response loss (and the continuous-response "
        "regression where there is one), MMD between bulk and cell embeddings, cluster regularisation, and the "
        "anchor (1 − correlation with the member's anchor, by default the signature of its bulk lines scored on "
        "the cells: 0 keeps its direction, 2 would reverse it)."),
        series, xlab="epoch", ylab="loss")
    umap_figure(cells, out / f"{name}_umap.png", name)
    comparison_table(out, name, summary["comparison"])
    trust_table(out, name, summary["trust"])


def comparison_table(out: Path, name: str, compare: dict) -> None:
    """The deep transfer vs baseline table row (nothing without a baseline)."""
    if "baseline" not in compare:
        return
    row = pd.DataFrame([{"Sample": name, "Baseline": compare["baseline"],
                         "scdeal bulk test AUROC": compare["scdeal_bulk_test_auroc"],
                         "Baseline bulk test AUROC": compare["baseline_bulk_test_auroc"],
                         "Spearman per cell": compare["spearman_scdeal_vs_baseline"]}])
    write_mqc_table(out / f"{name}_comparison_mqc.tsv", Section(
        "scdeal_comparison", "Deep transfer vs baseline",
        "The simple baseline (--baseline) trained on the same bulk lines and genes, applied to the cells "
        "without transfer: both models' AUROC on the same held-out bulk test lines, and the rank "
        "correlation of their per-cell scores. Where cell labels exist, the evaluation table scores "
        "both on the cells."), row)


TRUST_COLUMNS = {  # key in the diagnostic → its column's header options; the long advice text last
    "verdict": {"title": "Verdict"},
    "members_sign_agreement": {"title": "Members agreeing", "format": "{:,.2f}"},
    "members_reset_to_source": {"title": "Members reset", "format": "{:,.0f}"},
    "bulk_val_auroc_genes_used": {"title": "Bulk val AUROC (genes used)", "format": "{:,.3f}"},
    "spearman_transfer_vs_direct": {"title": "Spearman transfer vs direct", "format": "{:,.2f}"},
    "spearman_transfer_vs_baseline": {"title": "Spearman transfer vs baseline", "format": "{:,.2f}"},
    "spearman_direct_vs_baseline": {"title": "Spearman direct vs baseline", "format": "{:,.2f}"},
    "advice": {"title": "What to do"},
}


def trust_table(out: Path, name: str, trust: dict) -> None:
    """The trust diagnostic table row: the verdict, the advice and the numbers behind them."""
    present = {k: v for k, v in TRUST_COLUMNS.items() if k in trust}
    row = pd.DataFrame([{"Sample": name, **{k: trust[k] for k in present}}])
    write_mqc_table(out / f"{name}_trust_mqc.tsv", Section(
        "scdeal_trust", "Trust diagnostic",
        "Does the call follow the bulk evidence? Members (each on its own bootstrap of bulk lines) "
        "should rank cells the same way; the transfer should agree in direction with the bulk model "
        "applied directly (the direct model) and with the linear baseline; the direct model should rank held-out "
        "bulk lines well on the genes this sample has. Verdicts: consistent, unstable, disputed, "
        "weak_bulk_evidence. No cell label is used."), row, extra=headers_block(present))


def umap_figure(cells, path: Path, title: str) -> None:
    """UMAP coloured by probability, call and cluster, as PNG and report section (nothing without a UMAP)."""
    umap = cells.obsm.get(keys.UMAP)
    if umap is None:
        return
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    sc_ = axes[0].scatter(umap[:, 0], umap[:, 1], c=cells.obs[keys.PROB], cmap="coolwarm", s=6, vmin=0, vmax=1)
    fig.colorbar(sc_, ax=axes[0], label="P(sensitive)")
    axes[0].set_title(f"{title}: probability of sensitivity")
    for label, colour in (("resistant", "#2166ac"), ("sensitive", "#b2182b"), ("uncertain", "#bdbdbd")):
        mask = (cells.obs[keys.CALL] == label).to_numpy()
        axes[1].scatter(umap[mask, 0], umap[mask, 1], s=6, c=colour, label=f"{label} ({mask.sum()})")
    axes[1].legend(markerscale=3, fontsize=8)
    axes[1].set_title("predicted label")
    clusters = cells.obs[keys.CLUSTER].astype(str)
    for i, cl in enumerate(sorted(clusters.unique(), key=lambda c: (len(c), c))):
        mask = (clusters == cl).to_numpy()
        axes[2].scatter(umap[mask, 0], umap[mask, 1], s=6, color=plt.cm.tab20(i % 20), label=cl)
    axes[2].legend(markerscale=3, fontsize=7, ncol=2, title="cluster")
    axes[2].set_title("Leiden cluster")
    for ax in axes:
        ax.set_xticks([]), ax.set_yticks([]), ax.set_xlabel("UMAP1"), ax.set_ylabel("UMAP2")
    save_figure(fig, path, Section(
        f"scdeal_umap_{title}", f"UMAP: {title}",
        "Cells coloured by the predicted probability of sensitivity, the predicted label and the Leiden cluster."))


def explain_report_files(out: Path, sample: str, drug: str, *, signature: pd.DataFrame, attributions,
                         summary: dict) -> None:
    """The signature genes table and the heatmap of their attributions across clusters."""
    name = run_name(sample, drug)
    top = signature.groupby("direction").head(15)
    table = top.assign(Sample=[f"{name} {d} #{r}" for d, r in zip(top["direction"], top["rank"], strict=True)])[
        ["Sample", "gene", "direction", "effect", "mean_abs_attribution", "fraction_towards_sensitive",
         "fraction_towards_resistant"]]
    ov = summary["de_overlap"]
    headers = headers_block({
        "gene": {"title": "Gene", "description": "HGNC symbol"},
        "direction": {"title": "Direction", "description": "sensitive: higher expression raises the probability of sensitivity"},
        "effect": {"title": "Effect", "description": "mean attribution × sign of expression vs the sample mean",
                   "format": "{:,.4f}"},
        "mean_abs_attribution": {"title": "Mean |attribution|", "format": "{:,.4f}"},
        **{f"fraction_towards_{d}": {"title": f"Cells → {d}", "min": 0, "max": 1, "format": "{:,.2f}"}
           for d in ("sensitive", "resistant")}})
    write_mqc_table(out / f"{name}_signature_mqc.tsv", Section(
        f"scdeal_signature_{name}", f"Signature genes: {name}",
        f"Top integrated-gradient genes pushing cells towards sensitive or resistant (baseline: sample mean; "
        f"{summary['n_steps']} steps; mean |delta| {summary['mean_abs_delta']:.2g}). Overlap of the top "
        f"{ov['top_n']} with the top DE genes (predicted sensitive vs resistant): {ov['overlap']} "
        f"(expected {ov['expected']:.1f}, hypergeometric p = {ov['hypergeom_p']:.2g})."), table, extra=headers)
    genes = top["gene"].tolist()
    if not genes:
        return
    frame = pd.DataFrame(attributions[:, genes].X, columns=genes)
    frame[keys.CLUSTER] = attributions.obs[keys.CLUSTER].astype(str).to_numpy()
    means = frame.groupby(keys.CLUSTER).mean()
    fig, ax = plt.subplots(figsize=(max(6, 0.35 * len(genes)), 0.5 * len(means) + 2))
    lim = float(np.abs(means.to_numpy()).max()) or 1.0
    im = ax.imshow(means.to_numpy(), cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_xticks(range(len(genes)), genes, rotation=90, fontsize=8)
    ax.set_yticks(range(len(means)), [f"cluster {c}" for c in means.index], fontsize=8)
    fig.colorbar(im, ax=ax, label="mean attribution (→ sensitive > 0)")
    ax.set_title(f"{name}: signature genes across clusters")
    save_figure(fig, out / f"{name}_signature_heatmap.png", Section(
        f"scdeal_signature_heatmap_{name}", f"Signature genes across clusters: {name}",
        "Mean integrated-gradient attribution of the top signature genes in each Leiden cluster "
        "(red: pushes towards sensitive, blue: towards resistant)."))


def evaluation_report_files(out: Path, sample: str, drug: str, *, metrics: dict, table: pd.DataFrame) -> None:
    """The evaluation general statistics and the evaluation table of one (sample, drug)."""
    name = run_name(sample, drug)
    general = pd.DataFrame([{"Sample": name, "auroc": metrics["auroc"], "ap": metrics["ap"], "f1": metrics["f1"]}])
    headers = headers_block({key: {"title": key.upper(), "min": 0, "max": 1, "format": "{:,.3f}"}
                             for key in ("auroc", "ap", "f1")})
    write_mqc_table(out / f"{name}_evaluation_general_mqc.tsv",
                    Section("scdeal_general_eval", "scdeal evaluation", "Metrics against ground-truth labels."),
                    general, plot_type="generalstats", extra=headers)
    keys = ("precision", "recall", "f1", "auroc", "ap", "baseline_auroc", "baseline_ap", "ami", "ari")
    row = pd.DataFrame([{"Sample": name, **{k: metrics[k] for k in keys if k in metrics},
                         "TP": int(table.loc["sensitive", "sensitive"]), "FN": int(table.loc["sensitive", "resistant"]),
                         "FP": int(table.loc["resistant", "sensitive"]), "TN": int(table.loc["resistant", "resistant"]),
                         "uncertain": int(table["uncertain"].sum())}])
    write_mqc_table(out / f"{name}_evaluation_mqc.tsv", Section(
        "scdeal_evaluation", "Evaluation against labels",
        "Per-cell precision, recall, F1 (predicted labels), AUROC and AP (probabilities), the same "
        "AUROC and AP of the baseline model where one was run, AMI/ARI "
        "(Leiden clusters vs labels), the confusion matrix (sensitive = positive) and the cells called "
        "uncertain (left out of TP/FN/FP/TN; not counted as sensitive in precision, recall and F1). Labels are never "
        "used to train or choose anything."), row)


# ---------------------------------------------------------------- drug screen (drug `all`)

SCREEN_BULK_COLUMNS = {  # metrics column → (title, description, format, (min, max) or None)
    "response_kind": ("Response", "binary calls and/or the continuous measure the head learnt from", None, None),
    "n_lines": ("Lines", "cell lines with a response to the drug", "{:,.0f}", None),
    "n_sensitive": ("Sensitive", "of those, lines called sensitive", "{:,.0f}", None),
    "val_auroc": ("Val AUROC", "the drug head's AUROC on validation lines (early stopping, calibration)", "{:,.3f}", (0, 1)),
    "test_auroc": ("Test AUROC", "the drug head's AUROC on held-out test lines", "{:,.3f}", (0, 1)),
    "test_spearman": ("Test Spearman", "rank correlation of the regression head with the continuous response on "
                      "test lines (empty without one)", "{:,.2f}", (-1, 1)),
}


def table_headers(columns: dict, *, col1: str) -> str:
    """The `headers` and `pconfig` blocks of a MultiQC table whose rows keep the file's order.
    `columns`: key → (title, description, format or None, (min, max) or None)."""
    options = {key: {"title": title, "description": description, **({"format": fmt} if fmt else {}),
                     **({"min": scale[0], "max": scale[1]} if scale else {})}
               for key, (title, description, fmt, scale) in columns.items()}
    return "\n".join([headers_block(options), "pconfig:", "  sort_rows: false", f"  col1_header: {quoted(col1)}"])


def screen_bulk_report_files(out: Path, metrics: pd.DataFrame) -> None:
    """The screen's bulk validation table, best test AUROC first: one row of `metrics` per drug of the multi-task
    bulk model (drug, response_kind, n_lines, n_sensitive, val_auroc, test_auroc, test_spearman: NaN without a
    continuous response)."""
    table = metrics.sort_values("test_auroc", ascending=False, na_position="last", kind="stable")
    table = table[["drug", *SCREEN_BULK_COLUMNS]].rename(columns={"drug": "Drug"})
    write_mqc_table(out / "screen_bulk_validation_mqc.tsv", Section(
        "scdeal_screen_bulk_validation", "Screen: bulk validation per drug",
        "The screen's one bulk model has a head per drug, trained on the cell lines with a response to that drug. "
        "How well each head ranks cell lines it never trained on: validation and held-out test AUROC (0.5 is "
        "chance). A sample's transferred call of a drug whose direct models are not better than chance on held-out "
        "lines (on the genes it shares with the bulk data, below --min_bulk_auroc) gets the verdict "
        "weak_bulk_evidence."), table, extra=table_headers(SCREEN_BULK_COLUMNS, col1="Drug"))


SCREEN_REPORT_ROWS = 100  # drugs in the report's ranking table at most (the TSV has them all)
SCREEN_RANKING_COLUMNS = {  # column → (title, description, format or None, (min, max) or None)
    "rank": ("Rank", "by efficacy; 'not ranked': no measured GDSC AUC for the drug, so no efficacy", None, None),
    "efficacy": ("Efficacy", "1 − predicted GDSC AUC: the predicted mean growth inhibition over the screen's dose range "
                 "(0 none, 1 total), the sample's clusters weighted by their cells", "{:,.3f}", (0, 1)),
    "efficacy_sd": ("Efficacy SD", "spread of the efficacy over the efficacy model's bootstrap members (uncertainty)",
                    "{:,.3f}", None),
    "vs_typical": ("vs typical line", "the drug's mean measured AUC over the bulk lines minus the sample's predicted "
                   "AUC: above 0, predicted to hit this sample harder than it hits a typical line", "{:+,.3f}", None),
    "ln_ic50": ("Predicted LN_IC50", "natural log of the predicted IC50 (µM), clusters weighted by their cells; "
                "empty without GDSC LN_IC50 tables", "{:,.2f}", None),
    "responding": ("Cells responding", "% of cells in clusters whose predicted AUC is below --auc_threshold, "
                   "± its spread over the members", None, None),
    "efficacy_val_spearman": ("Model Spearman", "the efficacy model's Spearman with the drug's measured AUC on "
                              "validation lines: how far its differences between clusters carry", "{:,.2f}", (-1, 1)),
    "sensitive": ("Sensitive cells (call)", "cells the transferred ensemble calls sensitive, % with its 95 % Wilson "
                  "interval", None, None),
    "mean_prob": ("Mean P(sensitive)", "mean over the sample's cells of the transferred, calibrated probability of "
                  "sensitivity (relative to the drug's rate of sensitive bulk lines)", "{:,.3f}", (0, 1)),
    "bulk_val_auroc": ("Bulk AUROC", "the direct models' out-of-fold AUROC on the genes the sample shares with the bulk "
                       "data: the evidence the call rests on", "{:,.3f}", (0, 1)),
    "verdict": ("Verdict", "trust diagnostic of the call (consistent; unstable: members disagree; disputed: the call "
                "ranks the cells against the efficacy model; weak_bulk_evidence)", None, None),
}


def absolute_level_note(likeness: Likeness) -> str:
    """What the report says of the efficacy's absolute level, from the sample's likeness to the bulk lines."""
    nearest = ", ".join(name for name, _ in likeness.nearest[:3])
    if likeness.like_a_line:
        return (f"The sample's pseudo-bulk is as like a bulk line as the lines are to one another (correlation "
                f"{likeness.best:.2f}; nearest: {nearest}). ")
    return (f"<b>The sample's pseudo-bulk is unlike every bulk line</b> (best correlation {likeness.best:.2f}, where "
            f"{100 - LIKE_A_LINE_PERCENTILE} % of the lines have a line at {likeness.lines_low:.2f} or closer; nearest: "
            f"{nearest}): the absolute "
            "efficacy is an extrapolation across platforms. Compare drugs and clusters within the sample, and read "
            "'vs typical line' with care. ")


def percent(value: float) -> str:
    """A fraction as a whole percentage: 0.342 → '34'."""
    return f"{100 * value:.0f}"


def screen_report_files(out: Path, sample: str, *, cluster_ranking: pd.DataFrame, sample_ranking: pd.DataFrame,
                        top_drugs: int, likeness: Likeness) -> None:
    """The screen of one sample: the drug ranking table (`sample_ranking`, scdeal.tl.screen.sample_ranking), with
    the check of the efficacy's absolute level (`likeness`), and the clusters × drugs heatmap of efficacy
    (`cluster_ranking`, scdeal.tl.screen.cluster_ranking) of the `top_drugs` best ranked drugs."""
    name = run_name(sample, "screen")
    ranking = sample_ranking.sort_values(["ranked", "rank"], ascending=[False, True], na_position="last", kind="stable")
    unranked = int((~ranking["ranked"].astype(bool)).sum())
    listed_last = (f"{unranked} of {len(ranking)} drugs have no measured GDSC AUC, so no efficacy: listed last, not "
                   "ranked. " if unranked else "")
    if len(ranking) > SCREEN_REPORT_ROWS:  # MultiQC shows a long table as a violin plot, unreadable as a ranking
        listed_last = (f"The {SCREEN_REPORT_ROWS} best ranked of {len(ranking)} drugs are shown; screen_ranking.tsv "
                       f"lists every drug ({unranked} not ranked: no measured GDSC AUC). ")
        ranking = ranking.head(SCREEN_REPORT_ROWS)
    shown = {  # the columns written as text; the others as they are
        "rank": [str(int(r)) if ok else "not ranked" for r, ok in zip(ranking["rank"], ranking["ranked"], strict=True)],
        "responding": ["" if pd.isna(f) else f"{percent(f)} % (± {percent(sd)})" for f, sd in
                       zip(ranking["responding_fraction"], ranking["responding_fraction_sd"], strict=True)],
        "sensitive": [f"{percent(f)} % ({percent(lo)}–{percent(hi)})" for f, lo, hi in
                      zip(ranking["sensitive_fraction"], ranking["sensitive_low"], ranking["sensitive_high"], strict=True)]}
    columns = {k: v for k, v in SCREEN_RANKING_COLUMNS.items() if k in shown or k in ranking}
    table = pd.DataFrame({"Drug": ranking["drug"].to_numpy(),
                          **{k: shown[k] if k in shown else ranking[k].to_numpy() for k in columns}})
    write_mqc_table(out / f"{name}_ranking_mqc.tsv", Section(
        f"scdeal_screen_ranking_{sample}", f"Screen ranking: {sample}",
        f"Every drug of the screen applied to {sample}, ranked by efficacy: 1 − the GDSC AUC a ridge of measured AUC "
        "predicts from each cluster's pseudo-bulk profile, weighted by the clusters' cells. AUC is on the screen's "
        "fixed dose range, so efficacy compares drugs: 0.3 means about 30 % growth inhibition averaged over the "
        f"range. {absolute_level_note(likeness)}{listed_last}Beside it, the transferred ensemble's per-cell call and "
        "its trust verdict; give a drug a row of its own for its signature genes, the baseline comparison and an "
        "evaluation against labels."),
        table, extra=table_headers(columns, col1="Drug"))
    screen_heatmap(out / f"{name}_heatmap_mqc.json", sample, cluster_ranking=cluster_ranking,
                   drugs=ranking.loc[ranking["ranked"], "drug"].head(top_drugs).tolist())


def screen_heatmap(path: Path, sample: str, *, cluster_ranking: pd.DataFrame, drugs: list[str]) -> None:
    """A MultiQC heatmap of the efficacy per cluster (rows) and drug (columns, in `drugs`' order); nothing when no
    drug is ranked."""
    if not drugs:
        return
    clusters = list(dict.fromkeys(cluster_ranking["cluster"].astype(str)))
    values = (cluster_ranking.assign(cluster=cluster_ranking["cluster"].astype(str))
              .pivot_table(index="cluster", columns="drug", values="efficacy", aggfunc="first")
              .reindex(index=clusters, columns=drugs))
    section = Section(
        f"scdeal_screen_heatmap_{sample}", f"Screen: {sample}, clusters × drugs",
        f"Efficacy of the {len(drugs)} best ranked drugs of {sample} (columns, best first) for each Leiden cluster "
        "(rows): 1 − the GDSC AUC predicted from the cluster's mean expression (0: no effect over the screen's dose "
        "range; 1: total inhibition). A drug dark in one cluster only targets a subpopulation the sample's figure "
        "dilutes (screen_cluster_ranking.tsv: `contrast`).")
    pconfig = {"id": f"{section.id}_plot", "title": section.name, "xlab": "drug", "ylab": "cluster", "zlab": "efficacy",
               "min": 0, "max": 1, "square": False, "tt_decimals": 2, "xcats_samples": False, "ycats_samples": False,
               "series_label": "clusters",
               "colstops": [[0, "#f7f7f7"], [0.5, "#fc8d59"], [1, "#b30000"]]}
    payload = section.payload("heatmap", pconfig=pconfig, xcats=drugs, ycats=[f"cluster {c}" for c in clusters],
                              data=[[None if pd.isna(v) else round(float(v), 4) for v in row] for row in values.to_numpy()])
    write_text(path, json.dumps(payload, indent=1))
