"""Digits of other square sizes in the course layout — exports of the real USPS (16x16, grey) and SVHN (32x32, RGB)
— load resized to 28x28, are said once per domain, are keyed apart in the data id, train and predict."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hw3lib.cli import main
from hw3lib.data import data_id, load_digits, loaders
from hw3lib.data.layout import SPLITS
from hw3lib.data.transforms import RESAMPLING, resize_uint8
from hw3lib.predict import read_folder

NATIVE = {"usps": (16, "L"), "svhn": (32, "RGB")}
COUNTS = {"train": 24, "test": 12}


def _write_course(root: Path, seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """usps 16x16 L and svhn 32x32 RGB PNGs in the course layout under ``root``; returns the native arrays."""
    rng = np.random.default_rng(seed)
    native: dict[str, dict[str, np.ndarray]] = {}
    for domain, (side, mode) in NATIVE.items():
        native[domain] = {}
        for split, n in COUNTS.items():
            folder = root / "digits" / domain / split
            folder.mkdir(parents=True)
            shape = (n, side, side) if mode == "L" else (n, side, side, 3)
            arrays = rng.integers(0, 256, shape, dtype=np.uint8)
            with open(root / "digits" / domain / f"{split}.csv", "w", newline="") as fh:
                w = csv.writer(fh, lineterminator="\n")
                w.writerow(["image_name", "label"])
                for i, a in enumerate(arrays):
                    Image.fromarray(a, mode).save(folder / f"{i:05d}.png")
                    w.writerow([f"{i:05d}.png", i % 10])
            native[domain][split] = arrays
    return native


def _as_batch(arrays: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(arrays)
    return t.unsqueeze(1) if t.ndim == 3 else t.permute(0, 3, 1, 2)


@pytest.fixture
def resized_data(tmp_path):
    root = tmp_path / "hw3_data"
    return root, _write_course(root)


def test_other_square_sizes_load_resized_and_are_said_once_per_domain(resized_data, capsys):
    root, native = resized_data
    for domain in NATIVE:
        for split in SPLITS:
            d = load_digits(root, domain, split)
            assert d.images.shape == (COUNTS[split], 3, 28, 28) and d.images.dtype == torch.uint8
            # the one resize path (the torchvision-format loaders use it too)
            assert torch.equal(d.images, resize_uint8(_as_batch(native[domain][split]), 28))
            assert d.labels.tolist() == [i % 10 for i in range(COUNTS[split])]
    err = capsys.readouterr().err.splitlines()
    assert err == [f"usps digits in {root / 'digits' / 'usps'}: 16x16 images resized to 28x28 ({RESAMPLING})",
                   f"svhn digits in {root / 'digits' / 'svhn'}: 32x32 images resized to 28x28 ({RESAMPLING})"]
    again = load_digits(root, "svhn", "test")  # from the decode cache: the same tensors, nothing said again
    assert torch.equal(again.images, resize_uint8(_as_batch(native["svhn"]["test"]), 28))
    assert capsys.readouterr().err == ""


def test_the_resampling_is_antialiased_bilinear():
    """RESAMPLING's claim, checked against PIL's bilinear (which always widens its kernel when shrinking): within
    one grey level, while plain bilinear without antialiasing is far off on a 32→28 shrink of noise."""
    rng = np.random.default_rng(1)
    for side in (16, 32):
        a = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        pil = np.asarray(Image.fromarray(a).resize((28, 28), Image.BILINEAR)).astype(int)
        ours = resize_uint8(_as_batch(a[None]), 28)[0].permute(1, 2, 0).numpy().astype(int)
        assert np.abs(pil - ours).max() <= 1, side
    plain = torch.nn.functional.interpolate(_as_batch(a[None]).float(), size=(28, 28), mode="bilinear",
                                            antialias=False).round()[0].permute(1, 2, 0).numpy()
    assert np.abs(plain - ours).max() > 10


def test_resizing_is_part_of_the_data_id(resized_data, tiny_course_data, monkeypatch):
    root, _ = resized_data
    resized_id, plain_id = data_id(root, ("usps", "svhn")), data_id(tiny_course_data, ("usps", "svhn"))
    monkeypatch.setattr(loaders, "RESAMPLING", "nearest")
    assert data_id(root, ("usps", "svhn")) != resized_id  # another resampling: other data, other runs
    assert data_id(tiny_course_data, ("usps", "svhn")) == plain_id  # 28x28 data: nothing resized, id unchanged


def test_non_square_digit_is_one_error_naming_the_file(resized_data):
    root, _ = resized_data
    bad = root / "digits" / "svhn" / "train" / "00003.png"
    Image.fromarray(np.zeros((32, 30, 3), np.uint8)).save(bad)
    with pytest.raises(ValueError, match=rf"^{bad}: expected a square L or RGB image .* got 30x32 RGB$"):
        load_digits(root, "svhn", "train")
    with pytest.raises(ValueError, match=rf"^{bad}: expected a square"):
        read_folder(bad.parent)
    bad.write_bytes(b"\x89PNG not really")
    with pytest.raises(ValueError, match=rf"^corrupt image {bad}: "):
        read_folder(bad.parent)


def test_resized_data_trains_a_smoke_run_and_predicts(resized_data, tmp_path, capsys):
    from hw3lib.eval.uda import predict_labels
    from hw3lib.train.uda import load_models

    root, _ = resized_data
    run = tmp_path / "dann_usps_svhn"
    assert main(["train", "uda", "--method", "dann", "--source", "usps", "--target", "svhn", "--data", str(root),
                 "--out", str(run), "--steps", "2", "--batch-size", "8", "--device", "cpu"]) == 0
    nets, config = load_models(run)
    classifier = config.spec.classifier(nets, config)
    for domain in NATIVE:  # hw3 predict on the 16x16 and the 32x32 folder: the loader's resized images
        pred = tmp_path / f"pred_{domain}.csv"
        assert main(["predict", "--ckpt", str(run), "--images", str(root / "digits" / domain / "test"),
                     "--out", str(pred), "--device", "cpu"]) == 0
        rows = [line.split(",") for line in pred.read_text().splitlines()[1:]]
        test = load_digits(root, domain, "test")
        assert [r[0] for r in rows] == list(test.names)
        assert [int(r[1]) for r in rows] == predict_labels(classifier, test.images).tolist()
    err = capsys.readouterr().err
    assert f"digits in {root / 'digits' / 'usps' / 'test'}: 16x16 images resized to 28x28" in err
    assert main(["data", "check", "--data", str(root)]) == 0
    out = capsys.readouterr().out
    assert "digits/usps [course]: train 24, test 12 images, 28x28 (resized from 16x16)" in out
    assert "digits/svhn [course]: train 24, test 12 images, 28x28 (resized from 32x32)" in out
