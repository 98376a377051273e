"""Where the notebooks and profiles are, and ``hw3 init DIR`` (a project folder of your own).

Notebooks and profiles live in the repository (``notebooks/*.ipynb``, ``report/profiles/*.yaml``); a built wheel
carries copies under ``hw3lib/_shipped/`` (``setup.py`` copies them at build time). Lookups, first hit wins:

* notebooks: ``$HW3_NOTEBOOKS``; the project's ``notebooks/`` (see :func:`project_root`) when it holds any of
  the four; the checkout this package runs from; the installed copies.
* profiles by name (``--profile quick``): the checkout's ``report/profiles/``, else the installed copies.

``hw3 init DIR`` copies the notebooks and a profile (``my.yaml``) into ``DIR`` with a ``.hw3-project`` marker;
``cd DIR && hw3 report --profile my.yaml`` then runs *those* notebooks and writes report/, runs/, figures/ there.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from hw3lib import settings
from hw3lib.paths import MARKER, project_root  # noqa: F401 (project_root: one definition, re-exported here)

PACKAGE_DIR = Path(__file__).resolve().parent
SHIPPED_DIR = PACKAGE_DIR / "_shipped"          # written by setup.py's build step, absent in a checkout
NOTEBOOK_GLOB = "p[0-9]_*.ipynb"


def checkout_root() -> Path | None:
    """The repository this package is imported from (an editable install or ``PYTHONPATH``), else ``None``."""
    root = PACKAGE_DIR.parent
    if (root / "pyproject.toml").is_file() and (root / "notebooks").is_dir():
        return root
    return None


def _has_notebooks(folder: Path) -> bool:
    return folder.is_dir() and any(folder.glob(NOTEBOOK_GLOB))


def package_notebooks_dir() -> Path:
    """The notebooks that came with this package: the checkout's ``notebooks/``, else the installed copies."""
    root = checkout_root()
    return root / "notebooks" if root else SHIPPED_DIR / "notebooks"


def notebooks_dir() -> Path:
    """The notebooks ``hw3 report`` runs (see the module docstring for the order)."""
    if settings.NOTEBOOKS.value:
        return settings.NOTEBOOKS.value
    mine = project_root() / "notebooks"
    return mine if _has_notebooks(mine) else package_notebooks_dir()


def profiles_dir() -> Path:
    """The shipped profiles (smoke, quick, full): the checkout's ``report/profiles/``, else the installed copies."""
    root = checkout_root()
    return root / "report" / "profiles" if root else SHIPPED_DIR / "profiles"


# ---------------------------------------------------------------- hw3 init

def init_project(folder: str | Path, profile: str = "quick", name: str = "my") -> list[Path]:
    """Copy the notebooks, ``profile`` (as ``NAME.yaml``) and a ``.hw3-project`` marker into ``folder``.

    Never overwrites: if any of those files exists, a ``ValueError`` names it and nothing is written.
    """
    folder = Path(folder)
    if not name or Path(name).name != name or name.startswith("."):
        raise ValueError(f"--name {name!r}: a plain file name without folders, e.g. my")
    src_nb = package_notebooks_dir()
    notebooks = sorted(src_nb.glob(NOTEBOOK_GLOB))
    if not notebooks:
        raise ValueError(f"no notebooks found in {src_nb} (a broken install?)")
    src_profile = profiles_dir() / f"{profile}.yaml"
    if not src_profile.is_file():
        known = ", ".join(sorted(p.stem for p in profiles_dir().glob("*.yaml")))
        raise ValueError(f"unknown profile {profile!r}; known: {known}")
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{folder} exists and is not a folder")
    plan = [(nb, folder / "notebooks" / nb.name) for nb in notebooks]
    plan += [(src_profile, folder / f"{name}.yaml"), (None, folder / MARKER)]
    for _, dst in plan:
        if dst.exists():
            raise ValueError(f"{dst} already exists: hw3 init never overwrites (pick a new folder)")
    (folder / "notebooks").mkdir(parents=True, exist_ok=True)
    for src, dst in plan:
        if src is None:
            dst.write_text("# hw3 project folder (made by `hw3 init`): hw3 report runs the notebooks/ here.\n")
        elif src.suffix == ".yaml":
            dst.write_text(f"# {dst.name}: a copy of the {profile} profile made by `hw3 init`; edit it, then run\n"
                           f"#   hw3 report --profile {dst.name}\n" + src.read_text())
        else:
            shutil.copyfile(src, dst)
    return [dst for _, dst in plan]


def _cli_init(args) -> int:
    written = init_project(args.dir, profile=args.profile, name=args.name)
    print(f"wrote {len(written)} files to {args.dir}: notebooks/, {args.name}.yaml, {MARKER}")
    print(f"next: cd {args.dir} && hw3 report --profile {args.name}.yaml")
    return 0


def register(groups) -> None:
    p = groups["root"].add_parser(
        "init", help="copy the notebooks and a profile into a folder of your own",
        description="Copy the four notebooks, a profile (as NAME.yaml) and a .hw3-project marker into DIR; "
                    "`hw3 report` run there uses those notebooks. Existing files are never overwritten.")
    p.add_argument("dir", metavar="DIR", help="project folder (created if missing)")
    p.add_argument("--profile", default="quick", help="profile to copy: smoke, quick (default) or full")
    p.add_argument("--name", default="my", help="name of the copied profile (default: my → my.yaml)")
    p.set_defaults(func=_cli_init)


def recorded_choices() -> list[Path]:
    """Development choices recorded with the package (``report/choices/*.json`` of the checkout, else the installed
    copies): Problem 4 loads one made on the same data with the same protocol instead of developing again."""
    root = checkout_root()
    folder = root / "report" / "choices" if root else SHIPPED_DIR / "choices"
    return sorted(folder.glob("*.json"))
