#!/usr/bin/env bash
# hw3_p4.sh IMAGES_DIR TARGET OUT.csv — Problem 4's predictions (image_name,label) for TARGET's digits, by the run
# the P4 notebook selected, or the mean probabilities of an ensemble's runs (runs/quick/p4_uda/metrics.json
# "selected_runs"), or $HW3_RUNS/p4_uda's.
# Same as: hw3 handin p4 IMAGES_DIR TARGET OUT.csv
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${HW3_PYTHON:-$here/.venv/bin/python}"
[ -x "$python" ] || python=python3
HW3_ROOT="${HW3_ROOT:-$here}" exec "$python" -m hw3lib handin p4 "$@"
