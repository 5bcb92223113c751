"""Causal language modelling: LT_pretrain.py / pretrain_trans.py without --mlm on a tiny decoder (IMP end to end
with exact sparsities, mask files and resume; a fixed mask), the perplexity against a direct computation, and
plain-text input."""
from __future__ import annotations

import json
import math

import pytest
import torch
from accelerate import Accelerator
from safetensors.torch import load_file
from torch.utils.data import DataLoader
from transformers import AutoModelForCausalLM

from utils.core.masks import Mask, read_mask_metadata
from utils.core.pruning import prunable_weights
from utils.infra.args import ExperimentTrainingArguments, IMPArguments, ModelArguments, parse_args
from utils.tasks.clm import build_language_model, evaluate_clm
from utils.tasks.mlm import MlmDataArguments

DATA = ["--train_file", "data/mlm/{lang}.train.json", "--validation_file", "data/mlm/{lang}.valid.json"]


def clm_argv(models, out, model="llama-tiny", *extra):
    return ["--model_name_or_path", str(models / model), "--output_dir", str(out), *DATA, "--do_train", "--do_eval",
            "--block_size", "32", "--max_train_samples", "32", "--max_eval_samples", "8",
            "--per_device_train_batch_size", "8", "--per_device_eval_batch_size", "8", "--learning_rate", "2e-3",
            "--logging_steps", "100", "--report_to", "none", "--seed", "3", *extra]


def imp_argv(models, out, *extra):
    return clm_argv(models, out, "llama-tiny", "--save_steps", "2", "--prune_rate", "0.25", "--target_sparsity", "0.5",
                    *extra)


def masks_of(out):
    return {p.name: Mask.load(p) for p in sorted((out / "masks").glob("*.pt"))}


def test_causal_lm_imp_end_to_end(run_script, tiny_models, tmp_path):
    results = run_script("LT_pretrain.py", *imp_argv(tiny_models, tmp_path / "imp"))
    assert results["complete"] and results["task"] == "clm"
    assert results["metric"] == "perplexity" and results["greater_is_better"] is False
    assert results["schedule"] == [0.0, 0.25, 0.5]
    for entry in results["rounds"]:
        values = entry["eval"]["en"]
        assert entry["headline"] == values["perplexity"] == pytest.approx(math.exp(values["loss"]))
        assert values["predicted_tokens"] > 0 and 0.0 <= values["accuracy"] <= 1.0
    model = AutoModelForCausalLM.from_pretrained(tiny_models / "llama-tiny")
    names = list(prunable_weights(model))
    masks = masks_of(tmp_path / "imp")
    assert list(masks) == ["sparsity_25.pt", "sparsity_50.pt"]
    for file, sparsity in (("sparsity_25.pt", 0.25), ("sparsity_50.pt", 0.5)):
        mask = masks[file]
        assert list(mask) == names  # q/k/v/o and gate/up/down of both layers; never embeddings, norms or lm_head
        assert mask.num_weights - mask.num_kept == round(sparsity * mask.num_weights)
        meta = read_mask_metadata(tmp_path / "imp" / "masks" / file)
        assert meta["task"] == "clm" and set(meta["per_layer_sparsity"]) == {"decoder.0", "decoder.1"}
    assert masks["sparsity_50.pt"].is_subset_of(masks["sparsity_25.pt"])


