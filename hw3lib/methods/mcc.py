"""MCC: Jin, Wang, Long & Wang, "Minimum Class Confusion for Versatile Domain Adaptation", ECCV 2020.

A non-adversarial objective: on target predictions (temperature-scaled), the class-correlation matrix weighted by
certainty (``1 + exp(−H)``) and normalised per class; the loss is its off-diagonal mass — how often the classifier
confuses two classes on the same target image. Minimising it sharpens and separates the target predictions
without a discriminator. Total loss: source NLL + μ·MCC (the paper's T = 2.5 and μ = 1, also TLlib's defaults).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from hw3lib.methods.base import Batch, Losses, Method, Step, accuracy_of, nll, register
from hw3lib.models.functional import entropy


@dataclass(frozen=True)
class MCCKnobs:
    temperature: float = 2.5   # T of the probability rescaling (the paper's 2.5)
    weight: float = 1.0        # μ, the MCC term's weight (the paper's 1.0)


def mcc_loss(logits: torch.Tensor, temperature: float = MCCKnobs.temperature) -> torch.Tensor:
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
    net, k = nets["dann"], step.knobs
    out_s, out_t = net(batch.x, 0.0), net(batch.xt, 0.0)
    label_loss = nll(out_s.class_logp, batch.y)
    mcc = mcc_loss(out_t.class_logp, k.temperature)
    return Losses(label_loss + k.weight * mcc, {"label_loss": label_loss, "mcc_loss": mcc,
                                                "train_acc": accuracy_of(out_s.class_logp, batch.y)})


register(Method("mcc", "MCC", "Jin et al., Minimum Class Confusion for Versatile Domain Adaptation, ECCV 2020",
                "improved", 400,
                describe=lambda k: f"NLL(source) + {k.weight:g} × minimum class confusion of the target predictions "
                                   f"(T = {k.temperature:g})",
                knobs=MCCKnobs, grid={"temperature": (2.5, 1.0)}, losses=mcc_losses))
