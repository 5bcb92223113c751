"""mask_ops: the set operations on hand-made masks, exact re-pruning, model checks, and training under the result."""
from __future__ import annotations

import json
from collections import OrderedDict

import pytest
import torch

from utils.infra.errors import UserError
from utils.analysis.mask_ops import combine, load_aligned, reprune
from utils.core.masks import Mask, source_name
from utils.core.pruning import prunable_weights, random_prune

NER_DATA = ("--train_file", "data/ner/{lang}/train.jsonl", "--validation_file", "data/ner/{lang}/validation.jsonl")


def _mask(*rows: str) -> Mask:
    """One 2 x 4 matrix 'layer.0.w' and one 1 x 4 'layer.1.w' from strings of 0/1."""
    bits = [[c == "1" for c in row] for row in rows]
    return Mask(OrderedDict([("layer.0.w", torch.tensor(bits[:2])), ("layer.1.w", torch.tensor(bits[2:]))]))


def _bits(mask: Mask) -> list[str]:
    return ["".join("1" if v else "0" for v in row) for t in mask.values() for row in t.tolist()]


def test_set_operations_on_known_masks():
    a = _mask("1100", "1010", "1111")
    b = _mask("1010", "1001", "0111")
    c = _mask("1001", "0011", "0011")
    masks = [a, b, c]
    assert _bits(combine(masks, "intersection")) == ["1000", "0000", "0011"]
    assert _bits(combine(masks, "union")) == ["1111", "1011", "1111"]
    assert _bits(combine(masks, "majority")) == ["1000", "1011", "0111"]  # kept by >= 2 of 3
    assert _bits(combine(masks, "majority", min_count=3)) == _bits(combine(masks, "intersection"))
    assert _bits(combine(masks, "majority", min_count=1)) == _bits(combine(masks, "union"))
    assert _bits(combine(masks, "difference")) == ["0100", "0000", "1000"]  # a's weights no other mask keeps
    assert _bits(combine([a, b], "difference")) == ["0100", "0010", "1000"]
    with pytest.raises(UserError, match="between 1 and 3"):
        combine(masks, "majority", min_count=4)
    with pytest.raises(UserError, match="at least 2 masks"):
        combine([a], "union")
    with pytest.raises(UserError, match="majority operation only"):
        combine(masks, "union", min_count=2)


def test_reprune_is_exact_and_ranks_by_magnitude(bert_tagger):
    weights = prunable_weights(bert_tagger)
    total = sum(w.numel() for w in weights.values())
    a, b = random_prune(weights, 0.5, seed=1), random_prune(weights, 0.5, seed=2)
    magnitude = {n: w.detach().abs() for n, w in weights.items()}

    def kept_values(mask: Mask, where: Mask, keep: bool) -> torch.Tensor:
        return torch.cat([magnitude[n][(t == keep) & where[n]] for n, t in mask.items()])

    union = combine([a, b], "union")  # about 75% dense: re-pruning removes its smallest weights
    down, change = reprune(union, weights, 0.5)
    assert down.num_kept == total - round(0.5 * total) and change["added"] == 0
    assert down.is_subset_of(union)
    assert kept_values(down, union, True).min() >= kept_values(down, union, False).max()
    inter = combine([a, b], "intersection")  # about 25% dense: re-pruning adds the largest weights outside it
    up, change = reprune(inter, weights, 0.5)
    assert up.num_kept == total - round(0.5 * total) and change["added"] == up.num_kept - inter.num_kept
    assert inter.is_subset_of(up)
    outside = Mask(OrderedDict((n, ~t) for n, t in inter.items()))
    assert kept_values(up, outside, True).min() >= kept_values(up, outside, False).max()


def test_masks_of_different_models_stop_with_one_line(tmp_path, bert_classifier, bert_tagger, tiny_t5):
    xnli = random_prune(prunable_weights(bert_classifier), 0.5, seed=1)  # has a pooler
    ner = random_prune(prunable_weights(bert_tagger), 0.5, seed=2)
    t5 = random_prune(prunable_weights(tiny_t5), 0.5, seed=3)
    for name, mask in (("xnli", xnli), ("ner", ner), ("t5", t5)):
        mask.save(tmp_path / f"{name}.pt")
    aligned, notes = load_aligned([str(tmp_path / "xnli.pt"), str(tmp_path / "ner.pt")])
    assert list(aligned[0]) == list(ner) and "pooler" in notes[0]
    with pytest.raises(UserError, match="different models"):
        load_aligned([str(tmp_path / "ner.pt"), str(tmp_path / "t5.pt")])
    wide = OrderedDict((n, torch.ones(t.shape[0], t.shape[1] + 1, dtype=torch.bool)) for n, t in ner.items())
    Mask(wide).save(tmp_path / "wide.pt")
    with pytest.raises(UserError, match=r"different models: .* is \(16, 17\)"):
        load_aligned([str(tmp_path / "ner.pt"), str(tmp_path / "wide.pt")])


