"""Studies: the paper's study files derive the right runs; a small study runs end to end (local executor and
submitit's local executor), survives its runner being killed, and reports a failed run while finishing the rest."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from utils.infra.errors import UserError
from utils.study.plan import load_study
from utils.study.runner import command_line

REPO = Path(__file__).resolve().parents[2]
STUDIES = REPO / "configs" / "studies"


def kinds(study) -> dict[str, int]:
    counts: dict[str, int] = {}
    for run in study.runs.values():
        counts[run.kind] = counts.get(run.kind, 0) + 1
    return counts


@pytest.fixture
def in_repo(monkeypatch):
    monkeypatch.chdir(REPO)


@pytest.mark.parametrize("name, expected", [
    ("ner_transfer", {"imp": 27, "transfer": 540, "consensus": 6, "baseline": 189, "similarity": 8, "summary": 1}),
    ("xnli_transfer", {"imp": 30, "transfer": 600, "baseline": 90, "similarity": 8, "summary": 1}),
    ("mlm_transfer", {"imp": 33, "transfer": 726, "baseline": 99, "similarity": 8, "summary": 1}),
    ("multilingual_ner", {"imp": 18, "transfer": 90, "baseline": 15, "similarity": 4, "summary": 1}),
    ("cross_task", {"imp": 72, "transfer": 72, "cross_task": 144, "similarity": 15, "retrieval": 4, "summary": 1}),
    ("mt5_xnli", {"imp": 30, "transfer": 300, "baseline": 30, "similarity": 4, "summary": 1}),
    ("offline", {"imp": 4, "transfer": 12, "consensus": 2, "baseline": 8, "similarity": 3, "retrieval": 2,
                 "summary": 1}),
])
def test_paper_study_files_derive_every_run(in_repo, name, expected):
    study = load_study(str(STUDIES / f"{name}.json"))
    assert kinds(study) == expected
    root = study.study_dir
    dirs = [run.run_dir for run in study.runs.values()]
    assert len(set(dirs)) == len(dirs) and all(d == root / run_id for d, run_id in zip(dirs, study.runs))
    position = {run_id: i for i, run_id in enumerate(study.runs)}
    for run in study.runs.values():
        assert all(position[d] < position[run.id] for d in run.deps)  # dependencies come first
        if run.kind == "imp":
            assert run.config["output_dir"] == str(run.run_dir) and run.config["overwrite_output_dir"] is False
            assert not run.deps
        mask = run.config.get("mask_dir")
        if mask:  # a fine-tuning run waits for exactly the run whose mask it reads: IMP, or a consensus of IMP runs
            (dep,) = run.deps
            source = study.runs[dep]
            if source.kind == "consensus":
                assert Path(mask) == source.run_dir / "mask.pt" == Path(source.config["output"])
                assert len(source.deps) >= 2 and all(study.runs[d].kind == "imp" for d in source.deps)
            else:
                assert Path(mask).parent.parent == source.run_dir and source.kind == "imp"
    summary = study.runs["summary"]
    assert summary.soft_deps and len(summary.deps) == sum(expected.get(k, 0) for k in
                                                           ("imp", "transfer", "baseline", "cross_task"))


def test_ner_transfer_runs_have_the_paper_settings(in_repo):
    study = load_study(str(STUDIES / "ner_transfer.json"))
    imp = study.runs["imp/ner/fr/s58"]
    base = json.loads((REPO / "configs" / "LT_ner_args.json").read_text())
    assert imp.script == "LT_ner.py" and imp.steps == 10 * 1875
    assert imp.config["num_train_epochs"] == base["num_train_epochs"] and imp.config["save_steps"] == 1875
    assert (imp.config["data_language"], imp.config["seed"]) == ("fr", 58)
    run = study.runs["transfer/ner/80/fr_on_de/s58"]
    assert run.script == "ner_fine_tune.py" and run.deps == ["imp/ner/fr/s58"]
    assert run.config["mask_dir"] == "runs/studies/ner_transfer/imp/ner/fr/s58/masks/sparsity_80.pt"
    assert (run.config["data_language"], run.config["pruning_type"], run.config["weight_init"]) == ("de", "lth", "pre")
    assert run.steps == 3 * 625
    random = study.runs["baseline/ner/random_50/de/s57"]
    assert (random.config["pruning_type"], random.config["sparsity"], random.deps) == ("random", 50.0, [])
    assert "mask_dir" not in random.config
    rand_init = study.runs["baseline/ner/rand_init_50/de/s57"]
    assert rand_init.config["weight_init"] == "rand" and rand_init.deps == ["imp/ner/de/s57"]
    assert study.runs["baseline/ner/dense/de/s57"].config["pruning_type"] == "none"
    assert command_line(run).endswith(" --mask_dir runs/studies/ner_transfer/imp/ner/fr/s58/masks/sparsity_80.pt")
    multi = load_study(str(STUDIES / "multilingual_ner.json"))
    assert multi.runs["imp/ner/en+fa+fr+zh/s57"].config["data_language"] == "en,fa,fr,zh"
    assert multi.runs["transfer/ner/50/en+fa+fr+zh_on_ur/s59"].deps == ["imp/ner/en+fa+fr+zh/s59"]
    cross = load_study(str(STUDIES / "cross_task.json"))
    run = cross.runs["cross_task/xnli_to_ner/50/ur/s57"]
    assert run.script == "ner_fine_tune.py" and run.deps == ["imp/xnli/ur/s57"]
    assert cross.runs["imp/mlm/ur/s57"].config["train_file"] == "pretrain_data/{lang}.train.json"
    retrieval = cross.runs["retrieval/xnli/50/en-fr/s57"]
    assert (retrieval.config["dataset_name"], retrieval.deps) == ("wmt14", ["imp/xnli/en/s57", "imp/xnli/fr/s57"])


def write_study(path: Path, **changes) -> Path:
    study = {"name": "t", "study_dir": str(path.parent / "study"), "seeds": [1],
             "tasks": {"ner": {"imp_config": "configs/offline/LT_ner_en.json",
                               "finetune_config": "configs/offline/ner_fine_tune_fr.json", "languages": ["en", "fr"]}},
             "transfer_sparsities": [50]}
    study.update(changes)
    path.write_text(json.dumps(study))
    return path


@pytest.mark.parametrize("changes, message", [
    ({"seed": [1]}, "unknown key 'seed' (did you mean 'seeds'"),
    ({"seeds": "1"}, "'seeds' must be a list of int"),
    ({"transfer_sparsities": [55]}, "transfer sparsity 55% is not a round of task ner's IMP schedule"),
    ({"overrides": {"learning_rat": 0.1}}, "unknown key 'learning_rat' (did you mean 'learning_rate'?)"),
    ({"overrides": {"seed": 3}}, "'overrides' may not set 'seed'"),
    ({"cross_task": [{"source": "xnli", "target": "ner"}]}, "cross_task[0]: unknown key 'xnli'"),
    ({"executor": {"kind": "slurm", "partiton": "gpu"}}, "unknown key 'partiton' (did you mean 'partition'?)"),
    ({"baselines": ["randm"]}, "unknown baseline 'randm'"),
    ({"steps_per_second": {"imp/nerr": 2}}, "unknown key 'imp/nerr' (did you mean 'imp/ner'"),
    ({"tasks": {"ner": {"imp_config": "configs/offline/LT_ner_en.json", "languages": ["en", "fr"],
                        "finetune_config": "configs/offline/ner_fine_tune_fr.json",
                        "imp_overrides": {"train_file": "data/ner/en/train.jsonl"}}}}, "has no '{lang}'"),
])
def test_bad_study_files_stop_with_one_line(in_repo, tmp_path, capsys, changes, message):
    import study as study_script

    with pytest.raises(SystemExit) as exit_:
        study_script.main([str(write_study(tmp_path / "s.json", **changes)), "--dry_run"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


# ---------------------------------------------------------------------------------------------------------------
# Running a small study for real (tiny model, a handful of steps)
# ---------------------------------------------------------------------------------------------------------------

FAST = {"max_train_samples": 48, "per_device_train_batch_size": 16, "max_eval_samples": 32, "logging_steps": 100}


def small_study(path: Path, tiny_models: Path, study_dir: Path, imp_overrides: dict | None = None) -> Path:
    """NER en+fr tickets (0 -> 50%), all four transfers, similarity, retrieval, summary; a broken task whose
    language's data files hold a malformed row (found only when the run reads them), so its IMP fails and what
    depends on it is skipped."""
    model = str(tiny_models / "mbert-tiny")
    broken_data = study_dir.parent / "broken_data"
    for split in ("train", "validation"):
        (broken_data / "xx").mkdir(parents=True, exist_ok=True)
        (broken_data / "xx" / f"{split}.jsonl").write_text('{"tokens": ["a"], "ner_tags": "O"}\n')
    files = {f"{split}_file": str(broken_data / "{lang}" / f"{split}.jsonl") for split in ("train", "validation")}
    ner = {"imp_config": "configs/offline/LT_ner_en.json", "finetune_config": "configs/offline/ner_fine_tune_fr.json",
           "languages": ["en", "fr"], "eval_languages": ["en", "fr"],
           "imp_overrides": {"save_steps": 3, "prune_rate": 0.5, "target_sparsity": 0.5},
           "finetune_overrides": {"num_train_epochs": 1}}
    broken = {**ner, "kind": "ner", "languages": ["xx"], "eval_languages": ["xx"],
              "imp_overrides": {**ner["imp_overrides"], **files}, "finetune_overrides": {"num_train_epochs": 1, **files}}
    ner["imp_overrides"] = {**ner["imp_overrides"], **(imp_overrides or {})}
    study = {"name": "small", "study_dir": str(study_dir), "model": model, "seeds": [1], "overrides": FAST,
             "tasks": {"ner": ner, "broken": broken}, "transfer_sparsities": [50],
             "consensus": [{"task": "ner", "operation": "intersection"}],
             "retrieval": {"pairs": ["en-fr"], "tsv": "data/parallel/{pair}.tsv", "max_sentences": 24,
                           "tasks": ["ner"], "dense": False}}
    path.write_text(json.dumps(study))
    return path


def log_starts(run_dir: Path) -> list[str]:
    return [line for line in (run_dir / "run.log").read_text().splitlines() if line.startswith("=== study run")]


@pytest.fixture(scope="module")
def local_study(tiny_models, tmp_path_factory):
    """The small study through the local executor (forked runs), run once for the tests below."""
    import study as study_script

    tmp = tmp_path_factory.mktemp("study_local")
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        path = small_study(tmp / "small.json", tiny_models, tmp / "study")
        code = study_script.main([str(path)])
    finally:
        os.chdir(cwd)
    return tmp / "study", code


def test_local_study_runs_everything_and_reports_the_failure(local_study, capfd):
    root, code = local_study
    assert code == 1  # one run failed
    state = {r["id"]: r for r in json.loads((root / "study_state.json").read_text())["runs"]}
    failed = state.pop("imp/broken/xx/s1")
    assert failed["status"] == "failed" and "field 'ner_tags' is str 'O'" in failed["detail"]
    assert failed["log"] == str(root / "imp/broken/xx/s1/run.log")
    skipped = {rid for rid, r in state.items() if r["status"] == "skipped"}
    assert skipped == {"transfer/broken/50/xx_on_xx/s1", "similarity/ner+broken/50/s1"}
    assert all(r["status"] == "ok" for rid, r in state.items() if rid not in skipped)
    for source in ("en", "fr"):
        for target in ("en", "fr"):
            results = json.loads((root / f"transfer/ner/50/{source}_on_{target}/s1/finetune_results.json").read_text())
            assert results["mask"]["source"]["languages"] == [source] and results["languages"] == [target]
            assert results["sparsity"] == pytest.approx(0.5, abs=1e-4)
    summary = json.loads((root / "summary/results_summary.json").read_text())
    (matrix,) = summary["transfer"]
    report = json.loads((root / "report.json").read_text())
    tables = {t["name"]: t for s in report["sections"] for t in s["tables"]}
    transfer = tables["transfer_ner_50"]
    assert transfer["header"] == ["mask \\ target", "ner/en", "ner/fr", "mean rel."]
    cell = next(c for c in matrix["cells"] if c["source"] == "ner/en" and c["target"] == "ner/fr")
    assert transfer["rows"][0][2] == f"{cell['value']:.4f}"
    assert (root / "tables/transfer_ner_50.csv").read_text().splitlines()[1].startswith("ner/en,")
    assert tables["runs_not_complete"]["rows"][0][:2] == ["imp/broken/xx/s1", "failed"]
    assert {"imp_tickets", "imp_curves", "jaccard_ner_50_s1", "jaccard_per_layer_ner_50_s1",
            "retrieval_en-fr", "zero_shot_ner"} <= set(tables)
    jaccard = json.loads((root / "similarity/ner/50/s1/mask_similarity.json").read_text())
    assert tables["jaccard_ner_50_s1"]["rows"][0][2] == f"{jaccard['jaccard_matrix'][0][1]:.3f}"
    markdown = (root / "report.md").read_text()
    for section in report["sections"]:
        for figure, _ in section["figures"]:
            assert (root / figure).is_file() and f"]({figure})" in markdown
    assert "<table>" in (root / "report.html").read_text()


def test_rerunning_a_study_refuses_changed_runs_unless_restarted(local_study, tiny_models, tmp_path, capsys,
                                                                 in_repo):
    import study as study_script

    root, _ = local_study
    path = small_study(tmp_path / "small.json", tiny_models, root, {"learning_rate": 0.001})
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}
    with pytest.raises(SystemExit) as exit_:
        study_script.main([str(path), "--dry_run"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "imp/ner/en/s1 (learning_rate: 0.003 -> 0.001)" in err
    assert "--restart" in err and len(err.strip().splitlines()) == 1
    assert study_script.main([str(path), "--dry_run", "--restart", "imp/ner/*"]) == 0
    out = capsys.readouterr().out
    assert "[restart] imp/ner/fr/s1  (named by --restart)" in out
    assert "[restart] transfer/ner/50/fr_on_en/s1" in out and "[restart] summary" in out  # dependents too
    assert "[skip] imp/broken/xx/s1" not in out and "[run] imp/broken/xx/s1  (failed or interrupted before)" in out
    same = small_study(tmp_path / "same.json", tiny_models, root)
    assert study_script.main([str(same), "--dry_run"]) == 0
    out = capsys.readouterr().out
    assert "[skip] imp/ner/en/s1  (complete)" in out and "[skip] summary  (complete)" not in out
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()} == before  # a dry run changes nothing


def test_killed_study_resumes_without_redoing_complete_runs(local_study, tiny_models, tmp_path, monkeypatch, capsys):
    """SIGKILL the runner while the second IMP run trains; running the study again keeps the first run's files,
    resumes the second (--resume), and ends with the same report as the uninterrupted study."""
    reference, _ = local_study
    root = tmp_path / "study"
    path = small_study(tmp_path / "small.json", tiny_models, root)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    runner = subprocess.Popen([sys.executable, "study.py", str(path)], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first, second = root / "imp/ner/en/s1", root / "imp/ner/fr/s1"
    deadline = time.time() + 120
    while not (second / "imp_results.json").is_file() and runner.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    assert json.loads((first / "imp_results.json").read_text())["complete"]
    assert not json.loads((second / "imp_results.json").read_text())["complete"]
    stamps = {p: p.stat().st_mtime_ns for p in first.rglob("*") if p.is_file()}
    time.sleep(0.5)  # let the killed run's child notice (it gets SIGTERM when the runner dies)
    import study as study_script

    monkeypatch.chdir(REPO)
    assert study_script.main([str(path)]) == 1  # the broken task fails again
    out = capsys.readouterr().out
    assert "start  imp/ner/fr/s1 (resume: unfinished)" in out and "start  imp/ner/en/s1" not in out
    assert {p: p.stat().st_mtime_ns for p in first.rglob("*") if p.is_file()} == stamps
    assert len(log_starts(first)) == 1
    starts = log_starts(second)
    assert len(starts) == 2 and starts[1].endswith("--resume")
    expected = (reference / "report.md").read_text().replace(str(reference.parent), "TMP")
    assert (root / "report.md").read_text().replace(str(root.parent), "TMP") == expected
    # --restart deletes the named run's directory and runs it again; nothing else is redone
    similarity = root / "similarity/ner/50/s1"
    (similarity / "stray.txt").write_text("left by hand")
    before = (similarity / "mask_similarity.json").stat().st_mtime_ns
    assert study_script.main([str(path), "--restart", "similarity/ner/*"]) == 1
    out = capsys.readouterr().out
    assert "start  similarity/ner/50/s1 (restart: named by --restart)" in out and "start  imp/ner" not in out
    assert not (similarity / "stray.txt").exists() and (similarity / "mask_similarity.json").stat().st_mtime_ns > before
    assert {p: p.stat().st_mtime_ns for p in first.rglob("*") if p.is_file()} == stamps


@pytest.mark.slow
def test_packed_study_gives_the_same_masks_and_results(local_study, tiny_models, tmp_path, monkeypatch):
    """The small study with 2 runs per (fake) GPU: runs share CUDA_VISIBLE_DEVICES=0 two at a time (CPU runs, so
    nothing needs CUDA); every mask is byte-identical to the unpacked study's, the report equal, and the broken
    run's death fails only it and what depends on it."""
    import study as study_script

    reference, _ = local_study
    root = tmp_path / "study"
    path = small_study(tmp_path / "small.json", tiny_models, root)
    raw = json.loads(path.read_text())
    raw["executor"] = {"kind": "local", "gpus": [0], "runs_per_gpu": 2, "launcher": "fork", "gpu_memory_gb": 80}
    path.write_text(json.dumps(raw))
    monkeypatch.chdir(REPO)
    assert study_script.main([str(path)]) == 1
    state = lambda folder: {r["id"]: r["status"]  # noqa: E731
                            for r in json.loads((folder / "study_state.json").read_text())["runs"]}
    assert state(root) == state(reference)
    masks = sorted(p.relative_to(reference) for p in reference.glob("imp/*/*/s1/masks/*.pt"))
    assert masks and all((root / m).read_bytes() == (reference / m).read_bytes() for m in masks)
    expected = (reference / "report.md").read_text().replace(str(reference.parent), "TMP")
    assert (root / "report.md").read_text().replace(str(root.parent), "TMP") == expected
    starts = [line for run in ("imp/ner/en/s1", "imp/broken/xx/s1") for line in log_starts(root / run)]
    assert starts and all("CUDA_VISIBLE_DEVICES=0 " in line for line in starts)


