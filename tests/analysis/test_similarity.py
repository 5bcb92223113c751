"""mask_similarity: exact Jaccard on hand-built masks, the random baseline, per-layer grouping, mismatches, CLI."""
from __future__ import annotations

import json
from collections import OrderedDict

import pytest
import torch

from utils.infra.errors import UserError
from utils.core.masks import Mask, layer_of, matrix_type
from utils.core.pruning import prunable_weights, random_prune
from utils.analysis.similarity import (
    compare_masks, compare_pair, load_and_compare, nway_overlap, pack_mask, random_jaccard, unique_labels,
)

Q0 = "bert.encoder.layer.0.attention.self.query.weight"
I1 = "bert.encoder.layer.1.intermediate.dense.weight"
POOLER = "bert.pooler.dense.weight"


def mask_of(**entries) -> Mask:
    return Mask(OrderedDict((name, torch.tensor(values, dtype=torch.bool)) for name, values in entries.items()))


def bits(*values: int) -> list[bool]:
    return [bool(v) for v in values]


def test_jaccard_exact_on_hand_built_masks():
    # odd sizes (3x5, 1x70) cross the 64-bit padding, which must never count as kept
    a = pack_mask(Mask(OrderedDict([(Q0, torch.tensor([bits(1, 1, 0, 0, 1)] * 3)),
                                    (I1, torch.tensor([bits(1) * 70], dtype=torch.bool))])), "a")
    b = pack_mask(Mask(OrderedDict([(Q0, torch.tensor([bits(1, 0, 1, 0, 1)] * 3)),
                                    (I1, torch.tensor([bits(*([1] * 35 + [0] * 35))]))])), "b")
    pair = compare_pair(a, b)
    q = pair.per_layer["encoder.0"]
    assert (q.intersection, q.union, q.kept_a, q.kept_b, q.weights) == (6, 12, 9, 9, 15)
    assert q.jaccard == pytest.approx(0.5)
    assert q.random_baseline == pytest.approx(0.6 * 0.6 / (0.6 + 0.6 - 0.36))
    i = pair.per_matrix_type["intermediate"]
    assert (i.intersection, i.union, i.jaccard) == (35, 70, 0.5)
    overall = pair.overall
    assert overall.jaccard == pytest.approx(41 / 82)
    p, r = 79 / 85, 44 / 85
    assert overall.random_baseline == pytest.approx(p * r / (p + r - p * r))
    assert overall.ratio == pytest.approx(overall.jaccard / overall.random_baseline)
    assert random_jaccard(0.5, 0.5) == pytest.approx(1 / 3)


def test_nway_overlap_exact():
    masks = [pack_mask(mask_of(**{Q0: [row]}), str(k)) for k, row in
             enumerate((bits(1, 1, 1, 0), bits(1, 1, 0, 0), bits(1, 0, 1, 1)))]
    overlap = nway_overlap(masks)
    assert (overlap.overall.kept_in_all, overlap.overall.kept_in_any) == (1, 4)
    assert overlap.per_layer["encoder.0"].overlap == pytest.approx(0.25)
    expected = (0.75 * 0.5 * 0.75) / (1 - 0.25 * 0.5 * 0.25)
    assert overlap.overall.random_baseline == pytest.approx(expected)


def test_random_masks_land_on_the_baseline():
    weights = {"bert.encoder.layer.0.intermediate.dense.weight": torch.empty(3072, 768)}
    a = pack_mask(random_prune(weights, 0.5, seed=1), "a")
    b = pack_mask(random_prune(weights, 0.5, seed=2), "b")
    overall = compare_pair(a, b).overall
    assert overall.random_baseline == pytest.approx(1 / 3)
    assert overall.jaccard == pytest.approx(1 / 3, abs=0.002)
    assert overall.ratio == pytest.approx(1.0, abs=0.01)


