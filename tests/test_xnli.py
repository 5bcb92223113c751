"""XNLI with mBERT: IMP end to end, local labels, cross-task masks (pooler dense), random init, the seed commands."""
from __future__ import annotations

import json
import math
import shlex
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForMaskedLM, AutoModelForSequenceClassification

from utils.infra.args import ExperimentTrainingArguments, IMPArguments, MaskArguments, ModelArguments, parse_args
from utils.core.masks import Mask
from utils.core.pruning import prunable_weights, random_prune
from utils.tasks.xnli import XnliDataArguments

REPO = Path(__file__).resolve().parents[1]
POOLER = "bert.pooler.dense.weight"
PAIRS = [  # (premise, hypothesis, label)
    ("A man sleeps in the park.", "A person rests.", 0),
    ("A woman reads a book.", "The woman reads a novel by Tolstoy.", 1),
    ("The children play football.", "Nobody is playing.", 2),
    ("Un homme dort.", "Une personne se repose.", 0),
    ("Les enfants jouent au parc.", "Les enfants sont au parc depuis midi.", 1),
    ("Une femme lit un livre.", "Personne ne lit.", 2),
]
NER_ROWS = [
    {"tokens": ["Marie", "Curie", "visited", "Warsaw", "."], "ner_tags": [1, 2, 0, 5, 0]},
    {"tokens": ["Google", "opened", "an", "office", "in", "Paris"], "ner_tags": [3, 0, 0, 0, 0, 5]},
]
# The seed README's commands, verbatim.
SEED_LT_XNLI = """--output_dir tmp/xnli --data_language fr --task_name xnli --dataset_name xnli
--model_name_or_path bert-base-multilingual-cased --do_train --do_eval --max_seq_length 128
--per_device_train_batch_size 32 --per_device_eval_batch_size 32 --learning_rate 5e-5 --num_train_epochs 30
--overwrite_output_dir --evaluate_during_training --logging_steps 36813 --save_steps 36813 --pad_to_max_length
--seed 57"""
SEED_XNLI_FINE_TUNE = """--mask_dir tmp/xnli_mask/fr_mask.pt --output_dir tmp/fine-tuning/xnli/fr
--model_name_or_path bert-base-multilingual-cased --dataset_name xnli --data_language fr --do_train --do_eval
--per_device_train_batch_size 32 --per_device_eval_batch_size 32 --learning_rate 5e-5 --num_train_epochs 3
--max_seq_length 128 --evaluate_during_training --overwrite_output_dir --logging_steps 1227 --save_steps 0 --seed 57
--weight_init pre"""


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    for lang in ("en", "fr"):
        for split, repeat in (("train", 2), ("validation", 1)):
            rows = [{"premise": p, "hypothesis": h, "label": y} for p, h, y in PAIRS] * repeat
            write_jsonl(root / "xnli" / lang / f"{split}.jsonl", rows)
            write_jsonl(root / "ner" / lang / f"{split}.jsonl", NER_ROWS * repeat)
    return root


@pytest.fixture
def xnli_args(tiny_models, data, tmp_path):
    def build(out: str, *extra: str) -> list[str]:
        return [
            "--model_name_or_path", str(tiny_models / "mbert-tiny"),
            "--train_file", str(data / "xnli" / "{lang}" / "train.jsonl"),
            "--validation_file", str(data / "xnli" / "{lang}" / "validation.jsonl"),
            "--output_dir", str(tmp_path / out), "--do_train", "--do_eval", "--max_seq_length", "32",
            "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "6", "--logging_steps", "100",
            "--report_to", "none", "--seed", "3", *extra,
        ]

    return build


def model_weights(tiny_models: Path, auto_class, **kwargs):
    model = auto_class.from_pretrained(tiny_models / "mbert-tiny", **kwargs)
    return prunable_weights(model)


