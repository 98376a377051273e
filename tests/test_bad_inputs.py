"""Bad input, table-driven: every case gets a one-line error naming what is wrong, a non-zero exit,
and leaves no partial output behind. Runs the real CLI in-process (``hw3lib.cli.main``)."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

import pandas as pd
import pytest
from PIL import Image

from hw3lib.cli import main


def _csv(path: Path, edit: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    df = pd.read_csv(path)
    edit(df).to_csv(path, index=False)


def _then(*steps):
    """Run side effects in order (their values are ignored) and return the last item, the argv."""
    return steps[-1]


def _first(folder: Path) -> Path:
    return sorted(folder.glob("*.png"))[0]


# Each case: (id, setup(data_dir, tmp) -> argv, substring the error must contain, path that must not exist after)
def _data_check(data: Path) -> list[str]:
    return ["data", "check", "--data", str(data)]


CASES = [
    ("missing-data-folder", lambda d, t: _data_check(t / "nope"), "nope", None),
    ("empty-data-folder", lambda d, t: _then((t / "empty").mkdir(), _data_check(t / "empty")), "empty", None),
    ("csv-without-image_name",
     lambda d, t: _then(_csv(d / "face/train.csv", lambda df: df.rename(columns={"image_name": "file"})), _data_check(d)),
     "image_name", None),
    ("csv-without-attribute",
     lambda d, t: _then(_csv(d / "face/test.csv", lambda df: df.drop(columns=["Smiling"])), _data_check(d)), "Smiling", None),
    ("attribute-not-0-1",
     lambda d, t: _then(_csv(d / "face/train.csv", lambda df: df.assign(Male=df["Male"].where(df.index > 0, 7))), _data_check(d)),
     "Male", None),
    ("listed-file-missing", lambda d, t: _then(_first(d / "digits/usps/train").unlink(), _data_check(d)), ".png", None),
    ("corrupt-png", lambda d, t: _then(_first(d / "digits/svhn/test").write_bytes(b"\x89PNG garbage"), _data_check(d)),
     ".png", None),
    ("label-out-of-range",
     lambda d, t: _then(_csv(d / "digits/mnistm/train.csv", lambda df: df.assign(label=df["label"].where(df.index > 0, 12))),
                        _data_check(d)), "12", None),
    ("csv-without-label",
     lambda d, t: _then(_csv(d / "digits/usps/test.csv", lambda df: df.drop(columns=["label"])), _data_check(d)), "label", None),
    ("duplicate-image-names",
     lambda d, t: _then(_csv(d / "digits/usps/train.csv", lambda df: pd.concat([df, df.iloc[:1]])), _data_check(d)),
     "duplicate", None),
    ("image-wrong-size",
     lambda d, t: _then(Image.new("RGB", (30, 30)).save(_first(d / "face/train")), _data_check(d)),
     "64", None),
    ("missing-csv", lambda d, t: _then((d / "face/test.csv").unlink(), _data_check(d)), "test.csv", None),
    ("unknown-method", lambda d, t: ["train", "uda", "--method", "magic", "--source", "usps", "--target", "svhn",
                                     "--data", str(d), "--out", str(t / "run")], "magic", "run"),
    ("unknown-domain", lambda d, t: ["train", "uda", "--source", "mnist", "--target", "svhn",
                                     "--data", str(d), "--out", str(t / "run")], "mnist", "run"),
    ("source-equals-target", lambda d, t: ["train", "uda", "--source", "svhn", "--target", "svhn",
                                           "--data", str(d), "--out", str(t / "run")], "svhn", "run"),
    ("negative-steps", lambda d, t: ["train", "uda", "--source", "usps", "--target", "svhn", "--steps", "-5",
                                     "--data", str(d), "--out", str(t / "run")], "-5", "run"),
    ("vae-zero-batch", lambda d, t: ["train", "vae", "--data", str(d), "--out", str(t / "run"), "--batch-size", "0"],
     "0", "run"),
    ("unwritable-output", lambda d, t: _then((t / "afile").write_text("x"),
     ["train", "uda", "--source", "usps", "--target", "svhn", "--max-steps", "1", "--data", str(d),
      "--out", str(t / "afile" / "run")]), "afile", None),
    ("predict-missing-checkpoint", lambda d, t: ["predict", "--ckpt", str(t / "norun"), "--images",
                                                 str(d / "digits/usps/test"), "--out", str(t / "pred.csv")],
     "norun", "pred.csv"),
    ("predict-missing-images", lambda d, t: ["predict", "--ckpt", str(t / "norun"), "--images", str(t / "noimgs"),
                                             "--out", str(t / "pred.csv")], "no", "pred.csv"),
    ("generate-missing-checkpoint", lambda d, t: ["generate", "vae", "--ckpt", str(t / "novae"),
                                                  "--out", str(t / "fig1_4.png")], "novae", "fig1_4.png"),
    ("generate-gan-missing-checkpoint", lambda d, t: ["generate", "gan", "--ckpt", str(t / "nogan"),
                                                      "--out", str(t / "fig2_2.png")], "nogan", "fig2_2.png"),
    ("eval-missing-names", lambda d, t: _then((t / "p.csv").write_text("image_name,label\n00000.png,1\n"),
     (t / "g.csv").write_text("image_name,label\n00000.png,1\n00001.png,2\n"), ["eval", str(t / "p.csv"), str(t / "g.csv")]),
     "00001.png", None),
    ("eval-duplicate-names", lambda d, t: _then((t / "p.csv").write_text("image_name,label\n00000.png,1\n00000.png,1\n"),
     (t / "g.csv").write_text("image_name,label\n00000.png,1\n"), ["eval", str(t / "p.csv"), str(t / "g.csv")]),
     "00000.png", None),
    ("report-unknown-profile", lambda d, t: ["report", "--profile", "warp-speed", "--out", str(t / "rep")],
     "warp-speed", "rep"),
    ("report-unknown-notebook-parameter", lambda d, t: ["report", "--profile", "smoke", "--data", str(d),
                                                        "-p", "p1.not_a_param", "3", "--out", str(t / "rep")],
     "not_a_param", "rep"),
    ("data-make-unknown-size", lambda d, t: ["data", "make", "--out", str(t / "made"), "--size", "huge"],
     "huge", "made"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gives_one_line_error(case, course_copy, tmp_path, capsys):
    _, setup, needle, must_not_exist = case
    argv = setup(course_copy, tmp_path)
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse usage errors
        code = exc.code
    err = capsys.readouterr().err.strip()
    assert code not in (0, None), f"exit {code} for {argv}"
    lines = [l for l in err.splitlines() if l.strip()]
    assert "Traceback" not in err
    assert lines and "error" in lines[-1], err
    # argparse prints a usage line before its one-line error; our own errors are exactly one line
    assert len([l for l in lines if not l.startswith(("usage:", " "))]) == 1, err
    assert needle in lines[-1], f"{needle!r} not named in: {lines[-1]}"
    if must_not_exist:
        assert not (tmp_path / must_not_exist).exists(), f"partial output left: {must_not_exist}"


def test_bad_input_table_is_big_enough():
    assert len(CASES) >= 20
