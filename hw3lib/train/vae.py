"""Train the VAE of Problem 1 (``hw3 train vae``) and write its 32-face grid (``hw3 generate vae``).

>>> model, history, config = train_or_load(VAEConfig(epochs=3), "data", "runs/quick/p1_vae")
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch

from hw3lib import checkpoint
from hw3lib.data import FaceSet, load_faces
from hw3lib.data.batches import Batches, in_order
from hw3lib.data.images import save_grid
from hw3lib.device import AMP_HELP, AMP_MODES, get_device, seed_everything
from hw3lib.distributed import unwrap
from hw3lib.models.vae import VAE, vae_loss
from hw3lib.runtime import Runtime, eval_mode, launch
from hw3lib.train import configs, folders
from hw3lib.train.configs import config_from, config_from_args
from hw3lib.train.folders import finished_checkpoint
from hw3lib.train.loop import TrainLoop, epoch_steps

KIND = "vae"
GRID_N, GRID_ROW = 32, 8   # the course's fig1_4: 32 faces, 4 rows of 8


@dataclass
class VAEConfig:
    """Knobs of one VAE run. ``kld_weight`` = 1e-5 as in the course report (the KL term is summed over 512
    latent dims, the MSE averaged over pixels, so a small weight keeps reconstructions sharp). Timings and the
    batch-size comparison behind the defaults: ``docs/NOTES.md``."""
    epochs: int = 3                # the quick profile's budget; use 30+ for real data
    batch_size: int = 32           # a lower test MSE than 64 in the same epochs on the quick data
    lr: float = 1e-3
    kld_weight: float = 1e-5
    latent_dim: int = 512
    seed: int = 0
    max_steps: int | None = None
    ckpt_every: int = 500
    log_every: int = 10
    eval_every_epoch: bool = True
    channels_last: bool = True     # NHWC: same numbers up to float rounding; tensor-core GPUs prefer it
    compile: bool = False
    amp: str = "auto"              # autocast of the forward pass: "auto" = bf16 on CUDA, float32 on CPU; "bf16"; "off"
    device: str = "auto"           # used when no runtime is given
    data_id: str = ""              # the data trained on (hw3lib.data.data_id), set by train_or_load

    def total_steps(self, n_train: int, world_size: int = 1) -> int:
        return epoch_steps(self.epochs, n_train, self.batch_size, world_size, self.max_steps)


class VAEResult(NamedTuple):
    model: VAE               # eval mode, on the runtime's device
    history: dict
    config: VAEConfig        # the run's (a loaded run: the checkpoint's)


@torch.no_grad()
def evaluate(model: VAE, images: torch.Tensor, runtime: Runtime, *, kld_weight: float = 1e-5,
             batch_size: int = 256) -> dict[str, float]:
    """Mean MSE ([-1, 1] scale, like the training loss) and mean KLD over ``images`` (uint8), eval mode.

    Uses the posterior sample, as training does, so train and test curves are comparable.
    """
    model = unwrap(model)
    mse = kld = torch.zeros((), device=images.device)
    with eval_mode(model):
        for (x,) in in_order(images, batch_size=batch_size):
            x = runtime.images(x)
            l = vae_loss(model(x), x, kld_weight)
            mse, kld = mse + l.mse * len(x), kld + l.kld * len(x)
    n = max(1, len(images))
    return {"mse": float(mse) / n, "kld": float(kld) / n}


def train_vae(model: VAE, train: FaceSet, test: FaceSet | None, config: VAEConfig, *,
              runtime: Runtime | None = None, run_dir: str | Path | None = None) -> dict[str, list]:
    """Adam on the negative ELBO (:func:`hw3lib.models.vae.vae_loss`); ``runtime`` defaults to the config's.

    History: ``step``, ``mse``, ``kld``, ``loss`` (means over ``log_every`` steps, MSE on the [-1, 1] scale);
    ``epoch``, ``train_mse``, ``train_kld`` (means over the epoch's steps), ``test_mse``, ``test_kld`` (a
    full pass in eval mode), when ``eval_every_epoch``. ``extra["wall_s"]`` (TrainLoop) holds the training wall time.
    ``model`` ends in eval mode in the default memory layout (what a reload of the checkpoint gives).
    """
    rt = runtime or Runtime.for_config(config)
    net = rt.prepare(model)
    # foreach: one multi-tensor kernel per Adam update over the 48 parameter tensors (docs/NOTES.md).
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, foreach=True)
    train_images = train.images.to(rt.device)
    test_images = test.images.to(rt.device) if test is not None else None
    batches = Batches(train_images, batch_size=config.batch_size, seed=config.seed,
                      rank=rt.dist.rank, world_size=rt.dist.world_size)
    steps_per_epoch = len(batches)
    loop = TrainLoop(KIND, config, rt, models={"vae": model}, optimizers={"vae": opt},
                     total_steps=config.total_steps(len(train_images), rt.dist.world_size), run_dir=run_dir,
                     desc="VAE")
    if not loop.resume():
        seed_everything(config.seed + rt.dist.rank)
    step_fn = torch.compile(net) if config.compile else net
    amp = rt.autocast()
    it = batches.forever(loop.step)
    ep_sum, ep_n = torch.zeros(2, device=rt.device), 0
    for step in loop:
        (x,) = next(it)
        x = rt.images(x)
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
                r = evaluate(model, test_images, rt, kld_weight=config.kld_weight)
                ev.update(test_mse=r["mse"], test_kld=r["kld"])
            loop.log_epoch((step + 1) / steps_per_epoch, **ev)
            ep_sum, ep_n = torch.zeros(2, device=rt.device), 0
    rt.finish(model)
    return loop.history


def load_model(payload_or_run_dir: dict | str | Path, device: torch.device | str = "cpu") -> tuple[VAE, VAEConfig]:
    """The VAE of a checkpoint (payload, run folder or file), on ``device``, in eval mode, and its config."""
    payload = payload_or_run_dir if isinstance(payload_or_run_dir, dict) else checkpoint.load(payload_or_run_dir)
    if payload.get("kind") != KIND:
        raise ValueError(f"checkpoint kind {payload.get('kind')!r} is not a VAE run ({KIND})")
    config = config_from(VAEConfig, payload["config"])
    model = VAE(latent_dim=config.latent_dim)
    model.load_state_dict(payload["models"]["vae"])
    return model.to(device).eval(), config


def train_or_load(config: VAEConfig, data_dir: str | Path, run_dir: str | Path | None, *,
                  runtime: Runtime | None = None) -> VAEResult:
    """The finished run in ``run_dir`` if its config matches, else load the faces and train (or resume) there."""
    rt = runtime or Runtime.for_config(config)
    config = configs.bind_data(config, data_dir, ("face",))
    run_dir = folders.config_folder(run_dir, KIND, config)  # another config's run is never overwritten

    def train() -> VAEResult:
        train_set, test_set = load_faces(data_dir, "train"), load_faces(data_dir, "test")
        seed_everything(config.seed)
        model = VAE(latent_dim=config.latent_dim)
        history = train_vae(model, train_set, test_set, config, runtime=rt, run_dir=run_dir)
        return VAEResult(model, history, config)

    def load(payload: dict) -> VAEResult:
        model, cfg = load_model(payload, rt.device)
        return VAEResult(model, payload["history"], cfg)

    return folders.train_or_load(KIND, config, run_dir, train=train, load=load)


def finished_or_train(config: VAEConfig, data_dir: str | Path, run_dir: str | Path, *,
                      runtime: Runtime | None = None) -> VAEResult:
    """The finished VAE run in ``run_dir`` whatever its config (Problem 2 compares with Problem 1's model as it
    is), else :func:`train_or_load` with ``config``. ``config.device`` stays the caller's."""
    if (found := folders.finished_config(run_dir, KIND)) is not None:
        config = config_from(VAEConfig, found, device=config.device)
    return train_or_load(config, data_dir, run_dir, runtime=runtime)