def test_interrupted_causal_lm_imp_resumes_to_the_same_masks(run_script, tiny_models, tmp_path, monkeypatch, capsys):
    from utils.core import training

    run_script("LT_pretrain.py", *imp_argv(tiny_models, tmp_path / "reference"))
    original, calls = training.MaskedTrainer.train, []

    def killed_in_round_one(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # stands in for a kill during round 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(training.MaskedTrainer, "train", killed_in_round_one)
    with pytest.raises(SystemExit):
        run_script("LT_pretrain.py", *imp_argv(tiny_models, tmp_path / "killed"))
    state = json.loads((tmp_path / "killed" / "imp_results.json").read_text())
    assert len(state["rounds"]) == 1 and not state["complete"]
    monkeypatch.setattr(training.MaskedTrainer, "train", original)
    capsys.readouterr()
    results = run_script("LT_pretrain.py", *imp_argv(tiny_models, tmp_path / "killed", "--resume"))
    assert "1 completed round(s) kept" in capsys.readouterr().out
    assert results["complete"] and results["rounds"][0] == state["rounds"][0]
    ours, theirs = masks_of(tmp_path / "killed"), masks_of(tmp_path / "reference")
    assert list(ours) == list(theirs) == ["sparsity_25.pt", "sparsity_50.pt"]
    assert all(ours[n].checksum() == theirs[n].checksum() for n in ours)


@pytest.mark.parametrize("model", ["llama-tiny", "qwen2-tiny", "gemma3-tiny", "gpt2-tiny"])
def test_fixed_mask_trains_a_causal_lm(run_script, tiny_models, tmp_path, model):
    decoder = AutoModelForCausalLM.from_pretrained(tiny_models / model)
    from utils.core.pruning import random_prune

    mask = random_prune(prunable_weights(decoder), 0.4, seed=1)
    mask.save(tmp_path / "mask.pt", {"task": "clm", "languages": ["fr"], "model": str(tiny_models / model)})
    results = run_script("pretrain_trans.py", *clm_argv(tiny_models, tmp_path / "ft", model, "--mask_dir",
                                                        str(tmp_path / "mask.pt"), "--max_steps", "2",
                                                        "--save_model"))
    assert results["task"] == "clm" and results["steps"] == 2
    assert results["sparsity"] == pytest.approx(0.4, abs=1e-4)
    saved = load_file(tmp_path / "ft" / "model" / "model.safetensors")
    for name, kept in mask.items():  # GPT-2's Conv1D masks are (in, out), as its weights are stored
        assert torch.equal(saved[name] != 0, kept), name
    assert results["eval"]["en"]["perplexity"] > 1


def test_perplexity_is_the_mean_next_token_loss_over_unpadded_tokens(tiny_models, tmp_path):
    types = (ModelArguments, MlmDataArguments, IMPArguments, ExperimentTrainingArguments)
    model_args, data_args, _, training_args = parse_args(types, [
        "--model_name_or_path", str(tiny_models / "gpt2-tiny"), "--output_dir", str(tmp_path), "--do_eval",
        *DATA, "--block_size", "16", "--report_to", "none"])
    setup = build_language_model(model_args, data_args, training_args)
    lengths = [len(ids) for ids in setup.eval_datasets["en"]["input_ids"]]
    short = [i for i, n in enumerate(lengths) if n < 16][:4]
    blocks = setup.eval_datasets["en"].select(sorted(short + [i for i, n in enumerate(lengths) if n == 16][:4]))
    assert len(short) == 4 and len(blocks) == 8  # ragged: padding must not be scored
    loader = DataLoader(blocks, batch_size=3, collate_fn=setup.collate_fn)
    got = evaluate_clm(setup.model.eval(), loader, Accelerator(cpu=True))
    loss_sum, tokens = 0.0, 0
    with torch.no_grad():
        for ids in blocks["input_ids"]:  # one unpadded block at a time, transformers' own shifted loss
            tensor = torch.tensor([ids])
            loss_sum += float(setup.model(input_ids=tensor, labels=tensor).loss) * (len(ids) - 1)
            tokens += len(ids) - 1
    assert got["predicted_tokens"] == tokens
    assert got["loss"] == pytest.approx(loss_sum / tokens, rel=1e-5)
    assert got["perplexity"] == pytest.approx(math.exp(loss_sum / tokens), rel=1e-5)


def test_plain_text_files_hold_one_article_per_paragraph(tiny_models, tmp_path):
    paragraphs = ["Marie Curie was born in Warsaw.\nShe worked in Paris.", "Les enfants jouent au football.",
                  "El señor García vive en Madrid."]
    (tmp_path / "en.train.txt").write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")
    (tmp_path / "en.valid.txt").write_text("A woman is reading a book.\n", encoding="utf-8")
    types = (ModelArguments, MlmDataArguments, IMPArguments, ExperimentTrainingArguments)
    model_args, data_args, _, training_args = parse_args(types, [
        "--model_name_or_path", str(tiny_models / "llama-tiny"), "--output_dir", str(tmp_path / "out"), "--do_train",
        "--do_eval", "--train_file", str(tmp_path / "en.train.txt"), "--validation_file", str(tmp_path / "en.valid.txt"),
        "--block_size", "64", "--report_to", "none"])
    setup = build_language_model(model_args, data_args, training_args)
    bos = setup.tokenizer.bos_token_id
    expected = sorted([bos] + setup.tokenizer(p, add_special_tokens=False)["input_ids"] for p in paragraphs)
    assert sorted(setup.train_dataset["input_ids"]) == expected
    assert len(setup.eval_datasets["en"]) == 1
