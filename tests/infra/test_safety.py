"""Issue 11: finished work is never lost, outputs are checked before training, kills at every kind of write resume
to byte-identical masks, Ctrl-C and a full disk print one line, and outputs respect the umask."""
from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.infra.test_reliability import imp_argv
from utils.infra import io as uio

# The seed README's flags ride along: re-running the same command (with --overwrite_output_dir) must resume.
SEED_FLAGS = ["--overwrite_output_dir", "--evaluate_during_training"]
SMALL = ["--target_sparsity", "0.25", "--max_train_samples", "16", "--max_eval_samples", "8", "--save_steps", "3"]


def small_imp(models, out, *extra):
    return imp_argv(models, out, *SMALL, *SEED_FLAGS, *extra)


def digests(out: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((out / "masks").iterdir())}


class SimulatedKill(BaseException):
    """Stands in for SIGKILL: nothing in the program catches it, and nothing runs after it."""


@pytest.fixture(scope="module")
def reference(tiny_models, tmp_path_factory):
    import LT_ner

    out = tmp_path_factory.mktemp("reference") / "run"
    old = os.umask(0o022)
    try:
        cwd = os.getcwd()
        os.chdir(Path(__file__).resolve().parents[2])
        writes: list[str] = []
        original = uio.atomic_write

        def counting(path, write):
            original(path, write)
            writes.append(Path(path).name)

        uio.atomic_write = counting
        try:
            LT_ner.main(small_imp(tiny_models, out))
        finally:
            uio.atomic_write = original
            os.chdir(cwd)
    finally:
        os.umask(old)
    return out, writes


def test_reference_run_writes_each_kind_of_file_with_normal_permissions(reference):
    out, writes = reference
    # what the fault-injection test below kills after: every kind of file, the results file first (it marks the
    # folder as this run's) and last (a round counts once its results entry is written)
    assert writes[0] == writes[-1] == "imp_results.json" and writes.count("imp_results.json") == 3
    assert {"rewind_weights.pt", "sparsity_25.pt", "sparsity_25.json"} <= set(writes)
    assert writes.index("sparsity_25.json") < writes.index("sparsity_25.pt")  # a mask never stands without metadata
    for path in [out / "imp_results.json", *(out / "masks").iterdir()]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path  # umask 022, not mkstemp's 0600
    assert not list(out.rglob("*.tmp")) and not (out / "rewind_weights.pt").exists()


def test_kill_after_each_write_resumes_to_identical_bytes(reference, tiny_models, tmp_path, run_script, monkeypatch):
    original = uio.atomic_write
    for kill_after in range(1, len(reference[1]) + 1):  # right after every file the run writes, in turn
        out = tmp_path / f"killed_after_{kill_after}"
        count = []

        def dies(path, write):
            original(path, write)
            count.append(path)
            if len(count) == kill_after:
                raise SimulatedKill

        monkeypatch.setattr(uio, "atomic_write", dies)
        with pytest.raises(SimulatedKill):
            run_script("LT_ner.py", *small_imp(tiny_models, out))
        monkeypatch.setattr(uio, "atomic_write", original)
        stale = Path(count[-1]).parent / f".{Path(count[-1]).name}.x1y2z3.tmp"  # a write the kill cut short
        stale.write_bytes(b"partial")
        results = run_script("LT_ner.py", *small_imp(tiny_models, out))  # the very same command
        assert results["complete"] and len(results["rounds"]) == 2, kill_after
        # masks and metadata: byte-identical to the uninterrupted run's
        assert digests(out) == digests(reference[0]), f"killed after write {kill_after} ({count[-1]})"
        assert not stale.exists() and sorted(p.name for p in out.iterdir()) == ["imp_results.json", "masks", "runs"]


def test_identical_mask_saves_are_byte_identical(tmp_path):
    import torch
    from utils.core.masks import Mask

    mask = Mask({"a.weight": torch.rand(8, 8) > 0.5})
    for packed in (False, True):
        mask.save(tmp_path / "one.pt", {"seed": 1}, packed=packed)
        mask.save(tmp_path / "sub" / "two.pt", {"seed": 1}, packed=packed)
        assert (tmp_path / "one.pt").read_bytes() == (tmp_path / "sub" / "two.pt").read_bytes()


