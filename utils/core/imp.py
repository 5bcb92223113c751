"""Iterative magnitude pruning with rewinding: the loop every LT_*.py script runs.

Round k trains the current mask for `steps_per_round` optimizer steps from the rewind weights, evaluates, prunes
to the next sparsity of the schedule, saves that mask, and rewinds (`--rewind_scope`: the body, or everything; the
learning rate restarts each round on a schedule that `--lr_schedule_span` sets). The results file is rewritten after every
round, so a killed run continues from its last completed round (`--resume`, or automatically) and, with the
same seed, produces the same masks as an uninterrupted run.
"""
from __future__ import annotations

import functools
import os
import shlex
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch
from transformers import set_seed

from utils.core.budget import round_length
from utils.core.masks import Mask, safe_torch_load
from utils.core.pruning import magnitude_prune, sparsity_schedule
from utils.core.session import RunSession
from utils.core.training import MaskedTrainer, format_metrics
from utils.tasks.base import TaskSetup
from utils.infra.args import IMPArguments, ExperimentTrainingArguments, config_dict
from utils.infra.errors import Interrupted, UserError
from utils.infra.io import save_tensors
from utils.infra.models import head_state_names
from utils.infra.outputs import RunPaths, mask_file_bytes, run_fingerprint, run_inputs
from utils.infra.results_schema import ImpResults, ImpRound, imp_results_from, read_results, to_dict, write_results
from utils.infra.tracking import eta_line, round_values

def mask_fingerprint(model_args, data_args, imp_args: IMPArguments, training_args) -> dict[str, Any]:
    """The settings that change which masks IMP finds: a resumed run must match the interrupted one on all of them
    (the shared rule, less the fields that change only evaluation)."""
    return run_fingerprint(model_args, data_args, imp_args, training_args,
                           ignore=data_args.eval_only_fields + training_args.eval_only_fields)


@dataclass
class Rounds:
    """What every round of one IMP run shares, fixed before the first one starts."""

    schedule: list[float]
    round_steps: int  # optimizer steps per round
    lr_steps: int  # length of the LR schedule each round restarts
    carried_names: list[str]  # --rewind_scope body: the head entries that go on from round to round
    metadata: dict[str, Any]  # the run's description, in the results and in every mask's sidecar
    imp_args: IMPArguments
    seed: int
    do_eval: bool

    def prefix(self, k: int) -> str:
        return f"[round {k} | sparsity {self.schedule[k]:.1%}] "


@dataclass
class ImpState:
    """Where a run stands: its results so far, the rewind weights, the mask the next round trains under, the head
    it starts from (None: rewound with the body) and that round's index."""

    results: ImpResults
    snapshot: dict[str, torch.Tensor]
    mask: Mask
    carried: Optional[dict[str, torch.Tensor]]
    start: int


def lr_schedule_steps(budget: int, imp_args: IMPArguments, round_steps: int) -> int:
    """Length of the LR schedule each round starts afresh and follows for `round_steps` steps.

    `run` (the original): the whole IMP budget, so the rate restarts at its peak each round and decays only a
    little within it (1875 of 18,750 steps for NER); never shorter than a round, so no step trains at rate 0.
    `round`: the round itself, decaying to 0 by its end.
    """
    if imp_args.lr_schedule_span == "round":
        return round_steps
    return max(budget, round_steps)


def _one_line_on_ctrl_c(run: Callable[..., dict]) -> Callable[..., dict]:
    """Ctrl-C during IMP ends with one line saying which rounds are kept and how to resume (exit status 130)."""

    @functools.wraps(run)
    def wrapper(build_setup, model_args, data_args, imp_args, training_args, script: str) -> dict:
        try:
            return run(build_setup, model_args, data_args, imp_args, training_args, script)
        except KeyboardInterrupt:
            raise Interrupted(_interrupted_line(RunPaths(training_args.output_dir), script)) from None

    return wrapper


