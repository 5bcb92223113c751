"""A study checks everything at planning time, in one line, before any run starts (utils/study/checks.py); its
summary and report cover the planned runs only, and follow the plan when it is cut down."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from utils.infra.results_schema import ImpResults, ImpRound, write_results
from utils.study.plan import load_study

REPO = Path(__file__).resolve().parents[2]
NER = {"imp_config": "configs/offline/LT_ner_en.json", "finetune_config": "configs/offline/ner_fine_tune_fr.json",
       "languages": ["en", "fr"]}


@pytest.fixture(autouse=True)
def in_repo(monkeypatch):
    monkeypatch.chdir(REPO)


def write_study(tmp_path: Path, **changes) -> Path:
    study = {"name": "t", "study_dir": str(tmp_path / "study"), "seeds": [1], "tasks": {"ner": dict(NER)},
             "transfer_sparsities": [50]}
    study.update(changes)
    path = tmp_path / "s.json"
    path.write_text(json.dumps(study))
    return path


def refused(path: Path, capsys, dry_run: bool = True) -> str:
    """Run the study (dry or not); it must stop with exit 2 and one line, having written nothing."""
    import study as study_script

    before = sorted(path.parent.rglob("*"))
    with pytest.raises(SystemExit) as exit_:
        study_script.main([str(path)] + (["--dry_run"] if dry_run else []))
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert exit_.value.code == 2 and len(err.splitlines()) == 1 and not captured.out, captured
    assert sorted(path.parent.rglob("*")) == before  # nothing written (no study folder either)
    return err


def task(**changes) -> dict:
    return {"ner": {**NER, **changes}}


@pytest.mark.parametrize("changes, message", [
    ({"seeds": [1, 2**32]},
     "run imp/ner/en/s4294967296 (seeds): --seed must be a whole number in [0, 2^32), got 4294967296"),
    ({"seeds": [-1]}, "run imp/ner/en/s-1 (seeds): --seed must be a whole number in [0, 2^32), got -1"),
    ({"overrides": {"learning_rate": "fast"}},
     "run imp/ner/en/s1 (overrides): argument --learning_rate/--learning-rate: invalid float value: 'fast'"),
    ({"tasks": task(finetune_overrides={"per_device_train_batch_size": 0})},
     "run transfer/ner/50/en_on_en/s1 (tasks.ner.finetune_overrides): --per_device_train_batch_size must be a "
     "whole number >= 1, got 0"),
    ({"tasks": task(imp_overrides={"prune_schedule": "cubic"})},
     "run imp/ner/en/s1: prune_schedule must be 'linear' or 'geometric', got 'cubic'"),
    ({"tasks": task(imp_overrides={"prune_rate": "lots"})},
     "run imp/ner/en/s1 (tasks.ner.imp_overrides): argument --prune_rate/--prune-rate: invalid float value: 'lots'"),
    ({"retrieval": {"pairs": ["en-fr"], "tsv": "data/parallel/{pair}.tsv", "max_sentences": 1}},
     "run retrieval/ner/50/en-fr/s1 (retrieval): --max_sentences must be a whole number >= 2"),
    ({"executor": {"poll_seconds": 0}}, "executor.poll_seconds must be a finite number > 0, got 0"),
    ({"executor": {"kind": "local", "workers": 0}}, "executor.workers must be a whole number >= 1, got 0"),
    ({"consensus": [{"task": "ner", "operation": "intersection", "languages": ["en", "en"]}]},
     "consensus[0].languages names en twice"),
    ({"consensus": [{"task": "ner", "operation": "majority", "targets": ["fr", "fr"]}]},
     "consensus[0].targets names fr twice"),
    ({"multilingual": [{"task": "ner", "languages": ["en", "fr", "en"]}]}, "multilingual[0].languages names en twice"),
    ({"tasks": task(languages=["en", "fr", "en"])}, "tasks.ner.languages names en twice"),
    ({"transfer_sparsities": [50, 50.0]}, "'transfer_sparsities' names 50 twice"),
    ({"study_dir": ""}, "'study_dir' is empty"),
    ({"name": "  "}, "'name' is empty"),
])
def test_planning_refuses_with_one_line(tmp_path, capsys, changes, message):
    err = refused(write_study(tmp_path, **changes), capsys)
    assert message in err, err


INPUT_CASES = [
    ({"tasks": task(languages=["en", "xx"])},
     "run imp/ner/xx/s1 (tasks.ner.languages): data file not found: data/ner/xx/train.jsonl (language 'xx')"),
    ({"tasks": task(eval_languages=["en", "yy"])},
     "run transfer/ner/50/en_on_en/s1 (tasks.ner.eval_languages): data file not found: "
     "data/ner/yy/validation.jsonl (language 'yy')"),
    ({"tasks": task(imp_overrides={"train_file": None, "validation_file": None}, languages=["en", "qqq"])},
     "run imp/ner/qqq/s1 (tasks.ner.languages): unknown language 'qqq' for unimelb-nlp/wikiann"),
    ({"model": "/nonexistent/models/mbert"},
     "run imp/ner/en/s1 (model): model not found: /nonexistent/models/mbert (no such folder)"),
    ({"tasks": task(model="configs/offline/LT_ner_en.json")},
     "run imp/ner/en/s1 (tasks.ner.model): model configs/offline/LT_ner_en.json is a file, not a model folder"),
    ({"retrieval": {"pairs": ["en-fr"], "tsv": "data/parallel/missing-{pair}.tsv"}},
     "run retrieval/ner/50/en-fr/s1 (retrieval): parallel file not found: data/parallel/missing-en-fr.tsv"),
]


@pytest.mark.parametrize("changes, message", INPUT_CASES)
def test_missing_inputs_refused_before_a_run(tmp_path, capsys, changes, message):
    """A run stops before anything is written; a dry run (an estimate before the data is downloaded) shows the
    plan and names the first missing input in its last line."""
    import study as study_script

    path = write_study(tmp_path, **changes)
    assert message in refused(path, capsys, dry_run=False)
    assert study_script.main([str(path), "--dry_run"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("not ready to run: ") and message in last, last
    assert not (tmp_path / "study").exists()


def test_study_dir_that_is_a_file_or_under_one(tmp_path, capsys):
    (tmp_path / "file").write_text("a user's file")
    err = refused(write_study(tmp_path, study_dir=str(tmp_path / "file")), capsys)
    assert f"study_dir {tmp_path / 'file'} is a file, not a folder" in err
    err = refused(write_study(tmp_path, study_dir=str(tmp_path / "file" / "sub" / "study")), capsys)
    assert f"study_dir {tmp_path / 'file/sub/study'} is under a file ({tmp_path / 'file'})" in err
    assert (tmp_path / "file").read_text() == "a user's file"


def test_study_dir_not_writable(tmp_path, capsys, monkeypatch):
    """As root every folder is writable, so the permission check is asked through os.access, as the code asks."""
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == locked else real_access(p, mode))
    err = refused(write_study(tmp_path, study_dir=str(locked / "study")), capsys)
    assert f"{locked} is not writable" in err


def test_hub_names_and_good_studies_pass(tmp_path, capsys):
    """A name that looks like a hub id is not checked offline; GPU-only settings pass on a CPU planner (a login
    node), and checking sets up no device."""
    import torch
    from accelerate.state import PartialState

    import study as study_script

    path = write_study(tmp_path, model="some-org/some-model", overrides={"bf16": True, "tf32": True},
                       consensus=[{"task": "ner", "operation": "intersection"}],
                       retrieval={"pairs": ["en-fr"], "tsv": "data/parallel/{pair}.tsv"})
    PartialState._reset_state()  # other tests' scripts may have set it up in this process
    assert study_script.main([str(path), "--dry_run"]) == 0
    assert "[run] retrieval/ner/50/en-fr/s1" in capsys.readouterr().out
    assert PartialState._shared_state == {} and not torch.cuda.is_initialized()
    assert not (tmp_path / "study").exists()


def test_checking_hundreds_of_runs_parses_each_shape_once(monkeypatch):
    """ner_transfer.json: 771 runs, a handful of parses (runs differ in output folder, seed, language, mask)."""
    from utils.study import checks

    study = load_study("configs/studies/ner_transfer.json")
    calls = []
    real = checks.parse_args
    monkeypatch.setattr(checks, "parse_args", lambda *a, **k: calls.append(a) or real(*a, **k))
    checks.check_study(study)
    training = sum(r.task_kind is not None for r in study.runs.values())
    analyses = len(study.runs) - training
    # IMP, transfer (lth), dense, random and oneshot at 50 and 80%, rand_init
    assert training == 756 and len(calls) - analyses == 8


def test_os_errors_are_one_line(tmp_path, capsys, monkeypatch):
    import study as study_script
    from utils.study import runner

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / "study" / "imp"))

    monkeypatch.setattr(runner, "decide", denied)
    with pytest.raises(SystemExit) as exit_:
        study_script.main([str(write_study(tmp_path)), "--dry_run"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip() == f"error: Permission denied: {tmp_path / 'study' / 'imp'}"


def test_dry_run_into_a_closed_pipe_ends_quietly():
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    process = subprocess.Popen([sys.executable, "study.py", "configs/studies/offline.json", "--dry_run"], cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    first = process.stdout.readline()
    process.stdout.close()  # `| head -1`
    err = process.stderr.read().decode()
    assert process.wait() == 0 and first.startswith(b"[") and err == "", err


# ---------------------------------------------------------------------------------------------------------------
# The summary and the report cover the plan
# ---------------------------------------------------------------------------------------------------------------


def fake_imp(run_dir: Path, language: str, seed: int, f1: tuple[float, float]) -> None:
    """A complete two-round IMP run's results (what the summary reads)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    rounds = [ImpRound(round=i, sparsity=s, headline=v) for i, (s, v) in enumerate(zip((0.0, 0.5), f1))]
    write_results(run_dir / "imp_results.json", ImpResults(
        task="ner", languages=[language], seed=seed, metric="f1", schedule=[0.0, 0.5], config={"seed": seed},
        rounds=rounds, complete=True))


