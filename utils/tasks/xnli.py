"""XNLI sentence-pair classification with mBERT: data, model and accuracy.

The hub's `facebook/xnli` (config = language) has a machine-translated MNLI as its train split and the human
translated dev/test sets; local JSON-lines files with `premise`, `hypothesis` and `label` (0 entailment, 1 neutral,
2 contradiction, or those words) serve offline. The model is AutoModelForSequenceClassification with 3 labels,
whose pooler dense is prunable like the encoder's matrices (utils.core.pruning.prunable_weights finds it).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from datasets import Dataset
from transformers import AutoModelForSequenceClassification, DataCollatorWithPadding, PreTrainedTokenizerBase

from utils.infra.args import DataArguments, ExperimentTrainingArguments, ModelArguments
from utils.infra.data import build_splits, check_labels, load_split, map_examples, pad_multiple
from utils.infra.errors import UserError
from utils.infra.models import check_input_length, check_room_for_text, load_model, load_tokenizer
from utils.core.training import TaskSetup

LABELS = ["entailment", "neutral", "contradiction"]  # the ids facebook/xnli uses
FIELDS = {"premise": "text", "hypothesis": "text", "label": "label"}  # name -> kind (utils.infra.data.FIELD_KINDS)
HUB_DATASET = "facebook/xnli"


@dataclass
class XnliDataArguments(DataArguments):
    """XNLI needs no flags beyond the common ones (--max_seq_length, --pad_to_max_length, --data_language, ...)."""


def build_xnli(
    model_args: ModelArguments,
    data_args: XnliDataArguments,
    training_args: ExperimentTrainingArguments,
    weight_init: str = "pre",
) -> TaskSetup:
    tokenizer = load_tokenizer(model_args)
    model = load_model(
        AutoModelForSequenceClassification,
        model_args,
        weight_init,
        seed=training_args.seed,
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)},
    )
    check_input_length(model, data_args.max_seq_length, "--max_seq_length")
    check_room_for_text(tokenizer, data_args.max_seq_length, "--max_seq_length", pair=True)

    def encode(split: str, lang: str) -> Dataset:
        raw = load_split(data_args, lang, split, FIELDS, default_hub=HUB_DATASET)
        raw = label_ids(raw, f"XNLI {lang} {split}")
        return map_examples(
            raw, _tokenize_pairs, data_args, desc=f"tokenising XNLI {lang} {split}",
            fn_kwargs={"tokenizer": tokenizer, "max_length": data_args.max_seq_length,
                       "pad": data_args.pad_to_max_length},
        )

    train, eval_sets = build_splits(data_args, training_args, encode)
    notes = []
    if train is not None:
        notes.append(f"XNLI train: {len(train):,} pairs ({', '.join(data_args.languages)})")
    if eval_sets:
        notes.append("XNLI validation: " + ", ".join(f"{lang} {len(d):,} pairs" for lang, d in eval_sets.items()))
    collator = DataCollatorWithPadding(
        tokenizer, pad_to_multiple_of=pad_multiple(training_args)
    )
    return TaskSetup(
        task="xnli",
        model=model,
        tokenizer=tokenizer,
        train_dataset=train,
        eval_datasets=eval_sets,
        collate_fn=collator,
        evaluate=evaluate_xnli,
        metric="accuracy",
        greater_is_better=True,
        train_languages=data_args.languages,
        notes=notes,
    )


def label_ids(dataset: Dataset, source: str) -> Dataset:
    """Labels as ids 0..2; label words (entailment, ...) in a local file are mapped, anything else stops the run."""
    if dataset.features["label"].dtype == "string":
        unknown = sorted({value for value in dataset["label"] if value not in LABELS}, key=str)
        if unknown:
            raise UserError(f"{source}: unknown label {unknown[0]!r} (expected 0, 1, 2 or {', '.join(LABELS)})")
        dataset = dataset.map(lambda row: {"label": LABELS.index(row["label"])})
    check_labels(dataset, "label", len(LABELS), source)
    return dataset


def _tokenize_pairs(batch: dict, tokenizer: PreTrainedTokenizerBase, max_length: int, pad: bool) -> dict:
    """premise [SEP] hypothesis, truncated (longest first) to max_length; padded later per batch unless `pad`."""
    encoded = tokenizer(
        batch["premise"],
        batch["hypothesis"],
        truncation=True,
        max_length=max_length,
        padding="max_length" if pad else False,
    )
    encoded["labels"] = batch["label"]
    return encoded


def evaluate_xnli(model, loader, accelerator) -> dict[str, float]:
    """Accuracy and mean cross-entropy over every example (each counted once across processes)."""
    losses, correct = [], []
    for batch in loader:
        logits = model(**batch).logits
        labels = batch["labels"]
        loss = F.cross_entropy(logits.float(), labels, reduction="none")
        hits = (logits.argmax(-1) == labels).float()
        loss, hits = accelerator.gather_for_metrics((loss, hits))
        losses.append(loss.cpu())
        correct.append(hits.cpu())
    if not losses:
        return {"accuracy": float("nan"), "loss": float("nan")}
    return {"accuracy": torch.cat(correct).mean().item(), "loss": torch.cat(losses).mean().item()}
