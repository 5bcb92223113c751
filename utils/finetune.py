"""Training under a fixed mask (the transfer experiments): a saved ticket, a random mask, or a one-shot mask."""
from __future__ import annotations

from typing import Any, Callable, Optional

from accelerate import PartialState

from .args import ExperimentTrainingArguments, MaskArguments, config_dict
from .errors import UserError
from .io import write_json
from .masks import Mask, read_mask_metadata
from .outputs import RunPaths, guard_output_dir
from .progress import setup_logging
from .pruning import oneshot_prune, random_prune
from .training import MaskedTrainer, TaskSetup, format_metrics


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
    guard_output_dir(paths, training_args.overwrite_output_dir)
    with PartialState(cpu=training_args.use_cpu).main_process_first():  # rank 0 fills the data cache first
        setup = build_setup()  # after the output-directory check, so a refused run fails fast
    trainer = MaskedTrainer(setup, training_args)
    mask, mask_info = build_fixed_mask(mask_args, trainer.weights, training_args.seed)
    for note in setup.notes + (mask.notes if mask is not None else []):
        trainer.print(note)
    trainer.set_mask(mask)
    trainer.mask_checksums_agree()
    if trainer.is_main and training_args.overwrite_output_dir:
        paths.clear_results()  # only now that the model, data and mask have all loaded cleanly
    trainer.accelerator.wait_for_everyone()
    trainer.tracker.start(config_dict(model_args, data_args, mask_args, training_args))
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
        "config": config_dict(model_args, data_args, mask_args, training_args),
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


def _zero_fraction(weights) -> float:
    """Fraction of prunable weights that are exactly zero: proves the mask stayed applied through training."""
    total = sum(w.numel() for w in weights.values())
    zeros = sum(int((w == 0).sum()) for w in weights.values())
    return zeros / total if total else 0.0
