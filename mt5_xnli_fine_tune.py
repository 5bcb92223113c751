"""Fine-tune mT5 on XNLI (text-to-text) under a fixed mask: a ticket from another language (transfer), or a
random / one-shot mask at --sparsity, from pre-trained or random weights.

    python mt5_xnli_fine_tune.py --mask_dir tmp/xnli_mask/fr_mask.pt --output_dir tmp/fine-tuning/xnli/fr \
        --model_name_or_path google/mt5-base --dataset_name xnli --data_language fr --do_train --do_eval ...
    python mt5_xnli_fine_tune.py configs/offline/mt5_xnli_fine_tune.json [--pruning_type random --sparsity 50]
"""
from functools import partial

from utils.infra.args import ExperimentTrainingArguments, ModelArguments, parse_args
from utils.infra.errors import exit_on_user_error
from utils.core.finetune import run_finetune
from utils.tasks.mt5_xnli import Mt5MaskArguments, Mt5XnliDataArguments, build_mt5_xnli


@exit_on_user_error
def main(argv=None) -> dict:
    model_args, data_args, mask_args, training_args = parse_args(
        (ModelArguments, Mt5XnliDataArguments, Mt5MaskArguments, ExperimentTrainingArguments), argv
    )
    build_setup = partial(build_mt5_xnli, model_args, data_args, training_args, weight_init=mask_args.weight_init)
    return run_finetune(build_setup, model_args, data_args, mask_args, training_args, script="mt5_xnli_fine_tune.py")


if __name__ == "__main__":
    main()
