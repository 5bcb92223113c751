"""Parallel sentence retrieval per layer (the paper's Fig. 7): how language-neutral are a (masked) model's layers?

Each sentence is embedded at every hidden layer (the embedding output, then each transformer layer) by mean
pooling over its real tokens (or its first token, --pooling cls), L2-normalised. Sources are matched to targets by
the ratio margin of LASER: margin(x, y) = cos(x, y) / ((mean cos of x's k NN + mean cos of y's k NN) / 2), with k
nearest neighbours from faiss IndexFlatIP in both directions; each source picks the best-margin candidate among its
forward k NN, and the accuracy of a layer is the fraction of sources whose pick is their translation.

A task model's mask names its weights `bert.encoder...`; AutoModel's BertModel names them `encoder...`. The
base-model prefix is stripped from the mask before it is fitted, so NER, XNLI and MLM tickets all apply.
"""
from __future__ import annotations

import copy
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn

from utils.infra.errors import UserError, first_line
from utils.core.masks import Mask, read_mask_metadata
from utils.infra.outputs import prepare_analysis_dir
from utils.core.pruning import prunable_weights
from utils.infra.progress import progress_bar
from utils.analysis.similarity import default_label
from utils.analysis.writers import format_number, write_json_last
from utils.tasks.registry import is_known_language

HEADER_CHOICES = ("auto", "yes", "no")
BOM = "\ufeff"


@dataclass
class ParallelEmbeddingArguments:
    """Flags shared by the scripts that embed parallel sentences per layer (the model comes from InferenceModelArguments)."""

    output_dir: str = field(metadata={"help": "Where the JSON (and CSV, PNG) files go."})
    tsv: Optional[str] = field(
        default=None, metadata={"help": "Local TSV of aligned sentences: source<TAB>target per line (header optional: "
                                        "see --header)."}
    )
    dataset_name: Optional[str] = field(default=None, metadata={"help": "Hub dataset of translation pairs (wmt14)."})
    dataset_config: Optional[str] = field(default=None, metadata={"help": "Its config, e.g. fr-en."})
    split: str = field(default="test", metadata={"help": "Hub split (WMT14 test: 3,003 pairs)."})
    src_lang: Optional[str] = field(
        default=None, metadata={"help": "Source language (default: the TSV's first column, or en)."}
    )
    tgt_lang: Optional[str] = field(default=None, metadata={"help": "Target language (default: the other one)."})
    header: str = field(
        default="auto", metadata={"help": "Is the TSV's first line a header? auto: only when it names two different "
                                          "known language codes (en<TAB>fr) or is source<TAB>target; yes; no.",
                                  "choices": list(HEADER_CHOICES)}
    )
    max_sentences: Optional[int] = field(default=None, metadata={"help": "Use only the first N pairs."})
    src_mask: Optional[str] = field(default=None, metadata={"help": "Mask .pt applied when embedding the sources."})
    tgt_mask: Optional[str] = field(default=None, metadata={"help": "Mask .pt applied when embedding the targets."})
    pooling: str = field(default="mean", metadata={"help": "mean over real tokens, or cls (first token).",
                                                   "choices": ["mean", "cls"]})
    batch_size: int = field(default=32, metadata={"help": "Sentences per forward pass."})
    max_seq_length: int = field(default=128, metadata={"help": "Longer sentences are truncated."})
    name: Optional[str] = field(default=None, metadata={"help": "Output file stem (default: <src>-<tgt>)."})
    no_plots: bool = field(default=False, metadata={"help": "Skip the PNG figure."})
    clear_output_dir: bool = field(
        default=False, metadata={"help": "Delete another analysis' outputs found in --output_dir (else: refused)."}
    )


@dataclass
class RetrievalArguments(ParallelEmbeddingArguments):
    """sentence_retrieval.py's flags."""

    k: int = field(default=5, metadata={"help": "Neighbours for the margin (the paper: 5)."})


# ---------------------------------------------------------------------------------------------------------------
# Parallel data
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class ParallelData:
    src_lang: str
    tgt_lang: str
    src: list[str]
    tgt: list[str]
    source: str  # where the pairs came from, for the results file
    languages_from: str  # what named the languages, for the run's log
    header: Optional[str] = None  # the TSV's header line, when one was read

    def describe(self) -> str:
        """'header line 'en<TAB>fr' read; languages from it' / 'no header line; languages from the file name'."""
        shown = (self.header or "").replace("\t", "<TAB>")
        read = f"header line '{shown}' read" if self.header is not None else "no header line"
        return f"{read}; languages {self.src_lang}-{self.tgt_lang} from {self.languages_from}"


