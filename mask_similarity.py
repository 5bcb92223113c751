"""How much do sub-networks overlap? Jaccard similarity of the weights kept by two or more masks.

    python mask_similarity.py --masks runs/ner_en/masks/sparsity_50.pt runs/ner_fr/masks/sparsity_50.pt \
        [--labels en fr] --output_dir analysis/similarity [--no_plots] [--by head [--num_heads 12]]

Prints one row per pair (overall Jaccard, the expected Jaccard of random masks at the same densities, their ratio)
and the N-way overlap per layer; writes mask_similarity.json, mask_similarity_pairs.csv, mask_overlap.csv,
jaccard_matrix.csv, jaccard_heatmap.png and jaccard_per_layer.png into --output_dir. --by head adds the Jaccard
per attention head and FFN block (head_similarity.json, head_jaccard.csv, one head_jaccard_<a>_vs_<b>.png per pair)
and the share of each mask's kept weights that no other mask keeps (language_specific.csv and .png).
"""
from utils.infra.args import parse_args
from utils.infra.errors import exit_on_user_error
from utils.analysis.tools import MaskSimilarity, SimilarityArguments, run_mask_similarity


@exit_on_user_error
def main(argv=None) -> MaskSimilarity:
    (args,) = parse_args((SimilarityArguments,), argv)
    return run_mask_similarity(args)


if __name__ == "__main__":
    main()
