"""What each run of a study needs now: skip (complete), resume (unfinished IMP), run, or restart.

A run directory records what it was launched with (study_run.json: script and config). Complete means the script's
results say so AND the recorded spec equals the plan's. A spec that differs is refused, naming the runs and the
settings, unless --restart names the runs (their directories are then deleted, with every run that depends on
them). An analysis whose inputs run again is run again too; a complete training run whose mask is about to be
made again is refused the same way as a changed one. An analysis whose settings changed (the plan changed its
inputs: fewer seeds, languages) simply runs again: it only reads the training runs.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from utils.infra.errors import UserError
from utils.infra.io import read_json
from utils.infra.outputs import IMP_RESULTS, RunPaths, config_differences
from utils.infra.results_schema import read_imp_results
from .plan import ANALYSIS_KINDS, Run, Study

RECORD = "study_run.json"
CONFIG = "config.json"
LOG = "run.log"


@dataclass
class Decision:
    action: str  # skip, run, resume, restart
    reason: str


def recorded_spec(run: Run) -> Optional[dict]:
    path = run.run_dir / RECORD
    if not path.is_file():
        return None
    try:
        data = read_json(path)
    except ValueError:
        return {"script": "?", "config": {}}
    return {"script": data.get("script"), "config": data.get("config", {})}


def is_complete(run: Run) -> bool:
    if not all((run.run_dir / name).is_file() for name in run.outputs):
        return False
    if run.is_imp:
        try:
            return read_imp_results(run.run_dir / IMP_RESULTS).complete
        except UserError:
            return False
    return True


def _differences(old: dict, new: dict) -> list[str]:
    lines = [] if old["script"] == new["script"] else [f"script: {old['script']} -> {new['script']}"]
    return lines + config_differences(old["config"], new["config"])


def _keys(differences: list[str]) -> str:
    """The settings named by `_differences` lines ('runs: [...] -> [...]' -> 'runs')."""
    return ", ".join(line.split(":", 1)[0] for line in differences)


def _dependents(study: Study, roots: set[str]) -> set[str]:
    """The runs that depend on `roots`, directly or not (the plan lists runs after their dependencies)."""
    found = set(roots)
    for run in study.runs.values():
        if any(d in found for d in run.deps):
            found.add(run.id)
    return found


def match_restart(study: Study, patterns: Sequence[str]) -> set[str]:
    named: set[str] = set()
    for pattern in patterns:
        matched = {rid for rid in study.runs if fnmatch.fnmatchcase(rid, pattern.rstrip("/"))}
        if not matched:
            raise UserError(f"--restart '{pattern}' matches no run of the study (ids look like imp/ner/en/s57)")
        named |= matched
    return _dependents(study, named)


def decide(study: Study, restart: Sequence[str] = ()) -> dict[str, Decision]:
    """One decision per run, or one UserError line naming the runs whose settings changed."""
    restarting = match_restart(study, restart)
    decisions: dict[str, Decision] = {}
    changed: list[str] = []
    for run in study.runs.values():
        if run.id in restarting:
            decisions[run.id] = Decision("restart", "named by --restart" if run.run_dir.exists() else "new")
            continue
        old = recorded_spec(run)
        if old is None:
            stray = RunPaths(run.run_dir).result_entries() or [p for p in run.outputs if (run.run_dir / p).exists()]
            if stray:
                changed.append(f"{run.id} (holds results this study did not launch)")
                continue
            decisions[run.id] = Decision("run", "new")
            continue
        differences = _differences(old, run.spec)
        if differences and run.kind in ANALYSIS_KINDS:  # derived from the plan's runs: it follows the plan freely
            decisions[run.id] = Decision("run", f"its inputs changed ({_keys(differences)})")
            continue
        if differences:
            changed.append(f"{run.id} ({'; '.join(differences[:3])}{'; ...' if len(differences) > 3 else ''})")
            continue
        rerun_deps = [d for d in run.deps if d in decisions and decisions[d].action != "skip"]
        if is_complete(run) and not rerun_deps:
            decisions[run.id] = Decision("skip", "complete")
        elif is_complete(run) and run.kind not in ANALYSIS_KINDS:
            changed.append(f"{run.id} (complete, but its input {rerun_deps[0]} runs again)")
        elif is_complete(run):
            decisions[run.id] = Decision("run", f"input {rerun_deps[0]} runs again")
        elif run.is_imp and (run.run_dir / IMP_RESULTS).is_file():
            decisions[run.id] = Decision("resume", "unfinished")
        else:
            decisions[run.id] = Decision("run", "failed or interrupted before")
    if changed:
        more = f" and {len(changed) - 5} more" if len(changed) > 5 else ""
        raise UserError(f"the study file changed {len(changed)} existing run(s): {', '.join(changed[:5])}{more}; "
                        "pass --restart RUN_GLOB (e.g. --restart 'imp/ner/*') to delete and start them again")
    return decisions


def last_line(path: Path) -> str:
    """The last non-empty line of a log (progress bars' carriage returns split lines too)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            handle.seek(max(0, handle.tell() - 8192))
            tail = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return "(no log)"
    lines = [line.strip() for line in tail.replace("\r", "\n").splitlines() if line.strip()]
    return lines[-1] if lines else "(empty log)"
