"""Helpers shared by the benchmark scripts: model shapes, realistic sentence lengths, synthetic batches, the
training step exactly as MaskedTrainer does it, the torch.nn.utils.prune reference, timing and machine info.

Nothing here is imported by the project itself; the scripts put the repository root on sys.path.
"""
from __future__ import annotations

import datetime
import math
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Iterable, Optional

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

NER_LABELS = 7
XNLI_LABELS = 3
MBERT_VOCAB = 119_547

# bert-base-multilingual-cased without the vocabulary (prunable matrices do not depend on it)
MBERT_SHAPE = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072)
# mBERT-shaped but small enough for a 2-core CPU
SMALL_SHAPE = dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024)
# for smoke tests: seconds, not minutes
TINY_SHAPE = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)


def bert_config(shape: dict, vocab_size: int, num_labels: int):
    from transformers import BertConfig

    return BertConfig(vocab_size=vocab_size, max_position_embeddings=512, num_labels=num_labels, **shape)


def build_model(shape: dict, vocab_size: int, task: str = "ner", seed: int = 0) -> nn.Module:
    """A randomly initialised BERT tagger (NER, no pooler) or sequence classifier (XNLI, with pooler)."""
    from transformers import BertForSequenceClassification, BertForTokenClassification

    torch.manual_seed(seed)
    if task == "ner":
        return BertForTokenClassification(bert_config(shape, vocab_size, NER_LABELS))
    return BertForSequenceClassification(bert_config(shape, vocab_size, XNLI_LABELS))


# ---------------------------------------------------------------------------------------------------------------
# Sentence lengths and synthetic examples
# ---------------------------------------------------------------------------------------------------------------


def wikiann_lengths(n: int, seed: int = 0, max_len: int = 128) -> list[int]:
    """Sub-token lengths (with [CLS]/[SEP]) like WikiANN's: words ~ lognormal, median 11, 90% within 5-27 words;
    about 1.35 word pieces per word in mBERT."""
    rng = np.random.default_rng(seed)
    words = np.clip(np.round(rng.lognormal(math.log(11), 0.55, n)), 3, 80)
    return [int(min(max_len, round(w * 1.35) + 2)) for w in words]


def xnli_lengths(n: int, seed: int = 0, max_len: int = 128) -> list[int]:
    """Premise + hypothesis pair lengths like XNLI's (median ~45 word pieces, long tail truncated at 128)."""
    rng = np.random.default_rng(seed)
    pieces = np.clip(np.round(rng.lognormal(math.log(45), 0.4, n)), 12, 400)
    return [int(min(max_len, p)) for p in pieces]


def ner_example(length: int, vocab_size: int, rng: np.random.Generator) -> dict:
    ids = rng.integers(5, vocab_size, length).tolist()
    ids[0], ids[-1] = 2, 3  # [CLS] ... [SEP]
    labels = rng.integers(0, NER_LABELS, length).tolist()
    labels[0] = labels[-1] = -100
    for i in range(1, length - 1):  # continuation word pieces carry no label (the default, label_all_tokens off)
        if rng.random() < 0.26:
            labels[i] = -100
    return {"input_ids": ids, "attention_mask": [1] * length, "labels": labels}


def ner_examples(lengths: Iterable[int], vocab_size: int, seed: int = 0, pad_to: Optional[int] = None) -> list[dict]:
    """Examples as the NER tokeniser yields them; pad_to pads each one (what --pad_to_max_length does)."""
    rng = np.random.default_rng(seed)
    out = []
    for length in lengths:
        ex = ner_example(length, vocab_size, rng)
        if pad_to:
            pad = pad_to - length
            ex = {"input_ids": ex["input_ids"] + [0] * pad, "attention_mask": ex["attention_mask"] + [0] * pad,
                  "labels": ex["labels"] + [-100] * pad}
        out.append(ex)
    return out


def pad_tokenizer():
    """The smallest fast tokenizer DataCollatorForTokenClassification can pad with ([PAD] = 0, right padding)."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    inner = Tokenizer(WordLevel({"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3}, unk_token="[UNK]"))
    return PreTrainedTokenizerFast(tokenizer_object=inner, pad_token="[PAD]", unk_token="[UNK]")


def token_batch(lengths: list[int], vocab_size: int, pad_to: Optional[int] = None, seed: int = 0,
                task: str = "ner", device="cpu") -> dict[str, torch.Tensor]:
    """One collated batch: padded to the longest example (dynamic) or to `pad_to`."""
    rng = np.random.default_rng(seed)
    width = pad_to or max(lengths)
    ids = torch.zeros(len(lengths), width, dtype=torch.long)
    attention = torch.zeros(len(lengths), width, dtype=torch.long)
    labels = torch.full((len(lengths), width), -100, dtype=torch.long)
    for row, length in enumerate(lengths):
        ids[row, :length] = torch.from_numpy(rng.integers(5, vocab_size, length))
        attention[row, :length] = 1
        labels[row, 1:length - 1] = torch.from_numpy(rng.integers(0, NER_LABELS, length - 2))
    batch = {"input_ids": ids, "attention_mask": attention}
    if task == "ner":
        batch["labels"] = labels
    else:
        batch["token_type_ids"] = torch.zeros_like(ids)
        batch["labels"] = torch.from_numpy(rng.integers(0, XNLI_LABELS, len(lengths)))
    return {k: v.to(device) for k, v in batch.items()}


def length_grouped_batches(lengths: list[int], batch_size: int, seed: int = 0) -> list[list[int]]:
    """Batches of indices in the order transformers' LengthGroupedSampler (used by --group_by_length) yields."""
    from transformers.trainer_pt_utils import LengthGroupedSampler

    generator = torch.Generator().manual_seed(seed)
    order = list(LengthGroupedSampler(batch_size, lengths=lengths, generator=generator))
    return [order[i:i + batch_size] for i in range(0, len(order) - batch_size + 1, batch_size)]


