"""Held-out perplexity of a causal LM under each mask, on every language's text (the "transfer" of a one-shot mask).

    python mask_perplexity.py --model_name_or_path tiny_models/llama-tiny --masks runs/wanda/en/masks/sparsity_50.pt \
        runs/wanda/fr/masks/sparsity_50.pt --labels en fr --eval_files en=held/en.txt,fr=held/fr.txt \
        [--random_sparsity 0.5] [--seq_len 128] [--max_windows 8] --output_dir analysis/perplexity

Writes OUTPUT_DIR/mask_perplexity.json: the dense model's perplexity per language, and each mask's (and a random
mask's) on the original weights.
"""
from utils.infra.args import InferenceModelArguments, parse_args
from utils.infra.errors import exit_on_user_error
from utils.oneshot.evaluate import MaskPerplexityArguments, run_mask_perplexity


@exit_on_user_error
def main(argv=None) -> dict:
    model_args, args = parse_args((InferenceModelArguments, MaskPerplexityArguments), argv)
    return run_mask_perplexity(model_args, args)


if __name__ == "__main__":
    main()
