"""mT5 XNLI (text-to-text): prunable sets, per-stack IMP, generation-based accuracy, mask formats, fixed-mask runs."""
from __future__ import annotations

import json
import math
import shlex
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from utils.infra.args import ExperimentTrainingArguments, ModelArguments, parse_args
from utils.core.masks import Mask, stack_of
from utils.tasks.mt5_xnli import (
    GOLD_COLUMN,
    LABEL_WORDS,
    UNPARSEABLE,
    GoldKeepingCollator,
    Mt5IMPArguments,
    Mt5MaskArguments,
    Mt5XnliDataArguments,
    encode_pairs,
    evaluate_mt5_xnli,
    parse_label,
)
from utils.core.pruning import prunable_weights

REPO = Path(__file__).resolve().parents[1]
PAIRS = [  # (premise, hypothesis, label): enough variety for a few training steps
    ("A man sleeps in the park.", "A person rests.", 0),
    ("A woman reads a book.", "The woman reads a novel by Tolstoy.", 1),
    ("The children play football.", "Nobody is playing.", 2),
    ("Un homme dort.", "Une personne se repose.", 0),
    ("Les enfants jouent au parc.", "Les enfants sont au parc depuis midi.", 1),
    ("Une femme lit un livre.", "Personne ne lit.", 2),
]
# The seed README's mt5_xnli_fine_tune.py command, verbatim.
SEED_COMMAND = """--mask_dir tmp/xnli_mask/fr_mask.pt --output_dir tmp/fine-tuning/xnli/fr --model_name_or_path google/mt5-base
--dataset_name xnli --data_language fr --do_train --do_eval --per_device_train_batch_size 32
--per_device_eval_batch_size 32 --learning_rate 2e-4 --num_train_epochs 3 --max_seq_length 256 --max_source_length 128
--max_target_length 16 --val_max_target_length 5 --evaluate_during_training --overwrite_output_dir --pad_to_max_length
--logging_steps 1227 --save_steps 0 --seed 57 --weight_init pre"""


