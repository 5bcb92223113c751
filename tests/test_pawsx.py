"""PAWS-X, the task added on the pair-classification module: the bundled sample, loading (local files and the
hub's format), IMP and fine-tuning on the tiny model, and the configs."""
from __future__ import annotations

import json
from collections import Counter

import pytest
from datasets import ClassLabel, Dataset, Features, Value

from tests.conftest import REPO
from utils.core.masks import Mask
from utils.infra.args import ExperimentTrainingArguments, IMPArguments, MaskArguments, ModelArguments, parse_args
from utils.infra.errors import UserError
from utils.tasks.pawsx import LABELS, PAWSX, PawsxDataArguments
from utils.tasks.registry import task_spec

SAMPLE = REPO / "data" / "pawsx"
SIZES = {"train": 150, "validation": 60, "test": 60}
POOLER = "bert.pooler.dense.weight"
HUB_FEATURES = Features({  # google-research-datasets/paws-x
    "id": Value("int32"), "sentence1": Value("string"), "sentence2": Value("string"),
    "label": ClassLabel(names=["0", "1"]),
})


def rows(lang: str, split: str) -> list[dict]:
    return [json.loads(line) for line in (SAMPLE / lang / f"{split}.jsonl").open(encoding="utf-8")]


def local_args(lang: str = "fr", **extra) -> PawsxDataArguments:
    return PawsxDataArguments(data_language=lang, train_file=str(SAMPLE / "{lang}" / "train.jsonl"),
                              validation_file=str(SAMPLE / "{lang}" / "validation.jsonl"), **extra)


