"""Prunable-weight discovery, exact global magnitude pruning, schedules and random / one-shot masks."""
from __future__ import annotations

import pytest
import torch

from utils.infra.errors import UserError
from utils.core.masks import Mask
from utils.core.pruning import (
    magnitude_prune,
    oneshot_prune,
    prunable_weights,
    random_prune,
    sparsity_schedule,
)


def test_bert_prunable_weights_are_the_six_matrices_per_layer_plus_pooler(bert_classifier):
    names = list(prunable_weights(bert_classifier))
    layers = bert_classifier.config.num_hidden_layers
    assert len(names) == 6 * layers + 1
    for i in range(layers):
        for module in ("attention.self.query", "attention.self.key", "attention.self.value",
                       "attention.output.dense", "intermediate.dense", "output.dense"):
            assert f"bert.encoder.layer.{i}.{module}.weight" in names
    assert "bert.pooler.dense.weight" in names


def test_embeddings_heads_biases_and_layernorm_are_never_prunable(bert_classifier, bert_tagger):
    for model in (bert_classifier, bert_tagger):
        for name in prunable_weights(model):
            assert name.endswith(".weight")
            assert "embeddings" not in name and "LayerNorm" not in name and "classifier" not in name
    assert "bert.pooler.dense.weight" not in prunable_weights(bert_tagger)  # no pooler in token classification


def test_t5_prunable_weights_exactly_as_listed(tiny_t5):
    names = set(prunable_weights(tiny_t5))
    expected = set()
    for i in range(tiny_t5.config.num_layers):
        expected |= {f"encoder.block.{i}.layer.0.SelfAttention.{m}.weight" for m in "qkvo"}
        expected |= {f"encoder.block.{i}.layer.1.DenseReluDense.{m}.weight" for m in ("wi_0", "wi_1", "wo")}
    for i in range(tiny_t5.config.num_decoder_layers):
        expected |= {f"decoder.block.{i}.layer.0.SelfAttention.{m}.weight" for m in "qkvo"}
        expected |= {f"decoder.block.{i}.layer.1.EncDecAttention.{m}.weight" for m in "qkvo"}
        expected |= {f"decoder.block.{i}.layer.2.DenseReluDense.{m}.weight" for m in ("wi_0", "wi_1", "wo")}
    assert names == expected


def test_schedules():
    assert sparsity_schedule(0.1, 0.9) == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    assert sparsity_schedule(0.2, 0.5) == pytest.approx([0.0, 0.2, 0.4, 0.5])
    assert sparsity_schedule(0.5, 0.8, "geometric") == pytest.approx([0.0, 0.5, 0.75, 0.8])
    for bad in ((0.0, 0.9), (0.1, 1.0), (1.2, 0.5)):
        with pytest.raises(UserError):
            sparsity_schedule(*bad)


def test_global_magnitude_pruning_is_exact_nested_and_removes_the_smallest(bert_classifier):
    weights = prunable_weights(bert_classifier)
    total = sum(w.numel() for w in weights.values())
    mask = Mask.ones_like(weights)
    for sparsity in sparsity_schedule(0.1, 0.9)[1:]:
        new = magnitude_prune(weights, mask, sparsity)
        assert total - new.num_kept == round(sparsity * total)
        assert new.is_subset_of(mask)
        mask = new
    # global: every kept weight is at least as large as every pruned one
    kept = torch.cat([w.detach().abs()[mask[n]] for n, w in weights.items()])
    pruned = torch.cat([w.detach().abs()[~mask[n]] for n, w in weights.items()])
    assert kept.min() >= pruned.max()
    # and the ranking is global: layers end up with different sparsities
    assert len({round(s, 3) for s in mask.per_matrix().values()}) > 1


def test_ties_are_broken_to_the_exact_count():
    weights = {"a.layer.0.w.weight": torch.ones(10, 10), "a.layer.1.w.weight": torch.ones(5, 4)}
    mask = magnitude_prune(weights, Mask.ones_like(weights), 0.37)
    assert 120 - mask.num_kept == round(0.37 * 120)
    again = magnitude_prune(weights, Mask.ones_like(weights), 0.37)
    assert all(torch.equal(mask[n], again[n]) for n in weights)


def test_pruned_weights_rank_last_in_later_rounds():
    weights = {"x.layer.0.w.weight": torch.tensor([[0.0, 0.0, 0.1, 5.0]])}
    mask = Mask({"x.layer.0.w.weight": torch.tensor([[False, True, True, True]])})
    new = magnitude_prune(weights, mask, 0.5)
    assert new["x.layer.0.w.weight"].tolist() == [[False, False, True, True]]


def test_per_stack_scope_prunes_encoder_and_decoder_to_the_same_sparsity(tiny_t5):
    weights = prunable_weights(tiny_t5)
    mask = magnitude_prune(weights, Mask.ones_like(weights), 0.4, scope="per_stack")
    for stack, sparsity in mask.per_stack().items():
        count = sum(t.numel() for n, t in mask.items() if n.startswith(stack))
        kept = sum(int(t.sum()) for n, t in mask.items() if n.startswith(stack))
        assert count - kept == round(0.4 * count), stack


def test_random_pruning_hits_its_sparsity_and_is_reproducible(bert_classifier):
    weights = prunable_weights(bert_classifier)
    total = sum(w.numel() for w in weights.values())
    a = random_prune(weights, 0.5, seed=1)
    b = random_prune(weights, 0.5, seed=1)
    c = random_prune(weights, 0.5, seed=2)
    assert total - a.num_kept == round(0.5 * total)
    assert a.checksum() == b.checksum() != c.checksum()
    # uniform: every matrix close to 50%
    assert all(0.35 < s < 0.65 for s in a.per_matrix().values())


def test_oneshot_prunes_the_loaded_weights_by_magnitude(bert_classifier):
    weights = prunable_weights(bert_classifier)
    mask = oneshot_prune(weights, 0.6)
    total = sum(w.numel() for w in weights.values())
    assert total - mask.num_kept == round(0.6 * total)
