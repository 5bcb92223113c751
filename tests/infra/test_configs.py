"""Every shipped config parses through its own script's main, as the script reads it, and holds what its recipe
needs: training and evaluation on, the task's own pruning defaults (mT5: per stack, rewinding everything), and for
offline IMP configs a step budget of exactly rounds x save_steps (one linear schedule over the whole run)."""
from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

from tests.conftest import REPO
from utils.infra.args import IMPArguments
from utils.tasks.registry import task_spec

# script -> (the driver main() hands its arguments to, the task whose SPEC sets its defaults)
SCRIPTS = {"LT_ner": ("run_imp", "ner"), "ner_fine_tune": ("run_finetune", "ner"),
           "LT_xnli": ("run_imp", "xnli"), "xnli_fine_tune": ("run_finetune", "xnli"),
           "LT_pawsx": ("run_imp", "pawsx"), "pawsx_fine_tune": ("run_finetune", "pawsx"),
           "LT_mt5_xnli": ("run_imp", "mt5_xnli"), "mt5_xnli_fine_tune": ("run_finetune", "mt5_xnli"),
           "LT_pretrain": ("run_imp", None), "pretrain_trans": ("run_finetune", None),
           "prune_oneshot": ("run_oneshot", None)}
CONFIGS = sorted(set(REPO.glob("configs/**/*.json")) - set(REPO.glob("configs/studies/*")))


def script_for(config: Path) -> str:
    stem = config.stem.replace("_args", "")
    for script in sorted(SCRIPTS, key=len, reverse=True):
        if stem.startswith(script):
            return script
    raise AssertionError(f"no script for {config}")


def parsed_by_its_script(config: Path, monkeypatch) -> tuple:
    """The dataclasses the script's main() hands its driver (the driver replaced by a recorder)."""
    script = script_for(config)
    module = importlib.import_module(script)
    monkeypatch.setattr(module, SCRIPTS[script][0], lambda *args, **kwargs: args)
    monkeypatch.chdir(REPO)
    return module.main([str(config)])


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: str(p.relative_to(REPO / "configs")))
def test_every_config_parses_through_its_script(config, monkeypatch):
    args = parsed_by_its_script(config, monkeypatch)
    assert args[-1].output_dir == json.loads(config.read_text())["output_dir"]
    script = script_for(config)
    if script == "prune_oneshot":
        return
    _, model, data, pruning, training = args
    assert training.do_train and training.do_eval, "a recipe config trains and evaluates"
    task = SCRIPTS[script][1]
    given = json.loads(config.read_text())
    for name, default in task_spec(task).defaults if task else ():
        if hasattr(pruning, name) and name not in given:
            assert getattr(pruning, name) == default, f"{name}: the task's default"
    if isinstance(pruning, IMPArguments) and "offline" in config.parts and training.max_steps > 0:
        rounds = round(pruning.target_sparsity / pruning.prune_rate) + 1
        assert training.max_steps == rounds * training.save_steps
