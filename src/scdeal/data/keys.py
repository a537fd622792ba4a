"""The AnnData keys scdeal reads and writes, named once (docs/api.md lists what each holds)."""
from __future__ import annotations

__all__ = ["AUC", "BULK", "CALL", "CLUSTER", "CLUSTER_INFO", "EMBEDDING", "EXPLAIN", "LABEL", "LN_IC50", "PROB",
           "PROB_BASELINE", "PROB_DIRECT", "PROB_SD", "RESPONSE", "SCREEN", "SCREEN_AUC", "SCREEN_LN_IC50",
           "SCREEN_PROB", "SCREEN_PROB_DIRECT", "SCREEN_PROB_SD", "SPLIT", "TRANSFER", "TRUST", "UMAP"]

# cells: obs
CLUSTER = "cluster"                      # Leiden cluster of each cell (input of the transfer)
PROB = "prob_sensitive"                  # calibrated probability of sensitivity, ensemble mean
PROB_SD = "prob_sensitive_sd"            # spread over the ensemble members
PROB_DIRECT = "prob_sensitive_direct"    # the direct model: the bulk model refitted on the sample's genes, no transfer
PROB_BASELINE = "prob_sensitive_baseline"  # the linear (or tree) baseline, no transfer
CALL = "predicted_label"                 # sensitive / resistant / uncertain
TRUST = "trust"                          # the run's trust verdict
# cells: obsm
EMBEDDING = "X_scdeal"                   # first member's cell embedding
UMAP = "X_umap"                          # scanpy's UMAP of the clustering (the report's plots)
SCREEN_PROB = "prob_sensitive_screen"    # cells × drugs data frames of a screen
SCREEN_PROB_SD = "prob_sensitive_screen_sd"
SCREEN_AUC = "auc_screen"               # cells × drugs predicted GDSC AUC of a screen
SCREEN_LN_IC50 = "ln_ic50_screen"       # cells × drugs predicted GDSC LN_IC50 of a screen
SCREEN_PROB_DIRECT = "prob_sensitive_screen_direct"
# uns
TRANSFER = "scdeal_transfer"             # cells: the single-drug run's settings, threshold and trust diagnostic
SCREEN = "scdeal_screen"                 # cells: the screen's drugs and settings; bulk lines: the screen's drugs
BULK = "scdeal_bulk"                     # bulk lines of one drug: drug, response kind and counts
CLUSTER_INFO = "scdeal_cluster"          # cells: QC and clustering
EXPLAIN = "scdeal_explain"               # cells: the signature genes of the explanation
# bulk lines: obs (one drug) or obsm (lines × drugs)
LABEL = "label"                          # 1 sensitive, 0 resistant (NaN unmeasured)
RESPONSE = "response_z"                  # pooled z-scored continuous response (NaN where none)
AUC = "auc"                              # a screen's GDSC AUC as measured (NaN where none)
LN_IC50 = "ln_ic50"                      # a screen's GDSC LN_IC50 as measured (NaN where none)
SPLIT = "split"                          # train / val / test
