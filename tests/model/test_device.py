"""Device choice."""
from __future__ import annotations

import pytest
import torch

from scdeal.model.device import check_device, select_device


def test_cuda_request_without_gpu_falls_back_to_cpu_with_a_warning(caplog, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with caplog.at_level("WARNING"):
        assert select_device("cuda").type == "cpu"
    assert "no CUDA GPU is visible" in caplog.text
    assert select_device("auto").type == "cpu"


def test_device_names_are_checked():
    assert [check_device(name) for name in ("auto", "cpu", "cuda", "cuda:1")] == ["auto", "cpu", "cuda", "cuda:1"]
    for name in ("gpu", "cuda:", "cuda:x", "CPU"):
        with pytest.raises(ValueError, match="device must be one of auto, cpu, cuda or cuda:N"):
            check_device(name)