def test_study_through_submitit_local_executor(tiny_models, tmp_path, monkeypatch):
    """submitit's local executor: jobs pickled, run in their own processes with submitit folders and logs, results
    collected; the summary job is submitted only after the IMP job it depends on."""
    import study as study_script

    monkeypatch.chdir(REPO)
    root = tmp_path / "study"
    ner = {"imp_config": "configs/offline/LT_ner_en.json", "languages": ["en"],
           "imp_overrides": {"save_steps": 3, "prune_rate": 0.5, "target_sparsity": 0.5}}
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"name": "sub", "study_dir": str(root), "model": str(tiny_models / "mbert-tiny"),
                                "seeds": [3], "overrides": FAST, "tasks": {"ner": ner},
                                "executor": {"kind": "submitit_local", "poll_seconds": 0.2}}))
    assert study_script.main([str(path)]) == 0
    assert json.loads((root / "imp/ner/en/s3/imp_results.json").read_text())["complete"]
    summary = json.loads((root / "summary/results_summary.json").read_text())
    assert summary["imp"][0]["seeds"] == [3]
    job_dirs = sorted(p for p in (root / "submitit").iterdir() if p.name.isdigit())
    assert len(job_dirs) == 2  # one folder per job: the IMP run, then the summary
    for folder in job_dirs:
        assert list(folder.glob("*_result.pkl")) and list(folder.glob("*_log.out"))
    report = json.loads((root / "report.json").read_text())
    tickets = next(t for sec in report["sections"] for t in sec["tables"] if t["name"] == "imp_tickets")
    assert tickets["rows"][0][:3] == ["ner/en", "f1", 1]


