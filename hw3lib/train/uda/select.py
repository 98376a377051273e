"""Checkpoint selection without target labels: score checkpoints during a run, report the validator's pick.

At every evaluation point a copy of the classifier is scored as it would be reported — adaptation methods with
their BatchNorm statistics re-estimated on unlabelled target train images — by the validators of
:mod:`hw3lib.models.validators`. Its target-test accuracy is recorded beside them (for the report's "oracle" column
and the learning curves) and chooses nothing. The primary validator's best checkpoint is kept and becomes the
run's reported model.
"""
from __future__ import annotations

import copy
import math
from typing import Callable, Mapping

import torch
from torch import nn

from hw3lib.checkpoint import capture_rng, restore_rng
from hw3lib.device import seed_everything
from hw3lib.distributed import unwrap
from hw3lib.models import validators
from hw3lib.models.inference import accuracy, predict_logits, target_bn_statistics
from hw3lib.train.loop import TrainLoop

SUBSET = 2000  # unlabelled target train images for the BatchNorm statistics, IM and SND of each checkpoint


def eval_points(step: int, total: int, evals: int, start: int = 0) -> bool:
    """Whether to score after (0-based) ``step``: ``evals`` points evenly spaced over steps ``start..total``, the
    last step always among them (none when ``evals`` is 0)."""
    if evals <= 0 or step < start:
        return False
    every = max(1, math.ceil((total - start) / evals))
    return step + 1 == total or TrainLoop.every(step - start, every)


def has_batchnorm(module: nn.Module) -> bool:
    """Whether ``module`` holds BatchNorm layers (whose statistics a target re-estimation would change)."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


class Selector:
    """Scores checkpoints into the loop's epoch-level history (``im``, ``snd``, ``src_acc``, ``target_acc``,
    ``eval_step``) and keeps the primary validator's best classifier weights in ``loop.extra["selected"]``.

    ``classifier(nets)`` builds the evaluated model from the run's nets (e.g. the DANN network's label path, GTA's
    F and C, a teacher); a scored checkpoint is a deep copy of it, so the training state is untouched."""

    def __init__(self, loop: TrainLoop, classifier: Callable[[Mapping[str, nn.Module]], nn.Module],
                 nets: Mapping[str, nn.Module], data, *, target_bn: bool, seed: int, primary: str = validators.PRIMARY):
        self.loop, self.classifier, self.data = loop, classifier, data
        self.target_bn, self.seed, self.primary = target_bn, seed, primary
        g = torch.Generator().manual_seed(seed + 104729)
        n = len(data.target)
        idx = torch.randperm(n, generator=g)[:SUBSET].sort().values
        self.target_images = data.target.images[idx.to(data.target.images.device)]

    def _classifier(self, nets: Mapping[str, nn.Module]) -> nn.Module:
        return self.classifier({k: unwrap(m) for k, m in nets.items()})

    def score(self, nets: Mapping[str, nn.Module], step: int, epoch: float) -> dict[str, float]:
        """Score the current weights of ``nets`` (a copy of the classifier: the training state is untouched)."""
        clf = copy.deepcopy(self._classifier(nets))
        if self.target_bn:
            state = capture_rng()  # the statistics are gathered in training mode (dropout): a fixed, separate stream
            try:
                seed_everything(self.seed + step)
                target_bn_statistics(clf, self.target_images)
            finally:
                restore_rng(state)
        probs = torch.softmax(predict_logits(clf, self.target_images).float(), 1)
        src = predict_logits(clf, self.data.source_val.images)
        s = validators.scores(probs, src, self.data.source_val.labels)
        s["target_acc"] = accuracy(clf, self.data.target_test)  # the oracle: recorded, never used to choose
        self.loop.log_epoch(epoch, eval_step=step, **s)
        best = self.loop.extra.get("selected")
        if best is None or s[self.primary] >= best["score"]:
            self.loop.extra["selected"] = {"step": step, "score": s[self.primary], "validator": self.primary,
                                           "classifier": {n: t.detach().cpu().clone()
                                                          for n, t in clf.state_dict().items()}}
        return s

    def apply(self, nets: Mapping[str, nn.Module]) -> int | None:
        """Load the selected weights into ``nets``; returns the selected step (None when nothing was scored)."""
        best = self.loop.extra.get("selected")
        if best is None:
            return None
        self._classifier(nets).load_state_dict(best["classifier"])
        return int(best["step"])


def selection_metrics(history: Mapping[str, list], selected_step: int | None) -> dict[str, float]:
    """Target-test accuracy of each validator's pick, the oracle's (best target-test checkpoint: unavailable in
    practice) and the last checkpoint's, from the scores in ``history``."""
    if not history.get("eval_step") or "im" not in history:
        return {}
    n = len(history["im"])
    steps, accs = history["eval_step"][-n:], history["target_acc"][-n:]
    scored = {v: history[v][-n:] for v in validators.VALIDATORS}
    out = {f"acc@{v}": float(accs[validators.pick(scored, v)]) for v in validators.VALIDATORS}
    out["acc@oracle"], out["acc@last"] = float(max(accs)), float(accs[-1])
    if selected_step is not None and selected_step in steps:
        out["selected_step"] = float(selected_step)
        out["target_acc"] = float(accs[max(i for i, s in enumerate(steps) if s == selected_step)])
    return out
