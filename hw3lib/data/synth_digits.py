"""Three real, different digit domains built offline from what installed packages ship.

Written in the course's layout (see :mod:`hw3lib.data.layout`)::

    ROOT/digits/{usps,mnistm,svhn}/{train,test}/NNNNN.png    28x28, usps "L", mnistm/svhn "RGB"
    ROOT/digits/{usps,mnistm,svhn}/{train,test}.csv          image_name,label

The domains
-----------
``usps``
    The real handwritten digits scikit-learn ships (``sklearn.datasets.load_digits``: 1797
    8x8 images, 17 grey levels) upsampled with a smooth (bicubic) interpolation to a digit
    that fills the 28x28 frame (about 24-28 px tall), white on black, with a small
    random affine (rotation, scale, shear, shift) and stroke-thickness variation (a random
    soft threshold of the smooth upsampled digit, sometimes a grey dilation / erosion); grey,
    blurred strokes give the real set's pixel mean and std (0.2469 / 0.2989).
``mnistm``
    A *disjoint* half of the same handwritten originals (no original is shared with usps),
    MNIST-sized (about 18-22 px tall, centred), blended with random crops of the photographs
    scikit-image bundles in its package (read from the package folder, never downloaded) by
    the MNIST-M recipe of Ganin & Lempitsky (2015): ``out = |photo_crop - mask * 255|`` per
    channel.  Grey photographs (brick, grass, camera, ...) are tinted with a fixed colour
    ramp so that every crop is colourful.
``svhn``
    Printed digits ("synthetic numbers", Ganin's SynNumbers) rendered with the TrueType fonts
    matplotlib ships (DejaVu Sans / Sans Mono / Serif, STIX General, Computer Modern) via PIL:
    random background and foreground colours (sometimes low contrast, sometimes light on dark),
    background gradients and, on most images, a wall's texture (a grey photograph crop),
    neighbouring distractor digits partly visible at the left/right edges (house-number style),
    a centre digit about the frame's height, slight rotation / scale / shear, blur or a
    low-resolution cut upscaled to 28x28, and noise.

Splits: test images never come from a training original
---------------------------------------------------------
The 1797 sklearn originals are split once (a fixed, seed-independent stratified permutation)
into four disjoint pools: per label, half go to ``usps`` and half to ``mnistm``; within each
domain 75 % are train-originals and 25 % test-originals (:func:`original_indices`).
``svhn`` has no handwritten originals: its fonts are split instead; five faces (one per style
family: DejaVuSans-BoldOblique, DejaVuSansMono, DejaVuSerif-Italic, STIXGeneralBol, cmss10)
are used only by the test split, the other sixteen only by train (:func:`svhn_fonts`).  The
mnistm photographs (:func:`photo_names`) are shared by both splits; only their handwritten
originals are disjoint.  In addition every image has its own random stream, different for
train and test.

Determinism
-----------
Image ``i`` of ``(domain, split)`` is a function of ``np.random.default_rng([seed, domain_id,
split_id, i])`` (``domain_id``: the domain's place in :mod:`hw3lib.data.domains`, whose
entries name these renderers; a domain registered there with its own ``render`` is written the
same way) and of its label; labels are drawn per block of ten (a permutation of 0-9 per block, from ``default_rng([seed, domain_id, 10 + split_id, block])``), so labels are balanced
to within one image per class, and the first ``n`` images do not depend on how many are asked
for.  Output is byte-identical whatever the number of worker processes.
"""
from __future__ import annotations

import csv
import importlib.util
import math
import os
import shutil
import uuid
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from hw3lib.data import domains
from hw3lib.data.layout import DIGIT_SIZE, SPLITS

__all__ = ["original_indices", "photo_names", "render_domain", "svhn_fonts", "write_digits"]

_SPLIT_ID = {s: i for i, s in enumerate(SPLITS)}
_ORIGINALS_SEED = 20_190_503  # fixed: the original/font splits do not depend on the data seed
_TEST_FRACTION = 0.25
_CHUNK = 512  # images per worker task
_POOL_MIN_IMAGES = 4000  # below this many images in one call, render in-process
_TMP_TAG = ".tmp-"

