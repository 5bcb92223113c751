"""PAWS-X paraphrase identification with mBERT: a sentence-pair classification task
(utils/tasks/pair_classification.py).

The hub's `google-research-datasets/paws-x` (config = language) pairs sentences of high word overlap, labelled
1 when they are paraphrases and 0 when they are not (often the same words with roles swapped); its train split is
machine-translated from English, validation and test are human translations. Local JSON-lines files with
`sentence1`, `sentence2` and `label` (0, 1, or the label words) serve offline (data/pawsx/).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from utils.infra.args import DataArguments
from utils.infra.data import HubDataset
from utils.tasks.base import TaskSpec
from utils.tasks.pair_classification import PairTask, build_pair_classification

LABELS = ("not_paraphrase", "paraphrase")  # the hub's ids 0 and 1
HUB = HubDataset("google-research-datasets/paws-x", aliases=("paws-x", "pawsx"),
                 languages=("en", "de", "es", "fr", "ja", "ko", "zh"))
PAWSX = PairTask(name="pawsx", title="PAWS-X", first="sentence1", second="sentence2", labels=LABELS, hub=HUB)


@dataclass
class PawsxDataArguments(DataArguments):
    """PAWS-X needs no flags beyond the common ones (--max_seq_length, --pad_to_max_length, --data_language, ...)."""


build_pawsx = partial(build_pair_classification, PAWSX)
SPEC = TaskSpec("pawsx", "LT_pawsx.py", "pawsx_fine_tune.py", PawsxDataArguments, hub=HUB)
