"""The typed configuration of one digit-adaptation run, resolved once at construction."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping

from hw3lib.data.layout import DIGIT_DOMAINS
from hw3lib.device import amp_dtype
from hw3lib.models.gta import GTAConfig
from hw3lib.train.uda import methods


@dataclass
class UDAConfig:
    """One adaptation run: ``method`` on ``source`` → ``target``. Every method but GTA trains the DANN network
    (fungtion/DANN's CNNModel) with these knobs; GTA reads its own from ``gta``."""
    method: str = "dann"
    source: str = "usps"
    target: str = "mnistm"
    steps: int = 0                 # > 0: the budget in optimisation steps (one source + one target batch each)
    epochs: float = 20.0           # else: the budget in epochs over the larger training domain (20 × 60k-73k course
                                   # images at 128 ≈ 11k steps on a GPU; a 6000-image folder: ≈ 940 steps, CPU minutes)
    batch_size: int = 128          # per domain
    lr: float = 1e-3
    optimizer: str = "adam"        # "adam" (constant lr, fungtion/DANN) or "sgd" (momentum .9 + dann_lr annealing)
    gamma: float = 10.0            # λ schedule steepness
    bn: str = "separate"           # "separate": source and target forward passes; "joint": one concatenated pass
    bn_eval: str = "target"        # adaptation methods' final BatchNorm statistics: "target" (re-estimated on the
                                   # unlabelled target train images after the last step) or "running"
    seed: int = 0
    ckpt_every: int = 500
    log_every: int = 10
    evals: int = 10                # checkpoints scored by the validators, evenly spaced, the last included (0 = none:
                                   # the last model is reported)
    max_steps: int | None = None   # cap for smoke runs; the λ schedule then spans the capped run
    gray: bool = False             # luminance images (GTA option; the DANN-network methods ignore it)
    channels_last: bool = True     # NHWC convolutions; same numbers up to rounding
    amp: str = "auto"              # autocast of the forward passes: "auto" = bf16 on CUDA, float32 on CPU; "bf16"; "off"
    device: str = "auto"           # where train_or_load runs when no runtime is given
    data_id: str = ""              # the data trained on (hw3lib.data.data_id), set by train_or_load
    gta: GTAConfig | None = None   # GTA's knobs (a GTAConfig for method="gta", else None)

    def __post_init__(self):
        # Resolved once: a dict (a notebook's or a checkpoint's) becomes the typed GTAConfig with every knob, so a
        # checkpoint records what it was trained with and a changed default retrains instead of reusing.
        if self.method == "gta":
            self.gta = self.gta if isinstance(self.gta, GTAConfig) else GTAConfig.from_dict(self.gta)
        elif self.gta is not None and not isinstance(self.gta, GTAConfig):
            self.gta = GTAConfig.from_dict(self.gta) if self.gta else None

    def validate(self) -> "UDAConfig":
        """Raise a one-line ``ValueError`` on a bad value; changes nothing."""
        if self.method not in methods.REGISTRY:
            raise ValueError(f"unknown method {self.method!r}; known: {', '.join(methods.names())}")
        for role in ("source", "target"):
            if getattr(self, role) not in DIGIT_DOMAINS:
                raise ValueError(f"unknown {role} domain {getattr(self, role)!r}; known: {', '.join(DIGIT_DOMAINS)}")
        if self.source == self.target:
            raise ValueError(f"source and target are both {self.source!r}; adaptation needs two domains")
        if self.steps < 0:
            raise ValueError(f"steps must be >= 0, got {self.steps}")
        if self.epochs < 0:
            raise ValueError(f"epochs must be >= 0, got {self.epochs}")
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
        if self.evals < 0:
            raise ValueError(f"evals must be >= 0, got {self.evals}")
        if self.max_steps is not None and self.max_steps < 0:
            raise ValueError(f"max_steps must be >= 0, got {self.max_steps}")
        if self.gta is not None and self.gta.warmup_steps < 0:
            raise ValueError(f"GTA warmup_steps must be >= 0, got {self.gta.warmup_steps}")
        amp_dtype(self.amp, "cpu")  # raises on an unknown mode before any training
        return self

    @property
    def spec(self) -> "methods.Method":
        return methods.get(self.method)

    @property
    def per_domain_batch(self) -> int:
        return self.gta.batch_size if self.method == "gta" and self.gta is not None else self.batch_size

    def total_steps(self, n_source: int, n_target: int) -> int:
        """Steps the run takes on training sets of these sizes: ``steps`` when > 0, else ``epochs`` over the larger domain
        (``ceil(epochs · max(n) / batch)``), plus GTA's warm start, capped by ``max_steps``."""
        steps = self.steps if self.steps > 0 else math.ceil(self.epochs * max(n_source, n_target) / self.per_domain_batch)
        steps += self.gta.warmup_steps if self.gta is not None and self.method == "gta" else 0
        return steps if self.max_steps is None else min(steps, self.max_steps)

    @property
    def name(self) -> str:
        """Run-folder name ``{method}_{src}_{tgt}_s{seed}`` (``_gray`` appended for luminance images)."""
        return f"{self.method}_{self.source}_{self.target}_s{self.seed}" + ("_gray" if self.gray else "")

    @property
    def kind(self) -> str:
        return self.spec.kind

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "UDAConfig":
        """A config from a checkpoint's dict (unknown keys ignored, so older checkpoints still load)."""
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in values.items() if k in names}
        if kw.get("method") == "gta" and "in_mean" not in (kw.get("gta") or {}):
            # GTA checkpoints from before hw3lib 0.2 fed F images in [-1,1], not the public Normalize(0.44, 0.19).
            kw["gta"] = {**(kw.get("gta") or {}), "in_mean": 0.5, "in_std": 0.5}
        if kw.get("method") != "gta" and not kw.get("gta"):
            kw["gta"] = None
        return cls(**kw)
