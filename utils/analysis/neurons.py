"""Language-specific FFN neurons (LAPE: Tang et al., ACL 2024): activation probabilities per language, LAPE's
selection, masks over the neurons' weights, ablation, and how the neurons sit in per-language sub-networks.

A neuron is one unit of a layer's FFN: one row of gate/up (BERT's intermediate.dense, T5's wi / wi_0 / wi_1) and
one column of down (BERT's output.dense, T5's wo). Which matrices these are comes from the family table
(utils.core.families, decoders) or from `ENCODER_FFN` (BERT, T5's encoder): generic code names no architecture.

Firing: LAPE counts act_fn(gate(x)) > 0 (act_fn(up(x)) > 0 without a gate). Every activation in `SIGN_PRESERVING`
(SiLU, GELU and its tanh / fast / quick variants, ReLU) is positive exactly where its input is, so a forward hook on
the gate matrix (else the up matrix) that counts output > 0 measures exactly that, without knowing how a family
calls its activation module. Deactivating neurons zeroes their entries of the down matrix's input (a
forward-pre-hook): for a gated FFN that is act * up = 0, what LAPE's zeroed activation gives.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Mapping, Optional, Sequence

import torch
from torch import nn

from utils.core.families import placement
from utils.core.masks import Mask, layer_of, layer_sort_key, matrix_type, stack_of
from utils.analysis.writers import from_json, to_json
from utils.core.pruning import prunable_weights
from utils.infra.errors import UserError

# BERT's and T5's FFN matrices by matrix_type (T5's with the stack prefix removed); decoders come from the family table.
ENCODER_FFN = {"intermediate": "up", "output": "down", "ffn.wi": "up", "ffn.wi_0": "gate", "ffn.wi_1": "up",
               "ffn.wo": "down"}
# Activations that are > 0 exactly where their input is > 0 (names as transformers' configs write them).
SIGN_PRESERVING = frozenset({"silu", "swish", "gelu", "gelu_new", "gelu_fast", "gelu_pytorch_tanh", "gelu_python",
                             "gelu_accurate", "quick_gelu", "relu", "relu2", "gated-gelu", "gated-silu",
                             "gated-relu"})
ACTIVATION_FIELDS = ("hidden_activation", "hidden_act", "activation_function", "dense_act_fn", "feed_forward_proj")


# ---------------------------------------------------------------------------------------------------------------
# Where the neurons are
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FfnLayer:
    """One layer's FFN: the matrix whose output sign is the neuron's firing, the matrix reading the neurons, and
    each FFN weight with the axis that indexes the neurons in it."""

    layer: str  # 'decoder.3', 'encoder.0'
    fires: str  # module name (gate, else up)
    down: str  # module name
    weights: tuple[tuple[str, int], ...]  # (weight name, neuron axis) of gate/up/down
    size: int  # neurons


def ffn_role(name: str) -> Optional[str]:
    """'gate', 'up', 'down', 'gate_up' (a fused matrix) or None for a weight outside the FFN."""
    found = placement(name)
    if found:
        return found.role.type if found.role.unit == "ffn" else None
    kind = matrix_type(name)
    return ENCODER_FFN.get(kind.split(".", 1)[1] if kind.startswith(("encoder.", "decoder.")) else kind)


def _neuron_axis(name: str, role: str) -> int:
    found = placement(name)
    if found:
        return found.role.head_axis
    return 1 if role == "down" else 0  # nn.Linear (out, in): neurons are gate/up rows and down columns


def find_ffn_layers(model: nn.Module, stack: Optional[str] = None) -> list[FfnLayer]:
    """Every layer's FFN (only those of `stack` when given: T5's encoder), in layer order."""
    by_layer: dict[str, dict[str, str]] = {}
    for name in prunable_weights(model):
        role = ffn_role(name)
        if role is None or (stack is not None and stack_of(name) != stack):
            continue
        if role == "gate_up":
            raise UserError(f"{name} fuses gate and up in one matrix: fused FFNs are not supported")
        by_layer.setdefault(layer_of(name), {})[role] = name
    if not by_layer:
        raise UserError(f"found no FFN (gate/up/down, intermediate/output or wi/wo matrices) in "
                        f"{type(model).__name__}: language_neurons.py needs one")
    shapes = {name: tuple(p.shape) for name, p in model.named_parameters()}
    layers = []
    for layer in sorted(by_layer, key=layer_sort_key):
        roles = by_layer[layer]
        if "down" not in roles or not ({"gate", "up"} & set(roles)):
            raise UserError(f"layer {layer} of {type(model).__name__} has FFN matrices {sorted(roles)}: need an up "
                            "(or gate) and a down matrix")
        weights = tuple((name, _neuron_axis(name, role)) for role, name in sorted(roles.items()))
        down_weight = roles["down"]
        size = shapes[down_weight][_neuron_axis(down_weight, "down")]
        layers.append(FfnLayer(layer, roles.get("gate", roles.get("up")).removesuffix(".weight"),
                               down_weight.removesuffix(".weight"), weights, size))
    return layers


def check_activation(config) -> str:
    """The FFN activation's name from the config; refuse one whose sign is not its input's (firing is counted on
    the pre-activation, see the module docstring)."""
    for name in ACTIVATION_FIELDS:
        value = getattr(config, name, None)
        if isinstance(value, str):
            if value.lower() not in SIGN_PRESERVING:
                raise UserError(f"the FFN activation {value!r} ({name}) is not known to be positive exactly where its "
                                f"input is; supported: {', '.join(sorted(SIGN_PRESERVING))}")
            return value
    raise UserError(f"cannot tell the FFN activation of {type(config).__name__}: none of {', '.join(ACTIVATION_FIELDS)} "
                    "is set")


# ---------------------------------------------------------------------------------------------------------------
# Activation probabilities
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class ActivationProbs:
    """P(neuron fires) per language over every counted token: `probs[i]` is layer i's (neurons, languages) tensor."""

    languages: list[str]
    layers: list[str]
    probs: list[torch.Tensor]  # float64 (size, L)
    tokens: dict[str, int]  # counted tokens per language

    def flat(self) -> torch.Tensor:
        """All neurons of all layers as one (N, L) tensor, layer by layer (LAPE's flattening)."""
        return torch.cat(self.probs, dim=0)

    def sizes(self) -> list[int]:
        return [p.shape[0] for p in self.probs]


