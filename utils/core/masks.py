"""Masks over a model's prunable weights: naming, validation, sparsity bookkeeping, and the `.pt` file formats.

A mask maps a parameter name (`bert.encoder.layer.0.attention.self.query.weight`) to a bool tensor of the same
shape; True means the weight is kept. On disk the keys carry a `_mask` suffix, as the original code wrote them.
"""
from __future__ import annotations

import math
import pickle
import re
import sys
from collections import OrderedDict
from pathlib import Path
from collections.abc import Iterable, Iterator, Mapping

import numpy as np
import torch

from utils.core.families import placement
from utils.infra.errors import UserError, first_line
from utils.infra.io import read_json, save_tensors, sha256_file, write_json

MASK_SUFFIX = "_mask"
PACKED_FORMAT = "packed-bits-v1"


# ---------------------------------------------------------------------------------------------------------------
# Where a weight sits in the network (used for per-layer statistics and per-stack pruning)
# ---------------------------------------------------------------------------------------------------------------

_BERT_MATRIX_TYPES = (
    ("attention.self.query", "query"),
    ("attention.self.key", "key"),
    ("attention.self.value", "value"),
    ("attention.output.dense", "attention_output"),
    ("intermediate.dense", "intermediate"),
    ("output.dense", "output"),
)
_T5_SUBLAYERS = {"SelfAttention": "self_attn", "EncDecAttention": "cross_attn", "DenseReluDense": "ffn"}


def stack_of(name: str) -> str:
    """'decoder' for weights of an encoder-decoder's decoder or of a decoder-only LM (utils.core.families), else
    'encoder' (BERT's pooler counts as encoder)."""
    found = placement(name)
    if found:
        return found.stack
    return "decoder" if name.startswith("decoder.") or ".decoder." in name else "encoder"


def layer_of(name: str) -> str:
    """'encoder.3', 'decoder.0' or 'pooler': the transformer layer a weight belongs to."""
    found = placement(name)
    if found:
        return f"{found.stack}.{found.layer}"
    parts = name.split(".")
    if "pooler" in parts:
        return "pooler"
    stack = stack_of(name)
    start = parts.index(stack) + 1 if stack in parts else 0
    for part in parts[start:]:
        if part.isdigit():
            return f"{stack}.{part}"
    return stack


def matrix_type(name: str) -> str:
    """The role of a weight matrix: 'query', 'intermediate', 'pooler' (BERT), 'encoder.self_attn.q' (T5), or a
    decoder's 'q', 'k', 'v', 'o', 'qkv', 'gate', 'up', 'down' (utils.core.families)."""
    found = placement(name)
    if found:
        return found.role.type
    if ".pooler." in f".{name}":
        return "pooler"
    t5 = re.search(r"\.(SelfAttention|EncDecAttention|DenseReluDense)\.(\w+)\.weight$", name)
    if t5:
        return f"{stack_of(name)}.{_T5_SUBLAYERS[t5.group(1)]}.{t5.group(2)}"
    for suffix, kind in _BERT_MATRIX_TYPES:
        if name.endswith(f"{suffix}.weight"):
            return kind
    return re.sub(r"^.*?\.\d+\.", "", name).removesuffix(".weight")


def layer_sort_key(layer: str) -> tuple:
    stack, _, index = layer.partition(".")
    return ({"encoder": 0, "decoder": 1, "pooler": 2}.get(stack, 3), int(index) if index.isdigit() else -1)


# ---------------------------------------------------------------------------------------------------------------
# The Mask type
# ---------------------------------------------------------------------------------------------------------------