def random_batches(n: int, batch_size: int, seed: int = 0) -> list[list[int]]:
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    return [order[i:i + batch_size] for i in range(0, n - batch_size + 1, batch_size)]


# ---------------------------------------------------------------------------------------------------------------
# Training steps
# ---------------------------------------------------------------------------------------------------------------


def training_args(output_dir: str, **overrides):
    from utils.infra.args import ExperimentTrainingArguments

    values = dict(output_dir=output_dir, use_cpu=not torch.cuda.is_available(), learning_rate=2e-5, report_to="none",
                  logging_steps=10**6, evaluate_during_training=False, do_train=True, do_eval=False)
    values.update(overrides)
    return ExperimentTrainingArguments(**values)


def half_mask(weights, sparsity: float = 0.5):
    """A one-shot global magnitude mask at `sparsity`, as IMP would hold mid-way."""
    from utils.core.masks import Mask
    from utils.core.pruning import magnitude_prune

    return magnitude_prune(weights, Mask.ones_like(weights), sparsity)


class Stepper:
    """One training variant on its own model copy: 'dense', 'ours' (MaskedTrainer's step: utils.core.masks.BoundMask
    zeroes the pruned gradients before clipping and re-zeroes the pruned weights after the optimizer step) or
    'prune_hooks' (the original code's torch.nn.utils.prune re-parametrisation: weight = weight_orig * weight_mask
    recomputed by a forward pre-hook on every forward).

    Same optimizer (utils.core.training.build_optimizer: the --optim default, fused AdamW), linear schedule and clipping
    at 1.0 as MaskedTrainer; `autocast` = None, torch.bfloat16 or torch.float16.
    """

    def __init__(self, model: nn.Module, variant: str, sparsity: float = 0.5, autocast=None, steps: int = 10**6):
        from torch.nn.utils import prune
        from transformers import get_scheduler

        from utils.core.pruning import prunable_weights
        from utils.core.training import build_optimizer, masked_optimizer_step

        self.model, self.variant, self.autocast = model, variant, autocast
        self.device = next(model.parameters()).device
        weights = prunable_weights(model)
        self.mask, self.bound = None, None  # bound: the mask MaskedTrainer's step applies ('ours' only)
        if variant in ("ours", "prune_hooks"):
            self.mask = half_mask(weights, sparsity)
        if variant == "ours":
            self.bound = self.mask.bind(weights)  # exactly what MaskedTrainer does
            self.bound.apply_to_weights()
        elif variant == "prune_hooks":
            modules = {name: module for name, module in model.named_modules() if isinstance(module, nn.Linear)}
            for name, tensor in self.mask.items():
                prune.custom_from_mask(modules[name.removesuffix(".weight")], "weight", tensor.to(self.device).float())
        elif variant != "dense":
            raise ValueError(variant)
        args = training_args("/tmp/unused-benchmark-output", use_cpu=self.device.type == "cpu")
        self.optimizer = build_optimizer(model, args)
        self.scheduler = get_scheduler("linear", self.optimizer, num_warmup_steps=0, num_training_steps=steps)
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer_step = masked_optimizer_step  # MaskedTrainer's step, so the benchmark times exactly it
        model.train()

    def step(self, batch: dict) -> torch.Tensor:
        if self.autocast is not None:
            with torch.autocast(self.device.type, dtype=self.autocast):
                loss = self.model(**batch).loss
        else:
            loss = self.model(**batch).loss
        loss.backward()
        self.optimizer_step(self.optimizer, self.scheduler, self.bound,
                            lambda: torch.nn.utils.clip_grad_norm_(self.params, 1.0))
        return loss.detach()


def sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def interleaved(runs: dict[str, Callable[[], float]], reps: int, warmup: bool = True) -> dict[str, list[float]]:
    """Call every run `reps` times, rotating the order each repetition; returns the seconds of each call."""
    names = list(runs)
    if warmup:
        for name in names:
            runs[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(reps):
        order = names[rep % len(names):] + names[:rep % len(names)]
        for name in order:
            times[name].append(runs[name]())
    return times


def timed(fn: Callable[[], object], device="cpu") -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def paired_ratio(numerator: list[float], denominator: list[float]) -> float:
    """Median over repetitions of the per-repetition ratio (robust to machine-wide slow phases)."""
    return statistics.median(a / b for a, b in zip(numerator, denominator))


def median(values: list[float]) -> float:
    return statistics.median(values)


def spread(values: list[float]) -> str:
    return f"{min(values):.3g}-{max(values):.3g}"


# ---------------------------------------------------------------------------------------------------------------
# Machine description
# ---------------------------------------------------------------------------------------------------------------


def machine_info() -> dict:
    import accelerate
    import transformers

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "host": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "accelerate": accelerate.__version__,
        "numpy": np.__version__,
        "cuda": torch.cuda.is_available(),
    }
    try:
        info["memory_gb"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        pass
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpu_memory_gb=round(props.total_memory / 2**30, 1), cuda_version=torch.version.cuda,
                    gpu_count=torch.cuda.device_count())
    return info


def _status_mb(field: str) -> float:
    """A memory line of /proc/self/status in MiB; off Linux, the peak from getrusage."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_rss_mb() -> float:
    """This process's peak RSS: VmHWM (ru_maxrss would be wrong: Linux carries it over from the parent across exec)."""
    return _status_mb("VmHWM")


def current_rss_mb() -> float:
    return _status_mb("VmRSS")


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
