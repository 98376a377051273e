"""Small functions on probabilities that losses and validators share."""
from __future__ import annotations

import torch


def entropy(p: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Per-row Shannon entropy (nats) of probabilities [N,K] → [N]."""
    return -(p * (p + eps).log()).sum(1)
