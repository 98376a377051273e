"""`hw3 data make` / `hw3 data check`: no-op reruns, manifest, contact sheets, one-line errors (exit 2)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from hw3lib.cli import main
from hw3lib.data import layout
from hw3lib.data.check import check_data
from hw3lib.data.layout import DIGIT_DOMAINS

from test_loaders import BAD  # the same broken inputs, now through the CLI

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("what", ["make", "check"])
def test_help(what, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["data", what, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: hw3 data {what}" in out
    assert ("--size" in out and "--figures" in out) if what == "make" else "--data" in out


def test_make_writes_manifest_figures_and_is_a_noop_on_rerun(tmp_path, monkeypatch, capsys):
    # "smoke" shrunk further so the test stays fast; make reads the sizes from hw3lib.data.layout
    monkeypatch.setitem(layout.FACE_SIZES, "smoke", (12, 4))
    monkeypatch.setitem(layout.DIGIT_SIZES, "smoke", {d: (10, 5) for d in DIGIT_DOMAINS})
    out, figs = tmp_path / "data", tmp_path / "figs"
    args = ["data", "make", "--out", str(out), "--size", "smoke", "--figures", str(figs)]
    assert main(args) == 0
    assert "made faces, digits" in capsys.readouterr().out
    manifest = json.loads((out / "hw3_data.json").read_text())
    assert manifest["kind"] == "embedded" and manifest["size"] == "smoke" and manifest["seed"] == 0
    assert manifest["counts"]["face"] == {"train": 12, "test": 4}
    assert manifest["counts"]["digits"]["svhn"] == {"train": 10, "test": 5}
    assert manifest["hw3lib_version"]
    for name in ("data_faces", "data_usps", "data_mnistm", "data_svhn"):
        with Image.open(figs / f"{name}.png") as im:
            assert im.size[0] > 60
    mtime = (out / "hw3_data.json").stat().st_mtime_ns

    assert main(args) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1 and printed[0].startswith("data already made: ")
    assert (out / "hw3_data.json").stat().st_mtime_ns == mtime

    # different arguments regenerate (only the part asked for)
    face_png = (out / "face" / "train" / "00000.png").stat().st_mtime_ns
    assert main(["data", "make", "--out", str(out), "--size", "smoke", "--seed", "1", "--only", "digits",
                 "--figures", str(figs)]) == 0
    assert "made digits" in capsys.readouterr().out
    manifest = json.loads((out / "hw3_data.json").read_text())
    assert manifest["parts"]["digits"]["seed"] == 1 and manifest["parts"]["faces"]["seed"] == 0
    assert manifest["seed"] == "mixed"
    assert (out / "face" / "train" / "00000.png").stat().st_mtime_ns == face_png

    summary = check_data(out)
    assert summary["kind"] == "embedded" and summary["faces"]["train"]["count"] == 12
    assert summary["digits"]["usps"]["test"]["count"] == 5


def test_check_summary_and_output(tiny_course_data, capsys):
    summary = check_data(tiny_course_data)
    assert summary["kind"] == "real" and summary["manifest"] is None
    assert summary["faces"]["layout"] == "course" and summary["faces"]["test"]["count"] == 8
    assert summary["faces"]["train"]["modes"] == {"RGB": 24}
    assert set(summary["faces"]["train"]["attr_freq"]) == set(layout.FACE_ATTRIBUTES)
    usps = summary["digits"]["usps"]
    assert usps["train"]["modes"] == {"L": 30} and sum(usps["train"]["label_counts"]) == 30
    assert main(["data", "check", "--data", str(tiny_course_data)]) == 0
    out = capsys.readouterr().out
    assert "real data" in out and "digits/svhn [course]: train 30, test 10" in out and out.strip().endswith("ok")


def test_check_embedded_manifest_mismatch(tiny_embedded_data, tmp_path, capsys):
    import shutil

    assert main(["data", "check", "--data", str(tiny_embedded_data)]) == 0
    assert "embedded data set" in capsys.readouterr().out
    root = tmp_path / "data"
    shutil.copytree(tiny_embedded_data, root)
    manifest = json.loads((root / "hw3_data.json").read_text())
    manifest["counts"]["face"]["train"] = 99
    (root / "hw3_data.json").write_text(json.dumps(manifest))
    assert main(["data", "check", "--data", str(root)]) == 2
    err = capsys.readouterr().err
    assert "lists 24 images but" in err and "says 99" in err


@pytest.mark.parametrize("breaker,what,pattern", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_check_bad_input_exit_2_one_line(course_copy, capsys, breaker, what, pattern):
    import re

    breaker(course_copy)
    assert main(["data", "check", "--data", str(course_copy)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hw3: error: "), captured.err
    assert re.search(pattern, lines[0]) and "Traceback" not in captured.err


def test_check_missing_and_empty_folder(tmp_path, capsys):
    assert main(["data", "check", "--data", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err.strip().startswith("hw3: error: data folder not found")
    (tmp_path / "empty").mkdir()
    assert main(["data", "check", "--data", str(tmp_path / "empty")]) == 2
    assert "data folder is empty" in capsys.readouterr().err


def test_make_rejects_bad_arguments(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["data", "make", "--out", str(tmp_path), "--size", "huge"])
    assert exc.value.code == 2
    assert main(["data", "make", "--out", str(tmp_path), "--seed", "-1"]) == 2
    assert "seed must be" in capsys.readouterr().err


def test_check_subprocess_one_line_error(course_copy):
    (course_copy / "digits" / "usps" / "test" / "00003.png").write_bytes(b"junk")
    env = {**os.environ, "HW3_PROGRESS": "0", "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "hw3lib", "data", "check", "--data", str(course_copy)],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hw3: error: corrupt image ") and "usps/test/00003.png" in lines[0]
