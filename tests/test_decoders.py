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


# -- per head, with grouped-query attention and fused matrices ------------------------------------------------------


def two_masks(weights, removed: dict):
    """The full mask and one that removes the given slices (name -> index tuple)."""
    from collections import OrderedDict

    from utils.analysis.similarity import pack_mask

    full = Mask.ones_like(weights)
    tensors = OrderedDict((n, t.clone()) for n, t in full.items())
    for name, index in removed.items():
        tensors[name][index] = False
    return [pack_mask(full, "a"), pack_mask(Mask(tensors), "b")]


def head_cells(masks, heads, kv_heads, block="decoder.0"):
    from utils.analysis.head_similarity import head_analysis

    result = head_analysis(masks, heads, kv_heads)
    return {u: c["jaccard"] for u, c in result["pairs"][0]["cells"][block].items()}, result


def test_grouped_query_heads_share_their_key_value_head(decoders):
    """llama-tiny: 4 query heads of 16, 2 key/value heads. Head h owns q rows and o columns 16h..16h+15 and the
    k/v rows of key/value head h // 2: 4 x 16 x 64 = 4096 weights. Removing k rows 16..31 (key/value head 1)
    takes 1024 from heads 2 and 3 each: Jaccard 3/4 there, 1 elsewhere."""
    weights = prunable_weights(decoders["llama-tiny"])
    masks = two_masks(weights, {"model.layers.0.self_attn.k_proj.weight": (slice(16, 32),)})
    cells, result = head_cells(masks, 4, 2)
    assert cells == {"head 0": 1.0, "head 1": 1.0, "head 2": 0.75, "head 3": 0.75, "FFN": 1.0}
    assert result["pairs"][0]["cells"]["decoder.0"]["head 2"]["weights"] == 4096
    assert result["pairs"][0]["cells"]["decoder.0"]["FFN"]["weights"] == 3 * 128 * 64
    # o_proj columns are the head's: removing columns 0..15 of o touches head 0 only
    masks = two_masks(weights, {"model.layers.1.self_attn.o_proj.weight": (slice(None), slice(0, 16))})
    cells, _ = head_cells(masks, 4, 2, "decoder.1")
    assert cells["head 0"] == 0.75 and cells["head 1"] == cells["head 3"] == 1.0


def test_gpt2_fused_conv1d_heads_are_columns(decoders):
    """gpt2-tiny c_attn is (in 64, out 192): columns q | k | v, 4 heads of 16 each. Removing v's head-1 columns
    (128 + 16 .. 128 + 31) takes 1024 of head 1's 4096 (q, k, v columns + c_proj rows)."""
    weights = prunable_weights(decoders["gpt2-tiny"])
    masks = two_masks(weights, {"transformer.h.0.attn.c_attn.weight": (slice(None), slice(144, 160))})
    cells, result = head_cells(masks, 4, 4)
    assert cells == {"head 0": 1.0, "head 1": 0.75, "head 2": 1.0, "head 3": 1.0, "FFN": 1.0}
    assert result["pairs"][0]["cells"]["decoder.0"]["head 1"]["weights"] == 4096
    masks = two_masks(weights, {"transformer.h.0.attn.c_proj.weight": (slice(48, 64),)})  # c_proj rows: head 3
    assert head_cells(masks, 4, 4)[0]["head 3"] == 0.75


def test_interleaved_fused_qkv_splits_per_head():
    """BLOOM's query_key_value (48, 16) is per head [q, k, v] of 8 rows: head 1 is rows 24..47."""
    model = IN_PROCESS["bloom"][0]()
    weights = prunable_weights(model)
    masks = two_masks(weights, {"transformer.h.1.self_attention.query_key_value.weight": (slice(24, 32),)})
    cells, result = head_cells(masks, 2, 2, "decoder.1")
    assert cells == {"head 0": 1.0, "head 1": 0.75, "FFN": 1.0}
    assert result["pairs"][0]["cells"]["decoder.1"]["head 1"]["weights"] == 3 * 8 * 16 + 16 * 8


# -- every analysis tool on the masks of every tiny decoder ---------------------------------------------------------


@pytest.mark.parametrize("name", TINY_DECODERS)
def test_decoder_masks_feed_every_tool(name, decoders, tiny_models, tmp_path, run_script):
    from utils.core.pruning import random_prune

    model_path = str(tiny_models / name)
    weights = prunable_weights(decoders[name])
    paths = []
    for seed, lang in ((1, "en"), (2, "fr")):
        paths.append(str(tmp_path / f"{lang}.pt"))
        random_prune(weights, 0.5, seed).save(paths[-1], {"task": "clm", "languages": [lang], "model": model_path})
    similarity = run_script("mask_similarity.py", "--masks", *paths, "--output_dir", str(tmp_path / "sim"),
                            "--by", "head", "--no_plots")
    heads = similarity["by_head"]
    config = decoders[name].config
    assert heads["num_heads"] == config.num_attention_heads
    assert heads["num_key_value_heads"] == getattr(config, "num_key_value_heads", config.num_attention_heads)
    assert heads["blocks"] == ["decoder.0", "decoder.1"]
    assert heads["units"] == [f"head {h}" for h in range(config.num_attention_heads)] + ["FFN"]
    cells = heads["pairs"][0]["cells"]["decoder.0"]
    assert all(0.2 < c["jaccard"] < 0.5 for c in cells.values())  # two independent halves: about 1/3
    union = run_script("mask_ops.py", "--operation", "intersection", "--masks", *paths, "--output",
                       str(tmp_path / "both.pt"), "--sparsity", "60")
    both = Mask.load(tmp_path / "both.pt")
    assert list(both) == list(weights) and both.num_weights - both.num_kept == round(0.6 * both.num_weights)
    assert union is not None
    pairs = tmp_path / "en-fr.tsv"
    pairs.write_text("".join(line for line in open("data/parallel/en-fr.tsv", encoding="utf-8").readlines()[:40]),
                     encoding="utf-8")
    representations = run_script("representation_similarity.py", "--model_name_or_path", model_path, "--tsv",
                                 str(pairs), "--src_lang", "en", "--tgt_lang", "fr", "--src_mask", paths[0],
                                 "--tgt_mask", paths[1], "--cca_dims", "8", "--pooling", "mean", "--output_dir", str(tmp_path / "repr"),
                                 "--no_plots")
    layers = representations["comparisons"][0]["layers"]
    assert [row["layer"] for row in layers] == [0, 1, 2]
    assert all(0.0 < row["cka"] <= 1.0 + 1e-6 and 0.0 < row["svcca"] <= 1.0 + 1e-6 for row in layers)
