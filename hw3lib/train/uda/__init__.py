"""Unsupervised domain adaptation on digits (Problems 3 and 4): every method on one loop.

* :mod:`.config` — :class:`UDAConfig`, typed and resolved once;
* :mod:`.methods` — one module per method (its losses and a registry entry); adding a method adds a file;
* :mod:`.loop` — the shared training loop of the DANN-network methods (GTA brings its own);
* :mod:`.runs` — train or load a run, and the sets of runs the notebooks make;
* :mod:`.cli` — ``hw3 train uda``.
"""
from hw3lib.train.uda import methods
from hw3lib.train.uda.cli import register
from hw3lib.train.uda.config import UDAConfig
from hw3lib.train.uda.loop import Domains
from hw3lib.train.uda.runs import (UDAResult, baseline_runs, gta_runs, load_models, train_or_load, train_or_load_all,
                                   train_on, train_uda)

__all__ = ["Domains", "UDAConfig", "UDAResult", "baseline_runs", "gta_runs", "load_models", "methods", "register",
           "train_on", "train_or_load", "train_or_load_all", "train_uda"]
