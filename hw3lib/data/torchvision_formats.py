"""The public data sets in the formats torchvision reads, turned into the course's tensors.

Everything is read with torchvision's own data set classes and ``download=False`` (nothing is fetched)::

    ROOT/celeba/img_align_celeba/*.jpg                    CelebA (torchvision.datasets.CelebA)
    ROOT/celeba/list_attr_celeba.txt, list_eval_partition.txt, identity_CelebA.txt,
                list_bbox_celeba.txt, list_landmarks_align_celeba.txt
    ROOT/usps.bz2, ROOT/usps.t.bz2                        USPS, libsvm format (torchvision.datasets.USPS)
    ROOT/train_32x32.mat, ROOT/test_32x32.mat             SVHN (torchvision.datasets.SVHN)
    ROOT/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte   MNIST, from which MNIST-M is built
    ROOT/BSR/BSDS500/data/images/train/*.jpg              optional: MNIST-M backgrounds (Ganin's recipe)

USPS and SVHN may also sit in ``ROOT/usps/`` and ``ROOT/svhn/``. Faces become 64x64 (``Resize(64)`` +
``CenterCrop(64)``, as in the PyTorch DCGAN tutorial) with the 13 course attributes picked from CelebA's 40;
digits become 28x28 uint8 with 3 channels. torchvision's md5 checks of the full files are replaced by
existence checks, so subsets (and the tests' tiny fixtures) load too.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from hw3lib.data import cache
from hw3lib.data.domains import TorchvisionFormat
from hw3lib.data.layout import DIGIT_SIZE, FACE_ATTRIBUTES, FACE_SIZE
from hw3lib.data.transforms import resize_uint8

CELEBA_FILES = ("list_attr_celeba.txt", "list_eval_partition.txt", "identity_CelebA.txt",
                "list_bbox_celeba.txt", "list_landmarks_align_celeba.txt")
CELEBA_IMAGES = "img_align_celeba"
USPS_FILES = {"train": "usps.bz2", "test": "usps.t.bz2"}
SVHN_FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat"}
MNIST_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
               "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
BSDS_TRAIN = Path("BSR") / "BSDS500" / "data" / "images" / "train"
MNISTM_SEED = 1234  # fixed: MNIST-M is a data set, not a run
_CACHE_VERSION = "tv1"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


# ----------------------------------------------------------------------------- discovery


def celeba_dir(root: Path) -> Path | None:
    d = Path(root) / "celeba"
    return d if d.is_dir() else None


def usps_file(root: Path, split: str) -> Path | None:
    for d in (Path(root), Path(root) / "usps"):
        if (d / USPS_FILES[split]).is_file():
            return d / USPS_FILES[split]
    return None


def svhn_file(root: Path, split: str) -> Path | None:
    for d in (Path(root), Path(root) / "svhn", Path(root) / "SVHN"):
        if (d / SVHN_FILES[split]).is_file():
            return d / SVHN_FILES[split]
    return None


def mnist_raw(root: Path) -> Path | None:
    d = Path(root) / "MNIST" / "raw"
    return d if d.is_dir() else None


def usps_files(root: Path) -> list[Path | None]:
    """USPS's files of both splits (None where absent)."""
    return [usps_file(root, s) for s in USPS_FILES]


def svhn_files(root: Path) -> list[Path | None]:
    """SVHN's files of both splits (None where absent)."""
    return [svhn_file(root, s) for s in SVHN_FILES]


def mnistm_files(root: Path) -> list[Path | None]:
    """The MNIST folder MNIST-M is built from (None when absent)."""
    return [mnist_raw(root)]


# ----------------------------------------------------------------------------- helpers


def _labels(values, file: Path) -> torch.Tensor:
    labels = torch.as_tensor(np.asarray(values), dtype=torch.int64).reshape(-1)
    bad = ((labels < 0) | (labels > 9)).nonzero()
    if len(bad):
        i = int(bad[0])
        raise ValueError(f"{file}: label {int(labels[i])} of item {i} is outside 0-9")
    return labels


def _stats(*paths: Path) -> list[tuple[str, int, int]]:
    return cache.file_stats(paths)


