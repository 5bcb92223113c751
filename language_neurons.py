"""Language-specific FFN neurons (LAPE, Tang et al. 2024) of any supported model, their ablation, and how they sit
in per-language sub-networks.

    python language_neurons.py --model_name_or_path MODEL --text_files data/{lang}.txt --languages en,fr,de \
        --output_dir analysis/neurons [--eval_files heldout/{lang}.txt] [--mask_dir runs/{lang}/masks/sparsity_50.pt]

Measures each FFN neuron's activation probability per language, selects LAPE's language-specific neurons (every
threshold a flag, the paper's defaults), writes them in LAPE's format and as masks (mask_similarity.py and
mask_ops.py take them); with --eval_files, the perplexity change when each language's neurons (or random or
frequency-matched ones) are deactivated; with --mask_dir, whether a language's neurons sit where its mask keeps
weights the other languages' masks drop. See docs/neurons.md.
"""
from utils.analysis.neuron_run import NeuronArguments, run_language_neurons
from utils.analysis.neurons import NeuronResult
from utils.infra.args import InferenceModelArguments, parse_args
from utils.infra.errors import exit_on_user_error


@exit_on_user_error
def main(argv=None) -> NeuronResult:
    model_args, args = parse_args((InferenceModelArguments, NeuronArguments), argv)
    return run_language_neurons(model_args, args)


if __name__ == "__main__":
    main()
