"""Small functions on probabilities that losses and validators share.

:func:`realfake_bce` is the discriminator's real/fake binary cross-entropy (Goodfellow et al., 2014, "Generative
Adversarial Nets"; ``nn.BCELoss`` as pytorch/examples ``dcgan`` uses it). The DCGAN loop calls it ``gan_loss``
(:mod:`hw3lib.train.gan`), GTA ``realfake_loss`` (:mod:`hw3lib.methods.gta`, the public code's ``criterion_s``);
both are this one function, which lives here, below both layers.
"""
from __future__ import annotations

import torch
from torch import nn


def entropy(p: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Per-row Shannon entropy (nats) of probabilities [N,K] → [N]."""
    return -(p * (p + eps).log()).sum(1)


def realfake_bce(prob: torch.Tensor, target: float | bool) -> torch.Tensor:
    """Mean BCE of D's probabilities ``prob`` [N] (any shape) against one constant label ``target``: 1 / ``True``
    = real, 0 / ``False`` = fake, or a smoothed value such as 0.9 (one-sided label smoothing, Salimans et al. 2016).

    Always float32 and outside autocast: CUDA autocast refuses ``binary_cross_entropy`` (unsafe in low precision),
    and a bf16 probability near 1 would make ``log(1 - p)`` blow up.
    """
    with torch.autocast(prob.device.type, enabled=False):
        prob = prob.float()
        return nn.functional.binary_cross_entropy(prob, torch.full_like(prob, float(target)))
