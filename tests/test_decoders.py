"""Decoder LLMs: prunable weights found per family, their layers and matrix types, and the tiny decoders."""
from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from utils.core.families import output_axis, placement
from utils.core.masks import Mask, layer_of, matrix_type, stack_of
from utils.core.pruning import magnitude_prune, prunable_weights

TINY_DECODERS = ("llama-tiny", "qwen2-tiny", "gemma3-tiny", "gpt2-tiny")
LLAMA_BLOCK = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj",
               "mlp.up_proj", "mlp.down_proj")


def names(prefix: str, layers: int, block: tuple[str, ...]) -> list[str]:
    return [f"{prefix}.{i}.{part}.weight" for i in range(layers) for part in block]


def small(config_class: str, **values):
    import transformers

    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(getattr(transformers, config_class)(vocab_size=50, **values))


IN_PROCESS = {
    "bloom": (lambda: small("BloomConfig", hidden_size=16, n_layer=2, n_head=2),
              names("transformer.h", 2, ("self_attention.query_key_value", "self_attention.dense",
                                         "mlp.dense_h_to_4h", "mlp.dense_4h_to_h")),
              ["qkv", "o", "up", "down"]),
    "phi3": (lambda: small("Phi3Config", hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                           num_attention_heads=2, num_key_value_heads=1, pad_token_id=0),
             names("model.layers", 2, ("self_attn.o_proj", "self_attn.qkv_proj", "mlp.gate_up_proj",
                                       "mlp.down_proj")),
             ["o", "qkv", "gate_up", "down"]),
    "gpt_neox": (lambda: small("GPTNeoXConfig", hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                               num_attention_heads=2),
                 names("gpt_neox.layers", 2, ("attention.query_key_value", "attention.dense", "mlp.dense_h_to_4h",
                                              "mlp.dense_4h_to_h")),
                 ["qkv", "o", "up", "down"]),
    "opt": (lambda: small("OPTConfig", hidden_size=16, ffn_dim=32, num_hidden_layers=2, num_attention_heads=2,
                          word_embed_proj_dim=16),
            names("model.decoder.layers", 2, ("self_attn.k_proj", "self_attn.v_proj", "self_attn.q_proj",
                                              "self_attn.out_proj", "fc1", "fc2")),
            ["k", "v", "q", "o", "up", "down"]),
}


@pytest.mark.parametrize("family", sorted(IN_PROCESS))
def test_prunable_weights_of_other_families(family):
    build, expected, types = IN_PROCESS[family]
    model = build()
    weights = prunable_weights(model)
    assert list(weights) == expected
    assert [matrix_type(n) for n in expected[: len(types)]] == types
    assert [layer_of(n) for n in expected] == [f"decoder.{i}" for i in range(2) for _ in types]
    assert all(w.dim() == 2 for w in weights.values())


@pytest.fixture(scope="module")
def decoders(tiny_models):
    return {name: AutoModelForCausalLM.from_pretrained(tiny_models / name) for name in TINY_DECODERS}


def test_prunable_weights_of_the_tiny_decoders(decoders):
    expected = {
        "llama-tiny": names("model.layers", 2, LLAMA_BLOCK),
        "qwen2-tiny": names("model.layers", 2, LLAMA_BLOCK),
        "gemma3-tiny": names("model.layers", 2, LLAMA_BLOCK),
        "gpt2-tiny": names("transformer.h", 2, ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")),
    }
    for name, model in decoders.items():
        weights = prunable_weights(model)
        assert list(weights) == expected[name], name
        for excluded in ("embed", "wte", "wpe", "norm", "ln_", "lm_head"):
            assert not any(excluded in n for n in weights), (name, excluded)
        assert {stack_of(n) for n in weights} == {"decoder"}
        assert [layer_of(n) for n in weights][:: len(weights) // 2] == ["decoder.0", "decoder.1"]
    llama = decoders["llama-tiny"]
    assert [matrix_type(n) for n in expected["llama-tiny"][:7]] == ["q", "k", "v", "o", "gate", "up", "down"]
    assert [matrix_type(n) for n in expected["gpt2-tiny"][:4]] == ["qkv", "o", "up", "down"]
    # grouped-query attention in the tiny Llama: 4 query heads, 2 key/value heads of 16
    shapes = [tuple(w.shape) for w in prunable_weights(llama).values()][:7]
    assert shapes == [(64, 64), (32, 64), (32, 64), (64, 64), (128, 64), (128, 64), (64, 128)]
    assert llama.config.num_key_value_heads == 2 and decoders["gemma3-tiny"].config.num_key_value_heads == 1


def test_tied_and_untied_output_layers_are_never_pruned(decoders):
    for name, model in decoders.items():
        output = model.get_output_embeddings().weight
        assert all(w is not output for w in prunable_weights(model).values()), name
    tied = decoders["gpt2-tiny"]
    assert tied.lm_head.weight is tied.transformer.wte.weight  # GPT-2 ties: the shared matrix is no projection
    assert decoders["llama-tiny"].lm_head.weight is not decoders["llama-tiny"].model.embed_tokens.weight


def test_conv1d_masks_keep_the_stored_layout(decoders):
    """GPT-2's Conv1D stores (in, out): a mask has the weight's own shape, and an output unit is a column."""
    model = decoders["gpt2-tiny"]
    weights = prunable_weights(model)
    c_attn = "transformer.h.0.attn.c_attn.weight"
    assert tuple(weights[c_attn].shape) == (64, 192) and output_axis(c_attn) == 1
    assert output_axis("model.layers.0.self_attn.q_proj.weight") == 0
    assert output_axis("bert.encoder.layer.0.attention.self.query.weight") == 0
    mask = magnitude_prune(weights, Mask.ones_like(weights), 0.5)
    assert round(mask.sparsity, 6) == 0.5
    mask.apply_to_weights(weights)
    x = torch.randn(3, 64)
    module = model.transformer.h[0].attn.c_attn
    expected = x @ (weights[c_attn].detach() * mask[c_attn]) + module.bias.detach()
    assert torch.allclose(module(x), expected)


def test_bert_and_t5_names_are_not_decoder_weights():
    for name in ("bert.encoder.layer.0.attention.self.query.weight", "encoder.block.0.layer.0.SelfAttention.q.weight",
                 "decoder.block.1.layer.2.DenseReluDense.wo.weight", "bert.pooler.dense.weight",
                 "model.layers.0.input_layernorm.weight", "model.embed_tokens.weight", "lm_head.weight",
                 "model.layers.0.self_attn.q_proj.bias"):
        assert placement(name) is None, name


def test_tiny_decoder_tokenizers_work_offline(tiny_models):
    text = "Marie Curie est née à Varsovie. 孩子们在公园里踢足球。"
    for name in TINY_DECODERS:
        tokenizer = AutoTokenizer.from_pretrained(tiny_models / name)
        ids = tokenizer(text)["input_ids"]
        assert tokenizer.unk_token_id not in ids, name
        assert tokenizer.decode(ids, skip_special_tokens=True).replace(" ", "") == text.replace(" ", ""), name
