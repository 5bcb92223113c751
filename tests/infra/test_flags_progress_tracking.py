"""Honest flags (refused by name, --help), progress bars only on a terminal, TensorBoard scalars read back, and
torch_compile / gradient_checkpointing runs that match a plain run."""
from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from utils.infra.args import ExperimentTrainingArguments, IMPArguments, ModelArguments, parse_args
from utils.infra.errors import UserError
from utils.infra.flags import HONOURED, refused_fields
from utils.tasks.ner import NerDataArguments

REPO = Path(__file__).resolve().parents[2]
IMP_TYPES = (ModelArguments, NerDataArguments, IMPArguments, ExperimentTrainingArguments)
BASE = ["--model_name_or_path", "m", "--output_dir", "o"]
NER_DATA = ["--train_file", "data/ner/{lang}/train.jsonl", "--validation_file", "data/ner/{lang}/validation.jsonl"]


@pytest.mark.parametrize("flags, message", [
    (["--eval_strategy", "steps"],
     "--eval_strategy is not used by these scripts: use --evaluate_during_training / --logging_steps"),
    (["--label_smoothing_factor", "0.1"], "--label_smoothing_factor is not used by these scripts"),
    (["--push_to_hub"], "--push_to_hub is not used by these scripts"),
    (["--no_average_tokens_across_devices"], "--average_tokens_across_devices is not used by these scripts"),
    (["--train_sampling_strategy", "sequential"], "only random and group_by_length"),
    (["--warmup_ratio", "0.1", "--warmup_steps", "3"], "not combined with --warmup_steps"),
    (["--report_to", "neptune"], "--report_to neptune is not supported here"),
])
def test_refused_flags_name_themselves(flags, message, tmp_path):
    with pytest.raises(UserError) as error:
        parse_args(IMP_TYPES, BASE + flags)
        if flags[0] == "--report_to":  # checked when the trainer builds its Accelerator
            from utils.infra.tracking import accelerator_tracking_kwargs
            accelerator_tracking_kwargs(parse_args(IMP_TYPES, BASE + flags)[3])
    assert message in str(error.value) and "\n" not in str(error.value)


def test_refused_flag_in_a_config_and_defaults_accepted(tmp_path):
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"model_name_or_path": "m", "output_dir": "o", "eval_steps": 50}))
    with pytest.raises(UserError, match="--eval_steps is not used"):
        parse_args(IMP_TYPES, [str(config)])
    # the default value given explicitly is no setting at all, and honoured flags pass through
    *_, training = parse_args(IMP_TYPES, BASE + ["--eval_strategy", "no", "--warmup_ratio", "0.25", "--data_seed", "3",
                                                 "--report_to", "none", "--run_name", "r", "--logging_dir", "L"])
    assert training.warmup_steps == 0.25 and training.get_warmup_steps(8) == 2
    assert training.data_seed == 3 and training.report_to == [] and training.logging_dir == "L"


@pytest.mark.parametrize("flags, trackers", [
    (["--report_to", "tensorboard", "wandb"], ["tensorboard", "wandb"]),  # the Hugging Face scripts' list form
    (["--report_to", "tensorboard,wandb"], ["tensorboard", "wandb"]),
    (["--report_to", "mlflow, tensorboard", "wandb", "mlflow"], ["mlflow", "tensorboard", "wandb"]),
    (["--report_to", "none"], []),
    (["--report_to", "tensorboard"], ["tensorboard"]),
    ([], ["tensorboard"]),  # the default, with tensorboard installed (requirements.txt)
])
def test_report_to_takes_words_and_comma_lists(flags, trackers, tmp_path):
    assert parse_args(IMP_TYPES, BASE + flags)[3].report_to == trackers
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"model_name_or_path": "m", "output_dir": "o", "report_to": ["tensorboard", "wandb"]}))
    assert parse_args(IMP_TYPES, [str(config)])[3].report_to == ["tensorboard", "wandb"]
    for alone in ("all", "none"):
        with pytest.raises(UserError, match=f"^--report_to {alone} stands alone, not with wandb$"):
            parse_args(IMP_TYPES, BASE + ["--report_to", alone, "wandb"])


