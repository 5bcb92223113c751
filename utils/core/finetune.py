"""Training under a fixed mask (the transfer experiments): a saved ticket, a random mask, or a one-shot mask."""
from __future__ import annotations

from typing import Any, Callable, Optional

from utils.core.masks import Mask, empty_matrices_text, read_mask_metadata
from utils.core.pruning import oneshot_prune, random_prune
from utils.core.session import RunSession
from utils.core.training import MaskedTrainer, format_metrics
from utils.tasks.base import TaskSetup
from utils.infra.args import ExperimentTrainingArguments, MaskArguments, config_dict
from utils.infra.errors import UserError
from utils.infra.outputs import mask_file_bytes, run_fingerprint, run_inputs
from utils.infra.results_schema import FinetuneResults, finetune_results_from, to_dict, write_results


def build_fixed_mask(mask_args: MaskArguments, weights, seed: int) -> tuple[Optional[Mask], dict[str, Any]]:
    """The mask a fine-tuning run trains under, and what is known about where it came from; a mask that removes
    every weight of a matrix is refused (the run would train to nothing there, and exit 0)."""
    mask, info = _fixed_mask(mask_args, weights, seed)
    empty = mask.empty_matrices() if mask is not None else []
    if empty:
        source = mask_args.mask_dir if mask_args.pruning_type == "lth" else f"the {mask_args.pruning_type} mask"
        raise UserError(f"{source} removes every weight of {empty_matrices_text(empty)}: fine-tuning under it "
                        "cannot learn there; use a mask that keeps some weights of every matrix")
    return mask, info


def _fixed_mask(mask_args: MaskArguments, weights, seed: int) -> tuple[Optional[Mask], dict[str, Any]]:
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
    """Train under one fixed mask (or none), evaluate, and write finetune_results.json; returns the results."""
    config = config_dict(model_args, data_args, mask_args, training_args)
    fingerprint = run_fingerprint(model_args, data_args, mask_args, training_args)
    session = RunSession("finetune", fingerprint, training_args, run_inputs(model_args, data_args, mask_args.mask_dir))
    if session.plan.finished:
        previous = finetune_results_from(session.plan.previous, session.paths.finetune_results)
        print(f"{session.paths.root} already holds this fine-tuning run's results; nothing to do "
              f"({format_metrics(previous.eval, previous.metric)})")
        return session.plan.previous
    setup, trainer = session.load(build_setup)  # after the output-directory check, so a refused run fails fast
    mask, mask_info = build_fixed_mask(mask_args, trainer.weights, training_args.seed)
    for note in setup.notes + (mask.notes if mask is not None else []):
        trainer.log_progress(note)
    trainer.set_mask(mask)
    trainer.mask_checksums_agree()
    session.claim(trainer, _output_bytes(trainer, mask_args.save_model),
                  "the saved model and mask" if mask_args.save_model else "the results")
    session.begin(trainer, config)
    sparsity = mask.sparsity if mask is not None else 0.0
    trainer.log_progress(
        f"fine-tuning {setup.task} on {','.join(setup.train_languages)} under a {mask_args.pruning_type} mask "
        f"at sparsity {sparsity:.2%} from {'pre-trained' if mask_args.weight_init == 'pre' else 'random'} weights"
    )

    stats: dict[str, Any] = {"steps": 0, "train_loss": None, "seconds": 0.0, "history": []}
    if training_args.do_train:
        stats = trainer.train(trainer.step_budget, seed=training_args.seed, log_prefix="[fine-tune] ")
    evaluation = trainer.evaluate() if training_args.do_eval else {}
    results = FinetuneResults(
        script=script, task=setup.task, languages=setup.train_languages, model=model_args.model_name_or_path,
        weight_init=mask_args.weight_init, pruning_type=mask_args.pruning_type, mask=mask_info, sparsity=sparsity,
        weights_zero_fraction=_zero_fraction(trainer.weights), seed=training_args.seed, metric=setup.metric,
        greater_is_better=setup.greater_is_better, headline=trainer.headline(evaluation) if evaluation else None,
        eval=evaluation, **stats, num_processes=trainer.accelerator.num_processes, config=config,
        fingerprint=fingerprint,
    )
    trainer.tracker.finish()
    if trainer.is_main:
        _write_outputs(session.paths, results, trainer, setup, mask, mask_args.save_model)
    trainer.accelerator.wait_for_everyone()
    return to_dict(results)


def _write_outputs(paths, results: FinetuneResults, trainer: MaskedTrainer, setup: TaskSetup, mask: Optional[Mask],
                   save_model: bool) -> None:
    write_results(paths.finetune_results, results)
    if save_model:
        trainer.unwrapped.save_pretrained(paths.model_dir)
        setup.tokenizer.save_pretrained(paths.model_dir)
        if mask is not None:
            mask.save(paths.model_dir / "mask.pt", {"task": setup.task, "languages": setup.train_languages})
    print(f"\nfine-tune results ({setup.task}, trained on {','.join(setup.train_languages)}, "
          f"sparsity {results.sparsity:.1%}): {format_metrics(results.eval, setup.metric) or 'no evaluation'}")
    print(f"written to {paths.finetune_results}")


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
