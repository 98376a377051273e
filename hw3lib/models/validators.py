"""Unsupervised validators: scores of a checkpoint computed without target labels, to choose among checkpoints.

The anchor is pytorch-adapt's validators (Musgrave et al., "Three New Validators and a Large-Scale Benchmark
Ranking for Unsupervised Domain Adaptation", 2022). Higher is better for every score here.

* ``im`` — information maximisation on target predictions p [N,K]: H(mean p) − mean H(p), the diversity of the
  predictions minus their average uncertainty (pytorch-adapt's ``IMValidator``; SHOT's objective, Liang et al. 2020).
* ``snd`` — soft neighbourhood density (Saito et al., "Tune it the Right Way", ICCV 2021): the mean entropy of each
  target sample's softmax-normalised similarity (cosine, temperature 0.05) to the other samples' predictions;
  high when target predictions form dense neighbourhoods.
* ``src_acc`` — accuracy (%) on held-out labelled *source* images (source validation accuracy).

None of them reads a target label. Training scores its checkpoints with them (:mod:`hw3lib.train.uda.select`),
so they sit below it, not in :mod:`hw3lib.eval`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from hw3lib.models.functional import entropy

VALIDATORS: tuple[str, ...] = ("im", "snd", "src_acc")
PRIMARY = "im"  # chosen before any run (see docs/NOTES.md); the report shows the others' picks beside it


def information_maximization(p: torch.Tensor) -> float:
    """H(mean p) − mean H(p) for target probabilities p [N,K] (higher: confident and diverse)."""
    p = p.double()
    return float(entropy(p.mean(0, keepdim=True))[0] - entropy(p).mean())


def soft_neighborhood_density(p: torch.Tensor, temperature: float = 0.05) -> float:
    """SND of target probabilities p [N,K] (N ≥ 2): mean entropy of softmax(cos-sim / T) over the other samples."""
    z = F.normalize(p.double(), dim=1)
    sim = z @ z.T
    sim.fill_diagonal_(float("-inf"))
    return float(entropy(torch.softmax(sim / temperature, dim=1)).mean())


def scores(target_probs: torch.Tensor, source_logits: torch.Tensor, source_labels: torch.Tensor) -> dict[str, float]:
    """Every validator's score: ``target_probs`` [N,K] softmax outputs on unlabelled target images,
    ``source_logits`` [M,K] class scores on held-out labelled source images with ``source_labels`` [M]."""
    src_acc = float((source_logits.argmax(1).cpu() == source_labels.cpu()).double().mean() * 100.0)
    return {"im": information_maximization(target_probs), "snd": soft_neighborhood_density(target_probs),
            "src_acc": src_acc}


def pick(history: dict[str, list], validator: str) -> int:
    """Index of the checkpoint a validator picks from score lists (``history[validator]``); ties → the later one."""
    values = history[validator]
    best = max(values)
    return max(i for i, v in enumerate(values) if v == best)
