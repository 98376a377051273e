"""Report profiles: which data, how long to train, per notebook — one YAML file each.

A profile (``report/profiles/{smoke,quick,full}.yaml`` at the repository root — shipped inside the wheel too, see
``hw3lib.project`` — or any YAML path) reads::

    description: one line shown in the report header
    data_size: quick           # embedded data made when the data folder is absent (smoke|quick|full);
                               # null: the profile needs real data (--data DIR)
    data_dir: data             # default data folder, relative to the working directory
    runs_root: runs/quick      # run folders (checkpoints, metrics.json) go to runs_root/pN_xxx
    figures_dir: figures       # PNGs written by the notebooks
    cell_timeout: 3600         # seconds one notebook cell may run before hw3 report stops it (null: no limit)
    common:                    # given to every notebook that has the parameter
      seed: 0
    notebooks:                 # per-notebook parameters (names of the notebooks' ``parameters`` cells)
      p1_vae: {epochs: 1}

Overrides (``-p KEY VALUE``, papermill style) parse VALUE as YAML; ``KEY`` applies to every notebook that has
the parameter, ``p1.KEY`` (or ``p1_vae.KEY``) to one notebook. Unknown names are one-line ``ValueError``s.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from hw3lib import problems
from hw3lib.project import checkout_root, profiles_dir

REPO_ROOT = checkout_root()          # None for an installed (non-editable) package
PROFILES_DIR = profiles_dir()
# Notebook stems, in the report's order: the registered problems (hw3lib.problems); ``p1`` etc. are accepted as
# short names.
NOTEBOOKS: tuple[str, ...] = tuple(problems.keys())
DATA_SIZES = ("smoke", "quick", "full")
_TOP_KEYS = {"description", "data_size", "data_dir", "runs_root", "figures_dir", "cell_timeout", "common", "notebooks"}
# A cell running longer than this is taken for hung (a deadlocked DataLoader, a stuck process group) and stopped.
# Generous: a profile that omits the key is probably a big one; the shipped profiles set their own.
DEFAULT_CELL_TIMEOUT = 6 * 3600
# Parameters the builder sets itself (absolute paths, the --device choice); profiles may not set them per notebook.
MANAGED = ("data_dir", "run_dir", "runs_root", "figures_dir", "device")


@dataclass
class Profile:
    name: str
    path: Path
    description: str = ""
    data_size: str | None = None
    data_dir: str = "data"
    runs_root: str = "runs/quick"
    figures_dir: str = "figures"
    cell_timeout: int | None = DEFAULT_CELL_TIMEOUT   # seconds per notebook cell; None: no limit
    common: dict = field(default_factory=dict)
    notebooks: dict[str, dict] = field(default_factory=dict)


def available() -> list[str]:
    return sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))


def notebook_name(key: str, known: tuple[str, ...] = NOTEBOOKS) -> str:
    """``p1`` or ``p1_vae`` → ``p1_vae``; anything else is a ``ValueError`` naming ``key``."""
    for name in known:
        if key == name or key == name.split("_", 1)[0]:
            return name
    raise ValueError(f"unknown notebook {key!r}; known: {', '.join(known)} (or p1..p{len(known)})")


def load_profile(spec: str | Path) -> Profile:
    """A profile by name (``smoke``, ``quick``, ``full``) or by path to a YAML file."""
    spec_s = str(spec)
    if spec_s.endswith((".yaml", ".yml")) or "/" in spec_s:
        path = Path(spec_s)
        if not path.is_file():
            raise FileNotFoundError(f"profile file {path} not found")
    else:
        path = PROFILES_DIR / f"{spec_s}.yaml"
        if not path.is_file():
            raise ValueError(f"unknown profile {spec_s!r}; known: {', '.join(available())} or a path to a .yaml")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from exc
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: a profile is a mapping of {', '.join(sorted(_TOP_KEYS))}")
    for key in raw:
        if key not in _TOP_KEYS:
            raise ValueError(f"{path}: unknown key {key!r}; known: {', '.join(sorted(_TOP_KEYS))}")
    size = raw.get("data_size")
    if size is not None and size not in DATA_SIZES:
        raise ValueError(f"{path}: data_size {size!r} is not one of {', '.join(DATA_SIZES)} or null")
    timeout = raw.get("cell_timeout", DEFAULT_CELL_TIMEOUT)
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 1):
        raise ValueError(f"{path}: cell_timeout {timeout!r} is not a whole number of seconds >= 1 or null")
    common = raw.get("common") or {}
    notebooks = raw.get("notebooks") or {}
    if not isinstance(common, dict):
        raise ValueError(f"{path}: common must be a mapping of parameter: value")
    if not isinstance(notebooks, dict):
        raise ValueError(f"{path}: notebooks must be a mapping of notebook: {{parameter: value}}")
    per_nb: dict[str, dict] = {}
    for key, params in notebooks.items():
        try:
            name = notebook_name(str(key))
        except ValueError as exc:
            raise ValueError(f"{path}: notebooks.{key}: {exc}") from None
        if params is not None and not isinstance(params, dict):
            raise ValueError(f"{path}: notebooks.{key} must be a mapping of parameter: value")
        per_nb[name] = dict(params or {})
    for key in list(common) + [k for p in per_nb.values() for k in p]:
        if key in MANAGED:
            raise ValueError(f"{path}: parameter {key!r} is set by the report builder "
                             f"(use the profile's top-level data_dir/runs_root/figures_dir, or --data/--device)")
    return Profile(name=path.stem, path=path.resolve(), description=str(raw.get("description") or ""),
                   data_size=size, data_dir=str(raw.get("data_dir") or "data"),
                   runs_root=str(raw.get("runs_root") or f"runs/{path.stem}"),
                   figures_dir=str(raw.get("figures_dir") or "figures"), cell_timeout=timeout,
                   common=dict(common), notebooks=per_nb)


def parse_overrides(pairs) -> list[tuple[str | None, str, object]]:
    """``[("epochs", "3"), ("p1.lr", "1e-3")]`` → ``[(None, "epochs", 3), ("p1_vae", "lr", 0.001)]``.

    Values are YAML (``3`` → int, ``1e-3`` → float, ``true`` → bool, ``[1, 2]`` → list), as papermill's ``-y``.
    """
    out = []
    for pair in pairs or ():
        key, value = pair
        if not key or key.startswith(".") or key.endswith("."):
            raise ValueError(f"-p {key!r}: expected KEY or NOTEBOOK.KEY")
        target, _, param = key.rpartition(".")
        nb = notebook_name(target) if target else None
        out.append((nb, param, _yaml_value(value)))
    return out


def _yaml_value(text):
    if not isinstance(text, str):
        return text
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    # YAML 1.1 reads "1e-3" as a string; numbers are what people mean.
    if isinstance(value, str):
        try:
            return float(value) if any(c in value for c in ".eE") else int(value)
        except ValueError:
            pass
    return value


def resolve_parameters(profile: Profile, declared: dict[str, set[str] | None], overrides=(),
                       managed: dict[str, dict] | None = None) -> dict[str, dict]:
    """Parameters per notebook: profile ``common`` → ``notebooks.NAME`` → overrides → builder-managed paths.

    ``declared`` maps each selected notebook to the names in its ``parameters`` cell (``None`` when the notebook
    file is missing: its parameters are passed through unchecked). A common/override key that no selected
    notebook declares, or a per-notebook key its notebook lacks, is a ``ValueError`` naming the key.
    """
    where = f"{profile.path.name}"
    result: dict[str, dict] = {name: {} for name in declared}

    def has(name: str, key: str) -> bool:
        return declared[name] is None or key in declared[name]

    def apply_common(key: str, value, origin: str):
        hit = False
        for name in declared:
            if has(name, key):
                result[name][key] = value
                hit = True
        if not hit and declared:
            raise ValueError(f"{origin}: no selected notebook has a parameter {key!r}")

    for key, value in profile.common.items():
        apply_common(key, value, f"{where}: common.{key}")
    for name, params in profile.notebooks.items():
        if name not in declared:
            continue  # a notebook left out by --only
        for key, value in params.items():
            if not has(name, key):
                raise ValueError(f"{where}: notebooks.{name}.{key}: {name} has no parameter {key!r} "
                                 f"(it has: {', '.join(sorted(declared[name]))})")
            result[name][key] = value
    for nb, key, value in parse_overrides(overrides):
        if key in MANAGED:
            raise ValueError(f"-p {key}: set by the report builder; use --data, --device or the profile")
        if nb is None:
            apply_common(key, value, f"-p {key}")
        elif nb in declared:
            if not has(nb, key):
                raise ValueError(f"-p {nb}.{key}: {nb} has no parameter {key!r} "
                                 f"(it has: {', '.join(sorted(declared[nb]))})")
            result[nb][key] = value
    for name, params in (managed or {}).items():
        if name in result:
            result[name].update({k: v for k, v in params.items() if has(name, k)})
    return result
