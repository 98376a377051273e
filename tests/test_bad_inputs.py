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


# Each case: (id, setup(data_dir, tmp) -> argv, substrings the error line must all contain — the file, column or
# value at fault —, path that must not exist after)
def _data_check(data: Path) -> list[str]:
    return ["data", "check", "--data", str(data)]


def _png(path: Path, size: tuple[int, int], mode: str = "RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size).save(path)
    return path


CASES = [
    ("missing-data-folder", lambda d, t: _data_check(t / "nope"), ("data folder not found", "/nope"), None),
    ("empty-data-folder", lambda d, t: _then((t / "empty").mkdir(), _data_check(t / "empty")),
     ("data folder is empty", "/empty"), None),
    ("csv-without-image_name",
     lambda d, t: _then(_csv(d / "face/train.csv", lambda df: df.rename(columns={"image_name": "file"})), _data_check(d)),
     ("face/train.csv", "no 'image_name' column"), None),
    ("csv-without-attribute",
     lambda d, t: _then(_csv(d / "face/test.csv", lambda df: df.drop(columns=["Smiling"])), _data_check(d)),
     ("face/test.csv", "'Smiling'"), None),
    ("attribute-not-0-1",
     lambda d, t: _then(_csv(d / "face/train.csv", lambda df: df.assign(Male=df["Male"].where(df.index > 0, 7))), _data_check(d)),
     ("face/train.csv", "Male '7' of 00000.png (line 2)"), None),
    ("listed-file-missing", lambda d, t: _then(_first(d / "digits/usps/train").unlink(), _data_check(d)),
     ("digits/usps/train/00000.png", "usps/train.csv", "does not exist"), None),
    ("corrupt-png", lambda d, t: _then(_first(d / "digits/svhn/test").write_bytes(b"\x89PNG garbage"), _data_check(d)),
     ("corrupt image", "digits/svhn/test/00000.png"), None),
    ("label-out-of-range",
     lambda d, t: _then(_csv(d / "digits/mnistm/train.csv", lambda df: df.assign(label=df["label"].where(df.index > 0, 12))),
                        _data_check(d)), ("digits/mnistm/train.csv", "label '12' of 00000.png", "outside 0-9"), None),
    ("csv-without-label",
     lambda d, t: _then(_csv(d / "digits/usps/test.csv", lambda df: df.drop(columns=["label"])), _data_check(d)),
     ("digits/usps/test.csv", "'label'"), None),
    ("duplicate-image-names",
     lambda d, t: _then(_csv(d / "digits/usps/train.csv", lambda df: pd.concat([df, df.iloc[:1]])), _data_check(d)),
     ("digits/usps/train.csv", "duplicate image_name '00000.png'"), None),
    ("face-wrong-size", lambda d, t: _then(_png(_first(d / "face/train"), (30, 30)), _data_check(d)),
     ("face/train/00000.png", "expected 64x64 RGB", "got 30x30"), None),
    ("digit-not-square", lambda d, t: _then(_png(_first(d / "digits/svhn/test"), (30, 32)), _data_check(d)),
     ("digits/svhn/test/00000.png", "expected a square", "got 30x32 RGB"), None),
    ("digit-wrong-mode", lambda d, t: _then(_png(_first(d / "digits/mnistm/test"), (28, 28), "RGBA"), _data_check(d)),
     ("digits/mnistm/test/00000.png", "got 28x28 RGBA"), None),
    ("missing-csv", lambda d, t: _then((d / "face/test.csv").unlink(), _data_check(d)),
     ("missing CSV", "face/test.csv"), None),
    ("unknown-method", lambda d, t: ["train", "uda", "--method", "magic", "--source", "usps", "--target", "svhn",
                                     "--data", str(d), "--out", str(t / "run")], ("--method", "'magic'"), "run"),
    ("unknown-domain", lambda d, t: ["train", "uda", "--source", "mnist", "--target", "svhn",
                                     "--data", str(d), "--out", str(t / "run")], ("--source", "'mnist'"), "run"),
    ("source-equals-target", lambda d, t: ["train", "uda", "--source", "svhn", "--target", "svhn",
                                           "--data", str(d), "--out", str(t / "run")], ("both 'svhn'",), "run"),
    ("negative-steps", lambda d, t: ["train", "uda", "--source", "usps", "--target", "svhn", "--steps", "-5",
                                     "--data", str(d), "--out", str(t / "run")], ("steps", "got -5"), "run"),
    ("vae-zero-batch", lambda d, t: ["train", "vae", "--data", str(d), "--out", str(t / "run"), "--batch-size", "0"],
     ("batch_size", "got 0"), "run"),
    ("unwritable-output", lambda d, t: _then((t / "afile").write_text("x"),
     ["train", "uda", "--source", "usps", "--target", "svhn", "--max-steps", "1", "--data", str(d),
      "--out", str(t / "afile" / "run")]), ("afile/run", "Not a directory"), None),
    ("predict-missing-checkpoint", lambda d, t: ["predict", "--ckpt", str(t / "norun"), "--images",
                                                 str(d / "digits/usps/test"), "--out", str(t / "pred.csv")],
     ("checkpoint not found", "/norun"), "pred.csv"),
    ("predict-missing-images", lambda d, t: ["predict", "--ckpt", str(t / "norun"), "--images", str(t / "noimgs"),
                                             "--out", str(t / "pred.csv")], ("image folder not found", "/noimgs"),
     "pred.csv"),
    ("predict-not-square-image", lambda d, t: _then(_png(t / "imgs" / "00007.png", (28, 30)),
     ["predict", "--ckpt", str(t / "norun"), "--images", str(t / "imgs"), "--out", str(t / "pred.csv")]),
     ("imgs/00007.png", "expected a square", "got 28x30"), "pred.csv"),
    ("generate-missing-checkpoint", lambda d, t: ["generate", "vae", "--ckpt", str(t / "novae"),
                                                  "--out", str(t / "fig1_4.png")], ("checkpoint not found", "/novae"),
     "fig1_4.png"),
    ("generate-gan-missing-checkpoint", lambda d, t: ["generate", "gan", "--ckpt", str(t / "nogan"),
                                                      "--out", str(t / "fig2_2.png")],
     ("checkpoint not found", "/nogan"), "fig2_2.png"),
    ("eval-missing-names", lambda d, t: _then((t / "p.csv").write_text("image_name,label\n00000.png,1\n"),
     (t / "g.csv").write_text("image_name,label\n00000.png,1\n00001.png,2\n"), ["eval", str(t / "p.csv"), str(t / "g.csv")]),
     ("/p.csv", "/g.csv", "'00001.png'"), None),
    ("eval-duplicate-names", lambda d, t: _then((t / "p.csv").write_text("image_name,label\n00000.png,1\n00000.png,1\n"),
     (t / "g.csv").write_text("image_name,label\n00000.png,1\n"), ["eval", str(t / "p.csv"), str(t / "g.csv")]),
     ("/p.csv", "duplicate image_name '00000.png' (line 3)"), None),
    ("report-unknown-profile", lambda d, t: ["report", "--profile", "warp-speed", "--out", str(t / "rep")],
     ("unknown profile 'warp-speed'",), "rep"),
    ("report-bad-cell-timeout", lambda d, t: _then((t / "bad.yaml").write_text("cell_timeout: -1\n"),
     ["report", "--profile", str(t / "bad.yaml"), "--out", str(t / "rep")]), ("bad.yaml", "cell_timeout -1"), "rep"),
    ("report-unknown-notebook-parameter", lambda d, t: ["report", "--profile", "smoke", "--data", str(d),
                                                        "-p", "p1.not_a_param", "3", "--out", str(t / "rep")],
     ("p1_vae", "'not_a_param'"), "rep"),
    ("data-make-unknown-size", lambda d, t: ["data", "make", "--out", str(t / "made"), "--size", "huge"],
     ("--size", "'huge'"), "made"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gives_one_line_error(case, course_copy, tmp_path, capsys):
    _, setup, needles, must_not_exist = case
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
    for needle in needles:  # the file, column or value at fault is named
        assert needle in lines[-1], f"{needle!r} not named in: {lines[-1]}"
    if must_not_exist:
        assert not (tmp_path / must_not_exist).exists(), f"partial output left: {must_not_exist}"
