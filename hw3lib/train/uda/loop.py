"""The shared loop of every DANN-network method: a method contributes its losses, this does the rest.

Each step draws a labelled batch (source, or target for the upper bound) and, for adaptation methods, an
unlabelled target batch, from forever-iterators whose order is a pure function of (seed, step) — so a resumed
run sees exactly the batches of an uninterrupted one — and takes one optimiser step on ``method.losses``.
At every evaluation point the checkpoint is scored by the unsupervised validators (:mod:`.select`); an
adaptation method reports the primary validator's pick, with its BatchNorm statistics re-estimated on unlabelled
target train images (its target passes were normalised by target batch statistics in training, while the running
statistics average both domains). The bounds report their last step.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from hw3lib.data.batches import Batches
from hw3lib.data.sets import DigitSet
from hw3lib.data.transforms import strong_view, weak_view
from hw3lib.eval.uda import target_bn_statistics
from hw3lib.models.grl import dann_lr
from hw3lib.runtime import Runtime
from hw3lib.train.loop import TrainLoop
from hw3lib.train.uda.config import UDAConfig
from hw3lib.train.uda.methods import Batch, Method, Step
from hw3lib.train.uda.select import Selector, eval_points


@dataclass(frozen=True)
class Domains:
    """The run's data on the device: labelled source train, unlabelled target train (its labels are never read by
    training or selection), target test (the report's accuracy; recorded, never used to choose) and held-out
    labelled source images (the source test split: the ``src_acc`` validator)."""
    source: DigitSet
    target: DigitSet
    target_test: DigitSet
    source_val: DigitSet


def optimizer(params, config: UDAConfig, total: int) -> tuple[torch.optim.Optimizer, dict]:
    """Adam at a constant rate (fungtion/DANN), or the paper's SGD with ``dann_lr`` annealing."""
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr), {}
    opt = torch.optim.SGD(params, lr=config.lr, momentum=0.9)
    return opt, {"lr": torch.optim.lr_scheduler.LambdaLR(opt, lambda s: dann_lr(s / max(total, 1), 1.0))}


def make_batch(method: Method, runtime: Runtime, x: torch.Tensor, y: torch.Tensor, xt: torch.Tensor | None) -> Batch:
    """uint8 batches → the method's inputs: [-1,1] floats in the run's layout, plus augmented views if asked."""
    xs, xt = runtime.images(x), (runtime.images(xt) if xt is not None else None)
    if not method.strong_views:
        return Batch(xs, y, xt)
    lay = runtime.layout
    return Batch(lay(weak_view(xs)), y, lay(weak_view(xt)), lay(strong_view(xt)), lay(strong_view(xs)))


def fit(method: Method, nets: dict[str, nn.Module], data: Domains, config: UDAConfig, runtime: Runtime,
        run_dir: Path | None) -> dict:
    """Train ``nets`` (in place) with ``method.losses``; on return ``nets`` hold the reported model."""
    total = config.total_steps(len(data.source), len(data.target))
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
    target_bn = method.adapts and config.bn_eval == "target"
    selector = Selector(loop, lambda n: method.classifier(n, config), ("dann",), data, target_bn=target_bn,
                        seed=config.seed)

    for step in loop:
        x, y = next(lab_iter)
        batch = make_batch(method, runtime, x, y, next(tgt_iter)[0] if tgt_iter is not None else None)
        with runtime.autocast():
            losses = method.losses(wrapped, batch, Step(step, total, config, runtime))
        opt.zero_grad(set_to_none=True)
        losses.total.backward()
        opt.step()
        for s in schedulers.values():
            s.step()
        loop.log(**losses.logs)
        if eval_points(step, total, config.evals):
            selector.score(nets, step + 1, (step + 1) / len(lab_batches))
        elif target_bn and step + 1 == total:  # no scoring: the last model, with target statistics
            target_bn_statistics(classifier, data.target.images)
            for m in wrapped.values():
                m.train()
    if method.adapts and (chosen := selector.apply(nets)) is not None:
        loop.history["selected_step"] = [chosen]
        loop.save(finished=True)  # the checkpoint holds the reported model
    return loop.history
