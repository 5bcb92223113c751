"""One-shot pruning (prune_oneshot.py, utils/oneshot): Wanda's exact mask against a hand-written reference on a
tiny decoder, SparseGPT against a direct OBS computation, the methods' reconstruction errors, exact sparsities and
N:M patterns, the block-by-block machinery against the model's own forward pass, offloading, the script end to end
and its one-line errors."""
from __future__ import annotations

import copy
import json
import math

import pytest
import torch
from torch import nn

from utils.core.masks import Mask, read_mask_metadata
from utils.core.pruning import prunable_weights
from utils.infra.errors import UserError
from utils.infra.results_schema import read_oneshot_results
from utils.oneshot.blocks import Overrides, capture_calls, find_blocks, probe_overrides, run_block
from utils.oneshot.methods import LayerPruner, Settings, Structure, keep_by_score, sparsegpt_prune
from utils.oneshot.run import PruneRun, model_inputs, prune_model


def tiny_llama(vocab: int = 64, layers: int = 2, seed: int = 0):
    """Grouped-query attention: 4 query heads share 2 key/value heads."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=layers,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128, use_cache=False)
    return LlamaForCausalLM(config).eval()


def tiny_qwen2(vocab: int = 64):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(1)
    config = Qwen2Config(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128, use_cache=False)
    return Qwen2ForCausalLM(config).eval()


def token_samples(count: int = 4, length: int = 16, vocab: int = 64, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, vocab, (count, length), generator=torch.Generator().manual_seed(seed))


def prune(model, method: str, samples: torch.Tensor, structure: str = "unstructured", offload: bool = False,
          block_size: int = 128, batch_size: int = 1) -> dict[str, torch.Tensor]:
    blocks, _outside = find_blocks(model)
    settings = Settings(method, 0.5, Structure.parse(structure), block_size, 0.01)
    masks, records, _kind = prune_model(model, PruneRun(blocks, samples, settings, torch.device("cpu"), offload,
                                                        show_progress=False, batch_size=batch_size))
    assert [r.block for r in records] == [b.name for stack in blocks.values() for b in stack]
    return masks


# ---------------------------------------------------------------------------------------------------------------
# Wanda: the exact mask against a reference written with plain hooks and full forward passes
# ---------------------------------------------------------------------------------------------------------------


def accumulate_squares(total: torch.Tensor):
    def hook(_module, args, _output) -> None:
        total.add_((args[0].double() ** 2).sum(dim=(0, 1)))

    return hook


def wanda_reference(model, samples: torch.Tensor) -> dict[str, torch.Tensor]:
    """Block by block: the inputs' squared norms from full forward passes of the model pruned so far, then per row
    the in_features // 2 lowest |W| * ||x|| removed."""
    model = copy.deepcopy(model)
    masks = {}
    for index, layer in enumerate(model.model.layers):
        linears = {f"model.layers.{index}.{n}.weight": m for n, m in layer.named_modules() if isinstance(m, nn.Linear)}
        norms = {name: torch.zeros(m.in_features, dtype=torch.float64) for name, m in linears.items()}
        hooks = [m.register_forward_hook(accumulate_squares(norms[name])) for name, m in linears.items()]
        with torch.no_grad():
            for row in samples:
                model(input_ids=row.unsqueeze(0))
        for hook in hooks:
            hook.remove()
        for name, module in linears.items():
            score = module.weight.double().abs() * norms[name].sqrt()
            pruned = torch.topk(score, module.in_features // 2, dim=1, largest=False).indices
            keep = torch.ones_like(module.weight, dtype=torch.bool)
            keep[torch.arange(keep.shape[0]).unsqueeze(1), pruned] = False
            masks[name] = keep
            with torch.no_grad():
                module.weight.mul_(keep)
    return masks


@pytest.mark.parametrize("build", [tiny_llama, tiny_qwen2])
def test_wanda_mask_equals_the_hand_written_reference(build):
    model, samples = build(), token_samples()
    expected = wanda_reference(model, samples)
    masks = prune(model, "wanda", samples)
    assert list(masks) == list(prunable_weights(model))
    assert set(masks) == set(expected)
    for name, keep in expected.items():
        assert torch.equal(masks[name], keep), name
        assert torch.equal(model.get_parameter(name) == 0, ~keep), name  # the pruned weights are zero
    # sequential calibration matters: block 1 calibrated on the DENSE block 0's outputs gives another mask
    dense = build()
    norms = torch.zeros(32, dtype=torch.float64)
    hook = dense.model.layers[1].self_attn.q_proj.register_forward_hook(accumulate_squares(norms))
    with torch.no_grad():
        for row in samples:
            dense(input_ids=row.unsqueeze(0))
    hook.remove()
    weight = dense.model.layers[1].self_attn.q_proj.weight
    keep_dense = keep_by_score(weight.double().abs() * norms.sqrt(), 0.5, Structure(), per_row=True)
    assert not torch.equal(keep_dense, masks["model.layers.1.self_attn.q_proj.weight"])


# ---------------------------------------------------------------------------------------------------------------
# SparseGPT: one layer against the OBS update written out with explicit inverses
# ---------------------------------------------------------------------------------------------------------------


def obs_reference(W: torch.Tensor, X: torch.Tensor, structure: Structure, block: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Columns left to right; H restricted to the columns not yet fixed, inverted directly. The mask of each block
    of columns (unstructured) or each group of M (N:M) is chosen when it is reached, by w^2 / [H_F^-1]_00."""
    W = W.double().clone()
    H = 2 * X.double().t() @ X.double() / X.shape[0]
    H += 0.01 * torch.diag(H).mean() * torch.eye(H.shape[0], dtype=torch.float64)
    rows, cols = W.shape
    inverse = [torch.linalg.inv(H[j:, j:]) for j in range(cols)]  # inverse[j][0] is column j's row of [H_F]^-1
    d = torch.tensor([inverse[j][0, 0] for j in range(cols)], dtype=torch.float64)
    keep = torch.ones(rows, cols, dtype=torch.bool)
    for j in range(cols):
        if structure.is_nm and j % structure.group == 0:
            scores = W[:, j:j + structure.group] ** 2 / d[j:j + structure.group]
            for r in range(rows):
                lowest = torch.argsort(scores[r])[: structure.group - structure.kept]
                keep[r, j + lowest] = False
        elif not structure.is_nm and j % block == 0:
            scores = (W[:, j:j + block] ** 2 / d[j:j + block]).flatten()
            lowest = torch.argsort(scores)[: round(0.5 * scores.numel())]
            part = torch.ones(scores.numel(), dtype=torch.bool)
            part[lowest] = False
            keep[:, j:j + block] = part.reshape(rows, -1)
        for r in range(rows):
            if not keep[r, j]:  # OBS: remove w_rj, move the remaining columns by -w_rj / [H_F^-1]_00 * [H_F^-1]_0,:
                W[r, j:] -= W[r, j] / inverse[j][0, 0] * inverse[j][0, :]
    return keep, W


@pytest.mark.parametrize("structure,block", [("unstructured", 128), ("unstructured", 8), ("2:4", 128), ("4:8", 8)])
def test_sparsegpt_one_layer_equals_direct_obs(structure, block):
    generator = torch.Generator().manual_seed(3)
    W = torch.randn(8, 16, generator=generator)
    X = torch.randn(64, 16, generator=generator) * torch.linspace(0.5, 3.0, 16)
    parsed = Structure.parse(structure)
    expected_keep, expected_W = obs_reference(W, X, parsed, block)
    keep, updated = sparsegpt_prune(W, 2 * X.t() @ X / X.shape[0], 0.5, parsed, block_size=block, damping=0.01)
    assert torch.equal(keep, expected_keep)
    assert torch.allclose(updated.double(), expected_W, atol=1e-5, rtol=1e-5)
    assert torch.equal(updated == 0, ~keep)
    assert not torch.allclose(updated[keep], W[keep])  # the kept weights moved


def test_reconstruction_error_sparsegpt_below_wanda_below_magnitude():
    """On the calibration inputs of one layer: correlated features of uneven scales (LLMs' outlier features).
    SparseGPT's mask without its weight update is a worse sub-network than SparseGPT's result."""
    for seed in range(3):
        generator = torch.Generator().manual_seed(seed)
        W = torch.randn(32, 64, generator=generator)
        scales = torch.exp(torch.randn(64, generator=generator))
        mixed = torch.randn(256, 16, generator=generator) @ torch.randn(16, 64, generator=generator)
        X = (mixed + 0.3 * torch.randn(256, 64, generator=generator)) * scales
        errors = {}
        for method in ("magnitude", "wanda", "sparsegpt"):
            layer = nn.Linear(64, 32, bias=False)
            with torch.no_grad():
                layer.weight.copy_(W)
            pruner = LayerPruner(layer.weight, False, Settings(method, 0.5, Structure()))
            pruner.add(X.unsqueeze(0))
            keep = pruner.prune()
            assert int(keep.sum()) == W.numel() // 2
            errors[method] = float(torch.linalg.norm(X @ W.t() - X @ layer.weight.detach().t()))
            if method == "sparsegpt":  # its mask on the original weights, without the update
                errors["sparsegpt mask alone"] = float(torch.linalg.norm(X @ W.t() - X @ (W * keep).t()))
        assert errors["sparsegpt"] < errors["wanda"] < errors["magnitude"], errors
        assert errors["sparsegpt"] < errors["sparsegpt mask alone"], errors


# ---------------------------------------------------------------------------------------------------------------
# Exact sparsities and N:M patterns
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["magnitude", "wanda", "sparsegpt"])
def test_exact_sparsity_per_row_or_layer(method):
    model = tiny_llama()
    dense = copy.deepcopy(model)
    masks = prune(model, method, token_samples())
    for name, keep in masks.items():
        if method == "wanda":
            assert (keep.sum(dim=1) == keep.shape[1] // 2).all(), name
        else:
            assert int(keep.sum()) == keep.numel() // 2, name
        weight, original = model.get_parameter(name), dense.get_parameter(name)
        assert (weight[~keep] == 0).all(), name
        # magnitude and Wanda keep the kept weights as they were; SparseGPT updates them
        assert torch.equal(weight[keep], original[keep]) == (method != "sparsegpt"), name
    assert Mask(masks).sparsity == 0.5


@pytest.mark.parametrize("method", ["magnitude", "wanda", "sparsegpt"])
@pytest.mark.parametrize("structure", ["2:4", "4:8"])
def test_nm_pattern(method, structure):
    kept, group = map(int, structure.split(":"))
    model = tiny_llama()
    masks = prune(model, method, token_samples(), structure=structure)
    for name, keep in masks.items():
        groups = keep.reshape(keep.shape[0], -1, group).sum(dim=-1)
        assert (groups == kept).all(), name
        assert (model.get_parameter(name)[~keep] == 0).all()


def test_transposed_weights_are_pruned_along_their_inputs():
    """GPT-2's Conv1D stores (inputs, outputs): N:M groups and Wanda's rows follow the inputs."""
    from transformers.pytorch_utils import Conv1D

    torch.manual_seed(0)
    layer = Conv1D(nf=6, nx=8)  # 8 inputs, 6 outputs: weight (8, 6)
    x = torch.randn(1, 20, 8)
    for structure in ("unstructured", "2:4"):
        conv = copy.deepcopy(layer)
        pruner = LayerPruner(conv.weight, True, Settings("wanda", 0.5, Structure.parse(structure)))
        pruner.add(x)
        keep = pruner.prune()
        assert keep.shape == (8, 6)
        linear_keep = keep_by_score(layer.weight.t().double().abs() * (x[0].double() ** 2).sum(0).sqrt(), 0.5,
                                    Structure.parse(structure), per_row=True)
        assert torch.equal(keep, linear_keep.t())


# ---------------------------------------------------------------------------------------------------------------
# The block-by-block machinery
# ---------------------------------------------------------------------------------------------------------------


def bert_masked_lm():
    from transformers import BertForMaskedLM

    from tests.conftest import tiny_bert_config

    torch.manual_seed(0)
    return BertForMaskedLM(tiny_bert_config(vocab_size=64)).eval()


def t5_model():
    from transformers import MT5Config, MT5ForConditionalGeneration

    torch.manual_seed(0)
    config = MT5Config(vocab_size=64, d_model=16, d_kv=8, num_heads=2, d_ff=32, num_layers=3, num_decoder_layers=3,
                       decoder_start_token_id=0, tie_word_embeddings=False, use_cache=False)
    return MT5ForConditionalGeneration(config).eval()


def tiny_gemma3():
    """Sliding-window and global layers: their attention masks and rotary embeddings differ from block to block."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(0)
    config = Gemma3TextConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                              num_attention_heads=4, num_key_value_heads=2, head_dim=8, sliding_window=4,
                              layer_types=["sliding_attention", "full_attention", "sliding_attention"],
                              max_position_embeddings=128, use_cache=False)
    return Gemma3ForCausalLM(config).eval()


class KeywordBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.up, self.down = nn.Linear(8, 16), nn.Linear(16, 8)

    def forward(self, hidden_states, scale=1.0):
        return hidden_states + scale * self.down(torch.relu(self.up(hidden_states)))


class KeywordModel(nn.Module):
    """Calls its blocks with keywords only, with a scale that differs per block."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.config = type("Config", (), {"is_encoder_decoder": False})()
        self.embed = nn.Embedding(64, 8)
        self.layers = nn.ModuleList(KeywordBlock() for _ in range(3))

    def forward(self, input_ids, output_hidden_states=False):
        states = [self.embed(input_ids)]
        for index, layer in enumerate(self.layers):
            states.append(layer(hidden_states=states[-1], scale=1.0 / (index + 1)))
        return type("Output", (), {"hidden_states": states})()


@pytest.mark.parametrize("build", [lambda: tiny_llama(layers=3), tiny_gemma3, bert_masked_lm, t5_model, KeywordModel])
def test_blocks_run_one_by_one_reproduce_the_models_hidden_states(build):
    """The captured arguments (attention mask, rotary embeddings, T5's position bias handed from block 0 to the
    others, encoder states) make the blocks, run alone, give the hidden states of the model's own forward pass."""
    model, samples = build(), token_samples(count=2, length=10)
    blocks, _ = find_blocks(model)
    for stack, stack_blocks in blocks.items():
        with torch.no_grad():
            outputs = [model(**model_inputs(model.config, row.unsqueeze(0)), output_hidden_states=True)
                       for row in samples]
        key = "decoder_hidden_states" if stack.startswith("decoder") else \
            "encoder_hidden_states" if model.config.is_encoder_decoder else "hidden_states"
        calls = capture_calls(model, stack_blocks[0].module, (model_inputs(model.config, r.unsqueeze(0)) for r in samples))
        overrides = probe_overrides(model, stack_blocks, model_inputs(model.config, samples[:1]))
        for index, (block, override) in enumerate(zip(stack_blocks[:-1], overrides)):  # the last adds a final norm
            run_block(block.module, calls, override)
            for call, expected in zip(calls, outputs):
                assert torch.allclose(call.hidden, getattr(expected, key)[index + 1], atol=1e-5), (stack, index)
        if isinstance(model, KeywordModel):
            assert [o.kwargs for o in overrides] == [{}, {"scale": 0.5}, {"scale": 1 / 3}]
        if model.config.is_encoder_decoder:
            assert any(o.args for o in overrides[1:])  # T5: position bias handed on from the first block
            assert Overrides() == overrides[0]


@pytest.mark.parametrize("method", ["wanda", "sparsegpt"])
@pytest.mark.parametrize("build", [lambda: tiny_llama(layers=3), tiny_gemma3, bert_masked_lm, t5_model])
def test_batched_calibration_gives_the_masks_of_one_sample_at_a_time(build, method):
    """--calibration_batch_size: the same statistics summed over the same tokens, so the same masks (and, for
    SparseGPT, the same updated weights up to float rounding)."""
    model = build()
    twin = copy.deepcopy(model)
    samples = token_samples(count=6, length=12)
    one, batched = prune(model, method, samples), prune(twin, method, samples, batch_size=3)
    assert list(one) == list(batched)
    assert all(torch.equal(one[n], batched[n]) for n in one)
    for name, weight in prunable_weights(model).items():
        assert torch.allclose(weight, prunable_weights(twin)[name], atol=1e-5), name


@pytest.mark.parametrize("method", ["wanda", "sparsegpt"])
def test_offloaded_and_in_memory_calibration_give_the_same_mask(method):
    model = tiny_llama()
    twin = copy.deepcopy(model)
    samples = token_samples()
    in_memory = prune(model, method, samples)
    offloaded = prune(twin, method, samples, offload=True)
    assert list(in_memory) == list(offloaded)
    for name in in_memory:
        assert torch.equal(in_memory[name], offloaded[name]), name
        assert torch.equal(model.get_parameter(name), twin.get_parameter(name)), name
    assert all(p.device.type == "cpu" for p in twin.parameters())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
@pytest.mark.parametrize("method", ["wanda", "sparsegpt"])
def test_offload_on_a_gpu_moves_one_block_at_a_time(method):
    """On a GPU: the blocks stay on the CPU between uses, the rest of the model on the GPU, and the mask equals the
    in-memory one."""
    from utils.oneshot.blocks import place_model

    model, samples = tiny_llama(), token_samples()
    twin = copy.deepcopy(model)
    results = {}
    for name, net, offload in (("in-memory", model, False), ("offload", twin, True)):
        blocks, _ = find_blocks(net)
        place_model(net, [b for stack in blocks.values() for b in stack], torch.device("cuda"), offload)
        settings = Settings(method, 0.5, Structure())
        masks, records, kind = prune_model(net, PruneRun(blocks, samples, settings, torch.device("cuda"), offload,
                                                         show_progress=False))
        results[name] = masks
        assert kind == "cuda_max_allocated" and all(r.peak_memory_mib > 0 for r in records)
    assert all(p.device.type == "cpu" for p in twin.model.layers.parameters())
    assert twin.model.embed_tokens.weight.device.type == "cuda"
    for name, keep in results["in-memory"].items():
        assert torch.equal(keep, results["offload"][name]), name


def test_encoder_decoder_stacks_are_pruned_in_order():
    model = t5_model()
    masks = prune(model, "sparsegpt", token_samples(count=3, length=12))
    assert {n.split(".")[0] for n in masks} == {"encoder", "decoder"}
    assert Mask(masks).sparsity == 0.5


def test_no_blocks_is_one_line():
    with pytest.raises(UserError, match="no prunable weights|no repeated blocks"):
        find_blocks(nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4)))


