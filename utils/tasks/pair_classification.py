"""Sentence-pair classification with an encoder (mBERT): one task module for every dataset of that shape.

A `PairTask` names the two text fields, the label words (id i is `labels[i]`) and the hub dataset; the model is
AutoModelForSequenceClassification with that many labels, whose pooler dense is prunable like the encoder's
matrices (utils.core.pruning.prunable_weights finds it). Local JSON-lines files hold the two fields and `label`
(an id, or one of the label words). XNLI (utils/tasks/xnli.py) and PAWS-X (utils/tasks/pawsx.py) are instances.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from datasets import Dataset
from transformers import AutoModelForSequenceClassification, DataCollatorWithPadding, PreTrainedTokenizerBase

from utils.infra.args import DataArguments, ExperimentTrainingArguments, ModelArguments
from utils.infra.data import HubDataset, build_splits, check_labels, load_split, map_examples, pad_multiple
from utils.infra.errors import UserError
from utils.infra.models import check_input_length, check_room_for_text, load_model, load_tokenizer
from utils.tasks.base import TaskSetup


@dataclass(frozen=True)
class PairTask:
    """A sentence-pair classification dataset: task name, display name, text fields, label words, hub."""

    name: str  # the results' `task` ("xnli")
    title: str  # in messages ("XNLI")
    first: str  # text field names, in input order
    second: str
    labels: tuple[str, ...]
    hub: HubDataset

    @property
    def fields(self) -> dict[str, str]:
        """Required fields -> kind (utils.infra.data.FIELD_KINDS)."""
        return {self.first: "text", self.second: "text", "label": "label"}

    def load(self, data_args: DataArguments, lang: str, split: str) -> Dataset:
        """One language's split with every row checked and labels as ids."""
        raw = load_split(data_args, lang, split, self.fields, hub=self.hub)
        return self.label_ids(raw, f"{self.title} {lang} {split}")

    def label_ids(self, dataset: Dataset, source: str) -> Dataset:
        """Labels as ids; label words in a local file are mapped, anything else stops the run."""
        labels = list(self.labels)
        if dataset.features["label"].dtype == "string":
            unknown = sorted({value for value in dataset["label"] if value not in labels}, key=str)
            if unknown:
                ids = ", ".join(str(i) for i in range(len(labels)))
                raise UserError(f"{source}: unknown label {unknown[0]!r} (expected {ids} or {', '.join(labels)})")
            dataset = dataset.map(lambda row: {"label": labels.index(row["label"])})
        check_labels(dataset, "label", len(labels), source)
        return dataset


def build_pair_classification(
    task: PairTask,
    model_args: ModelArguments,
    data_args: DataArguments,
    training_args: ExperimentTrainingArguments,
    weight_init: str = "pre",
) -> TaskSetup:
    tokenizer = load_tokenizer(model_args)
    model = load_model(
        AutoModelForSequenceClassification,
        model_args,
        weight_init,
        seed=training_args.seed,
        num_labels=len(task.labels),
        id2label=dict(enumerate(task.labels)),
        label2id={label: i for i, label in enumerate(task.labels)},
    )
    check_input_length(model, data_args.max_seq_length, "--max_seq_length")
    check_room_for_text(tokenizer, data_args.max_seq_length, "--max_seq_length", pair=True)

    def encode(split: str, lang: str) -> Dataset:
        return map_examples(
            task.load(data_args, lang, split), tokenize_pairs, data_args,
            desc=f"tokenising {task.title} {lang} {split}",
            fn_kwargs={"tokenizer": tokenizer, "max_length": data_args.max_seq_length,
                       "pad": data_args.pad_to_max_length, "fields": (task.first, task.second)},
        )

    train, eval_sets = build_splits(data_args, training_args, encode)
    notes = []
    if train is not None:
        notes.append(f"{task.title} train: {len(train):,} pairs ({', '.join(data_args.languages)})")
    if eval_sets:
        notes.append(f"{task.title} validation: " + ", ".join(f"{lang} {len(d):,} pairs" for lang, d in eval_sets.items()))
    collator = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=pad_multiple(training_args))
    return TaskSetup(
        task=task.name,
        model=model,
        tokenizer=tokenizer,
        train_dataset=train,
        eval_datasets=eval_sets,
        collate_fn=collator,
        evaluate=evaluate_accuracy,
        metric="accuracy",
        greater_is_better=True,
        train_languages=data_args.languages,
        notes=notes,
    )


def tokenize_pairs(
    batch: dict, tokenizer: PreTrainedTokenizerBase, max_length: int, pad: bool, fields: tuple[str, str]
) -> dict:
    """first [SEP] second, truncated (longest first) to max_length; padded later per batch unless `pad`."""
    encoded = tokenizer(
        batch[fields[0]],
        batch[fields[1]],
        truncation=True,
        max_length=max_length,
        padding="max_length" if pad else False,
    )
    encoded["labels"] = batch["label"]
    return encoded


def evaluate_accuracy(model, loader, accelerator) -> dict[str, float]:
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
