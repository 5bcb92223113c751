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
