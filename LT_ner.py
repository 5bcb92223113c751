"""Find WikiANN NER lottery tickets in mBERT by iterative magnitude pruning (IMP).

    python LT_ner.py --output_dir tmp/ner --data_language fr --dataset_name wikiann \
        --model_name_or_path bert-base-multilingual-cased --do_train --do_eval --save_steps 1875 ...
    python LT_ner.py configs/offline/LT_ner_en.json [--seed 5]
"""
from functools import partial

from utils.infra.args import ExperimentTrainingArguments, IMPArguments, ModelArguments, parse_args
from utils.infra.errors import exit_on_user_error
from utils.core.imp import run_imp
from utils.tasks.ner import NerDataArguments, build_ner


@exit_on_user_error
def main(argv=None) -> dict:
    model_args, data_args, imp_args, training_args = parse_args(
        (ModelArguments, NerDataArguments, IMPArguments, ExperimentTrainingArguments), argv
    )
    build_setup = partial(build_ner, model_args, data_args, training_args)
    return run_imp(build_setup, model_args, data_args, imp_args, training_args, script="LT_ner.py")


if __name__ == "__main__":
    main()
