#!/usr/bin/env bash
# hw3_p1.sh OUT.png — 32 faces from Problem 1's VAE (course script).
# The run: runs/quick/p1_vae (made by `make report`), or $HW3_RUNS/p1_vae. Same as: hw3 handin p1 OUT.png
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${HW3_PYTHON:-$here/.venv/bin/python}"
[ -x "$python" ] || python=python3
HW3_ROOT="${HW3_ROOT:-$here}" exec "$python" -m hw3lib handin p1 "$@"
