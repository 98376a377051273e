"""Sample-quality metrics for generated faces in a learned feature space (no downloadable weights needed).

Features come from :class:`hw3lib.models.attr.AttributeClassifier` (its pooled penultimate layer). The
statistics are the standard ones, computed by maintained implementations that accept custom features:

* Fréchet distance (Heusel et al., 2017) — ``torchmetrics`` ``FrechetInceptionDistance`` with a custom feature
  module; here fed precomputed features through :class:`Precomputed` so each set is embedded once.
* Kernel distance, KID (Bińkowski et al., 2018) — ``torchmetrics`` ``KernelInceptionDistance``, cubic polynomial
  kernel, unbiased MMD² over random subsets (seeded).
* Precision / recall (Kynkäänniemi et al., 2019) and density / coverage (Naeem et al., 2020) — ``prdc``.
* Classifier two-sample test, C2ST (Lopez-Paz & Oquab, 2017) — :mod:`hw3lib.eval.c2st`: the held-out accuracy of a
  small classifier telling the two sets apart (0.5 = indistinguishable).
* Attribute distribution — how often each attribute is predicted present (probability > 0.5).
* Spread — mean pairwise distance within a set (its diversity); high-frequency energy of images (their detail).

Because the space is hw3lib's own classifier and not Inception-v3, name the numbers honestly: "FD in hw3lib's
attribute-classifier space", not "FID". Absolute values are comparable only within one classifier checkpoint.
"""
from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import torch
from torch import nn

from hw3lib.eval.c2st import c2st


class Precomputed(nn.Module):
    """Identity "feature extractor" for torchmetrics: ``update(features, real=...)`` with [N, D] features."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = int(num_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _as_tensor(x) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).double().cpu()


def frechet_distance(real: torch.Tensor, fake: torch.Tensor) -> float:
    """||mu_r - mu_f||² + Tr(S_r + S_f - 2 (S_r S_f)^½) between Gaussian fits of two [N, D] feature sets."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    real, fake = _as_tensor(real), _as_tensor(fake)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fd = FrechetInceptionDistance(feature=Precomputed(real.shape[1]), reset_real_features=True)
        fd.update(real, real=True)
        fd.update(fake, real=False)
        value = float(fd.compute())
    return max(value, 0.0)  # tiny negative values are round-off of a zero distance


def kernel_distance(real: torch.Tensor, fake: torch.Tensor, *, subsets: int = 100, subset_size: int = 1000,
                    seed: int = 0) -> tuple[float, float]:
    """KID: mean and std over ``subsets`` random subsets of the unbiased polynomial-kernel MMD²."""
    from torchmetrics.image.kid import KernelInceptionDistance

    real, fake = _as_tensor(real), _as_tensor(fake)
    size = min(subset_size, len(real), len(fake))
    with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
        warnings.simplefilter("ignore")
        torch.manual_seed(seed)  # subsets are drawn with the global generator
        kid = KernelInceptionDistance(feature=Precomputed(real.shape[1]), subsets=subsets, subset_size=size)
        kid.update(real, real=True)
        kid.update(fake, real=False)
        mean, std = kid.compute()
    return float(mean), float(std)


def prdc_metrics(real: torch.Tensor, fake: torch.Tensor, nearest_k: int = 5) -> dict[str, float]:
    """Precision, recall, density and coverage (``prdc.compute_prdc``) with ``nearest_k`` neighbours."""
    from prdc import compute_prdc

    with contextlib.redirect_stdout(io.StringIO()):  # prdc prints the set sizes
        out = compute_prdc(_as_tensor(real).float().numpy(), _as_tensor(fake).float().numpy(), nearest_k)
    return {k: float(v) for k, v in out.items()}


def manifold_distance(real: torch.Tensor, fake: torch.Tensor, nearest_k: int = 5) -> torch.Tensor:
    """Per fake sample: min over real r of d(fake, r) / (distance from r to its k-th real neighbour).

    Below 1 the sample lies inside some real sample's k-NN ball (it counts for precision); the larger, the farther
    from the real manifold. The inverse of Kynkäänniemi et al.'s realism score. Returns float [N_fake].
    """
    from prdc.prdc import compute_nearest_neighbour_distances, compute_pairwise_distance

    r = _as_tensor(real).float().numpy()
    f = _as_tensor(fake).float().numpy()
    radii = compute_nearest_neighbour_distances(r, nearest_k)       # [N_real]
    d = compute_pairwise_distance(r, f)                              # [N_real, N_fake]
    return torch.from_numpy((d / np.maximum(radii[:, None], 1e-12)).min(axis=0)).float()


def attribute_rates(probs: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Fraction of samples with each attribute predicted present: [N, A] probabilities → [A]."""
    return (torch.as_tensor(probs) > threshold).float().mean(0)


def sample_metrics(real: torch.Tensor, fake: torch.Tensor, *, nearest_k: int = 5, kid_subsets: int = 100,
                   seed: int = 0) -> dict[str, float]:
    """All set-level numbers for one generated set against the real reference features: FD, KID (+ std),
    precision/recall/density/coverage, the C2ST accuracy with its 95 % interval (:mod:`hw3lib.eval.c2st`), the
    set's spread (mean pairwise distance) and ``n``."""
    # Subsets of half the smaller set, so they differ from one another and the std means something.
    size = max(2, min(1000, len(real) // 2, len(fake) // 2))
    kid, kid_std = kernel_distance(real, fake, subsets=kid_subsets, subset_size=size, seed=seed)
    test = c2st(real, fake, seed=seed)
    return {"fd": frechet_distance(real, fake), "kid": kid, "kid_std": kid_std,
            **prdc_metrics(real, fake, nearest_k), "c2st": test.accuracy, "c2st_low": test.low,
            "c2st_high": test.high, "spread": mean_pairwise_distance(fake), "n": int(len(fake))}


def highfreq_energy(images: torch.Tensor, cutoff: float = 0.25) -> torch.Tensor:
    """Per image, the mean power of the spatial frequencies above ``cutoff`` cycles per pixel (Nyquist = 0.5),
    over the three channels: [N,3,H,W] uint8 (0..255) or float in [0, 1] → float [N] (on the [0, 1] scale).

    The fine detail an image holds: a blurred copy keeps less of it, noise has more. Ratios between two sets
    (e.g. reconstructions over their inputs) are what the report prints.
    """
    x = images.float() / 255 if images.dtype == torch.uint8 else images.float()
    x = x - x.mean(dim=(-2, -1), keepdim=True)
    power = torch.fft.fft2(x).abs().pow(2) / (x.shape[-1] * x.shape[-2])
    fy = torch.fft.fftfreq(x.shape[-2]).view(-1, 1)
    fx = torch.fft.fftfreq(x.shape[-1]).view(1, -1)
    high = (fy.pow(2) + fx.pow(2)).sqrt() > cutoff
    return power[..., high].sum(-1).mean(-1) / (x.shape[-1] * x.shape[-2])


def mean_pairwise_distance(features: torch.Tensor) -> float:
    """Mean Euclidean distance between all pairs of rows of ``features`` [N, D]: a set's spread (diversity)."""
    f = _as_tensor(features)
    return float(torch.pdist(f).mean()) if len(f) > 1 else float("nan")
