"""One-shot pruning from calibration text: magnitude, Wanda or SparseGPT, block by block (see docs/llm.md).

    python prune_oneshot.py --model_name_or_path meta-llama/Llama-3.1-8B --method wanda --sparsity 0.5 \
        --calibration_file c4/en.json --data_language en --eval_files en=wikitext2/test.txt \
        --output_dir runs/oneshot/wanda/en/s0 [--structure 2:4] [--offload] [--save_weights]

Writes OUTPUT_DIR/masks/sparsity_50.pt (with its .json metadata), oneshot_results.json (perplexity before and after
per --eval_files language, seconds and peak memory per block) and, with --save_weights, the pruned model to
OUTPUT_DIR/model.
"""
from utils.infra.args import InferenceModelArguments, parse_args
from utils.infra.errors import exit_on_user_error
from utils.oneshot.run import OneshotArguments, run_oneshot


@exit_on_user_error
def main(argv=None) -> dict:
    model_args, args = parse_args((InferenceModelArguments, OneshotArguments), argv)
    return run_oneshot(model_args, args)


if __name__ == "__main__":
    main()
