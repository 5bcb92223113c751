"""Masked language modelling on Wikipedia text with mBERT: data, model, and perplexity on fixed masked positions.
(--mlm selects it; without --mlm the same scripts train a causal LM, utils/tasks/clm.py, on the same files.)

Input is what wikiextractor writes with --json: one article per line, its text in the field `text` (or plain text,
.txt, one article per blank-line-separated paragraph). Empty articles
(redirects, disambiguations) are skipped. Without a --validation_file, a --val_data_ratio share of WHOLE articles
is held out before tokenisation, so no sentence of a validation article is ever trained on (the original split
after duplicating examples, which leaked). Every article is tokenised and cut into consecutive blocks of
--block_size tokens, each framed by the tokenizer's specials ([CLS] ... [SEP]); all blocks are kept, not only the
first of each article as in the original.

Training masks --mlm_probability (15%) of the tokens afresh in every batch (transformers'
DataCollatorForLanguageModeling: 80% [MASK], 10% random, 10% unchanged; specials never). The validation blocks are
masked ONCE at setup with generators seeded per block, independent of the global RNG, so every evaluation of every
round and every seed scores the same positions and perplexities are comparable.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from datasets import Dataset
from transformers import (
    AutoModelForMaskedLM,
    DataCollatorForLanguageModeling,
    DataCollatorForTokenClassification,
    PreTrainedTokenizerBase,
)

from utils.infra.args import DataArguments, ExperimentTrainingArguments, ModelArguments
from utils.infra.data import data_file, equal_share_mixture, first, load_split, map_examples, pad_multiple
from utils.infra.errors import UserError
from utils.infra.models import load_model, load_tokenizer, max_positions
from utils.tasks.base import TaskSetup, TaskSpec

DEFAULT_BLOCK_SIZE = 512
# Fixed, not --seed: runs with different seeds are scored on the same held-out articles and masked positions.
HOLD_OUT_SEED = 42
EVAL_MASK_SEED = 42


@dataclass
class MlmDataArguments(DataArguments):
    mlm: bool = field(
        default=False,
        metadata={"help": "Masked language modelling (mBERT); without it, causal language modelling (a decoder LLM), "
                          "as in the original's language-modelling script."},
    )
    mlm_probability: float = field(default=0.15, metadata={"help": "With --mlm: share of tokens masked (80/10/10)."})
    block_size: Optional[int] = field(
        default=None,
        metadata={"help": "Tokens per block, [CLS] and [SEP] included; unset: min(512, the model's positions)."},
    )
    val_data_ratio: float = field(
        default=0.01,
        metadata={"help": "Without --validation_file: share of whole articles held out of --train_file for eval."},
    )


SPEC = TaskSpec("mlm", "LT_pretrain.py", "pretrain_trans.py", MlmDataArguments)  # local text files, no hub default


def build_mlm(
    model_args: ModelArguments,
    data_args: MlmDataArguments,
    training_args: ExperimentTrainingArguments,
    weight_init: str = "pre",
) -> TaskSetup:
    tokenizer = load_tokenizer(model_args)
    if tokenizer.mask_token is None:
        raise UserError(f"tokenizer of {model_args.model_name_or_path} has no mask token: it cannot do MLM "
                        "(drop --mlm to train a causal LM)")
    model = load_model(AutoModelForMaskedLM, model_args, weight_init, seed=training_args.seed)
    layout = block_layout(tokenizer, max_positions(model), data_args.block_size)
    notes = [f"MLM blocks: {layout.size} tokens ({layout.content} of text + {layout.specials} specials), "
             f"{data_args.mlm_probability:.0%} of tokens masked (80% [MASK], 10% random, 10% unchanged)"]
    train_languages = data_args.languages if training_args.do_train else []
    eval_languages = data_args.languages + data_args.extra_eval_languages if training_args.do_eval else []
    train_parts, eval_sets, data_notes = language_blocks(tokenizer, layout, data_args, train_languages, eval_languages)
    notes += data_notes
    train = None
    if train_parts:
        train = equal_share_mixture(train_parts, data_args.max_train_samples, training_args.seed)
        if len(train_parts) > 1 or data_args.max_train_samples:
            notes.append(f"MLM train: {plural(len(train), 'block')} in all")
    pad_to = pad_multiple(training_args)
    return TaskSetup(
        task="mlm",
        model=model,
        tokenizer=tokenizer,
        train_dataset=train,
        eval_datasets=eval_sets,
        collate_fn=DataCollatorForLanguageModeling(tokenizer, mlm_probability=data_args.mlm_probability,
                                                   pad_to_multiple_of=pad_to),
        eval_collate_fn=DataCollatorForTokenClassification(tokenizer, pad_to_multiple_of=pad_to),  # labels: -100
        evaluate=evaluate_mlm,
        metric="perplexity",
        greater_is_better=False,
        train_languages=data_args.languages,
        notes=notes,
    )


@dataclass(frozen=True)
class BlockLayout:
    """Blocks of `size` tokens: the tokenizer's `prefix` specials, up to `content` tokens of text, its `suffix`."""

    size: int
    prefix: list[int]
    suffix: list[int]

    @property
    def specials(self) -> int:
        return len(self.prefix) + len(self.suffix)

    @property
    def content(self) -> int:
        return self.size - self.specials


