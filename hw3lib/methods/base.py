"""What a digit-adaptation method is: a registry entry of named losses and optional hooks on the shared loop
(:func:`hw3lib.train.uda.loop.fit`), as Transfer-Learning-Library keeps ``DomainAdversarialLoss`` apart from the
script that trains with it.

A method module defines

* its hyperparameters, a small frozen dataclass whose defaults are its paper's values (``Method.knobs``); a run's
  values are the config field ``UDAConfig.knobs``, part of the config hash, set from the command line
  (``hw3 train uda --method mcc --set mcc.temperature=2.0``) or a profile;
* the objective of one optimisation step, ``losses(nets, batch, step) -> Losses``, or for a game of several
  networks a whole ``update(ctx, batch, step) -> logs``;
* optional hooks: ``after_step(ctx, step)`` after every optimiser step (an EMA teacher), ``on_epoch(ctx, step)`` at
  every epoch boundary over the unlabelled target train set, before that epoch's first step (pseudo-labels from
  clustering); ``nets(config)`` and ``optimizers(models, config, total)`` for extra networks and their optimisers;

and registers a :class:`Method` whose metadata (label, paper, role, order, the "how it was trained" text) every
table, figure, explorer, notebook and command line reads. The loop does the rest: batches, optimisers,
checkpoints, resume, Ctrl-C, DDP, target BatchNorm statistics, checkpoint selection. Adding a method is adding a
file to this package.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from hw3lib.models.dann import CNNModel, DANNClassifier
from hw3lib.runtime import Runtime

ROLES = ("bound", "baseline", "improved")


class Batch(NamedTuple):
    """One step's inputs, float in [-1,1] in the run's layout: labelled images ``x``/``y`` (source, or target for
    the upper bound), unlabelled target images ``xt`` (None for the bounds and during a warm start) and, for
    methods that ask for them, strongly augmented views ``xt_strong`` / ``x_strong`` of the same images."""
    x: torch.Tensor
    y: torch.Tensor
    xt: torch.Tensor | None = None
    xt_strong: torch.Tensor | None = None
    x_strong: torch.Tensor | None = None


@dataclass(frozen=True)
class Step:
    """Where the run is: ``index`` (0-based) of ``total`` steps, the run's config and runtime."""
    index: int
    total: int
    config: Any          # hw3lib.train.uda.config.UDAConfig
    runtime: Runtime

    @property
    def knobs(self) -> Any:
        """The method's hyperparameters in this run (``config.knobs``)."""
        return self.config.knobs

    @property
    def warm(self) -> bool:
        """A warm-start step: the labelled loss alone, no target batch (``config.warmup_steps``)."""
        return self.index < self.config.warmup_steps

    @property
    def progress(self) -> float:
        """p ∈ [0, 1): the fraction of the adaptation steps done before this one (after any warm start); the
        argument of the λ and ramp schedules."""
        warm = self.config.warmup_steps
        return max(0, self.index - warm) / max(self.total - warm, 1)


class Losses(NamedTuple):
    """The step's objective ``total`` (float32 scalar) and what to log (tensors stay on the device)."""
    total: torch.Tensor
    logs: Mapping[str, torch.Tensor | float]


@dataclass
class Context:
    """What a method's ``update`` and hooks see of the run."""
    config: Any                                  # the run's UDAConfig
    runtime: Runtime
    nets: dict[str, nn.Module]                   # as the step calls them (DDP-wrapped under torchrun)
    models: dict[str, nn.Module]                 # the same nets unwrapped: weights, copies, EMA updates
    optimizers: dict[str, torch.optim.Optimizer]
    schedulers: dict[str, Any]
    target_images: torch.Tensor                  # unlabelled target train images, uint8 on the device (no labels)
    state: dict[str, Any]                        # the method's own state; saved with every checkpoint
    log: Callable[..., None]                     # step-level logs: ``ctx.log(name=tensor_or_float)``


LossFn = Callable[[Mapping[str, nn.Module], Batch, Step], Losses]


@dataclass(frozen=True)
class NoKnobs:
    """A method without hyperparameters of its own."""


def dann_nets(config) -> dict[str, nn.Module]:
    """The DANN network every method but GTA trains (fresh, CPU)."""
    return {"dann": CNNModel()}


def dann_classifier(nets: Mapping[str, nn.Module], config) -> nn.Module:
    return DANNClassifier(nets["dann"])


def _no_text(knobs: Any) -> str:
    return ""


def _no_suffix(knobs: Any) -> str:
    return ""