def test_summary_and_report_read_only_planned_runs(tmp_path):
    import summarize_results
    from utils.study.execute import Outcome
    from utils.study.report import write_report

    study = load_study(str(write_study(tmp_path, transfer_sparsities=[], transfer="none")))
    root = study.study_dir
    fake_imp(root / "imp/ner/en/s1", "en", 1, (0.80, 0.78))
    fake_imp(root / "imp/ner/fr/s1", "fr", 1, (0.70, 0.69))
    fake_imp(root / "imp/ner/en/s7", "en", 7, (0.10, 0.05))  # an older experiment's run in the same folder
    fake_imp(root / "old/imp/ner/de/s1", "de", 1, (0.30, 0.20))
    summary = study.runs["summary"]
    assert summary.config["runs"] == [str(root / "imp/ner/en/s1"), str(root / "imp/ner/fr/s1")]
    config = tmp_path / "summary.json"
    config.write_text(json.dumps(summary.config))
    summarize_results.main([str(config), "--no_plots"])
    result = json.loads((root / "summary/results_summary.json").read_text())
    assert result["inputs"]["imp"] == [str(root / "imp/ner/en/s1/imp_results.json"),
                                       str(root / "imp/ner/fr/s1/imp_results.json")]
    (root / "tables").mkdir()
    (root / "tables/imp_tickets_old.csv").write_text("a table of a run no longer planned\n")
    sections = write_report(study, {rid: Outcome(rid, "ok") for rid in study.runs})
    tickets = next(t for s in sections for t in s["tables"] if t["name"] == "imp_tickets")
    assert [row[:4] for row in tickets["rows"]] == [["ner/en", "f1", 1, "0.8000"], ["ner/fr", "f1", 1, "0.7000"]]
    assert sorted(p.name for p in (root / "tables").iterdir()) == ["imp_curves.csv", "imp_tickets.csv"]


