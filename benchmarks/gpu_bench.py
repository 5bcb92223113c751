#!/usr/bin/env python
"""IMP-style masked training throughput of the full mBERT architecture on a GPU, and the wall time it implies for
the paper's IMP schedules. Run through benchmarks/gpu.sh; runs on CPU too with a small model (--small, automatic
when CUDA is missing).

    python benchmarks/gpu_bench.py --out results/gpu            # ~4-6 minutes on one H100/H200
    python benchmarks/gpu_bench.py --out /tmp/gpu --small        # a quick CPU check of the script itself

For NER (BertForTokenClassification, 7 labels) and XNLI (BertForSequenceClassification with pooler, 3 labels),
random weights, vocabulary 119,547, batch 32, max length 128, the same training step as MaskedTrainer (fused AdamW
from --optim's default, linear schedule, gradient mask before clipping at 1.0, weight re-mask after the step), it
times every combination of
    precision  fp32 | bf16 (torch.autocast, what --bf16 does through Accelerate)
    padding    dynamic (WikiANN / XNLI-like lengths, batches from LengthGroupedSampler as --group_by_length)
               | max (every batch padded to 128, the original code's only mode)
    mask       dense | masked at 50% (global magnitude mask)
interleaving them over repetitions. Per combination: samples/s, real (non-pad) tokens/s, peak memory. Also forward
throughput at the evaluation batch size, magnitude pruning time, and an estimate of the wall time of
    NER   10 rounds x 1875 steps, 10,000 dev examples evaluated every --logging_steps (500) and after each round
    XNLI  10 rounds x 36813 steps, 2,490 dev examples, same evaluation rule
Writes gpu_bench.json and gpu_bench.md into --out.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import queue
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from common import markdown_table, median  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

SCHEDULES = {  # the paper's IMP runs (LT_ner_args / LT_xnli_args of the original code, Table 7)
    "ner": {"rounds": 10, "steps": 1875, "eval_examples": 10_000},
    "xnli": {"rounds": 10, "steps": 36_813, "eval_examples": 2_490},
}
SMALL_SHAPE = dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=512)


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for gpu_bench.json and gpu_bench.md")
    parser.add_argument("--small", action="store_true", help="small model, few steps (automatic without CUDA)")
    parser.add_argument("--tasks", default="ner,xnli")
    parser.add_argument("--batch", type=int, help="default 32 (8 with --small)")
    parser.add_argument("--seq", type=int, help="max length, what 'max' padding pads to: default 128 (64 with --small)")
    parser.add_argument("--steps", type=int, help="timed steps per combination and repetition: default 24 (2)")
    parser.add_argument("--warmup", type=int, help="untimed steps per combination first: default 3 (1)")
    parser.add_argument("--reps", type=int, help="interleaved repetitions: default 2 (1)")
    parser.add_argument("--eval_batch", type=int, help="evaluation batch: default 128 (16)")
    parser.add_argument("--logging_steps", type=int, default=500, help="evaluation interval assumed in the estimate")
    parser.add_argument("--sparsity", type=float, default=0.5)
    speeds = parser.add_argument_group("--speeds: steps/s per run with several runs per GPU, for study.py --speeds")
    speeds.add_argument("--speeds", action="store_true", help="measure concurrent runs and write --out/<gpu>.json")
    speeds.add_argument("--concurrency", default="1,2,4,8", help="runs (processes) sharing the GPU at once")
    speeds.add_argument("--workloads", default=",".join(SPEED_WORKLOADS))
    speeds.add_argument("--bf16", default="off,on", help="which of off,on to measure")
    speeds.add_argument("--compile", default="off,on", help="torch_compile: which of off,on to measure")
    args = parser.parse_args(argv)
    args.small = args.small or not torch.cuda.is_available()
    defaults = dict(batch=8, seq=64, steps=2, warmup=1, reps=1, eval_batch=16) if args.small else \
        dict(batch=32, seq=128, steps=24, warmup=3, reps=2, eval_batch=128)
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def lengths_for(task: str, n: int, seq: int, seed: int) -> list[int]:
    return common.wikiann_lengths(n, seed, seq) if task == "ner" else common.xnli_lengths(n, seed, seq)


def seqeval_seconds(examples: int) -> float:
    """CPU time of the NER metric (seqeval) on `examples` sentences: part of every NER evaluation."""
    from seqeval.metrics import accuracy_score, f1_score, precision_score, recall_score

    rng = np.random.default_rng(0)
    labels = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]
    true = [[labels[i] for i in rng.integers(0, 7, n)] for n in common.wikiann_lengths(examples, 3)]
    pred = [[labels[i] for i in rng.integers(0, 7, len(t))] for t in true]
    start = time.perf_counter()
    for fn in (precision_score, recall_score, f1_score):
        fn(true, pred, zero_division=0)
    accuracy_score(true, pred)
    return time.perf_counter() - start


PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}


def bench_task(task: str, args, device: torch.device) -> dict:
    """Every combination's training step, evaluation forward passes and pruning for one task, and the estimate."""
    shape, vocab = (SMALL_SHAPE, 2000) if args.small else (common.MBERT_SHAPE, common.MBERT_VOCAB)
    steppers, prune_s = build_steppers(task, shape, vocab, args.sparsity, device)
    work = training_batches(task, args, vocab, device)
    combos = [(p, pad, m) for p in PRECISIONS for pad in work.batches for m in steppers]
    times, peaks = time_combinations(combos, steppers, work.batches, args, device)
    eval_s = eval_seconds_per_example(steppers["masked"].model, task, args, vocab, device)
    results = combination_results(combos, times, peaks, work)
    rows = [[task, r["precision"], r["padding"], r["mask"], f"{r['step_s'] * 1000:.1f}", f"{r['samples_per_s']:.0f}",
             f"{r['real_tokens_per_s']:.0f}", f"{r['masked_over_dense']:.3f}", f"{r['speedup_vs_fp32_max_dense']:.2f}x",
             f"{r['peak_gib']:.2f} / {r['peak_over_start_gib']:.2f}" if "peak_gib" in r else "-"] for r in results]
    schedule = SCHEDULES[task]
    evals_per_round = math.ceil(schedule["steps"] / args.logging_steps)  # every logging_steps, plus after the round
    metric_s = seqeval_seconds(schedule["eval_examples"]) if task == "ner" else 0.0
    estimates = schedule_estimates(schedule, results, eval_s, metric_s, evals_per_round, prune_s["50->60%"],
                                   list(work.batches))
    return {
        "task": task, "shape": shape, "vocab": vocab, "batch": args.batch, "seq": args.seq,
        "timed_batches": len(work.lengths), "mean_dynamic_width": statistics.mean(max(ls) for ls in work.lengths),
        "mean_real_length": work.real_tokens / work.samples, "prune_s": prune_s,
        "eval_s_per_example": eval_s, "seqeval_s": metric_s, "evals_per_round": evals_per_round,
        "results": results, "estimates": estimates, "rows": rows,
    }


