"""What a problem of the homework is: a registry entry (:class:`Problem`) that owns its parameters (a typed
dataclass whose defaults are its notebook's ``parameters`` cell) and turns parameters + data into its runs — the
configs and run folders that ``hw3 report --plan``, the pool (:mod:`hw3lib.report.pool`), Slurm and the notebook all
use — and says how ``hw3 handin`` uses them.

A problem module (``hw3lib/problems/pN_xxx.py``) defines

* ``Params``, a dataclass of :class:`Params` whose fields are the notebook's parameters with its defaults (a test
  reads each notebook's parameters cell and keeps the two equal);
* ``runs(params, where) -> list[PlannedRun]``: every run the problem trains or loads, each with its config, folder
  and step count (:class:`Where`: the data it will train on);
* ``train_or_load(params)``: what the notebook calls — the same runs trained, or loaded when finished;

and registers a :class:`Problem` (key = notebook stem = run folder = profile key). Adding a problem is a module, a
notebook and, when it needs other values than its defaults, a profile entry.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, Mapping


# ---------------------------------------------------------------- parameters

@dataclass
class Params:
    """A problem's parameters: the fields every notebook has, and those a subclass declares (its notebook's
    ``parameters`` cell, same names and defaults; a subclass gives ``run_dir`` its default). ``DATA``: what
    :meth:`ready` makes sure the data folder holds (``"faces"`` or ``"digits"``)."""
    DATA: ClassVar[str | None] = None
    data_dir: str = "data"          # project-relative (resolved by with_paths) or absolute
    run_dir: str = ""
    figures_dir: str = "figures"
    make_data: bool = True          # make the embedded quick data when data_dir holds none (ready)
    device: str = "auto"
    seed: int = 0

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """``{name: default}`` of every field."""
        out = {}
        for f in dataclasses.fields(cls):
            out[f.name] = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        return out

    @classmethod
    def of(cls, values: Mapping[str, Any]):
        """The defaults, updated by those of ``values`` the problem has (a notebook's extra parameters are its
        own), with project-relative folders made absolute (:meth:`with_paths`)."""
        known = set(cls.names())
        return cls(**{k: v for k, v in values.items() if k in known}).with_paths()

    @classmethod
    def from_namespace(cls, namespace: Mapping[str, Any]):
        """The notebook's call: its parameters (``globals()`` after the parameters cell) → folders absolute and the
        data there (made when ``make_data`` and the folder holds none: :meth:`ready`)."""
        return cls.of(namespace).ready()

    def with_paths(self):
        """Every non-empty ``*_dir`` parameter project-relative → absolute (:func:`hw3lib.paths.project_path`), so
        the notebook runs from the repository root, ``notebooks/`` or JupyterLab; ``hw3 report`` passes absolute
        paths, left unchanged."""
        from hw3lib.paths import project_path

        return dataclasses.replace(self, **{k: str(project_path(v)) for k, v in dataclasses.asdict(self).items()
                                            if k.endswith("_dir") and isinstance(v, str) and v})

    def ready(self):
        """The data folder holds this problem's data (made at the quick size when ``make_data``)."""
        from hw3lib.data import require_data

        if self.DATA is None:
            return self
        made = require_data(self.data_dir, make=self.make_data, part=self.DATA)
        return dataclasses.replace(self, data_dir=str(made))

    @property
    def metrics_path(self) -> str:
        """The problem's ``metrics.json`` (what the report's first page reads)."""
        return f"{self.run_dir}/metrics.json"


def seeds_of(p: Any) -> list[int]:
    """``p.seeds`` as ints, else ``[p.seed]`` (an empty list of seeds means the one seed)."""
    return [int(s) for s in getattr(p, "seeds", None) or []] or [int(getattr(p, "seed", 0))]


# ---------------------------------------------------------------- runs

