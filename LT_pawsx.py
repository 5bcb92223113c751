"""Find PAWS-X (paraphrase identification) lottery tickets in mBERT by iterative magnitude pruning (IMP); the
pooler dense is pruned too.

    python LT_pawsx.py configs/LT_pawsx_args.json          # mBERT, hub data: 10 rounds of 3 epochs
    python LT_pawsx.py configs/offline/LT_pawsx.json [--seed 5]
"""
from functools import partial

from utils.infra.args import ExperimentTrainingArguments, IMPArguments, ModelArguments, parse_args
from utils.infra.errors import exit_on_user_error
from utils.core.imp import run_imp
from utils.tasks.pawsx import PawsxDataArguments, build_pawsx


@exit_on_user_error
def main(argv=None) -> dict:
    model_args, data_args, imp_args, training_args = parse_args(
        (ModelArguments, PawsxDataArguments, IMPArguments, ExperimentTrainingArguments), argv
    )
    build_setup = partial(build_pawsx, model_args, data_args, training_args)
    return run_imp(build_setup, model_args, data_args, imp_args, training_args, script="LT_pawsx.py")


if __name__ == "__main__":
    main()
