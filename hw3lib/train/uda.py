"""Unsupervised domain adaptation on digits: ONE entry point for every method of Problems 3 and 4.

``method``:

* ``"source-only"`` — the DANN network trained on labelled source images only (lower bound);
* ``"dann"``        — Ganin & Lempitsky (ICML 2015): source label NLL + source domain NLL + target domain NLL,
  the domain classifier behind a gradient reversal layer whose coefficient follows
  :func:`hw3lib.models.grl.dann_lambda` with ``p = step / total`` (the seed's "zero at the first step, then
  up to one"); source and target go through the network in separate passes (``bn="separate"``), so each is
  normalised by its own batch statistics, and after the last step the BatchNorm statistics are re-estimated
  on the unlabelled target train images (``bn_eval="target"``) to match that;
* ``"target-only"`` — the same network trained on labelled *target* train images (upper bound);
* ``"gta"``         — Generate To Adapt (Problem 4), delegated to :func:`hw3lib.train.gta.fit_gta`.

Every method is evaluated on the *target test* split. **Model selection never uses target labels: the
reported model is the one after the last step.** The per-epoch target-test accuracy in the history is for
the learning-curve plots only.

Contract with Problem 4 (``hw3lib/train/gta.py``)::

    fit_gta(nets: dict[str, nn.Module], source: DigitSet, target: DigitSet, config: UDAConfig, *,
            device: torch.device, run_dir: Path | None, dist: DistInfo,
            target_test: DigitSet) -> dict   # history; target_test only for logged (plot/report) accuracies

    * ``nets`` = ``hw3lib.train.gta.build_nets(config)`` when that function exists, else
      ``hw3lib.models.gta.build_gta()``; already on ``device``; keys netF, netC, netG, netD.
    * ``source``/``target`` are the *train* splits as uint8 tensors on ``device`` (target labels must not be
      used); ``config.gray`` asks for luminance images (the seed's mnistm→svhn trick).
    * ``fit_gta`` drives ``TrainLoop(KIND_GTA="gta", config, models=nets, ...)`` with ``run_dir`` (so the
      checkpoint at ``run_dir/checkpoint.pt`` holds the nets under those keys and ``train_or_load`` here can
      reload it), honours ``config.max_steps``, and returns ``loop.history``.
    * Predictions are ``netC(netF(x))`` with ``x = hw3lib.train.gta.prepare(images_uint8, config)`` when that
      function exists, else :func:`hw3lib.eval.uda.gta_inputs` ([-1,1], optional gray, resized to 32x32).
    * Knobs only GTA uses go in the marked section of :class:`UDAConfig`.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from hw3lib import checkpoint
from hw3lib.data.batches import Batches
from hw3lib.data.layout import DIGIT_DOMAINS, UDA_PAIRS
from hw3lib.data.loaders import load_digits
from hw3lib.data.sets import DigitSet
from hw3lib.data.transforms import to_signed
from hw3lib.device import AMP_HELP, AMP_MODES, amp_dtype, autocast, get_device, seed_everything
from hw3lib.eval.uda import accuracy, target_bn_statistics
from hw3lib.distributed import SINGLE, DistInfo, wrap
from hw3lib.models.grl import dann_lambda, dann_lr
from hw3lib.train.common import TrainLoop, config_dict, finished_checkpoint

METHODS: tuple[str, ...] = ("source-only", "dann", "target-only", "gta")
DANN_METHODS: tuple[str, ...] = ("source-only", "dann", "target-only")
KIND = "uda"        # TrainLoop kind of the DANN-network methods
KIND_GTA = "gta"    # TrainLoop kind fit_gta uses


@dataclass
class UDAConfig:
    """One adaptation run. Defaults are the quick profile (about 30-40 s a run on 2 CPU cores)."""
    method: str = "dann"
    source: str = "usps"
    target: str = "mnistm"
    steps: int = 300               # optimisation steps (each: one source batch + one target batch)
    batch_size: int = 64           # per domain
    lr: float = 1e-3
    optimizer: str = "adam"        # "adam" (constant lr, fungtion/DANN) or "sgd" (momentum .9 + dann_lr annealing)
    gamma: float = 10.0            # λ schedule steepness
    bn: str = "separate"           # "separate": source and target forward passes; "joint": one concatenated pass
    bn_eval: str = "target"        # DANN's final BatchNorm statistics: "target" (re-estimated on the unlabelled
                                   # target train images after the last step) or "running" (the running mixture)
    seed: int = 0
    ckpt_every: int = 500
    log_every: int = 10
    eval_every: int = 100          # steps between target-test accuracy points (plots only; 0 = never)
    max_steps: int | None = None   # cap for smoke runs; the λ schedule then spans the capped run
    gray: bool = False             # luminance images (GTA option; the DANN methods ignore it)
    channels_last: bool = True     # NHWC convolutions: ~1.4x faster DANN steps on CPU, same numbers up to rounding
    amp: str = "auto"              # autocast of the forward passes: "auto" = bf16 on CUDA, float32 on CPU; "bf16"; "off"
    device: str = "auto"
    # --- Problem 4 (GTA) knobs: read by hw3lib.train.gta.fit_gta; add fields here with defaults. ---
    gta: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> "UDAConfig":
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; known: {', '.join(METHODS)}")
        for role in ("source", "target"):
            if getattr(self, role) not in DIGIT_DOMAINS:
                raise ValueError(f"unknown {role} domain {getattr(self, role)!r}; known: {', '.join(DIGIT_DOMAINS)}")
        if self.source == self.target:
            raise ValueError(f"source and target are both {self.source!r}; adaptation needs two domains")
        if self.steps < 0:
            raise ValueError(f"steps must be >= 0, got {self.steps}")
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
        if self.method == "gta":
            # Every GTA knob, defaults included, so a checkpoint records what it was trained with and a change of
            # a default retrains instead of silently reusing a run made under the old one.
            try:
                gta_config = getattr(importlib.import_module("hw3lib.train.gta"), "GTAConfig", None)
            except ModuleNotFoundError:  # Problem 4's module absent: the overrides stay as given
                gta_config = None
            if gta_config is not None:
                self.gta = dataclasses.asdict(gta_config.from_config(self))
        return self

    @property
    def total_steps(self) -> int:
        return self.steps if self.max_steps is None else min(self.steps, self.max_steps)

    @property
    def name(self) -> str:
        """Run-folder name ``{method}_{src}_{tgt}_s{seed}``."""
        return f"{self.method}_{self.source}_{self.target}_s{self.seed}"

    @property
    def kind(self) -> str:
        return KIND_GTA if self.method == "gta" else KIND


@dataclass
class UDAResult:
    config: UDAConfig
    models: dict[str, nn.Module]            # {"dann": CNNModel} or the GTA nets; eval mode, on the device
    history: dict[str, list]
    metrics: dict[str, float]               # target_acc (%, last model), final_domain_acc (%, DANN)
    run_dir: Path | None = None
    trained: bool = True                    # False when loaded from a finished checkpoint


# -- data ----------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=16)
def _cached_digits(root: str, domain: str, split: str, stamp: float) -> DigitSet:  # noqa: ARG001 (cache key)
    return load_digits(root, domain, split)


def digits(root: str | Path, domain: str, split: str) -> DigitSet:
    """:func:`load_digits` memoised per process (9 runs of a notebook decode each PNG folder once)."""
    csv = Path(root) / "digits" / domain / f"{split}.csv"
    stamp = csv.stat().st_mtime if csv.is_file() else -1.0
    return _cached_digits(str(Path(root).resolve()), domain, split, stamp)


def _on(ds: DigitSet, device: torch.device) -> DigitSet:
    return dataclasses.replace(ds, images=ds.images.to(device), labels=ds.labels.to(device))


# -- models --------------------------------------------------------------------------------------------
def build_models(config: UDAConfig) -> dict[str, nn.Module]:
    """Fresh networks for ``config.method`` (CPU)."""
    if config.method == "gta":
        from hw3lib.train import gta as gta_train
        if hasattr(gta_train, "build_nets"):
            return dict(gta_train.build_nets(config))
        from hw3lib.models.gta import build_gta
        return build_gta()
    from hw3lib.models import build
    return {"dann": build("dann")}


# -- DANN-network training -----------------------------------------------------------------------------
def nll(logp: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood of LogSoftmax outputs (the seed's NLLLoss), in float32 whatever the autocast."""
    return F.nll_loss(logp.float(), target)


