"""Per-layer SVCCA, PWCCA and linear CKA of sentence representations (the paper's Appendix F), under masks.

    python representation_similarity.py --model_name_or_path bert-base-multilingual-cased \
        --dataset_name wmt14 --dataset_config fr-en --output_dir analysis/representations \
        [--src_mask runs/ner_en/masks/sparsity_50.pt] [--tgt_mask ...] [--pooling cls|mean]
    python representation_similarity.py --model_name_or_path tiny_models/mbert-tiny --tsv data/parallel/en-fr.tsv \
        --src_mask runs/offline/LT_ner/en/masks/sparsity_50.pt --compare dense_vs_ticket --output_dir analysis/repr

--compare languages (default): sources vs targets, each under its mask; --compare dense_vs_ticket: each masked
side's sentences under the dense model vs under its mask. Prints every layer's measures beside their value on
shuffled pairs and writes representations_<name>.json, .csv and .png into --output_dir.
"""
from utils.infra.args import InferenceModelArguments, parse_args
from utils.infra.errors import exit_on_user_error
from utils.analysis.representation_similarity import RepresentationArguments, run_representation_similarity


@exit_on_user_error
def main(argv=None) -> dict:
    model_args, args = parse_args((InferenceModelArguments, RepresentationArguments), argv)
    return run_representation_similarity(model_args, args)


if __name__ == "__main__":
    main()
