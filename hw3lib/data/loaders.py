"""Read a data folder into uint8 tensors: the course layout first, else torchvision's formats.

``--data DIR`` is a folder holding ``face/`` and/or ``digits/`` in the course layout (the course zip unpacks to
``hw3_data/``; passing its parent works too) — or the torchvision-format files of
:mod:`hw3lib.data.torchvision_formats`. Images are decoded once (a small thread pool), validated, and cached
beside the data (:mod:`hw3lib.data.cache`), so the second load only re-reads the CSV and stats the files.

Every problem raises ``ValueError`` with one line naming the file, column and value.
"""
from __future__ import annotations

import functools
import hashlib
import io
import json
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from hw3lib.data import cache
from hw3lib.data import torchvision_formats as tvf
from hw3lib.data.layout import DIGIT_DOMAINS, DIGIT_SIZE, FACE_ATTRIBUTES, FACE_SIZE, SPLITS
from hw3lib.data.sets import DigitSet, FaceSet

MANIFEST = "hw3_data.json"  # written by `hw3 data make`; its absence means real data
COURSE_DIRNAME = "hw3_data"  # what the course zip unpacks to
_CACHE_VERSION = "course1"
_FACE_MODES = ("RGB",)
_DIGIT_MODES = ("L", "RGB")  # course usps PNGs are grayscale; repeated to 3 channels


# ----------------------------------------------------------------------------- folders


def resolve_root(root: str | Path) -> Path:
    """The data folder itself: ``root``, or ``root/hw3_data`` when that is where the course zip unpacked."""
    root = Path(root).expanduser()
    if not root.exists():
        raise ValueError(f"data folder not found: {root}")
    if not root.is_dir():
        raise ValueError(f"data folder is not a folder: {root}")
    nested = root / COURSE_DIRNAME
    if nested.is_dir() and not (root / "face").exists() and not (root / "digits").exists():
        return nested
    try:
        next(root.iterdir())
    except StopIteration:
        raise ValueError(f"data folder is empty: {root} (run `hw3 data make --out {root}` or unpack hw3_data "
                         "there)") from None
    return root


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")


def _check_domain(domain: str) -> None:
    if domain not in DIGIT_DOMAINS:
        raise ValueError(f"unknown digit domain {domain!r}; known: {', '.join(DIGIT_DOMAINS)}")


def _manifest(root: Path) -> dict | None:
    file = root / MANIFEST
    if not file.is_file():
        return None
    try:
        data = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"unreadable manifest {file}: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"unreadable manifest {file}: not a JSON object")
    return data


def faces_layout(root: Path) -> str | None:
    """"course", "torchvision" or None: where :func:`load_faces` would read faces from (``root`` resolved)."""
    if (root / "face").is_dir():
        return "course"
    if tvf.celeba_dir(root) is not None:
        return "torchvision"
    return None


def digits_layout(root: Path, domain: str) -> str | None:
    """"course", "torchvision" or None: where :func:`load_digits` would read ``domain`` from."""
    if (root / "digits" / domain).is_dir():
        return "course"
    if tvf.has_domain(root, domain):
        return "torchvision"
    return None


def data_info(root: str | Path) -> dict:
    """What a data folder holds: ``{"kind": "embedded"|"real", ...}``.

    Embedded (``hw3 data make``): the manifest's fields (size, seed, counts, ...). Real: ``root``, ``faces``
    (layout or None) and ``digits`` ({domain: layout}). Cheap: reads no image.
    """
    root = resolve_root(root)
    man = _manifest(root)
    if man is not None:
        return {**man, "kind": "embedded", "root": str(root)}
    return {"kind": "real", "root": str(root), "faces": faces_layout(root),
            "digits": {d: layout for d in DIGIT_DOMAINS if (layout := digits_layout(root, d))}}


