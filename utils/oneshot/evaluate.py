"""mask_perplexity.py: held-out perplexity of a causal LM under each of several masks, on every language's text.

For a language model the "transfer" of a mask needs no fine-tuning: the mask applied to the original weights is
scored on each language's held-out text (utils.oneshot.calibration: the same windows and perplexity as
prune_oneshot.py's --eval_files). The dense model is always measured; with --random_sparsity a random mask at that
sparsity (utils.core.pruning.random_prune, seeded) too. The model loads once; each mask is applied to a fresh copy
of the original weights. Output: OUTPUT_DIR/mask_perplexity.json.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch
from transformers import AutoModelForCausalLM

from utils.analysis.retrieval import align_mask
from utils.core.masks import Mask, read_mask_metadata
from utils.core.pruning import prunable_weights, random_prune
from utils.infra.args import InferenceModelArguments
from utils.infra.errors import UserError
from utils.infra.io import write_json
from utils.infra.models import load_model, load_tokenizer
from utils.infra.outputs import prepare_analysis_dir
from utils.infra.progress import progress_bar
from utils.oneshot.calibration import (eval_windows, leading_ids, parse_eval_files, perplexity, read_documents,
                                       token_stream)

OUTPUT = "mask_perplexity.json"


@dataclass
class MaskPerplexityArguments:
    """mask_perplexity.py's flags (the model comes from InferenceModelArguments)."""

    output_dir: str = field(metadata={"help": "Where mask_perplexity.json goes."})
    eval_files: str = field(metadata={"help": "Held-out text per language, en=PATH,fr=PATH (plain text or JSON "
                                              "lines with 'text')."})
    masks: list[str] = field(default_factory=list, metadata={"help": "Mask .pt files to score."})
    labels: Optional[list[str]] = field(default=None, metadata={"help": "One label per mask (default: the paths)."})
    seq_len: int = field(default=128, metadata={"help": "Tokens per window (consecutive, the rest dropped)."})
    max_windows: Optional[int] = field(default=None, metadata={"help": "Score only the first N windows per "
                                                                       "language."})
    random_sparsity: Optional[float] = field(default=None, metadata={"help": "Also score a random mask at this "
                                                                            "sparsity (fraction)."})
    seed: int = field(default=0, metadata={"help": "Seed of the random mask."})
    clear_output_dir: bool = field(default=False, metadata={"help": "Delete other analyses' outputs in "
                                                                    "--output_dir."})


def check_arguments(args: MaskPerplexityArguments) -> dict[str, str]:
    """The eval files (each must exist), masks and labels; one line naming the first problem."""
    files = parse_eval_files(args.eval_files)
    if not files:
        raise UserError("--eval_files names no language")
    if args.labels is not None and len(args.labels) != len(args.masks):
        raise UserError(f"--labels gives {len(args.labels)} labels for {len(args.masks)} masks")
    labels = args.labels or args.masks
    if len(set(labels)) != len(labels) or "dense" in labels or "random" in labels:
        raise UserError("--labels must be distinct and not 'dense' or 'random'")
    for path in args.masks:
        if not Path(path).is_file():
            raise UserError(f"--masks: file not found: {path}")
    if args.random_sparsity is not None and not 0 < args.random_sparsity < 1:
        raise UserError(f"--random_sparsity must be a fraction in (0, 1), got {args.random_sparsity}")
    return files


def score(model, weights: dict, original: dict[str, torch.Tensor], mask: Optional[Mask],
          windows: dict[str, torch.Tensor]) -> dict[str, float]:
    """Perplexity per language with the mask applied to the original weights (None: dense)."""
    with torch.no_grad():
        for name, weight in weights.items():
            weight.copy_(original[name])
    if mask is not None:
        mask.apply_to_weights(weights)
    return {lang: round(perplexity(model, w, torch.device("cpu")), 4) for lang, w in windows.items()}


def run_mask_perplexity(model_args: InferenceModelArguments, args: MaskPerplexityArguments) -> dict:
    files = check_arguments(args)
    out = prepare_analysis_dir(args.output_dir, "mask_perplexity", args.clear_output_dir)
    tokenizer = load_tokenizer(model_args)
    windows, prefix = {}, leading_ids(tokenizer)
    for lang, path in files.items():
        found = eval_windows(token_stream(tokenizer, read_documents(path, lang, "--eval_files")), args.seq_len, lang,
                             prefix)
        windows[lang] = found[: args.max_windows] if args.max_windows else found
    model = load_model(AutoModelForCausalLM, model_args, "pre", seed=args.seed).eval()
    weights = prunable_weights(model)
    original = {name: w.detach().clone() for name, w in weights.items()}
    entries = [("dense", None, None)]
    if args.random_sparsity is not None:
        entries.append(("random", None, random_prune(weights, args.random_sparsity, args.seed)))
    entries += [(label, path, None) for label, path in zip(args.labels or args.masks, args.masks)]
    rows = []
    for label, path, mask in progress_bar(entries, desc="masks"):
        if path is not None:
            mask = align_mask(Mask.load(path), model, source=path)
        meta = read_mask_metadata(path) if path else {}
        rows.append({"label": label, "path": path, "sparsity": None if mask is None else round(mask.sparsity, 6),
                     "languages": meta.get("languages"), "method": meta.get("method") or meta.get("operation"),
                     "perplexity": score(model, weights, original, mask, windows)})
        print(f"{label}: " + ", ".join(f"{k} {v:.3f}" for k, v in rows[-1]["perplexity"].items()))
    result = {"model": model_args.model_name_or_path, "seq_len": args.seq_len,
              "windows": {lang: int(w.shape[0]) for lang, w in windows.items()}, "eval_files": files,
              "random_seed": args.seed if args.random_sparsity is not None else None, "masks": rows}
    write_json(out / OUTPUT, result)
    print(f"written to {out / OUTPUT}")
    return result
