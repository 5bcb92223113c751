#!/usr/bin/env bash
# GPU benchmark of IMP-style masked training on the full mBERT architecture (see benchmarks/gpu_bench.py).
#
#   benchmarks/gpu.sh OUT_DIR [gpu_bench.py flags...]     e.g. benchmarks/gpu.sh "$OUT"  (about 4-6 minutes on an H200)
#
# Writes OUT_DIR/gpu_bench.{json,md,log} and OUT_DIR/nvidia-smi.txt. Without CUDA it runs a small CPU check instead.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-benchmarks/results/gpu-$(date +%Y%m%d-%H%M%S)}"
[ $# -gt 0 ] && shift
mkdir -p "$OUT"
(nvidia-smi 2>&1 || echo "nvidia-smi not available") > "$OUT/nvidia-smi.txt"
export TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available())" | tee "$OUT/gpu_bench.log"
python benchmarks/gpu_bench.py --out "$OUT" "$@" 2>&1 | tee -a "$OUT/gpu_bench.log"
