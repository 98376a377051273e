"""The two bounds of Problem 3: the DANN network trained with the label loss alone, on labelled source images
(lower bound) or on labelled target train images (upper bound, which no adaptation method may use)."""
from __future__ import annotations

from hw3lib.train.uda.methods.base import Batch, Losses, Method, Step, accuracy_of, nll, register


def label_losses(nets, batch: Batch, step: Step) -> Losses:
    """NLL of the labelled batch. The domain head runs too (λ = 0) so DDP sees a gradient, zero, for it."""
    out = nets["dann"](batch.x, 0.0)
    loss = nll(out.class_logp, batch.y)
    total = loss + 0.0 * out.domain_logp.sum() if step.runtime.dist.enabled else loss
    return Losses(total, {"label_loss": loss, "train_acc": accuracy_of(out.class_logp, batch.y)})


register(Method("source-only", "Source only (lower bound)", "the DANN network on source labels alone",
                losses=label_losses, adapts=False))
register(Method("target-only", "Target only (upper bound)", "the DANN network on target labels (not available "
                "in practice)", losses=label_losses, labelled="target", adapts=False))
