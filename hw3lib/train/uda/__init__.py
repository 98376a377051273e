"""Unsupervised domain adaptation on digits (Problems 3 and 4): every method of :mod:`hw3lib.methods` on one loop.

* :mod:`.config` — :class:`UDAConfig`, typed and resolved once (shared fields + the method's ``knobs``);
* :mod:`.loop` — the shared training loop (losses or a method's update, hooks, selection);
* :mod:`.select` — checkpoint scoring by unsupervised validators;
* :mod:`.runs` — train or load a run, and the sets of runs the notebooks make;
* :mod:`.cli` — ``hw3 train uda``.
"""
from hw3lib.train.uda.cli import register
from hw3lib.train.uda.config import UDAConfig
from hw3lib.train.uda.loop import Domains
from hw3lib.train.uda.runs import (UDAResult, baseline_runs, gta_configs, gta_runs, load_models, train_on,
                                   train_or_load, train_or_load_all, train_uda)

__all__ = ["Domains", "UDAConfig", "UDAResult", "baseline_runs", "gta_configs", "gta_runs", "load_models", "register",
           "train_on", "train_or_load", "train_or_load_all", "train_uda"]