# Digit height in the 28x28 frame, matched to how each course data set was normalised (docs/NOTES.md, "Digit
# heights"): USPS digits were size-normalised to fill their 16x16 frame (LeCun et al. 1989); MNIST's to a 20x20 box
# centred in 28x28 (LeCun et al. 1998); SVHN's cropped digits come from character boxes extended to a square, so the
# centre digit spans about the frame's height (Netzer et al. 2011), less the annotators' margin.
USPS_HEIGHT = 26.5           # px, x U(0.9, 1.1): about 0.95 of the frame
MNISTM_HEIGHT = 20.0         # px, x U(0.9, 1.1): 0.71 of the frame, MNIST's box
SVHN_HEIGHT = (21.0, 27.0)   # px, uniform: 0.75-0.96 of the frame
# SVHN's photographs: house walls behind the digits, and crops from small boxes upscaled to 32x32.
SVHN_TEXTURED = 0.7          # share of svhn images with a wall texture under the digits
SVHN_LOW_RES = 0.5           # share cut at 12-20 px and upscaled (the rest get the Gaussian blur, 80 %)
# USPS's pixel statistics (r3, docs/NOTES.md "USPS pixel statistics"), matched to the mean and std everyone normalises
# the real set with: 0.2469 / 0.2989 (16x16 scans, white on black).
USPS_INK = ((0.15, 0.35), (0.8, 1.1))  # soft threshold (low end, width): grey anti-aliased strokes
USPS_BLUR = (1.0, 1.8)       # Gaussian blur radius (px at 28x28), every image: USPS's 16x16 scans

# Fonts with real digit glyphs (LastResort, cmex10, cmsy10 map digits to symbols; cmmi10 has
# old-style numerals).  One face per style family is held out for the test split.
_SVHN_TRAIN_FONTS = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf",
    "DejaVuSansMono-Bold.ttf", "DejaVuSansMono-Oblique.ttf", "DejaVuSansMono-BoldOblique.ttf",
    "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSerif-BoldItalic.ttf",
    "STIXGeneral.ttf", "STIXGeneralItalic.ttf", "STIXGeneralBolIta.ttf",
    "cmr10.ttf", "cmb10.ttf", "cmti10.ttf", "cmtt10.ttf",
)
_SVHN_TEST_FONTS = (
    "DejaVuSans-BoldOblique.ttf", "DejaVuSansMono.ttf", "DejaVuSerif-Italic.ttf",
    "STIXGeneralBol.ttf", "cmss10.ttf",
)

# Photographs bundled inside the scikit-image package (no pooch download): colour ones first.
_COLOUR_PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg",
                  "hubble_deep_field.jpg", "ihc.png", "retina.jpg")
_GREY_PHOTOS = ("brick.png", "camera.png", "grass.png", "gravel.png", "moon.png", "coins.png",
                "text.png", "page.png", "cell.png", "clock_motion.png")


# ----------------------------------------------------------------------------- originals


@lru_cache(maxsize=1)
def _sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    """``load_digits()`` images in [0, 1] (white digit on black) and labels.

    Reads the file scikit-learn ships (``sklearn/datasets/data/digits.csv.gz``, what
    ``load_digits`` parses) without importing scikit-learn (~2 s); falls back to it.
    """
    spec = importlib.util.find_spec("sklearn")
    file = None
    if spec is not None and spec.submodule_search_locations:
        file = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "digits.csv.gz"
    if file is not None and file.is_file():
        raw = np.loadtxt(file, delimiter=",", dtype=np.float64)
        images, target = raw[:, :-1].reshape(-1, 8, 8), raw[:, -1]
    else:  # pragma: no cover - layout of another scikit-learn version
        from sklearn.datasets import load_digits

        d = load_digits()
        images, target = d.images, d.target
    return (images / 16.0).astype(np.float32), target.astype(np.int64)


@lru_cache(maxsize=None)
def _original_split() -> dict[tuple[str, str], np.ndarray]:
    _, target = _sklearn_digits()
    rng = np.random.default_rng(_ORIGINALS_SEED)
    parts: dict[tuple[str, str], list[np.ndarray]] = {
        (d, s): [] for d in ("usps", "mnistm") for s in SPLITS}
    for c in range(10):
        idx = rng.permutation(np.flatnonzero(target == c))
        half = len(idx) // 2
        for domain, pool in (("usps", idx[:half]), ("mnistm", idx[half:])):
            n_test = int(round(_TEST_FRACTION * len(pool)))
            parts[(domain, "test")].append(pool[:n_test])
            parts[(domain, "train")].append(pool[n_test:])
    return {k: np.sort(np.concatenate(v)).astype(np.int64) for k, v in parts.items()}