@dataclass(frozen=True)
class Method:
    """A registered adaptation method: what it is (for tables and command lines) and how it trains."""
    name: str                                    # the registry key, ``--method NAME``, run-folder prefix
    label: str                                   # its row in the tables
    paper: str                                   # the citation shown in the report
    role: str                                    # "bound" (source-/target-only), "baseline" (DANN) or "improved"
    order: int                                   # its position in every table (ascending)
    describe: Callable[[Any], str] = _no_text    # knobs → its row of the "how each method was trained" table
    knobs: type = NoKnobs                        # its hyperparameters: a frozen dataclass, the paper's defaults
    grid: Mapping[str, tuple] = field(default_factory=dict)  # knob → values the development protocol tries
    losses: LossFn | None = None                 # the objective of one step on the shared loop
    update: Callable | None = None               # a whole step instead (several optimisers / backward passes)
    after_step: Callable[[Context, Step], None] | None = None  # after every optimiser step
    on_epoch: Callable[[Context, Step], None] | None = None    # before each epoch over the target train set
    nets: Callable[[Any], dict[str, nn.Module]] = dann_nets
    classifier: Callable[[Mapping[str, nn.Module], Any], nn.Module] = dann_classifier  # what is evaluated
    optimizers: Callable | None = None           # (models, config, total) → (optimizers, schedulers)
    inputs: Callable | None = None               # (runtime, config, x, y, xt) uint8 → Batch
    labelled: str = "source"                     # whose labels train it ("target": the upper bound)
    adapts: bool = True                          # reads unlabelled target batches
    strong_views: bool = False                   # asks for augmented views (xt_strong, x_strong)
    ddp: bool = True                             # DDP-wrap the nets (False: the method averages gradients itself)
    defaults: Mapping[str, Any] = field(default_factory=dict)  # its defaults of shared fields (batch_size, lr)
    suffix: Callable[[Any], str] = _no_suffix    # knobs → run-folder suffix
    kind: str = "uda"                            # checkpoint kind
    own_recipe: bool = False                     # trained on a budget, batch and lr of its own (GTA: the public
                                                 # code's), not on the recipe the other methods share

    def resolve_knobs(self, values: Any) -> Any:
        """``values`` (None, a dict or this method's knobs) → this method's knobs dataclass; an unknown name or
        another method's knobs is a one-line ``ValueError``."""
        if isinstance(values, self.knobs):
            return values
        if dataclasses.is_dataclass(values):
            raise ValueError(f"method {self.name!r} takes {self.knobs.__name__} knobs, not {type(values).__name__}")
        values = dict(values or {})
        names = [f.name for f in dataclasses.fields(self.knobs)]
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise ValueError(f"unknown knob(s) {', '.join(unknown)} for method {self.name!r}; known: "
                             + (", ".join(names) or "none"))
        return self.knobs(**values)


# -- pieces several methods share ----------------------------------------------------------------------------
def nll(logp: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood of LogSoftmax outputs (the course report's NLLLoss), in float32 whatever the
    autocast."""
    return F.nll_loss(logp.float(), target)


def accuracy_of(logp: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Batch accuracy in [0, 1] as a device scalar (no host sync)."""
    return (logp.argmax(1) == y).float().mean()


def label_losses(nets, batch: Batch, step: Step) -> Losses:
    """NLL of the labelled batch through the DANN network (the bounds, and every warm-start step)."""
    out = nets["dann"](batch.x, 0.0)
    loss = nll(out.class_logp, batch.y)
    return Losses(loss, {"label_loss": loss, "train_acc": accuracy_of(out.class_logp, batch.y)})


REGISTRY: dict[str, Method] = {}


def register(method: Method) -> Method:
    """Add ``method`` to the registry (its module calls this once, at import)."""
    if method.name in REGISTRY:
        raise ValueError(f"method {method.name!r} registered twice")
    if (method.losses is None) == (method.update is None):
        raise ValueError(f"method {method.name!r} needs exactly one of losses= or update=")
    if method.role not in ROLES:
        raise ValueError(f"method {method.name!r}: role {method.role!r} is not one of {', '.join(ROLES)}")
    if not dataclasses.is_dataclass(method.knobs):
        raise ValueError(f"method {method.name!r}: knobs must be a dataclass")
    unknown = set(method.grid) - {f.name for f in dataclasses.fields(method.knobs)}
    if unknown:
        raise ValueError(f"method {method.name!r}: grid names unknown knob(s) {', '.join(sorted(unknown))}")
    REGISTRY[method.name] = method
    return method
