"""language_neurons.py's recipe: flags, per-language text, the model runs, and the files it writes (the maths is in
utils.analysis.neurons). Outputs (in --output_dir):

- lape_neurons.pt: LAPE's own format, a list over --languages of lists over FFN layers of LongTensors of neuron
  indices; activation_probs.pt: {languages, layers, tokens, probs: per layer (neurons x languages) float64};
- neurons.json: thresholds, counts per language and layer, tokens, the ablation matrices and the overlap table
  (`utils.analysis.neurons.NeuronResult`, read back by `read_neurons`);
- masks/neurons_<lang>.pt (keeps only the language's neurons' gate/up rows and down columns) and
  masks/without_<lang>.pt (its complement: the model with those neurons removed), in the project's mask format;
- ablation_<kind>.csv (relative perplexity change, ablated x eval language) and neuron_overlap.csv.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import torch

from utils.analysis import neurons as N
from utils.analysis.retrieval import align_mask
from utils.analysis.writers import format_number, write_csv, write_json_last
from utils.core.masks import Mask
from utils.core.pruning import prunable_weights
from utils.infra.args import InferenceModelArguments
from utils.infra.errors import UserError
from utils.infra.io import read_json, save_tensors
from utils.infra.outputs import ANALYSIS_OUTPUTS, prepare_analysis_dir
from utils.infra.progress import progress_bar
from utils.infra.validation import check_language_list, language_file_map

logger = logging.getLogger(__name__)
ABLATION_KINDS = ("language", "random", "frequency_matched")
NEURONS_FILE = "neurons.json"  # the completion file (utils.infra.outputs.ANALYSIS_OUTPUTS["neurons"])


@dataclass
class NeuronArguments:
    """language_neurons.py's flags (the model comes from InferenceModelArguments)."""

    output_dir: str = field(metadata={"help": "Where the neuron files, masks, JSON and CSV go."})
    text_files: str = field(metadata={"help": "Plain text per language, one sentence per line: en=PATH,fr=PATH, or one "
                                              "path with {lang} and --languages."})
    languages: Optional[str] = field(default=None, metadata={"help": "Comma list of languages (with a {lang} path)."})
    eval_files: Optional[str] = field(
        default=None, metadata={"help": "Held-out text per language (same forms as --text_files): run the ablation "
                                        "(causal LMs only)."})
    mask_dir: Optional[str] = field(
        default=None, metadata={"help": "A mask .pt per language (en=PATH,fr=PATH or a {lang} path; two or more): the "
                                        "overlap of each language's neurons with its mask's language-specific weights."})
    max_lines: int = field(default=1000, metadata={"help": "Read at most this many lines of each --text_files file."})
    max_eval_lines: int = field(default=200, metadata={"help": "Read at most this many lines of each --eval_files file."})
    max_length: int = field(default=128, metadata={"help": "Truncate each line to this many tokens."})
    batch_size: int = field(default=8, metadata={"help": "Lines per forward pass."})
    filter_rate: float = field(default=0.95, metadata={"help": "LAPE: a neuron must fire above this quantile of all "
                                                               "probabilities in some language."})
    top_rate: float = field(default=0.01, metadata={"help": "LAPE: keep this share of all neurons, lowest entropy first."})
    activation_bar_ratio: float = field(default=0.95, metadata={"help": "LAPE: a kept neuron belongs to each language "
                                                                        "whose probability exceeds this quantile."})
    baseline_seed: int = field(default=0, metadata={"help": "Seed of the random neurons (ablation and permutations)."})
    permutations: int = field(default=1000, metadata={"help": "Random neuron sets per layer for the overlap z-score."})
    clear_output_dir: bool = field(
        default=False, metadata={"help": "Delete another analysis' outputs found in --output_dir (else: refused)."})


def language_paths(spec: str, languages: Optional[str], flag: str) -> dict[str, Path]:
    """{lang: path} from 'en=PATH,fr=PATH' or a '{lang}' path with --languages; every file must exist."""
    if "{lang}" in spec:
        if not languages:
            raise UserError(f"--{flag} has a {{lang}} path: give --languages (e.g. en,fr)")
        paths = {lang: Path(spec.replace("{lang}", lang)) for lang in check_language_list("languages", languages)}
    else:
        paths = {lang: Path(path) for lang, path in language_file_map(flag, spec).items()}
    for lang, path in paths.items():
        if not path.is_file():
            raise UserError(f"--{flag}: the {lang} file {path} does not exist")
    return paths


