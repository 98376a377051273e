"""Problem 2.4: VAE vs DCGAN samples, measured in hw3lib's attribute-classifier feature space.

:func:`compare` embeds every sample set once with the attribute classifier and scores each against the real
test faces: Fréchet distance (FD), KID, precision/density (fidelity: do samples land where real faces are?),
recall/coverage (diversity: are all real faces' regions reached?), and the predicted-attribute rates.
Rows: the trained DCGAN, the VAE of Problem 1, an untrained DCGAN generator (the ceiling a trained model must
beat) and real training faces (the floor: what a perfect generator would score with the same sample size); the
sets come from :func:`hw3lib.train.gan.sample_sets`.

:func:`discussion` writes the 2.4 discussion from these numbers; nothing in it is hard-coded.
"""
from __future__ import annotations

import dataclasses
from typing import NamedTuple

import pandas as pd
import torch

from hw3lib.data import FaceSet
from hw3lib.data.transforms import to_signed
from hw3lib.eval.attr_classifier import predict
from hw3lib.eval.gen_metrics import attribute_rates, manifold_distance, sample_metrics
from hw3lib.models.attr import AttributeClassifier
from hw3lib.runtime import eval_mode

# Row keys of the comparison (metrics.json) → labels shown in tables and plots.
LABELS = {"dcgan": "DCGAN", "vae": "VAE (Problem 1)", "untrained": "untrained DCGAN generator",
          "real_train": "real train faces (reference)"}
COLUMNS = {"fd": "FD ↓", "kid": "KID ↓", "kid_std": "KID std", "precision": "precision ↑", "density": "density ↑",
           "recall": "recall ↑", "coverage": "coverage ↑", "n": "samples"}


class Comparison(NamedTuple):
    metrics: dict                 # key → {"fd", "kid", "kid_std", "precision", "recall", "density", "coverage", "n"}
    attributes: dict              # "real_test_labels" / key → {attribute: rate}
    features: dict                # key → float [N, D] (and "real_test")
    table: pd.DataFrame           # rows LABELS, columns COLUMNS
    attribute_table: pd.DataFrame  # rows attributes, columns sets


def compare(classifier: AttributeClassifier, reference: FaceSet, samples: dict[str, torch.Tensor], *,
            nearest_k: int = 5, seed: int = 0) -> Comparison:
    """Score each uint8 sample set [N,3,64,64] in ``samples`` (keys as in :data:`LABELS`) against ``reference``."""
    real_f, real_p = predict(classifier, reference.images)
    features, metrics = {"real_test": real_f}, {}
    attributes = {"real_test_labels": _rates(reference.attrs.float(), reference.attr_names),
                  "real_test_predicted": _rates(real_p, reference.attr_names)}
    for key, images in samples.items():
        f, p = predict(classifier, images)
        features[key] = f
        metrics[key] = sample_metrics(real_f, f, nearest_k=nearest_k, seed=seed)
        attributes[key] = _rates(p, reference.attr_names)
        # Attribute-rate gap to the real test labels: mean |Δ| over attributes (0 = same marginals).
        metrics[key]["attr_gap"] = float(sum(abs(attributes[key][a] - attributes["real_test_labels"][a])
                                             for a in reference.attr_names) / len(reference.attr_names))
    table = pd.DataFrame({LABELS.get(k, k): {COLUMNS[c]: m[c] for c in COLUMNS} | {"attribute gap ↓": m["attr_gap"]}
                          for k, m in metrics.items()}).T
    table["samples"] = table["samples"].astype(int)
    names = {"real_test_labels": "real test (labels)", "real_test_predicted": "real test (predicted)"}
    attr_table = pd.DataFrame({names.get(k, LABELS.get(k, k)): v for k, v in attributes.items()})
    return Comparison(metrics, attributes, features, table, attr_table)


def _rates(probs: torch.Tensor, names) -> dict[str, float]:
    return {n: float(r) for n, r in zip(names, attribute_rates(probs))}