class Mask(Mapping):
    """A read-only mapping: parameter name -> bool tensor (True = kept). Always on CPU.

    Operations return new masks; nothing changes one in place, so a mask a run has checksummed stays that mask.
    """

    def __init__(self, tensors: Mapping[str, torch.Tensor], notes: list[str] | None = None) -> None:
        self._tensors: "OrderedDict[str, torch.Tensor]" = OrderedDict(tensors)
        self.notes: list[str] = list(notes or [])  # what fitting the mask to a model changed, for the run log
        for name, tensor in self._tensors.items():
            if tensor.dtype != torch.bool:
                raise TypeError(f"mask entry {name} must be a bool tensor, got {tensor.dtype}")

    def __getitem__(self, name: str) -> torch.Tensor:
        return self._tensors[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._tensors)

    def __len__(self) -> int:
        return len(self._tensors)

    def __eq__(self, other: object) -> bool:
        """Same names in the same order, and equal tensors (Mapping's default would ask a tensor for its truth)."""
        if not isinstance(other, Mask):
            return NotImplemented
        return list(self) == list(other) and all(torch.equal(t, other[n]) for n, t in self.items())

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Mask({len(self)} matrices, sparsity {self.sparsity:.2%})"

    @classmethod
    def ones_like(cls, weights: Mapping[str, torch.Tensor]) -> "Mask":
        return cls(OrderedDict((n, torch.ones(w.shape, dtype=torch.bool)) for n, w in weights.items()))

    # -- bookkeeping ---------------------------------------------------------------------------------------------
    @property
    def num_weights(self) -> int:
        return sum(t.numel() for t in self.values())

    @property
    def num_kept(self) -> int:
        return sum(int(t.sum()) for t in self.values())

    @property
    def sparsity(self) -> float:
        """Fraction of prunable weights removed."""
        total = self.num_weights
        return 1.0 - self.num_kept / total if total else 0.0

    def empty_matrices(self) -> list[str]:
        """The matrices this mask removes every weight of: nothing passes through them, so a model trained under
        the mask cannot learn there (mask_ops.py refuses to write such a mask unless asked; fine-tuning refuses it)."""
        return [name for name, tensor in self.items() if tensor.numel() and not bool(tensor.any())]

    def per_matrix(self) -> dict[str, float]:
        return {n: 1.0 - float(t.sum()) / t.numel() for n, t in self.items()}

    def per_layer(self) -> dict[str, float]:
        kept: dict[str, int] = {}
        total: dict[str, int] = {}
        for name, tensor in self.items():
            layer = layer_of(name)
            kept[layer] = kept.get(layer, 0) + int(tensor.sum())
            total[layer] = total.get(layer, 0) + tensor.numel()
        return {layer: 1.0 - kept[layer] / total[layer] for layer in sorted(total, key=layer_sort_key)}

    def per_stack(self) -> dict[str, float]:
        kept: dict[str, int] = {}
        total: dict[str, int] = {}
        for name, tensor in self.items():
            stack = stack_of(name)
            kept[stack] = kept.get(stack, 0) + int(tensor.sum())
            total[stack] = total.get(stack, 0) + tensor.numel()
        return {stack: 1.0 - kept[stack] / total[stack] for stack in total}

    def checksum(self) -> str:
        """A content hash, equal across processes and file formats, to prove ranks hold the same mask."""
        import hashlib

        digest = hashlib.sha256()
        for name, tensor in self.items():
            digest.update(name.encode())
            digest.update(np.packbits(tensor.cpu().numpy().ravel()).tobytes())
        return digest.hexdigest()

    def is_subset_of(self, other: "Mask") -> bool:
        """True when every weight kept here is also kept in `other` (IMP masks are nested)."""
        return all(bool((t & ~other[n].to(t.device)).sum() == 0) for n, t in self.items())

    # -- fitting a mask to a model -------------------------------------------------------------------------------
    def fit(self, weights: Mapping[str, torch.Tensor], source: str = "mask") -> "Mask":
        """Check the mask against a model's prunable weights and return a mask over exactly those weights.

        A pooler entry may be absent (an NER or MLM mask on an XNLI model keeps its pooler dense) or extra (an
        XNLI mask on a model without a pooler: ignored); both are recorded in `notes`. Anything else that does not
        match (names, shapes) is an error that names the first offending entries.
        """
        missing = [n for n in weights if n not in self]
        extra = [n for n in self if n not in weights]
        notes: list[str] = []
        missing_pooler = [n for n in missing if matrix_type(n) == "pooler"]
        extra_pooler = [n for n in extra if matrix_type(n) == "pooler"]
        missing = [n for n in missing if n not in missing_pooler]
        extra = [n for n in extra if n not in extra_pooler]
        if missing or extra:
            problems = []
            if missing:
                problems.append(f"{len(missing)} prunable weights of the model have no entry (e.g. {missing[0]})")
            if extra:
                problems.append(f"{len(extra)} entries match no prunable weight of the model (e.g. {extra[0]})")
            raise UserError(f"{source} does not fit this model: " + "; ".join(problems))
        for name, weight in weights.items():
            if name in self and tuple(self[name].shape) != tuple(weight.shape):
                raise UserError(
                    f"{source} does not fit this model: {name} has shape {tuple(self[name].shape)} "
                    f"in the mask but {tuple(weight.shape)} in the model"
                )
        if missing_pooler:
            notes.append(f"{source} has no pooler entry: the model's pooler dense stays unpruned")
        if extra_pooler:
            notes.append(f"{source} has a pooler entry but this model has no pooler: the entry is ignored")
        fitted = OrderedDict(
            (n, self[n] if n in self else torch.ones(w.shape, dtype=torch.bool))
            for n, w in weights.items()
        )
        return Mask(fitted, notes)

    # -- applying a mask -----------------------------------------------------------------------------------------
    def bind(self, weights: Mapping[str, torch.Tensor]) -> "BoundMask":
        return BoundMask(self, weights)

    def apply_to_weights(self, weights: Mapping[str, torch.Tensor]) -> None:
        self.bind(weights).apply_to_weights()

    # -- files ---------------------------------------------------------------------------------------------------
    def save(self, path: str | Path, metadata: dict | None = None, packed: bool = False) -> None:
        """Write `path` (.pt) atomically, then `path` with .json: the metadata plus the file's sha256."""
        path = Path(path)
        if packed:
            payload: dict = {
                "format": PACKED_FORMAT,
                "shapes": {n + MASK_SUFFIX: list(t.shape) for n, t in self.items()},
                "bits": {
                    n + MASK_SUFFIX: torch.from_numpy(np.packbits(t.cpu().numpy().ravel())) for n, t in self.items()
                },
            }
        else:
            payload = OrderedDict((n + MASK_SUFFIX, t.cpu().contiguous()) for n, t in self.items())
        save_tensors(path, payload)
        info = dict(metadata or {})
        info.update(
            sparsity=self.sparsity,
            num_weights=self.num_weights,
            num_kept=self.num_kept,
            file_format=PACKED_FORMAT if packed else "bool",
            sha256=sha256_file(path),
        )
        write_json(metadata_path(path), info)

    @classmethod
    def load(cls, path: str | Path) -> "Mask":
        """Read a mask written by this project (bool or packed) or by the original code (float 0/1, `module.`)."""
        path = Path(path)
        if not path.is_file():
            raise UserError(f"mask file not found: {path}")
        sidecar = metadata_path(path)
        expected = _read_metadata(sidecar).get("sha256") if sidecar.is_file() else None
        if expected is not None and (not isinstance(expected, str) or expected != sha256_file(path)):
            raise UserError(f"{path} does not match the checksum in {sidecar.name}: the file is truncated or was changed")
        payload = safe_torch_load(path)
        if isinstance(payload, dict) and payload.get("format") == PACKED_FORMAT:
            tensors = _unpack(payload, path)
            if expected is None:  # this project always writes one; the original's (unpacked) masks have none
                print(f"warning: {path} has no sha256 in {sidecar.name}: loaded without an integrity check",
                      file=sys.stderr)
            return cls(tensors)
        tensors = _read_state_dict_mask(payload, path)
        if expected is None and sidecar.is_file():
            print(f"warning: {sidecar} has no sha256: {path.name} loaded without an integrity check", file=sys.stderr)
        return cls(tensors)


