"""Training under a fixed mask, shared by the IMP driver and the fine-tuning scripts.

One `MaskedTrainer` per run owns the Accelerator (devices, mixed precision, DDP under torchrun / accelerate launch),
the prepared model, optimizer and dataloaders. Pruned weights stay exactly zero: their gradients are zeroed before
clipping, and the weights are multiplied by the mask after every optimizer step (no torch.nn.utils.prune hooks).
"""
from __future__ import annotations

import logging
import math
import time
from typing import Any, Callable, Iterator, Optional

import torch
from accelerate import Accelerator
from accelerate.utils import TorchDynamoPlugin, gather_object
from torch import nn
from torch.utils.data import DataLoader, RandomSampler, SequentialSampler
from transformers import Trainer, get_scheduler
from transformers.trainer_pt_utils import LengthGroupedSampler

from utils.infra.args import ExperimentTrainingArguments
from utils.infra.errors import UserError
from utils.core.budget import step_budget
from utils.core.masks import BoundMask, Mask
from utils.infra.progress import bars_wanted, progress_bar
from utils.core.pruning import prunable_weights
from utils.infra.tracking import RunTracker, accelerator_tracking_kwargs, eval_scalars
from utils.tasks.base import TaskSetup

logger = logging.getLogger(__name__)

class TrainingDiverged(UserError):
    """The loss became NaN or infinite."""


