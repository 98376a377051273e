"""Loaders: course layout, torchvision formats, decode cache, validation (one-line ValueError)."""
from __future__ import annotations

import bz2
import os
import shutil
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from hw3lib.data import cache, load_digits, load_faces
from hw3lib.data import loaders
from hw3lib.data import torchvision_formats as tvf
from hw3lib.data.layout import DIGIT_DOMAINS, FACE_ATTRIBUTES

# ----------------------------------------------------------------------------- course layout


def test_course_layout_shapes_and_source(tiny_course_data):
    faces = load_faces(tiny_course_data, "train")
    assert faces.images.shape == (24, 3, 64, 64) and faces.images.dtype == torch.uint8
    assert faces.attrs.shape == (24, 13) and faces.attrs.dtype == torch.uint8
    assert faces.attr_names == FACE_ATTRIBUTES and faces.source == "course"
    assert set(faces.attrs.unique().tolist()) <= {0, 1}
    csv = pd.read_csv(tiny_course_data / "face" / "train.csv")
    assert faces.attr("Male").tolist() == csv["Male"].tolist()
    assert faces.names[:2] == tuple(csv["image_name"][:2])
    for domain in DIGIT_DOMAINS:
        d = load_digits(tiny_course_data, domain, "test")
        assert d.images.shape == (10, 3, 28, 28) and d.images.dtype == torch.uint8
        assert d.labels.dtype == torch.int64 and d.domain == domain and d.source == "course"
        assert int(d.labels.min()) >= 0 and int(d.labels.max()) <= 9
    usps = load_digits(tiny_course_data, "usps", "train")
    png = np.array(Image.open(tiny_course_data / "digits" / "usps" / "train" / usps.names[0]))
    assert png.ndim == 2  # grayscale on disk, repeated to three channels in memory
    for c in range(3):
        assert torch.equal(usps.images[0, c], torch.from_numpy(png))


def test_parent_of_hw3_data_and_embedded_source(tiny_course_data, tiny_embedded_data):
    faces = load_faces(tiny_course_data.parent, "test")  # the zip's parent folder works too
    assert len(faces) == 8
    assert load_digits(tiny_embedded_data, "svhn", "train").source == "embedded"
    info = loaders.data_info(tiny_embedded_data)
    assert info["kind"] == "embedded" and info["counts"]["face"]["train"] == 24
    real = loaders.data_info(tiny_course_data)
    assert real["kind"] == "real" and real["faces"] == "course" and set(real["digits"]) == set(DIGIT_DOMAINS)


# ----------------------------------------------------------------------------- cache


def test_cache_hit_skips_decoding(course_copy, monkeypatch):
    """The first load decodes the PNGs and writes the cache; the second reads the cache and decodes nothing. (How
    much faster that is belongs in benchmarks/, not in a test.)"""
    decoded = []

    def counting(paths, *a, **k):
        decoded.append(len(paths))
        return decode(paths, *a, **k)

    decode = loaders.decode_pngs
    monkeypatch.setattr(loaders, "decode_pngs", counting)
    assert cache.location(course_copy / "digits" / "mnistm", "train") is None
    first = load_digits(course_copy, "mnistm", "train")
    assert decoded == [30]
    assert cache.location(course_copy / "digits" / "mnistm", "train") == \
        course_copy / "digits" / "mnistm" / ".cache" / "train.pt"

    def boom(*a, **k):
        raise AssertionError("decoded again despite a valid cache")

    monkeypatch.setattr(loaders, "decode_pngs", boom)
    second = load_digits(course_copy, "mnistm", "train")
    assert torch.equal(first.images, second.images) and torch.equal(first.labels, second.labels)


def test_cache_invalidated_when_a_file_changes(course_copy):
    before = load_faces(course_copy, "train")
    name = before.names[3]
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(course_copy / "face" / "train" / name)
    after = load_faces(course_copy, "train")
    assert after.images[3].sum() == 0 and torch.equal(after.images[4], before.images[4])
    # editing the CSV (same files) also rebuilds: the attributes follow the CSV
    csv = course_copy / "face" / "train.csv"
    df = pd.read_csv(csv)
    df.loc[0, "Male"] = 1 - df.loc[0, "Male"]
    df.to_csv(csv, index=False)
    assert int(load_faces(course_copy, "train").attr("Male")[0]) == int(df.loc[0, "Male"])


def test_corrupt_cache_is_rebuilt(course_copy):
    ref = load_digits(course_copy, "usps", "test")
    file = cache.location(course_copy / "digits" / "usps", "test")
    file.write_bytes(b"not a torch file")
    again = load_digits(course_copy, "usps", "test")
    assert torch.equal(ref.images, again.images)
    assert torch.load(file, weights_only=True)["format"] == cache.FORMAT  # rewritten


