"""What a study costs (utils/study/cost.py) and several runs per GPU (utils/study/execute.py): parameter counts
without weights, the FLOP bound and memory estimate against hand-written formulas, the packing decision, the speeds
file written by benchmarks/gpu_bench.py --speeds (its CPU path, tiny models) and read by the dry run, and the
executors placing several runs on one (fake) GPU."""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import pytest

from utils.infra.errors import UserError
from utils.study.cost import (FRAMEWORK_BYTES, KNOWN_MODELS, ModelSize, SpeedFile, SpeedMeasurement, flop_hours,
                              mean_tokens, model_size, peak_memory_bytes, plan_packing)

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

# A BERT of hidden 8, 2 layers, intermediate 16, vocab 50, 20 positions, 2 token types; by hand:
#   per layer  q,k,v,o 4 x (8*8 + 8) = 288, 2 LayerNorms 2 x 16 = 32, intermediate 8*16 + 16 = 144,
#              output 16*8 + 8 = 136                                   -> 600, x 2 layers = 1,200
#   pooler 8*8 + 8 = 72, embedding LayerNorm 16                       -> matmul (no lookups) 1,288
#   lookups: words 50*8 + positions 20*8 + token types 2*8 = 576     -> total 1,864
TINY_BERT = dict(vocab_size=50, hidden_size=8, num_hidden_layers=2, num_attention_heads=2, intermediate_size=16,
                 max_position_embeddings=20, type_vocab_size=2)


@pytest.fixture
def tiny_bert(tmp_path) -> Path:
    from transformers import BertConfig

    folder = tmp_path / "bert"
    BertConfig(**TINY_BERT).save_pretrained(folder)  # a config only: no weights exist
    return folder


def test_model_size_from_a_config_without_weights_and_from_the_known_table(tiny_bert):
    size = model_size(str(tiny_bert))
    assert (size.total, size.matmul, size.hidden, size.layers, size.heads) == (1864, 1288, 8, 2, 2)
    assert not list(tiny_bert.glob("*.safetensors"))
    assert model_size("google/mt5-base") == KNOWN_MODELS["mt5-base"]
    assert model_size("bert-base-multilingual-cased").total == 177_853_440
    assert model_size("someone/unknown-model") is None


def test_peak_memory_and_flop_hours_follow_the_stated_formulas():
    size = ModelSize("m", total=1_000_000, matmul=800_000, hidden=64, layers=3, heads=4, source="test")
    # 21 bytes per parameter; per layer 2 x 16 x 64 x (34 + 5 x 4 x 16 / 64) = 2048 x 39 bytes in 16-bit
    bf16 = 21_000_000 + 3 * 2 * 16 * 64 * 39 + FRAMEWORK_BYTES
    assert peak_memory_bytes(size, batch=2, seq_len=16, bf16=True) == bf16
    assert peak_memory_bytes(size, batch=2, seq_len=16, bf16=False) == bf16 + 3 * 2 * 16 * 64 * 39
    assert flop_hours(0.4 * 989e12 * 3600, "H100 SXM", 0.4) == pytest.approx(1.0)
    assert flop_hours(130e12 * 7200, "RTX 8000", 1.0) == pytest.approx(2.0)


def test_packing_is_lowered_to_what_fits_or_refused():
    gib = 2**30
    lowered = plan_packing(8, [10 * gib, 25 * gib], 80.0, "s.json")
    assert (lowered.runs_per_gpu, lowered.peak_gib) == (3, 25.0)
    assert "executor.runs_per_gpu 8 lowered to 3" in lowered.note
    assert plan_packing(2, [10 * gib], 80.0, "s.json").runs_per_gpu == 2
    unknown = plan_packing(4, [10 * gib], None, "s.json")
    assert unknown.runs_per_gpu == 4 and "not checked" in unknown.note
    with pytest.raises(UserError, match=r"s.json: a run needs ~90.0 GiB .* more than the GPU's 80 GiB"):
        plan_packing(1, [90 * gib], 80.0, "s.json")