def test_consensus_ticket_trains_under_ner_fine_tune(tmp_path, tiny_models, run_script, capsys):
    from transformers import AutoModelForTokenClassification

    from utils.infra.args import ModelArguments
    from utils.infra.models import load_model

    model_name = str(tiny_models / "mbert-tiny")
    weights = prunable_weights(load_model(AutoModelForTokenClassification, ModelArguments(model_name), num_labels=7))
    paths = []
    for seed, lang in ((1, "en"), (2, "fr"), (3, "es")):
        paths.append(str(tmp_path / f"{lang}.pt"))
        random_prune(weights, 0.5, seed).save(paths[-1], {"task": "ner", "languages": [lang], "model": model_name},
                                              packed=lang == "es")
    out = tmp_path / "consensus.pt"
    meta = run_script("mask_ops.py", "--operation", "intersection", "--masks", *paths, "--output", str(out),
                      "--sparsity", "50")
    assert "re-pruned to 50.0%" in capsys.readouterr().out
    saved = json.loads(out.with_suffix(".json").read_text())
    assert saved["operation"] == "intersection" and saved["languages"] == ["en", "fr", "es"]
    assert [s["path"] for s in saved["sources"]] == paths and saved["sources"][0]["languages"] == ["en"]
    assert saved["combined_sparsity"] == pytest.approx(1 - 0.125, abs=0.02)  # three independent halves
    assert saved["sparsity"] == 0.5 and saved["repruned"]["checkpoint"] == model_name
    assert combine([Mask.load(p) for p in paths], "intersection").is_subset_of(Mask.load(out))
    assert meta["sparsity"] == 0.5 and source_name(saved) == "ner/intersection(en,fr,es)"
    results = run_script(
        "ner_fine_tune.py", "--mask_dir", str(out), "--output_dir", str(tmp_path / "ft"), "--model_name_or_path",
        model_name, "--data_language", "ru", *NER_DATA, "--do_train", "--do_eval", "--max_steps", "2",
        "--per_device_train_batch_size", "8", "--save_steps", "0", "--use_cpu",
    )
    assert results["sparsity"] == pytest.approx(0.5, abs=1e-4)
    assert results["weights_zero_fraction"] >= 0.5 and results["mask"]["source"]["operation"] == "intersection"
    with pytest.raises(SystemExit):  # never replaces a result silently
        run_script("mask_ops.py", "--operation", "union", "--masks", *paths, "--output", str(out))
    assert "exists; pass --overwrite" in capsys.readouterr().err
    other = tmp_path / "other.pt"
    Mask.load(paths[0]).save(other, {"task": "ner", "languages": ["ru"], "model": "xlm-roberta-base"})
    with pytest.raises(SystemExit):
        run_script("mask_ops.py", "--operation", "union", "--masks", paths[0], str(other), "--output",
                   str(tmp_path / "u.pt"))
    assert "the masks come from different models" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_script("mask_ops.py", "--operation", "difference", "--masks", paths[0], "--output", str(tmp_path / "d.pt"))
    assert "--masks must be two or more mask files" in capsys.readouterr().err


