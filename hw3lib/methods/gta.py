"""Generate To Adapt (GTA): the course report's Problem 4 method, kept faithful: four nets, four optimisers, one
``update`` on the shared loop.

Sankaranarayanan et al., "Generate To Adapt", CVPR 2018, as the authors' public ``trainer.py``
(github.com/yogeshbalaji/Generate_To_Adapt). Each step takes a labelled source batch ``(x_s, y_s)`` and an
unlabelled target batch ``x_t``, images luminance-or-not, 32x32. As in the public ``main.py``/``trainer.py``, F
sees ``Normalize(0.44, 0.19)`` images while D's real images and G's outputs live in [-1,1]
(``src_inputs_unnorm``). Each step:

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

Warm start (the shared ``warmup_steps``, default 0 = the public code): the run may begin with that many steps in
which F and C alone learn the source labels (steps (3)-(4) with C's loss only) before the four-net game starts, so
the adversarial steps adapt a working classifier instead of spending a short budget on learning one. The quick
profile uses it (its GTA budget is a few hundred steps); the loop logs the accuracy of that source-only start
(``warm_target_acc``) so the report shows what the adversarial steps added on top of it.
"""
from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from hw3lib.distributed import DistInfo
from hw3lib.methods.base import Batch, Context, Method, Step, register
from hw3lib.models.functional import realfake_bce as realfake_loss  # criterion_s: float32, outside autocast
from hw3lib.models.gta import NCLASSES, GTAClassifier, GTAConfig, build_gta, d_range, onehot, prepare
from hw3lib.runtime import Runtime

KIND = "gta"


def build_nets(config) -> dict[str, nn.Module]:
    """The four nets for ``config.knobs`` (fresh, CPU)."""
    k = config.knobs
    return build_gta(ndf=k.ndf, ngf=k.ngf, nz=k.nz)


def classifier(nets: Mapping[str, nn.Module], config) -> GTAClassifier:
    return GTAClassifier(nets["netF"], nets["netC"], config.knobs)


def lr_factor(step: int, lr_decay: float) -> float:
    """Multiplier of the base lr used at (0-based) ``step``: ``1 / (1 + lr_decay·step)``."""
    return 1.0 / (1.0 + lr_decay * step)


def class_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on class logits (the public code's ``criterion_c``), in float32."""
    return F.cross_entropy(logits.float(), labels)


def _average_grads(net: nn.Module, dist: DistInfo) -> None:
    """DDP for a step with several backward passes per forward: average each net's gradients by hand."""
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
    return {"errC": err_c, "train_src_acc": (logits_c.argmax(1) == ys).float().mean()}


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
            "train_src_acc": (logits_c.argmax(1) == ys).float().mean(), "d_real": real.realfake.mean(),
            "d_fake_src": fake_s.realfake.mean(), "d_fake_tgt": fake_t.realfake.mean()}


def update(ctx: Context, batch: Batch, step: Step) -> dict:
    """A warm-start step (F and C on the source labels) or a step of the four-net game."""
    n = _Nets(ctx.models)
    if step.warm:
        return warm_step(n, ctx.optimizers, ctx.schedulers, batch.x, batch.y, ctx.runtime)
    return gta_step(n, ctx.optimizers, ctx.schedulers, batch.x, batch.y, batch.xt, step.knobs, ctx.runtime)


def inputs(runtime: Runtime, config, x: torch.Tensor, y: torch.Tensor, xt: torch.Tensor | None) -> Batch:
    """uint8 digits → netF inputs [B,3,32,32] (:func:`hw3lib.models.gta.prepare`) in the run's layout."""
    k = config.knobs
    return Batch(runtime.layout(prepare(x, k)), y, runtime.layout(prepare(xt, k)) if xt is not None else None)


def optimizers(models: Mapping[str, nn.Module], config, total: int) -> tuple[dict, dict]:
    """Adam(lr, β1) for each net; D, F and C decay as ``lr_factor`` by GTA step (F and C keep the base rate
    during a warm start, where D's scheduler does not step), G keeps a constant rate — the public code."""
    k, warm = config.knobs, config.warmup_steps
    opts = {n: torch.optim.Adam(models[n].parameters(), lr=config.lr, betas=(k.beta1, 0.999))
            for n in ("netF", "netC", "netG", "netD")}
    decays = {"netD": lambda s: lr_factor(s, k.lr_decay), "netF": lambda s: lr_factor(max(0, s - warm), k.lr_decay)}
    decays["netC"] = decays["netF"]
    return opts, {n: torch.optim.lr_scheduler.LambdaLR(opts[n], f) for n, f in decays.items()}


def describe(k: GTAConfig) -> str:
    return (f"its own four nets (F, C, G, D; widths ndf = {k.ndf}, ngf = {k.ngf}): D an AC-GAN discriminator; "
            f"F's target embeddings must make G draw images D takes for real source digits (F's loss: C's NLL + "
            f"{k.adv_weight:g}·D's class loss on G(source) + {k.adv_weight:g}·{k.alpha:g}·\"looks real\" on "
            f"G(target)); Adam β1 {k.beta1:g}, lr/(1 + {k.lr_decay:g}·step)"
            + ("; luminance images" if k.gray else ""))


register(Method("gta", "GTA", "Sankaranarayanan et al., Generate To Adapt, CVPR 2018", "improved", 200,
                describe=describe, knobs=GTAConfig, update=update, nets=build_nets, classifier=classifier,
                optimizers=optimizers, inputs=inputs, ddp=False, defaults={"batch_size": 100, "lr": 5e-4},
                suffix=lambda k: "_gray" if k.gray else "", kind=KIND, own_recipe=True))
