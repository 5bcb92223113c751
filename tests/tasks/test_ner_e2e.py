"""End to end on the tiny model: IMP on NER, then a ticket fine-tuned on another language (transfer)."""
from __future__ import annotations

import json

import pytest

from utils.core.masks import Mask, read_mask_metadata

NER_DATA = ["--train_file", "data/ner/{lang}/train.jsonl", "--validation_file", "data/ner/{lang}/validation.jsonl"]


@pytest.fixture(scope="module")
def en_tickets(tiny_models, tmp_path_factory):
    """One IMP run shared by the tests below: 0% -> 60% in steps of 20%."""
    import LT_ner

    out = tmp_path_factory.mktemp("LT_ner_en")
    results = LT_ner.main([
        "--model_name_or_path", str(tiny_models / "mbert-tiny"), "--output_dir", str(out), "--data_language", "en",
        *NER_DATA, "--do_train", "--do_eval", "--max_train_samples", "64", "--per_device_train_batch_size", "8",
        "--learning_rate", "3e-3", "--save_steps", "8", "--logging_steps", "8", "--prune_rate", "0.2",
        "--target_sparsity", "0.6", "--seed", "1", "--use_cpu",
    ])
    return out, results


def test_imp_rounds_have_exact_sparsities_and_nested_masks(en_tickets):
    out, results = en_tickets
    assert results["complete"]
    assert [r["sparsity"] for r in results["rounds"]] == pytest.approx([0.0, 0.2, 0.4, 0.6], abs=1e-4)
    assert all(r["steps"] == 8 and "f1" in r["eval"]["en"] for r in results["rounds"])
    previous = None
    for percent in (20, 40, 60):
        path = out / "masks" / f"sparsity_{percent}.pt"
        mask = Mask.load(path)
        assert mask.num_weights - mask.num_kept == round(percent / 100 * mask.num_weights)
        assert read_mask_metadata(path)["languages"] == ["en"]
        if previous is not None:
            assert mask.is_subset_of(previous)
        previous = mask
    saved = json.loads((out / "imp_results.json").read_text())
    assert saved["rounds"][-1]["headline"] == pytest.approx(results["rounds"][-1]["eval"]["en"]["f1"])
    assert not (out / "rewind_weights.pt").exists()


def test_ticket_transfers_to_another_language(en_tickets, tiny_models, tmp_path, run_script):
    out, _ = en_tickets
    results = run_script(
        "ner_fine_tune.py", "--mask_dir", str(out / "masks" / "sparsity_40.pt"), "--output_dir", str(tmp_path / "ft"),
        "--model_name_or_path", str(tiny_models / "mbert-tiny"), "--data_language", "fr", "--eval_languages", "en,es",
        *NER_DATA, "--do_train", "--do_eval", "--max_steps", "6", "--per_device_train_batch_size", "8",
        "--learning_rate", "3e-3", "--logging_steps", "3", "--save_steps", "0", "--seed", "5", "--use_cpu",
    )
    assert results["sparsity"] == pytest.approx(0.4, abs=1e-4)
    assert results["weights_zero_fraction"] >= results["sparsity"]  # the mask stayed applied through training
    assert set(results["eval"]) == {"fr", "en", "es", "average"}
    assert results["mask"]["source"]["languages"] == ["en"]
    assert len(results["history"]) == 1  # evaluated during training at step 3
    on_disk = json.loads((tmp_path / "ft" / "finetune_results.json").read_text())
    assert on_disk["eval"]["fr"]["f1"] == pytest.approx(results["eval"]["fr"]["f1"])