class MaskedTrainer:
    def __init__(self, setup: TaskSetup, args: ExperimentTrainingArguments) -> None:
        self.setup = setup
        self.args = args
        mixed = "bf16" if args.bf16 else "fp16" if args.fp16 else "no"
        self.accelerator = Accelerator(
            mixed_precision=mixed, gradient_accumulation_steps=args.gradient_accumulation_steps, cpu=args.use_cpu,
            dynamo_plugin=_dynamo_plugin(args), **accelerator_tracking_kwargs(args),
        )
        self.tracker = RunTracker(self.accelerator, args)
        self.global_step = 0  # optimizer steps over the whole run: the trackers' x axis
        self.show_bars = bars_wanted(args.disable_tqdm, self.accelerator.is_main_process)
        self.generator = torch.Generator()
        model = setup.model
        if args.activation_checkpointing:  # also set by its older name, --gradient_checkpointing
            model.activation_checkpointing_enable(args.activation_checkpointing_kwargs or {"use_reentrant": False})
        optimizer = build_optimizer(model, args)
        # A scheduler wraps optimizer.step to check the call order; wrapping it once now, before accelerate keeps
        # the method (fp16), stops each round's new scheduler from warning "optimizer.step() has been overridden".
        torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
        train_loader = self._train_loader() if setup.train_dataset is not None else None
        if train_loader is not None:
            self.model, self.optimizer, self.train_loader = self.accelerator.prepare(model, optimizer, train_loader)
        else:
            self.model, self.optimizer = self.accelerator.prepare(model, optimizer)
            self.train_loader = None
        self.eval_loaders = {
            lang: self.accelerator.prepare(self._eval_loader(dataset)) for lang, dataset in setup.eval_datasets.items()
        }
        scaler = self.accelerator.scaler  # fp16 only: its loss scale is reset with the optimizer each round
        self._fresh_scaler_state = scaler.state_dict() if scaler is not None and scaler.is_enabled() else None
        self.unwrapped = self.accelerator.unwrap_model(self.model, keep_torch_compile=False)
        self.weights = prunable_weights(self.unwrapped)
        self.mask: Optional[Mask] = None
        self._bound: Optional[BoundMask] = None
        self.scheduler = None

    # -- properties --------------------------------------------------------------------------------------------
    @property
    def is_main(self) -> bool:
        return self.accelerator.is_main_process

    def log_progress(self, *values: Any) -> None:
        """A progress line (logger 'utils.core.training': --log_level on the main process, --log_level_replica else)."""
        logger.info(" ".join(str(v) for v in values))

    @property
    def steps_per_epoch(self) -> int:
        return max(1, len(self.train_loader) // self.args.gradient_accumulation_steps)

    @property
    def step_budget(self) -> int:
        """Optimizer steps the run's budget allows: --max_steps, else --num_train_epochs of the training data."""
        args = self.args  # with --max_steps the training data need not be counted (nor loaded)
        return step_budget(args.max_steps, args.num_train_epochs, self.steps_per_epoch if args.max_steps <= 0 else 0)

    # -- data ----------------------------------------------------------------------------------------------------
    def _train_loader(self) -> DataLoader:
        args, dataset = self.args, self.setup.train_dataset
        if args.group_by_length:
            lengths = self.setup.train_lengths or [len(ids) for ids in dataset["input_ids"]]
            sampler = LengthGroupedSampler(
                args.per_device_train_batch_size * self.accelerator.num_processes, lengths=lengths, generator=self.generator
            )
        else:
            sampler = RandomSampler(dataset, generator=self.generator)
        return DataLoader(
            dataset,
            batch_size=args.per_device_train_batch_size,
            sampler=sampler,
            generator=self.generator,  # worker seeds from our generator, not the global RNG (resumable rounds)
            collate_fn=self.setup.collate_fn,
            num_workers=args.dataloader_num_workers,
            pin_memory=args.dataloader_pin_memory and torch.cuda.is_available(),
            persistent_workers=args.dataloader_persistent_workers and args.dataloader_num_workers > 0,
            prefetch_factor=args.dataloader_prefetch_factor if args.dataloader_num_workers > 0 else None,
            drop_last=args.dataloader_drop_last,  # training batches only: evaluation sees every example
        )

    def _eval_loader(self, dataset) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.args.per_device_eval_batch_size,
            sampler=SequentialSampler(dataset),
            generator=torch.Generator(),  # iterating must not draw from the global RNG: evaluating mid-round
            collate_fn=self.setup.eval_collate_fn or self.setup.collate_fn,  # would change the training that follows
            num_workers=self.args.dataloader_num_workers,
            pin_memory=self.args.dataloader_pin_memory and torch.cuda.is_available(),
            prefetch_factor=self.args.dataloader_prefetch_factor if self.args.dataloader_num_workers > 0 else None,
        )

    def _batches(self, seed: int) -> Iterator[dict]:
        """Endless training batches; epoch e of a run seeded `seed` always sees the same order (resumable).
        --data_seed, when given, replaces --seed for the order only."""
        if self.args.data_seed is not None:
            seed = seed - self.args.seed + self.args.data_seed
        epoch = 0
        while True:
            self.generator.manual_seed(seed * 1_000_003 + epoch)
            if hasattr(self.train_loader, "set_epoch"):
                self.train_loader.set_epoch(epoch)
            yield from self.train_loader
            epoch += 1

    # -- weights, masks, rewinding -------------------------------------------------------------------------------
    def set_mask(self, mask: Optional[Mask]) -> None:
        """Train under `mask` from now on (None: dense) and zero the pruned weights at once. The bound copy, in
        the weights' device and dtype, is what training uses; the (CPU) mask itself is kept for its checksum."""
        self.mask = mask
        self._bound = mask.bind(self.weights) if mask is not None else None
        self._mask_weights()

    def _mask_weights(self) -> None:
        if self._bound is not None:
            self._bound.apply_to_weights()

    def snapshot(self) -> dict[str, torch.Tensor]:
        """A real CPU copy of every parameter and buffer (never a view that training would change)."""
        return {k: v.detach().to("cpu", copy=True) for k, v in self.unwrapped.state_dict().items()}

    def restore(self, snapshot: dict[str, torch.Tensor]) -> None:
        self.unwrapped.load_state_dict(snapshot, strict=True)
        self._mask_weights()

    def state_subset(self, names: list[str]) -> dict[str, torch.Tensor]:
        """CPU copies of some state-dict entries (the task head that `--rewind_scope body` carries over)."""
        state = self.unwrapped.state_dict()
        return {name: state[name].detach().to("cpu", copy=True) for name in names}

    def load_subset(self, subset: dict[str, torch.Tensor]) -> None:
        unexpected = self.unwrapped.load_state_dict(subset, strict=False).unexpected_keys
        if unexpected:
            raise UserError(f"saved weights do not fit the model: unexpected {', '.join(unexpected[:3])}")

    def mask_checksums_agree(self) -> str:
        """Prove every rank holds the same mask (a no-op check with one process)."""
        checksum = self.mask.checksum() if self.mask is not None else "dense"
        sums = gather_object([checksum]) if self.accelerator.num_processes > 1 else [checksum]
        if len(set(sums)) != 1:
            raise RuntimeError(f"ranks hold different masks: {sums}")
        return checksum

    # -- training ------------------------------------------------------------------------------------------------
    def reset_optimizer(self, num_steps: int) -> None:
        """A fresh optimizer state and an LR schedule over `num_steps`, from its first step (each IMP round)."""
        inner = getattr(self.optimizer, "optimizer", self.optimizer)
        inner.state.clear()
        if self._fresh_scaler_state is not None:  # a resumed round must start from the same loss scale
            self.accelerator.scaler.load_state_dict(self._fresh_scaler_state)
        for group in inner.param_groups:
            group["lr"] = group.get("initial_lr", group["lr"])
        self.scheduler = get_scheduler(
            self.args.lr_scheduler_type,
            inner,
            num_warmup_steps=self.args.get_warmup_steps(num_steps),
            num_training_steps=num_steps,
            scheduler_specific_kwargs=self.args.lr_scheduler_kwargs or {},
        )

    def train(
        self,
        num_steps: int,
        seed: int,
        on_step: Optional[Callable[[int], None]] = None,
        log_prefix: str = "",
        schedule_steps: Optional[int] = None,
    ) -> dict[str, Any]:
        """Run `num_steps` optimizer steps under the current mask; returns loss, steps, seconds, eval history.

        The learning rate follows the first `num_steps` steps of a fresh schedule over `schedule_steps` (default:
        `num_steps`, a schedule that ends with the training)."""
        args, accelerator, model = self.args, self.accelerator, self.model
        self.reset_optimizer(schedule_steps or num_steps)
        model.train()
        batches = self._batches(seed)
        step, window_loss, window_batches, total_loss, total_batches = 0, None, 0, 0.0, 0
        history: list[dict[str, Any]] = []
        started = time.time()
        bar = progress_bar(total=num_steps, enabled=self.show_bars, desc=log_prefix.strip() or "training", unit="step")
        while step < num_steps:
            batch = next(batches)
            with accelerator.accumulate(model):
                loss = model(**batch).loss
                accelerator.backward(loss)
                window_loss = loss.detach() if window_loss is None else window_loss + loss.detach()
                window_batches += 1
                if not accelerator.sync_gradients:
                    continue
                clip = (lambda: accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)) \
                    if args.max_grad_norm and args.max_grad_norm > 0 else None
                masked_optimizer_step(self.optimizer, self.scheduler, self._bound, clip)
            step += 1
            self.global_step += 1
            bar.update(1)
            if self.show_bars and step % 10 == 0 and window_batches:  # running loss since the last logged step
                bar.set_postfix(loss=f"{float(window_loss) / window_batches:.4f}", refresh=False)
            every = step % max(1, args.logging_steps) == 0
            if every or step == num_steps or (args.logging_first_step and step == 1):
                mean_loss = float(accelerator.reduce(window_loss, reduction="mean")) / window_batches
                if not math.isfinite(mean_loss):
                    raise TrainingDiverged(
                        f"{log_prefix}loss became {mean_loss} at step {step}: lower --learning_rate or drop --fp16"
                    )
                total_loss, total_batches = total_loss + mean_loss * window_batches, total_batches + window_batches
                window_loss, window_batches = None, 0
                lr = self.scheduler.get_last_lr()[0]
                self.log_progress(f"{log_prefix}step {step}/{num_steps} loss {mean_loss:.4f} lr {lr:.3g}")
                self.tracker.log({"train/loss": mean_loss, "train/learning_rate": lr}, step=self.global_step)
                if args.evaluate_during_training and args.do_eval and every and step < num_steps and self.eval_loaders:
                    history.append({"step": step, "eval": self.evaluate()})
                    self.log_progress(f"{log_prefix}step {step} eval {format_metrics(history[-1]['eval'], self.setup.metric)}")
                    model.train()
            if on_step is not None:
                on_step(step)
        bar.close()
        return {
            "steps": step,
            "train_loss": total_loss / max(1, total_batches),
            "seconds": round(time.time() - started, 2),
            "history": history,
        }

    @torch.no_grad()
    def evaluate(self) -> dict[str, dict[str, float]]:
        """Metrics per evaluation language, plus their mean under 'average' when there are several."""
        self.model.eval()
        results = {}
        for lang, loader in self.eval_loaders.items():
            batches = progress_bar(loader, True, desc=f"eval {lang}", unit="batch") if self.show_bars else loader
            with self.accelerator.autocast():
                results[lang] = self.setup.evaluate(self.model, batches, self.accelerator)
        if len(results) > 1:
            keys = set.intersection(*(set(r) for r in results.values()))
            results["average"] = {k: sum(r[k] for r in results.values()) / len(results) for k in sorted(keys)}
        self.tracker.log(eval_scalars(results), step=self.global_step)
        return results

    def headline(self, results: dict[str, dict[str, float]]) -> Optional[float]:
        """The single number a round is judged by: the metric on the training language(s)."""
        langs = [lang for lang in self.setup.train_languages if lang in results]
        if not langs:
            return None
        return sum(results[lang][self.setup.metric] for lang in langs) / len(langs)