def data_id(root: str | Path, parts: tuple[str, ...]) -> str:
    """12 hex digits naming the data of ``parts`` ("face" and/or digit domains) in ``root``: what a run trained on.

    Embedded data (``hw3 data make``): the manifest's entry for the part (generator revision, seed, counts). Real
    data: each split's CSV and the names and sizes of the image files (torchvision formats: of the files read).
    Cheap: reads no image. Runs record it in their config, so a run made on other data is never reused.
    """
    root = resolve_root(root)
    man = _manifest(root)
    h = hashlib.sha1()
    for part in parts:
        if part != "face":
            _check_domain(part)
        if man is not None:
            entry = (man.get("parts") or {}).get("faces" if part == "face" else "digits") or man.get("generator")
            h.update(f"embedded {part} {json.dumps(entry, sort_keys=True)}".encode())
            continue
        folder = root / "face" if part == "face" else root / "digits" / part
        if folder.is_dir():
            for split in SPLITS:
                csv = folder / f"{split}.csv"
                h.update(csv.read_bytes() if csv.is_file() else b"no csv")
                h.update(_listing(folder / split))
        else:
            for f in _torchvision_paths(root, part):
                h.update(b"absent" if f is None else
                         _listing(f) if f.is_dir() else f"{f.name} {f.stat().st_size}".encode())
    return h.hexdigest()[:12]


def _torchvision_paths(root: Path, part: str) -> list[Path | None]:
    """The files (or folders) :mod:`hw3lib.data.torchvision_formats` reads ``part`` from; None where absent."""
    if part == "face":
        return [tvf.celeba_dir(root)]
    if part == "usps":
        return [tvf.usps_file(root, s) for s in SPLITS]
    if part == "svhn":
        return [tvf.svhn_file(root, s) for s in SPLITS]
    return [tvf.mnist_raw(root)]


def _listing(folder: Path) -> bytes:
    """Sorted ``name size`` lines of the files in ``folder`` (memoised while the folder is unchanged)."""
    try:
        stamp = folder.stat().st_mtime_ns
    except FileNotFoundError:
        return b"absent"
    return _listing_at(str(folder), stamp)


@functools.lru_cache(maxsize=64)
def _listing_at(folder: str, stamp: int) -> bytes:  # noqa: ARG001 (cache key)
    with os.scandir(folder) as it:
        entries = sorted((e.name, e.stat().st_size) for e in it if e.is_file())
    return hashlib.sha1("\n".join(f"{n} {z}" for n, z in entries).encode()).digest()


# ----------------------------------------------------------------------------- course layout


def _read_csv(file: Path) -> tuple[pd.DataFrame, bytes]:
    if not file.is_file():
        raise ValueError(f"missing CSV: {file}")
    raw = file.read_bytes()
    if not raw.strip():
        raise ValueError(f"empty CSV: {file}")
    try:
        df = pd.read_csv(io.BytesIO(raw), dtype=str, keep_default_na=False)
    except (ValueError, pd.errors.ParserError) as exc:
        raise ValueError(f"cannot parse {file}: {str(exc).strip().splitlines()[0]}") from None
    df.columns = [str(c).strip() for c in df.columns]
    if "image_name" not in df.columns:
        raise ValueError(f"{file}: no 'image_name' column (columns: {', '.join(df.columns)})")
    if len(df) == 0:
        raise ValueError(f"{file} lists no images")
    names = df["image_name"].str.strip()
    empty = np.flatnonzero((names == "").to_numpy())
    if len(empty):
        raise ValueError(f"{file}: empty image_name on line {empty[0] + 2}")
    dup = names.duplicated(keep=False).to_numpy()
    if dup.any():
        rows = np.flatnonzero(names == names[np.argmax(dup)])
        raise ValueError(f"{file}: duplicate image_name {names[rows[0]]!r} (lines {rows[0] + 2} and {rows[1] + 2})")
    df["image_name"] = names
    return df, raw