def test_policy_covers_every_training_field():
    from dataclasses import fields
    from transformers import TrainingArguments

    names = {f.name for f in fields(TrainingArguments) if f.init}
    assert HONOURED <= names  # no typo in the honoured list
    assert refused_fields() == names - HONOURED
    assert {"eval_strategy", "deepspeed", "push_to_hub"} <= refused_fields()


def test_help_lists_own_options_first_and_hides_refused_ones(capsys):
    with pytest.raises(SystemExit):
        parse_args(IMP_TYPES, ["--help"])
    text = capsys.readouterr().out
    headings = [text.index(f"\n{h}") for h in ("model:", "data:", "pruning (IMP):", "training (")]
    assert headings == sorted(headings)
    assert "--gradient_checkpointing" in text and "--report_to" in text and "--prune_rate" in text
    assert "--eval_strategy" not in text and "--deepspeed" not in text and "--push_to_hub" not in text
    assert len(text.splitlines()) < 320  # was 712 with every TrainingArguments flag


# -- progress bars ---------------------------------------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _imp(tiny_models, out, *extra):
    import LT_ner

    return LT_ner.main([
        "--model_name_or_path", str(tiny_models / "mbert-tiny"), "--output_dir", str(out), "--data_language", "en",
        *NER_DATA, "--do_train", "--do_eval", "--max_train_samples", "64", "--max_eval_samples", "32",
        "--per_device_train_batch_size", "8", "--learning_rate", "3e-3", "--save_steps", "10", "--logging_steps", "5",
        "--prune_rate", "0.1", "--target_sparsity", "0.1", "--seed", "1", "--use_cpu", *extra,
    ])


