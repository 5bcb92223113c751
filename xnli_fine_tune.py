"""Fine-tune mBERT on XNLI under a fixed mask: a ticket from another language or task (transfer), or a random /
one-shot mask at the same sparsity, from pre-trained or random weights. A mask without a pooler entry (from NER or
MLM) leaves the classifier's pooler dense unpruned.

    python xnli_fine_tune.py --mask_dir tmp/xnli_mask/fr_mask.pt --output_dir tmp/fine-tuning/xnli/fr \
        --dataset_name xnli --data_language fr --model_name_or_path bert-base-multilingual-cased ...
"""
from functools import partial

from utils.infra.args import ExperimentTrainingArguments, MaskArguments, ModelArguments, parse_args
from utils.infra.errors import exit_on_user_error
from utils.core.finetune import run_finetune
from utils.tasks.xnli import XnliDataArguments, build_xnli


@exit_on_user_error
def main(argv=None) -> dict:
    model_args, data_args, mask_args, training_args = parse_args(
        (ModelArguments, XnliDataArguments, MaskArguments, ExperimentTrainingArguments), argv
    )
    build_setup = partial(build_xnli, model_args, data_args, training_args, weight_init=mask_args.weight_init)
    return run_finetune(build_setup, model_args, data_args, mask_args, training_args, script="xnli_fine_tune.py")


if __name__ == "__main__":
    main()
