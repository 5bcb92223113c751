"""The results schema (utils/infra/results_schema.py): files of the old layout still read, the current one round-
trips, and the shared pieces IMP and fine-tuning use (step budget, masked optimizer step, the Mask mapping)."""
from __future__ import annotations

import json
from collections import OrderedDict

import pytest
import torch
from torch import nn

from utils.analysis.results import read_finetune_run, read_imp_run, summarize
from utils.core.budget import round_length, step_budget
from utils.core.masks import Mask
from utils.core.training import masked_optimizer_step
from utils.infra.errors import UserError
from utils.infra.outputs import RunPaths, plan_run
from utils.infra.results_schema import (SCHEMA_VERSION, FinetuneResults, ImpResults, ImpRound, read_finetune_results,
                                        read_imp_results, to_dict, write_results)

# Written by hand in the layout this project used before schema_version 2: a round's value under "metric",
# fine-tuning's training languages under "train_languages".
OLD_IMP = {
    "script": "LT_ner.py", "task": "ner", "languages": ["en"], "model": "tiny_models/mbert-tiny", "seed": 57,
    "prune_scope": "global", "prune_schedule": "linear", "metric": "f1", "greater_is_better": True,
    "schedule": [0.0, 0.1, 0.2], "steps_per_round": 10, "rewind_step": 0, "num_processes": 1,
    "fingerprint": {"seed": 57}, "config": {"seed": 57},
    "rounds": [
        {"round": 0, "sparsity": 0.0, "metric": 0.61, "eval": {"en": {"f1": 0.61}}, "steps": 10, "train_loss": 1.5,
         "seconds": 2.0, "history": [], "mask_checksum": "dense", "next_mask": "masks/sparsity_10.pt",
         "prune_seconds": 0.01},
        {"round": 1, "sparsity": 0.1, "metric": 0.64, "eval": {"en": {"f1": 0.64}}, "steps": 10, "train_loss": 1.2,
         "seconds": 2.0, "history": [], "mask_checksum": "abc", "next_mask": "masks/sparsity_20.pt",
         "prune_seconds": 0.01},
    ],
    "complete": False,
}
OLD_FINETUNE = {
    "script": "ner_fine_tune.py", "task": "ner", "train_languages": ["fr"], "model": "tiny_models/mbert-tiny",
    "weight_init": "pre", "pruning_type": "lth",
    "mask": {"path": "m.pt", "source": {"task": "ner", "languages": ["en"], "sparsity": 0.5}}, "sparsity": 0.5,
    "weights_zero_fraction": 0.5, "seed": 1, "metric": "f1", "greater_is_better": True, "headline": 0.7,
    "eval": {"fr": {"f1": 0.7}}, "steps": 5, "train_loss": 0.9, "seconds": 1.0, "history": [], "num_processes": 1,
    "config": {}, "fingerprint": {},
}


def _write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def test_old_imp_file_reads_with_the_new_names(tmp_path):
    path = _write(tmp_path / "imp" / "imp_results.json", OLD_IMP)
    results = read_imp_results(path)
    assert results.schema_version == SCHEMA_VERSION and results.metric == "f1" and results.languages == ["en"]
    assert [r.headline for r in results.rounds] == [0.61, 0.64]
    assert results.rounds[1].next_mask == "masks/sparsity_20.pt" and results.rounds[1].carried_weights is None
    assert results.lr_schedule_span == "run" and results.rewind_scope == "body"  # absent then: the defaults of then
    run = read_imp_run(path)
    assert [metric for _, metric in run.points] == [0.61, 0.64] and run.dense == 0.61


def test_old_finetune_file_reads_and_summarizes(tmp_path):
    path = _write(tmp_path / "ft" / "finetune_results.json", OLD_FINETUNE)
    results = read_finetune_results(path)
    assert results.languages == ["fr"] and results.headline == 0.7 and results.metric == "f1"
    run = read_finetune_run(path)
    assert (run.source, run.target, run.sparsity) == ("ner/en", "ner/fr", 0.5)
    _write(tmp_path / "imp" / "imp_results.json", {**OLD_IMP, "complete": True})
    summary = summarize([tmp_path])
    assert summary.imp[0].curve[1].mean == pytest.approx(0.64)
    cell = summary.transfer[0].cells[0]
    assert (cell.source, cell.target, cell.value) == ("ner/en", "ner/fr", pytest.approx(0.7))


