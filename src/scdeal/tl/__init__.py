"""Tools on a trained model's output: explanations, evaluation against labels, baselines, the trust
diagnostic and per-cell prediction bookkeeping."""