def original_indices(domain: str, split: str) -> np.ndarray:
    """Indices into ``sklearn.datasets.load_digits()`` of the originals ``domain``/``split`` draws from.

    Fixed (independent of the data seed), stratified by label, pairwise disjoint across
    ``usps``/``mnistm`` and ``train``/``test``.  ``svhn`` is printed, not handwritten: it has
    no originals (see :func:`svhn_fonts`) and raises ``ValueError``.
    """
    _check(domain, split)
    if domain == "svhn":
        raise ValueError("svhn is rendered from fonts, not from handwritten originals; "
                         "see svhn_fonts(split)")
    return _original_split()[(domain, split)].copy()


@lru_cache(maxsize=None)
def _originals_by_label(domain: str, split: str) -> tuple[np.ndarray, ...]:
    images, target = _sklearn_digits()
    idx = _original_split()[(domain, split)]
    return tuple(images[idx[target[idx] == c]] for c in range(10))


# ----------------------------------------------------------------------------- fonts, photos


def _font_dir() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


@lru_cache(maxsize=None)
def svhn_fonts(split: str) -> tuple[Path, ...]:
    """The font files the svhn ``split`` renders with (train and test faces are disjoint)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    names = _SVHN_TRAIN_FONTS if split == "train" else _SVHN_TEST_FONTS
    folder = _font_dir()
    found = tuple(folder / n for n in names if (folder / n).is_file())
    if not found:
        raise FileNotFoundError(f"none of the fonts for svhn/{split} in {folder}")
    return found


_GLYPH_PX = 64  # glyph render size (font size in px)


@lru_cache(maxsize=None)
def _glyphs(font_path: str) -> tuple[np.ndarray, ...]:
    """Tight uint8 masks (white glyph) of the digits 0-9 in one font, rendered at ``_GLYPH_PX``."""
    font = ImageFont.truetype(font_path, _GLYPH_PX)
    out = []
    for ch in "0123456789":
        img = Image.new("L", (3 * _GLYPH_PX, 3 * _GLYPH_PX), 0)
        ImageDraw.Draw(img).text((_GLYPH_PX, _GLYPH_PX // 2), ch, font=font, fill=255)
        a = np.asarray(img)
        rows, cols = np.flatnonzero(a.max(1)), np.flatnonzero(a.max(0))
        out.append(np.ascontiguousarray(a[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]))
    return tuple(out)


def photo_names() -> tuple[str, ...]:
    """The scikit-image photographs the mnistm backgrounds are cropped from (those present)."""
    return tuple(n for n, _ in _photos())


@lru_cache(maxsize=1)
def _photos() -> tuple[tuple[str, np.ndarray], ...]:
    """(name, uint8 HxWx3) pairs: the bundled photos at full, 1/2 and 1/4 resolution."""
    import skimage

    folder = Path(skimage.__file__).parent / "data"
    ramp_rng = np.random.default_rng(_ORIGINALS_SEED + 1)
    out = []
    for name in _COLOUR_PHOTOS + _GREY_PHOTOS:
        # Fixed tint for every grey file, drawn even when the file is absent (stable streams).
        lo, hi = ramp_rng.uniform(0, 255, 3), ramp_rng.uniform(0, 255, 3)
        path = folder / name
        if not path.is_file():
            continue
        try:
            with Image.open(path) as im:
                img = im.convert("RGB") if name in _COLOUR_PHOTOS else im.convert("L")
                img.load()
        except OSError:
            continue
        if name == "retina.jpg":  # drop the black surround of the fundus photograph
            w, h = img.size
            img = img.crop((w // 4, h // 4, 3 * w // 4, 3 * h // 4))
        if img.mode == "L":
            g = np.asarray(img, dtype=np.float32)[..., None] / 255.0
            img = Image.fromarray(np.clip(lo + (hi - lo) * g, 0, 255).astype(np.uint8), "RGB")
        for f in (1, 2, 4):
            w, h = img.size
            if min(w, h) // f < 64:
                continue
            small = img if f == 1 else img.resize((w // f, h // f), Image.Resampling.BOX)
            out.append((f"{name}@{f}", np.asarray(small)))
    if not out:
        raise FileNotFoundError(f"no bundled photographs found in {folder}")
    return tuple(out)


# ----------------------------------------------------------------------------- rendering


def _affine_at(in_c: tuple[float, float], out_c: tuple[float, float], sx: float, sy: float,
               rot: float, shear: float) -> tuple[float, ...]:
    """PIL AFFINE data (output -> input) for ``out = R(rot) Sh(shear) S(sx, sy) (in - in_c) + out_c``."""
    c, s = math.cos(rot), math.sin(rot)
    # m = R @ Sh @ S = [[c*sx, (c*shear - s)*sy], [s*sx, (s*shear + c)*sy]]; invert in closed form.
    m00, m01, m10, m11 = c * sx, (c * shear - s) * sy, s * sx, (s * shear + c) * sy
    det = m00 * m11 - m01 * m10
    a, b, d, e = m11 / det, -m01 / det, -m10 / det, m00 / det
    return (a, b, in_c[0] - a * out_c[0] - b * out_c[1], d, e, in_c[1] - d * out_c[0] - e * out_c[1])


def _affine(in_size: tuple[float, float], out_c: tuple[float, float], sx: float, sy: float,
            rot: float, shear: float) -> tuple[float, ...]:
    """:func:`_affine_at` about the centre of an input of size ``in_size``."""
    return _affine_at((in_size[0] / 2, in_size[1] / 2), out_c, sx, sy, rot, shear)


def _handwritten(rng: np.random.Generator, original: np.ndarray, height: float, thick: float,
                 max_rot: float, max_shear: float, max_shift: float,
                 ink: tuple[tuple[float, float], tuple[float, float]] = ((0.08, 0.4), (0.15, 0.45))) -> np.ndarray:
    """A float32 28x28 mask in [0, 1] from one 8x8 original: smooth upsampling + affine + stroke.

    ``ink``: the ranges of the soft threshold's low end and width (a wide ramp leaves grey strokes)."""
    up = 32  # smooth bicubic upsampling of the 8x8 original first (the 8x8 frame -> 32x32)
    img = Image.fromarray((original * 255).astype(np.uint8), "L").resize(
        (up, up), Image.Resampling.BICUBIC)
    r = rng.random()
    if r < thick:  # grey dilation / erosion at the upsampled scale: thicker / thinner strokes
        img = img.filter(ImageFilter.MaxFilter(3))
    elif r > 1 - thick / 2:
        img = img.filter(ImageFilter.MinFilter(3))
    s = height * rng.uniform(0.9, 1.1) / up
    aspect = rng.uniform(0.85, 1.15)
    shift = rng.uniform(-max_shift, max_shift, 2)
    data = _affine((up, up), (DIGIT_SIZE / 2 + shift[0], DIGIT_SIZE / 2 + shift[1]),
                   s * aspect, s, math.radians(rng.uniform(-max_rot, max_rot)),
                   rng.uniform(-max_shear, max_shear))
    img = img.transform((DIGIT_SIZE, DIGIT_SIZE), Image.Transform.AFFINE, data,
                        resample=Image.Resampling.BICUBIC)
    v = np.asarray(img, dtype=np.float32) / 255.0
    # Stroke thickness: a random soft threshold of the smooth digit (low -> thick strokes).
    lo = rng.uniform(*ink[0])
    hi = lo + rng.uniform(*ink[1])
    return np.clip((v - lo) / (hi - lo), 0.0, 1.0)