def _fit_dann(model: nn.Module, source: DigitSet, target: DigitSet, target_test: DigitSet, config: UDAConfig, *,
              device: torch.device, run_dir: Path | None, dist: DistInfo) -> dict:
    total = config.total_steps
    cl = config.channels_last
    if cl:
        model.to(memory_format=torch.channels_last)
    net = wrap(model, dist, device)
    if config.optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=config.lr)
        schedulers = {}
    else:
        opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=0.9)
        schedulers = {"lr": torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: dann_lr(s / max(total, 1), 1.0))}
    loop = TrainLoop(KIND, config, models={"dann": net}, optimizers={"dann": opt}, schedulers=schedulers,
                     total_steps=total, run_dir=run_dir, dist=dist, desc=config.name)
    loop.resume()
    labelled = target if config.method == "target-only" else source
    kw = dict(batch_size=config.batch_size, rank=dist.rank, world_size=dist.world_size)
    lab_batches = Batches(labelled.images, labelled.labels, seed=config.seed, **kw)
    lab_iter = lab_batches.forever(loop.step)
    tgt_iter = Batches(target.images, seed=config.seed + 7919, **kw).forever(loop.step) \
        if config.method == "dann" else None
    steps_per_epoch = len(lab_batches)
    amp = autocast(device, config.amp)

    for step in loop:
        x, y = next(lab_iter)
        x = to_signed(x, cl)
        if config.method == "dann":
            lam = dann_lambda(step / max(total, 1), config.gamma)
            (xt,) = next(tgt_iter)
            xt = to_signed(xt, cl)
            ns, nt = len(x), len(xt)
            # BatchNorm across domains: separate forward passes (bn="separate", fungtion/DANN and the seed)
            # normalise each domain by its own batch statistics in training, so BN itself removes the
            # first-order (colour/contrast) shift and the adversarial game only has to align what is left;
            # the running statistics then average both domains. One concatenated batch (bn="joint") makes BN
            # statistics a source+target mixture; measured on the quick data (300 steps, seed 0) it was far
            # worse: mnistm->svhn 11.2 % vs 44.0 % (separate), usps->mnistm 24.5 % vs 31.6 %.
            if config.bn == "joint":
                with amp:
                    out = net(torch.cat([x, xt]), lam)
                class_logp, dom_s, dom_t = out.class_logp[:ns], out.domain_logp[:ns], out.domain_logp[ns:]
            else:
                with amp:
                    out_s, out_t = net(x, lam), net(xt, lam)
                class_logp, dom_s, dom_t = out_s.class_logp, out_s.domain_logp, out_t.domain_logp
            zeros = torch.zeros(ns, dtype=torch.long, device=device)
            ones = torch.ones(nt, dtype=torch.long, device=device)
            label_loss = nll(class_logp, y)
            domain_loss = nll(dom_s, zeros) + nll(dom_t, ones)
            loss = label_loss + domain_loss
            domain_acc = ((dom_s.argmax(1) == 0).sum() + (dom_t.argmax(1) == 1).sum()) / (ns + nt)
        else:
            lam = 0.0
            with amp:
                out = net(x, 0.0)
            class_logp = out.class_logp
            label_loss = nll(class_logp, y)
            loss = label_loss
            if dist.enabled:  # DDP needs a gradient (zero) for the unused domain classifier
                loss = loss + 0.0 * out.domain_logp.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        for s in schedulers.values():
            s.step()
        if config.method == "dann" and config.bn_eval == "target" and step + 1 == total:
            # With separate passes the target features were normalised by *target* batch statistics at every
            # step, but the running statistics average both domains, so the test-time network normalises target
            # images as in no training step. Re-estimate them on the (unlabelled) target train images: measured
            # on the quick data (3 seeds, 300 steps) usps->mnistm 33.0 -> 38.8 %, mnistm->svhn 48.5 -> 52.1 %,
            # svhn->usps 51.8 -> 51.3 %. Done before the last checkpoint, so the saved model is the evaluated one.
            target_bn_statistics(model, target.images)
            net.train()
        train_acc = (class_logp.argmax(1) == y).float().mean()
        if config.method == "dann":
            loop.log(label_loss=label_loss, domain_loss=domain_loss, domain_acc=domain_acc, lam=lam,
                     train_acc=train_acc)
        else:
            loop.log(label_loss=label_loss, train_acc=train_acc)
        if config.eval_every and (TrainLoop.every(step, config.eval_every) or step + 1 == total):
            acc = accuracy({"dann": model}, config.method, target_test)
            loop.log_epoch((step + 1) / steps_per_epoch, target_acc=acc, eval_step=step + 1)
            net.train()
    return loop.history


