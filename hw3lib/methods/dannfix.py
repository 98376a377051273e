"""DANN + FixMatch: adversarial feature alignment and confident pseudo-labels on strongly augmented target images.

DANN (Ganin & Lempitsky, ICML 2015) aligns the two domains' feature distributions through a gradient reversal
layer; FixMatch (Sohn et al., NeurIPS 2020) trains on an unlabelled image with the hard pseudo-label of its weakly
augmented view, where that prediction's confidence passes τ, applied to a strongly augmented view. Alignment makes
the target's early predictions — the pseudo-labels' source — better than the source-only network's; self-training
then sharpens the target decision boundaries that marginal alignment leaves blurred. Per step: the source (weak view)
through the network (NLL and domain loss), the target's weak view (domain loss; its detached prediction gives the
pseudo-labels) and its strong view (NLL on the confident pseudo-labels). Loss: NLL(source) + domain NLL through the
GRL (λ = 2/(1+e^(−γp)) − 1, γ = 10) + λ_u · pseudo-label NLL (FixMatch's τ = 0.95, λ_u = 1).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from hw3lib.methods.base import Batch, Losses, Method, Step, accuracy_of, nll, register
from hw3lib.models.grl import dann_lambda


@dataclass(frozen=True)
class DANNFixMatchKnobs:
    gamma: float = 10.0    # DANN's λ steepness (the paper's γ = 10)
    tau: float = 0.95      # FixMatch's confidence threshold for a pseudo-label (the paper's 0.95)
    weight: float = 1.0    # λ_u, the pseudo-label term's weight (FixMatch's 1)


def dannfix_losses(nets, batch: Batch, step: Step) -> Losses:
    k, net = step.knobs, nets["dann"]
    lam = dann_lambda(step.progress, k.gamma)
    out_s, out_t = net(batch.x, lam), net(batch.xt, lam)
    ns, nt = len(batch.x), len(batch.xt)
    zeros = torch.zeros(ns, dtype=torch.long, device=batch.x.device)
    ones = torch.ones(nt, dtype=torch.long, device=batch.x.device)
    domain_loss = nll(out_s.domain_logp, zeros) + nll(out_t.domain_logp, ones)
    conf, labels = out_t.class_logp.detach().float().exp().max(1)
    mask = (conf >= k.tau).float()
    strong = net(batch.xt_strong, 0.0).class_logp
    target_loss = (F.nll_loss(strong.float(), labels, reduction="none") * mask).mean()
    label_loss = nll(out_s.class_logp, batch.y)
    domain_acc = ((out_s.domain_logp.argmax(1) == 0).sum() + (out_t.domain_logp.argmax(1) == 1).sum()) / (ns + nt)
    return Losses(label_loss + domain_loss + k.weight * target_loss,
                  {"label_loss": label_loss, "domain_loss": domain_loss, "domain_acc": domain_acc, "lam": lam,
                   "target_loss": target_loss, "mask_rate": mask.mean(),
                   "train_acc": accuracy_of(out_s.class_logp, batch.y)})


def _describe(k: DANNFixMatchKnobs) -> str:
    return (f"NLL(source) + domain NLL through a gradient reversal layer (λ = 2/(1+e^(−{k.gamma:g}p)) − 1) + "
            f"{k.weight:g} × NLL(strong target view, pseudo-label of the weak view where its confidence ≥ {k.tau:g})")


register(Method("dannfix", "DANN + FixMatch", "Ganin & Lempitsky, ICML 2015 + Sohn et al., FixMatch, NeurIPS 2020",
                "improved", 700, describe=_describe, knobs=DANNFixMatchKnobs, grid={"tau": (0.95, 0.8)},
                losses=dannfix_losses, strong_views=True))
