"""Iterative magnitude pruning with rewinding: the loop every LT_*.py script runs.

Round k trains the current mask for `steps_per_round` optimizer steps from the rewind weights, evaluates, prunes
to the next sparsity of the schedule, saves that mask, and rewinds (`--rewind_scope`: the body, or everything; the
learning rate restarts each round on a schedule that `--lr_schedule_span` sets). The results file is rewritten after every
round, so a killed run continues from its last completed round (`--resume`, or automatically) and, with the
same seed, produces the same masks as an uninterrupted run.
"""
from __future__ import annotations

import functools
import math
import os
import shlex
import sys
import time
from dataclasses import asdict
from typing import Any, Callable

import torch
from transformers import set_seed

from accelerate import PartialState

from utils.infra.args import IMPArguments, ExperimentTrainingArguments, config_dict
from utils.infra.errors import Interrupted, UserError
from utils.infra.io import save_tensors, write_json
from utils.core.masks import Mask, safe_torch_load
from utils.infra.models import head_state_names
from utils.infra.outputs import RunPaths, check_free_space, clear_entries, mask_file_bytes, plan_run, read_results, run_inputs
from utils.infra.progress import setup_logging
from utils.core.pruning import magnitude_prune, sparsity_schedule
from utils.infra.tracking import eta_line, round_values
from utils.core.training import MaskedTrainer, TaskSetup, format_metrics

# Settings that change which masks IMP finds; a resumed run must match the interrupted one on all of them.
_TRAINING_KEYS_THAT_SHAPE_MASKS = (
    "seed", "learning_rate", "weight_decay", "adam_beta1", "adam_beta2", "adam_epsilon", "max_grad_norm",
    "num_train_epochs", "max_steps", "save_steps", "warmup_steps", "lr_scheduler_type", "optim",
    "per_device_train_batch_size", "gradient_accumulation_steps", "fp16", "bf16", "group_by_length", "do_train",
    "data_seed",
)


def mask_fingerprint(model_args, data_args, imp_args: IMPArguments, training_args) -> dict[str, Any]:
    settings = {k: v for k, v in asdict(model_args).items() if k not in ("cache_dir", "model_type")}
    settings.update({k: v for k, v in asdict(data_args).items() if k not in data_args.eval_only_fields})
    settings.update({k: v for k, v in asdict(imp_args).items() if k != "mask_format"})
    settings.update({k: getattr(training_args, k) for k in _TRAINING_KEYS_THAT_SHAPE_MASKS})
    return {k: (v if isinstance(v, (str, int, float, bool, type(None))) else str(v)) for k, v in settings.items()}


def steps_per_round(trainer: MaskedTrainer, args: ExperimentTrainingArguments, num_rounds: int) -> int:
    """--save_steps, as the original used it; without it, the epoch (or max_steps) budget split over the rounds."""
    if args.save_steps and args.save_steps >= 1:
        return int(args.save_steps)
    return max(1, math.ceil(trainer.step_budget / num_rounds))


