"""The typed configuration of one digit-adaptation run, resolved once at construction."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from hw3lib import methods
from hw3lib.data.layout import DIGIT_DOMAINS
from hw3lib.device import amp_dtype

DEFAULT_BATCH, DEFAULT_LR = 128, 1e-3


@dataclass
class UDAConfig:
    """One adaptation run: ``method`` on ``source`` → ``target``. What every method shares is a field here; what one
    method alone uses is in ``knobs``, that method's own dataclass (:attr:`hw3lib.methods.Method.knobs`)."""
    method: str = methods.baseline()  # the registry's baseline, DANN
    source: str = "usps"
    target: str = "mnistm"
    steps: int = 0                 # > 0: the budget in optimisation steps (one source + one target batch each)
    epochs: float = 20.0           # else: the budget in epochs over the larger training domain (20 × 60k-73k course
                                   # images at 128 ≈ 11k steps on a GPU; a 6000-image folder: ≈ 940 steps, CPU minutes)
    batch_size: int | None = None  # per domain; None: the method's default (128; GTA: the public code's 100)
    lr: float | None = None        # None: the method's default (1e-3, Adam; GTA: the public code's 5e-4)
    optimizer: str = "adam"        # "adam" (constant lr, fungtion/DANN) or "sgd" (momentum .9 + dann_lr annealing)
    bn: str = "separate"           # "separate": source and target forward passes; "joint": one concatenated pass
    bn_eval: str = "target"        # adaptation methods' final BatchNorm statistics: "target" (re-estimated on the
                                   # unlabelled target train images after the last step) or "running"
    warmup_steps: int = 0          # steps on the labelled loss alone before adaptation (target batches from then)
    holdout: int = 0               # > 0: a development run: that many labelled target *train* images (at most half)
                                   # are held out and score the run; it adapts to the rest (hw3lib.train.uda.develop)
    seed: int = 0
    ckpt_every: int = 500
    log_every: int = 10
    evals: int = 10                # checkpoints scored by the validators, evenly spaced, the last included (0 = none:
                                   # the last model is reported)
    max_steps: int | None = None   # cap for smoke runs; the schedules then span the capped run
    channels_last: bool = True     # NHWC convolutions; same numbers up to rounding
    amp: str = "auto"              # autocast of the forward passes: "auto" = bf16 on CUDA, float32 on CPU; "bf16"; "off"
    device: str = "auto"           # where train_or_load runs when no runtime is given
    data_id: str = ""              # the data trained on (hw3lib.data.data_id), set by train_or_load
    knobs: Any = None              # the method's hyperparameters: None or a dict → its dataclass with the defaults

    def __post_init__(self):
        # Resolved once: the method's defaults of shared fields, and its knobs as its typed dataclass, so a checkpoint
        # records every value it trained with and a changed default trains anew instead of reusing.
        spec = methods.get(self.method)
        if self.batch_size is None:
            self.batch_size = int(spec.defaults.get("batch_size", DEFAULT_BATCH))
        if self.lr is None:
            self.lr = float(spec.defaults.get("lr", DEFAULT_LR))
        self.knobs = spec.resolve_knobs(self.knobs)

    def validate(self) -> "UDAConfig":
        """Raise a one-line ``ValueError`` on a bad value; changes nothing."""
        for role in ("source", "target"):
            if getattr(self, role) not in DIGIT_DOMAINS:
                raise ValueError(f"unknown {role} domain {getattr(self, role)!r}; known: {', '.join(DIGIT_DOMAINS)}")
        if self.source == self.target:
            raise ValueError(f"source and target are both {self.source!r}; adaptation needs two domains")
        for name in ("steps", "epochs", "evals", "warmup_steps", "holdout"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.batch_size <= 0:
            raise ValueError(f"batch size must be positive, got {self.batch_size}")
        if not self.lr > 0:
            raise ValueError(f"learning rate must be positive, got {self.lr}")
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(f"unknown optimizer {self.optimizer!r}; known: adam, sgd")
        if self.bn not in ("joint", "separate"):
            raise ValueError(f"unknown bn mode {self.bn!r}; known: joint, separate")
        if self.bn_eval not in ("target", "running"):
            raise ValueError(f"unknown bn_eval {self.bn_eval!r}; known: target, running")
        if self.max_steps is not None and self.max_steps < 0:
            raise ValueError(f"max_steps must be >= 0, got {self.max_steps}")
        amp_dtype(self.amp, "cpu")  # raises on an unknown mode before any training
        return self

    def for_method(self, method: str, knobs: Any = None, **changes: Any) -> "UDAConfig":
        """This config for ``method``, with ``knobs`` (None: that method's defaults) and ``changes``; the other
        shared fields (budget, batch, learning rate, ...) carry over."""
        return dataclasses.replace(self, method=method, knobs=knobs, **changes)

    @property
    def spec(self) -> methods.Method:
        return methods.get(self.method)

    def total_steps(self, n_source: int, n_target: int) -> int:
        """Steps the run takes on training sets of these sizes: ``steps`` when > 0, else ``epochs`` over the larger domain
        (``ceil(epochs · max(n) / batch)``), plus the warm start, capped by ``max_steps``."""
        steps = self.steps if self.steps > 0 else math.ceil(self.epochs * max(n_source, n_target) / self.batch_size)
        steps += self.warmup_steps
        return steps if self.max_steps is None else min(steps, self.max_steps)

    @property
    def name(self) -> str:
        """Run-folder name ``{method}_{src}_{tgt}_s{seed}`` (+ the method's suffix, e.g. GTA's ``_gray``)."""
        return f"{self.method}_{self.source}_{self.target}_s{self.seed}" + self.spec.suffix(self.knobs)

    @property
    def kind(self) -> str:
        return self.spec.kind
