"""WikiANN named-entity recognition: data, model and seqeval metrics."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from seqeval.metrics import accuracy_score, f1_score, precision_score, recall_score
from transformers import AutoModelForTokenClassification, DataCollatorForTokenClassification

from utils.infra.args import DataArguments, ExperimentTrainingArguments, ModelArguments
from utils.infra.data import HubDataset, build_splits, check_labels, load_split, map_examples, pad_multiple
from utils.infra.errors import UserError
from utils.infra.models import check_input_length, check_room_for_text, load_model, load_tokenizer
from utils.tasks.base import TaskSetup, TaskSpec

LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]  # WikiANN's tag ids
INSIDE_OF = [LABELS.index("I-" + tag[2:]) if tag.startswith("B-") else i for i, tag in enumerate(LABELS)]
HUB = HubDataset("unimelb-nlp/wikiann", aliases=("wikiann",), languages=tuple("""ace af als am an ang ar arc arz as
    ast ay az ba bar bat-smg be be-x-old bg bh bn bo br bs ca cbk-zam cdo ce ceb ckb co crh cs csb cv cy da de diq dv el
    eml en eo es et eu ext fa fi fiu-vro fo fr frr fur fy ga gan gd gl gn gu hak he hi hr hsb hu hy ia id ig ilo io is
    it ja jbo jv ka kk km kn ko ksh ku ky la lb li lij lmo ln lt lv map-bms mg mhr mi min mk ml mn mr ms mt mwl my mzn
    nap nds ne nl nn no nov oc or os pa pdc pl pms pnb ps pt qu rm ro ru rw sa sah scn sco sd sh si simple sk sl so sq
    sr su sv sw szl ta te tg th tk tl tr tt ug uk ur uz vec vep vi vls vo wa war wuu xmf yi yo zea zh zh-classical
    zh-min-nan zh-yue""".split()))


@dataclass
class NerDataArguments(DataArguments):
    label_all_tokens: bool = field(
        default=False, metadata={"help": "Label every sub-token of a word (default: only the first, -100 elsewhere)."}
    )


SPEC = TaskSpec("ner", "LT_ner.py", "ner_fine_tune.py", NerDataArguments, hub=HUB)


def build_ner(
    model_args: ModelArguments,
    data_args: NerDataArguments,
    training_args: ExperimentTrainingArguments,
    weight_init: str = "pre",
) -> TaskSetup:
    tokenizer = load_tokenizer(model_args)
    if not getattr(tokenizer, "is_fast", False):
        raise UserError("NER needs a fast tokenizer (word_ids); this checkpoint has none")
    model = load_model(
        AutoModelForTokenClassification,
        model_args,
        weight_init,
        seed=training_args.seed,
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)},
    )
    check_input_length(model, data_args.max_seq_length, "--max_seq_length")
    check_room_for_text(tokenizer, data_args.max_seq_length, "--max_seq_length")

    def encode(split: str, lang: str):
        raw = load_split(data_args, lang, split, {"tokens": "words", "ner_tags": "ids"}, hub=HUB)
        check_labels(raw, "ner_tags", len(LABELS), f"NER {lang} {split}")
        _check_lengths(raw, f"NER {lang} {split}")
        return map_examples(raw, lambda batch: _tokenize_and_align(batch, tokenizer, data_args), data_args,
                            desc=f"tokenising {lang} {split}")

    train, eval_sets = build_splits(data_args, training_args, encode)
    collator = DataCollatorForTokenClassification(
        tokenizer, pad_to_multiple_of=pad_multiple(training_args)
    )
    return TaskSetup(
        task="ner",
        model=model,
        tokenizer=tokenizer,
        train_dataset=train,
        eval_datasets=eval_sets,
        collate_fn=collator,
        evaluate=evaluate_ner,
        metric="f1",
        greater_is_better=True,
        train_languages=data_args.languages,
    )


def _check_lengths(raw, source: str) -> None:
    for row, (tokens, tags) in enumerate(zip(raw["tokens"], raw["ner_tags"])):
        if len(tokens) != len(tags):
            raise UserError(f"{source} example {row}: {len(tokens)} tokens but {len(tags)} tags")


def _tokenize_and_align(batch, tokenizer, data_args: NerDataArguments) -> dict:
    """Tokenise pre-split words; the label goes on each word's first sub-token, -100 elsewhere (or, with
    --label_all_tokens, the I- tag of the word's entity on its later sub-tokens)."""
    encoded = tokenizer(
        batch["tokens"],
        is_split_into_words=True,
        truncation=True,
        max_length=data_args.max_seq_length,
        padding="max_length" if data_args.pad_to_max_length else False,
    )
    all_labels = []
    for i, tags in enumerate(batch["ner_tags"]):
        previous, labels = None, []
        for word in encoded.word_ids(batch_index=i):
            if word is None:
                labels.append(-100)
            elif word != previous:
                labels.append(int(tags[word]))
            else:  # a later piece of the same word: I- (a repeated B- would count as a new entity)
                labels.append(INSIDE_OF[int(tags[word])] if data_args.label_all_tokens else -100)
            previous = word
        all_labels.append(labels)
    encoded["labels"] = all_labels
    return encoded


def evaluate_ner(model, loader, accelerator) -> dict[str, float]:
    """seqeval entity-level precision / recall / F1 and token accuracy over real (first-sub-token) positions."""
    true_tags, pred_tags, losses = [], [], []
    for batch in loader:
        output = model(**batch)
        losses.append(accelerator.gather_for_metrics(output.loss.detach().reshape(1)).mean().item())
        predictions = accelerator.pad_across_processes(output.logits.argmax(-1), dim=1, pad_index=-100)
        labels = accelerator.pad_across_processes(batch["labels"], dim=1, pad_index=-100)
        predictions, labels = accelerator.gather_for_metrics((predictions, labels))
        for pred_row, label_row in zip(predictions.cpu().numpy(), labels.cpu().numpy()):
            keep = label_row != -100
            true_tags.append([LABELS[t] for t in label_row[keep]])
            pred_tags.append([LABELS[p] for p in pred_row[keep]])
    return {
        "precision": float(precision_score(true_tags, pred_tags, zero_division=0)),
        "recall": float(recall_score(true_tags, pred_tags, zero_division=0)),
        "f1": float(f1_score(true_tags, pred_tags, zero_division=0)),
        "accuracy": float(accuracy_score(true_tags, pred_tags)),
        "loss": float(np.mean(losses)) if losses else float("nan"),
    }
