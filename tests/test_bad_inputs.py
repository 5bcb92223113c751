"""Every class of bad input stops with one line and exit status 2, before any training: flag values (checked at
parse time with the allowed range), lengths a tokenizer cannot use, data rows of the wrong type (with the row),
MLM validation text with nothing masked, a one-pair retrieval file, a config that is not UTF-8, crafted masks."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

TRAIN = {
    "ner": "data/ner/{lang}/train.jsonl",
    "xnli": "data/xnli/{lang}/train.jsonl",
}


def ner(models, out, *extra):
    return ["LT_ner.py", "--model_name_or_path", str(models / "mbert-tiny"), "--output_dir", str(out), "--do_train",
            "--train_file", TRAIN["ner"], "--save_steps", "2", "--use_cpu", *extra]


def ner_ft(models, out, *extra):
    return ["ner_fine_tune.py", "--model_name_or_path", str(models / "mbert-tiny"), "--output_dir", str(out),
            "--do_train", "--train_file", TRAIN["ner"], "--max_steps", "1", "--use_cpu", "--pruning_type", "random",
            "--sparsity", "50", *extra]


def xnli(models, out, *extra):
    return ["LT_xnli.py", "--model_name_or_path", str(models / "mbert-tiny"), "--output_dir", str(out), "--do_train",
            "--train_file", TRAIN["xnli"], "--save_steps", "2", "--use_cpu", *extra]


def mlm(models, out, *extra):
    return ["LT_pretrain.py", "--mlm", "--model_name_or_path", str(models / "mbert-tiny"), "--output_dir", str(out),
            "--do_train", "--do_eval", "--train_file", "data/mlm/{lang}.train.json", "--validation_file",
            "data/mlm/{lang}.valid.json", "--save_steps", "2", "--use_cpu", *extra]


def retrieval(models, out, *extra):
    return ["sentence_retrieval.py", "--model_name_or_path", str(models / "mbert-tiny"), "--output_dir", str(out),
            "--tsv", "data/parallel/en-fr.tsv", *extra]


def rows(tmp: Path, name: str, *records) -> str:
    path = tmp / name
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


NER_ROW = {"tokens": ["Paris", "is", "big"], "ner_tags": [5, 0, 0]}
XNLI_ROW = {"premise": "A man sleeps.", "hypothesis": "A person rests.", "label": 0}

# (id, argv builder(models, out, tmp), expected part of the one line)
CASES = [
    # flags: every number outside its range, NaN, malformed lists, a zero budget
    ("batch_size_0", lambda m, o, t: ner(m, o, "--per_device_train_batch_size", "0"),
     "--per_device_train_batch_size must be a whole number >= 1, got 0"),
    ("eval_batch_negative", lambda m, o, t: ner(m, o, "--per_device_eval_batch_size", "-2"),
     "--per_device_eval_batch_size must be a whole number >= 1, got -2"),
    ("accumulation_0", lambda m, o, t: ner(m, o, "--gradient_accumulation_steps", "0"),
     "--gradient_accumulation_steps must be a whole number >= 1, got 0"),
    ("lr_nan", lambda m, o, t: ner(m, o, "--learning_rate", "nan"), "--learning_rate must be a finite number > 0, got nan"),
    ("lr_negative", lambda m, o, t: ner(m, o, "--learning_rate=-1e-3"), "--learning_rate must be a finite number > 0"),
    ("grad_norm_inf", lambda m, o, t: ner(m, o, "--max_grad_norm", "inf"), "--max_grad_norm must be a finite number >= 0"),
    ("warmup_negative", lambda m, o, t: ner(m, o, "--warmup_steps=-1"), "warmup_steps >= 0"),  # transformers' check
    ("logging_0", lambda m, o, t: ner(m, o, "--logging_steps", "0"), "requires non-zero --logging_steps"),  # same
    ("logging_fraction", lambda m, o, t: ner(m, o, "--logging_steps", "0.5"),
     "--logging_steps must be a whole number >= 1, got 0.5"),
    ("save_steps_fraction", lambda m, o, t: ner(m, o, "--save_steps", "0.5"), "--save_steps must be 0 (split"),
    ("seed_negative", lambda m, o, t: ner(m, o, "--seed", "-1"), "--seed must be a whole number in [0, 2^32)"),
    ("rewind_negative", lambda m, o, t: ner(m, o, "--rewind_step", "-1"), "--rewind_step must be a whole number >= 0"),
    ("rewind_past_round", lambda m, o, t: ner(m, o, "--rewind_step", "2"), "--rewind_step 2 must be below the round"),
    ("zero_epochs", lambda m, o, t: ner_ft(m, o, "--max_steps", "-1", "--num_train_epochs", "0"),
     "the training budget is zero"),
    ("max_train_samples_0", lambda m, o, t: ner(m, o, "--max_train_samples", "0"), "--max_train_samples must be"),
    ("languages_empty_entry", lambda m, o, t: ner(m, o, "--data_language", "en,,fr"), "has an empty entry"),
    ("languages_trailing_comma", lambda m, o, t: ner(m, o, "--data_language", "en,"), "has an empty entry"),
    ("languages_empty", lambda m, o, t: ner(m, o, "--data_language", ""), "--data_language is empty"),
    ("language_malformed", lambda m, o, t: ner(m, o, "--data_language", "en fr"), "'en fr' is not a language code"),
    ("languages_repeated", lambda m, o, t: ner(m, o, "--eval_languages", "fr,fr"), "--eval_languages names fr more"),
    ("output_dir_empty", lambda m, o, t: ner(m, o, "--output_dir", ""), "--output_dir is empty"),
    ("train_file_empty", lambda m, o, t: ner(m, o, "--train_file", ""), "--train_file is empty"),
    ("mlm_probability", lambda m, o, t: mlm(m, o, "--mlm_probability", "1.5"), "--mlm_probability must be a fraction"),
    ("num_beams_0", lambda m, o, t: ["LT_mt5_xnli.py", "--model_name_or_path", "x", "--output_dir", o, "--num_beams",
                                     "0"], "--num_beams must be a whole number >= 1, got 0"),
    ("sparsity_percent", lambda m, o, t: ner_ft(m, o, "--sparsity", "100"), "--sparsity must be a fraction in [0, 1)"),
    ("fp16_on_cpu", lambda m, o, t: ner_ft(m, o, "--fp16"),
     "--fp16 needs a GPU: this run trains on the CPU, where float16 autocast changes the results; drop --fp16"),
    ("resume_fine_tuning", lambda m, o, t: ner_ft(m, o, "--resume"),
     "--resume continues an IMP run; a fine-tuning run restarts from its mask: drop --resume "
     "(--discard_unfinished_run clears an unfinished run's folder)"),
    ("report_to_none_and_more", lambda m, o, t: ner_ft(m, o, "--report_to", "none", "wandb"),
     "--report_to none stands alone, not with wandb"),
    ("lth_without_mask", lambda m, o, t: ner_ft(m, o, "--pruning_type", "lth"), "--pruning_type lth needs --mask_dir"),
    ("retrieval_k_0", lambda m, o, t: retrieval(m, o, "--k", "0"), "--k must be a whole number >= 1, got 0"),
    ("retrieval_one_sentence", lambda m, o, t: retrieval(m, o, "--max_sentences", "1"), "--max_sentences must be"),
    ("similarity_one_mask", lambda m, o, t: ["mask_similarity.py", "--masks", "a.pt", "--output_dir", o],
     "--masks must be two or more mask files"),
    ("summary_epsilon_nan", lambda m, o, t: ["summarize_results.py", "--runs", "x", "--output_dir", o, "--epsilon",
                                             "nan"], "--epsilon must be a finite number >= 0"),
    # a config file that is not UTF-8
    ("config_latin1", lambda m, o, t: ["LT_ner.py", _latin1_config(t)], "is not UTF-8 text"),
    # lengths the tokenizer cannot use
    ("ner_length_2", lambda m, o, t: ner(m, o, "--max_seq_length", "2"),
     "--max_seq_length must be at least 3 for this tokenizer"),
    ("xnli_length_4", lambda m, o, t: xnli(m, o, "--max_seq_length", "4"),
     "--max_seq_length must be at least 5 for this tokenizer (3 special tokens + one token of each sentence)"),
    ("retrieval_length_1", lambda m, o, t: retrieval(m, o, "--max_seq_length", "1"), "must be at least 3"),
    # data rows: null or wrong type, named with the row
    ("ner_token_null", lambda m, o, t: ner(m, o, "--train_file", rows(t, "n.jsonl", NER_ROW, {
        "tokens": ["a", None], "ner_tags": [0, 0]})), "example 1: field 'tokens' is list"),
    ("ner_tokens_string", lambda m, o, t: ner(m, o, "--train_file", rows(t, "n.jsonl", NER_ROW, {
        "tokens": "a b", "ner_tags": [0, 0]})), "example 1: field 'tokens' is str 'a b', expected a list of strings"),
    ("ner_tags_null", lambda m, o, t: ner(m, o, "--train_file", rows(t, "n.jsonl", {**NER_ROW, "ner_tags": None},
                                                                      NER_ROW)), "example 0: field 'ner_tags' is null"),
    ("xnli_premise_null", lambda m, o, t: xnli(m, o, "--train_file", rows(t, "x.jsonl", XNLI_ROW, XNLI_ROW, {
        **XNLI_ROW, "premise": None})), "example 2: field 'premise' is null, expected text"),
    ("xnli_hypothesis_number", lambda m, o, t: xnli(m, o, "--train_file", rows(t, "x.jsonl", XNLI_ROW, {
        **XNLI_ROW, "hypothesis": 7})), "example 1: field 'hypothesis' is int '7', expected text"),
    ("xnli_label_null", lambda m, o, t: xnli(m, o, "--train_file", rows(t, "x.jsonl", {**XNLI_ROW, "label": None},
                                                                         XNLI_ROW)), "example 0: field 'label' is null"),
    ("mlm_text_null", lambda m, o, t: mlm(m, o, "--train_file", rows(t, "m.json", {"text": "Some text here."}, {
        "text": None})), "example 1: field 'text' is null"),
    ("mlm_text_number", lambda m, o, t: mlm(m, o, "--train_file", rows(t, "m.json", {"text": 12}, {"text": "A b."})),
     "example 0: field 'text' is int '12'"),
    ("mlm_nothing_masked", lambda m, o, t: mlm(m, o, "--validation_file", rows(t, "v.json", {"text": "Paris"}),
                                               "--mlm_probability", "0.01"), "no position of its 1 block was masked"),
    ("retrieval_one_pair", lambda m, o, t: retrieval(m, o, "--tsv", _tsv(t, "one sentence\tune phrase\n")),
     "holds 1 sentence pair: retrieval needs at least 2"),
    # masks that are crafted or damaged
    ("packed_shape_strings", lambda m, o, t: ner_ft(m, o, "--pruning_type", "lth", "--mask_dir", _packed(t, shape="12")),
     "the shape of w.weight_mask is '12', not a list of sizes"),
    ("packed_huge_shape", lambda m, o, t: ner_ft(m, o, "--pruning_type", "lth", "--mask_dir",
                                                 _packed(t, shape=[1 << 20, 1 << 20])),
     "declares shape [1048576, 1048576] (1,099,511,627,776 bits) but stores 16 bits"),
    ("packed_bits_float", lambda m, o, t: ner_ft(m, o, "--pruning_type", "lth", "--mask_dir",
                                                 _packed(t, bits=torch.ones(2))), "are not a 1-D uint8 tensor"),
    ("sparse_mask", lambda m, o, t: ner_ft(m, o, "--pruning_type", "lth", "--mask_dir", _sparse(t)),
     "is a torch.sparse_coo tensor; masks are dense tensors"),
]


def _latin1_config(tmp: Path) -> str:
    path = tmp / "config.json"
    path.write_bytes('{"output_dir": "caf\u00e9"}'.encode("latin-1"))
    return str(path)


def _tsv(tmp: Path, text: str) -> str:
    path = tmp / "en-fr.tsv"
    path.write_text(text, encoding="utf-8")
    return str(path)


def _packed(tmp: Path, shape=None, bits=None) -> str:
    payload = {"format": "packed-bits-v1", "shapes": {"w.weight_mask": [4, 4] if shape is None else shape},
               "bits": {"w.weight_mask": torch.zeros(2, dtype=torch.uint8) if bits is None else bits}}
    torch.save(payload, tmp / "packed.pt")
    return str(tmp / "packed.pt")


def _sparse(tmp: Path) -> str:
    torch.save({"bert.encoder.layer.0.attention.self.query.weight_mask": torch.eye(4).to_sparse()}, tmp / "s.pt")
    return str(tmp / "s.pt")


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2(case, tiny_models, tmp_path, run_script, capsys, monkeypatch):
    from utils.core import training

    monkeypatch.setattr(training.MaskedTrainer, "train", lambda *a, **k: pytest.fail("training started"))
    _, build, expected = case
    argv = build(tiny_models, str(tmp_path / "out"), tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        run_script(*argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(err) == 1 and err[0].startswith("error: "), err
    assert expected in err[0]


def test_packed_mask_without_checksum_loads_with_one_warning(tmp_path, capsys):
    from utils.core.masks import Mask

    mask = Mask({"w.weight": torch.rand(4, 4) > 0.5})
    mask.save(tmp_path / "m.pt", {"task": "ner"}, packed=True)
    Mask.load(tmp_path / "m.pt")
    assert capsys.readouterr().err == ""
    meta = json.loads((tmp_path / "m.json").read_text())
    del meta["sha256"]
    (tmp_path / "m.json").write_text(json.dumps(meta))
    loaded = Mask.load(tmp_path / "m.pt")
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: ") and "no sha256" in err[0]
    assert torch.equal(loaded["w.weight"], mask["w.weight"])
    (tmp_path / "m.json").unlink()
    Mask.load(tmp_path / "m.pt")
    assert "loaded without an integrity check" in capsys.readouterr().err
