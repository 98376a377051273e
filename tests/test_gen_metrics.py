"""Sample-quality metrics in a learned feature space: FD/KID against closed forms, PRDC sanity, the classifier."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from hw3lib.data import FACE_ATTRIBUTES, FaceSet
from hw3lib.eval.gen_metrics import (attribute_rates, frechet_distance, kernel_distance, manifold_distance,
                                     prdc_metrics)


def _feats(n, d=16, seed=0, shift=0.0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g) * scale + shift


def _fd_scipy(x, y):
    x, y = x.double().numpy(), y.double().numpy()
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((x.mean(0) - y.mean(0)) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def test_fd_zero_for_identical_sets():
    a = _feats(300)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def test_fd_grows_with_mean_shift_and_matches_closed_form():
    a = _feats(400, seed=1)
    values = []
    for shift in (0.0, 0.25, 0.5, 1.0, 2.0):
        b = _feats(400, seed=2, shift=shift)
        fd = frechet_distance(a, b)
        assert fd == pytest.approx(_fd_scipy(a, b), rel=1e-6, abs=1e-8)
        values.append(fd)
    assert all(x < y for x, y in zip(values, values[1:]))
    # a pure mean shift adds ||delta||^2 = d * shift^2
    assert values[-1] - values[0] == pytest.approx(16 * 4.0, rel=0.1)


def _kid_hand(x, y):
    """Unbiased MMD^2 with k(a, b) = (a.b / d + 1)^3 (Binkowski et al., 2018)."""
    x, y = x.double(), y.double()
    d = x.shape[1]
    k = lambda a, b: (a @ b.T / d + 1) ** 3  # noqa: E731
    m = x.shape[0]
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    return float((kxx.sum() - kxx.diag().sum()) / (m * (m - 1)) + (kyy.sum() - kyy.diag().sum()) / (m * (m - 1))
                 - 2 * kxy.mean())


def test_kid_matches_hand_formula_and_is_seeded():
    a, b = _feats(200, seed=3), _feats(200, seed=4, shift=0.5)
    mean, std = kernel_distance(a, b, subsets=3, subset_size=200)  # each subset = the whole set
    assert mean == pytest.approx(_kid_hand(a, b), rel=1e-5) and std == pytest.approx(0.0, abs=1e-9)
    assert kernel_distance(a, b, subsets=10, subset_size=50, seed=1) == kernel_distance(a, b, subsets=10,
                                                                                         subset_size=50, seed=1)
    same = kernel_distance(_feats(300, seed=5), _feats(300, seed=6), subsets=20, subset_size=100)[0]
    assert abs(same) < 0.2 * mean


def test_prdc_and_manifold_distance():
    a = _feats(200, seed=7)
    same = prdc_metrics(a, a, nearest_k=3)
    assert same["precision"] == 1 and same["recall"] == 1 and same["coverage"] == 1
    far = prdc_metrics(a, _feats(200, seed=8, shift=10.0), nearest_k=3)
    assert far["precision"] == 0 and far["coverage"] == 0
    d = manifold_distance(a, torch.cat([a[:5], a[:5] + 100]), nearest_k=3)
    assert (d[:5] < 1e-4).all() and (d[5:] > 1).all()


def test_attribute_rates():
    p = torch.tensor([[0.9, 0.1], [0.6, 0.2], [0.2, 0.7], [0.8, 0.4]])
    assert attribute_rates(p).tolist() == [0.75, 0.25]


def _faces(n, seed=0) -> FaceSet:
    g = torch.Generator().manual_seed(seed)
    return FaceSet(torch.randint(0, 256, (n, 3, 64, 64), generator=g, dtype=torch.uint8),
                   torch.randint(0, 2, (n, len(FACE_ATTRIBUTES)), generator=g, dtype=torch.uint8),
                   tuple(f"{i:05d}.png" for i in range(n)), FACE_ATTRIBUTES, "embedded")


def test_attribute_classifier_and_comparison(tmp_path):
    from hw3lib.eval import gan as gan_eval
    from hw3lib.eval.attr_classifier import predict
    from hw3lib.models import build
    from hw3lib.models.attr import AttributeClassifier
    from hw3lib.train.attr import AttrConfig, train_attr_classifier

    model = build("face-attr", width=8)
    assert isinstance(model, AttributeClassifier)
    assert model(torch.zeros(2, 3, 64, 64)).shape == (2, len(FACE_ATTRIBUTES))
    cfg = AttrConfig(batch_size=8, width=8, max_steps=2, log_every=1, device="cpu")
    history = train_attr_classifier(model, _faces(16), cfg, run_dir=tmp_path)
    assert len(history["loss"]) == 2 and (tmp_path / "checkpoint.pt").is_file()
    f, p = predict(model, _faces(5).images)
    assert f.shape == (5, 64) and p.shape == (5, len(FACE_ATTRIBUTES))

    ref = _faces(40, seed=1)
    samples = {"dcgan": _faces(40, seed=2).images, "real_train": _faces(40, seed=3).images}
    comp = gan_eval.compare(model, ref, samples, nearest_k=3)
    assert list(comp.table.index) == [gan_eval.LABELS["dcgan"], gan_eval.LABELS["real_train"]]
    for key in ("fd", "kid", "precision", "recall", "density", "coverage", "attr_gap"):
        assert np.isfinite(comp.metrics["dcgan"][key])
    assert set(comp.attributes["dcgan"]) == set(FACE_ATTRIBUTES)
    text = gan_eval.discussion(comp.metrics, comp.attributes)
    assert "FD" in text