def test_local_executor_gives_each_run_its_own_gpu(tmp_path):
    """Two GPUs, three runs: two at a time, each with its own CUDA_VISIBLE_DEVICES; the third waits for a free one."""
    from utils.study.execute import LocalExecutor, execute
    from utils.study.plan import Run, Study
    from utils.study.state import Decision

    script = tmp_path / "probe.py"
    script.write_text("import json, os, sys, time\n"
                      "config = json.load(open(sys.argv[1]))\n"
                      "start = time.time(); time.sleep(0.6)\n"
                      "json.dump({'gpu': os.environ['CUDA_VISIBLE_DEVICES'], 'start': start, 'end': time.time()},"
                      " open(os.path.join(config['output_dir'], 'probe.json'), 'w'))\n")
    study = Study("gpus", "probe.json", tmp_path / "study", [1], {}, [], {})
    for i in range(3):
        run_dir = study.study_dir / f"probe{i}"
        study.add(Run(f"probe{i}", "summary", str(script), {"output_dir": str(run_dir)}, run_dir,
                      outputs=["probe.json"]))
    executor = LocalExecutor(["3", "5"], 2, "subprocess")
    outcomes = execute(study, {rid: Decision("run", "new") for rid in study.runs}, executor, str(tmp_path), 0.05)
    assert {o.status for o in outcomes.values()} == {"ok"}
    probes = [json.loads((study.study_dir / f"probe{i}" / "probe.json").read_text()) for i in range(3)]
    assert {probes[0]["gpu"], probes[1]["gpu"]} == {"3", "5"}
    assert probes[2]["start"] >= min(probes[0]["end"], probes[1]["end"])  # never three at once
    assert "CUDA_VISIBLE_DEVICES=" + probes[2]["gpu"] in (study.study_dir / "probe2" / "run.log").read_text()