def read_lines(path: Path, lang: str, max_lines: int, flag: str = "text_files") -> list[str]:
    """The first `max_lines` non-empty lines of a plain text file, or documents of a JSON-lines file with a "text"
    field (read as prune_oneshot.py reads its calibration text), each one sequence."""
    from utils.oneshot.calibration import is_json_lines, read_documents

    if is_json_lines(path):
        return [d.strip() for d in read_documents(str(path), lang, f"--{flag}")][:max_lines]
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise UserError(f"{lang} text {path} is not UTF-8 ({error.reason} at byte {error.start})") from None
    lines = [line.strip() for line in text.splitlines() if line.strip()][:max_lines]
    if not lines:
        raise UserError(f"{lang} text {path} holds no line of text")
    return lines


def batches(tokenizer, lines: list[str], args: NeuronArguments) -> list[dict]:
    """Right-padded batches; `count_mask` marks real tokens of the text: not padding, not a special token (the
    tokenizer's added <s> and any special token written in the text)."""
    out = []
    special_ids = torch.tensor(sorted(set(tokenizer.all_special_ids)), dtype=torch.long)
    for start in range(0, len(lines), args.batch_size):
        enc = tokenizer(lines[start:start + args.batch_size], padding=True, truncation=True,
                        max_length=args.max_length, return_special_tokens_mask=True, return_tensors="pt")
        special = enc.pop("special_tokens_mask").bool()
        enc = dict(enc)
        enc.pop("token_type_ids", None)
        enc["count_mask"] = enc["attention_mask"].bool() & ~special & ~torch.isin(enc["input_ids"], special_ids)
        out.append(enc)
    return out


def _model_inputs(batch: dict, device) -> dict:
    return {k: v.to(device) for k, v in batch.items() if k in ("input_ids", "attention_mask")}


def load(model_args: InferenceModelArguments, args: NeuronArguments):
    """(tokenizer, model, runner, FFN layers, causal?) after checking every input that needs no model."""
    from transformers import AutoModel, AutoModelForCausalLM
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES, MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    from utils.infra.models import load_config, load_model, load_tokenizer

    config = load_config(model_args)
    N.check_activation(config)
    masked_lm = config.model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES and not getattr(config, "is_decoder", False)
    causal = config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and not masked_lm and not config.is_encoder_decoder
    if args.eval_files and not causal:
        raise UserError(f"--eval_files: the ablation measures perplexity, defined here for causal LMs only, and "
                        f"{model_args.model_name_or_path} is a {config.model_type}: drop --eval_files")
    tokenizer = load_tokenizer(model_args)
    tokenizer.padding_side = "right"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = load_model(AutoModelForCausalLM if causal else AutoModel, model_args).eval()
    model.to("cuda" if torch.cuda.is_available() else "cpu")
    # the FFNs only need the body: T5's encoder, a causal LM without its (large-vocabulary) output layer
    runner = model.get_encoder() if config.is_encoder_decoder else getattr(model, "base_model", model)
    layers = N.find_ffn_layers(model, stack="encoder" if config.is_encoder_decoder else None)
    return tokenizer, model, runner, layers, causal


def measure(model, runner, layers, per_lang: dict[str, list[dict]]) -> N.ActivationProbs:
    """Activation probabilities per language (a progress bar over the languages)."""
    device = next(model.parameters()).device
    tokens: dict[str, int] = {}
    per_layer_counts = []
    for lang, lang_batches in progress_bar(per_lang.items(), desc="activation per language", unit="language"):
        counts, total = N.count_firing(lambda b: runner(**_model_inputs(b, device)), model, layers, lang_batches)
        if total == 0:
            raise UserError(f"{lang}: its text gives no token to count (only special tokens or empty lines)")
        tokens[lang] = total
        logger.info(f"{lang}: {total:,} tokens counted")
        per_layer_counts.append([c.double() / total for c in counts])
    probs = [torch.stack([lang_counts[i] for lang_counts in per_layer_counts], dim=1) for i in range(len(layers))]
    return N.ActivationProbs(list(per_lang), [l.layer for l in layers], probs, tokens)


def perplexity(model, lang_batches: list[dict]) -> float:
    """Perplexity over every predicted token (utils.tasks.clm.evaluate_clm, one process)."""
    from utils.tasks.clm import evaluate_clm

    class _OneProcess:
        @staticmethod
        def gather_for_metrics(value):
            return value

    device = next(model.parameters()).device
    with torch.no_grad():
        return evaluate_clm(model, [_model_inputs(b, device) for b in lang_batches], _OneProcess())["perplexity"]