@_one_line_on_ctrl_c
def run_imp(
    build_setup: Callable[[], TaskSetup],
    model_args,
    data_args,
    imp_args: IMPArguments,
    training_args: ExperimentTrainingArguments,
    script: str,
) -> dict:
    """The whole IMP run: start (or resume), then per round train, prune and save, record; returns the results."""
    if not training_args.do_train:
        raise UserError("IMP trains before every pruning step: pass --do_train")
    schedule = sparsity_schedule(imp_args.prune_rate, imp_args.target_sparsity, imp_args.prune_schedule)
    fingerprint = mask_fingerprint(model_args, data_args, imp_args, training_args)
    session = RunSession("imp", fingerprint, training_args, run_inputs(model_args, data_args),
                         resume=training_args.resume)
    if session.plan.finished:
        return _already_complete(session)
    setup, trainer = session.load(build_setup)  # after the output-directory checks, so a refused run fails fast
    rounds = plan_rounds(setup, trainer, model_args, imp_args, training_args, schedule, script)
    state = start_or_resume(session, trainer, rounds, fingerprint,
                            config_dict(model_args, data_args, imp_args, training_args))
    session.begin(trainer, state.results.config)
    trainer.global_step = state.start * rounds.round_steps
    loop_started = time.time()
    for k in range(state.start, len(schedule)):
        entry = train_round(trainer, session.paths, rounds, state, k)
        prune_and_save(trainer, session.paths, rounds, state, k, entry)
        record_round(trainer, session.paths, rounds, state, entry)
        trainer.log_progress(rounds.prefix(k) + eta_line(k + 1, len(schedule), k + 1 - state.start, time.time() - loop_started))
    trainer.tracker.finish()
    if trainer.is_main:
        session.paths.clear_resume_files()
        print_imp_table(state.results)
    return to_dict(state.results)


def _already_complete(session: RunSession) -> dict:
    if session.is_main:  # what a kill after the last write left
        session.paths.clear_resume_files()
        session.paths.remove_stale_temp_files()
    print(f"{session.paths.root} already holds a complete IMP run of these settings; nothing to do")
    print_imp_table(imp_results_from(session.plan.previous, session.paths.imp_results))
    return session.plan.previous


def plan_rounds(setup: TaskSetup, trainer: MaskedTrainer, model_args, imp_args: IMPArguments,
                training_args: ExperimentTrainingArguments, schedule: list[float], script: str) -> Rounds:
    """Round length, LR schedule, what is rewound and the run's description; says them in the log."""
    round_steps = round_length(training_args.save_steps, trainer.step_budget, len(schedule))
    if imp_args.rewind_step >= round_steps:
        raise UserError(f"--rewind_step {imp_args.rewind_step} must be below the round length {round_steps}")
    metadata = {
        "task": setup.task, "languages": setup.train_languages, "model": model_args.model_name_or_path,
        "seed": training_args.seed, "script": script, "prune_scope": imp_args.prune_scope,
        "prune_schedule": imp_args.prune_schedule, "lr_schedule_span": imp_args.lr_schedule_span,
        "rewind_scope": imp_args.rewind_scope,
    }
    carried = head_state_names(trainer.unwrapped) if imp_args.rewind_scope == "body" else []
    rounds = Rounds(schedule, round_steps, lr_schedule_steps(trainer.step_budget, imp_args, round_steps), carried,
                    metadata, imp_args, training_args.seed, training_args.do_eval)
    weights = trainer.weights
    trainer.log_progress(
        f"IMP on {setup.task} ({','.join(setup.train_languages)}): {len(schedule)} rounds x {round_steps} steps, "
        f"sparsity {schedule[0]:.0%} -> {schedule[-1]:.0%} ({imp_args.prune_schedule}, {imp_args.prune_scope}), "
        f"{sum(w.numel() for w in weights.values()):,} prunable weights in {len(weights)} matrices"
    )
    trainer.log_progress(
        f"each round: learning rate over the first {round_steps} of {rounds.lr_steps} schedule steps "
        f"(--lr_schedule_span {imp_args.lr_schedule_span}); rewinds "
        + (f"all but {', '.join(carried)}" if carried else "every parameter")
        + f" (--rewind_scope {imp_args.rewind_scope})"
    )
    if imp_args.lr_schedule_span == "run" and trainer.step_budget < round_steps:
        trainer.log_progress(f"note: the budget ({trainer.step_budget} steps from --num_train_epochs/--max_steps) is shorter "
                      f"than a round ({round_steps}); the schedule spans one round instead")
    for note in setup.notes:
        trainer.log_progress(note)
    return rounds


