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


def test_matmul_rate_is_the_flops_over_the_best_trial(monkeypatch):
    """2·n³ FLOPs per matmul, ``reps`` of them per trial, over the fastest trial's time: checked with a clock whose
    trials take 3, 1 and 2 s (no timing of this machine)."""
    import types

    import torch

    from benchmarks import throughput

    ticks = iter([0.0, 3.0, 10.0, 11.0, 20.0, 22.0])  # (start, end) of each of the 3 trials
    monkeypatch.setattr(throughput, "time", types.SimpleNamespace(perf_counter=lambda: next(ticks)))
    assert throughput.matmul_rate(torch.device("cpu"), n=64, reps=5, trials=3) == 2 * 64 ** 3 * 5 / 1.0
    assert next(ticks, None) is None  # every trial was timed


def test_conv_layers_counts_each_convolutions_forward_and_backward(tmp_path):
    from benchmarks import conv_layers

    out = tmp_path / "CONV_LAYERS.md"
    assert conv_layers.main(["--only", "dann", "--reps", "1", "--out", str(out)]) == 0
    lines = [line.split() for line in out.read_text().splitlines() if line.strip().startswith("dann")]
    assert [line[1] for line in lines] == ["feature.f_conv1", "feature.f_conv2", "all"]
    gflop = {line[1]: float(line[-3]) for line in lines[:2]}  # columns ... ms GFLOP GFLOP/s %
    # forward FLOPs 2·N·Cout·H·W·Cin·k²; backward: weight gradient, plus the input gradient except for the first layer
    fwd1, fwd2 = 2 * 128 * 64 * 24 * 24 * 3 * 25, 2 * 128 * 50 * 8 * 8 * 64 * 25
    assert gflop["feature.f_conv1"] == pytest.approx(2 * fwd1 / 1e9, abs=1e-3)
    assert gflop["feature.f_conv2"] == pytest.approx(3 * fwd2 / 1e9, abs=1e-3)


def test_compile_step_times_eager_and_compiled(capsys):
    from benchmarks import compile_step

    assert compile_step.main(["--batch", "8", "--steps", "2"]) == 0
    line = capsys.readouterr().out
    assert "eager" in line and "torch.compile" in line and "compiling" in line
