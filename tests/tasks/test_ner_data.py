"""NER label alignment: a word's tag on its first sub-token, -100 (or its I- tag) on the rest."""
from __future__ import annotations

import json

import pytest
from transformers import AutoTokenizer

from utils.infra.errors import UserError
from utils.tasks.ner import LABELS, NerDataArguments, _tokenize_and_align, build_ner

WORDS = ["Marie", "Zqxwvjkplm", "visited", "Lisbonneville", "."]
TAGS = [1, 3, 0, 5, 0]  # B-PER, B-ORG, O, B-LOC, O


@pytest.fixture(scope="module")
def tokenizer(tiny_models):
    return AutoTokenizer.from_pretrained(tiny_models / "mbert-tiny")


def _align(tokenizer, label_all_tokens: bool):
    args = NerDataArguments(max_seq_length=64, label_all_tokens=label_all_tokens)
    encoded = _tokenize_and_align({"tokens": [WORDS], "ner_tags": [TAGS]}, tokenizer, args)
    return encoded.word_ids(0), encoded["labels"][0]


def test_first_sub_token_carries_the_tag(tokenizer):
    word_ids, labels = _align(tokenizer, label_all_tokens=False)
    pieces = [word_ids.count(w) for w in range(len(WORDS))]
    assert pieces[0] > 1 and pieces[1] > 1 and pieces[3] > 1, "the rare words must split into several pieces for this test"
    previous = None
    for word, label in zip(word_ids, labels):
        if word is None or word == previous:
            assert label == -100
        else:
            assert label == TAGS[word]
        previous = word
    assert sum(label != -100 for label in labels) == len(WORDS)


def test_label_all_tokens_continues_entities_with_inside_tags(tokenizer):
    word_ids, labels = _align(tokenizer, label_all_tokens=True)
    previous = None
    for word, label in zip(word_ids, labels):
        if word is None:
            assert label == -100
        elif word != previous:
            assert label == TAGS[word]
        else:  # B-ORG's later pieces are I-ORG, never a second B-ORG (which seqeval would count as an entity)
            assert LABELS[label] == "I-" + LABELS[TAGS[word]][2:]
        previous = word


def test_tokens_and_tags_of_different_lengths_are_refused(tiny_models, tmp_path):
    from utils.infra.args import ExperimentTrainingArguments, ModelArguments

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"tokens": ["a", "b", "c"], "ner_tags": [0, 0]}) + "\n")
    data_args = NerDataArguments(train_file=str(bad), data_language="en")
    training_args = ExperimentTrainingArguments(output_dir=str(tmp_path / "out"), do_train=True, use_cpu=True)
    with pytest.raises(UserError, match="3 tokens but 2 tags"):
        build_ner(ModelArguments(model_name_or_path=str(tiny_models / "mbert-tiny")), data_args, training_args)


def test_weight_init_rand_is_seeded_and_not_the_checkpoint(tiny_models):
    import torch
    from transformers import AutoModelForTokenClassification

    from utils.infra.args import ModelArguments
    from utils.infra.models import load_model

    args = ModelArguments(model_name_or_path=str(tiny_models / "mbert-tiny"))
    pre = load_model(AutoModelForTokenClassification, args, "pre", seed=0, num_labels=7).state_dict()
    rand = load_model(AutoModelForTokenClassification, args, "rand", seed=0, num_labels=7).state_dict()
    again = load_model(AutoModelForTokenClassification, args, "rand", seed=0, num_labels=7).state_dict()
    for name in ("bert.encoder.layer.0.attention.self.query.weight", "bert.embeddings.word_embeddings.weight"):
        assert not torch.allclose(pre[name], rand[name]), name
        assert torch.equal(rand[name], again[name]), name
