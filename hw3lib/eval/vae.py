"""Numbers for Problem 1: reconstruction errors and sharpness, the mean-image baseline, latent means, t-SNE, a
linear gender probe, attribute directions, the prior against a Gaussian fitted to the posterior means (the aggregate
posterior), the metrics file and the discussion paragraph.

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
from hw3lib.eval.c2st import interval_text, order
from hw3lib.eval.gen_metrics import highfreq_energy
from hw3lib.models.vae import VAE


# Row labels of Problem 1's sample table (hw3lib.eval.gan.compare with these keys).
SAMPLE_LABELS = {"prior": "VAE, z ~ N(0, I) (the prior)",
                 "fitted": "VAE, z ~ Gaussian fitted to the train posterior means",
                 "real_train": "real train faces (reference)"}


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
    """The course report's table: one ``MSE`` row under the test images' names, in two blocks of five
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


def highfreq_ratio(images: torch.Tensor, reference: torch.Tensor) -> float:
    """Mean high-frequency energy of ``images`` over that of ``reference`` (:func:`highfreq_energy`; uint8 or
    [0, 1] floats): 1 = as much fine detail, below 1 = blurrier, above 1 = noisier."""
    return float(highfreq_energy(images).mean() / highfreq_energy(reference).mean().clamp_min(1e-12))


def fit_gaussian(latents: np.ndarray | torch.Tensor) -> torch.distributions.MultivariateNormal:
    """A Gaussian fit (float64) of latent means [N, D]: the aggregate posterior's mean and covariance, the
    distribution the decoder was trained on. A jitter of 1e-6 x the mean variance keeps a rank-deficient fit (fewer
    faces than dimensions) a proper distribution."""
    z = torch.as_tensor(np.asarray(latents), dtype=torch.float64)
    cov = torch.cov(z.T)
    cov = cov + 1e-6 * cov.diagonal().mean() * torch.eye(z.shape[1], dtype=torch.float64)
    return torch.distributions.MultivariateNormal(z.mean(0), covariance_matrix=cov)


def kl_from_prior(fitted: torch.distributions.MultivariateNormal) -> float:
    """KL(fitted ‖ N(0, I)) in nats (``torch.distributions.kl_divergence``)."""
    d = fitted.loc.shape[-1]
    prior = torch.distributions.MultivariateNormal(torch.zeros(d, dtype=torch.float64),
                                                   torch.eye(d, dtype=torch.float64))
    return float(torch.distributions.kl_divergence(fitted, prior))


def posterior_summary(latents: np.ndarray | torch.Tensor) -> dict[str, float]:
    """How far the posterior means [N, D] sit from the prior N(0, I): the fitted Gaussian's KL from the prior,
    the per-dimension variances (mean, min, max; the prior's are 1) and the mean's norm (the prior's is 0)."""
    fitted = fit_gaussian(latents)
    var = fitted.covariance_matrix.diagonal()
    return {"kl_fitted_prior": kl_from_prior(fitted), "var_mean": float(var.mean()), "var_min": float(var.min()),
            "var_max": float(var.max()), "mean_norm": float(fitted.loc.norm()), "latent_dim": int(len(var))}