@pytest.mark.parametrize("pruning_type, weight_init", [("random", "pre"), ("oneshot", "pre"), ("lth", "rand")])
def test_fine_tune_mask_kinds_and_random_init(en_tickets, tiny_models, tmp_path, run_script, pruning_type, weight_init):
    out, _ = en_tickets
    results = run_script(
        "ner_fine_tune.py", "--output_dir", str(tmp_path / "ft"), "--model_name_or_path", str(tiny_models / "mbert-tiny"),
        "--data_language", "en", *NER_DATA, "--do_train", "--do_eval", "--max_steps", "2", "--save_steps", "0",
        "--per_device_train_batch_size", "8", "--pruning_type", pruning_type, "--sparsity", "30",
        "--mask_dir", str(out / "masks" / "sparsity_60.pt"), "--weight_init", weight_init, "--use_cpu",
        "--save_model",
    )
    if weight_init == "rand":  # the saved model's body is not the checkpoint's
        import torch
        from transformers import AutoModel

        trained = AutoModel.from_pretrained(tmp_path / "ft" / "model").state_dict()
        checkpoint = AutoModel.from_pretrained(tiny_models / "mbert-tiny").state_dict()
        name = "embeddings.word_embeddings.weight"
        assert (trained[name] - checkpoint[name]).abs().mean() > 1e-2  # 2 steps of training move far less
    expected = 0.6 if pruning_type == "lth" else 0.3
    assert results["sparsity"] == pytest.approx(expected, abs=1e-4)
    assert results["weights_zero_fraction"] >= results["sparsity"]
    assert results["weight_init"] == weight_init


def test_multilingual_mixture_ticket(tiny_models, tmp_path, run_script):
    results = run_script(
        "LT_ner.py", "--model_name_or_path", str(tiny_models / "mbert-tiny"), "--output_dir", str(tmp_path / "mix"),
        "--data_language", "en,fr,ru,zh", *NER_DATA, "--do_train", "--do_eval", "--max_train_samples", "40",
        "--max_eval_samples", "8", "--per_device_train_batch_size", "8", "--save_steps", "2", "--prune_rate", "0.5",
        "--target_sparsity", "0.5", "--use_cpu",
    )
    assert set(results["rounds"][0]["eval"]) == {"en", "fr", "ru", "zh", "average"}
    assert results["languages"] == ["en", "fr", "ru", "zh"]


def test_rewind_step_rewinds_later_rounds_to_the_weights_after_k_steps(tiny_models, tmp_path, run_script,
                                                                       monkeypatch):
    import torch

    from utils.core import training

    restored, snapshots = [], []
    original_restore, original_snapshot = training.MaskedTrainer.restore, training.MaskedTrainer.snapshot

    def spy_restore(self, snapshot):
        restored.append(snapshot)
        return original_restore(self, snapshot)

    def spy_snapshot(self):
        snapshots.append(original_snapshot(self))
        return snapshots[-1]

    monkeypatch.setattr(training.MaskedTrainer, "restore", spy_restore)
    monkeypatch.setattr(training.MaskedTrainer, "snapshot", spy_snapshot)
    results = run_script(
        "LT_ner.py", "--model_name_or_path", str(tiny_models / "mbert-tiny"), "--output_dir", str(tmp_path / "rw"),
        "--data_language", "en", *NER_DATA, "--do_train", "--max_train_samples", "32",
        "--per_device_train_batch_size", "8", "--learning_rate", "3e-3", "--save_steps", "4", "--rewind_step", "2",
        "--prune_rate", "0.3", "--target_sparsity", "0.6", "--use_cpu", "--mask_format", "packed",
    )
    assert results["complete"] and results["rewind_step"] == 2
    packed = tmp_path / "rw" / "masks" / "sparsity_60.pt"
    assert read_mask_metadata(packed)["file_format"] == "packed-bits-v1"
    assert Mask.load(packed).num_kept == round(0.4 * Mask.load(packed).num_weights)
    initial, after_two_steps = snapshots  # taken before training, and after step 2 of round 0
    name = "bert.encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(initial[name], after_two_steps[name])
    assert restored[0] is initial and restored[1] is after_two_steps and restored[2] is after_two_steps
