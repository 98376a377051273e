"""``hw3 data make``: write the embedded data set (course layout) with its manifest and contact sheets.

The manifest ``OUT/hw3_data.json`` is removed first and written last (atomically), so it exists only when every
folder it describes is complete. Re-running with the same arguments is a no-op.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import hw3lib
from hw3lib.checkpoint import atomic_path, atomic_write_text
from hw3lib.data.domains import all_domains
from hw3lib.data.layout import DIGIT_SIZES, FACE_SIZES, SPLITS
from hw3lib.data.loaders import MANIFEST

PARTS = ("faces", "digits")
# A generator's name and revision: data made by an earlier revision is made again (bump it when the images change).
GENERATORS = {"faces": "hw3lib.data.synth_faces", "digits": "hw3lib.data.synth_digits r3"}


def made_domains() -> list[str]:
    """The digit domains the embedded data holds: every registered one with a generator (hw3lib.data.domains)."""
    return [d.name for d in all_domains() if d.render is not None]


def figures(part: str) -> tuple[str, ...]:
    """The contact sheets of ``part``: ``data_faces``, or ``data_{domain}`` for every domain made."""
    return ("data_faces",) if part == "faces" else tuple(f"data_{d}" for d in made_domains())


def _counts(part: str, size: str) -> dict:
    if part == "faces":
        n_train, n_test = FACE_SIZES[size]
        return {"train": n_train, "test": n_test}
    return {d: dict(zip(SPLITS, DIGIT_SIZES[size][d])) for d in made_domains()}


def _folders(out: Path, part: str) -> list[Path]:
    if part == "faces":
        return [out / "face"]
    return [out / "digits" / d for d in made_domains()]


def _complete(out: Path, part: str) -> bool:
    return all((f / f"{s}.csv").is_file() and (f / s).is_dir() for f in _folders(out, part) for s in SPLITS)


def read_manifest(out: str | Path) -> dict | None:
    file = Path(out) / MANIFEST
    try:
        data = json.loads(file.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _contact_sheet(images, file: Path) -> None:
    """An 8x8 grid of the first 64 images (torchvision make_grid/save_image), written atomically."""
    from torchvision.utils import make_grid, save_image

    grid = make_grid(images[:64].float().div(255.0), nrow=8, padding=2, pad_value=1.0)
    with atomic_path(file) as tmp:
        save_image(grid, tmp, format="png")


def _first_images(out: Path, part: str, domain: str | None = None, n: int = 64):
    """The first ``n`` training images, read straight from the PNGs (no full decode)."""
    import numpy as np
    import pandas as pd
    import torch
    from PIL import Image

    folder = out / "face" if part == "faces" else out / "digits" / domain
    names = pd.read_csv(folder / "train.csv", dtype=str, nrows=n)["image_name"]
    arrays = []
    for name in names:
        with Image.open(folder / "train" / name) as im:
            arrays.append(np.asarray(im.convert("RGB")))
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)


def write_figures(out: str | Path, parts=PARTS, figures_dir: str | Path = "figures", only_missing: bool = False
                  ) -> list[Path]:
    """Contact sheets ``figures_dir/data_{faces,usps,mnistm,svhn}.png`` of the data in ``out``."""
    out, figures_dir = Path(out), Path(figures_dir)
    written = []
    for part in parts:
        for name in figures(part):
            file = figures_dir / f"{name}.png"
            if only_missing and file.is_file():
                continue
            domain = None if part == "faces" else name.removeprefix("data_")
            _contact_sheet(_first_images(out, part, domain), file)
            written.append(file)
    return written


def make_data(out: str | Path, size: str, seed: int = 0, figures_dir: str | Path | None = "figures",
              progress: bool = True, only: str | None = None) -> dict:
    """Generate the embedded data set into ``out`` (course layout) and return its manifest.

    ``size``: "smoke" | "quick" | "full" (counts in :mod:`hw3lib.data.layout`); ``only``: "faces" | "digits" |
    None (both). Parts already made with the same size and seed are kept; the manifest gets ``"made": False``
    when nothing had to be generated. ``figures_dir=None`` skips the contact sheets.
    """
    if size not in FACE_SIZES:
        raise ValueError(f"unknown data size {size!r}; known: {', '.join(FACE_SIZES)}")
    if only not in (None, *PARTS):
        raise ValueError(f"unknown data part {only!r}; known: {', '.join(PARTS)}")
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"output is not a folder: {out}")
    wanted = PARTS if only is None else (only,)
    old = read_manifest(out) or {}
    old_parts = old.get("parts") if isinstance(old.get("parts"), dict) else {}
    parts = {}
    for part, info in old_parts.items():
        if part in PARTS and part not in wanted and _complete(out, part):
            parts[part] = info  # untouched parts made earlier stay described
    todo = []
    for part in wanted:
        want = {"size": size, "seed": seed, "counts": _counts(part, size), "generator": GENERATORS[part]}
        have = old_parts.get(part)
        if have == want and _complete(out, part):
            parts[part] = have
        else:
            todo.append(part)
            parts[part] = want

    t0 = time.perf_counter()
    if todo:
        out.mkdir(parents=True, exist_ok=True)
        (out / MANIFEST).unlink(missing_ok=True)  # no manifest while the folders change
        for part in todo:
            if part == "faces":
                from hw3lib.data.synth_faces import write_faces

                write_faces(out, *FACE_SIZES[size], seed=seed, progress=progress)
            else:
                from hw3lib.data.synth_digits import write_digits

                write_digits(out, {d: DIGIT_SIZES[size][d] for d in made_domains()}, seed=seed, progress=progress)
    figures = []
    if figures_dir is not None:
        figures = write_figures(out, wanted, figures_dir, only_missing=not todo)
    sizes = {p["size"] for p in parts.values()}
    seeds = {p["seed"] for p in parts.values()}
    manifest = {
        "kind": "embedded",
        "generator": " + ".join(parts[p]["generator"] for p in PARTS if p in parts),
        "size": sizes.pop() if len(sizes) == 1 else "mixed",
        "seed": seeds.pop() if len(seeds) == 1 else "mixed",
        "counts": {("face" if p == "faces" else "digits"): parts[p]["counts"] for p in PARTS if p in parts},
        "parts": parts,
        "hw3lib_version": hw3lib.__version__,
    }
    unchanged = {k: v for k, v in old.items() if k != "seconds"} == manifest
    if todo or not unchanged:
        manifest["seconds"] = round(time.perf_counter() - t0, 1)
        atomic_write_text(out / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    else:
        manifest["seconds"] = old.get("seconds")
    return {**manifest, "made": bool(todo), "regenerated": todo, "figures": [str(f) for f in figures],
            "out": str(out)}
