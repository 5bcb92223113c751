"""Fine-tune mBERT on WikiANN NER under a fixed mask: a ticket from another language or task (transfer), or a
random / one-shot mask at the same sparsity, from pre-trained or random weights.

    python ner_fine_tune.py --mask_dir tmp/ner_mask/fr_mask.pt --output_dir tmp/fine-tuning/ner/fr \
        --data_language fr --dataset_name wikiann --model_name_or_path bert-base-multilingual-cased ...
"""
from functools import partial

from utils.infra.args import ExperimentTrainingArguments, MaskArguments, ModelArguments, parse_args
from utils.infra.errors import exit_on_user_error
from utils.core.finetune import run_finetune
from utils.tasks.ner import NerDataArguments, build_ner


@exit_on_user_error
def main(argv=None) -> dict:
    model_args, data_args, mask_args, training_args = parse_args(
        (ModelArguments, NerDataArguments, MaskArguments, ExperimentTrainingArguments), argv
    )
    build_setup = partial(build_ner, model_args, data_args, training_args, weight_init=mask_args.weight_init)
    return run_finetune(build_setup, model_args, data_args, mask_args, training_args, script="ner_fine_tune.py")


if __name__ == "__main__":
    main()
