"""Argument parsing: the seed README's flags verbatim, JSON configs with CLI overrides, and clear errors."""
from __future__ import annotations

import json

import pytest

from utils.infra.args import ExperimentTrainingArguments, IMPArguments, MaskArguments, ModelArguments, parse_args
from utils.infra.errors import UserError
from utils.tasks.ner import NerDataArguments

IMP_TYPES = (ModelArguments, NerDataArguments, IMPArguments, ExperimentTrainingArguments)
FINETUNE_TYPES = (ModelArguments, NerDataArguments, MaskArguments, ExperimentTrainingArguments)

SEED_LT_NER = """--output_dir tmp/ner --data_language fr --task_name ner --dataset_name wikiann
--model_name_or_path bert-base-multilingual-cased --do_train --do_eval --max_seq_length 128
--per_device_train_batch_size 32 --per_device_eval_batch_size 32 --learning_rate 2e-5 --num_train_epochs 30
--overwrite_output_dir --evaluate_during_training --logging_steps 1875 --save_steps 1875 --pad_to_max_length
--seed 57""".split()

SEED_NER_FINE_TUNE = """--mask_dir tmp/ner_mask/fr_mask.pt --output_dir tmp/fine-tuning/ner/fr --task_name ner
--dataset_name wikiann --data_language fr --model_name_or_path bert-base-multilingual-cased --do_train --do_eval
--max_seq_length 128 --per_device_train_batch_size 32 --per_device_eval_batch_size 32 --learning_rate 2e-5
--num_train_epochs 3 --overwrite_output_dir --evaluate_during_training --pad_to_max_length --logging_steps 1875
--save_steps 0 --seed 5 --weight_init pre""".split()


def test_seed_lt_ner_command_parses_with_its_meaning():
    model, data, imp, training = parse_args(IMP_TYPES, SEED_LT_NER)
    assert model.model_name_or_path == "bert-base-multilingual-cased"
    assert data.languages == ["fr"] and data.dataset_name == "wikiann" and data.pad_to_max_length
    assert training.save_steps == 1875 and training.num_train_epochs == 30 and training.seed == 57
    assert training.overwrite_output_dir and training.evaluate_during_training
    assert imp.prune_rate == 0.1 and imp.target_sparsity == 0.9


def test_seed_ner_fine_tune_command_parses():
    model, data, mask, training = parse_args(FINETUNE_TYPES, SEED_NER_FINE_TUNE)
    assert mask.mask_dir == "tmp/ner_mask/fr_mask.pt" and mask.weight_init == "pre" and mask.pruning_type == "lth"
    assert training.save_steps == 0 and training.seed == 5 and training.num_train_epochs == 3


def test_json_config_with_cli_override(tmp_path):
    config = tmp_path / "cfg.json"
    config.write_text(json.dumps({"model_name_or_path": "m", "output_dir": "o", "seed": 3, "do_train": True,
                                  "data_language": "en,fr", "prune_rate": 0.2, "pad_to_max_length": False}))
    model, data, imp, training = parse_args(IMP_TYPES, [str(config), "--seed", "5", "--prune_rate", "0.25"])
    assert training.seed == 5 and imp.prune_rate == 0.25 and training.do_train
    assert data.languages == ["en", "fr"] and not data.pad_to_max_length
    _, _, _, training = parse_args(IMP_TYPES, [str(config)])
    assert training.seed == 3


@pytest.mark.parametrize(
    "config, message",
    [
        ({"model_name_or_path": "m", "output_dir": "o", "learning_rat": 1e-5}, "unknown key 'learning_rat'.*learning_rate"),
        ({"model_name_or_path": "m", "output_dir": "o", "seed": "abc"}, "--seed: invalid int value"),
        ({"model_name_or_path": "m", "output_dir": "o", "prune_schedule": "cubic"}, "invalid choice"),
        ([1, 2], "JSON object"),
    ],
)
def test_bad_configs_name_the_problem(tmp_path, config, message):
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(config))
    with pytest.raises(UserError, match=message):
        parse_args(IMP_TYPES, [str(path)])


def test_bad_command_lines(tmp_path):
    with pytest.raises(UserError, match="unknown argument"):
        parse_args(IMP_TYPES, ["--model_name_or_path", "m", "--output_dir", "o", "--prune_rat", "0.1"])
    with pytest.raises(UserError, match="output_dir"):
        parse_args(IMP_TYPES, ["--model_name_or_path", "m"])
    with pytest.raises(UserError, match="not found"):
        parse_args(IMP_TYPES, [str(tmp_path / "missing.json")])
    (tmp_path / "broken.json").write_text("{oops")
    with pytest.raises(UserError, match="not valid JSON"):
        parse_args(IMP_TYPES, [str(tmp_path / "broken.json")])


def test_sparsity_accepts_fractions_and_percentages():
    random_mask = ["--model_name_or_path", "m", "--output_dir", "o", "--pruning_type", "random", "--sparsity"]
    _, _, mask, _ = parse_args(FINETUNE_TYPES, [*random_mask, "50"])
    assert mask.sparsity_fraction == 0.5
    _, _, mask, _ = parse_args(FINETUNE_TYPES, [*random_mask, "0.3"])
    assert mask.sparsity_fraction == 0.3
    with pytest.raises(UserError, match=r"--sparsity must be .*\[0, 100\), got 100"):
        parse_args(FINETUNE_TYPES, [*random_mask, "100"])
