"""DCGAN training on 64x64 faces (Problem 2), the pytorch/examples ``dcgan`` recipe on hw3lib's TrainLoop, with the
data-efficient additions a short budget needs; the networks are unchanged (Radford et al., 2016).

Per step (Goodfellow et al., 2014, with the non-saturating generator loss; Radford et al., 2016):

* (1) Update D: maximize log(D(x)) + log(1 - D(G(z))) — BCE on a real batch (label ``real_label``), then on
  ``fake.detach()`` (label 0); one optimizer step on the summed gradients.
* (2) Update G: maximize log(D(G(z))) — BCE of D(G(z)) against label 1.
* (3) Move the exponential moving average of G's weights towards G.

The recipe's knobs (all :class:`GANConfig` fields, so part of the run's config hash), each off at its neutral value:

* ``diffaugment``: DiffAugment (Zhao et al., NeurIPS 2020) — every image D sees, real or generated, goes through the
  same random differentiable colour / translation / cutout transform (:mod:`hw3lib.train.diffaugment`).
* ``ema_kimg`` / ``ema_rampup`` / ``ema_bn_samples``: an exponential moving average of G's weights (Karras et al.,
  ICLR 2018; Yazıcı et al., ICLR 2019), with the half-life of StyleGAN2-ADA (Karras et al., NeurIPS 2020):
  ``ema_kimg`` thousand images, at most ``ema_rampup`` × the images seen so far. Averaged weights do not match
  anyone's running BatchNorm statistics, so the average's are recomputed from ``ema_bn_samples`` noise vectors
  (``torch.optim.swa_utils.update_bn``, as SWA does, Izmailov et al. 2018; BigGAN's "standing statistics", Brock et
  al. 2019) for every snapshot and at the end. The averaged generator is the one every sample, figure and metric
  uses; the raw G is kept beside it (``GANResult.netG_raw``).
* ``lr_d``: two time-scale update rule, D's own learning rate (TTUR; Heusel et al., NeurIPS 2017).
* ``real_label``: one-sided label smoothing, D's target on real images below 1 (Salimans et al., NeurIPS 2016).

Which of them the defaults switch on was measured on a validation split of the training faces: docs/NOTES.md. At the
quick profile's 625 steps, learning rates above the paper's (Problem 2's notebook: ``lr`` 8e-4 for G, ``lr_d`` 4e-4 for
D) gave the lowest validation FD of the recipes tried; :class:`GANConfig`'s own defaults (the CLI's, for the course
data's longer runs) stay the DCGAN paper's 2e-4 for both: nothing here measured faster rates over a long run.

Adam(betas=(0.5, 0.999)) for both nets. A ``fixed_noise`` batch built once from the run's random seed is decoded every
``snapshot_every`` steps (by the averaged G); the first 16 images of each snapshot are kept (uint8) in the
checkpoint's ``extra`` so the report can show how the generator learns.

``hw3 train gan --data DIR --out RUN_DIR`` trains; ``hw3 generate gan --ckpt RUN_DIR --out fig2_2.png --seed N``
writes the course's 32-face grid (hw3_p2.sh) from the averaged G, deterministic per seed.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, update_bn

from hw3lib import checkpoint
from hw3lib.data import FaceSet, load_faces
from hw3lib.data.batches import Batches
from hw3lib.data.images import save_grid
from hw3lib.data.transforms import to_unit
from hw3lib.device import AMP_HELP, AMP_MODES, get_device, seed_everything
from hw3lib.distributed import unwrap
from hw3lib.models.dcgan import Discriminator, Generator, weights_init
from hw3lib.models.vae import VAE
from hw3lib.runtime import Runtime, eval_mode, launch, train_mode
from hw3lib.models.functional import realfake_bce
from hw3lib.train import configs, folders
from hw3lib.train.configs import config_from, config_from_args
from hw3lib.train.diffaugment import diff_augment, parse_policy
from hw3lib.train.loop import TrainLoop, epoch_steps

KIND = "gan"
REAL_LABEL, FAKE_LABEL = 1.0, 0.0  # D's real target is config.real_label (label smoothing); G's stays 1
SNAPSHOT_KEEP = 16  # images of fixed_noise kept per snapshot (the progression figure shows these)


@dataclass
class GANConfig:
    """Hyper-parameters of a DCGAN run. ``epochs`` over the training faces, capped by ``max_steps``.

    Recipe knobs (module docstring; measurements in docs/NOTES.md): ``diffaugment`` (Zhao et al. 2020),
    ``ema_kimg``/``ema_rampup`` (Karras et al. 2018, 2020), ``lr_d`` (TTUR, Heusel et al. 2017), ``real_label``
    (one-sided label smoothing, Salimans et al. 2016).
    """
    epochs: float = 5
    batch_size: int = 128
    lr: float = 2e-4                 # Adam learning rate of G (and of D unless ``lr_d`` is set)
    beta1: float = 0.5
    nz: int = 100
    ngf: int = 64
    ndf: int = 64
    seed: int = 0
    max_steps: int | None = None
    lr_d: float | None = None        # TTUR (Heusel et al. 2017): D's learning rate; None = ``lr``
    real_label: float = 1.0          # D's target on real images; 0.9 = one-sided label smoothing (Salimans et al. 2016)
    diffaugment: str = ""            # DiffAugment policy on D's inputs (Zhao et al. 2020), e.g. "translation"; "" = off
    ema_kimg: float = 10.0           # half-life of the EMA of G in thousands of images (Karras et al. 2018/2020); 0 = off
    ema_rampup: float | None = 0.05  # half-life at most this x the images seen so far (StyleGAN2-ADA); None = off
    ema_bn_samples: int = 512        # the average's BatchNorm statistics recomputed from this many z (0 = averaged)
    ckpt_every: int = 500
    log_every: int = 10
    snapshot_every: int = 0          # 0: about 10 snapshots over the run
    n_fixed: int = 64                # size of fixed_noise (as in pytorch/examples)
    channels_last: bool = True       # NHWC convolutions (oneDNN/cuDNN); same numbers up to float rounding
    amp: str = "auto"                # autocast of G's and D's forward passes: "auto" = bf16 on CUDA, float32 on CPU
    device: str = "auto"             # used when no runtime is given
    data_id: str = ""                # the data trained on (hw3lib.data.data_id), set by train_or_load

    def __post_init__(self):
        parse_policy(self.diffaugment)  # an unknown policy name is an error now, not after the first step
        if not 0.0 < self.real_label <= 1.0:
            raise ValueError(f"real_label must be in (0, 1], got {self.real_label}")

    def total_steps(self, n_train: int, world_size: int = 1) -> int:
        return epoch_steps(self.epochs, n_train, self.batch_size, world_size, self.max_steps)

    def snapshot_interval(self, total: int) -> int:
        return self.snapshot_every if self.snapshot_every > 0 else max(1, total // 10)

    def ema_beta(self, step: int, world_size: int = 1) -> float:
        """Decay of the weight average at (1-based) update ``step``: the average's half-life is ``ema_kimg``
        thousand images, capped at ``ema_rampup`` x the images seen so far (StyleGAN2-ADA's ``training_loop.py``)."""
        batch = self.batch_size * world_size
        half_life = self.ema_kimg * 1000
        if self.ema_rampup is not None:
            half_life = min(half_life, step * batch * self.ema_rampup)
        return 0.5 ** (batch / max(half_life, 1e-8))


class GANResult(NamedTuple):
    netG: Generator          # the generator every sample uses: the weight average when ``ema_kimg`` > 0
    netD: Discriminator
    history: dict
    snapshots: dict          # {"step": [int], "images": uint8 [S, 16, 3, 64, 64]}
    config: GANConfig
    netG_raw: Generator      # the trained G itself (``netG`` when there is no average)


# The real/fake BCE, shared with GTA (hw3lib.models.functional): float32 and outside autocast.
gan_loss = realfake_bce


def ema_generator(netG: nn.Module) -> AveragedModel:
    """A weight average of ``netG`` (a copy of its parameters and BatchNorm buffers) that :func:`ema_update`
    moves towards ``netG`` with decay :meth:`GANConfig.ema_beta` of the update count
    (``torch.optim.swa_utils.AveragedModel``; its ``module`` is a plain :class:`Generator`)."""
    decay = [1.0]  # set by ema_update from the loop's step: reading AveragedModel's n_averaged would sync the device

    @torch.no_grad()
    def ema(averaged: list[torch.Tensor], current: list[torch.Tensor], n: torch.Tensor) -> None:
        if not torch.is_floating_point(averaged[0]):  # num_batches_tracked: follow G
            torch._foreach_copy_(averaged, current)
            return
        torch._foreach_lerp_(averaged, current, 1.0 - decay[0])

    avg = AveragedModel(netG, multi_avg_fn=ema, use_buffers=True)
    avg.decay = decay
    return avg


def ema_update(ema: AveragedModel, netG: nn.Module, step: int, config: GANConfig, world_size: int = 1) -> None:
    """The ``step``-th update of the average (0-based: update 0 copies ``netG``, update n ≥ 1 moves towards it by
    1 − ``ema_beta(n)``), ``step`` a Python int, so no device value is read."""
    ema.decay[0] = config.ema_beta(max(int(step), 1), world_size)
    ema.update_parameters(netG)


@torch.no_grad()
def refresh_bn(netG: nn.Module, n: int, seed: int) -> None:
    """Recompute ``netG``'s BatchNorm running statistics in place as the plain average over ``n`` draws of
    z ~ N(0, I) (batches of 64, CPU noise from ``seed``; ``torch.optim.swa_utils.update_bn``). ``n`` = 0: no-op."""
    if n <= 0:
        return
    g = torch.Generator().manual_seed(seed)
    device = next(netG.parameters()).device
    batches = [torch.randn(min(64, n - i), netG.nz, 1, 1, generator=g).to(device) for i in range(0, n, 64)]
    update_bn(batches, netG)


def build_models(config: GANConfig, device: torch.device | str = "cpu") -> tuple[Generator, Discriminator]:
    """Fresh G and D with the DCGAN initialisation (seeded by ``config.seed``)."""
    torch.manual_seed(config.seed)
    netG = Generator(nz=config.nz, ngf=config.ngf).to(device)
    netD = Discriminator(ndf=config.ndf).to(device)
    netG.apply(weights_init)
    netD.apply(weights_init)
    return netG, netD


def make_fixed_noise(config: GANConfig, device: torch.device | str = "cpu") -> torch.Tensor:
    """The run's ``fixed_noise`` [n_fixed, nz, 1, 1], drawn on the CPU from the run's random seed (same on every device)."""
    g = torch.Generator().manual_seed(config.seed + 7919)
    return torch.randn(config.n_fixed, config.nz, 1, 1, generator=g).to(device)


@torch.no_grad()
def _snapshot(netG: nn.Module, fixed_noise: torch.Tensor) -> torch.Tensor:
    g = unwrap(netG)
    with eval_mode(g):
        x = g(fixed_noise[:SNAPSHOT_KEEP])
    return to_uint8(x).cpu()


def noise_seed(seed: int, rank: int, step: int) -> int:
    """Seed of the training noise of (0-based) ``step`` on ``rank`` (distinct for every run/rank/step)."""
    return ((seed * 1000 + rank + 1) << 32) + step


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float images → uint8 0..255 (what saving a PNG would keep)."""
    return to_unit(x).mul(255).round().to(torch.uint8)


def train_gan(netG: Generator, netD: Discriminator, train: FaceSet, config: GANConfig, *,
              runtime: Runtime | None = None, run_dir: str | Path | None = None) -> dict:
    """Train ``netG``/``netD`` in place on ``train`` faces; return the history. ``runtime`` defaults to the
    config's; both nets end in eval mode in the default memory layout (what a reload of the checkpoint gives).
    The weight average of G (``ema_kimg`` > 0) is saved in the checkpoint as ``netG_ema`` (:func:`load_models`).

    History keys (step level): ``loss_D``, ``loss_G``, ``D_x`` (mean D on the augmented real batch), ``D_G_z1``
    (mean D on augmented fakes before the G update), ``D_G_z2`` (after D's update, during G's). Snapshots go to the
    checkpoint's ``extra``.
    """
    rt = runtime or Runtime.for_config(config)
    images = train.images.to(rt.device)  # uint8 on the device once; float conversion happens per batch
    total = config.total_steps(len(images), rt.dist.world_size)
    G, D = rt.prepare(netG), rt.prepare(netD)
    optimizerD = torch.optim.Adam(D.parameters(), lr=config.lr_d or config.lr, betas=(config.beta1, 0.999))
    optimizerG = torch.optim.Adam(G.parameters(), lr=config.lr, betas=(config.beta1, 0.999))
    models = {"netG": G, "netD": D}
    ema = ema_generator(netG) if config.ema_kimg > 0 else None
    if ema is not None:
        models["netG_ema"] = ema.module  # the checkpoint holds a plain Generator

    def sampler() -> nn.Module:  # what a snapshot shows: G, or a copy of the average with fresh BatchNorm statistics
        if ema is None:
            return G
        net = copy.deepcopy(ema.module)
        refresh_bn(net, config.ema_bn_samples, config.seed)
        return net
    fixed_noise = make_fixed_noise(config, rt.device)
    loop = TrainLoop(KIND, config, rt, models=models, optimizers={"netG": optimizerG, "netD": optimizerD},
                     total_steps=total, run_dir=run_dir, desc="dcgan")
    if not loop.resume():
        loop.extra["snapshots"] = {"step": [0], "images": _snapshot(sampler(), fixed_noise)[None]}
    elif ema is not None:
        ema.n_averaged.fill_(loop.step)  # one update per step: the decay schedule goes on where it stopped
    every = config.snapshot_interval(total)
    batches = Batches(images, batch_size=config.batch_size, seed=config.seed, rank=rt.dist.rank,
                      world_size=rt.dist.world_size).forever(loop.step)
    # Noise and augmentations: a function of (seed, rank, step) only, so a resumed run draws exactly what an
    # uninterrupted one would, and DDP ranks draw different noise.
    g_noise = torch.Generator(device=rt.device)
    amp = rt.autocast()

    def augment(x: torch.Tensor) -> torch.Tensor:  # DiffAugment: a fresh draw every time D sees a batch
        return diff_augment(x, config.diffaugment, g_noise)

    for step in loop:
        (x,) = next(batches)
        real = rt.images(x)
        b = real.shape[0]
        g_noise.manual_seed(noise_seed(config.seed, rt.dist.rank, step))

        # (1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))
        D.zero_grad(set_to_none=True)
        with amp:
            output = D(augment(real))
        errD_real = gan_loss(output, config.real_label)
        errD_real.backward()
        D_x = output.mean()
        noise = torch.randn(b, config.nz, 1, 1, device=rt.device, generator=g_noise)
        with amp:
            fake = G(noise)
            output = D(augment(fake.detach()))
        errD_fake = gan_loss(output, FAKE_LABEL)
        errD_fake.backward()
        D_G_z1 = output.mean()
        errD = errD_real + errD_fake
        optimizerD.step()

        # (2) Update G network: maximize log(D(G(z)))
        G.zero_grad(set_to_none=True)
        with amp:
            output = D(augment(fake))
        errG = gan_loss(output, REAL_LABEL)  # fake labels are real for the generator cost
        errG.backward()
        D_G_z2 = output.mean()
        optimizerG.step()

        # (3) Move the weight average towards G; after the last step, its BatchNorm statistics for its own weights
        if ema is not None:
            ema_update(ema, unwrap(G), step, config, rt.dist.world_size)
            if step + 1 == total:
                refresh_bn(ema.module, config.ema_bn_samples, config.seed)

        loop.log(loss_D=errD, loss_G=errG, D_x=D_x, D_G_z1=D_G_z1, D_G_z2=D_G_z2)
        if TrainLoop.every(step, every) or step + 1 == total:
            snaps = loop.extra["snapshots"]
            if snaps["step"][-1] != step + 1:
                snaps["step"].append(step + 1)
                snaps["images"] = torch.cat([snaps["images"], _snapshot(sampler(), fixed_noise)[None]])
    rt.finish(netG, netD, *([ema.module] if ema is not None else []))
    return loop.history


def load_models(payload_or_run_dir: dict | str | Path, device: torch.device | str = "cpu"
                ) -> tuple[Generator, Discriminator, GANConfig]:
    """G and D of a GAN checkpoint (payload or run folder), on ``device``, in eval mode. G is the weight average
    when the run kept one (:func:`load_raw_generator` gives the raw G)."""
    payload = _payload(payload_or_run_dir)
    config = config_from(GANConfig, payload["config"])
    netD = Discriminator(ndf=config.ndf)
    netD.load_state_dict(payload["models"]["netD"])
    netG = _generator(config, payload["models"].get("netG_ema", payload["models"]["netG"]), device)
    return netG, netD.to(device).eval(), config


def load_raw_generator(payload_or_run_dir: dict | str | Path, device: torch.device | str = "cpu") -> Generator:
    """The trained G itself (not its weight average) of a GAN checkpoint, on ``device``, in eval mode."""
    payload = _payload(payload_or_run_dir)
    return _generator(config_from(GANConfig, payload["config"]), payload["models"]["netG"], device)


def _payload(payload_or_run_dir: dict | str | Path) -> dict:
    payload = payload_or_run_dir if isinstance(payload_or_run_dir, dict) else checkpoint.load(payload_or_run_dir)
    if payload.get("kind") != KIND:
        raise ValueError(f"checkpoint kind {payload.get('kind')!r} is not a DCGAN run ({KIND})")
    return payload


def _generator(config: GANConfig, state: dict, device) -> Generator:
    netG = Generator(nz=config.nz, ngf=config.ngf)
    netG.load_state_dict(state)
    return netG.to(device).eval()


def train_or_load(config: GANConfig, data_dir: str | Path, run_dir: str | Path, *,
                  runtime: Runtime | None = None, keyed: bool = True) -> GANResult:
    """The finished run in ``run_dir`` when its config matches; otherwise train (or resume) it there
    (``keyed``: another config's run in ``run_dir`` moves this one to ``run_dir-<config hash>``; else refuse)."""
    rt = runtime or Runtime.for_config(config)
    config = configs.bind_data(config, data_dir, ("face",))
    if keyed:
        run_dir = folders.config_folder(run_dir, KIND, config)

    def train() -> GANResult:
        seed_everything(config.seed)
        netG, netD = build_models(config, rt.device)
        train_gan(netG, netD, load_faces(data_dir, "train"), config, runtime=rt, run_dir=run_dir)
        return load(checkpoint.load(run_dir))

    def load(payload: dict) -> GANResult:
        netG, netD, cfg = load_models(payload, rt.device)
        raw = load_raw_generator(payload, rt.device) if "netG_ema" in payload["models"] else netG
        return GANResult(netG, netD, payload["history"], payload["extra"]["snapshots"], cfg, raw)

    return folders.train_or_load(KIND, config, run_dir, train=train, load=load)


def generate(netG: Generator, n: int = 32, seed: int = 0, *, batch_stats: bool = False) -> torch.Tensor:
    """``n`` faces as uint8 [n,3,64,64], deterministic for ``seed`` on any device.

    ``batch_stats=True`` normalises with the batch's own BatchNorm statistics (train-mode forward, as
    pytorch/examples draws its fixed-noise samples) instead of the running ones; it is what makes an *untrained*
    generator show its structured noise rather than a flat gray (its running statistics are still the
    initial 0/1 while its weights are ~N(0, 0.02)). The generator's running statistics are left untouched.
    """
    g = torch.Generator().manual_seed(seed)
    if not batch_stats:
        return to_uint8(netG.sample(n, g)).cpu()
    device = next(netG.parameters()).device
    z = torch.randn(n, netG.nz, 1, 1, generator=g).to(device)
    saved = {k: v.clone() for k, v in netG.state_dict().items()}
    try:
        with train_mode(netG), torch.no_grad():
            return to_uint8(netG(z)).cpu()
    finally:
        netG.load_state_dict(saved)


def sample_sets(netG: Generator, vae: VAE | None, gan_config: GANConfig, train: FaceSet, n: int,
                seed: int = 0, *, netG_raw: Generator | None = None) -> dict[str, torch.Tensor]:
    """The sets Problem 2.4 compares, as uint8 [n,3,64,64]: DCGAN (``netG``, the weight average), the raw G
    (``netG_raw``, if given and another net), VAE (if given), an untrained DCGAN generator (the trained one's
    initialisation, built on ``netG``'s device and sampled with batch statistics) and the first ``n`` real training
    faces. Noise from ``seed`` (the same for both DCGAN sets)."""
    out = {"dcgan": generate(netG, n, seed)}
    if netG_raw is not None and netG_raw is not netG:
        out["dcgan_raw"] = generate(netG_raw, n, seed)
    if vae is not None:
        out["vae"] = to_uint8(vae.sample(n, generator=torch.Generator().manual_seed(seed))).cpu()
    # Batch statistics: in eval mode a freshly initialised generator outputs a flat gray (see ``generate``).
    untrained = build_models(gan_config, next(netG.parameters()).device)[0]
    out["untrained"] = generate(untrained, n, seed, batch_stats=True)
    out["real_train"] = train.images[:n]
    return out


# -- CLI ---------------------------------------------------------------------------------------------------
def _cli_train(args) -> int:
    config = config_from_args(GANConfig, args)
    with launch(config) as rt:
        res = train_or_load(config, args.data, args.out, runtime=rt, keyed=False)
    if rt.is_main:
        h = res.history
        last = {k: h[k][-1] for k in ("loss_D", "loss_G", "D_x", "D_G_z1") if h.get(k)}
        print(f"dcgan: {h['step'][-1] if h['step'] else 0} steps in {args.out}; last "
              + " ".join(f"{k}={v:.3f}" for k, v in last.items()))
    return 0


def _cli_generate(args) -> int:
    device = get_device(args.device)
    netG, _, _ = load_models(checkpoint.load(args.ckpt, map_location=device), device)
    path = save_grid(generate(netG, args.n, args.seed), args.out, nrow=8)
    print(f"wrote {args.n} faces (seed {args.seed}) to {path}")
    return 0


def register(groups) -> None:
    p = groups["train"].add_parser("gan", help="train the DCGAN on faces (Problem 2)",
                                   description="Train a DCGAN (pytorch/examples recipe) on DATA/face/train into "
                                               "a run folder; resumes an interrupted run, skips a finished one.")
    p.add_argument("--data", default="data", help="data folder in the course layout (default: data)")
    p.add_argument("--out", required=True, help="run folder (checkpoint.pt is written there)")
    p.add_argument("--epochs", type=float, default=None, help=f"epochs (default {GANConfig.epochs})")
    p.add_argument("--batch-size", type=int, default=None, help=f"batch size (default {GANConfig.batch_size})")
    p.add_argument("--lr", type=float, default=None, help=f"Adam learning rate (default {GANConfig.lr})")
    p.add_argument("--lr-d", type=float, default=None, help="D's learning rate (TTUR; default: --lr)")
    p.add_argument("--real-label", type=float, default=None,
                   help=f"D's target on real faces, < 1 = one-sided label smoothing (default {GANConfig.real_label})")
    p.add_argument("--diffaugment", default=None,
                   help=f"DiffAugment policy on D's inputs, '' = off (default {GANConfig.diffaugment!r})")
    p.add_argument("--ema-kimg", type=float, default=None,
                   help=f"half-life of G's weight average in thousands of images, 0 = off (default {GANConfig.ema_kimg})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many steps (smoke runs)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--amp", choices=AMP_MODES, default=None, help=AMP_HELP)
    p.set_defaults(func=_cli_train)

    g = groups["generate"].add_parser("gan", help="write 32 DCGAN faces as a 4x8 grid (hw3_p2.sh)",
                                      description="Decode 32 noise vectors drawn from --seed with a trained "
                                                  "generator and save them as one 4x8 PNG grid.")
    g.add_argument("--ckpt", required=True, help="run folder or checkpoint.pt of `hw3 train gan`")
    g.add_argument("--out", required=True, help="output PNG (e.g. fig2_2.png)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--n", type=int, default=32, help="number of faces (default 32)")
    g.add_argument("--device", default="auto")
    g.set_defaults(func=_cli_generate)
