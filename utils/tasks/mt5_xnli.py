"""mT5 on XNLI as text-to-text: data formatting, model loading and generation-based accuracy.

Each pair becomes the source `xnli premise: {premise} hypothesis: {hypothesis}` and the target is the label word
(entailment / neutral / contradiction), as in the original mT5 scripts. The model is trained with the usual
seq2seq cross-entropy; evaluation generates an answer and counts exact matches of the label word, so an output
that is none of the three words is wrong (and counted as `unparseable`). Pruning, IMP and the training loop are
the shared ones; only the defaults differ: mT5's encoder and decoder are pruned each to the same sparsity.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable, ClassVar, Optional, Sequence

import numpy as np
import torch
from transformers import AutoModelForSeq2SeqLM, DataCollatorForSeq2Seq, PretrainedConfig

from utils.infra.args import DataArguments, ExperimentTrainingArguments, ModelArguments
from utils.infra.data import build_splits, map_examples, pad_multiple
from utils.infra.errors import UserError
from utils.infra.models import check_room_for_text, load_model, load_tokenizer
from utils.tasks.base import TaskSetup
from utils.tasks.base import TaskSpec
from utils.tasks.xnli import LABELS as LABEL_WORDS, XNLI

UNPARSEABLE = -1
GOLD_COLUMN = "class_index"  # the gold label id, carried next to the eval examples


def source_text(premise: str, hypothesis: str) -> str:
    return f"xnli premise: {premise} hypothesis: {hypothesis}"


@dataclass
class Mt5XnliDataArguments(DataArguments):
    """The flags of the original mt5_xnli_fine_tune.py, on top of the common data flags."""

    max_seq_length: Optional[int] = field(
        default=None,
        metadata={"help": "Accepted so the original commands run; unused by mT5 (--max_source_length cuts inputs)."},
    )
    pad_to_max_length: bool = field(
        default=False,
        metadata={"help": "Pad sources to --max_source_length and targets to their maximum (default: per batch)."},
    )
    max_source_length: int = field(default=128, metadata={"help": "Longer 'xnli premise: ... hypothesis: ...' inputs are truncated."})
    max_target_length: int = field(default=16, metadata={"help": "Training targets (label word + </s>) are cut here."})
    val_max_target_length: Optional[int] = field(
        default=None,
        metadata={"help": "Evaluation: at most this many generated tokens, and eval targets cut here "
                          "(default: --max_target_length)."},
    )
    num_beams: int = field(default=1, metadata={"help": "Beam size for evaluation (1: greedy, as the original)."})

    eval_only_fields: ClassVar[tuple[str, ...]] = DataArguments.eval_only_fields + ("val_max_target_length", "num_beams")

    @property
    def eval_target_length(self) -> int:
        return self.val_max_target_length or self.max_target_length


# The original's defaults for mT5: encoder and decoder each pruned to the round's sparsity (also for random /
# one-shot masks), and every parameter rewound, lm_head included.
SPEC = TaskSpec("mt5_xnli", "LT_mt5_xnli.py", "mt5_xnli_fine_tune.py", Mt5XnliDataArguments, hub=XNLI.hub,
                defaults=(("prune_scope", "per_stack"), ("rewind_scope", "all")), in_default_retrieval=False)
Mt5IMPArguments = SPEC.imp_arguments
Mt5MaskArguments = SPEC.mask_arguments

def build_mt5_xnli(
    model_args: ModelArguments,
    data_args: Mt5XnliDataArguments,
    training_args: ExperimentTrainingArguments,
    weight_init: str = "pre",
) -> TaskSetup:
    tokenizer = load_tokenizer(model_args)
    model = load_model(AutoModelForSeq2SeqLM, model_args, weight_init, seed=training_args.seed)
    if not getattr(model.config, "is_encoder_decoder", False):
        raise UserError(f"{model_args.model_name_or_path} is not an encoder-decoder model; mT5 XNLI needs one (google/mt5-base)")
    if weight_init == "rand":
        untie_lm_head_like_checkpoint(model, model_args)
    check_target_lengths(tokenizer, data_args)
    check_room_for_text(tokenizer, data_args.max_source_length, "--max_source_length")

    def encode(split: str, lang: str):
        raw = XNLI.load(data_args, lang, split)  # ids 0..2, from ids or label words as for mBERT
        is_train = split == "train"
        target_length = data_args.max_target_length if is_train else data_args.eval_target_length
        return map_examples(
            raw, lambda batch: encode_pairs(batch, tokenizer, data_args, target_length, keep_gold=not is_train),
            data_args, desc=f"tokenising {lang} {split}",
        )

    train, eval_sets = build_splits(data_args, training_args, encode)
    collator = DataCollatorForSeq2Seq(
        tokenizer,
        model=model,
        label_pad_token_id=-100,
        pad_to_multiple_of=pad_multiple(training_args),
    )
    decoding = "greedy" if data_args.num_beams == 1 else f"beam search ({data_args.num_beams} beams)"
    notes = [
        f"mT5 XNLI as text-to-text: '{source_text('<premise>', '<hypothesis>')}' -> {' | '.join(LABEL_WORDS)}; "
        f"evaluation generates up to {data_args.eval_target_length} tokens ({decoding}) and scores exact matches"
    ]
    if data_args.max_seq_length not in (None, data_args.max_source_length):
        notes.append(f"--max_seq_length {data_args.max_seq_length} is unused for mT5: inputs are cut at "
                     f"--max_source_length {data_args.max_source_length}")
    return TaskSetup(
        task="mt5_xnli",
        model=model,
        tokenizer=tokenizer,
        train_dataset=train,
        eval_datasets=eval_sets,
        collate_fn=collator,
        eval_collate_fn=GoldKeepingCollator(collator),
        evaluate=partial(
            evaluate_mt5_xnli,
            tokenizer=tokenizer,
            max_new_tokens=data_args.eval_target_length,
            num_beams=data_args.num_beams,
        ),
        metric="accuracy",
        greater_is_better=True,
        train_languages=data_args.languages,
        notes=notes,
    )


def untie_lm_head_like_checkpoint(model, model_args: ModelArguments) -> None:
    """Give a randomly initialised mT5 its own LM head when the checkpoint has one (every released mT5 does).

    transformers 5 forces MT5Config.tie_word_embeddings to True, so `from_config` ties lm_head to the shared
    embedding, while `from_pretrained(google/mt5-base)` keeps them apart; 'rand' must be the same architecture.
    """
    name = model_args.config_name or model_args.model_name_or_path
    raw, _ = PretrainedConfig.get_config_dict(name, cache_dir=model_args.cache_dir)
    lm_head, shared = model.get_output_embeddings(), model.get_input_embeddings()
    if raw.get("tie_word_embeddings", True) or lm_head is None or lm_head.weight is not shared.weight:
        return
    weight = torch.empty_like(shared.weight)
    torch.nn.init.normal_(weight, mean=0.0, std=model.config.initializer_factor)  # MT5's init of an untied head
    lm_head.weight = torch.nn.Parameter(weight)
    model.config.tie_word_embeddings = False


def check_target_lengths(tokenizer, data_args: Mt5XnliDataArguments) -> None:
    """Stop when a label word cannot fit the target lengths: it could never be learnt, or never be generated."""
    for word in LABEL_WORDS:
        ids = tokenizer(text_target=word)["input_ids"]  # the word's pieces plus </s>
        if len(ids) > data_args.max_target_length:
            raise UserError(f"--max_target_length {data_args.max_target_length} cuts the label '{word}' "
                            f"({len(ids)} tokens with </s>): raise it")
        if len(ids) - 1 > data_args.eval_target_length:
            raise UserError(f"--val_max_target_length {data_args.eval_target_length} is too short to generate "
                            f"the label '{word}' ({len(ids) - 1} tokens): raise it")


def encode_pairs(batch: dict, tokenizer, data_args: Mt5XnliDataArguments, target_length: int, keep_gold: bool) -> dict:
    """Sources and label-word targets; padded target positions become -100 so the loss ignores them."""
    padding = "max_length" if data_args.pad_to_max_length else False
    sources = [source_text(p, h) for p, h in zip(batch["premise"], batch["hypothesis"])]
    encoded = tokenizer(sources, max_length=data_args.max_source_length, truncation=True, padding=padding)
    targets = tokenizer(
        text_target=[LABEL_WORDS[label] for label in batch["label"]],
        max_length=target_length,
        truncation=True,
        padding=padding,
    )
    pad = tokenizer.pad_token_id
    encoded["labels"] = [[t if t != pad else -100 for t in ids] for ids in targets["input_ids"]]
    if keep_gold:
        encoded[GOLD_COLUMN] = list(batch["label"])
    return encoded


class GoldKeepingCollator:
    """The seq2seq collator for evaluation, passing the gold label ids through as a tensor of their own."""

    def __init__(self, base: Callable[[list[dict]], dict]) -> None:
        self.base = base

    def __call__(self, features: list[dict]) -> dict:
        gold = torch.tensor([f[GOLD_COLUMN] for f in features], dtype=torch.long)
        batch = self.base([{k: v for k, v in f.items() if k != GOLD_COLUMN} for f in features])
        batch[GOLD_COLUMN] = gold
        return batch


def parse_label(text: str) -> int:
    """The label id of a generated answer, or UNPARSEABLE unless it is exactly one label word."""
    text = text.strip()
    return LABEL_WORDS.index(text) if text in LABEL_WORDS else UNPARSEABLE


def score(predicted: Sequence[int], gold: Sequence[int]) -> dict[str, float]:
    """Exact-match accuracy; unparseable predictions count as wrong, and are counted."""
    predicted, gold = np.asarray(predicted), np.asarray(gold)
    total = len(gold)
    return {
        "accuracy": float((predicted == gold).mean()) if total else float("nan"),
        "unparseable": float((predicted == UNPARSEABLE).sum()),
        "examples": float(total),
    }


@torch.no_grad()
def evaluate_mt5_xnli(model, loader, accelerator, tokenizer, max_new_tokens: int, num_beams: int) -> dict[str, Any]:
    """Teacher-forced loss, and accuracy of the label word the model generates (gathered over all processes)."""
    generator = accelerator.unwrap_model(model)  # DDP wrappers have no generate()
    predicted: list[int] = []
    gold: list[int] = []
    losses: list[float] = []
    for batch in loader:
        batch = dict(batch)
        gold_ids = batch.pop(GOLD_COLUMN)
        output = model(**batch)
        losses.append(accelerator.gather_for_metrics(output.loss.detach().reshape(1)).mean().item())
        generated = generator.generate(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            max_new_tokens=max_new_tokens,
            num_beams=num_beams,
            do_sample=False,
        )
        generated = accelerator.pad_across_processes(generated, dim=1, pad_index=tokenizer.pad_token_id)
        generated, gold_ids = accelerator.gather_for_metrics((generated, gold_ids))
        texts = tokenizer.batch_decode(generated.cpu(), skip_special_tokens=True)
        predicted.extend(parse_label(text) for text in texts)
        gold.extend(gold_ids.cpu().tolist())
    return {**score(predicted, gold), "loss": float(np.mean(losses)) if losses else float("nan")}