def block_layout(tokenizer: PreTrainedTokenizerBase, limit: Optional[int], block_size: Optional[int]) -> BlockLayout:
    """--block_size (unset: min(512, the model's `limit` positions)), checked against the model and the specials."""
    size = block_size or min(DEFAULT_BLOCK_SIZE, limit or DEFAULT_BLOCK_SIZE)
    if limit is not None and size > limit:
        raise UserError(f"--block_size {size} exceeds the model's {limit} positions")
    prefix, suffix = special_frame(tokenizer)
    layout = BlockLayout(size, prefix, suffix)
    if layout.content < 1:
        raise UserError(f"--block_size {size} leaves no room for text next to {layout.specials} specials")
    return layout


def language_blocks(
    tokenizer: PreTrainedTokenizerBase, layout: BlockLayout, data_args: MlmDataArguments,
    train_languages: list[str], eval_languages: list[str],
) -> tuple[dict[str, Dataset], dict[str, Dataset], list[str]]:
    """Training blocks and masked evaluation blocks per language, and a note on what each holds."""
    train_parts: dict[str, Dataset] = {}
    eval_sets: dict[str, Dataset] = {}
    notes: list[str] = []
    for lang in dict.fromkeys(train_languages + eval_languages):
        train_articles, val_articles, origin = split_articles(
            data_args, lang, need_train=lang in train_languages, need_validation=lang in eval_languages
        )
        if lang in train_languages:
            train_parts[lang] = cut_blocks(train_articles, tokenizer, layout, data_args, f"{lang} train")
            notes.append(f"MLM {lang} train: {plural(len(train_articles), 'article')} -> "
                         f"{plural(len(train_parts[lang]), 'block')}")
        if lang in eval_languages:
            eval_sets[lang], note = masked_eval_blocks(val_articles, tokenizer, layout, data_args, lang)
            notes.append(f"MLM {lang} validation: {plural(len(val_articles), 'article')} {origin} -> {note}")
    return train_parts, eval_sets, notes


def cut_blocks(articles: Dataset, tokenizer: PreTrainedTokenizerBase, layout: BlockLayout,
               data_args: MlmDataArguments, what: str) -> Dataset:
    return map_examples(
        articles, to_blocks, data_args, desc=f"cutting {what} into blocks",
        fn_kwargs={"tokenizer": tokenizer, "content": layout.content, "prefix": layout.prefix,
                   "suffix": layout.suffix},
    )


def masked_eval_blocks(articles: Dataset, tokenizer: PreTrainedTokenizerBase, layout: BlockLayout,
                       data_args: MlmDataArguments, lang: str) -> tuple[Dataset, str]:
    """One language's validation blocks, masked once; and what they hold. No masked position stops the run."""
    dataset = first(cut_blocks(articles, tokenizer, layout, data_args, f"{lang} validation"),
                    data_args.max_eval_samples)
    masked_set = mask_once(dataset, tokenizer, data_args, EVAL_MASK_SEED)
    masked = sum(sum(label != -100 for label in row) for row in masked_set["labels"])
    if masked == 0:
        raise UserError(f"MLM {lang} validation: no position of its {plural(len(dataset), 'block')} was "
                        "masked, so perplexity is undefined: give more validation text or a higher "
                        "--mlm_probability")
    return masked_set, (f"{plural(len(dataset), 'block')}, {masked:,} positions masked once, the same in every "
                        "evaluation")


def plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


# -- articles -------------------------------------------------------------------------------------------------------


def load_articles(data_args: MlmDataArguments, lang: str, split: str) -> Dataset:
    """The non-empty article texts of one language's split (only the `text` field is kept)."""
    raw = load_split(data_args, lang, split, {"text": "text"})
    raw = raw.remove_columns([c for c in raw.column_names if c != "text"])
    return raw.filter(lambda batch: [bool(t and t.strip()) for t in batch["text"]], batched=True,
                      desc="skipping empty articles")


def split_articles(
    data_args: MlmDataArguments, lang: str, need_train: bool, need_validation: bool
) -> tuple[Optional[Dataset], Optional[Dataset], str]:
    """(train articles, validation articles, where the validation articles come from)."""
    if data_args.validation_file:
        train = load_articles(data_args, lang, "train") if need_train else None
        validation = load_articles(data_args, lang, "validation") if need_validation else None
        return train, validation, f"from {data_file(data_args.validation_file, lang)}"
    articles = load_articles(data_args, lang, "train")
    train, validation = hold_out_articles(articles, data_args.val_data_ratio, HOLD_OUT_SEED,
                                          source=str(data_file(data_args.train_file, lang) or lang))
    return train, validation, f"held out of the training file (--val_data_ratio {data_args.val_data_ratio:g})"