def test_atomic_writes_respect_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        uio.write_json(tmp_path / "a.json", {"x": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o640


# -- what a run may do with its output directory -------------------------------------------------------------------


def _error(run_script, capsys, *argv) -> str:
    with pytest.raises(SystemExit) as exit_info:
        run_script(*argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_complete_runs_and_inputs_are_never_cleared(reference, tiny_models, tmp_path, run_script, capsys):
    import shutil

    imp_dir = tmp_path / "imp"
    shutil.copytree(reference[0], imp_dir)
    before = digests(imp_dir)
    # the same command again: nothing to do, nothing rewritten
    again = run_script("LT_ner.py", *small_imp(tiny_models, imp_dir))
    assert again["complete"] and "nothing to do" in capsys.readouterr().out
    # other settings, whatever the flags: refused
    err = _error(run_script, capsys, "LT_ner.py", *small_imp(tiny_models, imp_dir, "--seed", "4",
                                                               "--discard_unfinished_run"))
    assert "complete IMP run with other settings (seed: 3 -> 4)" in err and "never removed" in err
    # fine-tuning pointed at the IMP directory its own mask comes from, with the seed README's flags
    ft = ["--model_name_or_path", str(tiny_models / "mbert-tiny"), "--output_dir", str(imp_dir), "--do_train",
          "--train_file", "data/ner/{lang}/train.jsonl", "--max_steps", "1", "--use_cpu", "--overwrite_output_dir",
          "--mask_dir", str(imp_dir / "masks" / "sparsity_25.pt")]
    assert "holds a complete IMP run" in _error(run_script, capsys, "ner_fine_tune.py", *ft)
    # ... or at its masks/ folder (or deeper): inside another run's folder
    for inside in (imp_dir / "masks", imp_dir / "masks" / "ft" / "fr"):
        ft_inside = [*ft[:3], str(inside), *ft[4:]]
        assert _error(run_script, capsys, "ner_fine_tune.py", *ft_inside) == (
            f"error: --output_dir {inside} is inside the folder of another run, {os.path.realpath(imp_dir)} (it "
            "holds imp_results.json): choose a folder outside it")
    assert not (imp_dir / "masks" / "ft").exists()
    mask_file = ft[-1]  # --output_dir naming the mask itself
    assert "is an existing file, not a folder" in _error(run_script, capsys, "ner_fine_tune.py",
                                                         *[*ft[:3], mask_file, *ft[4:]])
    # an unfinished run whose masks this run reads: not even --discard_unfinished_run deletes them
    results = json.loads((imp_dir / "imp_results.json").read_text())
    results["complete"] = False
    (imp_dir / "imp_results.json").write_text(json.dumps(results))
    err = _error(run_script, capsys, "ner_fine_tune.py", *ft, "--discard_unfinished_run")
    assert "which this run reads" in err and "sparsity_25.pt" in err
    assert digests(imp_dir) == before


def test_unfinished_run_with_other_settings_needs_the_explicit_flag(reference, tiny_models, tmp_path, run_script,
                                                                   capsys, monkeypatch):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(reference[0], out)
    results = json.loads((out / "imp_results.json").read_text())
    results["complete"], results["rounds"] = False, results["rounds"][:1]
    (out / "imp_results.json").write_text(json.dumps(results))
    err = _error(run_script, capsys, "LT_ner.py", *small_imp(tiny_models, out, "--seed", "4"))
    assert "unfinished IMP run (1 round(s) done) with other settings (seed: 3 -> 4)" in err
    assert "--discard_unfinished_run to delete it (imp_results.json, masks/, runs/)" in err
    assert "other settings" in _error(run_script, capsys, "LT_ner.py",
                                      *small_imp(tiny_models, out, "--seed", "4", "--resume"))
    done = run_script("LT_ner.py", *small_imp(tiny_models, out, "--seed", "4", "--discard_unfinished_run"))
    assert "removed the unfinished run" in capsys.readouterr().out
    assert done["complete"] and done["seed"] == 4


@pytest.mark.parametrize("case", ["file", "empty", "child_of_file", "masks_is_file", "no_disk", "read_only"])
def test_outputs_are_checked_before_any_training(tiny_models, tmp_path, run_script, capsys, monkeypatch, case):
    from utils.core import training
    from utils.infra import outputs

    monkeypatch.setattr(training.MaskedTrainer, "train", lambda *a, **k: pytest.fail("trained before the check"))
    target = tmp_path / "out"
    if case in ("file", "child_of_file"):
        target.write_text("not a folder")
    if case == "masks_is_file":
        target.mkdir()
        (target / "masks").write_text("")
    if case == "no_disk":
        monkeypatch.setattr(outputs.shutil, "disk_usage", lambda path: SimpleNamespace(free=1 << 20))
    if case == "read_only":  # the tests may run as root, whom file modes do not stop: ask os.access instead
        monkeypatch.setattr(outputs.os, "access", lambda path, mode: False)
    where = {"file": target, "empty": "", "child_of_file": target / "sub", "masks_is_file": target,
             "no_disk": target, "read_only": target}[case]
    argv = ["--model_name_or_path", str(tiny_models / "mbert-tiny"), "--output_dir", str(where), "--do_train",
            "--train_file", "data/ner/{lang}/train.jsonl", "--max_steps", "1", "--use_cpu", "--save_model",
            "--pruning_type", "random", "--sparsity", "50"]
    expected = {"file": "is an existing file", "empty": "--output_dir is empty", "child_of_file": "is a file",
                "masks_is_file": "masks is a file", "no_disk": "not enough free disk",
                "read_only": "is not writable"}[case]
    assert expected in _error(run_script, capsys, "ner_fine_tune.py", *argv)


# -- interruptions ---------------------------------------------------------------------------------------------------


def test_ctrl_c_prints_one_line_and_the_run_resumes(reference, tiny_models, tmp_path, run_script, capsys,
                                                     monkeypatch):
    from utils.core import training

    original = training.MaskedTrainer.train
    calls = []

    def interrupted(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(training.MaskedTrainer, "train", interrupted)
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_info:
        run_script("LT_ner.py", *small_imp(tiny_models, out))
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 130 and len(err) == 1
    assert err[0].startswith("interrupted after round 0 (1 of 2 rounds complete") and err[0].endswith("--resume")
    monkeypatch.setattr(training.MaskedTrainer, "train", original)
    run_script("LT_ner.py", *small_imp(tiny_models, out, "--resume"))
    assert digests(out) == digests(reference[0])


def test_full_disk_is_one_line_and_keeps_completed_rounds(tiny_models, tmp_path, run_script, capsys, monkeypatch):
    original = uio.atomic_write

    def full(path, write):
        if Path(path).name == "sparsity_25.pt":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        original(path, write)

    monkeypatch.setattr(uio, "atomic_write", full)
    out = tmp_path / "run"
    err = _error(run_script, capsys, "LT_ner.py", *small_imp(tiny_models, out))
    assert "the disk is full writing" in err and "sparsity_25.pt" in err
    assert json.loads((out / "imp_results.json").read_text())["rounds"] == [] and not list(out.rglob("*.tmp"))


# -- the analysis tools' output folders ------------------------------------------------------------------------------


def test_analysis_dirs_refuse_other_analyses_and_drop_stale_figures(reference, tmp_path, run_script, capsys):
    mask = str(reference[0] / "masks" / "sparsity_25.pt")
    masks = [mask, mask]
    out = tmp_path / "analysis"
    out.mkdir()
    (out / "results_summary.json").write_text("{}")
    (out / "imp_curves_ner.png").write_bytes(b"old")
    args = ["--masks", *masks, "--labels", "a", "b", "--output_dir", str(out)]
    err = _error(run_script, capsys, "mask_similarity.py", *args)
    assert "another analysis' outputs (imp_curves_ner.png, results_summary.json)" in err and "--clear_output_dir" in err
    run_script("mask_similarity.py", *args, "--clear_output_dir")
    assert not (out / "results_summary.json").exists() and (out / "jaccard_heatmap.png").exists()
    run_script("mask_similarity.py", *args, "--no_plots")  # the figures of the earlier run do not stay behind
    assert (out / "mask_similarity.json").exists() and not (out / "jaccard_heatmap.png").exists()
    assert "another analysis" in _error(run_script, capsys, "summarize_results.py", "--runs", str(reference[0]),
                                        "--output_dir", str(out))


def test_files_without_a_results_file_need_the_explicit_flag(tmp_path):
    from utils.infra.errors import UserError
    from utils.infra.outputs import RunPaths, plan_run

    paths = RunPaths(tmp_path / "run")
    (paths.masks_dir).mkdir(parents=True)
    (paths.masks_dir / "sparsity_10.pt").write_bytes(b"x")
    (paths.root / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match=r"files of a run that wrote no results file; pass --discard_unfinished_run "
                                        r"to delete it \(masks/\)"):
        plan_run(paths, "imp", {})
    with pytest.raises(UserError, match="which this run reads"):
        plan_run(paths, "finetune", {}, discard=True, inputs=[paths.masks_dir / "sparsity_10.pt"])
    assert plan_run(paths, "imp", {}, discard=True).clear == [paths.masks_dir]  # never notes.txt
    assert plan_run(RunPaths(tmp_path / "new"), "imp", {}).previous is None


def test_no_run_inside_another_runs_folder_nor_around_one(tmp_path):
    """A run folder below another run's (results, rewind snapshot or study record above it) is refused; a folder
    whose runs/ (the tracking folder a run may clear) holds other runs is never offered for deletion."""
    from utils.infra.errors import UserError
    from utils.infra.outputs import RunPaths, plan_run

    for marker in ("imp_results.json", "finetune_results.json", "rewind_weights.pt", "study_run.json"):
        run = tmp_path / marker.split(".")[0] / "run"
        run.mkdir(parents=True)
        (run / marker).write_text("{}")
        for inside in (run / "masks", run / "a" / "b"):
            with pytest.raises(UserError) as error:
                plan_run(RunPaths(inside), "finetune", {})
            assert str(error.value) == (f"--output_dir {inside} is inside the folder of another run, "
                                        f"{os.path.realpath(run)} (it holds "
                                        f"{marker}): choose a folder outside it")
            assert not inside.exists()
        assert plan_run(RunPaths(run.parent / "sibling"), "finetune", {}).previous is None
    top = tmp_path / "top"
    nested = top / "runs" / "offline" / "LT_ner" / "en" / "imp_results.json"
    nested.parent.mkdir(parents=True)
    nested.write_text("{}")
    for discard in (False, True):
        with pytest.raises(UserError) as error:
            plan_run(RunPaths(top), "imp", {}, discard=discard)
        assert str(error.value) == f"{top} holds other runs' folders (in runs/: {nested}): choose another --output_dir"
    assert nested.is_file()
