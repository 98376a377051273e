"""The throughput benchmark runs end to end and writes its table (slow: it trains a few steps of DANN twice)."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_quick_dann_benchmark_writes_results(tmp_path, monkeypatch):
    from benchmarks import throughput

    out = tmp_path / "RESULTS.md"
    monkeypatch.setattr(throughput, "ROOT", tmp_path)  # bench data under tmp, not the checkout
    assert throughput.main(["--quick", "--only", "dann", "--out", str(out), "--workers", "0"]) == 0
    text = out.read_text()
    assert "float32 matmul" in text and "compute dtype float32" in text and "dann" in text
    for column in ("ref img/s", "hw3lib img/s", "ratio", "GFLOP/img", "ref GFLOP/s", "hw3lib GFLOP/s",
                   "hw3lib % of matmul peak"):
        assert column in text, column


def test_matmul_rate_is_a_positive_rate():
    import torch

    from benchmarks.throughput import matmul_rate
    assert matmul_rate(torch.device("cpu"), n=128, reps=2) > 1e6
    assert matmul_rate(torch.device("cpu"), n=64, reps=1, dtype=torch.bfloat16) > 0
