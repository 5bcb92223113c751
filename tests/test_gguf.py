"""GGUF checkpoints offline: a tiny Llama written with the `gguf` package's writer (F32 attention, Q8_0-quantized
feed-forward matrices, a byte-level tokenizer), loaded with --gguf_file by the scripts and converted once into a
plain folder by scripts/convert_gguf.py."""
from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

from tests.conftest import REPO
from utils.infra.args import ModelArguments
from utils.infra.models import load_model, load_tokenizer

sys.path.insert(0, str(REPO / "scripts"))
HEADS, KV_HEADS, LAYERS = 4, 2, 2
QUANTIZED = ("ffn_gate", "ffn_up", "ffn_down")  # written as Q8_0: they come back dequantized


def llama_cpp_permute(weight: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp stores q/k rows of each head with the two rotary halves interleaved; transformers undoes it."""
    return weight.reshape(heads, 2, weight.shape[0] // heads // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(
        weight.shape)


def write_tiny_gguf(path, tokenizer) -> dict[str, torch.Tensor]:
    """A seeded tiny Llama (grouped-query attention) as GGUF; returns the weights transformers must read back."""
    import gguf

    torch.manual_seed(0)
    eos = tokenizer.eos_token_id
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=LAYERS,
                         num_attention_heads=HEADS, num_key_value_heads=KV_HEADS, max_position_embeddings=128,
                         rms_norm_eps=1e-6, bos_token_id=eos, eos_token_id=eos, tie_word_embeddings=False)
    model = LlamaForCausalLM(config)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny-llama")
    writer.add_context_length(128)
    writer.add_embedding_length(64)
    writer.add_block_count(LAYERS)
    writer.add_feed_forward_length(128)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_vocab_size(len(tokenizer))
    vocab = [token for token, _ in sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])]
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(vocab)
    writer.add_token_types([3 if i == eos else 1 for i in range(len(vocab))])  # 3: control
    writer.add_token_scores([0.0] * len(vocab))
    writer.add_eos_token_id(eos)
    writer.add_bos_token_id(eos)
    writer.add_pad_token_id(eos)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, LAYERS)
    expected = {}
    for name, tensor in model.state_dict().items():
        data = tensor.numpy().astype(np.float32)
        target = names.get_name(name, try_suffixes=(".weight", ".bias"))
        expected[name] = tensor.clone()
        if name.endswith(("q_proj.weight", "k_proj.weight")):
            data = llama_cpp_permute(data, HEADS if "q_proj" in name else KV_HEADS)
        if any(part in target for part in QUANTIZED):
            packed = gguf.quants.quantize(data, gguf.GGMLQuantizationType.Q8_0)
            writer.add_tensor(target, packed, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
            expected[name] = torch.from_numpy(gguf.quants.dequantize(packed, gguf.GGMLQuantizationType.Q8_0).copy())
        else:
            writer.add_tensor(target, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return expected


@pytest.fixture(scope="module")
def tiny_gguf(tiny_models, tmp_path_factory):
    folder = tmp_path_factory.mktemp("gguf")
    tokenizer = AutoTokenizer.from_pretrained(tiny_models / "qwen2-tiny")  # byte level: GGUF's 'gpt2' model
    expected = write_tiny_gguf(folder / "tiny-llama-q8.gguf", tokenizer)
    return folder, "tiny-llama-q8.gguf", expected


def test_gguf_loads_dequantized_and_savable(tiny_gguf, tmp_path):
    folder, name, expected = tiny_gguf
    args = ModelArguments(str(folder), gguf_file=name)
    model = load_model(AutoModelForCausalLM, args)
    state = model.state_dict()
    assert set(state) == set(expected)
    for key, tensor in expected.items():
        assert torch.equal(state[key], tensor), key
    model.save_pretrained(tmp_path / "saved")  # a GGUF-marked model would refuse this
    tokenizer = load_tokenizer(args)
    assert tokenizer.decode(tokenizer("Marie née à Varsovie")["input_ids"]) == "Marie née à Varsovie"


def test_convert_gguf_writes_a_folder_that_reloads_the_same(tiny_gguf, tmp_path, capsys):
    from convert_gguf import main

    folder, name, expected = tiny_gguf
    out = tmp_path / "llama-from-gguf"
    result = main(["--model_name_or_path", str(folder), "--gguf_file", name, "--output_dir", str(out)])
    assert result.tensors == len(expected) and result.architecture == "LlamaForCausalLM"
    assert "written to" in capsys.readouterr().out
    assert {p.name for p in out.iterdir()} >= {"config.json", "model.safetensors", "tokenizer.json"}
    reloaded = AutoModelForCausalLM.from_pretrained(out)
    assert getattr(reloaded.config, "quantization_config", None) is None
    for key, tensor in expected.items():
        assert torch.equal(reloaded.state_dict()[key], tensor), key
    text = "Les enfants jouent au football."
    from_gguf = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    assert AutoTokenizer.from_pretrained(out)(text)["input_ids"] == from_gguf(text)["input_ids"]
    with pytest.raises(SystemExit):  # never over an existing folder
        main(["--model_name_or_path", str(folder), "--gguf_file", name, "--output_dir", str(out)])
    assert "exists and is not empty" in capsys.readouterr().err


def test_gguf_runs_a_causal_lm_script(tiny_gguf, run_script, tmp_path):
    folder, name, _ = tiny_gguf
    results = run_script("pretrain_trans.py", "--model_name_or_path", str(folder), "--gguf_file", name,
                         "--output_dir", str(tmp_path / "ft"), "--train_file", "data/mlm/en.train.json",
                         "--validation_file", "data/mlm/en.valid.json", "--do_train", "--do_eval",
                         "--block_size", "32", "--max_train_samples", "16", "--max_eval_samples", "4",
                         "--pruning_type", "oneshot", "--sparsity", "0.5", "--max_steps", "1", "--save_model",
                         "--report_to", "none")
    assert results["task"] == "clm" and results["sparsity"] == pytest.approx(0.5, abs=1e-4)
    assert (tmp_path / "ft" / "model" / "model.safetensors").is_file()


def test_missing_gguf_file_stops_with_one_line(tiny_gguf, tmp_path, capsys):
    from convert_gguf import main

    folder, _, _ = tiny_gguf
    with pytest.raises(SystemExit) as stop:
        main(["--model_name_or_path", str(folder), "--gguf_file", "nope.gguf", "--output_dir", str(tmp_path / "x")])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: GGUF file not found: {folder / 'nope.gguf'}"
    assert not (tmp_path / "x").exists()
