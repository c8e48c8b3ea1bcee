#!/usr/bin/env bash
# Run the GPU checks on a machine with CUDA, in minutes, and keep their output:
#   1. the tests marked `gpu` (every estimator on CUDA vs the CPU, float64 and float32);
#   2. the benchmark on the GPU (`python -m dve_teach bench --device cuda`): every section in fast mode
#      as a smoke test, then the core sections (a)-(h) in full mode (set GPU_CHECK_FULL=0 to skip it;
#      the update-rule and reorder sections in full mode take far longer than a device loan).
# Usage: .ci/gpu_check.sh [output folder, default gpu_check_out]   (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-gpu_check_out}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
python - <<'PY' | tee "$OUT/device.txt"
import torch
print("torch", torch.__version__, "cuda available:", torch.cuda.is_available())
if not torch.cuda.is_available():
    raise SystemExit("no CUDA device: the GPU checks need one (run this on a GPU machine)")
print("device:", torch.cuda.get_device_name(0))
PY
python -m pytest -q -m gpu -p no:cacheprovider tests 2>&1 | tee "$OUT/pytest_gpu.txt"
bench() {  # bench MODE FAST SECTION: JSON report and its printed table
    DVE_TEACH_FAST="$2" python -m dve_teach bench --device cuda --section "$3" --json --quiet > "$OUT/bench_cuda_$1.json"
    python -c "import json, sys; from dve_teach.cli.bench import format_bench; print(format_bench(json.load(open(sys.argv[1]))))" \
        "$OUT/bench_cuda_$1.json" | tee "$OUT/bench_cuda_$1.txt"
}
bench fast 1 all
if [ "${GPU_CHECK_FULL:-1}" != "0" ]; then
    bench full 0 core
fi
echo "GPU checks done; outputs in $OUT/"