def lr_schedule_steps(trainer: MaskedTrainer, imp_args: IMPArguments, round_steps: int) -> int:
    """Length of the LR schedule each round starts afresh and follows for `round_steps` steps.

    `run` (the original): the whole IMP budget, so the rate restarts at its peak each round and decays only a
    little within it (1875 of 18,750 steps for NER); never shorter than a round, so no step trains at rate 0.
    `round`: the round itself, decaying to 0 by its end.
    """
    if imp_args.lr_schedule_span == "round":
        return round_steps
    return max(trainer.step_budget, round_steps)


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
    if not training_args.do_train:
        raise UserError("IMP trains before every pruning step: pass --do_train")
    setup_logging(training_args)
    paths = RunPaths(training_args.output_dir)
    schedule = sparsity_schedule(imp_args.prune_rate, imp_args.target_sparsity, imp_args.prune_schedule)
    fingerprint = mask_fingerprint(model_args, data_args, imp_args, training_args)
    plan = plan_run(paths, "imp", fingerprint, resume=training_args.resume,
                    discard=training_args.discard_unfinished_run, inputs=run_inputs(model_args, data_args))
    previous = plan.previous
    if plan.finished:
        if PartialState(cpu=training_args.use_cpu).is_main_process:  # what a kill after the last write left
            paths.clear_resume_files()
            paths.remove_stale_temp_files()
        print(f"{paths.root} already holds a complete IMP run of these settings; nothing to do")
        print_imp_table(previous)
        return previous

    with PartialState(cpu=training_args.use_cpu).main_process_first():  # rank 0 fills the data cache first
        setup = build_setup()  # after the output-directory checks, so a refused run fails fast
    trainer = MaskedTrainer(setup, training_args)
    round_steps = steps_per_round(trainer, training_args, len(schedule))
    if imp_args.rewind_step >= round_steps:
        raise UserError(f"--rewind_step {imp_args.rewind_step} must be below the round length {round_steps}")
    weights = trainer.weights
    metadata = {
        "task": setup.task,
        "languages": setup.train_languages,
        "model": model_args.model_name_or_path,
        "seed": training_args.seed,
        "script": script,
        "prune_scope": imp_args.prune_scope,
        "prune_schedule": imp_args.prune_schedule,
        "lr_schedule_span": imp_args.lr_schedule_span,
        "rewind_scope": imp_args.rewind_scope,
    }
    total_weights = sum(w.numel() for w in weights.values())
    lr_steps = lr_schedule_steps(trainer, imp_args, round_steps)
    carried_names = head_state_names(trainer.unwrapped) if imp_args.rewind_scope == "body" else []
    trainer.print(
        f"IMP on {setup.task} ({','.join(setup.train_languages)}): {len(schedule)} rounds x {round_steps} steps, "
        f"sparsity {schedule[0]:.0%} -> {schedule[-1]:.0%} ({imp_args.prune_schedule}, {imp_args.prune_scope}), "
        f"{total_weights:,} prunable weights in {len(weights)} matrices"
    )
    trainer.print(
        f"each round: learning rate over the first {round_steps} of {lr_steps} schedule steps "
        f"(--lr_schedule_span {imp_args.lr_schedule_span}); rewinds "
        + (f"all but {', '.join(carried_names)}" if carried_names else "every parameter")
        + f" (--rewind_scope {imp_args.rewind_scope})"
    )
    if imp_args.lr_schedule_span == "run" and trainer.step_budget < round_steps:
        trainer.print(f"note: the budget ({trainer.step_budget} steps from --num_train_epochs/--max_steps) is shorter "
                      f"than a round ({round_steps}); the schedule spans one round instead")
    for note in setup.notes:
        trainer.print(note)

    start = len(previous["rounds"]) if previous is not None else 0
    snapshot_bytes = sum(t.numel() * t.element_size() for t in trainer.unwrapped.state_dict().values())
    masks_bytes = mask_file_bytes(weights, packed=imp_args.mask_format == "packed") * (len(schedule) - 1 - start)
    check_free_space(paths.root, masks_bytes + snapshot_bytes, f"{len(schedule) - 1 - start} mask file(s) and the "
                     "rewind snapshot")  # on every rank, so that all of them stop together
    if trainer.is_main:
        if plan.clear:
            clear_entries(paths, plan.clear)  # only now that model, data and arguments have all loaded cleanly
        paths.remove_stale_temp_files()
    if previous is not None and previous["rounds"]:
        results = previous
        done = results["rounds"]
        snapshot = safe_torch_load(paths.rewind_weights)
        mask = Mask.load(paths.root / done[-1]["next_mask"]).fit(weights, source="resumed mask")
        carried = safe_torch_load(paths.root / done[-1]["carried_weights"]) if carried_names else None
        start = len(done)
        trainer.print(f"resuming {paths.root}: {start} completed round(s) kept, continuing at sparsity {schedule[start]:.1%}")
    else:
        if previous is not None:
            trainer.print(f"resuming {paths.root}: no round was completed, starting again from round 0")
        results = {
            "script": script,
            **metadata,
            "metric": setup.metric,
            "greater_is_better": setup.greater_is_better,
            "schedule": schedule,
            "steps_per_round": round_steps,
            "rewind_step": imp_args.rewind_step,
            "num_processes": trainer.accelerator.num_processes,
            "fingerprint": fingerprint,
            "config": config_dict(model_args, data_args, imp_args, training_args),
            "rounds": [],
            "complete": False,
        }
        if trainer.is_main:  # first: a kill between it and the rewind snapshot leaves a run that restarts round 0
            write_json(paths.imp_results, results)  # marks the directory as this run's, resumable from round 0
        snapshot = trainer.snapshot()  # the freshly loaded (seeded) weights: the same on a restart
        mask = Mask.ones_like(weights)
        carried = None
        start = 0
        if imp_args.rewind_step == 0:
            _save_rewind_weights(trainer, paths, snapshot)
    trainer.accelerator.wait_for_everyone()
    trainer.tracker.start(results["config"])
    trainer.global_step = start * round_steps
    loop_started = time.time()

    for k in range(start, len(schedule)):
        set_seed(training_args.seed + k)
        trainer.set_mask(mask)
        trainer.restore(snapshot)
        if carried is not None:  # --rewind_scope body: the head goes on from where the last round left it
            trainer.load_subset(carried)
        checksum = trainer.mask_checksums_agree()
        prefix = f"[round {k} | sparsity {schedule[k]:.1%}] "
        on_step = None
        if k == 0 and imp_args.rewind_step > 0:
            def on_step(step: int) -> None:
                nonlocal snapshot
                if step == imp_args.rewind_step:
                    snapshot = trainer.snapshot()
                    _save_rewind_weights(trainer, paths, snapshot)
        stats = trainer.train(
            round_steps, seed=training_args.seed + k, on_step=on_step, log_prefix=prefix, schedule_steps=lr_steps
        )
        evaluation = trainer.evaluate() if training_args.do_eval else {}
        entry: dict[str, Any] = {
            "round": k,
            "sparsity": mask.sparsity,
            "metric": trainer.headline(evaluation) if evaluation else None,
            "eval": evaluation,
            "steps": stats["steps"],
            "train_loss": stats["train_loss"],
            "seconds": stats["seconds"],
            "history": stats["history"],
            "mask_checksum": checksum,
        }
        if evaluation:
            trainer.print(f"{prefix}eval {format_metrics(evaluation, setup.metric)}")
        if k + 1 < len(schedule):
            started = time.time()
            mask = magnitude_prune(weights, mask, schedule[k + 1], imp_args.prune_scope)
            mask_path = paths.mask_file(schedule[k + 1])
            if trainer.is_main:
                mask.save(
                    mask_path,
                    {**metadata, "round": k + 1, "per_layer_sparsity": mask.per_layer()},
                    packed=imp_args.mask_format == "packed",
                )
            entry["next_mask"] = str(mask_path.relative_to(paths.root))
            entry["prune_seconds"] = round(time.time() - started, 3)
            trainer.print(f"{prefix}pruned to {mask.sparsity:.2%} -> {mask_path}")
            if carried_names:
                carried = trainer.state_subset(carried_names)
                entry["carried_weights"] = _save_carried_weights(trainer, paths, k, carried)
        results["rounds"].append(entry)
        results["complete"] = k + 1 == len(schedule)
        if trainer.is_main:
            write_json(paths.imp_results, results)
            if k > 0:  # the results file now points at this round's head; the previous one is not needed
                paths.carried_weights(k - 1).unlink(missing_ok=True)
        trainer.accelerator.wait_for_everyone()
        trainer.tracker.log(round_values(entry, setup.metric), step=trainer.global_step)
        trainer.print(prefix + eta_line(k + 1, len(schedule), k + 1 - start, time.time() - loop_started))

    trainer.tracker.finish()
    if trainer.is_main:
        paths.clear_resume_files()
        print_imp_table(results)
    return results


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


def print_imp_table(results: dict) -> None:
    metric = results.get("metric", "metric")
    languages = ",".join(results.get("languages", []))
    print(f"\nIMP results ({results.get('task')}, {languages}): sparsity vs {metric}")
    print(f"{'round':>5}  {'sparsity':>8}  {metric:>10}  {'steps':>6}  {'seconds':>8}  mask")
    for entry in results["rounds"]:
        value = entry.get("metric")
        shown = f"{value:.4f}" if isinstance(value, (int, float)) else "-"
        print(
            f"{entry['round']:>5}  {entry['sparsity']:>8.1%}  {shown:>10}  {entry['steps']:>6}  "
            f"{entry['seconds']:>8.1f}  {entry.get('next_mask', '-')}"
        )
