"""Decoder model families as data: where a family's weight matrices sit and what each one does.

Generic code (utils.core.masks: `layer_of`, `matrix_type`, `stack_of`; utils.analysis.head_similarity) asks this
table and never names an architecture. A family is one `Family` row: a regular expression for the repeated block
(its index is group 1) and one `Role` per projection matrix in the block, keyed by the name after the index.
Supporting a new decoder whose names are not here is one new row (an unknown decoder still prunes: its matrices
are found by `utils.core.pruning.prunable_weights`; only their names in the tables fall back to the raw suffix).

Storage: nn.Linear keeps its weight as (out, in); GPT-2's `Conv1D` as (in, out). `Role.out_axis` says which axis
indexes the outputs (0 for Linear, 1 for Conv1D), so "one output row" in per-output pruning (Wanda's comparison
group) is `weight.select(out_axis, i)`: a row of a Linear, a COLUMN of a Conv1D weight. A mask has the weight's own
shape, so a Conv1D mask is (in, out) too.

Heads: `Role.heads` says how the axis that indexes heads splits:
- "q": H query heads (q_proj rows); "o": H heads along the input axis (o_proj columns);
- "kv": num_key_value_heads heads (k_proj/v_proj rows; grouped-query attention has fewer than H, each shared by
  H / num_key_value_heads consecutive query heads);
- "qkv": fused q|k|v, contiguous (GPT-2's c_attn, Phi-3's qkv_proj): H, then KV, then KV head slices;
- "qkv_interleaved": fused per head [q, k, v] (BLOOM's and GPT-NeoX's query_key_value): H slices of 3 head rows
  (Falcon names its blocks as BLOOM does but stores a single key/value head contiguously: not in the table);
- None: a feed-forward matrix (one FFN unit per layer).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional


@dataclass(frozen=True)
class Role:
    """What one projection matrix of a block does."""

    type: str  # the matrix type in per-matrix-type tables: q, k, v, o, qkv, gate, up, gate_up, down
    unit: str  # "attention" or "ffn"
    heads: Optional[str] = None  # how its head axis splits (see the module docstring); None for FFN matrices
    out_axis: int = 0  # 0: nn.Linear (out, in); 1: Conv1D (in, out)

    @property
    def head_axis(self) -> int:
        """The axis that indexes heads (attention) or neurons (FFN) in the stored weight."""
        reads_heads = self.heads == "o" or self.type == "down"  # they read heads / neurons on their input axis
        return 1 - self.out_axis if reads_heads else self.out_axis


@dataclass(frozen=True)
class Family:
    """One naming scheme of decoder blocks; `block` matches a parameter name up to the block index (group 1)."""

    name: str
    block: str
    roles: tuple[tuple[str, Role], ...]  # (name inside the block without '.weight', role)
    stack: str = "decoder"


def _linear(type_: str, unit: str, heads: Optional[str] = None) -> Role:
    return Role(type_, unit, heads, 0)


def _conv1d(type_: str, unit: str, heads: Optional[str] = None) -> Role:
    return Role(type_, unit, heads, 1)


_LLAMA_ROLES = (
    ("self_attn.q_proj", _linear("q", "attention", "q")),
    ("self_attn.k_proj", _linear("k", "attention", "kv")),
    ("self_attn.v_proj", _linear("v", "attention", "kv")),
    ("self_attn.o_proj", _linear("o", "attention", "o")),
    ("self_attn.qkv_proj", _linear("qkv", "attention", "qkv")),  # Phi-3
    ("mlp.gate_proj", _linear("gate", "ffn")),
    ("mlp.up_proj", _linear("up", "ffn")),
    ("mlp.gate_up_proj", _linear("gate_up", "ffn")),  # Phi-3
    ("mlp.down_proj", _linear("down", "ffn")),
    ("self_attn.out_proj", _linear("o", "attention", "o")),  # XGLM, OPT
    ("fc1", _linear("up", "ffn")),  # XGLM, OPT
    ("fc2", _linear("down", "ffn")),
)

FAMILIES: tuple[Family, ...] = (
    # Llama, Mistral, Qwen2/2.5/3, Gemma/Gemma 2/Gemma 3 (text and the language model of the multimodal one),
    # Phi-3, Aya (Cohere), XGLM and OPT: `...layers.<i>.self_attn.q_proj`.
    Family("llama", r"^(?:.*\.)?layers\.(\d+)\.", _LLAMA_ROLES),
    # GPT-2: Conv1D, weights stored (in, out).
    Family("gpt2", r"^(?:.*\.)?h\.(\d+)\.", (
        ("attn.c_attn", _conv1d("qkv", "attention", "qkv")),
        ("attn.c_proj", _conv1d("o", "attention", "o")),
        ("mlp.c_fc", _conv1d("up", "ffn")),
        ("mlp.c_proj", _conv1d("down", "ffn")),
        # BLOOM (same block naming): fused query_key_value, per head [q, k, v]
        ("self_attention.query_key_value", _linear("qkv", "attention", "qkv_interleaved")),
        ("self_attention.dense", _linear("o", "attention", "o")),
        ("mlp.dense_h_to_4h", _linear("up", "ffn")),
        ("mlp.dense_4h_to_h", _linear("down", "ffn")),
    )),
    # GPT-NeoX / Pythia
    Family("gpt_neox", r"^(?:.*\.)?gpt_neox\.layers\.(\d+)\.", (
        ("attention.query_key_value", _linear("qkv", "attention", "qkv_interleaved")),
        ("attention.dense", _linear("o", "attention", "o")),
        ("mlp.dense_h_to_4h", _linear("up", "ffn")),
        ("mlp.dense_4h_to_h", _linear("down", "ffn")),
    )),
)


@dataclass(frozen=True)
class Placement:
    """Where a decoder weight sits: its family, block index and role."""

    family: str
    stack: str
    layer: int
    role: Role


@lru_cache(maxsize=None)
def _compiled() -> tuple[tuple[Family, re.Pattern, dict[str, Role]], ...]:
    return tuple((f, re.compile(f.block), dict(f.roles)) for f in FAMILIES)


def placement(name: str) -> Optional[Placement]:
    """The family, block and role of a decoder weight named `name`; None for anything the table does not know
    (BERT's and T5's weights, biases, norms, embeddings)."""
    if not name.endswith(".weight"):
        return None
    for family, block, roles in _compiled():
        match = block.match(name)
        if match:
            role = roles.get(name[match.end():].removesuffix(".weight"))
            if role is not None:
                return Placement(family.name, family.stack, int(match.group(1)), role)
    return None


def output_axis(name: str) -> int:
    """The axis of weight `name` that indexes its outputs: 1 for GPT-2's Conv1D matrices, else 0 (nn.Linear, BERT,
    T5, and decoders not in the table, whose projections are nn.Linear)."""
    found = placement(name)
    return found.role.out_axis if found else 0