@pytest.fixture(scope="module")
def xnli_files(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("xnli")
    for lang in ("en", "fr"):
        (root / lang).mkdir()
        for split, repeat in (("train", 4), ("validation", 1)):
            rows = [{"premise": p, "hypothesis": h, "label": y} for p, h, y in PAIRS] * repeat
            (root / lang / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return root


@pytest.fixture
def common_args(tiny_models, xnli_files, tmp_path):
    def build(out: str, *extra: str) -> list[str]:
        return [
            "--model_name_or_path", str(tiny_models / "mt5-tiny"),
            "--train_file", str(xnli_files / "{lang}" / "train.jsonl"),
            "--validation_file", str(xnli_files / "{lang}" / "validation.jsonl"),
            "--output_dir", str(tmp_path / out),
            "--do_train", "--do_eval", "--per_device_train_batch_size", "8", "--per_device_eval_batch_size", "12",
            "--learning_rate", "3e-3", "--max_source_length", "48", "--max_target_length", "8",
            "--val_max_target_length", "5", "--logging_steps", "100", "--seed", "3", *extra,
        ]

    return build


# -- what is pruned --------------------------------------------------------------------------------------------


def expected_prunable(num_layers: int, num_decoder_layers: int) -> set[str]:
    attn = ("q", "k", "v", "o")
    ffn = ("wi_0", "wi_1", "wo")
    names = set()
    for i in range(num_layers):
        names |= {f"encoder.block.{i}.layer.0.SelfAttention.{m}.weight" for m in attn}
        names |= {f"encoder.block.{i}.layer.1.DenseReluDense.{m}.weight" for m in ffn}
    for i in range(num_decoder_layers):
        names |= {f"decoder.block.{i}.layer.0.SelfAttention.{m}.weight" for m in attn}
        names |= {f"decoder.block.{i}.layer.1.EncDecAttention.{m}.weight" for m in attn}
        names |= {f"decoder.block.{i}.layer.2.DenseReluDense.{m}.weight" for m in ffn}
    return names


def test_prunable_sets_of_tiny_mt5_are_exactly_the_listed_matrices(tiny_models):
    from transformers import AutoModelForSeq2SeqLM

    model = AutoModelForSeq2SeqLM.from_pretrained(tiny_models / "mt5-tiny")
    names = set(prunable_weights(model))
    config = model.config
    assert names == expected_prunable(config.num_layers, config.num_decoder_layers)
    assert {n for n in names if stack_of(n) == "encoder"} == {n for n in names if n.startswith("encoder.")}
    assert not any(k in n for n in names for k in ("shared", "lm_head", "relative_attention_bias", "layer_norm"))


def test_mt5_base_shape_has_216_prunable_matrices():
    """The architecture of google/mt5-base (12 + 12 blocks, gated-gelu), at toy width: 216 matrices as the original."""
    from transformers import MT5Config, MT5ForConditionalGeneration

    config = MT5Config(vocab_size=32, d_model=8, d_kv=4, num_heads=2, d_ff=16, num_layers=12, num_decoder_layers=12,
                       feed_forward_proj="gated-gelu")
    names = set(prunable_weights(MT5ForConditionalGeneration(config)))
    assert len(names) == 216 and names == expected_prunable(12, 12)


# -- the seed command and the configs ----------------------------------------------------------------------------


def test_seed_readme_command_parses_verbatim_with_per_stack_default():
    types = (ModelArguments, Mt5XnliDataArguments, Mt5MaskArguments, ExperimentTrainingArguments)
    _, data, mask, training = parse_args(types, shlex.split(SEED_COMMAND))
    assert (data.max_seq_length, data.max_source_length, data.max_target_length) == (256, 128, 16)
    assert data.eval_target_length == 5 and data.num_beams == 1 and data.pad_to_max_length
    assert mask.prune_scope == "per_stack" and mask.weight_init == "pre" and training.learning_rate == 2e-4


@pytest.mark.parametrize("config, imp", [("configs/LT_mt5_xnli_args.json", True),
                                         ("configs/mt5_xnli_fine_tune_fr.json", False),
                                         ("configs/offline/LT_mt5_xnli.json", True),
                                         ("configs/offline/mt5_xnli_fine_tune.json", False)])
def test_configs_parse(config, imp):
    middle = Mt5IMPArguments if imp else Mt5MaskArguments
    _, data, extra, _ = parse_args((ModelArguments, Mt5XnliDataArguments, middle, ExperimentTrainingArguments),
                                   [str(REPO / config)])
    assert extra.prune_scope == "per_stack" and data.eval_target_length == 5
    assert not imp or extra.rewind_scope == "all"


# -- formatting and scoring ----------------------------------------------------------------------------------------


def test_encode_pairs_formats_source_and_masks_target_padding(tiny_models):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_models / "mt5-tiny")
    data_args = Mt5XnliDataArguments(max_source_length=40, max_target_length=8, pad_to_max_length=True)
    batch = {"premise": ["A man sleeps."], "hypothesis": ["A person rests."], "label": [2]}
    encoded = encode_pairs(batch, tokenizer, data_args, target_length=8, keep_gold=True)
    assert tokenizer.decode(encoded["input_ids"][0], skip_special_tokens=True) == (
        "xnli premise: A man sleeps. hypothesis: A person rests.")
    assert len(encoded["input_ids"][0]) == 40 and len(encoded["labels"][0]) == 8
    labels = [t for t in encoded["labels"][0] if t != -100]
    assert tokenizer.decode(labels, skip_special_tokens=True) == "contradiction"
    assert labels[-1] == tokenizer.eos_token_id and encoded[GOLD_COLUMN] == [2]


def test_parse_label_is_exact_after_stripping():
    assert [parse_label(t) for t in ("entailment", " neutral ", "contradiction\n")] == [0, 1, 2]
    assert [parse_label(t) for t in ("Entailment", "neutral.", "", "contra")] == [UNPARSEABLE] * 4


class FakeSeq2Seq(nn.Module):
    """Returns fixed answers from generate(), so accuracy and the unparseable count are known in advance."""

    def __init__(self, answers: list[torch.Tensor]) -> None:
        super().__init__()
        self.answers = answers
        self.calls: list[dict] = []
        self.anchor = nn.Parameter(torch.zeros(1))

    def forward(self, **batch):
        assert GOLD_COLUMN not in batch  # the model never sees the gold column
        return SimpleNamespace(loss=torch.tensor(0.5))

    def generate(self, **kwargs):
        self.calls.append(kwargs)
        rows = [self.answers.pop(0) for _ in range(kwargs["input_ids"].shape[0])]
        width = max(len(r) for r in rows)
        return torch.stack([nn.functional.pad(r, (0, width - len(r))) for r in rows])  # pad id 0


def test_generation_accuracy_counts_unparseable_as_wrong(tiny_models):
    from accelerate import Accelerator
    from torch.utils.data import DataLoader
    from transformers import AutoTokenizer, DataCollatorForSeq2Seq

    tokenizer = AutoTokenizer.from_pretrained(tiny_models / "mt5-tiny")
    start = torch.tensor([0])  # decoder start, as generate() returns it
    def says(text): return torch.cat([start, torch.tensor(tokenizer(text_target=text)["input_ids"])])
    answers = [says("entailment"), says("neutral"), says("maybe"), says("contradiction"), says("entailment"),
               says("Neutral"), start]  # 3 right, 2 wrong words, 2 unparseable (one of them empty)
    gold = [0, 1, 1, 2, 2, 1, 0]
    features = [{"input_ids": [5, 6, 1], "attention_mask": [1, 1, 1], "labels": [7, 1], GOLD_COLUMN: g} for g in gold]
    collator = GoldKeepingCollator(DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100))
    accelerator = Accelerator(cpu=True)
    loader = accelerator.prepare(DataLoader(features, batch_size=3, collate_fn=collator))
    model = FakeSeq2Seq(answers)
    metrics = evaluate_mt5_xnli(model, loader, accelerator, tokenizer, max_new_tokens=5, num_beams=2)
    assert metrics["accuracy"] == pytest.approx(3 / 7)
    assert metrics["unparseable"] == 3 and metrics["examples"] == 7 and metrics["loss"] == pytest.approx(0.5)
    assert all(c["max_new_tokens"] == 5 and c["num_beams"] == 2 and not c["do_sample"] for c in model.calls)


