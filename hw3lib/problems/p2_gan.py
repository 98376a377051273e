"""Problem 2: a DCGAN on the 64x64 faces (Radford et al., ICLR 2016), compared with Problem 1's VAE in the feature
space of the face-attribute classifier.

Runs: the DCGAN (``run_dir``), the attribute classifier (``attr_run_dir``, Problem 1's config) and — when Problem 1
is not in the report and no finished VAE is in ``vae_run_dir`` — a VAE to compare with.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, NamedTuple

from hw3lib.problems import p1_vae
from hw3lib.problems import headline as hl
from hw3lib.problems.base import Handin, Params as _Params, PlannedRun, Problem, Where, face_run, register

KEY = "p2_gan"


@dataclass
class Params(_Params):
    """The notebook's parameters cell (``notebooks/p2_gan.ipynb``): the same names and defaults."""
    DATA = "faces"
    run_dir: str = "runs/quick/p2_gan"
    attr_run_dir: str = "runs/quick/p2_attr_classifier"
    vae_run_dir: str = "runs/quick/p1_vae"
    epochs: int = 5
    batch_size: int = 32
    ngf: int = 32
    ndf: int = 32
    lr: float = 8e-4
    lr_d: float = 4e-4
    max_steps: int | None = None
    attr_epochs: int = 2
    attr_max_steps: int | None = None
    vae_max_steps: int | None = None
    n_eval: int = 500
    nearest_k: int = 5
    explore_samples: int = 6


def gan_config(p: Params):
    from hw3lib.train.gan import GANConfig

    return GANConfig(epochs=p.epochs, batch_size=p.batch_size, ngf=p.ngf, ndf=p.ndf, lr=p.lr, lr_d=p.lr_d,
                     seed=p.seed, max_steps=p.max_steps, device=p.device)


def vae_config(p: Params):
    """The VAE Problem 2 trains when no finished one is there: the VAE's defaults, this problem's seed and cap."""
    from hw3lib.train.vae import VAEConfig

    return VAEConfig(seed=p.seed, max_steps=p.vae_max_steps, device=p.device)


def runs(p: Params, where: Where) -> list[PlannedRun]:
    from hw3lib.train import attr, gan, vae
    from hw3lib.train.folders import finished_config

    out = [face_run(KEY, "gan", gan_config(p), gan.KIND, p.run_dir, where, gan.train_or_load),
           face_run(KEY, "face-attr", p1_vae.attr_config(p), attr.KIND, p.attr_run_dir, where, attr.train_or_load)]
    # any finished VAE is compared with (vae.finished_or_train); trained here when Problem 1 is not in the report
    if p1_vae.KEY not in where.selected and finished_config(p.vae_run_dir, vae.KIND) is None:
        out.append(face_run(KEY, "vae", vae_config(p), vae.KIND, p.vae_run_dir, where, vae.train_or_load))
    return out


class Runs(NamedTuple):
    gan: Any        # hw3lib.train.gan.GANResult
    attr: Any       # hw3lib.train.attr.AttrResult
    vae: Any        # hw3lib.train.vae.VAEResult: Problem 1's finished VAE, else this problem's


def train_or_load(p: Params) -> Runs:
    """Problem 2's runs (those :func:`runs` plans), trained, or loaded when finished."""
    from hw3lib.train import attr, gan, vae

    return Runs(gan.train_or_load(gan_config(p), p.data_dir, p.run_dir),
                attr.train_or_load(p1_vae.attr_config(p), p.data_dir, p.attr_run_dir),
                vae.finished_or_train(vae_config(p), p.data_dir, p.vae_run_dir))


def headline(m: Mapping[str, Any]) -> hl.Lines:
    """The report's first-page lines for this problem's ``metrics.json`` (:mod:`hw3lib.problems.headline`)."""
    from hw3lib.eval.gan import _fmt

    s = m["samples"]

    def line(name: str, key: str) -> str:
        x = s[key]
        return f"{name}: FD {_fmt(x['fd'])}, recall {x['recall']:.2f}, C2ST {x['c2st']:.2f}"
    ref = [line(name, key) for name, key in (("VAE (Problem 1)", "vae"), ("untrained G", "untrained")) if key in s]
    return ([line("DCGAN", "dcgan"), "FD ↓, recall ↑, C2ST 0.5 = indistinguishable"],
            ref or ["no VAE or untrained generator in this run"])


PROBLEM = register(Problem(KEY, "Problem 2: GAN", 2, Params, runs,
                           Handin("DCGAN", "faces", "32 faces from the DCGAN", kinds=("gan",), command="gan"),
                           headline=headline))
