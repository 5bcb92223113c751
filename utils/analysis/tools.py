"""The drivers behind mask_similarity.py and summarize_results.py: their flags, then check -> compute (the maths
modules, typed results) -> print -> write (the writer modules), the completion file last."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from utils.analysis.head_similarity import HeadResult, head_analysis, resolve_kv_heads, resolve_num_heads
from utils.analysis.results import Summary, summarize
from utils.analysis.similarity import SimilarityResult, compare_masks, load_all
from utils.analysis.similarity_writers import (
    SIMILARITY_FILE, format_head_summary, format_similarity, plot_similarity, write_head_outputs,
    write_similarity_json, write_similarity_tables,
)
from utils.analysis.summary_writers import SUMMARY_FILE, format_summary, plot_summary, write_summary_tables
from utils.analysis.writers import finish_outputs, to_json
from utils.infra.io import write_json
from utils.infra.outputs import ANALYSIS_OUTPUTS, prepare_analysis_dir


@dataclass
class SimilarityArguments:
    """mask_similarity.py's flags."""

    masks: list[str] = field(metadata={"help": "Two or more mask .pt files (bool, packed or the original's format)."})
    output_dir: str = field(metadata={"help": "Where the JSON, CSV and PNG files go."})
    labels: Optional[list[str]] = field(
        default=None, metadata={"help": "One label per mask (default: task/language/sparsity from its metadata)."}
    )
    no_plots: bool = field(default=False, metadata={"help": "Skip the PNG figures."})
    by: str = field(
        default="layer", metadata={"help": "layer: overall, per layer and per matrix type; head: also per attention "
                                           "head and FFN block, and each mask's language-specific weights.",
                                   "choices": ["layer", "head"]}
    )
    num_heads: Optional[int] = field(
        default=None, metadata={"help": "--by head: attention heads per layer (default: from the model's config)."}
    )
    model_name_or_path: Optional[str] = field(
        default=None, metadata={"help": "--by head: the model whose config gives the heads (default: the masks' "
                                        "metadata)."}
    )
    clear_output_dir: bool = field(
        default=False, metadata={"help": "Delete another analysis' outputs found in --output_dir (else: refused)."}
    )


@dataclass
class MaskSimilarity:
    """What mask_similarity.py computed: the comparison and, with --by head, the per-head analysis."""

    result: SimilarityResult
    by_head: Optional[HeadResult] = None


def run_mask_similarity(args: SimilarityArguments) -> MaskSimilarity:
    """Compare the masks, print the tables, write the files (mask_similarity.json last)."""
    root = prepare_analysis_dir(args.output_dir, "mask_similarity", args.clear_output_dir)
    masks = load_all(args.masks, args.labels)
    found = MaskSimilarity(compare_masks(masks))
    print(f"\nmask similarity ({len(found.result.labels)} masks)")
    print(format_similarity(found.result))
    if args.by == "head":
        heads, heads_from = resolve_num_heads(masks, args.num_heads, args.model_name_or_path)
        kv_heads = resolve_kv_heads(masks, heads, args.model_name_or_path)
        found.by_head = head_analysis(masks, heads, heads_from, kv_heads)
        print(format_head_summary(found.by_head))
    written = write_similarity_tables(found.result, root)
    if not args.no_plots:
        written += plot_similarity(found.result, root)
    if found.by_head is not None:
        written += write_head_outputs(found.by_head, root, plots=not args.no_plots)
    finish_outputs(root, ANALYSIS_OUTPUTS["mask_similarity"], written, root / SIMILARITY_FILE,
                   lambda path: write_similarity_json(found.result, path))
    print(f"written to {args.output_dir}")
    return found


@dataclass
class SummaryArguments:
    """summarize_results.py's flags."""

    runs: list[str] = field(
        metadata={"help": "Folders searched recursively for imp_results.json and finetune_results.json."}
    )
    output_dir: str = field(metadata={"help": "Where the JSON, CSV and PNG files go."})
    epsilon: Optional[float] = field(
        default=None, metadata={"help": "Winning-ticket tolerance (default: 1 std of the dense metric across seeds)."}
    )
    no_plots: bool = field(default=False, metadata={"help": "Skip the PNG figures."})
    clear_output_dir: bool = field(
        default=False, metadata={"help": "Delete another analysis' outputs found in --output_dir (else: refused)."}
    )


def run_summary(args: SummaryArguments) -> Summary:
    """Summarise the runs, print the tables, write the files (results_summary.json last)."""
    root = prepare_analysis_dir(args.output_dir, "summary", args.clear_output_dir)
    summary = summarize(args.runs, args.epsilon)
    print(f"found {len(summary.inputs.imp)} IMP run(s) and {len(summary.inputs.finetune)} fine-tune run(s)")
    print(format_summary(summary))
    written = write_summary_tables(summary, root)
    if not args.no_plots:
        written += plot_summary(summary, root)
    finish_outputs(root, ANALYSIS_OUTPUTS["summary"], written, root / SUMMARY_FILE,
                   lambda path: write_json(path, to_json(summary)))
    print(f"written to {args.output_dir}")
    return summary

