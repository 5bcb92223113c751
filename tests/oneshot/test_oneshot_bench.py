"""benchmarks/oneshot_bench.py on a tiny Llama: block-by-block and whole-model calibration, in-process (a smoke
test: no timing is compared; the masks each mode gives are checked exactly)."""
from __future__ import annotations

import sys

import torch

from tests.conftest import REPO
from tests.oneshot.test_oneshot import accumulate_squares, tiny_llama, token_samples
from utils.core.masks import Mask
from utils.infra.results_schema import read_oneshot_results
from utils.oneshot.blocks import find_blocks
from utils.oneshot.methods import Settings, Structure, keep_by_score
from utils.oneshot.run import PruneRun

sys.path.insert(0, str(REPO / "benchmarks"))
import oneshot_bench  # noqa: E402


def masks_by_mode(method: str) -> dict[str, dict[str, torch.Tensor]]:
    """Each mode on its own fresh copy of the same tiny Llama and the same samples."""
    samples, found = token_samples(), {}
    for mode in oneshot_bench.MODES:
        model = tiny_llama()
        blocks, _outside = find_blocks(model)
        run = PruneRun(blocks, samples, Settings(method, 0.5, Structure()), torch.device("cpu"), False,
                       show_progress=False)
        found[mode] = oneshot_bench.prune_in_mode(model, run, mode)
        for name, keep in found[mode].items():
            assert torch.equal(model.get_parameter(name) == 0, ~keep), name  # pruned in place in both modes
    return found


def test_magnitude_masks_are_the_same_in_both_modes():
    masks = masks_by_mode("magnitude")
    assert list(masks["whole"]) == list(masks["sequential"])
    assert all(torch.equal(masks["whole"][n], keep) for n, keep in masks["sequential"].items())
    agreement = oneshot_bench.agreement(masks["sequential"], masks["whole"])
    assert agreement["jaccard"] == 1.0 and agreement["identical_matrices"] == agreement["matrices"] == 14


def test_whole_model_wanda_first_block_as_sequential_later_blocks_from_dense_inputs():
    masks = masks_by_mode("wanda")
    first = [n for n in masks["sequential"] if n.startswith("model.layers.0.")]
    assert len(first) == 7
    for name in first:  # the same inputs reach block 0 in both modes
        assert torch.equal(masks["whole"][name], masks["sequential"][name]), name
    # block 1, whole-model: |W| * ||x|| with x from the DENSE model's forward pass (hand-written reference)
    dense, samples = tiny_llama(), token_samples()
    norms = torch.zeros(32, dtype=torch.float64)
    module = dense.model.layers[1].self_attn.q_proj
    hook = module.register_forward_hook(accumulate_squares(norms))
    with torch.no_grad():
        for row in samples:
            dense(input_ids=row.unsqueeze(0))
    hook.remove()
    expected = keep_by_score(module.weight.double().abs() * norms.sqrt(), 0.5, Structure(), per_row=True)
    name = "model.layers.1.self_attn.q_proj.weight"
    assert torch.equal(masks["whole"][name], expected)
    assert not torch.equal(masks["sequential"][name], expected)  # sequential saw the pruned block 0's outputs
    agreement = oneshot_bench.agreement(masks["sequential"], masks["whole"])
    kept_both = sum(int((masks["sequential"][n] & masks["whole"][n]).sum()) for n in masks["whole"])
    kept_either = sum(int((masks["sequential"][n] | masks["whole"][n]).sum()) for n in masks["whole"])
    assert agreement["jaccard"] == round(kept_both / kept_either, 4) < 1
    assert agreement["per_layer"]["decoder.0"] == 1.0 and agreement["per_layer"]["decoder.1"] < 1


def test_sequential_case_gives_prune_oneshots_mask(tiny_models, tmp_path, run_script):
    """measure_case loads, draws and prunes as prune_oneshot.py does: the same Wanda mask and samples."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_models / "mbert-tiny")
    folder = tmp_path / "llama-tiny"
    tiny_llama(vocab=len(tokenizer)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    calibration, held_out = "data/mlm/{lang}.train.json", "data/mlm/{lang}.valid.json"
    run_script("prune_oneshot.py", "--model_name_or_path", str(folder), "--output_dir", str(tmp_path / "run"),
               "--method", "wanda", "--calibration_file", calibration, "--calibration_samples", "4",
               "--calibration_seq_len", "16")
    expected = Mask.load(tmp_path / "run" / "masks" / "sparsity_50.pt")
    results = read_oneshot_results(tmp_path / "run" / "oneshot_results.json")
    measured = {}
    for mode in oneshot_bench.MODES:
        case = oneshot_bench.Case(str(folder), calibration, held_out, "en", "wanda", mode, 4, 16, eval_windows=2,
                                  dense_perplexity=mode == "sequential")
        (tmp_path / mode).mkdir()
        measured[mode] = oneshot_bench.measure_case(case, tmp_path / mode)
    result, masks = measured["sequential"]
    assert set(masks) == set(expected)
    assert all(torch.equal(masks[n], expected[n]) for n in masks)
    assert result.tokens_sha256 == results.calibration["tokens_sha256"] == measured["whole"][0].tokens_sha256
    assert result.seconds > 0 and result.peak_mib > 0 and set(result.perplexity) == {"en"}
    assert set(result.dense_perplexity) == {"en"} and not measured["whole"][0].dense_perplexity
    whole = measured["whole"][1]
    assert all(torch.equal(whole[n], masks[n]) for n in masks if n.startswith("model.layers.0."))
