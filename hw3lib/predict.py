"""``hw3 predict`` (the course's hw3_p3.sh / hw3_p4.sh interface) and ``hw3 eval``.

    hw3 predict --ckpt RUN_DIR --images IMG_DIR --target mnistm --out pred.csv
    hw3 predict --ckpt RUN_A RUN_B RUN_C --images IMG_DIR --target mnistm --out pred.csv   # an ensemble
    hw3 eval pred.csv gt.csv

``predict`` writes ``image_name,label`` for every PNG in IMG_DIR, sorted by name. RUN_DIR is one run folder
(``checkpoint.pt`` inside) or a folder of run folders; then the run whose target is ``--target`` is used
(``--method`` picks among several; DANN first, then GTA). Works for DANN-network and GTA checkpoints. Several
``--ckpt`` answer as their mean-probability ensemble (Problem 4's hand-in when its development protocol chose one:
:class:`hw3lib.train.uda.runs.MeanProbability`); every run must be for the same target.
"""
from __future__ import annotations

import csv
from pathlib import Path

import torch

from hw3lib import checkpoint, methods
from hw3lib.data.layout import DIGIT_DOMAINS, DIGIT_SIZE

# Which run a folder of several runs for one target answers with: DANN, then the improved methods, then the bounds.
PREFERENCE = (*methods.names("baseline"), *methods.names("improved"), *methods.names("bound"))


def read_folder(folder: str | Path) -> tuple[list[str], torch.Tensor]:
    """Every ``*.png`` in ``folder`` (sorted by name) as uint8 [N,3,28,28]: the course-layout loader's decoding
    (:func:`hw3lib.data.loaders.decode_pngs`): grey repeated, other square sizes resized (said once on stderr),
    a non-square or unreadable file one error naming it."""
    from hw3lib.data.loaders import DIGIT_MODES_READ, announce_resized, decode_pngs

    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"image folder not found: {folder}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png" and p.is_file())
    if not files:
        raise ValueError(f"no .png images in {folder}")
    images, _, resized = decode_pngs(files, DIGIT_SIZE, DIGIT_MODES_READ, resize=True)
    announce_resized(f"digits in {folder}", resized, DIGIT_SIZE)
    return [p.name for p in files], images


def find_run(ckpt: str | Path, target: str | None, method: str | None = None) -> Path:
    """The checkpoint file to use: ``ckpt`` itself, or the one run under it for ``target`` (and ``method``)."""
    path = Path(ckpt)
    if path.is_file() or checkpoint.resolve(path).is_file():
        return checkpoint.resolve(path)
    if not path.is_dir():
        raise ValueError(f"checkpoint not found: {path}")
    candidates = []
    for f in sorted(path.glob(f"*/{checkpoint.CKPT_NAME}")):
        cfg = checkpoint.load(f).get("config", {})
        if (target is None or cfg.get("target") == target) and (method is None or cfg.get("method") == method):
            candidates.append((PREFERENCE.index(cfg.get("method")) if cfg.get("method") in PREFERENCE else 99,
                               cfg.get("seed", 0), f))
    if not candidates:
        raise ValueError(f"no run for target {target!r}{f' and method {method!r}' if method else ''} under {path}")
    best = min(candidates, key=lambda c: (c[0], c[1], str(c[2])))
    return best[2]


def predict_folder(ckpt: str | Path | list[str | Path], images: str | Path, *, target: str | None = None,
                   method: str | None = None, device: str = "auto") -> tuple[list[str], list[int]]:
    """Names and predicted digits for every PNG in ``images``; several ``ckpt``: their mean-probability ensemble."""
    from hw3lib.device import get_device
    from hw3lib.models.inference import predict_labels
    from hw3lib.train.uda import load_models
    from hw3lib.train.uda.runs import MeanProbability

    names, x = read_folder(images)  # the inputs first: a bad image folder is named before any model loads
    classifiers, targets = [], set()
    for one in ckpt if isinstance(ckpt, (list, tuple)) else [ckpt]:
        file = find_run(one, target, method)
        models, config = load_models(checkpoint.load(file), get_device(device))
        if target is not None and config.target != target:
            raise ValueError(f"{file} was trained for target {config.target!r}, not {target!r}")
        targets.add(config.target)
        if len(targets) > 1:
            raise ValueError(f"{file} was trained for target {config.target!r}, the other runs for "
                             f"{sorted(targets - {config.target})[0]!r}: an ensemble's runs share one target")
        classifiers.append(config.spec.classifier(models, config))
    clf = classifiers[0] if len(classifiers) == 1 else MeanProbability(classifiers)
    return names, predict_labels(clf, x).tolist()


