"""Read a data folder into uint8 tensors: the course layout first, else torchvision's formats.

``--data DIR`` is a folder holding ``face/`` and/or ``digits/`` in the course layout (the course zip unpacks to
``hw3_data/``; passing its parent works too) — or the torchvision-format files of
:mod:`hw3lib.data.torchvision_formats`. Images are decoded once (a small thread pool), validated, and cached
beside the data (:mod:`hw3lib.data.cache`), so the second load only re-reads the CSV and stats the files.

Digits of another square size (exports of the real USPS, 16x16, and SVHN, 32x32) are resized to 28x28
(:func:`hw3lib.data.transforms.resize_uint8`, antialiased bilinear), said once per domain on stderr, and recorded
in :func:`data_id`. Every problem raises ``ValueError`` with one line naming the file, column and value.
"""
from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from tqdm.auto import tqdm

from hw3lib.data import cache, domains
from hw3lib.data import torchvision_formats as tvf
from hw3lib.data.layout import DIGIT_DOMAINS, DIGIT_SIZE, FACE_ATTRIBUTES, FACE_SIZE, SPLITS
from hw3lib.data.sets import DigitSet, FaceSet
from hw3lib.data.transforms import RESAMPLING, resize_uint8

MANIFEST = "hw3_data.json"  # written by `hw3 data make`; its absence means real data
COURSE_DIRNAME = "hw3_data"  # what the course zip unpacks to
_CACHE_VERSION = "course1"
_FACE_MODES = ("RGB",)
DIGIT_MODES_READ = ("L", "RGB")  # course usps PNGs are grayscale; repeated to 3 channels


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
    domains.get(domain)  # ValueError naming the known domains


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
    fmt = domains.get(domain).torchvision_format()
    if fmt is not None and fmt.present(root):
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
    data: each split's CSV and the names and sizes of the image files (torchvision formats: of the files read);
    course-layout digits that are not 28x28 (judged by each split's first image) add their size and the
    resampling (:data:`~hw3lib.data.transforms.RESAMPLING`), so runs on resized data are keyed apart. Cheap:
    reads one image header per digit split. Runs record it in their config, so a run made on other data is
    never reused.
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
                side = None if part == "face" else _first_side(folder / split)
                if side is not None and side != DIGIT_SIZE:
                    h.update(f"resized {side}x{side} to {DIGIT_SIZE}x{DIGIT_SIZE}: {RESAMPLING}".encode())
        else:
            for f in _torchvision_paths(root, part):
                h.update(b"absent" if f is None else
                         _listing(f) if f.is_dir() else f"{f.name} {f.stat().st_size}".encode())
    return h.hexdigest()[:12]


def _torchvision_paths(root: Path, part: str) -> list[Path | None]:
    """The files (or folders) :mod:`hw3lib.data.torchvision_formats` reads ``part`` from; None where absent."""
    if part == "face":
        return [tvf.celeba_dir(root)]
    fmt = domains.get(part).torchvision_format()
    return fmt.paths(root) if fmt is not None else [None]


def _listing(folder: Path) -> bytes:
    """Sorted ``name size`` lines of the files in ``folder`` (memoised while the folder is unchanged)."""
    try:
        stamp = folder.stat().st_mtime_ns
    except FileNotFoundError:
        return b"absent"
    return _listing_at(str(folder), stamp)


def _first_side(folder: Path) -> int | None:
    """The side of the first (by name) square PNG in ``folder``; None when there is none or it is unreadable
    (the loader names the file then). Memoised while the folder is unchanged."""
    try:
        stamp = folder.stat().st_mtime_ns
    except FileNotFoundError:
        return None
    return _first_side_at(str(folder), stamp)


@functools.lru_cache(maxsize=64)
def _first_side_at(folder: str, stamp: int) -> int | None:  # noqa: ARG001 (cache key)
    with os.scandir(folder) as it:
        first = min((e.name for e in it if e.name.lower().endswith(".png") and e.is_file()), default=None)
    if first is None:
        return None
    try:
        with Image.open(os.path.join(folder, first)) as im:  # reads the header only
            w, h = im.size
    except Exception:  # noqa: BLE001 - unreadable: the loader raises the one-line error
        return None
    return w if w == h else None


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


def decode_pngs(paths: list[Path], size: int, modes: tuple[str, ...], *, resize: bool = False
                ) -> tuple[torch.Tensor, dict[str, int], dict[str, int]]:
    """Decode image files into uint8 [N,3,size,size] (grey repeated), in list order, with a small thread pool.

    Returns ``(images, {mode: count}, {"WxH": count of images resized from that size})``. With ``resize``, a
    square image of another size (16x16 USPS, 32x32 SVHN exports) is resized to ``size`` by
    :func:`hw3lib.data.transforms.resize_uint8` (:data:`~hw3lib.data.transforms.RESAMPLING`); without it only
    ``size``x``size`` is accepted. A non-square, wrong-mode or unreadable file is a ``ValueError`` naming the
    first bad file in list order. Used by the course-layout loader and ``hw3 predict`` alike.
    """
    out = np.empty((len(paths), size, size, 3), np.uint8)
    found: list[str] = [""] * len(paths)
    other: dict[int, np.ndarray] = {}  # index -> RGB array of another square size, resized below
    errors: dict[int, str] = {}
    want = f"{size}x{size} {' or '.join(modes)}"
    if resize:
        want = f"a square {' or '.join(modes)} image ({size}x{size}, or another size resized to it)"

    def chunk(start: int) -> None:
        for i in range(start, min(start + 256, len(paths))):
            p = paths[i]
            try:
                with Image.open(p) as im:
                    w, h = im.size
                    if im.mode not in modes or ((w, h) != (size, size) and not (resize and w == h)):
                        errors[i] = f"{p}: expected {want}, got {w}x{h} {im.mode}"
                        continue
                    found[i] = im.mode
                    if (w, h) == (size, size):
                        out[i] = np.asarray(im.convert("RGB"))
                    else:
                        other[i] = np.asarray(im.convert("RGB"))
            except Exception as exc:  # noqa: BLE001 - PIL/zlib raise many types on corrupt files
                msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                errors[i] = f"corrupt image {p}: {msg[:200]}"
            if errors:
                return

    with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
        list(pool.map(chunk, range(0, len(paths), 256)))
    if errors:
        raise ValueError(errors[min(errors)])
    by_size: dict[int, list[int]] = {}
    for i, a in other.items():
        by_size.setdefault(a.shape[0], []).append(i)
    for side, index in sorted(by_size.items()):  # one batched resize per native size
        batch = torch.from_numpy(np.stack([other[i] for i in index])).permute(0, 3, 1, 2)
        out[index] = resize_uint8(batch, size).permute(0, 2, 3, 1).numpy()
    images = torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()
    return images, dict(Counter(found)), {f"{side}x{side}": len(index) for side, index in sorted(by_size.items())}


def _load_course(folder: Path, split: str, size: int, modes: tuple[str, ...], kind: str, resize: bool = False
                 ) -> tuple[pd.DataFrame, torch.Tensor, dict[str, int], dict[str, int]]:
    """(CSV, uint8 images, {mode: count}, {"WxH": count resized}) of one split, decoded once (cached)."""
    csv = folder / f"{split}.csv"
    df, raw = _read_csv(csv)
    names = list(df["image_name"])
    stats = _stat_listed(folder / split, names, csv)
    key = cache.fingerprint(raw, stats, extra=f"{_CACHE_VERSION}-{kind}-{size}-{','.join(modes)}")

    def build():
        images, found, resized = decode_pngs([folder / split / n for n in names], size, modes, resize=resize)
        return {"images": images}, {"modes": found, "resized": resized}

    tensors, meta = cache.cached(folder, split, key, build)
    return df, tensors["images"], dict(meta.get("modes") or {}), dict(meta.get("resized") or {})


_ANNOUNCED: set[str] = set()  # digit folders whose resizing was already said in this process


def announce_resized(what: str, resized: dict[str, int], size: int) -> None:
    """Say once per ``what`` (a digit domain's folder, a predict folder), on stderr, that images were resized."""
    if not resized or what in _ANNOUNCED:
        return
    _ANNOUNCED.add(what)
    tqdm.write(f"{what}: {' and '.join(resized)} images resized to {size}x{size} ({RESAMPLING})", file=sys.stderr)


def _source(root: Path) -> str:
    return "embedded" if (root / MANIFEST).is_file() else "course"


def load_faces_with_info(root: str | Path, split: str) -> tuple[FaceSet, dict]:
    """:func:`load_faces` plus ``{"layout", "modes", "path"}`` (used by ``hw3 data check``)."""
    _check_split(split)
    root = resolve_root(root)
    layout = faces_layout(root)
    if layout == "course":
        folder = root / "face"
        df, images, modes, _ = _load_course(folder, split, FACE_SIZE, _FACE_MODES, "face")
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
        df, images, modes, resized = _load_course(folder, split, DIGIT_SIZE, DIGIT_MODES_READ, "digits", resize=True)
        csv = folder / f"{split}.csv"
        labels = torch.from_numpy(_int_column(df, "label", range(10), csv, "label"))
        digits = DigitSet(images, labels, tuple(df["image_name"]), domain, _source(root))
        announce_resized(f"{domain} digits in {folder}", resized, DIGIT_SIZE)
        return digits, {"layout": "course", "modes": modes, "resized": resized, "path": str(csv)}
    if layout == "torchvision":
        images, labels, file = domains.get(domain).torchvision_format().read(root, split)
        names = tuple(f"{i:05d}" for i in range(len(labels)))
        digits = DigitSet(images, labels, names, domain, "torchvision")
        return digits, {"layout": "torchvision", "modes": {domains.get(domain).mode: len(labels)}, "path": str(file)}
    if (root / "digits").is_dir():
        have = sorted(p.name for p in (root / "digits").iterdir() if p.is_dir() and not p.name.startswith("."))
        raise ValueError(f"no {domain} digits in {root / 'digits'} (found: {', '.join(have) or 'nothing'})")
    fmt = domains.get(domain).torchvision_format()
    other = f" or {root / fmt.needs(split)} (torchvision format)" if fmt is not None else ""
    raise ValueError(f"no {domain} digits in {root}: expected {root / 'digits' / domain / (split + '.csv')} "
                     f"(course layout){other}")


def load_faces(root: str | Path, split: str) -> FaceSet:
    """Faces of ``split`` ("train"/"test"): uint8 [N,3,64,64] + 13 attributes, from the course layout or CelebA."""
    return load_faces_with_info(root, split)[0]


def load_digits(root: str | Path, domain: str, split: str) -> DigitSet:
    """Digits of ``domain`` ("usps"/"mnistm"/"svhn", or one registered in :mod:`hw3lib.data.domains`) and ``split``: uint8 [N,3,28,28] + labels 0-9."""
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
