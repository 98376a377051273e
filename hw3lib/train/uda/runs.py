"""Runs of the digit-adaptation methods: train, or load a finished run, and the sets of runs a notebook makes.

Every method is evaluated on the *target test* split; target labels never choose anything. The history's
target-test accuracy points are for the learning-curve plots only.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Iterable, Mapping

import torch
from torch import nn

from hw3lib import checkpoint, methods
from hw3lib.data import digits
from hw3lib.data.layout import UDA_PAIRS
from hw3lib.data.sets import DigitSet
from hw3lib.device import seed_everything
from hw3lib.models.inference import accuracy, predict_logits
from hw3lib.runtime import Runtime
from hw3lib.train import configs, folders
from hw3lib.train.uda import loop
from hw3lib.train.uda.config import UDAConfig
from hw3lib.train.loop import Paused, pause_at
from hw3lib.train.uda.select import selection_metrics

Key = tuple[str, str, str, int]  # (method, source, target, seed)
KINDS = tuple(sorted({m.kind for m in methods.REGISTRY.values()}))


@dataclasses.dataclass
class UDAResult:
    config: UDAConfig
    models: dict[str, nn.Module]            # the method's nets (``{"dann": CNNModel}`` or GTA's four), eval mode
    history: dict[str, list]
    metrics: dict[str, float]               # target_acc (%, reported model), final_domain_acc (%, DANN), ...
    run_dir: Path | None = None
    trained: bool = True                    # False when loaded from a finished checkpoint

    @property
    def classifier(self) -> nn.Module:
        """uint8 digits [N,3,28,28] → class scores [N,10] (see :mod:`hw3lib.models.inference`)."""
        return self.config.spec.classifier(self.models, self.config)

    @property
    def run_dirs(self) -> list[Path]:
        """The run's folder, as a list (an :class:`EnsembleResult` has one per member)."""
        return [self.run_dir] if self.run_dir is not None else []


class MeanProbability(nn.Module):
    """The mean of its members' softmax probabilities, as log-probabilities [N,10] (so an argmax, ``accuracy`` and
    ``hw3 predict`` read it as any classifier): a mean-probability ensemble of classifiers of uint8 digits."""

    def __init__(self, members: Iterable[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x).float().softmax(1) for m in self.members]).mean(0).log()


@torch.no_grad()
def mean_probabilities(classifiers: Iterable[nn.Module], images: torch.Tensor) -> torch.Tensor:
    """Mean softmax probabilities [N,10] (CPU, float32) of ``classifiers`` on uint8 ``images`` [N,3,28,28], each
    scored as :func:`hw3lib.eval.uda.accuracy` scores it."""
    probs = [predict_logits(c, images).float().softmax(1).cpu() for c in classifiers]
    return torch.stack(probs).mean(0)


@dataclasses.dataclass
class EnsembleResult:
    """Problem 4's hand-in when the development protocol chose an ensemble: its members' finished runs on one course
    pair, scored as one mean-probability classifier on the target test split."""
    members: list[UDAResult]
    label: str
    data_root: dataclasses.InitVar[Any] = None
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)

    def __post_init__(self, data_root):
        if data_root is not None and "target_acc" not in self.metrics:
            c = self.config
            self.metrics["target_acc"] = accuracy(self.classifier, digits(data_root, c.target, "test"))
        self.metrics["member_acc"] = [float(m.metrics["target_acc"]) for m in self.members]

    @property
    def config(self) -> UDAConfig:
        return self.members[0].config

    @property
    def classifier(self) -> nn.Module:
        return MeanProbability(m.classifier for m in self.members)

    @property
    def run_dirs(self) -> list[Path]:
        return [m.run_dir for m in self.members]

    @property
    def trained(self) -> bool:
        return any(m.trained for m in self.members)

    history: dict = dataclasses.field(default_factory=dict)


def _on(ds: DigitSet, device: torch.device) -> DigitSet:
    return dataclasses.replace(ds, images=ds.images.to(device), labels=ds.labels.to(device))