def hold_out_articles(
    articles: Dataset, ratio: float, seed: int, source: str = "the training file"
) -> tuple[Dataset, Dataset]:
    """Split whole articles: a seeded `ratio` share (at least one) for validation, the rest for training."""
    count = len(articles)
    if count < 2:
        raise UserError(f"{source} has {count} non-empty article(s): too few to hold out validation articles; "
                        "pass --validation_file")
    held = min(count - 1, max(1, round(ratio * count)))
    order = np.random.default_rng(seed).permutation(count)
    return articles.select(sorted(order[held:].tolist())), articles.select(sorted(order[:held].tolist()))


# -- blocks -------------------------------------------------------------------------------------------------------


def special_frame(tokenizer: PreTrainedTokenizerBase) -> tuple[list[int], list[int]]:
    """The special-token ids the tokenizer puts before and after a single text ([CLS] and [SEP] for BERT)."""
    probe = "a"
    bare = tokenizer(probe, add_special_tokens=False)["input_ids"]
    framed = tokenizer(probe, add_special_tokens=True)["input_ids"]
    for start in range(len(framed) - len(bare) + 1):
        if framed[start:start + len(bare)] == bare:
            return framed[:start], framed[start + len(bare):]
    raise UserError("cannot tell where this tokenizer puts its special tokens")


def to_blocks(
    batch: dict, tokenizer: PreTrainedTokenizerBase, content: int, prefix: list[int], suffix: list[int]
) -> dict:
    """Each article's whole token sequence, cut into consecutive chunks of `content` tokens, each framed by specials."""
    # verbose=False: articles longer than the model's limit are expected here, they are cut below
    encoded = tokenizer(batch["text"], add_special_tokens=False, return_attention_mask=False, verbose=False)
    token_ids = encoded["input_ids"]
    out: dict[str, list] = {"input_ids": [], "attention_mask": [], "special_tokens_mask": []}
    for ids in token_ids:
        for start in range(0, len(ids), content):
            chunk = ids[start:start + content]
            out["input_ids"].append(prefix + chunk + suffix)
            out["attention_mask"].append([1] * (len(prefix) + len(chunk) + len(suffix)))
            out["special_tokens_mask"].append([1] * len(prefix) + [0] * len(chunk) + [1] * len(suffix))
    return out


def mask_once(dataset: Dataset, tokenizer: PreTrainedTokenizerBase, data_args: MlmDataArguments, seed: int) -> Dataset:
    """Mask the evaluation blocks once: block i always gets the same positions (its own generator, seed and i)."""
    return dataset.map(
        _mask_blocks,
        batched=True,
        with_indices=True,
        fn_kwargs={"tokenizer": tokenizer, "probability": data_args.mlm_probability, "seed": seed},
        remove_columns=["special_tokens_mask"],
        load_from_cache_file=not data_args.overwrite_cache,
        desc="masking the evaluation blocks",
    )


def _mask_blocks(
    batch: dict, indices: list[int], tokenizer: PreTrainedTokenizerBase, probability: float, seed: int
) -> dict:
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=probability)
    input_ids, labels = [], []
    for ids, special, index in zip(batch["input_ids"], batch["special_tokens_mask"], indices):
        collator.generator = torch.Generator().manual_seed(seed * 1_000_003 + index)
        masked, label = collator.torch_mask_tokens(torch.tensor([ids]), special_tokens_mask=torch.tensor([special]))
        input_ids.append(masked[0].tolist())
        labels.append(label[0].tolist())
    return {"input_ids": input_ids, "labels": labels}


# -- metric -------------------------------------------------------------------------------------------------------


def evaluate_mlm(model, loader, accelerator) -> dict[str, float]:
    """Perplexity = exp(mean masked-token loss, every masked token weighted equally) and masked-token accuracy."""
    loss_sum, tokens, correct = 0.0, 0.0, 0.0
    for batch in loader:
        labels = batch["labels"]
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
        selected = labels != -100
        rows = selected.nonzero()[:, 0]
        token_logits, token_labels = logits[selected].float(), labels[selected]  # only masked positions: small
        per_token = F.cross_entropy(token_logits, token_labels, reduction="none")
        hits = (token_logits.argmax(-1) == token_labels).float()
        per_block = torch.zeros(labels.shape[0], 3, device=labels.device)  # loss sum, masked tokens, correct
        per_block[:, 0].index_add_(0, rows, per_token)
        per_block[:, 1].index_add_(0, rows, torch.ones_like(per_token))
        per_block[:, 2].index_add_(0, rows, hits)
        totals = accelerator.gather_for_metrics(per_block).sum(0).tolist()  # each block counted once
        loss_sum, tokens, correct = loss_sum + totals[0], tokens + totals[1], correct + totals[2]
    if tokens == 0:
        return {"perplexity": float("nan"), "loss": float("nan"), "accuracy": float("nan"), "masked_tokens": 0.0}
    loss = loss_sum / tokens
    perplexity = math.exp(min(loss, 700.0))  # exp overflows beyond ~709
    return {"perplexity": perplexity, "loss": loss, "accuracy": correct / tokens, "masked_tokens": tokens}
