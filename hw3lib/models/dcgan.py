"""DCGAN generator and discriminator for 64x64 faces (Radford et al., 2016, "Unsupervised Representation
Learning with Deep Convolutional Generative Adversarial Networks", arXiv:1511.06434).

The layer stacks are those of the PyTorch DCGAN tutorial / pytorch/examples ``dcgan``, which the course report
prints for Problem 2.1: an attribute ``main`` holding one ``nn.Sequential``, every convolution without bias,
BatchNorm everywhere except the generator's output and the discriminator's input layers.

Shapes: ``Generator``: z [N, nz, 1, 1] → image [N, 3, 64, 64] in [-1, 1] (Tanh);
``Discriminator``: image [N, 3, 64, 64] → probability "real" [N] (Sigmoid).
"""
from __future__ import annotations

import torch
from torch import nn

from hw3lib.runtime import eval_mode


class Generator(nn.Module):
    """z [N, nz, 1, 1] (or [N, nz]) → [N, 3, 64, 64] in [-1, 1]. Spatial size 1→4→8→16→32→64."""

    def __init__(self, nz: int = 100, ngf: int = 64, nc: int = 3):
        super().__init__()
        self.nz = nz
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False),
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
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() == 2:
            z = z[:, :, None, None]
        return self.main(z)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None,
               device: torch.device | str | None = None) -> torch.Tensor:
        """``n`` faces from z ~ N(0, I) → [n,3,64,64] in [-1, 1], in eval mode (BatchNorm running statistics).

        The noise is drawn on the CPU from ``generator``, so a seed gives the same faces on any device.
        """
        device = torch.device(device) if device is not None else next(self.parameters()).device
        z = torch.randn(n, self.nz, 1, 1, generator=generator).to(device)
        with eval_mode(self):
            return self(z)


class Discriminator(nn.Module):
    """[N, 3, 64, 64] in [-1, 1] → P(real) [N]. Spatial size 64→32→16→8→4→1."""

    def __init__(self, ndf: int = 64, nc: int = 3):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 2),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 4),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 8),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The Sigmoid takes a float32 logit: under bf16 autocast a bf16 probability rounds to 1 once D is confident
        # (spacing 2^-8), and BCE's log(1 - p) then blows up. A no-op in float32.
        *body, sigmoid = self.main
        for layer in body:
            x = layer(x)
        return sigmoid(x.float()).view(-1)


def weights_init(m: nn.Module) -> None:
    """DCGAN initialisation (Radford et al., Sec. 4): conv weights ~ N(0, 0.02); BatchNorm weight ~ N(1, 0.02),
    bias 0. Apply with ``net.apply(weights_init)``.

    The course report says "stdev=0.2"; that copies a typo in the PyTorch tutorial's prose, whose code (and the
    paper) use 0.02.
    """
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)