def _render_usps(rng: np.random.Generator, label: int, split: str) -> np.ndarray:
    pool = _originals_by_label("usps", split)[label]
    m = _handwritten(rng, pool[rng.integers(len(pool))], height=USPS_HEIGHT, thick=0.35,
                     max_rot=12.0, max_shear=0.25, max_shift=1.0, ink=USPS_INK)
    # USPS look: grey, blurred strokes (the 16x16 scans), full-range white on black.
    img = Image.fromarray((m * 255).astype(np.uint8), "L")
    img = img.filter(ImageFilter.GaussianBlur(rng.uniform(*USPS_BLUR)))
    a = np.asarray(img, dtype=np.float32)
    a *= 255.0 / max(float(a.max()), 1.0)
    return np.clip(a + 0.5, 0, 255).astype(np.uint8)


def _render_mnistm(rng: np.random.Generator, label: int, split: str) -> np.ndarray:
    pool = _originals_by_label("mnistm", split)[label]
    m = _handwritten(rng, pool[rng.integers(len(pool))], height=MNISTM_HEIGHT, thick=0.3,
                     max_rot=10.0, max_shear=0.2, max_shift=1.0)
    photos = _photos()
    photo = photos[rng.integers(len(photos))][1]
    h, w = photo.shape[:2]
    y, x = rng.integers(0, h - DIGIT_SIZE + 1), rng.integers(0, w - DIGIT_SIZE + 1)
    crop = photo[y:y + DIGIT_SIZE, x:x + DIGIT_SIZE].astype(np.int16)
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    mask = np.rint(m * 255).astype(np.int16)[..., None]
    return np.abs(crop - mask).astype(np.uint8)  # Ganin & Lempitsky (2015)


