"""Convert a GGUF checkpoint once into a standard model folder (config, safetensors, tokenizer), so later runs load it
in seconds instead of dequantizing it every time.

    python scripts/convert_gguf.py --model_name_or_path models/ --gguf_file Llama-3.2-1B-Q8_0.gguf \
        --output_dir models/llama-3.2-1b
    python LT_pretrain.py --model_name_or_path models/llama-3.2-1b ...   # or prune_oneshot.py, representation_...

transformers reads the GGUF (the `gguf` package, pinned in requirements.txt) and dequantizes every tensor; a model
loaded that way is marked quantized and refuses save_pretrained, so the weights are moved into the same
architecture built from the config (utils.infra.models.plain_model) and saved from there. The folder is written
beside its final place and renamed into it, then reloaded and compared tensor by tensor with what the GGUF held.
Quantized GGUFs (Q4_K, Q8_0, ...) come back as their dequantized values: the folder holds those, not the original
full-precision weights.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from utils.infra.args import ModelArguments, parse_args  # noqa: E402
from utils.infra.errors import UserError, exit_on_user_error  # noqa: E402


@dataclass
class ConvertArguments:
    _argument_group_name = "conversion"

    output_dir: str = field(metadata={"help": "The folder to write (must not exist, or be empty)."})


@dataclass
class Conversion:
    """What a conversion wrote and checked."""

    output_dir: str
    architecture: str
    tensors: int
    parameters: int
    load_seconds_gguf: float
    load_seconds_folder: float


def check_target(output_dir: Path) -> None:
    if output_dir.exists() and (not output_dir.is_dir() or any(output_dir.iterdir())):
        raise UserError(f"--output_dir {output_dir} exists and is not empty; pick a new folder")


def convert(model_args: ModelArguments, output_dir: Path) -> Conversion:
    """Load the GGUF, save it as a plain folder, reload the folder and check every tensor."""
    import torch
    from transformers import AutoModelForCausalLM

    from utils.infra.models import load_model, load_tokenizer

    if not model_args.gguf_file:
        raise UserError("--gguf_file is required: the GGUF file inside --model_name_or_path")
    check_target(output_dir)
    start = time.perf_counter()
    tokenizer = load_tokenizer(model_args)
    model = load_model(AutoModelForCausalLM, model_args)  # dequantized, and already a plain (savable) model
    load_gguf = time.perf_counter() - start
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.", suffix=".tmp", dir=output_dir.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        if output_dir.exists():
            output_dir.rmdir()  # empty, checked above
        os.replace(staging, output_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    start = time.perf_counter()
    reloaded = AutoModelForCausalLM.from_pretrained(output_dir, dtype=model.dtype)
    load_folder = time.perf_counter() - start
    expected, got = model.state_dict(), reloaded.state_dict()
    differing = [name for name in expected if name not in got or not torch.equal(expected[name], got[name])]
    if differing:
        raise UserError(f"{output_dir} does not reload to the GGUF's weights (e.g. {differing[0]}); it is left "
                        "there for inspection")
    return Conversion(str(output_dir), type(model).__name__, len(expected), sum(p.numel() for p in model.parameters()),
                      load_gguf, load_folder)


@exit_on_user_error
def main(argv=None) -> Conversion:
    model_args, args = parse_args((ModelArguments, ConvertArguments), argv)
    result = convert(model_args, Path(args.output_dir))
    print(f"{result.architecture}, {result.parameters:,} parameters: the GGUF loaded in {result.load_seconds_gguf:.1f} s, "
          f"the folder reloads in {result.load_seconds_folder:.1f} s with all {result.tensors} tensors equal")
    print(f"written to {result.output_dir}")
    return result


if __name__ == "__main__":
    main()