def ablation(model, layers, selection: N.Selection, stats: N.ActivationProbs, evals: dict[str, list[dict]],
             seed: int) -> N.AblationMatrix:
    """Each language's neurons deactivated in turn, beside random and frequency-matched sets of the same size per
    layer; perplexity on every eval language."""
    dense = {e: perplexity(model, b) for e, b in evals.items()}
    generator = torch.Generator().manual_seed(seed)
    mean_probs = [p.mean(dim=1) for p in stats.probs]
    sizes = [layer.size for layer in layers]
    taken = [torch.cat([selection.neurons[lang][i] for lang in selection.languages]).unique()
             for i in range(len(layers))]  # baselines never deactivate any language's neurons
    table: dict[str, dict[str, dict[str, float]]] = {kind: {} for kind in ABLATION_KINDS}
    for lang in progress_bar(selection.languages, desc="ablation", unit="language"):
        own = selection.neurons[lang]
        sets = {"language": own, "random": N.random_neurons(own, sizes, generator, taken),
                "frequency_matched": N.frequency_matched(own, mean_probs, taken)}
        for kind, per_layer in sets.items():
            with N.deactivated(model, layers, per_layer):
                table[kind][lang] = {e: perplexity(model, b) for e, b in evals.items()}
    return N.AblationMatrix(list(evals), dense, table)


def load_masks(model, mask_paths: dict[str, Path]) -> dict[str, Mask]:
    """Each language's mask fitted to the model (a task model's 'bert.' prefix stripped), before any work."""
    return {lang: align_mask(Mask.load(path), model, source=str(path)) for lang, path in mask_paths.items()}


def overlap(layers, selection: N.Selection, masks: dict[str, Mask], permutations: int,
            seed: int) -> list[N.OverlapRow]:
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for lang in masks:
        if lang in selection.neurons:
            shares = N.specific_share(masks, layers, lang)
            rows += N.permutation_rows(lang, selection.layers, shares, selection.neurons[lang], permutations, generator)
    return rows


# ---------------------------------------------------------------------------------------------------------------
# The recipe and its files
# ---------------------------------------------------------------------------------------------------------------


def check_inputs(args: NeuronArguments) -> tuple[dict[str, Path], dict[str, Path], dict[str, Path]]:
    """Every path and flag combination, before any model is loaded."""
    texts = language_paths(args.text_files, args.languages, "text_files")
    evals = language_paths(args.eval_files, args.languages, "eval_files") if args.eval_files else {}
    masks = language_paths(args.mask_dir, args.languages, "mask_dir") if args.mask_dir else {}
    if masks and len(masks) < 2:
        raise UserError("--mask_dir needs masks of two or more languages (a weight is specific against the others)")
    unknown = sorted(set(masks) - set(texts))
    if unknown:
        raise UserError(f"--mask_dir names {', '.join(unknown)}, which --text_files does not")
    return texts, evals, masks


def run_language_neurons(model_args: InferenceModelArguments, args: NeuronArguments) -> N.NeuronResult:
    texts, eval_paths, mask_paths = check_inputs(args)
    root = prepare_analysis_dir(args.output_dir, "neurons", args.clear_output_dir)
    lines = {lang: read_lines(path, lang, args.max_lines) for lang, path in texts.items()}
    eval_lines = {lang: read_lines(path, lang, args.max_eval_lines, "eval_files") for lang, path in eval_paths.items()}
    tokenizer, model, runner, layers, causal = load(model_args, args)
    masks = load_masks(model, mask_paths)
    stats = measure(model, runner, layers, {lang: batches(tokenizer, ls, args) for lang, ls in lines.items()})
    settings = N.LapeSettings(args.filter_rate, args.top_rate, args.activation_bar_ratio)
    selection = N.lape_select(stats, settings)
    result = N.NeuronResult(model_args.model_name_or_path, settings, stats.tokens, stats.layers,
                            [layer.size for layer in layers], selection.filter_threshold, selection.activation_bar,
                            selection.candidates, selection.selected, selection.counts(), _paths(texts))
    written = write_neuron_files(root, model, layers, stats, selection, model_args.model_name_or_path)
    if eval_paths:
        evals = {lang: batches(tokenizer, ls, args) for lang, ls in eval_lines.items()}
        matrix = ablation(model, layers, selection, stats, evals, args.baseline_seed)
        result.eval_files, result.ablation = _paths(eval_paths), N.AblationResult.of(matrix)
        for kind in ABLATION_KINDS:
            written.append(root / f"ablation_{kind}.csv")
            write_matrix_csv(written[-1], matrix.relative(kind), matrix.eval_languages)
        print(format_ablation(matrix))
    if masks:
        result.overlap = overlap(layers, selection, masks, args.permutations, args.baseline_seed)
        result.mask_dir = _paths(mask_paths)
        written.append(root / "neuron_overlap.csv")
        write_rows_csv(written[-1], [asdict(r) for r in result.overlap])
        print(format_overlap(result.overlap))
    write_json_last(root, ANALYSIS_OUTPUTS["neurons"], written, root / NEURONS_FILE, result.to_json())  # completion
    print(format_counts(selection))
    print(f"written to {root}")
    return result