# ----------------------------------------------------------------------------- USPS, SVHN


def load_usps(root: Path, split: str) -> tuple[torch.Tensor, torch.Tensor, Path]:
    """USPS (libsvm ``usps.bz2`` / ``usps.t.bz2``) → (uint8 [N,3,28,28], int64 [N], file)."""
    from torchvision.datasets import USPS

    file = usps_file(root, split)
    if file is None:
        raise ValueError(f"USPS file not found: {Path(root) / USPS_FILES[split]}")

    def build():
        try:
            ds = USPS(str(file.parent), train=split == "train", download=False)
        except Exception as exc:  # noqa: BLE001 - bz2/parse errors of many kinds
            raise ValueError(f"cannot read USPS file {file}: {_first_line(exc)}") from None
        if len(ds.data) == 0:
            raise ValueError(f"USPS file {file} holds no images")
        labels = _labels(ds.targets, file)
        images = resize_uint8(torch.from_numpy(ds.data).unsqueeze(1), DIGIT_SIZE)
        return {"images": images, "labels": labels}, {}

    key = cache.fingerprint(b"", _stats(file), extra=f"{_CACHE_VERSION}-usps-{split}")
    tensors, _ = cache.cached(file.parent, f"torchvision-usps-{split}", key, build)
    return tensors["images"], tensors["labels"], file


def _svhn(folder: Path, split: str):
    from torchvision.datasets import SVHN

    class SVHNFiles(SVHN):
        """torchvision's SVHN with an existence check instead of the full file's md5."""

        def _check_integrity(self) -> bool:
            return os.path.isfile(os.path.join(self.root, self.filename))

    return SVHNFiles(str(folder), split=split, download=False)


def load_svhn(root: Path, split: str) -> tuple[torch.Tensor, torch.Tensor, Path]:
    """SVHN (``train_32x32.mat`` / ``test_32x32.mat``) → (uint8 [N,3,28,28], int64 [N], file)."""
    file = svhn_file(root, split)
    if file is None:
        raise ValueError(f"SVHN file not found: {Path(root) / SVHN_FILES[split]}")

    def build():
        try:
            ds = _svhn(file.parent, split)
        except Exception as exc:  # noqa: BLE001 - scipy.io raises many types
            raise ValueError(f"cannot read SVHN file {file}: {_first_line(exc)}") from None
        data = np.asarray(ds.data)
        if data.ndim != 4 or data.shape[1] != 3 or len(data) == 0:
            raise ValueError(f"SVHN file {file}: expected X of shape 32x32x3xN, got {tuple(data.shape)}")
        labels = _labels(ds.labels, file)
        images = resize_uint8(torch.from_numpy(np.ascontiguousarray(data, dtype=np.uint8)), DIGIT_SIZE)
        return {"images": images, "labels": labels}, {}

    key = cache.fingerprint(b"", _stats(file), extra=f"{_CACHE_VERSION}-svhn-{split}")
    tensors, _ = cache.cached(file.parent, f"torchvision-svhn-{split}", key, build)
    return tensors["images"], tensors["labels"], file


# ----------------------------------------------------------------------------- MNIST-M


def blend_mnistm(digits_uint8: np.ndarray, rng: np.random.Generator, photos: Sequence[np.ndarray]) -> np.ndarray:
    """MNIST-M (Ganin & Lempitsky, 2015): ``|photo_crop - binarized_digit * 255|`` per channel.

    ``digits_uint8``: [N,28,28] MNIST digits (white on black); ``photos``: uint8 HxWx3 colour photographs
    (the recipe uses BSDS500's training images), each at least 29x29. A random photo and a random 28x28 crop of
    it per digit. Returns uint8 [N,28,28,3].
    """
    digits = np.asarray(digits_uint8)
    if digits.ndim != 3:
        raise ValueError(f"blend_mnistm: expected digits [N,H,W], got shape {digits.shape}")
    photos = [np.asarray(p) for p in photos]
    if not photos:
        raise ValueError("blend_mnistm: no background photographs")
    n, h, w = digits.shape
    for p in photos:
        if p.ndim != 3 or p.shape[2] != 3 or p.shape[0] <= h or p.shape[1] <= w:
            raise ValueError(f"blend_mnistm: photographs must be HxWx3 larger than {h}x{w}, got {p.shape}")
    mask = (digits > 0).astype(np.int16)[..., None] * 255  # the recipe binarizes the digit
    out = np.empty((n, h, w, 3), np.uint8)
    which = rng.integers(0, len(photos), n)
    for i in range(n):
        bg = photos[which[i]]
        y = rng.integers(0, bg.shape[0] - h)
        x = rng.integers(0, bg.shape[1] - w)
        out[i] = np.abs(bg[y:y + h, x:x + w].astype(np.int16) - mask[i])
    return out


