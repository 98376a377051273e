"""Each benchmark writes its own section of benchmarks/RESULTS.md; the parallel/bf16 benchmark runs end to end."""
from __future__ import annotations

import pytest

from benchmarks import write_section


def test_a_section_is_replaced_and_the_others_kept(tmp_path, capsys):
    out = tmp_path / "RESULTS.md"
    assert write_section(out, "throughput", "# Throughput\nold table") == 0
    write_section(out, "parallel", "## Parallel\nfirst", echo="shown")
    write_section(out, "throughput", "# Throughput\nnew table")
    text = out.read_text()
    assert "old table" not in text and "new table" in text and "first" in text
    assert text.index("new table") < text.index("first")  # replaced in place
    assert text.count("<!-- parallel -->") == 1 and "shown" in capsys.readouterr().out


@pytest.mark.slow
def test_parallel_benchmark_measures_both_layouts_and_precisions(tmp_path):
    from benchmarks import parallel

    out = tmp_path / "RESULTS.md"
    assert parallel.main(["--only", "dann", "--seconds", "0.3", "--out", str(out),
                          "--runs-root", str(tmp_path / "plan")]) == 0
    text = out.read_text()
    assert "instruction set" in text and "fp32 2×1 img/s" in text and "bf16 / fp32 at 2×1" in text
    row = next(line.split() for line in text.splitlines() if line.strip().startswith("dann"))
    assert all(float(v) > 0 for v in row[1:])
