"""The tiny offline checkpoints load with every Auto class the experiments use, and rebuild byte-identically."""
from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything here must work with no network

import pytest
import torch
from safetensors.torch import load_file
from transformers import (
    AutoConfig,
    AutoModelForMaskedLM,
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
    MT5ForConditionalGeneration,
)
from transformers.utils import logging as hf_logging

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "build_tiny_models.py"
LABEL_WORDS = ["entailment", "neutral", "contradiction"]
PROMPT = "xnli premise: A man sleeps. hypothesis: A person rests."


def load_script():
    """Import scripts/build_tiny_models.py as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("build_tiny_models", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


builder = load_script()


def write_sample_data(data_dir: Path) -> None:
    """A few records in each format data/ holds, so the tests do not depend on what data/ has right now."""
    (data_dir / "ner" / "en").mkdir(parents=True)
    (data_dir / "xnli" / "fr").mkdir(parents=True)
    (data_dir / "mlm").mkdir(parents=True)
    (data_dir / "parallel").mkdir(parents=True)
    ner = {"tokens": ["Marie", "Curie", "visited", "Warsaw", "."], "ner_tags": ["B-PER", "I-PER", "O", "B-LOC", "O"]}
    (data_dir / "ner" / "en" / "train.jsonl").write_text(json.dumps(ner) + "\n", encoding="utf-8")
    xnli = {"premise": "Un homme dort.", "hypothesis": "Une personne se repose.", "label": "entailment"}
    (data_dir / "xnli" / "fr" / "test.jsonl").write_text(json.dumps(xnli, ensure_ascii=False) + "\n", encoding="utf-8")
    mlm = [{"lang": "ru", "text": "Кошка спит на диване."}, {"lang": "zh", "text": "猫在沙发上睡觉。"}]
    (data_dir / "mlm" / "wiki.json").write_text(json.dumps(mlm, ensure_ascii=False), encoding="utf-8")
    (data_dir / "parallel" / "en-fa.tsv").write_text("The cat sleeps.\tگربه می‌خوابد.\n", encoding="utf-8")
    (data_dir / "xnli" / "broken.jsonl").write_text("{not json\n", encoding="utf-8")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data")
    write_sample_data(path)
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory, data_dir) -> Path:
    hf_logging.disable_progress_bar()
    out = tmp_path_factory.mktemp("tiny")
    builder.build_all(out, seed=0, data_dir=data_dir)
    return out


@pytest.fixture(autouse=True)
def quiet_load_reports():
    """transformers 5 prints a LOAD REPORT table for every head change; these tests assert on the keys instead."""
    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    yield
    hf_logging.set_verbosity(level)


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_collect_texts_reads_every_format_and_skips_labels(data_dir):
    texts = builder.collect_texts(data_dir)
    joined = "\n".join(texts)
    for expected in ["Marie Curie visited Warsaw .", "Un homme dort.", "Кошка спит", "猫在沙发上睡觉", "گربه"]:
        assert expected in joined
    assert "B-PER" not in joined and "ru" not in texts  # tags and language codes stay out of the vocab


def test_collect_texts_without_data_dir_uses_builtin_text(tmp_path):
    texts = builder.collect_texts(tmp_path / "missing")
    assert len(texts) >= 30 and any("entailment" in text for text in texts)


def test_build_writes_only_complete_folders(built):
    assert sorted(path.name for path in built.iterdir()) == sorted(builder.model_names())  # no leftover temp folder
    for name in builder.model_names():
        assert builder.is_complete(built / name)


def test_mbert_config_and_tokenizer(built):
    path = built / "mbert-tiny"
    config = AutoConfig.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    assert (config.model_type, config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (
        "bert", 64, 2, 2)
    assert (config.intermediate_size, config.max_position_embeddings, config.type_vocab_size) == (128, 512, 2)
    assert tokenizer.is_fast and config.vocab_size == len(tokenizer)
    assert tokenizer.model_max_length == 512
    ids = [tokenizer.pad_token_id, tokenizer.unk_token_id, tokenizer.cls_token_id, tokenizer.sep_token_id,
           tokenizer.mask_token_id]
    assert ids == [0, 1, 2, 3, 4]
    encoding = tokenizer(["Marie", "Curie"], is_split_into_words=True)
    assert encoding.word_ids() == [None, 0, 1, None]
    assert encoding["input_ids"][0] == tokenizer.cls_token_id and encoding["input_ids"][-1] == tokenizer.sep_token_id
    assert tokenizer.tokenize("Marie") != tokenizer.tokenize("marie")  # cased
    assert tokenizer.unk_token not in tokenizer.tokenize("Une personne se repose. 猫在沙发上睡觉。")


def test_mbert_loads_with_every_head(built):
    path = built / "mbert-tiny"
    saved = load_file(path / "model.safetensors")
    assert "bert.pooler.dense.weight" in saved
    model, info = AutoModelForSequenceClassification.from_pretrained(path, num_labels=3, output_loading_info=True)
    assert info["missing_keys"] == {"classifier.weight", "classifier.bias"}  # pooler comes from the checkpoint
    assert torch.equal(model.bert.pooler.dense.weight, saved["bert.pooler.dense.weight"])
    model, info = AutoModelForTokenClassification.from_pretrained(path, num_labels=7, output_loading_info=True)
    assert info["missing_keys"] == {"classifier.weight", "classifier.bias"}
    model, info = AutoModelForMaskedLM.from_pretrained(path, output_loading_info=True)
    assert info["missing_keys"] == set()
    tokenizer = AutoTokenizer.from_pretrained(path)
    logits = model(**tokenizer(["Marie Curie [MASK] Warsaw ."], return_tensors="pt")).logits
    assert logits.shape[-1] == len(tokenizer)


def test_mt5_config_and_tokenizer(built):
    path = built / "mt5-tiny"
    config = AutoConfig.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    assert config.model_type == "mt5" and config.feed_forward_proj == "gated-gelu"
    assert (config.d_model, config.d_kv, config.num_heads, config.d_ff) == (64, 16, 2, 128)
    assert (config.num_layers, config.num_decoder_layers, config.vocab_size) == (2, 2, len(tokenizer))
    assert tokenizer.is_fast and tokenizer.model_max_length == 512
    assert (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id) == (0, 1, 2)
    assert tokenizer.eos_token == "</s>" and config.decoder_start_token_id == tokenizer.pad_token_id
    assert tokenizer.convert_tokens_to_ids("<extra_id_0>") == len(tokenizer) - 1
    encoding = tokenizer(PROMPT)
    assert encoding["input_ids"][-1] == tokenizer.eos_token_id
    assert tokenizer.decode(encoding["input_ids"], skip_special_tokens=True) == PROMPT
    for word in LABEL_WORDS:
        target = tokenizer(text_target=word)["input_ids"]
        assert tokenizer.unk_token_id not in target
        assert tokenizer.decode(target, skip_special_tokens=True) == word


def test_mt5_loads_untied_and_generates(built):
    path = built / "mt5-tiny"
    tokenizer = AutoTokenizer.from_pretrained(path)
    model, info = AutoModelForSeq2SeqLM.from_pretrained(path, output_loading_info=True)
    assert isinstance(model, MT5ForConditionalGeneration)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    # mt5-base has a separate LM head; transformers 5 would tie it unless the checkpoint holds both tensors.
    assert model.lm_head.weight.data_ptr() != model.shared.weight.data_ptr()
    assert not torch.equal(model.lm_head.weight, model.shared.weight)
    model = MT5ForConditionalGeneration.from_pretrained(path)
    inputs = tokenizer([PROMPT], return_tensors="pt")
    labels = tokenizer(text_target=["entailment"], return_tensors="pt")["input_ids"]
    assert torch.isfinite(model(**inputs, labels=labels).loss)
    generated = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    assert generated.shape[0] == 1 and generated[0, 0].item() == model.generation_config.decoder_start_token_id


def test_same_seed_gives_identical_files(built, data_dir, tmp_path):
    builder.build_all(tmp_path, seed=0, data_dir=data_dir)
    for name in builder.model_names():
        first, second = folder_bytes(built / name), folder_bytes(tmp_path / name)
        assert first.keys() == second.keys()
        assert {"model.safetensors", "tokenizer.json", "tokenizer_config.json", "config.json"} <= first.keys()
        for file_name in first:
            assert first[file_name] == second[file_name], f"{name}/{file_name} differs between two builds"


def test_other_seed_changes_weights_not_tokenizer(built, data_dir, tmp_path):
    builder.build_all(tmp_path, seed=1, data_dir=data_dir)
    for name in builder.model_names():
        first, second = folder_bytes(built / name), folder_bytes(tmp_path / name)
        assert first["model.safetensors"] != second["model.safetensors"]
        assert first["tokenizer.json"] == second["tokenizer.json"]


def test_main_skips_complete_folders_and_rebuilds_incomplete(data_dir, tmp_path, capsys):
    args = ["--output_dir", str(tmp_path), "--data_dir", str(data_dir)]
    builder.main(args)
    assert capsys.readouterr().out.count("parameters") == len(builder.model_names())
    (tmp_path / "mt5-tiny" / "model.safetensors").unlink()  # as if a copy had been interrupted
    builder.main(args)
    out = capsys.readouterr().out
    assert "mbert-tiny: exists and is complete, skipped" in out and "mt5-tiny: vocab" in out
    builder.main(args + ["--force"])
    assert capsys.readouterr().out.count("parameters") == len(builder.model_names())
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(builder.model_names())
