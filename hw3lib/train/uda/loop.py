"""The shared loop of every digit-adaptation method: a method contributes its losses (or its update) and hooks,
this does the rest.

Each step draws a labelled batch (source, or target for the upper bound) and, for adaptation methods after any
warm start, an unlabelled target batch, from forever-iterators whose order is a pure function of (seed, step) —
so a resumed run sees exactly the batches of an uninterrupted one — and takes one update: by default
``method.losses`` through every optimiser; a method with several networks and backward passes (GTA) brings its
own ``update``. After the optimiser step the method's ``after_step`` hook runs (an EMA teacher); before every
epoch over the unlabelled target train set its ``on_epoch`` hook (pseudo-labels). At every evaluation point the
checkpoint is scored by the unsupervised validators (:mod:`.select`); an adaptation method reports the primary
validator's pick, its BatchNorm statistics re-estimated on unlabelled target train images (its target passes
were normalised by target batch statistics in training, while the running statistics average both domains).
The bounds report their last step.
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
from hw3lib.distributed import unwrap
from hw3lib.methods import Batch, Context, Method, Step
from hw3lib.models.grl import dann_lr
from hw3lib.models.inference import accuracy, target_bn_statistics
from hw3lib.runtime import Runtime
from hw3lib.train.loop import TrainLoop
from hw3lib.train.uda.config import UDAConfig
from hw3lib.train.uda.select import Selector, eval_points, has_batchnorm


@dataclass(frozen=True)
class Domains:
    """The run's data on the device: labelled source train, unlabelled target train (its labels are never read by
    training or selection), target test (the report's accuracy; recorded, never used to choose) and held-out
    labelled source images (the source test split: the ``src_acc`` validator)."""
    source: DigitSet
    target: DigitSet
    target_test: DigitSet
    source_val: DigitSet


def default_optimizers(models: dict[str, nn.Module], config: UDAConfig, total: int) -> tuple[dict, dict]:
    """One optimiser over every trainable parameter of the run's nets: Adam at a constant rate (fungtion/DANN), or
    the paper's SGD with ``dann_lr`` annealing. (A teacher's parameters, which need no gradient, are left out.)"""
    params = [p for p in itertools.chain(*(m.parameters() for m in models.values())) if p.requires_grad]
    if config.optimizer == "adam":
        return {"dann": torch.optim.Adam(params, lr=config.lr)}, {}
    opt = torch.optim.SGD(params, lr=config.lr, momentum=0.9)
    return {"dann": opt}, {"lr": torch.optim.lr_scheduler.LambdaLR(opt, lambda s: dann_lr(s / max(total, 1), 1.0))}


def make_batch(method: Method, runtime: Runtime, config: UDAConfig, x: torch.Tensor, y: torch.Tensor,
               xt: torch.Tensor | None) -> Batch:
    """uint8 batches → the method's inputs: its own ``inputs``, else [-1,1] floats in the run's layout, plus
    augmented views if it asks for them."""
    if method.inputs is not None:
        return method.inputs(runtime, config, x, y, xt)
    xs, xt = runtime.images(x), (runtime.images(xt) if xt is not None else None)
    if not method.strong_views or xt is None:
        return Batch(xs, y, xt)
    lay = runtime.layout
    return Batch(lay(weak_view(xs)), y, lay(weak_view(xt)), lay(strong_view(xt)), lay(strong_view(xs)))


def default_update(method: Method, ctx: Context, batch: Batch, step: Step) -> dict:
    """The method's losses (the labelled loss alone on a warm-start step), one backward pass, every optimiser's
    and scheduler's step."""
    from hw3lib.methods import label_losses

    with ctx.runtime.autocast():
        losses = (label_losses if step.warm else method.losses)(ctx.nets, batch, step)
    for opt in ctx.optimizers.values():
        opt.zero_grad(set_to_none=True)
    losses.total.backward()
    for opt in ctx.optimizers.values():
        opt.step()
    for s in ctx.schedulers.values():
        s.step()
    return dict(losses.logs)


def fit(method: Method, nets: dict[str, nn.Module], data: Domains, config: UDAConfig, runtime: Runtime,
        run_dir: Path | None) -> dict:
    """Train ``nets`` (in place) with ``method``; on return ``nets`` hold the reported model. Returns the history."""
    total = config.total_steps(len(data.source), len(data.target))
    warm = min(config.warmup_steps, total)
    # DDP for the nets that train (a teacher has nothing to reduce); several nets' unused heads (the DANN network's
    # domain classifier under MCC, say) are found by DDP itself.
    wrapped = {k: runtime.prepare(m, ddp=method.ddp and any(p.requires_grad for p in m.parameters()),
                                  find_unused=True)
               for k, m in nets.items()}
    opts, schedulers = (method.optimizers or default_optimizers)(nets, config, total)
    loop = TrainLoop(method.kind, config, runtime, models=wrapped, optimizers=opts, schedulers=schedulers,
                     total_steps=total, run_dir=run_dir, desc=config.name)
    loop.extra.setdefault("method_state", {})
    loop.resume()
    labelled = data.target if method.labelled == "target" else data.source
    dist = runtime.dist
    kw = dict(batch_size=config.batch_size, rank=dist.rank, world_size=dist.world_size)
    lab_batches = Batches(labelled.images, labelled.labels, seed=config.seed, **kw)
    lab_iter = lab_batches.forever(loop.step)
    tgt_batches = Batches(data.target.images, seed=config.seed + 7919, **kw) if method.adapts else None
    # Target batches are drawn from the first adaptation step on (none during a warm start).
    tgt_iter = tgt_batches.forever(max(0, loop.step - warm)) if tgt_batches is not None else None
    classifier = method.classifier(nets, config)
    target_bn = method.adapts and config.bn_eval == "target" and has_batchnorm(classifier)
    selector = Selector(loop, lambda n: method.classifier(n, config), nets, data, target_bn=target_bn,
                        seed=config.seed)
    ctx = Context(config, runtime, wrapped, {k: unwrap(m) for k, m in wrapped.items()}, opts, schedulers,
                  data.target.images, loop.extra["method_state"], loop.log)

    for i in loop:
        step = Step(i, total, config, runtime)
        if method.on_epoch is not None and i >= warm and (i - warm) % len(tgt_batches) == 0:
            method.on_epoch(ctx, step)
        x, y = next(lab_iter)
        xt = next(tgt_iter)[0] if tgt_iter is not None and not step.warm else None
        batch = make_batch(method, runtime, config, x, y, xt)
        logs = (method.update(ctx, batch, step) if method.update is not None
                else default_update(method, ctx, batch, step))
        if method.after_step is not None:
            method.after_step(ctx, step)
        loop.log(**logs)
        if warm and i + 1 == warm:  # what the warm start alone reaches: the report's baseline for the adaptation
            loop.log_epoch((i + 1) / len(lab_batches), warm_target_acc=accuracy(classifier, data.target_test))
        if eval_points(i, total, config.evals, start=warm):
            selector.score(nets, i + 1, (i + 1) / len(lab_batches))
        elif target_bn and i + 1 == total:  # no scoring: the last model, with target statistics
            target_bn_statistics(classifier, data.target.images)
            for m in wrapped.values():
                m.train()
    if method.adapts and (chosen := selector.apply(nets)) is not None:
        loop.history["selected_step"] = [chosen]
        loop.save(finished=True)  # the checkpoint holds the reported model
    return loop.history
