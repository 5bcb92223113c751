"""Parallel sentence retrieval per layer (the paper's Fig. 7), optionally under a sub-network mask.

    python sentence_retrieval.py --model_name_or_path bert-base-multilingual-cased \
        --dataset_name wmt14 --dataset_config fr-en --output_dir analysis/retrieval \
        [--src_mask runs/xnli_en/masks/sparsity_50.pt] [--tgt_mask ...] [--pooling cls]
    python sentence_retrieval.py --model_name_or_path tiny_models/mbert-tiny --tsv data/parallel/en-fr.tsv \
        --output_dir analysis/retrieval

Prints the margin-kNN accuracy of every hidden layer (0 = embeddings) in both directions and writes
retrieval_<src>-<tgt>.json and .png into --output_dir.
"""
from utils.infra.args import InferenceModelArguments, parse_args
from utils.infra.errors import exit_on_user_error
from utils.analysis.retrieval import RetrievalArguments, run_retrieval


@exit_on_user_error
def main(argv=None) -> dict:
    model_args, args = parse_args((InferenceModelArguments, RetrievalArguments), argv)
    return run_retrieval(model_args, args)


if __name__ == "__main__":
    main()
