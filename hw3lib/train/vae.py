"""Train the VAE of Problem 1 (``hw3 train vae``) and write its 32-face grid (``hw3 generate vae``).

>>> model, history = train_or_load("data", "runs/quick/p1_vae", VAEConfig(epochs=3), device=get_device())
"""
from __future__ import annotations

import argparse
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from hw3lib import checkpoint
from hw3lib.data import FaceSet, load_faces
from hw3lib.data.batches import Batches, in_order
from hw3lib.data.transforms import to_signed
from hw3lib.device import AMP_HELP, AMP_MODES, autocast, get_device, seed_everything
from hw3lib.distributed import SINGLE, DistInfo, unwrap, wrap
from hw3lib.models.vae import VAE, vae_loss
from hw3lib.train.common import TrainLoop, finished_checkpoint

KIND = "vae"
GRID_N, GRID_ROW = 32, 8   # the course's fig1_4: 32 faces, 4 rows of 8


@dataclass
class VAEConfig:
    """Knobs of one VAE run. ``kld_weight`` = 1e-5 as in the seed report (the KL term is summed over 512
    latent dims, the MSE averaged over pixels, so a small weight keeps reconstructions sharp)."""
    epochs: int = 3                # the quick profile (4000 faces, ~2 min on 2 CPU cores); use 30+ for real data
    batch_size: int = 32           # measured on the quick data, 3 epochs: test MSE 0.0151 vs 0.0168 at 64, +18 % time
    lr: float = 1e-3
    kld_weight: float = 1e-5
    latent_dim: int = 512
    seed: int = 0
    max_steps: int | None = None
    ckpt_every: int = 500
    log_every: int = 10
    eval_every_epoch: bool = True
    channels_last: bool = True     # NHWC: same numbers up to float rounding; on 2 AVX2 cores as fast as NCHW once
                                   # the allocator is tuned (1.3x before); tensor-core GPUs prefer it
    compile: bool = False
    amp: str = "auto"              # autocast of the forward pass: "auto" = bf16 on CUDA, float32 on CPU; "bf16"; "off"
    device: str = "auto"


def total_steps(config: VAEConfig, n_train: int, world_size: int = 1) -> int:
    per_epoch = len(Batches(torch.empty(n_train), batch_size=config.batch_size, world_size=world_size))
    steps = config.epochs * per_epoch
    return min(steps, config.max_steps) if config.max_steps is not None else steps


@torch.no_grad()
def evaluate(model: VAE, images: torch.Tensor, *, kld_weight: float = 1e-5, batch_size: int = 256,
             channels_last: bool = False) -> dict[str, float]:
    """Mean MSE ([-1, 1] scale, like the training loss) and mean KLD over ``images`` (uint8), eval mode.

    Uses the posterior sample, as training does, so train and test curves are comparable.
    """
    model = unwrap(model)
    was_training = model.training
    model.eval()
    mse = kld = torch.zeros((), device=images.device)
    for (x,) in in_order(images, batch_size=batch_size):
        x = to_signed(x, channels_last)
        out = model(x)
        l = vae_loss(out, x, kld_weight)
        mse, kld = mse + l.mse * len(x), kld + l.kld * len(x)
    model.train(was_training)
    n = max(1, len(images))
    return {"mse": float(mse) / n, "kld": float(kld) / n}