def _int_column(df: pd.DataFrame, column: str, allowed: range, file: Path, what: str) -> np.ndarray:
    if column not in df.columns:
        raise ValueError(f"{file}: no {what} column {column!r} (columns: {', '.join(df.columns)})")
    text = df[column].str.strip()
    values = pd.to_numeric(text, errors="coerce")
    ok = values.notna() & values.isin(list(allowed))
    if not ok.all():
        i = int(np.argmin(ok.to_numpy()))
        name, value = df["image_name"].iat[i], text.iat[i]
        rule = f"outside {allowed.start}-{allowed.stop - 1}" if what == "label" else "not 0 or 1"
        raise ValueError(f"{file}: {column} {value!r} of {name} (line {i + 2}) is {rule}")
    return values.to_numpy().astype(np.int64)


def _stat_listed(folder: Path, names: list[str], csv: Path) -> list[tuple[str, int, int]]:
    if not folder.is_dir():
        raise ValueError(f"image folder not found: {folder} ({csv.name} lists {len(names)} images)")
    try:
        return cache.file_stats(folder / n for n in names)
    except FileNotFoundError as exc:
        if not any(folder.iterdir()):
            raise ValueError(f"image folder is empty: {folder} ({csv.name} lists {len(names)} images)") from None
        raise ValueError(f"{exc} (listed in {csv}) does not exist") from None


def _decode(paths: list[Path], size: int, modes: tuple[str, ...]) -> tuple[torch.Tensor, dict[str, int]]:
    """Decode PNGs into uint8 [N,3,size,size]; ``ValueError`` names the first bad file in list order."""
    out = np.empty((len(paths), size, size, 3), np.uint8)
    found: list[str] = [""] * len(paths)
    errors: dict[int, str] = {}
    want = f"{size}x{size} {' or '.join(modes)}"

    def chunk(start: int) -> None:
        for i in range(start, min(start + 256, len(paths))):
            p = paths[i]
            try:
                with Image.open(p) as im:
                    if im.size != (size, size) or im.mode not in modes:
                        w, h = im.size
                        errors[i] = f"{p}: expected {want}, got {w}x{h} {im.mode}"
                        continue
                    found[i] = im.mode
                    out[i] = np.asarray(im.convert("RGB"))
            except Exception as exc:  # noqa: BLE001 - PIL/zlib raise many types on corrupt files
                msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                errors[i] = f"corrupt image {p}: {msg[:200]}"
            if errors:
                return

    with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
        list(pool.map(chunk, range(0, len(paths), 256)))
    if errors:
        raise ValueError(errors[min(errors)])
    images = torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()
    return images, dict(Counter(found))


def _load_course(folder: Path, split: str, size: int, modes: tuple[str, ...], kind: str
                 ) -> tuple[pd.DataFrame, torch.Tensor, dict[str, int]]:
    csv = folder / f"{split}.csv"
    df, raw = _read_csv(csv)
    names = list(df["image_name"])
    stats = _stat_listed(folder / split, names, csv)
    key = cache.fingerprint(raw, stats, extra=f"{_CACHE_VERSION}-{kind}-{size}-{','.join(modes)}")

    def build():
        images, found = _decode([folder / split / n for n in names], size, modes)
        return {"images": images}, {"modes": found}

    tensors, meta = cache.cached(folder, split, key, build)
    return df, tensors["images"], dict(meta.get("modes") or {})


def _source(root: Path) -> str:
    return "embedded" if (root / MANIFEST).is_file() else "course"