def test_unwritable_folder_falls_back_to_home_cache(course_copy, tmp_path, monkeypatch):
    monkeypatch.setenv("HW3_CACHE_DIR", str(tmp_path / "home-cache"))
    (course_copy / "digits" / "svhn" / ".cache").write_text("a file where the cache folder would go")
    ref = load_digits(course_copy, "svhn", "test")
    file = cache.location(course_copy / "digits" / "svhn", "test")
    assert file is not None and (tmp_path / "home-cache") in file.parents
    assert torch.equal(load_digits(course_copy, "svhn", "test").images, ref.images)


def test_cache_can_be_disabled(course_copy, monkeypatch):
    monkeypatch.setenv("HW3_CACHE", "0")
    load_faces(course_copy, "test")
    assert cache.location(course_copy / "face", "test") is None


# ----------------------------------------------------------------------------- validation


def _rewrite_csv(root: Path, rel: str, edit) -> None:
    file = root / rel
    df = pd.read_csv(file, dtype=str)
    df = edit(df)
    df.to_csv(file, index=False)


def _set(df, row, col, value):
    df.loc[row, col] = value
    return df


def _break_missing_png(root):
    (root / "face" / "train" / "00005.png").unlink()


def _break_corrupt_png(root):
    (root / "digits" / "mnistm" / "train" / "00002.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")


def _break_label(root):
    _rewrite_csv(root, "digits/usps/test.csv", lambda df: _set(df, 4, "label", "12"))


def _break_attr(root):
    _rewrite_csv(root, "face/test.csv", lambda df: _set(df, 1, "Smiling", "2"))


def _break_size(root):  # other square sizes are resized; a non-square digit is not
    Image.fromarray(np.zeros((30, 32, 3), np.uint8)).save(root / "digits" / "svhn" / "test" / "00001.png")


def _break_face_size(root):  # faces are not resized
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(root / "face" / "test" / "00002.png")


def _break_face_mode(root):
    Image.fromarray(np.zeros((64, 64), np.uint8), "L").save(root / "face" / "train" / "00000.png")


def _break_duplicate(root):
    _rewrite_csv(root, "digits/svhn/train.csv", lambda df: _set(df, 3, "image_name", df.loc[1, "image_name"]))


def _break_no_image_name(root):
    _rewrite_csv(root, "face/train.csv", lambda df: df.rename(columns={"image_name": "file"}))


def _break_no_attr(root):
    _rewrite_csv(root, "face/train.csv", lambda df: df.drop(columns=["Smiling"]))


def _break_no_label(root):
    _rewrite_csv(root, "digits/mnistm/train.csv", lambda df: df.rename(columns={"label": "y"}))


def _break_missing_csv(root):
    (root / "digits" / "usps" / "train.csv").unlink()


def _break_empty_image_folder(root):
    folder = root / "face" / "test"
    shutil.rmtree(folder)
    folder.mkdir()


BAD = [
    # (id, breaker, what to load, pattern the message must contain)
    ("missing-png", _break_missing_png, ("faces", "train"),
     r"face/train/00005\.png \(listed in .*train\.csv\) does not"),
    ("corrupt-png", _break_corrupt_png, ("mnistm", "train"), r"corrupt image .*mnistm/train/00002\.png"),
    ("label", _break_label, ("usps", "test"), r"usps/test\.csv: label '12' of \S+\.png .*outside 0-9"),
    ("attr", _break_attr, ("faces", "test"), r"face/test\.csv: Smiling '2' of \S+\.png .*not 0 or 1"),
    ("size", _break_size, ("svhn", "test"),
     r"svhn/test/00001\.png: expected a square L or RGB image \(28x28, or another size resized to it\), got 32x30 RGB"),
    ("face-size", _break_face_size, ("faces", "test"), r"face/test/00002\.png: expected 64x64 RGB, got 32x32 RGB"),
    ("face-mode", _break_face_mode, ("faces", "train"), r"face/train/00000\.png: expected 64x64 RGB, got 64x64 L"),
    ("duplicate", _break_duplicate, ("svhn", "train"),
     r"svhn/train\.csv: duplicate image_name '\S+' \(lines 3 and 5\)"),
    ("no-image-name", _break_no_image_name, ("faces", "train"), r"face/train\.csv: no 'image_name' column"),
    ("no-attr", _break_no_attr, ("faces", "train"), r"face/train\.csv: no attribute column 'Smiling'"),
    ("no-label", _break_no_label, ("mnistm", "train"), r"mnistm/train\.csv: no label column 'label'"),
    ("missing-csv", _break_missing_csv, ("usps", "train"), r"missing CSV: .*usps/train\.csv"),
    ("empty-image-folder", _break_empty_image_folder, ("faces", "test"), r"image folder is empty: .*face/test"),
]