# -- IMP and fixed-mask runs on the tiny mT5 ------------------------------------------------------------------------


def exact_removed(mask: Mask, sparsity: float) -> None:
    """Encoder and decoder each lose exactly round(sparsity * their size) weights."""
    for stack in ("encoder", "decoder"):
        tensors = [t for n, t in mask.items() if stack_of(n) == stack]
        total = sum(t.numel() for t in tensors)
        assert total > 0
        assert total - sum(int(t.sum()) for t in tensors) == round(sparsity * total), stack


def test_imp_prunes_encoder_and_decoder_each_to_the_sparsity(run_script, common_args, tmp_path):
    results = run_script("LT_mt5_xnli.py", *common_args("lt", "--save_steps", "3", "--prune_rate", "0.2",
                                                        "--target_sparsity", "0.4", "--data_language", "en",
                                                        "--eval_languages", "fr"))
    assert results["complete"] and results["prune_scope"] == "per_stack" and results["schedule"] == [0.0, 0.2, 0.4]
    assert results["rewind_scope"] == "all"  # the original rewound everything for mT5, lm_head included
    previous = None
    for sparsity in (0.2, 0.4):
        mask = Mask.load(tmp_path / "lt" / "masks" / f"sparsity_{round(sparsity * 100)}.pt")
        exact_removed(mask, sparsity)
        assert previous is None or mask.is_subset_of(previous)
        previous = mask
    final = results["rounds"][-1]["eval"]
    assert set(final) == {"en", "fr", "average"}
    assert {"accuracy", "unparseable", "examples", "loss"} <= set(final["en"]) and final["en"]["examples"] == 6


def test_imp_with_adafactor_and_global_scope(run_script, common_args, tmp_path):
    results = run_script("LT_mt5_xnli.py", *common_args("ada", "--optim", "adafactor", "--lr_scheduler_type", "linear",
                                                        "--save_steps", "3", "--prune_rate", "0.3",
                                                        "--target_sparsity", "0.3", "--prune_scope", "global"))
    assert results["complete"] and results["config"]["optim"] == "adafactor"
    assert all(r["steps"] == 3 and math.isfinite(r["train_loss"]) for r in results["rounds"])
    mask = Mask.load(tmp_path / "ada" / "masks" / "sparsity_30.pt")
    assert mask.num_weights - mask.num_kept == round(0.3 * mask.num_weights)


