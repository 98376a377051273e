"""What a digit-adaptation method is: named losses on the shared loop (or, for GTA, a loop of its own).

A method module defines one function ``losses(nets, batch, step) -> Losses`` — the objective of one
optimisation step, as Transfer-Learning-Library keeps ``DomainAdversarialLoss`` apart from the script that trains
with it — and registers a :class:`Method`. :func:`hw3lib.train.uda.loop.fit` does the rest (batches,
optimiser, checkpoints, resume, DDP, target BatchNorm statistics, checkpoint selection). Adding a method is
adding a file to this package.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Mapping, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from hw3lib.eval.validators import entropy
from hw3lib.models.dann import CNNModel, DANNClassifier

if TYPE_CHECKING:  # the config imports this package; annotations only
    from hw3lib.runtime import Runtime
    from hw3lib.train.uda.config import UDAConfig


class Batch(NamedTuple):
    """One step's inputs, float in [-1,1] in the run's layout: labelled images ``x``/``y`` (source, or target for
    the upper bound), unlabelled target images ``xt`` (None for the bounds) and, for methods that ask for
    them, a strongly augmented view ``xt_strong`` of the same target images."""
    x: torch.Tensor
    y: torch.Tensor
    xt: torch.Tensor | None = None
    xt_strong: torch.Tensor | None = None
    x_strong: torch.Tensor | None = None


@dataclass(frozen=True)
class Step:
    """Where the run is: ``index`` (0-based) of ``total`` steps, the config and the runtime."""
    index: int
    total: int
    config: "UDAConfig"
    runtime: "Runtime"

    @property
    def progress(self) -> float:
        """p ∈ [0, 1): the fraction of the run done before this step (the λ schedules' argument)."""
        return self.index / max(self.total, 1)


class Losses(NamedTuple):
    """The step's objective ``total`` (float32 scalar) and what to log (tensors stay on the device)."""
    total: torch.Tensor
    logs: Mapping[str, torch.Tensor | float]


LossFn = Callable[[Mapping[str, nn.Module], Batch, Step], Losses]


def dann_nets(config: "UDAConfig") -> dict[str, nn.Module]:
    """The DANN network every method but GTA trains (fresh, CPU)."""
    return {"dann": CNNModel()}


def dann_classifier(nets: Mapping[str, nn.Module], config: "UDAConfig") -> nn.Module:
    return DANNClassifier(nets["dann"])


@dataclass(frozen=True)
class Method:
    """A registered adaptation method."""
    name: str
    label: str                                   # its row in the tables
    paper: str                                   # the citation shown in the report
    losses: LossFn | None = None                 # the shared loop's objective
    labelled: str = "source"                     # whose labels train it ("target": the upper bound)
    adapts: bool = True                          # reads unlabelled target batches
    strong_views: bool = False                   # asks for augmented views (xt_strong, x_strong)
    nets: Callable[["UDAConfig"], dict[str, nn.Module]] = dann_nets
    classifier: Callable[[Mapping[str, nn.Module], "UDAConfig"], nn.Module] = dann_classifier
    fit: Callable | None = None                  # a loop of its own (GTA) instead of ``losses``
    kind: str = "uda"                            # checkpoint kind


REGISTRY: dict[str, Method] = {}


def register(method: Method) -> Method:
    if method.name in REGISTRY:
        raise ValueError(f"method {method.name!r} registered twice")
    if (method.losses is None) == (method.fit is None):
        raise ValueError(f"method {method.name!r} needs exactly one of losses= or fit=")
    REGISTRY[method.name] = method
    return method


# -- loss pieces several methods share ------------------------------------------------------------------
def nll(logp: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood of LogSoftmax outputs (the seed's NLLLoss), in float32 whatever the autocast."""
    return F.nll_loss(logp.float(), target)


def accuracy_of(logp: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Batch accuracy in [0, 1] as a device scalar (no host sync)."""
    return (logp.argmax(1) == y).float().mean()