def test_an_unfinished_old_imp_run_is_resumed_in_the_new_layout(tmp_path):
    _write(tmp_path / "imp_results.json", OLD_IMP)
    plan = plan_run(RunPaths(tmp_path), "imp", {"seed": 57}, resume=True)
    assert plan.previous["schema_version"] == SCHEMA_VERSION and "metric" not in plan.previous["rounds"][0]
    assert plan.previous["rounds"][0]["headline"] == 0.61 and not plan.finished
    assert json.loads((tmp_path / "imp_results.json").read_text()) == OLD_IMP  # reading never rewrites the file


def test_current_layout_round_trips(tmp_path):
    results = ImpResults(task="xnli", languages=["en", "fr"], metric="accuracy", config={"a": 1}, fingerprint={},
                         rounds=[ImpRound(round=0, sparsity=0.0, headline=0.5, mask_checksum="dense")])
    write_results(tmp_path / "imp_results.json", results)
    written = json.loads((tmp_path / "imp_results.json").read_text())
    assert written["rounds"][0]["headline"] == 0.5 and "next_mask" not in written["rounds"][0]
    assert written["schema_version"] == SCHEMA_VERSION
    assert read_imp_results(tmp_path / "imp_results.json") == results
    finetune = FinetuneResults(task="ner", languages=["en"], metric="f1", config={}, headline=None)
    write_results(tmp_path / "finetune_results.json", finetune)
    assert read_finetune_results(tmp_path / "finetune_results.json") == finetune
    assert to_dict(finetune)["languages"] == ["en"] and "train_languages" not in to_dict(finetune)


def test_a_newer_or_foreign_file_stops_with_one_line(tmp_path):
    newer = _write(tmp_path / "a" / "imp_results.json", {**OLD_IMP, "schema_version": SCHEMA_VERSION + 1})
    with pytest.raises(UserError, match="schema version 3; this code reads versions up to 2"):
        read_imp_results(newer)
    lacking = _write(tmp_path / "b" / "imp_results.json", {"config": {}, "task": "ner"})
    with pytest.raises(UserError, match="lacks languages, metric, rounds"):
        read_imp_results(lacking)


def test_step_budget_and_round_length():
    assert step_budget(max_steps=50, num_train_epochs=3.0, steps_per_epoch=7) == 50
    assert step_budget(max_steps=-1, num_train_epochs=2.5, steps_per_epoch=7) == 18  # ceil(17.5)
    assert round_length(save_steps=100, budget=18, num_rounds=10) == 100  # --save_steps, as the original used it
    assert round_length(save_steps=0, budget=18750, num_rounds=10) == 1875
    assert round_length(save_steps=0.5, budget=11, num_rounds=10) == 2  # a fraction is no round length: ceil(1.1)
    assert round_length(save_steps=None, budget=3, num_rounds=10) == 1


def test_masked_optimizer_step_zeroes_pruned_grads_before_clipping_and_weights_after():
    torch.manual_seed(0)
    layer = nn.Linear(4, 3, bias=False)
    kept = torch.tensor([[True, False, True, True], [False, True, True, False], [True, True, False, True]])
    mask = Mask(OrderedDict(weight=kept))
    bound = mask.bind({"weight": layer.weight})
    bound.apply_to_weights()
    optimizer = torch.optim.AdamW(layer.parameters(), lr=0.1, weight_decay=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    seen = []
    for _ in range(3):
        layer(torch.randn(5, 4)).pow(2).sum().backward()
        masked_optimizer_step(optimizer, scheduler, bound, lambda: seen.append(layer.weight.grad[~kept].abs().sum()))
        assert layer.weight.grad is None and bool((layer.weight[~kept] == 0).all())
        assert bool((layer.weight[kept] != 0).all())
    assert [float(s) for s in seen] == [0.0, 0.0, 0.0]


def test_mask_is_a_read_only_mapping():
    mask = Mask(OrderedDict(b=torch.tensor([True, False]), a=torch.tensor([[False, False]])))
    assert list(mask) == ["b", "a"] and len(mask) == 2 and "a" in mask and mask.get("c") is None
    assert torch.equal(mask["b"], torch.tensor([True, False])) and mask.sparsity == 0.75
    assert mask == Mask(OrderedDict(b=torch.tensor([True, False]), a=torch.tensor([[False, False]])))
    assert mask != Mask(OrderedDict(b=torch.tensor([True, True]), a=torch.tensor([[False, False]])))
    with pytest.raises(TypeError):
        mask["b"] = torch.tensor([True, True])  # type: ignore[index]
    assert not hasattr(mask, "tensors")
