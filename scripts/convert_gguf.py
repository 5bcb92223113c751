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

import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from utils.infra.args import ModelArguments, parse_args  # noqa: E402
from utils.infra.errors import UserError, exit_on_user_error  # noqa: E402
from utils.infra.gguf import Conversion, convert_gguf  # noqa: E402


@dataclass
class ConvertArguments:
    _argument_group_name = "conversion"

    output_dir: str = field(metadata={"help": "The folder to write (must not exist, or be empty)."})


@exit_on_user_error
def main(argv=None) -> Conversion:
    model_args, args = parse_args((ModelArguments, ConvertArguments), argv)
    if not model_args.gguf_file:
        raise UserError("--gguf_file is required: the GGUF file inside --model_name_or_path")
    result = convert_gguf(Path(model_args.model_name_or_path) / model_args.gguf_file, Path(args.output_dir))
    print(f"{result.architecture}, {result.parameters:,} parameters: the GGUF loaded in {result.load_seconds:.1f} s, "
          f"the folder reloads in {result.reload_seconds:.1f} s with all {result.tensors} tensors equal")
    print(f"written to {result.out_dir}")
    return result


if __name__ == "__main__":
    main()
