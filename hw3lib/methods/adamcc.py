"""AdaMatch + MCC: AdaMatch's pseudo-labels on strongly augmented target images, with minimum class confusion on
the weak target view as a regulariser.

AdaMatch (Berthelot et al., ICLR 2022; :mod:`hw3lib.methods.adamatch`) trains the strong view of a target image only
where the distribution-aligned prediction of its weak view is confident (τ × the mean source confidence); the
images below the threshold give no gradient. MCC (Jin et al., ECCV 2020; :mod:`hw3lib.methods.mcc`) is written to be
added to other methods ("versatile": its paper adds it to DANN, CDAN and others as a regulariser) and acts on every
target image, pushing the batch's predictions apart by class. Per step: the source in its weak and strong views (one
pass; NLL on both), the target's weak view (with gradient: the MCC term; detached: the pseudo-labels) and its strong
view. Loss: NLL(source, both views) + μ(p) · pseudo-label NLL + w · MCC(weak target view, T). Knobs: both papers'
values (τ = 0.9, ramp over the first half; T = 2.5, w = 1).
"""
from __future__ import annotations

from dataclasses import dataclass

from hw3lib.methods.adamatch import adamatch_step
from hw3lib.methods.base import Batch, Losses, Method, Step, register
from hw3lib.methods.mcc import mcc_loss


@dataclass(frozen=True)
class AdaMCCKnobs:
    tau: float = 0.9           # AdaMatch's relative confidence threshold (its paper's 0.9)
    ramp: float = 0.5          # share of the run over which the pseudo-label term rises to full weight (AdaMatch's ½)
    temperature: float = 2.5   # MCC's T (its paper's 2.5)
    weight: float = 1.0        # MCC's weight (its paper's 1.0)


def adamcc_losses(nets, batch: Batch, step: Step) -> Losses:
    adamatch, logp_t = adamatch_step(nets["dann"], batch, step, target_grad=True)
    mcc = mcc_loss(logp_t, step.knobs.temperature)
    return Losses(adamatch.total + step.knobs.weight * mcc, {**adamatch.logs, "mcc_loss": mcc})


def _describe(k: AdaMCCKnobs) -> str:
    return ("NLL(source, weak + strong view) + μ(p) × NLL(strong target view, pseudo-label of the distribution-aligned "
            f"weak view where its confidence ≥ {k.tau:g} × the mean source confidence; μ ramps 0 → 1 over the first "
            f"{k.ramp:.0%}) + {k.weight:g} × minimum class confusion of the weak target view (T = {k.temperature:g})")


register(Method("adamatch-mcc", "AdaMatch + MCC", "Berthelot et al., AdaMatch, ICLR 2022 + Jin et al., MCC, ECCV 2020",
                "improved", 550, describe=_describe, knobs=AdaMCCKnobs,
                grid={"tau": (0.9, 0.7), "temperature": (2.5, 1.0)}, losses=adamcc_losses, strong_views=True))
