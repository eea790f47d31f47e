#!/usr/bin/env bash
# The whole GPU report in one command (issue 15): run on a machine with a CUDA GPU from the
# repository root, then commit benchmarks/results/cuda/.
#
#   benchmarks/gpu.sh              # budget 270 s: sections start only within it (~5 min in all)
#   benchmarks/gpu.sh 600          # a longer budget
#   benchmarks/gpu.sh 270 --quick  # extra arguments go to `python -m benchmarks.run`
#
# Same as `recon benchmark --device cuda --budget SECONDS`.  On CUDA the learned-model section
# runs first: VarNet-12 at knee size against fastMRI's VarNet with the same weights, eager
# float32 / bf16 autocast / torch.compile with CUDA graphs (float32 and bf16), timed with CUDA
# events, memory from torch.cuda.max_memory_allocated.  Without a GPU it says so and exits 0
# having run nothing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
BUDGET="${1:-270}"
shift || true
if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  echo "benchmarks/gpu.sh: no CUDA device (torch.cuda.is_available() is False): GPU report not run" >&2
  exit 0
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
exec "$PY" -m benchmarks.run --device cuda --budget "$BUDGET" "$@"