def train_vae(model: VAE, train: FaceSet, test: FaceSet | None, config: VAEConfig, *,
              device: torch.device, run_dir: str | Path | None = None, dist: DistInfo = SINGLE) -> dict[str, list]:
    """Adam on the negative ELBO (:func:`hw3lib.models.vae.vae_loss`).

    History: ``step``, ``mse``, ``kld``, ``loss`` (means over ``log_every`` steps, MSE on the [-1, 1] scale);
    ``epoch``, ``train_mse``, ``train_kld`` (means over the epoch's steps), ``test_mse``, ``test_kld`` (a
    full pass in eval mode), when ``eval_every_epoch``. ``loop.extra["wall_s"]`` holds the training wall time.
    """
    model = model.to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    net = wrap(model, dist, device)
    # Adam's foreach path is the fastest on CPU and CUDA for ~7M params in 48 tensors.
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, foreach=True)
    train_images = train.images.to(device)
    test_images = test.images.to(device) if test is not None else None
    batches = Batches(train_images, batch_size=config.batch_size, seed=config.seed,
                      rank=dist.rank, world_size=dist.world_size)
    steps_per_epoch = len(batches)
    loop = TrainLoop(KIND, config, models={"vae": model}, optimizers={"vae": opt},
                     total_steps=total_steps(config, len(train_images), dist.world_size), run_dir=run_dir,
                     dist=dist, desc="VAE")
    if not loop.resume():
        seed_everything(config.seed + dist.rank)
    step_fn = torch.compile(net) if config.compile else net
    amp = autocast(device, config.amp)
    it = batches.forever(loop.step)
    t0 = time.perf_counter() - float(loop.extra.get("wall_s", 0.0))
    ep_sum, ep_n = torch.zeros(2, device=device), 0
    for step in loop:
        (x,) = next(it)
        x = to_signed(x, config.channels_last)
        with amp:
            out = step_fn(x)
        losses = vae_loss(out, x, config.kld_weight)
        opt.zero_grad(set_to_none=True)
        losses.loss.backward()
        opt.step()
        loop.log(loss=losses.loss, mse=losses.mse, kld=losses.kld)
        # The epoch's train figures are the means of its steps (free); the test set gets a full eval pass.
        ep_sum = ep_sum + torch.stack([losses.mse.detach(), losses.kld.detach()])
        ep_n += 1
        last = step + 1 == loop.total_steps
        if config.eval_every_epoch and (loop.every(step, steps_per_epoch) or last):
            train_mse, train_kld = (ep_sum / ep_n).tolist()
            ev = {"train_mse": train_mse, "train_kld": train_kld}
            if test_images is not None:
                r = evaluate(model, test_images, kld_weight=config.kld_weight, channels_last=config.channels_last)
                ev.update(test_mse=r["mse"], test_kld=r["kld"])
            loop.log_epoch((step + 1) / steps_per_epoch, **ev)
            ep_sum, ep_n = torch.zeros(2, device=device), 0
        loop.extra["wall_s"] = time.perf_counter() - t0
    # Back to the default layout, so the trained model computes exactly what a reload of its checkpoint does.
    model.eval().to(memory_format=torch.contiguous_format)
    return loop.history


def load_model(run_dir: str | Path, device: torch.device | str = "cpu") -> tuple[VAE, dict[str, Any]]:
    """The VAE stored in a run folder (or checkpoint file), in eval mode, and the checkpoint payload."""
    payload = checkpoint.load(run_dir)
    if payload.get("kind") != KIND:
        raise ValueError(f"{checkpoint.resolve(run_dir)} is a {payload.get('kind')!r} checkpoint, not a VAE one")
    model = VAE(latent_dim=int(payload["config"].get("latent_dim", 512)))
    model.load_state_dict(payload["models"]["vae"])
    return model.to(device).eval(), payload


def train_or_load(data_dir: str | Path, run_dir: str | Path, config: VAEConfig, *,
                  device: torch.device | str = "auto") -> tuple[VAE, dict[str, list]]:
    """Load the faces, then return the finished run in ``run_dir`` if its config matches, else train (or resume)."""
    device = get_device(device)
    done = finished_checkpoint(run_dir, KIND, config)
    if done is not None:
        model, _ = load_model(checkpoint.resolve(run_dir), device)
        return model, done["history"]
    train, test = load_faces(data_dir, "train"), load_faces(data_dir, "test")
    seed_everything(config.seed)
    model = VAE(latent_dim=config.latent_dim)
    history = train_vae(model, train, test, config, device=device, run_dir=run_dir)
    return model.eval(), history