def test_mean_tokens_counts_words_pieces_and_special_tokens(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps({"tokens": ["a", "b", "c", "d"], "ner_tags": [0, 0, 0, 0]}) + "\n\n"
                    + json.dumps({"premise": "one two", "hypothesis": "three four five", "label": 1}) + "\n")
    # 4 words -> round(4 x 1.35) = 5 pieces + [CLS] + [SEP] = 7; 5 words -> 7 pieces + [CLS] + 2 [SEP] = 10
    assert mean_tokens(path, "ner", 128) == (8.5, f"counted in {path}")
    assert mean_tokens(path, "ner", 8)[0] == 7.5  # cut at max_seq_length
    assert mean_tokens(tmp_path / "missing.jsonl", "xnli", 128) == (50.0, "stated default (no local data)")
    assert mean_tokens(None, "mlm", 256) == (256.0, "blocks of 256 tokens")


def test_speed_file_from_a_cpu_measurement_round_trips(tmp_path, capsys):
    """The benchmark's CPU path on tiny models, 1 and 2 concurrent processes: a SpeedFile that reads back equal."""
    import gpu_bench

    args = gpu_bench.parse(["--speeds", "--small", "--out", str(tmp_path), "--concurrency", "1,2",
                            "--workloads", "finetune/ner", "--bf16", "off", "--compile", "off", "--steps", "2"])
    speeds = gpu_bench.measure_speeds(args)
    assert [(m.workload, m.concurrent, m.bf16, m.torch_compile) for m in speeds.measurements] == \
        [("finetune/ner", 1, False, False), ("finetune/ner", 2, False, False)]
    assert all(m.steps_per_s > 0 and m.peak_gib is None for m in speeds.measurements)  # no CUDA here
    assert speeds.gpu.startswith("CPU: ") and speeds.versions["torch"] and speeds.date
    path = tmp_path / gpu_bench.speeds_file_name(speeds.gpu)
    speeds.write(path)
    assert SpeedFile.read(path) == speeds
    assert speeds.rate("finetune/ner", 3, False, False).concurrent == 2  # the largest measured at or below
    assert speeds.rate("finetune/ner", 1, False, False).concurrent == 1
    assert speeds.rate("finetune/ner", 1, True, False) is None and speeds.rate("imp/ner", 1, False, False) is None
    path.write_text('{"date": "x"}')
    with pytest.raises(UserError, match="is not a benchmark result"):
        SpeedFile.read(path)


def cost_study(tmp_path: Path, model: Path, speeds: Path | None = None, **executor) -> Path:
    """NER en, one seed, IMP 0 -> 50% in 2 rounds of 3 steps (batch 16), one transfer, on data files whose token
    counts are known: 3 training examples of 4 words (7 tokens each), 2 validation examples of the same."""
    data = tmp_path / "data"
    for split, n in (("train", 3), ("validation", 2)):
        (data / "en").mkdir(parents=True, exist_ok=True)
        (data / "en" / f"{split}.jsonl").write_text(
            "".join(json.dumps({"tokens": list("abcd"), "ner_tags": [0, 1, 2, 0]}) + "\n" for _ in range(n)))
    files = {f"{s}_file": str(data / "{lang}" / f"{s}.jsonl") for s in ("train", "validation")}
    study = {"name": "cost", "study_dir": str(tmp_path / "study"), "model": str(model), "seeds": [1],
             "tasks": {"ner": {"imp_config": "configs/offline/LT_ner_en.json", "languages": ["en"],
                               "finetune_config": "configs/offline/ner_fine_tune_fr.json",
                               "imp_overrides": {"save_steps": 3, "max_steps": 6, "prune_rate": 0.5,
                                                 "target_sparsity": 0.5, **files},
                               "finetune_overrides": {"num_train_epochs": 2, "max_steps": -1, **files}}},
             "transfer_sparsities": [50], "executor": {"kind": "local", **executor}}
    if speeds:
        study["speeds"] = str(speeds)
    path = tmp_path / "cost.json"
    path.write_text(json.dumps(study))
    return path


