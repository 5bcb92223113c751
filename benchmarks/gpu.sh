#!/usr/bin/env bash
# GPU benchmarks (see benchmarks/gpu_bench.py):
#   1. IMP-style masked training on the full mBERT architecture: OUT_DIR/gpu_bench.{json,md,log}, nvidia-smi.txt
#   2. --speeds: steps/s per run of mBERT NER/XNLI fine-tuning and IMP rounds and an mT5 step with 1, 2, 4 and 8
#      runs sharing the GPU, bf16 off/on, torch_compile off/on: benchmarks/results/<gpu name>.json, the file
#      `study.py STUDY --dry_run --speeds FILE` (or the study key "speeds") turns into GPU-hours.
#
#   bash benchmarks/gpu.sh OUT_DIR [gpu_bench.py flags...]     e.g. on a GPU node of your cluster:
#   srun --gpus 1 --time 120 bash benchmarks/gpu.sh benchmarks/results/gpu-h100
#
# SPEEDS=0 skips part 2; SPEEDS_FLAGS passes flags to it (e.g. "--concurrency 1,2,4 --compile off"). Without CUDA
# both parts run a small CPU check instead, and the speeds file goes to OUT_DIR, not benchmarks/results.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-benchmarks/results/gpu-$(date +%Y%m%d-%H%M%S)}"
[ $# -gt 0 ] && shift
mkdir -p "$OUT"
(nvidia-smi 2>&1 || echo "nvidia-smi not available") > "$OUT/nvidia-smi.txt"
export TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available())" | tee "$OUT/gpu_bench.log"
python benchmarks/gpu_bench.py --out "$OUT" "$@" 2>&1 | tee -a "$OUT/gpu_bench.log"
if [ "${SPEEDS:-1}" != 0 ]; then
  SPEEDS_OUT=benchmarks/results
  python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" || SPEEDS_OUT="$OUT"
  # shellcheck disable=SC2086
  python benchmarks/gpu_bench.py --speeds --out "$SPEEDS_OUT" ${SPEEDS_FLAGS:-} 2>&1 | tee -a "$OUT/gpu_bench.log"
fi