def _exact_per_layer(m1: Mask, m2: Mask) -> dict[str, float]:
    inter, union = {}, {}
    for name, t in m1.items():
        layer = layer_of(name)
        inter[layer] = inter.get(layer, 0) + int((t & m2[name]).sum())
        union[layer] = union.get(layer, 0) + int((t | m2[name]).sum())
    return {layer: inter[layer] / union[layer] for layer in inter}


def test_per_layer_grouping_bert(bert_classifier):
    weights = prunable_weights(bert_classifier)
    m1, m2 = random_prune(weights, 0.5, seed=1), random_prune(weights, 0.7, seed=2)
    pair = compare_pair(pack_mask(m1, "a"), pack_mask(m2, "b"))
    assert list(pair.per_layer) == ["encoder.0", "encoder.1", "encoder.2", "pooler"]
    assert set(pair.per_matrix_type) == {"query", "key", "value", "attention_output", "intermediate", "output",
                                            "pooler"}
    for layer, value in _exact_per_layer(m1, m2).items():
        assert pair.per_layer[layer].jaccard == pytest.approx(value, abs=1e-12)
    assert pair.per_matrix_type["query"].weights == 3 * 16 * 16


def test_per_layer_grouping_mt5(tiny_t5):
    weights = prunable_weights(tiny_t5)
    m1, m2 = random_prune(weights, 0.5, seed=1, scope="per_stack"), random_prune(weights, 0.5, seed=3)
    pair = compare_pair(pack_mask(m1, "a"), pack_mask(m2, "b"))
    assert list(pair.per_layer) == ["encoder.0", "encoder.1", "decoder.0", "decoder.1", "decoder.2"]
    types = set(pair.per_matrix_type)
    assert {"encoder.self_attn.q", "encoder.ffn.wi_0", "decoder.cross_attn.k", "decoder.ffn.wo"} <= types
    assert not any(t.startswith("encoder.cross_attn") for t in types)
    for layer, value in _exact_per_layer(m1, m2).items():
        assert pair.per_layer[layer].jaccard == pytest.approx(value, abs=1e-12)
    assert {matrix_type(n) for n in weights} == types


def test_masks_of_other_models_compare_over_shared_weights(bert_classifier, bert_tagger):
    xnli = random_prune(prunable_weights(bert_classifier), 0.5, seed=1)  # has a pooler
    ner = random_prune(prunable_weights(bert_tagger), 0.5, seed=1)  # has none
    other = Mask(OrderedDict([(Q0, torch.ones(4, 4, dtype=torch.bool))]))  # another model's shape
    result = compare_masks([pack_mask(xnli, "xnli"), pack_mask(ner, "ner"), pack_mask(other, "other")])
    pair = result.pairs[0]
    assert pair.shared_matrices == 18 and "pooler" not in pair.per_layer
    assert any(line.startswith(POOLER) and "only in xnli" in line for line in result.mismatches)
    assert any(line.startswith(Q0) and "shapes differ" in line for line in result.mismatches)
    assert result.pairs[1].shared_matrices == 0 and result.pairs[1].overall.jaccard is None
    assert result.overlap.matrices == 0


def test_labels_from_metadata_and_errors(tmp_path, bert_tagger):
    weights = prunable_weights(bert_tagger)
    paths = []
    for seed, lang in ((1, "en"), (2, "en"), (3, "fr")):
        path = tmp_path / f"run{seed}" / "masks" / "sparsity_50.pt"
        random_prune(weights, 0.5, seed).save(path, {"task": "ner", "languages": [lang], "seed": seed})
        paths.append(path)
    metas = [json.loads(p.with_suffix(".json").read_text()) for p in paths]
    assert unique_labels(paths, metas) == ["ner/en/50%/s1", "ner/en/50%/s2", "ner/fr/50%"]
    assert unique_labels(paths, [{}, {}, {}]) == ["run1/sparsity_50", "run2/sparsity_50", "run3/sparsity_50"]
    with pytest.raises(UserError, match="at least 2 masks"):
        load_and_compare(paths[:1])
    with pytest.raises(UserError, match="2 labels for 3 masks"):
        load_and_compare(paths, ["a", "b"])
    with pytest.raises(UserError, match="mask file not found"):
        load_and_compare([paths[0], tmp_path / "nope.pt"])
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(UserError, match="garbage.pt"):
        load_and_compare([paths[0], garbage])
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(paths[0].read_bytes()[:200])
    with pytest.raises(UserError, match="truncated.pt.*(truncated|corrupt)"):
        load_and_compare([paths[0], truncated])


