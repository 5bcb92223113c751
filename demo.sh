#!/usr/bin/env bash
# Offline demo: the paper's pipeline as one study (configs/studies/offline.json) on the tiny model and the bundled
# WikiANN-format samples: NER tickets for English and French (two seeds each), every 50% ticket and their consensus
# ticket fine-tuned on both languages, dense and random baselines, ticket similarity, en-fr retrieval per layer, a summary and a report.
# Outputs go to runs/studies/offline/ (report.md there). Running it again skips what is complete.
set -euo pipefail
cd "$(dirname "$0")"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # the tiny model runs fastest on one thread

python scripts/build_tiny_models.py
python study.py configs/studies/offline.json
