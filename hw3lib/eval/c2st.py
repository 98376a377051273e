"""Classifier two-sample test (C2ST; Lopez-Paz & Oquab, "Revisiting Classifier Two-Sample Tests", ICLR 2017).

Pool two sets, label them real (1) / generated (0), train a small classifier on one half of each and report its
accuracy on the other, held-out halves. If the sets come from one distribution no classifier beats chance, so the
accuracy is 0.5 up to binomial noise; the further above 0.5, the easier the generated images are to tell from real
ones (1.0: every held-out image told apart).

As in the paper's evaluation of generative models, the classifier works on features of a pretrained network — here
the face-attribute classifier's pooled features, the space FD/KID/PRDC are computed in — and it is the paper's
C2ST-NN: one hidden layer of 20 ReLU units trained with Adam for 100 epochs (scikit-learn ``MLPClassifier``, on
standardised features). Unlike precision or FD it is trained for each pair, so it also finds a difference in
spread that a set's mean and covariance hide (a hidden layer, not a linear probe, is what sees a set that is too
narrow). A few hundred features per set take about a second on a CPU.

The 95 % interval is the Wilson score interval of a binomial proportion, the p-value the one-sided binomial test
of "accuracy > 0.5" (``scipy.stats.binomtest``).
"""
from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
import torch


class C2ST(NamedTuple):
    accuracy: float          # held-out accuracy (0.5 = indistinguishable, 1 = always told apart)
    low: float               # 95 % Wilson interval of the accuracy
    high: float
    n_test: int              # held-out samples (half real, half generated)
    p_value: float           # one-sided binomial test of accuracy > 0.5

    def as_dict(self) -> dict[str, float]:
        return dict(self._asdict())


def _numpy(x) -> np.ndarray:
    return (x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64))


def c2st(real, generated, *, seed: int = 0, hidden: int = 20, epochs: int = 100) -> C2ST:
    """C2ST accuracy of telling ``real`` features [N, D] from ``generated`` features [M, D] (tensors or arrays).

    The first ``min(N, M)`` rows of each set are used, each set split in half at random (``seed``); the classifier
    learns on the two first halves and is scored on the two second halves. Deterministic for a seed.
    """
    from scipy.stats import binomtest
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    a, b = _numpy(real), _numpy(generated)
    n = min(len(a), len(b))
    if n < 4:
        raise ValueError(f"C2ST needs at least 4 samples per set, got {len(a)} real and {len(b)} generated")
    rng = np.random.default_rng(seed)
    ia, ib = rng.permutation(n), rng.permutation(n)
    half = n // 2
    x_train = np.concatenate([a[ia[:half]], b[ib[:half]]])
    y_train = np.r_[np.ones(half), np.zeros(half)]
    x_test = np.concatenate([a[ia[half:]], b[ib[half:]]])
    y_test = np.r_[np.ones(n - half), np.zeros(n - half)]
    clf = make_pipeline(StandardScaler(), MLPClassifier((hidden,), max_iter=epochs, random_state=seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a fixed budget of epochs, as in the paper
        clf.fit(x_train, y_train)
    correct = int((clf.predict(x_test) == y_test).sum())
    total = len(y_test)
    ci = binomtest(correct, total, 0.5).proportion_ci(confidence_level=0.95, method="wilson")
    p = binomtest(correct, total, 0.5, alternative="greater").pvalue
    return C2ST(correct / total, float(ci.low), float(ci.high), total, float(p))


def interval_text(m: dict) -> str:
    """``"0.93 [0.90–0.95]"`` from a metrics dict with ``c2st``, ``c2st_low``, ``c2st_high``."""
    return f"{m['c2st']:.2f} [{m['c2st_low']:.2f}–{m['c2st_high']:.2f}]"


def order(a: dict, b: dict) -> int:
    """-1 when ``a``'s C2ST interval lies wholly below ``b``'s (``a`` is harder to tell from real), 1 when wholly
    above, 0 when the 95 % intervals overlap (no difference at this sample size)."""
    if a["c2st_high"] < b["c2st_low"]:
        return -1
    if a["c2st_low"] > b["c2st_high"]:
        return 1
    return 0
