"""Per-layer representation similarity (the paper's Appendix F): SVCCA, PWCCA and linear CKA between the sentence
representations of two languages (parallel sentences), or of one language under the dense model and a ticket.

Sentences are embedded as in sentence_retrieval.py (utils/analysis/retrieval.py: the same readers, masks and pooling), but
not L2-normalised: the measures centre and whiten on their own (utils/analysis/cca.py). Each measure is reported beside its
value on shuffled pairs (the rows of one side permuted once, seeded), the finite-sample level of unrelated data.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Optional

import numpy as np

from utils.analysis.cca import Basis, check_cca_samples, full_basis, linear_cka, permuted, pwcca_of, svcca_of
from utils.infra.errors import UserError
from utils.core.masks import common_model
from utils.analysis.retrieval import ParallelEmbeddingArguments, embed_layers, load_pairs_and_model, masked_models
from utils.analysis.similarity import default_label
from utils.analysis.writers import format_number, write_csv, write_json_last

MEASURES = ("svcca", "pwcca", "cka")
_NAMES = {"svcca": "SVCCA", "pwcca": "PWCCA", "cka": "linear CKA"}


@dataclass
class RepresentationArguments(ParallelEmbeddingArguments):
    """representation_similarity.py's flags."""

    pooling: str = field(default="cls", metadata={"help": "cls (first token, the paper's Appendix F) or mean over "
                                                          "real tokens.", "choices": ["cls", "mean"]})
    compare: str = field(
        default="languages",
        metadata={"help": "languages: sources vs targets (each under its --src_mask/--tgt_mask); dense_vs_ticket: "
                          "each masked side's sentences under the dense model vs under its mask.",
                  "choices": ["languages", "dense_vs_ticket"]},
    )
    svcca_variance: float = field(default=0.99, metadata={"help": "SVCCA keeps the top directions explaining this "
                                                                  "fraction of the variance (Raghu et al.: 0.99)."})
    cca_dims: Optional[int] = field(
        default=None, metadata={"help": "Keep exactly this many top directions per side, for SVCCA and PWCCA "
                                        "(needs more than 2 x this many pairs; default: 99%% / all directions)."}
    )
    shuffle_seed: int = field(default=0, metadata={"help": "Seed of the permutation of the shuffled-pairs baseline."})


def _value(x: float) -> Optional[float]:
    return None if x is None or math.isnan(x) else float(x)


def measures(x: np.ndarray, y: np.ndarray, bx: Basis, by: Basis, variance: float, dims: Optional[int]) -> dict:
    """SVCCA (with the directions it kept), PWCCA and linear CKA of one layer, given each side's full basis
    (`full_basis`, one SVD a side for all three); None where undefined."""
    sv = svcca_of(bx, by, variance, dims)
    return {"svcca": _value(sv["value"]), "svcca_dims": [sv["dims_x"], sv["dims_y"]],
            "pwcca": _value(pwcca_of(bx, by, dims)), "cka": _value(linear_cka(x, y))}


def similarity_by_layer(a_layers: np.ndarray, b_layers: np.ndarray, variance: float, dims: Optional[int],
                        seed: int) -> list[dict]:
    """One row per hidden layer: the measures, and each on shuffled pairs (one permutation for all layers)."""
    permutation = np.random.default_rng(seed).permutation(a_layers.shape[1])
    rows = []
    for layer, (a, b) in enumerate(zip(a_layers, b_layers)):
        ba, bb = full_basis(a), full_basis(b)
        row = {"layer": layer, **measures(a, b, ba, bb, variance, dims)}
        shuffled = measures(a, b[permutation], ba, permuted(bb, permutation), variance, dims)
        row.update({f"{m}_shuffled": shuffled[m] for m in MEASURES})
        if row["svcca"] is None:
            row["note"] = "a side is the same vector for every sentence (e.g. [CLS] at the embeddings)"
        rows.append(row)
    return rows


def check_arguments(args: RepresentationArguments) -> None:
    if not 0.0 < args.svcca_variance <= 1.0:
        raise UserError(f"--svcca_variance must be in (0, 1], got {args.svcca_variance}")
    if args.cca_dims is not None and args.cca_dims < 1:
        raise UserError(f"--cca_dims must be >= 1, got {args.cca_dims}")
    if args.compare == "dense_vs_ticket" and not (args.src_mask or args.tgt_mask):
        raise UserError("--compare dense_vs_ticket needs --src_mask or --tgt_mask (the ticket)")


def cca_advice(pairs: int, dims: int, max_sentences: Optional[int]) -> str:
    """What a user with too few pairs for `dims` directions a side can do (CCA needs pairs > 2 x directions)."""
    more = f"more than {2 * dims} pairs" + (" (raise --max_sentences)" if max_sentences is not None else "")
    if pairs < 3:
        return f"SVCCA and PWCCA need at least 3 sentence pairs (with --cca_dims 1): give {more}"
    return f"give {more}, or pass --cca_dims {(pairs - 1) // 2} (or fewer) to keep fewer directions a side"


def mask_label(info: Optional[dict]) -> str:
    """'ner/en/50%' from the mask's metadata (its file name when it has none), 'dense' without a mask."""
    return "dense" if info is None else default_label(info["path"], info["metadata"] | {"sparsity": info["sparsity"]})