def run_info(run_dir: str | Path) -> dict[str, Any]:
    """``extra`` of a run's checkpoint (e.g. ``wall_s``)."""
    return dict(checkpoint.load(run_dir).get("extra") or {})


@torch.no_grad()
def sample_grid(model: VAE, n: int = GRID_N, seed: int = 0) -> torch.Tensor:
    """``n`` prior samples for a fixed ``seed`` (CPU generator: same faces on any device), [0, 1] floats on CPU."""
    g = torch.Generator().manual_seed(seed)
    return model.sample(n, generator=g).float().cpu().add(1).div(2).clamp(0, 1)


# -- CLI ---------------------------------------------------------------------------------------------
def _cmd_train(args: argparse.Namespace) -> int:
    config = configs.bind_data(config_from_args(VAEConfig, args), args.data, ("face",))
    if finished_checkpoint(args.out, KIND, config) is not None:
        print(f"{args.out}: finished run with this config already there; nothing to do")
        return 0
    with launch(config) as rt:
        train, test = load_faces(args.data, "train"), load_faces(args.data, "test")
        seed_everything(config.seed)
        h = train_vae(VAE(latent_dim=config.latent_dim), train, test, config, runtime=rt, run_dir=args.out)
        if rt.is_main:
            tail = f"; test mse {h['test_mse'][-1] / 4:.5f} ([0,1] scale)" if h.get("test_mse") else ""
            print(f"trained VAE for {config.total_steps(len(train), rt.dist.world_size)} steps into {args.out}{tail}")
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    model, _ = load_model(args.ckpt, get_device(args.device))
    path = save_grid(sample_grid(model, GRID_N, args.seed), args.out, nrow=GRID_ROW)
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
