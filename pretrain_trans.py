"""Train a language-modelling objective (mBERT's masked LM with --mlm, a decoder's causal LM without) for
--max_steps under a fixed mask: a ticket from another language or task (transfer), or a random / one-shot mask at
the same sparsity, from pre-trained or random weights.
An XNLI mask's pooler entry is ignored (the MLM model has no pooler).

    python pretrain_trans.py --mask_dir tmp/dif_mask/pretrain_mask.pt --output_dir tmp/fine-tuning/pre \
        --model_type mbert --mlm --model_name_or_path bert-base-multilingual-cased \
        --train_file pretrain_data/en.train.json --validation_file pretrain_data/en.valid.json --max_steps 20000 ...
"""
from functools import partial

from utils.infra.args import ExperimentTrainingArguments, MaskArguments, ModelArguments, parse_args
from utils.infra.errors import exit_on_user_error
from utils.core.finetune import run_finetune
from utils.tasks.clm import build_language_model
from utils.tasks.mlm import MlmDataArguments


@exit_on_user_error
def main(argv=None) -> dict:
    model_args, data_args, mask_args, training_args = parse_args(
        (ModelArguments, MlmDataArguments, MaskArguments, ExperimentTrainingArguments), argv
    )
    build_setup = partial(build_language_model, model_args, data_args, training_args, weight_init=mask_args.weight_init)
    return run_finetune(build_setup, model_args, data_args, mask_args, training_args, script="pretrain_trans.py")


if __name__ == "__main__":
    main()