@torch.no_grad()
def decode(model: VAE, z: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Decode latents z [N, D] (eval mode) → uint8 [N,3,64,64] on the CPU."""
    model.eval()
    dev = _device(model)
    out = [to_unit(model.decode(z[i:i + batch_size].float().to(dev))).mul(255).round().to(torch.uint8).cpu()
           for i in range(0, len(z), batch_size)]
    return torch.cat(out)


def prior_samples(model: VAE, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` faces decoded from z ~ N(0, I) (CPU noise from ``seed``) → uint8 [n,3,64,64]."""
    g = torch.Generator().manual_seed(seed)
    return decode(model, torch.randn(n, model.latent_dim, generator=g))


def fitted_samples(model: VAE, fitted: torch.distributions.MultivariateNormal, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` faces decoded from z ~ ``fitted`` (:func:`fit_gaussian`; CPU noise from ``seed``) → uint8 [n,3,64,64]."""
    g = torch.Generator().manual_seed(seed)
    eps = torch.randn(n, fitted.loc.shape[-1], generator=g, dtype=torch.float64)
    return decode(model, fitted.loc + eps @ fitted.scale_tril.T)


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
    """Reconstruction error against the mean-image baseline, reconstruction sharpness, the posterior means
    against the prior, and the gender probe against the majority rate."""
    rows = [
        ("Mean test MSE (VAE, decode(mu))", m["test_mse_mean"]),
        ("Mean test MSE (train mean image)", m["baseline_mse"]),
        ("Baseline / VAE", m["baseline_ratio"]),
        ("High-frequency energy, reconstructions / test images", m["recon_highfreq_ratio"]),
        ("KL(Gaussian fit of the train posterior means ‖ N(0, I)), nats", m["posterior"]["kl_fitted_prior"]),
        ("Posterior means: mean per-dimension variance (prior: 1)", m["posterior"]["var_mean"]),
        ("Male probe accuracy (5-fold CV)", m["probe_male_accuracy"]),
        ("Majority-class rate", m["probe_male_majority"]),
    ]
    return pd.DataFrame({"value": [round(float(v), 5) for _, v in rows]}, index=[r for r, _ in rows])


def _more_or_less(ratio: float, more: str, less: str, same: str, tol: float = 0.1) -> str:
    return more if ratio > 1 + tol else less if ratio < 1 - tol else same


def discussion(m: Mapping[str, Any], *, kld_weight: float, attribute: str | None = None,
               attribute_probe: Mapping[str, float] | None = None) -> str:
    """The Problem 1.6 discussion, one Markdown bullet per finding, every sentence read from this run's numbers
    ``m`` (:func:`metrics` with ``recon_highfreq_ratio``, ``posterior`` and ``samples`` in it)."""
    lines = []
    loss_mse = m["final_train_mse"] * 4  # the training loss's MSE is on the [-1, 1] scale
    kl_share = kld_weight * m["final_train_kld"] / max(loss_mse + kld_weight * m["final_train_kld"], 1e-12)
    fit = m["final_test_mse"] / m["final_train_mse"] if m["final_train_mse"] > 0 else float("nan")
    fit_words = ("test error no higher than train error" if fit < 1.1 else "test error somewhat above train error"
                 if fit < 1.5 else "test error well above train error")
    lines.append(
        f"- **Fit.** With the KL term weighted by {kld_weight:g} the model ends at a KL divergence of "
        f"{m['final_train_kld']:.1f} nats per image (train; {m['final_test_kld']:.1f} on test), which is "
        f"{kl_share:.1%} of the final training loss, and a reconstruction MSE of {m['final_train_mse']:.4f} (train, "
        f"mean over the last epoch's steps) / {m['final_test_mse']:.4f} (test) on the [0, 1] pixel scale: "
        f"{fit_words} (test / train = {fit:.2f}).")
    ratio = m["baseline_ratio"]
    hf = m["recon_highfreq_ratio"]
    lines.append(
        f"- **Reconstructions.** Decoding the posterior mean gives a mean test MSE of {m['test_mse_mean']:.4f}, "
        f"{ratio:.1f}x {'lower' if ratio >= 1 else 'higher'} than reconstructing every test face as the training "
        f"set's mean image ({m['baseline_mse']:.4f}). They keep {hf:.0%} of the test images' high-frequency energy "
        f"(spatial frequencies above 1/4 cycle per pixel): "
        + _more_or_less(hf, "more fine detail than their inputs.", "less fine detail than their inputs (blurrier).",
                        "about as much fine detail as their inputs."))
    post = m.get("posterior")
    if post:
        lines.append(
            f"- **Prior and aggregate posterior.** The training faces' posterior means have per-dimension variances "
            f"from {post['var_min']:.3g} to {post['var_max']:.3g} (mean {post['var_mean']:.3g}; the prior's are 1) and "
            f"a mean vector of norm {post['mean_norm']:.3g} (the prior's is 0). A Gaussian fitted to them lies "
            f"{post['kl_fitted_prior']:.0f} nats from N(0, I) (KL divergence over {post['latent_dim']} dimensions).")
    s = m.get("samples") or {}
    if "prior" in s and "fitted" in s:
        p, f = s["prior"], s["fitted"]
        ref = f"; real training faces {s['real_train']['fd']:.3g} and {interval_text(s['real_train'])}" \
            if "real_train" in s else ""
        c = order(f, p)
        c2st_words = ("the fitted Gaussian's samples are harder to tell from real faces than the prior's (the 95 % "
                      "intervals do not overlap)" if c < 0 else
                      "the prior's samples are harder to tell from real faces than the fitted Gaussian's (the 95 % "
                      "intervals do not overlap)" if c > 0 else
                      "the C2ST does not separate the two sample sets (their 95 % intervals overlap)")
        fd_words = (f"sampling the fitted Gaussian instead of the prior lowers FD by {1 - f['fd'] / p['fd']:.0%}"
                    if f["fd"] < p["fd"] else
                    f"sampling the fitted Gaussian instead of the prior raises FD by {f['fd'] / p['fd'] - 1:.0%}")
        lines.append(
            f"- **Samples.** Against the test faces, in the attribute classifier's feature space ({p['n']} samples "
            f"each): z ~ N(0, I) gives FD {p['fd']:.3g} and C2ST accuracy {interval_text(p)}; z from the fitted "
            f"Gaussian FD {f['fd']:.3g} and {interval_text(f)}{ref} (C2ST: 0.5 = indistinguishable). So "
            f"{fd_words}, and {c2st_words}.")
        if m.get("reference_spread"):
            rs = m["reference_spread"]
            lines.append(
                f"- **Detail and spread of the samples.** Prior samples have {p['highfreq_ratio']:.0%} of the test "
                f"faces' high-frequency energy, fitted-Gaussian samples {f['highfreq_ratio']:.0%}. Their spread (mean "
                f"pairwise distance in the attribute classifier's space) is {p['spread'] / rs:.0%} and "
                f"{f['spread'] / rs:.0%} of the test faces' own.")
    gap = m["probe_male_accuracy"] - m["probe_male_majority"]
    sep = "clearly separable" if gap > 0.15 else "partly separable" if gap > 0.05 else "barely separable"
    line = (f"- **Gender in the latent space.** A logistic-regression probe on the test faces' latent means reaches "
            f"{m['probe_male_accuracy']:.1%} cross-validated accuracy against a majority-class rate of "
            f"{m['probe_male_majority']:.1%}: by this margin gender is {sep} (the t-SNE figure plots the same means).")
    if attribute and attribute_probe is not None:
        a_gap = attribute_probe["accuracy"] - attribute_probe["majority"]
        verdict = ("linearly decodable" if a_gap > 0.1 else "only weakly decodable" if a_gap > 0.03
                   else "not linearly decodable")
        line += (f" {attribute} is {verdict} ({attribute_probe['accuracy']:.1%} against a majority rate of "
                 f"{attribute_probe['majority']:.1%}).")
    lines.append(line)
    return "\n".join(lines)
