"""Generate To Adapt (GTA): the seed's Problem 4 method, kept faithful, with a loop of its own (four nets,
four optimisers).

Sankaranarayanan et al., "Generate To Adapt", CVPR 2018, as the authors' public ``trainer.py``
(github.com/yogeshbalaji/Generate_To_Adapt). Each step takes a labelled source batch ``(x_s, y_s)`` and an
unlabelled target batch ``x_t`` (forever-iterators), images luminance-or-not, 32x32. As in the public
``main.py``/``trainer.py``, F sees ``Normalize(0.44, 0.19)`` images while D's real images and G's outputs live in
[-1,1] (``src_inputs_unnorm``). Each step:

  (1) Update D: AC-GAN discriminator — class loss on real source, BCE real on real source, BCE fake on
      G(source embedding) and on G(target embedding).
  (2) Update G: D's class loss on G(source) + fool D (BCE real) on G(source).
  (3) Update C: source class loss on F's source embedding.
  (4) Update F: C's loss + ``adv_weight``·D's class loss on G(source)
      + ``adv_weight·alpha``·"look real" BCE on G(target)  — the target embedding is pushed to produce
      source-like images, i.e. to be source-like itself.

G's input is ``[one-hot(11) ‖ F embedding(128) ‖ noise(512)]``; source rows carry their class one-hot, target
rows the 11th ("target") slot. Adam(lr 5e-4, β1 .8); D, F and C follow ``lr / (1 + 1e-4·step)``
(``utils.exp_lr_scheduler``), G keeps a constant rate.

One deliberate difference: the public code (PyTorch 0.3) back-propagates G's and F's losses through the
graph built *before* D/G/C were stepped, which modern PyTorch rejects (in-place update of saved weights).
Here G, C and F get their gradients from one forward pass at the pre-update weights (as intended there),
then all three step; D's outputs for G's and F's losses come from the updated D, as in the public code.

Warm start (``warmup_steps``, default 0 = the public code): the run may begin with that many steps in which F and
C alone learn the source labels (step (3)-(4) with C's loss only) before the four-net game starts, so the
adversarial steps adapt a working classifier instead of spending a short budget on learning one. The quick
profile uses it (its GTA budget is a few hundred steps); it is reported, and the accuracy of that source-only
start is logged (``warm_target_acc``) so the report shows what the adversarial steps added on top of it.

Knobs only GTA uses live in ``UDAConfig.gta`` (a :class:`hw3lib.models.gta.GTAConfig`); the shared fields
``steps``, ``seed``, ``gray``, ``max_steps``, ``log_every``, ``ckpt_every`` come from the UDA config itself.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from hw3lib.data.batches import Batches
from hw3lib.distributed import DistInfo
from hw3lib.eval.uda import accuracy
from hw3lib.models.gta import NCLASSES, GTAClassifier, GTAConfig, build_gta, d_range, onehot, prepare
from hw3lib.runtime import Runtime
from hw3lib.train.loop import TrainLoop
from hw3lib.train.uda.methods.base import Method, register
from hw3lib.train.uda.select import Selector, eval_points

KIND = "gta"


def build_nets(config) -> dict[str, nn.Module]:
    """The four nets for ``config.gta`` (fresh, CPU)."""
    k = config.gta or GTAConfig()
    return build_gta(ndf=k.ndf, ngf=k.ngf, nz=k.nz)


def classifier(nets: Mapping[str, nn.Module], config) -> GTAClassifier:
    return GTAClassifier(nets["netF"], nets["netC"], config.gta or GTAConfig(), gray=config.gray)


def lr_factor(step: int, lr_decay: float) -> float:
    """Multiplier of the base lr used at (0-based) ``step``: ``1 / (1 + lr_decay·step)``."""
    return 1.0 / (1.0 + lr_decay * step)


def class_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on class logits (the public code's ``criterion_c``), in float32."""
    return F.cross_entropy(logits.float(), labels)


def realfake_loss(prob: torch.Tensor, real: bool) -> torch.Tensor:
    """BCE of D's "real source image" probability against all-real / all-fake (``criterion_s``); float32 and
    outside autocast, which refuses ``binary_cross_entropy`` on CUDA."""
    with torch.autocast(prob.device.type, enabled=False):
        prob = prob.float()
        target = torch.ones_like(prob) if real else torch.zeros_like(prob)
        return F.binary_cross_entropy(prob, target)


