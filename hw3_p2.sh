#!/usr/bin/env bash
# hw3_p2.sh OUT.png — 32 faces from Problem 2's DCGAN (course script).
# The run: runs/quick/p2_gan (made by `make report`), or $HW3_RUNS/p2_gan. Same as: hw3 handin p2 OUT.png
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${HW3_PYTHON:-$here/.venv/bin/python}"
[ -x "$python" ] || python=python3
HW3_ROOT="${HW3_ROOT:-$here}" exec "$python" -m hw3lib handin p2 "$@"
