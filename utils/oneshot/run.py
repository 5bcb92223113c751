"""prune_oneshot.py's run: check every input, load the model, measure, prune block by block, measure, write.

The mask goes to OUTPUT_DIR/masks/sparsity_<s>.pt in the format every other script reads (with its metadata
sidecar), the run's record to oneshot_results.json (utils.infra.results_schema.OneshotResults), and with
--save_weights the pruned model (SparseGPT: with its updated weights) to OUTPUT_DIR/model.
"""
from __future__ import annotations

import resource
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForMaskedLM, AutoModelForSeq2SeqLM
from transformers.models.auto.modeling_auto import (MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
                                                    MODEL_FOR_MASKED_LM_MAPPING_NAMES)

from utils.core.masks import Mask
from utils.core.pruning import prunable_weights
from utils.infra.args import InferenceModelArguments, config_dict, split_languages
from utils.infra.errors import UserError, first_line
from utils.infra.models import load_model, load_tokenizer
from utils.infra.outputs import (RunPaths, check_free_space, clear_entries, mask_file_bytes, plan_run)
from utils.infra.progress import progress_bar
from utils.infra.results_schema import OneshotBlock, OneshotResults, to_dict, write_results
from utils.oneshot.blocks import (Block, OffloadHooks, capture_calls, find_blocks, input_hooks, layer_inputs,
                                  place_model, probe_overrides, run_block)
from utils.oneshot.calibration import (draw_samples, eval_windows, leading_ids, parse_eval_files, perplexity,
                                       read_documents, samples_sha256, token_stream)
from utils.oneshot.methods import METHODS, NEEDS_CALIBRATION, LayerPruner, Settings, Structure


@dataclass
class OneshotArguments:
    """prune_oneshot.py's flags (the model comes from InferenceModelArguments)."""

    output_dir: str = field(metadata={"help": "Where masks/, oneshot_results.json (and model/) go."})
    method: str = field(default="wanda", metadata={"help": "magnitude (per layer), wanda (per output row) or "
                                                           "sparsegpt (per block of columns; updates the kept "
                                                           "weights).",
                                                   "choices": list(METHODS)})
    sparsity: float = field(default=0.5, metadata={"help": "Fraction (0.5) or percentage (50) of weights removed."})
    structure: str = field(default="unstructured",
                           metadata={"help": "unstructured, or N:M (keep N of every M consecutive inputs: 2:4, 4:8)."})
    calibration_file: Optional[str] = field(
        default=None, metadata={"help": "Plain text (a document per line) or JSON lines with 'text'; '{lang}' ok."})
    dataset_name: Optional[str] = field(default=None, metadata={"help": "Hub dataset (configs = languages) "
                                                                        "instead of --calibration_file."})
    data_language: str = field(default="en", metadata={"help": "Calibration language, or a comma list sharing "
                                                               "the samples equally."})
    calibration_samples: int = field(default=128, metadata={"help": "Samples (the papers: 128)."})
    calibration_batch_size: int = field(default=1, metadata={"help": "Samples per forward pass (the reference code: "
                                                                     "1); more is faster on a CPU, with the same "
                                                                     "statistics up to float rounding."})
    calibration_seq_len: int = field(default=2048, metadata={"help": "Tokens per sample and per eval window "
                                                                     "(the papers: 2048)."})
    seed: int = field(default=0, metadata={"help": "Which windows are drawn (the reference code: 0)."})
    eval_files: Optional[str] = field(default=None, metadata={"help": "Held-out text per language, en=PATH,fr=PATH: "
                                                                      "perplexity before and after (causal LMs)."})
    offload: bool = field(default=False, metadata={"help": "Keep the model on the CPU; one block at a time on the "
                                                           "accelerator."})
    save_weights: bool = field(default=False, metadata={"help": "Write the pruned model (and tokenizer) to "
                                                                "OUTPUT_DIR/model."})
    mask_format: str = field(default="bool", metadata={"help": "bool, or packed (1 bit per weight).",
                                                       "choices": ["bool", "packed"]})
    sparsegpt_block_size: int = field(default=128, metadata={"help": "SparseGPT: columns per block (the paper: 128)."})
    sparsegpt_damping: float = field(default=0.01, metadata={"help": "SparseGPT: fraction of the Hessian's mean "
                                                                     "diagonal added to it (the paper: 0.01)."})
    discard_unfinished_run: bool = field(default=False, metadata={"help": "Delete an unfinished run's files in "
                                                                          "--output_dir."})

    @property
    def languages(self) -> list[str]:
        return split_languages(self.data_language)


