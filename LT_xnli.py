"""Find XNLI lottery tickets in mBERT by iterative magnitude pruning (IMP); the pooler dense is pruned too.

    python LT_xnli.py --output_dir tmp/xnli --data_language fr --task_name xnli --dataset_name xnli \
        --model_name_or_path bert-base-multilingual-cased --do_train --do_eval --save_steps 36813 ...
    python LT_xnli.py configs/offline/LT_xnli.json [--seed 5]
"""
from functools import partial

from utils.infra.args import ExperimentTrainingArguments, IMPArguments, ModelArguments, parse_args
from utils.infra.errors import exit_on_user_error
from utils.core.imp import run_imp
from utils.tasks.xnli import XnliDataArguments, build_xnli


@exit_on_user_error
def main(argv=None) -> dict:
    model_args, data_args, imp_args, training_args = parse_args(
        (ModelArguments, XnliDataArguments, IMPArguments, ExperimentTrainingArguments), argv
    )
    build_setup = partial(build_xnli, model_args, data_args, training_args)
    return run_imp(build_setup, model_args, data_args, imp_args, training_args, script="LT_xnli.py")


if __name__ == "__main__":
    main()