def _average_grads(net: nn.Module, dist: DistInfo) -> None:
    """DDP for a loop with several backward passes per forward: average each net's gradients by hand."""
    if not dist.enabled:
        return
    import torch.distributed as tdist
    grads = [p.grad for p in net.parameters() if p.grad is not None]
    if grads:
        flat = torch.cat([g.reshape(-1) for g in grads])
        tdist.all_reduce(flat)
        flat /= dist.world_size
        offset = 0
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()


class _Nets:
    """The four nets of a run, as called in its steps (DDP-free: GTA averages gradients by hand)."""

    def __init__(self, nets: Mapping[str, nn.Module]):
        self.f, self.c, self.g, self.d = (nets[n] for n in ("netF", "netC", "netG", "netD"))


def warm_step(n: _Nets, opts, scheds, xs: torch.Tensor, ys: torch.Tensor, runtime: Runtime) -> dict:
    """(0) Warm start: F and C learn the source labels alone (GTA's own source-only network)."""
    with runtime.autocast():
        logits_c = n.c(n.f(xs))
    err_c = class_loss(logits_c, ys)
    for net in (n.f, n.c):
        net.zero_grad(set_to_none=True)
    err_c.backward()
    for name, net in (("netF", n.f), ("netC", n.c)):
        _average_grads(net, runtime.dist)
        opts[name].step()
        scheds[name].step()
    return {"errC": err_c, "src_acc": (logits_c.argmax(1) == ys).float().mean()}


def gta_step(n: _Nets, opts, scheds, xs: torch.Tensor, ys: torch.Tensor, xt: torch.Tensor, k: GTAConfig,
             runtime: Runtime) -> dict:
    """One step of the four-net game, (1) D, (2) G, (3) C, (4) F; ``xs``/``xt`` are netF inputs [B,3,32,32]."""
    code_s = onehot(ys, len(ys), NCLASSES)
    code_t = onehot(None, len(xt), NCLASSES, device=xt.device)
    with runtime.autocast():
        emb_s, emb_t = n.f(xs), n.f(xt)
        gen_s, gen_t = n.g(code_s, emb_s), n.g(code_t, emb_t)

    # (1) Update D: real source (real + its class), G(source) and G(target) fake.
    n.d.zero_grad(set_to_none=True)
    with runtime.autocast():
        real = n.d(d_range(xs, k))
        fake_s, fake_t = n.d(gen_s.detach()), n.d(gen_t.detach())
    err_d = (class_loss(real.class_logits, ys) + realfake_loss(real.realfake, True)
             + realfake_loss(fake_s.realfake, False) + realfake_loss(fake_t.realfake, False))
    err_d.backward()
    _average_grads(n.d, runtime.dist)
    opts["netD"].step()

    # D's verdict after its update drives G and F (as in the public code).
    with runtime.autocast():
        out_s, out_t = n.d(gen_s), n.d(gen_t)
        logits_c = n.c(emb_s)
    # (2) Update G: generated source images of the right class that look real.
    err_g = class_loss(out_s.class_logits, ys) + realfake_loss(out_s.realfake, True)
    # (3) Update C: source classification.
    err_c = class_loss(logits_c, ys)
    # (4) Update F: classification + class-consistent source generations + target generations that look real.
    err_f = (err_c + k.adv_weight * class_loss(out_s.class_logits, ys)
             + k.adv_weight * k.alpha * realfake_loss(out_t.realfake, True))
    for net, err, last in ((n.g, err_g, False), (n.c, err_c, False), (n.f, err_f, True)):
        net.zero_grad(set_to_none=True)
        err.backward(inputs=list(net.parameters()), retain_graph=not last)
    for name, net in (("netG", n.g), ("netC", n.c), ("netF", n.f)):
        _average_grads(net, runtime.dist)
        opts[name].step()
    for s in scheds.values():
        s.step()
    return {"errD": err_d, "errG": err_g, "errC": err_c, "errF": err_f,
            "src_acc": (logits_c.argmax(1) == ys).float().mean(), "d_real": real.realfake.mean(),
            "d_fake_src": fake_s.realfake.mean(), "d_fake_tgt": fake_t.realfake.mean()}


