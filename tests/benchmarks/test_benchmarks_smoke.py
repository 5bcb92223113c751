"""The benchmark scripts run end to end on tiny sizes (a smoke test: timings are not compared, but what does not
depend on timing, the workload and the arithmetic on the timings, is checked exactly)."""
from __future__ import annotations

import io
import json
import sys
from contextlib import redirect_stdout
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))


def test_run_benchmarks_tiny(tmp_path):
    import run_benchmarks

    threads = torch.get_num_threads()
    try:
        with redirect_stdout(io.StringIO()) as printed:
            results = run_benchmarks.main(["--tiny", "--threads", "1", "--reps", "1", "--sections", "step,pipeline,masks",
                                           "--no-similarity", "--json", str(tmp_path / "r.json"),
                                           "--markdown", str(tmp_path / "r.md")])
    finally:
        torch.set_num_threads(threads)
    sections = results["sections"]
    assert set(sections) == {"step", "pipeline", "masks"}
    assert sections["step"]["masked_over_dense"] > 0
    assert sections["step"]["mask_ops_s"] > 0  # the real BoundMask.apply_to_grads + apply_to_weights
    assert sections["pipeline"]["default_over_original_samples_per_s"] > 0
    import common

    pipeline, lengths = sections["pipeline"], common.wikiann_lengths(32, seed=1)  # --tiny: 32 examples, batch 8
    assert pipeline["steps_per_epoch"] == 4 and pipeline["mean_length"] == sum(lengths) / 32
    assert pipeline["padding_fraction_original"] == 1 - sum(lengths) / (128 * 32)
    assert set(pipeline["times_s"]) == {run_benchmarks.ORIGINAL, run_benchmarks.DEFAULT, run_benchmarks.DEFAULT_DENSE,
                                        run_benchmarks.GROUPED}
    bits = sections["masks"]["bits_per_weight"]
    assert bits["original: float32 0/1"] > bits["ours: bool (default)"] > bits["ours: packed (--mask_format packed)"]
    assert json.loads((tmp_path / "r.json").read_text())["machine"]["torch"] == torch.__version__
    assert "| dense |" in (tmp_path / "r.md").read_text() and "## Mask files" in printed.getvalue()


def test_memory_child_reports_json(capsys):
    import run_benchmarks

    run_benchmarks.memory_child("ours", "tiny", 1)
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["variant"] == "ours" and report["peak_rss_mb"] >= report["rss_after_setup_mb"] > 0


def test_gpu_bench_runs_small_on_cpu(tmp_path):
    import gpu_bench

    with redirect_stdout(io.StringIO()):
        result = gpu_bench.main(["--out", str(tmp_path), "--small", "--tasks", "ner,xnli", "--steps", "1", "--reps", "1"])
    assert {t["task"] for t in result["tasks"]} == {"ner", "xnli"}
    assert len(result["tasks"][0]["results"]) == 8  # fp32/bf16 x dynamic/max x dense/masked
    assert all(e["hours"] > 0 for t in result["tasks"] for e in t["estimates"].values())
    ner = result["tasks"][0]
    assert ner["timed_batches"] == 1 and ner["evals_per_round"] == 4  # ceil(1875 steps / 500)
    assert set(ner["estimates"]) == {f"{p}, {pad} padding" for p in ("fp32", "bf16") for pad in ("dynamic", "max")}
    for entry in ner["results"]:
        assert entry["step_s"] == entry["times_s"][0]  # one rep of one timed batch
        assert entry["samples_per_s"] == 8 / entry["times_s"][0]  # --small: batch 8
        if entry["mask"] == "dense":
            assert entry["masked_over_dense"] == 1.0
    fp32_max_dense = next(r for r in ner["results"] if (r["precision"], r["padding"], r["mask"]) == ("fp32", "max", "dense"))
    assert fp32_max_dense["speedup_vs_fp32_max_dense"] == 1.0
    for estimate in ner["estimates"].values():  # 10 rounds, each pruned once
        prune_hours = 10 * ner["prune_s"]["50->60%"] / 3600
        assert estimate["hours"] == pytest.approx(estimate["train_hours"] + estimate["eval_hours"] + prune_hours)
    assert (tmp_path / "gpu_bench.json").is_file() and "samples/s" in (tmp_path / "gpu_bench.md").read_text()
