"""Convert a GGUF checkpoint once into a standard transformers folder (safetensors + tokenizer + config).

transformers dequantises a GGUF file on load (and converts its tokenizer), which takes about a minute on two CPU
cores for a 270M model; the folder written here loads in seconds. A GGUF-loaded model carries a quantisation marker
that makes `save_pretrained` refuse, so the weights are moved into a plain model built from the same config.
"""
from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from utils.infra.errors import UserError, first_line

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Conversion:
    """What `convert_gguf` wrote, and how long loading the GGUF and writing the folder took."""

    out_dir: Path
    architecture: str
    parameters: int
    load_seconds: float
    save_seconds: float


def convert_gguf(gguf_path: str | Path, out_dir: str | Path) -> Conversion:
    """Dequantise `gguf_path` into `out_dir` (float32 safetensors, tokenizer, config, generation config).

    The folder is written under a temporary name and renamed at the end, so an interrupted conversion never
    leaves a half-written `out_dir`; an existing `out_dir` is refused (the caller decides whether to replace it).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_path, out_dir = Path(gguf_path), Path(out_dir)
    if not gguf_path.is_file():
        raise UserError(f"GGUF file not found: {gguf_path}")
    if out_dir.exists():
        raise UserError(f"{out_dir} already exists: remove it to convert again")
    start = time.perf_counter()
    try:
        quantized = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
        tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    except (OSError, ValueError, KeyError) as error:
        raise UserError(f"cannot load {gguf_path} as a GGUF checkpoint: {first_line(error)}") from None
    loaded = time.perf_counter()
    model = _plain_copy(quantized)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    tmp.rename(out_dir)
    saved = time.perf_counter()
    logger.info(f"converted {gguf_path.name} into {out_dir} ({loaded - start:.0f} s to load, "
                f"{saved - loaded:.0f} s to write)")
    return Conversion(out_dir, type(model).__name__, sum(p.numel() for p in model.parameters()),
                      loaded - start, saved - loaded)


def _plain_copy(quantized):
    """The same architecture without the GGUF quantisation marker, holding the dequantised weights."""
    from transformers import AutoModelForCausalLM

    config = quantized.config
    for attribute in ("quantization_config", "_pre_quantization_dtype"):
        if hasattr(config, attribute):
            delattr(config, attribute)
    model = AutoModelForCausalLM.from_config(config)
    missing, unexpected = model.load_state_dict(quantized.state_dict(), strict=False)
    tied = set(getattr(model, "_tied_weights_keys", None) or {})
    if unexpected or set(missing) - tied:
        raise UserError(f"the GGUF weights do not fill the model: missing {sorted(missing)[:3]}, "
                        f"unexpected {sorted(unexpected)[:3]}")
    model.generation_config = quantized.generation_config
    return model.eval()
