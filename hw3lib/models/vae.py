"""Vanilla VAE for 64x64 RGB faces (Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014).

The layer layout follows AntixK/PyTorch-VAE ``VanillaVAE`` exactly as printed in the course report
(Problem 1.1): five stride-2 conv blocks 3→32→64→128→256→512 (64 px → 2 px, 512·2·2 = 2048 features),
two linear heads for the posterior mean and log-variance, a linear layer back to 2048 features and five
transposed-conv blocks 512→256→128→64→32→32 (2 px → 64 px), then a 3x3 conv + Tanh.

Images live in [-1, 1] (the Tanh range). Shapes: ``x`` [N,3,64,64]; ``mu``, ``log_var``, ``z`` [N,latent_dim].
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from hw3lib.runtime import eval_mode


class VAEOutput(NamedTuple):
    recon: torch.Tensor     # [N,3,64,64] in [-1, 1]
    mu: torch.Tensor        # [N,latent_dim]
    log_var: torch.Tensor   # [N,latent_dim]


class VAELoss(NamedTuple):
    loss: torch.Tensor      # mse + kld_weight * kld, the quantity minimised
    mse: torch.Tensor       # mean squared error per pixel on the [-1, 1] scale
    kld: torch.Tensor       # KL(q(z|x) || N(0, I)), summed over latent dims, mean over the batch


class VAE(nn.Module):
    """Convolutional VAE (VanillaVAE). ``hidden_dims`` must take 64 px down to 2 px (five entries)."""

    def __init__(self, latent_dim: int = 512, hidden_dims: Sequence[int] = (32, 64, 128, 256, 512),
                 in_channels: int = 3, image_size: int = 64):
        super().__init__()
        hidden_dims = list(hidden_dims)
        self.latent_dim = latent_dim
        self.image_size = image_size
        self.bottom = image_size // 2 ** len(hidden_dims)  # spatial size after the encoder
        if self.bottom < 1 or self.bottom * 2 ** len(hidden_dims) != image_size:
            raise ValueError(f"VAE: {len(hidden_dims)} stride-2 blocks do not divide image size {image_size}")
        self.last_dim = hidden_dims[-1]
        flat = hidden_dims[-1] * self.bottom ** 2

        blocks, c = [], in_channels
        for h in hidden_dims:
            blocks.append(nn.Sequential(nn.Conv2d(c, h, kernel_size=3, stride=2, padding=1),
                                        nn.BatchNorm2d(h), nn.LeakyReLU()))
            c = h
        self.encoder = nn.Sequential(*blocks)
        self.fc_mu = nn.Linear(flat, latent_dim)
        self.fc_var = nn.Linear(flat, latent_dim)

        self.decode_input = nn.Linear(latent_dim, flat)
        rev = hidden_dims[::-1]
        # The last block keeps the channel count (32→32), as in VanillaVAE's final_layer preamble folded in.
        outs = rev[1:] + rev[-1:]
        self.decoder = nn.Sequential(*[
            nn.Sequential(nn.ConvTranspose2d(i, o, kernel_size=3, stride=2, padding=1, output_padding=1),
                          nn.BatchNorm2d(o), nn.LeakyReLU())
            for i, o in zip(rev, outs)])
        self.final_layer = nn.Sequential(nn.Conv2d(outs[-1], in_channels, kernel_size=3, padding=1), nn.Tanh())

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[N,3,64,64] → (mu, log_var), each [N,latent_dim]."""
        h = torch.flatten(self.encoder(x), start_dim=1)
        return self.fc_mu(h), self.fc_var(h)

    @staticmethod
    def reparameterize(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
        """z = mu + sigma * eps, eps ~ N(0, I): sampling that gradients can pass through."""
        std = torch.exp(0.5 * log_var)
        return mu + std * torch.randn_like(std)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """[N,latent_dim] → [N,3,64,64] in [-1, 1]."""
        h = self.decode_input(z).view(-1, self.last_dim, self.bottom, self.bottom)
        return self.final_layer(self.decoder(h))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None,
               device: torch.device | str | None = None) -> torch.Tensor:
        """Decode ``n`` draws from the prior N(0, I) → [N,3,64,64] in [-1, 1] (eval mode for BatchNorm).

        The noise is drawn on the CPU from ``generator`` so a seed gives the same faces on any device.
        """
        device = torch.device(device) if device is not None else next(self.parameters()).device
        z = torch.randn(n, self.latent_dim, generator=generator).to(device)
        with eval_mode(self):
            return self.decode(z)

    def forward(self, x: torch.Tensor) -> VAEOutput:
        mu, log_var = self.encode(x)
        return VAEOutput(self.decode(self.reparameterize(mu, log_var)), mu, log_var)


def kl_divergence(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(log_var)) || N(0, I)) per sample, summed over latent dims → [N]."""
    return -0.5 * torch.sum(1 + log_var - mu.pow(2) - log_var.exp(), dim=1)


def vae_loss(out: VAEOutput, x: torch.Tensor, kld_weight: float = 1e-5) -> VAELoss:
    """Negative ELBO as in VanillaVAE: per-pixel MSE + ``kld_weight`` x batch-mean KL.

    ``x`` is the input batch on the [-1, 1] scale; the MSE is therefore 4x the MSE on the [0, 1] pixel scale.
    """
    # float32 whatever the forward's autocast dtype was (a no-op on float32 tensors)
    mse = F.mse_loss(out.recon.float(), x.float())
    kld = kl_divergence(out.mu.float(), out.log_var.float()).mean()
    return VAELoss(mse + kld_weight * kld, mse, kld)