def _photo_files(root: Path) -> list[Path]:
    """BSDS500 training images when present (the recipe), else the photographs scikit-image ships."""
    bsds = Path(root) / BSDS_TRAIN
    files = sorted(bsds.glob("*.jpg")) if bsds.is_dir() else []
    if files:
        return files
    import importlib.util

    spec = importlib.util.find_spec("skimage")  # the package folder, without importing scikit-image
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"no MNIST-M background photographs: put BSDS500 under {Path(root) / BSDS_TRAIN}")
    folder = Path(list(spec.submodule_search_locations)[0]) / "data"
    names = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "hubble_deep_field.jpg",
             "ihc.png", "retina.jpg", "motorcycle_left.png", "color.png")
    return [folder / n for n in names if (folder / n).is_file()]


def _read_photos(files: Sequence[Path]) -> list[np.ndarray]:
    from PIL import Image

    out = []
    for f in files:
        try:
            with Image.open(f) as im:
                a = np.asarray(im.convert("RGB"))
        except Exception as exc:  # noqa: BLE001
            raise ValueError(f"cannot read background photograph {f}: {_first_line(exc)}") from None
        if min(a.shape[:2]) > DIGIT_SIZE:
            out.append(a)
    if not out:
        raise ValueError(f"no usable MNIST-M background photographs among {len(files)} files")
    return out


def _check_mnist(root: Path) -> Path:
    raw = Path(root) / "MNIST" / "raw"
    for name in MNIST_FILES["train"] + MNIST_FILES["test"]:  # torchvision wants all four
        if not (raw / name).is_file():
            raise ValueError(f"MNIST file not found: {raw / name} (MNIST-M is built from MNIST)")
    return raw


def load_mnist(root: Path, split: str) -> tuple[torch.Tensor, torch.Tensor, Path]:
    """MNIST raw idx files (``ROOT/MNIST/raw``) → (uint8 [N,28,28], int64 [N], raw folder)."""
    from torchvision.datasets import MNIST

    raw = _check_mnist(root)
    try:
        ds = MNIST(str(root), train=split == "train", download=False)
    except Exception as exc:  # noqa: BLE001 - malformed idx files raise many types
        raise ValueError(f"cannot read MNIST files in {raw}: {_first_line(exc)}") from None
    data, targets = ds.data, ds.targets
    if data.ndim != 3 or len(data) != len(targets) or len(data) == 0:
        raise ValueError(f"MNIST files in {raw}: {len(data)} images but {len(targets)} labels")
    return data, _labels(targets, raw / MNIST_FILES[split][1]), raw


def load_mnistm(root: Path, split: str) -> tuple[torch.Tensor, torch.Tensor, Path]:
    """MNIST-M built from MNIST by Ganin's recipe (fixed seed) → (uint8 [N,3,28,28], int64 [N], MNIST folder)."""
    raw = _check_mnist(root)
    photos = _photo_files(root)
    stats = _stats(*(raw / n for n in MNIST_FILES[split]))

    def build():
        digits, labels, _ = load_mnist(root, split)
        rng = np.random.default_rng([MNISTM_SEED, 0 if split == "train" else 1])
        blended = blend_mnistm(digits.numpy(), rng, _read_photos(photos))
        images = resize_uint8(torch.from_numpy(blended).permute(0, 3, 1, 2), DIGIT_SIZE)
        return {"images": images, "labels": labels}, {}

    key = cache.fingerprint(b"", stats + _stats(*photos), extra=f"{_CACHE_VERSION}-mnistm-{split}")
    tensors, _ = cache.cached(raw.parent, f"torchvision-mnistm-{split}", key, build)
    return tensors["images"], tensors["labels"], raw


