"""Sequential block-by-block calibration, as the Wanda and SparseGPT reference implementations do it.

The repeated blocks are those that hold the prunable weights (`utils.core.pruning.prunable_weights`), grouped by
the ModuleList they sit in (a decoder's `model.layers`; T5's encoder then decoder stack). For each stack, the
inputs of its first block are captured with a hook that stops the forward pass there, together with every
argument the model passes the block (attention mask, position embeddings, encoder states...). Then block by
block: run it on the current inputs while hooks gather each matrix's input statistics, prune it, and run it again
so that its pruned outputs become the next block's inputs. Only one block's inputs and outputs are held.

Arguments that differ between blocks of a stack (T5 hands the position bias block 0 computed to the next blocks)
are read from one probe pass over the first sample and given to each block.

With `offload`, the model stays on the CPU except for what lies outside the blocks (embeddings, final norm, head);
each block goes to the device only while it runs.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import torch
from torch import nn
from transformers.pytorch_utils import Conv1D

from utils.core.pruning import prunable_weights
from utils.infra.errors import UserError

TRANSPOSED_LAYERS = (Conv1D,)  # layer types that store their weight as (inputs, outputs)


@dataclass
class Block:
    name: str  # model.layers.3
    module: nn.Module
    weights: "OrderedDict[str, str]" = field(default_factory=OrderedDict)  # parameter name -> its module's name


def find_blocks(model: nn.Module) -> tuple["OrderedDict[str, list[Block]]", list[str]]:
    """The prunable weights grouped by block and the blocks by stack (in the model's order), and the prunable
    weights outside every block (BERT's pooler), which one-shot pruning leaves dense."""
    stacks: "OrderedDict[str, OrderedDict[str, Block]]" = OrderedDict()
    outside: list[str] = []
    for name in prunable_weights(model):
        parts = name.split(".")
        cut = next((i for i in range(1, len(parts)) if parts[i].isdigit()
                    and isinstance(model.get_submodule(".".join(parts[:i])), nn.ModuleList)), None)
        if cut is None:
            outside.append(name)
            continue
        stack, block = ".".join(parts[:cut]), ".".join(parts[:cut + 1])
        blocks = stacks.setdefault(stack, OrderedDict())
        if block not in blocks:
            blocks[block] = Block(block, model.get_submodule(block))
        blocks[block].weights[name] = name.rsplit(".", 1)[0]
    if not stacks:
        raise UserError(f"{type(model).__name__} has no repeated blocks of prunable weights: one-shot pruning "
                        "calibrates block by block")
    return OrderedDict((s, list(b.values())) for s, b in stacks.items()), outside


def layer_inputs(model: nn.Module, block: Block) -> dict[str, tuple[nn.Module, bool]]:
    """parameter name -> (its module, whether the weight is stored transposed)."""
    found = {}
    for name, module_name in block.weights.items():
        module = model.get_submodule(module_name)
        found[name] = (module, isinstance(module, TRANSPOSED_LAYERS))
    return found


# ---------------------------------------------------------------------------------------------------------------
# What each block is called with
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Call:
    """One sample's call of a block: the hidden states and the other arguments the model gave the block (the
    hidden states are its first positional argument, or its keyword `hidden_states`)."""

    hidden: torch.Tensor
    args: tuple
    kwargs: dict[str, Any]
    by_keyword: bool = False

    @classmethod
    def of(cls, args: tuple, kwargs: dict[str, Any]) -> "Call":
        if args:
            return cls(args[0], tuple(args[1:]), dict(kwargs))
        if "hidden_states" not in kwargs:
            raise UserError("a block was called without positional arguments or hidden_states: cannot tell which "
                            "argument carries the hidden states")
        rest = {k: v for k, v in kwargs.items() if k != "hidden_states"}
        return cls(kwargs["hidden_states"], (), rest, by_keyword=True)


class _Captured(Exception):
    pass


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.shape == b.shape and a.dtype == b.dtype and a.device == b.device and torch.equal(a, b)
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and not isinstance(a, torch.Tensor) and a == b


def _share(value: Any, first: Any) -> Any:
    """`first` (an earlier sample's argument) when equal, so equal arguments of many samples are stored once."""
    return first if _same(value, first) else value


@torch.no_grad()
def capture_calls(model: nn.Module, first_block: nn.Module, samples: Iterable[dict[str, torch.Tensor]]) -> list[Call]:
    """Run the model on each sample up to `first_block` and keep what that block is called with."""
    calls: list[Call] = []

    def hook(_module, args, kwargs):
        call = Call.of(args, kwargs)
        if calls:
            call.args = tuple(_share(a, b) for a, b in zip(call.args, calls[0].args))
            call.kwargs = {k: _share(v, calls[0].kwargs.get(k)) for k, v in call.kwargs.items()}
        calls.append(call)
        raise _Captured

    handle = first_block.register_forward_pre_hook(hook, with_kwargs=True, prepend=True)
    try:
        for inputs in samples:
            try:
                model(**inputs)
            except _Captured:
                continue
            raise UserError(f"the model never called its block {type(first_block).__name__} in a forward pass")
    finally:
        handle.remove()
    return calls


@dataclass
class Overrides:
    """Arguments of one block that differ from those of the stack's first block (positions and keywords)."""

    args: dict[int, Any] = field(default_factory=dict)
    kwargs: dict[str, Any] = field(default_factory=dict)

    def apply(self, call: Call) -> tuple[tuple, dict[str, Any]]:
        args = list(call.args)
        for index, value in self.args.items():
            args[index] = value
        return tuple(args), {**call.kwargs, **self.kwargs}


@torch.no_grad()
def probe_overrides(model: nn.Module, blocks: Sequence[Block], sample: dict[str, torch.Tensor]) -> list[Overrides]:
    """One full forward pass on one sample, recording every block's arguments; each block's differences from the
    first block's (T5's shared position bias) are given to it in the sequential pass."""
    seen: list[tuple[tuple, dict]] = []

    def record(_module, args, kwargs) -> None:
        call = Call.of(args, kwargs)
        seen.append((call.args, call.kwargs))

    def stop(_module, _args, _output) -> None:
        raise _Captured  # the last block's arguments are known: skip what follows it (a 262k-word output layer)

    handles = [b.module.register_forward_pre_hook(record, with_kwargs=True) for b in blocks]
    handles.append(blocks[-1].module.register_forward_hook(stop))
    try:
        model(**sample)
    except _Captured:
        pass
    finally:
        for handle in handles:
            handle.remove()
    if len(seen) != len(blocks):
        raise UserError(f"the model called {len(seen)} of its {len(blocks)} blocks once each: cannot calibrate "
                        "them one after another")
    first_args, first_kwargs = seen[0]
    result = []
    for args, kwargs in seen:
        changed = Overrides({i: a for i, (a, b) in enumerate(zip(args, first_args)) if not _same(a, b)},
                            {k: v for k, v in kwargs.items() if not _same(v, first_kwargs.get(k))})
        result.append(changed)
    return result


def block_output(output: Any) -> torch.Tensor:
    """The hidden states a block returns (a tensor, or the first entry of a tuple)."""
    return output[0] if isinstance(output, (tuple, list)) else output


@torch.no_grad()
def run_block(block: nn.Module, calls: Sequence[Call], overrides: Overrides, replace: bool = True) -> None:
    """Run the block on every sample; with `replace`, its outputs become the samples' hidden states (in turn, so
    that one set of activations is held)."""
    for call in calls:
        args, kwargs = overrides.apply(call)
        if call.by_keyword:
            output = block_output(block(*args, hidden_states=call.hidden, **kwargs))
        else:
            output = block_output(block(call.hidden, *args, **kwargs))
        if replace:
            call.hidden = output


# ---------------------------------------------------------------------------------------------------------------
# Where the weights live
# ---------------------------------------------------------------------------------------------------------------


def place_model(model: nn.Module, blocks: Sequence[Block], device: torch.device, offload: bool) -> None:
    """Everything on `device`, or with offload everything but the blocks (which stay on the CPU)."""
    if not offload:
        model.to(device)
        return
    inside = {id(t) for b in blocks for t in [*b.module.parameters(), *b.module.buffers()]}
    for module in model.modules():
        for store in (module._parameters, module._buffers):
            for key, tensor in store.items():
                if tensor is not None and id(tensor) not in inside:
                    tensor.data = tensor.data.to(device)


class OffloadHooks:
    """While active, each block moves to the device when called and back to the CPU after (offload only)."""

    def __init__(self, blocks: Sequence[Block], device: torch.device, offload: bool) -> None:
        self.blocks, self.device, self.offload = blocks, device, offload
        self.handles: list = []

    def __enter__(self) -> "OffloadHooks":
        if self.offload:
            for block in self.blocks:
                self.handles.append(block.module.register_forward_pre_hook(self._arrive))
                self.handles.append(block.module.register_forward_hook(self._leave))
        return self

    def _arrive(self, module: nn.Module, _args) -> None:
        module.to(self.device)

    def _leave(self, module: nn.Module, _args, _output) -> None:
        module.to("cpu")

    def __exit__(self, *_exc) -> None:
        for handle in self.handles:
            handle.remove()
        if self.offload:
            for block in self.blocks:
                block.module.to("cpu")


def input_hooks(layers: dict[str, tuple[nn.Module, bool]], sink: Callable[[str, torch.Tensor], None]) -> list:
    """Forward hooks that hand each matrix's input to sink(parameter name, input)."""
    def hook_for(name: str):
        def hook(_module, args, _output) -> None:
            sink(name, args[0])

        return hook

    return [module.register_forward_hook(hook_for(name)) for name, (module, _transposed) in layers.items()]