class BoundMask:
    """A mask attached to a model's weights, held in their dtype and device, so that zeroing the pruned weights
    (or their gradients) is one fused multiply: float * bool takes a casting path that is 2-10x slower."""

    def __init__(self, mask: Mask, weights: Mapping[str, torch.Tensor]) -> None:
        self.params = [weights[name] for name in mask]
        self.values = [t.to(device=weights[n].device, dtype=weights[n].dtype) for n, t in mask.items()]

    @torch.no_grad()
    def apply_to_weights(self) -> None:
        if self.params:
            torch._foreach_mul_(self.params, self.values)

    @torch.no_grad()
    def apply_to_grads(self) -> None:
        pairs = [(p.grad, v) for p, v in zip(self.params, self.values) if p.grad is not None]
        if pairs:
            torch._foreach_mul_([g for g, _ in pairs], [v for _, v in pairs])


def empty_matrices_text(names: list[str]) -> str:
    """'encoder.layer.0.attention.self.query.weight (and 3 more matrices)': the first empty matrix, and the count."""
    return names[0] + (f" (and {len(names) - 1} more matri{'ces' if len(names) > 2 else 'x'})" if len(names) > 1 else "")


def metadata_path(mask_path: str | Path) -> Path:
    return Path(mask_path).with_suffix(".json")


def read_mask_metadata(mask_path: str | Path) -> dict:
    """The JSON sidecar of a mask, or {} for masks that have none (e.g. the original code's)."""
    sidecar = metadata_path(mask_path)
    return _read_metadata(sidecar) if sidecar.is_file() else {}


def source_name(metadata: Mapping) -> str | None:
    """'ner/en' (task/languages) from a mask's metadata; 'ner/intersection(en,fr)' for a mask that mask_ops.py
    combined from others; None when the metadata does not say."""
    task, languages = metadata.get("task"), metadata.get("languages")
    if isinstance(languages, str):
        languages = [languages]
    if not task or not languages:
        return None
    operation = metadata.get("operation")
    return f"{task}/{operation}({','.join(languages)})" if operation else f"{task}/{'+'.join(languages)}"


