"""CDAN's conditional domain discriminator (Long, Cao, Wang & Jordan, "Conditional Adversarial Domain
Adaptation", NeurIPS 2018), as Transfer-Learning-Library's ``ConditionalDomainAdversarialLoss`` builds it.

The discriminator sees the multilinear map of features f [N,F] and class probabilities g [N,K] — their outer
product f ⊗ g, so the domains are aligned per class. When F·K is large (800·10 here) the map is randomised
(the paper's Eq. 6): ``(f Rf) ⊙ (g Rg) / √d`` with fixed Gaussian Rf [F,d], Rg [K,d], d = 1024.
"""
from __future__ import annotations

import math

import torch
from torch import nn


class RandomizedMultilinearMap(nn.Module):
    """[N,F] features × [N,K] probabilities → [N,d]; the random matrices are buffers (saved, never trained)."""

    def __init__(self, features_dim: int, num_classes: int, output_dim: int = 1024):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.register_buffer("Rf", torch.randn(features_dim, output_dim, generator=g))
        self.register_buffer("Rg", torch.randn(num_classes, output_dim, generator=g))
        self.output_dim = output_dim

    def forward(self, f: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return (f @ self.Rf) * (g @ self.Rg) / math.sqrt(self.output_dim)


class ConditionalDomainDiscriminator(nn.Module):
    """Randomised multilinear map → 2-layer MLP → one "is source" logit [N] (TLlib's ``DomainDiscriminator``)."""

    def __init__(self, features_dim: int = 800, num_classes: int = 10, map_dim: int = 1024, hidden: int = 500):
        super().__init__()
        self.map = RandomizedMultilinearMap(features_dim, num_classes, map_dim)
        self.net = nn.Sequential(
            nn.Linear(map_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(True),
            nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ReLU(True),
            nn.Linear(hidden, 1),
        )

    def forward(self, f: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return self.net(self.map(f, g)).view(-1)
