"""Causal language modelling (next-token prediction) on Wikipedia or plain text with a decoder LLM; the metric is
perplexity over every predicted token of the validation blocks.

LT_pretrain.py and pretrain_trans.py train this objective without --mlm, as the original's language-modelling
script did (--mlm switched masked LM on, utils/tasks/mlm.py). The text comes as for MLM: wikiextractor JSON lines
(field `text`) or plain-text files (.txt, one article per blank-line-separated paragraph); validation articles come
from --validation_file or are held out whole (--val_data_ratio). Every article is cut into consecutive blocks of
--block_size tokens, each framed by the tokenizer's own specials (Llama's tokenizer puts <s> first, GPT-2's
nothing), so no block mixes two articles. The label of each position is the next token (the model shifts); padding
is never scored. Evaluation is deterministic: every evaluation of every round and seed scores the same tokens.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from datasets import Dataset
from transformers import AutoModelForCausalLM, DataCollatorForLanguageModeling
from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

from utils.infra.args import ExperimentTrainingArguments, ModelArguments
from utils.infra.data import equal_share_mixture, first, map_examples, pad_multiple
from utils.infra.errors import UserError
from utils.infra.models import load_config, load_model, load_tokenizer, max_positions
from utils.tasks.base import TaskSetup, TaskSpec
from utils.tasks.mlm import (
    DEFAULT_BLOCK_SIZE, MlmDataArguments, build_mlm, plural, special_frame, split_articles, to_blocks,
)

SPEC = TaskSpec("clm", "LT_pretrain.py", "pretrain_trans.py", MlmDataArguments, in_default_retrieval=False)


def build_language_model(
    model_args: ModelArguments,
    data_args: MlmDataArguments,
    training_args: ExperimentTrainingArguments,
    weight_init: str = "pre",
) -> TaskSetup:
    """The objective the flags ask for: masked LM with --mlm, causal LM without."""
    build = build_mlm if data_args.mlm else build_clm
    return build(model_args, data_args, training_args, weight_init)


def check_causal(model_args: ModelArguments) -> None:
    """Stop before loading weights when the checkpoint is a masked LM (BERT): without --mlm it has no LM head."""
    config = load_config(model_args)
    if config.model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES and not getattr(config, "is_decoder", False):
        raise UserError(f"without --mlm these scripts train a causal LM, and {model_args.model_name_or_path} is a "
                        f"masked language model ({config.model_type}): pass --mlm")


def build_clm(
    model_args: ModelArguments,
    data_args: MlmDataArguments,
    training_args: ExperimentTrainingArguments,
    weight_init: str = "pre",
) -> TaskSetup:
    check_causal(model_args)
    tokenizer = load_tokenizer(model_args)
    notes = []
    if tokenizer.pad_token is None:  # Llama's and GPT-2's tokenizers have none; padding is never scored
        tokenizer.pad_token = tokenizer.eos_token
        notes.append(f"padding with the end-of-text token {tokenizer.eos_token!r} (the tokenizer has no pad token)")
    if tokenizer.pad_token is None:
        raise UserError(f"tokenizer of {model_args.model_name_or_path} has neither a pad nor an end-of-text token")
    model = load_model(AutoModelForCausalLM, model_args, weight_init, seed=training_args.seed)
    limit = max_positions(model)
    block_size = data_args.block_size or min(DEFAULT_BLOCK_SIZE, limit or DEFAULT_BLOCK_SIZE)
    if limit is not None and block_size > limit:
        raise UserError(f"--block_size {block_size} exceeds the model's {limit} positions")
    prefix, suffix = special_frame(tokenizer)
    content = block_size - len(prefix) - len(suffix)
    if content < 1 or block_size < 2:  # at least one token to predict from the one before it
        raise UserError(f"--block_size {block_size} leaves no token to predict next to {len(prefix + suffix)} specials")
    notes.append(f"causal LM blocks: {block_size} tokens ({content} of text + {len(prefix + suffix)} specials)")

    def blocks(articles: Dataset, what: str) -> Dataset:
        dataset = map_examples(
            articles, to_blocks, data_args, desc=f"cutting {what} into blocks",
            fn_kwargs={"tokenizer": tokenizer, "content": content, "prefix": prefix, "suffix": suffix},
        )
        dataset = dataset.remove_columns(["special_tokens_mask"])
        return dataset.filter(lambda batch: [len(ids) > 1 for ids in batch["input_ids"]], batched=True,
                              desc="dropping blocks with nothing to predict")

    train_parts: dict[str, Dataset] = {}
    eval_sets: dict[str, Dataset] = {}
    train_languages = data_args.languages if training_args.do_train else []
    eval_languages = data_args.languages + data_args.extra_eval_languages if training_args.do_eval else []
    for lang in dict.fromkeys(train_languages + eval_languages):
        train_articles, val_articles, origin = split_articles(
            data_args, lang, need_train=lang in train_languages, need_validation=lang in eval_languages
        )
        if lang in train_languages:
            train_parts[lang] = blocks(train_articles, f"{lang} train")
            notes.append(f"causal LM {lang} train: {plural(len(train_articles), 'article')} -> "
                         f"{plural(len(train_parts[lang]), 'block')}")
        if lang in eval_languages:
            eval_sets[lang] = first(blocks(val_articles, f"{lang} validation"), data_args.max_eval_samples)
            if len(eval_sets[lang]) == 0:
                raise UserError(f"causal LM {lang} validation: no block holds two tokens, so perplexity is "
                                "undefined: give more validation text")
            predicted = sum(len(ids) - 1 for ids in eval_sets[lang]["input_ids"])
            notes.append(f"causal LM {lang} validation: {plural(len(val_articles), 'article')} {origin} -> "
                         f"{plural(len(eval_sets[lang]), 'block')}, {predicted:,} tokens predicted")
    train = None
    if train_parts:
        train = equal_share_mixture(train_parts, data_args.max_train_samples, training_args.seed)
        if len(train_parts) > 1 or data_args.max_train_samples:
            notes.append(f"causal LM train: {plural(len(train), 'block')} in all")
    collator = DataCollatorForLanguageModeling(tokenizer, mlm=False, pad_to_multiple_of=pad_multiple(training_args))
    return TaskSetup(
        task="clm",
        model=model,
        tokenizer=tokenizer,
        train_dataset=train,
        eval_datasets=eval_sets,
        collate_fn=collator,
        evaluate=evaluate_clm,
        metric="perplexity",
        greater_is_better=False,
        train_languages=data_args.languages,
        notes=notes,
    )


def evaluate_clm(model, loader, accelerator) -> dict[str, float]:
    """Perplexity = exp(mean next-token loss, every predicted token weighted equally) and next-token accuracy.

    Labels come from the attention mask, not from the pad id, so an end-of-text token used as padding inside a
    block would still be scored; position t predicts token t + 1."""
    loss_sum, tokens, correct = 0.0, 0.0, 0.0
    for batch in loader:
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        logits = model(**inputs).logits[:, :-1].float()
        targets = batch["input_ids"][:, 1:]
        scored = batch["attention_mask"][:, 1:].bool()
        # rows of (tokens, vocabulary): the (batch, vocabulary, tokens) layout is ~10x slower on CPU for 262k words
        per_token = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                    reduction="none").view_as(targets) * scored
        hits = (logits.argmax(-1) == targets) & scored
        per_block = torch.stack([per_token.sum(1), scored.sum(1).float(), hits.sum(1).float()], dim=1)
        totals = accelerator.gather_for_metrics(per_block).sum(0).tolist()  # each block counted once
        loss_sum, tokens, correct = loss_sum + totals[0], tokens + totals[1], correct + totals[2]
    if tokens == 0:
        return {"perplexity": float("nan"), "loss": float("nan"), "accuracy": float("nan"), "predicted_tokens": 0.0}
    loss = loss_sum / tokens
    return {"perplexity": math.exp(min(loss, 700.0)), "loss": loss, "accuracy": correct / tokens,
            "predicted_tokens": tokens}
