"""The shared loop of every DANN-network method: a method contributes its losses, this does the rest.

Each step draws a labelled batch (source, or target for the upper bound) and, for adaptation methods, an
unlabelled target batch, from forever-iterators whose order is a pure function of (seed, step) — so a resumed
run sees exactly the batches of an uninterrupted one — and takes one optimiser step on ``method.losses``.
After the last step, adaptation methods re-estimate their BatchNorm statistics on the unlabelled target train
images (``bn_eval="target"``): their target passes were normalised by target batch statistics in training,
while the running statistics average both domains.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from hw3lib.data.batches import Batches
from hw3lib.data.sets import DigitSet
from hw3lib.eval.uda import accuracy, target_bn_statistics
from hw3lib.models.grl import dann_lr
from hw3lib.runtime import Runtime
from hw3lib.train.common import TrainLoop
from hw3lib.train.uda.config import UDAConfig
from hw3lib.train.uda.methods import Batch, Method, Step


@dataclass(frozen=True)
class Domains:
    """The run's data on the device: labelled source train, unlabelled target train (its labels are never
    read by training), and target test (for the plots' accuracy curve only)."""
    source: DigitSet
    target: DigitSet
    target_test: DigitSet


def optimizer(params, config: UDAConfig, total: int) -> tuple[torch.optim.Optimizer, dict]:
    """Adam at a constant rate (fungtion/DANN), or the paper's SGD with ``dann_lr`` annealing."""
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr), {}
    opt = torch.optim.SGD(params, lr=config.lr, momentum=0.9)
    return opt, {"lr": torch.optim.lr_scheduler.LambdaLR(opt, lambda s: dann_lr(s / max(total, 1), 1.0))}


def fit(method: Method, nets: dict[str, nn.Module], data: Domains, config: UDAConfig, runtime: Runtime,
        run_dir: Path | None) -> dict:
    """Train ``nets`` (in place) with ``method.losses``; returns the history."""
    total = config.total_steps
    wrapped = {k: runtime.prepare(m) for k, m in nets.items()}
    opt, schedulers = optimizer(itertools.chain(*(m.parameters() for m in nets.values())), config, total)
    loop = TrainLoop(method.kind, config, runtime, models=wrapped, optimizers={"dann": opt},
                     schedulers=schedulers, total_steps=total, run_dir=run_dir, desc=config.name)
    loop.resume()
    labelled = data.target if method.labelled == "target" else data.source
    dist = runtime.dist
    kw = dict(batch_size=config.batch_size, rank=dist.rank, world_size=dist.world_size)
    lab_batches = Batches(labelled.images, labelled.labels, seed=config.seed, **kw)
    lab_iter = lab_batches.forever(loop.step)
    tgt_iter = Batches(data.target.images, seed=config.seed + 7919, **kw).forever(loop.step) if method.adapts else None
    classifier = method.classifier(nets, config)

    for step in loop:
        x, y = next(lab_iter)
        xt = runtime.images(next(tgt_iter)[0]) if tgt_iter is not None else None
        batch = Batch(runtime.images(x), y, xt)
        with runtime.autocast():
            losses = method.losses(wrapped, batch, Step(step, total, config, runtime))
        opt.zero_grad(set_to_none=True)
        losses.total.backward()
        opt.step()
        for s in schedulers.values():
            s.step()
        if method.adapts and config.bn_eval == "target" and step + 1 == total:
            # Before the last checkpoint, so the saved model is the evaluated one.
            target_bn_statistics(classifier, data.target.images)
            for m in wrapped.values():
                m.train()
        loop.log(**losses.logs)
        if config.eval_every and (TrainLoop.every(step, config.eval_every) or step + 1 == total):
            acc = accuracy(classifier, data.target_test)
            loop.log_epoch((step + 1) / len(lab_batches), target_acc=acc, eval_step=step + 1)
            for m in wrapped.values():
                m.train()
    return loop.history
