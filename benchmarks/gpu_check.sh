#!/usr/bin/env bash
# The one prepared GPU check (#8, #30) for a lent device session. Not yet run to completion on a GPU, so there is no
# measured time: each part's time limit below bounds it (parts 2-4: 710 s together, part 5: 240 s more).
#   bash benchmarks/gpu_check.sh            # writes into $OUT (the device tool's folder) or benchmarks/gpu-out
# Everything it prints also goes to a dated file, $OUT/gpu_check-YYYYMMDD-HHMMSS.txt (UTC; the folder is git-ignored),
# headed by the commit it ran.
# Runs on the device machine's own python3 (PyTorch preinstalled there; hw3lib from this checkout, no install):
#   1. what the GPU is; 2. the CUDA tests (bf16 steps, no host syncs, end-to-end runs, reload);
#   3. the throughput benchmark on the GPU (hw3lib: bf16 autocast, channels_last, uint8 data on the device),
#      eager, then with the VAE step compiled; 4. `hw3 report --profile full --plan`: every run of the full profile
#      and its time from steps measured on this GPU (course data sizes; nothing is trained); 5. the pool of
#      `hw3 runs train` on the GPU: the quick profile's Problem 3 runs, runs per hour.
# Each part has its own time limit, so a hang in one still returns the others' output.
set -uo pipefail
OUT=${OUT:-benchmarks/gpu-out}
mkdir -p "$OUT"
LOG="$OUT/gpu_check-$(date -u +%Y%m%d-%H%M%S).txt"
exec > >(tee "$LOG") 2>&1
echo "gpu_check.sh at $(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 HW3_PROGRESS=0
PY=${PYTHON:-python3}
{
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
  "$PY" -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(), 'bf16', torch.cuda.is_bf16_supported())"
} 2>&1 | tee "$OUT/gpu.txt"
timeout 200 "$PY" -m pytest -p no:cacheprovider -q -rs tests/test_cuda.py tests/test_amp.py 2>&1 | tee "$OUT/cuda_tests.txt"
timeout 240 "$PY" -m benchmarks.throughput --device cuda --workers 8 --out "$OUT/RESULTS_cuda.md" 2>&1 \
  | tee "$OUT/bench.txt"
timeout 150 "$PY" -m benchmarks.throughput --device cuda --workers 8 --only vae --compile \
  --out "$OUT/RESULTS_cuda_compile.md" 2>&1 | tee "$OUT/bench_compile.txt"
timeout 120 "$PY" -m hw3lib report --profile full --plan --device cuda 2>&1 | tee "$OUT/full_plan.txt"
# 5. the pool on the GPU (hw3 runs train): the quick profile's Problem 3 runs side by side on the one GPU, as many at
#    once as its memory holds (the layout line says how many); the summary line gives runs per hour.
timeout 90 "$PY" -m hw3lib data make --out /tmp/hw3-gpu-quick --size quick 2>&1 | tail -1 | tee "$OUT/pool_gpu.txt"
timeout 150 "$PY" -m hw3lib runs train --profile quick --only p3 --data /tmp/hw3-gpu-quick --device cuda 2>&1 \
  | tr '\r' '\n' | grep -v '^runs:' | tee -a "$OUT/pool_gpu.txt"
echo "gpu_check done: $LOG"
