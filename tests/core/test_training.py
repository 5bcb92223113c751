"""Training under a mask: pruned weights stay exactly zero, gradients are masked before clipping, rewinding
restores every parameter, and each round starts with a fresh optimizer."""
from __future__ import annotations

import pytest
import torch

from utils.infra.args import ExperimentTrainingArguments
from utils.core.pruning import magnitude_prune, random_prune
from utils.core.masks import Mask
from utils.core.training import MaskedTrainer, TaskSetup, TrainingDiverged


def _examples(n=24, length=10, vocab=120, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        {"input_ids": torch.randint(5, vocab, (length,), generator=g), "labels": torch.randint(0, 7, (length,), generator=g)}
        for _ in range(n)
    ]


def _collate(rows):
    return {k: torch.stack([r[k] for r in rows]) for k in rows[0]}


def _evaluate(model, loader, accelerator):
    losses = [model(**batch).loss.item() for batch in loader]
    return {"loss": sum(losses) / len(losses)}


def _trainer(model, tmp_path, **overrides):
    values = dict(output_dir=str(tmp_path), per_device_train_batch_size=4, per_device_eval_batch_size=8,
                  learning_rate=1e-2, logging_steps=1000, do_train=True, do_eval=True, use_cpu=True,
                  optim="adamw_torch", weight_decay=0.1, max_grad_norm=1.0)
    values.update(overrides)
    setup = TaskSetup(task="toy", model=model, tokenizer=None, train_dataset=_examples(), eval_datasets={"en": _examples(8, seed=1)},
                      collate_fn=_collate, evaluate=_evaluate, metric="loss", greater_is_better=False,
                      train_languages=["en"])
    return MaskedTrainer(setup, ExperimentTrainingArguments(**values))


def test_pruned_weights_stay_exactly_zero_through_training(bert_tagger, tmp_path):
    trainer = _trainer(bert_tagger, tmp_path)
    mask = random_prune(trainer.weights, 0.6, seed=0)
    trainer.set_mask(mask)
    before = {n: w.detach().clone() for n, w in trainer.weights.items()}
    trainer.train(num_steps=6, seed=0)
    for name, weight in trainer.weights.items():
        assert torch.all(weight[~mask[name]] == 0), name
        assert not torch.equal(weight, before[name]), f"{name} did not train"


def test_gradients_are_masked_before_clipping(bert_tagger, tmp_path, monkeypatch):
    trainer = _trainer(bert_tagger, tmp_path)
    mask = random_prune(trainer.weights, 0.5, seed=0)
    trainer.set_mask(mask)
    seen = []
    original = trainer.accelerator.clip_grad_norm_

    def spy(parameters, max_norm):
        for name, weight in trainer.weights.items():
            seen.append(bool(torch.all(weight.grad[~mask[name]] == 0)))
        return original(parameters, max_norm)

    monkeypatch.setattr(trainer.accelerator, "clip_grad_norm_", spy)
    trainer.train(num_steps=2, seed=0)
    assert seen and all(seen)


def test_rewinding_restores_every_parameter_and_buffer(bert_tagger, tmp_path):
    trainer = _trainer(bert_tagger, tmp_path)
    snapshot = trainer.snapshot()
    trainer.train(num_steps=4, seed=0)
    changed = [k for k, v in trainer.unwrapped.state_dict().items() if not torch.equal(v, snapshot[k])]
    assert changed, "training changed nothing: the test would prove nothing"
    trainer.restore(snapshot)
    for key, value in trainer.unwrapped.state_dict().items():
        assert torch.equal(value, snapshot[key]), key
    # the snapshot is a real copy: training again does not change it
    copy = {k: v.clone() for k, v in snapshot.items()}
    trainer.train(num_steps=2, seed=0)
    assert all(torch.equal(snapshot[k], copy[k]) for k in snapshot)


def test_restore_under_a_mask_zeroes_the_pruned_weights(bert_tagger, tmp_path):
    trainer = _trainer(bert_tagger, tmp_path)
    snapshot = trainer.snapshot()
    mask = magnitude_prune(trainer.weights, Mask.ones_like(trainer.weights), 0.5)
    trainer.set_mask(mask)
    trainer.restore(snapshot)
    for name, weight in trainer.weights.items():
        kept = mask[name]
        assert torch.all(weight[~kept] == 0)
        assert torch.equal(weight[kept], snapshot[name][kept])


def test_each_round_gets_a_fresh_optimizer_and_schedule(bert_tagger, tmp_path):
    trainer = _trainer(bert_tagger, tmp_path)
    trainer.train(num_steps=3, seed=0)
    inner = trainer.optimizer.optimizer
    assert len(inner.state) > 0
    trainer.reset_optimizer(5)
    assert len(inner.state) == 0
    assert trainer.scheduler.get_last_lr()[0] == pytest.approx(1e-2)


def test_same_seed_same_training(bert_tagger, tmp_path):
    trainer = _trainer(bert_tagger, tmp_path)
    snapshot = trainer.snapshot()
    torch.manual_seed(0)
    trainer.train(num_steps=3, seed=7)
    first = {k: v.clone() for k, v in trainer.unwrapped.state_dict().items()}
    trainer.restore(snapshot)
    torch.manual_seed(0)
    trainer.train(num_steps=3, seed=7)
    assert all(torch.equal(v, first[k]) for k, v in trainer.unwrapped.state_dict().items())


def test_nan_loss_stops_training(bert_tagger, tmp_path):
    trainer = _trainer(bert_tagger, tmp_path, logging_steps=1)
    with torch.no_grad():
        next(iter(trainer.weights.values())).fill_(float("nan"))
    with pytest.raises(TrainingDiverged, match="nan"):
        trainer.train(num_steps=3, seed=0)


def test_evaluating_during_training_does_not_change_the_training(bert_tagger, tmp_path):
    from transformers import set_seed

    trainer = _trainer(bert_tagger, tmp_path, logging_steps=1000)
    snapshot = trainer.snapshot()
    set_seed(0)
    trainer.train(num_steps=4, seed=3)
    plain = {k: v.clone() for k, v in trainer.unwrapped.state_dict().items()}
    trainer.restore(snapshot)
    trainer.args.logging_steps = 1  # now evaluates after every step
    set_seed(0)
    result = trainer.train(num_steps=4, seed=3)
    assert len(result["history"]) == 3
    assert all(torch.equal(v, plain[k]) for k, v in trainer.unwrapped.state_dict().items())


def test_fp16_loss_scale_restarts_with_each_round(bert_tagger, tmp_path, monkeypatch):
    """A resumed round starts from the initial loss scale, so every round must (accelerate has no CPU scaler:
    give it one, as it does on a GPU under --fp16)."""
    from accelerate import Accelerator

    from utils.core import training

    class ScalingAccelerator(Accelerator):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)

    monkeypatch.setattr(training, "Accelerator", ScalingAccelerator)
    trainer = _trainer(bert_tagger, tmp_path)
    trainer.train(num_steps=2, seed=0)
    scaler = trainer.accelerator.scaler
    scaler.update(new_scale=8.0)  # as if overflows had backed it off during the round
    trainer.reset_optimizer(3)
    assert scaler.get_scale() == pytest.approx(1024.0)