def test_reset_optimizer_clears_adafactor_state(tiny_models, xnli_files, tmp_path):
    from utils.tasks.mt5_xnli import build_mt5_xnli
    from utils.core.training import MaskedTrainer

    argv = ["--model_name_or_path", str(tiny_models / "mt5-tiny"), "--output_dir", str(tmp_path),
            "--train_file", str(xnli_files / "{lang}" / "train.jsonl"), "--do_train", "--optim", "adafactor",
            "--learning_rate", "1e-2", "--per_device_train_batch_size", "8", "--logging_steps", "100"]
    model_args, data_args, _, training_args = parse_args(
        (ModelArguments, Mt5XnliDataArguments, Mt5IMPArguments, ExperimentTrainingArguments), argv)
    trainer = MaskedTrainer(build_mt5_xnli(model_args, data_args, training_args), training_args)
    trainer.train(2, seed=0)
    inner = getattr(trainer.optimizer, "optimizer", trainer.optimizer)
    assert type(inner).__name__ == "Adafactor" and len(inner.state) > 0
    trainer.reset_optimizer(5)
    assert len(inner.state) == 0 and trainer.scheduler.get_last_lr()[0] == pytest.approx(1e-2)


def test_original_format_mask_loads_and_stays_applied(run_script, common_args, tiny_models, tmp_path):
    """A mask as the original mT5 code saved it: `module.` keys, float 0/1 values."""
    from transformers import AutoModelForSeq2SeqLM

    weights = prunable_weights(AutoModelForSeq2SeqLM.from_pretrained(tiny_models / "mt5-tiny"))
    generator = torch.Generator().manual_seed(0)
    original = {f"module.{n}_mask": (torch.rand(w.shape, generator=generator) > 0.3).float() for n, w in weights.items()}
    torch.save(original, tmp_path / "fr_mask.pt")
    loaded = Mask.load(tmp_path / "fr_mask.pt")
    assert len(loaded) == len(weights) and set(loaded) == set(weights)

    results = run_script("mt5_xnli_fine_tune.py", *common_args("ft_lth", "--mask_dir", str(tmp_path / "fr_mask.pt"),
                                                               "--max_steps", "3", "--data_language", "fr",
                                                               "--pad_to_max_length", "--save_model"))
    assert results["sparsity"] == pytest.approx(loaded.sparsity)
    assert results["weights_zero_fraction"] >= loaded.sparsity
    trained = AutoModelForSeq2SeqLM.from_pretrained(tmp_path / "ft_lth" / "model")
    trained_weights = prunable_weights(trained)
    assert all(bool((trained_weights[n][~t] == 0).all()) for n, t in loaded.items())


@pytest.mark.parametrize("pruning_type, weight_init", [("random", "pre"), ("oneshot", "rand")])
def test_random_and_oneshot_masks_at_sparsity(run_script, common_args, tmp_path, pruning_type, weight_init):
    out = f"ft_{pruning_type}"
    results = run_script("mt5_xnli_fine_tune.py", *common_args(out, "--pruning_type", pruning_type, "--sparsity", "50",
                                                               "--weight_init", weight_init, "--max_steps", "2",
                                                               "--save_model"))
    assert results["sparsity"] == pytest.approx(0.5, abs=1e-4) and results["weight_init"] == weight_init
    exact_removed(Mask.load(tmp_path / out / "model" / "mask.pt"), 0.5)
    assert results["headline"] is not None


def test_rand_init_keeps_an_untied_lm_head(tiny_models):
    from transformers import AutoModelForSeq2SeqLM

    from utils.infra.models import load_model
    from utils.tasks.mt5_xnli import untie_lm_head_like_checkpoint

    model_args = ModelArguments(model_name_or_path=str(tiny_models / "mt5-tiny"))
    model = load_model(AutoModelForSeq2SeqLM, model_args, "rand", seed=0)
    untie_lm_head_like_checkpoint(model, model_args)
    assert model.lm_head.weight is not model.shared.weight  # same architecture as the checkpoint


def test_too_short_generation_length_is_a_user_error(run_script, common_args, tiny_models, capsys):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_models / "mt5-tiny")
    longest = max(len(tokenizer(text_target=w)["input_ids"]) - 1 for w in LABEL_WORDS)
    if longest < 2:
        pytest.skip("every label word is a single token in this tokenizer")
    with pytest.raises(SystemExit) as exit_info:
        run_script("mt5_xnli_fine_tune.py", *common_args("short", "--pruning_type", "none",
                                                         "--val_max_target_length", str(longest - 1)))
    assert exit_info.value.code == 2
    assert "--val_max_target_length" in capsys.readouterr().err