def _load(root, what):
    domain, split = what
    return load_faces(root, split) if domain == "faces" else load_digits(root, domain, split)


@pytest.mark.parametrize("breaker,what,pattern", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_raises_one_line(course_copy, breaker, what, pattern):
    breaker(course_copy)
    with pytest.raises(ValueError, match=pattern) as err:
        _load(course_copy, what)
    assert "\n" not in str(err.value)


def test_bad_folders_and_names(tmp_path, tiny_course_data):
    with pytest.raises(ValueError, match=r"data folder not found: .*nowhere"):
        load_faces(tmp_path / "nowhere", "train")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"data folder is empty: .*empty"):
        load_digits(tmp_path / "empty", "usps", "train")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match=r"no face data in .*other: expected .*face/train\.csv"):
        load_faces(tmp_path / "other", "train")
    with pytest.raises(ValueError, match=r"no svhn digits in .*other: expected .*train_32x32\.mat"):
        load_digits(tmp_path / "other", "svhn", "train")
    with pytest.raises(ValueError, match=r"unknown digit domain 'mnist'"):
        load_digits(tiny_course_data, "mnist", "train")
    with pytest.raises(ValueError, match=r"unknown split 'valid'"):
        load_faces(tiny_course_data, "valid")


def test_grayscale_png_in_rgb_domain_is_converted(course_copy):
    gray = np.arange(28 * 28, dtype=np.uint8).reshape(28, 28)
    Image.fromarray(gray, "L").save(course_copy / "digits" / "mnistm" / "test" / "00000.png")
    d = load_digits(course_copy, "mnistm", "test")
    assert all(torch.equal(d.images[0, c], torch.from_numpy(gray.copy())) for c in range(3))


# ----------------------------------------------------------------------------- torchvision formats


def _write_usps(file: Path, n: int, rng) -> np.ndarray:
    labels = np.arange(n) % 10
    lines = []
    for y in labels:
        pix = rng.uniform(-1, 1, 256)
        lines.append(f"{y + 1} " + " ".join(f"{i + 1}:{v:.6f}" for i, v in enumerate(pix)))
    file.write_bytes(bz2.compress(("\n".join(lines) + "\n").encode()))
    return labels


def _write_idx(file: Path, array: np.ndarray) -> None:
    magic = 0x0800 + array.ndim
    file.write_bytes(struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape)
                     + array.astype(np.uint8).tobytes())


def test_usps_svhn_mnistm_in_torchvision_formats(tmp_path):
    import scipy.io

    rng = np.random.default_rng(0)
    root = tmp_path / "tv"
    root.mkdir()
    usps_train = _write_usps(root / "usps.bz2", 12, rng)
    _write_usps(root / "usps.t.bz2", 5, rng)
    (root / "svhn").mkdir()
    for split, n in (("train", 7), ("test", 4)):
        y = (np.arange(n) % 10) + 1  # SVHN stores 0 as 10
        scipy.io.savemat(root / "svhn" / f"{split}_32x32.mat",
                         {"X": rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8), "y": y.reshape(-1, 1)})
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", 9), ("t10k", 3)):
        digits = np.zeros((n, 28, 28), np.uint8)
        digits[:, 8:20, 12:16] = 255
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", digits)
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)

    fresh = loaders.data_id(root, ("svhn", "usps", "mnistm"))
    usps = load_digits(root, "usps", "train")
    assert usps.images.shape == (12, 3, 28, 28) and usps.images.dtype == torch.uint8
    assert usps.labels.tolist() == usps_train.tolist() and usps.source == "torchvision"
    assert len(load_digits(root, "usps", "test")) == 5
    svhn = load_digits(root, "svhn", "train")
    assert svhn.images.shape == (7, 3, 28, 28) and svhn.labels.tolist() == [1, 2, 3, 4, 5, 6, 7]
    assert load_digits(root, "svhn", "test").labels.tolist() == [1, 2, 3, 4]
    mnistm = load_digits(root, "mnistm", "train")
    assert mnistm.images.shape == (9, 3, 28, 28) and mnistm.labels.tolist() == list(range(9))
    assert not torch.equal(mnistm.images[:, 0], mnistm.images[:, 1])  # coloured backgrounds
    assert torch.equal(load_digits(root, "mnistm", "train").images, mnistm.images)  # deterministic / cached
    assert loaders.data_info(root)["digits"] == {"usps": "torchvision", "mnistm": "torchvision",
                                                 "svhn": "torchvision"}
    # the runs' data_id names these files: stable while they are (decode caches aside), changed when one is rewritten
    assert loaders.data_id(root, ("svhn", "usps", "mnistm")) == fresh
    before = loaders.data_id(root, ("svhn", "usps"))
    assert before == loaders.data_id(root, ("svhn", "usps")) != loaders.data_id(root, ("mnistm", "usps"))
    (root / "svhn" / "test_32x32.mat").write_bytes(b"broken")
    assert loaders.data_id(root, ("svhn", "usps")) != before
    with pytest.raises(ValueError, match=r"cannot read SVHN file .*test_32x32\.mat"):
        load_digits(root, "svhn", "test")


