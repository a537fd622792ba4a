"""Device choice and reproducibility: CUDA when present, CPU otherwise; never a hard-coded device."""
from __future__ import annotations

import contextlib
import logging
import os
import random

import numpy as np
import torch

log = logging.getLogger(__name__)
DEVICE_CHOICES = ("auto", "cpu", "cuda")


def select_device(requested: str = "auto") -> torch.device:
    """`auto` picks CUDA when available; a CUDA request without a GPU falls back to CPU with a warning."""
    if requested not in DEVICE_CHOICES and not requested.startswith("cuda:"):
        raise ValueError(f"device must be one of {DEVICE_CHOICES} or cuda:N, not '{requested}'")
    if requested == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda" if requested == "auto" else requested)
    if requested != "auto":
        log.warning("device '%s' requested but no CUDA GPU is visible: running on CPU", requested)
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    """Same seed + same device type → same numbers (CPU is bit-reproducible)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)


def autocast(device: torch.device):
    """bfloat16 mixed precision on GPU; a no-op on CPU (keeps CPU results exact)."""
    if device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