def _store_metrics(run_dir: Path | None, metrics: dict[str, float], dist: DistInfo) -> None:
    """Add the final metrics to the finished checkpoint's ``extra`` (so train_or_load needs no evaluation)."""
    if run_dir is None or not dist.is_main:
        return
    file = checkpoint.resolve(run_dir)
    if file.is_file():
        payload = checkpoint.load(file)
        payload.setdefault("extra", {})["metrics"] = metrics
        payload.pop("format", None), payload.pop("version", None)
        checkpoint.save(payload, file)


def _final_metrics(models, config, history, target_test) -> dict[str, float]:
    """Target-test accuracy of the last model (reusing the history's last-step evaluation when there is one)."""
    if history.get("eval_step") and history["eval_step"][-1] == config.total_steps and history.get("target_acc"):
        metrics = {"target_acc": float(history["target_acc"][-1])}
    else:
        metrics = {"target_acc": accuracy(models, config.method, target_test, config)}
    if history.get("warm_target_acc"):
        metrics["warm_target_acc"] = float(history["warm_target_acc"][-1])
    if history.get("domain_acc"):
        tail = history["domain_acc"][-max(1, len(history["domain_acc"]) // 10):]
        metrics["final_domain_acc"] = float(sum(tail) / len(tail)) * 100.0
    return metrics


def train_uda(config: UDAConfig, data_root: str | Path, *, device: str | torch.device = "auto",
              run_dir: str | Path | None = None, dist: DistInfo = SINGLE) -> UDAResult:
    """Train ``config.method`` on ``config.source`` → ``config.target`` from ``data_root`` (course layout).

    Resumes an unfinished checkpoint of the same config in ``run_dir``. The returned models are the last
    ones (no selection on target labels); ``metrics["target_acc"]`` is their target-test accuracy (%).
    """
    config.validate()
    device = get_device(device)
    run_dir = Path(run_dir) if run_dir is not None else None
    seed_everything(config.seed)
    src = _on(digits(data_root, config.source, "train"), device)
    tgt = _on(digits(data_root, config.target, "train"), device)
    tgt_test = _on(digits(data_root, config.target, "test"), device)
    models = {k: m.to(device) for k, m in build_models(config).items()}
    if config.method == "gta":
        from hw3lib.train.gta import fit_gta
        history = fit_gta(models, src, tgt, config, device=device, run_dir=run_dir, dist=dist, target_test=tgt_test)
    else:
        history = _fit_dann(models["dann"], src, tgt, tgt_test, config, device=device, run_dir=run_dir, dist=dist)
    for m in models.values():
        # Back to the default layout, so the returned nets compute exactly what a reload of the checkpoint does.
        m.eval().to(memory_format=torch.contiguous_format)
    metrics = _final_metrics(models, config, history, tgt_test)
    _store_metrics(run_dir, metrics, dist)
    return UDAResult(config, models, history, metrics, run_dir, trained=True)


def train_or_load(config: UDAConfig, data_root: str | Path, *, device: str | torch.device = "auto",
                  run_dir: str | Path | None = None, dist: DistInfo = SINGLE) -> UDAResult:
    """Load the finished run in ``run_dir`` when its config matches, else train (or resume) it."""
    config.validate()
    payload = finished_checkpoint(run_dir, config.kind, config)
    if payload is None:
        return train_uda(config, data_root, device=device, run_dir=run_dir, dist=dist)
    device = get_device(device)
    models = load_models(payload, device)
    metrics = (payload.get("extra") or {}).get("metrics")
    if metrics is None:
        metrics = _final_metrics(models, config, payload["history"],
                                 _on(digits(data_root, config.target, "test"), device))
    return UDAResult(config, models, payload["history"], dict(metrics), Path(run_dir), trained=False)


def config_from(payload_config: dict) -> UDAConfig:
    """A UDAConfig from a checkpoint's config dict (unknown keys ignored, so older checkpoints still load)."""
    names = {f.name for f in dataclasses.fields(UDAConfig)}
    kw = {k: v for k, v in payload_config.items() if k in names}
    if kw.get("method") == "gta" and "in_mean" not in (kw.get("gta") or {}):
        # GTA checkpoints from before hw3lib 0.2 fed F images in [-1,1], not the public Normalize(0.44, 0.19).
        kw["gta"] = {**(kw.get("gta") or {}), "in_mean": 0.5, "in_std": 0.5}
    return UDAConfig(**kw)


def load_models(payload_or_run_dir: dict | str | Path, device: str | torch.device = "cpu") -> dict[str, nn.Module]:
    """The networks of a UDA checkpoint (payload or run folder), on ``device``, in eval mode."""
    payload = payload_or_run_dir if isinstance(payload_or_run_dir, dict) else checkpoint.load(payload_or_run_dir)
    if payload.get("kind") not in (KIND, KIND_GTA):
        raise ValueError(f"checkpoint kind {payload.get('kind')!r} is not a digit-adaptation run (uda or gta)")
    config = config_from(payload["config"])
    models = build_models(config)
    for k, m in models.items():
        if k not in payload["models"]:
            raise ValueError(f"checkpoint has no weights for {k!r} (has {', '.join(payload['models'])})")
        m.load_state_dict(payload["models"][k])
        m.to(get_device(device)).eval()
    return models


def train_or_load_all(base: UDAConfig, data_root: str | Path, run_root: str | Path, *,
                      methods: Iterable[str] = DANN_METHODS, pairs: Iterable[tuple[str, str]] = UDA_PAIRS,
                      seeds: Iterable[int] = (0,), device: str | torch.device = "auto"
                      ) -> dict[tuple[str, str, str, int], UDAResult]:
    """Every (method, source, target, seed) run under ``run_root/{method}_{src}_{tgt}_s{seed}``.

    Returns ``{(method, src, tgt, seed): UDAResult}`` in the given order.
    """
    results = {}
    for src, tgt in pairs:
        for method in methods:
            for seed in seeds:
                cfg = dataclasses.replace(base, method=method, source=src, target=tgt, seed=int(seed))
                results[(method, src, tgt, int(seed))] = train_or_load(
                    cfg, data_root, device=device, run_dir=Path(run_root) / cfg.name)
    return results


# -- CLI -----------------------------------------------------------------------------------------------
def _cli_train(args) -> int:
    base = UDAConfig()
    # GTA keeps its own batch size and learning rate (the public code's 100 and 5e-4) among its knobs.
    is_gta = args.method == "gta"
    gta = {k: v for k, v in (("batch_size", args.batch_size), ("lr", args.lr)) if v is not None} if is_gta else {}
    batch_size = base.batch_size if is_gta or args.batch_size is None else args.batch_size
    lr = base.lr if is_gta or args.lr is None else args.lr
    config = UDAConfig(method=args.method, source=args.source, target=args.target, seed=args.seed,
                       steps=base.steps if args.steps is None else args.steps, batch_size=batch_size, lr=lr,
                       optimizer=args.optimizer, gray=args.gray, max_steps=args.max_steps, device=args.device,
                       amp=args.amp, gta=gta).validate()
    from hw3lib.distributed import setup, teardown
    info, device = setup(get_device(args.device))
    try:
        result = train_or_load(config, args.data, device=device, run_dir=args.out, dist=info)
    finally:
        teardown()
    if info.is_main:
        m = result.metrics
        print(f"{config.name}: target ({config.target}) test accuracy {m['target_acc']:.2f}% "
              f"(last model); checkpoint {checkpoint.resolve(args.out)}")
    return 0


def register(groups) -> None:
    p = groups["train"].add_parser(
        "uda", help="train a digit domain-adaptation run (source-only, DANN, target-only, GTA)",
        description="Train one digit adaptation run into a run folder (Problems 3-4). The reported model is the "
                    "last one; target labels are never used for selection.")
    p.add_argument("--method", choices=METHODS, default="dann")
    p.add_argument("--source", choices=DIGIT_DOMAINS, required=True)
    p.add_argument("--target", choices=DIGIT_DOMAINS, required=True)
    p.add_argument("--data", default="data", help="data folder in the course layout (default: data)")
    p.add_argument("--out", required=True, help="run folder (checkpoint.pt is written there)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=None, help=f"training steps (default {UDAConfig.steps})")
    p.add_argument("--batch-size", type=int, default=None,
                   help=f"per-domain batch size (default {UDAConfig.batch_size}; GTA: the public code's 100)")
    p.add_argument("--lr", type=float, default=None,
                   help=f"learning rate (default {UDAConfig.lr:g}; GTA: the public code's 5e-4)")
    p.add_argument("--optimizer", choices=("adam", "sgd"), default=UDAConfig.optimizer)
    p.add_argument("--max-steps", type=int, default=None, help="stop early (smoke runs)")
    p.add_argument("--gray", action="store_true", help="luminance images (GTA option)")
    p.add_argument("--device", default="auto")
    p.add_argument("--amp", choices=AMP_MODES, default="auto", help=AMP_HELP)
    p.set_defaults(func=_cli_train)