def read_header(cells: Sequence[str], mode: str) -> tuple[bool, Optional[list[str]]]:
    """Is this first line (BOM stripped, split at tabs) a header, and which languages does it name (None for
    'source<TAB>target')? auto: only two different known language codes (en<TAB>fr, not one<TAB>un) or
    source<TAB>target; yes: whatever its two fields say; no: never."""
    names = [cell.strip() for cell in cells]
    if mode == "no":
        return False, None
    if len(names) != 2 or not all(names):
        if mode == "yes":
            raise UserError(f"--header yes: line 1 must name the two columns, got {len(names)} field(s)")
        return False, None
    if [n.lower() for n in names] == ["source", "target"]:
        return True, None
    codes = [n.lower() for n in names]
    if mode == "yes" or (codes[0] != codes[1] and all(is_known_language(c) for c in codes)):
        return True, codes
    return False, None


def _file_languages(file: Path) -> Optional[list[str]]:
    """['en', 'fr'] from a file named en-fr.tsv (two known language codes), else None."""
    parts = file.stem.split("-")
    if len(parts) == 2 and parts[0] != parts[1] and all(is_known_language(p) for p in parts):
        return [p.lower() for p in parts]
    return None


def _pairs(lines: Sequence[str], first: int, path: str | Path) -> tuple[list[str], list[str]]:
    """Sources and targets of source<TAB>target lines (numbered from `first`); blank lines are skipped."""
    src, tgt = [], []
    for number, line in enumerate(lines, start=first):
        if not line.strip():
            continue
        cells = line.split("\t")
        if len(cells) != 2 or not cells[0].strip() or not cells[1].strip():
            raise UserError(f"{path} line {number}: expected 'source<TAB>target', got {len(cells)} field(s)"
                            if len(cells) != 2 else f"{path} line {number}: empty sentence")
        src.append(cells[0].strip())
        tgt.append(cells[1].strip())
    if not src:
        raise UserError(f"{path} holds no sentence pairs")
    return src, tgt


def read_tsv(path: str | Path, src_lang: Optional[str] = None, tgt_lang: Optional[str] = None,
             max_sentences: Optional[int] = None, header: str = "auto") -> ParallelData:
    """source<TAB>target lines; languages from a header line ('en<TAB>fr', see `read_header`), else the file name
    (en-fr.tsv), else the flags. UTF-8 byte-order marks are dropped (a file's first, and any a concatenation left
    inside)."""
    file = Path(path)
    if not file.is_file():
        raise UserError(f"parallel file not found: {path}")
    try:
        lines = [line.replace(BOM, "") for line in file.read_text(encoding="utf-8").splitlines()]
    except UnicodeDecodeError as error:
        raise UserError(f"{path} is not UTF-8 text ({first_line(error)})") from None
    is_header, columns = read_header(lines[0].split("\t"), header) if lines else (False, None)
    header_line, first = (lines[0], 2) if is_header else (None, 1)
    languages_from = "its header line"
    if columns is None:
        columns, languages_from = _file_languages(file), "the file name"
    src, tgt = _pairs(lines[first - 1:], first, path)
    if columns is None:  # nothing says which languages: trust the flags
        wanted = [src_lang or "src", tgt_lang or "tgt"]
        languages_from = ("--src_lang/--tgt_lang" if src_lang and tgt_lang
                          else "defaults (name them with --src_lang/--tgt_lang)")
    else:
        first_lang = src_lang or (columns[1] if tgt_lang == columns[0] else columns[0])
        wanted = [first_lang, tgt_lang or (columns[1] if first_lang == columns[0] else columns[0])]
        if sorted(wanted) != sorted(columns):
            raise UserError(f"{path} holds {columns[0]}-{columns[1]} pairs, not {wanted[0]}-{wanted[1]} (languages "
                            f"from {languages_from})")
        if wanted[0] == columns[1] and columns[0] != columns[1]:
            src, tgt = tgt, src
    data = ParallelData(wanted[0], wanted[1], src, tgt, str(path), languages_from, header_line)
    return _limited(data, max_sentences)


