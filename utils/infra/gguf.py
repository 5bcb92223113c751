"""Convert a GGUF checkpoint once into a standard transformers folder (safetensors + tokenizer + config).

transformers dequantises a GGUF file on load (and converts its tokenizer), which takes about a minute on two CPU
cores for a 270M model; the folder written here loads in seconds. A GGUF-loaded model carries a quantisation marker
that makes `save_pretrained` refuse, so `utils.infra.models.load_model` moves the weights into a plain model built
from the same config (`plain_model`). Quantized GGUFs (Q4_K, Q8_0, ...) come back as their dequantized values.
Used by scripts/convert_gguf.py and scripts/setup_real_model.py.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from utils.infra.errors import UserError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Conversion:
    """What `convert_gguf` wrote and checked, and how long each step took."""

    out_dir: Path
    architecture: str
    tensors: int
    parameters: int
    load_seconds: float  # reading and dequantising the GGUF (tokenizer included)
    save_seconds: float
    reload_seconds: float  # loading the written folder back


def convert_gguf(gguf_path: str | Path, out_dir: str | Path) -> Conversion:
    """Dequantise `gguf_path` into `out_dir`, which must not exist or be empty.

    The folder is written beside its final place and renamed into it, so an interrupted conversion never leaves a
    half-written `out_dir`; then it is reloaded and compared tensor by tensor with what the GGUF held.
    """
    import torch
    from transformers import AutoModelForCausalLM

    from utils.infra.args import ModelArguments
    from utils.infra.models import load_model, load_tokenizer

    gguf_path, out_dir = Path(gguf_path), Path(out_dir)
    if not gguf_path.is_file():
        raise UserError(f"GGUF file not found: {gguf_path}")
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise UserError(f"{out_dir} exists and is not empty; pick a new folder (or remove it to convert again)")
    model_args = ModelArguments(model_name_or_path=str(gguf_path.parent), gguf_file=gguf_path.name)
    start = time.perf_counter()
    tokenizer = load_tokenizer(model_args)
    model = load_model(AutoModelForCausalLM, model_args)  # dequantized, and already a plain (savable) model
    loaded = time.perf_counter()
    _write_into_place(out_dir, lambda folder: (model.save_pretrained(folder), tokenizer.save_pretrained(folder)))
    saved = time.perf_counter()
    reloaded = AutoModelForCausalLM.from_pretrained(out_dir, dtype=model.dtype)
    reload_seconds = time.perf_counter() - saved
    expected, got = model.state_dict(), reloaded.state_dict()
    differing = [name for name in expected if name not in got or not torch.equal(expected[name], got[name])]
    if differing:
        raise UserError(f"{out_dir} does not reload to the GGUF's weights (e.g. {differing[0]}); it is left there "
                        "for inspection")
    logger.info(f"converted {gguf_path.name} into {out_dir} ({loaded - start:.0f} s to load, "
                f"{saved - loaded:.0f} s to write)")
    return Conversion(out_dir, type(model).__name__, len(expected), sum(p.numel() for p in model.parameters()),
                      loaded - start, saved - loaded, reload_seconds)


def _write_into_place(out_dir: Path, write) -> None:
    """`write(folder)` into a staging folder beside `out_dir`, then rename it to `out_dir` (an empty one replaced)."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        write(staging)
        if out_dir.exists():
            out_dir.rmdir()  # empty, checked by the caller
        os.replace(staging, out_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
