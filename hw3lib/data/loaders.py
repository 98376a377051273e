"""Readers for the course layout (minimal first version; validation, cache and torchvision formats to come)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from hw3lib.data.layout import DIGIT_DOMAINS, FACE_ATTRIBUTES
from hw3lib.data.sets import DigitSet, FaceSet

MANIFEST = "hw3_data.json"  # written by `hw3 data make`; its absence means real (course) data


def data_info(root: str | Path) -> dict:
    """What a data folder holds: ``{"kind": "embedded"|"real", ...}`` (embedded: size, seed, counts)."""
    root = Path(root)
    file = root / MANIFEST
    if file.is_file():
        return {"kind": "embedded", **json.loads(file.read_text())}
    return {"kind": "real", "root": str(root)}


def _read(paths: list[Path], mode: str) -> torch.Tensor:
    arrays = [np.asarray(Image.open(p).convert(mode)) for p in paths]
    x = torch.from_numpy(np.stack(arrays))
    return x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2).contiguous()


def load_faces(root: str | Path, split: str) -> FaceSet:
    folder = Path(root) / "face"
    df = pd.read_csv(folder / f"{split}.csv")
    names = tuple(df["image_name"].astype(str))
    images = _read([folder / split / n for n in names], "RGB")
    attrs = torch.from_numpy(df[list(FACE_ATTRIBUTES)].to_numpy().astype(np.uint8))
    source = "embedded" if data_info(root)["kind"] == "embedded" else "course"
    return FaceSet(images, attrs, names, FACE_ATTRIBUTES, source)


def load_digits(root: str | Path, domain: str, split: str) -> DigitSet:
    if domain not in DIGIT_DOMAINS:
        raise ValueError(f"unknown digit domain {domain!r}; known: {', '.join(DIGIT_DOMAINS)}")
    folder = Path(root) / "digits" / domain
    df = pd.read_csv(folder / f"{split}.csv")
    names = tuple(df["image_name"].astype(str))
    images = _read([folder / split / n for n in names], "RGB")
    labels = torch.from_numpy(df["label"].to_numpy().astype(np.int64))
    source = "embedded" if data_info(root)["kind"] == "embedded" else "course"
    return DigitSet(images, labels, names, domain, source)
