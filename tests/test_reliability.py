"""Nothing computed is lost: resuming a killed IMP run, no clobbering, and one-line errors for bad input."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import torch

from tests.conftest import REPO
from utils.core.masks import Mask

NER_DATA = ["--train_file", "data/ner/{lang}/train.jsonl", "--validation_file", "data/ner/{lang}/validation.jsonl"]


def imp_argv(models, out, *extra):
    return ["--model_name_or_path", str(models / "mbert-tiny"), "--output_dir", str(out), "--data_language", "en",
            *NER_DATA, "--do_train", "--do_eval", "--max_train_samples", "48", "--max_eval_samples", "16",
            "--per_device_train_batch_size", "8", "--learning_rate", "1e-3", "--save_steps", "12",
            "--logging_steps", "1", "--prune_rate", "0.25", "--target_sparsity", "0.75", "--seed", "3",
            "--use_cpu", "--dataloader_num_workers", "0", *extra]


def masks_of(out):
    return {p.name: Mask.load(p) for p in sorted((out / "masks").glob("*.pt"))}


def test_killed_run_resumes_to_the_same_masks(tiny_models, tmp_path):
    reference = tmp_path / "reference"
    killed = tmp_path / "killed"
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    subprocess.run([sys.executable, "LT_ner.py", *imp_argv(tiny_models, reference)], cwd=REPO, env=env, check=True,
                   capture_output=True)
    process = subprocess.Popen([sys.executable, "LT_ner.py", *imp_argv(tiny_models, killed)], cwd=REPO, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in process.stdout:  # SIGKILL in the middle of the second round
        if line.startswith("[round 1") and "step 5/" in line:
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    state = json.loads((killed / "imp_results.json").read_text())
    assert len(state["rounds"]) == 1 and not state["complete"]

    resumed = subprocess.run([sys.executable, "LT_ner.py", *imp_argv(tiny_models, killed, "--resume")], cwd=REPO,
                             env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "1 completed round(s) kept" in resumed.stdout
    final = json.loads((killed / "imp_results.json").read_text())
    assert final["complete"] and [r["round"] for r in final["rounds"]] == [0, 1, 2, 3]
    assert final["rounds"][0] == state["rounds"][0]  # the completed round was not recomputed
    ours, theirs = masks_of(killed), masks_of(reference)
    assert list(ours) == ["sparsity_25.pt", "sparsity_50.pt", "sparsity_75.pt"] == list(theirs)
    for name in ours:
        assert ours[name].checksum() == theirs[name].checksum(), name
    assert not (killed / "rewind_weights.pt").exists()


def test_resume_with_other_settings_is_refused(tiny_models, tmp_path, run_script, capsys):
    out = tmp_path / "run"
    run_script("LT_ner.py", *imp_argv(tiny_models, out, "--target_sparsity", "0.25"))
    results = json.loads((out / "imp_results.json").read_text())
    results["complete"] = False
    (out / "imp_results.json").write_text(json.dumps(results))
    with pytest.raises(SystemExit) as exit_info:
        run_script("LT_ner.py", *imp_argv(tiny_models, out, "--target_sparsity", "0.25", "--seed", "4", "--resume"))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "other settings" in err and "seed: 3 -> 4" in err


def test_results_are_not_clobbered(tiny_models, tmp_path, run_script, capsys):
    out = tmp_path / "run"
    run_script("LT_ner.py", *imp_argv(tiny_models, out, "--target_sparsity", "0.25"))
    before = (out / "masks" / "sparsity_25.pt").read_bytes()
    for flag in ("--overwrite_output_dir", "--discard_unfinished_run"):  # a complete run stays, whatever the flags
        with pytest.raises(SystemExit):
            run_script("LT_ner.py", *imp_argv(tiny_models, out, "--target_sparsity", "0.25", "--seed", "9", flag))
        assert "complete IMP run with other settings (seed: 3 -> 9)" in capsys.readouterr().err
    assert (out / "masks" / "sparsity_25.pt").read_bytes() == before
    assert (out / "imp_results.json").exists()


def test_diverging_loss_stops_and_keeps_completed_rounds(tiny_models, tmp_path, run_script, capsys, monkeypatch):
    from utils.core import training

    original = training.MaskedTrainer.train
    calls = []

    def poisoned(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            with torch.no_grad():
                next(iter(self.weights.values())).fill_(float("inf"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(training.MaskedTrainer, "train", poisoned)
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_info:
        run_script("LT_ner.py", *imp_argv(tiny_models, out))
    assert exit_info.value.code == 2
    assert "loss became nan" in capsys.readouterr().err
    state = json.loads((out / "imp_results.json").read_text())
    assert len(state["rounds"]) == 1 and (out / "masks" / "sparsity_25.pt").exists()


def _error_of(run_script, capsys, *argv) -> str:
    with pytest.raises(SystemExit) as exit_info:
        run_script(*argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_bad_input_gives_one_line_errors(tiny_models, tmp_path, run_script, capsys):
    model = str(tiny_models / "mbert-tiny")
    base = ["--model_name_or_path", model, "--do_train", "--do_eval", *NER_DATA, "--max_train_samples", "16"]
    out = lambda name: ["--output_dir", str(tmp_path / name)]  # noqa: E731

    assert "data file not found" in _error_of(run_script, capsys, "LT_ner.py", *base, *out("a"), "--data_language", "xx")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert "empty" in _error_of(run_script, capsys, "LT_ner.py", *base, *out("b"), "--train_file", str(empty))
    no_tags = tmp_path / "no_tags.jsonl"
    no_tags.write_text(json.dumps({"tokens": ["a", "b"]}) + "\n")
    assert "lacks field" in _error_of(run_script, capsys, "LT_ner.py", *base, *out("c"), "--train_file", str(no_tags))
    bad_tags = tmp_path / "bad_tags.jsonl"
    bad_tags.write_text(json.dumps({"tokens": ["a", "b"], "ner_tags": [0, 9]}) + "\n")
    assert "out of range" in _error_of(run_script, capsys, "LT_ner.py", *base, *out("d"), "--train_file", str(bad_tags))
    assert "prune_rate" in _error_of(run_script, capsys, "LT_ner.py", *base, *out("e"), "--prune_rate", "1.5")
    assert "target_sparsity" in _error_of(run_script, capsys, "LT_ner.py", *base, *out("f"), "--target_sparsity", "1")
    assert "max_seq_length" in _error_of(run_script, capsys, "LT_ner.py", *base, *out("g"), "--max_seq_length", "4096")
    assert "not found" in _error_of(run_script, capsys, "LT_ner.py", *base[2:], *out("h"),
                                            "--model_name_or_path", str(tmp_path / "nope"))

    # fine-tuning: masks that do not fit, corrupt files, files that are not masks
    ft = ["--model_name_or_path", model, "--do_train", "--do_eval", *NER_DATA, "--max_steps", "1"]
    torch.save({"encoder.block.0.layer.0.SelfAttention.q.weight_mask": torch.ones(4, 4)}, tmp_path / "t5.pt")
    assert "does not fit" in _error_of(run_script, capsys, "ner_fine_tune.py", *ft, *out("i"),
                                       "--mask_dir", str(tmp_path / "t5.pt"))
    (tmp_path / "corrupt.pt").write_bytes(b"PK\x03\x04 not really a zip")
    assert "corrupt" in _error_of(run_script, capsys, "ner_fine_tune.py", *ft, *out("j"),
                                  "--mask_dir", str(tmp_path / "corrupt.pt"))
    assert "needs --sparsity" in _error_of(run_script, capsys, "ner_fine_tune.py", *ft, *out("k"),
                                           "--pruning_type", "random")
    assert "unknown language" in _error_of(run_script, capsys, "ner_fine_tune.py", *ft[:2], *out("l"), "--do_train",
                                           "--pruning_type", "random", "--sparsity", "50",
                                           "--dataset_name", "wikiann", "--data_language", "xx-not-a-language")


def test_run_killed_in_its_first_round_restarts_by_itself(tiny_models, tmp_path, run_script, capsys, monkeypatch):
    from utils.core import training

    original = training.MaskedTrainer.train

    def killed(self, *args, **kwargs):
        raise KeyboardInterrupt  # stands in for a kill during round 0

    monkeypatch.setattr(training.MaskedTrainer, "train", killed)
    out = tmp_path / "run"
    argv = imp_argv(tiny_models, out, "--target_sparsity", "0.25")
    with pytest.raises(SystemExit) as exit_info:  # Ctrl-C: one line, exit status 130
        run_script("LT_ner.py", *argv)
    assert exit_info.value.code == 130
    assert json.loads((out / "imp_results.json").read_text())["rounds"] == []
    monkeypatch.setattr(training.MaskedTrainer, "train", original)
    results = run_script("LT_ner.py", *argv)  # the same command, no flags: it picks the run up
    assert "no round was completed" in capsys.readouterr().out
    assert results["complete"] and len(results["rounds"]) == 2


def fingerprint_of(phase: str, *flags: str) -> dict:
    """The fingerprint the driver of `phase` records, for LT_ner.py / ner_fine_tune.py with these flags."""
    from utils.core.imp import mask_fingerprint
    from utils.infra.args import ExperimentTrainingArguments, IMPArguments, MaskArguments, ModelArguments, parse_args
    from utils.infra.outputs import run_fingerprint
    from utils.tasks.ner import NerDataArguments

    argv = ["--model_name_or_path", "m", "--output_dir", "out", "--data_language", "en", *NER_DATA, "--seed", "3"]
    if phase == "imp":
        return mask_fingerprint(*parse_args((ModelArguments, NerDataArguments, IMPArguments,
                                             ExperimentTrainingArguments), argv + list(flags)))
    args = parse_args((ModelArguments, NerDataArguments, MaskArguments, ExperimentTrainingArguments),
                      argv + ["--pruning_type", "random", "--sparsity", "50", *flags])
    return run_fingerprint(*args)


@pytest.mark.parametrize("phase", ["imp", "finetune"])
@pytest.mark.parametrize("flags, differences", [
    (["--output_dir", "elsewhere", "--logging_steps", "7", "--logging_first_step", "true", "--log_level", "error",
      "--report_to", "none", "--run_name", "x", "--dataloader_num_workers", "2", "--overwrite_output_dir", "true",
      "--disable_tqdm", "true", "--preprocessing_num_workers", "2", "--model_type", "mbert"], []),
    (["--learning_rate", "1e-3"], ["learning_rate: 5e-05 -> 0.001"]),
    (["--seed", "4"], ["seed: 3 -> 4"]),
    (["--warmup_ratio", "0.1"], ["warmup_ratio: 0.0 -> 0.1", "warmup_steps: 0 -> 0.1"]),  # v5 copies the ratio
    (["--train_sampling_strategy", "group_by_length"],
     ["group_by_length: False -> True", "train_sampling_strategy: 'random' -> 'group_by_length'"]),
])
def test_one_rule_says_whether_a_run_is_the_same_run(phase, flags, differences):
    """IMP and fine-tuning share one rule: where a run is kept, how it is logged and how many workers prepare its
    data do not make it another run; what it computes (learning rate, seed, schedule, batches) does."""
    from utils.infra.outputs import config_differences

    assert config_differences(fingerprint_of(phase), fingerprint_of(phase, *flags)) == differences


def test_imp_alone_lets_evaluation_settings_change():
    """Evaluation does not change which masks IMP finds, so a resumed IMP run may change it; a fine-tuning run's
    results are its evaluation, so there it makes another run."""
    from utils.infra.outputs import config_differences

    flags = ["--eval_languages", "fr", "--per_device_eval_batch_size", "3"]
    assert config_differences(fingerprint_of("imp"), fingerprint_of("imp", *flags)) == []
    assert config_differences(fingerprint_of("finetune"), fingerprint_of("finetune", *flags)) == [
        "eval_languages: None -> 'fr'", "per_device_eval_batch_size: 8 -> 3"]


def test_finished_fine_tuning_rerun_with_other_logging_is_the_same_run(tiny_models, tmp_path, run_script, capsys):
    out = tmp_path / "ft"
    argv = ["--model_name_or_path", str(tiny_models / "mbert-tiny"), "--output_dir", str(out), "--data_language",
            "en", *NER_DATA, "--pruning_type", "random", "--sparsity", "50", "--do_train", "--max_steps", "2",
            "--max_train_samples", "16", "--max_eval_samples", "8", "--use_cpu", "--seed", "3"]
    run_script("ner_fine_tune.py", *argv)
    written = (out / "finetune_results.json").read_bytes()
    capsys.readouterr()
    run_script("ner_fine_tune.py", *argv, "--logging_steps", "1", "--log_level", "warning")
    assert "already holds this fine-tuning run's results; nothing to do" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        run_script("ner_fine_tune.py", *argv, "--learning_rate", "1e-3")
    assert "complete fine-tuning run with other settings (learning_rate: 5e-05 -> 0.001)" in capsys.readouterr().err
    assert (out / "finetune_results.json").read_bytes() == written
