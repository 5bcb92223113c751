"""What a study costs, three ways, and how many runs fit on one GPU.

* paper speed: the paper's GPU-hours per step on a Quadro RTX 8000 (plan.steps_per_second);
* measured speed: steps/s from a benchmarks/results/<gpu>.json file (SpeedFile, written by benchmarks/gpu_bench.py
  --speeds) at the study's packing (runs_per_gpu runs sharing one GPU);
* FLOP bound: 6 x parameters x training tokens + 2 x parameters x evaluation tokens, at a stated fraction of a
  named GPU's peak dense bf16 throughput. No real run can be faster, so it shows how far the other two are from
  what the hardware allows.

Nothing here loads weights or touches a GPU: parameter counts come from the model's config (instantiated on the
meta device) or, for hub models not available offline, from KNOWN_MODELS.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from utils.infra.errors import UserError

if TYPE_CHECKING:
    from .plan import Run, Study

# Peak dense bf16 tensor throughput in TFLOP/s (no sparsity), from the vendors' data sheets (docs/benchmarks.md).
GPU_PEAK_TFLOPS = {"H100 SXM": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "RTX 8000": 130.0}
DEFAULT_GPU = "H100 SXM"
DEFAULT_UTILIZATION = 0.4
PIECES_PER_WORD = 1.35  # mBERT word pieces per whitespace word on WikiANN (benchmarks/common.wikiann_lengths)
# Mean tokens per example (with special tokens, dynamic padding) when no local data file is there to count.
DEFAULT_TOKENS = {"ner": 19.0, "xnli": 50.0, "pawsx": 60.0, "mt5_xnli": 50.0}
# Development examples evaluated per language when no local file is there (paper Table 7 / the hub splits).
DEFAULT_EVAL_EXAMPLES = {"ner": 10_000, "xnli": 2_490, "pawsx": 2_000, "mt5_xnli": 2_490, "mlm": 2_000, "clm": 2_000}
FRAMEWORK_BYTES = 1.5 * 2**30  # CUDA context, cuBLAS workspace, allocator slack per process


@dataclass(frozen=True)
class ModelSize:
    """Parameters of a model: all of them (memory) and those in matrix products (FLOPs: embedding lookups cost
    none), with the shape the activation memory depends on."""

    name: str
    total: int
    matmul: int
    hidden: int
    layers: int  # encoder + decoder layers
    heads: int
    source: str


# Hub models whose config may not be here offline: parameters of the transformers classes as trained (BertModel;
# MT5ForConditionalGeneration with its untied LM head) and, for FLOPs, without embedding tables and LM head (the
# encoder and decoder layers, counted from the hub configs on the meta device).
KNOWN_MODELS = {
    "bert-base-multilingual-cased": ModelSize("bert-base-multilingual-cased", 177_853_440, 85_646_592, 768, 12, 12,
                                              "known count (BertModel from the hub config, 178M)"),
    "mt5-base": ModelSize("google/mt5-base", 582_401_280, 198_228_480, 768, 24, 12,
                          "known count (MT5ForConditionalGeneration from the hub config, 582M)"),
}


def model_size(name: str) -> Optional[ModelSize]:
    """From a local model folder's config.json (meta device, no weights), else KNOWN_MODELS, else None."""
    if (Path(name).expanduser() / "config.json").is_file():
        return _from_config(name)
    return KNOWN_MODELS.get(name.rstrip("/").split("/")[-1])


def _from_config(name: str) -> ModelSize:
    import torch
    from torch import nn
    from transformers import AutoConfig, AutoModel, AutoModelForSeq2SeqLM

    config = AutoConfig.from_pretrained(name)
    with torch.device("meta"):
        model = AutoModelForSeq2SeqLM.from_config(config) if config.is_encoder_decoder else AutoModel.from_config(config)
    total = sum(p.numel() for p in model.parameters())
    head = model.get_output_embeddings() if config.is_encoder_decoder else None  # runs on a few target tokens only
    lookups = {id(p) for m in model.modules() if isinstance(m, nn.Embedding) or m is head for p in m.parameters()}
    matmul = sum(p.numel() for p in model.parameters() if id(p) not in lookups)
    get = lambda *keys: next(getattr(config, k) for k in keys if getattr(config, k, None))  # noqa: E731
    layers = get("num_hidden_layers", "num_layers") + (getattr(config, "num_decoder_layers", 0) or 0)
    return ModelSize(name, total, matmul, get("hidden_size", "d_model"), layers,
                     get("num_attention_heads", "num_heads"), "model config (meta device)")


