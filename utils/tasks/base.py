"""The task contract: what a task module gives the generic drivers, and the facts generic code asks it for.

A task module (utils/tasks/<task>.py) defines
- `SPEC`, a `TaskSpec`: its name, scripts, data-argument class, hub dataset and languages, and the defaults it
  changes (mT5 prunes encoder and decoder each, `prune_scope per_stack`);
- a `build_<task>(model_args, data_args, training_args, weight_init)` returning a `TaskSetup`: model, data,
  collator and metric for the drivers in utils/core (IMP and fine-tuning).
Its name is registered in utils.tasks.registry, so the study planner finds it.
"""
from __future__ import annotations

import typing
from dataclasses import dataclass, field, fields, make_dataclass
from functools import cached_property
from typing import Any, Callable, Optional

from accelerate import Accelerator
from torch import nn
from torch.utils.data import DataLoader

from utils.infra.args import IMPArguments, MaskArguments
from utils.infra.data import HubDataset

EvaluateFn = Callable[[nn.Module, DataLoader, Accelerator], dict[str, float]]


@dataclass
class TaskSetup:
    """Everything task-specific that the generic drivers need: model, data, collator and metric."""

    task: str  # "ner", "xnli", "mlm", "mt5_xnli", "pawsx"
    model: nn.Module
    tokenizer: Any
    train_dataset: Any  # a datasets.Dataset (None when not training)
    eval_datasets: dict[str, Any]  # language -> dataset
    collate_fn: Callable
    evaluate: EvaluateFn
    metric: str  # the headline metric key returned by `evaluate`
    greater_is_better: bool
    train_languages: list[str]
    eval_collate_fn: Optional[Callable] = None
    train_lengths: Optional[list[int]] = None  # for --group_by_length
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TaskSpec:
    """A task's facts. `defaults` changes the defaults of IMPArguments / MaskArguments fields for this task
    (declared once there); the scripts parse `imp_arguments` / `mask_arguments`, which carry them."""

    name: str
    imp_script: str
    finetune_script: str
    data_arguments: type
    hub: Optional[HubDataset] = None
    defaults: tuple[tuple[str, Any], ...] = ()
    in_default_retrieval: bool = True  # a study's retrieval runs use its tickets unless told which (Fig. 7: mBERT's)

    @cached_property
    def imp_arguments(self) -> type:
        return with_defaults(IMPArguments, dict(self.defaults), f"{_camel(self.name)}IMPArguments")

    @cached_property
    def mask_arguments(self) -> type:
        return with_defaults(MaskArguments, dict(self.defaults), f"{_camel(self.name)}MaskArguments")


def with_defaults(base: type, defaults: dict[str, Any], name: str) -> type:
    """`base` itself, or a subclass of it in which the fields named in `defaults` default to those values
    (help and choices unchanged)."""
    own = {f.name: f for f in fields(base)}
    hints = typing.get_type_hints(base)
    changed = [(key, hints[key], field(default=value, metadata=own[key].metadata))
               for key, value in defaults.items() if key in own and own[key].default != value]
    if not changed:
        return base
    return make_dataclass(name, changed, bases=(base,), namespace={"__module__": base.__module__})


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))