def build_steppers(task: str, shape: dict, vocab: int, sparsity: float,
                   device: torch.device) -> tuple[dict[str, "common.Stepper"], dict[str, float]]:
    """A dense and a masked copy of one random model, and how long magnitude pruning takes on it."""
    from utils.core.masks import Mask
    from utils.core.pruning import magnitude_prune, prunable_weights

    base = common.build_model(shape, vocab, task)
    dense_model = copy.deepcopy(base).to(device)
    masked_model = base.to(device)
    weights = prunable_weights(masked_model)
    ones = Mask.ones_like(weights)
    prune_first = common.timed(lambda: magnitude_prune(weights, ones, 0.1), device)
    half = magnitude_prune(weights, ones, sparsity)
    prune_later = common.timed(lambda: magnitude_prune(weights, half, sparsity + 0.1), device)
    steppers = {"dense": common.Stepper(dense_model, "dense"),
                "masked": common.Stepper(masked_model, "ours", sparsity=sparsity)}
    return steppers, {"0->10%": prune_first, "50->60%": prune_later}


@dataclass
class Workload:
    """The timed batches: `lengths` per batch, and those examples with dynamic padding and padded to --seq."""

    lengths: list[list[int]]
    batches: dict[str, list]  # padding -> batches
    batch_size: int

    @property
    def real_tokens(self) -> int:
        return sum(sum(ls) for ls in self.lengths)

    @property
    def samples(self) -> int:
        return self.batch_size * len(self.lengths)