def load_hub_pairs(name: str, config: Optional[str], split: str, src_lang: Optional[str], tgt_lang: Optional[str],
                   max_sentences: Optional[int] = None) -> ParallelData:
    """A translation dataset (wmt14 fr-en): rows {'translation': {'en': ..., 'fr': ...}}."""
    from datasets import disable_progress_bars, load_dataset

    disable_progress_bars()
    languages = (config or "").split("-")
    src = src_lang or ("en" if "en" in languages else languages[0])
    tgt = tgt_lang or next((lang for lang in languages if lang != src), "")
    if not src or not tgt:
        raise UserError("pass --dataset_config (e.g. fr-en) or --src_lang and --tgt_lang")
    selection = split if max_sentences is None else f"{split}[:{max_sentences}]"
    try:
        dataset = load_dataset(name, config, split=selection)
    except Exception as error:  # offline, unknown config, ...
        raise UserError(f"cannot load {name} ({config}, {split}): {first_line(error)}; offline, pass --tsv") from None
    if "translation" not in dataset.column_names:
        raise UserError(f"{name} has no 'translation' field (it has: {', '.join(dataset.column_names)})")
    pairs = dataset["translation"]
    if not pairs or src not in pairs[0] or tgt not in pairs[0]:
        raise UserError(f"{name} ({config}) has no {src}-{tgt} pairs")
    named_by = "--src_lang/--tgt_lang" if src_lang and tgt_lang else f"--dataset_config {config}"
    return ParallelData(src, tgt, [p[src] for p in pairs], [p[tgt] for p in pairs], f"{name}/{config}/{split}",
                        named_by)


def _limited(data: ParallelData, max_sentences: Optional[int]) -> ParallelData:
    """The first --max_sentences pairs (the flag's range is checked at parse time: utils.infra.validation)."""
    if max_sentences is not None:
        data.src, data.tgt = data.src[:max_sentences], data.tgt[:max_sentences]
    if len(data.src) < 2:
        raise UserError(f"{data.source} holds {len(data.src)} sentence pair: retrieval needs at least 2 "
                        "(each sentence is looked for among the others)")
    return data


# ---------------------------------------------------------------------------------------------------------------
# Masks on a base model
# ---------------------------------------------------------------------------------------------------------------


def align_mask(mask: Mask, model: nn.Module, source: str = "mask") -> Mask:
    """The mask renamed to the base model's weights (strip 'bert.' when the model has no such prefix) and fitted.

    A missing pooler entry (NER/MLM masks on BertModel) leaves the pooler dense, which no hidden state uses anyway.
    """
    weights = prunable_weights(model)
    prefix = getattr(model, "base_model_prefix", "") or ""
    if prefix and not any(name.startswith(prefix + ".") for name in weights):
        mask = Mask(OrderedDict((name.removeprefix(prefix + "."), t) for name, t in mask.items()))
    return mask.fit(weights, source=source)


def apply_mask_file(model: nn.Module, path: str) -> dict:
    """Zero the weights the mask removes; returns what the results file records about the mask."""
    weights = prunable_weights(model)
    loaded = Mask.load(path)
    mask = align_mask(loaded, model, source=path)
    mask.apply_to_weights(weights)
    for note in mask.notes:
        print(note)
    meta = read_mask_metadata(path)
    return {"path": path, "sparsity": loaded.sparsity, "applied_sparsity": mask.sparsity, "notes": mask.notes,
            "metadata": {k: v for k, v in meta.items() if k != "per_layer_sparsity"}}


def masked_models(model: nn.Module, src_mask: Optional[str], tgt_mask: Optional[str], keep_dense: bool = False
                  ) -> tuple[tuple[nn.Module, Optional[dict]], tuple[nn.Module, Optional[dict]]]:
    """(model, mask info) for the sources and for the targets: one copy per distinct mask, so a side without a
    mask stays dense. When both sides have masks and not `keep_dense`, the model itself takes the last one."""
    distinct = list(dict.fromkeys(path for path in (src_mask, tgt_mask) if path))
    in_place = not keep_dense and bool(src_mask) and bool(tgt_mask)  # no side needs the dense model
    holders = [copy.deepcopy(model) for _ in range(len(distinct) - in_place)]  # copied before any mask applies
    holders += [model] if in_place else []
    copies: dict[Optional[str], tuple[nn.Module, Optional[dict]]] = {None: (model, None)}
    for path, holder in zip(distinct, holders):
        copies[path] = (holder, apply_mask_file(holder, path))
    return copies[src_mask or None], copies[tgt_mask or None]


# ---------------------------------------------------------------------------------------------------------------
# Embeddings and margin retrieval
# ---------------------------------------------------------------------------------------------------------------