def settings_from(args: OneshotArguments) -> Settings:
    """The method's settings, refused with one line when the structure cannot reach the sparsity."""
    sparsity = args.sparsity / 100 if args.sparsity >= 1 else args.sparsity
    if sparsity <= 0:
        raise UserError(f"--sparsity must be above 0, got {args.sparsity}")
    structure = Structure.parse(args.structure)
    structure.check(sparsity)
    if args.calibration_batch_size < 1 or args.calibration_samples % args.calibration_batch_size:
        raise UserError(f"--calibration_batch_size {args.calibration_batch_size} must be >= 1 and divide "
                        f"--calibration_samples {args.calibration_samples} (every batch the same shape)")
    if structure.is_nm and args.method == "sparsegpt" and args.sparsegpt_block_size % structure.group:
        raise UserError(f"--sparsegpt_block_size {args.sparsegpt_block_size} must be a multiple of the N:M group "
                        f"size {structure.group}")
    return Settings(args.method, sparsity, structure, args.sparsegpt_block_size, args.sparsegpt_damping)


def model_class(config) -> type:
    """Seq2Seq LM for encoder-decoders, causal LM for decoders, masked LM for encoders (BERT)."""
    if getattr(config, "is_encoder_decoder", False):
        return AutoModelForSeq2SeqLM
    kind = config.model_type
    if kind in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and kind not in MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        return AutoModelForCausalLM
    return AutoModelForMaskedLM


def model_inputs(config, ids: torch.Tensor) -> dict[str, torch.Tensor]:
    """A forward pass's inputs for one sample; an encoder-decoder's decoder reads the same window shifted right."""
    inputs = {"input_ids": ids}
    if getattr(config, "is_encoder_decoder", False):
        start = config.decoder_start_token_id if config.decoder_start_token_id is not None else config.pad_token_id
        inputs["decoder_input_ids"] = torch.cat([torch.full_like(ids[:, :1], start), ids[:, :-1]], dim=1)
    return inputs


@dataclass
class Inputs:
    """Everything read and checked before the model loads."""

    config: Any
    auto_class: type
    tokenizer: Any
    samples: torch.Tensor  # (samples, seq_len) token ids
    eval_sets: dict[str, torch.Tensor]  # language -> (windows, seq_len)
    source: str


def read_inputs(model_args: InferenceModelArguments, args: OneshotArguments, settings: Settings) -> Inputs:
    """The model's kind checked, the calibration samples drawn and the eval text cut into windows."""
    config, auto_class, eval_files = check_model(model_args, args, settings)
    source = args.calibration_file or args.dataset_name
    if source is None and NEEDS_CALIBRATION[settings.method]:
        raise UserError(f"--method {settings.method} needs calibration text: pass --calibration_file or "
                        "--dataset_name")
    documents = {lang: read_documents(args.calibration_file, lang, "--calibration_file", args.dataset_name)
                 for lang in args.languages} if source else {}
    tokenizer = load_tokenizer(model_args)
    prefix = leading_ids(tokenizer)
    samples = draw_samples({lang: token_stream(tokenizer, docs) for lang, docs in documents.items()},
                           args.calibration_samples, args.calibration_seq_len, args.seed, source, prefix) \
        if documents else torch.zeros(0, args.calibration_seq_len, dtype=torch.long)
    eval_sets = {lang: eval_windows(token_stream(tokenizer, read_documents(path, lang, "--eval_files")),
                                    args.calibration_seq_len, lang, prefix) for lang, path in eval_files.items()}
    return Inputs(config, auto_class, tokenizer, samples, eval_sets, source or "")