def training_batches(task: str, args, vocab: int, device: torch.device) -> Workload:
    """A fixed random subset of the --group_by_length batches of a 64-batch pool, and the same examples padded."""
    pool = lengths_for(task, args.batch * 64, args.seq, seed=1)
    grouped = common.length_grouped_batches(pool, args.batch, seed=1)
    chosen = np.random.default_rng(0).choice(len(grouped), size=min(args.steps, len(grouped)), replace=False)
    lengths = [[pool[i] for i in grouped[j]] for j in chosen]
    return Workload(lengths, {
        "dynamic": [common.token_batch(ls, vocab, task=task, seed=k, device=device) for k, ls in enumerate(lengths)],
        "max": [common.token_batch(ls, vocab, pad_to=args.seq, task=task, seed=k, device=device)
                for k, ls in enumerate(lengths)],
    }, args.batch)


def time_combinations(combos: list[tuple], steppers: dict, batches: dict[str, list], args,
                      device: torch.device) -> tuple[dict[tuple, list[float]], dict[tuple, tuple[float, float]]]:
    """Seconds per repetition of each combination (interleaved, after a warm-up), and peak memory on CUDA."""
    times: dict[tuple, list[float]] = {c: [] for c in combos}
    peaks: dict[tuple, tuple[float, float]] = {}
    cuda = device.type == "cuda"

    def run(combo, n_batches=None):
        precision, pad, masking = combo
        stepper = steppers[masking]
        stepper.autocast = PRECISIONS[precision]
        todo = batches[pad][:n_batches] if n_batches else batches[pad]
        common.sync(device)
        start = time.perf_counter()
        for batch in todo:
            stepper.step(batch)
        common.sync(device)
        return time.perf_counter() - start

    for combo in combos:  # warm-up (allocator, kernels, fused optimizer state)
        run(combo, args.warmup)
    for rep in range(args.reps):
        order = combos[rep % len(combos):] + combos[:rep % len(combos)]
        for combo in order:
            if cuda and rep == 0:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
                before = torch.cuda.memory_allocated()
            times[combo].append(run(combo))
            if cuda and rep == 0:
                peaks[combo] = (torch.cuda.max_memory_allocated() / 2**30,
                                (torch.cuda.max_memory_allocated() - before) / 2**30)
    return times, peaks


def eval_seconds_per_example(model, task: str, args, vocab: int, device: torch.device) -> dict[str, float]:
    """Evaluation forward passes (dataset order, dynamic padding, --eval_batch) per precision."""
    eval_pool = lengths_for(task, args.eval_batch * 8, args.seq, seed=2)
    eval_batches = [common.token_batch(eval_pool[i:i + args.eval_batch], vocab, task=task, seed=i, device=device)
                    for i in range(0, len(eval_pool), args.eval_batch)]
    eval_s = {}
    for precision, dtype in PRECISIONS.items():

        @torch.no_grad()
        def forward_all():
            model.eval()
            for batch in eval_batches:
                if dtype is not None:
                    with torch.autocast(device.type, dtype=dtype):
                        model(**batch).logits.argmax(-1).cpu()
                else:
                    model(**batch).logits.argmax(-1).cpu()
            model.train()

        forward_all()
        eval_s[precision] = median([common.timed(forward_all, device) for _ in range(max(1, args.reps))]) / len(eval_pool)
    return eval_s


def combination_results(combos: list[tuple], times: dict, peaks: dict, work: Workload) -> list[dict]:
    """Per combination: step time, samples and real tokens per second, and ratios to dense and to fp32/max/dense."""
    results = []
    for combo in combos:
        seconds = median(times[combo]) / len(work.lengths)
        entry = {"precision": combo[0], "padding": combo[1], "mask": combo[2], "step_s": seconds,
                 "samples_per_s": work.samples / median(times[combo]),
                 "real_tokens_per_s": work.real_tokens / median(times[combo]), "times_s": times[combo]}
        if combo in peaks:
            entry["peak_gib"], entry["peak_over_start_gib"] = peaks[combo]
        results.append(entry)
    dense_ref = {(r["precision"], r["padding"]): r for r in results if r["mask"] == "dense"}
    base_ref = next(r for r in results if (r["precision"], r["padding"], r["mask"]) == ("fp32", "max", "dense"))
    for r in results:
        dense_times = dense_ref[(r["precision"], r["padding"])]["times_s"]
        r["masked_over_dense"] = (statistics.median(a / b for a, b in zip(r["times_s"], dense_times))
                                  if r["mask"] == "masked" else 1.0)
        r["speedup_vs_fp32_max_dense"] = r["samples_per_s"] / base_ref["samples_per_s"]
    return results