@torch.no_grad()
def embed_layers(model: nn.Module, tokenizer, sentences: Sequence[str], pooling: str = "mean", batch_size: int = 32,
                 max_length: int = 128, normalize: bool = True) -> np.ndarray:
    """[layers + 1, sentences, hidden] float32, L2-normalised unless `normalize=False`; an encoder-decoder model
    uses its encoder."""
    encoder = model.get_encoder() if getattr(model.config, "is_encoder_decoder", False) else model
    encoder.eval()
    device = next(encoder.parameters()).device
    order = np.argsort([len(s) for s in sentences], kind="stable")  # similar lengths together: less padding
    result: Optional[np.ndarray] = None
    for begin in progress_bar(range(0, len(sentences), batch_size), desc="embedding", unit="batch"):
        index = order[begin: begin + batch_size]
        batch = tokenizer([sentences[i] for i in index], padding=True, truncation=True, max_length=max_length,
                          return_tensors="pt")
        inputs = {"input_ids": batch["input_ids"].to(device), "attention_mask": batch["attention_mask"].to(device)}
        hidden = encoder(**inputs, output_hidden_states=True).hidden_states
        states = torch.stack(hidden).float()  # [layers + 1, batch, tokens, hidden]
        if pooling == "cls":
            pooled = states[:, :, 0]
        else:
            weights = inputs["attention_mask"].to(states.dtype)[None, :, :, None]
            pooled = (states * weights).sum(2) / weights.sum(2).clamp(min=1.0)
        if normalize:
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
        pooled = pooled.cpu().numpy()
        if result is None:
            result = np.empty((pooled.shape[0], len(sentences), pooled.shape[2]), dtype=np.float32)
        result[:, index] = pooled
    assert result is not None
    return result


def margin_retrieval(src: np.ndarray, tgt: np.ndarray, k: int = 5) -> tuple[float, float]:
    """Accuracy of ratio-margin retrieval source -> target and target -> source (row i is aligned with row i)."""
    import faiss

    n = src.shape[0]
    k = max(1, min(k, n))
    src = np.ascontiguousarray(src, dtype=np.float32)
    tgt = np.ascontiguousarray(tgt, dtype=np.float32)
    tgt_index = faiss.IndexFlatIP(tgt.shape[1])
    tgt_index.add(tgt)
    src_index = faiss.IndexFlatIP(src.shape[1])
    src_index.add(src)
    fwd_sim, fwd_idx = tgt_index.search(src, k)  # each source's k nearest targets
    bwd_sim, bwd_idx = src_index.search(tgt, k)  # each target's k nearest sources
    fwd_mean, bwd_mean = fwd_sim.mean(axis=1), bwd_sim.mean(axis=1)

    def accuracy(sim: np.ndarray, idx: np.ndarray, own_mean: np.ndarray, other_mean: np.ndarray) -> float:
        denominator = (own_mean[:, None] + other_mean[idx]) / 2
        margin = sim / np.where(denominator == 0, 1e-12, denominator)
        pick = idx[np.arange(idx.shape[0]), margin.argmax(axis=1)]
        return float((pick == np.arange(idx.shape[0])).mean())

    return accuracy(fwd_sim, fwd_idx, fwd_mean, bwd_mean), accuracy(bwd_sim, bwd_idx, bwd_mean, fwd_mean)


def retrieval_by_layer(src_layers: np.ndarray, tgt_layers: np.ndarray, k: int = 5) -> list[dict]:
    results = []
    for layer, (src, tgt) in enumerate(zip(src_layers, tgt_layers)):
        forward, backward = margin_retrieval(src, tgt, k)
        results.append({"layer": layer, "accuracy": forward, "accuracy_reverse": backward})
    return results


# ---------------------------------------------------------------------------------------------------------------
# The whole command
# ---------------------------------------------------------------------------------------------------------------


def load_pairs(args: ParallelEmbeddingArguments) -> ParallelData:
    if args.tsv and args.dataset_name:
        raise UserError("pass either --tsv or --dataset_name, not both")
    if args.tsv:
        return read_tsv(args.tsv, args.src_lang, args.tgt_lang, args.max_sentences, args.header)
    if args.header != "auto":
        raise UserError("--header applies to --tsv files only")
    if args.dataset_name:
        return load_hub_pairs(args.dataset_name, args.dataset_config, args.split, args.src_lang, args.tgt_lang,
                              args.max_sentences)
    raise UserError("no sentence pairs: pass --tsv data/parallel/en-fr.tsv "
                    "or --dataset_name wmt14 --dataset_config fr-en")


