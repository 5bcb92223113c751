"""MLM with mBERT: whole-article blocks, article-level hold-out, fixed evaluation masking, IMP end to end,
cross-task masks, random init, the seed commands, and the datasets cache."""
from __future__ import annotations

import json
import math
import shlex
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from utils.infra.args import ExperimentTrainingArguments, IMPArguments, MaskArguments, ModelArguments, parse_args
from utils.infra.errors import UserError
from utils.core.masks import Mask
from utils.tasks.mlm import MlmDataArguments, build_mlm, hold_out_articles, special_frame, split_articles
from utils.core.pruning import prunable_weights, random_prune
from utils.core.training import MaskedTrainer

REPO = Path(__file__).resolve().parents[1]
POOLER = "bert.pooler.dense.weight"
SENTENCES = [
    "Marie Curie was born in Warsaw and worked in Paris.",
    "The European Union signed a new agreement with Canada on Monday.",
    "Les enfants jouent au football dans le parc.",
    "El señor García vive en Madrid desde hace años.",
    "The weather in London is cold and rainy in November.",
]
# The seed README's commands, verbatim.
SEED_LT_PRETRAIN = """--output_dir LT_pretrain_model --model_type mbert
--model_name_or_path bert-base-multilingual-cased --train_file pretrain_data/en.train.json --do_train
--validation_file pretrain_data/en.valid.json --do_eval
--per_device_train_batch_size 16 --per_device_eval_batch_size 16 --evaluate_during_training --num_train_epochs 1
--logging_steps 10000 --save_steps 10000 --mlm --overwrite_output_dir --seed 57"""
SEED_PRETRAIN_TRANS = """--mask_dir tmp/dif_mask/pretrain_mask.pt --output_dir tmp/fine-tuning/pre --model_type mbert
--mlm --model_name_or_path bert-base-multilingual-cased --train_file pretrain_data/en.train.json --do_train
--validation_file pretrain_data/en.valid.json --do_eval --per_device_train_batch_size 16 --per_device_eval_batch_size 16
--evaluate_during_training --num_train_epochs 1 --logging_steps 2000 --save_steps 0 --max_steps 20000
--overwrite_output_dir --seed 57 --weight_init pre"""


def article(i: int) -> dict:
    """Articles of different lengths (1 to 9 sentences), as wikiextractor writes them."""
    text = " ".join(SENTENCES[(i + k) % len(SENTENCES)] for k in range(1 + i % 9))
    return {"id": str(i), "url": f"https://example.org/{i}", "title": f"Article {i}", "text": f"Article {i}. {text}"}