@dataclass(frozen=True)
class PlannedRun:
    """One run of a problem: its config and folder, its steps and how many its checkpoint holds."""
    problem: str            # p3_dann
    method: str             # vae, gan, face-attr, dann, gta, ...
    pair: str               # "usps → mnistm" or "—"
    seed: int
    steps: int              # the run's total optimisation steps
    done: int               # steps already in its checkpoint (== steps when finished)
    batch: int
    run_dir: Path | None
    config: Any             # the run's config (VAEConfig, GANConfig, AttrConfig, UDAConfig)
    until: int | None = None    # a development run trained to a rung of the halving and paused there
    note: str = ""              # "rung 1 of 2", "stopped at rung 1", "the best 6 go on" (a row of steps to come)
    later: bool = False         # steps the halving's later rungs will add (no folder yet: --plan counts them)
    heavy: bool = False         # 64x64 images (or GTA's generator): far longer steps; the pool starts them first
    trainer: Callable | None = None  # its family's train_or_load(config, data_dir, run_dir, *, runtime)

    @property
    def status(self) -> str:
        note = f" ({self.note})" if self.note else ""
        if self.later:
            return f"later{note}"
        if self.done >= self.steps:
            return "finished" + note
        return (f"resumes at {self.done}" if self.done else "to train") + note

    @property
    def bench_key(self) -> tuple:
        """Runs with equal keys take equally long steps."""
        c = self.config
        if self.method in ("vae", "face-attr"):
            return (self.method, c.batch_size)
        if self.method == "gan":
            return ("gan", c.batch_size, c.ngf, c.ndf)
        knobs = tuple(sorted(dataclasses.asdict(c.knobs).items()))  # widths and the like change a step's time
        return ("uda-bounds", c.batch_size) if not c.spec.adapts else (c.method, c.batch_size, knobs)


@dataclass(frozen=True)
class Where:
    """What a problem's runs are planned on: the data folder (None: not there yet), its image counts per domain
    and split (``{"face": {"train": N}, "usps": {...}}``), and the problems in this report (a problem that reads
    another's runs trains them itself when that one is not in the report)."""
    data_dir: str | Path | None
    counts: Mapping[str, Mapping[str, int]]
    selected: tuple[str, ...] = ()


def progress(run_dir: Path, kind: str, config: Any, steps: int) -> int:
    """Steps already done: ``steps`` for a finished run of this config, the step of an unfinished one, else 0."""
    from hw3lib.train.folders import matching_checkpoint

    payload = matching_checkpoint(run_dir, kind, config)
    if payload is None:
        return 0
    return steps if payload.get("finished") else int(payload.get("step") or 0)


def on_data(cfg, data_dir, parts):
    """``cfg`` bound to the data it will train on (what training does first), when that folder holds it."""
    from hw3lib.train.configs import bind_data

    try:
        return bind_data(cfg, data_dir, parts)
    except (ValueError, OSError):  # no data (yet): every run is still to train
        return cfg


def face_run(problem: str, method: str, cfg, kind: str, run_dir, where: Where, trainer: Callable) -> PlannedRun:
    """A run on the 64x64 faces (the VAE, the DCGAN, the attribute classifier) in its keyed folder."""
    from hw3lib.train.folders import config_folder

    cfg = on_data(cfg, where.data_dir, ("face",))
    run_dir = config_folder(run_dir, kind, cfg, say=False)
    steps = cfg.total_steps(where.counts["face"]["train"])
    return PlannedRun(problem, method, "—", cfg.seed, steps, progress(run_dir, kind, cfg, steps), cfg.batch_size,
                      run_dir, cfg, heavy=True, trainer=trainer)