@torch.no_grad()
def count_firing(forward: Callable[[dict], None], model: nn.Module, layers: Sequence[FfnLayer],
                 batches: Iterable[dict]) -> tuple[list[torch.Tensor], int]:
    """(per layer: how many counted tokens each neuron fired on, counted tokens). A batch's `count_mask` (bool,
    batch x seq) says which positions count (not padding, not special tokens); `forward(batch)` runs the model."""
    counts = [torch.zeros(layer.size, dtype=torch.int64) for layer in layers]
    current: dict[str, torch.Tensor] = {}

    def hook_for(i: int):
        def hook(module, inputs, output):
            fired = (output > 0) & current["mask"].unsqueeze(-1).to(output.device)
            counts[i] += fired.sum(dim=tuple(range(fired.dim() - 1))).cpu()
        return hook

    handles = [model.get_submodule(layer.fires).register_forward_hook(hook_for(i)) for i, layer in enumerate(layers)]
    total = 0
    try:
        for batch in batches:
            current["mask"] = batch["count_mask"]
            total += int(batch["count_mask"].sum())
            forward(batch)
    finally:
        for handle in handles:
            handle.remove()
    return counts, total


# ---------------------------------------------------------------------------------------------------------------
# LAPE's selection
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LapeSettings:
    """LAPE's thresholds (the paper's code: filter_rate 0.95, top_rate 0.01, activation_bar_ratio 0.95)."""

    filter_rate: float = 0.95
    top_rate: float = 0.01
    activation_bar_ratio: float = 0.95


