"""mask_similarity --by head: head geometry, Jaccard per head and FFN block, language-specific weights."""
from __future__ import annotations

import csv
import json
from collections import OrderedDict

import pytest
import torch

from utils.infra.errors import UserError
from utils.analysis.head_similarity import head_analysis, resolve_num_heads, unit_of
from utils.core.masks import Mask, layer_of
from utils.core.pruning import prunable_weights, random_prune
from utils.analysis.similarity import pack_mask
from utils.analysis.writers import to_json

Q0 = "bert.encoder.layer.0.attention.self.query.weight"


def test_units_of_bert_and_mt5_matrices(bert_classifier, tiny_t5):
    assert unit_of(Q0) == ("encoder.0", "attention", 0)
    assert unit_of("bert.encoder.layer.2.attention.output.dense.weight") == ("encoder.2", "attention", 1)
    assert unit_of("bert.encoder.layer.2.intermediate.dense.weight") == ("encoder.2", "ffn", 0)
    assert unit_of("bert.encoder.layer.2.output.dense.weight") == ("encoder.2", "ffn", 1)
    assert unit_of("bert.pooler.dense.weight") is None
    assert unit_of("decoder.block.1.layer.1.EncDecAttention.o.weight") == ("decoder.1 cross", "attention", 1)
    assert unit_of("decoder.block.1.layer.0.SelfAttention.k.weight") == ("decoder.1", "attention", 0)
    assert unit_of("encoder.block.0.layer.1.DenseReluDense.wo.weight") == ("encoder.0", "ffn", 1)
    assert unit_of("encoder.block.0.layer.1.DenseReluDense.wi_0.weight") == ("encoder.0", "ffn", 0)
    assert all(unit_of(n) is not None for n in prunable_weights(tiny_t5))


def test_jaccard_per_head_has_known_values(bert_tagger):
    """hidden 16, 2 heads of 8: head 0 of layer 0 owns 8 rows of Q, K, V (3 x 8 x 16) and 8 columns of the
    attention output (16 x 8): 512 weights. B keeps of them only head 0's query rows (128): Jaccard 1/4 there,
    1 for every other head and FFN block."""
    full = Mask.ones_like(prunable_weights(bert_tagger))
    tensors = OrderedDict((n, t.clone()) for n, t in full.items())
    for kind in ("attention.self.key", "attention.self.value"):
        tensors[f"bert.encoder.layer.0.{kind}.weight"][:8] = False
    tensors["bert.encoder.layer.0.attention.output.dense.weight"][:, :8] = False
    b = Mask(tensors)
    result = head_analysis([pack_mask(full, "a"), pack_mask(b, "b")], heads=2)
    assert result.blocks == ["encoder.0", "encoder.1", "encoder.2"]
    assert result.units == ["head 0", "head 1", "FFN"]
    cells = result.pairs[0].cells
    assert cells["encoder.0"]["head 0"].jaccard == 0.25 and cells["encoder.0"]["head 0"].weights == 512
    assert cells["encoder.0"]["head 1"].jaccard == 1.0 and cells["encoder.0"]["FFN"].jaccard == 1.0
    assert cells["encoder.0"]["FFN"].weights == 2 * 16 * 32
    assert all(cells[block][u].jaccard == 1.0 for block in ("encoder.1", "encoder.2") for u in cells[block])
    with pytest.raises(UserError, match="cannot be split into 3 heads"):
        head_analysis([pack_mask(full, "a"), pack_mask(b, "b")], heads=3)


def test_language_specific_shares_match_a_direct_count(bert_tagger):
    weights = prunable_weights(bert_tagger)
    masks = [random_prune(weights, s, seed) for s, seed in ((0.5, 1), (0.3, 2), (0.7, 3))]
    result = head_analysis([pack_mask(m, str(i)) for i, m in enumerate(masks)], heads=2).language_specific
    for i, mask in enumerate(masks):
        others = [m for j, m in enumerate(masks) if j != i]
        for layer in ("encoder.0", "encoder.1", "encoder.2"):
            names = [n for n in mask if layer_of(n) == layer]
            only = sum(int((mask[n] & ~others[0][n] & ~others[1][n]).sum()) for n in names)
            kept = sum(int(mask[n].sum()) for n in names)
            cell = result.per_layer[str(i)][layer]
            assert (cell.specific, cell.kept) == (only, kept) and cell.share == only / kept
        overall = result.overall[str(i)]
        expected = others[0].sparsity * others[1].sparsity  # the product of the others' (1 - density)
        assert overall.random_baseline == pytest.approx(expected, abs=1e-3)
        assert overall.share == pytest.approx(expected, abs=0.03)  # independent random masks: at the baseline
    assert set(result.per_matrix_type["0"]) == {"query", "key", "value", "attention_output", "intermediate",
                                                   "output"}