def common_model(paths: Iterable[str | Path]) -> str | None:
    """The model the masks' metadata name (compared by its last path part, so a local copy of a hub model
    matches); None when none names one. Masks of different models stop with one line."""
    models = {str(p): read_mask_metadata(p).get("model") for p in paths}
    named = {path: model for path, model in models.items() if model}
    if len({Path(str(model)).name for model in named.values()}) > 1:
        raise UserError("the masks come from different models: "
                        + ", ".join(f"{path} from {model}" for path, model in named.items()))
    return next(iter(named.values()), None)


def _read_metadata(sidecar: Path) -> dict:
    try:
        data = read_json(sidecar)
    except (ValueError, OSError) as error:
        raise UserError(f"cannot read mask metadata {sidecar}: {error}") from None
    if not isinstance(data, dict):
        raise UserError(f"mask metadata {sidecar} is not a JSON object")
    return data


def safe_torch_load(path: str | Path):
    """torch.load that never runs code from the file and turns every failure into one clear line."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "GLOBAL" in str(error):  # a pickled object (class or function) that unpickling would call
            raise UserError(
                f"refusing to load {path}: it holds Python objects that could run code when unpickled"
            ) from None
        raise UserError(f"cannot read {path}: not a file of tensors written by torch.save, or corrupt") from None
    except FileNotFoundError:
        raise UserError(f"file not found: {path}") from None
    except Exception as error:  # torch raises RuntimeError, EOFError, KeyError, zip errors... for damaged files
        raise UserError(f"cannot read {path}: the file is truncated or corrupt ({first_line(error)})") from None



def _strip_prefix(name: str) -> str:
    return name[len("module."):] if name.startswith("module.") else name


def _read_state_dict_mask(payload, path: Path) -> "OrderedDict[str, torch.Tensor]":
    if not isinstance(payload, Mapping) or not payload:
        raise UserError(f"{path} is not a mask file: expected a dict of '<parameter>{MASK_SUFFIX}' tensors")
    tensors: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    for key, value in payload.items():
        if not isinstance(key, str) or not key.endswith(MASK_SUFFIX) or not isinstance(value, torch.Tensor):
            hint = " (it looks like a model's weights)" if isinstance(key, str) and key.endswith(".weight") else ""
            raise UserError(f"{path} is not a mask file: entry {key!r} is not a '<parameter>{MASK_SUFFIX}' tensor{hint}")
        if value.layout != torch.strided:
            raise UserError(f"{path}: entry {key} is a {value.layout} tensor; masks are dense tensors")
        if value.dtype == torch.bool:
            tensor = value
        else:
            tensor = value != 0
            if not bool(((value == 0) | (value == 1)).all()):
                raise UserError(f"{path} is not a mask file: entry {key} holds values other than 0 and 1")
        tensors[_strip_prefix(key[: -len(MASK_SUFFIX)])] = tensor.cpu()
    return tensors


def _unpack(payload: dict, path: Path) -> "OrderedDict[str, torch.Tensor]":
    """Packed bits -> bool tensors, after checking every header field and that each declared shape fits the bits
    actually stored (a crafted header could otherwise ask for terabytes)."""
    shapes, bits = payload.get("shapes"), payload.get("bits")
    if not isinstance(shapes, dict) or not isinstance(bits, dict) or not shapes:
        raise UserError(f"{path} is a damaged packed mask: 'shapes' and 'bits' must be non-empty dicts")
    if set(shapes) != set(bits):
        odd = sorted(set(shapes) ^ set(bits), key=str)[0]
        raise UserError(f"{path} is a damaged packed mask: {odd!r} is not in both 'shapes' and 'bits'")
    tensors: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    for key, shape in shapes.items():
        if not isinstance(key, str) or not key.endswith(MASK_SUFFIX):
            raise UserError(f"{path} is a damaged packed mask: entry {key!r} is not a '<parameter>{MASK_SUFFIX}' name")
        if not isinstance(shape, (list, tuple)) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                                           for d in shape):
            raise UserError(f"{path} is a damaged packed mask: the shape of {key} is {shape!r}, not a list of sizes")
        stored = bits[key]
        if not isinstance(stored, torch.Tensor) or stored.layout != torch.strided or stored.dtype != torch.uint8 \
                or stored.dim() != 1:
            raise UserError(f"{path} is a damaged packed mask: the bits of {key} are not a 1-D uint8 tensor")
        count = math.prod(shape)
        if (count + 7) // 8 != stored.numel():
            raise UserError(f"{path} is a damaged packed mask: {key} declares shape {list(shape)} ({count:,} bits) "
                            f"but stores {stored.numel() * 8:,} bits")
        values = np.unpackbits(stored.numpy(), count=count).astype(bool)
        tensors[_strip_prefix(key[: -len(MASK_SUFFIX)])] = torch.from_numpy(values).reshape(shape)
    return tensors


def load_masks(paths: Iterable[str | Path]) -> list[Mask]:
    return [Mask.load(p) for p in paths]
