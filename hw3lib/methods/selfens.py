"""Self-ensembling, a mean-teacher method: French, Mackiewicz & Fisher, "Self-ensembling for visual domain
adaptation", ICLR 2018 (after Tarvainen & Valpola's mean teacher, NeurIPS 2017).

A student (the DANN network) learns the source labels; a teacher, the exponential moving average of the student's
weights (:func:`after_step`, decay 0.99), predicts each unlabelled target image in one augmented view, and the
student is trained to predict the same class distribution on another view: the squared difference of the two
softmax outputs, counted only where the teacher is confident (maximum probability above 0.968). A class-balance term
(binary cross-entropy between the student's mean target prediction and the uniform 1/K, scaled by the confident
share) keeps the student from collapsing onto a few classes. Loss: NLL(source) + w · (consistency + b · balance), the
paper's w = 3, b = 0.005. The teacher is the reported model; it runs in training mode, as the student, so its
BatchNorm statistics are the target's and dropout makes its prediction one more perturbation. Views here: the
teacher sees the weak view (a small shift), the student the strong one (:func:`hw3lib.data.transforms.strong_view`).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from hw3lib.methods.base import Batch, Context, Losses, Method, Step, accuracy_of, dann_classifier, nll, register
from hw3lib.models.dann import CNNModel, DANNClassifier


@dataclass(frozen=True)
class SelfEnsemblingKnobs:
    ema: float = 0.99             # teacher = ema · teacher + (1 − ema) · student after every step (the paper's 0.99)
    threshold: float = 0.968      # the teacher's confidence a target image needs to count (the paper's 0.968)
    weight: float = 3.0           # w, the unsupervised term's weight (the paper's 3)
    balance: float = 0.005        # b, the class-balance term's weight (the paper's 0.005)


def teacher_nets(config) -> dict:
    """The student and its teacher, which starts as an exact copy and never gets gradients."""
    student = CNNModel()
    teacher = copy.deepcopy(student).requires_grad_(False)
    return {"dann": student, "teacher": teacher}


def teacher_classifier(nets, config) -> DANNClassifier:
    return dann_classifier({"dann": nets["teacher"]}, config)


def balance_loss(p_mean: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of the mean prediction [K] against the uniform 1/K, averaged over classes × K."""
    k = p_mean.numel()
    p = p_mean.clamp(1e-6, 1 - 1e-6)
    return -(torch.log(p) / k + torch.log(1 - p) * (1 - 1 / k)).mean() * k


def selfens_losses(nets, batch: Batch, step: Step) -> Losses:
    k = step.knobs
    out_s = nets["dann"](batch.x, 0.0)
    with torch.no_grad():
        p_teacher = nets["teacher"](batch.xt, 0.0).class_logp.float().exp()
    p_student = nets["dann"](batch.xt_strong, 0.0).class_logp.float().exp()
    conf = p_teacher.max(1).values
    mask = (conf > k.threshold).float()
    consistency = (((p_student - p_teacher) ** 2).mean(1) * mask).mean()
    balance = balance_loss(p_student.mean(0)) * mask.mean()
    label_loss = nll(out_s.class_logp, batch.y)
    return Losses(label_loss + k.weight * (consistency + k.balance * balance),
                  {"label_loss": label_loss, "consistency": consistency, "balance": balance, "mask_rate": mask.mean(),
                   "train_acc": accuracy_of(out_s.class_logp, batch.y)})


@torch.no_grad()
def ema_update(ctx: Context, step: Step) -> None:
    """teacher ← ema · teacher + (1 − ema) · student, parameters only (the teacher's BatchNorm statistics are its own:
    it runs on target batches)."""
    a = step.knobs.ema
    teacher, student = ctx.models["teacher"], ctx.models["dann"]
    for t, s in zip(teacher.parameters(), student.parameters()):
        t.mul_(a).add_(s.detach(), alpha=1 - a)


def _describe(k: SelfEnsemblingKnobs) -> str:
    return (f"NLL(source) + {k.weight:g} × [squared difference between the student's prediction on a strong target "
            f"view and an EMA teacher's (decay {k.ema:g}) on a weak view, where the teacher's confidence > "
            f"{k.threshold:g}, + {k.balance:g} × class balance]; the teacher is reported")


register(Method("selfens", "Self-ensembling (mean teacher)", "French et al., Self-ensembling for visual domain "
                "adaptation, ICLR 2018", "improved", 600, describe=_describe, knobs=SelfEnsemblingKnobs,
                grid={"threshold": (0.968, 0.9)}, losses=selfens_losses, after_step=ema_update, nets=teacher_nets,
                classifier=teacher_classifier, strong_views=True))
