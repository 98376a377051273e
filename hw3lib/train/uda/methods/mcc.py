"""MCC: Jin, Wang, Long & Wang, "Minimum Class Confusion for Versatile Domain Adaptation", ECCV 2020.

A non-adversarial objective: on target predictions (temperature-scaled, T = 2.5), the class-correlation matrix
weighted by certainty (``1 + exp(−H)``) and normalised per class; the loss is its off-diagonal mass — how often
the classifier confuses two classes on the same target image. Minimising it sharpens and separates the target
predictions without a discriminator. Total loss: source NLL + μ·MCC (μ = 1, the paper's and TLlib's default).
"""
from __future__ import annotations

import torch

from hw3lib.train.uda.methods.base import Batch, Losses, Method, Step, accuracy_of, entropy, nll, register

TEMPERATURE, WEIGHT = 2.5, 1.0


def mcc_loss(logits: torch.Tensor, temperature: float = TEMPERATURE) -> torch.Tensor:
    """Minimum class confusion of target logits [N,K] (log-probabilities work too: softmax ignores a per-row
    constant) → scalar in [0, (K−1)/K]."""
    n, k = logits.shape
    p = torch.softmax(logits.float() / temperature, dim=1)
    w = 1.0 + torch.exp(-entropy(p).detach())
    w = (n * w / w.sum()).unsqueeze(1)
    confusion = (p * w).T @ p
    confusion = confusion / confusion.sum(dim=1)
    return (confusion.sum() - confusion.trace()) / k


def mcc_losses(nets, batch: Batch, step: Step) -> Losses:
    net = nets["dann"]
    out_s, out_t = net(batch.x, 0.0), net(batch.xt, 0.0)
    label_loss = nll(out_s.class_logp, batch.y)
    mcc = mcc_loss(out_t.class_logp)
    unused = 0.0 * (out_s.domain_logp.sum() + out_t.domain_logp.sum())  # the domain head: a zero gradient for DDP
    return Losses(label_loss + WEIGHT * mcc + unused, {"label_loss": label_loss, "mcc_loss": mcc,
                                                       "train_acc": accuracy_of(out_s.class_logp, batch.y)})


register(Method("mcc", "MCC", "Jin et al., Minimum Class Confusion for Versatile Domain Adaptation, ECCV 2020",
                losses=mcc_losses))