# ---------------------------------------------------------------------------------------------------------------
# Peak memory of one run, and how many fit on a GPU
# ---------------------------------------------------------------------------------------------------------------


def peak_memory_bytes(size: ModelSize, batch: int, seq_len: int, bf16: bool) -> float:
    """Estimated peak GPU memory of one training run (the one place this formula lives):

        parameters x (4 weights + 4 gradients + 8 Adam moments + 1 bool mask + 4 BoundMask copy) = 21 bytes each
      + activations: layers x batch x seq_len x hidden x (34 + 5 x heads x seq_len / hidden) bytes in 16-bit
        (Korthikanti et al. 2022, per transformer layer), twice that in fp32
      + 1.5 GiB per process (CUDA context, workspaces, allocator slack).
    seq_len is the longest a batch can be (max_seq_length): dynamic padding makes most batches shorter."""
    weights = 21.0 * size.total
    per_layer = batch * seq_len * size.hidden * (34 + 5 * size.heads * seq_len / size.hidden)
    activations = size.layers * per_layer * (1 if bf16 else 2)
    return weights + activations + FRAMEWORK_BYTES


@dataclass(frozen=True)
class Packing:
    """How many runs share one GPU: what the study asked, what fits, and why."""

    requested: int
    runs_per_gpu: int
    peak_gib: Optional[float]  # the largest run's estimate
    gpu_gib: Optional[float]
    note: str


def plan_packing(requested: int, peaks: list[float], gpu_gib: Optional[float], where: str) -> Packing:
    """Lower runs_per_gpu to what fits the GPU's memory (a note says so); refuse when not even one run fits."""
    if not peaks:
        return Packing(requested, requested, None, gpu_gib, "no training run with a known model size")
    peak = max(peaks) / 2**30
    if gpu_gib is None:
        return Packing(requested, requested, peak, None,
                       f"peak memory per run ~{peak:.1f} GiB (estimate); GPU memory unknown, packing not checked "
                       "(set executor.gpu_memory_gb)")
    fits = int(gpu_gib // peak)
    if fits < 1:
        raise UserError(f"{where}: a run needs ~{peak:.1f} GiB of GPU memory (estimate), more than the GPU's "
                        f"{gpu_gib:g} GiB (executor.gpu_memory_gb): lower the batch size or max_seq_length")
    used = min(requested, fits)
    note = f"{used} run(s) per GPU x ~{peak:.1f} GiB peak each (estimate) on {gpu_gib:g} GiB"
    if used < requested:
        note += f"; executor.runs_per_gpu {requested} lowered to {used}: {requested} would not fit"
    return Packing(requested, used, peak, gpu_gib, note)


def gpu_memory_gib(executor: dict) -> Optional[float]:
    """executor.gpu_memory_gb from the study file, else the smallest GPU's memory from nvidia-smi (not torch.cuda:
    the runner must not initialise CUDA before it forks runs), else None."""
    if "gpu_memory_gb" in executor:
        return float(executor["gpu_memory_gb"])
    import shutil
    import subprocess

    if not shutil.which("nvidia-smi"):
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=20).stdout
        sizes = [float(line) / 1024 for line in out.split() if line.strip()]  # MiB
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return min(sizes) if sizes else None


# ---------------------------------------------------------------------------------------------------------------
# Tokens per example from the data
# ---------------------------------------------------------------------------------------------------------------


def mean_tokens(path: Optional[Path], kind: str, max_len: int, limit: int = 2000) -> tuple[float, str]:
    """Mean tokens per example under dynamic padding: counted from a local JSON-lines file (whitespace words x
    PIECES_PER_WORD + special tokens, cut at max_len), else DEFAULT_TOKENS; language-model kinds train on
    full blocks of max_len tokens."""
    if kind in ("mlm", "clm"):
        return float(max_len), f"blocks of {max_len} tokens"
    if path is None or not path.is_file():
        return DEFAULT_TOKENS.get(kind, 50.0), "stated default (no local data)"
    lengths = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if len(lengths) >= limit:
                break
            if line.strip():
                lengths.append(min(max_len, _example_tokens(json.loads(line))))
    if not lengths:
        return DEFAULT_TOKENS.get(kind, 50.0), "stated default (empty data file)"
    return sum(lengths) / len(lengths), f"counted in {path}"


