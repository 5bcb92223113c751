"""IMP under DDP: `torchrun --nproc_per_node 2 LT_ner.py --use_cpu` (gloo) against a single-process run.

Checks that both ranks hold the same mask every round and restore the same rewind weights, that only rank 0
writes files, that the masks have exactly the single-process run's sparsities and file format, that
imp_results.json records num_processes 2 and one mask checksum per round, and that a rank whose mask differs
stops the run.
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    not (torch.distributed.is_available() and torch.distributed.is_gloo_available()),
    reason="torch.distributed with the gloo backend is not available in this torch build",
)

# Runs LT_ner.main under torchrun, with each rank recording (to <record_dir>/rank<r>.jsonl) the checksum of every
# mask it computes, a hash of the weights after every rewind, and every file it writes. DDP_TEST_CORRUPT_RANK
# flips one kept weight in that rank's mask, to check that mismatched ranks stop the run.
WRAPPER = r'''
import hashlib, json, os, sys
sys.path.insert(0, os.getcwd())
import torch
import utils.core.imp as imp, utils.infra.io as uio, utils.core.masks as masks, utils.core.training as training

rank = int(os.environ.get("RANK", "0"))
record = open(os.path.join(os.environ["DDP_TEST_RECORD_DIR"], f"rank{rank}.jsonl"), "a")

def log(**entry):
    record.write(json.dumps(entry) + "\n"); record.flush()

prune = imp.magnitude_prune
def recorded_prune(*args, **kwargs):
    mask = prune(*args, **kwargs)
    if os.environ.get("DDP_TEST_CORRUPT_RANK") == str(rank):
        name, tensor = next(iter(mask.items()))
        flat = tensor.flatten().clone(); flat[flat.nonzero()[0]] = False
        mask = type(mask)({**mask, name: flat.view_as(tensor)})
    log(kind="mask", checksum=mask.checksum(), sparsity=mask.sparsity)
    return mask
imp.magnitude_prune = recorded_prune

restore = training.MaskedTrainer.restore
def recorded_restore(self, snapshot):
    restore(self, snapshot)
    digest = hashlib.sha256()
    for name, value in self.unwrapped.state_dict().items():
        digest.update(name.encode()); digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    log(kind="restore", weights=digest.hexdigest())
training.MaskedTrainer.restore = recorded_restore

def writer(module, name):
    original = getattr(module, name)
    def wrapped(path, *args, **kwargs):
        log(kind="write", path=str(path))
        return original(path, *args, **kwargs)
    setattr(module, name, wrapped)
for module in (imp, masks):
    for name in ("atomic_write", "write_json", "write_results"):
        if hasattr(module, name):
            writer(module, name)

import LT_ner
LT_ner.main(sys.argv[1:])
'''


def _data_templates(tmp_path: Path) -> tuple[str, str]:
    bundled = REPO / "data" / "ner" / "en"
    if (bundled / "train.jsonl").is_file() and (bundled / "validation.jsonl").is_file():
        return str(REPO / "data/ner/{lang}/train.jsonl"), str(REPO / "data/ner/{lang}/validation.jsonl")
    words = "Marie Curie was born in Warsaw and worked in Paris with John Smith of Google in New York".split()
    rng = random.Random(0)
    for split, count in (("train", 64), ("validation", 16)):
        folder = tmp_path / "data" / "en"
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / f"{split}.jsonl").open("w", encoding="utf-8") as handle:
            for _ in range(count):
                n = rng.randint(3, 12)
                handle.write(json.dumps({"tokens": [rng.choice(words) for _ in range(n)],
                                         "ner_tags": [rng.randint(0, 6) for _ in range(n)]}) + "\n")
    return str(tmp_path / "data/{lang}/train.jsonl"), str(tmp_path / "data/{lang}/validation.jsonl")


def _run(tmp_path: Path, tiny_models: Path, name: str, nproc: int, corrupt_rank: int | None = None):
    train, validation = _data_templates(tmp_path)
    out = tmp_path / name
    record = tmp_path / f"{name}-record"
    record.mkdir()
    wrapper = tmp_path / "ddp_wrapper.py"
    wrapper.write_text(WRAPPER)
    argv = [
        "--model_name_or_path", str(tiny_models / "mbert-tiny"), "--train_file", train, "--validation_file", validation,
        "--data_language", "en", "--output_dir", str(out), "--do_train", "--do_eval", "--use_cpu",
        "--save_steps", "3", "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "8",
        "--max_train_samples", "48", "--max_eval_samples", "16", "--prune_rate", "0.3", "--target_sparsity", "0.6",
        "--logging_steps", "100", "--seed", "7", "--report_to", "none",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1", "HF_DATASETS_CACHE": str(tmp_path / "hf-datasets"),
           "DDP_TEST_RECORD_DIR": str(record), "PYTHONPATH": str(REPO)}
    env.pop("DDP_TEST_CORRUPT_RANK", None)
    if corrupt_rank is not None:
        env["DDP_TEST_CORRUPT_RANK"] = str(corrupt_rank)
    if nproc > 1:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
                   str(wrapper), *argv]
    else:
        command = [sys.executable, str(wrapper), *argv]
    proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    records = {}
    for path in sorted(record.glob("rank*.jsonl")):
        records[int(path.stem[4:])] = [json.loads(line) for line in path.read_text().splitlines()]
    return proc, out, records


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_models):
    tmp = tmp_path_factory.mktemp("ddp")
    ddp = _run(tmp, tiny_models, "ddp", 2)
    single = _run(tmp, tiny_models, "single", 1)
    return ddp, single


def _ok(proc):
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-5000:]}"


def test_ddp_imp_matches_single_process_run(runs):
    from utils.core.masks import Mask

    (ddp_proc, ddp_out, ddp_records), (single_proc, single_out, _) = runs
    _ok(ddp_proc)
    _ok(single_proc)

    ddp_results = json.loads((ddp_out / "imp_results.json").read_text())
    single_results = json.loads((single_out / "imp_results.json").read_text())
    assert ddp_results["num_processes"] == 2
    assert single_results["num_processes"] == 1
    assert ddp_results["complete"] and len(ddp_results["rounds"]) == len(ddp_results["schedule"]) == 3
    checksums = [r["mask_checksum"] for r in ddp_results["rounds"]]
    assert len(checksums) == 3 and all(isinstance(c, str) and c for c in checksums)
    assert checksums[0] == "dense" or checksums[0] == Mask.ones_like(
        {n: t for n, t in Mask.load(ddp_out / ddp_results["rounds"][0]["next_mask"]).items()}).checksum()

    for k, (d, s) in enumerate(zip(ddp_results["rounds"][:-1], single_results["rounds"][:-1])):
        assert d["next_mask"] == s["next_mask"]
        ddp_mask, single_mask = Mask.load(ddp_out / d["next_mask"]), Mask.load(single_out / s["next_mask"])
        assert ddp_mask.num_kept == single_mask.num_kept and ddp_mask.sparsity == single_mask.sparsity
        assert list(ddp_mask) == list(single_mask)
        # the round's recorded checksum is that of the mask the previous round saved
        assert ddp_results["rounds"][k + 1]["mask_checksum"] == ddp_mask.checksum()
        # same on-disk format: bool tensors under '<parameter>_mask' keys
        for path in (ddp_out / d["next_mask"], single_out / s["next_mask"]):
            payload = torch.load(path, map_location="cpu", weights_only=True)
            assert all(key.endswith("_mask") and value.dtype == torch.bool for key, value in payload.items())
        assert json.loads((ddp_out / d["next_mask"]).with_suffix(".json").read_text())["file_format"] == "bool"


def test_every_rank_computes_the_same_masks_and_rewinds_alike(runs):
    (ddp_proc, ddp_out, records), _ = runs
    _ok(ddp_proc)
    assert sorted(records) == [0, 1]
    masks = {rank: [e["checksum"] for e in entries if e["kind"] == "mask"] for rank, entries in records.items()}
    assert len(masks[0]) == 2 and masks[0] == masks[1]
    restores = {rank: [e["weights"] for e in entries if e["kind"] == "restore"] for rank, entries in records.items()}
    assert len(restores[0]) == 3 and restores[0] == restores[1]
    writes = {rank: [e["path"] for e in entries if e["kind"] == "write"] for rank, entries in records.items()}
    assert writes[1] == [], f"rank 1 wrote files: {writes[1]}"
    assert any(path.endswith("imp_results.json") for path in writes[0])
    results = json.loads((ddp_out / "imp_results.json").read_text())
    assert [r["mask_checksum"] for r in results["rounds"][1:]] == masks[0]


def test_ranks_with_different_masks_stop_the_run(tmp_path, tiny_models):
    proc, out, records = _run(tmp_path, tiny_models, "corrupt", 2, corrupt_rank=1)
    assert proc.returncode != 0
    assert "ranks hold different masks" in proc.stdout + proc.stderr
    results = out / "imp_results.json"
    if results.is_file():  # round 0 completed (dense, equal); the mismatch is caught before round 1 trains
        assert len(json.loads(results.read_text())["rounds"]) == 1
