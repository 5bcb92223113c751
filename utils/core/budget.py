"""How many optimizer steps a run takes: the one set of rules the trainer, the IMP driver and a study's estimate
share, so that the estimate counts the steps the run will take."""
from __future__ import annotations

import math


def step_budget(max_steps: int, num_train_epochs: float, steps_per_epoch: int) -> int:
    """--max_steps when it is positive, else --num_train_epochs over `steps_per_epoch` optimizer steps."""
    if max_steps and max_steps > 0:
        return int(max_steps)
    return math.ceil(num_train_epochs * steps_per_epoch)


def round_length(save_steps: float | None, budget: int, num_rounds: int) -> int:
    """Optimizer steps of one IMP round: --save_steps as the original used it (when >= 1), else the budget split
    over the rounds."""
    if save_steps and save_steps >= 1:
        return int(save_steps)
    return max(1, math.ceil(budget / num_rounds))
