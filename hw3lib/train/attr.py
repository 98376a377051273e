"""Train the face-attribute classifier (:class:`hw3lib.models.attr.AttributeClassifier`) whose features are the
metric space of Problem 2, or load the finished run; its test accuracy is computed once and kept in the checkpoint.

>>> attr = train_or_load(AttrConfig(epochs=2), "data", "runs/quick/p2_attr_classifier")  # AttrResult
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from hw3lib import checkpoint
from hw3lib.data import FaceSet, load_faces
from hw3lib.data.batches import Batches
from hw3lib.device import seed_everything
from hw3lib.models.attr import AttributeClassifier
from hw3lib.models.attr_inference import test_accuracy
from hw3lib.runtime import Runtime
from hw3lib.train import configs, folders
from hw3lib.train.configs import config_from
from hw3lib.train.loop import TrainLoop, epoch_steps

KIND = "face-attr"


@dataclass
class AttrConfig:
    """Knobs of the classifier's run; ``epochs`` over the training faces, capped by ``max_steps``."""
    epochs: float = 3
    batch_size: int = 64
    lr: float = 2e-3
    width: int = 32
    seed: int = 0
    max_steps: int | None = None
    ckpt_every: int = 1000
    log_every: int = 10
    channels_last: bool = False    # NCHW, as the classifier has always been trained: NHWC would move its features
                                   # (and every FD/KID read in them) by float rounding
    device: str = "auto"
    data_id: str = ""              # the data trained on (hw3lib.data.data_id), set by train_or_load

    def total_steps(self, n_train: int, world_size: int = 1) -> int:
        return epoch_steps(self.epochs, n_train, self.batch_size, world_size, self.max_steps)


class AttrResult(NamedTuple):
    model: AttributeClassifier
    history: dict
    test_accuracy: dict      # attribute → accuracy on the test faces; "mean" → their mean
    config: AttrConfig


def attribute_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy over the attributes (multi-label): logits [N, A], 0/1 targets [N, A]."""
    return nn.functional.binary_cross_entropy_with_logits(logits, targets.float())


def train_attr_classifier(model: AttributeClassifier, train: FaceSet, config: AttrConfig, *,
                          runtime: Runtime | None = None, run_dir: str | Path | None = None) -> dict:
    """Adam + one-cycle schedule, random horizontal flips (all 13 attributes are flip-invariant). Returns the
    history (``step``, ``loss``); ``model`` ends in eval mode on the runtime's device."""
    rt = runtime or Runtime.for_config(config)
    net = rt.prepare(model)
    images, attrs = train.images.to(rt.device), train.attrs.to(rt.device)
    batches = Batches(images, attrs, batch_size=config.batch_size, seed=config.seed,
                      rank=rt.dist.rank, world_size=rt.dist.world_size)
    total = config.total_steps(len(images), rt.dist.world_size)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=total, pct_start=0.15)
    loop = TrainLoop(KIND, config, rt, models={"attr": model}, optimizers={"attr": opt},
                     schedulers={"attr": sched}, total_steps=total, run_dir=run_dir, desc="attribute classifier")
    loop.resume()
    stream = batches.forever(loop.step)
    g = torch.Generator(device=rt.device).manual_seed(config.seed)
    for _ in loop:
        x, y = next(stream)
        x = rt.images(x)
        flip = torch.rand(x.shape[0], device=rt.device, generator=g) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        loss = attribute_loss(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        loop.log(loss=loss)
    rt.finish(model)
    return loop.history


def train_or_load(config: AttrConfig, data_dir: str | Path, run_dir: str | Path, *,
                  runtime: Runtime | None = None) -> AttrResult:
    """The finished classifier in ``run_dir`` if its config matches, else train it there (or resume)."""
    rt = runtime or Runtime.for_config(config)
    config = configs.bind_data(config, data_dir, ("face",))
    run_dir = folders.config_folder(run_dir, KIND, config)  # another config's run is never overwritten

    def train() -> AttrResult:
        seed_everything(config.seed)
        model = AttributeClassifier(width=config.width)
        train_attr_classifier(model, load_faces(data_dir, "train"), config, runtime=rt, run_dir=run_dir)
        return load(checkpoint.load(run_dir))

    def load(payload: dict) -> AttrResult:
        cfg = config_from(AttrConfig, payload["config"])
        model = AttributeClassifier(width=cfg.width)
        model.load_state_dict(payload["models"]["attr"])
        model = model.to(rt.device).eval()
        acc = (payload.get("extra") or {}).get("test_accuracy")
        if acc is None:  # computed once, then kept in the checkpoint
            acc = test_accuracy(model, load_faces(data_dir, "test"))
            payload["extra"] = {**(payload.get("extra") or {}), "test_accuracy": acc}
            checkpoint.save({k: v for k, v in payload.items() if k not in ("format", "version")},
                            checkpoint.resolve(run_dir))
        return AttrResult(model, payload["history"], dict(acc), cfg)

    return folders.train_or_load(KIND, config, run_dir, train=train, load=load)