def run_info(run_dir: str | Path) -> dict[str, Any]:
    """``extra`` of a run's checkpoint (e.g. ``wall_s``)."""
    return dict(checkpoint.load(run_dir).get("extra") or {})


@torch.no_grad()
def sample_grid(model: VAE, n: int = GRID_N, seed: int = 0) -> torch.Tensor:
    """``n`` prior samples for a fixed ``seed`` (CPU generator: same faces on any device), [0, 1] floats on CPU."""
    g = torch.Generator().manual_seed(seed)
    return model.sample(n, generator=g).float().cpu().add(1).div(2).clamp(0, 1)


def save_grid(images: torch.Tensor, path: str | Path, nrow: int = GRID_ROW) -> Path:
    """Write [N,3,H,W] [0,1] images as a grid PNG atomically (torchvision ``save_image``)."""
    from torchvision.utils import save_image

    path = Path(path)
    with checkpoint.atomic_path(path) as tmp:
        save_image(images, tmp, nrow=nrow, padding=2, format="png")
    return path


# -- CLI ---------------------------------------------------------------------------------------------
def _cmd_train(args: argparse.Namespace) -> int:
    from hw3lib.distributed import setup, teardown

    fields = {f.name for f in dataclasses.fields(VAEConfig)}
    overrides = {k: v for k, v in vars(args).items() if k in fields and v is not None}
    config = VAEConfig(**overrides)
    info, device = setup(get_device(args.device))
    try:
        if finished_checkpoint(args.out, KIND, config) is not None:
            print(f"{args.out}: finished run with this config already there; nothing to do")
            return 0
        train, test = load_faces(args.data, "train"), load_faces(args.data, "test")
        seed_everything(config.seed)
        model = VAE(latent_dim=config.latent_dim)
        h = train_vae(model, train, test, config, device=device, run_dir=args.out, dist=info)
        if info.is_main:
            tail = f"; test mse {h['test_mse'][-1] / 4:.5f} ([0,1] scale)" if h.get("test_mse") else ""
            print(f"trained VAE for {total_steps(config, len(train), info.world_size)} steps into {args.out}{tail}")
    finally:
        teardown()
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    device = get_device(args.device)
    model, _ = load_model(args.ckpt, device)
    path = save_grid(sample_grid(model, GRID_N, args.seed), args.out)
    print(f"wrote {GRID_N} faces to {path}")
    return 0


def register(groups: dict[str, argparse._SubParsersAction]) -> None:
    desc = "Train the Problem 1 VAE on data/face/train (checkpoint, resume and history in --out)."
    p = groups["train"].add_parser("vae", help="train the VAE (Problem 1)", description=desc)
    p.add_argument("--data", required=True, help="data folder holding face/ (course layout)")
    p.add_argument("--out", required=True, help="run folder for checkpoint.pt")
    p.add_argument("--epochs", type=int, help=f"epochs (default {VAEConfig.epochs})")
    p.add_argument("--batch-size", dest="batch_size", type=int, help=f"batch size (default {VAEConfig.batch_size})")
    p.add_argument("--lr", type=float, help=f"Adam learning rate (default {VAEConfig.lr})")
    p.add_argument("--kld-weight", dest="kld_weight", type=float,
                   help=f"weight of the KL term (default {VAEConfig.kld_weight})")
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument("--amp", choices=AMP_MODES, help=AMP_HELP)
    p.add_argument("--max-steps", dest="max_steps", type=int, help="stop after this many steps (smoke runs)")
    p.set_defaults(func=_cmd_train)

    desc = "Write a grid of 32 VAE faces sampled from N(0, I) (4 rows of 8), deterministic for --seed."
    g = groups["generate"].add_parser("vae", help="sample 32 faces from a trained VAE", description=desc)
    g.add_argument("--ckpt", required=True, help="run folder (or checkpoint.pt) of a VAE run")
    g.add_argument("--out", required=True, help="output PNG, e.g. fig1_4.png")
    g.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    g.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    g.set_defaults(func=_cmd_generate)
