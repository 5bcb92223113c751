"""The set-up every training run shares (IMP and fine-tuning), in the order that keeps earlier results safe:

1. `RunSession(...)`: logging, then the output folder's plan, before anything loads, so a refused run fails fast;
2. `load(build_setup)`: the task (rank 0 fills the data cache first) and the trainer;
3. the driver loads what else it needs (a mask, the rewind weights) and then calls `claim(...)`: free space is
   checked on every rank, and only now, with everything loaded cleanly, are an unfinished run's files cleared;
4. `begin(trainer, config)`: every rank waits for the others, and the trackers start.
"""
from __future__ import annotations

from typing import Any, Callable

from accelerate import PartialState

from utils.core.training import MaskedTrainer
from utils.tasks.base import TaskSetup
from utils.infra.args import ExperimentTrainingArguments
from utils.infra.outputs import RunPaths, check_free_space, clear_entries, plan_run
from utils.infra.progress import setup_logging


class RunSession:
    """One run's output folder and the steps that take it over (see the module docstring for their order)."""

    def __init__(self, kind: str, fingerprint: dict[str, Any], training_args: ExperimentTrainingArguments,
                 inputs: list, resume: bool = False) -> None:
        setup_logging(training_args)
        self.training_args = training_args
        self.paths = RunPaths(training_args.output_dir)
        self.plan = plan_run(self.paths, kind, fingerprint, resume=resume,
                             discard=training_args.discard_unfinished_run, inputs=inputs)

    @property
    def is_main(self) -> bool:
        return PartialState(cpu=self.training_args.use_cpu).is_main_process

    def load(self, build_setup: Callable[[], TaskSetup]) -> tuple[TaskSetup, MaskedTrainer]:
        with PartialState(cpu=self.training_args.use_cpu).main_process_first():  # rank 0 fills the data cache first
            setup = build_setup()
        return setup, MaskedTrainer(setup, self.training_args)

    def claim(self, trainer: MaskedTrainer, needed_bytes: int, what: str) -> None:
        """Check the space the run will write (on every rank, so all stop together), then clear what an unfinished
        run left: only once the model, the data and every input have loaded cleanly."""
        check_free_space(self.paths.root, needed_bytes, what)
        if trainer.is_main:
            if self.plan.clear:
                clear_entries(self.paths, self.plan.clear)
            self.paths.remove_stale_temp_files()

    def begin(self, trainer: MaskedTrainer, config: dict[str, Any]) -> None:
        trainer.accelerator.wait_for_everyone()
        trainer.tracker.start(config)