def schedule_estimates(schedule: dict, results: list[dict], eval_s: dict[str, float], metric_s: float,
                       evals_per_round: int, prune_s: float, paddings: list[str]) -> dict[str, dict[str, float]]:
    """Wall time of the paper's IMP schedule per precision and padding (masked training, evaluation, pruning)."""
    estimates = {}
    for precision in PRECISIONS:
        for pad in paddings:
            r = next(x for x in results if (x["precision"], x["padding"], x["mask"]) == (precision, pad, "masked"))
            eval_one = schedule["eval_examples"] * eval_s[precision] + metric_s
            per_round = schedule["steps"] * r["step_s"] + evals_per_round * eval_one + prune_s
            estimates[f"{precision}, {pad} padding"] = {
                "hours": schedule["rounds"] * per_round / 3600,
                "train_hours": schedule["rounds"] * schedule["steps"] * r["step_s"] / 3600,
                "eval_hours": schedule["rounds"] * evals_per_round * eval_one / 3600,
            }
    return estimates


# ---------------------------------------------------------------------------------------------------------------
# --speeds: several runs per GPU (what study.py --speeds reads)
# ---------------------------------------------------------------------------------------------------------------

# workload (the study's phase/task kind) -> model; "imp/..." rounds include magnitude pruning once per round
if TYPE_CHECKING:
    from utils.study.cost import SpeedFile

SPEED_WORKLOADS = ("finetune/ner", "imp/ner", "finetune/xnli", "imp/xnli", "finetune/mt5_xnli")
MT5_SHAPE = dict(d_model=768, d_ff=2048, num_layers=12, num_heads=12, d_kv=64)  # google/mt5-base
MT5_VOCAB = 250_112
SMALL_MT5_SHAPE = dict(d_model=32, d_ff=64, num_layers=2, num_heads=2, d_kv=16)


@dataclass(frozen=True)
class SpeedJob:
    """What one of the concurrent processes runs (plain data: it crosses a process start)."""

    workload: str
    bf16: bool
    torch_compile: bool
    small: bool
    batch: int
    seq: int
    steps: int
    warmup: int


def speed_model(job: SpeedJob, seed: int = 0) -> tuple[torch.nn.Module, int, str]:
    """The workload's model with random weights (mBERT NER / XNLI, mT5-base), its vocabulary and batch kind."""
    task = job.workload.split("/")[1]
    if task == "mt5_xnli":
        from transformers import MT5Config, MT5ForConditionalGeneration

        shape, vocab = (SMALL_MT5_SHAPE, 100) if job.small else (MT5_SHAPE, MT5_VOCAB)
        torch.manual_seed(seed)
        config = MT5Config(vocab_size=vocab, feed_forward_proj="gated-gelu", tie_word_embeddings=False, **shape)
        return MT5ForConditionalGeneration(config), vocab, "seq2seq"
    shape, vocab = (common.TINY_SHAPE, 100) if job.small else (common.MBERT_SHAPE, common.MBERT_VOCAB)
    return common.build_model(shape, vocab, task, seed), vocab, task


def speed_batches(job: SpeedJob, vocab: int, kind: str, device: torch.device, n: int = 16) -> list[dict]:
    """--group_by_length batches of the task's realistic lengths, dynamically padded (mT5: XNLI pairs in, a
    two-token answer out)."""
    pool = lengths_for("ner" if kind == "ner" else "xnli", job.batch * 64, job.seq, seed=1)
    grouped = common.length_grouped_batches(pool, job.batch, seed=1)[:n]
    batches = [common.token_batch([pool[i] for i in b], vocab, task="ner" if kind == "ner" else "xnli", seed=k)
               for k, b in enumerate(grouped)]
    if kind == "seq2seq":
        batches = [{"input_ids": b["input_ids"], "attention_mask": b["attention_mask"],
                    "labels": torch.randint(5, vocab, (len(b["input_ids"]), 2), generator=torch.Generator().manual_seed(k))}
                   for k, b in enumerate(batches)]
    return [{k: v.to(device) for k, v in b.items()} for b in batches]