def read_labels(path: str | Path) -> dict[str, int]:
    """``image_name,label`` CSV → {name: label}; clear errors for missing columns, bad or duplicate rows."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"CSV file not found: {path}")
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"image_name", "label"} <= set(reader.fieldnames):
            raise ValueError(f"{path}: needs columns image_name,label (has {','.join(reader.fieldnames or [])})")
        out: dict[str, int] = {}
        for i, row in enumerate(reader, start=2):
            name = (row["image_name"] or "").strip()
            if name in out:
                raise ValueError(f"{path}: duplicate image_name {name!r} (line {i})")
            try:
                out[name] = int(str(row["label"]).strip())
            except ValueError:
                raise ValueError(f"{path}: line {i}: label {row['label']!r} is not an integer") from None
    return out


def evaluate_csv(pred_csv: str | Path, gt_csv: str | Path) -> tuple[float, int]:
    """Accuracy (%) and count of ``pred_csv`` against ``gt_csv``; the image names must match exactly."""
    pred, gt = read_labels(pred_csv), read_labels(gt_csv)
    missing = sorted(set(gt) - set(pred))
    extra = sorted(set(pred) - set(gt))
    if missing:
        raise ValueError(f"{pred_csv}: {len(missing)} image(s) of {gt_csv} missing, e.g. {missing[0]!r}")
    if extra:
        raise ValueError(f"{pred_csv}: {len(extra)} image(s) not in {gt_csv}, e.g. {extra[0]!r}")
    if not gt:
        raise ValueError(f"{gt_csv}: no rows")
    correct = sum(pred[n] == gt[n] for n in gt)
    return 100.0 * correct / len(gt), len(gt)


def _cli_predict(args) -> int:
    names, labels = predict_folder(args.ckpt, args.images, target=args.target, method=args.method,
                                   device=args.device)
    lines = ["image_name,label"] + [f"{n},{int(y)}" for n, y in zip(names, labels)]
    checkpoint.atomic_write_text(args.out, "\n".join(lines) + "\n")
    print(f"wrote {len(names)} predictions to {args.out}")
    return 0


def _cli_eval(args) -> int:
    acc, n = evaluate_csv(args.pred, args.gt)
    print(f"accuracy {acc:.2f}% ({n} images)")
    return 0


def register(groups) -> None:
    root = groups["root"]
    p = root.add_parser("predict", help="predict digit labels for a folder of PNGs (course hw3_p3/p4 interface)",
                        description="Write image_name,label for every PNG in --images, sorted by name, with a "
                                    "DANN-network or GTA run.")
    p.add_argument("--ckpt", required=True, nargs="+", metavar="RUN",
                   help="run folder (checkpoint.pt) or a folder of run folders; several: their mean-probability "
                        "ensemble")
    p.add_argument("--images", required=True, help="folder of .png digits")
    p.add_argument("--target", choices=DIGIT_DOMAINS, default=None,
                   help="target domain of the run to use (checked against the checkpoint)")
    p.add_argument("--method", choices=methods.names(), default=None,
                   help="pick the run by method when --ckpt holds several")
    p.add_argument("--out", required=True, help="output CSV")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=_cli_predict)

    e = root.add_parser("eval", help="accuracy of a prediction CSV against a ground-truth CSV",
                        description="Print the accuracy of pred.csv (image_name,label) against gt.csv.")
    e.add_argument("pred", help="predictions CSV (image_name,label)")
    e.add_argument("gt", help="ground-truth CSV (image_name,label)")
    e.set_defaults(func=_cli_eval)