def _example_tokens(record: dict) -> int:
    texts = [v for v in record.values() if isinstance(v, str)]
    lists = [v for v in record.values() if isinstance(v, list) and v and all(isinstance(x, str) for x in v)]
    words = sum(len(t.split()) for t in texts) + sum(len(v) for v in lists)
    segments = max(1, len(texts) + len(lists))
    return round(words * PIECES_PER_WORD) + segments + 1  # [CLS] and a [SEP] per segment


# ---------------------------------------------------------------------------------------------------------------
# Measured speeds: the benchmark's output file
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpeedMeasurement:
    """steps/s of ONE run while `concurrent` identical runs (processes) share the GPU."""

    workload: str  # "imp/ner", "finetune/xnli", ... (the keys of a study's steps_per_second)
    concurrent: int
    bf16: bool
    torch_compile: bool
    steps_per_s: float
    peak_gib: Optional[float] = None


@dataclass
class SpeedFile:
    """benchmarks/results/<gpu>.json: what was measured, where, when and with what."""

    date: str
    gpu: str
    gpu_memory_gib: float
    hardware: dict[str, str]
    versions: dict[str, str]
    settings: dict[str, str]  # batch, lengths, model shapes: what the steps were
    measurements: list[SpeedMeasurement] = field(default_factory=list)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(dataclasses.asdict(self), indent=1) + "\n", encoding="utf-8")

    @classmethod
    def read(cls, path: str | Path) -> "SpeedFile":
        try:
            raw = json.loads(Path(path).read_text(encoding="utf-8"))
            rows = [SpeedMeasurement(**m) for m in raw.pop("measurements")]
            return cls(**raw, measurements=rows)
        except FileNotFoundError:
            raise UserError(f"speeds file not found: {path}") from None
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            raise UserError(f"speeds file {path} is not a benchmark result ({type(error).__name__}: {error})") \
                from None

    def rate(self, workload: str, concurrent: int, bf16: bool, torch_compile: bool) -> Optional[SpeedMeasurement]:
        """The measurement at this packing, or at the largest measured concurrency below it (conservative)."""
        rows = [m for m in self.measurements if (m.workload, m.bf16, m.torch_compile) == (workload, bf16, torch_compile)
                and m.concurrent <= concurrent]
        return max(rows, key=lambda m: m.concurrent, default=None)


def flop_hours(flops: float, gpu: str, utilization: float) -> float:
    """GPU-hours `flops` take at `utilization` of the GPU's peak dense bf16 throughput."""
    return flops / (utilization * GPU_PEAK_TFLOPS[gpu] * 1e12) / 3600


def evaluations(run_config: dict, is_imp: bool, rounds: int) -> int:
    """Evaluations of the dev set per run: one per IMP round, or one per fine-tuning epoch (at least one)."""
    if is_imp:
        return max(1, rounds)
    return max(1, math.ceil(float(run_config.get("num_train_epochs") or 1)))


# ---------------------------------------------------------------------------------------------------------------
# A study's runs: FLOPs, memory and GPU-hours per kind
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunCost:
    """One training run's work: FLOPs of its training and evaluation, and its estimated peak memory."""

    run_id: str
    workload: str  # imp/ner, finetune/xnli, ... (as steps_per_second and SpeedMeasurement name it)
    steps: int
    train_flops: Optional[float]  # None: model size unknown
    eval_flops: Optional[float]
    tokens_per_example: float
    token_source: str
    size: Optional[ModelSize]
    peak_bytes: Optional[float]
    bf16: bool
    torch_compile: bool


