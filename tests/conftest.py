"""Shared fixtures: tiny randomly initialised models built in-process (no files, no network)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The tiny models are far faster on one thread: two threads on two shared cores spin-wait (measured 5-80x slower).
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)


def tiny_bert_config(**overrides):
    from transformers import BertConfig

    values = dict(vocab_size=120, hidden_size=16, num_hidden_layers=3, num_attention_heads=2, intermediate_size=32,
                  max_position_embeddings=64)
    values.update(overrides)
    return BertConfig(**values)


@pytest.fixture
def bert_classifier():
    from transformers import BertForSequenceClassification

    torch.manual_seed(0)
    return BertForSequenceClassification(tiny_bert_config(num_labels=3))


@pytest.fixture
def bert_tagger():
    from transformers import BertForTokenClassification

    torch.manual_seed(0)
    return BertForTokenClassification(tiny_bert_config(num_labels=7))


@pytest.fixture
def tiny_t5():
    from transformers import MT5Config, MT5ForConditionalGeneration

    torch.manual_seed(0)
    config = MT5Config(vocab_size=100, d_model=16, d_kv=8, num_heads=2, d_ff=32, num_layers=2, num_decoder_layers=3,
                       decoder_start_token_id=0, tie_word_embeddings=False)
    return MT5ForConditionalGeneration(config)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> Path:
    """tiny_models/{mbert-tiny,mt5-tiny} built once per test session from the bundled data."""
    sys.path.insert(0, str(REPO / "scripts"))
    from build_tiny_models import build_all

    out = tmp_path_factory.mktemp("tiny_models")
    build_all(out, seed=0, force=True, data_dir=REPO / "data")
    return out


@pytest.fixture
def run_script(monkeypatch):
    """Run a top-level script's main(argv) in-process from the repo root; returns what main returns."""
    import importlib

    def run(script: str, *argv: str):
        monkeypatch.chdir(REPO)
        module = importlib.import_module(script.removesuffix(".py"))
        return module.main(list(argv))

    return run