_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
_GRID = np.mgrid[0:DIGIT_SIZE, 0:DIGIT_SIZE].astype(np.float32) / (DIGIT_SIZE - 1) - 0.5


def _colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Background and foreground RGB (0-255): random hues, usually clear contrast, sometimes low
    (15 %), dark-on-light or light-on-dark with equal odds."""
    u = rng.random(4)
    contrast = 25 + 35 * u[0] if u[1] < 0.15 else 60 + 140 * u[0]
    hues = rng.uniform(-1, 1, (2, 3)) * rng.uniform(20, 110, (2, 1))  # chroma of bg, fg
    dark = rng.uniform(10, 245 - contrast)  # the darker one's luma
    lum = (dark, dark + contrast) if u[2] < 0.5 else (dark + contrast, dark)  # (bg, fg)
    bg = np.clip(lum[0] + hues[0] - hues[0] @ _LUMA, 0, 255)
    fg = np.clip(lum[1] + hues[1] - hues[1] @ _LUMA, 0, 255)
    return bg.astype(np.float32), fg.astype(np.float32)


def _render_svhn(rng: np.random.Generator, label: int, split: str) -> np.ndarray:
    fonts = svhn_fonts(split)
    glyphs = _glyphs(str(fonts[rng.integers(len(fonts))]))
    u = rng.random(12)
    # House-number strip: [left distractors] centre digit [right distractors], tight canvas.
    n_left = 0 if u[0] < 0.25 else 1 if u[0] < 0.75 else 2
    n_right = 0 if u[1] < 0.25 else 1 if u[1] < 0.75 else 2
    others = rng.integers(0, 10, n_left + n_right)
    digits = [*others[:n_left].tolist(), label, *others[n_left:].tolist()]
    gap = int((0.05 + 0.3 * u[2]) * _GLYPH_PX)
    masks = [glyphs[d] for d in digits]
    height = max(g.shape[0] for g in masks)
    width = sum(g.shape[1] for g in masks) + gap * (len(masks) - 1)
    pad = 4
    canvas = np.zeros((height + 2 * pad, width + 2 * pad), np.uint8)
    x = pad
    centre = (0.0, 0.0)
    for k, g in enumerate(masks):
        y = pad + height - g.shape[0]  # bottom-aligned like printed text
        region = canvas[y:y + g.shape[0], x:x + g.shape[1]]
        np.maximum(region, g, out=region)
        if k == n_left:
            centre = (x + g.shape[1] / 2, y + g.shape[0] / 2)
        x += g.shape[1] + gap
    # Affine: centre digit to the frame's centre, SVHN_HEIGHT px tall, slight rotation / shear,
    # rendered at 2x and box-reduced.
    ss = 2
    out_size = DIGIT_SIZE * ss
    lo, hi = SVHN_HEIGHT
    s = (lo + (hi - lo) * u[3]) * ss / masks[n_left].shape[0]
    aspect = 0.8 + 0.4 * u[4]
    rot = math.radians(-8 + 16 * u[5])
    shear = -0.2 + 0.4 * u[6]
    oc = (out_size / 2 + (-1.5 + 3 * u[7]) * ss, out_size / 2 + (-1.5 + 3 * u[8]) * ss)
    data = _affine_at(centre, oc, s * aspect, s, rot, shear)
    img = Image.fromarray(canvas, "L").transform((out_size, out_size), Image.Transform.AFFINE,
                                                 data, resample=Image.Resampling.BILINEAR)
    mask = np.asarray(img.reduce(ss), dtype=np.float32)[..., None] * np.float32(1 / 255)
    # Colours: background with a linear gradient (lighting), foreground ink.
    bg, fg = _colours(rng)
    ang = 2 * math.pi * u[9]
    ramp = (math.cos(ang) * _GRID[1] + math.sin(ang) * _GRID[0])[..., None]
    back = bg + ramp * rng.uniform(-60, 60, 3).astype(np.float32)
    if rng.random() < SVHN_TEXTURED:  # a wall's texture: a zero-mean grey photo crop under the ink
        photos = _photos()
        photo = photos[rng.integers(len(photos))][1]
        h, w = photo.shape[:2]
        y, x = rng.integers(0, h - DIGIT_SIZE + 1), rng.integers(0, w - DIGIT_SIZE + 1)
        tex = photo[y:y + DIGIT_SIZE, x:x + DIGIT_SIZE].astype(np.float32) @ _LUMA
        back = back + (rng.uniform(0.2, 0.6) * (tex - tex.mean()))[..., None]
    out = back + (fg - back) * mask
    if rng.random() < SVHN_LOW_RES:  # cut from a small box and upscaled, as most SVHN crops are
        side = int(rng.integers(12, 21))
        small = Image.fromarray(np.clip(out, 0, 255).astype(np.uint8), "RGB").resize(
            (side, side), Image.Resampling.BOX)
        out = np.asarray(small.resize((DIGIT_SIZE, DIGIT_SIZE), Image.Resampling.BILINEAR), dtype=np.float32)
    elif u[10] < 0.8:
        out = np.asarray(Image.fromarray(np.clip(out, 0, 255).astype(np.uint8), "RGB").filter(
            ImageFilter.GaussianBlur(float(0.3 + 0.8 * u[11]))), dtype=np.float32)
    out = out + rng.normal(0, rng.uniform(0, 10), out.shape).astype(np.float32)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _domain_id(domain: str) -> int:
    """The domain's place in the registry (usps 0, mnistm 1, svhn 2, then those registered later): its streams'
    seed."""
    return list(domains.NAMES).index(domain)


def _check(domain: str, split: str) -> None:
    domains.get(domain).renderer()  # ValueError: unknown domain, or one without a generator
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")


def _labels(domain: str, split: str, seed: int, start: int, stop: int) -> np.ndarray:
    """Labels of images ``start..stop-1``: one permutation of 0-9 per block of ten images."""
    d, s = _domain_id(domain), _SPLIT_ID[split]
    blocks = range(start // 10, (stop + 9) // 10)
    perm = [np.random.default_rng([seed, d, 10 + s, b]).permutation(10) for b in blocks]
    flat = np.concatenate(perm) if perm else np.zeros(0, np.int64)
    off = blocks.start * 10 if perm else start
    return flat[start - off:stop - off].astype(np.int64)


def _render_range(domain: str, split: str, seed: int, start: int, stop: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    labels = _labels(domain, split, seed, start, stop)
    d, s = _domain_id(domain), _SPLIT_ID[split]
    spec = domains.get(domain)
    shape = (DIGIT_SIZE, DIGIT_SIZE) if spec.mode == "L" else (DIGIT_SIZE, DIGIT_SIZE, 3)
    images = np.empty((stop - start, *shape), np.uint8)
    render = spec.renderer()  # resolved now: a test may replace the module's function
    for k, i in enumerate(range(start, stop)):
        images[k] = render(np.random.default_rng([seed, d, s, i]), int(labels[k]), split)
    return images, labels


def render_domain(domain: str, split: str, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Render ``n`` images of ``domain``/``split`` in memory.

    Returns uint8 images ``(n, 28, 28)`` (usps) or ``(n, 28, 28, 3)`` (mnistm, svhn) and int64
    labels ``(n,)`` in 0-9, exactly what :func:`write_digits` writes for the same seed.
    """
    _check(domain, split)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return _render_range(domain, split, int(seed), 0, int(n))


