"""The embedded digit domains (hw3lib.data.synth_digits): layout, determinism, splits, atomicity."""
from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hw3lib.data import synth_digits as sd
from hw3lib.data.layout import DIGIT_DOMAINS, DIGIT_MODES, DIGIT_SIZE, SPLITS

TINY = {"usps": (30, 20), "mnistm": (30, 20), "svhn": (30, 20)}


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    out = sd.write_digits(root, TINY, seed=3, progress=False)
    assert out == root / "digits"
    return out


def test_layout_modes_and_csv(written: Path) -> None:
    assert sorted(p.name for p in written.iterdir()) == sorted(DIGIT_DOMAINS)
    for domain, (n_train, n_test) in TINY.items():
        folder = written / domain
        assert sorted(p.name for p in folder.iterdir()) == ["test", "test.csv", "train", "train.csv"]
        for split, n in (("train", n_train), ("test", n_test)):
            with open(folder / f"{split}.csv", newline="") as fh:
                rows = list(csv.reader(fh))
            assert rows[0] == ["image_name", "label"]
            names = [r[0] for r in rows[1:]]
            labels = [int(r[1]) for r in rows[1:]]
            assert names == [f"{i:05d}.png" for i in range(n)]
            assert all(0 <= v <= 9 for v in labels)
            assert sorted(p.name for p in (folder / split).iterdir()) == names
            for name in names[:5]:
                with Image.open(folder / split / name) as im:
                    assert im.format == "PNG"
                    assert im.mode == DIGIT_MODES[domain]
                    assert im.size == (DIGIT_SIZE, DIGIT_SIZE)


def test_files_match_render_domain(written: Path) -> None:
    for domain, (n_train, _) in TINY.items():
        x, y = sd.render_domain(domain, "train", n_train, seed=3)
        with open(written / domain / "train.csv", newline="") as fh:
            labels = [int(r["label"]) for r in csv.DictReader(fh)]
        assert labels == y.tolist()
        for i in (0, n_train - 1):
            with Image.open(written / domain / "train" / f"{i:05d}.png") as im:
                np.testing.assert_array_equal(np.asarray(im), x[i])


def test_no_temporary_folders_left(written: Path) -> None:
    assert not [p for p in written.iterdir() if p.name.startswith(".")]


def test_deterministic_bytes(tmp_path: Path, written: Path) -> None:
    sizes = {"usps": (12, 6), "svhn": (12, 6)}
    a = sd.write_digits(tmp_path / "a", sizes, seed=3, progress=False)
    b = sd.write_digits(tmp_path / "b", sizes, seed=3, progress=False)
    c = sd.write_digits(tmp_path / "c", sizes, seed=4, progress=False)
    assert _digest(a) == _digest(b)
    da, dc = _digest(a), _digest(c)
    assert da.keys() == dc.keys()
    assert sum(da[k] != dc[k] for k in da) > len(da) // 2
    # A prefix of a larger request is the same images (labels per block of ten).
    big = _digest(written)
    assert all(da[k] == big[k] for k in da if k.endswith(".png"))


@pytest.mark.parametrize("domain", DIGIT_DOMAINS)
def test_render_domain_shapes_and_determinism(domain: str) -> None:
    x, y = sd.render_domain(domain, "test", 25, seed=1)
    shape = (25, DIGIT_SIZE, DIGIT_SIZE) if DIGIT_MODES[domain] == "L" else (25, DIGIT_SIZE, DIGIT_SIZE, 3)
    assert x.shape == shape and x.dtype == np.uint8
    assert y.shape == (25,) and y.dtype == np.int64
    x2, y2 = sd.render_domain(domain, "test", 25, seed=1)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    x3, _ = sd.render_domain(domain, "test", 25, seed=2)
    assert not np.array_equal(x, x3)
    xt, _ = sd.render_domain(domain, "train", 25, seed=1)
    assert not np.array_equal(x, xt)
    assert x.std() > 10  # not blank


def test_label_balance() -> None:
    for domain in DIGIT_DOMAINS:
        _, y = sd.render_domain(domain, "train", 53, seed=0)
        counts = np.bincount(y, minlength=10)
        assert counts.sum() == 53 and counts.min() >= 5 and counts.max() <= 6
        # Labels alone for course-sized requests: every class within +-20 % of n/10.
        for split, n in (("train", 7291), ("test", 2603)):
            counts = np.bincount(sd._labels(domain, split, 0, 0, n), minlength=10)
            assert np.all(np.abs(counts - n / 10) <= 0.2 * n / 10)
            assert counts.max() - counts.min() <= 1


