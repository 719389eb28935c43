#!/usr/bin/env bash
# The GPU check in one command, sized for a short device lease (about 8 minutes in all):
#   bash benchmarks/gpu_check.sh            # results in $OUT (when set) or benchmarks/results
# It needs a Python with torch (CUDA build), torchvision and diffusers; PYTHON picks it (default python3).
# The suite stops starting sections after GPU_CHECK_BUDGET seconds and is killed after GPU_CHECK_TIMEOUT;
# every finished section is already written by then.
set -u
PYTHON=${PYTHON:-python3}
RESULTS=${OUT:-benchmarks/results}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PYTHON" -c "import torch, torchvision, diffusers; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" \
  || { echo "no usable torch/torchvision/diffusers in $PYTHON" >&2; exit 2; }
exec timeout -k 10 "${GPU_CHECK_TIMEOUT:-450}" "$PYTHON" -m magig_core benchmark --suite gpu \
  --budget "${GPU_CHECK_BUDGET:-380}" --out "$RESULTS"
