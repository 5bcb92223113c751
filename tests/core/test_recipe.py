"""The IMP recipe of the code behind the paper: the learning-rate schedule's span and what rewinding restores."""
from __future__ import annotations

import json

import pytest
import torch

from utils.core import training
from utils.infra.args import ExperimentTrainingArguments, IMPArguments, ModelArguments, parse_args
from utils.infra.errors import UserError
from utils.core.masks import read_mask_metadata
from utils.tasks.ner import NerDataArguments

NER_DATA = ["--train_file", "data/ner/{lang}/train.jsonl", "--validation_file", "data/ner/{lang}/validation.jsonl"]
PEAK, ROUND, BUDGET, WARMUP = 1e-3, 4, 20, 2


def three_rounds(models, out, *extra):
    """3 rounds (0%, 30%, 60%) of 4 steps each, the budget 20 steps (--max_steps) as the original's t_total."""
    return ["--model_name_or_path", str(models / "mbert-tiny"), "--output_dir", str(out), "--data_language", "en",
            *NER_DATA, "--do_train", "--max_train_samples", "32", "--per_device_train_batch_size", "8",
            "--learning_rate", str(PEAK), "--save_steps", str(ROUND), "--max_steps", str(BUDGET),
            "--prune_rate", "0.3", "--target_sparsity", "0.6", "--seed", "2", "--use_cpu", *extra]


def linear_with_warmup(step: int, total: int, warmup: int) -> float:
    """transformers' linear schedule, written out: the rate used by optimizer step `step` (0-based)."""
    if step < warmup:
        return PEAK * step / warmup
    return PEAK * max(0.0, (total - step) / (total - warmup))


@pytest.fixture
def rates_per_step(monkeypatch):
    """The learning rate every optimizer step really used, recorded by a step pre-hook."""
    rates: list[float] = []
    build = training.build_optimizer

    def recording_build(model, args):
        optimizer = build(model, args)
        optimizer.register_step_pre_hook(lambda opt, *_: rates.append(opt.param_groups[0]["lr"]))
        return optimizer

    monkeypatch.setattr(training, "build_optimizer", recording_build)
    return rates


def test_run_span_restarts_one_long_schedule_every_round(tiny_models, tmp_path, run_script, rates_per_step):
    results = run_script("LT_ner.py", *three_rounds(tiny_models, tmp_path / "run", "--warmup_steps", str(WARMUP)))
    expected = [linear_with_warmup(i, BUDGET, WARMUP) for i in range(ROUND)] * 3
    assert rates_per_step == pytest.approx(expected, rel=1e-9, abs=1e-15)
    assert rates_per_step[ROUND - 1] == pytest.approx(PEAK * (BUDGET - 3) / (BUDGET - WARMUP))  # far from 0
    assert results["lr_schedule_span"] == "run"
    metadata = read_mask_metadata(tmp_path / "run" / "masks" / "sparsity_30.pt")
    assert metadata["lr_schedule_span"] == "run" and metadata["rewind_scope"] == "body"


def test_round_span_decays_to_zero_within_each_round(tiny_models, tmp_path, run_script, rates_per_step):
    run_script("LT_ner.py", *three_rounds(tiny_models, tmp_path / "round", "--lr_schedule_span", "round"))
    expected = [PEAK * (ROUND - i) / ROUND for i in range(ROUND)] * 3  # 1, 0.75, 0.5, 0.25 of the peak; 0 next
    assert rates_per_step == pytest.approx(expected, rel=1e-9)


def test_run_span_is_never_shorter_than_a_round(tiny_models, tmp_path, run_script, rates_per_step):
    run_script("LT_ner.py", *three_rounds(tiny_models, tmp_path / "short", "--max_steps", "2"))
    assert min(rates_per_step) > 0 and rates_per_step[:ROUND] == pytest.approx([PEAK * (4 - i) / 4 for i in range(4)])


@pytest.fixture
def round_states(monkeypatch):
    """The model's state when each round starts training (after rewinding) and when it ends."""
    starts, ends = [], []
    train = training.MaskedTrainer.train

    def spy(self, *args, **kwargs):
        starts.append(self.snapshot())
        stats = train(self, *args, **kwargs)
        ends.append(self.snapshot())
        return stats

    monkeypatch.setattr(training.MaskedTrainer, "train", spy)
    return starts, ends


HEAD = ("classifier.weight", "classifier.bias")
BODY = ("bert.embeddings.word_embeddings.weight", "bert.encoder.layer.0.output.LayerNorm.weight")
PRUNED = "bert.encoder.layer.1.intermediate.dense.weight"


@pytest.mark.parametrize("scope", ["body", "all"])
def test_rewinding_restores_the_body_and_the_head_only_with_all(tiny_models, tmp_path, run_script, round_states, scope):
    starts, ends = round_states
    results = run_script("LT_ner.py", *three_rounds(tiny_models, tmp_path / scope, "--rewind_scope", scope))
    assert results["rewind_scope"] == scope and len(starts) == 3
    for k in (1, 2):
        for name in BODY:
            assert torch.equal(starts[k][name], starts[0][name]), name
            assert not torch.equal(ends[k - 1][name], starts[0][name]), f"{name} did not train"
        kept = starts[k][PRUNED] != 0
        assert torch.equal(starts[k][PRUNED][kept], starts[0][PRUNED][kept])
        assert (~kept).any()  # rewound under the round's mask
        for name in HEAD:
            carried_from = ends[k - 1] if scope == "body" else starts[0]
            assert torch.equal(starts[k][name], carried_from[name]), name
            assert not torch.equal(ends[k - 1][name], starts[0][name]), f"{name} did not train"
    out = tmp_path / scope
    assert not list(out.glob("carried_weights_round_*.pt")) and not (out / "rewind_weights.pt").exists()


def test_resume_refuses_another_span_or_scope(tiny_models, tmp_path, run_script, capsys):
    out = tmp_path / "resume"
    run_script("LT_ner.py", *three_rounds(tiny_models, out, "--lr_schedule_span", "round"))
    state = json.loads((out / "imp_results.json").read_text())
    state["complete"], state["rounds"] = False, state["rounds"][:1]  # as a run killed in its second round leaves
    (out / "imp_results.json").write_text(json.dumps(state))
    for change, key in ((["--resume"], "lr_schedule_span"),
                        (["--resume", "--lr_schedule_span", "round", "--rewind_scope", "all"], "rewind_scope")):
        with pytest.raises(SystemExit) as stop:
            run_script("LT_ner.py", *three_rounds(tiny_models, out, *change))
        assert stop.value.code == 2
        error = capsys.readouterr().err.strip()
        assert "cannot resume" in error and key in error
    assert json.loads((out / "imp_results.json").read_text()) == state  # nothing was changed


@pytest.mark.parametrize("flag, value", [("--lr_schedule_span", "epoch"), ("--rewind_scope", "head")])
def test_unknown_values_name_the_allowed_ones(flag, value):
    with pytest.raises(UserError, match=f"{flag}.* invalid choice: '{value}' \\(choose from "):
        parse_args((ModelArguments, NerDataArguments, IMPArguments, ExperimentTrainingArguments),
                   ["--model_name_or_path", "m", "--output_dir", "o", flag, value])


def test_defaults_follow_the_original():
    *_, imp, _ = parse_args((ModelArguments, NerDataArguments, IMPArguments, ExperimentTrainingArguments),
                            ["--model_name_or_path", "m", "--output_dir", "o"])
    assert (imp.lr_schedule_span, imp.rewind_scope, imp.prune_rate, imp.prune_schedule) == ("run", "body", 0.1, "linear")
