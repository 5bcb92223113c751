#!/usr/bin/env bash
# Offline demo on the tiny model and the bundled WikiANN-format samples:
# NER tickets for English and French by IMP, the English 50% ticket fine-tuned on French beside French's own ticket,
# then how similar the two tickets are and a summary of every run. Outputs go to runs/offline/.
set -euo pipefail
cd "$(dirname "$0")"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # the tiny model runs fastest on one thread

python scripts/build_tiny_models.py
python LT_ner.py configs/offline/LT_ner_en.json
python LT_ner.py configs/offline/LT_ner_fr.json
# transfer: the English ticket trained on French, and French's own ticket for comparison
python ner_fine_tune.py configs/offline/ner_fine_tune_fr.json \
  --mask_dir runs/offline/LT_ner/en/masks/sparsity_50.pt --output_dir runs/offline/ner_fine_tune/en_mask_on_fr
python ner_fine_tune.py configs/offline/ner_fine_tune_fr.json
python mask_similarity.py --output_dir runs/offline/similarity \
  --masks runs/offline/LT_ner/en/masks/sparsity_50.pt runs/offline/LT_ner/fr/masks/sparsity_50.pt
python summarize_results.py --runs runs/offline/LT_ner runs/offline/ner_fine_tune --output_dir runs/offline/summary