def start_or_resume(session: RunSession, trainer: MaskedTrainer, rounds: Rounds, fingerprint: dict[str, Any],
                    config: dict[str, Any]) -> ImpState:
    """The state the next round starts from: the completed rounds an interrupted run left, or a fresh run whose
    results file and rewind weights are written now (results first: a kill between them restarts round 0)."""
    paths, imp_args = session.paths, rounds.imp_args
    previous = imp_results_from(session.plan.previous, paths.imp_results) if session.plan.previous else None
    start = len(previous.rounds) if previous is not None else 0
    snapshot_bytes = sum(t.numel() * t.element_size() for t in trainer.unwrapped.state_dict().values())
    left = len(rounds.schedule) - 1 - start
    masks_bytes = mask_file_bytes(trainer.weights, packed=imp_args.mask_format == "packed") * left
    session.claim(trainer, masks_bytes + snapshot_bytes, f"{left} mask file(s) and the rewind snapshot")
    if previous is not None and previous.rounds:
        last = previous.rounds[-1]
        mask = Mask.load(paths.root / last.next_mask).fit(trainer.weights, source="resumed mask")
        carried = safe_torch_load(paths.root / last.carried_weights) if rounds.carried_names else None
        trainer.log_progress(f"resuming {paths.root}: {start} completed round(s) kept, continuing at sparsity "
                      f"{rounds.schedule[start]:.1%}")
        return ImpState(previous, safe_torch_load(paths.rewind_weights), mask, carried, start)
    if previous is not None:
        trainer.log_progress(f"resuming {paths.root}: no round was completed, starting again from round 0")
    results = ImpResults(
        **rounds.metadata, metric=trainer.setup.metric, greater_is_better=trainer.setup.greater_is_better,
        schedule=rounds.schedule, steps_per_round=rounds.round_steps, rewind_step=imp_args.rewind_step,
        num_processes=trainer.accelerator.num_processes, fingerprint=fingerprint, config=config,
    )
    if trainer.is_main:
        write_results(paths.imp_results, results)  # marks the directory as this run's, resumable from round 0
    snapshot = trainer.snapshot()  # the freshly loaded (seeded) weights: the same on a restart
    if imp_args.rewind_step == 0:
        _save_rewind_weights(trainer, paths, snapshot)
    return ImpState(results, snapshot, Mask.ones_like(trainer.weights), None, 0)


def train_round(trainer: MaskedTrainer, paths: RunPaths, rounds: Rounds, state: ImpState, k: int) -> ImpRound:
    """Round k: rewind, train under the current mask, evaluate; returns the round's results entry."""
    set_seed(rounds.seed + k)
    trainer.set_mask(state.mask)
    trainer.restore(state.snapshot)
    if state.carried is not None:  # --rewind_scope body: the head goes on from where the last round left it
        trainer.load_subset(state.carried)
    checksum = trainer.mask_checksums_agree()
    on_step = _rewind_point(trainer, paths, state, rounds.imp_args.rewind_step) if k == 0 else None
    stats = trainer.train(rounds.round_steps, seed=rounds.seed + k, on_step=on_step, log_prefix=rounds.prefix(k),
                          schedule_steps=rounds.lr_steps)
    evaluation = trainer.evaluate() if rounds.do_eval else {}
    if evaluation:
        trainer.log_progress(f"{rounds.prefix(k)}eval {format_metrics(evaluation, trainer.setup.metric)}")
    return ImpRound(round=k, sparsity=state.mask.sparsity, headline=trainer.headline(evaluation) if evaluation else None,
                    eval=evaluation, steps=stats["steps"], train_loss=stats["train_loss"], seconds=stats["seconds"],
                    history=stats["history"], mask_checksum=checksum)


def _rewind_point(trainer: MaskedTrainer, paths: RunPaths, state: ImpState,
                  rewind_step: int) -> Optional[Callable[[int], None]]:
    """With --rewind_step > 0: a step hook for round 0 that takes (and saves) the rewind weights at that step."""
    if rewind_step <= 0:
        return None

    def on_step(step: int) -> None:
        if step == rewind_step:
            state.snapshot = trainer.snapshot()
            _save_rewind_weights(trainer, paths, state.snapshot)

    return on_step


