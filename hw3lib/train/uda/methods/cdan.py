"""CDAN+E: Long, Cao, Wang & Jordan, "Conditional Adversarial Domain Adaptation", NeurIPS 2018.

A conditional adversarial method: the domain discriminator sees the (randomised) multilinear map of the
features and the classifier's predictions, so source and target are aligned class by class rather than as two
marginals (DANN). "+E" weights each example by ``1 + exp(−H(g))``: confident predictions count more, so uncertain
(likely wrong) target examples do not drag the alignment. Gradient reversal with DANN's λ schedule; the
predictions are detached inside the map, as in the authors' and TLlib's code.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from hw3lib.models.cdan import ConditionalDomainDiscriminator
from hw3lib.models.dann import CNNModel, FEATURE_DIM
from hw3lib.models.grl import dann_lambda, grad_reverse
from hw3lib.train.uda.methods.base import Batch, Losses, Method, Step, accuracy_of, entropy, nll, register


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
    net, lam = nets["dann"], dann_lambda(step.progress, step.config.gamma)
    out_s, out_t = net(batch.x, 0.0), net(batch.xt, 0.0)
    f = torch.cat([out_s.features, out_t.features])
    g = torch.cat([out_s.class_logp, out_t.class_logp]).float().exp()
    adv, dom_acc = conditional_adversarial_loss(nets["cdan_d"], f, g, len(batch.x), lam)
    label_loss = nll(out_s.class_logp, batch.y)
    unused = 0.0 * (out_s.domain_logp.sum() + out_t.domain_logp.sum())  # DANN's own head: a zero gradient for DDP
    return Losses(label_loss + adv + unused, {"label_loss": label_loss, "domain_loss": adv, "domain_acc": dom_acc,
                                              "lam": lam, "train_acc": accuracy_of(out_s.class_logp, batch.y)})


register(Method("cdan", "CDAN+E", "Long et al., Conditional Adversarial Domain Adaptation, NeurIPS 2018",
                losses=cdan_losses, nets=cdan_nets))
