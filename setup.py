"""Build hook: the wheel carries the repository's notebooks and profiles (all other metadata: pyproject.toml).

``notebooks/*.ipynb``, ``report/profiles/*.yaml`` and ``report/choices/*.json`` (recorded development choices) stay
where people edit them, at the top of the repository;
``build_py`` copies them into ``hw3lib/_shipped/{notebooks,profiles,choices}/`` of the build, so a non-editable install
finds them (``hw3lib.project``). One source, no symlinks, no copies in git; editable installs read the checkout.
"""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
# name: (folder, pattern, required); recorded choices are optional (none: the quick profile develops its own)
SHIPPED = {"notebooks": ("notebooks", "*.ipynb", True), "profiles": ("report/profiles", "*.yaml", True),
           "choices": ("report/choices", "*.json", False)}


class BuildWithNotebooks(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install finds them in the checkout
        for name, (folder, pattern, required) in SHIPPED.items():
            files = sorted((HERE / folder).glob(pattern))
            if not files and required:
                raise SystemExit(f"setup.py: no {pattern} in {HERE / folder}: cannot build a complete wheel")
            dst = Path(self.build_lib) / "hw3lib" / "_shipped" / name
            shutil.rmtree(dst, ignore_errors=True)  # a stale notebook must not survive a rebuild
            dst.mkdir(parents=True)
            for f in files:
                shutil.copyfile(f, dst / f.name)


setup(cmdclass={"build_py": BuildWithNotebooks})