@pytest.mark.parametrize("launcher", ["fork", "subprocess"])
def test_cpu_runs_at_once_share_the_cores(tmp_path, monkeypatch, launcher):
    """executor.workers 2 on a 2-core CPU: each run gets one core as its torch thread pool, a forked run too (torch
    was imported before the fork)."""
    import torch

    from utils.study.execute import LocalExecutor, execute
    from utils.study.plan import Run, Study
    from utils.study.state import Decision

    monkeypatch.setattr("utils.study.execute.usable_cpus", lambda: 2)
    monkeypatch.setattr("utils.study.execute.visible_gpus", lambda: [])
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    own_threads = torch.get_num_threads()
    torch.set_num_threads(2)  # what torch would take alone, so the runs' single thread is the executor's doing
    monkeypatch.syspath_prepend(str(tmp_path))  # the fork launcher imports each script's module first
    script = tmp_path / "threads_probe.py"
    script.write_text("import json, os, sys, torch\n"
                      "if __name__ == '__main__':\n"
                      "    config = json.load(open(sys.argv[1]))\n"
                      "    json.dump({'torch': torch.get_num_threads(), 'omp': os.environ['OMP_NUM_THREADS']},"
                      " open(os.path.join(config['output_dir'], 'probe.json'), 'w'))\n")
    study = Study("cpu", "probe.json", tmp_path / "study", [1], {},
                  [], {"executor": {"workers": 2, "launcher": launcher}})
    for i in range(2):
        run_dir = study.study_dir / f"probe{i}"
        study.add(Run(f"probe{i}", "summary", str(script), {"output_dir": str(run_dir)}, run_dir,
                      outputs=["probe.json"]))
    executor = LocalExecutor.from_study(study)
    assert executor.threads == 1 and "2 run(s) at a time on CPU, 1 thread(s) each" in executor.describe()
    outcomes = execute(study, {rid: Decision("run", "new") for rid in study.runs}, executor, str(tmp_path), 0.05)
    assert {o.status for o in outcomes.values()} == {"ok"}
    for i in range(2):
        assert json.loads((study.study_dir / f"probe{i}" / "probe.json").read_text()) == {"torch": 1, "omp": "1"}
    assert torch.get_num_threads() == 2  # the runner's own pool is left as it was
    torch.set_num_threads(own_threads)


