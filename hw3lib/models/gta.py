"""Generate To Adapt (GTA) networks for 32x32 digits.

Sankaranarayanan, Balaji, Castillo & Chellappa, "Generate To Adapt: Aligning Domains using Generative
Adversarial Networks", CVPR 2018; layer for layer as the authors' public code
(github.com/yogeshbalaji/Generate_To_Adapt, ``models.py``) with ``ndf = ngf = 64``, ``nz = 512`` and RGB
(3-channel) images, which is what the course report's Problem 4.3 printouts show.

* :class:`_netF` — feature extractor F: image [B,3,32,32] → embedding [B,128] (``2*ndf``).
* :class:`_netC` — label classifier C: embedding [B,128] → class logits [B,10].
* :class:`_netG` — generator G: [one-hot(11) ‖ embedding(128) ‖ noise(512)] = 651 channels at 1x1
  → image [B,3,32,32] in [-1,1] (Tanh). The 11th one-hot slot marks "target" (no label known).
* :class:`_netD` — discriminator D: image [B,3,32,32] → (real/fake probability [B], class logits [B,10]).

The class names keep the public code's leading underscore so ``print(model)`` matches the course report.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from hw3lib.data.transforms import resize, to_gray3

NCLASSES = 10


@dataclass(frozen=True)
class GTAConfig:
    """GTA's knobs, the public code's defaults: the nets' sizes, their inputs and the weights of the game. (The
    learning rate, batch and warm start are the run's shared fields: ``UDAConfig.lr``, ``batch_size``,
    ``warmup_steps``, with the public code's 5e-4 and 100 as GTA's defaults.)"""
    beta1: float = 0.8          # Adam β1
    adv_weight: float = 0.1     # weight of D's losses in F's update
    alpha: float = 0.3          # extra factor on the target adversarial term in F's update
    lr_decay: float = 1e-4      # lr / (1 + lr_decay·step) for D, F, C; 0 = constant
    nz: int = 512               # noise dimension of G's input
    ndf: int = 64               # F/D width (embedding = 2·ndf = 128)
    ngf: int = 64               # G width
    image_size: int = 32        # the networks' input size (28 → 32 bilinear)
    in_mean: float = 0.44       # F's input normalisation (x/255 - in_mean) / in_std: the public main.py's
    in_std: float = 0.19        # Normalize(0.44, 0.19); D and G work in [-1,1] regardless
    gray: bool = False          # luminance images, repeated to 3 channels (the course report's mnistm → svhn)


def prepare(images: torch.Tensor, k: GTAConfig, *, for_d: bool = False) -> torch.Tensor:
    """uint8 [N,3,28,28] → network input float [N,3,S,S]: luminance (repeated to 3 channels) when ``k.gray``,
    bilinear-resized to ``k.image_size`` (32), then normalised as the public code does it: netF's input
    ``(x/255 - in_mean) / in_std`` (``Normalize(0.44, 0.19)``), or with ``for_d`` D's real-image input (and G's
    output range) ``x/127.5 - 1`` in [-1,1]."""
    x = images.float()
    if k.gray:
        x = to_gray3(x)
    x = resize(x, k.image_size).clamp_(0.0, 255.0)
    if for_d:
        return x.div_(127.5).sub_(1.0)
    return x.div_(255.0).sub_(k.in_mean).div_(k.in_std)


def d_range(x: torch.Tensor, k: GTAConfig) -> torch.Tensor:
    """netF input (:func:`prepare`) → the same images in D's [-1,1] (the public code's ``src_inputs_unnorm``)."""
    return (x * k.in_std + k.in_mean - 0.5) * 2.0


def weights_init(m: nn.Module) -> None:
    """The public code's initialisation (``utils.weights_init``): conv N(0, .02), BN N(1, .02), linear N(0, .1)."""
    name = type(m).__name__
    if "Conv" in name:
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif "BatchNorm" in name:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)
    elif "Linear" in name:
        nn.init.normal_(m.weight, 0.0, 0.1)
        nn.init.zeros_(m.bias)


