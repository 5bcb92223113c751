"""What each run of a study needs now: skip (complete), resume (unfinished IMP), run, or restart.

A run directory records what it was launched with (study_run.json: script and config, study paths relative to the
study folder, so a moved study resumes). Complete means the script's results say so AND the recorded spec equals
the plan's. A run without results may change freely: it simply runs with the new settings. A run with results
whose spec differs is refused, naming the runs, the settings and a --restart argument that matches exactly them
(their directories are then deleted, with every run that depends on them); so is a run with results whose record
or results file cannot be read (the file is named). An analysis whose inputs run again is run again too; a
complete training run whose mask is about to be made again is refused the same way as a changed one.
"""
from __future__ import annotations

import fnmatch
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from utils.infra.errors import UserError, first_line
from utils.infra.io import read_json
from utils.infra.outputs import IMP_RESULTS, RunPaths, config_differences
from utils.infra.results_schema import read_imp_results
from .paths import recorded_root, relative_config
from .plan import ANALYSIS_KINDS, Run, Study

RECORD = "study_run.json"
CONFIG = "config.json"
LOG = "run.log"


@dataclass
class Decision:
    action: str  # skip, run, resume, restart
    reason: str


def record(run: Run, study_dir: Path) -> dict:
    """What study_run.json holds: the run's spec with study paths written relative to the study folder."""
    return {"id": run.id, "kind": run.kind, "script": run.script, "config": relative_config(run.config, study_dir),
            "deps": run.deps}


def planned_spec(run: Run, study_dir: Path) -> dict:
    return {"script": run.script, "config": relative_config(run.config, study_dir)}


def recorded_spec(run: Run) -> Optional[dict]:
    """The spec a run directory records (relative paths; an older record's absolute ones converted), None when
    there is no record, or one UserError line naming the record when it cannot be read."""
    path = run.run_dir / RECORD
    if not path.is_file():
        return None
    try:
        data = read_json(path)
    except (ValueError, OSError) as error:
        raise UserError(f"cannot read {path} ({first_line(error)})") from None
    if not isinstance(data, dict) or not isinstance(data.get("config"), dict) or "script" not in data:
        raise UserError(f"cannot read {path} (not a study run record with 'script' and 'config')")
    root = recorded_root(data["config"], run.id)
    return {"script": data["script"], "config": relative_config(data["config"], root) if root else data["config"]}


def completion(run: Run) -> str:
    """'complete', 'partial' (an IMP run with rounds recorded) or 'none'; one UserError line naming a results
    file that cannot be read."""
    if run.is_imp and (run.run_dir / IMP_RESULTS).is_file():
        if read_imp_results(run.run_dir / IMP_RESULTS).complete:
            return "complete"
        return "partial"
    if run.is_imp or not all((run.run_dir / name).is_file() for name in run.outputs):
        return "none"
    for name in run.outputs:
        if name.endswith(".json"):
            try:
                read_json(run.run_dir / name)
            except (ValueError, OSError) as error:
                raise UserError(f"cannot read {run.run_dir / name} ({first_line(error)})") from None
    return "complete"


def is_complete(run: Run) -> bool:
    try:
        return completion(run) == "complete"
    except UserError:
        return False


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
    """One decision per run, or one UserError line naming the runs with results that changed or cannot be read,
    and the --restart argument that matches exactly them."""
    restarting = match_restart(study, restart)
    decisions: dict[str, Decision] = {}
    refused: dict[str, tuple[str, bool]] = {}  # run id -> why, whether the settings changed
    for run in study.runs.values():
        if run.id in restarting:
            decisions[run.id] = Decision("restart", "named by --restart" if run.run_dir.exists() else "new")
            continue
        outcome = _decide_run(study, run, decisions)
        if isinstance(outcome, Decision):
            decisions[run.id] = outcome
        else:
            refused[run.id] = outcome
    if refused:
        raise UserError(refusal(study, refused))
    return decisions


