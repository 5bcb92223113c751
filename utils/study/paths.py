"""Keeping a study inside its folder: names that become folders are single safe components, every run folder
resolves inside the study folder, and what a run records names study paths relative to the study folder.

A task name or language becomes a folder of every run id (imp/<task>/<lang>/s<seed>): '../x', 'a/b' or an absolute
path would put runs, and their --restart deletion, outside the study. Names are checked where the study file gives
them (one line naming the value and its place); every run folder is checked again, resolved, before anything is
created or deleted in it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator, Optional

from utils.infra.errors import UserError

# Besides letters and digits (any script): what a language code, task name or sparsity needs; '+' joins the
# languages of a mixture and ',' separates them in data_language, so neither may appear inside one language.
_EXTRA_CHARACTERS = set("-_.=@")
MAX_COMPONENT_BYTES = 255  # a file name's limit on Linux and macOS
STUDY_DIR_TOKEN = "{study_dir}"  # recorded in place of the study folder (study_run.json), so a moved study resumes


def component_problem(name: Any, extra: str = "") -> Optional[str]:
    """Why `name` cannot be one folder name under the study folder (None when it can)."""
    if not isinstance(name, str) or not name:
        return "it is empty" if name == "" else f"it is not a string ({type(name).__name__})"
    bad = sorted({c for c in name if not (c.isalnum() or c in _EXTRA_CHARACTERS or c in extra)})
    if bad:
        return f"it contains {', '.join(repr(c) for c in bad)}"
    if name[0] in "-.":
        return f"it starts with {name[0]!r}"
    if len(name.encode("utf-8")) > MAX_COMPONENT_BYTES:
        return f"it is longer than {MAX_COMPONENT_BYTES} bytes"
    return None


def check_component(name: Any, where: str, extra: str = "") -> str:
    """`name`, or one UserError line naming the value and where it is (letters, digits and - _ . = @ only)."""
    problem = component_problem(name, extra)
    if problem:
        raise UserError(f"{where}: {name!r} cannot name a folder ({problem}): use letters, digits and - _ . = @ "
                        "(not first: - or .)")
    return name


def check_run_id(run_id: str) -> str:
    """A run id is folders joined by '/', each a safe component ('+' joins a mixture's languages)."""
    for part in run_id.split("/"):
        problem = component_problem(part, extra="+")
        if problem:
            raise UserError(f"run id {run_id!r}: folder {part!r} is not allowed ({problem})")
    return run_id


def inside(path: Path, root: Path) -> bool:
    """Whether `path` resolves (links followed, '..' applied) to `root` or a folder under it."""
    resolved, base = Path(path).resolve(), Path(root).resolve()
    return resolved == base or base in resolved.parents


def check_inside(path: Path, root: Path, what: str) -> Path:
    """`path`, or one UserError line when it resolves outside the study folder `root` (before touching it)."""
    if not inside(path, root):
        raise UserError(f"{what} {path} resolves to {Path(path).resolve()}, outside the study folder {root} "
                        "(a '..' or a symbolic link): refusing to write or delete there")
    return path


def check_study_names(raw: dict, path: str) -> None:
    """Every name of the study file that becomes a folder of a run id: task names, languages (eval and targets
    too), multilingual groups and retrieval pairs. Values of the wrong type are left to the schema checks."""
    for where, value, extra in _names(raw):
        check_component(value, f"{path}: {where}", extra)


def _strings(value: Any, where: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, str):
                yield f"{where}[{i}]", item


def _names(raw: dict) -> Iterator[tuple[str, Any, str]]:
    if "study_dir" not in raw and isinstance(raw.get("name"), str):
        yield "name (the default study folder is runs/studies/<name>)", raw["name"], ""
    tasks = raw.get("tasks")
    for name, spec in (tasks.items() if isinstance(tasks, dict) else []):
        yield "tasks (a task name)", name, ""
        for key in ("languages", "eval_languages"):
            for where, lang in _strings(spec.get(key) if isinstance(spec, dict) else None, f"tasks.{name}.{key}"):
                yield where, lang, ""
    for group in ("multilingual", "consensus"):
        entries = raw.get(group)
        for i, entry in enumerate(entries if isinstance(entries, list) else []):
            for key in ("languages", "targets"):
                for where, lang in _strings(entry.get(key) if isinstance(entry, dict) else None,
                                            f"{group}[{i}].{key}"):
                    yield where, lang, ""
    oneshot = raw.get("oneshot")
    for key in ("languages", "eval_languages"):
        for where, lang in _strings(oneshot.get(key) if isinstance(oneshot, dict) else None, f"oneshot.{key}"):
            yield where, lang, ""
    retrieval = raw.get("retrieval")
    for where, pair in _strings(retrieval.get("pairs") if isinstance(retrieval, dict) else None, "retrieval.pairs"):
        yield where, pair, ""


# ---------------------------------------------------------------------------------------------------------------
# Recorded specs: study paths relative to the study folder
# ---------------------------------------------------------------------------------------------------------------


def relative_value(value: Any, root: str) -> Any:
    """A config value with the study folder `root` written as {study_dir} (strings and lists of strings)."""
    if isinstance(value, list):
        return [relative_value(v, root) for v in value]
    if isinstance(value, str) and root not in ("", ".") and (value == root or value.startswith(root + os.sep)):
        return STUDY_DIR_TOKEN + value[len(root):]
    return value


def relative_config(config: dict[str, Any], root: str | os.PathLike) -> dict[str, Any]:
    """The config as recorded in study_run.json: the same wherever the study folder is moved or copied."""
    return {key: relative_value(value, str(root)) for key, value in config.items()}


def recorded_root(config: dict[str, Any], run_id: str) -> Optional[str]:
    """The study folder an older record (absolute paths) was written under: the folder its own run's paths end
    with the run id in (output_dir, or a file in it); None when no value says so unambiguously."""
    roots = set()
    for value in config.values():
        for item in value if isinstance(value, list) else [value]:
            if not isinstance(item, str):
                continue
            for candidate in (item, os.path.dirname(item)):
                if candidate.endswith(os.sep + run_id):
                    roots.add(candidate[: -len(run_id) - 1])
    return roots.pop() if len(roots) == 1 else None
