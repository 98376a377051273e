"""Shared fixtures.

- ``tiny_course_data`` (session): a course-layout data folder (``face/`` + ``digits/{usps,mnistm,svhn}/``, a few
  dozen images per split, made by the real generators — never random stand-ins — and no manifest, i.e. like the
  course's ``hw3_data``).
  Treat it as read-only (loading it writes only the decode cache); copy it (``course_copy``) to modify it.
- ``tiny_embedded_data`` (session): the same sizes, with an ``hw3_data.json`` manifest (source "embedded").
- ``course_copy`` (function): a private, modifiable copy of ``tiny_course_data``.
- autouse: ``HW3_PROGRESS=0`` (no progress bars) and ``HW3_CACHE_DIR`` in a temporary folder (the fallback decode
  cache never touches ``~/.cache``).
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

TINY_FACES = (24, 8)  # (train, test)
TINY_DIGITS = {"usps": (30, 10), "mnistm": (30, 10), "svhn": (30, 10)}


def pytest_configure(config):  # noqa: ARG001
    """Under pytest-xdist (``make test`` runs two workers) each worker, and every process it starts (CLI runs, pool
    workers, notebook kernels, torchrun ranks), gets one intra-op thread: two workers of two OpenMP threads each on
    two cores spin against each other (a 0.6 s test took 58 s). A value the user set is kept."""
    if os.environ.get("PYTEST_XDIST_WORKER") and "OMP_NUM_THREADS" not in os.environ:
        import torch

        os.environ["OMP_NUM_THREADS"] = "1"
        torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):  # noqa: ARG001
    """Tests marked ``long`` first (the order is otherwise kept): started last, one would run alone at the end."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


@pytest.fixture(scope="session")
def _session_cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hw3-cache-home")


@pytest.fixture(autouse=True)
def _hw3_env(monkeypatch, _session_cache_dir):
    monkeypatch.setenv("HW3_PROGRESS", "0")
    monkeypatch.setenv("HW3_CACHE_DIR", str(_session_cache_dir))


def write_tiny_course_data(root: Path, seed: int = 0, faces=TINY_FACES, digits=TINY_DIGITS) -> Path:
    """Write a tiny course-layout folder with the embedded generators. No fallback: a generator that fails to
    import fails every test that uses this data, rather than testing on random images."""
    from hw3lib.data.synth_digits import write_digits
    from hw3lib.data.synth_faces import write_faces

    root.mkdir(parents=True, exist_ok=True)
    write_faces(root, *faces, seed=seed, progress=False)
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
