"""Tools on a trained model's output: trust diagnostics (explain, evaluate and baselines move here)."""
