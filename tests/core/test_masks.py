"""Mask files: round trips, the original code's format, cross-task fitting, and refusing bad files."""
from __future__ import annotations

import os

import pytest
import torch

from utils.infra.errors import UserError
from utils.core.masks import Mask, layer_of, matrix_type, read_mask_metadata
from utils.core.pruning import prunable_weights, random_prune


@pytest.fixture
def mask(bert_classifier):
    return random_prune(prunable_weights(bert_classifier), 0.5, seed=0)


@pytest.mark.parametrize("packed", [False, True])
def test_save_load_round_trip(tmp_path, mask, packed):
    path = tmp_path / "m.pt"
    mask.save(path, {"task": "xnli", "languages": ["fr"]}, packed=packed)
    loaded = Mask.load(path)
    assert list(loaded) == list(mask)
    assert all(torch.equal(loaded[n], mask[n]) for n in mask)
    meta = read_mask_metadata(path)
    assert meta["task"] == "xnli" and meta["sparsity"] == pytest.approx(mask.sparsity)
    assert meta["file_format"] == ("packed-bits-v1" if packed else "bool")


def test_bool_file_is_the_documented_format(tmp_path, mask):
    path = tmp_path / "m.pt"
    mask.save(path)
    raw = torch.load(path, weights_only=True)
    assert set(raw) == {n + "_mask" for n in mask}
    assert "bert.encoder.layer.0.attention.self.query.weight_mask" in raw
    assert all(t.dtype == torch.bool and t.device.type == "cpu" for t in raw.values())


def test_packed_file_is_about_one_bit_per_weight(tmp_path, bert_classifier):
    from transformers import BertConfig, BertForSequenceClassification

    big = BertForSequenceClassification(BertConfig(hidden_size=256, num_hidden_layers=2, num_attention_heads=2,
                                                   intermediate_size=1024, vocab_size=50, num_labels=3))
    m = random_prune(prunable_weights(big), 0.5, seed=0)
    m.save(tmp_path / "p.pt", packed=True)
    bits_per_weight = 8 * os.path.getsize(tmp_path / "p.pt") / m.num_weights
    assert bits_per_weight <= 1.1


def test_loads_the_original_codes_masks(tmp_path, mask):
    """Float 0/1 tensors, keys with a DataParallel `module.` prefix, no metadata file."""
    original = {f"module.{n}_mask": t.float() for n, t in mask.items()}
    torch.save(original, tmp_path / "orig.pt")
    loaded = Mask.load(tmp_path / "orig.pt")
    assert all(torch.equal(loaded[n], mask[n]) for n in mask)
    plain = {f"{n}_mask": t.float() for n, t in mask.items()}
    torch.save(plain, tmp_path / "plain.pt")
    assert Mask.load(tmp_path / "plain.pt").checksum() == mask.checksum()


def test_cross_task_fitting_of_the_pooler(bert_classifier, bert_tagger):
    xnli_mask = random_prune(prunable_weights(bert_classifier), 0.5, seed=0)
    ner_mask = random_prune(prunable_weights(bert_tagger), 0.5, seed=0)
    # NER mask (no pooler) on the XNLI model: the pooler stays dense
    fitted = ner_mask.fit(prunable_weights(bert_classifier))
    assert fitted["bert.pooler.dense.weight"].all()
    assert any("pooler" in note for note in fitted.notes)
    # XNLI mask on the NER model: the pooler entry is ignored
    fitted = xnli_mask.fit(prunable_weights(bert_tagger))
    assert "bert.pooler.dense.weight" not in fitted
    assert any("ignored" in note for note in fitted.notes)


def test_masks_that_do_not_fit_are_refused(bert_classifier, tiny_t5):
    from transformers import BertForSequenceClassification

    from tests.conftest import tiny_bert_config

    mask = random_prune(prunable_weights(bert_classifier), 0.5, seed=0)
    with pytest.raises(UserError, match="no entry"):
        mask.fit(prunable_weights(BertForSequenceClassification(tiny_bert_config(num_hidden_layers=4))))
    with pytest.raises(UserError, match="shape"):
        mask.fit(prunable_weights(BertForSequenceClassification(tiny_bert_config(hidden_size=24))))
    with pytest.raises(UserError, match="does not fit"):
        mask.fit(prunable_weights(tiny_t5))


def test_bad_files_give_one_clear_error(tmp_path, mask):
    with pytest.raises(UserError, match="not found"):
        Mask.load(tmp_path / "missing.pt")
    mask.save(tmp_path / "m.pt")
    data = (tmp_path / "m.pt").read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="truncated or corrupt"):
        Mask.load(tmp_path / "truncated.pt")
    (tmp_path / "m.pt").write_bytes(data[:-10] + b"0123456789")  # changed after saving: checksum
    with pytest.raises(UserError, match="checksum"):
        Mask.load(tmp_path / "m.pt")
    torch.save({"bert.encoder.layer.0.attention.self.query.weight": torch.zeros(2, 2)}, tmp_path / "weights.pt")
    with pytest.raises(UserError, match="not a mask file"):
        Mask.load(tmp_path / "weights.pt")
    torch.save({"a.weight_mask": torch.full((2, 2), 0.5)}, tmp_path / "half.pt")
    with pytest.raises(UserError, match="other than 0 and 1"):
        Mask.load(tmp_path / "half.pt")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(UserError):
        Mask.load(tmp_path / "text.pt")


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_a_file_that_would_run_code_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.save({"a.weight_mask": _RunsCode()}, tmp_path / "evil.pt")
    with pytest.raises(UserError, match="run code"):
        Mask.load(tmp_path / "evil.pt")
    assert not (tmp_path / "pwned").exists()


def test_layer_and_matrix_names():
    assert layer_of("bert.encoder.layer.11.output.dense.weight") == "encoder.11"
    assert layer_of("bert.pooler.dense.weight") == "pooler"
    assert layer_of("decoder.block.2.layer.1.EncDecAttention.q.weight") == "decoder.2"
    assert matrix_type("bert.encoder.layer.3.attention.output.dense.weight") == "attention_output"
    assert matrix_type("bert.encoder.layer.3.output.dense.weight") == "output"
    assert matrix_type("decoder.block.0.layer.1.EncDecAttention.k.weight") == "decoder.cross_attn.k"
    assert matrix_type("encoder.block.0.layer.1.DenseReluDense.wi_1.weight") == "encoder.ffn.wi_1"


def test_empty_matrices_are_those_with_no_weight_kept():
    from utils.core.masks import empty_matrices_text

    mask = Mask({"a.weight": torch.zeros(2, 3, dtype=torch.bool), "b.weight": torch.tensor([[False, True]]),
                 "c.weight": torch.zeros(0, 4, dtype=torch.bool), "d.weight": torch.zeros(1, 1, dtype=torch.bool)})
    assert mask.empty_matrices() == ["a.weight", "d.weight"]  # a 0-size matrix has no weight to lose
    assert Mask({"b.weight": torch.tensor([[False, True]])}).empty_matrices() == []
    assert empty_matrices_text(["a.weight"]) == "a.weight"
    assert empty_matrices_text(["a.weight", "d.weight"]) == "a.weight (and 1 more matrix)"
    assert empty_matrices_text(["a", "b", "c"]) == "a (and 2 more matrices)"
