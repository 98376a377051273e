"""A small face-attribute classifier trained by hw3lib, whose penultimate features are the metric space for
the generated-sample metrics of Problem 2 (Fréchet distance, KID, precision/recall/density/coverage).

Inception-v3 weights (what FID uses) cannot be downloaded here, so the embedding is learned from the training
faces themselves: a 4-block CNN trained with BCE-with-logits on the 13 course attributes. Its globally pooled
256-d activations (the analogue of Inception's pool3) summarise what distinguishes faces by their attributes —
hair colour and style, gender, smile, makeup — which is what a face generator must get right. Metrics computed
there are named "... in hw3lib's attribute-classifier space", never "FID".

Shapes: input [N,3,64,64] float in [-1, 1]; ``features`` → [N, feat_dim]; ``forward`` → logits [N, n_attrs].
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from hw3lib import checkpoint
from hw3lib.data import FACE_ATTRIBUTES, FaceSet, load_faces
from hw3lib.data.batches import Batches, in_order
from hw3lib.data.transforms import to_signed
from hw3lib.device import get_device, seed_everything
from hw3lib.train.common import TrainLoop, finished_checkpoint

KIND = "face-attr"


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class AttributeClassifier(nn.Module):
    """[N,3,64,64] in [-1,1] → 13 attribute logits; ``features`` gives the pooled ``feat_dim``-d embedding.

    Four stride-2 3x3 conv + BN + ReLU blocks (64→32→16→8→4 px; widths w, 2w, 4w, 8w = ``feat_dim``), global
    average pooling, a linear head. Small on purpose: it trains in well under a minute on two CPU cores.
    """

    def __init__(self, n_attrs: int = len(FACE_ATTRIBUTES), width: int = 32):
        super().__init__()
        self.feat_dim = 8 * width
        self.body = nn.Sequential(_block(3, width), _block(width, 2 * width), _block(2 * width, 4 * width),
                                  _block(4 * width, 8 * width), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(self.feat_dim, n_attrs)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def attribute_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy over the attributes (multi-label)."""
    return nn.functional.binary_cross_entropy_with_logits(logits, targets.float())


@dataclass
class AttrConfig:
    epochs: float = 3
    batch_size: int = 64
    lr: float = 2e-3
    width: int = 32
    seed: int = 0
    max_steps: int | None = None
    ckpt_every: int = 1000
    log_every: int = 10
    device: str = "auto"


class AttrResult(NamedTuple):
    model: AttributeClassifier
    history: dict
    test_accuracy: dict      # attribute → accuracy on the test faces; "mean" → their mean


def train_attr_classifier(model: AttributeClassifier, train: FaceSet, config: AttrConfig, *,
                          device: torch.device | str = "cpu", run_dir: str | Path | None = None) -> dict:
    """Adam + cosine decay, random horizontal flips (all 13 attributes are flip-invariant). Returns history."""
    device = get_device(device)
    images, attrs = train.images.to(device), train.attrs.to(device)
    batches = Batches(images, attrs, batch_size=config.batch_size, seed=config.seed)
    total = max(1, round(config.epochs * len(batches)))
    total = min(total, config.max_steps) if config.max_steps is not None else total
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=total, pct_start=0.15)
    loop = TrainLoop(KIND, config, models={"attr": model}, optimizers={"attr": opt}, schedulers={"attr": sched},
                     total_steps=total, run_dir=run_dir, desc="attribute classifier")
    loop.resume()
    stream = batches.forever(loop.step)
    g = torch.Generator(device=device).manual_seed(config.seed)
    for _ in loop:
        x, y = next(stream)
        x = to_signed(x)
        flip = torch.rand(x.shape[0], device=device, generator=g) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        loss = attribute_loss(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        loop.log(loss=loss)
    return loop.history


@torch.no_grad()
def predict(model: AttributeClassifier, images: torch.Tensor, batch_size: int = 256
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images [N,3,64,64] → (features float [N,D], attribute probabilities [N,A]) on the CPU."""
    device = next(model.parameters()).device
    was = model.training
    model.eval()
    feats, probs = [], []
    try:
        for (x,) in in_order(images, batch_size=batch_size):
            f = model.features(to_signed(x.to(device)))
            feats.append(f.float().cpu())
            probs.append(torch.sigmoid(model.head(f)).float().cpu())
    finally:
        model.train(was)
    return torch.cat(feats), torch.cat(probs)


def test_accuracy(model: AttributeClassifier, test: FaceSet) -> dict[str, float]:
    _, probs = predict(model, test.images)
    acc = ((probs > 0.5) == test.attrs.bool()).float().mean(0)
    out = {name: float(a) for name, a in zip(test.attr_names, acc)}
    out["mean"] = float(acc.mean())
    return out


def train_or_load(data_dir: str | Path, run_dir: str | Path, config: AttrConfig | None = None, *,
                  device: torch.device | str = "auto") -> AttrResult:
    """The finished classifier in ``run_dir`` if its config matches, else train it there (a cached checkpoint)."""
    config = config or AttrConfig()
    device = get_device(device)
    payload = finished_checkpoint(run_dir, KIND, config)
    if payload is None:
        seed_everything(config.seed)
        model = AttributeClassifier(width=config.width).to(device)
        train_attr_classifier(model, load_faces(data_dir, "train"), config, device=device, run_dir=run_dir)
        payload = checkpoint.load(run_dir)
    model = AttributeClassifier(width=config.width)
    model.load_state_dict(payload["models"]["attr"])
    model = model.to(device).eval()
    acc = (payload.get("extra") or {}).get("test_accuracy")
    if acc is None:  # computed once, then kept in the checkpoint
        acc = test_accuracy(model, load_faces(data_dir, "test"))
        payload["extra"] = {**(payload.get("extra") or {}), "test_accuracy": acc}
        checkpoint.save({k: v for k, v in payload.items() if k not in ("format", "version")}, checkpoint.resolve(run_dir))
    return AttrResult(model, payload["history"], dict(acc))


def config_from(payload_config: dict) -> AttrConfig:
    names = {f.name for f in dataclasses.fields(AttrConfig)}
    return AttrConfig(**{k: v for k, v in payload_config.items() if k in names})