# ---------------------------------------------------------------------------------------------------------------
# prune_oneshot.py end to end
# ---------------------------------------------------------------------------------------------------------------

SEQ = 32


@pytest.fixture(scope="module")
def trained_llama(tiny_models, tmp_path_factory):
    """A tiny Llama (grouped-query attention) with the tiny mBERT's tokenizer, trained briefly on the English
    sample so that its perplexity means something and pruning can hurt it."""
    from transformers import AutoTokenizer

    from utils.oneshot.calibration import read_documents, token_stream

    tokenizer = AutoTokenizer.from_pretrained(tiny_models / "mbert-tiny")
    model = tiny_llama(vocab=len(tokenizer)).train()
    stream = token_stream(tokenizer, read_documents("data/mlm/en.train.json", "en", "test"))
    windows = stream[: stream.numel() // SEQ * SEQ].reshape(-1, SEQ)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(0)
    for _ in range(60):
        batch = windows[torch.randint(0, windows.shape[0], (16,), generator=generator)]
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    folder = tmp_path_factory.mktemp("llama") / "llama-tiny"
    model.eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def oneshot_argv(model, out, *extra):
    return ["prune_oneshot.py", "--model_name_or_path", str(model), "--output_dir", str(out),
            "--calibration_file", "data/mlm/{lang}.train.json", "--calibration_samples", "8",
            "--calibration_seq_len", str(SEQ), *extra]


def test_script_end_to_end(trained_llama, tmp_path, run_script, capsys):
    from transformers import AutoModelForCausalLM

    out = tmp_path / "wanda_en"
    argv = oneshot_argv(trained_llama, out, "--method", "sparsegpt", "--data_language", "en", "--seed", "3",
                        "--eval_files", "en=data/mlm/en.valid.json,fr=data/mlm/fr.valid.json", "--save_weights")
    results = run_script(*argv)
    typed = read_oneshot_results(out / "oneshot_results.json")
    assert typed.method == "sparsegpt" and typed.structure == "unstructured" and typed.sparsity == 0.5
    assert [b.block for b in typed.blocks] == ["model.layers.0", "model.layers.1"]
    assert all(b.sparsity == 0.5 and b.seconds >= 0 and b.peak_memory_mib > 0 for b in typed.blocks)
    assert set(typed.perplexity_before) == set(typed.perplexity_after) == {"en", "fr"}
    for lang in ("en", "fr"):
        before, after = typed.perplexity_before[lang], typed.perplexity_after[lang]
        assert math.isfinite(before) and math.isfinite(after) and after >= 0.98 * before, (lang, before, after)
    assert typed.perplexity_before["en"] < 0.5 * 5000  # trained: far from uniform over the vocabulary
    mask = Mask.load(out / "masks" / "sparsity_50.pt")
    model = AutoModelForCausalLM.from_pretrained(out / "model")
    weights = prunable_weights(model)
    assert list(mask) == list(weights) and mask.sparsity == 0.5
    for name, weight in weights.items():
        assert torch.equal(weight == 0, ~mask[name]), name
    meta = read_mask_metadata(out / "masks" / "sparsity_50.pt")
    assert meta["method"] == "sparsegpt" and meta["structure"] == "unstructured" and meta["seed"] == 3
    assert meta["languages"] == ["en"] and meta["calibration_file"] == "data/mlm/{lang}.train.json"
    assert meta["model"] == str(trained_llama) and meta["weights_updated"] is True
    assert meta["tokens_sha256"] == typed.calibration["tokens_sha256"] and len(meta["tokens_sha256"]) == 64
    assert results["perplexity_after"] == typed.perplexity_after
    # the same command again: nothing to do; another seed draws other samples
    capsys.readouterr()
    run_script(*argv)
    assert "nothing to do" in capsys.readouterr().out
    other = run_script(*oneshot_argv(trained_llama, tmp_path / "s4", "--method", "sparsegpt", "--seed", "4"))
    assert other["calibration"]["tokens_sha256"] != typed.calibration["tokens_sha256"]
    # other settings into the complete run's folder: refused, nothing removed
    with pytest.raises(SystemExit):
        run_script(*oneshot_argv(trained_llama, out, "--method", "wanda"))
    assert "holds a complete one-shot pruning run with other settings" in capsys.readouterr().err
    assert Mask.load(out / "masks" / "sparsity_50.pt") == mask


def test_calibration_from_a_hub_dataset(trained_llama, tmp_path, run_script, monkeypatch):
    """--dataset_name goes through utils.infra.data's hub loading (configs = languages, the 'text' field)."""
    import datasets
    from datasets import Dataset

    asked = []

    def load_dataset(name, config=None, split=None, **kwargs):
        if name == "json":  # the local file of the comparison run
            return datasets.load_dataset(name, split=split, **kwargs)
        asked.append((name, config, split))
        rows = [json.loads(line) for line in open(f"data/mlm/{config}.train.json", encoding="utf-8")]
        return Dataset.from_list([{"text": r["text"]} for r in rows])

    monkeypatch.setattr("utils.infra.data.load_dataset", load_dataset)
    hub = run_script("prune_oneshot.py", "--model_name_or_path", str(trained_llama), "--output_dir",
                     str(tmp_path / "hub"), "--dataset_name", "someone/web-text", "--data_language", "fr",
                     "--calibration_samples", "8", "--calibration_seq_len", str(SEQ))
    local = run_script(*oneshot_argv(trained_llama, tmp_path / "local", "--data_language", "fr"))
    assert asked == [("someone/web-text", "fr", "train")]
    assert hub["calibration"]["tokens_sha256"] == local["calibration"]["tokens_sha256"]


def test_script_masks_of_two_languages_differ_and_magnitude_needs_no_text(trained_llama, tmp_path, run_script):
    en = run_script(*oneshot_argv(trained_llama, tmp_path / "en", "--data_language", "en"))
    fr = run_script(*oneshot_argv(trained_llama, tmp_path / "fr", "--data_language", "fr", "--structure", "2:4"))
    assert en["languages"] == ["en"] and fr["languages"] == ["fr"]
    mask_en, mask_fr = (Mask.load(tmp_path / lang / "masks" / "sparsity_50.pt") for lang in ("en", "fr"))
    assert mask_en != mask_fr and mask_fr.sparsity == 0.5
    magnitude = run_script("prune_oneshot.py", "--model_name_or_path", str(trained_llama), "--method", "magnitude",
                           "--output_dir", str(tmp_path / "magnitude"), "--calibration_seq_len", str(SEQ))
    assert magnitude["calibration"]["samples"] == 0 and magnitude["sparsity"] == 0.5


def test_offline_config(tiny_models, tmp_path, run_script):
    results = run_script("prune_oneshot.py", "configs/offline/prune_oneshot.json", "--model_name_or_path",
                         str(tiny_models / "mbert-tiny"), "--output_dir", str(tmp_path / "run"))
    assert results["method"] == "wanda" and results["calibration"] == {
        "source": "data/mlm/{lang}.train.json", "samples": 16, "seq_len": 64,
        "tokens_sha256": results["calibration"]["tokens_sha256"]}
    assert Mask.load(tmp_path / "run" / "masks" / "sparsity_50.pt").sparsity == 0.5


def test_script_prunes_the_tiny_encoders(tiny_models, tmp_path, run_script):
    for name in ("mbert-tiny", "mt5-tiny"):
        results = run_script(*oneshot_argv(tiny_models / name, tmp_path / name, "--method", "wanda",
                                           "--data_language", "en,fr"))
        mask = Mask.load(tmp_path / name / "masks" / "sparsity_50.pt")
        assert results["languages"] == ["en", "fr"] and abs(mask.sparsity - 0.5) < 1e-9
        assert all(b["sparsity"] == 0.5 for b in results["blocks"])


@pytest.mark.parametrize("extra,expected", [
    (("--method", "obd"), "--method: invalid choice: 'obd'"),
    (("--structure", "2:4", "--sparsity", "0.6"), "--structure 2:4 keeps 2 of every 4 weights, i.e. sparsity 0.5"),
    (("--structure", "4:2"), "--structure must be 'unstructured' or N:M"),
    (("--sparsity", "0"), "--sparsity must be above 0"),
    (("--calibration_seq_len", "100000"), "--calibration_seq_len 100000 exceeds the model's 128 positions"),
    (("--calibration_file", "{tmp}/short.txt"), "short.txt (en) holds 4 tokens, fewer than one sample of --calibration_seq_len 32"),
    (("--calibration_file", "{tmp}/missing_{lang}.txt"), "--calibration_file: file not found"),
    (("--eval_files", "en"), "--eval_files: 'en' is not LANG=PATH"),
    (("--calibration_samples", "0"), "--calibration_samples must be a whole number >= 1, got 0"),
    (("--calibration_batch_size", "3"), "--calibration_batch_size 3 must be >= 1 and divide --calibration_samples"),
])
def test_bad_inputs_stop_with_one_line_before_the_model_loads(trained_llama, tmp_path, run_script, capsys,
                                                                monkeypatch, extra, expected):
    import utils.oneshot.run as oneshot_run

    (tmp_path / "short.txt").write_text("Paris is big\n")
    monkeypatch.setattr(oneshot_run, "load_model", lambda *a, **k: pytest.fail("the model was loaded"))
    extra = [e.replace("{tmp}", str(tmp_path)) for e in extra]
    with pytest.raises(SystemExit) as stop:
        run_script(*oneshot_argv(trained_llama, tmp_path / "out", *extra))
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and len(err.splitlines()) == 1 and expected in err, err
    assert not (tmp_path / "out").exists()


def test_eval_files_for_an_encoder_and_nm_widths_are_refused_before_loading(tiny_models, tmp_path, run_script,
                                                                            capsys):
    with pytest.raises(SystemExit):
        run_script(*oneshot_argv(tiny_models / "mbert-tiny", tmp_path / "a", "--eval_files", "en=data/mlm/en.valid.json"))
    assert "perplexity is measured for causal language models" in capsys.readouterr().err
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(tiny_models / "mbert-tiny")
    with pytest.raises(SystemExit):
        run_script(*oneshot_argv(tiny_models / "mbert-tiny", tmp_path / "b", "--structure", "3:7",
                                 "--sparsity", str(4 / 7)))
    assert f"has {config.hidden_size} inputs, not a multiple of 7" in capsys.readouterr().err


def test_bfloat16_runs_give_nearly_the_float32_masks_and_perplexities(trained_llama, tmp_path, run_script):
    """--dtype bfloat16 (prune_oneshot.py, mask_perplexity.py): the model runs in bfloat16, the statistics and the
    mask's exact sparsity do not change, and the mask and the perplexities stay close to float32's."""
    runs = {}
    for dtype in ("float32", "bfloat16"):
        runs[dtype] = run_script(*oneshot_argv(trained_llama, tmp_path / dtype, "--dtype", dtype,
                                               "--eval_files", "en=data/mlm/en.valid.json"))
    masks = {d: Mask.load(tmp_path / d / "masks" / "sparsity_50.pt") for d in runs}
    assert masks["bfloat16"].sparsity == 0.5
    kept = sum(int((masks["float32"][n] & masks["bfloat16"][n]).sum()) for n in masks["float32"])
    either = sum(int((masks["float32"][n] | masks["bfloat16"][n]).sum()) for n in masks["float32"])
    assert 0.9 < kept / either < 1.0  # bfloat16 activations move some scores across the threshold, not many
    before = {d: r["perplexity_before"]["en"] for d, r in runs.items()}
    assert before["bfloat16"] == pytest.approx(before["float32"], rel=0.02) and before["bfloat16"] != before["float32"]
    scored = run_script("mask_perplexity.py", "--model_name_or_path", str(trained_llama), "--dtype", "bfloat16",
                        "--eval_files", "en=data/mlm/en.valid.json", "--seq_len", str(SEQ), "--output_dir",
                        str(tmp_path / "ppl"), "--masks", *(str(tmp_path / d / "masks/sparsity_50.pt") for d in runs),
                        "--labels", *runs)
    after = {row["label"]: row["perplexity"]["en"] for row in scored["masks"]}
    assert after["dense"] == pytest.approx(before["bfloat16"], rel=1e-3)  # the same windows, the same dtype
    assert after["bfloat16"] == pytest.approx(runs["bfloat16"]["perplexity_after"]["en"], rel=1e-3)


def test_training_scripts_have_no_dtype_flag(run_script, capsys):
    with pytest.raises(SystemExit):
        run_script("pretrain_trans.py", "--model_name_or_path", "x", "--output_dir", "y", "--dtype", "bfloat16")
    assert "--dtype" in capsys.readouterr().err


def test_training_loads_float32_and_float16_needs_a_gpu(trained_llama, tmp_path):
    """A bfloat16 checkpoint (prune_oneshot.py --dtype bfloat16 --save_weights) is trained in float32; the scripts
    that only run a model keep the checkpoint's dtype unless --dtype says otherwise; float16 on the CPU is refused."""
    from transformers import AutoModelForCausalLM

    from utils.infra.args import InferenceModelArguments, ModelArguments
    from utils.infra.models import load_model

    folder = tmp_path / "bf16"
    AutoModelForCausalLM.from_pretrained(trained_llama, dtype=torch.bfloat16).save_pretrained(folder)
    assert load_model(AutoModelForCausalLM, ModelArguments(str(folder))).dtype == torch.float32
    assert load_model(AutoModelForCausalLM, InferenceModelArguments(str(folder))).dtype == torch.bfloat16
    assert load_model(AutoModelForCausalLM, InferenceModelArguments(str(folder), dtype="float32")).dtype == torch.float32
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="--dtype float16 needs a GPU"):
            load_model(AutoModelForCausalLM, InferenceModelArguments(str(folder), dtype="float16"))


def test_fingerprint_names_the_window_rule_and_ignores_the_batch_size():
    from utils.infra.args import InferenceModelArguments
    from utils.oneshot.run import OneshotArguments, fingerprint_of

    model = InferenceModelArguments("m")
    one = fingerprint_of(model, OneshotArguments(output_dir="a", calibration_batch_size=1))
    eight = fingerprint_of(model, OneshotArguments(output_dir="b", calibration_batch_size=8))
    assert one == eight and one["windows"].startswith("leading special tokens")  # runs before <bos>: other settings
    assert fingerprint_of(InferenceModelArguments("m", dtype="bfloat16"), OneshotArguments(output_dir="a")) != one