# ----------------------------------------------------------------------------- writing


def _name(i: int) -> str:
    return f"{i:05d}.png"


def _write_range(domain: str, split: str, seed: int, start: int, stop: int, folder: str
                 ) -> tuple[int, int, np.ndarray]:
    images, labels = _render_range(domain, split, seed, start, stop)
    mode = domains.get(domain).mode
    for k, i in enumerate(range(start, stop)):
        Image.fromarray(images[k], mode).save(os.path.join(folder, _name(i)), format="PNG",
                                              compress_level=6)
    return start, stop, labels


def _worker_init(digits: tuple[np.ndarray, np.ndarray], photos: tuple | None) -> None:
    # Hand the parent's already-loaded assets to the worker (no sklearn import there).
    globals()["_sklearn_digits"] = _Preloaded(digits)
    if photos is not None:
        globals()["_photos"] = _Preloaded(photos)


class _Preloaded:
    """Stands in for an ``lru_cache``-d loader with a value handed over by the parent process."""

    def __init__(self, value):
        self.value = value

    def __call__(self):
        return self.value

    def cache_clear(self) -> None:  # pragma: no cover - parity with lru_cache
        pass


def _remove_stale(folder: Path) -> None:
    for p in folder.glob(f".*{_TMP_TAG}*"):
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)