def comparisons(args: RepresentationArguments, data, model, embed) -> list[dict]:
    """[{label, a, b, a_layers, b_layers}] for the chosen --compare mode."""
    (src_model, src_info), (tgt_model, tgt_info) = masked_models(
        model, args.src_mask, args.tgt_mask, keep_dense=args.compare == "dense_vs_ticket")
    if args.compare == "languages":
        label = f"{data.src_lang} ({mask_label(src_info)}) vs {data.tgt_lang} ({mask_label(tgt_info)})"
        return [{"label": label, "a": {"lang": data.src_lang, "mask": src_info},
                 "b": {"lang": data.tgt_lang, "mask": tgt_info},
                 "a_layers": embed(src_model, data.src), "b_layers": embed(tgt_model, data.tgt)}]
    result = []
    for lang, sentences, masked, info in ((data.src_lang, data.src, src_model, src_info),
                                          (data.tgt_lang, data.tgt, tgt_model, tgt_info)):
        if info is not None:
            result.append({"label": f"{lang}: dense vs {mask_label(info)}", "a": {"lang": lang, "mask": None},
                           "b": {"lang": lang, "mask": info},
                           "a_layers": embed(model, sentences), "b_layers": embed(masked, sentences)})
    return result


def run_representation_similarity(model_args, args: RepresentationArguments) -> dict:
    check_arguments(args)
    common_model(path for path in (args.src_mask, args.tgt_mask) if path)
    data, tokenizer, model = load_pairs_and_model(model_args, args, "representation_similarity")
    hidden = getattr(model.config, "hidden_size", None) or getattr(model.config, "d_model")
    dims = min(args.cca_dims or hidden, hidden)
    try:  # before embedding anything: fail fast
        check_cca_samples(len(data.src), dims, dims, "sentence pairs")
    except UserError as error:
        raise UserError(f"{error}; {cca_advice(len(data.src), dims, args.max_sentences)}") from None
    print(f"representation similarity {data.src_lang}-{data.tgt_lang} ({args.compare}): {len(data.src)} pairs "
          f"from {data.source} ({data.describe()}), {args.pooling} pooling")
    embed = partial(embed_layers, tokenizer=tokenizer, pooling=args.pooling, batch_size=args.batch_size,
                    max_length=args.max_seq_length, normalize=False)
    result = {
        "model": model_args.model_name_or_path, "compare": args.compare, "src_lang": data.src_lang,
        "tgt_lang": data.tgt_lang, "pairs": len(data.src), "data": data.source, "pooling": args.pooling,
        "svcca_variance": args.svcca_variance, "cca_dims": args.cca_dims, "shuffle_seed": args.shuffle_seed,
        "comparisons": [],
    }
    for item in comparisons(args, data, model, lambda m, s: embed(m, sentences=s)):
        layers = similarity_by_layer(item["a_layers"], item["b_layers"], args.svcca_variance, args.cca_dims,
                                     args.shuffle_seed)
        result["comparisons"].append({"label": item["label"], "a": item["a"], "b": item["b"], "layers": layers})
    name = args.name or f"{data.src_lang}-{data.tgt_lang}" + ("_dense_vs_ticket" if args.compare != "languages" else "")
    out = Path(args.output_dir)
    write_outputs(result, out, name, plots=not args.no_plots)
    print(format_table(result))
    print(f"written to {Path(args.output_dir) / f'representations_{name}.json'}")
    return result



def format_table(result: dict) -> str:
    """Per comparison: one line per layer, each measure with its shuffled-pairs value in brackets."""
    lines = []
    for comparison in result["comparisons"]:
        lines.append(f"{comparison['label']}  (value [shuffled pairs]; layer 0 = embeddings)")
        lines.append(f"{'layer':>5}  {'SVCCA':>13}  {'dims':>7}  {'PWCCA':>13}  {'CKA':>13}")
        for row in comparison["layers"]:
            cells = [f"{format_number(row[m])} [{format_number(row[m + '_shuffled'])}]" for m in MEASURES]
            dims = "/".join(str(d) for d in row["svcca_dims"])
            lines.append(f"{row['layer']:>5}  {cells[0]:>13}  {dims:>7}  {cells[1]:>13}  {cells[2]:>13}")
    return "\n".join(lines)


_CSV_COLUMNS = ("svcca", "svcca_shuffled", "pwcca", "pwcca_shuffled", "cka", "cka_shuffled")


def write_outputs(result: dict, out: Path, name: str, plots: bool = True) -> list[Path]:
    """representations_<name>.csv (one row per comparison and layer), .png, then .json (the completion file)."""
    rows = [[c["label"], row["layer"], *(row[k] for k in _CSV_COLUMNS), *row["svcca_dims"]]
            for c in result["comparisons"] for row in c["layers"]]
    written = [write_csv(out / f"representations_{name}.csv",
                         ("comparison", "layer", *_CSV_COLUMNS, "svcca_dims_a", "svcca_dims_b"), rows)]
    if plots:
        written.append(plot_layers(result, out / f"representations_{name}.png"))
    return write_json_last(out, [f"representations_{name}.png"], written, out / f"representations_{name}.json",
                           result)


def plot_layers(result: dict, path: Path) -> Path:
    from utils.analysis import plots

    series = []
    for comparison in result["comparisons"]:
        prefix = f"{comparison['label']}: " if len(result["comparisons"]) > 1 else ""
        rows = comparison["layers"]
        for m in MEASURES:
            series.append((f"{prefix}{_NAMES[m]}", [r[m] for r in rows], [r[f"{m}_shuffled"] for r in rows]))
    layers = [str(r["layer"]) for r in result["comparisons"][0]["layers"]]
    title = (f"Representation similarity per layer: {', '.join(c['label'] for c in result['comparisons'])}\n"
             f"{result['pairs']} sentence pairs, {result['pooling']} pooling; dashed: the same on shuffled pairs")
    if any("note" in r for c in result["comparisons"] for r in c["layers"]):
        title += "\nno value: a side is the same vector for every sentence ([CLS] at the embeddings)"
    return plots.per_layer_lines(layers, series, path, title, ylabel="similarity (1 = same up to the invariances)",
                                 baseline_label="shuffled pairs", xlabel="layer (0 = embeddings)")