def load_faces_with_info(root: str | Path, split: str) -> tuple[FaceSet, dict]:
    """:func:`load_faces` plus ``{"layout", "modes", "path"}`` (used by ``hw3 data check``)."""
    _check_split(split)
    root = resolve_root(root)
    layout = faces_layout(root)
    if layout == "course":
        folder = root / "face"
        df, images, modes = _load_course(folder, split, FACE_SIZE, _FACE_MODES, "face")
        csv = folder / f"{split}.csv"
        attrs = np.stack([_int_column(df, a, range(2), csv, "attribute") for a in FACE_ATTRIBUTES], 1)
        faces = FaceSet(images, torch.from_numpy(attrs.astype(np.uint8)), tuple(df["image_name"]),
                        FACE_ATTRIBUTES, _source(root))
        return faces, {"layout": "course", "modes": modes, "path": str(csv)}
    if layout == "torchvision":
        images, attrs, names, folder = tvf.load_celeba(root, split)
        faces = FaceSet(images, attrs, names, FACE_ATTRIBUTES, "torchvision")
        return faces, {"layout": "torchvision", "modes": {"RGB": len(names)}, "path": str(folder)}
    raise ValueError(f"no face data in {root}: expected {root / 'face' / (split + '.csv')} (course layout) "
                     f"or {root / 'celeba'}/ (torchvision CelebA)")


def load_digits_with_info(root: str | Path, domain: str, split: str) -> tuple[DigitSet, dict]:
    """:func:`load_digits` plus ``{"layout", "modes", "path"}`` (used by ``hw3 data check``)."""
    _check_domain(domain)
    _check_split(split)
    root = resolve_root(root)
    layout = digits_layout(root, domain)
    if layout == "course":
        folder = root / "digits" / domain
        df, images, modes = _load_course(folder, split, DIGIT_SIZE, _DIGIT_MODES, "digits")
        csv = folder / f"{split}.csv"
        labels = torch.from_numpy(_int_column(df, "label", range(10), csv, "label"))
        digits = DigitSet(images, labels, tuple(df["image_name"]), domain, _source(root))
        return digits, {"layout": "course", "modes": modes, "path": str(csv)}
    if layout == "torchvision":
        loader = {"usps": tvf.load_usps, "svhn": tvf.load_svhn, "mnistm": tvf.load_mnistm}[domain]
        images, labels, file = loader(root, split)
        names = tuple(f"{i:05d}" for i in range(len(labels)))
        mode = "L" if domain == "usps" else "RGB"
        digits = DigitSet(images, labels, names, domain, "torchvision")
        return digits, {"layout": "torchvision", "modes": {mode: len(labels)}, "path": str(file)}
    if (root / "digits").is_dir():
        have = sorted(p.name for p in (root / "digits").iterdir() if p.is_dir() and not p.name.startswith("."))
        raise ValueError(f"no {domain} digits in {root / 'digits'} (found: {', '.join(have) or 'nothing'})")
    raise ValueError(f"no {domain} digits in {root}: expected {root / 'digits' / domain / (split + '.csv')} "
                     f"(course layout) or {root / tvf.expected(domain, split)} (torchvision format)")


def load_faces(root: str | Path, split: str) -> FaceSet:
    """Faces of ``split`` ("train"/"test"): uint8 [N,3,64,64] + 13 attributes, from the course layout or CelebA."""
    return load_faces_with_info(root, split)[0]


def load_digits(root: str | Path, domain: str, split: str) -> DigitSet:
    """Digits of ``domain`` ("usps"/"mnistm"/"svhn") and ``split``: uint8 [N,3,28,28] + labels 0-9."""
    return load_digits_with_info(root, domain, split)[0]


@functools.lru_cache(maxsize=16)
def _cached_digits(root: str, domain: str, split: str, stamp: float) -> DigitSet:  # noqa: ARG001 (cache key)
    return load_digits(root, domain, split)


def digits(root: str | Path, domain: str, split: str) -> DigitSet:
    """:func:`load_digits` memoised per process: the runs of a notebook (methods × pairs × seeds) decode each
    folder once. A rewritten CSV (new mtime) is read again."""
    csv = Path(root) / "digits" / domain / f"{split}.csv"
    stamp = csv.stat().st_mtime if csv.is_file() else -1.0
    return _cached_digits(str(Path(root).resolve()), domain, split, stamp)