def test_cpu_threads_per_run_respects_the_user(tmp_path, monkeypatch):
    from utils.study.execute import LocalExecutor
    from utils.study.plan import Study

    monkeypatch.setattr("utils.study.execute.visible_gpus", lambda: [])
    study = lambda executor: Study("cpu", "s.json", tmp_path, [1], {}, [], {"executor": executor})  # noqa: E731
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert LocalExecutor.from_study(study({"workers": 2})).threads is None  # the user's OMP_NUM_THREADS stands
    assert LocalExecutor.from_study(study({"workers": 2, "threads_per_run": 4})).threads == 4
    with pytest.raises(UserError, match="threads_per_run must be >= 1"):
        LocalExecutor.from_study(study({"workers": 2, "threads_per_run": 0}))


def probe_runs(tmp_path: Path, codes: dict[str, int]) -> tuple[list, Path]:
    """Runs of a script that sleeps a moment, writes its output and exits with the code its config names."""
    from utils.study.plan import Run

    script = tmp_path / "exit_with.py"
    script.write_text("import json, os, sys, time\n"
                      "config = json.load(open(sys.argv[1]))\n"
                      "time.sleep(config['sleep'])\n"
                      "open(os.path.join(config['output_dir'], 'probe.json'), 'w').write('{}')\n"
                      "sys.exit(config['code'])\n")
    runs = []
    for name, code in codes.items():
        run_dir = tmp_path / name
        run_dir.mkdir()
        config = {"output_dir": str(run_dir), "code": code, "sleep": 0.3}
        (run_dir / "config.json").write_text(json.dumps(config))
        runs.append(Run(name, "summary", str(script), config, run_dir, outputs=["probe.json"]))
    return runs, script