def optimizers(nets: Mapping[str, nn.Module], k: GTAConfig) -> tuple[dict, dict]:
    """Adam(lr, β1) for each net; D, F and C decay as ``lr_factor`` by GTA step (F and C keep the base rate
    during a warm start, where D's scheduler does not step), G keeps a constant rate — the public code."""
    opts = {n: torch.optim.Adam(nets[n].parameters(), lr=k.lr, betas=(k.beta1, 0.999))
            for n in ("netF", "netC", "netG", "netD")}
    warm = k.warmup_steps
    decays = {"netD": lambda s: lr_factor(s, k.lr_decay), "netF": lambda s: lr_factor(max(0, s - warm), k.lr_decay)}
    decays["netC"] = decays["netF"]
    return opts, {n: torch.optim.lr_scheduler.LambdaLR(opts[n], f) for n, f in decays.items()}


def fit_gta(method: Method, nets: dict[str, nn.Module], data, config, runtime: Runtime,
            run_dir: str | Path | None = None) -> dict:
    """Train the GTA nets in place on ``data.source`` (labelled) → ``data.target`` (images only); returns the history.

    The run is ``gta.warmup_steps`` source-only F+C steps (:func:`warm_step`), then ``config.steps`` GTA steps
    (:func:`gta_step`), capped by ``config.max_steps``. Checkpoints go to ``run_dir`` as TrainLoop kind ``"gta"``
    with the nets under keys netF/netC/netG/netD. History (step-level): ``errC`` and ``src_acc`` over the whole
    run; ``errD``, ``errG``, ``errF``, ``d_real`` / ``d_fake_src`` / ``d_fake_tgt`` (D's mean "real" probability)
    over the GTA steps, i.e. the last ``len(history[key])`` entries of ``history["step"]``. With a warm start,
    ``warm_target_acc`` (epoch-level) is the target-test accuracy of F, C at its end — for the report only;
    nothing is selected with it.
    """
    k, seed, warm = config.gta, config.seed, config.gta.warmup_steps
    total = config.total_steps(len(data.source), len(data.target))
    for name, net in nets.items():  # no DDP wrapper: several backward passes per forward, gradients averaged by hand
        net.to(runtime.device)
        if runtime.channels_last and name != "netC":  # netC is a linear head
            net.to(memory_format=torch.channels_last)
    opts, scheds = optimizers(nets, k)
    loop = TrainLoop(KIND, config, runtime, models=nets, optimizers=opts, schedulers=scheds, total_steps=total,
                     run_dir=run_dir, desc=config.name)
    loop.resume()
    dist: DistInfo = runtime.dist
    kw = dict(batch_size=k.batch_size, rank=dist.rank, world_size=dist.world_size)
    src_iter = Batches(data.source.images, data.source.labels, seed=seed, **kw).forever(loop.step)
    # Target labels are never read; target batches are drawn from the first GTA step on.
    tgt_iter = Batches(data.target.images, seed=seed + 7919, **kw).forever(max(0, loop.step - warm))
    n = _Nets(nets)
    # F and C are GTA's classifier; F has no BatchNorm, so there are no target statistics to re-estimate.
    selector = Selector(loop, lambda m: classifier(m, config), ("netF", "netC"), data, target_bn=False, seed=seed)
    for step in loop:
        xs_u8, ys = next(src_iter)
        if step < warm:
            loop.log(**warm_step(n, opts, scheds, prepare(xs_u8, k, gray=config.gray), ys, runtime))
            if step + 1 == warm:
                loop.log_epoch(step + 1, warm_target_acc=accuracy(classifier(nets, config), data.target_test))
                n.f.train(), n.c.train()
            continue
        (xt_u8,) = next(tgt_iter)
        xs = runtime.layout(prepare(xs_u8, k, gray=config.gray))
        xt = runtime.layout(prepare(xt_u8, k, gray=config.gray))
        loop.log(**gta_step(n, opts, scheds, xs, ys, xt, k, runtime))
        if eval_points(step, total, config.evals, start=warm):
            selector.score(nets, step + 1, step + 1)
    if (chosen := selector.apply(nets)) is not None:
        loop.history["selected_step"] = [chosen]
        loop.save(finished=True)  # the checkpoint holds the reported model
    return loop.history


register(Method("gta", "GTA", "Sankaranarayanan et al., Generate To Adapt, CVPR 2018", fit=fit_gta,
                nets=build_nets, classifier=classifier, kind=KIND))
