"""Loading tokenizers and models, pre-trained or randomly initialised, with errors a user can act on."""
from __future__ import annotations

import logging
import os
from typing import Any, Optional

import torch

from transformers import AutoConfig, AutoTokenizer, set_seed
from transformers.utils import logging as hf_logging

from utils.infra.args import InferenceModelArguments, ModelArguments
from utils.infra.errors import UserError, first_line

logger = logging.getLogger(__name__)


def check_local(name: str, what: str) -> None:
    """A path-like name that does not exist is a missing folder, not a malformed hub id ('org/name')."""
    looks_local = os.path.isabs(name) or name.startswith(("./", "../", "~")) or name.count("/") > 1
    if looks_local and not os.path.exists(os.path.expanduser(name)):
        raise UserError(f"{what} not found: {name} (no such folder)")


def gguf_kwargs(model_args: ModelArguments) -> dict[str, str]:
    """{'gguf_file': name} for a GGUF checkpoint (a file inside --model_name_or_path), checked when that is local."""
    if not model_args.gguf_file:
        return {}
    folder = os.path.expanduser(model_args.model_name_or_path)
    if os.path.isdir(folder) and not os.path.isfile(os.path.join(folder, model_args.gguf_file)):
        raise UserError(f"GGUF file not found: {os.path.join(folder, model_args.gguf_file)}")
    return {"gguf_file": model_args.gguf_file}


def load_tokenizer(model_args: ModelArguments, **kwargs: Any):
    name = model_args.tokenizer_name or model_args.model_name_or_path
    check_local(name, "tokenizer")
    if not model_args.tokenizer_name:
        kwargs.update(gguf_kwargs(model_args))  # the GGUF holds the tokenizer too
    try:
        return AutoTokenizer.from_pretrained(
            name, cache_dir=model_args.cache_dir, trust_remote_code=model_args.trust_remote_code, **kwargs
        )
    except (OSError, ValueError) as error:
        raise UserError(f"cannot load tokenizer '{name}': {first_line(error)}") from None


def load_config(model_args: ModelArguments, **config_kwargs: Any):
    """The model's config (--config_name, else the checkpoint's, a GGUF's included)."""
    name = model_args.config_name or model_args.model_name_or_path
    check_local(name, "model")
    if not model_args.config_name:
        config_kwargs.update(gguf_kwargs(model_args))
    try:
        return AutoConfig.from_pretrained(
            name, cache_dir=model_args.cache_dir, trust_remote_code=model_args.trust_remote_code, **config_kwargs
        )
    except (OSError, ValueError) as error:
        raise UserError(f"cannot load model '{name}': {first_line(error)}") from None


def load_dtype(model_args: ModelArguments) -> Optional[torch.dtype]:
    """--dtype for the scripts that only run a model (None: the checkpoint's); float32 for training, so a bfloat16
    checkpoint (a pruned model saved by prune_oneshot.py --dtype bfloat16) is not trained in pure bfloat16."""
    if not isinstance(model_args, InferenceModelArguments):
        return torch.float32
    if model_args.dtype == "float16" and not torch.cuda.is_available():
        raise UserError("--dtype float16 needs a GPU: on the CPU it is slow and overflows in models such as Gemma; "
                        "use --dtype bfloat16")
    return getattr(torch, model_args.dtype) if model_args.dtype else None


def load_model(auto_class, model_args: ModelArguments, weight_init: str = "pre", seed: int = 42, **config_kwargs: Any):
    """`weight_init='pre'`: the checkpoint's weights (a GGUF's dequantized, with --gguf_file); 'rand': the same
    architecture with seeded random weights.

    The seed is set first, so newly created heads (and random bodies) are reproducible.
    """
    config = load_config(model_args, **config_kwargs)
    dtype = load_dtype(model_args)
    try:
        set_seed(seed)
        if weight_init == "rand":
            model = auto_class.from_config(config, trust_remote_code=model_args.trust_remote_code)
            return model.to(dtype) if dtype else model
        if weight_init != "pre":
            raise UserError(f"--weight_init must be 'pre' or 'rand', got {weight_init!r}")
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # replace v5's per-key load table by one line below
        hf_logging.disable_progress_bar()
        try:
            model, info = auto_class.from_pretrained(
                model_args.model_name_or_path,
                config=config,
                cache_dir=model_args.cache_dir,
                trust_remote_code=model_args.trust_remote_code,
                output_loading_info=True,
                **({"dtype": dtype} if dtype else {}),
                **gguf_kwargs(model_args),
            )
        finally:
            hf_logging.set_verbosity(verbosity)
            hf_logging.enable_progress_bar()
        if info.get("missing_keys") and os.environ.get("RANK", "0") == "0":  # once, not once per DDP rank
            logger.info(f"newly initialised (not in the checkpoint): {', '.join(sorted(info['missing_keys']))}")
        return plain_model(model, auto_class) if model_args.gguf_file else model
    except (OSError, ValueError) as error:
        raise UserError(f"cannot load model '{model_args.model_name_or_path}': {first_line(error)}") from None