def read_neurons(path: str | Path) -> N.NeuronResult:
    """neurons.json, typed (files written before 'eval_files' was recorded read the same)."""
    return N.NeuronResult.from_json(read_json(path))


def _paths(paths: dict[str, Path]) -> dict[str, str]:
    return {lang: str(path) for lang, path in paths.items()}


def write_neuron_files(root: Path, model, layers, stats: N.ActivationProbs, selection: N.Selection,
                       model_name: str) -> list[Path]:
    """The LAPE file, the probabilities and both masks per language; returns the paths written."""
    written = [root / "lape_neurons.pt", root / "activation_probs.pt"]
    save_tensors(root / "lape_neurons.pt", N.lape_payload(selection))
    save_tensors(root / "activation_probs.pt", {"languages": stats.languages, "layers": stats.layers,
                                                "tokens": stats.tokens, "probs": stats.probs})
    weights = prunable_weights(model)
    (root / "masks").mkdir(exist_ok=True)
    for lang in selection.languages:
        kept = N.neuron_mask(weights, layers, selection.neurons[lang])
        meta = {"task": "neurons", "languages": [lang], "model": model_name, "method": "lape",
                "neurons": sum(len(t) for t in selection.neurons[lang])}
        kept.save(root / "masks" / f"neurons_{lang}.pt", {**meta, "keeps": "the language's neurons only"})
        N.complement(kept).save(root / "masks" / f"without_{lang}.pt",
                                {**meta, "operation": "without", "keeps": "all but the language's neurons"})
        written += [root / "masks" / f"{kind}_{lang}.{ext}" for kind in ("neurons", "without") for ext in ("pt", "json")]
    return written


def write_matrix_csv(path: Path, cells: dict[str, dict[str, float]], columns: list[str]) -> None:
    write_csv(path, ["ablated", *columns], [[row, *(cells[row][c] for c in columns)] for row in cells])


def write_rows_csv(path: Path, rows: list[dict]) -> None:
    keys = list(rows[0]) if rows else ["language", "layer"]
    write_csv(path, keys, [[r[k] for k in keys] for r in rows])


def format_counts(selection: N.Selection) -> str:
    lines = [f"LAPE: {selection.candidates} neurons pass the filter (p > {selection.filter_threshold:.4f} in some "
             f"language), {selection.selected} lowest-entropy kept, bar p > {selection.activation_bar:.4f}",
             "language  " + "  ".join(f"{layer:>10}" for layer in selection.layers) + "  total"]
    for lang, counts in selection.counts().items():
        lines.append(f"{lang:<8}  " + "  ".join(f"{c:>10}" for c in counts) + f"  {sum(counts):>5}")
    return "\n".join(lines)


def format_ablation(matrix: N.AblationMatrix) -> str:
    lines = ["dense perplexity: " + ", ".join(f"{e} {format_number(p, 2)}" for e, p in matrix.dense.items())]
    for kind in ABLATION_KINDS:
        lines.append(f"perplexity change over dense (%), {kind} neurons deactivated (rows) x eval language (columns)")
        lines.append("          " + "  ".join(f"{e:>9}" for e in matrix.eval_languages))
        for ablated, row in matrix.relative(kind).items():
            lines.append(f"{ablated:<8}  " + "  ".join(f"{100 * row[e]:>+9.3g}" for e in matrix.eval_languages))
    return "\n".join(lines)


def format_overlap(rows: list[N.OverlapRow]) -> str:
    lines = ["language  layer        neurons  lape_mean  random_mean      z  p_high"]
    for r in rows:
        lines.append(f"{r.language:<8}  {r.layer:<11}  {r.neurons:>7}  {r.lape_mean:>9.4f}  {r.random_mean:>11.4f}  "
                     f"{format_number(r.z, 2) if r.z == r.z else 'nan':>5}  {r.p_high:>6.3f}")
    return "\n".join(lines)