def _decide_run(study: Study, run: Run, decisions: dict[str, Decision]) -> Decision | tuple[str, bool]:
    """What one run needs, given its dependencies' decisions; or why it is refused (and whether it changed)."""
    try:
        state = completion(run)
    except UserError as error:
        return f"{error}", False
    try:
        old = recorded_spec(run)
    except UserError as error:
        if state != "none":
            return f"{error}", False
        return Decision("run", f"{error}; it has no results, so it runs again")
    if old is None:
        stray = RunPaths(run.run_dir).result_entries() or [p for p in run.outputs if (run.run_dir / p).exists()]
        return ("holds results this study did not launch", False) if stray else Decision("run", "new")
    differences = _differences(old, planned_spec(run, study.study_dir))
    if differences and run.kind in ANALYSIS_KINDS:  # derived from the plan's runs: it follows the plan freely
        return Decision("run", f"its inputs changed ({_keys(differences)})")
    if differences:
        shown = f"{'; '.join(differences[:3])}{'; ...' if len(differences) > 3 else ''}"
        return (shown, True) if state != "none" else Decision("run", f"settings changed ({shown}); no results yet")
    rerun_deps = [d for d in run.deps if d in decisions and decisions[d].action != "skip"]
    if state == "complete" and not rerun_deps:
        return Decision("skip", "complete")
    if state == "complete" and run.kind not in ANALYSIS_KINDS:
        return f"complete, but its input {rerun_deps[0]} runs again", False
    if state == "complete":
        return Decision("run", f"input {rerun_deps[0]} runs again")
    if state == "partial":
        return Decision("resume", "unfinished")
    return Decision("run", "failed or interrupted before")


def refusal(study: Study, refused: dict[str, tuple[str, bool]]) -> str:
    """One line: the runs with results that cannot go on as they are, and a --restart that names exactly them."""
    listed = [f"{rid} ({why})" for rid, (why, _) in list(refused.items())[:5]]
    more = f" and {len(refused) - 5} more" if len(refused) > 5 else ""
    them = "it" if len(refused) == 1 else "them"
    restart = (f"pass --restart {' '.join(shlex.quote(g) for g in restart_globs(list(study.runs), set(refused)))} "
               f"to delete {them} (with the runs that depend on {them}) and run again")
    if all(changed for _, changed in refused.values()):
        return (f"the study file changed {len(refused)} existing run(s) with results: {', '.join(listed)}{more}; "
                f"undo the change to keep {them}, or {restart}")
    return (f"{len(refused)} existing run(s) with results cannot go on as they are: {', '.join(listed)}{more}; "
            f"repair or undo what is named to keep {them}, or {restart}")


def restart_globs(run_ids: Sequence[str], chosen: set[str]) -> list[str]:
    """Globs for --restart that match exactly `chosen` among the study's run ids: a whole folder as 'a/b/*',
    alike siblings as 'a/*/c', else the ids themselves."""
    paths = [tuple(r.split("/")) for r in run_ids]
    globs = ["/".join(p) for p in _cover(paths, {tuple(r.split("/")) for r in chosen})]
    matched = {r for r in run_ids if any(fnmatch.fnmatchcase(r, g) for g in globs)}
    return globs if matched == set(chosen) else sorted(chosen)  # the ids themselves are always exact


def _cover(paths: list[tuple[str, ...]], chosen: set[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """Relative patterns matching exactly the chosen ones of `paths` (the ids below one folder, as components)."""
    if not any(p in chosen for p in paths):
        return []
    itself = [()] if () in paths and () in chosen else []
    below = [p for p in paths if p]
    if all(p in chosen for p in below):
        return itself + ([("*",)] if below else [])
    children: dict[str, list[tuple[str, ...]]] = {}
    for path in below:
        children.setdefault(path[0], []).append(path[1:])
    alike: dict[tuple, list[str]] = {}
    for name, rest in children.items():
        patterns = tuple(_cover(rest, {c[1:] for c in chosen if c and c[0] == name}))
        if patterns:
            alike.setdefault(patterns, []).append(name)
    result = list(itself)
    for patterns, names in alike.items():
        merged = [("*",) + p for p in patterns]
        exact = all(path in chosen for path in below
                    if any(fnmatch.fnmatchcase("/".join(path), "/".join(m)) for m in merged))
        result += merged if len(names) > 1 and exact else [(n,) + p for n in names for p in patterns]
    return result


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
