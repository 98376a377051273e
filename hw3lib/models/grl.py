"""Gradient reversal (Ganin & Lempitsky, "Unsupervised Domain Adaptation by Backpropagation", ICML 2015).

The layer is the identity going forward and multiplies the gradient by ``-coeff`` going backward, so the
feature extractor *maximises* the domain classifier's loss while the domain classifier minimises it.
``coeff`` (the paper's λ) ramps from 0 to 1 with :func:`dann_lambda` so the noisy early domain signal does
not wreck the features before the label classifier has learned anything (TLlib ``modules/grl.py`` style).
"""
from __future__ import annotations

import math

import torch
from torch import nn


class GradientReverseFunction(torch.autograd.Function):
    """``forward(x, coeff) = x``; ``backward(g) = -coeff * g`` (no gradient for ``coeff``)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, coeff: float = 1.0) -> torch.Tensor:  # noqa: D401
        ctx.coeff = float(coeff)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        return grad_output.neg() * ctx.coeff, None


def grad_reverse(x: torch.Tensor, coeff: float = 1.0) -> torch.Tensor:
    """Functional form of :class:`GradientReverseLayer`."""
    return GradientReverseFunction.apply(x, coeff)


class GradientReverseLayer(nn.Module):
    """Module wrapper with a mutable ``coeff`` attribute (set it from the λ schedule each step)."""

    def __init__(self, coeff: float = 1.0):
        super().__init__()
        self.coeff = float(coeff)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return GradientReverseFunction.apply(x, self.coeff)

    def extra_repr(self) -> str:
        return f"coeff={self.coeff:g}"


def dann_lambda(progress: float, gamma: float = 10.0) -> float:
    """The paper's schedule λ_p = 2 / (1 + exp(-γ p)) - 1 for progress ``p`` ∈ [0, 1] (0 → 0, 1 → ≈1)."""
    return 2.0 / (1.0 + math.exp(-gamma * float(progress))) - 1.0


def dann_lr(progress: float, lr0: float = 0.01, alpha: float = 10.0, beta: float = 0.75) -> float:
    """The paper's SGD annealing μ_p = μ0 / (1 + α p)^β (used with ``optimizer="sgd"``)."""
    return lr0 / (1.0 + alpha * float(progress)) ** beta