def test_bars_only_on_a_terminal(tiny_models, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    _imp(tiny_models, tmp_path / "plain")  # pytest's stderr is no terminal: no bar, the step lines stay
    captured = capsys.readouterr()
    assert "step/s" not in captured.err and "it/s" not in captured.err
    assert "[round 0 | sparsity 0.0%] step 5/10 loss" in captured.out
    assert "round 1/2 done (0m0" in captured.out and "round 2/2 done; this run's 2 round(s) took" in captured.out

    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    _imp(tiny_models, tmp_path / "tty")
    drawn = terminal.getvalue()
    assert "[round 0 | sparsity 0.0%]" in drawn and "10/10" in drawn and "eval en" in drawn and "step" in drawn

    capsys.readouterr()
    quiet = _Terminal()
    monkeypatch.setattr(sys, "stderr", quiet)
    _imp(tiny_models, tmp_path / "quiet", "--disable_tqdm", "true")
    assert "10/10" not in quiet.getvalue()
    assert "step 10/10 loss" in capsys.readouterr().out


# -- tracking ----------------------------------------------------------------------------------------------------


def test_tensorboard_scalars_read_back(tiny_models, tmp_path, monkeypatch):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.chdir(REPO)
    results = _imp(tiny_models, tmp_path / "run", "--report_to", "tensorboard", "--logging_dir", str(tmp_path / "tb"),
                   "--run_name", "ner-en")
    runs = list((tmp_path / "tb" / "ner-en").glob("events.out.tfevents.*"))
    assert len(runs) == 1
    events = EventAccumulator(str(runs[0].parent))
    events.Reload()

    def scalars(tag):
        return [(e.step, e.value) for e in events.Scalars(tag)]

    rounds = results["rounds"]
    assert [s for s, _ in scalars("train/loss")] == [5, 10, 15, 20]  # steps over the whole run
    losses = [v for _, v in scalars("train/loss")]
    for k, entry in enumerate(rounds):  # a round's loss is the mean of its two logged windows
        assert (losses[2 * k] + losses[2 * k + 1]) / 2 == pytest.approx(entry["train_loss"], rel=1e-5)
    assert [s for s, _ in scalars("train/learning_rate")] == [5, 10, 15, 20]
    assert scalars("eval/en/f1")[-1] == (20, pytest.approx(rounds[1]["eval"]["en"]["f1"]))
    assert scalars("eval/en/loss")[0] == (5, pytest.approx(rounds[0]["history"][0]["eval"]["en"]["loss"]))
    assert scalars("eval/en/loss")[1] == (10, pytest.approx(rounds[0]["eval"]["en"]["loss"]))
    round_ends = [10 * (k + 1) for k in range(len(rounds))]  # logged at the run's step (wandb needs it monotonic)
    assert scalars("imp/round") == list(zip(round_ends, range(len(rounds))))
    assert scalars("imp/sparsity") == [(s, pytest.approx(r["sparsity"], rel=1e-6)) for s, r in zip(round_ends, rounds)]
    assert scalars("imp/f1") == [(s, pytest.approx(r["headline"])) for s, r in zip(round_ends, rounds)]
    assert "imp/mask_checksum/text_summary" in events.Tags()["tensors"]
    hparams = list((tmp_path / "tb" / "ner-en").glob("*/hparams.yml"))
    assert len(hparams) == 1 and "learning_rate: 0.003" in hparams[0].read_text()


def test_tensorboard_by_default_none_on_request_and_logging_first_step(tiny_models, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    _imp(tiny_models, tmp_path / "default")
    assert list((tmp_path / "default" / "runs").rglob("events.out.tfevents.*"))  # tensorboard is installed here
    capsys.readouterr()
    _imp(tiny_models, tmp_path / "run", "--logging_first_step", "--report_to", "none")
    assert not (tmp_path / "run" / "runs").exists()
    out = capsys.readouterr().out
    assert "[round 1 | sparsity 10.0%] step 1/10 loss" in out and "step 1 eval" not in out


# -- speed and memory flags ---------------------------------------------------------------------------------------


def test_compiled_and_checkpointed_runs_match_a_plain_run(tiny_models, tmp_path, monkeypatch):
    """torch_compile with the aot_eager backend (inductor would spend minutes compiling C++ on 2 CPU cores)."""
    monkeypatch.chdir(REPO)
    plain = _imp(tiny_models, tmp_path / "plain", "--pad_to_max_length", "--max_seq_length", "32")
    import torch._dynamo

    torch._dynamo.reset()
    compiled = _imp(tiny_models, tmp_path / "compiled", "--torch_compile", "--torch_compile_backend", "aot_eager",
                    "--pad_to_max_length", "--max_seq_length", "32")  # one shape: compiled once, not per batch
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1  # the model really was compiled
    checkpointed = _imp(tiny_models, tmp_path / "checkpointed", "--activation_checkpointing", "--pad_to_max_length",
                        "--max_seq_length", "32")
    old_name = _imp(tiny_models, tmp_path / "old_name", "--gradient_checkpointing", "--max_train_samples", "8")
    assert old_name["config"]["activation_checkpointing"]
    for run in (compiled, checkpointed):
        assert [r["sparsity"] for r in run["rounds"]] == [0.0, 6554 / 65536]  # round(10% of the prunable weights)
        for mine, reference in zip(run["rounds"], plain["rounds"]):
            assert mine["train_loss"] == pytest.approx(reference["train_loss"], rel=1e-3)
            assert mine["eval"]["en"]["loss"] == pytest.approx(reference["eval"]["en"]["loss"], rel=1e-3)
            assert mine["headline"] == pytest.approx(reference["headline"], abs=0.02)
    assert compiled["config"]["torch_compile"] and checkpointed["config"]["activation_checkpointing"]
    same_order = _imp(tiny_models, tmp_path / "data_seed_1", "--data_seed", "1", "--pad_to_max_length",
                      "--max_seq_length", "32")  # --seed is 1 too: the same batches, the same run
    other_order = _imp(tiny_models, tmp_path / "data_seed_2", "--data_seed", "2", "--pad_to_max_length",
                       "--max_seq_length", "32")
    assert [r["train_loss"] for r in same_order["rounds"]] == [r["train_loss"] for r in plain["rounds"]]
    assert other_order["rounds"][0]["train_loss"] != plain["rounds"][0]["train_loss"]


# -- figures -----------------------------------------------------------------------------------------------------


def test_colour_scales_span_the_real_range():
    import numpy as np

    from utils.analysis.plots import color_limits

    assert color_limits(np.array([0.0, 0.0]), center=0.0) == (-0.05, 0.05)  # all differences 0: no 1e-12 scale
    assert color_limits(np.array([0.004, -0.002]), center=0.0) == (-0.004, 0.004)
    assert color_limits(np.array([0.99])) == pytest.approx((0.94, 1.0))  # an F1 bar never runs past 1.0
    assert color_limits(np.array([0.5, 0.99])) == (0.5, 0.99)
    assert color_limits(np.array([150.0])) == (142.5, 157.5)  # perplexity: not a fraction, not clipped


def test_retrieval_figure_draws_the_chance_line(tmp_path, monkeypatch):
    from matplotlib import pyplot as plt

    from utils.analysis import plots
    from utils.analysis.retrieval import plot_retrieval

    figures = []
    save = plots._save
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig) or save(fig, path))
    result = {"src_lang": "en", "tgt_lang": "fr", "pairs": 200, "pooling": "mean", "src_mask": None,
              "tgt_mask": None, "layers": [{"layer": 0, "accuracy": 0.2, "accuracy_reverse": 0.1}]}
    assert plot_retrieval(result, tmp_path / "r.png").is_file()
    ax = figures[0].axes[0]
    chance = [line for line in ax.get_lines() if line.get_label().startswith("random (1/200")]
    assert len(chance) == 1 and chance[0].get_ydata()[0] == pytest.approx(1 / 200)
    assert ax.get_ylabel().startswith("accuracy") and ax.get_xlabel().startswith("layer")
    plt.close("all")