@torch.no_grad()
def discriminator_scores(netD: torch.nn.Module, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """D's probability "real" for uint8 images → float [N] on the CPU (eval mode)."""
    device = next(netD.parameters()).device
    with eval_mode(netD):
        return torch.cat([netD(to_signed(images[i:i + batch_size].to(device))).float().cpu()
                          for i in range(0, len(images), batch_size)])


class Worst(NamedTuple):
    index: torch.Tensor           # int64 [k], worst first
    distance: torch.Tensor        # manifold distance of those samples (> 1: outside every real k-NN ball)
    d_score: torch.Tensor         # D(x) of those samples


def worst_samples(comparison: Comparison, key: str, netD: torch.nn.Module, images: torch.Tensor, k: int = 16,
                  nearest_k: int = 5) -> Worst:
    """The ``k`` samples of set ``key`` farthest from the real manifold (see ``manifold_distance``)."""
    dist = manifold_distance(comparison.features["real_test"], comparison.features[key], nearest_k)
    order = torch.argsort(dist, descending=True)[:k]
    return Worst(order, dist[order], discriminator_scores(netD, images[order]))


def implementation_details(config, n_train: int, steps: int) -> pd.DataFrame:
    """The 2.1 implementation-details table from the run's config (``GANConfig``)."""
    c = dataclasses.asdict(config)
    rows = [
        ("data", f"{n_train} training faces, 64x64, scaled to [-1, 1] to match the generator's Tanh "
                 "(the seed says 0~1; [-1, 1] is what a Tanh output can reach)"),
        ("labels", "real = 1, fake = 0 (the generator is trained against label 1: non-saturating loss)"),
        ("loss", "binary cross-entropy on D's sigmoid output (nn.BCELoss)"),
        ("order per step", "(1) update D on a real batch, then on fake.detach(); (2) update G through D(G(z))"),
        ("optimizer", f"Adam, lr {c['lr']:g}, betas ({c['beta1']:g}, 0.999), for both nets"),
        ("batch size / steps", f"{c['batch_size']} / {steps} ({c['epochs']:g} epochs"
                               + (f", capped at {c['max_steps']} steps)" if c["max_steps"] else ")")),
        ("latent z", f"{c['nz']}-d, N(0, I)"),
        ("width", f"ngf = {c['ngf']}, ndf = {c['ndf']}"
                  + ("" if c["ngf"] == c["ndf"] == 64 else " (narrower than the printed ngf = ndf = 64 to fit the "
                                                          "CPU time budget of this profile)")),
        ("initialisation", "conv weights ~ N(0, 0.02); BatchNorm weight ~ N(1, 0.02), bias 0 — the seed's "
                           "'stdev=0.2' repeats a typo in the PyTorch tutorial's prose; its code and the DCGAN "
                           "paper use 0.02"),
        ("fixed noise", f"{c['n_fixed']} vectors drawn once from seed {c['seed']}; snapshots every "
                        f"{config.snapshot_interval(steps)} steps"),
    ]
    return pd.DataFrame(rows, columns=["item", "choice"]).set_index("item")


def _fmt(x: float) -> str:
    return f"{x:.3g}" if abs(x) < 100 else f"{x:.0f}"


def _verdict(gan: float, vae: float, *, text: str, lower_is_better: bool = False, tol: float = 0.02,
             atol: float = 0.02) -> str:
    """``text`` with the better model's name, or a tie when the two are within ``tol`` (relative) or ``atol``."""
    if abs(gan - vae) <= max(tol * max(abs(gan), abs(vae)), atol):
        return "no clear difference at this sample size."
    better = "DCGAN" if (gan < vae) == lower_is_better else "VAE"
    return text.format(better)


def discussion(metrics: dict, attributes: dict) -> str:
    """Markdown for 2.4, every claim read from ``metrics`` / ``attributes`` of :func:`compare`."""
    g, u, r = metrics["dcgan"], metrics.get("untrained"), metrics.get("real_train")
    v = metrics.get("vae")
    lines = []
    if u is not None:
        verdict = ("**Training works.** The DCGAN's" if g["fd"] < u["fd"]
                   else "**Training has not beaten the baseline yet.** The DCGAN's")
        lines.append(f"- {verdict} FD is {_fmt(g['fd'])} against {_fmt(u['fd'])} for the untrained generator"
                     + (f" ({u['fd'] / max(g['fd'], 1e-12):.1f}x lower)" if g["fd"] < u["fd"] else "")
                     + (f"; real training faces score {_fmt(r['fd'])}, the floor for {r['n']} samples."
                        if r is not None else "."))
    if v is None:
        lines.append(f"- **DCGAN alone.** FD {_fmt(g['fd'])}, KID {g['kid']:.4f}; fidelity (precision / density) "
                     f"{g['precision']:.2f} / {g['density']:.2f}; diversity (recall / coverage) {g['recall']:.2f} / "
                     f"{g['coverage']:.2f}. (No VAE samples to compare with.)")
    else:
        lines.append(f"- **Overall distance.** FD: DCGAN {_fmt(g['fd'])} vs VAE {_fmt(v['fd'])}; KID: "
                     f"{g['kid']:.4f} vs {v['kid']:.4f}. "
                     + _verdict(g["fd"], v["fd"], lower_is_better=True,
                                text="By FD the {} samples are closer to real faces in the attribute-classifier "
                                     "space."))
        lines.append(f"- **Fidelity** (precision / density: samples inside the real faces' neighbourhoods): DCGAN "
                     f"{g['precision']:.2f} / {g['density']:.2f}, VAE {v['precision']:.2f} / {v['density']:.2f} — "
                     + _verdict(g["precision"] + g["density"], v["precision"] + v["density"],
                                text="the {} samples look more like real faces to the classifier."))
        lines.append(f"- **Diversity** (recall / coverage: how much of the real distribution is reached): DCGAN "
                     f"{g['recall']:.2f} / {g['coverage']:.2f}, VAE {v['recall']:.2f} / {v['coverage']:.2f} — "
                     + _verdict(g["recall"] + g["coverage"], v["recall"] + v["coverage"],
                                text="the {} covers more of the real faces' variety."))
        real = attributes["real_test_labels"]

        def worst_attr(key):
            a = max(real, key=lambda n: abs(attributes[key][n] - real[n]))
            return f"{a.replace('_', ' ')} ({attributes[key][a]:.0%} vs {real[a]:.0%} real)"
        lines.append(f"- **Attributes.** Mean absolute gap between predicted attribute rates and the real test "
                     f"labels: DCGAN {g['attr_gap']:.3f}, VAE {v['attr_gap']:.3f}. Largest gap: DCGAN "
                     f"{worst_attr('dcgan')}; VAE {worst_attr('vae')}.")
    lines.append("- **Why they differ.** The VAE's decoder is fit by pixel reconstruction with a KL prior, which "
                 "averages over plausible details (smooth, blurry faces); the DCGAN's generator only sees the "
                 "discriminator's verdict, which rewards sharp, realistic local texture but does not penalise "
                 "dropping parts of the distribution — the typical fidelity-vs-coverage trade-off. The numbers above "
                 "say which side of it each model lands on in this run.")
    lines.append("- *Caveat:* these metrics live in hw3lib's own attribute-classifier space (trained on the "
                 "training faces), not Inception's, so they are comparable only within this report.")
    return "\n".join(lines)


def training_summary(history: dict, snapshots: dict) -> str:
    """Markdown for 2.3: what the curves show, read from the run's history."""
    n = len(history["step"])
    if n == 0:
        return "- No steps were logged."
    q = max(1, n // 4)
    def mean(key, part):
        v = history[key][:q] if part == "first" else history[key][-q:]
        return sum(v) / len(v)
    lines = [
        f"- {history['step'][-1]} steps; {len(snapshots['step'])} fixed-noise snapshots (steps "
        f"{', '.join(str(s) for s in snapshots['step'])}).",
        f"- D loss went from {mean('loss_D', 'first'):.3f} (first quarter of the run) to "
        f"{mean('loss_D', 'last'):.3f} (last quarter); G loss from {mean('loss_G', 'first'):.3f} to "
        f"{mean('loss_G', 'last'):.3f}. The two losses pull against each other: they do not converge like a "
        "supervised loss, and a D loss near 0 with a rising G loss would mean D has won (G gets no gradient).",
        f"- In the last quarter D assigns real faces {mean('D_x', 'last'):.2f} and fakes "
        f"{mean('D_G_z1', 'last'):.2f} before its own update ({mean('D_G_z2', 'last'):.2f} after it). At the game's "
        "equilibrium both would be 0.5; the gap says how easily D still tells the fakes apart.",
        "- The progression figure shows the generator learning coarse structure first (background and skin colour, "
        "a head-shaped blob), then placing hair and facial features — compare its rows.",
    ]
    return "\n".join(lines)


def metrics_record(gan_history: dict, gan_config, attr_accuracy: dict, comparison: Comparison,
                   worst: Worst | None = None) -> dict:
    """Everything the notebook's tables show, under readable keys, for ``run_dir/metrics.json``."""
    h = gan_history
    final = {k: h[k][-1] for k in ("loss_D", "loss_G", "D_x", "D_G_z1", "D_G_z2") if h.get(k)}
    out = {
        "metric_space": "pooled penultimate features of hw3lib's face-attribute classifier (not Inception: "
                        "FD here is not FID)",
        "gan": {"steps": h["step"][-1] if h["step"] else 0, "config": dataclasses.asdict(gan_config),
                "final_logged": final},
        "attr_classifier": {"test_accuracy": attr_accuracy},
        "samples": comparison.metrics,
        "attributes": comparison.attributes,
    }
    if worst is not None:
        out["worst_dcgan"] = {"index": worst.index.tolist(), "manifold_distance": worst.distance.tolist(),
                              "d_score": worst.d_score.tolist()}
    return out