def uda_run(problem: str, cfg, run_dir, where: Where, *, heavy: bool = False) -> PlannedRun:
    """A digit-adaptation run (``cfg`` a UDAConfig) in its keyed folder, its steps on the data's image counts."""
    from hw3lib.train.folders import config_folder
    from hw3lib.train.uda.runs import train_or_load

    cfg = on_data(cfg.validate(), where.data_dir, (cfg.source, cfg.target))
    run_dir = config_folder(Path(run_dir), cfg.kind, cfg, say=False)
    counts = where.counts
    n_target = counts[cfg.target]["train"]
    n_target -= min(cfg.holdout, n_target // 2) if cfg.holdout else 0  # a development run's pool
    steps = cfg.total_steps(counts[cfg.source]["train"], n_target)
    return PlannedRun(problem, cfg.method, f"{cfg.source} → {cfg.target}", cfg.seed, steps,
                      progress(run_dir, cfg.kind, cfg, steps), cfg.batch_size, run_dir, cfg, heavy=heavy,
                      trainer=train_or_load)


# ---------------------------------------------------------------- the hand-in

@dataclass(frozen=True)
class Handin:
    """What ``hw3 handin KEY`` (the course's ``hw3_pN.sh``) does with the problem's runs: ``"faces"`` writes a grid
    of generated faces (``hw3 generate COMMAND``), ``"digits"`` predicts a folder of digits (``hw3 predict``) with
    the run :attr:`Problem.handin_run` finds."""
    what: str                               # "VAE", "DCGAN", "DANN", ...: named in its error lines
    output: str                             # "faces" | "digits"
    help: str                               # one line for ``hw3 handin --help``
    kinds: tuple[str, ...] | None = None    # checkpoint kinds accepted (None: any digit-adaptation run)
    command: str | None = None              # faces: ``hw3 generate COMMAND``
    method: str | None = None               # digits: the method hw3 predict's search looks for (None: any)
    selected: bool = False                  # digits: the run metrics.json's "selected_runs" names (Problem 4)


# ---------------------------------------------------------------- the registry

@dataclass(frozen=True)
class Problem:
    """A problem of the homework: ``key`` is its notebook's stem, its run folder under a profile's ``runs_root`` and
    its key in a profile; ``short`` (``p4``) what ``--only`` and ``hw3 handin`` accept."""
    key: str                                  # p4_uda
    title: str                                # "Problem 4: Improved UDA"
    order: int                                # its place in the report
    params: type                              # its Params dataclass
    runs: Callable[[Any, Where], list[PlannedRun]]
    handin: Handin | None = None
    # its results on the report's first page: metrics.json → (this run's lines, the reference lines)
    headline: Callable[[Mapping[str, Any]], tuple[list[str], list[str]]] | None = None

    @property
    def short(self) -> str:
        return self.key.split("_", 1)[0]

    def sibling_run_dirs(self) -> dict[str, str]:
        """Parameters ``xxx_run_dir`` naming another run's folder → that folder's name (``{"vae_run_dir": "p1_vae"}``):
        ``hw3 report`` moves them under its ``runs_root`` unless the profile or ``-p`` sets them. Empty defaults
        ("" = derived from ``run_dir``) are left alone."""
        return {k: Path(v).name for k, v in self.params.defaults().items()
                if k != "run_dir" and k.endswith("_run_dir") and isinstance(v, str) and v.strip("/")}

    def planned(self, values: Mapping[str, Any], where: Where) -> list[PlannedRun]:
        """The problem's runs for the parameters ``hw3 report`` passes (``values``; its defaults for the rest)."""
        return self.runs(self.params.of(values), where)


REGISTRY: dict[str, Problem] = {}


def register(problem: Problem) -> Problem:
    """Add ``problem`` to the registry (its module calls this once, at import)."""
    if problem.key in REGISTRY:
        raise ValueError(f"problem {problem.key!r} registered twice")
    if not (dataclasses.is_dataclass(problem.params) and issubclass(problem.params, Params)):
        raise ValueError(f"problem {problem.key!r}: params must be a dataclass of hw3lib.problems.Params")
    REGISTRY[problem.key] = problem
    return problem


def ordered(keys: Iterable[str] | None = None) -> list[Problem]:
    """The registered problems in the report's order (only ``keys`` when given)."""
    chosen = None if keys is None else set(keys)
    return sorted((p for p in REGISTRY.values() if chosen is None or p.key in chosen), key=lambda p: (p.order, p.key))
