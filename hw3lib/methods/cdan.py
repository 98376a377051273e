"""CDAN+E: Long, Cao, Wang & Jordan, "Conditional Adversarial Domain Adaptation", NeurIPS 2018.

A conditional adversarial method: the domain discriminator sees the (randomised) multilinear map of the
features and the classifier's predictions, so source and target are aligned class by class rather than as two
marginals (DANN). "+E" weights each example by ``1 + exp(−H(g))``: confident predictions count more, so uncertain
(likely wrong) target examples do not drag the alignment. Gradient reversal with DANN's λ schedule; the
predictions are detached inside the map, as in the authors' and TLlib's code.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from hw3lib.methods.base import Batch, Losses, Method, Step, accuracy_of, nll, register
from hw3lib.models.cdan import ConditionalDomainDiscriminator
from hw3lib.models.dann import FEATURE_DIM, CNNModel
from hw3lib.models.functional import entropy
from hw3lib.models.grl import dann_lambda, grad_reverse


@dataclass(frozen=True)
class CDANKnobs:
    gamma: float = 10.0     # λ schedule steepness (the paper follows DANN's γ = 10)
    entropy: bool = True    # entropy conditioning: CDAN+E (True, the paper's best) or plain CDAN


def cdan_nets(config) -> dict:
    return {"dann": CNNModel(), "cdan_d": ConditionalDomainDiscriminator(FEATURE_DIM, 10)}


def conditional_adversarial_loss(disc, f: torch.Tensor, g: torch.Tensor, n_source: int, lam: float,
                                 entropy_conditioning: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted BCE of the discriminator on ``[source; target]`` rows (source = 1), through a GRL of
    coefficient ``lam``. ``f`` [N,F] features, ``g`` [N,K] probabilities. Returns (loss, domain accuracy)."""
    g = g.detach()
    logits = disc(grad_reverse(f, lam), g).float()
    labels = torch.zeros_like(logits)
    labels[:n_source] = 1.0
    if entropy_conditioning:
        w = 1.0 + torch.exp(-entropy(g.float()))
        w = w / w.sum() * len(w)
    else:
        w = torch.ones_like(logits)
    loss = F.binary_cross_entropy_with_logits(logits, labels, weight=w)
    return loss, ((logits > 0).float() == labels).float().mean()


def cdan_losses(nets, batch: Batch, step: Step) -> Losses:
    """Source NLL + conditional adversarial loss (separate source/target passes through the network)."""
    k = step.knobs
    net, lam = nets["dann"], dann_lambda(step.progress, k.gamma)
    out_s, out_t = net(batch.x, 0.0), net(batch.xt, 0.0)
    f = torch.cat([out_s.features, out_t.features])
    g = torch.cat([out_s.class_logp, out_t.class_logp]).float().exp()
    adv, dom_acc = conditional_adversarial_loss(nets["cdan_d"], f, g, len(batch.x), lam, k.entropy)
    label_loss = nll(out_s.class_logp, batch.y)
    return Losses(label_loss + adv, {"label_loss": label_loss, "domain_loss": adv, "domain_acc": dom_acc,
                                     "lam": lam, "train_acc": accuracy_of(out_s.class_logp, batch.y)})


def _describe(k: CDANKnobs) -> str:
    weights = "entropy-weighted " if k.entropy else ""
    return (f"NLL(source) + {weights}BCE of a discriminator on the randomised multilinear map (800-d features ⊗ "
            f"10 class probabilities → 1024-d), through a gradient reversal layer, λ = 2/(1+e^(−{k.gamma:g}p)) − 1")


register(Method("cdan", "CDAN+E", "Long et al., Conditional Adversarial Domain Adaptation, NeurIPS 2018", "improved",
                300, describe=_describe, knobs=CDANKnobs, grid={"entropy": (True, False)}, losses=cdan_losses,
                nets=cdan_nets))
