"""DANN: Ganin & Lempitsky, "Unsupervised Domain Adaptation by Backpropagation", ICML 2015.

Source label NLL + source and target domain NLL, the domain classifier behind the gradient reversal layer whose
coefficient follows :func:`hw3lib.models.grl.dann_lambda` with ``p = step / total`` (the course report's "zero at
the first step, then up to one").
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from hw3lib.methods.base import Batch, Losses, Method, Step, accuracy_of, nll, register
from hw3lib.models.grl import dann_lambda


@dataclass(frozen=True)
class DANNKnobs:
    gamma: float = 10.0   # steepness of λ_p = 2/(1 + exp(−γp)) − 1 (the paper's γ = 10)


def dann_losses(nets, batch: Batch, step: Step) -> Losses:
    """``label_loss + domain_loss`` of one step; shapes: x [Ns,3,28,28], xt [Nt,3,28,28].

    BatchNorm across domains: separate forward passes (``bn="separate"``, fungtion/DANN and the course report)
    normalise each domain by its own batch statistics, so BN itself removes the first-order (colour/contrast)
    shift and the adversarial game only has to align what is left; one concatenated pass (``bn="joint"``) mixes
    them (docs/NOTES.md has the measurement behind the default and its independent grounds).
    """
    net, lam = nets["dann"], dann_lambda(step.progress, step.knobs.gamma)
    ns, nt = len(batch.x), len(batch.xt)
    if step.config.bn == "joint":
        out = net(torch.cat([batch.x, batch.xt]), lam)
        class_logp, dom_s, dom_t = out.class_logp[:ns], out.domain_logp[:ns], out.domain_logp[ns:]
    else:
        out_s, out_t = net(batch.x, lam), net(batch.xt, lam)
        class_logp, dom_s, dom_t = out_s.class_logp, out_s.domain_logp, out_t.domain_logp
    zeros = torch.zeros(ns, dtype=torch.long, device=batch.x.device)
    ones = torch.ones(nt, dtype=torch.long, device=batch.x.device)
    label_loss = nll(class_logp, batch.y)
    domain_loss = nll(dom_s, zeros) + nll(dom_t, ones)
    domain_acc = ((dom_s.argmax(1) == 0).sum() + (dom_t.argmax(1) == 1).sum()) / (ns + nt)
    return Losses(label_loss + domain_loss, {"label_loss": label_loss, "domain_loss": domain_loss,
                                             "domain_acc": domain_acc, "lam": lam,
                                             "train_acc": accuracy_of(class_logp, batch.y)})


register(Method("dann", "DANN", "Ganin & Lempitsky, ICML 2015", "baseline", 100,
                describe=lambda k: "NLL(source) + domain NLL through a gradient reversal layer, "
                                   f"λ = 2/(1+e^(−{k.gamma:g}p)) − 1",
                knobs=DANNKnobs, losses=dann_losses))