def test_the_bundled_sample_is_aligned_balanced_and_split_cleanly():
    sources = {}
    for split, size in SIZES.items():
        per_lang = {lang: rows(lang, split) for lang in ("en", "fr", "es")}
        for lang, items in per_lang.items():
            assert len(items) == size and [r["id"] for r in items] == list(range(1, size + 1))
            assert all(set(r) == {"id", "sentence1", "sentence2", "label"} for r in items)
            assert Counter(r["label"] for r in items) == {0: size // 2, 1: size // 2}
            assert all(r["sentence1"] != r["sentence2"] for r in items)
            # PAWS: a non-paraphrase uses the same words as its first sentence, in another order
            for r in items:
                if r["label"] == 0 and lang != "fr":  # French elision (d'/de) may change a word
                    assert Counter(r["sentence1"].rstrip(".").split()) == Counter(r["sentence2"].rstrip(".").split())
        labels = [[r["label"] for r in items] for items in per_lang.values()]
        assert labels[0] == labels[1] == labels[2]  # line i is the same pair in every language
        sources[split] = {r["sentence1"] for r in per_lang["en"]}
        assert len(sources[split]) == size // 2  # each first sentence once with each label
    assert not (sources["train"] & sources["validation"]) and not (sources["train"] & sources["test"])
    assert not (sources["validation"] & sources["test"])
    first = rows("fr", "train")[0]
    assert first == {"id": 1, "sentence1": "Isabel Fernández a appris à Olga Ivanova à jouer du piano.",
                     "sentence2": "Olga Ivanova a appris le piano avec Isabel Fernández.", "label": 1}


def test_loading_checks_rows_and_maps_label_words(tmp_path):
    loaded = PAWSX.load(local_args("es"), "es", "validation")
    assert len(loaded) == 60 and loaded["label"] == [r["label"] for r in rows("es", "validation")]
    assert loaded["sentence1"][3] == rows("es", "validation")[3]["sentence1"]
    words = tmp_path / "words.jsonl"
    words.write_text("".join(json.dumps({"sentence1": "a b", "sentence2": "b a", "label": w}) + "\n"
                             for w in ("paraphrase", "not_paraphrase")), encoding="utf-8")
    assert PAWSX.load(PawsxDataArguments(train_file=str(words)), "en", "train")["label"] == [1, 0]
    words.write_text(json.dumps({"sentence1": "a", "sentence2": "b", "label": "maybe"}) + "\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"PAWS-X en train: unknown label 'maybe' \(expected 0, 1 or "
                                        r"not_paraphrase, paraphrase\)"):
        PAWSX.load(PawsxDataArguments(train_file=str(words)), "en", "train")
    words.write_text(json.dumps({"sentence1": "a", "premise": "b", "label": 1}) + "\n", encoding="utf-8")
    with pytest.raises(UserError, match="lacks field"):
        PAWSX.load(PawsxDataArguments(train_file=str(words)), "en", "train")


def test_hub_languages_are_checked_offline():
    with pytest.raises(UserError, match="unknown language 'it' for google-research-datasets/paws-x"):
        PAWSX.load(PawsxDataArguments(dataset_name="paws-x", data_language="it"), "it", "train")


def right_of(accuracy: float) -> bool:
    """An accuracy over the 60 validation pairs is k/60 (not a mean of per-batch means)."""
    return abs(accuracy * SIZES["validation"] - round(accuracy * SIZES["validation"])) < 1e-6


@pytest.fixture
def paws_args(tiny_models, tmp_path):
    def build(out: str, *extra: str) -> list[str]:
        return ["--model_name_or_path", str(tiny_models / "mbert-tiny"),
                "--train_file", "data/pawsx/{lang}/train.jsonl", "--validation_file", "data/pawsx/{lang}/validation.jsonl",
                "--output_dir", str(tmp_path / out), "--do_train", "--do_eval", "--max_seq_length", "48",
                "--per_device_train_batch_size", "8", "--per_device_eval_batch_size", "60", "--logging_steps", "100",
                "--report_to", "none", "--seed", "5", *extra]

    return build


def test_imp_then_fine_tuning_on_the_tiny_model(run_script, paws_args, tmp_path):
    results = run_script("LT_pawsx.py", *paws_args("imp", "--data_language", "fr", "--eval_languages", "en",
                                                   "--save_steps", "3", "--max_steps", "9", "--prune_rate", "0.25",
                                                   "--target_sparsity", "0.5", "--task_name", "pawsx"))
    assert results["complete"] and results["task"] == "pawsx" and results["metric"] == "accuracy"
    assert [r["sparsity"] for r in results["rounds"]] == pytest.approx([0.0, 0.25, 0.5])
    for entry in results["rounds"]:
        evaluation = entry["eval"]
        assert set(evaluation) == {"fr", "en", "average"} and entry["headline"] == evaluation["fr"]["accuracy"]
        assert all(right_of(evaluation[lang]["accuracy"]) for lang in ("fr", "en"))
    for sparsity in (25, 50):
        mask = Mask.load(tmp_path / "imp" / "masks" / f"sparsity_{sparsity}.pt")
        assert POOLER in mask and len(mask) == 13  # 2 layers x 6 matrices + the pooler dense
        assert mask.num_weights - mask.num_kept == round(sparsity / 100 * mask.num_weights)  # exact count
    tuned = run_script("pawsx_fine_tune.py", *paws_args(
        "ft", "--data_language", "es", "--mask_dir", str(tmp_path / "imp" / "masks" / "sparsity_50.pt"),
        "--max_steps", "4"))
    assert tuned["task"] == "pawsx" and set(tuned["eval"]) == {"es"} and right_of(tuned["eval"]["es"]["accuracy"])
    assert tuned["sparsity"] == pytest.approx(0.5, abs=1e-9) and tuned["weights_zero_fraction"] >= 0.5


def test_hub_format_through_a_stand_in_for_load_dataset(monkeypatch, run_script, paws_args, tmp_path):
    """The hub's rows (a ClassLabel, an id column) train and evaluate exactly as the same rows from local files."""
    local = run_script("pawsx_fine_tune.py", *paws_args("local", "--data_language", "es", "--max_steps", "2",
                                                        "--pruning_type", "none"))
    calls = []

    def load_dataset(path, name=None, split=None, **kwargs):
        calls.append((path, name, split))
        items = rows(name, split)
        return Dataset.from_dict({key: [r[key] for r in items] for key in HUB_FEATURES}, features=HUB_FEATURES)

    monkeypatch.setattr("utils.infra.data.load_dataset", load_dataset)
    argv = [a for a in paws_args("hub", "--dataset_name", "paws-x", "--data_language", "es", "--max_steps", "2",
                                 "--pruning_type", "none") if not a.startswith("data/pawsx")]
    argv = [a for a in argv if a not in ("--train_file", "--validation_file")]
    results = run_script("pawsx_fine_tune.py", *argv)
    assert calls == [("google-research-datasets/paws-x", "es", "train"),
                     ("google-research-datasets/paws-x", "es", "validation")]
    assert results["eval"] == local["eval"] and results["train_loss"] == local["train_loss"]  # the same examples


@pytest.mark.parametrize("config, argument_types", [
    ("configs/LT_pawsx_args.json", IMPArguments), ("configs/offline/LT_pawsx.json", IMPArguments),
    ("configs/pawsx_fine_tune_fr.json", MaskArguments), ("configs/offline/pawsx_fine_tune.json", MaskArguments),
])
def test_configs_parse(config, argument_types):
    _, data, third, training = parse_args(
        (ModelArguments, PawsxDataArguments, argument_types, ExperimentTrainingArguments), [str(REPO / config)])
    assert training.do_train and training.do_eval and data.data_language in ("fr", "es")
    if argument_types is IMPArguments and training.max_steps > 0:  # offline: rounds x save_steps
        rounds = round(third.target_sparsity / third.prune_rate) + 1
        assert training.max_steps == rounds * training.save_steps


def test_the_task_is_registered():
    spec = task_spec("pawsx")
    assert (spec.imp_script, spec.finetune_script, spec.data_arguments) == (
        "LT_pawsx.py", "pawsx_fine_tune.py", PawsxDataArguments)
    assert spec.imp_arguments is IMPArguments and spec.hub.id == "google-research-datasets/paws-x"
    assert LABELS == ("not_paraphrase", "paraphrase")
