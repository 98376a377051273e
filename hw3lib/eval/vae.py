"""Numbers for Problem 1: reconstruction errors, the mean-image baseline, latent means, t-SNE, a linear
gender probe, attribute directions, the metrics file and the discussion paragraph.

All MSEs here are on the [0, 1] pixel scale (the training loss works on [-1, 1], i.e. 4x larger).
"""
from __future__ import annotations

import warnings
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from hw3lib.data import FaceSet
from hw3lib.data.batches import in_order
from hw3lib.data.transforms import to_signed, to_unit
from hw3lib.models.vae import VAE


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def reconstruct(model: VAE, images: torch.Tensor, batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic reconstructions decode(mu(x)) of uint8 ``images`` → (recon [N,3,64,64] in [0, 1] on CPU,
    per-image MSE [N] on the [0, 1] scale)."""
    model.eval()
    dev = _device(model)
    recons, errs = [], []
    for (x,) in in_order(images, batch_size=batch_size):
        x = x.to(dev)
        mu, _ = model.encode(to_signed(x))
        r = to_unit(model.decode(mu)).float()
        errs.append((r - x.float() / 255).pow(2).flatten(1).mean(1).cpu())
        recons.append(r.cpu())
    return torch.cat(recons), torch.cat(errs)


def mean_image_baseline(train: FaceSet, test: FaceSet) -> float:
    """MSE ([0, 1] scale) of reconstructing every test image as the training set's mean image."""
    mean = train.images.float().div(255).mean(0)
    return float((test.images.float().div(255) - mean).pow(2).mean())


def reconstruction_table(names: Sequence[str], mses: Sequence[float]) -> pd.DataFrame:
    """The seed report's table: one ``MSE`` row under the test images' names, in two blocks of five
    (rows ``MSE (1-5)`` and ``MSE (6-10)`` with columns 1..5) when there are ten."""
    mses = [float(v) for v in mses]
    if len(mses) == 10:
        df = pd.DataFrame([mses[:5], mses[5:]], index=["MSE (images 1-5)", "MSE (images 6-10)"],
                          columns=[f"{i}" for i in range(1, 6)])
    else:
        df = pd.DataFrame([mses], index=["MSE"], columns=list(names))
    return df.round(5)


@torch.no_grad()
def latent_means(model: VAE, images: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """Posterior means mu(x) of uint8 ``images`` → float32 numpy [N, latent_dim]."""
    model.eval()
    dev = _device(model)
    out = [model.encode(to_signed(x.to(dev)))[0].float().cpu() for (x,) in in_order(images, batch_size=batch_size)]
    return torch.cat(out).numpy()


def tsne(latents: np.ndarray, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """2-D t-SNE (sklearn, PCA init) of ``latents`` [N, D] → [N, 2]."""
    from sklearn.manifold import TSNE

    perplexity = min(perplexity, max(2.0, (len(latents) - 1) / 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return TSNE(n_components=2, perplexity=perplexity, init="pca", learning_rate="auto",
                    random_state=seed).fit_transform(latents.astype(np.float32))


def linear_probe(latents: np.ndarray, labels: np.ndarray, seed: int = 0, folds: int = 5) -> dict[str, float]:
    """Cross-validated accuracy of a logistic regression (standardised inputs) predicting ``labels`` from
    ``latents``, with the majority-class rate to compare against."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    labels = np.asarray(labels).astype(int)
    counts = np.bincount(labels, minlength=2)
    majority = float(counts.max() / counts.sum())
    folds = int(min(folds, counts[counts > 0].min())) if (counts > 0).sum() > 1 else 0
    if folds < 2:
        return {"accuracy": float("nan"), "majority": majority, "folds": folds}
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        acc = cross_val_score(clf, latents, labels, cv=cv, scoring="accuracy")
    return {"accuracy": float(acc.mean()), "majority": majority, "folds": folds}


def attribute_direction(latents: np.ndarray | torch.Tensor, has: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Mean latent of faces with an attribute minus the mean of faces without it → float tensor [D]."""
    z = torch.as_tensor(np.asarray(latents), dtype=torch.float32)
    has = torch.as_tensor(np.asarray(has)).bool()
    if has.all() or not has.any():
        return torch.zeros(z.shape[1])
    return z[has].mean(0) - z[~has].mean(0)


def final(history: Mapping[str, list], key: str) -> float:
    """Last value of a history series (nan when missing)."""
    values = history.get(key) or []
    return float(values[-1]) if values else float("nan")


def metrics(history: Mapping[str, list], *, test_mse: float, baseline_mse: float, example_names: Sequence[str],
            example_mses: Sequence[float], probe: Mapping[str, float], wall_s: float | None,
            extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Everything the notebook shows, under readable keys (written to ``run_dir/metrics.json``).

    History MSEs are converted from the training scale ([-1, 1]) to the [0, 1] pixel scale.
    """
    return {
        "final_train_mse": final(history, "train_mse") / 4,
        "final_test_mse": final(history, "test_mse") / 4,
        "final_train_kld": final(history, "train_kld"),
        "final_test_kld": final(history, "test_kld"),
        "test_mse_mean": float(test_mse),
        "baseline_mse": float(baseline_mse),
        "baseline_ratio": float(baseline_mse) / float(test_mse) if test_mse > 0 else float("inf"),
        "example_mse": {str(n): float(v) for n, v in zip(example_names, example_mses)},
        "probe_male_accuracy": float(probe["accuracy"]),
        "probe_male_majority": float(probe["majority"]),
        "train_wall_s": None if wall_s is None else float(wall_s),
        **dict(extra or {}),
    }


def summary_table(m: Mapping[str, Any]) -> pd.DataFrame:
    """Mean test MSE vs the mean-image baseline, and the gender probe vs the majority rate."""
    rows = [
        ("Mean test MSE (VAE, decode(mu))", m["test_mse_mean"]),
        ("Mean test MSE (train mean image)", m["baseline_mse"]),
        ("Baseline / VAE", m["baseline_ratio"]),
        ("Male probe accuracy (5-fold CV)", m["probe_male_accuracy"]),
        ("Majority-class rate", m["probe_male_majority"]),
    ]
    return pd.DataFrame({"value": [round(float(v), 5) for _, v in rows]}, index=[r for r, _ in rows])


def discussion(m: Mapping[str, Any], *, kld_weight: float, attribute: str | None = None,
               attribute_probe: Mapping[str, float] | None = None) -> str:
    """The Problem 1.6 paragraph, from this run's numbers."""
    ratio = m["baseline_ratio"]
    gap = m["probe_male_accuracy"] - m["probe_male_majority"]
    if gap > 0.15:
        sep = "clearly separable"
    elif gap > 0.05:
        sep = "partly separable"
    else:
        sep = "barely separable"
    fit = m["final_test_mse"] / m["final_train_mse"] if m["final_train_mse"] > 0 else float("nan")
    fit_words = ("no sign of overfitting" if fit < 1.1 else "some overfitting" if fit < 1.5 else "clear overfitting")
    text = (
        f"With the KL term weighted by {kld_weight:g} (the KL is summed over the latent dimensions, the MSE "
        f"averaged over pixels) the reconstruction term dominates: the model ends at a KL divergence of "
        f"{m['final_train_kld']:.1f} nats per image (train; {m['final_test_kld']:.1f} on test) and a "
        f"reconstruction MSE of {m['final_train_mse']:.4f} (train, mean over the last epoch's steps) / "
        f"{m['final_test_mse']:.4f} (test) on the [0, 1] pixel scale, {fit_words} (test / train = {fit:.2f}). "
        f"Decoding the posterior mean gives a mean test MSE of {m['test_mse_mean']:.4f}, {ratio:.1f}x lower than "
        f"reconstructing every test face as the training set's mean image ({m['baseline_mse']:.4f}): the code "
        f"carries much more than the average face, but reconstructions stay blurry (MSE rewards the mean of "
        f"plausible details). With so little KL pressure the posteriors sit far from the prior, so decoding "
        f"z ~ N(0, I) lands partly outside the region the decoder was trained on and samples look fainter and "
        f"more alike than reconstructions; a larger KL weight trades reconstruction error for better samples. "
        f"Gender is {sep} in the latent space (the t-SNE shows the picture): a logistic-regression probe on "
        f"the latent means reaches {m['probe_male_accuracy']:.1%} cross-validated accuracy against a "
        f"majority-class rate of {m['probe_male_majority']:.1%}, although the VAE never saw the label."
    )
    if attribute and attribute_probe is not None:
        a_gap = attribute_probe["accuracy"] - attribute_probe["majority"]
        verdict = ("is linearly decodable as well" if a_gap > 0.1 else "is only weakly decodable" if a_gap > 0.03
                   else "is not linearly decodable: a small feature like the mouth is lost in the blur")
        text += (f" {attribute} {verdict} ({attribute_probe['accuracy']:.1%} vs a majority rate of "
                 f"{attribute_probe['majority']:.1%}).")
    return text