def test_mask_similarity_script_end_to_end(tmp_path, tiny_models, run_script, capsys):
    from transformers import AutoModelForTokenClassification

    from utils.infra.args import ModelArguments
    from utils.infra.models import load_model

    model = load_model(AutoModelForTokenClassification, ModelArguments(str(tiny_models / "mbert-tiny")), num_labels=7)
    weights = prunable_weights(model)
    paths = []
    for seed, lang in ((1, "en"), (2, "fr"), (3, "zh")):
        path = tmp_path / f"{lang}.pt"
        random_prune(weights, 0.5, seed).save(path, {"task": "ner", "languages": [lang], "seed": seed},
                                              packed=lang == "zh")
        paths.append(str(path))
    out = tmp_path / "out"
    result = run_script("mask_similarity.py", "--masks", *paths, "--output_dir", str(out))
    printed = capsys.readouterr().out
    assert "ner/en/50% vs ner/fr/50%" in printed and "random" in printed and "kept in all 3" in printed
    assert result.result.pairs[0].overall.jaccard == pytest.approx(1 / 3, abs=0.02)
    assert {p.name for p in out.iterdir()} >= {"mask_similarity.json", "mask_similarity_pairs.csv",
                                                "mask_overlap.csv", "jaccard_matrix.csv", "jaccard_heatmap.png",
                                                "jaccard_per_layer.png"}
    saved = json.loads((out / "mask_similarity.json").read_text())
    assert saved["labels"] == ["ner/en/50%", "ner/fr/50%", "ner/zh/50%"]
    assert list(saved["pairs"][0]["per_layer"]) == ["encoder.0", "encoder.1"]
    header = (out / "mask_similarity_pairs.csv").read_text().splitlines()[0]
    assert header.startswith("mask_a,mask_b,scope,group,jaccard,random_baseline,ratio")
    with pytest.raises(SystemExit):
        run_script("mask_similarity.py", "--masks", paths[0], "--output_dir", str(out))
    assert "--masks must be two or more mask files" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_script("mask_similarity.py", "--masks", *paths, "--labels", "a", "--output_dir", str(out))
    assert "1 labels for 3 masks" in capsys.readouterr().err


def test_similarity_killed_before_its_figures_is_not_complete(tmp_path, bert_tagger, run_script, monkeypatch):
    """mask_similarity.json (what a study checks) is written after every CSV and figure, and reads back typed."""
    from utils.analysis import plots
    from utils.analysis.similarity_writers import read_similarity

    weights = prunable_weights(bert_tagger)
    paths = []
    for seed in (1, 2):
        paths.append(str(tmp_path / f"m{seed}.pt"))
        random_prune(weights, 0.5, seed).save(paths[-1], {"task": "ner", "languages": ["en"], "seed": seed})
    out = tmp_path / "out"

    def killed(*args, **kwargs):
        raise RuntimeError("killed while plotting")

    with monkeypatch.context() as patch:
        patch.setattr(plots, "per_layer_lines", killed)  # jaccard_per_layer.png, the last figure
        with pytest.raises(RuntimeError, match="killed while plotting"):
            run_script("mask_similarity.py", "--masks", *paths, "--output_dir", str(out))
    assert (out / "jaccard_heatmap.png").is_file() and (out / "mask_similarity_pairs.csv").is_file()
    assert not (out / "mask_similarity.json").exists()
    found = run_script("mask_similarity.py", "--masks", *paths, "--output_dir", str(out))
    assert read_similarity(out / "mask_similarity.json") == found.result