def run_cost(run: "Run", options: dict, sizes: dict[str, Optional[ModelSize]]) -> RunCost:
    """FLOPs = 6 x matmul parameters x training tokens + 2 x matmul parameters x evaluation tokens, where tokens
    are optimizer steps x batch x mean tokens per example (IMP: one dev-set evaluation per round of save_steps;
    fine-tuning: one per epoch; each over every evaluated language)."""
    value = lambda key: run.config.get(key, options.get(key))  # noqa: E731
    model = str(value("model_name_or_path"))
    if model not in sizes:
        sizes[model] = model_size(model)
    size = sizes[model]
    max_len = int(value("max_seq_length") or 128)
    languages = [lang for lang in str(value("data_language")).split(",") if lang]
    evaluated = languages + [lang for lang in str(value("eval_languages") or "").split(",") if lang and lang not in
                             languages]
    train_tokens, source = mean_tokens(_language_file(value("train_file"), languages[0]), run.task_kind, max_len)
    batch = int(value("per_device_train_batch_size")) * int(value("gradient_accumulation_steps") or 1)
    steps = run.steps or 0
    rounds = math.ceil(steps / int(value("save_steps"))) if run.is_imp and value("save_steps") else 0
    n_eval = evaluations(run.config, run.is_imp, rounds) if value("do_eval") else 0
    eval_examples = sum(_eval_examples(value("validation_file"), lang, run.task_kind, value("max_eval_samples"))
                        for lang in evaluated) * n_eval
    eval_tokens = mean_tokens(_language_file(value("validation_file"), languages[0]), run.task_kind, max_len)[0]
    bf16 = bool(value("bf16"))
    train = eval_ = peak = None
    if size is not None:
        train = 6.0 * size.matmul * steps * batch * train_tokens
        eval_ = 2.0 * size.matmul * eval_examples * eval_tokens
        peak = peak_memory_bytes(size, int(value("per_device_train_batch_size")), max_len, bf16)
    workload = f"{'imp' if run.is_imp else 'finetune'}/{run.task_kind}"
    return RunCost(run.id, workload, steps, train, eval_, train_tokens, source, size, peak, bf16,
                   bool(value("torch_compile")))


def _language_file(template: Optional[str], lang: str) -> Optional[Path]:
    return Path(template.replace("{lang}", lang)) if template else None


def _eval_examples(template: Optional[str], lang: str, kind: str, limit: Optional[int]) -> int:
    path = _language_file(template, lang)
    if path is not None and path.is_file():
        with open(path, encoding="utf-8") as handle:
            size = sum(1 for line in handle if line.strip())
    else:
        size = DEFAULT_EVAL_EXAMPLES.get(kind, 2_000)
    return min(size, int(limit)) if limit else size


def study_costs(study: "Study") -> list[RunCost]:
    """Every training run's cost (model sizes read once per model)."""
    from .plan import TASK_KINDS, script_options

    options: dict[tuple[str, bool], dict] = {}
    sizes: dict[str, Optional[ModelSize]] = {}
    costs = []
    for run in study.runs.values():
        if run.task_kind is None:
            continue
        key = (run.task_kind, run.is_imp)
        if key not in options:
            options[key] = script_options(TASK_KINDS[run.task_kind], "imp" if run.is_imp else "finetune")
        costs.append(run_cost(run, options[key], sizes))
    return costs


def study_packing(study: "Study", costs: list[RunCost]) -> Packing:
    """The study's executor.runs_per_gpu, lowered to what the runs' estimated peak memory lets fit."""
    peaks = [c.peak_bytes for c in costs if c.peak_bytes is not None]
    return plan_packing(int(study.executor.get("runs_per_gpu", 1)), peaks, gpu_memory_gib(study.executor),
                        study.path)


@dataclass(frozen=True)
class KindCost:
    """One row of the dry run's cost table."""

    kind: str
    runs: int
    flops: Optional[float]  # None when some run's model size is unknown
    bound_hours: Optional[float]
    measured_hours: Optional[float]  # None without a speeds file or when a workload was not measured


def kind_costs(study: "Study", costs: list[RunCost], gpu: str, utilization: float, speeds: Optional[SpeedFile],
               runs_per_gpu: int) -> list[KindCost]:
    """Per study kind: FLOPs, the FLOP-bound GPU-hours, and GPU-hours at the measured speed for this packing
    (runs_per_gpu runs share a GPU, so a run's hours count 1/runs_per_gpu)."""
    by_kind: dict[str, list[RunCost]] = {}
    for cost in costs:
        by_kind.setdefault(study.runs[cost.run_id].kind, []).append(cost)
    rows = []
    for kind, group in by_kind.items():
        flops = None if any(c.train_flops is None for c in group) else \
            sum(c.train_flops + c.eval_flops for c in group)
        measured = None
        if speeds is not None:
            rates = [speeds.rate(c.workload, runs_per_gpu, c.bf16, c.torch_compile) for c in group]
            if all(rates):
                measured = sum(c.steps / r.steps_per_s / 3600 / r.concurrent for c, r in zip(group, rates))
        rows.append(KindCost(kind, len(group), flops, None if flops is None else flop_hours(flops, gpu, utilization),
                             measured))
    return rows