def test_blend_mnistm_recipe():
    rng = np.random.default_rng(0)
    digits = np.zeros((3, 28, 28), np.uint8)
    digits[:, 10:18, 10:18] = 200
    photo = np.full((40, 50, 3), 30, np.uint8)
    out = tvf.blend_mnistm(digits, rng, [photo])
    assert out.shape == (3, 28, 28, 3) and out.dtype == np.uint8
    assert (out[:, 10:18, 10:18] == 225).all() and (out[:, :5] == 30).all()  # |30 - 255|, background


def _write_celeba(root: Path, n: int = 6) -> list[str]:
    folder = root / "celeba"
    (folder / "img_align_celeba").mkdir(parents=True)
    all40 = ("5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose Black_Hair "
             "Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee Gray_Hair Heavy_Makeup "
             "High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose "
             "Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat "
             "Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young").split()
    assert len(all40) == 40
    names = [f"{i + 1:06d}.jpg" for i in range(n)]
    rng = np.random.default_rng(0)
    attr_rows, part, ident, bbox, land = [], [], [], [], []
    for i, name in enumerate(names):
        img = np.zeros((218, 178, 3), np.uint8)
        img[..., i % 3] = 200
        Image.fromarray(img).save(folder / "img_align_celeba" / name, quality=95)
        vals = [1 if (i + j) % 2 else -1 for j in range(40)]
        attr_rows.append(f"{name} " + " ".join(f"{v:2d}" for v in vals))
        part.append(f"{name} {0 if i < n - 2 else 2}")
        ident.append(f"{name} {i + 100}")
        bbox.append(f"{name} 95 71 226 313")
        land.append(f"{name} " + " ".join(str(v) for v in rng.integers(60, 120, 10)))
    (folder / "list_attr_celeba.txt").write_text(f"{n}\n" + " ".join(all40) + " \n" + "\n".join(attr_rows) + "\n")
    (folder / "list_eval_partition.txt").write_text("\n".join(part) + "\n")
    (folder / "identity_CelebA.txt").write_text("\n".join(ident) + "\n")
    (folder / "list_bbox_celeba.txt").write_text(f"{n}\nimage_id x_1 y_1 width height\n" + "\n".join(bbox) + "\n")
    (folder / "list_landmarks_align_celeba.txt").write_text(
        f"{n}\nlefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x "
        "rightmouth_y\n" + "\n".join(land) + "\n")
    return all40


def test_celeba_in_torchvision_format(tmp_path):
    all40 = _write_celeba(tmp_path)
    before = loaders.data_id(tmp_path, ("face",))
    train = load_faces(tmp_path, "train")
    assert loaders.data_id(tmp_path, ("face",)) == before  # the decode cache written beside it changes nothing
    assert train.images.shape == (4, 3, 64, 64) and train.images.dtype == torch.uint8
    assert train.source == "torchvision" and train.names[0] == "000001.jpg"
    # image 1 is green: channel 1 ~200, others ~0 (JPEG noise aside)
    assert train.images[1, 1].float().mean() > 190 and train.images[1, 0].float().mean() < 10
    for k, name in enumerate(FACE_ATTRIBUTES):
        j = all40.index(name)
        assert train.attrs[:, k].tolist() == [1 if (i + j) % 2 else 0 for i in range(4)]
    assert len(load_faces(tmp_path, "test")) == 2
    os.remove(tmp_path / "celeba" / "identity_CelebA.txt")
    with pytest.raises(ValueError, match=r"CelebA file not found: .*identity_CelebA\.txt"):
        load_faces(tmp_path, "train")


def test_tiny_data_never_falls_back_to_random_images(tmp_path, monkeypatch):
    """tests/conftest.py makes its data with the generators or fails: a broken generator import is an error, not
    a silent switch to random pixels that every data test would then pass on."""
    import sys

    from conftest import write_tiny_course_data

    for module in ("hw3lib.data.synth_digits", "hw3lib.data.synth_faces"):
        with monkeypatch.context() as m:
            m.setitem(sys.modules, module, None)  # `import` of it raises ImportError
            with pytest.raises(ImportError, match=module):
                write_tiny_course_data(tmp_path / module)