# The digit domains' formats (hw3lib.data.domains declares which domain reads which).
USPS = TorchvisionFormat(load_usps, usps_files, USPS_FILES.__getitem__)
SVHN = TorchvisionFormat(load_svhn, svhn_files, SVHN_FILES.__getitem__)
MNISTM = TorchvisionFormat(load_mnistm, mnistm_files,
                           lambda split: f"MNIST/raw/{MNIST_FILES[split][0]} (MNIST-M is built from MNIST)")


# ----------------------------------------------------------------------------- CelebA


def _celeba(root: Path, split: str):
    from torchvision import transforms as T
    from torchvision.datasets import CelebA

    class CelebAFiles(CelebA):
        """torchvision's CelebA with existence checks instead of md5 (subsets load too)."""

        def _check_integrity(self) -> bool:
            base = os.path.join(self.root, self.base_folder)
            return (all(os.path.isfile(os.path.join(base, f)) for f in CELEBA_FILES)
                    and os.path.isdir(os.path.join(base, CELEBA_IMAGES)))

    tf = T.Compose([T.Resize(FACE_SIZE), T.CenterCrop(FACE_SIZE), T.PILToTensor()])
    return CelebAFiles(str(root), split=split, target_type="attr", transform=tf, download=False)


def load_celeba(root: Path, split: str) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...], Path]:
    """CelebA (``ROOT/celeba``) → (uint8 [N,3,64,64], uint8 [N,13] course attributes, names, folder)."""
    folder = Path(root) / "celeba"
    for name in CELEBA_FILES:
        if not (folder / name).is_file():
            raise ValueError(f"CelebA file not found: {folder / name}")
    if not (folder / CELEBA_IMAGES).is_dir():
        raise ValueError(f"CelebA image folder not found: {folder / CELEBA_IMAGES}")
    try:
        ds = _celeba(Path(root), split)
    except Exception as exc:  # noqa: BLE001 - malformed txt files raise many types
        raise ValueError(f"cannot read CelebA lists in {folder}: {_first_line(exc)}") from None
    header = [h for h in ds.attr_names if h]
    missing = [a for a in FACE_ATTRIBUTES if a not in header]
    if missing:
        raise ValueError(f"{folder / 'list_attr_celeba.txt'}: no attribute column {missing[0]!r}")
    names = tuple(ds.filename)
    if not names:
        raise ValueError(f"{folder / 'list_eval_partition.txt'} lists no images for split {split!r}")
    paths = [folder / CELEBA_IMAGES / n for n in names]
    try:
        stats = cache.file_stats(paths)
    except FileNotFoundError as exc:
        raise ValueError(f"{exc} (listed in {folder / 'list_eval_partition.txt'}) does not exist") from None

    def build():
        images = torch.empty((len(names), 3, FACE_SIZE, FACE_SIZE), dtype=torch.uint8)

        def one(i: int) -> None:
            try:
                images[i] = ds[i][0]
            except Exception as exc:  # noqa: BLE001 - PIL raises many types on corrupt files
                raise ValueError(f"corrupt image {paths[i]}: {_first_line(exc)}") from None

        with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
            list(pool.map(one, range(len(names))))
        return {"images": images}, {}

    index = [(folder / f).read_bytes() for f in CELEBA_FILES]
    key = cache.fingerprint(index, stats, extra=f"{_CACHE_VERSION}-celeba-{split}")
    tensors, _ = cache.cached(folder, f"torchvision-{split}", key, build)
    cols = [header.index(a) for a in FACE_ATTRIBUTES]
    attrs = ds.attr[:, cols]
    bad = ((attrs != 0) & (attrs != 1)).nonzero()
    if len(bad):
        i, j = (int(v) for v in bad[0])
        raise ValueError(f"{folder / 'list_attr_celeba.txt'}: attribute {FACE_ATTRIBUTES[j]!r} of {names[i]} "
                         f"is not -1 or 1")
    attrs = attrs.to(torch.uint8)
    return tensors["images"], attrs, names, folder
