"""Problem 2.4: VAE vs DCGAN samples, measured in hw3lib's attribute-classifier feature space.

:func:`compare` embeds every sample set once with the attribute classifier and scores each against the real
test faces: Fréchet distance (FD), KID, precision/density (fidelity: do samples land where real faces are?),
recall/coverage (diversity: are all real faces' regions reached?), the classifier two-sample test (C2ST: how well
a small classifier tells the samples from real faces, 0.5 = not at all), the set's spread and fine detail, and the
predicted-attribute rates. Rows: the trained DCGAN (its weight average) and its raw G, the VAE of Problem 1, an
untrained DCGAN generator (the ceiling a trained model must beat) and real training faces (the floor: what a perfect
generator would score with the same sample size); the sets come from :func:`hw3lib.train.gan.sample_sets`.

:func:`discussion` and :func:`training_summary` write the 2.3/2.4 text from these numbers; nothing in it is
hard-coded.
"""
from __future__ import annotations

import dataclasses
from typing import NamedTuple

import pandas as pd
import torch

from hw3lib.data import FaceSet
from hw3lib.data.transforms import to_signed
from hw3lib.eval.c2st import interval_text, order
from hw3lib.eval.gen_metrics import (attribute_rates, highfreq_energy, manifold_distance, mean_pairwise_distance,
                                     sample_metrics)
from hw3lib.models.attr import AttributeClassifier
from hw3lib.models.attr_inference import predict
from hw3lib.runtime import eval_mode

# Row keys of the comparison (metrics.json) → labels shown in tables and plots.
LABELS = {"dcgan": "DCGAN", "dcgan_raw": "DCGAN, raw G (no weight average)", "vae": "VAE (Problem 1)",
          "untrained": "untrained DCGAN generator", "real_train": "real train faces (reference)"}
COLUMNS = {"fd": "FD ↓", "kid": "KID ↓", "kid_std": "KID std", "precision": "precision ↑", "density": "density ↑",
           "recall": "recall ↑", "coverage": "coverage ↑", "c2st": "C2ST acc. (0.5 best)", "n": "samples"}
# Decimals the tables show (metrics.json keeps every digit): FD's scale is tens, KID's hundredths, the rest
# proportions of a few hundred samples.
DECIMALS = {"fd": 2, "kid": 4, "kid_std": 4, "precision": 3, "density": 3, "recall": 3, "coverage": 3, "c2st": 3,
            "attr_gap": 3}


class Comparison(NamedTuple):
    metrics: dict                 # key → {"fd", "kid", "kid_std", "precision", "recall", "density", "coverage",
                                  #        "c2st", "c2st_low", "c2st_high", "spread", "n", "attr_gap",
                                  #        "highfreq_ratio"}
    attributes: dict              # "real_test_labels" / key → {attribute: rate}
    features: dict                # key → float [N, D] (and "real_test")
    table: pd.DataFrame           # rows LABELS, columns COLUMNS
    attribute_table: pd.DataFrame  # rows attributes, columns sets
    reference: dict               # the real test faces' own numbers: {"spread", "n"}


def metrics_table(metrics: dict, labels: dict[str, str] | None = None) -> pd.DataFrame:
    """Rows: the sets of ``metrics`` (named by ``labels``, default :data:`LABELS`); columns :data:`COLUMNS`, the
    C2ST accuracy's 95 % interval and the attribute gap, each rounded to its :data:`DECIMALS`."""
    labels = LABELS if labels is None else labels
    shown = lambda m, c: round(m[c], DECIMALS[c]) if c in DECIMALS else m[c]  # noqa: E731
    rows = {}
    for k, m in metrics.items():
        row = {COLUMNS[c]: shown(m, c) for c in COLUMNS}
        row["C2ST 95 % interval"] = f"{m['c2st_low']:.2f}–{m['c2st_high']:.2f}"
        row["attribute gap ↓"] = shown(m, "attr_gap")
        rows[labels.get(k, k)] = row
    table = pd.DataFrame(rows).T
    table["samples"] = table["samples"].astype(int)
    return table


