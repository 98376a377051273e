"""Sample-quality metrics in a learned feature space: FD/KID against closed forms, PRDC sanity, the classifier."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from hw3lib.data import FACE_ATTRIBUTES, FaceSet
from hw3lib.eval.c2st import c2st
from hw3lib.eval.gen_metrics import (attribute_rates, frechet_distance, highfreq_energy, kernel_distance,
                                     manifold_distance, mean_pairwise_distance, prdc_metrics)


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
    from hw3lib.models.attr_inference import predict
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

    # "real_train": more faces of the reference's distribution; "dcgan": faces at a quarter of the brightness,
    # which the classifier's features tell apart
    ref = _faces(100, seed=1)
    samples = {"dcgan": _faces(100, seed=2).images // 4, "real_train": _faces(100, seed=3).images}
    comp = gan_eval.compare(model, ref, samples, nearest_k=3)
    assert list(comp.table.index) == [gan_eval.LABELS["dcgan"], gan_eval.LABELS["real_train"]]
    for key in ("fd", "kid", "precision", "recall", "density", "coverage", "attr_gap"):
        assert np.isfinite(comp.metrics["dcgan"][key])
    assert set(comp.attributes["dcgan"]) == set(FACE_ATTRIBUTES)
    for key in ("c2st", "c2st_low", "c2st_high", "spread", "highfreq_ratio"):
        assert np.isfinite(comp.metrics["dcgan"][key]), key
    same, apart = comp.metrics["real_train"], comp.metrics["dcgan"]
    # one distribution: chance (0.5, inside the 95 % interval); separable: every held-out face told apart
    assert abs(same["c2st"] - 0.5) <= 0.15 and same["c2st_low"] <= 0.5 <= same["c2st_high"], same
    assert apart["c2st"] >= 0.95 and apart["c2st_low"] > 0.5, apart
    assert comp.reference["n"] == 100 and comp.reference["spread"] > 0
    assert "C2ST acc. (0.5 best)" in comp.table.columns and "C2ST 95 % interval" in comp.table.columns


# -- C2ST ---------------------------------------------------------------------------------------------------
def test_c2st_real_against_real_is_chance_and_a_shifted_set_is_told_apart():
    same = c2st(_feats(500, seed=10), _feats(500, seed=11), seed=0)
    assert same.low <= 0.5 <= same.high and abs(same.accuracy - 0.5) < 0.07 and same.p_value > 0.01
    assert same.n_test == 500
    far = c2st(_feats(500, seed=10), _feats(500, seed=12, shift=1.0), seed=0)
    assert far.accuracy > 0.95 and far.low > 0.9 and far.p_value < 1e-10
    assert c2st(_feats(500, seed=10), _feats(500, seed=12, shift=1.0), seed=0) == far  # deterministic per seed


def test_c2st_sees_a_set_that_is_too_narrow():
    """Mean and spread direction unchanged, half the spread (a collapsing generator): the hidden layer finds it."""
    narrow = c2st(_feats(500, seed=13), _feats(500, seed=14, scale=0.5), seed=0)
    assert narrow.low > 0.6


def test_c2st_rejects_tiny_sets():
    with pytest.raises(ValueError, match="at least 4"):
        c2st(_feats(3), _feats(10))


def test_highfreq_energy_and_spread():
    g = torch.Generator().manual_seed(0)
    noise = torch.rand(4, 3, 64, 64, generator=g)
    blurred = torch.nn.functional.avg_pool2d(noise, 3, 1, 1)
    # white noise of variance 1/12: the share of frequencies above 1/4 cycle per pixel (~80 %) of its variance
    assert highfreq_energy(noise).mean() == pytest.approx(0.8 / 12, rel=0.05)
    assert (highfreq_energy(blurred) < 0.1 * highfreq_energy(noise)).all()
    assert highfreq_energy(torch.full((2, 3, 64, 64), 128, dtype=torch.uint8)).abs().max() < 1e-9
    assert highfreq_energy((noise * 255).round().to(torch.uint8)).mean() == pytest.approx(
        float(highfreq_energy(noise).mean()), rel=0.02)  # uint8 is read on the [0, 1] scale
    pts = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]])
    assert mean_pairwise_distance(pts) == pytest.approx((3 + 4 + 5) / 3)


# -- the 2.4 discussion on hand-made numbers ----------------------------------------------------------------
def _m(fd, c2, lo, hi, precision=0.5, recall=0.2, **kw):
    return {"fd": fd, "kid": fd / 100, "kid_std": 0.01, "precision": precision, "recall": recall,
            "density": precision, "coverage": recall, "c2st": c2, "c2st_low": lo, "c2st_high": hi, "spread": 8.0,
            "n": 500, "attr_gap": 0.1, "highfreq_ratio": kw.pop("hf", 1.0), **kw}


def _attributes(keys):
    rates = {"Smiling": 0.5, "Male": 0.4}
    return {"real_test_labels": rates, **{k: {"Smiling": 0.3, "Male": 0.4} for k in keys}}


def _discussion(metrics):
    from hw3lib.eval import gan as gan_eval
    return gan_eval.discussion(metrics, _attributes(metrics), {"spread": 10.0, "n": 500})


def test_discussion_follows_the_numbers_when_the_winner_changes():
    real = _m(1.0, 0.49, 0.45, 0.54, precision=0.97, recall=0.97)
    untrained = _m(60, 1.0, 0.99, 1.0)
    dcgan_wins = _discussion({"dcgan": _m(20, 0.80, 0.76, 0.83, hf=0.9), "vae": _m(60, 1.0, 0.99, 1.0, hf=0.2),
                              "untrained": untrained, "real_train": real})
    assert "By FD, the DCGAN samples are closer" in dcgan_wins
    assert "the DCGAN's samples are harder to tell from real faces than the VAE's" in dcgan_wins
    assert "**Training beats an untrained generator.**" in dcgan_wins and "3.0x lower" in dcgan_wins
    assert "0.49 [0.45–0.54], whose interval contains 0.5" in dcgan_wins
    assert "DCGAN 0.90, VAE 0.20" in dcgan_wins  # fine detail, read from highfreq_ratio
    assert "DCGAN 0.80, VAE 0.80" in dcgan_wins  # spread relative to the real faces' (8 / 10)
    vae_wins = _discussion({"dcgan": _m(70, 1.0, 0.99, 1.0), "vae": _m(30, 0.9, 0.87, 0.93),
                            "untrained": untrained, "real_train": _m(1.0, 0.60, 0.56, 0.64)})
    assert "By FD, the VAE samples are closer" in vae_wins
    assert "the VAE's samples are harder to tell from real faces than the DCGAN's" in vae_wins
    assert "**Training has not beaten an untrained generator.**" in vae_wins and "x lower" not in vae_wins
    # lower FD but a C2ST interval that overlaps the untrained generator's (the quick report's case): said as such
    fd_only = _discussion({"dcgan": _m(33, 0.99, 0.98, 1.0), "vae": _m(70, 1.0, 0.99, 1.0), "untrained": untrained})
    assert "**Training beats an untrained generator by FD, not by C2ST.**" in fd_only and "1.8x lower" in fd_only
    assert "does not contain 0.5" in vae_wins
    tie = _discussion({"dcgan": _m(30, 0.9, 0.86, 0.94), "vae": _m(30.2, 0.91, 0.87, 0.95)})
    assert "By FD, no clear difference" in tie and "equally hard to tell from real faces" in tie
    for text in (dcgan_wins, vae_wins, tie):
        assert "± 0.00" not in text


def test_discussion_reports_the_weight_average_against_the_raw_generator():
    text = _discussion({"dcgan": _m(20, 0.8, 0.76, 0.83, recall=0.3), "dcgan_raw": _m(35, 0.95, 0.93, 0.97, recall=0.1),
                        "vae": _m(60, 1.0, 0.99, 1.0)})
    assert "FD 20 and recall 0.30, the raw G of the same run FD 35 and recall 0.10" in text
    assert "the averaged G's samples are harder to tell from real faces than the raw G's" in text
    assert "Weight average" not in _discussion({"dcgan": _m(20, 0.8, 0.76, 0.83), "vae": _m(60, 1.0, 0.99, 1.0)})


def test_the_comparison_table_shows_each_metric_at_its_own_precision():
    """The table a reader sees rounds (FD to 2 decimals, KID to 4, proportions to 3); metrics.json keeps every digit."""
    from hw3lib.eval.gan import metrics_table

    m = {"fd": 71.503191, "kid": 0.682755, "kid_std": 0.0259691, "precision": 0.0163, "density": 0.00321,
         "recall": 0.0, "coverage": 0.00612, "c2st": 0.99951, "c2st_low": 0.99, "c2st_high": 1.0, "n": 500,
         "attr_gap": 0.322911}
    row = metrics_table({"vae": m}).loc["VAE (Problem 1)"]
    assert (row["FD ↓"], row["KID ↓"], row["precision ↑"], row["C2ST acc. (0.5 best)"]) == (71.5, 0.6828, 0.016, 1.0)
    assert row["attribute gap ↓"] == 0.323 and row["samples"] == 500 and row["C2ST 95 % interval"] == "0.99–1.00"
    assert m["fd"] == 71.503191  # the record is not touched
