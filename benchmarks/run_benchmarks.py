#!/usr/bin/env python
"""Speed and scale benchmarks (issue 6): ratios measured side by side in one run, on the same model and batches.

    python benchmarks/run_benchmarks.py                      # CPU-sized (hidden 256, 4 layers): a few minutes
    python benchmarks/run_benchmarks.py --full               # the real mBERT shape for every section
    python benchmarks/run_benchmarks.py --tiny               # seconds; what tests/benchmarks/test_benchmarks_smoke.py runs
    python benchmarks/run_benchmarks.py --sections step,masks --json out.json --markdown out.md

Sections (each prints a table):
  step      one training step: dense vs ours (MaskedTrainer's step: utils.core.masks.BoundMask zeroes the pruned
            gradients before clipping and the pruned weights after the step) vs the original's torch.nn.utils.prune
            hooks (weight_orig * mask every forward); plus ours under bf16 autocast, and the cost of the two
            BoundMask operations alone.
  pipeline  samples/s through the real MaskedTrainer.train: our default input pipeline (dynamic padding, random
            order) and with --group_by_length vs the original's (every example padded to 128, fp32), on
            WikiANN-like lengths; also masked vs dense with the real trainer, and eval batch 8 vs 64.
  masks     for an mBERT-size mask (72 matrices, 84,934,656 weights): file size, bits per weight and load time of
            ours (bool, packed) vs the original float32 format; global magnitude pruning time (ours and the
            original's prune.global_unstructured); mask_similarity.py on 12 masks when that script exists.
  memory    peak resident memory (VmHWM) of dense / ours / prune-hook training, each in its own process.

Timings on a shared machine are noisy: every comparison interleaves its variants, rotating the order in each
repetition, and reports the median of the per-repetition ratios.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from common import (REPO, current_rss_mb, interleaved, markdown_table, median, paired_ratio,  # noqa: E402
                    peak_rss_mb, timed)

import torch  # noqa: E402

SECTIONS = ("step", "pipeline", "masks", "memory")


def sizes(args) -> dict:
    if args.tiny:
        return dict(shape=common.TINY_SHAPE, vocab=500, mask_shape=common.TINY_SHAPE, reps=args.reps or 2,
                    step_batch=(4, 16), step_k=1, pipe_n=32, pipe_batch=8, eval_n=32, memory_steps=1, label="tiny")
    if args.full:
        return dict(shape=common.MBERT_SHAPE, vocab=common.MBERT_VOCAB, mask_shape=common.MBERT_SHAPE,
                    reps=args.reps or 3, step_batch=(32, 48), step_k=2, pipe_n=256, pipe_batch=32, eval_n=256,
                    memory_steps=2, label="mBERT (hidden 768, 12 layers, vocab 119,547)")
    return dict(shape=common.SMALL_SHAPE, vocab=8000, mask_shape=common.MBERT_SHAPE, reps=args.reps or 5,
                step_batch=(32, 48), step_k=3, pipe_n=256, pipe_batch=32, eval_n=256, memory_steps=3,
                label="mBERT-shaped small (hidden 256, 4 layers, intermediate 1024, vocab 8,000)")


# ---------------------------------------------------------------------------------------------------------------
# step: dense vs ours vs prune hooks
# ---------------------------------------------------------------------------------------------------------------


def bench_step(cfg: dict) -> dict:
    batch_size, seq = cfg["step_batch"]
    base = common.build_model(cfg["shape"], cfg["vocab"])
    batches = [common.token_batch([seq] * batch_size, cfg["vocab"], seed=i) for i in range(2)]
    steppers = {
        "dense": common.Stepper(copy.deepcopy(base), "dense"),
        "ours (masked, 50%)": common.Stepper(copy.deepcopy(base), "ours"),
        "prune hooks (original, 50%)": common.Stepper(copy.deepcopy(base), "prune_hooks"),
        "ours, bf16 autocast": common.Stepper(copy.deepcopy(base), "ours", autocast=torch.bfloat16),
        "dense, bf16 autocast": common.Stepper(copy.deepcopy(base), "dense", autocast=torch.bfloat16),
    }
    k = cfg["step_k"]

    def run(stepper):
        def go():
            for i in range(k):
                stepper.step(batches[i % len(batches)])
        return lambda: timed(go) / k

    times = interleaved({name: run(s) for name, s in steppers.items()}, cfg["reps"])
    dense, ours = times["dense"], times["ours (masked, 50%)"]
    rows = []
    for name, values in times.items():
        reference = times["dense, bf16 autocast"] if name == "ours, bf16 autocast" else dense
        ref_name = "dense bf16" if name == "ours, bf16 autocast" else "dense"
        rows.append([name, f"{median(values) * 1000:.1f}", f"{paired_ratio(values, reference):.3f} (vs {ref_name})"])

    # the two mask operations alone, on the same model
    mask_ops = mask_op_seconds(steppers["ours (masked, 50%)"].bound, cfg["reps"])
    return {
        "batch": [batch_size, seq],
        "steps_per_timing": k,
        "times_s": times,
        "masked_over_dense": paired_ratio(ours, dense),
        "hooks_over_dense": paired_ratio(times["prune hooks (original, 50%)"], dense),
        "bf16_over_fp32_dense": paired_ratio(times["dense, bf16 autocast"], dense),
        "mask_ops_s": mask_ops,
        "mask_ops_fraction_of_step": mask_ops / median(dense),
        "table": markdown_table(["variant", "ms / step (median)", "ratio"], rows),
    }


def mask_op_seconds(bound, reps: int) -> float:
    """Median seconds of MaskedTrainer's two mask operations per step, on the real utils.core.masks.BoundMask: zero the
    pruned gradients (before clipping) and the pruned weights (after the optimizer step)."""
    for p in bound.params:  # the step left grads at None (zero_grad(set_to_none=True)): give it some to mask
        p.grad = torch.randn_like(p)

    def both():
        bound.apply_to_grads()
        bound.apply_to_weights()

    seconds = median(interleaved({"mask ops": lambda: timed(both)}, max(5, reps))["mask ops"])
    for p in bound.params:
        p.grad = None
    return seconds


# ---------------------------------------------------------------------------------------------------------------
# pipeline: the real MaskedTrainer on WikiANN-like lengths
# ---------------------------------------------------------------------------------------------------------------


def _setup(model, examples, lengths, tokenizer):
    from transformers import DataCollatorForTokenClassification

    from utils.tasks.base import TaskSetup

    return TaskSetup(
        task="ner", model=model, tokenizer=tokenizer, train_dataset=examples, eval_datasets={},
        collate_fn=DataCollatorForTokenClassification(tokenizer), evaluate=lambda *a: {}, metric="f1",
        greater_is_better=True, train_languages=["en"], train_lengths=lengths,
    )


ORIGINAL = "original-style: fp32, padded to 128 (--pad_to_max_length), random order"
DEFAULT = "ours default: dynamic padding, random order"
DEFAULT_DENSE = "ours default, dense (no mask)"
GROUPED = "ours + --group_by_length (dynamic padding, length-grouped batches)"


def bench_pipeline(cfg: dict, workdir: Path) -> dict:
    """Samples/s through MaskedTrainer.train per input pipeline, and evaluation forward passes at batch 8 vs 64."""
    n, batch = cfg["pipe_n"], cfg["pipe_batch"]
    lengths = common.wikiann_lengths(n, seed=1)
    tokenizer = common.pad_tokenizer()
    trainers = pipeline_trainers(cfg, workdir, lengths, tokenizer)
    steps = trainers[DEFAULT].steps_per_epoch
    times = time_training(trainers, steps, cfg["reps"])
    samples = steps * batch
    reference = times[ORIGINAL]
    rows = [[name, f"{samples / median(values):.1f}", f"{sum(lengths[:samples]) / median(values):.0f}",
             f"{paired_ratio(reference, values):.2f}x"] for name, values in times.items()]
    eval_lengths, eval_times = time_eval_batches(trainers[DEFAULT].model, cfg, tokenizer)
    for name, values in eval_times.items():
        rows.append([name + " (forward only)", f"{len(eval_lengths) / median(values):.1f}",
                     f"{sum(eval_lengths) / median(values):.0f}",
                     f"{paired_ratio(eval_times['eval batch 8'], values):.2f}x (vs eval batch 8)"])
    padded_tokens = sum(128 for _ in range(samples))
    return {
        "examples": n, "batch": batch, "steps_per_epoch": steps, "mean_length": statistics.mean(lengths),
        "length_percentiles": {p: sorted(lengths)[int(p / 100 * (n - 1))] for p in (5, 50, 95)},
        "times_s": times, "eval_times_s": eval_times,
        "default_over_original_samples_per_s": paired_ratio(reference, times[DEFAULT]),
        "group_by_length_over_original_samples_per_s": paired_ratio(reference, times[GROUPED]),
        "masked_over_dense_trainer": paired_ratio(times[DEFAULT], times[DEFAULT_DENSE]),
        "padding_fraction_original": 1 - sum(lengths[:samples]) / padded_tokens,
        "table": markdown_table(["pipeline (masked 50% unless noted)", "samples/s", "real tokens/s",
                                 "speed-up vs original-style"], rows),
    }


def pipeline_trainers(cfg: dict, workdir: Path, lengths: list[int], tokenizer) -> dict:
    """One MaskedTrainer per pipeline variant, each on its own copy of the same model (and the same 50% mask)."""
    from utils.core.pruning import prunable_weights
    from utils.core.training import MaskedTrainer

    unpadded = common.ner_examples(lengths, cfg["vocab"], seed=1)
    padded = common.ner_examples(lengths, cfg["vocab"], seed=1, pad_to=128)
    base = common.build_model(cfg["shape"], cfg["vocab"])
    mask = common.half_mask(prunable_weights(base))
    variants = {
        # name: (examples, group_by_length, masked)
        ORIGINAL: (padded, False, True),
        DEFAULT: (unpadded, False, True),
        DEFAULT_DENSE: (unpadded, False, False),
        GROUPED: (unpadded, True, True),
    }
    trainers = {}
    for name, (examples, group, masked) in variants.items():
        args = common.training_args(str(workdir / "pipeline"), per_device_train_batch_size=cfg["pipe_batch"],
                                    group_by_length=group, max_grad_norm=1.0)
        with contextlib.redirect_stdout(io.StringIO()):
            trainer = MaskedTrainer(_setup(copy.deepcopy(base), examples, lengths, tokenizer), args)
        trainer.set_mask(mask if masked else None)
        trainers[name] = trainer
    return trainers


def time_training(trainers: dict, steps: int, reps: int) -> dict[str, list[float]]:
    """Seconds of `steps` training steps per trainer, interleaved over `reps` repetitions."""

    def run(trainer):
        seeds = iter(range(10**9))  # one per call: every variant sees the same batch orders, rep by rep

        def go():
            with contextlib.redirect_stdout(io.StringIO()):
                trainer.train(steps, seed=next(seeds))
        return lambda: timed(go)

    return interleaved({name: run(t) for name, t in trainers.items()}, reps)


def time_eval_batches(model, cfg: dict, tokenizer) -> tuple[list[int], dict[str, list[float]]]:
    """The same evaluation forward passes at eval batch 8 vs 64 (dynamic padding, dataset order)."""
    from transformers import DataCollatorForTokenClassification

    eval_lengths = common.wikiann_lengths(cfg["eval_n"], seed=2)
    eval_examples = common.ner_examples(eval_lengths, cfg["vocab"], seed=2)
    collator = DataCollatorForTokenClassification(tokenizer)

    def evaluate(eval_batch):
        loaders = [collator(eval_examples[i:i + eval_batch]) for i in range(0, len(eval_examples), eval_batch)]

        @torch.no_grad()
        def go():
            model.eval()
            for b in loaders:
                model(**b).logits.argmax(-1)
            model.train()
        return lambda: timed(go)

    return eval_lengths, interleaved({"eval batch 8": evaluate(8), "eval batch 64": evaluate(64)}, cfg["reps"])


# ---------------------------------------------------------------------------------------------------------------
# masks: file formats, load time, pruning time, mask_similarity.py
# ---------------------------------------------------------------------------------------------------------------


def bench_masks(cfg: dict, workdir: Path) -> dict:
    from torch.nn.utils import prune

    from utils.core.masks import MASK_SUFFIX, Mask
    from utils.core.pruning import magnitude_prune, prunable_weights

    model = common.build_model(cfg["mask_shape"], 1000)
    weights = prunable_weights(model)
    total = sum(w.numel() for w in weights.values())
    ones = Mask.ones_like(weights)
    half = magnitude_prune(weights, ones, 0.5)
    reps = max(2, min(3, cfg["reps"]))

    prune_times = interleaved({
        "magnitude_prune 0% -> 10% (round 1)": lambda: timed(lambda: magnitude_prune(weights, ones, 0.1)),
        "magnitude_prune 50% -> 60% (round 6)": lambda: timed(lambda: magnitude_prune(weights, half, 0.6)),
    }, reps, warmup=False)

    # the original: prune.global_unstructured(L1) over the same matrices (re-parametrises the model in place)
    modules = {name: module for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)}
    targets = [(modules[n.removesuffix(".weight")], "weight") for n in weights]
    hooks_time = timed(lambda: prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=0.1))
    for module, name in targets:
        prune.remove(module, name)
    # the original's file: state-dict key + '_mask' -> float32 0/1 tensor
    original_float = {n + MASK_SUFFIX: t.float() for n, t in half.items()}

    files = {"ours: bool (default)": workdir / "bool.pt", "ours: packed (--mask_format packed)": workdir / "packed.pt",
             "original: float32 0/1": workdir / "original.pt"}
    half.save(files["ours: bool (default)"], {"benchmark": True})
    half.save(files["ours: packed (--mask_format packed)"], {"benchmark": True}, packed=True)
    torch.save(original_float, files["original: float32 0/1"])
    del original_float
    load_times = interleaved({name: (lambda p=path: timed(lambda: Mask.load(p))) for name, path in files.items()},
                             reps, warmup=True)
    for path in files.values():
        assert Mask.load(path).checksum() == half.checksum(), path
    rows = []
    for name, path in files.items():
        size = path.stat().st_size
        rows.append([name, f"{size / 1e6:.1f}", f"{size * 8 / total:.3f}", f"{median(load_times[name]):.3f}"])
    prune_rows = [[name, f"{median(v):.2f}"] for name, v in prune_times.items()]
    prune_rows.append(["original: prune.global_unstructured L1, 0% -> 10% (one run)", f"{hooks_time:.2f}"])
    result = {
        "num_matrices": len(weights), "num_weights": total,
        "file_bytes": {k: p.stat().st_size for k, p in files.items()},
        "bits_per_weight": {k: p.stat().st_size * 8 / total for k, p in files.items()},
        "load_s": {k: median(v) for k, v in load_times.items()},
        "prune_s": {k: median(v) for k, v in prune_times.items()},
        "prune_hooks_s": hooks_time,
        "table_files": markdown_table(["mask file (50% sparse)", "MB", "bits / weight", "Mask.load s"], rows),
        "table_prune": markdown_table(["pruning (seconds)", "s (median)"], prune_rows),
    }
    result["similarity"] = bench_similarity(half, weights, workdir, cfg)
    return result


def bench_similarity(half, weights, workdir: Path, cfg: dict) -> dict:
    """mask_similarity.py over 12 masks, when the script exists (it is written by another part of the project)."""
    script = REPO / "mask_similarity.py"
    if not cfg.get("similarity", True):
        return {"skipped": "--no-similarity"}
    if not script.is_file():
        return {"skipped": "mask_similarity.py does not exist yet in this checkout"}
    from utils.core.pruning import magnitude_prune

    masks_dir = workdir / "similarity"
    masks_dir.mkdir(exist_ok=True)
    generator = torch.Generator().manual_seed(0)
    paths = []
    for i in range(12):  # 12 IMP-like 50% masks from perturbed weights (overlapping, as seeds of one language are)
        noisy = {n: w.detach() + 0.02 * torch.randn(w.shape, generator=generator) for n, w in weights.items()}
        mask = magnitude_prune(noisy, half.__class__.ones_like(weights), 0.5)
        path = masks_dir / f"mask_{i:02d}.pt"
        mask.save(path, {"benchmark": True, "language": f"l{i}"})
        paths.append(str(path))
        del noisy
    help_text = subprocess.run([sys.executable, str(script), "--help"], cwd=REPO, capture_output=True, text=True).stdout
    command = similarity_command(help_text, paths, workdir / "similarity_out")
    if command is None:
        return {"skipped": "could not tell how to call mask_similarity.py from its --help", "help": help_text[-2000:]}
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, str(script), *command], cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        return {"failed": proc.returncode, "command": command, "stderr": proc.stderr[-2000:]}
    return {"masks": 12, "seconds": seconds, "command": ["mask_similarity.py", *command]}


def similarity_command(help_text: str, paths: list[str], out: Path):
    """Arguments for mask_similarity.py, read off its --help (mask paths, an output location if it takes one)."""
    argv = []
    if "--masks" in help_text:
        argv += ["--masks", *paths]
    elif "--mask_files" in help_text:
        argv += ["--mask_files", *paths]
    elif "usage:" in help_text:
        argv += paths
    else:
        return None
    for flag in ("--output_dir", "--out_dir", "--output"):
        if flag in help_text:
            argv += [flag, str(out)]
            break
    return argv


# ---------------------------------------------------------------------------------------------------------------
# memory: each variant in its own process
# ---------------------------------------------------------------------------------------------------------------


def memory_child(variant: str, shape: str, steps: int) -> None:
    cfg = {"tiny": (common.TINY_SHAPE, 500), "small": (common.SMALL_SHAPE, 8000),
           "full": (common.MBERT_SHAPE, common.MBERT_VOCAB)}[shape]
    model = common.build_model(cfg[0], cfg[1])
    batch = common.token_batch([128] * (4 if shape == "tiny" else 32), cfg[1])
    stepper = common.Stepper(model, variant)
    before = current_rss_mb()
    for _ in range(steps):
        stepper.step(batch)
    peak = peak_rss_mb()
    print(json.dumps({"variant": variant, "rss_after_setup_mb": before, "peak_rss_mb": peak,
                      "training_peak_mb": peak - before}))


def bench_memory(cfg: dict, args) -> dict:
    shape = "tiny" if args.tiny else "full" if args.full else "small"
    results = {}
    for variant in ("dense", "ours", "prune_hooks"):
        proc = subprocess.run(
            [sys.executable, __file__, "--memory-child", variant, "--memory-shape", shape,
             "--memory-steps", str(cfg["memory_steps"])],
            capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())},
        )
        if proc.returncode != 0:
            raise RuntimeError(f"memory child {variant} failed: {proc.stderr[-2000:]}")
        results[variant] = json.loads(proc.stdout.strip().splitlines()[-1])
    dense_peak = results["dense"]["peak_rss_mb"]
    dense_train = results["dense"]["training_peak_mb"]
    rows = [[name, f"{r['rss_after_setup_mb']:.0f}", f"{r['peak_rss_mb']:.0f}", f"{r['peak_rss_mb'] / dense_peak:.3f}",
             f"{r['training_peak_mb']:.0f}", f"{r['training_peak_mb'] / max(dense_train, 1e-9):.3f}"]
            for name, r in results.items()]
    batch = "4 x 128" if shape == "tiny" else "32 x 128"
    return {"variants": results,
            "table": markdown_table([f"training (batch {batch})", "RSS after setup MB", "peak RSS MB", "peak vs dense",
                                     "peak - setup MB", "vs dense"], rows)}


# ---------------------------------------------------------------------------------------------------------------


def parse(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--full", action="store_true", help="the real mBERT shape for the step/pipeline sections")
    size.add_argument("--tiny", action="store_true", help="tiny sizes: a smoke run in seconds")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma list of {', '.join(SECTIONS)}")
    parser.add_argument("--reps", type=int, default=0, help="repetitions per comparison (default: by size)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    parser.add_argument("--json", type=Path, help="write all results here")
    parser.add_argument("--markdown", type=Path, help="write the tables here")
    parser.add_argument("--workdir", type=Path, help="scratch folder for mask files (default: a temporary one)")
    parser.add_argument("--no-similarity", action="store_true", help="skip timing mask_similarity.py")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    parser.add_argument("--memory-shape", default="small", help=argparse.SUPPRESS)
    parser.add_argument("--memory-steps", type=int, default=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.section_list = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = [s for s in args.section_list if s not in SECTIONS]
    if unknown and not args.memory_child:
        parser.error(f"unknown section(s): {', '.join(unknown)}")
    return args


def step_text(r: dict, cfg: dict) -> list[str]:
    return [f"## Training step (batch {r['batch'][0]} x {r['batch'][1]}, {cfg['reps']} interleaved reps)",
            "", r["table"], "",
            f"masked / dense = {r['masked_over_dense']:.3f}; BoundMask.apply_to_grads + apply_to_weights "
            f"alone: {r['mask_ops_s'] * 1000:.2f} ms ({r['mask_ops_fraction_of_step']:.2%} of a dense step)"]


def pipeline_text(r: dict, cfg: dict) -> list[str]:
    return [f"## Input pipeline through MaskedTrainer.train ({r['examples']} WikiANN-like examples, "
            f"length p5/p50/p95 = {'/'.join(str(v) for v in r['length_percentiles'].values())} word pieces, "
            f"batch {r['batch']}, one epoch = {r['steps_per_epoch']} steps, {cfg['reps']} interleaved reps)",
            "", r["table"], "",
            f"default / original-style samples/s = {r['default_over_original_samples_per_s']:.2f}x "
            f"(with --group_by_length {r['group_by_length_over_original_samples_per_s']:.2f}x); "
            f"masked / dense (real trainer, time) = {r['masked_over_dense_trainer']:.3f}; "
            f"padding in original-style batches: {r['padding_fraction_original']:.0%}"]


def masks_text(r: dict, cfg: dict) -> list[str]:
    sim = r["similarity"]
    sim_line = (f"mask_similarity.py on {sim['masks']} masks: {sim['seconds']:.1f} s" if "seconds" in sim
                else f"mask_similarity.py: skipped ({sim.get('skipped') or sim})")
    return [f"## Mask files and pruning ({r['num_matrices']} matrices, {r['num_weights']:,} weights)", "",
            r["table_files"], "", r["table_prune"], "", sim_line]


def memory_text(r: dict, cfg: dict) -> list[str]:
    return ["## Peak memory (separate processes, peak RSS = VmHWM)", "", r["table"]]


# section -> (what measures it, what prints it)
RUNNERS = {
    "step": (lambda cfg, workdir, args: bench_step(cfg), step_text),
    "pipeline": (lambda cfg, workdir, args: bench_pipeline(cfg, workdir), pipeline_text),
    "masks": (lambda cfg, workdir, args: bench_masks(cfg, workdir), masks_text),
    "memory": (lambda cfg, workdir, args: bench_memory(cfg, args), memory_text),
}


def header_lines(cfg: dict, info: dict, command: str) -> list[str]:
    return [f"# Benchmarks ({cfg['label']})", "",
            f"{info['date']} | {info['cpu']} | {info['cpu_count']} CPUs, {info['torch_threads']} torch threads | "
            f"torch {info['torch']}, transformers {info['transformers']}, accelerate {info['accelerate']}, "
            f"Python {info['python']}", "", f"`{command}`", ""]


def run_sections(cfg: dict, args, results: dict, out: list[str]) -> None:
    """Each section in turn: its results into results['sections'], its text printed and appended to `out`."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-", dir=args.workdir)) if args.workdir else Path(tempfile.mkdtemp(prefix="bench-"))
    try:
        for section in args.section_list:
            t0 = time.perf_counter()
            measure, describe = RUNNERS[section]
            r = measure(cfg, tmp, args)
            text = describe(r, cfg)
            r["seconds"] = round(time.perf_counter() - t0, 1)
            results["sections"][section] = r
            text.append(f"\n({section}: {r['seconds']} s)\n")
            out += text
            print("\n".join(text), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv=None) -> dict:
    args = parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_child:
        memory_child(args.memory_child, args.memory_shape, args.memory_steps)
        return {}
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    cfg = sizes(args)
    cfg["similarity"] = not args.no_similarity
    if not args.threads and hasattr(os, "getloadavg") and os.getloadavg()[0] > (os.cpu_count() or 1):
        print(f"warning: load average {os.getloadavg()[0]:.1f} exceeds {os.cpu_count()} CPUs; OpenMP threads spin "
              "when oversubscribed: consider --threads 1 for stable ratios", file=sys.stderr)
    info = common.machine_info()
    command = ("python benchmarks/run_benchmarks.py " + " ".join(sys.argv[1:] if argv is None else argv)).strip()
    results: dict = {"machine": info, "command": command, "model": cfg["label"], "sections": {}}
    out = header_lines(cfg, info, command)
    print("\n".join(out), flush=True)
    started = time.perf_counter()
    run_sections(cfg, args, results, out)
    results["seconds"] = round(time.perf_counter() - started, 1)
    for path, text in ((args.json, json.dumps(results, indent=1, default=str)), (args.markdown, "\n".join(out) + "\n")):
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    return results


if __name__ == "__main__":
    main()