def write_articles(path: Path, rows: list[dict]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("mlm")
    train = [article(i) for i in range(20)]
    train.insert(5, {"id": "x", "url": "", "title": "Redirect", "text": ""})  # skipped
    train.insert(9, {"id": "y", "url": "", "title": "Blank", "text": "  \n"})  # skipped
    return {
        "train": write_articles(root / "en.train.json", train),
        "valid": write_articles(root / "en.valid.json", [article(i) for i in range(100, 106)]),
    }


def mlm_setup(tiny_models: Path, tmp_path: Path, *argv: str):
    types = (ModelArguments, MlmDataArguments, IMPArguments, ExperimentTrainingArguments)
    model_args, data_args, _, training_args = parse_args(types, [
        "--model_name_or_path", str(tiny_models / "mbert-tiny"), "--output_dir", str(tmp_path / "out"),
        "--report_to", "none", "--per_device_eval_batch_size", "4", *argv,
    ])
    return build_mlm(model_args, data_args, training_args), data_args, training_args


@pytest.fixture
def mlm_args(tiny_models, corpus, tmp_path):
    def build(out: str, *extra: str) -> list[str]:
        return [
            "--model_name_or_path", str(tiny_models / "mbert-tiny"), "--mlm", "--model_type", "mbert",
            "--train_file", corpus["train"], "--validation_file", corpus["valid"], "--output_dir", str(tmp_path / out),
            "--do_train", "--do_eval", "--block_size", "32", "--per_device_train_batch_size", "4",
            "--per_device_eval_batch_size", "8", "--logging_steps", "100", "--report_to", "none", "--seed", "3", *extra,
        ]

    return build


def test_blocks_cover_every_article_whole(tiny_models, corpus, tmp_path):
    setup, _, _ = mlm_setup(tiny_models, tmp_path, "--train_file", corpus["train"],
                            "--validation_file", corpus["valid"],
                            "--block_size", "16", "--do_train")
    tokenizer = AutoTokenizer.from_pretrained(tiny_models / "mbert-tiny")
    prefix, suffix = special_frame(tokenizer)
    assert (prefix, suffix) == ([tokenizer.cls_token_id], [tokenizer.sep_token_id])
    blocks = list(setup.train_dataset["input_ids"])
    assert all(len(b) <= 16 and b[:1] == prefix and b[-1:] == suffix for b in blocks)
    assert all(mask == [1] * len(b) for b, mask in zip(blocks, setup.train_dataset["attention_mask"]))
    texts = [article(i)["text"] for i in range(20)]  # the empty ones are skipped
    position = 0
    for text in texts:  # blocks come in article order, each article's blocks in text order
        expected = tokenizer(text, add_special_tokens=False)["input_ids"]
        count = math.ceil(len(expected) / 14)
        joined = [t for block in blocks[position:position + count] for t in block[1:-1]]
        assert joined == expected
        position += count
    assert position == len(blocks) and len(blocks) > len(texts)  # several blocks per long article, none dropped


def test_held_out_articles_share_nothing_with_training(tiny_models, corpus, tmp_path):
    data_args = parse_args((MlmDataArguments,), ["--train_file", corpus["train"], "--val_data_ratio", "0.25"])[0]
    train, held, how = split_articles(data_args, "en", need_train=True, need_validation=True)
    assert len(held) == 5 and len(train) == 15 and "val_data_ratio" in how  # 25% of the 20 non-empty articles
    assert not set(train["text"]) & set(held["text"])
    assert sorted(list(train["text"]) + list(held["text"])) == sorted(article(i)["text"] for i in range(20))
    again = split_articles(data_args, "en", need_train=True, need_validation=True)[1]
    assert list(again["text"]) == list(held["text"])  # seeded
    with pytest.raises(UserError, match="too few"):
        hold_out_articles(held.select([0]), 0.5, seed=0)
    setup, _, _ = mlm_setup(tiny_models, tmp_path, "--train_file", corpus["train"], "--val_data_ratio", "0.25",
                            "--block_size", "16", "--do_train", "--do_eval")
    tokenizer = AutoTokenizer.from_pretrained(tiny_models / "mbert-tiny")
    expected = [t for text in held["text"] for t in tokenizer(text, add_special_tokens=False)["input_ids"]]
    unmasked = [label if label != -100 else token
                for ids, labels in zip(setup.eval_datasets["en"]["input_ids"], setup.eval_datasets["en"]["labels"])
                for token, label in zip(ids[1:-1], labels[1:-1])]
    assert unmasked == expected  # the evaluation blocks are exactly the held-out articles, whole
    assert sum(len(b) - 2 for b in setup.train_dataset["input_ids"]) == sum(
        len(tokenizer(text, add_special_tokens=False)["input_ids"]) for text in train["text"])


def test_evaluation_masks_the_same_positions_every_time(tiny_models, corpus, tmp_path):
    setup, _, training_args = mlm_setup(tiny_models, tmp_path, "--train_file", corpus["train"],
                                        "--validation_file", corpus["valid"], "--block_size", "32", "--do_eval")
    dataset = setup.eval_datasets["en"]
    labels = [torch.tensor(row) for row in dataset["labels"]]
    masked = sum(int((row != -100).sum()) for row in labels)
    total = sum(row.numel() - 2 for row in labels)
    assert 0.05 < masked / total < 0.3  # about 15% of the text tokens
    assert all(row[0] == -100 and row[-1] == -100 for row in labels)  # never [CLS] / [SEP]
    trainer = MaskedTrainer(setup, training_args)
    first_batches = [{k: v.clone() for k, v in batch.items()} for batch in trainer.eval_loaders["en"]]
    first = trainer.evaluate()
    torch.manual_seed(12345)  # the global RNG plays no part
    second_batches = list(trainer.eval_loaders["en"])
    second = trainer.evaluate()
    for a, b in zip(first_batches, second_batches, strict=True):
        assert torch.equal(a["input_ids"], b["input_ids"]) and torch.equal(a["labels"], b["labels"])
    assert first == second
    assert first["en"]["masked_tokens"] == masked
    assert first["en"]["perplexity"] == pytest.approx(math.exp(first["en"]["loss"]))
    rebuilt, _, _ = mlm_setup(tiny_models, tmp_path, "--train_file", corpus["train"],
                              "--validation_file", corpus["valid"], "--block_size", "32", "--do_eval", "--seed", "9")
    # the same positions in every run and with every seed
    assert list(rebuilt.eval_datasets["en"]["labels"]) == list(dataset["labels"])


def test_tokenised_data_comes_from_the_datasets_cache(tiny_models, corpus, tmp_path):
    argv = ("--train_file", corpus["train"], "--validation_file", corpus["valid"], "--block_size", "24", "--do_train",
            "--do_eval")
    first, _, _ = mlm_setup(tiny_models, tmp_path, *argv)
    files = [Path(f["filename"]) for f in first.train_dataset.cache_files + first.eval_datasets["en"].cache_files]
    stamps = {f: f.stat().st_mtime_ns for f in files}
    second, _, _ = mlm_setup(tiny_models, tmp_path, *argv)
    again = second.train_dataset.cache_files + second.eval_datasets["en"].cache_files
    assert [Path(f["filename"]) for f in again] == files
    assert {f: f.stat().st_mtime_ns for f in files} == stamps  # read back, not rewritten


def test_lt_pretrain_end_to_end(run_script, mlm_args, tmp_path):
    results = run_script("LT_pretrain.py", *mlm_args("imp", "--save_steps", "2", "--prune_rate", "0.25",
                                                     "--target_sparsity", "0.5"))
    assert results["complete"] and results["task"] == "mlm"
    assert results["metric"] == "perplexity" and results["greater_is_better"] is False
    assert [r["sparsity"] for r in results["rounds"]] == pytest.approx([0.0, 0.25, 0.5])
    masked = {entry["eval"]["en"]["masked_tokens"] for entry in results["rounds"]}
    assert len(masked) == 1 and masked.pop() > 0  # every round scores the same masked tokens
    for entry in results["rounds"]:
        values = entry["eval"]["en"]
        assert entry["headline"] == values["perplexity"] == pytest.approx(math.exp(values["loss"]))
        right = values["accuracy"] * values["masked_tokens"]  # k of the masked tokens predicted
        assert right == pytest.approx(round(right), abs=1e-6)
    assert json.loads((tmp_path / "imp" / "imp_results.json").read_text())["complete"]
    for sparsity in (25, 50):
        mask = Mask.load(tmp_path / "imp" / "masks" / f"sparsity_{sparsity}.pt")
        assert POOLER not in mask and len(mask) == 12
        assert mask.num_weights - mask.num_kept == round(sparsity / 100 * mask.num_weights)


def test_xnli_mask_on_mlm_ignores_the_pooler_entry(run_script, mlm_args, tiny_models, tmp_path, capsys):
    model = AutoModelForSequenceClassification.from_pretrained(tiny_models / "mbert-tiny", num_labels=3)
    mask = random_prune(prunable_weights(model), 0.5, seed=2)
    mask.save(tmp_path / "xnli_mask.pt", {"task": "xnli"})
    results = run_script("pretrain_trans.py", *mlm_args("transfer", "--mask_dir", str(tmp_path / "xnli_mask.pt"),
                                                        "--max_steps", "2", "--save_model"))
    out = capsys.readouterr().out
    assert out.count("has a pooler entry but this model has no pooler: the entry is ignored") == 1
    saved = load_file(tmp_path / "transfer" / "model" / "model.safetensors")
    assert POOLER not in saved
    for name, kept in mask.items():
        if name != POOLER:
            assert torch.equal(saved[name] != 0, kept)
    assert results["eval"]["en"]["perplexity"] > 1


def test_random_weights_train_and_differ_from_the_checkpoint(run_script, mlm_args, tiny_models, tmp_path):
    results = run_script("pretrain_trans.py", *mlm_args("rand", "--weight_init", "rand", "--pruning_type", "oneshot",
                                                        "--sparsity", "0.3", "--max_steps", "2", "--save_model"))
    assert results["weight_init"] == "rand" and results["steps"] == 2
    assert results["sparsity"] == pytest.approx(0.3, abs=1e-4)
    pretrained = load_file(tiny_models / "mbert-tiny" / "model.safetensors")
    trained = load_file(tmp_path / "rand" / "model" / "model.safetensors")
    for name in ("bert.embeddings.word_embeddings.weight", "bert.encoder.layer.1.output.dense.weight"):
        assert (trained[name] - pretrained[name]).abs().max() > 0.01


@pytest.mark.parametrize("flags, message", [
    (("--mlm", "false"), "without --mlm these scripts train a causal LM, and "),
    (("--val_data_ratio", "1.5"), "--val_data_ratio must be a fraction in (0, 1), got 1.5"),
    (("--block_size", "2"), "--block_size 2 leaves no room for text"),
    (("--block_size", "4096"), "--block_size 4096 exceeds the model's 512 positions"),
])
def test_mistakes_stop_with_one_line(run_script, mlm_args, flags, message, capsys):
    with pytest.raises(SystemExit) as stop:
        run_script("LT_pretrain.py", *mlm_args("bad", "--save_steps", "1", *flags))
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {message}") and "\n" not in err


def test_seed_commands_parse_verbatim():
    types = (ModelArguments, MlmDataArguments, IMPArguments, ExperimentTrainingArguments)
    model, data, _, training = parse_args(types, shlex.split(SEED_LT_PRETRAIN))
    assert (model.model_type, data.mlm, data.train_file, data.validation_file) == (
        "mbert", True, "pretrain_data/en.train.json", "pretrain_data/en.valid.json")
    assert (training.save_steps, training.logging_steps, training.num_train_epochs) == (10000, 10000, 1)
    assert training.seed == 57 and training.evaluate_during_training and training.overwrite_output_dir
    types = (ModelArguments, MlmDataArguments, MaskArguments, ExperimentTrainingArguments)
    _, data, mask, training = parse_args(types, shlex.split(SEED_PRETRAIN_TRANS) + ["--val_data_ratio", "0.05"])
    assert (mask.mask_dir, mask.weight_init, training.max_steps, training.save_steps) == (
        "tmp/dif_mask/pretrain_mask.pt", "pre", 20000, 0)
    assert data.val_data_ratio == 0.05 and data.mlm_probability == 0.15 and data.block_size is None


@pytest.mark.parametrize("config, argument_types", [
    ("configs/LT_pretrain_args.json", IMPArguments), ("configs/offline/LT_pretrain.json", IMPArguments),
    ("configs/pretrain_trans_en.json", MaskArguments), ("configs/offline/pretrain_trans.json", MaskArguments),
])
def test_configs_parse(config, argument_types):
    types = (ModelArguments, MlmDataArguments, argument_types, ExperimentTrainingArguments)
    model, data, _, training = parse_args(types, [str(REPO / config)])
    assert training.do_train and training.do_eval and data.mlm and model.model_type == "mbert"


def test_seed_commands_run_on_the_tiny_model(run_script, tiny_models, corpus, tmp_path):
    """Every flag of the seed commands, with the model, data, output and step counts swapped for small ones."""
    local = ["--model_name_or_path", str(tiny_models / "mbert-tiny"), "--train_file", corpus["train"],
             "--validation_file", corpus["valid"], "--report_to", "none", "--block_size", "32"]
    results = run_script("LT_pretrain.py", *shlex.split(SEED_LT_PRETRAIN), *local, "--output_dir", str(tmp_path / "lt"),
                         "--save_steps", "2", "--prune_rate", "0.5", "--target_sparsity", "0.5")
    assert results["complete"] and results["schedule"] == [0.0, 0.5]
    results = run_script("pretrain_trans.py", *shlex.split(SEED_PRETRAIN_TRANS), *local,
                         "--mask_dir", str(tmp_path / "lt" / "masks" / "sparsity_50.pt"),
                         "--output_dir", str(tmp_path / "ft"), "--max_steps", "2")
    assert results["steps"] == 2 and results["sparsity"] == pytest.approx(0.5, abs=1e-4)