def test_dry_run_prints_the_flop_bound_the_packing_and_the_measured_estimate(tmp_path, tiny_bert, capsys,
                                                                             monkeypatch):
    import study as study_script
    from utils.study.cost import study_costs
    from utils.study.plan import load_study

    monkeypatch.chdir(REPO)
    speeds = SpeedFile("2026-12-06", "Fake GPU", 80.0, {}, {}, {}, [
        SpeedMeasurement("imp/ner", 1, False, False, 10.0), SpeedMeasurement("imp/ner", 2, False, False, 8.0),
        SpeedMeasurement("finetune/ner", 2, False, False, 4.0)])
    speeds.write(tmp_path / "fake.json")
    path = cost_study(tmp_path, tiny_bert, tmp_path / "fake.json", gpus=[0], runs_per_gpu=2, gpu_memory_gb=80)
    study = load_study(str(path))
    imp, transfer = study.runs["imp/ner/en/s1"], study.runs["transfer/ner/50/en_on_en/s1"]
    costs = {c.run_id: c for c in study_costs(study)}
    batch = imp.config["per_device_train_batch_size"]
    # IMP: 6 steps x 16 x 7 tokens x 6 x 1288; evaluation once per round (2) over 2 examples of 7 tokens x 2 x 1288
    assert imp.steps == 6 and costs[imp.id].train_flops == 6 * 1288 * 6 * batch * 7
    assert costs[imp.id].eval_flops == 2 * 1288 * (2 * 2) * 7
    # fine-tuning: 2 epochs of ceil(3 / 16) = 1 step, evaluated once per epoch
    assert transfer.steps == 2 and costs[transfer.id].eval_flops == 2 * 1288 * (2 * 2) * 7
    assert study_script.main([str(path), "--dry_run"]) == 0
    out = capsys.readouterr().out
    assert "packing: 2 run(s) per GPU x ~1.5 GiB peak each (estimate) on 80 GiB" in out
    imp_row = next(line for line in out.splitlines() if line.startswith("imp ") and "FLOP" not in line
                   and line.split()[1] == "1" and len(line.split()) == 6)
    assert imp_row.split()[-1] == f"{6 / 8.0 / 3600 / 2:,.1f}"  # x2 rate, half the GPU
    assert "measured GPU-h (Fake GPU)" in out and "at 2 run(s) per GPU" in out
    assert "imp/ner: 7.0 tokens/example (counted in" in out
    assert f"{tiny_bert} 1,288 of 1,864 (model config (meta device))" in out
    with pytest.raises(SystemExit) as exit_:
        study_script.main([str(path), "--dry_run", "--speeds", str(tmp_path / "none.json")])
    assert exit_.value.code == 2 and f"speeds file not found: {tmp_path / 'none.json'}" in capsys.readouterr().err


@pytest.mark.parametrize("executor, message", [
    ({"runs_per_gpu": 0}, "executor.runs_per_gpu must be"),
    ({"gpu_memory_gb": 1}, "a run needs ~1.5 GiB of GPU memory (estimate), more than the GPU's 1 GiB"),
])
def test_packing_problems_stop_the_plan_with_one_line(tmp_path, tiny_bert, capsys, monkeypatch, executor, message):
    import study as study_script

    monkeypatch.chdir(REPO)
    with pytest.raises(SystemExit) as exit_:
        study_script.main([str(cost_study(tmp_path, tiny_bert, **executor)), "--dry_run"])
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and message in err and len(err.splitlines()) == 1


def probe_study(tmp_path: Path, n: int, raw: dict):
    """n runs of a script that records its CUDA_VISIBLE_DEVICES and when it ran (1 s)."""
    from utils.study.plan import Run, Study

    script = tmp_path / "probe.py"
    script.write_text("import json, os, sys, time\n"
                      "config = json.load(open(sys.argv[1]))\n"
                      "start = time.time(); time.sleep(1.0)\n"
                      "json.dump({'gpu': os.environ.get('CUDA_VISIBLE_DEVICES'), 'start': start, 'end': time.time()},"
                      " open(os.path.join(config['output_dir'], 'probe.json'), 'w'))\n"
                      "sys.exit(config.get('code', 0))\n")
    study = Study("packed", str(tmp_path / "s.json"), tmp_path / "study", [1], {}, [], raw)
    for i in range(n):
        run_dir = study.study_dir / f"probe{i}"
        study.add(Run(f"probe{i}", "summary", str(script), {"output_dir": str(run_dir), "code": 3 * (i == 1)},
                      run_dir, outputs=["probe.json"]))
    return study


