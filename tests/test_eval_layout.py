"""Checkpoint scoring in channels_last at the measured batch size gives the NCHW numbers (up to float rounding) and
leaves the model as it was; BatchNorm re-estimation keeps its batch of 500 and its statistics."""
from __future__ import annotations

import copy

import torch

from hw3lib.device import seed_everything
from hw3lib.eval.uda import EVAL_BATCH, predict_logits, target_bn_statistics
from hw3lib.models.dann import CNNModel, DANNClassifier


def _classifier() -> DANNClassifier:
    seed_everything(0)
    clf = DANNClassifier(CNNModel())
    with torch.no_grad():  # BatchNorm statistics away from the identity, as after training
        for m in clf.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return clf.eval()


def test_channels_last_scoring_matches_nchw_and_restores_the_model():
    clf = _classifier()
    images = torch.randint(0, 256, (300, 3, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    weights = {n: p for n, p in clf.named_parameters()}
    ref = predict_logits(clf, images, batch_size=1000, channels_last=False)
    fast = predict_logits(clf, images)  # channels_last at EVAL_BATCH
    assert EVAL_BATCH < len(images) and fast.shape == ref.shape == (300, 10)
    torch.testing.assert_close(fast, ref, rtol=0, atol=1e-5)
    assert torch.equal(fast.argmax(1), ref.argmax(1))
    for n, p in clf.named_parameters():  # the same tensors, in their own layout, unchanged
        assert p is weights[n] and p.is_contiguous()
    assert not clf.training


def test_bn_reestimation_is_the_same_in_both_layouts():
    images = torch.randint(0, 256, (1200, 3, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    stats = []
    for channels_last in (False, True):
        clf = copy.deepcopy(_classifier())
        seed_everything(5)  # training-mode passes: the same dropout masks
        target_bn_statistics(clf, images, channels_last=channels_last)
        stats.append({n: b.clone() for n, b in clf.named_buffers()})
        assert not clf.training and all(p.is_contiguous() for p in clf.parameters())
    for n, b in stats[0].items():  # float32 sums in another order: 2.4e-5 relative measured at 1 thread (1e-5 at 2);
        # a layout bug (statistics of permuted channels, or of other images) is off by 1e-1 and more
        torch.testing.assert_close(stats[1][n].float(), b.float(), rtol=1e-4, atol=1e-5, msg=n)
    assert int(stats[0]["net.feature.f_bn1.num_batches_tracked"]) == 3  # 1200 images in batches of 500
