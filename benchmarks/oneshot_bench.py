#!/usr/bin/env python
"""One-shot pruning on a real model (issue 20 item 7): block-by-block calibration (what prune_oneshot.py does)
against whole-model calibration (utils.oneshot.whole: one pass of the dense model with hooks on every matrix,
every layer's statistics held at once), for magnitude, Wanda and SparseGPT, on the same calibration samples.

    python benchmarks/oneshot_bench.py --threads 1 --sizes 32x128,64x256

Each (method, mode, size) runs in a fresh process, which loads the model, draws the samples and cuts the held-out
text exactly as prune_oneshot.py does (utils.oneshot.run.read_inputs / load_for_pruning), prunes, and reports
wall seconds of the pruning, peak memory (CPU: the process's VmHWM; CUDA: torch.cuda.max_memory_allocated) and
perplexity on the first --eval_windows held-out windows. The parent compares the two modes' masks (Jaccard) and
writes a JSON (machine, versions, load average) and a table.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from common import REPO, current_rss_mb, markdown_table, peak_rss_mb  # noqa: E402

import torch  # noqa: E402

from utils.analysis.similarity import compare_pair, pack_mask  # noqa: E402
from utils.core.masks import Mask  # noqa: E402
from utils.infra.args import ModelArguments  # noqa: E402
from utils.infra.outputs import RunPaths  # noqa: E402
from utils.oneshot.calibration import samples_sha256  # noqa: E402
from utils.oneshot.methods import METHODS  # noqa: E402
from utils.oneshot.run import (OneshotArguments, PruneRun, load_for_pruning, measure, prune_model,  # noqa: E402
                               read_inputs, settings_from)
from utils.oneshot.whole import prune_model_whole  # noqa: E402

MODES = ("sequential", "whole")


@dataclass(frozen=True)
class Case:
    """One measurement: a method in one calibration mode on samples x seq_len tokens."""

    model: str
    calibration_file: str
    eval_file: str
    language: str
    method: str
    mode: str
    samples: int
    seq_len: int
    eval_windows: int
    dense_perplexity: bool = False  # also measure the dense model's perplexity first


@dataclass
class Measurement:
    case: Case
    seconds: float  # pruning only: statistics gathered, masks chosen, weights zeroed
    setup_mib: float  # memory before pruning (model loaded, samples drawn)
    peak_mib: float  # peak memory up to the end of pruning (before the perplexity evaluation)
    memory_kind: str
    tokens_sha256: str
    perplexity: dict[str, float]
    dense_perplexity: dict[str, float] = field(default_factory=dict)

    @property
    def pruning_mib(self) -> float:
        return round(self.peak_mib - self.setup_mib, 1)


def prune_in_mode(model, run: PruneRun, mode: str) -> dict[str, torch.Tensor]:
    """The masks by parameter name: block by block (prune_oneshot.py's prune_model) or whole-model."""
    if mode == "sequential":
        return prune_model(model, run)[0]
    if mode == "whole":
        return prune_model_whole(model, run)
    raise ValueError(f"mode must be one of {MODES}, got {mode!r}")


class Memory:
    """Memory in MiB: CUDA allocated bytes, or the process's resident size (VmRSS) and peak (VmHWM); `start`
    resets the peak (on Linux by writing 5 to /proc/self/clear_refs), so loading the model does not count."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.kind = "cuda_max_allocated" if self.cuda else "process_vmhwm_reset_before_pruning"

    def start(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            return round(torch.cuda.memory_allocated() / 2**20, 1)
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            self.kind = "process_vmhwm_since_start"  # not resettable here: the peak includes loading
        return round(current_rss_mb(), 1)

    def peak(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
            return round(torch.cuda.max_memory_allocated() / 2**20, 1)
        return round(peak_rss_mb(), 1)


@torch.no_grad()
def resident(model) -> None:
    """Every CPU parameter copied into the process's own memory: weights loaded from safetensors are mapped from
    the file, and pruning them in place would otherwise count their pages into the pruning's peak."""
    for parameter in model.parameters():
        if parameter.device.type == "cpu":
            parameter.data = parameter.data.clone()


def measure_case(case: Case, workdir: Path) -> tuple[Measurement, dict[str, torch.Tensor]]:
    """Load and draw as prune_oneshot.py does, prune in the case's mode, then measure perplexity."""
    model_args = ModelArguments(model_name_or_path=case.model)
    args = OneshotArguments(output_dir=str(workdir), method=case.method, calibration_file=case.calibration_file,
                            data_language=case.language, calibration_samples=case.samples,
                            calibration_seq_len=case.seq_len, eval_files=f"{case.language}={case.eval_file}")
    settings = settings_from(args)
    inputs = read_inputs(model_args, args, settings)
    eval_sets = {lang: windows[: case.eval_windows] for lang, windows in inputs.eval_sets.items()}
    model, run = load_for_pruning(model_args, args, inputs, settings, RunPaths(workdir), show_progress=False)
    dense = measure(model, eval_sets, run) if case.dense_perplexity else {}
    resident(model)
    memory = Memory(run.device)
    setup = memory.start()
    started = time.perf_counter()
    masks = prune_in_mode(model, run, case.mode)
    common.sync(run.device)
    seconds = round(time.perf_counter() - started, 3)
    peak = memory.peak()
    result = Measurement(case, seconds, setup, peak, memory.kind, samples_sha256(inputs.samples),
                         measure(model, eval_sets, run), dense)
    return result, masks


def run_child(case: Case, workdir: Path) -> Measurement:
    """measure_case in a fresh process (so that its peak memory is its own); its masks go to workdir."""
    spec = workdir / "case.json"
    spec.write_text(json.dumps(asdict(case)))
    proc = subprocess.run([sys.executable, __file__, "--child", str(workdir)], cwd=REPO, capture_output=True,
                          text=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    if proc.returncode:
        raise RuntimeError(f"{case.method} {case.mode} failed:\n{proc.stderr[-3000:]}")
    data = json.loads((workdir / "measurement.json").read_text())
    data["case"] = Case(**data["case"])
    return Measurement(**data)


def child_main(workdir: Path) -> None:
    case = Case(**json.loads((workdir / "case.json").read_text()))
    result, masks = measure_case(case, workdir)
    torch.save(masks, workdir / "masks.pt")
    (workdir / "measurement.json").write_text(json.dumps(asdict(result)))


# ---------------------------------------------------------------------------------------------------------------
# Comparison
# ---------------------------------------------------------------------------------------------------------------


def agreement(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> dict:
    """Jaccard of the kept weights of two masks overall, per layer, and how many matrices are identical."""
    pair = compare_pair(pack_mask(Mask(a), "sequential"), pack_mask(Mask(b), "whole"))
    layers = {layer: round(stats.jaccard, 4) for layer, stats in pair.per_layer.items()}
    return {"jaccard": round(pair.overall.jaccard, 4), "per_layer": layers,
            "identical_matrices": sum(torch.equal(a[n], b[n]) for n in a), "matrices": len(a)}


def compare(results: dict[str, Measurement], masks_dirs: dict[str, Path]) -> dict:
    """The whole-model / sequential ratios of one method and size, and its masks' agreement."""
    seq, whole = results["sequential"], results["whole"]
    if seq.tokens_sha256 != whole.tokens_sha256:
        raise RuntimeError("the two modes drew different calibration samples")
    masks = {mode: torch.load(path / "masks.pt") for mode, path in masks_dirs.items()}
    return {"seconds_ratio": round(whole.seconds / seq.seconds, 3),
            "peak_ratio": round(whole.peak_mib / seq.peak_mib, 3),
            "pruning_memory_ratio": round(whole.pruning_mib / seq.pruning_mib, 3) if seq.pruning_mib > 0 else None,
            "masks": agreement(masks["sequential"], masks["whole"])}


def parse_sizes(text: str) -> list[tuple[int, int]]:
    sizes = []
    for part in text.split(","):
        samples, _x, seq_len = part.partition("x")
        sizes.append((int(samples), int(seq_len)))
    return sizes


def run_all(args, path: Path) -> dict:
    """Every method x size x mode, the modes of one method back to back (alternating which goes first)."""
    out = {"machine": common.machine_info(), "threads": args.threads, "load_average_start": os.getloadavg(),
           "model": args.model, "calibration_file": args.calibration_file, "eval_file": args.eval_file,
           "language": args.language, "eval_windows": args.eval_windows, "runs": []}
    first = True
    for samples, seq_len in parse_sizes(args.sizes):
        for index, method in enumerate(args.methods.split(",")):
            order = MODES if index % 2 == 0 else MODES[::-1]
            results, dirs = {}, {}
            for mode in order:
                case = Case(args.model, args.calibration_file, args.eval_file, args.language, method, mode, samples,
                            seq_len, args.eval_windows, dense_perplexity=first)
                first = False
                dirs[mode] = Path(tempfile.mkdtemp(prefix=f"oneshot-{method}-{mode}-", dir=args.workdir))
                results[mode] = run_child(case, dirs[mode])
                print(f"{method} {mode} {samples}x{seq_len}: {results[mode].seconds:.1f} s, "
                      f"peak {results[mode].peak_mib:.0f} MiB, ppl {results[mode].perplexity}", flush=True)
            out["runs"].append({"method": method, "samples": samples, "seq_len": seq_len,
                                "results": {m: asdict(r) for m, r in results.items()},
                                "whole_over_sequential": compare(results, dirs)})
            write_json(path, out)  # after every method: a long run that stops keeps what it measured
    out["load_average_end"] = os.getloadavg()
    out["dense_perplexity"] = next(r["results"][m]["dense_perplexity"] for r in out["runs"] for m in MODES
                                   if r["results"][m]["dense_perplexity"])
    return out


def write_json(path: Path, out: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1))


def table(out: dict) -> str:
    rows = []
    for run in out["runs"]:
        ratio = run["whole_over_sequential"]
        for mode in MODES:
            r = run["results"][mode]
            pruning = round(r["peak_mib"] - r["setup_mib"], 1)
            rows.append([run["method"], f"{run['samples']}x{run['seq_len']}", mode, f"{r['seconds']:.1f}",
                         f"{r['setup_mib']:.0f}", f"{r['peak_mib']:.0f}", f"{pruning:.0f}",
                         f"{r['perplexity'][out['language']]:.2f}"])
        rows.append([run["method"], "", "**whole / sequential**", f"{ratio['seconds_ratio']:.2f}x", "",
                     f"{ratio['peak_ratio']:.2f}x",
                     f"{ratio['pruning_memory_ratio']:.2f}x" if ratio["pruning_memory_ratio"] else "-",
                     f"Jaccard {ratio['masks']['jaccard']:.4f} ({ratio['masks']['identical_matrices']}/"
                     f"{ratio['masks']['matrices']} matrices identical)"])
    header = ["method", "samples x tokens", "calibration", "prune s", "setup MiB", "peak MiB", "peak - setup MiB",
              f"{out['language']} ppl after"]
    return markdown_table(header, rows)


def parse(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="real_models/gemma-3-270m")
    parser.add_argument("--calibration_file", default="real_data/parallel/calibration.{lang}.txt")
    parser.add_argument("--eval_file", default="real_data/parallel/heldout.{lang}.txt")
    parser.add_argument("--language", default="en")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--sizes", default="32x128", help="samples x tokens, comma-separated (32x128,64x256)")
    parser.add_argument("--eval_windows", type=int, default=16, help="held-out windows of seq_len tokens")
    parser.add_argument("--threads", type=int, default=None, help="torch threads in every process")
    parser.add_argument("--json", default=None, help="default: benchmarks/results/oneshot-<date>.json")
    parser.add_argument("--workdir", default=None, help="where the processes put their masks (default: a temp dir)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Optional[list[str]] = None) -> dict:
    args = parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # for the child processes
    if args.child:
        child_main(Path(args.child))
        return {}
    args.workdir = args.workdir or tempfile.mkdtemp(prefix="oneshot-bench-")
    path = Path(args.json or REPO / "benchmarks" / "results" / f"oneshot-{datetime.date.today().isoformat()}.json")
    out = run_all(args, path)
    text = table(out)
    print(text)
    write_json(path, {**out, "table": text})
    print(f"written to {path}")
    return out


if __name__ == "__main__":
    main()
