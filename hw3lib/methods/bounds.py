"""The two bounds of Problem 3: the DANN network trained with the label loss alone, on labelled source images
(lower bound) or on labelled target train images (upper bound, which no adaptation method may use)."""
from __future__ import annotations

from hw3lib.methods.base import Method, label_losses, register

register(Method("source-only", "Source only (lower bound)", "the DANN network on source labels alone", "bound", 0,
                describe=lambda k: "NLL(source) only: the lower bound", losses=label_losses, adapts=False))
register(Method("target-only", "Target only (upper bound)", "the DANN network on target labels (not available "
                "in practice)", "bound", 1000, describe=lambda k: "NLL(target train labels) only: the upper bound, "
                "which needs the labels no adaptation method may read", losses=label_losses, labelled="target",
                adapts=False))