def check_model(model_args: InferenceModelArguments, args: OneshotArguments, settings: Settings) -> tuple[Any, type, dict]:
    """The config, the model class, and the eval files; the architecture checked on a skeleton without weights."""
    try:
        config = AutoConfig.from_pretrained(model_args.model_name_or_path, cache_dir=model_args.cache_dir,
                                            trust_remote_code=model_args.trust_remote_code)
    except (OSError, ValueError) as error:
        raise UserError(f"cannot load model '{model_args.model_name_or_path}': {first_line(error)}") from None
    auto_class = model_class(config)
    eval_files = parse_eval_files(args.eval_files)
    if eval_files and auto_class is not AutoModelForCausalLM:
        raise UserError(f"--eval_files: perplexity is measured for causal language models; "
                        f"{model_args.model_name_or_path} is a {config.model_type} model")
    limit = getattr(config, "max_position_embeddings", None)
    if limit is not None and args.calibration_seq_len > limit:
        raise UserError(f"--calibration_seq_len {args.calibration_seq_len} exceeds the model's {limit} positions")
    try:
        with torch.device("meta"):  # the architecture without its weights: built in seconds, before loading
            skeleton = auto_class.from_config(config, trust_remote_code=model_args.trust_remote_code)
    except Exception:  # noqa: BLE001 - a model that cannot be built on the meta device is checked once loaded
        skeleton = None
    if skeleton is not None:
        check_architecture(skeleton, settings)
    return config, auto_class, eval_files


def check_architecture(model, settings: Settings) -> "OrderedDict[str, list[Block]]":
    """The model's blocks; stops when it has none or a matrix's width does not fit the N:M groups."""
    blocks, _outside = find_blocks(model)
    for block in (b for stack in blocks.values() for b in stack):
        for name, (module, transposed) in layer_inputs(model, block).items():
            settings.structure.check_width(name, module.weight.shape[0 if transposed else 1])
    return blocks


# ---------------------------------------------------------------------------------------------------------------
# Pruning
# ---------------------------------------------------------------------------------------------------------------


class PeakMemory:
    """Peak memory while a block is pruned: the accelerator's allocated bytes (reset per block), or on the CPU the
    process's peak resident size so far (which cannot be reset)."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.kind = "cuda_max_allocated" if self.cuda else "process_max_rss"

    def reset(self) -> None:
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()

    def mib(self) -> float:
        if self.cuda:
            return round(torch.cuda.max_memory_allocated() / 2**20, 1)
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


@dataclass
class PruneRun:
    """What pruning needs besides the model: the blocks, the samples, the method and where to run."""

    blocks: "OrderedDict[str, list[Block]]"
    samples: torch.Tensor
    settings: Settings
    device: torch.device
    offload: bool
    show_progress: Optional[bool] = None
    batch_size: int = 1  # samples per forward pass (calibration_samples is a multiple of it)

    @property
    def all_blocks(self) -> list[Block]:
        return [b for stack in self.blocks.values() for b in stack]


@torch.no_grad()
def prune_model(model, run: PruneRun) -> tuple[dict[str, torch.Tensor], list[OneshotBlock], str]:
    """Prune every block of every stack in order; returns the masks by parameter name, a record per block and
    what the memory figures measure. The model's pruned weights are zeroed in place (SparseGPT: kept ones updated)."""
    masks: dict[str, torch.Tensor] = {}
    records: list[OneshotBlock] = []
    memory = PeakMemory(run.device)
    for stack, blocks in run.blocks.items():
        calls, overrides = stack_inputs(model, blocks, run)
        bar = progress_bar(blocks, enabled=run.show_progress, desc=f"{run.settings.method} {stack}", unit="block")
        for block, override in zip(bar, overrides):
            memory.reset()
            started = time.time()
            block_masks = prune_block(model, block, calls, override, run)
            masks.update(block_masks)
            kept = sum(int(m.sum()) for m in block_masks.values())
            total = sum(m.numel() for m in block_masks.values())
            records.append(OneshotBlock(block=block.name, sparsity=1 - kept / total,
                                        seconds=round(time.time() - started, 3), peak_memory_mib=memory.mib()))
    return masks, records, memory.kind


