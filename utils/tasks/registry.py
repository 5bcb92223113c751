"""Every task by name (the results' `task`, the study's task kind) and the module that defines it; a module is
imported only when its task is asked for."""
from __future__ import annotations

import importlib

from utils.infra.errors import UserError

TASK_MODULES = {
    "ner": "utils.tasks.ner",
    "xnli": "utils.tasks.xnli",
    "mlm": "utils.tasks.mlm",
    "clm": "utils.tasks.clm",
    "mt5_xnli": "utils.tasks.mt5_xnli",
    "pawsx": "utils.tasks.pawsx",
}


def task_spec(name: str):
    """The TaskSpec of task `name` (utils.tasks.base.TaskSpec)."""
    if name not in TASK_MODULES:
        raise UserError(f"unknown task '{name}' (known: {', '.join(TASK_MODULES)})")
    return importlib.import_module(TASK_MODULES[name]).SPEC


def is_known_language(code: str) -> bool:
    """An ISO language code (utils.infra.languages), or a language of some task's hub dataset (WikiANN's ace,
    bat-smg, ...; read only when the ISO tables do not know `code`, since it imports every task module)."""
    from utils.infra.languages import base_code, is_iso_language

    if is_iso_language(code):
        return True
    if base_code(code) is None:  # 'simple', 'all_languages' and sentences are never codes
        return False
    hubs = (task_spec(name).hub for name in TASK_MODULES)
    return any(code.strip().lower() in hub.languages for hub in hubs if hub is not None)
