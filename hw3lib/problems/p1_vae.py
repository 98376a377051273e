"""Problem 1: a convolutional VAE on the 64x64 faces (Kingma & Welling, ICLR 2014), and the face-attribute
classifier whose features are the yardstick of its sample metrics (shared with Problem 2).

Runs: the VAE (``run_dir``) and the attribute classifier (``attr_run_dir``); both configs are built once here
(:func:`configs`) for the plan (:func:`runs`) and the notebook (:func:`train_or_load`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, NamedTuple

from hw3lib.problems import headline as hl
from hw3lib.problems.base import Handin, Params as _Params, PlannedRun, Problem, Where, face_run, register

KEY = "p1_vae"


@dataclass
class Params(_Params):
    """The notebook's parameters cell (``notebooks/p1_vae.ipynb``): the same names and defaults."""
    DATA = "faces"
    run_dir: str = "runs/quick/p1_vae"
    attr_run_dir: str = "runs/quick/p2_attr_classifier"
    epochs: int = 3
    batch_size: int = 32
    lr: float = 0.001
    kld_weight: float = 1e-05
    max_steps: int | None = None
    n_examples: int = 10
    attr_epochs: int = 2
    attr_max_steps: int | None = None
    n_eval: int = 500
    tsne_attribute: str = "Smiling"
    walk_attribute: str = "Smiling"
    explorer_attributes: list = field(default_factory=lambda: ["Smiling", "Male", "Blond_Hair", "Bangs",
                                                               "Heavy_Makeup"])


def vae_config(p: Params):
    from hw3lib.train.vae import VAEConfig

    return VAEConfig(epochs=p.epochs, batch_size=p.batch_size, lr=p.lr, kld_weight=p.kld_weight, seed=p.seed,
                     max_steps=p.max_steps, device=p.device)


def attr_config(p: Any):
    """The face-attribute classifier's config (Problems 1 and 2 both read it: the same parameters there)."""
    from hw3lib.train.attr import AttrConfig

    return AttrConfig(epochs=p.attr_epochs, seed=p.seed, max_steps=p.attr_max_steps, device=p.device)


def runs(p: Params, where: Where) -> list[PlannedRun]:
    from hw3lib.train import attr, vae

    return [face_run(KEY, "vae", vae_config(p), vae.KIND, p.run_dir, where, vae.train_or_load),
            face_run(KEY, "face-attr", attr_config(p), attr.KIND, p.attr_run_dir, where, attr.train_or_load)]


class Runs(NamedTuple):
    vae: Any        # hw3lib.train.vae.VAEResult: (model, history, config)
    attr: Any       # hw3lib.train.attr.AttrResult


def train_or_load(p: Params) -> Runs:
    """Problem 1's runs (those :func:`runs` plans), trained, or loaded when finished."""
    from hw3lib.train import attr, vae

    return Runs(vae.train_or_load(vae_config(p), p.data_dir, p.run_dir),
                attr.train_or_load(attr_config(p), p.data_dir, p.attr_run_dir))


def headline(m: Mapping[str, Any]) -> hl.Lines:
    """The report's first-page lines for this problem's ``metrics.json`` (:mod:`hw3lib.problems.headline`)."""
    mse, base = m["test_mse_mean"], m["baseline_mse"]
    ratio = base / mse if mse > 0 else float("inf")
    return ([f"VAE test MSE {mse:.4f} (decode(μ), [0, 1] pixels)"],
            [f"every test face as the train mean image: {base:.4f} — the VAE's error is "
             + (f"{ratio:.1f}× lower" if ratio >= 1 else f"{1 / ratio:.1f}× higher")])


PROBLEM = register(Problem(KEY, "Problem 1: VAE", 1, Params, runs,
                           Handin("VAE", "faces", "32 faces from the VAE as a 4x8 PNG", kinds=("vae",),
                                  command="vae"),
                           headline=headline))
