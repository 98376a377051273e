#!/usr/bin/env bash
# hw3_p3.sh IMAGES_DIR TARGET OUT.csv — Problem 3's DANN predictions (image_name,label) for TARGET's digits
# (TARGET: mnistm, svhn or usps). The run: runs/quick/p3_dann (made by `make report`), or $HW3_RUNS/p3_dann.
# Same as: hw3 handin p3 IMAGES_DIR TARGET OUT.csv
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${HW3_PYTHON:-$here/.venv/bin/python}"
[ -x "$python" ] || python=python3
HW3_ROOT="${HW3_ROOT:-$here}" exec "$python" -m hw3lib handin p3 "$@"
