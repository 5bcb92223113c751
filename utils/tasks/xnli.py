"""XNLI with mBERT: a sentence-pair classification task (utils/tasks/pair_classification.py).

The hub's `facebook/xnli` (config = language) has a machine-translated MNLI as its train split and the human
translated dev/test sets; local JSON-lines files with `premise`, `hypothesis` and `label` (0 entailment, 1 neutral,
2 contradiction, or those words) serve offline.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from utils.infra.args import DataArguments
from utils.infra.data import HubDataset
from utils.tasks.base import TaskSpec
from utils.tasks.pair_classification import PairTask, build_pair_classification

LABELS = ("entailment", "neutral", "contradiction")  # the ids facebook/xnli uses; mT5 generates these words
HUB = HubDataset("facebook/xnli", aliases=("xnli",),
                 languages=tuple("ar bg de el en es fr hi ru sw th tr ur vi zh all_languages".split()))
XNLI = PairTask(name="xnli", title="XNLI", first="premise", second="hypothesis", labels=LABELS, hub=HUB)


@dataclass
class XnliDataArguments(DataArguments):
    """XNLI needs no flags beyond the common ones (--max_seq_length, --pad_to_max_length, --data_language, ...)."""


build_xnli = partial(build_pair_classification, XNLI)
SPEC = TaskSpec("xnli", "LT_xnli.py", "xnli_fine_tune.py", XnliDataArguments, hub=HUB)