def stack_inputs(model, blocks: list[Block], run: PruneRun) -> tuple[list, list]:
    """The calls of the stack's first block, one per sample, and each block's own arguments; none for magnitude."""
    if not NEEDS_CALIBRATION[run.settings.method]:
        return [], [None] * len(blocks)
    with OffloadHooks(run.all_blocks, run.device, run.offload):
        size = run.batch_size
        samples = (model_inputs(model.config, run.samples[i: i + size].to(run.device))
                   for i in range(0, run.samples.shape[0], size))
        calls = capture_calls(model, blocks[0].module, samples)
        overrides = probe_overrides(model, blocks, model_inputs(model.config, run.samples[:size].to(run.device)))
    return calls, overrides


def prune_block(model, block: Block, calls: list, override, run: PruneRun) -> dict[str, torch.Tensor]:
    """Gather the block's input statistics on the current inputs, prune its matrices, and replace the inputs by
    the pruned block's outputs (the next block's inputs)."""
    if run.offload:
        block.module.to(run.device)
    layers = layer_inputs(model, block)
    pruners = {name: LayerPruner(model.get_parameter(name), transposed, run.settings)
               for name, (_module, transposed) in layers.items()}
    if calls:
        handles = input_hooks(layers, lambda name, x: pruners[name].add(x))
        try:
            run_block(block.module, calls, override, replace=False)
        finally:
            for handle in handles:
                handle.remove()
    masks = {name: pruner.prune() for name, pruner in pruners.items()}
    del pruners
    if calls:
        run_block(block.module, calls, override)
    if run.offload:
        block.module.to("cpu")
    return masks


def measure(model, eval_sets: dict[str, torch.Tensor], run: PruneRun) -> dict[str, float]:
    with OffloadHooks(run.all_blocks, run.device, run.offload):
        return {lang: round(perplexity(model, windows, run.device), 4) for lang, windows in eval_sets.items()}


# ---------------------------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------------------------


WINDOWS = "leading special tokens, then the text"  # how samples are cut (before 2026-12-06: the text alone)


def fingerprint_of(model_args: InferenceModelArguments, args: OneshotArguments) -> dict[str, Any]:
    """The settings that decide the mask; the batch size does not (the same statistics), the window rule does."""
    config = config_dict(model_args, args)
    skip = ("output_dir", "discard_unfinished_run", "cache_dir", "calibration_batch_size")
    return {**{k: v for k, v in config.items() if k not in skip}, "windows": WINDOWS}


def run_oneshot(model_args: InferenceModelArguments, args: OneshotArguments, show_progress: Optional[bool] = None) -> dict:
    """Check the folder and every input, load, measure, prune, measure, write; returns the results."""
    settings = settings_from(args)
    paths = RunPaths(args.output_dir)
    fingerprint = fingerprint_of(model_args, args)
    local = [Path(p) for p in (model_args.model_name_or_path, args.calibration_file) if p and Path(p).exists()]
    plan = plan_run(paths, "oneshot", fingerprint, discard=args.discard_unfinished_run, inputs=local)
    if plan.finished:
        print(f"{paths.root} already holds a one-shot pruning run of these settings; nothing to do")
        return plan.previous
    inputs = read_inputs(model_args, args, settings)
    if plan.clear:
        clear_entries(paths, plan.clear)
    started = time.time()
    model, run = load_for_pruning(model_args, args, inputs, settings, paths, show_progress)
    before = measure(model, inputs.eval_sets, run)
    masks, records, memory_kind = prune_model(model, run)
    after = measure(model, inputs.eval_sets, run)
    weights = prunable_weights(model)
    mask = Mask(OrderedDict((n, masks.get(n, torch.ones(w.shape, dtype=torch.bool))) for n, w in weights.items()))
    results = OneshotResults(
        model=model_args.model_name_or_path, method=settings.method, structure=str(settings.structure),
        sparsity=settings.sparsity, languages=args.languages, seed=args.seed,
        calibration={"source": inputs.source, "samples": int(inputs.samples.shape[0]),
                     "seq_len": args.calibration_seq_len, "tokens_sha256": samples_sha256(inputs.samples)},
        perplexity_before=before, perplexity_after=after, blocks=records, memory_kind=memory_kind,
        device=str(run.device), offload=args.offload, config=config_dict(model_args, args), fingerprint=fingerprint)
    outside = [n for n in weights if n not in masks]
    write_outputs(paths, model, inputs.tokenizer, mask, results, outside, args.mask_format == "packed",
                  args.save_weights)
    results.seconds = round(time.time() - started, 3)
    write_results(paths.oneshot_results, results)  # last: its presence marks the run complete
    print_summary(results, mask, paths)
    return to_dict(results)