def compare(classifier: AttributeClassifier, reference: FaceSet, samples: dict[str, torch.Tensor], *,
            nearest_k: int = 5, seed: int = 0, labels: dict[str, str] | None = None) -> Comparison:
    """Score each uint8 sample set [N,3,64,64] in ``samples`` against ``reference`` (the real test faces).
    Tables name the sets by ``labels`` (default :data:`LABELS`; Problem 1 passes its own)."""
    labels = LABELS if labels is None else labels
    real_f, real_p = predict(classifier, reference.images)
    real_hf = float(highfreq_energy(reference.images).mean())
    features, metrics = {"real_test": real_f}, {}
    attributes = {"real_test_labels": _rates(reference.attrs.float(), reference.attr_names),
                  "real_test_predicted": _rates(real_p, reference.attr_names)}
    for key, images in samples.items():
        f, p = predict(classifier, images)
        features[key] = f
        metrics[key] = sample_metrics(real_f, f, nearest_k=nearest_k, seed=seed)
        # Fine detail relative to the real faces (below 1: blurrier, above 1: noisier).
        metrics[key]["highfreq_ratio"] = float(highfreq_energy(images).mean()) / max(real_hf, 1e-12)
        attributes[key] = _rates(p, reference.attr_names)
        # Attribute-rate gap to the real test labels: mean |Δ| over attributes (0 = same marginals).
        metrics[key]["attr_gap"] = float(sum(abs(attributes[key][a] - attributes["real_test_labels"][a])
                                             for a in reference.attr_names) / len(reference.attr_names))
    names = {"real_test_labels": "real test (labels)", "real_test_predicted": "real test (predicted)"}
    attr_table = pd.DataFrame({names.get(k, labels.get(k, k)): v for k, v in attributes.items()})
    ref = {"spread": mean_pairwise_distance(real_f), "n": len(real_f)}
    return Comparison(metrics, attributes, features, metrics_table(metrics, labels), attr_table, ref)


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
                 "(the course report says 0~1; [-1, 1] is what a Tanh output can reach)"),
        ("labels", f"real = {c['real_label']:g}, fake = 0 for D"
                   + (" (one-sided label smoothing, Salimans et al. 2016)" if c["real_label"] < 1 else "")
                   + "; G is trained against label 1 (non-saturating loss)"),
        ("loss", "binary cross-entropy on D's sigmoid output (nn.BCELoss)"),
        ("order per step", "(1) update D on a real batch, then on fake.detach(); (2) update G through D(G(z))"
                           + ("; (3) move the weight average of G towards G" if c["ema_kimg"] > 0 else "")),
        ("optimizer", f"Adam, betas ({c['beta1']:g}, 0.999); lr {c['lr']:g} for G, "
                      + (f"{c['lr_d']:g} for D (two time-scale update rule, Heusel et al. 2017)" if c["lr_d"]
                         else "the same for D")),
        ("augmentation", f"DiffAugment ({c['diffaugment'].replace(',', ', ')}) on every real and generated batch D "
                         "sees (Zhao et al. 2020)" if c["diffaugment"] else "none"),
        ("samples", f"from an exponential moving average of G's weights and BatchNorm statistics, half-life "
                    f"{c['ema_kimg']:g}k images"
                    + (f", at most {c['ema_rampup']:g} x the images seen so far" if c["ema_rampup"] else "")
                    + " (Karras et al. 2018; 2020); the raw G is shown once beside it"
         if c["ema_kimg"] > 0 else "from the trained G itself"),
        ("batch size / steps", f"{c['batch_size']} / {steps} ({c['epochs']:g} epochs"
                               + (f", capped at {c['max_steps']} steps)" if c["max_steps"] else ")")),
        ("latent z", f"{c['nz']}-d, N(0, I)"),
        ("width", f"ngf = {c['ngf']}, ndf = {c['ndf']}"
                  + ("" if c["ngf"] == c["ndf"] == 64 else " (narrower than the printed ngf = ndf = 64 to fit the "
                                                          "CPU time budget of this profile)")),
        ("initialisation", "conv weights ~ N(0, 0.02); BatchNorm weight ~ N(1, 0.02), bias 0 — the course report's "
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
        return "no clear difference at this sample size"
    better = "DCGAN" if (gan < vae) == lower_is_better else "VAE"
    return text.format(better)


def _c2st_order_words(a: str, b: str, ma: dict, mb: dict) -> str:
    c = order(ma, mb)
    if c == 0:
        return f"the {a}'s and the {b}'s samples are equally hard to tell from real faces (95 % intervals overlap)"
    harder, easier = (a, b) if c < 0 else (b, a)
    return f"the {harder}'s samples are harder to tell from real faces than the {easier}'s (intervals do not overlap)"


def discussion(metrics: dict, attributes: dict, reference: dict | None = None) -> str:
    """Markdown for 2.4, every sentence read from ``metrics`` / ``attributes`` / ``reference`` of :func:`compare`."""
    g, u, r = metrics["dcgan"], metrics.get("untrained"), metrics.get("real_train")
    v, raw = metrics.get("vae"), metrics.get("dcgan_raw")
    lines = []
    if u is not None:
        by_fd, by_c2st = g["fd"] < u["fd"], order(g, u) < 0
        verdict = ("Training beats an untrained generator" if by_fd and by_c2st else
                   "Training beats an untrained generator by FD, not by C2ST" if by_fd else
                   "Training beats an untrained generator by C2ST, not by FD" if by_c2st else
                   "Training has not beaten an untrained generator")
        lines.append(
            f"- **{verdict}.** FD "
            f"{_fmt(g['fd'])} against {_fmt(u['fd'])}"
            + (f" ({u['fd'] / max(g['fd'], 1e-12):.1f}x lower)" if g["fd"] < u["fd"] else "")
            + f"; C2ST accuracy (a classifier telling samples from held-out real test faces; 0.5 = indistinguishable) "
              f"{interval_text(g)} against {interval_text(u)}.")
    if r is not None:
        inside = r["c2st_low"] <= 0.5 <= r["c2st_high"]
        lines.append(
            f"- **Real against real.** {r['n']} real training faces score FD {_fmt(r['fd'])} and C2ST "
            f"{interval_text(r)}, whose interval {'contains' if inside else 'does not contain'} 0.5: the floor a "
            f"perfect generator would reach with this many samples.")
    if raw is not None:
        lines.append(
            f"- **Weight average.** The averaged generator (every figure above) scores FD {_fmt(g['fd'])} and "
            f"recall {g['recall']:.2f}, the raw G of the same run FD {_fmt(raw['fd'])} and recall "
            f"{raw['recall']:.2f}. By C2ST ({interval_text(g)} vs {interval_text(raw)}), "
            f"{_c2st_order_words('averaged G', 'raw G', g, raw)}.")
    if v is None:
        lines.append(f"- **DCGAN alone.** FD {_fmt(g['fd'])}, KID {g['kid']:.4f}; fidelity (precision / density) "
                     f"{g['precision']:.2f} / {g['density']:.2f}; diversity (recall / coverage) {g['recall']:.2f} / "
                     f"{g['coverage']:.2f}. (No VAE samples to compare with.)")
    else:
        lines.append(f"- **Overall distance.** FD: DCGAN {_fmt(g['fd'])} vs VAE {_fmt(v['fd'])}; KID: "
                     f"{g['kid']:.4f} vs {v['kid']:.4f}; C2ST: {interval_text(g)} vs {interval_text(v)}. By FD, "
                     + _verdict(g["fd"], v["fd"], lower_is_better=True, text="the {} samples are closer to the real "
                                                                             "faces")
                     + "; by C2ST, " + _c2st_order_words("DCGAN", "VAE", g, v) + ".")
        lines.append(f"- **Fidelity** (precision / density: samples inside the real faces' neighbourhoods): DCGAN "
                     f"{g['precision']:.2f} / {g['density']:.2f}, VAE {v['precision']:.2f} / {v['density']:.2f} — "
                     + _verdict(g["precision"] + g["density"], v["precision"] + v["density"],
                                text="more of the {}'s samples land among real faces") + ".")
        spread = ""
        if reference and reference.get("spread"):
            rs = reference["spread"]
            spread = (f" Spread (mean pairwise distance in the same space) relative to the real test faces': DCGAN "
                      f"{g['spread'] / rs:.2f}, VAE {v['spread'] / rs:.2f}.")
        lines.append(f"- **Diversity** (recall / coverage: how much of the real distribution is reached): DCGAN "
                     f"{g['recall']:.2f} / {g['coverage']:.2f}, VAE {v['recall']:.2f} / {v['coverage']:.2f} — "
                     + _verdict(g["recall"] + g["coverage"], v["recall"] + v["coverage"],
                                text="the {} reaches more of the real faces' variety") + "." + spread)
        lines.append(f"- **Fine detail.** High-frequency energy (spatial frequencies above 1/4 cycle per pixel) "
                     f"relative to the real test faces': DCGAN {g['highfreq_ratio']:.2f}, VAE "
                     f"{v['highfreq_ratio']:.2f} (1 = as much as real faces; below: smoother, above: noisier).")
        real = attributes["real_test_labels"]

        def worst_attr(key):
            a = max(real, key=lambda n: abs(attributes[key][n] - real[n]))
            return f"{a.replace('_', ' ')} ({attributes[key][a]:.0%} vs {real[a]:.0%} real)"
        lines.append(f"- **Attributes.** Mean absolute gap between predicted attribute rates and the real test "
                     f"labels: DCGAN {g['attr_gap']:.3f}, VAE {v['attr_gap']:.3f}. Largest gap: DCGAN "
                     f"{worst_attr('dcgan')}; VAE {worst_attr('vae')}.")
    lines.append("- *Measured in:* the pooled features of hw3lib's attribute classifier (trained on the training "
                 "faces), not Inception's, so the numbers compare within this report only.")
    return "\n".join(lines)


def training_summary(history: dict, snapshots: dict, real: torch.Tensor | None = None) -> str:
    """Markdown for 2.3, read from the run's history and fixed-noise snapshots (``real``: uint8 real faces, the
    scale of the snapshots' high-frequency energy)."""
    n = len(history["step"])
    if n == 0:
        return "- No steps were logged."
    q = max(1, n // 4)

    def mean(key, part):
        v = history[key][:q] if part == "first" else history[key][-q:]
        return sum(v) / len(v)
    gap_first = mean("D_x", "first") - mean("D_G_z1", "first")
    gap_last = mean("D_x", "last") - mean("D_G_z1", "last")
    lines = [
        f"- {history['step'][-1]} steps; {len(snapshots['step'])} fixed-noise snapshots (steps "
        f"{', '.join(str(s) for s in snapshots['step'])}).",
        f"- D loss went from {mean('loss_D', 'first'):.3f} (first quarter of the logged steps) to "
        f"{mean('loss_D', 'last'):.3f} (last quarter); G loss from {mean('loss_G', 'first'):.3f} to "
        f"{mean('loss_G', 'last'):.3f}.",
        f"- In the last quarter D assigns real faces {mean('D_x', 'last'):.2f} and fakes "
        f"{mean('D_G_z1', 'last'):.2f} before its own update ({mean('D_G_z2', 'last'):.2f} after it): a gap of "
        f"{gap_last:.2f}, against {gap_first:.2f} in the first quarter (0 = D cannot tell them apart).",
    ]
    images = snapshots["images"]
    final = images[-1].float()
    change = [float((s.float() - final).abs().mean()) / 255 for s in images]
    text = (f"- Fixed-noise snapshots: mean absolute pixel difference from the last snapshot "
            + ", ".join(f"{c:.3f}" for c in change[:-1]) + " at steps "
            + ", ".join(str(s) for s in snapshots["step"][:-1]) + " ([0, 1] scale)")
    if real is not None and len(real):
        real_hf = float(highfreq_energy(real).mean())
        hf = [float(highfreq_energy(s).mean()) / max(real_hf, 1e-12) for s in images]
        text += ("; their high-frequency energy relative to real training faces' "
                 + ", ".join(f"{h:.2f}" for h in hf) + " at every snapshot")
    lines.append(text + ".")
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
        "reference": comparison.reference,
        "attributes": comparison.attributes,
    }
    if worst is not None:
        out["worst_dcgan"] = {"index": worst.index.tolist(), "manifold_distance": worst.distance.tolist(),
                              "d_score": worst.d_score.tolist()}
    return out
