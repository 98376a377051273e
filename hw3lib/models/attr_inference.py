"""Predictions of the face-attribute classifier (:class:`hw3lib.models.attr.AttributeClassifier`): the pooled
features that Problem 2's sample metrics are computed in, attribute probabilities, and per-attribute test accuracy.

Metrics computed in these features are named "... in hw3lib's attribute-classifier space", never "FID"
(the network is not Inception-v3). Training lives in :mod:`hw3lib.train.attr`, which keeps the test accuracy in
the run's checkpoint: hence this module sits below training, not in :mod:`hw3lib.eval`.
"""
from __future__ import annotations

import torch

from hw3lib.data import FaceSet
from hw3lib.data.batches import in_order
from hw3lib.data.transforms import to_signed
from hw3lib.models.attr import AttributeClassifier
from hw3lib.runtime import eval_mode


@torch.no_grad()
def predict(model: AttributeClassifier, images: torch.Tensor, batch_size: int = 256
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images [N,3,64,64] → (features float [N,D], attribute probabilities [N,A]) on the CPU."""
    device = next(model.parameters()).device
    feats, probs = [], []
    with eval_mode(model):
        for (x,) in in_order(images, batch_size=batch_size):
            f = model.features(to_signed(x.to(device)))
            feats.append(f.float().cpu())
            probs.append(torch.sigmoid(model.head(f)).float().cpu())
    return torch.cat(feats), torch.cat(probs)


def test_accuracy(model: AttributeClassifier, test: FaceSet) -> dict[str, float]:
    """Accuracy per attribute (probability > 0.5 against the 0/1 label) on ``test``; ``"mean"`` → their mean."""
    _, probs = predict(model, test.images)
    acc = ((probs > 0.5) == test.attrs.bool()).float().mean(0)
    out = {name: float(a) for name, a in zip(test.attr_names, acc)}
    out["mean"] = float(acc.mean())
    return out
