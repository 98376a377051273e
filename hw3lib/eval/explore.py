"""What the Problem 2 explorers compute: DCGAN latent interpolation with truncation, and the nearest real training
faces of a generated one (a memorisation check). Used by :mod:`hw3lib.widgets` and the static report figures.

>>> z = interpolate_noise(0, 1, torch.linspace(0, 1, 8), netG.nz, psi=0.7)   # [8, nz]
>>> faces = decode_noise(netG, z)                                            # uint8 [8,3,64,64]
>>> dist, idx = nearest_real(faces[:2], train.images, k=5)                   # [2,5] each
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from hw3lib.data.batches import in_order
from hw3lib.data.transforms import to_signed, to_unit

SPACES: tuple[str, ...] = ("pixels", "features")


def seed_noise(seed: int, nz: int) -> torch.Tensor:
    """The noise vector [nz] of ``seed``: N(0, I), drawn on the CPU (the same on every device)."""
    g = torch.Generator().manual_seed(int(seed))
    return torch.randn(1, nz, 1, 1, generator=g).flatten()


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """Spherical interpolation between vectors ``a``, ``b`` [D] at ``t`` (scalar or [T]) → [D] or [T, D].

    Keeps the norm typical of N(0, I) samples along the path (a straight line dips towards 0, where a GAN's
    samples are washed out); nearly parallel vectors fall back to the straight line."""
    t = torch.as_tensor(t, dtype=a.dtype)
    scalar = t.dim() == 0
    t = t.reshape(-1, 1)
    cos = torch.dot(a / a.norm(), b / b.norm()).clamp(-1.0, 1.0)
    omega = torch.arccos(cos)
    if omega.abs() < 1e-4:
        out = (1 - t) * a + t * b
    else:
        out = (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)
    return out[0] if scalar else out


def interpolate_noise(seed_a: int, seed_b: int, ts: torch.Tensor | float, nz: int, psi: float = 1.0) -> torch.Tensor:
    """``psi * slerp(z_a, z_b, t)`` for each t (``[T, nz]``, or ``[nz]`` for a scalar t).

    ``psi`` is the truncation ψ: the noise scaled towards the prior's mean 0 (1 = untouched; smaller = more typical,
    less varied faces)."""
    return float(psi) * slerp(seed_noise(seed_a, nz), seed_noise(seed_b, nz), ts)


@torch.no_grad()
def decode_noise(netG: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """Generator images of noise ``z`` [N, nz] (or [nz]) → uint8 [N,3,64,64] on the CPU (eval mode: running
    BatchNorm statistics, as ``generate`` draws; the module's mode is restored)."""
    z = z.reshape(-1, z.shape[-1])
    device = next(netG.parameters()).device
    was = netG.training
    netG.eval()
    try:
        x = netG(z.to(device)[:, :, None, None])
    finally:
        netG.train(was)
    return to_unit(x.float()).mul(255).round().to(torch.uint8).cpu()


@torch.no_grad()
def embed(images: torch.Tensor, classifier: nn.Module | None = None, batch_size: int = 256) -> torch.Tensor:
    """uint8 faces [N,3,64,64] → float [N, D] on the CPU: raw pixels in [-1, 1] (D = 12288) without a classifier,
    else the attribute classifier's pooled features (``classifier.features``)."""
    if classifier is None:
        return to_signed(images.cpu()).flatten(1)
    device = next(classifier.parameters()).device
    was = classifier.training
    classifier.eval()
    try:
        out = [classifier.features(to_signed(x.to(device))).float().cpu()
               for (x,) in in_order(images, batch_size=batch_size)]
    finally:
        classifier.train(was)
    return torch.cat(out) if out else torch.empty(0, 0)


def nearest(query: torch.Tensor, reference: torch.Tensor, k: int = 5, chunk: int = 1024,
            transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` rows of ``reference`` [N, ...] nearest (L2) to each row of ``query`` [Q, D] → (distances [Q,k]
    ascending, indices [Q,k] int64). ``transform`` maps each chunk of ``reference`` to [n, D] on the fly (e.g.
    :func:`embed` of uint8 images: no float copy of the whole training set)."""
    k = min(k, len(reference))
    best_d = torch.full((len(query), 0), float("inf"))
    best_i = torch.empty((len(query), 0), dtype=torch.long)
    for start in range(0, len(reference), chunk):
        block = reference[start:start + chunk]
        d = torch.cdist(query.float(), (transform(block) if transform else block).float())
        d, i = torch.cat([best_d, d], 1), torch.cat([best_i, torch.arange(start, start + d.shape[1]).expand_as(d)], 1)
        best_d, order = d.topk(k, dim=1, largest=False)
        best_i = i.gather(1, order)
    return best_d, best_i


def nearest_real(samples: torch.Tensor, train_images: torch.Tensor, k: int = 5, classifier: nn.Module | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """For each generated uint8 face [Q,3,64,64], its ``k`` nearest real training faces [N,3,64,64] in pixel space
    (``classifier`` None; L2 over [-1, 1] pixels) or in the attribute classifier's feature space → (distances
    [Q,k], indices [Q,k] into ``train_images``). A sample that is a training image has distance 0."""
    return nearest(embed(samples, classifier), train_images, k, transform=lambda x: embed(x, classifier))


def memorisation_check(samples: torch.Tensor, test_images: torch.Tensor, train_images: torch.Tensor,
                       classifier: nn.Module | None = None) -> dict[str, float]:
    """Distance from each generated face and each real TEST face to its nearest TRAINING face (pixels, or the
    classifier's features). Test faces were never trained on, so their distances are the scale of a new face:
    generated faces much closer than that (ratio well below 1) are copies of training faces.

    Returns medians ``generated``, ``test``, their ``ratio`` and ``copies`` (fraction of generated faces closer to
    a training face than the closest test face is)."""
    gen = nearest_real(samples, train_images, 1, classifier)[0][:, 0]
    test = nearest_real(test_images, train_images, 1, classifier)[0][:, 0]
    return {"generated": float(gen.median()), "test": float(test.median()),
            "ratio": float(gen.median() / test.median()) if float(test.median()) > 0 else float("nan"),
            "copies": float((gen < test.min()).double().mean())}


def memorisation_verdict(checks: dict[str, dict[str, float]]) -> str:
    """One Markdown sentence per space of :func:`memorisation_check` results (``{space: result}``)."""
    lines = []
    for space, m in checks.items():
        ratio, copies = m["ratio"], m["copies"]
        if ratio != ratio:  # NaN: test faces that are training faces
            verdict = "cannot be judged (a test face equals a training face)"
        elif ratio < 0.5 or copies > 0.1:
            verdict = "**closer than new faces are: the generator reproduces training faces**"
        elif ratio < 0.9:
            verdict = "somewhat closer than new faces are (watch for near-copies in the grid above)"
        else:
            verdict = "as far as genuinely new faces are: no sign of copying"
        lines.append(f"- {space}: generated faces lie at a median {m['generated']:.3g} from their nearest training "
                     f"face, real test faces at {m['test']:.3g} (ratio {ratio:.2f}); {copies:.0%} of the generated "
                     f"faces are closer to a training face than any test face is — {verdict}.")
    return "\n".join(lines)