def speed_worker(job: SpeedJob, barrier, results) -> None:
    """One run among the concurrent ones: warm up, wait for the others, time `steps` masked training steps (the
    MaskedTrainer step at 50%), and for an IMP workload also one magnitude pruning; put (steps/s, peak GiB)."""
    try:
        from utils.core.pruning import magnitude_prune, prunable_weights

        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if device.type == "cpu":
            torch.set_num_threads(1)  # several runs on few cores: spin-waiting threads would time each other
        model, vocab, kind = speed_model(job)
        stepper = common.Stepper(model.to(device), "ours", sparsity=0.5,
                                 autocast=PRECISIONS["bf16"] if job.bf16 else None)
        if job.torch_compile:
            stepper.model = torch.compile(stepper.model)
        batches = speed_batches(job, vocab, kind, device)
        for k in range(job.warmup):
            stepper.step(batches[k % len(batches)])
        common.sync(device)
        barrier.wait(timeout=1800)
        seconds = common.timed(lambda: [stepper.step(batches[k % len(batches)]) for k in range(job.steps)], device)
        step_s = seconds / job.steps
        if job.workload.startswith("imp/"):  # a round of the paper's length: its steps, then one pruning
            weights = prunable_weights(model)
            prune_s = common.timed(lambda: magnitude_prune(weights, stepper.mask, 0.6), device)
            round_steps = SCHEDULES.get(job.workload.split("/")[1], SCHEDULES["xnli"])["steps"]
            rate = round_steps / (round_steps * step_s + prune_s)
        else:
            rate = 1 / step_s
        peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None
        results.put(("ok", rate, peak))
    except BaseException as error:  # noqa: BLE001 - report to the parent whatever happened (OOM included)
        barrier.abort()
        results.put(("error", f"{type(error).__name__}: {str(error).strip()[:200]}", None))


def measure_concurrent(job: SpeedJob, runs: int) -> tuple[Optional[float], Optional[float], str]:
    """`runs` processes of the job at once: the median per-run steps/s and the largest peak, or the first error."""
    import multiprocessing

    context = multiprocessing.get_context("spawn" if torch.cuda.is_available() else "fork")
    barrier, results = context.Barrier(runs), context.Queue()
    processes = [context.Process(target=speed_worker, args=(job, barrier, results)) for _ in range(runs)]
    for process in processes:
        process.start()
    outcomes = []
    while len(outcomes) < runs:
        try:
            outcomes.append(results.get(timeout=5))
        except queue.Empty:
            if any(p.exitcode not in (None, 0) for p in processes):  # killed without a word (the OOM killer)
                barrier.abort()  # the others stop waiting for it
            if not any(p.is_alive() for p in processes) and results.empty():
                outcomes += [("error", "a run's process died", None)] * (runs - len(outcomes))
    for process in processes:
        process.join()
    errors = [text for status, text, _ in outcomes if status != "ok"]
    if errors:
        return None, None, errors[0]
    peaks = [peak for _, _, peak in outcomes if peak is not None]
    return median([rate for _, rate, _ in outcomes]), max(peaks) if peaks else None, ""


