"""Find language-modelling lottery tickets by iterative magnitude pruning (IMP) on Wikipedia or plain text: masked
LM in mBERT with --mlm (the paper's), causal LM in a decoder LLM without it; rounds are judged by validation
perplexity (lower is better).

    python LT_pretrain.py --output_dir LT_pretrain_model --model_type mbert \
        --model_name_or_path bert-base-multilingual-cased --train_file pretrain_data/en.train.json \
        --validation_file pretrain_data/en.valid.json --do_train --do_eval --mlm --save_steps 10000 ...
    python LT_pretrain.py configs/offline/LT_pretrain.json [--seed 5]
    python LT_pretrain.py configs/offline/LT_clm.json          # causal LM, tiny Llama
"""
from functools import partial

from utils.infra.args import ExperimentTrainingArguments, IMPArguments, ModelArguments, parse_args
from utils.infra.errors import exit_on_user_error
from utils.core.imp import run_imp
from utils.tasks.clm import build_language_model
from utils.tasks.mlm import MlmDataArguments


@exit_on_user_error
def main(argv=None) -> dict:
    model_args, data_args, imp_args, training_args = parse_args(
        (ModelArguments, MlmDataArguments, IMPArguments, ExperimentTrainingArguments), argv
    )
    build_setup = partial(build_language_model, model_args, data_args, training_args)
    return run_imp(build_setup, model_args, data_args, imp_args, training_args, script="LT_pretrain.py")


if __name__ == "__main__":
    main()