def test_eta_line_multiplies_rounds_left_by_the_measured_round_time():
    from utils.infra.tracking import eta_line

    assert eta_line(3, 10, 3, 195.0) == "round 3/10 done (1m05s per round); about 7m35s left"
    assert eta_line(6, 10, 2, 7200.0) == "round 6/10 done (1h00m per round); about 4h00m left"  # resumed at round 4
    assert eta_line(10, 10, 10, 650.0) == "round 10/10 done; this run's 10 round(s) took 10m50s"


def test_report_to_all_and_missing_trackers(monkeypatch):
    from transformers.integrations import get_available_reporting_integrations

    from utils.infra import tracking

    installed = get_available_reporting_integrations()
    assert tracking.tracker_names(installed) == [n for n in installed if n in tracking.SUPPORTED]  # --report_to all
    assert tracking.tracker_names([]) == []
    monkeypatch.setattr(tracking, "get_available_trackers", lambda: [])
    with pytest.raises(UserError, match="--report_to wandb: the wandb package is not installed"):
        tracking.tracker_names(["wandb"])


def test_fine_tuning_reports_to_tensorboard(tiny_models, tmp_path, run_script):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    argv = ["--pruning_type", "random", "--sparsity", "50", "--output_dir", str(tmp_path / "ft"),
            "--model_name_or_path", str(tiny_models / "mbert-tiny"), "--data_language", "fr", *NER_DATA, "--do_train",
            "--do_eval", "--max_steps", "4", "--logging_steps", "2", "--max_train_samples", "32", "--max_eval_samples",
            "16", "--report_to", "tensorboard", "--seed", "5", "--use_cpu"]
    results = run_script("ner_fine_tune.py", *argv)
    runs = list((tmp_path / "ft" / "runs").glob("*/events.out.tfevents.*"))
    assert len(runs) == 1 and runs[0].parent.name == f"{tmp_path.name}-ft"  # named after the output directory
    events = EventAccumulator(str(runs[0].parent))
    events.Reload()
    assert [e.step for e in events.Scalars("train/loss")] == [2, 4]
    f1 = events.Scalars("eval/fr/f1")
    assert [(e.step, e.value) for e in f1][-1] == (4, pytest.approx(results["eval"]["fr"]["f1"]))
    for again in ([], ["--overwrite_output_dir"]):  # a complete run is kept: nothing trains, no second event file
        assert run_script("ner_fine_tune.py", *argv, *again)["eval"] == results["eval"]
    assert list((tmp_path / "ft" / "runs").glob("*/events.out.tfevents.*")) == runs