def wait_until_idle(executor, seconds: float = 60) -> list:
    finished, deadline = [], time.time() + seconds
    while executor.busy() and time.time() < deadline:
        finished += executor.poll()
        time.sleep(0.05)
    assert not executor.busy() and executor.poll() == []
    return finished


def make_probe_executor(name: str, tmp_path: Path):
    from utils.study.execute import LocalExecutor, SubmititExecutor
    from utils.study.plan import Study

    if name == "submitit_local":
        study = Study("probe", str(tmp_path / "s.json"), tmp_path, [1], {}, [],
                      {"executor": {"kind": "submitit_local", "folder": str(tmp_path / "submitit")}})
        return SubmititExecutor.from_study(study)
    return LocalExecutor([], 2, name)


@pytest.mark.parametrize("name", ["fork", "subprocess", "submitit_local"])
def test_executors_report_each_run_once_with_its_exit_code(name, tmp_path):
    """The scheduler's contract on every executor: submit returns at once, busy until poll has returned every run,
    each run once as a Finished with the script's exit code and a duration that covers its work."""
    from utils.study.execute import Executor, Finished, job_for

    executor = make_probe_executor(name, tmp_path)
    assert isinstance(executor, Executor)
    runs, _ = probe_runs(tmp_path, {"good": 0, "bad": 3})
    assert not executor.busy() and executor.poll() == [] and executor.free_slots() >= 2
    executor.prepare([])
    started = time.time()
    executor.submit([(run, job_for(run, False, str(tmp_path))) for run in runs])
    assert executor.busy() and time.time() - started < 5
    finished = sorted(wait_until_idle(executor), key=lambda f: f.id)
    assert [type(f) for f in finished] == [Finished, Finished]
    assert [(f.id, f.returncode, f.error) for f in finished] == [("bad", 3, ""), ("good", 0, "")]
    assert all(0.3 <= f.seconds < 60 for f in finished)
    assert (tmp_path / "good" / "run.log").read_text().startswith("\n=== study run good")


def test_a_job_that_dies_is_finished_with_the_reason(tmp_path):
    """A submitit job that dies before its script reports (here: its run folder vanished, so the log cannot open;
    on Slurm a timeout or a lost node) comes back with no exit code and a reason naming the job, the error and the
    job's log, which the scheduler records as the run's failure."""
    import shutil

    from utils.study.execute import _finish, job_for

    executor = make_probe_executor("submitit_local", tmp_path)
    (run,), _ = probe_runs(tmp_path, {"vanished": 0})
    shutil.rmtree(run.run_dir)
    executor.submit([(run, job_for(run, False, str(tmp_path)))])
    (job,) = executor.jobs.values()
    (finished,) = wait_until_idle(executor)
    assert finished.id == "vanished" and finished.returncode is None
    assert finished.error.startswith(f"job {job.job_id} died: ")
    assert finished.error.endswith(f"(submitit log: {job.paths.stderr})")
    outcome = _finish(run, finished)
    assert (outcome.status, outcome.detail) == ("failed", finished.error)