def write_digits(root: str | Path, sizes: Mapping[str, tuple[int, int]], seed: int = 0, *,
                 progress: bool = True) -> Path:
    """Write the domains in ``sizes`` (``{domain: (n_train, n_test)}``) under ``ROOT/digits``.

    Each domain is built in a temporary sibling folder (``ROOT/digits/.{domain}.tmp-*``) and
    renamed into place only when complete, replacing an existing one; a crash leaves no
    half-written domain (stale temporary folders are removed by the next call).  Large
    requests render on a two-process pool; the bytes written do not depend on it.
    Returns ``ROOT/digits``.
    """
    from tqdm.auto import tqdm

    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    plan: list[tuple[str, str, int]] = []
    for domain, counts in sizes.items():
        _check(domain, "train")
        n_train, n_test = (int(c) for c in counts)
        if n_train < 0 or n_test < 0:
            raise ValueError(f"negative size for {domain}: {counts!r}")
        plan += [(domain, "train", n_train), (domain, "test", n_test)]
    out = Path(root) / "digits"
    out.mkdir(parents=True, exist_ok=True)
    _remove_stale(out)
    total = sum(n for _, _, n in plan)
    workers = min(2, os.cpu_count() or 1) if total >= _POOL_MIN_IMAGES else 1
    pool = None
    if workers > 1:
        import multiprocessing as mp

        needs_photos = any(d == "mnistm" for d, _, _ in plan)
        # fork: workers inherit the loaded assets and skip re-importing the package (which
        # pulls torch in through hw3lib.data); spawn elsewhere, with the assets handed over.
        method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
        pool = ProcessPoolExecutor(
            workers, mp_context=mp.get_context(method), initializer=_worker_init,
            initargs=(_sklearn_digits(), _photos() if needs_photos else None))
    bar = tqdm(total=total, desc="digits", unit="img", disable=not progress)
    try:
        for domain in sizes:
            tmp = out / f".{domain}{_TMP_TAG}{uuid.uuid4().hex[:8]}"
            try:
                tmp.mkdir()
                for d, split, n in plan:
                    if d != domain:
                        continue
                    bar.set_postfix_str(f"{domain}/{split}")
                    folder = tmp / split
                    folder.mkdir()
                    labels = np.empty(n, np.int64)
                    ranges = [(a, min(a + _CHUNK, n)) for a in range(0, n, _CHUNK)]
                    if pool is None:
                        results = (_write_range(domain, split, seed, a, b, str(folder))
                                   for a, b in ranges)
                    else:
                        futures = [pool.submit(_write_range, domain, split, seed, a, b, str(folder))
                                   for a, b in ranges]
                        results = (f.result() for f in futures)
                    for a, b, lab in results:
                        labels[a:b] = lab
                        bar.update(b - a)
                    with open(tmp / f"{split}.csv", "w", newline="") as fh:
                        w = csv.writer(fh, lineterminator="\n")
                        w.writerow(["image_name", "label"])
                        w.writerows((_name(i), int(labels[i])) for i in range(n))
                final = out / domain
                if final.exists():
                    old = out / f".{domain}.old{_TMP_TAG}{uuid.uuid4().hex[:8]}"
                    final.rename(old)
                    tmp.rename(final)
                    shutil.rmtree(old, ignore_errors=True)
                else:
                    tmp.rename(final)
            except BaseException:
                if pool is not None:  # let running workers finish before deleting their folder
                    pool.shutdown(wait=True, cancel_futures=True)
                    pool = None
                shutil.rmtree(tmp, ignore_errors=True)
                raise
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    return out
