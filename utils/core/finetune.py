"""Training under a fixed mask (the transfer experiments): a saved ticket, a random mask, or a one-shot mask."""
from __future__ import annotations

from typing import Any, Callable, Optional

from accelerate import PartialState

from utils.infra.args import ExperimentTrainingArguments, MaskArguments, config_dict
from utils.infra.errors import UserError
from utils.infra.io import write_json
from utils.core.masks import Mask, read_mask_metadata
from utils.infra.outputs import RunPaths, check_free_space, clear_entries, mask_file_bytes, plan_run, run_inputs
from utils.infra.progress import setup_logging
from utils.core.pruning import oneshot_prune, random_prune
from utils.core.training import MaskedTrainer, TaskSetup, format_metrics

# Settings that say where and how a run is kept, not what it computes: a re-run differing only here is the same run.
_BOOKKEEPING_KEYS = ("output_dir", "overwrite_output_dir", "discard_unfinished_run", "resume", "logging_dir",
                     "dataloader_num_workers", "run_name")


def build_fixed_mask(mask_args: MaskArguments, weights, seed: int) -> tuple[Optional[Mask], dict[str, Any]]:
    """The mask a fine-tuning run trains under, and what is known about where it came from."""
    kind = mask_args.pruning_type
    if kind == "lth":
        if not mask_args.mask_dir:
            raise UserError("--pruning_type lth needs --mask_dir (a mask .pt file)")
        mask = Mask.load(mask_args.mask_dir).fit(weights, source=mask_args.mask_dir)
        return mask, {"path": mask_args.mask_dir, "source": read_mask_metadata(mask_args.mask_dir)}
    if kind == "none":
        return None, {}
    sparsity = mask_args.sparsity_fraction
    if sparsity is None:
        raise UserError(f"--pruning_type {kind} needs --sparsity (e.g. 0.5 or 50)")
    if kind == "random":
        return random_prune(weights, sparsity, seed, mask_args.prune_scope), {"seed": seed}
    return oneshot_prune(weights, sparsity, mask_args.prune_scope), {}


def run_finetune(
    build_setup: Callable[[], TaskSetup],
    model_args,
    data_args,
    mask_args: MaskArguments,
    training_args: ExperimentTrainingArguments,
    script: str,
) -> dict:
    setup_logging(training_args)
    paths = RunPaths(training_args.output_dir)
    config = config_dict(model_args, data_args, mask_args, training_args)
    fingerprint = {k: v for k, v in config.items() if k not in _BOOKKEEPING_KEYS}
    plan = plan_run(paths, "finetune", fingerprint, discard=training_args.discard_unfinished_run,
                    inputs=run_inputs(model_args, data_args, mask_args.mask_dir))
    if plan.finished:
        print(f"{paths.root} already holds this fine-tuning run's results; nothing to do "
              f"({format_metrics(plan.previous.get('eval', {}), plan.previous.get('metric', ''))})")
        return plan.previous
    with PartialState(cpu=training_args.use_cpu).main_process_first():  # rank 0 fills the data cache first
        setup = build_setup()  # after the output-directory check, so a refused run fails fast
    trainer = MaskedTrainer(setup, training_args)
    mask, mask_info = build_fixed_mask(mask_args, trainer.weights, training_args.seed)
    for note in setup.notes + (mask.notes if mask is not None else []):
        trainer.print(note)
    trainer.set_mask(mask)
    trainer.mask_checksums_agree()
    check_free_space(paths.root, _output_bytes(trainer, mask_args.save_model),
                     "the saved model and mask" if mask_args.save_model else "the results")  # every rank stops
    if trainer.is_main:
        if plan.clear:
            clear_entries(paths, plan.clear)  # only now that the model, data and mask have all loaded cleanly
        paths.remove_stale_temp_files()
    trainer.accelerator.wait_for_everyone()
    trainer.tracker.start(config)
    sparsity = mask.sparsity if mask is not None else 0.0
    trainer.print(
        f"fine-tuning {setup.task} on {','.join(setup.train_languages)} under a {mask_args.pruning_type} mask "
        f"at sparsity {sparsity:.2%} from {'pre-trained' if mask_args.weight_init == 'pre' else 'random'} weights"
    )

    stats: dict[str, Any] = {"steps": 0, "train_loss": None, "seconds": 0.0, "history": []}
    if training_args.do_train:
        stats = trainer.train(trainer.step_budget, seed=training_args.seed, log_prefix="[fine-tune] ")
    evaluation = trainer.evaluate() if training_args.do_eval else {}
    weight_sparsity = _zero_fraction(trainer.weights)
    results = {
        "script": script,
        "task": setup.task,
        "train_languages": setup.train_languages,
        "model": model_args.model_name_or_path,
        "weight_init": mask_args.weight_init,
        "pruning_type": mask_args.pruning_type,
        "mask": mask_info,
        "sparsity": sparsity,
        "weights_zero_fraction": weight_sparsity,
        "seed": training_args.seed,
        "metric": setup.metric,
        "greater_is_better": setup.greater_is_better,
        "headline": trainer.headline(evaluation) if evaluation else None,
        "eval": evaluation,
        **stats,
        "num_processes": trainer.accelerator.num_processes,
        "config": config,
        "fingerprint": fingerprint,
    }
    trainer.tracker.finish()
    if trainer.is_main:
        write_json(paths.finetune_results, results)
        if mask_args.save_model:
            trainer.unwrapped.save_pretrained(paths.model_dir)
            setup.tokenizer.save_pretrained(paths.model_dir)
            if mask is not None:
                mask.save(paths.model_dir / "mask.pt", {"task": setup.task, "languages": setup.train_languages})
        print(f"\nfine-tune results ({setup.task}, trained on {','.join(setup.train_languages)}, "
              f"sparsity {sparsity:.1%}): {format_metrics(evaluation, setup.metric) or 'no evaluation'}")
        print(f"written to {paths.finetune_results}")
    trainer.accelerator.wait_for_everyone()
    return results


def _output_bytes(trainer: MaskedTrainer, save_model: bool) -> int:
    """What the run writes: the results file, and with --save_model the weights, tokenizer and mask."""
    if not save_model:
        return 1 << 20
    model = sum(t.numel() * t.element_size() for t in trainer.unwrapped.state_dict().values())
    return model + mask_file_bytes(trainer.weights, packed=False) + (64 << 20)


def _zero_fraction(weights) -> float:
    """Fraction of prunable weights that are exactly zero: proves the mask stayed applied through training."""
    total = sum(w.numel() for w in weights.values())
    zeros = sum(int((w == 0).sum()) for w in weights.values())
    return zeros / total if total else 0.0