def load_for_pruning(model_args: InferenceModelArguments, args: OneshotArguments, inputs: Inputs, settings: Settings,
                     paths: RunPaths, show_progress: Optional[bool]) -> tuple[Any, PruneRun]:
    """The model in eval mode without a cache, on the accelerator (with --offload: all but its blocks), once the
    disk is known to hold what the run writes."""
    model = load_model(inputs.auto_class, model_args, "pre", seed=args.seed).eval()
    model.config.use_cache = False
    weights = prunable_weights(model)
    extra = sum(w.numel() * w.element_size() for w in model.parameters()) if args.save_weights else 0
    check_free_space(paths.root, mask_file_bytes(weights, args.mask_format == "packed") + extra,
                     "the mask" + (" and the pruned model" if args.save_weights else ""))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    run = PruneRun(check_architecture(model, settings), inputs.samples, settings, device, args.offload, show_progress,
                   args.calibration_batch_size)
    place_model(model, run.all_blocks, device, args.offload)
    return model, run


def write_outputs(paths: RunPaths, model, tokenizer, mask: Mask, results: OneshotResults, outside: list[str],
                  packed: bool, save_weights: bool) -> None:
    """The mask and its metadata sidecar; with save_weights the pruned model and tokenizer (on the CPU)."""
    mask_path = paths.mask_file(results.sparsity)
    metadata = {
        "task": f"oneshot-{results.method}", "languages": results.languages, "model": results.model,
        "seed": results.seed, "script": results.script, "method": results.method, "structure": results.structure,
        "target_sparsity": results.sparsity, "calibration_file": results.config.get("calibration_file"),
        "dataset_name": results.config.get("dataset_name"), "calibration_samples": results.calibration["samples"],
        "calibration_seq_len": results.calibration["seq_len"], "tokens_sha256": results.calibration["tokens_sha256"],
        "weights_updated": results.method == "sparsegpt", "dense_outside_blocks": outside,
        "per_layer_sparsity": mask.per_layer(),
    }
    mask.save(mask_path, metadata, packed=packed)
    results.mask = str(mask_path.relative_to(paths.root))
    if save_weights:
        model.to("cpu")
        model.save_pretrained(paths.model_dir)
        tokenizer.save_pretrained(paths.model_dir)
        results.weights = str(paths.model_dir.relative_to(paths.root))


def print_summary(results: OneshotResults, mask: Mask, paths: RunPaths) -> None:
    print(f"\none-shot {results.method} ({results.structure}) of {results.model} on "
          f"{','.join(results.languages)} calibration text: sparsity {mask.sparsity:.2%} of the prunable weights, "
          f"{len(results.blocks)} blocks in {results.seconds:.1f} s")
    if results.perplexity_before:
        print(f"{'language':>8}  {'dense ppl':>12}  {'pruned ppl':>12}")
        for lang, value in results.perplexity_before.items():
            print(f"{lang:>8}  {value:>12.3f}  {results.perplexity_after[lang]:>12.3f}")
    print(f"mask written to {paths.root / results.mask}")
    if results.weights:
        print(f"pruned weights written to {paths.root / results.weights}")
    elif results.method == "sparsegpt":
        print("note: SparseGPT changed the weights it kept; without --save_weights the mask alone is a different, "
              "worse sub-network of the original weights")