def masked_optimizer_step(optimizer, scheduler, bound: Optional[BoundMask],
                          clip_grads: Optional[Callable[[], Any]] = None) -> None:
    """One optimizer step that keeps pruned weights at exactly zero: their gradients are zeroed before clipping
    (so they add nothing to the norm), and the weights are multiplied by the mask again after the step (AdamW's
    momentum and weight decay would otherwise move them). `bound` None: a dense step."""
    if bound is not None:
        bound.apply_to_grads()
    if clip_grads is not None:
        clip_grads()
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    if bound is not None:
        bound.apply_to_weights()


def build_optimizer(model: nn.Module, args: ExperimentTrainingArguments) -> torch.optim.Optimizer:
    """The optimizer `--optim` names (AdamW, Adafactor, ...); no weight decay on biases and LayerNorm weights."""
    optimizer_cls, optimizer_kwargs = Trainer.get_optimizer_cls_and_kwargs(args, model)
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    groups = [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return optimizer_cls(groups, **optimizer_kwargs)


def _dynamo_plugin(args: ExperimentTrainingArguments) -> Optional[TorchDynamoPlugin]:
    """--torch_compile (with --torch_compile_backend / --torch_compile_mode): accelerate compiles the model."""
    if not args.torch_compile:
        return None
    return TorchDynamoPlugin(backend=args.torch_compile_backend or "inductor", mode=args.torch_compile_mode)


def format_metrics(results: dict[str, dict[str, float]], metric: str) -> str:
    return ", ".join(f"{lang} {metric} {values[metric]:.4f}" for lang, values in results.items() if metric in values)
