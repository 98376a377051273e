"""Predictions of a trained digit classifier: class scores, labels, accuracy, and the BatchNorm re-estimation on
target images (AdaBN). Training scores its checkpoints with these, and the report's evaluation
(:mod:`hw3lib.eval.uda`, which re-exports them) reads its tables from them, so they live here, below both.

A "classifier" here is any module mapping uint8 digits [N,3,28,28] to class scores [N,10], with a
``features(images)`` method: :class:`hw3lib.models.dann.DANNClassifier` or :class:`hw3lib.models.gta.GTAClassifier`.
"""
from __future__ import annotations

import torch
from torch import nn

from hw3lib.data.batches import in_order
from hw3lib.data.sets import DigitSet
from hw3lib.distributed import unwrap
from hw3lib.runtime import channels_last_mode, eval_mode


def model_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s parameters: where its inputs go."""
    return next(model.parameters()).device


EVAL_BATCH = 128  # images per forward pass when scoring: the fastest measured (benchmarks/RESULTS.md, evaluation)


def _nhwc(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


@torch.no_grad()
def predict_logits(classifier: nn.Module, images: torch.Tensor, *, batch_size: int = EVAL_BATCH,
                   channels_last: bool = True) -> torch.Tensor:
    """Class scores [N,10] for uint8 images [N,3,28,28] (any device), in eval mode, on the classifier's device.
    Computed in channels_last (NHWC: weights for the call, batches) at ``batch_size`` images per forward — the
    fastest layout and batch measured (benchmarks/RESULTS.md); the scores are the NCHW ones up to float rounding."""
    device = model_device(classifier)
    with eval_mode(classifier), channels_last_mode(classifier, enabled=channels_last):
        out = [classifier(_nhwc(x.to(device), channels_last)) for (x,) in in_order(images, batch_size=batch_size)]
    return torch.cat(out) if out else torch.empty(0, 10)


def predict_labels(classifier: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Predicted digits int64 [N] (CPU) for uint8 images [N,3,28,28] (any device)."""
    return predict_logits(classifier, images).argmax(1).cpu()


def accuracy(classifier: nn.Module, ds: DigitSet) -> float:
    """Top-1 accuracy (%) of the classifier on a digit set."""
    if not len(ds):
        return float("nan")
    pred = predict_labels(classifier, ds.images)
    return float((pred == ds.labels.cpu()).double().mean().item() * 100.0)


@torch.no_grad()
def target_bn_statistics(classifier: nn.Module, images: torch.Tensor, *, batch_size: int = 500,
                         channels_last: bool = True) -> None:
    """Re-estimate the BatchNorm running statistics of ``classifier`` on unlabelled uint8 ``images``
    [N,3,28,28] (AdaBN: Li et al., "Revisiting Batch Normalization For Practical Domain Adaptation", 2016).

    Exact averages over ``images`` (cumulative moving average), gathered in training mode as during training;
    weights are untouched and the classifier is left in eval mode. ``batch_size`` stays 500: the averages are
    over the batches' own statistics, so another partition gives other numbers. In channels_last (NHWC).
    """
    net = unwrap(classifier)
    bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    net.train()
    device = model_device(net)
    try:
        with channels_last_mode(net, enabled=channels_last):
            for (x,) in in_order(images, batch_size=batch_size):
                net(_nhwc(x.to(device), channels_last))
    finally:
        for m, mom in zip(bns, momenta):
            m.momentum = mom
        net.eval()