def test_a_mask_without_any_weight_of_a_matrix_is_refused_unless_asked(tmp_path, tiny_models, run_script, capsys):
    """--sparsity 99.99999 rounds to every weight removed: mask_ops.py refuses to write it (one line naming the
    first matrix); written with --allow_empty_matrices, fine-tuning under it refuses before training."""
    from transformers import AutoModelForTokenClassification

    from utils.infra.args import ModelArguments
    from utils.infra.models import load_model

    model_name = str(tiny_models / "mbert-tiny")
    weights = prunable_weights(load_model(AutoModelForTokenClassification, ModelArguments(model_name), num_labels=7))
    paths = [str(tmp_path / f"{lang}.pt") for lang in ("en", "fr")]
    for seed, path in enumerate(paths):
        random_prune(weights, 0.5, seed).save(path, {"task": "ner", "languages": ["en"], "model": model_name})
    out = tmp_path / "empty.pt"
    argv = ("--operation", "union", "--masks", *paths, "--output", str(out), "--sparsity", "99.99999")
    with pytest.raises(SystemExit) as stop:
        run_script("mask_ops.py", *argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and err == [
        f"error: the result removes every weight of {next(iter(weights))} (and {len(weights) - 1} more matrices), so "
        "fine-tuning under it is refused: re-prune to a lower --sparsity, or pass --allow_empty_matrices to write "
        "it anyway"]
    assert not out.exists()
    assert run_script("mask_ops.py", *argv, "--allow_empty_matrices")["sparsity"] == 1.0
    assert Mask.load(out).empty_matrices() == list(weights)
    with pytest.raises(SystemExit) as stop:
        run_script("ner_fine_tune.py", "--mask_dir", str(out), "--output_dir", str(tmp_path / "ft"),
                   "--model_name_or_path", model_name, "--data_language", "en", *NER_DATA, "--do_train",
                   "--max_steps", "2", "--use_cpu")
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and err == [
        f"error: {out} removes every weight of {next(iter(weights))} (and {len(weights) - 1} more matrices): "
        "fine-tuning under it cannot learn there; use a mask that keeps some weights of every matrix"]
    assert not (tmp_path / "ft" / "finetune_results.json").exists()


def test_reprune_per_stack_brings_each_stack_to_the_sparsity():
    """Encoder fully kept, decoder 25% kept; to 50% per stack: the encoder's 4 smallest go and the decoder's 2
    largest outside it come back. One global ranking would instead remove the two 1.0s (one per stack) only."""
    weights = OrderedDict([("encoder.block.0.w.weight", torch.tensor([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]])),
                           ("decoder.block.0.w.weight", torch.tensor([[8.0, 1.0, 7.0, 2.0], [3.0, 6.0, 4.0, 5.0]]))])
    mask = Mask(OrderedDict([("encoder.block.0.w.weight", torch.ones(2, 4, dtype=torch.bool)),
                             ("decoder.block.0.w.weight", torch.tensor([[False, True, False, False],
                                                                        [True, False, False, False]]))]))
    new, change = reprune(mask, weights, 0.5, "per_stack")
    assert _bits(new) == ["0000", "1111", "1110", "1000"] and change == {"added": 2, "removed": 4}
    assert new.per_stack() == {"encoder": 0.5, "decoder": 0.5}
    globally, change = reprune(mask, weights, 0.5)
    assert change == {"added": 0, "removed": 2} and globally.per_stack() == {"encoder": 0.125, "decoder": 0.875}


def test_prune_scope_defaults_to_the_sources():
    from utils.analysis.mask_ops import prune_scope_of

    assert prune_scope_of([{"prune_scope": "per_stack"}, {"prune_scope": "per_stack"}], None) == "per_stack"
    assert prune_scope_of([{"task": "ner"}, {}], None) == "global"
    assert prune_scope_of([{"prune_scope": "per_stack"}], "global") == "global"
    with pytest.raises(UserError, match="different scopes"):
        prune_scope_of([{"prune_scope": "per_stack"}, {"prune_scope": "global"}], None)


def test_output_mask_is_written_after_its_metadata(tmp_path, run_script, monkeypatch):
    """mask.pt is what a study checks for a mask_ops run: written last, so a run killed while writing the metadata
    leaves no mask that looks complete; a finished run's metadata holds the .pt's checksum."""
    import hashlib

    from utils.core import masks

    paths = []
    for name, rows in (("a", ("1100", "0110", "1010")), ("b", ("1110", "0100", "1011"))):
        paths.append(str(tmp_path / f"{name}.pt"))
        _mask(*rows).save(paths[-1], {"task": "ner", "languages": [name]})
    out = tmp_path / "mask.pt"

    def killed(*args, **kwargs):
        raise RuntimeError("killed while writing the metadata")

    with monkeypatch.context() as patch:
        patch.setattr(masks, "write_json", killed)
        with pytest.raises(RuntimeError, match="killed"):
            run_script("mask_ops.py", "--operation", "union", "--masks", *paths, "--output", str(out))
    assert not out.exists()
    run_script("mask_ops.py", "--operation", "union", "--masks", *paths, "--output", str(out))
    saved = json.loads(out.with_suffix(".json").read_text())
    assert saved["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert _bits(Mask.load(out)) == ["1110", "0110", "1011"]