def most_at_once(probes: list[dict]) -> int:
    return max(sum(p["start"] <= q["start"] < p["end"] for p in probes) for q in probes)


def test_local_executor_packs_runs_per_gpu_on_the_least_loaded_gpus(tmp_path):
    """Two (fake) GPUs, 2 runs per GPU, 5 runs: 4 at once, never more than 2 on one GPU; the run that fails does
    not stop its neighbour on the same GPU."""
    from utils.study.execute import LocalExecutor, execute
    from utils.study.state import Decision

    study = probe_study(tmp_path, 5, {"executor": {"gpus": [3, 5], "runs_per_gpu": 2}})
    executor = LocalExecutor.from_study(study, runs_per_gpu=2)
    assert (executor.workers, executor.launcher) == (4, "subprocess") and "up to 2 per GPU" in executor.describe()
    outcomes = execute(study, {rid: Decision("run", "new") for rid in study.runs}, executor, str(tmp_path), 0.05)
    assert [o.status for o in outcomes.values()] == ["ok", "failed", "ok", "ok", "ok"]
    probes = [json.loads((study.study_dir / f"probe{i}" / "probe.json").read_text()) for i in range(5)]
    assert sorted(p["gpu"] for p in probes[:4]) == ["3", "3", "5", "5"]
    for gpu in ("3", "5"):
        assert most_at_once([p for p in probes if p["gpu"] == gpu]) <= 2
    assert most_at_once(probes) <= 4 and probes[4]["start"] >= min(p["end"] for p in probes[:4])


def test_submitit_job_runs_its_pack_of_runs_at_once_each_with_its_outcome(tmp_path):
    """runs_per_gpu 2 on submitit's local executor: 3 training runs go out as 2 jobs; the two runs of one job run
    at the same time, each with its own log and exit code; a run whose folder vanished fails alone."""
    import shutil

    from utils.study.execute import SubmititExecutor, job_for

    study = probe_study(tmp_path, 3, {"executor": {"kind": "submitit_local", "folder": str(tmp_path / "sub")}})
    executor = SubmititExecutor.from_study(study, runs_per_gpu=2)
    runs = list(study.runs.values())
    for run in runs:
        run.task_kind = "ner"  # training runs are packed; analyses go one per job
        run.run_dir.mkdir(parents=True)
        (run.run_dir / "config.json").write_text(json.dumps(run.config))
    shutil.rmtree(runs[2].run_dir)
    executor.submit([(run, job_for(run, False, str(tmp_path))) for run in runs])
    assert list(executor.packs.values()) == [["probe0", "probe1"], ["probe2"]]
    finished, deadline = [], time.time() + 120
    while executor.busy() and time.time() < deadline:
        finished += executor.poll()
        time.sleep(0.1)
    codes = {f.id: f.returncode for f in finished}
    assert codes == {"probe0": 0, "probe1": 3, "probe2": None}
    assert "died" in next(f.error for f in finished if f.id == "probe2")
    probes = [json.loads((study.study_dir / f"probe{i}" / "probe.json").read_text()) for i in range(2)]
    assert most_at_once(probes) == 2
    assert all((study.study_dir / f"probe{i}" / "run.log").read_text().startswith(f"\n=== study run probe{i}")
               for i in range(2))


def test_a_run_that_cannot_start_leaves_its_pack_running(tmp_path):
    from utils.study.execute import job_for, run_jobs

    study = probe_study(tmp_path, 2, {})
    runs = list(study.runs.values())
    runs[0].run_dir.mkdir(parents=True)  # the second run's folder does not exist: its log cannot open
    (runs[0].run_dir / "config.json").write_text(json.dumps(runs[0].config))
    finished = run_jobs([job_for(run, False, str(tmp_path)) for run in runs])
    assert [(f.id, f.returncode) for f in finished] == [("probe1", None), ("probe0", 0)]
    assert finished[0].error.startswith("could not start: ") and math.isfinite(finished[1].seconds)