def measure_speeds(args) -> "SpeedFile":
    """Every workload x bf16 x torch_compile x concurrency; a combination that fails (out of memory at 8 runs) is
    left out with a printed note."""
    from utils.study.cost import SpeedFile, SpeedMeasurement

    info = common.machine_info()
    switch = lambda text: [{"off": False, "on": True}[v.strip()] for v in text.split(",") if v.strip()]  # noqa: E731
    measurements = []
    for workload in [w.strip() for w in args.workloads.split(",") if w.strip()]:
        for bf16 in switch(args.bf16):
            for compiled in switch(args.compile):
                for runs in [int(v) for v in args.concurrency.split(",")]:
                    job = SpeedJob(workload, bf16, compiled, args.small, args.batch, args.seq, args.steps, args.warmup)
                    rate, peak, error = measure_concurrent(job, runs)
                    label = f"{workload} bf16 {'on' if bf16 else 'off'} compile {'on' if compiled else 'off'} x{runs}"
                    print(f"{label}: " + (f"{rate:.2f} steps/s per run" if error == "" else f"not measured ({error})"),
                          flush=True)
                    if not error:
                        measurements.append(SpeedMeasurement(workload, runs, bf16, compiled, rate, peak))
    shapes = "tiny test models" if args.small else "mBERT (vocab 119,547), mT5-base (vocab 250,112), random weights"
    return SpeedFile(
        date=info["date"], gpu=info.get("gpu", "CPU: " + info["cpu"]), gpu_memory_gib=info.get("gpu_memory_gb", 0.0),
        hardware={k: str(info[k]) for k in ("host", "cpu", "cpu_count", "memory_gb", "gpu_count") if k in info},
        versions={k: str(info[k]) for k in ("python", "torch", "transformers", "accelerate", "cuda_version") if k in info},
        settings={"models": shapes, "batch": str(args.batch), "max_length": str(args.seq), "steps": str(args.steps),
                  "warmup": str(args.warmup), "step": "MaskedTrainer step at a 50% mask, dynamic padding, "
                  "--group_by_length batches; imp/*: a round of the paper's length plus one magnitude pruning"},
        measurements=measurements)


def speeds_file_name(gpu: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in gpu.lower()).strip("-") + ".json"


def main(argv=None) -> dict:
    args = parse(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.speeds:
        speeds = measure_speeds(args)
        path = args.out / speeds_file_name(speeds.gpu)
        speeds.write(path)
        print(f"wrote {path} ({len(speeds.measurements)} measurements); use it with study.py --dry_run --speeds {path}")
        return {"speeds": str(path)}
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    args.out.mkdir(parents=True, exist_ok=True)
    info = common.machine_info()
    started = time.perf_counter()
    tasks = [bench_task(t.strip(), args, device) for t in args.tasks.split(",") if t.strip()]
    seconds = time.perf_counter() - started
    header = ["task", "precision", "padding", "mask", "ms / step", "samples/s", "real tokens/s", "masked / dense",
              "vs fp32 max dense", "peak GiB (total / over start)"]
    model = "small test model (hidden 128, 2 layers, vocab 2000)" if args.small else "mBERT (hidden 768, 12 layers, vocab 119,547), random weights"
    lines = [f"# GPU benchmark: IMP-style masked training, {model}", "",
             f"{info['date']} | {info.get('gpu', 'no GPU: ' + info['cpu'])} | torch {info['torch']}"
             f" (CUDA {info.get('cuda_version', '-')}), transformers {info['transformers']}, accelerate {info['accelerate']}",
             "", f"batch {args.batch}, max length {args.seq}, {args.steps} timed steps x {args.reps} interleaved reps per row; "
             f"masked = {args.sparsity:.0%} global magnitude mask", "", markdown_table(header, [r for t in tasks for r in t["rows"]]), ""]
    est_rows = []
    for t in tasks:
        s = SCHEDULES[t["task"]]
        for name, e in t["estimates"].items():
            est_rows.append([t["task"], f"{s['rounds']} x {s['steps']}", name, f"{e['train_hours']:.2f}", f"{e['eval_hours']:.2f}",
                             f"{e['hours']:.2f}"])
    lines += [f"Estimated IMP wall time (masked training; evaluation every {args.logging_steps} steps and after each round; "
              "pruning per round included):", "",
              markdown_table(["task", "rounds x steps", "configuration", "train h", "eval h", "total h"], est_rows), "",
              "Pruning (magnitude_prune on the device): " + "; ".join(
                  f"{t['task']} {k} {v:.2f} s" for t in tasks for k, v in t["prune_s"].items()),
              f"\n({seconds:.0f} s)"]
    text = "\n".join(lines) + "\n"
    print(text)
    result = {"machine": info, "args": {k: str(v) for k, v in vars(args).items()}, "seconds": seconds,
              "tasks": [{k: v for k, v in t.items() if k != "rows"} for t in tasks]}
    (args.out / "gpu_bench.json").write_text(json.dumps(result, indent=1, default=str))
    (args.out / "gpu_bench.md").write_text(text)
    return result


if __name__ == "__main__":
    main()
