"""Fine-tune mBERT on PAWS-X under a fixed mask: a ticket from another language or task (transfer), or a random /
one-shot mask at the same sparsity, from pre-trained or random weights. A mask without a pooler entry (from NER or
MLM) leaves the classifier's pooler dense unpruned.

    python pawsx_fine_tune.py configs/pawsx_fine_tune_fr.json [--mask_dir tmp/pawsx/masks/sparsity_50.pt]
    python pawsx_fine_tune.py configs/offline/pawsx_fine_tune.json
"""
from functools import partial

from utils.infra.args import ExperimentTrainingArguments, MaskArguments, ModelArguments, parse_args
from utils.infra.errors import exit_on_user_error
from utils.core.finetune import run_finetune
from utils.tasks.pawsx import PawsxDataArguments, build_pawsx


@exit_on_user_error
def main(argv=None) -> dict:
    model_args, data_args, mask_args, training_args = parse_args(
        (ModelArguments, PawsxDataArguments, MaskArguments, ExperimentTrainingArguments), argv
    )
    build_setup = partial(build_pawsx, model_args, data_args, training_args, weight_init=mask_args.weight_init)
    return run_finetune(build_setup, model_args, data_args, mask_args, training_args, script="pawsx_fine_tune.py")


if __name__ == "__main__":
    main()