def test_lt_xnli_end_to_end(run_script, xnli_args, tmp_path):
    results = run_script("LT_xnli.py", *xnli_args("imp", "--save_steps", "2", "--prune_rate", "0.25",
                                                  "--target_sparsity", "0.5", "--data_language", "fr",
                                                  "--eval_languages", "en"))
    assert results["complete"] and results["metric"] == "accuracy" and results["greater_is_better"] is True
    assert [r["sparsity"] for r in results["rounds"]] == pytest.approx([0.0, 0.25, 0.5])
    for entry in results["rounds"]:
        evaluation = entry["eval"]
        assert set(evaluation) == {"fr", "en", "average"} and entry["headline"] == evaluation["fr"]["accuracy"]
        for lang in ("fr", "en"):
            right = evaluation[lang]["accuracy"] * len(PAIRS)  # k of the validation pairs right, not a mean of means
            assert right == pytest.approx(round(right), abs=1e-6)
            assert math.isfinite(evaluation[lang]["loss"]) and evaluation[lang]["loss"] > 0
        assert evaluation["average"]["accuracy"] == pytest.approx((evaluation["fr"]["accuracy"]
                                                                   + evaluation["en"]["accuracy"]) / 2)
    saved = json.loads((tmp_path / "imp" / "imp_results.json").read_text())
    assert saved["task"] == "xnli" and len(saved["rounds"]) == 3
    for sparsity in (25, 50):
        mask = Mask.load(tmp_path / "imp" / "masks" / f"sparsity_{sparsity}.pt")
        assert POOLER in mask and len(mask) == 13  # 2 layers x 6 matrices + the pooler dense
        assert mask.num_weights - mask.num_kept == round(sparsity / 100 * mask.num_weights)  # exact count


def test_label_words_are_mapped_and_bad_labels_stop(run_script, xnli_args, data, tmp_path, capsys):
    """Label words train and evaluate exactly as the label ids they name."""
    words = ["entailment", "neutral", "contradiction"]
    write_jsonl(tmp_path / "words.jsonl", [{"premise": p, "hypothesis": h, "label": words[y]} for p, h, y in PAIRS])
    write_jsonl(tmp_path / "ids.jsonl", [{"premise": p, "hypothesis": h, "label": y} for p, h, y in PAIRS])
    results = {}
    for name in ("words", "ids"):
        results[name] = run_script("xnli_fine_tune.py", *xnli_args(
            name, "--train_file", str(tmp_path / f"{name}.jsonl"), "--validation_file", str(tmp_path / f"{name}.jsonl"),
            "--pruning_type", "none", "--max_steps", "1"))
    assert results["words"]["eval"] == results["ids"]["eval"] and math.isfinite(results["words"]["train_loss"])
    assert results["words"]["train_loss"] == results["ids"]["train_loss"]
    write_jsonl(tmp_path / "bad.jsonl", [{"premise": "a", "hypothesis": "b", "label": -1}])
    with pytest.raises(SystemExit) as stop:
        run_script("xnli_fine_tune.py", *xnli_args("bad", "--train_file", str(tmp_path / "bad.jsonl"),
                                                   "--pruning_type", "none"))
    assert stop.value.code == 2
    assert capsys.readouterr().err.strip() == "error: XNLI en train example 0: label -1 is out of range 0..2"


def test_mlm_or_ner_mask_leaves_the_pooler_dense(run_script, xnli_args, tiny_models, tmp_path, capsys):
    """A mask found on a model without a pooler: the XNLI model's pooler dense trains unpruned."""
    mask = random_prune(model_weights(tiny_models, AutoModelForMaskedLM), 0.5, seed=0)
    assert POOLER not in mask
    mask.save(tmp_path / "mlm_mask.pt", {"task": "mlm"})
    results = run_script("xnli_fine_tune.py", *xnli_args("transfer", "--mask_dir", str(tmp_path / "mlm_mask.pt"),
                                                         "--max_steps", "2", "--save_model"))
    out = capsys.readouterr().out
    assert out.count("has no pooler entry: the model's pooler dense stays unpruned") == 1
    saved = load_file(tmp_path / "transfer" / "model" / "model.safetensors")
    assert (saved[POOLER] != 0).all()
    for name, kept in mask.items():
        assert torch.equal(saved[name] != 0, kept)  # pruned weights stayed exactly zero
    pooler_size = saved[POOLER].numel()
    assert results["sparsity"] == pytest.approx(0.5 * mask.num_weights / (mask.num_weights + pooler_size), abs=1e-6)


def test_xnli_mask_on_ner_ignores_the_pooler_entry(run_script, tiny_models, data, tmp_path, capsys):
    weights = model_weights(tiny_models, AutoModelForSequenceClassification, num_labels=3)
    mask = random_prune(weights, 0.5, seed=1)
    assert POOLER in mask
    mask.save(tmp_path / "xnli_mask.pt", {"task": "xnli"})
    results = run_script(
        "ner_fine_tune.py", "--model_name_or_path", str(tiny_models / "mbert-tiny"),
        "--train_file", str(data / "ner" / "{lang}" / "train.jsonl"),
        "--validation_file", str(data / "ner" / "{lang}" / "validation.jsonl"),
        "--mask_dir", str(tmp_path / "xnli_mask.pt"), "--output_dir", str(tmp_path / "ner"), "--do_train",
        "--do_eval", "--max_steps", "1", "--per_device_train_batch_size", "2", "--report_to", "none",
    )
    out = capsys.readouterr().out
    assert out.count("has a pooler entry but this model has no pooler: the entry is ignored") == 1
    encoder = {n: t for n, t in mask.items() if n != POOLER}
    expected = 1 - sum(int(t.sum()) for t in encoder.values()) / sum(t.numel() for t in encoder.values())
    assert results["sparsity"] == pytest.approx(expected) and results["weights_zero_fraction"] >= expected


