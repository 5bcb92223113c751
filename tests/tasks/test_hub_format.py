"""The hub code path (--dataset_name wikiann / xnli, no local files), fed with data in the hub's own format
(ClassLabel features, extra columns) through a stand-in for datasets.load_dataset, since the hub is unreachable."""
from __future__ import annotations

import json

import pytest
from datasets import ClassLabel, Dataset, Features, Sequence, Value

from tests.conftest import REPO
from utils.tasks.ner import LABELS

WIKIANN = Features({
    "tokens": Sequence(Value("string")),
    "ner_tags": Sequence(ClassLabel(names=LABELS)),
    "langs": Sequence(Value("string")),
    "spans": Sequence(Value("string")),
})
XNLI = Features({
    "premise": Value("string"),
    "hypothesis": Value("string"),
    "label": ClassLabel(names=["entailment", "neutral", "contradiction"]),
})


@pytest.fixture
def fake_hub(monkeypatch):
    calls = []

    def load_dataset(path, name=None, split=None, **kwargs):
        calls.append((path, name, split))
        task, features = {"unimelb-nlp/wikiann": ("ner", WIKIANN), "facebook/xnli": ("xnli", XNLI)}[path]
        rows = [json.loads(line) for line in (REPO / "data" / task / name / f"{split}.jsonl").open(encoding="utf-8")]
        columns = {key: [row[key] for row in rows] for key in features}
        return Dataset.from_dict(columns, features=features)

    monkeypatch.setattr("utils.infra.data.load_dataset", load_dataset)
    return calls


def test_wikiann_from_the_hub(fake_hub, tiny_models, tmp_path, run_script):
    results = run_script(
        "LT_ner.py", "--output_dir", str(tmp_path / "ner"), "--data_language", "fr", "--task_name", "ner",
        "--dataset_name", "wikiann", "--model_name_or_path", str(tiny_models / "mbert-tiny"), "--do_train",
        "--do_eval", "--max_seq_length", "128", "--per_device_train_batch_size", "32", "--learning_rate", "2e-5",
        "--save_steps", "2", "--logging_steps", "2", "--pad_to_max_length", "--target_sparsity", "0.1", "--seed", "57",
    )
    assert ("unimelb-nlp/wikiann", "fr", "train") in fake_hub and ("unimelb-nlp/wikiann", "fr", "validation") in fake_hub
    assert results["complete"] and "f1" in results["rounds"][-1]["eval"]["fr"]


def test_xnli_from_the_hub(fake_hub, tiny_models, tmp_path, run_script):
    results = run_script(
        "LT_xnli.py", "--output_dir", str(tmp_path / "xnli"), "--data_language", "fr", "--task_name", "xnli",
        "--dataset_name", "xnli", "--model_name_or_path", str(tiny_models / "mbert-tiny"), "--do_train", "--do_eval",
        "--max_seq_length", "128", "--per_device_train_batch_size", "32", "--save_steps", "2", "--logging_steps", "2",
        "--target_sparsity", "0.1",
    )
    assert ("facebook/xnli", "fr", "train") in fake_hub
    assert results["complete"] and "accuracy" in results["rounds"][-1]["eval"]["fr"]


def test_mt5_xnli_from_the_hub(fake_hub, tiny_models, tmp_path, run_script):
    results = run_script(
        "LT_mt5_xnli.py", "--output_dir", str(tmp_path / "mt5"), "--data_language", "fr", "--dataset_name", "xnli",
        "--model_name_or_path", str(tiny_models / "mt5-tiny"), "--do_train", "--do_eval", "--max_source_length", "64",
        "--val_max_target_length", "5", "--save_steps", "2", "--logging_steps", "2", "--target_sparsity", "0.1",
        "--max_eval_samples", "12",
    )
    assert ("facebook/xnli", "fr", "validation") in fake_hub
    assert results["complete"] and "accuracy" in results["rounds"][-1]["eval"]["fr"]
