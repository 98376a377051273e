#!/usr/bin/env python3
"""python hw3_eval.py PRED.csv GT.csv — accuracy (%) of image_name,label predictions, as `hw3 eval PRED GT`.

Run with any Python: without hw3lib importable it re-runs itself with the repository's .venv (`make install`).
"""
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

if len(sys.argv) != 3:
    sys.exit("usage: python hw3_eval.py PRED.csv GT.csv")
try:
    from hw3lib.predict import evaluate_csv  # noqa: F401 (checks that hw3lib and its dependencies import)
except ImportError:
    venv = HERE / ".venv"
    if (venv / "bin" / "python").exists() and Path(sys.prefix).resolve() != venv.resolve():
        os.execv(str(venv / "bin" / "python"), [str(venv / "bin" / "python"), __file__, *sys.argv[1:]])
    sys.exit("hw3_eval.py: hw3lib is not installed: run 'make install' (or pip install .) first")

from hw3lib.cli import main  # noqa: E402

raise SystemExit(main(["eval", *sys.argv[1:]]))