def test_random_weights_differ_from_the_checkpoint(run_script, xnli_args, tiny_models, tmp_path):
    results = run_script("xnli_fine_tune.py", *xnli_args("rand", "--weight_init", "rand", "--pruning_type", "random",
                                                         "--sparsity", "50", "--max_steps", "2", "--save_model"))
    assert results["weight_init"] == "rand" and results["sparsity"] == pytest.approx(0.5, abs=1e-4)
    pretrained = load_file(tiny_models / "mbert-tiny" / "model.safetensors")
    trained = load_file(tmp_path / "rand" / "model" / "model.safetensors")
    for name in ("bert.embeddings.word_embeddings.weight", "bert.encoder.layer.0.attention.self.query.weight"):
        assert (trained[name] - pretrained[name]).abs().max() > 0.01  # far more than 2 steps of training move them


def test_seed_commands_parse_verbatim():
    types = (ModelArguments, XnliDataArguments, IMPArguments, ExperimentTrainingArguments)
    model, data, _, training = parse_args(types, shlex.split(SEED_LT_XNLI))
    assert (model.model_name_or_path, data.dataset_name, data.data_language, data.task_name) == (
        "bert-base-multilingual-cased", "xnli", "fr", "xnli")
    assert data.pad_to_max_length and training.evaluate_during_training and training.overwrite_output_dir
    assert (training.save_steps, training.logging_steps, training.num_train_epochs) == (36813, 36813, 30)
    assert training.seed == 57 and training.learning_rate == 5e-5
    types = (ModelArguments, XnliDataArguments, MaskArguments, ExperimentTrainingArguments)
    _, data, mask, training = parse_args(types, shlex.split(SEED_XNLI_FINE_TUNE))
    assert (mask.mask_dir, mask.weight_init, mask.pruning_type) == ("tmp/xnli_mask/fr_mask.pt", "pre", "lth")
    assert (training.learning_rate, training.save_steps, data.max_seq_length) == (5e-5, 0, 128)


@pytest.mark.parametrize("config, argument_types", [
    ("configs/LT_xnli_args.json", IMPArguments), ("configs/offline/LT_xnli.json", IMPArguments),
    ("configs/xnli_fine_tune_fr.json", MaskArguments), ("configs/offline/xnli_fine_tune.json", MaskArguments),
])
def test_configs_parse(config, argument_types):
    types = (ModelArguments, XnliDataArguments, argument_types, ExperimentTrainingArguments)
    model, data, _, training = parse_args(types, [str(REPO / config)])
    assert training.do_train and training.do_eval and data.data_language in ("fr", "es")


def test_seed_commands_run_on_the_tiny_model(run_script, tiny_models, data, tmp_path):
    """Every flag of the seed commands, with the model, data, output and step counts swapped for small ones."""
    local = ["--model_name_or_path", str(tiny_models / "mbert-tiny"),
             "--train_file", str(data / "xnli" / "{lang}" / "train.jsonl"),
             "--validation_file", str(data / "xnli" / "{lang}" / "validation.jsonl"), "--report_to", "none",
             "--max_seq_length", "32"]
    results = run_script("LT_xnli.py", *shlex.split(SEED_LT_XNLI), *local, "--output_dir", str(tmp_path / "lt"),
                         "--save_steps", "2", "--prune_rate", "0.5", "--target_sparsity", "0.5")
    assert results["complete"] and results["schedule"] == [0.0, 0.5]
    results = run_script("xnli_fine_tune.py", *shlex.split(SEED_XNLI_FINE_TUNE), *local,
                         "--mask_dir", str(tmp_path / "lt" / "masks" / "sparsity_50.pt"),
                         "--output_dir", str(tmp_path / "ft"), "--max_steps", "2")
    assert results["sparsity"] == pytest.approx(0.5, abs=1e-4) and "accuracy" in results["eval"]["fr"]
