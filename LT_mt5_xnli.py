"""Find XNLI lottery tickets in mT5 (text-to-text) by iterative magnitude pruning (IMP).

Encoder and decoder are pruned each to the round's sparsity (--prune_scope per_stack, as the original).

    python LT_mt5_xnli.py configs/LT_mt5_xnli_args.json
    python LT_mt5_xnli.py --output_dir tmp/mt5_xnli --data_language fr --dataset_name xnli \
        --model_name_or_path google/mt5-base --do_train --do_eval --max_source_length 128 ...
    python LT_mt5_xnli.py configs/offline/LT_mt5_xnli.json [--seed 5]
"""
from functools import partial

from utils.infra.args import ExperimentTrainingArguments, ModelArguments, parse_args
from utils.infra.errors import exit_on_user_error
from utils.core.imp import run_imp
from utils.tasks.mt5_xnli import Mt5IMPArguments, Mt5XnliDataArguments, build_mt5_xnli


@exit_on_user_error
def main(argv=None) -> dict:
    model_args, data_args, imp_args, training_args = parse_args(
        (ModelArguments, Mt5XnliDataArguments, Mt5IMPArguments, ExperimentTrainingArguments), argv
    )
    build_setup = partial(build_mt5_xnli, model_args, data_args, training_args)
    return run_imp(build_setup, model_args, data_args, imp_args, training_args, script="LT_mt5_xnli.py")


if __name__ == "__main__":
    main()