def test_cutting_the_seeds_reruns_the_summary_without_restart(tmp_path, capsys):
    """The planned run list is the summary's config: fewer seeds change it, so the summary (and the analyses
    over all seeds) run again; no --restart, no refusal; the remaining runs stay complete."""
    import study as study_script
    from utils.study.execute import prepare_run_dir
    from utils.study.state import Decision, decide

    path = write_study(tmp_path, seeds=[1, 2])
    study = load_study(str(path))
    for run in study.runs.values():
        prepare_run_dir(run, Decision("run", "new"), study.study_dir)
        if run.is_imp:
            fake_imp(run.run_dir, run.config["data_language"], run.config["seed"], (0.8, 0.7))
        else:
            for name in run.outputs:
                (run.run_dir / name).write_text("{}")
    assert {d.action for d in decide(study).values()} == {"skip"}
    path = write_study(tmp_path, seeds=[1])
    assert study_script.main([str(path), "--dry_run"]) == 0
    out = capsys.readouterr().out
    assert "[run] summary  (its inputs changed (runs))" in out
    assert "[skip] imp/ner/en/s1  (complete)" in out and "[skip] transfer/ner/50/fr_on_en/s1  (complete)" in out
    assert "[skip] similarity/ner/50/s1  (complete)" in out and "s2" not in out
    cut = load_study(str(path))
    assert [d.action for rid, d in decide(cut).items() if rid != "summary"] == ["skip"] * (len(cut.runs) - 1)
