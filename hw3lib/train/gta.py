"""Generate To Adapt (GTA) training: the ``method="gta"`` branch of :func:`hw3lib.train.uda.train_uda`.

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

Knobs only GTA uses live in ``UDAConfig.gta`` (a dict) and default to :class:`GTAConfig`; the shared fields
``steps``, ``seed``, ``gray``, ``max_steps``, ``log_every``, ``ckpt_every`` come from the UDA config itself.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hw3lib.data.batches import Batches
from hw3lib.data.sets import DigitSet
from hw3lib.data.transforms import resize, to_gray3
from hw3lib.device import autocast
from hw3lib.distributed import SINGLE, DistInfo
from hw3lib.eval.uda import accuracy
from hw3lib.models.gta import NCLASSES, build_gta, onehot
from hw3lib.train.common import TrainLoop

KIND = "gta"


@dataclass(frozen=True)
class GTAConfig:
    """GTA-only knobs (the public code's defaults). Pass overrides as ``UDAConfig(gta={...})``."""
    lr: float = 5e-4            # Adam learning rate of all four nets
    beta1: float = 0.8          # Adam β1
    adv_weight: float = 0.1     # weight of D's losses in F's update
    alpha: float = 0.3          # extra factor on the target adversarial term in F's update
    lr_decay: float = 1e-4      # lr / (1 + lr_decay·step) for D, F, C; 0 = constant
    batch_size: int = 100       # per domain (the public code's batchSize)
    nz: int = 512               # noise dimension of G's input
    ndf: int = 64               # F/D width (embedding = 2·ndf = 128)
    ngf: int = 64               # G width
    image_size: int = 32        # the networks' input size (28 → 32 bilinear)
    warmup_steps: int = 0       # source-only F+C steps before the GTA steps (0 = the public code)
    in_mean: float = 0.44       # F's input normalisation (x/255 - in_mean) / in_std: the public main.py's
    in_std: float = 0.19        # Normalize(0.44, 0.19); D and G work in [-1,1] regardless

    @classmethod
    def from_config(cls, config: Any) -> "GTAConfig":
        """Knobs from ``config.gta`` (dict) or same-named attributes of ``config``, else the defaults."""
        names = {f.name for f in dataclasses.fields(cls)}
        extra = getattr(config, "gta", None) if not isinstance(config, dict) else config.get("gta")
        extra = dict(extra or {})
        unknown = set(extra) - names
        if unknown:
            raise ValueError(f"unknown GTA option(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(names))}")
        return cls(**extra)


def _get(config: Any, name: str, default: Any = None) -> Any:
    return config.get(name, default) if isinstance(config, dict) else getattr(config, name, default)


def build_nets(config: Any = None) -> dict[str, nn.Module]:
    """The four nets for ``config`` (hw3lib.train.uda calls this for ``method="gta"``)."""
    k = GTAConfig.from_config(config) if config is not None else GTAConfig()
    return build_gta(ndf=k.ndf, ngf=k.ngf, nz=k.nz)


def prepare(images: torch.Tensor, config: Any = None, *, for_d: bool = False) -> torch.Tensor:
    """uint8 [N,3,28,28] → network input float [N,3,S,S]: luminance (repeated to 3 channels) when
    ``config.gray``, bilinear-resized to ``image_size`` (32), then normalised as the public code does it:
    netF's input ``(x/255 - in_mean) / in_std`` (``Normalize(0.44, 0.19)``), or with ``for_d`` D's real-image
    input (and G's output range) ``x/127.5 - 1`` in [-1,1]."""
    k = GTAConfig.from_config(config) if config is not None else GTAConfig()
    x = images.float()
    if config is not None and _get(config, "gray", False):
        x = to_gray3(x)
    x = resize(x, k.image_size).clamp_(0.0, 255.0)
    if for_d:
        return x.div_(127.5).sub_(1.0)
    return x.div_(255.0).sub_(k.in_mean).div_(k.in_std)


def d_range(x: torch.Tensor, config: Any = None) -> torch.Tensor:
    """netF input (:func:`prepare`) → the same images in D's [-1,1] (the public code's ``src_inputs_unnorm``)."""
    k = GTAConfig.from_config(config) if config is not None else GTAConfig()
    return (x * k.in_std + k.in_mean - 0.5) * 2.0


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


def fit_gta(nets: dict[str, nn.Module], source: DigitSet, target: DigitSet, config: Any, *,
            device: torch.device, run_dir: str | Path | None = None, dist: DistInfo = SINGLE,
            target_test: DigitSet | None = None) -> dict:
    """Train the GTA nets in place on ``source`` (labelled) → ``target`` (images only); returns the history.

    ``config`` needs ``seed``, ``steps`` (GTA steps), ``gray``, ``max_steps`` (caps warm-up + GTA steps); GTA
    knobs from :meth:`GTAConfig.from_config`. The run is ``warmup_steps`` source-only F+C steps, then ``steps``
    GTA steps. Checkpoints go to ``run_dir`` as TrainLoop kind ``"gta"`` with the nets under keys
    netF/netC/netG/netD. History (step-level): ``errC`` and ``src_acc`` (C on the source batch) over the whole
    run; ``errD``, ``errG``, ``errF``, ``d_real`` / ``d_fake_src`` / ``d_fake_tgt`` (D's mean "real" probability)
    over the GTA steps, i.e. the last ``len(history[key])`` entries of ``history["step"]``. With ``target_test``
    and a warm start, ``warm_target_acc`` (epoch-level) is the target-test accuracy of F, C at its end — for the
    report only; nothing is selected with it.
    """
    k = GTAConfig.from_config(config)
    warm = int(k.warmup_steps)
    if warm < 0:
        raise ValueError(f"GTA warmup_steps must be >= 0, got {warm}")
    steps, cap = warm + int(_get(config, "steps")), _get(config, "max_steps")
    total = steps if cap is None else min(steps, cap)
    seed = int(_get(config, "seed", 0))
    net_f, net_c, net_g, net_d = (nets[n] for n in ("netF", "netC", "netG", "netD"))
    cl = bool(_get(config, "channels_last", False))
    if cl:
        for n in ("netF", "netG", "netD"):
            nets[n].to(memory_format=torch.channels_last)

    def adam(net: nn.Module) -> torch.optim.Optimizer:
        return torch.optim.Adam(net.parameters(), lr=k.lr, betas=(k.beta1, 0.999))

    opts = {n: adam(nets[n]) for n in ("netF", "netC", "netG", "netD")}
    # The public code decays D, F and C only, by GTA step (F and C keep the base rate during a warm start,
    # where D's scheduler does not step).
    decays = {"netD": lambda s: lr_factor(s, k.lr_decay), "netF": lambda s: lr_factor(max(0, s - warm), k.lr_decay)}
    decays["netC"] = decays["netF"]
    scheds = {n: torch.optim.lr_scheduler.LambdaLR(opts[n], f) for n, f in decays.items()}
    name = _get(config, "name", None) or f"gta_{source.domain}_{target.domain}"
    loop = TrainLoop(KIND, config, models=nets, optimizers=opts, schedulers=scheds, total_steps=total,
                     run_dir=run_dir, dist=dist, desc=name)
    loop.resume()

    kw = dict(batch_size=k.batch_size, rank=dist.rank, world_size=dist.world_size)
    src_iter = Batches(source.images, source.labels, seed=seed, **kw).forever(loop.step)
    # Target labels are never read; target batches are drawn from the first GTA step on.
    tgt_iter = Batches(target.images, seed=seed + 7919, **kw).forever(max(0, loop.step - warm))

    amp = autocast(device, _get(config, "amp", "auto"))
    for step in loop:
        xs_u8, ys = next(src_iter)
        if step < warm:
            # (0) Warm start: F and C learn the source labels alone (GTA's own source-only network).
            with amp:
                logits_c = net_c(net_f(prepare(xs_u8, config)))
            err_c = class_loss(logits_c, ys)
            for n in ("netF", "netC"):
                nets[n].zero_grad(set_to_none=True)
            err_c.backward()
            for n in ("netF", "netC"):
                _average_grads(nets[n], dist)
                opts[n].step()
                scheds[n].step()
            loop.log(errC=err_c, src_acc=(logits_c.argmax(1) == ys).float().mean())
            if step + 1 == warm and target_test is not None:
                acc = accuracy({"netF": net_f, "netC": net_c}, "gta", target_test, config)
                loop.log_epoch(step + 1, warm_target_acc=acc)
                net_f.train(), net_c.train()
            continue
        (xt_u8,) = next(tgt_iter)
        xs, xt = prepare(xs_u8, config), prepare(xt_u8, config)
        if cl:
            xs, xt = xs.contiguous(memory_format=torch.channels_last), xt.contiguous(memory_format=torch.channels_last)
        code_s = onehot(ys, len(ys), NCLASSES)
        code_t = onehot(None, len(xt), NCLASSES, device=xt.device)

        with amp:
            emb_s, emb_t = net_f(xs), net_f(xt)
            gen_s, gen_t = net_g(code_s, emb_s), net_g(code_t, emb_t)

        # (1) Update D: real source (real + its class), G(source) and G(target) fake.
        net_d.zero_grad(set_to_none=True)
        with amp:
            real = net_d(d_range(xs, config))
            fake_s, fake_t = net_d(gen_s.detach()), net_d(gen_t.detach())
        err_d = (class_loss(real.class_logits, ys) + realfake_loss(real.realfake, True)
                 + realfake_loss(fake_s.realfake, False) + realfake_loss(fake_t.realfake, False))
        err_d.backward()
        _average_grads(net_d, dist)
        opts["netD"].step()

        # D's verdict after its update drives G and F (as in the public code).
        with amp:
            out_s, out_t = net_d(gen_s), net_d(gen_t)
            logits_c = net_c(emb_s)

        # (2) Update G: generated source images of the right class that look real.
        err_g = class_loss(out_s.class_logits, ys) + realfake_loss(out_s.realfake, True)
        # (3) Update C: source classification.
        err_c = class_loss(logits_c, ys)
        # (4) Update F: classification + class-consistent source generations + target generations that look real.
        err_f = (err_c + k.adv_weight * class_loss(out_s.class_logits, ys)
                 + k.adv_weight * k.alpha * realfake_loss(out_t.realfake, True))

        for n, err, last in (("netG", err_g, False), ("netC", err_c, False), ("netF", err_f, True)):
            nets[n].zero_grad(set_to_none=True)
            err.backward(inputs=list(nets[n].parameters()), retain_graph=not last)
        for n in ("netG", "netC", "netF"):
            _average_grads(nets[n], dist)
            opts[n].step()
        for s in scheds.values():
            s.step()

        loop.log(errD=err_d, errG=err_g, errC=err_c, errF=err_f,
                 src_acc=(logits_c.argmax(1) == ys).float().mean(),
                 d_real=real.realfake.mean(), d_fake_src=fake_s.realfake.mean(),
                 d_fake_tgt=fake_t.realfake.mean())
    return loop.history


@torch.no_grad()
def generate(nets: dict[str, nn.Module], images: torch.Tensor, labels: torch.Tensor | None, config: Any = None,
             *, seed: int = 0) -> torch.Tensor:
    """G's reconstructions [N,3,32,32] in [-1,1] of uint8 ``images``: G(one-hot(label) ‖ F(x) ‖ noise) for
    source images (``labels`` given) or G(target slot ‖ F(x) ‖ noise) (``labels=None``).

    G runs with batch statistics (train-mode BatchNorm, as during training and in the public code's
    visualisations) on a copy, so the nets' running statistics are left untouched. Noise is fixed by ``seed``.
    """
    import copy

    from hw3lib.distributed import unwrap
    net_f = unwrap(nets["netF"]).eval()
    net_g = copy.deepcopy(unwrap(nets["netG"])).train()
    x = prepare(images, config)
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(len(x), net_g.nz, generator=g).to(x.device)
    code = onehot(labels.to(x.device) if labels is not None else None, len(x), NCLASSES, device=x.device)
    return net_g(code, net_f(x), noise)
