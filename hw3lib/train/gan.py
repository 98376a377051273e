"""DCGAN training on 64x64 faces (Problem 2), the pytorch/examples ``dcgan`` recipe on hw3lib's TrainLoop.

Per step (Goodfellow et al., 2014, with the non-saturating generator loss; Radford et al., 2016):

* (1) Update D: maximize log(D(x)) + log(1 - D(G(z))) — BCE on a real batch (label 1), then on ``fake.detach()``
  (label 0); one optimizer step on the summed gradients.
* (2) Update G: maximize log(D(G(z))) — BCE of D(G(z)) against label 1.

Adam(lr=2e-4, betas=(0.5, 0.999)) for both nets. A ``fixed_noise`` batch built once from the seed is decoded every
``snapshot_every`` steps; the first 16 images of each snapshot are kept (uint8) in the checkpoint's ``extra``
so the report can show how the generator learns.

``hw3 train gan --data DIR --out RUN_DIR`` trains; ``hw3 generate gan --ckpt RUN_DIR --out fig2_2.png --seed N``
writes the course's 32-face grid (hw3_p2.sh), deterministic per seed.
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
from hw3lib.data.images import save_grid
from hw3lib.data.transforms import to_unit
from hw3lib.device import AMP_HELP, AMP_MODES, get_device, seed_everything
from hw3lib.distributed import unwrap
from hw3lib.models.dcgan import Discriminator, Generator, weights_init
from hw3lib.models.vae import VAE
from hw3lib.runtime import Runtime, eval_mode, launch, train_mode
from hw3lib.train import configs, folders
from hw3lib.train.configs import config_from, config_from_args
from hw3lib.train.loop import TrainLoop, epoch_steps

KIND = "gan"
REAL_LABEL, FAKE_LABEL = 1.0, 0.0
SNAPSHOT_KEEP = 16  # images of fixed_noise kept per snapshot (the progression figure shows these)


@dataclass
class GANConfig:
    """Hyper-parameters of a DCGAN run. ``epochs`` over the training faces, capped by ``max_steps``."""
    epochs: float = 5
    batch_size: int = 128
    lr: float = 2e-4
    beta1: float = 0.5
    nz: int = 100
    ngf: int = 64
    ndf: int = 64
    seed: int = 0
    max_steps: int | None = None
    ckpt_every: int = 500
    log_every: int = 10
    snapshot_every: int = 0          # 0: about 10 snapshots over the run
    n_fixed: int = 64                # size of fixed_noise (as in pytorch/examples)
    channels_last: bool = True       # NHWC convolutions (oneDNN/cuDNN); same numbers up to float rounding
    amp: str = "auto"                # autocast of G's and D's forward passes: "auto" = bf16 on CUDA, float32 on CPU
    device: str = "auto"             # used when no runtime is given
    data_id: str = ""                # the data trained on (hw3lib.data.data_id), set by train_or_load

    def total_steps(self, n_train: int, world_size: int = 1) -> int:
        return epoch_steps(self.epochs, n_train, self.batch_size, world_size, self.max_steps)

    def snapshot_interval(self, total: int) -> int:
        return self.snapshot_every if self.snapshot_every > 0 else max(1, total // 10)


class GANResult(NamedTuple):
    netG: Generator
    netD: Discriminator
    history: dict
    snapshots: dict          # {"step": [int], "images": uint8 [S, 16, 3, 64, 64]}
    config: GANConfig


def gan_loss(output: torch.Tensor, target: float) -> torch.Tensor:
    """Binary cross-entropy of D's probabilities against a constant label (``nn.BCELoss`` on a full tensor).

    Always float32 and outside autocast: CUDA autocast refuses ``binary_cross_entropy`` (unsafe in low precision).
    """
    with torch.autocast(output.device.type, enabled=False):
        output = output.float()
        return nn.functional.binary_cross_entropy(output, torch.full_like(output, target))


def build_models(config: GANConfig, device: torch.device | str = "cpu") -> tuple[Generator, Discriminator]:
    """Fresh G and D with the DCGAN initialisation (seeded by ``config.seed``)."""
    torch.manual_seed(config.seed)
    netG = Generator(nz=config.nz, ngf=config.ngf).to(device)
    netD = Discriminator(ndf=config.ndf).to(device)
    netG.apply(weights_init)
    netD.apply(weights_init)
    return netG, netD


def make_fixed_noise(config: GANConfig, device: torch.device | str = "cpu") -> torch.Tensor:
    """The run's ``fixed_noise`` [n_fixed, nz, 1, 1], drawn on the CPU from the seed (same on every device)."""
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

    History keys (step level): ``loss_D``, ``loss_G``, ``D_x`` (mean D on real), ``D_G_z1`` (mean D on fakes before
    the G update), ``D_G_z2`` (after D's update, during G's). Snapshots go to the checkpoint's ``extra``.
    """
    rt = runtime or Runtime.for_config(config)
    images = train.images.to(rt.device)  # uint8 on the device once; float conversion happens per batch
    total = config.total_steps(len(images), rt.dist.world_size)
    G, D = rt.prepare(netG), rt.prepare(netD)
    optimizerD = torch.optim.Adam(D.parameters(), lr=config.lr, betas=(config.beta1, 0.999))
    optimizerG = torch.optim.Adam(G.parameters(), lr=config.lr, betas=(config.beta1, 0.999))
    fixed_noise = make_fixed_noise(config, rt.device)
    loop = TrainLoop(KIND, config, rt, models={"netG": G, "netD": D},
                     optimizers={"netG": optimizerG, "netD": optimizerD}, total_steps=total, run_dir=run_dir,
                     desc="dcgan")
    if not loop.resume():
        loop.extra["snapshots"] = {"step": [0], "images": _snapshot(G, fixed_noise)[None]}
    every = config.snapshot_interval(total)
    batches = Batches(images, batch_size=config.batch_size, seed=config.seed, rank=rt.dist.rank,
                      world_size=rt.dist.world_size).forever(loop.step)
    # Noise: a function of (seed, rank, step) only, so a resumed run draws exactly what an uninterrupted one
    # would, and DDP ranks draw different noise.
    g_noise = torch.Generator(device=rt.device)
    amp = rt.autocast()
    for step in loop:
        (x,) = next(batches)
        real = rt.images(x)
        b = real.shape[0]
        g_noise.manual_seed(noise_seed(config.seed, rt.dist.rank, step))

        # (1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))
        D.zero_grad(set_to_none=True)
        with amp:
            output = D(real)
        errD_real = gan_loss(output, REAL_LABEL)
        errD_real.backward()
        D_x = output.mean()
        noise = torch.randn(b, config.nz, 1, 1, device=rt.device, generator=g_noise)
        with amp:
            fake = G(noise)
            output = D(fake.detach())
        errD_fake = gan_loss(output, FAKE_LABEL)
        errD_fake.backward()
        D_G_z1 = output.mean()
        errD = errD_real + errD_fake
        optimizerD.step()

        # (2) Update G network: maximize log(D(G(z)))
        G.zero_grad(set_to_none=True)
        with amp:
            output = D(fake)
        errG = gan_loss(output, REAL_LABEL)  # fake labels are real for the generator cost
        errG.backward()
        D_G_z2 = output.mean()
        optimizerG.step()

        loop.log(loss_D=errD, loss_G=errG, D_x=D_x, D_G_z1=D_G_z1, D_G_z2=D_G_z2)
        if TrainLoop.every(step, every) or step + 1 == total:
            snaps = loop.extra["snapshots"]
            if snaps["step"][-1] != step + 1:
                snaps["step"].append(step + 1)
                snaps["images"] = torch.cat([snaps["images"], _snapshot(G, fixed_noise)[None]])
    rt.finish(netG, netD)
    return loop.history


def load_models(payload_or_run_dir: dict | str | Path, device: torch.device | str = "cpu"
                ) -> tuple[Generator, Discriminator, GANConfig]:
    """G and D of a GAN checkpoint (payload or run folder), on ``device``, in eval mode."""
    payload = payload_or_run_dir if isinstance(payload_or_run_dir, dict) else checkpoint.load(payload_or_run_dir)
    if payload.get("kind") != KIND:
        raise ValueError(f"checkpoint kind {payload.get('kind')!r} is not a DCGAN run ({KIND})")
    config = config_from(GANConfig, payload["config"])
    netG = Generator(nz=config.nz, ngf=config.ngf)
    netD = Discriminator(ndf=config.ndf)
    netG.load_state_dict(payload["models"]["netG"])
    netD.load_state_dict(payload["models"]["netD"])
    return netG.to(device).eval(), netD.to(device).eval(), config


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
        return GANResult(netG, netD, payload["history"], payload["extra"]["snapshots"], cfg)

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
                seed: int = 0) -> dict[str, torch.Tensor]:
    """The sets Problem 2.4 compares, as uint8 [n,3,64,64]: DCGAN, VAE (if given), an untrained DCGAN generator
    (the trained one's initialisation, built on ``netG``'s device and sampled with batch statistics) and the first
    ``n`` real training faces. Noise from ``seed``."""
    out = {"dcgan": generate(netG, n, seed)}
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
