"""The perplexity transfer matrix of one-shot masks (mask language x eval language), from mask_perplexity.json.

A language model's mask "transfers" to another language when its perplexity there rises little over the dense
model's: the relative increase is ppl(mask, t) / ppl(dense, t) - 1. A column's own-language advantage compares, for
one method, the mask calibrated on t with the masks calibrated on every other language: mean increase of the others
minus the own mask's increase (positive: the own-language mask is better on t). The leave-one-out consensus of t
(the majority of every other language's mask) is compared on t with the same two.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

LEAVE_ONE_OUT = "majority_no_"


@dataclass(frozen=True)
class TransferRow:
    label: str  # 'wanda/en', 'wanda_2-4/en', 'magnitude/all', 'wanda/majority_no_fr', 'random', 'dense'
    perplexity: dict[str, float]  # eval language -> perplexity
    increase: dict[str, float]  # eval language -> ppl / dense ppl - 1


@dataclass(frozen=True)
class OwnAdvantage:
    method: str
    language: str  # the eval language (column)
    own: float  # increase of the mask calibrated on this language
    others: float  # mean increase of the masks calibrated on the other languages
    advantage: float  # others - own (positive: own-language calibration is better here)
    leave_one_out: Optional[float]  # increase of the majority of every other language's mask, if planned


@dataclass(frozen=True)
class PerplexityTransfer:
    languages: list[str]  # eval languages (columns)
    rows: list[TransferRow]  # dense first
    own: list[OwnAdvantage]

    def row(self, label: str) -> TransferRow:
        return next(r for r in self.rows if r.label == label)


def transfer_matrix(result: dict) -> PerplexityTransfer:
    """Relative increases and own-language advantages from a mask_perplexity.json result."""
    entries = result["masks"]
    dense = next(e["perplexity"] for e in entries if e["label"] == "dense")
    languages = list(dense)
    rows = [TransferRow(e["label"], dict(e["perplexity"]),
                        {t: e["perplexity"][t] / dense[t] - 1 for t in languages}) for e in entries]
    by_label = {r.label: r for r in rows}
    methods = list(dict.fromkeys(r.label.split("/")[0] for r in rows if r.label.split("/")[-1] in languages))
    own = []
    for method in methods:
        for t in languages:
            mine = by_label.get(f"{method}/{t}")
            others = [by_label[f"{method}/{s}"].increase[t] for s in languages
                      if s != t and f"{method}/{s}" in by_label]
            if mine is None or not others:
                continue
            loo = by_label.get(f"{method}/{LEAVE_ONE_OUT}{t}")
            own.append(OwnAdvantage(method, t, mine.increase[t], float(np.mean(others)),
                                    float(np.mean(others)) - mine.increase[t],
                                    None if loo is None else loo.increase[t]))
    return PerplexityTransfer(languages, rows, own)


def share_better(values: Sequence[OwnAdvantage]) -> float:
    """Fraction of columns where the own-language mask is no worse than the others' mean."""
    return float(np.mean([v.advantage >= 0 for v in values])) if values else float("nan")
