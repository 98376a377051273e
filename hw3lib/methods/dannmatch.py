"""DANN + AdaMatch: adversarial feature alignment and AdaMatch's distribution-aligned, relatively thresholded
pseudo-labels on strongly augmented target images.

DANN (Ganin & Lempitsky, ICML 2015) aligns the two domains' feature distributions through a gradient reversal
layer; AdaMatch (Berthelot et al., ICLR 2022; :mod:`hw3lib.methods.adamatch`) trains the strong view of each target
image on the pseudo-label of its weak view after *distribution alignment* (target predictions rescaled to the source
class balance) where its confidence passes τ × the mean confidence on the weak source batch, the target term ramping
in over the first half of the run. Alignment gives the pseudo-labels a better start than the source-only network's;
self-training then sharpens the target decision boundaries that marginal alignment leaves blurred. Per step: the
source in its weak and strong views (one pass; NLL on both, the weak view's features into the domain classifier),
the target's weak view (domain loss; its detached prediction gives the pseudo-labels) and its strong view. Loss:
NLL(source, both views) + domain NLL through the GRL (γ = 10) + μ(p) · pseudo-label NLL (τ = 0.9, ramp over the
first half: both papers' values).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from hw3lib.methods.adamatch import pseudo_labels, ramp
from hw3lib.methods.base import Batch, Losses, Method, Step, accuracy_of, nll, register
from hw3lib.models.grl import dann_lambda


@dataclass(frozen=True)
class DANNAdaMatchKnobs:
    gamma: float = 10.0    # DANN's λ steepness (the paper's γ = 10)
    tau: float = 0.9       # AdaMatch's relative confidence threshold (its paper's 0.9)
    ramp: float = 0.5      # share of the run over which the pseudo-label term rises to full weight (AdaMatch's ½)


def dannmatch_losses(nets, batch: Batch, step: Step) -> Losses:
    k, net = step.knobs, nets["dann"]
    lam = dann_lambda(step.progress, k.gamma)
    ns, nt = len(batch.x), len(batch.xt)
    out_s = net(torch.cat([batch.x, batch.x_strong]), lam)  # one domain: one BatchNorm pass
    logp_weak, logp_strong = out_s.class_logp[:ns], out_s.class_logp[ns:]
    out_t = net(batch.xt, lam)
    labels, mask = pseudo_labels(logp_weak.detach().float().exp(), out_t.class_logp.detach().float().exp(), k.tau)
    strong = net(batch.xt_strong, 0.0).class_logp
    target_loss = (F.nll_loss(strong.float(), labels, reduction="none") * mask).mean()
    dom_s = out_s.domain_logp[:ns]
    zeros = torch.zeros(ns, dtype=torch.long, device=batch.x.device)
    ones = torch.ones(nt, dtype=torch.long, device=batch.x.device)
    domain_loss = nll(dom_s, zeros) + nll(out_t.domain_logp, ones)
    domain_acc = ((dom_s.argmax(1) == 0).sum() + (out_t.domain_logp.argmax(1) == 1).sum()) / (ns + nt)
    source_loss = nll(logp_weak, batch.y) + nll(logp_strong, batch.y)
    mu = ramp(step.progress, k.ramp)
    return Losses(source_loss + domain_loss + mu * target_loss,
                  {"label_loss": source_loss / 2, "domain_loss": domain_loss, "domain_acc": domain_acc, "lam": lam,
                   "target_loss": target_loss, "mask_rate": mask.mean(), "mu": mu,
                   "train_acc": accuracy_of(logp_weak, batch.y)})


def _describe(k: DANNAdaMatchKnobs) -> str:
    return (f"NLL(source, weak + strong view) + domain NLL through a gradient reversal layer (λ = 2/(1+e^(−{k.gamma:g}p))"
            f" − 1) + μ(p) × NLL(strong target view, pseudo-label of the distribution-aligned weak view where its "
            f"confidence ≥ {k.tau:g} × the mean source confidence); μ ramps 0 → 1 over the first {k.ramp:.0%}")


register(Method("dann-adamatch", "DANN + AdaMatch", "Ganin & Lempitsky, ICML 2015 + Berthelot et al., AdaMatch, "
                "ICLR 2022", "improved", 750, describe=_describe, knobs=DANNAdaMatchKnobs,
                grid={"tau": (0.9, 0.7), "ramp": (0.5, 0.25)}, losses=dannmatch_losses, strong_views=True))