@dataclass
class Selection:
    """LAPE's result: per language, per layer, the sorted indices of its neurons; and how they were chosen."""

    languages: list[str]
    layers: list[str]
    neurons: dict[str, list[torch.Tensor]]  # lang -> per layer LongTensor
    filter_threshold: float
    activation_bar: float
    candidates: int  # neurons that pass the filter
    selected: int  # lowest-entropy neurons kept (before the per-language bar)
    entropy: torch.Tensor = field(repr=False)  # (N,) inf for filtered neurons

    def counts(self) -> dict[str, list[int]]:
        return {lang: [len(t) for t in per_layer] for lang, per_layer in self.neurons.items()}


def kth_quantile(values: torch.Tensor, rate: float) -> float:
    """LAPE's threshold: the round(n * rate)-th smallest value (1-based, at least the first)."""
    flat = values.flatten()
    return float(flat.kthvalue(min(max(1, round(len(flat) * rate)), len(flat))).values)


def entropy_over_languages(probs: torch.Tensor) -> torch.Tensor:
    """Entropy of each neuron's probabilities normalised over the languages (a neuron that never fires: 0)."""
    normed = probs / probs.sum(dim=-1, keepdim=True)
    normed = torch.nan_to_num(normed, nan=0.0)
    logs = torch.where(normed > 0, normed.log(), torch.zeros_like(normed))
    return -(normed * logs).sum(dim=-1)


def lape_select(stats: ActivationProbs, settings: LapeSettings) -> Selection:
    """LAPE: keep neurons firing above the filter quantile in some language, take the `top_rate` share of ALL
    neurons with the lowest entropy (ties: the earlier layer and index), and give each to every language whose
    probability exceeds the activation bar."""
    probs = stats.flat()
    threshold = kth_quantile(probs, settings.filter_rate)
    entropy = entropy_over_languages(probs)
    entropy[~(probs > threshold).any(dim=-1)] = math.inf
    candidates = int(torch.isfinite(entropy).sum())
    wanted = min(round(len(entropy) * settings.top_rate), candidates)
    order = sorted(range(len(entropy)), key=lambda i: (float(entropy[i]), i))[:wanted]
    chosen = torch.tensor(sorted(order), dtype=torch.long)
    bar = kth_quantile(probs, settings.activation_bar_ratio)
    starts = torch.tensor([0] + stats.sizes()).cumsum(0)
    neurons = {}
    for l, lang in enumerate(stats.languages):
        mine = chosen[probs[chosen, l] > bar] if len(chosen) else chosen
        neurons[lang] = [mine[(mine >= starts[i]) & (mine < starts[i + 1])] - starts[i] for i in range(len(stats.layers))]
    return Selection(list(stats.languages), list(stats.layers), neurons, threshold, bar, candidates, wanted, entropy)


# ---------------------------------------------------------------------------------------------------------------
# LAPE's file format and masks over the neurons' weights
# ---------------------------------------------------------------------------------------------------------------


def lape_payload(selection: Selection) -> list[list[torch.Tensor]]:
    """LAPE's own format: a list over languages (in `selection.languages` order) of lists over layers of LongTensors."""
    return [[t.clone().long() for t in selection.neurons[lang]] for lang in selection.languages]


def read_lape_payload(payload, languages: Sequence[str], sizes: Sequence[int], source: str) -> dict[str, list[torch.Tensor]]:
    """Check a LAPE-format object against the languages and layer sizes; per language, per layer indices."""
    if not isinstance(payload, list) or len(payload) != len(languages):
        raise UserError(f"{source} is not a LAPE neuron file for {len(languages)} languages")
    neurons = {}
    for lang, per_layer in zip(languages, payload):
        if not isinstance(per_layer, list) or len(per_layer) != len(sizes):
            raise UserError(f"{source}: {lang} does not hold one tensor per layer ({len(sizes)})")
        for i, (t, size) in enumerate(zip(per_layer, sizes)):
            if not isinstance(t, torch.Tensor) or t.dtype != torch.long or t.dim() != 1 or \
                    (len(t) and (int(t.min()) < 0 or int(t.max()) >= size)):
                raise UserError(f"{source}: {lang} layer {i} is not a LongTensor of neuron indices below {size}")
        neurons[lang] = list(per_layer)
    return neurons