def test_mt5_blocks_include_cross_attention(tiny_t5):
    weights = prunable_weights(tiny_t5)
    masks = [pack_mask(random_prune(weights, 0.5, seed), str(seed)) for seed in (1, 2)]
    result = head_analysis(masks, heads=2)
    assert result.blocks == ["encoder.0", "encoder.1", "decoder.0", "decoder.0 cross", "decoder.1",
                             "decoder.1 cross", "decoder.2", "decoder.2 cross"]
    cells = result.pairs[0].cells
    assert "FFN" in cells["decoder.1"] and "FFN" not in cells["decoder.1 cross"]
    assert cells["decoder.1 cross"]["head 1"].weights == 4 * 8 * 16  # d_kv 8, d_model 16
    assert cells["encoder.0"]["head 0"].jaccard == pytest.approx(1 / 3, abs=0.1)


def test_by_head_end_to_end(tmp_path, tiny_models, run_script, capsys):
    from transformers import AutoModelForTokenClassification

    from utils.infra.args import ModelArguments
    from utils.infra.models import load_model

    model_name = str(tiny_models / "mbert-tiny")
    weights = prunable_weights(load_model(AutoModelForTokenClassification, ModelArguments(model_name), num_labels=7))
    paths = []
    for seed, lang in ((1, "en"), (2, "fr")):
        paths.append(str(tmp_path / f"{lang}.pt"))
        random_prune(weights, 0.5, seed).save(paths[-1], {"task": "ner", "languages": [lang], "model": model_name})
    out = tmp_path / "out"
    result = run_script("mask_similarity.py", "--masks", *paths, "--output_dir", str(out), "--by", "head")
    heads = result.by_head
    assert heads.num_heads == 2 and heads.heads_from == f"the config of {model_name}"
    printed = capsys.readouterr().out
    assert "per attention head (2 a block" in printed and "language-specific weights" in printed
    saved = json.loads((out / "head_similarity.json").read_text())
    assert saved["pairs"] == to_json(heads.pairs)
    rows = list(csv.DictReader((out / "head_jaccard.csv").open()))
    assert len(rows) == 2 * 3 and rows[0]["block"] == "encoder.0" and rows[0]["unit"] == "head 0"
    assert float(rows[0]["jaccard"]) == pytest.approx(heads.pairs[0].cells["encoder.0"]["head 0"].jaccard,
                                                  rel=1e-5)  # 6 digits in the CSV
    specific = list(csv.DictReader((out / "language_specific.csv").open()))
    assert {r["scope"] for r in specific} == {"overall", "layer", "matrix_type"}
    for name in ("head_jaccard_ner_en_50pct_vs_ner_fr_50pct.png", "language_specific_per_layer.png",
                 "language_specific_per_matrix_type.png", "jaccard_heatmap.png"):
        assert (out / name).stat().st_size > 10_000
    bare = [str(tmp_path / "a.pt"), str(tmp_path / "b.pt")]
    for path, seed in zip(bare, (3, 4)):
        random_prune(weights, 0.5, seed).save(path)  # no metadata: no model to read the heads from
    with pytest.raises(SystemExit):
        run_script("mask_similarity.py", "--masks", *bare, "--output_dir", str(out), "--by", "head")
    assert "pass --num_heads or --model_name_or_path" in capsys.readouterr().err
    assert run_script("mask_similarity.py", "--masks", *bare, "--output_dir", str(out), "--by", "head",
                      "--num_heads", "1", "--no_plots").by_head.units == ["head 0", "FFN"]
    with pytest.raises(UserError, match="--num_heads must be >= 1"):
        resolve_num_heads([], 0, None)
