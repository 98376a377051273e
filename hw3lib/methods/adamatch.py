"""Self-training with augmentation consistency: AdaMatch (Berthelot, Roelofs, Sohn, Carlini & Kurakin, "AdaMatch:
A Unified Approach to Semi-Supervised Learning and Domain Adaptation", ICLR 2022), FixMatch's recipe for UDA.

Per step: the labelled source images in a weak and a strong view (NLL on both); the unlabelled target images in a
weak view (pseudo-labels, no gradient) and a strong view (trained on them). AdaMatch's two additions to FixMatch:
*distribution alignment* — the target predictions are rescaled by (source mean prediction / target mean
prediction) and renormalised, so the pseudo-labels follow the source class balance — and a *relative confidence
threshold* — τ times the mean confidence on the weak source batch (the paper's τ = 0.9). The target term's weight
ramps from 0 to 1 over the first half of the run (μ(t) = ½ − cos(min(π, 2πt)) / 2, the paper's schedule).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from hw3lib.methods.base import Batch, Losses, Method, Step, accuracy_of, nll, register


@dataclass(frozen=True)
class AdaMatchKnobs:
    tau: float = 0.9    # relative confidence threshold (the paper's τ = 0.9)
    ramp: float = 0.5   # share of the run over which the target term's weight rises to 1 (the paper's half)


def pseudo_labels(p_source: torch.Tensor, p_target: torch.Tensor, tau: float = AdaMatchKnobs.tau
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """AdaMatch's pseudo-labels: distribution-aligned target probabilities [N,K] → (labels [N], mask [N] as
    float: 1 where the aligned confidence reaches ``tau`` × the mean source confidence)."""
    aligned = p_target * (p_source.mean(0) / p_target.mean(0).clamp_min(1e-6))
    aligned = aligned / aligned.sum(1, keepdim=True)
    conf, labels = aligned.max(1)
    threshold = tau * p_source.max(1).values.mean()
    return labels, (conf >= threshold).float()


def ramp(progress: float, length: float = AdaMatchKnobs.ramp) -> float:
    """μ(p) = ½ − cos(min(π, πp / length)) / 2: 0 at the start, 1 from ``length`` of the run on (the paper's
    ½ − cos(min(π, 2πp)) / 2 for length ½)."""
    return 0.5 - math.cos(min(math.pi, math.pi * progress / length)) / 2


def adamatch_step(net, batch: Batch, step: Step, *, target_grad: bool = False) -> tuple[Losses, torch.Tensor]:
    """AdaMatch's objective for one step, and the weak target view's class log-probabilities [N,K] (with their
    gradient when ``target_grad``, for a method that adds a term on them, e.g. :mod:`hw3lib.methods.adamcc`)."""
    ns = len(batch.x)
    out_s = net(torch.cat([batch.x, batch.x_strong]), 0.0)  # one domain: one BatchNorm pass
    logp_weak, logp_strong = out_s.class_logp[:ns], out_s.class_logp[ns:]
    with torch.set_grad_enabled(target_grad):
        logp_t = net(batch.xt, 0.0).class_logp
    labels, mask = pseudo_labels(logp_weak.detach().float().exp(), logp_t.detach().float().exp(), step.knobs.tau)
    out_t = net(batch.xt_strong, 0.0)
    target_loss = (F.nll_loss(out_t.class_logp.float(), labels, reduction="none") * mask).mean()
    source_loss = nll(logp_weak, batch.y) + nll(logp_strong, batch.y)
    mu = ramp(step.progress, step.knobs.ramp)
    return Losses(source_loss + mu * target_loss,
                  {"label_loss": source_loss / 2, "target_loss": target_loss, "mask_rate": mask.mean(), "mu": mu,
                   "train_acc": accuracy_of(logp_weak, batch.y)}), logp_t


def adamatch_losses(nets, batch: Batch, step: Step) -> Losses:
    return adamatch_step(nets["dann"], batch, step)[0]


def _describe(k: AdaMatchKnobs) -> str:
    return ("NLL(source, weak + strong view) + μ(p) × NLL(strong target view, pseudo-label) where the weak "
            f"target view's prediction, distribution-aligned, passes {k.tau:g} × the mean source confidence; "
            f"μ ramps 0 → 1 over the first {k.ramp:.0%} of the run; strong view: random affine, contrast/brightness, "
            "inversion (p = .5), 8×8 cutout")


register(Method("adamatch", "AdaMatch (self-training)", "Berthelot et al., AdaMatch, ICLR 2022", "improved", 500,
                describe=_describe, knobs=AdaMatchKnobs, grid={"tau": (0.9, 0.7), "ramp": (0.5, 0.25)}, losses=adamatch_losses,
                strong_views=True))