def neuron_mask(model_weights: Mapping[str, torch.Tensor], layers: Sequence[FfnLayer],
                per_layer: Sequence[torch.Tensor]) -> Mask:
    """The mask that keeps exactly the weights connecting to the given neurons (their gate/up rows and down
    columns) and nothing else; `~` of it is the model without them."""
    tensors = OrderedDict((n, torch.zeros(w.shape, dtype=torch.bool)) for n, w in model_weights.items())
    for layer, indices in zip(layers, per_layer):
        for name, axis in layer.weights:
            tensors[name].index_fill_(axis, indices.long(), True)
    return Mask(tensors)


def complement(mask: Mask) -> Mask:
    return Mask(OrderedDict((n, ~t) for n, t in mask.items()))


# ---------------------------------------------------------------------------------------------------------------
# Ablation
# ---------------------------------------------------------------------------------------------------------------


@contextmanager
def deactivated(model: nn.Module, layers: Sequence[FfnLayer], per_layer: Sequence[torch.Tensor]) -> Iterator[None]:
    """Inside the block, the given neurons output 0: their entries of each down matrix's input are zeroed."""
    def hook_for(indices: torch.Tensor):
        def hook(module, args):
            x = args[0].clone()
            x[..., indices.to(x.device)] = 0
            return (x,) + tuple(args[1:])
        return hook

    handles = [model.get_submodule(layer.down).register_forward_pre_hook(hook_for(indices))
               for layer, indices in zip(layers, per_layer) if len(indices)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def random_neurons(per_layer: Sequence[torch.Tensor], sizes: Sequence[int], generator: torch.Generator,
                   exclude: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Per layer, as many neurons as given, drawn uniformly from the layer's neurons outside `exclude` (every
    language's selected neurons)."""
    drawn = []
    for indices, size, taken in zip(per_layer, sizes, exclude):
        others = torch.tensor(sorted(set(range(size)) - set(taken.tolist()) - set(indices.tolist())), dtype=torch.long)
        if len(others) < len(indices):
            raise UserError("too few unselected neurons in a layer to draw a random set of the same size")
        pick = others[torch.randperm(len(others), generator=generator)[: len(indices)]]
        drawn.append(pick.sort().values)
    return drawn


def frequency_matched(per_layer: Sequence[torch.Tensor], mean_probs: Sequence[torch.Tensor],
                      exclude: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Per layer, for each given neuron (in index order) the not-yet-used neuron of the same layer outside
    `exclude` (every language's selected neurons) whose mean activation probability over the languages is closest
    (ties: the lower index)."""
    matched = []
    for indices, mean, taken in zip(per_layer, mean_probs, exclude):
        free = torch.ones(len(mean), dtype=torch.bool)
        free[indices] = False
        free[taken] = False
        picks = []
        for j in indices.tolist():
            gap = (mean - mean[j]).abs().masked_fill(~free, math.inf)
            if not torch.isfinite(gap).any():
                raise UserError("too few unselected neurons in a layer to match each selected one by activation frequency")
            k = int(gap.argmin())
            free[k] = False
            picks.append(k)
        matched.append(torch.tensor(sorted(picks), dtype=torch.long))
    return matched


@dataclass
class AblationMatrix:
    """Perplexity per eval language: dense, and with each language's neurons (or a baseline set) deactivated."""

    eval_languages: list[str]
    dense: dict[str, float]
    perplexity: dict[str, dict[str, dict[str, float]]]  # kind -> ablated language -> eval language -> ppl

    def relative(self, kind: str) -> dict[str, dict[str, float]]:
        """ppl_ablated / ppl_dense - 1 per cell."""
        return {ablated: {e: row[e] / self.dense[e] - 1.0 for e in self.eval_languages}
                for ablated, row in self.perplexity[kind].items()}


# ---------------------------------------------------------------------------------------------------------------
# Neurons vs sub-networks
# ---------------------------------------------------------------------------------------------------------------


def specific_share(masks: Mapping[str, Mask], layers: Sequence[FfnLayer], lang: str) -> list[torch.Tensor]:
    """Per layer, per neuron: the fraction of its down-matrix weights (the neuron's column) that `lang`'s mask
    keeps and more than half of the other languages' masks drop."""
    others = [m for l, m in masks.items() if l != lang]
    shares = []
    for layer in layers:
        name, axis = next((n, a) for n, a in layer.weights if ffn_role(n) == "down")
        dropped = sum((~m[name]).to(torch.int32) for m in others)
        specific = masks[lang][name] & (dropped * 2 > len(others))
        shares.append(specific.float().movedim(axis, 0).flatten(1).mean(dim=1).double())
    return shares


@dataclass
class OverlapRow:
    """One language and layer ('all': every layer): its LAPE neurons' mean specific share against random sets."""

    language: str
    layer: str
    neurons: int
    lape_mean: float
    random_mean: float
    random_std: float
    z: float  # (lape_mean - random_mean) / random_std; nan when random_std is 0
    p_high: float  # share of random sets whose mean is >= lape_mean (with the +1 correction)


def permutation_rows(lang: str, layers: Sequence[str], shares: Sequence[torch.Tensor], per_layer: Sequence[torch.Tensor],
                     permutations: int, generator: torch.Generator) -> list[OverlapRow]:
    """Per layer and over all layers: the observed mean share of the language's neurons, and the means of
    `permutations` random sets of the same size per layer drawn from all of that layer's neurons."""
    rows, total_obs, total_null, total_n = [], 0.0, torch.zeros(permutations, dtype=torch.float64), 0
    for layer, share, indices in zip(layers, shares, per_layer):
        n = len(indices)
        if n == 0:
            continue
        draws = torch.rand(permutations, len(share), generator=generator).argsort(dim=1)[:, :n]
        null_sums = share[draws].sum(dim=1)
        observed = float(share[indices].sum())
        rows.append(_row(lang, layer, n, observed / n, null_sums / n))
        total_obs, total_null, total_n = total_obs + observed, total_null + null_sums, total_n + n
    if total_n:
        rows.append(_row(lang, "all", total_n, total_obs / total_n, total_null / total_n))
    return rows


def _row(lang: str, layer: str, n: int, observed: float, null: torch.Tensor) -> OverlapRow:
    mean, std = float(null.mean()), float(null.std(unbiased=True)) if len(null) > 1 else 0.0
    z = (observed - mean) / std if std > 0 else math.nan
    p = (1 + int((null >= observed - 1e-12).sum())) / (len(null) + 1)
    return OverlapRow(lang, layer, n, observed, mean, std, z, p)


# ---------------------------------------------------------------------------------------------------------------
# The result (neurons.json)
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class AblationResult:
    """The ablation in neurons.json: perplexities and their relative change, per kind (language, random,
    frequency_matched) -> deactivated language -> eval language."""

    dense: dict[str, float]
    perplexity: dict[str, dict[str, dict[str, float]]]
    relative: dict[str, dict[str, dict[str, float]]]

    @classmethod
    def of(cls, matrix: AblationMatrix) -> "AblationResult":
        return cls(matrix.dense, matrix.perplexity, {kind: matrix.relative(kind) for kind in matrix.perplexity})

    @property
    def eval_languages(self) -> list[str]:
        return list(self.dense)


@dataclass
class NeuronResult:
    """What language_neurons.py found (neurons.json; the JSON keys are the field names): the selection's settings,
    thresholds and counts per language and layer, and, when asked for, the ablation and the overlap rows."""

    model: str
    settings: LapeSettings
    tokens: dict[str, int]  # counted tokens per language
    layers: list[str]
    neurons_per_layer: list[int]
    filter_threshold: float
    activation_bar: float
    candidates: int
    selected: int
    counts: dict[str, list[int]]  # language -> its neurons per layer
    text_files: dict[str, str]
    eval_files: Optional[dict[str, str]] = None
    ablation: Optional[AblationResult] = None  # with --eval_files
    mask_dir: Optional[dict[str, str]] = None
    overlap: Optional[list[OverlapRow]] = None  # with --mask_dir

    @property
    def languages(self) -> list[str]:
        return list(self.counts)

    def to_json(self) -> dict:
        return to_json(self)

    @classmethod
    def from_json(cls, data: dict) -> "NeuronResult":
        return from_json(cls, data)