def is_causal_lm(config) -> bool:
    """A decoder-only language model: transformers knows the architecture as a causal LM and not as a masked LM
    (BERT is both: it can run as a decoder) nor as an encoder-decoder."""
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES, MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    model_type = getattr(config, "model_type", None)
    return (model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES
            and not getattr(config, "is_encoder_decoder", False))


def plain_model(model, auto_class):
    """The same weights in a model transformers does not mark as quantized.

    A model loaded from GGUF is dequantized, but transformers keeps its GGUF quantizer and refuses save_pretrained.
    This builds the architecture afresh from the config (without the quantization entry) and loads the dequantized
    state dict into it, so it saves, and reloads, as any checkpoint (scripts/convert_gguf.py)."""
    import copy

    config = copy.deepcopy(model.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = auto_class.from_config(config, dtype=next(model.parameters()).dtype)
    missing, unexpected = plain.load_state_dict(model.state_dict(), strict=False)
    tied = {name for name, _ in _tied_names(plain)}
    if unexpected or set(missing) - tied:
        raise UserError(f"the dequantized weights do not fit {type(plain).__name__}: "
                        f"missing {sorted(set(missing) - tied)[:3]}, unexpected {sorted(unexpected)[:3]}")
    plain.tie_weights()
    plain.generation_config = model.generation_config  # a GGUF's sampling defaults (Gemma's), kept
    return plain


def _tied_names(model):
    """(name, parameter) of state-dict entries that share storage with an earlier entry (a tied output layer)."""
    seen: set[int] = set()
    for name, tensor in model.state_dict(keep_vars=True).items():
        if tensor.data_ptr() in seen:
            yield name, tensor
        seen.add(tensor.data_ptr())


def check_room_for_text(tokenizer, length: int, flag: str, pair: bool = False) -> None:
    """Stop when a length leaves no room for text beside the tokenizer's special tokens ([CLS] ... [SEP])."""
    specials = tokenizer.num_special_tokens_to_add(pair=pair)
    needed = specials + (2 if pair else 1)
    if length < needed:
        text = "one token of each sentence" if pair else "one token of text"
        raise UserError(f"{flag} must be at least {needed} for this tokenizer ({specials} special tokens + {text}), "
                        f"got {length}")


def check_input_length(model, length: int, flag: str) -> None:
    """Stop before training when inputs would be longer than the model's position embeddings."""
    limit = max_positions(model)
    if limit is not None and length > limit:
        raise UserError(f"{flag} {length} exceeds the model's {limit} positions")


def max_positions(model) -> int | None:
    """The longest input the model's position embeddings allow (None: relative positions, no hard limit)."""
    return getattr(model.config, "max_position_embeddings", None)


def head_state_names(model) -> list[str]:
    """State-dict entries outside the pre-trained body: what `--rewind_scope body` lets keep training.

    The body is the submodule under `base_model_prefix` (`bert.*`, pooler included, as the original rewound); a
    model without one (mT5) counts everything but an untied output layer (`lm_head`) as body. Entries that share
    storage with the body (MLM's decoder tied to the word embeddings) are body.
    """
    state = model.state_dict()
    prefix = getattr(model, "base_model_prefix", "")
    if prefix and isinstance(getattr(model, prefix, None), torch.nn.Module):
        outside = [name for name in state if not name.startswith(prefix + ".")]
    else:
        output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
        names = [name for name, module in model.named_modules() if output is not None and module is output]
        outside = [key for key in state if names and key.startswith(names[0] + ".")]
    body_storage = {state[name].data_ptr() for name in state if name not in outside}
    return [name for name in outside if state[name].data_ptr() not in body_storage]
