"""``hw3 data check``: load and validate everything a data folder holds, and summarise it."""
from __future__ import annotations

from pathlib import Path

import torch

from hw3lib.data.layout import DIGIT_DOMAINS, DIGIT_SIZE, FACE_ATTRIBUTES, FACE_SIZE, SPLITS
from hw3lib.data.loaders import (MANIFEST, data_info, digits_layout, faces_layout, load_digits_with_info,
                                 load_faces_with_info, resolve_root)


def _check_count(root: Path, manifest: dict | None, what: tuple[str, ...], got: int, path: str) -> None:
    if manifest is None:
        return
    node = manifest.get("counts", {})
    for k in what:
        node = node.get(k) if isinstance(node, dict) else None
    if isinstance(node, int) and node != got:
        raise ValueError(f"{path} lists {got} images but {root / MANIFEST} says {node}")


def check_data(root: str | Path) -> dict:
    """Validate every face split and digit domain found under ``root``; return a summary dict.

    ``{"root", "kind": "embedded"|"real", "manifest": dict|None, "faces": {"layout", split: {...}} | None,
    "digits": {domain: {"layout", split: {"count", "size", "modes", "label_counts"}}}}``. The first problem
    raises ``ValueError`` (one line).
    """
    root = resolve_root(root)
    info = data_info(root)
    manifest = info if info["kind"] == "embedded" else None
    face_layout = faces_layout(root)
    domains = {d: layout for d in DIGIT_DOMAINS if (layout := digits_layout(root, d))}
    if manifest is not None:  # an embedded set must hold everything its manifest lists
        counts = manifest.get("counts", {})
        if "face" in counts and face_layout is None:
            raise ValueError(f"{root / MANIFEST} lists faces but {root / 'face'} is missing")
        for d in counts.get("digits", {}):
            if d not in domains:
                raise ValueError(f"{root / MANIFEST} lists {d} digits but {root / 'digits' / d} is missing")
    if face_layout is None and not domains:
        raise ValueError(f"no data found in {root}: expected face/ and/or digits/{{{','.join(DIGIT_DOMAINS)}}}/ "
                         f"(course layout) or torchvision-format files; `hw3 data make --out {root}` makes some")
    summary: dict = {"root": str(root), "kind": info["kind"], "manifest": manifest, "faces": None, "digits": {}}
    if face_layout is not None:
        faces_sum: dict = {"layout": face_layout}
        for split in SPLITS:
            faces, extra = load_faces_with_info(root, split)
            _check_count(root, manifest, ("face", split), len(faces), extra["path"])
            freq = faces.attrs.float().mean(0) if len(faces) else torch.zeros(len(FACE_ATTRIBUTES))
            faces_sum[split] = {
                "count": len(faces), "size": f"{FACE_SIZE}x{FACE_SIZE}", "modes": extra["modes"],
                "attr_freq": {a: round(float(f), 4) for a, f in zip(faces.attr_names, freq)},
            }
        summary["faces"] = faces_sum
    for domain, layout in domains.items():
        dom: dict = {"layout": layout}
        for split in SPLITS:
            digits, extra = load_digits_with_info(root, domain, split)
            _check_count(root, manifest, ("digits", domain, split), len(digits), extra["path"])
            dom[split] = {
                "count": len(digits), "modes": extra["modes"],
                "size": f"{DIGIT_SIZE}x{DIGIT_SIZE}" + (f" (resized from {' and '.join(extra['resized'])})"
                                                        if extra.get("resized") else ""),
                "label_counts": torch.bincount(digits.labels, minlength=10).tolist(),
            }
        summary["digits"][domain] = dom
    return summary


def format_summary(summary: dict) -> str:
    """The text ``hw3 data check`` prints."""
    lines = []
    man = summary["manifest"]
    if man:
        lines.append(f"{summary['root']}: embedded data set (hw3 data make: size {man.get('size')}, "
                     f"seed {man.get('seed')}, hw3lib {man.get('hw3lib_version')})")
    else:
        lines.append(f"{summary['root']}: real data (no {MANIFEST})")
    faces = summary["faces"]
    if faces:
        modes = _modes(faces[s]["modes"] for s in SPLITS)
        lines.append(f"faces [{faces['layout']}]: " + ", ".join(f"{s} {faces[s]['count']}" for s in SPLITS)
                     + f" images, {faces['train']['size']}, modes {modes}")
        for s in SPLITS:
            freq = " ".join(f"{a}={v:.2f}" for a, v in faces[s]["attr_freq"].items())
            lines.append(f"  attribute frequency ({s}): {freq}")
    for domain, dom in summary["digits"].items():
        modes = _modes(dom[s]["modes"] for s in SPLITS)
        lines.append(f"digits/{domain} [{dom['layout']}]: " + ", ".join(f"{s} {dom[s]['count']}" for s in SPLITS)
                     + f" images, {dom['train']['size']}, modes {modes}")
        for s in SPLITS:
            counts = " ".join(f"{c}:{n}" for c, n in enumerate(dom[s]["label_counts"]))
            lines.append(f"  labels ({s}): {counts}")
    lines.append("ok")
    return "\n".join(lines)


def _modes(per_split) -> str:
    total: dict[str, int] = {}
    for modes in per_split:
        for m, n in modes.items():
            total[m] = total.get(m, 0) + n
    return ", ".join(f"{m} ({n})" for m, n in sorted(total.items()))
