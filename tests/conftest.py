"""Shared fixtures.

- ``tiny_course_data`` (session): a course-layout data folder (``face/`` + ``digits/{usps,mnistm,svhn}/``, a few
  dozen images per split, made by the real generators, no manifest, i.e. like the course's ``hw3_data``).
  Treat it as read-only (loading it writes only the decode cache); copy it (``course_copy``) to modify it.
- ``tiny_embedded_data`` (session): the same sizes, with an ``hw3_data.json`` manifest (source "embedded").
- ``course_copy`` (function): a private, modifiable copy of ``tiny_course_data``.
- autouse: ``HW3_PROGRESS=0`` (no progress bars) and ``HW3_CACHE_DIR`` in a temporary folder (the fallback decode
  cache never touches ``~/.cache``).
"""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

TINY_FACES = (24, 8)  # (train, test)
TINY_DIGITS = {"usps": (30, 10), "mnistm": (30, 10), "svhn": (30, 10)}


@pytest.fixture(scope="session")
def _session_cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hw3-cache-home")


@pytest.fixture(autouse=True)
def _hw3_env(monkeypatch, _session_cache_dir):
    monkeypatch.setenv("HW3_PROGRESS", "0")
    monkeypatch.setenv("HW3_CACHE_DIR", str(_session_cache_dir))


def _fallback_faces(root: Path, n_train: int, n_test: int, seed: int) -> None:
    from hw3lib.data.layout import FACE_ATTRIBUTES, FACE_SIZE
    from PIL import Image

    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("test", n_test)):
        (root / "face" / split).mkdir(parents=True, exist_ok=True)
        with open(root / "face" / f"{split}.csv", "w", newline="") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(["image_name", *FACE_ATTRIBUTES])
            for i in range(n):
                img = rng.integers(0, 256, (FACE_SIZE, FACE_SIZE, 3), dtype=np.uint8)
                Image.fromarray(img, "RGB").save(root / "face" / split / f"{i:05d}.png")
                w.writerow([f"{i:05d}.png", *rng.integers(0, 2, len(FACE_ATTRIBUTES))])


def _fallback_digits(root: Path, sizes: dict, seed: int) -> None:
    from hw3lib.data.layout import DIGIT_MODES, DIGIT_SIZE
    from PIL import Image

    rng = np.random.default_rng(seed)
    for domain, counts in sizes.items():
        for split, n in zip(("train", "test"), counts):
            folder = root / "digits" / domain
            (folder / split).mkdir(parents=True, exist_ok=True)
            with open(folder / f"{split}.csv", "w", newline="") as fh:
                w = csv.writer(fh, lineterminator="\n")
                w.writerow(["image_name", "label"])
                for i in range(n):
                    shape = (DIGIT_SIZE, DIGIT_SIZE) + (() if DIGIT_MODES[domain] == "L" else (3,))
                    img = rng.integers(0, 256, shape, dtype=np.uint8)
                    Image.fromarray(img, DIGIT_MODES[domain]).save(folder / split / f"{i:05d}.png")
                    w.writerow([f"{i:05d}.png", i % 10])


def write_tiny_course_data(root: Path, seed: int = 0, faces=TINY_FACES, digits=TINY_DIGITS) -> Path:
    """Write a tiny course-layout folder with the generators (random images when they are missing)."""
    root.mkdir(parents=True, exist_ok=True)
    try:
        from hw3lib.data.synth_faces import write_faces
    except ImportError:
        _fallback_faces(root, *faces, seed)
    else:
        write_faces(root, *faces, seed=seed, progress=False)
    try:
        from hw3lib.data.synth_digits import write_digits
    except ImportError:
        _fallback_digits(root, digits, seed)
    else:
        write_digits(root, digits, seed=seed, progress=False)
    return root


@pytest.fixture(scope="session")
def tiny_course_data(tmp_path_factory) -> Path:
    """A course-layout data folder (no manifest): face/ + digits/{usps,mnistm,svhn}/, a few dozen images each."""
    return write_tiny_course_data(tmp_path_factory.mktemp("tiny_course") / "hw3_data")


@pytest.fixture(scope="session")
def tiny_embedded_data(tmp_path_factory, tiny_course_data) -> Path:
    """``tiny_course_data`` copied, plus an ``hw3_data.json`` manifest (loaders report source "embedded")."""
    import hw3lib

    root = tmp_path_factory.mktemp("tiny_embedded") / "data"
    shutil.copytree(tiny_course_data, root, ignore=shutil.ignore_patterns(".cache"))
    manifest = {"kind": "embedded", "generator": "tests/conftest.py", "size": "tiny", "seed": 0,
                "counts": {"face": dict(zip(("train", "test"), TINY_FACES)),
                           "digits": {d: dict(zip(("train", "test"), c)) for d, c in TINY_DIGITS.items()}},
                "hw3lib_version": hw3lib.__version__}
    (root / "hw3_data.json").write_text(json.dumps(manifest, indent=2))
    return root


@pytest.fixture
def course_copy(tmp_path, tiny_course_data) -> Path:
    """A private copy of ``tiny_course_data`` that a test may break."""
    root = tmp_path / "hw3_data"
    shutil.copytree(tiny_course_data, root, ignore=shutil.ignore_patterns(".cache"))
    return root