class _netF(nn.Module):  # noqa: N801 (name fixed by the course report's printout)
    """Feature extractor: [B,C,32,32] → [B,2*ndf] (32 →conv5→ 28 →pool→ 14 →conv5→ 10 →pool→ 5 →conv5→ 1)."""

    def __init__(self, in_channels: int = 3, ndf: int = 64):
        super().__init__()
        self.ndf = ndf
        self.feature = nn.Sequential(
            nn.Conv2d(in_channels, ndf, 5, 1, 0),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(ndf, ndf, 5, 1, 0),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(ndf, ndf * 2, 5, 1, 0),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.feature(x).flatten(1)


class _netC(nn.Module):  # noqa: N801
    """Label classifier on F's embedding: [B,2*ndf] → logits [B,nclasses]."""

    def __init__(self, ndf: int = 64, nclasses: int = NCLASSES):
        super().__init__()
        self.main = nn.Sequential(
            nn.Linear(2 * ndf, 2 * ndf),
            nn.ReLU(inplace=True),
            nn.Linear(2 * ndf, nclasses),
        )

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        return self.main(emb.flatten(1))


class _netG(nn.Module):  # noqa: N801
    """Generator: [B, nclasses+1 + 2*ndf + nz] at 1x1 → image [B,out_channels,32,32] in [-1,1].

    1x1 →(k2,s1)→ 2 →(k4,s2,p1)→ 4 → 8 → 16 → 32.
    """

    def __init__(self, nz: int = 512, ngf: int = 64, ndf: int = 64, nclasses: int = NCLASSES,
                 out_channels: int = 3):
        super().__init__()
        self.nz, self.ndim, self.nclasses = nz, 2 * ndf, nclasses
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz + self.ndim + nclasses + 1, ngf * 8, 2, 1, 0, bias=False),
            nn.BatchNorm2d(ngf * 8),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 4),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf, out_channels, 4, 2, 1, bias=False),
            nn.Tanh(),
        )

    @property
    def in_channels(self) -> int:
        return self.nclasses + 1 + self.ndim + self.nz

    def forward(self, onehot: torch.Tensor, emb: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """``onehot`` [B,nclasses+1], ``emb`` [B,2*ndf], ``noise`` [B,nz] (drawn N(0,1) when None).

        Concatenated in the public code's order: (one-hot, embedding), then noise.
        """
        if noise is None:
            noise = torch.randn(emb.shape[0], self.nz, device=emb.device, dtype=emb.dtype)
        z = torch.cat((onehot.flatten(1), emb.flatten(1), noise.flatten(1)), 1)
        return self.main(z[:, :, None, None])


class DOutput(NamedTuple):
    """Discriminator heads: ``realfake`` probability of "real source image" [B]; ``class_logits`` [B,nclasses]."""
    realfake: torch.Tensor
    class_logits: torch.Tensor


class _netD(nn.Module):  # noqa: N801
    """Discriminator with an auxiliary classifier (AC-GAN style): [B,C,32,32] → :class:`DOutput`.

    32 → 16 → 8 → 4 → (MaxPool 4) 1, so the feature is [B,2*ndf].
    """

    def __init__(self, in_channels: int = 3, ndf: int = 64, nclasses: int = NCLASSES):
        super().__init__()
        self.ndf = ndf
        self.feature = nn.Sequential(
            nn.Conv2d(in_channels, ndf, 3, 1, 1),
            nn.BatchNorm2d(ndf),
            nn.LeakyReLU(0.2, inplace=True),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(ndf, ndf * 2, 3, 1, 1),
            nn.BatchNorm2d(ndf * 2),
            nn.LeakyReLU(0.2, inplace=True),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(ndf * 2, ndf * 4, 3, 1, 1),
            nn.BatchNorm2d(ndf * 4),
            nn.LeakyReLU(0.2, inplace=True),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(ndf * 4, ndf * 2, 3, 1, 1),
            nn.BatchNorm2d(ndf * 2),
            nn.LeakyReLU(0.2, inplace=True),
            nn.MaxPool2d(4, 4),
        )
        self.classifier_c = nn.Sequential(nn.Linear(ndf * 2, nclasses))
        self.classifier_s = nn.Sequential(nn.Linear(ndf * 2, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> DOutput:
        # Heads in float32 (tiny; a no-op without autocast): a bf16 Sigmoid rounds to 1 once D is confident
        # (spacing 2^-8) and BCE's log(1 - p) blows up.
        h = self.feature(x).flatten(1)
        with torch.autocast(x.device.type, enabled=False):
            h = h.float()
            return DOutput(self.classifier_s(h).view(-1), self.classifier_c(h))


def onehot(labels: torch.Tensor | None, batch: int, nclasses: int = NCLASSES, *,
           device: torch.device | str | None = None) -> torch.Tensor:
    """G's label code [B, nclasses+1]: the class one-hot for labelled (source) rows; slot ``nclasses``
    ("target") for ``labels=None``, as in the public ``trainer.py``."""
    if labels is None:
        out = torch.zeros(batch, nclasses + 1, device=device)
        out[:, nclasses] = 1.0
        return out
    return nn.functional.one_hot(labels, nclasses + 1).float()


class GTAClassifier(nn.Module):
    """GTA's label path as one classifier of uint8 digits: ``netC(netF(prepare(x)))``.

    ``forward``: uint8 [N,3,28,28] → logits [N,10]; ``features``: → netF's embedding [N,128]."""

    def __init__(self, net_f: nn.Module, net_c: nn.Module, k: GTAConfig):
        super().__init__()
        self.net_f, self.net_c, self.k = net_f, net_c, k

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.net_f(prepare(images, self.k))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net_c(self.features(images))


def build_gta(*, in_channels: int = 3, ndf: int = 64, ngf: int = 64, nz: int = 512,
              nclasses: int = NCLASSES, init: bool = True) -> dict[str, nn.Module]:
    """The four GTA networks ``{"netF", "netC", "netG", "netD"}``, initialised as the public code."""
    nets: dict[str, nn.Module] = {
        "netF": _netF(in_channels, ndf),
        "netC": _netC(ndf, nclasses),
        "netG": _netG(nz, ngf, ndf, nclasses, in_channels),
        "netD": _netD(in_channels, ndf, nclasses),
    }
    if init:
        for net in nets.values():
            net.apply(weights_init)
    return nets


@torch.no_grad()
def generate(nets: dict[str, nn.Module], images: torch.Tensor, labels: torch.Tensor | None, k: GTAConfig, *,
             seed: int = 0) -> torch.Tensor:
    """G's reconstructions [N,3,32,32] in [-1,1] of uint8 ``images``: G(one-hot(label) ‖ F(x) ‖ noise) for
    source images (``labels`` given) or G(target slot ‖ F(x) ‖ noise) (``labels=None``).

    G runs with batch statistics (train-mode BatchNorm, as during training and in the public code's
    visualisations) on a copy, so the nets' running statistics are left untouched. Noise is fixed by ``seed``.
    """
    import copy

    net_f = nets["netF"].eval()
    net_g = copy.deepcopy(nets["netG"]).train()
    x = prepare(images, k)
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(len(x), net_g.nz, generator=g).to(x.device)
    code = onehot(labels.to(x.device) if labels is not None else None, len(x), NCLASSES, device=x.device)
    return net_g(code, net_f(x), noise)