def _final_metrics(result_models, config: UDAConfig, history: dict, target_test: DigitSet) -> dict[str, float]:
    """Target-test accuracy of the reported model — the validator's pick, or the last step's for the bounds and
    GTA's warm start — reusing the scores in the history where they exist, with each validator's and the oracle's
    pick beside it (:func:`hw3lib.train.uda.select.selection_metrics`)."""
    chosen = history.get("selected_step")
    metrics = selection_metrics(history, chosen[-1] if chosen else None)
    if "target_acc" not in metrics:
        last = history["step"][-1] if history.get("step") else None
        if history.get("eval_step") and history["eval_step"][-1] == last and history.get("target_acc"):
            metrics["target_acc"] = float(history["target_acc"][-1])
        else:
            metrics["target_acc"] = accuracy(config.spec.classifier(result_models, config), target_test)
    if history.get("warm_target_acc"):
        metrics["warm_target_acc"] = float(history["warm_target_acc"][-1])
    if history.get("domain_acc"):
        tail = history["domain_acc"][-max(1, len(history["domain_acc"]) // 10):]
        metrics["final_domain_acc"] = float(sum(tail) / len(tail)) * 100.0
    return metrics


def store_extra(run_dir: str | Path | None, runtime: Runtime | None = None, **values: Any) -> None:
    """Add ``values`` to the finished checkpoint's ``extra`` (rank 0): its final metrics (so a reload needs no
    evaluation), the development choice it applied, ..."""
    if run_dir is None or (runtime is not None and not runtime.is_main):
        return
    file = checkpoint.resolve(run_dir)
    if file.is_file():
        payload = checkpoint.load(file)
        payload.setdefault("extra", {}).update(values)
        payload.pop("format", None), payload.pop("version", None)
        checkpoint.save(payload, file)


def train_on(config: UDAConfig, data: loop.Domains, run_dir: str | Path | None = None, *,
             runtime: Runtime | None = None) -> UDAResult:
    """Train ``config.method`` on in-memory digit sets (already on the runtime's device), resuming an unfinished
    checkpoint of the same config in ``run_dir``."""
    config.validate()
    runtime = runtime or Runtime.for_config(config)
    run_dir = Path(run_dir) if run_dir is not None else None
    spec = config.spec
    seed_everything(config.seed)
    nets = spec.nets(config)
    history = loop.fit(spec, nets, data, config, runtime, run_dir)
    runtime.finish(*nets.values())
    metrics = _final_metrics(nets, config, history, data.target_test)
    store_extra(run_dir, runtime, metrics=metrics)
    return UDAResult(config, nets, history, metrics, run_dir, trained=True)


DEV_SPLIT_SEED = 2018  # one fixed split of each domain's train images for every method, knob and seed


def development_split(train: DigitSet, holdout: int) -> tuple[DigitSet, DigitSet]:
    """``(pool, dev)``: ``min(holdout, len(train) // 2)`` images of ``train`` drawn by a fixed permutation are the
    labelled development split; the pool keeps the rest, whose labels no training or selection reads."""
    n = min(holdout, len(train) // 2)
    perm = torch.randperm(len(train), generator=torch.Generator().manual_seed(DEV_SPLIT_SEED))
    return train.subset(perm[n:].sort().values), train.subset(perm[:n].sort().values)


def target_sets(config: UDAConfig, data_root: str | Path) -> tuple[DigitSet, DigitSet]:
    """``(target train, scored set)``: the target train images and test split, or for a development run
    (``config.holdout``) the train pool and its held-out development split (the target test split is not read)."""
    train = digits(data_root, config.target, "train")
    return development_split(train, config.holdout) if config.holdout else (
        train, digits(data_root, config.target, "test"))


def train_uda(config: UDAConfig, data_root: str | Path, run_dir: str | Path | None = None, *,
              runtime: Runtime | None = None) -> UDAResult:
    """:func:`train_on` the source train and test splits and the target sets (:func:`target_sets`) of
    ``data_root`` (course layout or torchvision formats)."""
    runtime = runtime or Runtime.for_config(config)
    source = digits(data_root, config.source, "train")
    target, scored = target_sets(config, data_root)
    # A development run reads no test split: its src_acc validator (informative only; IM picks) reads source train
    # images, so it measures the fit, not held-out accuracy.
    source_val = source.subset(torch.arange(min(len(source), 1000))) if config.holdout else \
        digits(data_root, config.source, "test")
    data = loop.Domains(*(_on(d, runtime.device) for d in (source, target, scored, source_val)))
    return train_on(config, data, run_dir, runtime=runtime)


def load_models(payload_or_run_dir: dict | str | Path, device: str | torch.device = "cpu"
                ) -> tuple[dict[str, nn.Module], UDAConfig]:
    """The nets of a UDA checkpoint (payload or run folder), on ``device``, in eval mode, and its config."""
    payload = payload_or_run_dir if isinstance(payload_or_run_dir, dict) else checkpoint.load(payload_or_run_dir)
    if payload.get("kind") not in KINDS:
        raise ValueError(f"checkpoint kind {payload.get('kind')!r} is not a digit-adaptation run "
                         f"({' or '.join(KINDS)})")
    config = configs.config_from(UDAConfig, payload["config"])
    models = config.spec.nets(config)
    for k, m in models.items():
        if k not in payload["models"]:
            raise ValueError(f"checkpoint has no weights for {k!r} (has {', '.join(payload['models'])})")
        m.load_state_dict(payload["models"][k])
        m.to(device).eval()
    return models, config


def selected_classifier(config: UDAConfig, data_root: str | Path, run_dir: str | Path) -> nn.Module:
    """The classifier (eval mode, CPU) of ``config``'s run in ``run_dir`` at its validator's pick among the
    checkpoints it scored so far: a finished run's reported model, or a paused run's best so far (a development run
    the successive halving stopped at a rung: what its score there reads)."""
    config = configs.bind_data(config.validate(), data_root, (config.source, config.target))
    payload = folders.matching_checkpoint(folders.config_folder(run_dir, config.kind, config, say=False),
                                          config.kind, config)
    if payload is None:
        raise ValueError(f"{run_dir}: no run of {config.name} with this config")
    models, _ = load_models(payload)
    classifier = config.spec.classifier(models, config)
    selected = (payload.get("extra") or {}).get("selected")
    if not payload.get("finished") and selected:
        classifier.load_state_dict(selected["classifier"])
    return classifier.eval()


def train_or_load(config: UDAConfig, data_root: str | Path, run_dir: str | Path | None = None, *,
                  runtime: Runtime | None = None, keyed: bool = True) -> UDAResult:
    """The finished run in ``run_dir`` when its config matches, else train (or resume) it there. When ``run_dir``
    holds another config's run, ``keyed`` moves this one to ``run_dir-<config hash>``
    (:func:`hw3lib.train.folders.config_folder`); without it (the CLI's explicit ``--out``) training refuses."""
    config = configs.bind_data(config.validate(), data_root, (config.source, config.target))
    if keyed:
        run_dir = folders.config_folder(run_dir, config.kind, config)

    def load(payload: dict) -> UDAResult:
        device = (runtime or Runtime.for_config(config)).device
        models, _ = load_models(payload, device)
        metrics = (payload.get("extra") or {}).get("metrics") or _final_metrics(
            models, config, payload["history"], _on(target_sets(config, data_root)[1], device))
        return UDAResult(config, models, payload["history"], dict(metrics), Path(run_dir), trained=False)

    return folders.train_or_load(config.kind, config, run_dir, load=load,
                                train=lambda: train_uda(config, data_root, run_dir, runtime=runtime))


@dataclasses.dataclass
class Progress:
    """Where a run stands: its history so far, its step, whether it finished."""
    history: dict[str, list]
    step: int
    finished: bool


def progress(config: UDAConfig, data_root: str | Path, run_dir: str | Path) -> Progress | None:
    """The run of ``config`` in (the keyed folder of) ``run_dir`` as it stands, or None when none was started."""
    config = configs.bind_data(config.validate(), data_root, (config.source, config.target))
    payload = folders.matching_checkpoint(folders.config_folder(run_dir, config.kind, config, say=False),
                                          config.kind, config)
    if payload is None:
        return None
    return Progress(payload["history"], int(payload["step"]), bool(payload.get("finished")))


def advance(config: UDAConfig, data_root: str | Path, run_dir: str | Path, until: int, *,
            runtime: Runtime | None = None) -> Progress:
    """Train (or resume) the run of ``config`` up to step ``until`` and pause it there, unfinished (a rung of the
    development protocol's successive halving); a run already there or past it is only read. Resuming it later
    (:func:`train_or_load`) ends as if it had trained in one go."""
    now = progress(config, data_root, run_dir)
    if now is not None and (now.finished or now.step >= until):
        return now
    try:
        with pause_at(until):
            r = train_or_load(config, data_root, run_dir, runtime=runtime)
    except Paused as p:
        return Progress(p.history, p.step, False)
    return Progress(r.history, until, True)


def reference_methods() -> list[str]:
    """The bounds and the baseline of the registry (source-only, DANN, target-only), in table order: Problem 3's
    runs, which Problem 4 reads."""
    return methods.names("bound", "baseline")


def train_or_load_all(base: UDAConfig, data_root: str | Path, run_root: str | Path, *,
                      methods: Iterable[str] | None = None,
                      pairs: Iterable[tuple[str, str]] = UDA_PAIRS, seeds: Iterable[int] = (0,),
                      knobs: Mapping[str, Mapping[str, Any]] | None = None) -> dict[Key, UDAResult]:
    """Every (method, source, target, seed) run under ``run_root/{method}_{src}_{tgt}_s{seed}``, in that order
    (``methods``: default :func:`reference_methods`); ``knobs``: per method, the knobs that differ from its
    defaults."""
    results = {}
    for src, tgt in pairs:
        for method in (reference_methods() if methods is None else methods):
            for seed in seeds:
                cfg = base.for_method(method, (knobs or {}).get(method), source=src, target=tgt, seed=int(seed))
                results[(method, src, tgt, int(seed))] = train_or_load(cfg, data_root, Path(run_root) / cfg.name)
    return results


def gta_configs(base: UDAConfig, *, pairs: Iterable[tuple[str, str]] = UDA_PAIRS, seeds: Iterable[int] = (0,),
                gray_pairs: Iterable[Iterable[str]] = (("mnistm", "svhn"),), compare_gray: bool = True,
                ) -> list[tuple[UDAConfig, bool]]:
    """GTA's runs, ``(config, main)`` per pair, seed and image setting: luminance on ``gray_pairs`` (the course
    report's choice for mnistm → svhn) and colour elsewhere is the main run; with ``compare_gray`` each gray pair also
    trains in colour, for the gray-vs-colour table. (``hw3 report --plan`` lists the same configs.)"""
    grays = {tuple(p) for p in gray_pairs}
    out = []
    for src, tgt in pairs:
        gray_main = (src, tgt) in grays
        settings = [gray_main] + ([not gray_main] if gray_main and compare_gray else [])
        for seed in seeds:
            for gray in settings:
                knobs = dataclasses.replace(base.knobs, gray=gray)
                out.append((dataclasses.replace(base, source=src, target=tgt, seed=int(seed), knobs=knobs),
                            gray == gray_main))
    return out


def gta_runs(base: UDAConfig, data_root: str | Path, run_root: str | Path, *,
             pairs: Iterable[tuple[str, str]] = UDA_PAIRS, seeds: Iterable[int] = (0,),
             gray_pairs: Iterable[Iterable[str]] = (("mnistm", "svhn"),), compare_gray: bool = True,
             ) -> tuple[dict[Key, UDAResult], dict[tuple[str, str, bool, int], UDAResult]]:
    """Train or load GTA's runs (:func:`gta_configs`). Returns ``(main, variants)``: ``main[(base.method, src, tgt,
    seed)]`` the main run of each pair; ``variants[(src, tgt, gray, seed)]`` both settings of each compared gray pair."""
    main: dict[Key, UDAResult] = {}
    variants: dict[tuple[str, str, bool, int], UDAResult] = {}
    grays = {tuple(p) for p in gray_pairs}
    for cfg, is_main in gta_configs(base, pairs=pairs, seeds=seeds, gray_pairs=gray_pairs, compare_gray=compare_gray):
        r = train_or_load(cfg, data_root, Path(run_root) / cfg.name)
        if is_main:
            main[(cfg.method, cfg.source, cfg.target, cfg.seed)] = r
        if compare_gray and (cfg.source, cfg.target) in grays:
            variants[(cfg.source, cfg.target, cfg.knobs.gray, cfg.seed)] = r
    return main, variants


def baseline_run(config: UDAConfig, data_root: str | Path, run_dir: str | Path) -> UDAResult:
    """Problem 3's run of ``config`` in ``run_dir``, reused as it is when a finished run of the same method, pair and
    seed is there — whatever config Problem 3's notebook used, so both reports show the same numbers — else trained
    there with ``config`` (same folder, so Problem 3 then reuses it when its config is the same)."""
    cfg = configs.bind_data(config, data_root, (config.source, config.target))
    run_dir = Path(run_dir)
    own = folders.finished_checkpoint(folders.config_folder(run_dir, cfg.kind, cfg, say=False), cfg.kind, cfg)
    found = folders.finished_config(run_dir, cfg.kind) if own is None else None
    if found is not None and (found.get("method"), found.get("source"), found.get("target"),
                              found.get("seed")) == (cfg.method, cfg.source, cfg.target, cfg.seed):
        cfg = configs.config_from(UDAConfig, found)
    return train_or_load(cfg, data_root, run_dir)


def baseline_runs(base: UDAConfig, data_root: str | Path, p3_run_root: str | Path, *,
                  methods: Iterable[str] | None = None,
                  pairs: Iterable[tuple[str, str]] = UDA_PAIRS, seeds: Iterable[int] = (0,)) -> dict[Key, UDAResult]:
    """:func:`baseline_run` of each method (default :func:`reference_methods`), pair and seed under
    ``p3_run_root/{method}_{src}_{tgt}_s{seed}``."""
    results: dict[Key, UDAResult] = {}
    for src, tgt in pairs:
        for method in (reference_methods() if methods is None else methods):
            for seed in seeds:
                cfg = base.for_method(method, source=src, target=tgt, seed=int(seed))
                results[(method, src, tgt, int(seed))] = baseline_run(cfg, data_root, Path(p3_run_root) / cfg.name)
    return results
