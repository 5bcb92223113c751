"""Experiment tracking (--report_to) through accelerate's trackers: TensorBoard, wandb, mlflow, ...

What a run logs: its full config once; per logging step the training loss and learning rate (x axis: optimizer
steps over the whole run); per evaluation every metric per language (eval/<lang>/<metric>); per IMP round the
sparsity, the headline metric, the seconds and the mask checksum (imp/..., x axis: the round). Runs are named
after --run_name, else after the output directory; TensorBoard writes under --logging_dir (default
OUTPUT_DIR/runs).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from accelerate import Accelerator
from accelerate.tracking import get_available_trackers
from accelerate.utils import LoggerType
from transformers.integrations import get_available_reporting_integrations

from utils.infra.errors import UserError
from utils.infra.outputs import RunPaths
from utils.infra.results_schema import ImpRound

SUPPORTED = tuple(t.value for t in LoggerType if t is not LoggerType.ALL)


def tracker_names(report_to: list[str]) -> list[str]:
    """accelerate's trackers for --report_to (already a list: transformers turned 'none' into [] and 'all' into the
    installed integrations, of which those accelerate lacks are skipped); a named tracker that cannot run stops."""
    names = [name for name in report_to if name != "kubeflow"]  # transformers adds kubeflow by itself
    if names and names == get_available_reporting_integrations():  # --report_to all
        names = [name for name in names if name in SUPPORTED]
    available = {str(getattr(t, "value", t)) for t in get_available_trackers()}
    for name in names:
        if name not in SUPPORTED:
            raise UserError(f"--report_to {name} is not supported here; use one of: {', '.join(SUPPORTED)}, none, all")
        if name not in available:
            raise UserError(f"--report_to {name}: the {name} package is not installed (pip install {name})")
    return names


def run_name(args) -> str:
    """--run_name, else the output directory's last two parts (LT_ner-en for runs/offline/LT_ner/en)."""
    return args.run_name or "-".join(Path(args.output_dir).resolve().parts[-2:])


def logging_dir(args) -> str:
    return args.logging_dir or str(RunPaths(args.output_dir).tracking_dir)


def flat_config(config: dict[str, Any]) -> dict[str, Any]:
    """Trackers take scalars and strings; lists, dicts and None become their JSON text."""
    return {k: v if isinstance(v, (bool, int, float, str)) else json.dumps(v, default=str) for k, v in config.items()}


def eval_scalars(results: dict[str, dict[str, float]], prefix: str = "eval") -> dict[str, float]:
    """{'eval/fr/f1': 0.9, ...} from {'fr': {'f1': 0.9}}; non-numeric values are left out."""
    return {
        f"{prefix}/{lang}/{key}": float(value)
        for lang, values in results.items()
        for key, value in values.items()
        if isinstance(value, (int, float))
    }


class RunTracker:
    """The run's trackers, or nothing at all with --report_to none (every method is then a no-op)."""

    def __init__(self, accelerator: Accelerator, args) -> None:
        self.accelerator = accelerator
        self.active = bool(accelerator.log_with)
        self.name = run_name(args)
        self.started = False

    def start(self, config: dict[str, Any]) -> None:
        """Open the run and store its config; once, after the output directory has been made this run's."""
        if self.active and not self.started:
            init_kwargs = {"wandb": {"name": self.name}, "mlflow": {"run_name": self.name}}
            self.accelerator.init_trackers(self.name, config=flat_config(config), init_kwargs=init_kwargs)
            self.started = True

    def log(self, values: dict[str, Any], step: int) -> None:
        if self.started:
            self.accelerator.log(values, step=step)

    def finish(self) -> None:
        if self.started:
            self.accelerator.end_training()
            self.started = False


def accelerator_tracking_kwargs(args) -> dict[str, Optional[Any]]:
    """Accelerator(**these): which trackers, and where TensorBoard writes."""
    names = tracker_names(list(args.report_to or []))
    return {"log_with": names or None, "project_dir": logging_dir(args) if names else None}


def round_values(entry: ImpRound, metric: str) -> dict[str, Any]:
    """What an IMP round reports: its number, sparsity, headline metric, seconds and mask checksum. They are logged
    at the run's optimizer step (trackers such as wandb drop steps that go back), so `imp/round` names the round."""
    values = {"imp/round": entry.round, "imp/sparsity": entry.sparsity, "imp/seconds": entry.seconds,
              "imp/mask_checksum": entry.mask_checksum}
    if isinstance(entry.headline, (int, float)):
        values[f"imp/{metric}"] = entry.headline
    return values


def eta_line(done: int, total: int, timed: int, elapsed: float) -> str:
    """'round 3/10 done (1m05s per round); about 7m35s left': rounds left x the mean time of the `timed` rounds this
    process ran in `elapsed` seconds (a resumed run times only its own rounds)."""
    per_round = elapsed / max(1, timed)
    if done >= total:
        return f"round {done}/{total} done; this run's {timed} round(s) took {_duration(elapsed)}"
    left = _duration((total - done) * per_round)
    return f"round {done}/{total} done ({_duration(per_round)} per round); about {left} left"


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"
