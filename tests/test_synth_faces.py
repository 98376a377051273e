"""Tests for the procedural CelebA stand-in (hw3lib.data.synth_faces)."""
from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hw3lib.data.layout import FACE_ATTRIBUTES, FACE_SIZE
from hw3lib.data.synth_faces import _SPLIT_IDS, render_face, sample_attributes, write_faces

N_TRAIN, N_TEST = 24, 8


def _tree_bytes(face_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(face_dir)): p.read_bytes() for p in sorted(face_dir.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Path:
    return write_faces(tmp_path_factory.mktemp("seed0"), N_TRAIN, N_TEST, seed=0, progress=False)


# --------------------------------------------------------------------------- layout

def test_layout_and_images(written):
    assert written.name == "face"
    assert sorted(p.name for p in written.iterdir()) == ["test", "test.csv", "train", "train.csv"]
    for split, n in (("train", N_TRAIN), ("test", N_TEST)):
        names = sorted(p.name for p in (written / split).iterdir())
        assert names == [f"{i:05d}.png" for i in range(n)]
        for name in names:
            with Image.open(written / split / name) as im:
                assert im.format == "PNG"
                assert im.mode == "RGB"
                assert im.size == (FACE_SIZE, FACE_SIZE)


def test_csv_header_and_values(written):
    for split, n in (("train", N_TRAIN), ("test", N_TEST)):
        text = (written / f"{split}.csv").read_text()
        lines = text.splitlines()
        assert lines[0] == ",".join(["image_name", *FACE_ATTRIBUTES])
        rows = list(csv.reader(lines[1:]))
        assert [r[0] for r in rows] == [f"{i:05d}.png" for i in range(n)]
        for r in rows:
            assert len(r) == 1 + len(FACE_ATTRIBUTES)
            assert set(r[1:]) <= {"0", "1"}        # integers, never "1.0"
        # the files listed are exactly the files present
        assert {r[0] for r in rows} == {p.name for p in (written / split).iterdir()}


def test_csv_matches_sample_attributes(written):
    """The labels are the attributes the image was rendered with (same per-image RNG)."""
    with open(written / "train.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for i in (0, 5, N_TRAIN - 1):
        expected = sample_attributes(np.random.default_rng([0, 0, i]))
        assert {k: int(rows[i][k]) for k in FACE_ATTRIBUTES} == expected


# --------------------------------------------------------------------------- determinism, atomicity

def test_deterministic_for_a_seed(written, tmp_path):
    again = write_faces(tmp_path / "again", N_TRAIN, N_TEST, seed=0, progress=False)
    assert _tree_bytes(again) == _tree_bytes(written)


def test_different_seed_differs(written, tmp_path):
    other = _tree_bytes(write_faces(tmp_path / "other", N_TRAIN, N_TEST, seed=1, progress=False))
    ref = _tree_bytes(written)
    assert other.keys() == ref.keys()
    assert sum(other[k] != ref[k] for k in ref if k.endswith(".png")) == N_TRAIN + N_TEST


def test_train_and_test_are_different_faces(written):
    train = {p.read_bytes() for p in (written / "train").iterdir()}
    test = {p.read_bytes() for p in (written / "test").iterdir()}
    assert not train & test
    a = np.asarray(Image.open(written / "train" / "00000.png"), dtype=float)
    b = np.asarray(Image.open(written / "test" / "00000.png"), dtype=float)
    assert np.abs(a - b).mean() > 5


def test_worker_count_does_not_change_output(tmp_path):
    one = write_faces(tmp_path / "one", 30, 6, seed=3, progress=False, workers=1)
    two = write_faces(tmp_path / "two", 30, 6, seed=3, progress=False, workers=2)
    assert _tree_bytes(one) == _tree_bytes(two)


def test_atomic_replace_leaves_no_temp(tmp_path):
    face = write_faces(tmp_path, 4, 2, seed=0, progress=False)
    (face / "stale.txt").write_text("from an older run")
    face = write_faces(tmp_path, 6, 2, seed=0, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["face"]      # no .face.tmp-*/.face.old-*
    assert not (face / "stale.txt").exists()
    assert len(list((face / "train").iterdir())) == 6


def test_failed_run_keeps_old_face_and_cleans_up(tmp_path, monkeypatch):
    import hw3lib.data.synth_faces as sf

    face = write_faces(tmp_path, 4, 2, seed=0, progress=False)
    before = _tree_bytes(face)

    def boom(attrs, rng):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(sf, "render_face", boom)
    with pytest.raises(RuntimeError):
        sf.write_faces(tmp_path, 4, 2, seed=1, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["face"]
    assert _tree_bytes(face) == before


# --------------------------------------------------------------------------- attributes

@pytest.fixture(scope="module")
def draws() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(123)
    rows = [sample_attributes(rng) for _ in range(2000)]
    assert all(list(r) == list(FACE_ATTRIBUTES) for r in rows)
    assert all(type(v) is int and v in (0, 1) for r in rows for v in r.values())
    return {k: np.array([r[k] for r in rows], dtype=bool) for k in FACE_ATTRIBUTES}


def test_attribute_rates_are_celeba_like(draws):
    rate = {k: v.mean() for k, v in draws.items()}
    assert 0.36 < rate["Male"] < 0.48
    assert 0.42 < rate["Smiling"] < 0.54
    assert 0.42 < rate["Mouth_Slightly_Open"] < 0.54
    assert 0.10 < rate["Bangs"] < 0.20
    for k in FACE_ATTRIBUTES:                  # every class has both labels well represented
        assert 0.08 < rate[k] < 0.6, k


def test_attribute_constraints_and_correlations(draws):
    male, female = draws["Male"], ~draws["Male"]
    hair = draws["Black_Hair"].astype(int) + draws["Blond_Hair"] + draws["Brown_Hair"]
    assert hair.max() <= 1 and (hair == 0).any()
    assert not (draws["Straight_Hair"] & draws["Wavy_Hair"]).any()
    assert (draws["Wearing_Lipstick"] & male).mean() < 0.01
    assert (draws["Heavy_Makeup"] & male).mean() < 0.01
    assert 0.35 < draws["Wearing_Lipstick"][female].mean() < 0.9
    assert draws["Blond_Hair"][female].mean() > 3 * draws["Blond_Hair"][male].mean()
    assert draws["Wavy_Hair"][female].mean() > 2 * draws["Wavy_Hair"][male].mean()
    smiling = draws["Smiling"]
    hc = draws["High_Cheekbones"]
    assert hc[smiling].mean() > hc[~smiling].mean() + 0.4
    mo = draws["Mouth_Slightly_Open"]
    assert mo[smiling].mean() > mo[~smiling].mean() + 0.2


# --------------------------------------------------------------------------- rendering

def test_render_face_output_and_determinism():
    attrs = sample_attributes(np.random.default_rng(7))
    a = render_face(attrs, np.random.default_rng(1))
    b = render_face(attrs, np.random.default_rng(1))
    c = render_face(attrs, np.random.default_rng(2))
    assert a.dtype == np.uint8 and a.shape == (FACE_SIZE, FACE_SIZE, 3)
    assert np.array_equal(a, b)
    assert np.abs(a.astype(int) - c).mean() > 5
    assert a.std() > 20                         # not a flat picture


# sha256 of the uint8 array of train image i of seed 0 (what ``write_faces`` renders). Together the six take every
# branch of the rendering stages: bald / long / short female / sideburns; wavy / straight / grainy hair; all five
# hair colours; bangs, makeup, lipstick, big lips, high cheekbones; each smile x open-mouth pair; beard, stubble;
# shirt with and without tie; blurred and sharp.
_PINNED = {
    13: "4ff1e5fcc536fa939bcfe055d2287349dfd7f4224977e81a4e3835cc51415fe7",
    20: "35f622b0db95e82c32e6a7d0d6022be830be24eb25e9cc65d0d8d0a728f6b7ca",
    21: "0240c8fd21fc3da6f6467e4d59429652c98f29f5049360849ae241ebb52676ce",
    56: "17c10e5355874c1c035901a7644ca84be1545bdcf7dd527871de74a0d2ee4f07",
    97: "5e3ab9c59d59b69638bc6e67a529cdb5c677e12220fb3c48fa0ca6ebf7ba7156",
    98: "13007bafc9c3be33023a1685af9a4de2e9b2fe0cbf05b9e4291e17883d3ed239",
}


def test_rendered_pixels_are_pinned():
    """The embedded faces must not change by a pixel: a refactor of the rendering stages that alters any of these
    images fails here (regenerating the data would change every number of Problems 1-2)."""
    changed = []
    for i, digest in _PINNED.items():
        rng = np.random.default_rng([0, _SPLIT_IDS["train"], i])
        face = render_face(sample_attributes(rng), rng)
        if hashlib.sha256(face.tobytes()).hexdigest() != digest:
            changed.append(i)
    assert not changed, f"rendered pixels changed for train faces {changed} of seed 0"


def test_face_is_centred():
    """Average over faces: skin-ish centre differs from the corners; a CelebA-like framing."""
    imgs = np.stack([render_face(sample_attributes(r), r) for r in (np.random.default_rng(i) for i in range(16))]).astype(float)
    std = imgs.std(axis=0).mean(axis=2)         # per-pixel variation across faces
    centre = std[26:38, 24:40].mean()          # eyes-to-mouth band: always skin
    assert centre < std[:8].mean() and centre < std[:, :6].mean()


# Rows y0:y1, columns x0:x1 of the 64-px image where each attribute must show.
_MOUTH = (slice(37, 53), slice(20, 44))
_EYES = (slice(20, 34), slice(16, 48))
_CHEEKS = (slice(30, 43), slice(16, 48))
_FOREHEAD = (slice(12, 26), slice(20, 44))
_TOP = (slice(0, 16), slice(0, 64))
_ALL = (slice(0, 64), slice(0, 64))
# attribute -> (region, minimum mean |difference| in the region, whether it must stay local)
_FLIPS = {
    "Smiling": (_MOUTH, 2.0, True),
    "Mouth_Slightly_Open": (_MOUTH, 2.0, True),
    "Big_Lips": (_MOUTH, 0.9, True),
    "Wearing_Lipstick": (_MOUTH, 1.2, True),
    "Heavy_Makeup": (_EYES, 3.0, True),
    "High_Cheekbones": (_CHEEKS, 2.5, True),
    "Bangs": (_FOREHEAD, 12.0, True),
    "Black_Hair": (_TOP, 6.0, False),
    "Blond_Hair": (_TOP, 6.0, False),
    "Brown_Hair": (_TOP, 3.5, False),
    "Straight_Hair": (_TOP, 3.0, False),
    "Wavy_Hair": (_TOP, 3.0, False),
    "Male": (_ALL, 9.0, False),
}


@pytest.mark.parametrize("attr", sorted(_FLIPS))
def test_each_attribute_visibly_changes_the_picture(attr):
    region, threshold, local = _FLIPS[attr]
    mask = np.zeros((FACE_SIZE, FACE_SIZE), dtype=bool)
    mask[region] = True
    inside, outside = [], []
    for seed in range(4):
        for male in ((0,) if attr == "Male" else (0, 1)):
            base = {k: 0 for k in FACE_ATTRIBUTES} | {"Male": male}
            off = render_face(base | {attr: 0}, np.random.default_rng(seed)).astype(float)
            on = render_face(base | {attr: 1}, np.random.default_rng(seed)).astype(float)
            diff = np.abs(on - off).mean(axis=2)
            inside.append(diff[mask].mean())
            outside.append(diff[~mask].mean() if (~mask).any() else 0.0)
    assert np.mean(inside) > threshold, (attr, np.mean(inside))
    assert min(inside) > 0.2, (attr, min(inside))          # never invisible for any face
    if local:
        assert np.mean(inside) > 4 * np.mean(outside), (attr, np.mean(inside), np.mean(outside))
