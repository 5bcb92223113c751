"""Study safety: runs stay inside the study folder, one runner per study, a dry run writes nothing, and the
refusals neither block harmless changes nor push users into deleting complete runs."""
from __future__ import annotations

import fnmatch
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from utils.infra.errors import UserError
from utils.infra.io import write_json
from utils.infra.results_schema import ImpResults, write_results
from utils.study.execute import prepare_run_dir
from utils.study.lock import LOCK_FILE, StudyLock, read_holder
from utils.study.paths import check_component
from utils.study.plan import Run, Study, load_study
from utils.study.state import CONFIG, RECORD, Decision, decide, restart_globs

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def in_repo(monkeypatch):
    monkeypatch.chdir(REPO)


def study_file(path: Path, study_dir: Path, model: Path, **changes) -> Path:
    """NER en+fr tickets over two seeds, transferred at 50%, with similarity and the summary (offline configs)."""
    study = {"name": "safe", "study_dir": str(study_dir), "model": str(model), "seeds": [1, 2],
             "tasks": {"ner": {"imp_config": "configs/offline/LT_ner_en.json",
                               "finetune_config": "configs/offline/ner_fine_tune_fr.json", "languages": ["en", "fr"],
                               "imp_overrides": {"prune_rate": 0.5, "target_sparsity": 0.5}}},
             "transfer_sparsities": [50]}
    study.update(changes)
    path.write_text(json.dumps(study))
    return path


def files_under(folder: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in folder.rglob("*")}


def run_main(argv: list[str], capsys) -> tuple[int, str, str]:
    import study as study_script

    try:
        code = study_script.main(argv)
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ---------------------------------------------------------------------------------------------------------------
# 1. Confinement
# ---------------------------------------------------------------------------------------------------------------


def ner(**changes) -> dict:
    return {"ner": {"imp_config": "configs/offline/LT_ner_en.json", "languages": ["en", "fr"],
                    "finetune_config": "configs/offline/ner_fine_tune_fr.json",
                    "imp_overrides": {"prune_rate": 0.5, "target_sparsity": 0.5}, **changes}}