def load_pairs_and_model(model_args, args: ParallelEmbeddingArguments,
                         kind: str) -> tuple[ParallelData, object, nn.Module]:
    """Check the flags and the `kind` of analysis' --output_dir, then read the pairs, the tokenizer and the base
    model (AutoModel, on the GPU if any)."""
    from transformers import AutoModel

    from utils.infra.models import check_room_for_text, is_causal_lm, load_config, load_model, load_tokenizer

    for path in (args.src_mask, args.tgt_mask):
        if path and not Path(path).is_file():
            raise UserError(f"mask file not found: {path}")
    if args.pooling == "cls" and is_causal_lm(load_config(model_args)):
        raise UserError(f"--pooling cls reads the first token, which in {model_args.model_name_or_path} (a causal "
                        "LM) attends only to itself, the same for every sentence: use --pooling mean")
    data = load_pairs(args)
    prepare_analysis_dir(args.output_dir, kind, args.clear_output_dir)
    tokenizer = load_tokenizer(model_args)
    if tokenizer.pad_token is None:  # decoder tokenizers (Llama, GPT-2) have none; padding is masked out anyway
        tokenizer.pad_token = tokenizer.eos_token
    check_room_for_text(tokenizer, args.max_seq_length, "--max_seq_length")
    model = load_model(AutoModel, model_args)
    model.to("cuda" if torch.cuda.is_available() else "cpu")
    return data, tokenizer, model


def run_retrieval(model_args, args: RetrievalArguments) -> dict:
    if args.k < 1:
        raise UserError(f"--k must be >= 1, got {args.k}")
    data, tokenizer, model = load_pairs_and_model(model_args, args, "retrieval")
    out, name = Path(args.output_dir), args.name or f"{data.src_lang}-{data.tgt_lang}"
    (model, src_info), (tgt_model, tgt_info) = masked_models(model, args.src_mask, args.tgt_mask)
    print(f"retrieval {data.src_lang}->{data.tgt_lang}: {len(data.src)} pairs from {data.source} ({data.describe()}), "
          f"{args.pooling} pooling, k={args.k}")
    src = embed_layers(model, tokenizer, data.src, args.pooling, args.batch_size, args.max_seq_length)
    tgt = embed_layers(tgt_model, tokenizer, data.tgt, args.pooling, args.batch_size, args.max_seq_length)
    layers = retrieval_by_layer(src, tgt, args.k)
    best = max(layers, key=lambda r: r["accuracy"])
    result = {
        "model": model_args.model_name_or_path, "src_lang": data.src_lang, "tgt_lang": data.tgt_lang,
        "pairs": len(data.src), "data": data.source, "pooling": args.pooling, "k": args.k,
        "src_mask": src_info, "tgt_mask": tgt_info, "layers": layers, "best_layer": best["layer"],
        "best_accuracy": best["accuracy"],
    }
    print(format_table(result))
    figures = [] if args.no_plots else [plot_retrieval(result, out / f"retrieval_{name}.png")]
    write_json_last(out, [f"retrieval_{name}.png"], figures, out / f"retrieval_{name}.json", result)
    print(f"written to {out / f'retrieval_{name}.json'}")
    return result


def format_table(result: dict) -> str:
    src, tgt = result["src_lang"], result["tgt_lang"]
    lines = [f"{'layer':>5}  {f'{src}->{tgt}':>8}  {f'{tgt}->{src}':>8}"]
    for row in result["layers"]:
        lines.append(f"{row['layer']:>5}  {format_number(row['accuracy']):>8}  "
                     f"{format_number(row['accuracy_reverse']):>8}")
    lines.append(f"best layer {result['best_layer']} ({format_number(result['best_accuracy'])}); "
                 "layer 0 = embeddings")
    return "\n".join(lines)


def plot_retrieval(result: dict, path: Path) -> Path:
    from utils.analysis import plots

    layers = [row["layer"] for row in result["layers"]]
    src, tgt = result["src_lang"], result["tgt_lang"]
    masks = [default_label(m["path"], m.get("metadata", {})) if m else "dense"
             for m in (result["src_mask"], result["tgt_mask"])]
    mask_text = f"mask {masks[0]}" if masks[0] == masks[1] else f"{src} under {masks[0]}, {tgt} under {masks[1]}"
    lines = [{"label": f"{src} -> {tgt}", "x": layers, "y": [row["accuracy"] for row in result["layers"]]},
             {"label": f"{tgt} -> {src}", "x": layers, "y": [row["accuracy_reverse"] for row in result["layers"]]}]
    chance = 1.0 / max(1, result["pairs"])
    return plots.curves(lines, path, f"Parallel sentence retrieval per layer ({result['pairs']} pairs, "
                                     f"{result['pooling']} pooling)\n{mask_text}",
                        "layer (0 = embeddings)", "accuracy (fraction retrieved, margin kNN)", xticks=layers,
                        ylim=(0.0, 1.02), baseline=(f"random (1/{result['pairs']} = {chance:.3f})", chance))