def prune_and_save(trainer: MaskedTrainer, paths: RunPaths, rounds: Rounds, state: ImpState, k: int,
                   entry: ImpRound) -> None:
    """After every round but the last: prune to the next sparsity, save the mask (and the head that goes on)."""
    if k + 1 == len(rounds.schedule):
        return
    started = time.time()
    state.mask = magnitude_prune(trainer.weights, state.mask, rounds.schedule[k + 1], rounds.imp_args.prune_scope)
    mask_path = paths.mask_file(rounds.schedule[k + 1])
    if trainer.is_main:
        state.mask.save(mask_path, {**rounds.metadata, "round": k + 1, "per_layer_sparsity": state.mask.per_layer()},
                        packed=rounds.imp_args.mask_format == "packed")
    entry.next_mask = str(mask_path.relative_to(paths.root))
    entry.prune_seconds = round(time.time() - started, 3)
    trainer.log_progress(f"{rounds.prefix(k)}pruned to {state.mask.sparsity:.2%} -> {mask_path}")
    if rounds.carried_names:
        state.carried = trainer.state_subset(rounds.carried_names)
        entry.carried_weights = _save_carried_weights(trainer, paths, k, state.carried)


def record_round(trainer: MaskedTrainer, paths: RunPaths, rounds: Rounds, state: ImpState, entry: ImpRound) -> None:
    """Add the round to the results file (what a resumed run continues from) and to the trackers."""
    k = entry.round
    state.results.rounds.append(entry)
    state.results.complete = k + 1 == len(rounds.schedule)
    if trainer.is_main:
        write_results(paths.imp_results, state.results)
        if k > 0:  # the results file now points at this round's head; the previous one is not needed
            paths.carried_weights(k - 1).unlink(missing_ok=True)
    trainer.accelerator.wait_for_everyone()
    trainer.tracker.log(round_values(entry, state.results.metric), step=trainer.global_step)


def _interrupted_line(paths: RunPaths, script: str) -> str:
    """One line for Ctrl-C: what is kept (the results file on disk says) and the command that continues."""
    try:
        results = read_results(paths.imp_results)
        done, num_rounds = len(results["rounds"]), len(results["schedule"])
    except (UserError, KeyError, TypeError):
        return f"interrupted before the first round of {paths.root} started; run the same command again"
    where = f"after round {done - 1} ({done} of {num_rounds} rounds complete" if done else \
        f"in round 0 (no round of {num_rounds} complete"
    command = shlex.join(["python", *sys.argv]) \
        if sys.argv and os.path.basename(sys.argv[0]) == script else f"python {script} <the same arguments>"
    if "--resume" not in sys.argv:
        command += " --resume"
    return f"interrupted {where}, kept in {paths.root}); resume with: {command}"


def _save_rewind_weights(trainer: MaskedTrainer, paths: RunPaths, snapshot: dict[str, torch.Tensor]) -> None:
    if trainer.is_main:
        save_tensors(paths.rewind_weights, snapshot)


def _save_carried_weights(trainer: MaskedTrainer, paths: RunPaths, k: int, carried: dict[str, torch.Tensor]) -> str:
    """The head after round k, which round k+1 starts from; the round's results entry names it, for resuming."""
    path = paths.carried_weights(k)
    if trainer.is_main:
        save_tensors(path, carried)
    return str(path.relative_to(paths.root))


def print_imp_table(results: ImpResults) -> None:
    metric = results.metric
    print(f"\nIMP results ({results.task}, {','.join(results.languages)}): sparsity vs {metric}")
    print(f"{'round':>5}  {'sparsity':>8}  {metric:>10}  {'steps':>6}  {'seconds':>8}  mask")
    for entry in results.rounds:
        value = entry.headline
        shown = f"{value:.4f}" if isinstance(value, (int, float)) else "-"
        print(
            f"{entry.round:>5}  {entry.sparsity:>8.1%}  {shown:>10}  {entry.steps:>6}  "
            f"{entry.seconds:>8.1f}  {entry.next_mask or '-'}"
        )