@pytest.mark.parametrize("changes, where, value", [
    ({"tasks": ner(languages=["en", "../../outside"])}, "tasks.ner.languages[1]", "'../../outside'"),
    ({"tasks": ner(languages=["en", "/tmp/abs"])}, "tasks.ner.languages[1]", "'/tmp/abs'"),
    ({"tasks": ner(languages=["..", "fr"])}, "tasks.ner.languages[0]", "'..'"),
    ({"tasks": ner(languages=["en", "f\\r"])}, "tasks.ner.languages[1]", "'f\\\\r'"),
    ({"tasks": ner(languages=["en", ""])}, "tasks.ner.languages[1]", "''"),
    ({"tasks": ner(languages=["en", "fr\x00"])}, "tasks.ner.languages[1]", "'fr\\x00'"),
    ({"tasks": ner(languages=["-rf", "fr"])}, "tasks.ner.languages[0]", "'-rf'"),
    ({"tasks": ner(languages=[".hidden", "fr"])}, "tasks.ner.languages[0]", "'.hidden'"),
    ({"tasks": ner(languages=["en+fr", "fr"])}, "tasks.ner.languages[0]", "'en+fr'"),
    ({"tasks": ner(eval_languages=["en", "../x"])}, "tasks.ner.eval_languages[1]", "'../x'"),
    ({"tasks": {"../t": ner()["ner"] | {"kind": "ner"}}}, "tasks (a task name)", "'../t'"),
    ({"multilingual": [{"task": "ner", "languages": ["en", "../fr"]}]}, "multilingual[0].languages[1]", "'../fr'"),
    ({"consensus": [{"task": "ner", "operation": "union", "targets": ["en", "a/b"]}]}, "consensus[0].targets[1]",
     "'a/b'"),
    ({"retrieval": {"pairs": ["../en-fr"], "tsv": "data/parallel/{pair}.tsv"}}, "retrieval.pairs[0]", "'../en-fr'"),
])
def test_names_that_would_leave_the_study_folder_stop_at_planning(in_repo, tmp_path, capsys, tiny_models, changes,
                                                                 where, value):
    """Each as a real run with --restart (the bug deleted a user's folder): one line naming the value and its place
    in the study file, exit 2, and nothing written anywhere."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("user data")
    path = study_file(tmp_path / "s.json", tmp_path / "a" / "b" / "study", tiny_models / "mbert-tiny", **changes)
    before = files_under(tmp_path)
    code, out, err = run_main([str(path), "--restart", "*"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"{path}: {where}: {value} cannot name a folder" in err
    assert files_under(tmp_path) == before and not (tmp_path / "a").exists()


def test_default_study_folder_from_the_name_is_checked(in_repo, tmp_path, capsys, tiny_models):
    path = study_file(tmp_path / "s.json", tmp_path / "x", tiny_models / "mbert-tiny", name="../../escape")
    raw = json.loads(path.read_text())
    del raw["study_dir"]
    path.write_text(json.dumps(raw))
    code, _, err = run_main([str(path), "--dry_run"], capsys)
    assert code == 2 and "name (the default study folder is runs/studies/<name>): '../../escape'" in err


def test_restart_never_deletes_through_a_link_out_of_the_study(in_repo, tmp_path, capsys, tiny_models):
    """A run folder that is a symbolic link to a folder outside: planning refuses it, and so does prepare_run_dir
    (the last guard before rmtree), so the files outside survive --restart."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("user data")
    root = tmp_path / "study"
    (root / "imp/ner/en").mkdir(parents=True)
    (root / "imp/ner/en/s1").symlink_to(outside, target_is_directory=True)
    path = study_file(tmp_path / "s.json", root, tiny_models / "mbert-tiny")
    code, _, err = run_main([str(path), "--restart", "imp/ner/en/*"], capsys)
    assert code == 2 and "run imp/ner/en/s1: its folder" in err and "outside the study folder" in err
    assert (outside / "keep.txt").read_text() == "user data"
    run = Run("imp/ner/en/s1", "imp", "LT_ner.py", {}, root / "imp/ner/en/s1", task_kind="ner")
    for action in ("restart", "run"):
        with pytest.raises(UserError, match="outside the study folder"):
            prepare_run_dir(run, Decision(action, "test"), root)
    escaping = Run("x", "imp", "LT_ner.py", {}, root / ".." / "outside", task_kind="ner")
    with pytest.raises(UserError, match="outside the study folder"):
        prepare_run_dir(escaping, Decision("restart", "test"), root)
    assert sorted(p.name for p in outside.iterdir()) == ["keep.txt"]


HOSTILE = ["..", ".", "", "/", "\\", "\x00", "-", "~", "en", "fr", "+", " ", "\n", "*", "é", "$HOME", "/etc",
           "C:", "..\\..", "\u2024\u2024", "\uff0f", "%2e%2e", "s1", "a" * 300]


@settings(max_examples=400, deadline=None, database=None)
@given(parts=st.lists(st.one_of(st.sampled_from(HOSTILE), st.text(max_size=6),
                                st.lists(st.sampled_from(HOSTILE), max_size=4).map("".join)), min_size=1, max_size=5))
def test_hostile_run_ids_are_refused_or_stay_inside(tmp_path_factory, parts):
    """Property: a run id built from hostile strings is refused by the check the planner applies to every run,
    or its folder resolves inside the study folder; a name accepted as one component is exactly one folder."""
    root = tmp_path_factory.getbasetemp() / "hostile_root"
    root.mkdir(exist_ok=True)
    run_id = "/".join(parts)
    study = Study("h", "h.json", root, [1], {}, [], {})
    try:
        study.add(Run(run_id, "imp", "LT_ner.py", {}, root / run_id))
    except UserError:
        pass  # refused when planned
    else:
        resolved = (root / run_id).resolve()
        assert resolved.is_relative_to(root.resolve()) and resolved != root.resolve()
    for part in parts:
        try:
            check_component(part, "test")
        except UserError:
            continue
        assert (root / part).resolve().parent == root.resolve() and "+" not in part


# ---------------------------------------------------------------------------------------------------------------
# 2. One runner per study
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture
def sleeper():
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield process
    process.kill()
    process.wait()