def test_original_splits_are_disjoint() -> None:
    parts = {(d, s): sd.original_indices(d, s) for d in ("usps", "mnistm") for s in SPLITS}
    keys = list(parts)
    for i, a in enumerate(keys):
        assert len(parts[a]) > 100
        for b in keys[i + 1:]:
            assert not np.intersect1d(parts[a], parts[b]).size, (a, b)
    # Together they are the whole sklearn set, each part covers every label, ~75/25 train/test.
    from sklearn.datasets import load_digits

    digits = load_digits()
    target = digits.target
    images, labels = sd._sklearn_digits()  # the shipped file, read without importing sklearn
    np.testing.assert_array_equal(labels, target)
    np.testing.assert_allclose(images, digits.images / 16.0, atol=1e-6)
    assert sorted(np.concatenate(list(parts.values())).tolist()) == list(range(len(target)))
    for (d, s), idx in parts.items():
        assert set(target[idx].tolist()) == set(range(10))
    for d in ("usps", "mnistm"):
        frac = len(parts[(d, "test")]) / (len(parts[(d, "test")]) + len(parts[(d, "train")]))
        assert 0.2 < frac < 0.3
    np.testing.assert_array_equal(sd.original_indices("usps", "train"), parts[("usps", "train")])
    with pytest.raises(ValueError):
        sd.original_indices("svhn", "train")


def test_svhn_fonts_disjoint() -> None:
    train, test = sd.svhn_fonts("train"), sd.svhn_fonts("test")
    assert len(train) >= 8 and len(test) >= 3
    assert not set(train) & set(test)
    assert all(p.is_file() for p in train + test)


def test_photos_bundled() -> None:
    names = sd.photo_names()
    assert len({n.split("@")[0] for n in names}) >= 5


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        sd.render_domain("mnist", "train", 3)
    with pytest.raises(ValueError):
        sd.render_domain("usps", "val", 3)
    with pytest.raises(ValueError):
        sd.write_digits(tmp_path, {"mnist": (3, 3)}, progress=False)
    assert not (tmp_path / "digits" / "mnist").exists()


def test_atomic_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = sd.write_digits(tmp_path, {"usps": (10, 10)}, seed=0, progress=False)
    before = _digest(out / "usps")
    calls = {"n": 0}
    real = sd._render_usps

    def flaky(rng, label, split):
        calls["n"] += 1
        if calls["n"] > 15:  # fail half-way through the rewrite (in the test split)
            raise RuntimeError("boom")
        return real(rng, label, split)

    monkeypatch.setattr(sd, "_render_usps", flaky)  # the usps domain renders with it (hw3lib.data.domains)
    with pytest.raises(RuntimeError, match="boom"):
        sd.write_digits(tmp_path, {"usps": (10, 10)}, seed=1, progress=False)
    # The previous complete domain is untouched and no temporary folder is left behind.
    assert _digest(out / "usps") == before
    assert sorted(p.name for p in out.iterdir()) == ["usps"]
    # A stale temporary folder from a hard crash is cleaned by the next call.
    (out / ".mnistm.tmp-deadbeef" / "train").mkdir(parents=True)
    monkeypatch.setattr(sd, "_render_usps", real)
    sd.write_digits(tmp_path, {"usps": (10, 10)}, seed=0, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["usps"]
    assert _digest(out / "usps") == before


def test_worker_count_does_not_change_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sizes = {"mnistm": (40, 8), "svhn": (40, 8)}
    a = sd.write_digits(tmp_path / "a", sizes, seed=5, progress=False)
    monkeypatch.setattr(sd, "_POOL_MIN_IMAGES", 1)  # force the two-process pool
    monkeypatch.setattr(sd, "_CHUNK", 16)
    monkeypatch.setattr(sd.os, "cpu_count", lambda: 2)
    b = sd.write_digits(tmp_path / "b", sizes, seed=5, progress=False)
    assert _digest(a) == _digest(b)


def _ink_heights(images: np.ndarray) -> np.ndarray:
    ink = (images if images.ndim == 3 else images.max(-1)) > 127
    rows = [np.flatnonzero(m.any(1)) for m in ink]
    return np.array([r[-1] - r[0] + 1 for r in rows if r.size], float)


def test_digit_heights_follow_the_course_data(monkeypatch: pytest.MonkeyPatch) -> None:
    """USPS digits fill their frame (size-normalised to 16x16); SVHN's centre digit spans most of it."""
    x, _ = sd.render_domain("usps", "train", 200, seed=0)
    h = _ink_heights(x) / DIGIT_SIZE
    assert 0.88 < h.mean() <= 1.0 and np.mean(h >= 0.85) > 0.8
    # svhn as white ink on black, no texture: the ink's height is the printed digits' height.
    monkeypatch.setattr(sd, "_colours", lambda rng: (np.zeros(3, np.float32), np.full(3, 255, np.float32)))
    monkeypatch.setattr(sd, "SVHN_TEXTURED", 0.0)
    x, _ = sd.render_domain("svhn", "train", 200, seed=0)
    h = _ink_heights(x) / DIGIT_SIZE
    assert 0.7 < np.median(h) <= 1.0, np.median(h)


def test_usps_pixel_statistics_match_the_real_set() -> None:
    """Grey, blurred strokes: at 16x16 the embedded usps has the mean and std the real USPS is normalised with
    (0.2469, 0.2989); r2's near-binary strokes had 0.34 / 0.43."""
    x, _ = sd.render_domain("usps", "train", 400, seed=0)
    small = np.stack([np.asarray(Image.fromarray(a).resize((16, 16), Image.Resampling.BOX)) for a in x]) / 255.0
    assert abs(small.mean() - 0.2469) < 0.02, small.mean()
    assert abs(small.std() - 0.2989) < 0.02, small.std()