def write_lock(root: Path, pid: int, host: str | None = None) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / LOCK_FILE).write_text(json.dumps({"pid": pid, "host": host or socket.gethostname(),
                                              "since": "2026-01-01 10:00:00 UTC", "command": "study.py s.json"}))


def test_a_second_runner_stops_naming_the_holder_before_writing(in_repo, tmp_path, capsys, tiny_models, sleeper):
    root = tmp_path / "study"
    write_lock(root, sleeper.pid)
    path = study_file(tmp_path / "s.json", root, tiny_models / "mbert-tiny")
    before = files_under(tmp_path)
    code, out, err = run_main([str(path)], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"pid {sleeper.pid}@{socket.gethostname()} since 2026-01-01 10:00:00 UTC (study.py s.json)" in err
    assert files_under(tmp_path) == before  # no run folder, no state file, the lock untouched
    write_lock(root, 1, host="another-node")  # another host's runner cannot be checked from here: it counts
    code, _, err = run_main([str(path)], capsys)
    assert code == 2 and "pid 1@another-node" in err
    assert run_main([str(path), "--dry_run"], capsys)[0] == 0  # a dry run takes no lock
    assert json.loads((root / LOCK_FILE).read_text())["host"] == "another-node"


def test_a_live_runner_holding_the_lock_stops_the_second_and_releases_it_on_sigterm(tmp_path):
    root = tmp_path / "study"
    code = (f"import time; from utils.study.lock import StudyLock\n"
            f"with StudyLock({str(root)!r}):\n    print('held', flush=True); time.sleep(60)\n")
    holder = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(UserError, match=f"another study.py is running this study: pid {holder.pid}@"):
            StudyLock(root).acquire()
        holder.send_signal(signal.SIGTERM)
        _, err = holder.communicate(timeout=30)
    finally:
        holder.kill()
    assert "study stopped by SIGTERM" in err and not (root / LOCK_FILE).exists()


def test_a_stale_lock_is_taken_over_and_released_on_exit(tmp_path, capsys):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    root = tmp_path / "study"
    write_lock(root, dead.pid)
    with pytest.raises(RuntimeError, match="boom"):
        with StudyLock(root):
            holder = read_holder(root / LOCK_FILE)
            assert (holder.pid, holder.host) == (os.getpid(), socket.gethostname())
            raise RuntimeError("boom")
    assert f"taking over the stale lock {root / LOCK_FILE} of pid {dead.pid}@" in capsys.readouterr().out
    assert not (root / LOCK_FILE).exists() and root.is_dir()
    fresh = tmp_path / "fresh"
    with StudyLock(fresh):
        assert (fresh / LOCK_FILE).is_file()
    assert not fresh.exists()  # made for the lock, left empty: removed again


def test_dry_run_writes_nothing(in_repo, tmp_path, capsys, tiny_models):
    path = study_file(tmp_path / "s.json", tmp_path / "study", tiny_models / "mbert-tiny")
    before = files_under(tmp_path)
    code, out, _ = run_main([str(path), "--dry_run"], capsys)
    assert code == 0 and "[run] imp/ner/en/s1  (new)" in out
    assert files_under(tmp_path) == before and not (tmp_path / "study").exists()


# ---------------------------------------------------------------------------------------------------------------
# 5. Messages that keep work: runs without results change freely, exact --restart globs, unreadable files named,
#    a moved study resumes
# ---------------------------------------------------------------------------------------------------------------


def fake_run(study: Study, run_id: str, state: str = "complete") -> None:
    """Record a run as the runner does (prepare_run_dir) and give it results: complete, partial (IMP rounds
    recorded) or none (a failed run)."""
    run = study.runs[run_id]
    prepare_run_dir(run, Decision("run", "new"), study.study_dir)
    if run.is_imp and state != "failed":
        write_results(run.run_dir / "imp_results.json", ImpResults(
            task="ner", languages=[run_id.split("/")[2]], metric="f1", config={}, complete=state == "complete"))
    elif state == "complete":
        for name in run.outputs:
            write_json(run.run_dir / name, {})


def planned(tmp_path: Path, tiny_models: Path, root: Path, **changes) -> Study:
    return load_study(str(study_file(tmp_path / "s.json", root, tiny_models / "mbert-tiny", **changes)))


def test_runs_without_results_change_freely_and_changed_complete_runs_get_an_exact_restart(in_repo, tmp_path,
                                                                                            tiny_models):
    root = tmp_path / "study"
    study = planned(tmp_path, tiny_models, root)
    for run_id in ("imp/ner/en/s1", "imp/ner/fr/s1", "imp/ner/en/s2", "transfer/ner/50/en_on_fr/s1"):
        fake_run(study, run_id)
    fake_run(study, "imp/ner/fr/s2", "failed")
    fake_run(study, "transfer/ner/50/en_on_fr/s2", "failed")
    # the fine-tuning settings change: the failed fine-tuning run simply runs again, the complete one is refused
    changed_ft = planned(tmp_path, tiny_models, root, tasks=ner(finetune_overrides={"learning_rate": 0.0123}))
    with pytest.raises(UserError) as error:
        decide(changed_ft)
    message = str(error.value)
    assert message.startswith("the study file changed 1 existing run(s) with results: transfer/ner/50/en_on_fr/s1 "
                              "(learning_rate: ")
    assert message.endswith("--restart transfer/ner/50/en_on_fr/s1 to delete it (with the runs that depend on it) "
                            "and run again")
    decisions = decide(changed_ft, ["transfer/ner/50/en_on_fr/s1"])
    assert decisions["transfer/ner/50/en_on_fr/s2"].action == "run"
    assert decisions["transfer/ner/50/en_on_fr/s2"].reason.startswith("settings changed (learning_rate: ")
    assert decisions["imp/ner/en/s1"].action == "skip"
    # the IMP settings change: the complete IMP runs (and the complete transfer) are refused, not the failed one
    changed_imp = planned(tmp_path, tiny_models, root, overrides={"learning_rate": 0.01})
    with pytest.raises(UserError) as error:
        decide(changed_imp)
    message = str(error.value)
    restart = shlex.split(message.split("--restart ")[1].split(" to delete")[0])
    assert restart == ["imp/ner/en/*", "imp/ner/fr/s1", "transfer/ner/50/en_on_fr/s1"]
    named = {rid for rid in changed_imp.runs if any(fnmatch.fnmatchcase(rid, g) for g in restart)}
    assert named == {"imp/ner/en/s1", "imp/ner/fr/s1", "imp/ner/en/s2", "transfer/ner/50/en_on_fr/s1"}
    decisions = decide(changed_imp, restart)  # following the advice works, and keeps the failed run a plain re-run
    assert decisions["imp/ner/fr/s2"].action == "run" and decisions["imp/ner/en/s1"].action == "restart"


def test_restart_globs_match_exactly_the_chosen_runs():
    ids = [f"{kind}/{task}/{lang}/s{seed}" for kind in ("imp", "transfer") for task in ("ner", "xnli")
           for lang in ("en", "fr", "de") for seed in (1, 2)] + ["summary"]
    cases = [
        ({i for i in ids if i.startswith("imp/ner/")}, ["imp/ner/*"]),
        ({i for i in ids if i.startswith("imp/") and i.endswith("/s1")}, ["imp/*/*/s1"]),
        ({"imp/ner/en/s1", "imp/ner/fr/s2"}, ["imp/ner/en/s1", "imp/ner/fr/s2"]),
        ({"imp/ner/en/s1", "imp/ner/fr/s1"}, ["imp/ner/en/s1", "imp/ner/fr/s1"]),  # de/s1 unchanged: no '*'
        ({"summary"}, ["summary"]),
        (set(ids), ["*"]),
    ]
    for chosen, expected in cases:
        globs = restart_globs(ids, chosen)
        assert globs == expected
        assert {i for i in ids if any(fnmatch.fnmatchcase(i, g) for g in globs)} == chosen


GRID = [f"{kind}/{task}/{lang}/s{seed}" for kind in ("imp", "transfer") for task in ("ner", "xnli")
        for lang in ("en", "fr", "de", "en+fr") for seed in (1, 2)] + ["summary", "similarity/ner/50/all_seeds"]


@settings(max_examples=300, deadline=None, database=None)
@given(chosen=st.sets(st.sampled_from(GRID), min_size=1))
def test_restart_globs_are_exact_for_any_set_of_runs(chosen):
    """The folder-wise cover itself (restart_globs falls back to the plain ids if it were ever inexact)."""
    from utils.study.state import _cover

    globs = ["/".join(p) for p in _cover([tuple(i.split("/")) for i in GRID], {tuple(c.split("/")) for c in chosen})]
    assert {i for i in GRID if any(fnmatch.fnmatchcase(i, g) for g in globs)} == chosen
    assert len(globs) <= len(chosen) and restart_globs(GRID, chosen) == globs


def test_unreadable_record_or_results_are_named(in_repo, tmp_path, tiny_models):
    root = tmp_path / "study"
    study = planned(tmp_path, tiny_models, root)
    fake_run(study, "imp/ner/en/s1")
    fake_run(study, "imp/ner/fr/s1")
    record = root / "imp/ner/en/s1" / RECORD
    record.write_text('{"id": "imp/ner/en/s1", "scr')  # a truncated record of a complete run
    results = root / "imp/ner/fr/s1/imp_results.json"
    results.write_text(results.read_text()[:40])  # truncated results
    with pytest.raises(UserError) as error:
        decide(study)
    message = str(error.value)
    assert "the study file changed" not in message and "script: ?" not in message
    assert f"imp/ner/en/s1 (cannot read {record} (" in message and f"imp/ner/fr/s1 (cannot read {results}" in message
    assert "--restart 'imp/ner/*/s1' to delete them" in message  # s2 of both languages stays
    (root / "imp/ner/fr/s1/imp_results.json").unlink()  # a failed run: its unreadable record is no obstacle
    (root / "imp/ner/en/s1/imp_results.json").unlink()
    decisions = decide(study)
    assert decisions["imp/ner/en/s1"].action == "run" and f"cannot read {record}" in decisions["imp/ner/en/s1"].reason


@pytest.mark.parametrize("old_records", [False, True])
def test_a_moved_study_folder_resumes_with_everything_skipped(in_repo, tmp_path, tiny_models, old_records):
    """Records name study paths relative to the study folder ({study_dir}); older records with absolute paths
    are read too. The summary's config names the folder itself, the transfers' mask_dir a file in another run."""
    root = tmp_path / "first" / "study"
    study = planned(tmp_path, tiny_models, root, similarity=True)
    for run_id in study.runs:
        fake_run(study, run_id)
        if old_records:  # what earlier versions wrote: the spec with its absolute paths
            run = study.runs[run_id]
            write_json(run.run_dir / RECORD, {"id": run.id, "kind": run.kind, **run.launch, "deps": run.deps})
    record = json.loads((root / "transfer/ner/50/en_on_fr/s1" / RECORD).read_text())
    assert record["config"]["mask_dir"] == (str(study.runs["transfer/ner/50/en_on_fr/s1"].config["mask_dir"])
                                            if old_records else "{study_dir}/imp/ner/en/s1/masks/sparsity_50.pt")
    assert all(d.action == "skip" for d in decide(study).values())
    moved = tmp_path / "elsewhere" / "copy"
    moved.parent.mkdir()
    shutil.move(str(root), str(moved))
    again = planned(tmp_path, tiny_models, moved, similarity=True)
    decisions = decide(again)
    assert {rid: d.action for rid, d in decisions.items()} == {rid: "skip" for rid in again.runs}
    changed = planned(tmp_path, tiny_models, moved, similarity=True, overrides={"learning_rate": 0.01})
    with pytest.raises(UserError) as error:
        decide(changed)  # a real change is still seen after the move, and the paths are not one
    assert "imp/ner/en/s1 (learning_rate: 0.003 -> 0.01)" in str(error.value)
    assert "output_dir" not in str(error.value) and "mask_dir" not in str(error.value)
    assert json.loads((moved / "imp/ner/en/s1" / CONFIG).read_text())["output_dir"] == str(root / "imp/ner/en/s1")
